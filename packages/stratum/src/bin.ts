#!/usr/bin/env node
// Thin entry: reads the options as JSON (HASHWIRE_STRATUM_CONFIG, or a file path as the first
// argument) and runs one stratum server with its share path: the spool opened here is the
// server's share sink and the forwarder's source, so a batch leaves the disk only when a
// reporter has acknowledged it, and a restart with the same spoolDir replays what was left.
// Prints one `ready` line on stdout; SIGTERM/SIGINT drain (miners sent away, spool flushed to
// reporters) and exit 0; a bad config exits 1 with one line naming the field. The operations
// issue replaces the config reading with the pool-wide loader.
import { type ChainParams, getChainParams } from '@hashwire/chain';
import {
  LOG_LEVELS,
  type LogLevel,
  StartupError,
  type StatsdOptions,
  type StatusServer,
  createLogger,
  createMetrics,
  isWildcardHost,
  packageVersion,
  readJsonConfig,
  readServiceSecrets,
} from '@hashwire/core';
import { type BucketRingOptions, SHARES_WIRE, createKeyBuilder } from '@hashwire/protocol';
import {
  type ServiceRegistration,
  connectRedis,
  describeRedisConfig,
  registerService,
  serviceRedisConfig,
} from '@hashwire/registry';
import { type ServiceCurve, checkServiceCurve } from '@hashwire/rpc';
import { advertisedEndpoint, agentWordFor, startAgentCheck } from './agent.js';
import { createStratumServer } from './create.js';
import type { ShareForwarderOptions } from './forwarder-options.js';
import { ShareForwarder } from './forwarder.js';
import { JobFeed, type JobFeedOptions } from './job-feed.js';
import { observeStratum } from './observe.js';
import { type ResolvedStratumOptions, type StratumServerOptions, resolveStratumOptions } from './options.js';
import { ShareSpool } from './spool.js';
import { followDaemonHealth } from './suspend.js';

type ServerFileOptions = Omit<
  StratumServerOptions,
  'redis' | 'keys' | 'jobs' | 'blockSink' | 'shareSink' | 'params' | 'logger' | 'spoolDir'
>;

/** The JSON config. */
export interface StratumFileOptions extends ServerFileOptions {
  /** With `network`, picks the chain parameters (`getChainParams`), e.g. `litecoin` / `main`. */
  coin: string;
  network: string;
  /** Or `redis`: ioredis options, e.g. Sentinel. */
  redisUrl?: string;
  redis?: unknown;
  /** @defaultValue 'hw:' */
  keyPrefix?: string;
  /** This instance's spool; keep it across restarts of the same `id`. */
  spoolDir: string;
  /**
   * `daemonGraceMs` (default 60000): how long miners keep the last job once no jobmanager has a
   * coin daemon; `maxJobAgeMs` (default 90000): the oldest job they are kept on, whatever the
   * jobmanagers say. Past either, they are sent away as `daemonLoss` says, and taken back when
   * fresh work comes.
   */
  jobFeed?: Omit<JobFeedOptions, 'redis' | 'keys' | 'chain' | 'stratumId'>;
  forwarder?: Omit<
    ShareForwarderOptions,
    'spool' | 'redis' | 'keys' | 'stratumId' | 'chain' | 'ring' | 'logger' | 'now'
  >;
  /** Bucket layout of the reporter ring; the same on every stratum server. */
  ring?: BucketRingOptions;
  /** How long SIGTERM waits for reporters to take the spool before exiting anyway (it stays on disk). @defaultValue 30000 */
  flushTimeoutMs?: number;
  /** @defaultValue 60000 */
  serviceTtlMs?: number;
  /** @defaultValue this package's version, with the git commit when run from a checkout */
  version?: string;
  /** @defaultValue 'info' */
  logLevel?: LogLevel;
  /** statsd mirror of the metrics. */
  statsd?: StatsdOptions;
  /** `/healthz`, `/stats`, `/metrics`: first free port of this range. @defaultValue [29000, 29999] */
  httpPortRange?: [number, number];
  /**
   * Address of the HTTP `/healthz`, `/stats`, `/metrics` (and `POST /drain`) server; loopback
   * unless told otherwise (pool config `http.host`). @defaultValue '127.0.0.1'
   */
  httpHost?: string;
  /**
   * Address HAProxy reaches this server at, registered in its `stratum` and `agent` endpoints.
   * @defaultValue `host` when it is one address, else '127.0.0.1'
   */
  advertiseHost?: string;
  /** HAProxy agent-check listener: first free port of this range. @defaultValue the miner port range */
  agentPortRange?: [number, number];
  /**
   * CURVE: this stratum server's `publicKey` and `secretKeyFile` (or `secretKey`), used to call
   * jobmanagers and reporters that publish a `curveKey`.
   */
  curve?: { publicKey: string; secretKeyFile?: string; secretKey?: string };
  /** File holding the token `POST /drain` needs (or `adminToken`); without one `/drain` is refused. */
  adminTokenFile?: string;
  adminToken?: string;
  /**
   * On SIGTERM, how long the server announces its drain (registry `draining`, agent `drain`)
   * before it closes its listener and sends miners away: HAProxy must have stopped routing new
   * connections here by then, or the miners sent away are routed straight back to the closed
   * listener and dropped. Cover the agent check interval. @defaultValue 1000
   */
  drainAnnounceMs?: number;
}

function readConfig(): StratumFileOptions {
  const record = readJsonConfig({
    envVar: 'HASHWIRE_STRATUM_CONFIG',
    ...(process.argv[2] ? { file: process.argv[2] } : {}),
    requiredText: ['id', 'chain', 'coin', 'network', 'spoolDir'],
  });
  if (record.logLevel !== undefined && !LOG_LEVELS.includes(record.logLevel as LogLevel)) {
    throw new StartupError(`logLevel must be one of ${LOG_LEVELS.join(', ')}`);
  }
  return record as unknown as StratumFileOptions;
}

function chainParams(config: StratumFileOptions): ChainParams {
  try {
    return getChainParams(config.coin, config.network);
  } catch (error) {
    throw new StartupError(`coin/network: ${(error as Error).message}`);
  }
}

async function main(): Promise<number> {
  const config = readConfig();
  const params = chainParams(config);
  const logger = createLogger({
    name: 'stratum',
    level: config.logLevel ?? 'info',
    base: { id: config.id, chain: config.chain },
    destination: process.stderr,
  });
  const {
    coin: _coin,
    network: _network,
    redisUrl: _url,
    redis: _redis,
    keyPrefix,
    spoolDir,
    jobFeed: feedOptions,
    forwarder: forwarderOptions,
    ring,
    flushTimeoutMs = 30_000,
    serviceTtlMs,
    version,
    logLevel: _logLevel,
    spool: spoolOptions,
    statsd,
    httpPortRange,
    httpHost,
    advertiseHost,
    agentPortRange,
    drainAnnounceMs = 1000,
    curve: _curve,
    adminTokenFile: _adminTokenFile,
    adminToken: _adminToken,
    ...serverOptions
  } = config;
  const secrets = readServiceSecrets(config as unknown as Record<string, unknown>);
  const serviceVersion = version ?? packageVersion(import.meta.url);
  let curve: ServiceCurve | undefined;
  try {
    curve = secrets.curve ? checkServiceCurve('curve', secrets.curve) : undefined;
  } catch (error) {
    throw new StartupError((error as Error).message);
  }
  if (!Number.isInteger(drainAnnounceMs) || drainAnnounceMs < 0) {
    throw new StartupError(
      `drainAnnounceMs must be a whole number of milliseconds (0 or more), got ${drainAnnounceMs}`,
    );
  }
  let resolved: ResolvedStratumOptions;
  try {
    // Checked before anything is opened, so a bad value is reported by its field name.
    resolved = resolveStratumOptions({ ...serverOptions, params } as StratumServerOptions);
  } catch (error) {
    throw new StartupError((error as Error).message);
  }
  for (const key of ['daemonGraceMs', 'maxJobAgeMs', 'silenceMs', 'blockRetryMs'] as const) {
    const value = feedOptions?.[key];
    if (value !== undefined && (!Number.isInteger(value) || value <= 0)) {
      throw new StartupError(`jobFeed.${key} must be a positive number of milliseconds, got ${value}`);
    }
  }
  let redisConfig: ReturnType<typeof serviceRedisConfig>;
  try {
    redisConfig = serviceRedisConfig(config);
  } catch (error) {
    throw new StartupError((error as Error).message);
  }
  const redis = connectRedis(redisConfig, `stratum-${config.id}`);
  try {
    await redis.ping();
  } catch (error) {
    redis.disconnect();
    throw new StartupError(
      `redis: cannot reach ${describeRedisConfig(redisConfig)}: ${(error as Error).message}`,
    );
  }
  const keys = createKeyBuilder({ prefix: keyPrefix ?? 'hw:' });
  const cleanup: (() => Promise<unknown> | unknown)[] = [() => redis.disconnect()];
  const unwind = async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  };

  // SIGTERM, SIGINT and POST /drain all start the same drain.
  let requestStop = () => {};
  let stopping = false;
  /** Sets `hashwire_draining` (once the metrics exist). */
  let markDraining = () => {};
  const stopRequested = new Promise<void>((resolve) => {
    requestStop = resolve;
  });
  let registration: ServiceRegistration;
  let forwarder: ShareForwarder;
  let feed: JobFeed;
  let server: Awaited<ReturnType<typeof createStratumServer>>;
  let http: StatusServer;
  try {
    // Replays what a previous process of this id left: its batches keep their ids, so a
    // reporter that credited one before the kill answers the resend as a duplicate.
    const spool = await ShareSpool.open({ dir: spoolDir, ...spoolOptions });
    spool.on('error', (error) => logger.error({ err: error }, 'stratum: spool write failed'));
    cleanup.push(() => spool.close());

    // Before the forwarder: it may quarantine a batch of the replayed spool as it starts.
    const metrics = createMetrics({
      service: 'stratum',
      id: config.id,
      chain: config.chain,
      version: serviceVersion,
      hashesPerDiff: 2 ** 32 / params.shareDiffMultiplier,
      ...(statsd ? { statsd } : {}),
    });
    cleanup.push(() => metrics.close());
    metrics.draining(false);
    markDraining = () => metrics.draining(true);

    feed = new JobFeed({
      ...feedOptions,
      redis,
      keys,
      chain: config.chain,
      stratumId: config.id,
      ...(curve ? { curve } : {}),
    });
    feed.on('error', (error) => logger.warn({ err: error }, 'stratum: job feed error'));
    feed.on('unhealthy', (event) => logger.error(event, 'stratum: no fresh work from any jobmanager'));
    feed.on('healthy', () => logger.info('stratum: fresh work again'));
    cleanup.push(() => feed.close());
    await feed.start();

    forwarder = new ShareForwarder({
      ...forwarderOptions,
      ...(ring ? { ring } : {}),
      spool,
      redis,
      keys,
      stratumId: config.id,
      chain: config.chain,
      logger,
      ...(curve ? { curve } : {}),
    });
    forwarder.on('error', () => {}); // logged by the forwarder itself
    forwarder.on('quarantined', (event) => metrics.quarantined(event.reason));
    cleanup.push(() => forwarder.close());
    await forwarder.start();

    server = await createStratumServer({
      ...serverOptions,
      params,
      redis,
      keys,
      jobs: feed,
      blockSink: feed,
      shareSink: { append: (share) => spool.append(share), close: () => spool.close() },
      logger,
    });
    server.on('error', (error) => logger.error({ err: error }, 'stratum: server error'));
    cleanup.push(() => server.close());
    await server.start();
    // No daemon for jobFeed.daemonGraceMs: miners are sent away (daemonLoss), and taken back later.
    cleanup.push(followDaemonHealth(feed, server));

    const backlog = setInterval(() => metrics.spoolBacklog(forwarder.stats().backlogBatches), 1000);
    backlog.unref();
    cleanup.push(() => clearInterval(backlog));
    http = await observeStratum({
      server,
      metrics,
      feed,
      ...(httpPortRange ? { httpPortRange } : {}),
      ...(httpHost ? { host: httpHost } : {}),
      // A wildcard HTTP host is published as the address HAProxy reaches this server at.
      ...(advertiseHost || !isWildcardHost(resolved.host)
        ? { advertiseHost: advertiseHost ?? resolved.host }
        : {}),
      extraStats: () => ({
        version: serviceVersion,
        spool: spool.stats(),
        forwarder: forwarder.stats(),
        jobs: feed.stats,
      }),
      onDrain: () => requestStop(),
      ...(secrets.adminToken ? { adminToken: secrets.adminToken } : {}),
    });
    cleanup.push(() => http.close());
    // HAProxy's agent check asks the server itself: up, drain while draining, down while suspended.
    const agent = await startAgentCheck({
      host: resolved.host,
      // A single configured miner port leaves none for the agent: then any free port.
      ports: agentPortRange ?? (resolved.ports[0] < resolved.ports[1] ? resolved.ports : [0, 0]),
      status: () => (stopping ? 'drain' : agentWordFor(server.stats())),
    });
    cleanup.push(() => agent.close());

    registration = await registerService({
      redis,
      keys,
      kind: 'stratum',
      id: config.id,
      chain: config.chain,
      // Miners (through HAProxy) at stratum; /healthz, /stats and /metrics at http.
      stratum: advertisedEndpoint(resolved.host, server.port, advertiseHost),
      agent: advertisedEndpoint(resolved.host, agent.port, advertiseHost),
      http: http.url,
      ...(serviceTtlMs !== undefined ? { ttlMs: serviceTtlMs } : {}),
      version: serviceVersion,
      // The reporters' wire its forwarder speaks, for operators (`hashwire status`) mid-upgrade.
      sharesWire: SHARES_WIRE,
      measureLoad: () => {
        const { sessions, connections } = server.stats();
        return { sessions, connections };
      },
      onError: (error) => logger.warn({ err: error }, 'stratum: registry refresh failed'),
    });
    cleanup.push(() => registration.close().catch(() => {}));
  } catch (error) {
    await unwind().catch(() => {});
    if (error instanceof TypeError || error instanceof RangeError) throw new StartupError(error.message);
    throw error;
  }

  process.stdout.write(
    `${JSON.stringify({ ready: true, id: config.id, port: server.port, curve: curve !== undefined })}\n`,
  );
  process.once('SIGTERM', requestStop);
  process.once('SIGINT', requestStop);
  await stopRequested;

  logger.info({ stratumId: config.id }, 'stratum: draining');
  stopping = true;
  // Candidates still waiting for a jobmanager are given up now (each logged with its request),
  // so the drain does not wait on them.
  feed.releaseBlocks('the stratum server stopped before any jobmanager answered');
  markDraining();
  await registration.update({ state: 'draining' }).catch(() => {});
  // HAProxy takes the server out through its follower (the registry) or the agent check; until
  // then it would route miners sent away straight back here.
  await new Promise((resolve) => setTimeout(resolve, drainAnnounceMs));
  // Miners are sent elsewhere, then the share sink closes: the open segment is sealed into a
  // last batch, which the forwarder still carries.
  await server.drain();
  let timer: NodeJS.Timeout | undefined;
  const flushed = await Promise.race([
    forwarder.whenIdle().then(() => true),
    new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), flushTimeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (!flushed) {
    logger.warn(
      { backlogBatches: forwarder.stats().backlogBatches },
      'stratum: reporters did not take the whole spool; it stays on disk for the next start',
    );
  }
  await unwind();
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    const message = (error instanceof StartupError ? error.message : String(error.message ?? error)).replace(
      /\s*\n\s*/g,
      ' ',
    );
    process.stderr.write(`stratum: ${message}\n`);
    process.exitCode = 1;
  },
);
