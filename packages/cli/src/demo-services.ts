import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PoolConfigInput } from '@hashwire/core';
import { startRedis, startRedisCluster } from '@hashwire/testkit';
import type { PoolKeys } from './keys.js';
import type { ServiceRunKind } from './pool.js';
import { SERVICE_BINS, SERVICE_CONFIG_ENV } from './run.js';
import type { ProcessSpec } from './supervisor.js';

/**
 * What the demo runs: a pool config of its own (one chain, litecoin regtest, HAProxy in front)
 * that `hashwire up`'s engine starts, each service through `hashwire run` like any deployment.
 */

const CLI_BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

/** The bins are run from their build output; say how to get it instead of a module-not-found trace. */
export function checkBinsBuilt(): void {
  const missing = [CLI_BIN, ...Object.values(SERVICE_BINS)].filter((bin) => !existsSync(bin));
  if (missing.length > 0) {
    throw new Error(
      `the services are not built (missing ${missing.join(', ')}): run "pnpm build" (./hashwire demo builds by itself)`,
    );
  }
}

/** One service's bin with its JSON config, for running a single service outside a pool config. */
export function serviceSpec(
  kind: ServiceRunKind,
  id: string,
  config: Record<string, unknown>,
  extra: Partial<ProcessSpec> = {},
): ProcessSpec {
  return {
    name: id,
    kind,
    command: process.execPath,
    args: [SERVICE_BINS[kind]],
    env: { ...process.env, [SERVICE_CONFIG_ENV[kind]]: JSON.stringify(config) },
    ...extra,
  };
}

/** Whether a TCP port is free on a host right now (HAProxy binds it a moment later). */
export function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** Which Redis the demo runs on: one redis-server, or a Redis Cluster (its seed nodes). */
export type DemoRedis = { url: string } | { cluster: { host: string; port: number }[] };

/** `hashwire demo --redis single|cluster`. */
export const DEMO_REDIS_KINDS = ['single', 'cluster'] as const;
export type DemoRedisKind = (typeof DEMO_REDIS_KINDS)[number];
/** `--redis cluster`: masters, and replicas of each master. */
export const CLUSTER_MASTERS = 3;
export const CLUSTER_REPLICAS = 1;

/** The Redis a demo started, to reach and to stop. */
export interface DemoRedisServer {
  /** How the pool and the demo reach it (a Cluster's nodes: masters first, then replicas). */
  target: DemoRedis;
  /** Of a Cluster's nodes, how many are replicas (0 for one redis-server). */
  replicas: number;
  /** One line for the demo's output: addresses and pids. */
  description: string;
  stop(): Promise<void>;
}

/** Starts the demo's Redis on free ports: one redis-server, or a Cluster of 3 masters and 3 replicas. */
export async function startDemoRedis(kind: DemoRedisKind): Promise<DemoRedisServer> {
  if (kind === 'single') {
    const server = await startRedis();
    return {
      target: { url: server.url },
      replicas: 0,
      description: `redis-server ${server.url} (pid ${server.pid})`,
      stop: () => server.stop(),
    };
  }
  const cluster = await startRedisCluster({ masters: CLUSTER_MASTERS, replicas: CLUSTER_REPLICAS });
  const replicas = cluster.servers.length - CLUSTER_MASTERS;
  return {
    target: { cluster: cluster.nodes },
    replicas,
    description: `Redis Cluster, ${CLUSTER_MASTERS} masters + ${replicas} replicas: ${cluster.servers.map((s) => `127.0.0.1:${s.port}`).join(', ')} (pids ${cluster.servers.map((s) => s.pid).join(', ')})`,
    stop: () => cluster.stop(),
  };
}

export interface DemoPoolInput {
  redis: DemoRedis;
  daemons: { url: string; cookieFile: string }[];
  payout: string;
  /** Where the spools, HAProxy's config and socket go (the demo's log folder). */
  dir: string;
  haproxyPort: number;
  haproxyStatsPort: number;
  /** Where HAProxy serves the api (one api instance behind it). */
  apiPort: number;
  /** Stratum difficulty of every miner (vardiff off). */
  shareDiff: number;
  /** Throwaway keys of this demo (`generatePoolKeys`): RPC runs with CURVE as off loopback. */
  keys: PoolKeys;
}

/**
 * The demo's pool: 2 jobmanagers (one leads), 2 reporters, 2 stratum servers on 127.0.0.1 with a
 * fixed low difficulty, an api instance, HAProxy on `haproxyPort` (miners) and `apiPort` (the
 * api) with its stats page, short drain and stop
 * deadlines so Ctrl-C is quick. RPC uses CURVE with the demo's own keys, although it binds
 * loopback, so the demo runs the way a multi-host pool must; POST /drain needs its token.
 */
export function demoPoolConfig(input: DemoPoolInput): PoolConfigInput {
  const { jobmanager, stratum, reporter } = input.keys.curve;
  if (!jobmanager || !stratum || !reporter || !input.keys.adminTokenFile)
    throw new Error('the demo needs every key: generatePoolKeys(dir) with no names');
  return {
    redis:
      'url' in input.redis
        ? { url: input.redis.url, keyPrefix: 'hw:' }
        : { cluster: { nodes: input.redis.cluster }, keyPrefix: 'hw:' },
    rpc: { curve: { jobmanager, stratum, reporter } },
    http: { adminTokenFile: input.keys.adminTokenFile },
    chains: [
      {
        coin: 'litecoin',
        network: 'regtest',
        daemons: input.daemons.map((d) => ({ url: d.url, cookieFile: d.cookieFile })),
        payouts: [{ address: input.payout }],
      },
    ],
    jobmanager: { count: 2 },
    reporter: { count: 2, blockPollMs: 2_000 },
    stratum: {
      count: 2,
      host: '127.0.0.1',
      spoolDir: join(input.dir, 'spool'),
      vardiff: { enabled: false, initialDifficulty: input.shareDiff },
      drain: { graceMs: 5_000 },
      flushTimeoutMs: 15_000,
    },
    api: { count: 1, bind: `127.0.0.1:${input.apiPort}` },
    haproxy: {
      enabled: true,
      bind: `127.0.0.1:${input.haproxyPort}`,
      statsBind: `127.0.0.1:${input.haproxyStatsPort}`,
      statsSocket: join(input.dir, 'haproxy.sock'),
      masterSocket: join(input.dir, 'haproxy-master.sock'),
      configFile: join(input.dir, 'haproxy.cfg'),
      checkIntervalMs: 1_000,
      rise: 1,
    },
    // Between SIGTERM and SIGKILL: a stratum server drains and hands its spool to a reporter, a
    // reporter finishes the batches it is writing, a jobmanager only hands over its lease.
    circus: { gracefulTimeoutS: { stratum: 20, reporter: 10, jobmanager: 5, api: 5 } },
    log: { level: 'info' },
  };
}
