import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSecretFile } from '@hashwire/core';
import { type KeyBuilder, createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis, getService } from '@hashwire/registry';
import { curveKeyPair } from '@hashwire/rpc';
import {
  type LitecoinRegtest,
  type RedisClusterServer,
  type RedisServer,
  type SimDisconnectEvent,
  type SimMiners,
  type SimReconnectEvent,
  startLitecoinRegtest,
  startRedis,
  startRedisCluster,
  startSimMiners,
  waitFor,
} from '@hashwire/testkit';
import { onTestFinished } from 'vitest';
import {
  BACKEND,
  CHECK,
  type StratumFront,
  backendServers,
  isHealthy,
  startStratumFront,
} from './haproxy-front.js';
import { minerAddress } from './miner-address.js';
import {
  type ServiceProcess,
  type TestRedis,
  killService,
  regtestJobmanagerConfig,
  regtestReporterConfig,
  regtestStratumConfig,
  spawnService,
  stratumMasterBin,
} from './service-process.js';

// A whole pool as processes for the end-to-end operations tests: real Redis, a litecoind
// regtest pair, HAProxy in front, jobmanager / stratum / reporter bins, and sim miners mining
// through HAProxy, each from its own loopback address (so `balance source` spreads them).
// RPC runs as a multi-host pool runs it: bound off loopback (127.0.0.2 stands in for a LAN
// address) with CURVE, each kind with its own key pair, the servers letting in the pool's keys.

/** Where jobmanagers and reporters bind RPC (and HTTP): not loopback as hashwire counts it. */
export const RPC_HOST = '127.0.0.2';

export const CHAIN = 'litecoin-regtest';

/** The kinds a test pool runs (payers are started by the payouts tests themselves). */
type Kind = Exclude<ServiceProcess['kind'], 'payouts'>;
/** A service of the test pool: one of its kinds. */
type PoolService = ServiceProcess & { readonly kind: Kind };

/** A stratum server's drain (waves, miners leaving, spool flushed) fits well inside this. */
const STOP_DEADLINE_MS = 30_000;

export interface PoolOptions {
  /** Share difficulty of every miner (vardiff off); dyadic keeps credited sums exact. */
  diff: number;
  /**
   * Jobmanagers' registration TTL. @defaultValue 3000 (a killed one leaves the registry
   * quickly); the production default, 60 s, keeps it there across a quick restart.
   */
  jobmanagerTtlMs?: number;
  /**
   * Heartbeat between jobmanagers and the stratum servers' job feeds. @defaultValue 250 (a
   * dead jobmanager is noticed in 750 ms); the production default is 1000.
   */
  jobHeartbeatMs?: number;
  /**
   * Stratum servers' and reporters' registration TTL. @defaultValue 3000 (a killed one leaves
   * the registry quickly); the production default, 60 s, keeps it there across a restart or a
   * Redis freeze.
   */
  serviceTtlMs?: number;
  /** Merged over each jobmanager's config (e.g. `refreshIntervalMs`). */
  jobmanagerExtra?: Record<string, unknown>;
  /** Merged over each stratum server's `jobFeed` config (e.g. `maxJobAgeMs`). */
  jobFeedExtra?: Record<string, unknown>;
  /**
   * The address a service binds everything on (RPC or miner port, and HTTP), standing in for a
   * host of its own. @defaultValue RPC and HTTP of jobmanagers and reporters on RPC_HOST, stratum
   * servers' miner port on 127.0.0.1 and their HTTP on loopback
   */
  hostOf?: (kind: Kind, id: string) => string | undefined;
  /**
   * `single`: one redis-server. `cluster`: a Redis Cluster of 3 masters with a replica each
   * (append-only files on), every service and the test connected to it as a Cluster.
   * @defaultValue 'single'
   */
  redis?: 'single' | 'cluster';
  /** Merged over each reporter's config (e.g. `shareWindow`). */
  reporterExtra?: Record<string, unknown>;
  /**
   * The chain pays SOLO: jobmanagers build each finder's coinbase, less `feePercent` to
   * `Pool.feeAddress` (an address of node 1's wallet), and stratum servers run with `solo`.
   */
  solo?: { feePercent: number };
  /** Run each stratum service under its master (`master-bin.js`, as `hashwire run stratum` does). */
  stratumMaster?: boolean;
  /** Merged over each stratum server's config. */
  stratumExtra?: Record<string, unknown>;
  /** The stratum servers `startTestPool` starts. @defaultValue ['st-1', 'st-2'] */
  stratumIds?: string[];
}

/** A miner group through HAProxy, with every reconnect and disconnect it saw, timestamped. */
export interface MinerGroup {
  miners: SimMiners;
  /** extranonce1 of each worker right after its first authorize. */
  extranonce1: (string | null)[];
  reconnects: (SimReconnectEvent & { at: number })[];
  disconnects: (SimDisconnectEvent & { at: number })[];
}

export interface Pool {
  prefix: string;
  keys: KeyBuilder;
  redis: RedisClient;
  /** The redis-server (`redis: 'single'`). */
  redisServer?: RedisServer;
  /** The Redis Cluster (`redis: 'cluster'`). */
  cluster?: RedisClusterServer;
  ltc: LitecoinRegtest;
  front: StratumFront;
  /** The miners' payout account (a regtest address). */
  account: string;
  /** The address the pool's coinbases pay (node 0's wallet). */
  payout: string;
  /** With `solo`: where the SOLO coinbases' fee output goes (node 1's wallet). */
  feeAddress?: string;
  /** The pool admin token's file, which every service's `POST /drain` accepts. */
  adminTokenFile: string;
  /** Running service processes by id. */
  running: Map<string, PoolService>;
  startService(kind: Kind, id: string): Promise<PoolService>;
  /** Jobmanagers and reporters, then stratum servers (each kind in parallel); resolves once all are healthy. */
  startServices(ids: Record<Kind, string[]>): Promise<void>;
  /** SIGTERM; resolves once it exited 0 (throws with its logs otherwise). */
  stopService(id: string): Promise<void>;
  /**
   * Waits until the service does its job in the pool again: `/healthz` 200, and a stratum server
   * UP in HAProxy with every reporter in its ring, a jobmanager with every stratum server
   * subscribed, a reporter in every stratum server's ring.
   */
  waitHealthy(id: string, timeoutMs?: number): Promise<void>;
  startMiners(options: {
    tag: string;
    workers: number;
    /** The first miner's address number (`minerAddress`); each next miner gets the next one. */
    firstAddress: number;
    hashesPerSecond: number;
    /** @defaultValue `<account>.<tag><i>` */
    username?: (index: number) => string;
  }): Promise<MinerGroup>;
  /** GET on a service's HTTP face (from its registration). */
  http<T>(kind: Kind, id: string, path: string): Promise<{ status: number; body: T }>;
  /** Log tails of every process this pool ran, restarted ones included. */
  logs(): string;
  close(): Promise<void>;
}

export async function startPool(options: PoolOptions): Promise<Pool> {
  const prefix = `t${randomBytes(4).toString('hex')}:`;
  const keys = createKeyBuilder({ prefix });
  const [ltc, { redisServer, cluster, target, redis, front }] = await Promise.all([
    startLitecoinRegtest({ nodes: 2 }),
    (async () => {
      let redisServer: RedisServer | undefined;
      let cluster: RedisClusterServer | undefined;
      let target: TestRedis;
      if (options.redis === 'cluster') {
        cluster = await startRedisCluster({ masters: 3, replicas: 1, appendonly: true });
        target = { cluster: cluster.nodes };
      } else {
        redisServer = await startRedis();
        target = redisServer.url;
      }
      const redis = connectRedis(typeof target === 'string' ? target : { cluster: [...target.cluster] });
      // HAProxy follows the registry from the start, as an operator runs it.
      return {
        redisServer,
        cluster,
        target,
        redis,
        front: await startStratumFront({ redis, keys, chain: CHAIN }),
      };
    })(),
  ]);
  const payout = await ltc.rpc[0]!.call<string>('getnewaddress', ['', 'bech32']);
  const account = await ltc.rpc[1]!.call<string>('getnewaddress', ['', 'bech32']);
  const feeAddress = options.solo
    ? await ltc.rpc[1]!.call<string>('getnewaddress', ['', 'bech32'])
    : undefined;
  const running = new Map<string, PoolService>();
  const history: { label: string; service: ServiceProcess }[] = [];
  const spoolDirs = new Map<string, string>();
  const ports = new Map<string, number>();
  const groups: MinerGroup[] = [];
  const keyDir = mkdtempSync(join(tmpdir(), 'hw-pool-keys-'));
  const pairs = { jobmanager: curveKeyPair(), stratum: curveKeyPair(), reporter: curveKeyPair() };
  const allowedClientKeys = Object.values(pairs).map((p) => p.publicKey);
  const curveOf = (kind: Kind) => {
    const secretKeyFile = join(keyDir, `${kind}.key`);
    writeSecretFile(secretKeyFile, pairs[kind].secretKey, { overwrite: true });
    return {
      publicKey: pairs[kind].publicKey,
      secretKeyFile,
      ...(kind !== 'stratum' && { allowedClientKeys }),
    };
  };
  // One address for all a service binds (RPC, HTTP, the miner port), as on a host of its own.
  const bindOn = (kind: Kind, id: string) => {
    const host = options.hostOf?.(kind, id);
    return host === undefined ? { host: RPC_HOST, httpHost: RPC_HOST } : { host, httpHost: host };
  };
  const adminTokenFile = join(keyDir, 'admin.token');
  writeSecretFile(adminTokenFile, randomBytes(32).toString('base64url'));

  const configs: Record<Kind, (id: string) => Record<string, unknown>> = {
    jobmanager: (id) =>
      regtestJobmanagerConfig({
        id,
        keyPrefix: prefix,
        redisUrl: target,
        payout,
        nodes: ltc.nodes,
        extra: {
          serviceTtlMs: options.jobmanagerTtlMs ?? 3000,
          heartbeatIntervalMs: options.jobHeartbeatMs ?? 250,
          ...bindOn('jobmanager', id),
          curve: curveOf('jobmanager'),
          adminTokenFile,
          ...(options.solo && { solo: { feePercent: options.solo.feePercent, feeAddress } }),
          ...options.jobmanagerExtra,
        },
      }),
    reporter: (id) =>
      regtestReporterConfig({
        id,
        keyPrefix: prefix,
        redisUrl: target,
        nodes: ltc.nodes,
        extra: {
          ...bindOn('reporter', id),
          curve: curveOf('reporter'),
          adminTokenFile,
          // A block record a killed jobmanager left `submitted` is settled from the daemons
          // within the tests' waits (30 s in production).
          settleSubmittedMs: 5000,
          ...(options.serviceTtlMs !== undefined && { serviceTtlMs: options.serviceTtlMs }),
          ...options.reporterExtra,
        },
      }),
    stratum: (id) => {
      if (!spoolDirs.has(id)) spoolDirs.set(id, mkdtempSync(join(tmpdir(), `hw-spool-${id}-`)));
      return regtestStratumConfig({
        id,
        keyPrefix: prefix,
        redisUrl: target,
        spoolDir: spoolDirs.get(id)!,
        // A restart takes the same port, as an operator's fixed port would (the agent then takes
        // any free one).
        port: ports.get(id) ?? 0,
        diff: options.diff,
        extra: {
          trustedProxies: ['127.0.0.1/32'],
          drain: { waveSize: 10, waveIntervalMs: 100, graceMs: 15_000 },
          jobFeed: {
            heartbeatIntervalMs: options.jobHeartbeatMs ?? 250,
            reconcileMs: 250,
            ...options.jobFeedExtra,
          },
          logLevel: 'info',
          curve: curveOf('stratum'),
          ...(options.hostOf?.('stratum', id) !== undefined && bindOn('stratum', id)),
          adminTokenFile,
          ...(options.serviceTtlMs !== undefined && { serviceTtlMs: options.serviceTtlMs }),
          ...(options.solo && { solo: true }),
          ...options.stratumExtra,
        },
      });
    },
  };

  const kindOf = (id: string): Kind => {
    const service = running.get(id);
    if (!service) throw new Error(`no running service ${id}`);
    return service.kind;
  };

  const http = async <T>(kind: Kind, id: string, path: string) => {
    const info = await getService(redis, keys, kind, id);
    if (!info?.http) throw new Error(`${kind} ${id} is not registered with an http endpoint`);
    const response = await fetch(`${info.http}${path}`);
    return { status: response.status, body: (await response.json()) as T };
  };

  const pool: Pool = {
    prefix,
    keys,
    redis,
    ...(redisServer && { redisServer }),
    ...(cluster && { cluster }),
    ltc,
    front,
    account,
    payout,
    ...(feeAddress !== undefined && { feeAddress }),
    adminTokenFile,
    running,
    async startService(kind, id) {
      // Spawned as `kind`, so its kind is one of the pool's.
      const service = (await spawnService(kind, configs[kind](id), {
        ...(kind === 'stratum' && options.stratumMaster && { bin: stratumMasterBin }),
      })) as PoolService;
      // Every RPC connection of this pool is CURVE: a service that ran without would hide a gap.
      if (service.ready.curve !== true)
        throw new Error(`${id} started without CURVE: ${JSON.stringify(service.ready)}`);
      const incarnation = history.filter((h) => h.label.startsWith(`${id}#`)).length + 1;
      history.push({ label: `${id}#${incarnation}`, service });
      running.set(id, service);
      if (kind === 'stratum') ports.set(id, service.ready.port as number);
      return service;
    },
    async startServices(ids) {
      await Promise.all([
        ...ids.jobmanager.map((id) => pool.startService('jobmanager', id)),
        ...ids.reporter.map((id) => pool.startService('reporter', id)),
      ]);
      await Promise.all(ids.stratum.map((id) => pool.startService('stratum', id)));
      await Promise.all(
        [...ids.jobmanager, ...ids.reporter, ...ids.stratum].map((id) => pool.waitHealthy(id)),
      );
    },
    async stopService(id) {
      const service = running.get(id)!;
      service.child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const exit = await Promise.race([
        service.exited,
        new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), STOP_DEADLINE_MS);
        }),
      ]);
      clearTimeout(timer);
      running.delete(id);
      if (exit === 'timeout') {
        await killService(service);
        throw new Error(
          `${id} still running ${STOP_DEADLINE_MS} ms after SIGTERM; its log:\n${service.logs()}`,
        );
      }
      if (exit.code !== 0) {
        throw new Error(`${id} exited ${JSON.stringify(exit)} after SIGTERM; its log:\n${service.logs()}`);
      }
    },
    async waitHealthy(id, timeoutMs = 30_000) {
      const kind = kindOf(id);
      const stratumIds = () =>
        [...running.values()].filter((s) => s.kind === 'stratum').map((s) => s.ready.id);
      const reporterCount = () => [...running.values()].filter((s) => s.kind === 'reporter').length;
      const check = async (): Promise<boolean> => {
        if ((await http(kind, id, '/healthz')).status !== 200) return false;
        if (kind === 'stratum') {
          const server = (await backendServers(front)).find((s) => s.name === id);
          const stats = (await http<{ forwarder: { reporters: number } }>(kind, id, '/stats')).body;
          return !!server && isHealthy(server) && stats.forwarder.reporters === reporterCount();
        }
        if (kind === 'jobmanager') {
          const stats = (await http<{ subscribers: number }>(kind, id, '/stats')).body;
          return stats.subscribers === stratumIds().length;
        }
        // A reporter is back once every stratum server routes batches to it again.
        for (const sid of stratumIds()) {
          const stats = (await http<{ forwarder: { reporters: number } }>('stratum', sid, '/stats')).body;
          if (stats.forwarder.reporters !== reporterCount()) return false;
        }
        return true;
      };
      await waitFor(check, { timeoutMs, what: `${kind} ${id} back and healthy` }).catch((error: Error) => {
        throw new Error(`${error.message}; its log:\n${running.get(id)?.logs()}`);
      });
    },
    async startMiners({ tag, workers, firstAddress, hashesPerSecond, username }) {
      const miners = await startSimMiners({
        host: '127.0.0.1',
        port: front.port,
        workers,
        username: username ?? ((i) => `${account}.${tag}${i}`),
        localAddress: (i) => minerAddress(firstAddress + i),
        algorithm: 'scrypt',
        recordShares: true,
        hashesPerSecondLimit: hashesPerSecond,
      });
      const group: MinerGroup = {
        miners,
        extranonce1: miners.stats().workers.map((w) => w.extranonce1),
        reconnects: [],
        disconnects: [],
      };
      miners.on('reconnect', (event) => group.reconnects.push({ ...event, at: Date.now() }));
      miners.on('disconnect', (event) => group.disconnects.push({ ...event, at: Date.now() }));
      groups.push(group);
      return group;
    },
    http,
    logs: () =>
      [
        ...history.map(({ label, service }) => `--- ${label} (${service.kind}) ---\n${service.logs()}`),
        `--- haproxy (pid ${front.haproxy.pid}, follower ${JSON.stringify(front.follower.stats)}) ---`,
        existsSync(front.haproxy.logFile)
          ? readFileSync(front.haproxy.logFile, 'utf8').split('\n').slice(-50).join('\n')
          : '',
      ].join('\n'),
    async close() {
      await Promise.all(groups.map((g) => g.miners.stop()));
      await Promise.all([...running.values()].map(killService));
      redis.disconnect();
      await Promise.all([front.close(), ltc.stop(), redisServer?.stop(), cluster?.stop()]);
      for (const dir of spoolDirs.values()) rmSync(dir, { recursive: true, force: true });
      rmSync(keyDir, { recursive: true, force: true });
    },
  };
  return pool;
}

/**
 * The pool the operations tests start from, for the running test: two jobmanagers (jm-1, jm-2),
 * two reporters (rep-1, rep-2) and two stratum servers (st-1, st-2), all healthy. It is closed
 * when the test is over, after the logs of all its processes are printed if the test failed.
 */
export async function startTestPool(options: PoolOptions): Promise<Pool> {
  const pool = await startPool(options);
  onTestFinished(async ({ task }) => {
    if (task.result?.state === 'fail') console.error(pool.logs());
    await pool.close();
  });
  await pool.startServices({
    jobmanager: ['jm-1', 'jm-2'],
    reporter: ['rep-1', 'rep-2'],
    stratum: options.stratumIds ?? ['st-1', 'st-2'],
  });
  return pool;
}
