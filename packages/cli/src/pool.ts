import { join } from 'node:path';
import { addressToScript, getChainParams } from '@hashwire/chain';
import {
  type CircusRenderInput,
  type HaproxyRenderInput,
  type HaproxyServer,
  haproxyServerFromService,
} from '@hashwire/confgen';
import {
  type ChainConfig,
  ConfigError,
  type PoolConfig,
  type PoolConfigIssue,
  type StatsdOptions,
  chainFronts,
} from '@hashwire/core';
import { type RedisConfig, type ServiceInfo, describeRedisConfig } from '@hashwire/registry';

/*
 * From the pool config to what each process runs with: the JSON options of every service
 * instance (what `hashwire run` hands to a bin), and the inputs of the HAProxy and Circus renderers.
 */

export const SERVICE_RUN_KINDS = ['jobmanager', 'stratum', 'reporter'] as const;
export type ServiceRunKind = (typeof SERVICE_RUN_KINDS)[number];

/** One service instance of the pool and the JSON config its bin reads. */
export interface ServiceConfig {
  kind: ServiceRunKind;
  /** `<kind>-<chain>-<k>`, k from 1 within the chain: stable for the instance across restarts. */
  id: string;
  /** 1 to `count × chains` within the kind, chain by chain (Circus's `$(circus.wid)`). */
  instance: number;
  chain: string;
  config: Record<string, unknown>;
}

/** How the services reach Redis, as registry's `connectRedis` takes it. */
export function poolRedis(pool: PoolConfig): RedisConfig {
  const { url, sentinel, cluster } = pool.redis;
  if (sentinel) {
    return {
      name: sentinel.name,
      sentinels: sentinel.sentinels,
      ...(sentinel.password !== undefined && { password: sentinel.password }),
      ...(sentinel.sentinelPassword !== undefined && { sentinelPassword: sentinel.sentinelPassword }),
      ...(sentinel.db !== undefined && { db: sentinel.db }),
    };
  }
  if (cluster) {
    return {
      cluster: cluster.nodes,
      ...(cluster.password !== undefined && { options: { redisOptions: { password: cluster.password } } }),
    };
  }
  return url as string;
}

/** Where the pool's Redis is (a URL with its password hidden, the sentinels or the cluster nodes), for messages. */
export function redisLabel(pool: PoolConfig): string {
  return describeRedisConfig(poolRedis(pool));
}

/**
 * What the schema cannot know: the coin and network exist in `@hashwire/chain` and every payout
 * address belongs to them, so a typo in an address stops `config check`, not a jobmanager at start.
 */
export function checkPoolForServices(pool: PoolConfig): PoolConfigIssue[] {
  const issues: PoolConfigIssue[] = [];
  pool.chains.forEach((chain, i) => {
    let params: ReturnType<typeof getChainParams>;
    try {
      params = getChainParams(chain.coin, chain.network);
    } catch (error) {
      issues.push({ path: `chains[${i}].coin`, message: (error as Error).message });
      return;
    }
    chain.payouts.forEach((payout, j) => {
      try {
        addressToScript(payout.address, params);
      } catch (error) {
        issues.push({
          path: `chains[${i}].payouts[${j}].address`,
          message: (error as Error).message,
        });
      }
    });
  });
  return issues;
}

function statsd(pool: PoolConfig): { statsd?: StatsdOptions } {
  if (!pool.statsd.enabled) return {};
  const { host, port, prefix, tagFormat, tags } = pool.statsd;
  return { statsd: { host, port, prefix, tagFormat, tags } };
}

function redisFields(pool: PoolConfig): Record<string, unknown> {
  const redis = poolRedis(pool);
  return typeof redis === 'string'
    ? { redisUrl: redis, keyPrefix: pool.redis.keyPrefix }
    : { redis, keyPrefix: pool.redis.keyPrefix };
}

/** The public keys the pool's RPC servers let in: every service kind's, and any extra ones. */
export function allowedClientKeys(pool: PoolConfig): string[] {
  const curve = pool.rpc.curve;
  if (!curve) return [];
  const keys = [
    curve.jobmanager.publicKey,
    curve.stratum.publicKey,
    curve.reporter.publicKey,
    ...curve.allowedClientKeys,
  ];
  return [...new Set(keys)];
}

/**
 * A service's CURVE settings from `rpc.curve`: its kind's public key, the file of its secret key
 * and, for the RPC servers (jobmanager, reporter), the keys they let in. None without `rpc.curve`.
 */
function curveFields(pool: PoolConfig, kind: ServiceRunKind): Record<string, unknown> {
  const curve = pool.rpc.curve;
  if (!curve) return {};
  const own = curve[kind];
  return {
    curve: {
      publicKey: own.publicKey,
      ...(own.secretKeyFile !== undefined && { secretKeyFile: own.secretKeyFile }),
      ...(kind !== 'stratum' && { allowedClientKeys: allowedClientKeys(pool) }),
    },
  };
}

/** What the hosts running `kinds` need besides the schema: each kind's CURVE secret key file. */
export function checkPoolSecrets(pool: PoolConfig, kinds: readonly ServiceRunKind[]): PoolConfigIssue[] {
  const curve = pool.rpc.curve;
  if (!curve) return [];
  return kinds
    .filter((kind) => pool[kind].count > 0 && curve[kind].secretKeyFile === undefined)
    .map((kind) => ({
      path: `rpc.curve.${kind}.secretKeyFile`,
      message: `needed to run ${kind === 'stratum' ? 'stratum servers' : `${kind}s`} with CURVE: the file hashwire keys wrote (${kind}.key)`,
    }));
}

function daemons(chain: ChainConfig) {
  return chain.daemons.map((d) => ({ ...d }));
}

function jobmanagerConfig(pool: PoolConfig, chain: ChainConfig, id: string): Record<string, unknown> {
  const { jobmanager: jm, stratum, rpc } = pool;
  return {
    id,
    coin: chain.coin,
    network: chain.network,
    chain: chain.id,
    daemons: daemons(chain),
    payouts: chain.payouts.map((p) => ({ ...p })),
    poolTag: chain.poolTag,
    extranonce1Size: stratum.extranonce1Size,
    extranonce2Size: stratum.extranonce2Size,
    ...redisFields(pool),
    host: rpc.host,
    rpcPortRange: rpc.portRange,
    heartbeatIntervalMs: rpc.heartbeatIntervalMs,
    leaseTtlMs: jm.leaseTtlMs,
    serviceTtlMs: pool.discovery.serviceTtlMs,
    pollIntervalMs: jm.pollIntervalMs,
    refreshIntervalMs: jm.refreshIntervalMs,
    templateGraceMs: jm.templateGraceMs,
    jobTtlMs: jm.jobTtlMs,
    blocknotify: chain.blocknotify,
    longpoll: chain.longpoll,
    zmqHashblock: chain.zmqHashblock,
    logLevel: pool.log.level,
    httpPortRange: pool.http.portRange,
    httpHost: pool.http.host,
    adminTokenFile: pool.http.adminTokenFile,
    ...curveFields(pool, 'jobmanager'),
    ...statsd(pool),
  };
}

function stratumConfig(pool: PoolConfig, chain: ChainConfig, id: string): Record<string, unknown> {
  const s = pool.stratum;
  const heartbeatIntervalMs = pool.rpc.heartbeatIntervalMs;
  return {
    id,
    chain: chain.id,
    coin: chain.coin,
    network: chain.network,
    ...redisFields(pool),
    // Per instance, so a restart of the same instance replays what it left.
    spoolDir: join(s.spoolDir, id),
    host: s.host,
    port: s.portRange,
    advertiseHost: s.advertiseHost,
    ...(s.agentPortRange && { agentPortRange: s.agentPortRange }),
    extranonce1Size: s.extranonce1Size,
    extranonce2Size: s.extranonce2Size,
    versionMask: s.versionMask,
    ntimeMaxAheadSeconds: s.ntimeMaxAheadSeconds,
    sessionTtlMs: s.sessionTtlMs,
    spoolRejectedShares: s.spoolRejectedShares,
    trustedProxies: s.trustedProxies,
    vardiff: s.vardiff,
    limits: s.limits,
    drain: s.drain,
    daemonLoss: {
      graceMs: s.daemonLoss.graceMs,
      ...(s.daemonLoss.reconnectTo && { reconnectTo: s.daemonLoss.reconnectTo }),
    },
    spool: s.spool,
    jobFeed: {
      heartbeatIntervalMs,
      daemonGraceMs: s.daemonLoss.daemonGraceMs,
      // A leader sends a job at least every refreshIntervalMs: one older than a refresh plus the
      // grace was not refreshed by anyone, whatever the jobmanagers report.
      maxJobAgeMs: pool.jobmanager.refreshIntervalMs + s.daemonLoss.daemonGraceMs,
    },
    // The forwarder quarantines rather than resends what reporters may have forgotten.
    forwarder: { ...s.forwarder, heartbeatIntervalMs, batchTtlS: pool.reporter.batchTtlS },
    ring: s.ring,
    flushTimeoutMs: s.flushTimeoutMs,
    serviceTtlMs: pool.discovery.serviceTtlMs,
    logLevel: pool.log.level,
    httpPortRange: pool.http.portRange,
    httpHost: pool.http.host,
    adminTokenFile: pool.http.adminTokenFile,
    ...curveFields(pool, 'stratum'),
    ...statsd(pool),
  };
}

function reporterConfig(pool: PoolConfig, chain: ChainConfig, id: string): Record<string, unknown> {
  const { reporter: r, rpc } = pool;
  return {
    id,
    chain: chain.id,
    ...redisFields(pool),
    daemons: daemons(chain),
    confirmations: chain.confirmations,
    blockPollMs: r.blockPollMs,
    candidateMaxAgeMs: r.candidateMaxAgeMs,
    batchTtlS: r.batchTtlS,
    maxBatchShares: r.maxBatchShares,
    shareLogMaxBatches: r.shareLogMaxBatches,
    shareLogRetentionS: r.shareLogRetentionS,
    eventsMaxLen: r.eventsMaxLen,
    replication: { replicas: r.replicas, timeoutMs: r.replicaWaitMs },
    host: rpc.host,
    rpcPortRange: rpc.portRange,
    heartbeatIntervalMs: rpc.heartbeatIntervalMs,
    serviceTtlMs: pool.discovery.serviceTtlMs,
    httpPortRange: pool.http.portRange,
    httpHost: pool.http.host,
    adminTokenFile: pool.http.adminTokenFile,
    ...curveFields(pool, 'reporter'),
    logLevel: pool.log.level,
    ...statsd(pool),
  };
}

const BUILDERS: Record<
  ServiceRunKind,
  (pool: PoolConfig, chain: ChainConfig, id: string) => Record<string, unknown>
> = {
  jobmanager: jobmanagerConfig,
  stratum: stratumConfig,
  reporter: reporterConfig,
};

/**
 * Every service instance of the pool: for each kind, `count` per chain, numbered chain by chain.
 * Throws ConfigError when a chain's coin, network or payout address is wrong, or Redis is not a URL.
 */
export function serviceConfigs(pool: PoolConfig): ServiceConfig[] {
  const issues = checkPoolForServices(pool);
  if (issues.length > 0) throw new ConfigError(issues);
  const services: ServiceConfig[] = [];
  for (const kind of SERVICE_RUN_KINDS) {
    const count = pool[kind].count;
    pool.chains.forEach((chain, c) => {
      for (let k = 1; k <= count; k++) {
        const id = `${kind}-${chain.id}-${k}`;
        services.push({
          kind,
          id,
          instance: c * count + k,
          chain: chain.id,
          config: BUILDERS[kind](pool, chain, id),
        });
      }
    });
  }
  return services;
}

/** The `host:port` / `:port` of the config as an address and a port. */
function bindOf(bind: string): { bind: string; port: number } {
  const colon = bind.lastIndexOf(':');
  return { bind: bind.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: Number(bind.slice(colon + 1)) };
}

/** The HAProxy backend of each chain: `haproxy.backend` for the first, `<backend>-<chain>` for the others. */
export function haproxyBackends(pool: PoolConfig): { chain: string; backend: string }[] {
  return pool.chains.map((chain, i) => ({
    chain: chain.id,
    backend: i === 0 ? pool.haproxy.backend : `${pool.haproxy.backend}-${chain.id}`,
  }));
}

/**
 * The HAProxy render input: per chain, a frontend on the chain's public addresses and a
 * backend of that chain's stratum servers among `liveServers` that take miners (draining ones
 * do not). The first chain keeps the unnamed defaults (`stratum_in`, `haproxy.backend`).
 */
export function haproxyRenderInput(
  pool: PoolConfig,
  liveServers: readonly ServiceInfo[],
): HaproxyRenderInput {
  const h = pool.haproxy;
  const check = {
    intervalMs: h.checkIntervalMs,
    rise: h.rise,
    fall: h.fall,
    agentIntervalMs: h.checkIntervalMs,
  };
  const backends = new Map(haproxyBackends(pool).map((b) => [b.chain, b.backend]));
  const routes = chainFronts(pool).map((front, i) => {
    const servers = liveServers
      // A server that registered no chain is taken as the first chain's (an older stratum bin).
      .filter((s) => s.kind === 'stratum' && (s.chain ? s.chain === front.chain : i === 0))
      .map(haproxyServerFromService)
      .filter((s): s is HaproxyServer => s !== null);
    const listen = bindOf(front.bind);
    return {
      frontend: {
        name: i === 0 ? 'stratum_in' : `stratum_in-${front.chain}`,
        bind: listen.bind,
        port: listen.port,
        ...(front.tlsBind !== undefined &&
          h.tls && { tls: { ...bindOf(front.tlsBind), certificate: h.tls.certFile } }),
      },
      backend: { name: backends.get(front.chain) ?? h.backend, check },
      servers,
    };
  });
  const [first, ...more] = routes;
  return {
    statsSocket: h.statsSocket,
    ...(h.maxconn !== undefined && { maxconn: h.maxconn }),
    ...(first && { frontend: first.frontend, backend: first.backend, servers: first.servers }),
    ...(more.length > 0 && { routes: more }),
    ...(h.statsBind && { statsPage: bindOf(h.statsBind) }),
  };
}

export interface CircusPaths {
  /** The node executable. @defaultValue process.execPath */
  node?: string;
  /** The hashwire CLI entry (`packages/cli/dist/bin.js`). */
  cli: string;
  /** The pool config file every watcher runs with (absolute). */
  config: string;
  /** `--set` overrides to pass on. @defaultValue [] */
  sets?: readonly string[];
}

/** A word as a POSIX shell (and Circus's shlex) reads it back. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'"'"'`)}'`;
}

/** The Circus render input: a watcher per kind, `count × chains` processes of `hashwire run`. */
export function circusRenderInput(pool: PoolConfig, paths: CircusPaths): CircusRenderInput {
  const sets = (paths.sets ?? []).flatMap((set) => ['--set', set]);
  return {
    workingDir: pool.circus.workingDir,
    logDir: pool.circus.logDir,
    watchers: SERVICE_RUN_KINDS.map((kind) => ({
      kind,
      cmd: [paths.node ?? process.execPath, paths.cli, 'run', kind, '--config', paths.config, ...sets]
        .map(shellWord)
        .concat('--instance', '$(circus.wid)')
        .join(' '),
      numprocesses: pool[kind].count * pool.chains.length,
      gracefulTimeoutSec: pool.circus.gracefulTimeoutS[kind],
    })),
  };
}
