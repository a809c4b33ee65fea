#!/usr/bin/env node
// Builds the hashing addon with node-gyp, or does nothing when build/Release/hashwire_chain.node
// is already newer than every source, so `pnpm build` stays fast when nothing changed.
// Node headers come from the local Node installation (never downloaded):
//   npm_config_nodedir / HASHWIRE_NODEDIR if set, else the prefix of the running node
//   (e.g. /usr for Debian's /usr/bin/node, ~/.nvm/versions/node/vX for nvm) when it ships
//   include/node/node_api.h.
// HASHWIRE_NO_NATIVE=1 skips the build; the package then uses its JavaScript fallback.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const output = join(here, 'build', 'Release', 'hashwire_chain.node');
const force = process.argv.includes('--force');

if (process.env.HASHWIRE_NO_NATIVE === '1') {
  console.log('hashwire chain: HASHWIRE_NO_NATIVE=1, native hashing addon not built');
  process.exit(0);
}

function newestSourceMs() {
  const files = [join(here, 'binding.gyp'), join(here, 'build.mjs')];
  for (const name of readdirSync(join(here, 'src'))) files.push(join(here, 'src', name));
  return Math.max(...files.map((file) => statSync(file).mtimeMs));
}

if (!force && existsSync(output) && statSync(output).mtimeMs > newestSourceMs()) {
  console.log('hashwire chain: native hashing addon up to date');
  process.exit(0);
}

function findNodedir() {
  const configured = process.env.HASHWIRE_NODEDIR || process.env.npm_config_nodedir;
  if (configured) return resolve(configured);
  const prefix = resolve(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : null;
}

const nodedir = findNodedir();
const nodeGyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
const args = [nodeGyp, 'rebuild', '--directory', here, '--jobs', 'max', '--loglevel=warn'];
if (nodedir) args.push(`--nodedir=${nodedir}`);
else console.warn('hashwire chain: no local Node headers found; node-gyp will try to download them');

const started = Date.now();
const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (result.status !== 0) {
  console.error(
    'hashwire chain: building the native hashing addon failed (needs python3, make and a C compiler).\n' +
      'Set HASHWIRE_NO_NATIVE=1 to skip it; hashing then falls back to JavaScript.',
  );
  process.exit(result.status ?? 1);
}
console.log(`hashwire chain: native hashing addon built in ${Date.now() - started} ms`);
