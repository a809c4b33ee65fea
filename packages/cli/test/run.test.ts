import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createKeyBuilder } from '@hashwire/protocol';
import { connectRedis, listServices } from '@hashwire/registry';
import { type RedisServer, StopWaiting, startRedis, startRedisSentinel, waitFor } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// What Circus and `hashwire up` execute: the built CLI, in its own process.
const CLI = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const ADDRESS = 'rltc1qqurswpc8qurswpc8qurswpc8qurswpc8ntpxlg';

let redisServer: RedisServer;
let dir: string;
beforeAll(async () => {
  redisServer = await startRedis();
  dir = mkdtempSync(join(tmpdir(), 'hashwire-run-'));
});
afterAll(async () => {
  await redisServer?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function lines(child: ChildProcess): { stdout: string[]; stderr: () => string } {
  const stdout: string[] = [];
  let partial = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    stdout.push(...parts);
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  return { stdout, stderr: () => stderr };
}

async function runReporter(redisLines: string[], masterUrl: string): Promise<void> {
  expect(existsSync(CLI), `${CLI} is missing: run pnpm build`).toBe(true);
  const prefix = `run-${randomUUID().slice(0, 8)}:`;
  const file = join(dir, 'pool.yaml');
  writeFileSync(
    file,
    [
      'redis:',
      ...redisLines,
      `  keyPrefix: "${prefix}"`,
      'chains:',
      '  - id: ltc-test',
      '    daemons: [{ url: "http://rpc:pw@127.0.0.1:9/" }]',
      `    payouts: [{ address: ${ADDRESS} }]`,
      'reporter:',
      '  count: 2',
      'log:',
      '  level: warn',
    ].join('\n'),
  );
  const child = spawn(process.execPath, [CLI, 'run', 'reporter', '--instance', '2', '--config', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HASHWIRE_REPORTER__BLOCK_POLL_MS: '60000' },
  });
  // The exit code, or the signal that ended the process (named, so a crash says which).
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal)),
  );
  const output = lines(child);
  const redis = connectRedis(masterUrl);
  const keys = createKeyBuilder({ prefix });
  try {
    const ready = await waitFor(
      async () => {
        if (child.exitCode !== null) throw new StopWaiting(`exited ${child.exitCode}: ${output.stderr()}`);
        const line = output.stdout.find((l) => l.startsWith('{"ready":true'));
        return line ? (JSON.parse(line) as { id: string; endpoint: string }) : undefined;
      },
      { what: 'the reporter ready line', timeoutMs: 20_000 },
    );
    expect(ready.id).toBe('reporter-ltc-test-2');
    const [registered] = await listServices(redis, keys, 'reporter');
    expect(registered).toMatchObject({
      id: 'reporter-ltc-test-2',
      chain: 'ltc-test',
      state: 'up',
      rpc: ready.endpoint,
    });
    expect(registered?.pid).toBe(child.pid);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    // It left discovery on the way out.
    expect(await listServices(redis, keys, 'reporter')).toEqual([]);
  } finally {
    child.kill('SIGKILL');
    redis.disconnect();
  }
}

describe('hashwire run', () => {
  it('runs a reporter instance from the pool file; it registers under its derived id and SIGTERM stops it cleanly', async () => {
    await runReporter([`  url: ${redisServer.url}`], redisServer.url);
  });

  it('runs a reporter on Redis Sentinel when the pool file names one', async () => {
    const sentinel = await startRedisSentinel({ name: 'pool' });
    try {
      const { host, port } = sentinel.sentinels[0]!;
      await runReporter(
        ['  sentinel:', '    name: pool', `    sentinels: [{ host: "${host}", port: ${port} }]`],
        sentinel.master.url,
      );
    } finally {
      await sentinel.stop();
    }
  });

  it('runs a stratum instance: miners port and agent registered, spool under <spoolDir>/<id>', async () => {
    const prefix = `run-${randomUUID().slice(0, 8)}:`;
    const file = join(dir, 'stratum.toml');
    writeFileSync(
      file,
      [
        '[redis]',
        `url = "${redisServer.url}"`,
        `keyPrefix = "${prefix}"`,
        '[[chains]]',
        'daemons = [{ url = "http://rpc:pw@127.0.0.1:9/" }]',
        `payouts = [{ address = "${ADDRESS}" }]`,
        '[stratum]',
        'spoolDir = "spool"',
        'host = "127.0.0.1"',
      ].join('\n'),
    );
    const child = spawn(process.execPath, [CLI, 'run', 'stratum', '--instance', '2', '--config', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // The exit code, or the signal that ended the process (named, so a crash says which).
    const exited = new Promise<number | string | null>((resolve) =>
      child.once('exit', (code, signal) => resolve(code ?? signal)),
    );
    const output = lines(child);
    const redis = connectRedis(redisServer.url);
    const keys = createKeyBuilder({ prefix });
    try {
      const ready = await waitFor(
        () => {
          if (child.exitCode !== null) throw new StopWaiting(`exited ${child.exitCode}: ${output.stderr()}`);
          const line = output.stdout.find((l) => l.startsWith('{"ready":true'));
          return line ? (JSON.parse(line) as { id: string; port: number }) : undefined;
        },
        { what: 'the stratum ready line', timeoutMs: 20_000 },
      );
      expect(ready.id).toBe('stratum-litecoin-regtest-2');
      const [registered] = await listServices(redis, keys, 'stratum');
      expect(registered).toMatchObject({
        id: ready.id,
        stratum: `127.0.0.1:${ready.port}`,
        agent: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      });
      expect(existsSync(join(dir, 'spool', ready.id))).toBe(true);
      child.kill('SIGTERM');
      expect(await exited, `stratum run's stderr: ${output.stderr()}`).toBe(0);
      expect(await listServices(redis, keys, 'stratum')).toEqual([]);
    } finally {
      child.kill('SIGKILL');
      redis.disconnect();
    }
  });

  it('exits 1 without starting anything when the config is bad, naming the key', async () => {
    const file = join(dir, 'bad.toml');
    writeFileSync(
      file,
      `[[chains]]\ndaemons = [{ url = "http://127.0.0.1:9/" }]\npayouts = [{ address = "${ADDRESS}" }]\n[reporter]\ncount = "2"\n`,
    );
    const child = spawn(process.execPath, [CLI, 'run', 'reporter', '--instance', '1', '--config', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output = lines(child);
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code).toBe(1);
    expect(output.stdout).toEqual([]);
    expect(output.stderr()).toContain('reporter.count: must be an integer, got the string "2"');
  });
});
