import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { API_BIN } from './helpers.js';

async function run(config: unknown): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const child = spawn(process.execPath, [API_BIN], {
    env: { ...process.env, HASHWIRE_API_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stderr, stdout };
}

describe('api bin', () => {
  it('refuses a bad config with one line naming the field', async () => {
    const noChains = await run({ id: 'x', redisUrl: 'redis://127.0.0.1:1' });
    expect(noChains.code).toBe(1);
    expect(noChains.stderr).toMatch(/^api: chains must be an array/);
    expect(noChains.stdout).toBe('');
  });

  it('says which Redis it cannot reach', async () => {
    const r = await run({ id: 'x', redisUrl: 'redis://127.0.0.1:1', chains: [] });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^api: redis: cannot reach redis:\/\/127\.0\.0\.1:1/);
  });
});
