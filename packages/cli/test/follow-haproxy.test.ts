import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HaproxyRuntime, type ServerState, renderHaproxy } from '@hashwire/confgen';
import { loadPoolConfig } from '@hashwire/core';
import { createKeyBuilder } from '@hashwire/protocol';
import {
  type RedisClient,
  type ServiceRegistration,
  connectRedis,
  registerService,
} from '@hashwire/registry';
import {
  type HaproxyInstance,
  type RedisServer,
  getFreePort,
  startHaproxy,
  startRedis,
  waitFor,
} from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { haproxyRenderInput } from '../src/pool.js';

// `hashwire follow-haproxy` as an operator runs it beside HAProxy (Circus, systemd): its own
// process, the pool config, a real HAProxy rendered from that config and a real Redis registry.

const CLI_BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const PREFIX = `fh${process.pid}:`;
const keys = createKeyBuilder({ prefix: PREFIX });

let redisServer: RedisServer;
let redis: RedisClient;
let dir: string;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  redisServer = await startRedis();
  redis = connectRedis(redisServer.url);
  dir = mkdtempSync(join(tmpdir(), 'hw-follow-'));
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  redis?.disconnect();
  await redisServer?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Run {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

function runFollower(args: string[]): Run {
  let output = '';
  const child = spawn(process.execPath, [CLI_BIN, 'follow-haproxy', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const collect = (chunk: Buffer) => {
    output += chunk.toString('utf8');
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  cleanups.push(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exit;
  });
  return { child, output: () => output, exit };
}

/** A pool config file whose HAProxy socket is `socket`, and HAProxy started from its render. */
async function poolWithHaproxy(name: string, startIt = true, api: string[] = []) {
  const socket = join(dir, `${name}.sock`);
  const file = join(dir, `${name}.toml`);
  const port = await getFreePort();
  const apiPort = await getFreePort();
  writeFileSync(
    file,
    [
      '[redis]',
      `url = "${redisServer.url}"`,
      `keyPrefix = "${PREFIX}"`,
      '[[chains]]',
      'coin = "litecoin"',
      'network = "regtest"',
      'daemons = [{ url = "http://rpc:pw@127.0.0.1:19443/" }]',
      'payouts = [{ address = "rltc1qqurswpc8qurswpc8qurswpc8qurswpc8ntpxlg" }]',
      '[haproxy]',
      `bind = "127.0.0.1:${port}"`,
      `statsSocket = "${socket}"`,
      'checkIntervalMs = 200',
      '[api]',
      `bind = "127.0.0.1:${apiPort}"`,
      ...api,
      '',
    ].join('\n'),
  );
  const pool = loadPoolConfig({ file, env: {}, sets: [] });
  const start = async (): Promise<HaproxyInstance> => {
    const haproxy = await startHaproxy(renderHaproxy(haproxyRenderInput(pool, [])));
    cleanups.push(() => haproxy.stop());
    return haproxy;
  };
  return {
    file,
    socket,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    backend: pool.haproxy.backend,
    runtime: new HaproxyRuntime({ socketPath: socket }),
    start,
    haproxy: startIt ? await start() : undefined,
  };
}

/** A stratum server as the registry knows it, listening (so HAProxy's checks pass) on `host`. */
async function fakeStratum(
  id: string,
  host: string,
): Promise<{ registration: ServiceRegistration; port: number }> {
  // Answers HAProxy's agent check with `up`; HAProxy may reset a check connection.
  const server: Server = createServer((socket) => {
    socket.on('error', () => {});
    socket.end('up\n');
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as { port: number }).port;
  const registration = await registerService({
    redis,
    keys,
    kind: 'stratum',
    id,
    chain: 'litecoin-regtest',
    stratum: `${host}:${port}`,
    agent: `${host}:${port}`,
    ttlMs: 60_000,
  });
  cleanups.push(async () => {
    await registration.close().catch(() => {});
    await new Promise((resolve) => server.close(resolve));
  });
  return { registration, port };
}

async function serverIn(
  runtime: HaproxyRuntime,
  backend: string,
  name: string,
): Promise<ServerState | undefined> {
  return (await runtime.serversState(backend)).find((s) => s.name === name);
}

/** `hashwire run api --instance N` as up and Circus run it; resolves once it printed its ready line. */
async function runApi(file: string, instance: number): Promise<{ child: ChildProcess; url: string }> {
  let output = '';
  const child = spawn(
    process.execPath,
    [CLI_BIN, 'run', 'api', '--instance', String(instance), '--config', file],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  const exit = new Promise((resolve) => child.once('exit', resolve));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exit;
  });
  const ready = await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`api ${instance} exited: ${output}`);
      const line = output.split('\n').find((l) => l.startsWith('{"ready":true'));
      return line ? (JSON.parse(line) as { url: string }) : undefined;
    },
    { timeoutMs: 30_000, what: `api ${instance} ready` },
  );
  return { child, url: ready.url };
}

describe('hashwire follow-haproxy', () => {
  it('fronts the api instances on api.bind: requests reach them, and go on through the other when one is killed', async () => {
    const front = await poolWithHaproxy('api', true, ['count = 2']);
    const run = runFollower(['--config', front.file]);
    const api1 = await runApi(front.file, 1);
    const api2 = await runApi(front.file, 2);
    expect(api1.url).not.toBe(api2.url);
    // Both added by the follower, each checked on its status server's /healthz, and UP.
    await waitFor(
      async () =>
        (await front.runtime.serverStats('api')).filter((s) => s.status.startsWith('UP')).length === 2,
      { timeoutMs: 20_000, what: `api-1 and api-2 UP in HAProxy; follower output:\n${run.output()}` },
    );
    expect(run.output()).toMatch(/^follow-haproxy: backend api follows the api instances/m);
    expect(run.output()).toMatch(/^follow-haproxy: add server api\/api-1 127\.0\.0\.1:\d+$/m);
    const states = await front.runtime.serversState('api');
    expect(states.map((s) => `${s.name} ${s.address}:${s.port}`).sort()).toEqual(
      [api1, api2].map((a, i) => `api-${i + 1} ${new URL(a.url).host}`),
    );
    expect(states.every((s) => s.checkPort > 0 && s.checkPort !== s.port)).toBe(true);

    // A request through the frontend reaches an api instance: the services it lists are the pool's.
    const read = async () => {
      const response = await fetch(`${front.apiUrl}/v1/services`);
      return {
        status: response.status,
        body: (await response.json()) as { services?: { id: string; kind: string }[] },
      };
    };
    const first = await read();
    expect(first.status).toBe(200);
    expect(
      first.body.services
        ?.filter((s) => s.kind === 'api')
        .map((s) => s.id)
        .sort(),
    ).toEqual(['api-1', 'api-2']);

    // api-1 killed outright (still registered until its TTL): every request still succeeds,
    // before HAProxy's checks have marked it down — a refused connection is sent to api-2.
    api1.child.kill('SIGKILL');
    await new Promise((resolve) => api1.child.once('exit', resolve));
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await read()).status);
    expect(statuses).toEqual(Array(20).fill(200));
    await waitFor(
      async () =>
        (await front.runtime.serverStats('api')).find((s) => s.name === 'api-1')?.status.startsWith('DOWN'),
      { timeoutMs: 20_000, what: 'api-1 DOWN by its health check' },
    );
    expect((await read()).status).toBe(200);

    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
  }, 90_000);

  it('adds, drains and removes stratum servers as the registry says, and stops cleanly on SIGTERM', async () => {
    const front = await poolWithHaproxy('main');
    const first = await fakeStratum('stratum-a', '127.0.0.3');
    const run = runFollower(['--config', front.file]);
    await waitFor(
      () => run.output().includes('backend stratum follows the stratum servers of chain litecoin-regtest'),
      {
        timeoutMs: 30_000,
        what: `the follower's first sync; output:\n${run.output()}`,
      },
    );
    // The server registered before it started is in, on its own address.
    const a = await waitFor(async () => await serverIn(front.runtime, front.backend, 'stratum-a'), {
      timeoutMs: 10_000,
      what: 'stratum-a in the backend',
    });
    expect([a.address, a.port, a.maint]).toEqual(['127.0.0.3', first.port, false]);

    // One that registers now, on another host, is added.
    const second = await fakeStratum('stratum-b', '127.0.0.4');
    const b = await waitFor(async () => await serverIn(front.runtime, front.backend, 'stratum-b'), {
      timeoutMs: 10_000,
      what: 'stratum-b in the backend',
    });
    expect([b.address, b.port]).toEqual(['127.0.0.4', second.port]);

    // Draining in the registry: drain in HAProxy. Gone from the registry: deleted.
    await first.registration.update({ state: 'draining' });
    await waitFor(async () => (await serverIn(front.runtime, front.backend, 'stratum-a'))?.drain === true, {
      timeoutMs: 10_000,
      what: 'stratum-a set to drain',
    });
    await first.registration.close();
    await waitFor(async () => !(await serverIn(front.runtime, front.backend, 'stratum-a')), {
      timeoutMs: 10_000,
      what: 'stratum-a deleted from the backend',
    });
    // Each change is one line of its output (written right after HAProxy took it).
    await waitFor(() => /^follow-haproxy: del server stratum\/stratum-a$/m.test(run.output()), {
      timeoutMs: 10_000,
      what: `the del server line; output:\n${run.output()}`,
    });
    expect(run.output()).toMatch(/^follow-haproxy: add server stratum\/stratum-b 127\.0\.0\.4:\d+$/m);

    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
    expect(run.output()).toMatch(/SIGTERM: stopping[\s\S]*stopped\n$/);
    // HAProxy keeps what it has: the follower leaving takes no server away.
    expect((await serverIn(front.runtime, front.backend, 'stratum-b'))?.maint).toBe(false);
  });

  it('waits for a HAProxy that is not there yet, saying why, and follows it once it runs', async () => {
    const front = await poolWithHaproxy('late', false);
    await fakeStratum('stratum-late', '127.0.0.5');
    const run = runFollower(['--config', front.file]);
    // The cause, naming the socket, while HAProxy is away.
    await waitFor(
      () => /sync failed \(backend stratum\): haproxy runtime API at \S*late\.sock/.test(run.output()),
      {
        timeoutMs: 30_000,
        what: `a line naming the missing socket; output:\n${run.output()}`,
      },
    );
    await front.start();
    await waitFor(async () => !!(await serverIn(front.runtime, front.backend, 'stratum-late')), {
      timeoutMs: 15_000,
      what: `stratum-late added once HAProxy runs; output:\n${run.output()}`,
    });
    await waitFor(
      () => /backend stratum follows the stratum servers of chain litecoin-regtest/.test(run.output()),
      {
        timeoutMs: 15_000,
        what: `the in-step line once HAProxy runs; output:\n${run.output()}`,
      },
    );
    run.child.kill('SIGINT');
    expect(await run.exit).toBe(0);
  });

  it('exits 1 naming the cause for an unreachable Redis or an unknown chain', async () => {
    const front = await poolWithHaproxy('bad', false);
    const deadPort = await getFreePort();
    const noRedis = runFollower(['--config', front.file, '--set', `redis.url=redis://127.0.0.1:${deadPort}`]);
    expect(await noRedis.exit).toBe(1);
    expect(noRedis.output()).toMatch(new RegExp(`cannot reach Redis at redis://127.0.0.1:${deadPort}`));
    const noChain = runFollower(['--config', front.file, '--chain', 'dogecoin']);
    expect(await noChain.exit).toBe(1);
    expect(noChain.output()).toContain(
      '--chain dogecoin is not a chain of the config; chains: litecoin-regtest',
    );
  });
});
