import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const cache = new Map<string, string>();

/** The nearest directory at or above `dir` holding `name`, or null. */
function findUp(dir: string, name: string): string | null {
  for (let at = dir; ; at = dirname(at)) {
    if (existsSync(join(at, name))) return at;
    if (dirname(at) === at) return null;
  }
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

/**
 * The commit checked out in the git work tree holding `dir`, read from `.git` files (no `git`
 * process): a worktree's `.git` file, a symbolic HEAD, loose or packed refs. Null outside a
 * checkout (a deployed copy without `.git`) or when anything is unreadable.
 */
export function gitCommit(dir: string): string | null {
  const top = findUp(dir, '.git');
  if (!top) return null;
  let gitDir = join(top, '.git');
  try {
    if (statSync(gitDir).isFile()) {
      const pointer = readText(gitDir)?.match(/^gitdir:\s*(.+)$/m)?.[1];
      if (!pointer) return null;
      gitDir = isAbsolute(pointer) ? pointer : resolve(top, pointer);
    }
  } catch {
    return null;
  }
  const head = readText(join(gitDir, 'HEAD'));
  if (!head) return null;
  if (/^[0-9a-f]{40}$/.test(head)) return head;
  const ref = head.match(/^ref:\s*(\S+)$/)?.[1];
  if (!ref) return null;
  // A linked worktree keeps its HEAD but shares refs with the main repository.
  const common = readText(join(gitDir, 'commondir'));
  const refDirs = [gitDir, ...(common ? [resolve(gitDir, common)] : [])];
  for (const at of refDirs) {
    const loose = readText(join(at, ref));
    if (loose && /^[0-9a-f]{40}$/.test(loose)) return loose;
    const packed = readText(join(at, 'packed-refs'));
    const line = packed?.split('\n').find((l) => l.endsWith(` ${ref}`));
    if (line && /^[0-9a-f]{40} /.test(line)) return line.slice(0, 40);
  }
  return null;
}

/**
 * The version a service reports (registry `version`, `/stats`, `hashwire_info`): the `version`
 * of the package.json nearest above `moduleUrl` (pass `import.meta.url`), with the checked-out
 * commit as semver build metadata when running from a git checkout: `0.1.0+430353e`.
 * Read once per package.
 */
export function packageVersion(moduleUrl: string): string {
  const start = dirname(fileURLToPath(moduleUrl));
  const packageDir = findUp(start, 'package.json');
  const key = packageDir ?? start;
  const known = cache.get(key);
  if (known) return known;
  let version = '0.0.0';
  if (packageDir) {
    try {
      const parsed = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as {
        version?: unknown;
      };
      if (typeof parsed.version === 'string' && parsed.version !== '') version = parsed.version;
    } catch {
      // unreadable package.json: 0.0.0 says "unknown" without failing a start
    }
  }
  const commit = gitCommit(key);
  const full = commit ? `${version}+${commit.slice(0, 7)}` : version;
  cache.set(key, full);
  return full;
}
