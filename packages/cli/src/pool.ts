import { join, resolve } from 'node:path';
import { addressToScript, getChainParams } from '@hashwire/chain';
import {
  type CircusRenderInput,
  type HaproxyRenderInput,
  type HaproxyServer,
  apiServerOf,
  haproxyServerFromService,
  haproxyServerName,
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

export const SERVICE_RUN_KINDS = ['jobmanager', 'stratum', 'reporter', 'api', 'payouts'] as const;
export type ServiceRunKind = (typeof SERVICE_RUN_KINDS)[number];
/** The kinds that speak ZeroMQ RPC, each with its own CURVE key pair under `rpc.curve`. */
export const RPC_KINDS = ['jobmanager', 'stratum', 'reporter'] as const;
export type RpcKind = (typeof RPC_KINDS)[number];
/** The kinds with `count` instances per chain; the others (the api) have `count` for the whole pool. */
const PER_CHAIN = new Set<ServiceRunKind>(RPC_KINDS);

/** The chains that pay (`chains[].payments`): each gets `payer.count` payers. */
export function payingChains(pool: PoolConfig): ChainConfig[] {
  return pool.chains.filter((chain) => chain.payments !== undefined);
}

/**
 * How many instances of `kind` the pool runs: `count` per chain, `count` per paying chain (the
 * payers), or `count` for a pool-wide kind.
 */
export function instanceCount(pool: PoolConfig, kind: ServiceRunKind): number {
  if (kind === 'payouts') return pool.payer.count * payingChains(pool).length;
  return pool[kind].count * (PER_CHAIN.has(kind) ? pool.chains.length : 1);
}

/** One service instance of the pool and the JSON config its bin reads. */
export interface ServiceConfig {
  kind: ServiceRunKind;
  /**
   * `<kind>-<chain>-<k>`, k from 1 within the chain (`api-<k>` for the pool-wide api): stable
   * for the instance across restarts.
   */
  id: string;
  /** 1 to `count × chains` within the kind, chain by chain (Circus's `$(circus.wid)`); 1 to `count` for the api. */
  instance: number;
  /** '' for the api, which serves every chain. */
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
    const payments = chain.payments;
    if (payments?.scheme === 'solo') {
      // Paid in the coinbase: the fee output needs an address of the chain, not an account.
      if (payments.feeAddress === undefined) {
        if (payments.feePercent > 0) {
          issues.push({
            path: `chains[${i}].payments.feeAddress`,
            message: 'SOLO pays the pool fee in the coinbase: give the address it goes to',
          });
        }
      } else {
        try {
          addressToScript(payments.feeAddress, params);
        } catch (error) {
          issues.push({ path: `chains[${i}].payments.feeAddress`, message: (error as Error).message });
        }
      }
    }
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
function curveFields(pool: PoolConfig, kind: RpcKind): Record<string, unknown> {
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
    .filter((kind): kind is RpcKind => PER_CHAIN.has(kind))
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
    ...(chain.payments?.scheme === 'solo' && {
      solo: {
        feePercent: chain.payments.feePercent,
        ...(chain.payments.feeAddress !== undefined && { feeAddress: chain.payments.feeAddress }),
      },
    }),
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
    ...(chain.payments?.scheme === 'solo' && { solo: true }),
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
    shareWindow: chain.payments?.scheme === 'pplns',
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

/** What an api instance runs with: every chain (with its algorithm), its own listener, the pool's Redis. */
function apiConfig(pool: PoolConfig, id: string): Record<string, unknown> {
  const { api } = pool;
  return {
    id,
    chains: pool.chains.map((chain) => ({
      chain: chain.id,
      algorithm: getChainParams(chain.coin, chain.network).algorithm,
      payments: chain.payments
        ? { scheme: chain.payments.scheme, minimumPayoutSat: chain.payments.minimumPayoutSat }
        : null,
    })),
    ...redisFields(pool),
    host: api.host,
    port: api.portRange,
    advertiseHost: api.advertiseHost,
    openGroups: api.openGroups,
    trustProxy: api.trustedProxies,
    maxBodyBytes: api.maxBodyBytes,
    tokenCacheMs: api.tokenCacheMs,
    rateLimit: api.rateLimit.enabled ? { max: api.rateLimit.max, windowMs: api.rateLimit.windowMs } : false,
    watches: api.watches,
    stream: api.stream,
    serviceTtlMs: pool.discovery.serviceTtlMs,
    httpPortRange: pool.http.portRange,
    httpHost: pool.http.host,
    adminTokenFile: pool.http.adminTokenFile,
    ...(pool.haproxy.statsSocket !== undefined && { haproxyStatsSocket: pool.haproxy.statsSocket }),
    // What the dashboard tells miners: HAProxy's public stratum addresses, when HAProxy runs.
    ...(pool.haproxy.enabled && {
      stratumFronts: chainFronts(pool).flatMap((f) => [
        { chain: f.chain, scheme: 'stratum+tcp', bind: f.bind },
        ...(f.tlsBind !== undefined ? [{ chain: f.chain, scheme: 'stratum+ssl', bind: f.tlsBind }] : []),
      ]),
    }),
    logLevel: api.logLevel ?? pool.log.level,
    ...statsd(pool),
  };
}

/**
 * The payer's JSON config (`packages/payouts/dist/bin.js`) for a chain with `payments`: its
 * wallet is `payments.wallet` on daemon `payments.walletDaemon`; a block's reward is what its
 * coinbase pays to the chain's `payouts` addresses.
 */
export function payoutsConfig(
  pool: PoolConfig,
  chain: ChainConfig,
  id = `payouts-${chain.id}-1`,
): Record<string, unknown> | null {
  const p = chain.payments;
  if (!p) return null;
  const daemon = chain.daemons[p.walletDaemon] ?? chain.daemons[0];
  if (!daemon) return null;
  const base = daemon.url.endsWith('/') ? daemon.url : `${daemon.url}/`;
  const { walletDaemon: _d, wallet, leaseTtlMs, ...payments } = p;
  return {
    id,
    chain: chain.id,
    coin: chain.coin,
    network: chain.network,
    ...redisFields(pool),
    wallet: { ...daemon, url: wallet ? `${base}wallet/${wallet}` : daemon.url },
    payments,
    rewardAddresses: chain.payouts.map((o) => o.address),
    leaseTtlMs,
    maturityPollMs: pool.reporter.blockPollMs,
    eventsMaxLen: pool.reporter.eventsMaxLen,
    serviceTtlMs: pool.discovery.serviceTtlMs,
    httpPortRange: pool.http.portRange,
    httpHost: pool.http.host,
    adminTokenFile: pool.http.adminTokenFile,
    logLevel: pool.log.level,
    ...statsd(pool),
  };
}

const BUILDERS: Record<
  RpcKind,
  (pool: PoolConfig, chain: ChainConfig, id: string) => Record<string, unknown>
> = {
  jobmanager: jobmanagerConfig,
  stratum: stratumConfig,
  reporter: reporterConfig,
};

/**
 * Every service instance of the pool: for each kind, `count` per chain, numbered chain by chain;
 * payers (`payer.count`) only for the chains with `payments`, numbered among those.
 * Throws ConfigError when a chain's coin, network or payout address is wrong, or Redis is not a URL.
 */
export function serviceConfigs(pool: PoolConfig): ServiceConfig[] {
  const issues = checkPoolForServices(pool);
  if (issues.length > 0) throw new ConfigError(issues);
  const services: ServiceConfig[] = [];
  for (const kind of RPC_KINDS) {
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
  payingChains(pool).forEach((chain, c) => {
    const count = pool.payer.count;
    for (let k = 1; k <= count; k++) {
      const id = `payouts-${chain.id}-${k}`;
      const config = payoutsConfig(pool, chain, id);
      if (config) services.push({ kind: 'payouts', id, instance: c * count + k, chain: chain.id, config });
    }
  });
  for (let k = 1; k <= pool.api.count; k++) {
    const id = `api-${k}`;
    services.push({ kind: 'api', id, instance: k, chain: '', config: apiConfig(pool, id) });
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

/** `http://host:port` of the API at HAProxy (`api.bind`; a wildcard or empty host shown as 127.0.0.1). */
export function apiPublicUrl(pool: PoolConfig): string {
  const { bind, port } = bindOf(pool.api.bind);
  const host = bind === '' || bind === '0.0.0.0' || bind === '::' ? '127.0.0.1' : bind;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The api's HTTP frontend and backend at HAProxy, with the live api instances that take requests. */
export function haproxyApiRoute(
  pool: PoolConfig,
  liveServices: readonly ServiceInfo[],
): NonNullable<HaproxyRenderInput['api']> {
  const h = pool.haproxy;
  const front = bindOf(pool.api.bind);
  return {
    frontend: { name: 'api_in', bind: front.bind, port: front.port },
    backend: { name: pool.api.backend, check: { intervalMs: h.checkIntervalMs, rise: h.rise, fall: h.fall } },
    servers: liveServices
      .filter((s) => s.kind === 'api' && s.state !== 'draining')
      .map((s) => apiServerOf(s, haproxyServerName(s.id)))
      .filter((s) => s !== null),
  };
}

/**
 * The HAProxy render input: per chain, a frontend on the chain's public addresses and a
 * backend of that chain's stratum servers among `liveServers` that take miners (draining ones
 * do not). The first chain keeps the unnamed defaults (`stratum_in`, `haproxy.backend`). With
 * api instances (`api.count`), the api's HTTP frontend on `api.bind` and its backend.
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
    ...(pool.api.count > 0 && { api: haproxyApiRoute(pool, liveServers) }),
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

/**
 * The Circus render input: a watcher per kind, `count × chains` processes of `hashwire run`
 * (payers: `payer.count` × the chains with payments, no watcher when none pays).
 */
export function circusRenderInput(pool: PoolConfig, paths: CircusPaths): CircusRenderInput {
  const sets = (paths.sets ?? []).flatMap((set) => ['--set', set]);
  return {
    // Absolute: circusd opens each watcher's log file from its own working directory, not the
    // watcher's, so a relative path would depend on where circusd was started.
    workingDir: resolve(pool.circus.workingDir),
    logDir: resolve(pool.circus.logDir),
    // A pool without a chain that pays has no payer watcher (rather than one of 0 processes).
    watchers: SERVICE_RUN_KINDS.filter((kind) => kind !== 'payouts' || instanceCount(pool, kind) > 0).map(
      (kind) => ({
        kind,
        cmd: [paths.node ?? process.execPath, paths.cli, 'run', kind, '--config', paths.config, ...sets]
          .map(shellWord)
          .concat('--instance', '$(circus.wid)')
          .join(' '),
        numprocesses: instanceCount(pool, kind),
        gracefulTimeoutSec: pool.circus.gracefulTimeoutS[kind],
      }),
    ),
  };
}
