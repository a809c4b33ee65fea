import { DaemonClient, type DaemonClientOptions, DaemonPool } from '@hashwire/chain';
import {
  type Logger,
  type Metrics,
  type StatsdOptions,
  type StatusServer,
  createLogger,
  createMetrics,
  isWildcardHost,
  packageVersion,
  startStatusServer,
} from '@hashwire/core';
import {
  type KeyBuilder,
  PortRange,
  RpcErrorCode,
  type RpcMethods,
  SHARES_WIRE,
  ShareResult,
  type SharesReply,
  createKeyBuilder,
} from '@hashwire/protocol';
import {
  type RedisClient,
  type RedisConfig,
  type ServiceRegistration,
  connectRedis,
  createRateMeter,
  registerService,
  requireRedisVersion,
} from '@hashwire/registry';
import {
  RpcError,
  type RpcServer,
  type ServiceCurve,
  checkServiceCurve,
  createRpcServer,
  requireCurveOffLoopback,
  serverCurveOf,
} from '@hashwire/rpc';
import { BlockWatcher, type BlockWatcherStats } from './blocks.js';
import { type CreditRun, ShareStoreError, creditRequest } from './credit-request.js';
import { reporterKeys } from './keys.js';
import { createOnlineSweeper, sweepOfflineWorkers } from './online-sweep.js';
import { ReplicaCount, type ReplicationOptions, resolveReplication } from './replication.js';
import { type ValidRequest, validateRequest } from './validate.js';
import { createWire1Refusal, isWire1Request } from './wire1.js';

export interface ReporterOptions {
  /** Instance id, unique among reporters; its registry entry is `svc:{reporter}:<id>`. */
  id: string;
  /** HTTP `/healthz`, `/stats`, `/metrics`: the first free port of this range. @defaultValue [29000, 29999] */
  httpPortRange?: readonly [number, number];
  /**
   * Address of the HTTP `/healthz`, `/stats`, `/metrics` (and `POST /drain`) server; loopback
   * unless told otherwise (pool config `http.host`). @defaultValue '127.0.0.1'
   */
  httpHost?: string;
  /** What `POST /drain` on the status server does (the bin: the same as SIGTERM). No `/drain` without it. */
  onDrain?: () => void;
  /** The token `POST /drain` must carry (`Authorization: Bearer`); without it `/drain` is refused. */
  adminToken?: string;
  /**
   * This reporter's CURVE key pair and the client keys it lets in (the pool's service keys). Its
   * public key is published in the registry as `curveKey`. Required when `host` is not loopback.
   */
  curve?: ServiceCurve;
  /** The chain whose shares this reporter credits (the key part of `round:{chain}`). */
  chain: string;
  /** A client (left open on close) or how to connect (closed on close). */
  redis: RedisClient | RedisConfig;
  /** @defaultValue createKeyBuilder() (prefix `hw:`) */
  keys?: KeyBuilder;
  /** Daemons asked for confirmations; without them blocks never become confirmed or orphaned. */
  daemons?: DaemonPool | readonly (DaemonClient | DaemonClientOptions)[];
  /** Confirmations after which an accepted block is `confirmed`. @defaultValue 100 */
  confirmations?: number;
  /** @defaultValue 10000 */
  blockPollMs?: number;
  /** A block candidate whose record never settles is forgotten after this. @defaultValue 3_600_000 */
  candidateMaxAgeMs?: number;
  /**
   * A block record still `submitted` this long after its last update (its jobmanager died
   * before writing the verdict) is moved to `accepted` if the daemons have it in their main
   * chain. @defaultValue 30000
   */
  settleSubmittedMs?: number;
  /**
   * How long a spool's acknowledged sub-batches are remembered after its last credit, and the
   * bound on delivering a sub-batch after its seal. @defaultValue 86400 (1 day)
   */
  batchTtlS?: number;
  /** Shares per sub-batch at most; bigger ones are refused `TooLarge`. @defaultValue 20000 */
  maxBatchShares?: number;
  /** Share log entries (one per request) kept at most (approximate, `XADD MAXLEN ~`). @defaultValue 100000 */
  shareLogMaxBatches?: number;
  /** Share log entries older than this are deleted. @defaultValue 600 */
  shareLogRetentionS?: number;
  /**
   * Write the PPLNS share window with each credit (pool config: the chain pays by PPLNS).
   * @defaultValue false
   */
  shareWindow?: boolean;
  /** Entries kept in the chain's `events:{chain}` stream (approximate). @defaultValue 100000 */
  eventsMaxLen?: number;
  /**
   * How often the reporter takes workers past the online window out of the online set, emitting
   * their `worker.offline` (every reporter of the chain sweeps; each event is emitted once).
   * @defaultValue 5000
   */
  onlineSweepMs?: number;
  /**
   * Replicas that must have a credit (and a round close or block state change) before it is
   * acknowledged: see `ReplicationOptions`. @defaultValue { replicas: 1, timeoutMs: 1000 }
   */
  replication?: ReplicationOptions;
  /** @defaultValue PortRange.rpc (28000–28999) */
  rpcPortRange?: readonly [number, number];
  /** @defaultValue '127.0.0.1' */
  host?: string;
  /** Host written into the registered endpoint when `host` is a wildcard. */
  advertiseHost?: string;
  /** RPC heartbeat interval; clients must use the same. @defaultValue 1000 */
  heartbeatIntervalMs?: number;
  /** @defaultValue 60000 */
  serviceTtlMs?: number;
  /** @defaultValue this package's version, with the git commit when run from a checkout */
  version?: string;
  /** @defaultValue createLogger({ name: 'reporter' }) */
  logger?: Logger;
  /** A registry to feed, or statsd settings for one created here. */
  metrics?: Metrics | { statsd?: StatsdOptions };
}

export interface ReporterStats {
  id: string;
  chain: string;
  version: string;
  endpoint: string | null;
  state: 'created' | 'up' | 'draining' | 'closed';
  /** Sub-batches by outcome (`unavailable` and envelope refusals count requests). */
  batches: {
    credited: number;
    duplicate: number;
    refused: number;
    unavailable: number;
    failed: number;
    /** Written, but no replica confirmed it within `replication.timeoutMs`: not acknowledged. */
    unreplicated: number;
  };
  shares: Record<ShareResult, number>;
  /** Accepted shares credited (first deliveries only). */
  credited: number;
  /** `reporter.shares` requests taken (each carries one or more sub-batches). */
  requests: number;
  /**
   * Requests of the previous release's shape (share wire 1, from a stratum server not yet
   * upgraded), answered `Unavailable` (also counted in `batches.unavailable`); nothing written.
   */
  wire1Requests: number;
  /** Credit script runs (one per request, more when a sub-batch was answered before or a share claimed first). */
  scriptRuns: number;
  inFlight: number;
  blocks: BlockWatcherStats;
}

export interface Reporter {
  readonly id: string;
  readonly chain: string;
  /** `tcp://host:port` of its RPC server once started. */
  readonly endpoint: string | null;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Binds the RPC server, registers as `reporter`, starts following blocks. */
  start(): Promise<void>;
  /**
   * Stops taking batches (they are answered `Unavailable`, so stratum servers fail over),
   * waits for the batches being written, stops following blocks and leaves discovery. The RPC
   * server keeps answering `Unavailable` until `close()`.
   */
  drain(): Promise<void>;
  close(): Promise<void>;
  stats(): ReporterStats;
  /** Settle rounds and poll the daemons now; resolves when that pass is done. */
  pollBlocks(): Promise<void>;
  /**
   * Takes workers with no accepted share within the online window before `now` offline now
   * (`worker.offline`); resolves with how many went. Also done every `onlineSweepMs`.
   */
  sweepOnline(now?: number): Promise<number>;
}

/**
 * How much longer than the batch ids the share identities are kept: covers the time a job
 * takes shares (minutes) and clock skew between servers, with a wide margin.
 */
export const SEEN_SLACK_S = 3600;

type ReporterMethods = Pick<RpcMethods, 'reporter.shares' | 'svc.status' | 'svc.drain'>;

function positiveInt(field: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v <= 0)
    throw new TypeError(`reporter: ${field} must be a positive integer, got ${v}`);
  return v;
}

function isRedisClient(value: ReporterOptions['redis']): value is RedisClient {
  return typeof value === 'object' && value !== null && typeof (value as RedisClient).evalsha === 'function';
}

export async function createReporter(options: ReporterOptions): Promise<Reporter> {
  if (typeof options.id !== 'string' || options.id === '') throw new TypeError('reporter: id is required');
  if (typeof options.chain !== 'string' || options.chain === '')
    throw new TypeError('reporter: chain is required');
  const { id, chain } = options;
  const keyBuilder = options.keys ?? createKeyBuilder();
  const keys = reporterKeys(keyBuilder, chain);
  const confirmations = positiveInt('confirmations', options.confirmations, 100);
  const blockPollMs = positiveInt('blockPollMs', options.blockPollMs, 10_000);
  const batchTtlS = positiveInt('batchTtlS', options.batchTtlS, 86_400);
  // A share's identity outlives every batch id that could still carry it: a batch is
  // delivered at most batchTtlS after it was sealed (stratum servers quarantine older ones),
  // and it was sealed while its job was current, at most SEEN_SLACK_S after the job's first share.
  const seenTtlS = batchTtlS + SEEN_SLACK_S;
  const maxShares = positiveInt('maxBatchShares', options.maxBatchShares, 20_000);
  const shareLogMaxLen = positiveInt('shareLogMaxBatches', options.shareLogMaxBatches, 100_000);
  const shareLogRetentionS = positiveInt('shareLogRetentionS', options.shareLogRetentionS, 600);
  const eventsMaxLen = positiveInt('eventsMaxLen', options.eventsMaxLen, 100_000);
  const onlineSweepMs = positiveInt('onlineSweepMs', options.onlineSweepMs, 5000);
  const candidateMaxAgeMs = positiveInt('candidateMaxAgeMs', options.candidateMaxAgeMs, 3_600_000);
  const settleSubmittedMs = positiveInt('settleSubmittedMs', options.settleSubmittedMs, 30_000);
  const replication = resolveReplication(options.replication);
  const host = options.host ?? '127.0.0.1';
  const curve = options.curve ? checkServiceCurve('curve', options.curve) : undefined;
  requireCurveOffLoopback('host', host, 'curve', curve);

  const logger = options.logger ?? createLogger({ name: 'reporter', base: { id, chain } });
  const version = options.version ?? packageVersion(import.meta.url);
  const ownMetrics = !(options.metrics && 'registry' in options.metrics);
  const metrics: Metrics =
    options.metrics && 'registry' in options.metrics
      ? options.metrics
      : createMetrics({
          service: 'reporter',
          id,
          chain,
          version,
          ...(options.metrics?.statsd
            ? {
                statsd: {
                  ...options.metrics.statsd,
                  onError: (error: Error) => logger.debug({ err: error }, 'reporter: statsd send failed'),
                },
              }
            : {}),
        });
  metrics.draining(false);
  const ownRedis = !isRedisClient(options.redis);
  const redis: RedisClient = isRedisClient(options.redis)
    ? options.redis
    : connectRedis(options.redis, `reporter-${id}`);
  let ownDaemons = false;
  let daemons: DaemonPool | null = null;
  if (options.daemons instanceof DaemonPool) daemons = options.daemons;
  else if (options.daemons && options.daemons.length > 0) {
    daemons = new DaemonPool(
      options.daemons.map((d) => (d instanceof DaemonClient ? d : new DaemonClient(d))),
    );
    ownDaemons = true;
  }

  const replicas = new ReplicaCount(redis, keys.round, replication, logger);
  const watcher = new BlockWatcher({
    redis,
    replicas,
    keys,
    chain,
    daemons,
    confirmations,
    pollMs: blockPollMs,
    eventsMaxLen,
    candidateMaxAgeMs,
    settleSubmittedMs,
    logger,
    metrics,
  });

  const sweep = { redis, keys, chain, eventsMaxLen };
  const sweeper = createOnlineSweeper({
    ...sweep,
    intervalMs: onlineSweepMs,
    onError: (error) => {
      metrics.redisError();
      logger.warn({ err: error }, 'reporter: online sweep failed');
    },
  });

  let state: ReporterStats['state'] = 'created';
  let rpc: RpcServer<ReporterMethods> | null = null;
  let http: StatusServer | null = null;
  let registration: ServiceRegistration | null = null;
  const inFlight = new Set<Promise<unknown>>();
  const batches = { credited: 0, duplicate: 0, refused: 0, unavailable: 0, failed: 0, unreplicated: 0 };
  const shares: Record<ShareResult, number> = { accepted: 0, stale: 0, duplicate: 0, lowdiff: 0, invalid: 0 };
  let credited = 0;
  // Batches and shares handed to it (credited or already credited), for the registry's load.
  const batchRate = createRateMeter(() => batches.credited + batches.duplicate);
  const shareRate = createRateMeter(() => Object.values(shares).reduce((a, b) => a + b, 0));
  let requests = 0;
  let scriptRuns = 0;
  let wire1Requests = 0;
  const wire1Refusal = createWire1Refusal(id, logger);

  const write = async (request: ValidRequest): Promise<SharesReply> => {
    const trace = { spoolId: request.spoolId, stratumId: request.stratumId };
    let run: CreditRun;
    try {
      run = await creditRequest(
        redis,
        keys,
        {
          batchTtlS,
          seenTtlS,
          shareLogMaxLen,
          shareLogRetentionS,
          chain,
          eventsMaxLen,
          shareWindow: options.shareWindow === true,
        },
        request,
        { replicas, timeoutMs: replication.timeoutMs, probeKey: keyBuilder.replicationProbe(chain) },
      );
    } catch (error) {
      if (!(error instanceof ShareStoreError)) throw error;
      batches.failed += error.subBatches;
      metrics.batches('failed', error.subBatches);
      metrics.redisError();
      logger.warn(
        { err: error.cause, ...trace, subBatches: error.subBatches },
        'reporter: batch not written',
      );
      throw new RpcError(RpcErrorCode.Unavailable, 'share store unavailable, try again');
    }
    scriptRuns += run.scriptRuns;
    for (const seq of run.conflicts) {
      logger.error(
        { ...trace, seq },
        'reporter: seq acknowledged for another sub-batch: two stratum servers share one spool',
      );
    }
    if (run.repeats > 0) {
      batches.duplicate += run.repeats;
      metrics.batches('duplicate', run.repeats);
      logger.debug({ ...trace, subBatches: run.repeats }, 'reporter: sub-batches already credited');
    }
    const plan = run.written;
    if (plan) {
      if (run.duplicates > 0) {
        logger.info(
          { ...trace, shares: run.duplicates },
          'reporter: shares credited before through another batch, counted as duplicates',
        );
      }
      for (const c of plan.credits) credited += c.credited;
      batches.credited += plan.credits.length;
      metrics.batches('credited', plan.credits.length);
      metrics.acceptedDifficulty(plan.acceptedDiff);
      for (const result of Object.values(ShareResult)) {
        shares[result] += plan.counts[result];
        metrics.shares(result, plan.counts[result]);
      }
      if (plan.candidates.length > 0) {
        logger.info({ ...trace, hashes: plan.candidates }, 'reporter: block candidate credited');
        watcher.poke();
      }
    }
    if (run.acked !== null && run.acked < run.wanted) {
      batches.unreplicated++;
      metrics.batches('unreplicated');
      replicas.recheck();
      logger.warn(
        {
          ...trace,
          replicas: run.acked,
          wanted: run.wanted,
          timeoutMs: replication.timeoutMs,
          written: plan !== null,
        },
        'reporter: credit not confirmed by a Redis replica in time: not acknowledged, the stratum server sends it again',
      );
      throw new RpcError(RpcErrorCode.Unavailable, 'credit not yet on a Redis replica, try again');
    }
    return { subs: request.order.map((seq) => run.outcomes.get(seq)!) };
  };

  const handleShares = async (body: unknown): Promise<SharesReply> => {
    const started = performance.now();
    try {
      if (state !== 'up') {
        batches.unavailable++;
        metrics.batches('unavailable');
        throw new RpcError(RpcErrorCode.Unavailable, `reporter ${id} is ${state}, send to another`);
      }
      if (isWire1Request(body)) {
        wire1Requests++;
        batches.unavailable++;
        metrics.batches('unavailable');
        throw wire1Refusal(body);
      }
      requests++;
      let request: ValidRequest;
      try {
        request = validateRequest(body, { chain, maxShares });
      } catch (error) {
        batches.refused++;
        metrics.batches('refused');
        const b = body as { spoolId?: unknown; stratumId?: unknown } | null;
        logger.warn(
          { spoolId: b?.spoolId, stratumId: b?.stratumId, reason: (error as Error).message },
          'reporter: request refused',
        );
        throw error;
      }
      if (request.refused.size > 0) {
        batches.refused += request.refused.size;
        metrics.batches('refused', request.refused.size);
        for (const [seq, error] of request.refused) {
          logger.warn(
            { spoolId: request.spoolId, stratumId: request.stratumId, seq, reason: error.message },
            'reporter: sub-batch refused',
          );
        }
      }
      const writing = write(request);
      inFlight.add(writing);
      try {
        return await writing;
      } finally {
        inFlight.delete(writing);
      }
    } finally {
      metrics.rpc('reporter.shares', (performance.now() - started) / 1000);
    }
  };

  const stats = (): ReporterStats => ({
    id,
    chain,
    version,
    endpoint: rpc?.endpoint ?? null,
    state,
    batches: { ...batches },
    shares: { ...shares },
    credited,
    requests,
    wire1Requests,
    scriptRuns,
    inFlight: inFlight.size,
    blocks: watcher.stats(),
  });

  let draining: Promise<void> | null = null;
  let closing: Promise<void> | null = null;

  const reporter: Reporter = {
    id,
    chain,
    get endpoint() {
      return rpc?.endpoint ?? null;
    },
    metrics,
    logger,
    async start() {
      if (state !== 'created') throw new Error(`reporter ${id} cannot start: it is ${state}`);
      await requireRedisVersion(redis, `reporter ${id}`);
      rpc = await createRpcServer<ReporterMethods>({
        portRange: options.rpcPortRange ?? PortRange.rpc,
        host,
        ...(curve ? { curve: serverCurveOf(curve) } : {}),
        ...(options.advertiseHost ? { advertiseHost: options.advertiseHost } : {}),
        ...(options.heartbeatIntervalMs ? { heartbeatIntervalMs: options.heartbeatIntervalMs } : {}),
        logger,
        handlers: {
          'reporter.shares': handleShares,
          'svc.status': () => stats() as unknown as Record<string, unknown>,
          'svc.drain': () => {
            void reporter.drain();
            return { draining: true };
          },
        },
      });
      http = await startStatusServer({
        portRange: options.httpPortRange ?? [29000, 29999],
        host: options.httpHost ?? '127.0.0.1',
        advertiseHost: isWildcardHost(host) ? (options.advertiseHost ?? '127.0.0.1') : host,
        metrics,
        stats,
        ...(options.onDrain ? { onDrain: options.onDrain } : {}),
        ...(options.adminToken ? { adminToken: options.adminToken } : {}),
        health: async () => {
          if (state !== 'up') return { ok: false, reasons: [`reporter is ${state}`] };
          try {
            await redis.ping();
            return { ok: true };
          } catch (error) {
            return { ok: false, reasons: [`redis unreachable: ${(error as Error).message}`] };
          }
        },
      });
      state = 'up';
      registration = await registerService({
        redis,
        keys: keyBuilder,
        kind: 'reporter',
        id,
        rpc: rpc.endpoint,
        http: http.url,
        ...(curve ? { curveKey: curve.publicKey } : {}),
        chain,
        version,
        sharesWire: SHARES_WIRE,
        measureLoad: () => ({ batchesPerS: batchRate(), sharesPerS: shareRate() }),
        ...(options.serviceTtlMs ? { ttlMs: options.serviceTtlMs } : {}),
        onError: (error) => {
          metrics.redisError();
          logger.warn({ err: error }, 'reporter: registry refresh failed');
        },
      });
      watcher.start();
      sweeper.start();
      logger.info({ endpoint: rpc.endpoint, curve: curve !== undefined }, 'reporter: up');
    },
    drain() {
      draining ??= (async () => {
        if (state !== 'up') return;
        state = 'draining';
        metrics.draining(true);
        await registration?.update({ state: 'draining' }).catch(() => {});
        while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
        await watcher.stop();
        await sweeper.stop();
        await registration?.close().catch(() => {});
        registration = null;
        logger.info({ batches: batches.credited, credited }, 'reporter: drained');
      })();
      return draining;
    },
    close() {
      closing ??= (async () => {
        await reporter.drain();
        state = 'closed';
        await watcher.stop();
        await sweeper.stop();
        await rpc?.close();
        await http?.close();
        if (ownMetrics) await metrics.close();
        if (ownDaemons) daemons?.close();
        if (ownRedis) redis.disconnect();
      })();
      return closing;
    },
    stats,
    async pollBlocks() {
      await watcher.idle();
      await watcher.poll();
    },
    sweepOnline: (now) => sweepOfflineWorkers(sweep, now),
  };
  return reporter;
}
