import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type KeyBuilder, createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, type ServiceInfo, connectRedis, listServices } from '@hashwire/registry';
import {
  type LitecoinRegtest,
  type RedisServer,
  getFreePort,
  runtimeCommand,
  startLitecoinRegtest,
  startRedis,
  startSimMiners,
  waitFor,
} from '@hashwire/testkit';
import { afterAll, beforeAll, expect } from 'vitest';

// The pool the supervisor tests (circus.test.ts, systemd.test.ts) run from rendered files, and
// what they check of it once their supervisor runs it: the same config, the same checks, only
// the supervisor differs.

export const CLI_BIN = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));

/** `hashwire <args>` as an operator runs it. */
export function cli(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI_BIN, ...args], (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

export interface PoolBackends {
  redisServer: RedisServer;
  redis: RedisClient;
  /** Two litecoind regtest nodes: the pool's daemons; node 1 holds the miners' account. */
  regtest: LitecoinRegtest;
  /** This file's key prefix, and its key builder. */
  keyPrefix: string;
  keys: KeyBuilder;
  /** A temporary folder for the pool's files, removed after the tests. */
  dir: string;
}

/**
 * Real Redis and litecoind regtest (2 nodes) and a temporary folder, started before this test
 * file's tests and stopped after them; the fields are set once the tests run.
 */
export function usePoolBackends(name: string): PoolBackends {
  const keyPrefix = `${name}${process.pid}:`;
  const backends = { keyPrefix, keys: createKeyBuilder({ prefix: keyPrefix }) } as PoolBackends;
  beforeAll(async () => {
    [backends.redisServer, backends.regtest] = await Promise.all([
      startRedis(),
      startLitecoinRegtest({ nodes: 2 }),
    ]);
    backends.redis = connectRedis(backends.redisServer.url);
    backends.dir = mkdtempSync(join(tmpdir(), `hw-${name}-`));
  });
  afterAll(async () => {
    backends.redis?.disconnect();
    await Promise.all([backends.regtest?.stop(), backends.redisServer?.stop()]);
    if (backends.dir) rmSync(backends.dir, { recursive: true, force: true });
  });
  return backends;
}

export interface SupervisedPool {
  /** The pool config file. */
  file: string;
  /** HAProxy's stats socket (its runtime API). */
  socket: string;
  haproxyCfg: string;
  haproxyPort: number;
  apiPort: number;
  /** The miners' account: an address of node 1. */
  account: string;
}

export interface SupervisedPoolOptions {
  /** More `haproxy` settings (e.g. the master socket the supervisor's HAProxy uses). */
  haproxy?: Record<string, unknown>;
  /** The `circus` section (workingDir, logDir). */
  circus: Record<string, unknown>;
}

/**
 * Writes the pool config (one jobmanager and reporter, two stratum servers, one api, HAProxy
 * with fast checks and its follower) to `<dir>/pool.json`, and renders HAProxy's file with no
 * server in it, as an operator does: the follower brings them.
 */
export async function writeSupervisedPool(
  backends: PoolBackends,
  options: SupervisedPoolOptions,
): Promise<SupervisedPool> {
  const { dir, regtest } = backends;
  const [node0, node1] = regtest.nodes;
  const payout = await node0!.rpc.call<string>('getnewaddress', ['', 'bech32']);
  const account = await node1!.rpc.call<string>('getnewaddress', ['', 'bech32']);
  const pool = {
    file: join(dir, 'pool.json'),
    socket: join(dir, 'haproxy.sock'),
    haproxyCfg: join(dir, 'haproxy.cfg'),
    haproxyPort: await getFreePort(),
    apiPort: await getFreePort(),
    account,
  };
  writeFileSync(
    pool.file,
    JSON.stringify({
      redis: { url: backends.redisServer.url, keyPrefix: backends.keyPrefix },
      chains: [
        {
          coin: 'litecoin',
          network: 'regtest',
          daemons: regtest.nodes.map((n) => ({ url: n.rpcUrl, cookieFile: n.cookieFile })),
          payouts: [{ address: payout }],
        },
      ],
      jobmanager: { count: 1 },
      reporter: { count: 1, blockPollMs: 1000 },
      stratum: {
        count: 2,
        host: '127.0.0.1',
        spoolDir: join(dir, 'spool'),
        vardiff: { enabled: false, initialDifficulty: 2 ** -5 },
        drain: { graceMs: 2000, waveIntervalMs: 100 },
        flushTimeoutMs: 10_000,
      },
      api: { count: 1, bind: `127.0.0.1:${pool.apiPort}` },
      haproxy: {
        bind: `127.0.0.1:${pool.haproxyPort}`,
        statsSocket: pool.socket,
        configFile: pool.haproxyCfg,
        checkIntervalMs: 500,
        rise: 1,
        ...options.haproxy,
      },
      circus: options.circus,
      http: { adminTokenFile: join(dir, 'admin.token') },
      log: { level: 'info' },
    }),
  );
  const haproxy = await cli([
    'render',
    'haproxy',
    '--config',
    pool.file,
    '--offline',
    '--out',
    pool.haproxyCfg,
  ]);
  expect(haproxy.code, haproxy.output).toBe(0);
  expect(readFileSync(pool.haproxyCfg, 'utf8')).not.toMatch(/^\s*server /m);
  return pool;
}

/**
 * Waits for both stratum servers and the api instance UP in HAProxy (added by the follower:
 * `followerLog` must show it), checks that the api answers through HAProxy's frontend, and
 * returns the stratum servers in the registry. `logs` is added to a failure.
 */
export async function expectServedThroughHaproxy(
  pool: SupervisedPool,
  { redis, keys }: PoolBackends,
  followerLog: () => string,
  logs: () => string,
): Promise<ServiceInfo[]> {
  const withLogs = (error: Error) => {
    throw new Error(`${error.message}\n${logs()}`);
  };
  await waitFor(
    async () => {
      const stat = await runtimeCommand(pool.socket, 'show stat').catch(() => '');
      return (stat.match(/^stratum,stratum-litecoin-regtest-\d,.*,UP,/gm) ?? []).length === 2;
    },
    { timeoutMs: 90_000, what: 'both stratum servers UP in HAProxy, added by the follower' },
  ).catch(withLogs);
  expect(followerLog()).toMatch(/add server stratum\/stratum-litecoin-regtest-1 /);
  // The api instance joins HAProxy's api backend too, and answers through its frontend.
  await waitFor(
    async () => /^api,api-1,.*,UP,/m.test(await runtimeCommand(pool.socket, 'show stat').catch(() => '')),
    { timeoutMs: 60_000, what: 'api-1 UP in HAProxy, added by the follower' },
  ).catch(withLogs);
  const api = (await (await fetch(`http://127.0.0.1:${pool.apiPort}/v1/pool`)).json()) as {
    chains: { chain: string }[];
  };
  expect(api.chains.map((c) => c.chain)).toEqual(['litecoin-regtest']);
  const live = await listServices(redis, keys, 'stratum');
  expect(live.map((s) => s.id).sort()).toEqual(['stratum-litecoin-regtest-1', 'stratum-litecoin-regtest-2']);
  return live;
}

/**
 * A miner through HAProxy gets a share accepted (the whole chain of processes works); then
 * `hashwire upgrade stratum` on the server it is on: exit 0, at least its session moved to a
 * new worker, the supervisor's processes (`supervised()`, e.g. the stratum masters' pids)
 * unchanged, the miner never disconnected and a share of it accepted after the upgrade.
 */
export async function expectUpgradeKeepsMiner(
  pool: SupervisedPool,
  live: ServiceInfo[],
  worker: string,
  supervised: () => unknown,
): Promise<void> {
  const miners = await startSimMiners({
    host: '127.0.0.1',
    port: pool.haproxyPort,
    workers: 1,
    username: () => `${pool.account}.${worker}`,
    algorithm: 'scrypt',
    hashesPerSecondLimit: 1000,
  });
  try {
    await waitFor(() => miners.stats().total.accepted > 0, { timeoutMs: 60_000, what: 'an accepted share' });
    const disconnects: unknown[] = [];
    miners.on('disconnect', (event) => disconnects.push(event));
    const sessionsOf = async (http: string) =>
      ((await (await fetch(`${http}/stats`)).json()) as { sessions: number }).sessions;
    let minersServer: ServiceInfo | undefined;
    for (const s of live) if ((await sessionsOf(s.http)) > 0) minersServer = s;
    expect(minersServer, 'the stratum server with the miner').toBeDefined();
    const before = supervised();
    const upgrade = await cli(['upgrade', 'stratum', minersServer!.id, '--config', pool.file, '--json']);
    expect(upgrade.code, upgrade.output).toBe(0);
    const upgraded = JSON.parse(upgrade.output) as {
      ok: boolean;
      moved: number;
      fromPid: number;
      toPid: number;
    };
    expect(upgraded.ok).toBe(true);
    expect(upgraded.moved).toBeGreaterThanOrEqual(1);
    expect(upgraded.toPid).not.toBe(upgraded.fromPid);
    expect(supervised()).toEqual(before);
    const acceptedBefore = miners.stats().total.accepted;
    await waitFor(() => miners.stats().total.accepted > acceptedBefore, {
      timeoutMs: 60_000,
      what: 'a share accepted after the upgrade',
    });
    expect(disconnects).toEqual([]);
  } finally {
    await miners.stop();
  }
}
