#!/usr/bin/env node
// The full suite behind `./hashwire test`: static checks (format + lint, type-check of
// sources and tests, no circular imports), then every vitest test. Ends with one line:
// `tests: N passed, F failed, S skipped` — each static check counts as one test.
// Extra arguments go to vitest (e.g. `./hashwire test packages/protocol`).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);
const args = process.argv.slice(2);
const focused = args.some((a) => !a.startsWith('-'));

let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];

function check(name, command, commandArgs) {
  const started = Date.now();
  const run = spawnSync(command, commandArgs, { cwd: root, encoding: 'utf8' });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (run.status === 0) {
    passed++;
    console.log(`✓ ${name} (${seconds}s)`);
  } else {
    failed++;
    failures.push(name);
    console.log(`✗ ${name} (${seconds}s)`);
    process.stdout.write(run.stdout ?? '');
    process.stdout.write(run.stderr ?? '');
  }
}

function distDirs() {
  const packages = readdirSync(join(root, 'packages')).map((p) => join('packages', p, 'dist'));
  return [...packages, join('bench', 'dist')].filter((d) => existsSync(join(root, d)));
}

if (!focused) {
  check('format and lint (biome)', bin('biome'), ['check', '.']);
  check('type-check sources and tests (tsc)', bin('tsc'), ['-p', 'tsconfig.test.json']);
  check('no circular imports (madge)', bin('madge'), ['--circular', '--extensions', 'js', ...distDirs()]);
}

const resultsDir = join(root, 'node_modules', '.cache', 'hashwire');
mkdirSync(resultsDir, { recursive: true });
const resultsFile = join(resultsDir, 'vitest-results.json');
rmSync(resultsFile, { force: true });
const vitest = spawnSync(
  bin('vitest'),
  ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${resultsFile}`, ...args],
  { cwd: root, stdio: 'inherit', env: process.env.CI ? { ...process.env, NO_COLOR: '1' } : process.env },
);

if (existsSync(resultsFile)) {
  const results = JSON.parse(readFileSync(resultsFile, 'utf8'));
  passed += results.numPassedTests;
  failed += results.numFailedTests;
  skipped += results.numPendingTests + results.numTodoTests;
  // A file that fails to load (syntax error, failing beforeAll) has no failed test in it: count it.
  for (const file of results.testResults ?? []) {
    // Each failed test by name with its message's first line, so the last lines of a CI log
    // say what broke even when the log above them is gone.
    for (const a of file.assertionResults ?? []) {
      if (a.status !== 'failed') continue;
      const message = String(a.failureMessages?.[0] ?? '')
        .split('\n')[0]
        .slice(0, 400);
      failures.push(`${file.name.replace(`${root}/`, '')} > ${a.fullName}: ${message}`);
    }
    if (file.status === 'failed' && file.assertionResults.every((a) => a.status !== 'failed')) {
      failed++;
      failures.push(
        `${file.name.replace(`${root}/`, '')}: ${String(file.message ?? 'failed to run').split('\n')[0]}`,
      );
    }
  }
} else {
  failed++;
  failures.push(`vitest produced no results (exit ${vitest.status})`);
}
if (vitest.status !== 0 && failed === 0) {
  failed++;
  failures.push(`vitest exited ${vitest.status} without a failed test`);
}

for (const f of failures) console.log(`failed: ${f}`);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed === 0 ? 0 : 1);
