import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomRange } from './helpers.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const child = fileURLToPath(new URL('./fixtures/exit-child.mjs', import.meta.url));

describe('process exit', () => {
  beforeAll(async () => {
    // The child uses the built package, as services do.
    await promisify(execFile)(process.execPath, ['node_modules/typescript/bin/tsc', '-b', 'packages/rpc'], {
      cwd: root,
    });
  });

  it('exits on its own once servers and clients (plain and CURVE) are closed', async () => {
    const range = randomRange();
    const proc = spawn(process.execPath, [child, String(range[0]), String(range[1])], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    proc.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    const deadline = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(deadline);
    expect({ code, stdout, stderr }).toEqual({ code: 0, stdout: 'closed\n', stderr: '' });
  });
});
