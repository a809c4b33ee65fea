#!/usr/bin/env node
// Builds bench/native/hsload (the C handshake load of the `stratum` bench) with the system C
// compiler, or does nothing when it is newer than its source. Without a compiler (or off
// Linux) it only says so: the bench then drives handshakes from Node, which costs the
// server under test more of the shared CPU, and names the client it used in its results.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, 'hsload.c');
const output = join(here, 'build', 'hsload');

if (process.platform !== 'linux') process.exit(0);
if (existsSync(output) && statSync(output).mtimeMs > statSync(source).mtimeMs) process.exit(0);
mkdirSync(dirname(output), { recursive: true });
const cc = process.env.CC || 'cc';
const result = spawnSync(cc, ['-O2', '-Wall', '-Wextra', '-o', output, source], { stdio: 'inherit' });
if (result.status !== 0) {
  console.warn(
    `hashwire bench: could not build the C handshake client with ${cc}; the stratum bench will use its Node client`,
  );
}
