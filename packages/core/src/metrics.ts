import { StatsD } from 'hot-shots';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Where statsd lines go. Labels become statsd tags (DogStatsD `|#k:v` or Telegraf `,k=v`). */
export interface StatsdOptions {
  host: string;
  port: number;
  /** Put before every statsd name, separator included. @defaultValue 'hashwire.' */
  prefix?: string;
  /** Tags on every line, besides `service` and `id`. */
  tags?: Record<string, string>;
  /** @defaultValue 'datadog' */
  tagFormat?: 'datadog' | 'telegraf';
  /**
   * Lines are gathered up to this many bytes per datagram (flushed at least every
   * `flushIntervalMs`); 0 sends every line at once.
   * @defaultValue 0
   */
  bufferBytes?: number;
  /** @defaultValue 1000 */
  flushIntervalMs?: number;
  /** Socket errors (the statsd agent down, DNS) are reported here instead of thrown. */
  onError?: (error: Error) => void;
}

export interface MetricsOptions {
  /** The service kind, e.g. `reporter`; a label on every series and a tag on every statsd line. */
  service: string;
  /** The instance id; a label and tag like `service`. */
  id: string;
  /** The chain the instance serves (every service serves one); a label and tag like `service`. */
  chain?: string;
  /** Mirror every hashwire series to statsd; absent, only Prometheus is fed. */
  statsd?: StatsdOptions;
  /**
   * What the service reports as its version (`packageVersion(import.meta.url)`): the `version`
   * label of `hashwire_info`. @defaultValue 'unknown'
   */
  version?: string;
  /**
   * Hashes per share of difficulty 1 on this chain (2^32 sha256d, 2^16 scrypt): the value of
   * `hashwire_hashes_per_diff`, which turns accepted difficulty into hashrate. Services that know
   * the chain's algorithm (jobmanager, stratum) give it; 0 elsewhere.
   */
  hashesPerDiff?: number;
  /** Process metrics (CPU, memory, event-loop lag, GC) in the registry. @defaultValue true */
  processMetrics?: boolean;
}

export type ShareResultLabel = 'accepted' | 'stale' | 'duplicate' | 'lowdiff' | 'invalid';
/**
 * `stale`: valid, but built on a parent that was no longer the tip when submitted; `unanswered`:
 * a stratum server's candidate no jobmanager answered (it gave up on it, the reason logged).
 */
export type BlockStateLabel =
  | 'submitted'
  | 'accepted'
  | 'rejected'
  | 'stale'
  | 'unanswered'
  | 'confirmed'
  | 'orphaned';
/** What became of a share batch a reporter was handed. */
export type BatchOutcomeLabel =
  | 'credited'
  | 'duplicate'
  | 'refused'
  | 'unavailable'
  | 'failed'
  | 'unreplicated';

export const SHARE_RESULTS: readonly ShareResultLabel[] = [
  'accepted',
  'stale',
  'duplicate',
  'lowdiff',
  'invalid',
];
export const BLOCK_STATES: readonly BlockStateLabel[] = [
  'submitted',
  'accepted',
  'rejected',
  'stale',
  'unanswered',
  'confirmed',
  'orphaned',
];
export const BATCH_OUTCOMES: readonly BatchOutcomeLabel[] = [
  'credited',
  'duplicate',
  'refused',
  'unavailable',
  'failed',
  'unreplicated',
];
/** Why a stratum server quarantined a share sub-batch. */
export type QuarantineReasonLabel = 'refused' | 'expired';
export const QUARANTINE_REASONS: readonly QuarantineReasonLabel[] = ['refused', 'expired'];
/**
 * What one payment run of a payer ended with (`PayResult.outcome` of `@hashwire/payouts`), or
 * `error` when the run itself failed (Redis, the daemon, the lease lost).
 */
export type PayoutRunLabel = 'sent' | 'reconciled' | 'failed' | 'ambiguous' | 'held' | 'nothing' | 'error';
export const PAYOUT_RUNS: readonly PayoutRunLabel[] = [
  'sent',
  'reconciled',
  'failed',
  'ambiguous',
  'held',
  'nothing',
  'error',
];

/**
 * The documented hashwire series (docs/metrics.md). Each call feeds the Prometheus registry and,
 * when configured, statsd: counters → `increment`, histograms → `timing` (ms), gauges → `gauge`.
 */
export interface Metrics {
  readonly registry: Registry;
  /** Content type of `text()`, for the `/metrics` response. */
  readonly contentType: string;
  /** `hashwire_shares_total{result}` / statsd `shares` (tag `result`). */
  shares(result: ShareResultLabel, count?: number): void;
  /**
   * `hashwire_accepted_difficulty_total` / statsd `accepted_difficulty`: the share difficulty a
   * reporter credited (accepted shares, first deliveries). Per chain only, never per worker or
   * account: `rate()` of it times 2^32 (sha256d) or 2^16 (scrypt) is the pool's hashrate.
   */
  acceptedDifficulty(diff: number): void;
  /** `hashwire_connections` / statsd gauge `connections`: open miner connections now. */
  connections(open: number): void;
  /** `hashwire_spool_backlog_batches` / statsd gauge `spool_backlog`: batches waiting for a reporter (grows while none answers). */
  spoolBacklog(batches: number): void;
  /** `hashwire_job_push_seconds` / statsd timing `job_push`: new template → job on the stratum server. */
  jobPush(seconds: number): void;
  /** `hashwire_blocks_total{state}` / statsd `blocks` (tag `state`). */
  blocks(state: BlockStateLabel, count?: number): void;
  /** `hashwire_rpc_seconds{method}` / statsd timing `rpc` (tag `method`): one handled request. */
  rpc(method: string, seconds: number): void;
  /** `hashwire_redis_errors_total` / statsd `redis_errors`. */
  redisError(count?: number): void;
  /** `hashwire_batches_total{outcome}` / statsd `batches` (tag `outcome`). */
  batches(outcome: BatchOutcomeLabel, count?: number): void;
  /**
   * `hashwire_quarantined_batches_total{reason}` / statsd `quarantined_batches` (tag `reason`):
   * share sub-batches a stratum server moved to its spool's quarantine.
   */
  quarantined(reason: QuarantineReasonLabel, count?: number): void;
  /**
   * `hashwire_leader` / statsd gauge `leader` (1 while this process holds its group's lease) and
   * `hashwire_lease_epoch` / statsd gauge `lease_epoch` (the lease's fencing epoch; 0 when not leading).
   */
  leader(leading: boolean, epoch: number): void;
  /** `hashwire_draining` / statsd gauge `draining`: 1 from the start of a drain until the process exits. */
  draining(on: boolean): void;
  /**
   * `hashwire_template_healthy` / statsd gauge `template_healthy` (1 while a daemon gives fresh
   * templates) and `hashwire_template_age_seconds` / statsd gauge `template_age` (seconds since
   * the last template a daemon gave).
   */
  templateHealth(healthy: boolean, ageSeconds: number): void;
  /**
   * One HTTP request the api answered: `hashwire_api_requests_total{method, route, status}` (status
   * class `2xx`…`5xx`) and `hashwire_api_request_seconds{method, route}` / statsd `api_requests`
   * (c) and `api_request` (ms), tags the same. `route` is the route's pattern
   * (`/v1/chains/:chain`), never the path itself, so the series stay few.
   */
  apiRequest(method: string, route: string, statusCode: number, seconds: number): void;
  /**
   * One run of the payer that held its chain's lease: `hashwire_payout_runs_total{outcome}` /
   * statsd `payout_runs` (tag `outcome`), `hashwire_payout_paid_sat_total` / statsd
   * `payout_paid_sat` (the satoshis a `sent` or `reconciled` batch paid) and
   * `hashwire_payout_last_run_timestamp_seconds` / statsd gauge `payout_last_run` (when it ended).
   */
  payoutRun(outcome: PayoutRunLabel, paidSat: number, atSeconds: number): void;
  /**
   * `hashwire_payout_owed_sat` / statsd gauge `payout_owed_sat` (the chain's balances not yet
   * paid, the pool's own `@` accounts left out) and `hashwire_payout_held_accounts` / statsd
   * gauge `payout_held_accounts` (accounts whose payments are held).
   */
  payoutOwed(owedSat: number, heldAccounts: number): void;
  /** The Prometheus text exposition of everything in the registry. */
  text(): Promise<string>;
  /** Flushes and closes the statsd socket; the registry stays readable. */
  close(): Promise<void>;
}

const LATENCY_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

const SERIES = {
  shares: 'hashwire_shares_total',
  connections: 'hashwire_connections',
  jobPush: 'hashwire_job_push_seconds',
  blocks: 'hashwire_blocks_total',
  rpc: 'hashwire_rpc_seconds',
  redisErrors: 'hashwire_redis_errors_total',
  batches: 'hashwire_batches_total',
  spoolBacklog: 'hashwire_spool_backlog_batches',
  quarantined: 'hashwire_quarantined_batches_total',
  leader: 'hashwire_leader',
  leaseEpoch: 'hashwire_lease_epoch',
  draining: 'hashwire_draining',
  templateHealthy: 'hashwire_template_healthy',
  templateAge: 'hashwire_template_age_seconds',
  acceptedDifficulty: 'hashwire_accepted_difficulty_total',
  info: 'hashwire_info',
  hashesPerDiff: 'hashwire_hashes_per_diff',
  apiRequests: 'hashwire_api_requests_total',
  apiRequestSeconds: 'hashwire_api_request_seconds',
  payoutRuns: 'hashwire_payout_runs_total',
  payoutPaidSat: 'hashwire_payout_paid_sat_total',
  payoutLastRun: 'hashwire_payout_last_run_timestamp_seconds',
  payoutOwedSat: 'hashwire_payout_owed_sat',
  payoutHeldAccounts: 'hashwire_payout_held_accounts',
} as const;

/** Statsd names (after the prefix) of the same series. */
export const STATSD_NAMES = {
  shares: 'shares',
  connections: 'connections',
  jobPush: 'job_push',
  blocks: 'blocks',
  rpc: 'rpc',
  redisErrors: 'redis_errors',
  batches: 'batches',
  spoolBacklog: 'spool_backlog',
  quarantined: 'quarantined_batches',
  leader: 'leader',
  leaseEpoch: 'lease_epoch',
  draining: 'draining',
  templateHealthy: 'template_healthy',
  templateAge: 'template_age',
  acceptedDifficulty: 'accepted_difficulty',
  apiRequests: 'api_requests',
  apiRequestSeconds: 'api_request',
  payoutRuns: 'payout_runs',
  payoutPaidSat: 'payout_paid_sat',
  payoutLastRun: 'payout_last_run',
  payoutOwedSat: 'payout_owed_sat',
  payoutHeldAccounts: 'payout_held_accounts',
} as const;

export const PROMETHEUS_NAMES = SERIES;

function checkLabel(field: string, value: string): void {
  if (typeof value !== 'string' || value === '')
    throw new TypeError(`metrics: ${field} must be a non-empty string`);
}

function checkStatsd(options: StatsdOptions): void {
  if (typeof options.host !== 'string' || options.host === '') {
    throw new TypeError('metrics: statsd.host must be a host name or address');
  }
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
    throw new TypeError(`metrics: statsd.port must be an integer 1–65535, got ${options.port}`);
  }
  if (
    options.tagFormat !== undefined &&
    options.tagFormat !== 'datadog' &&
    options.tagFormat !== 'telegraf'
  ) {
    throw new TypeError(`metrics: statsd.tagFormat must be 'datadog' or 'telegraf'`);
  }
}

/** A prom-client registry with process metrics and the hashwire series, mirrored to statsd. */
export function createMetrics(options: MetricsOptions): Metrics {
  checkLabel('service', options.service);
  checkLabel('id', options.id);
  if (options.chain !== undefined) checkLabel('chain', options.chain);
  const serviceLabels: Record<string, string> = { service: options.service, id: options.id };
  if (options.chain !== undefined) serviceLabels.chain = options.chain;
  const registry = new Registry();
  registry.setDefaultLabels(serviceLabels);
  // prom-client samples event-loop delay with a 10 ms timer by default: 100 wake-ups a second,
  // most of an idle service's CPU (0.9 % of a core against 0.3 % at 100 ms, measured). A delay
  // is still measured whole at 100 ms; only fewer samples are taken.
  if (options.processMetrics ?? true)
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });

  const shares = new Counter({
    name: SERIES.shares,
    help: 'Shares judged, by result (accepted, stale, duplicate, lowdiff, invalid)',
    labelNames: ['result'],
    registers: [registry],
  });
  const connections = new Gauge({
    name: SERIES.connections,
    help: 'Open miner connections',
    registers: [registry],
  });
  const spoolBacklog = new Gauge({
    name: SERIES.spoolBacklog,
    help: 'Share batches on disk waiting for a reporter to acknowledge them',
    registers: [registry],
  });
  const jobPush = new Histogram({
    name: SERIES.jobPush,
    help: 'Seconds from a new template to its job reaching the stratum server',
    buckets: LATENCY_BUCKETS_S,
    registers: [registry],
  });
  const blocks = new Counter({
    name: SERIES.blocks,
    help: 'Block state changes, by the state reached',
    labelNames: ['state'],
    registers: [registry],
  });
  const rpc = new Histogram({
    name: SERIES.rpc,
    help: 'Seconds to handle one RPC request, by method',
    labelNames: ['method'],
    buckets: LATENCY_BUCKETS_S,
    registers: [registry],
  });
  const redisErrors = new Counter({
    name: SERIES.redisErrors,
    help: 'Redis commands that failed',
    registers: [registry],
  });
  const batches = new Counter({
    name: SERIES.batches,
    help: 'Share sub-batches handled, by outcome (credited, duplicate, refused, unavailable, failed)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const quarantined = new Counter({
    name: SERIES.quarantined,
    help: 'Share sub-batches moved to the spool quarantine, by reason (refused as malformed, expired)',
    labelNames: ['reason'],
    registers: [registry],
  });

  const leader = new Gauge({
    name: SERIES.leader,
    help: '1 while this process holds its group lease (the jobmanager that publishes jobs), else 0',
    registers: [registry],
  });
  const leaseEpoch = new Gauge({
    name: SERIES.leaseEpoch,
    help: 'Fencing epoch of the lease this process holds; 0 when it does not lead',
    registers: [registry],
  });
  const draining = new Gauge({
    name: SERIES.draining,
    help: '1 while the process drains (until it exits), else 0',
    registers: [registry],
  });

  const templateHealthy = new Gauge({
    name: SERIES.templateHealthy,
    help: '1 while a coin daemon gives this jobmanager fresh block templates (within its grace period), else 0',
    registers: [registry],
  });
  const templateAge = new Gauge({
    name: SERIES.templateAge,
    help: 'Seconds since a coin daemon last gave this jobmanager a block template',
    registers: [registry],
  });

  const acceptedDifficulty = new Counter({
    name: SERIES.acceptedDifficulty,
    help: 'Share difficulty credited (accepted shares, first deliveries); rate() x 2^32 (sha256d) or 2^16 (scrypt) is hashrate',
    registers: [registry],
  });
  // Always 1: its labels say what runs. It also gives `up` (which has only instance and job) a
  // chain to join on: `up * on (instance) group_left (chain) hashwire_info`.
  const info = new Gauge({
    name: SERIES.info,
    help: 'Always 1; the labels say which service, chain and version runs at this target',
    labelNames: ['version'],
    registers: [registry],
  });
  info.set({ version: options.version ?? 'unknown' }, 1);
  const hashesPerDiff = new Gauge({
    name: SERIES.hashesPerDiff,
    help: "Hashes per share of difficulty 1 on this service's chain (2^32 sha256d, 2^16 scrypt); 0 where unknown",
    registers: [registry],
  });
  hashesPerDiff.set(options.hashesPerDiff ?? 0);
  const apiRequests = new Counter({
    name: SERIES.apiRequests,
    help: 'HTTP requests the api answered, by method, route pattern and status class (2xx, 3xx, 4xx, 5xx)',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const apiRequestSeconds = new Histogram({
    name: SERIES.apiRequestSeconds,
    help: 'Seconds from an api request received to its answer sent, by method and route pattern',
    labelNames: ['method', 'route'],
    buckets: LATENCY_BUCKETS_S,
    registers: [registry],
  });

  const payoutRuns = new Counter({
    name: SERIES.payoutRuns,
    help: 'Payment runs of the payer holding the lease, by outcome (sent, reconciled, failed, ambiguous, held, nothing, error)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const payoutPaidSat = new Counter({
    name: SERIES.payoutPaidSat,
    help: 'Satoshis paid by the batches this payer sent or found sent in the wallet',
    registers: [registry],
  });
  const payoutLastRun = new Gauge({
    name: SERIES.payoutLastRun,
    help: 'When the last payment run of this payer ended, Unix seconds; 0 before any',
    registers: [registry],
  });
  const payoutOwedSat = new Gauge({
    name: SERIES.payoutOwedSat,
    help: "Satoshis the chain owes its miners: the sum of the balances not yet paid (the pool's @ accounts left out)",
    registers: [registry],
  });
  const payoutHeldAccounts = new Gauge({
    name: SERIES.payoutHeldAccounts,
    help: 'Accounts whose payments are held (an address the daemon refused)',
    registers: [registry],
  });

  // Every documented label value starts at 0, so dashboards and alerts see the series at once.
  for (const result of SHARE_RESULTS) shares.inc({ result }, 0);
  for (const state of BLOCK_STATES) blocks.inc({ state }, 0);
  for (const outcome of BATCH_OUTCOMES) batches.inc({ outcome }, 0);
  for (const reason of QUARANTINE_REASONS) quarantined.inc({ reason }, 0);
  for (const outcome of PAYOUT_RUNS) payoutRuns.inc({ outcome }, 0);

  let statsd: StatsD | null = null;
  if (options.statsd) {
    const s = options.statsd;
    checkStatsd(s);
    statsd = new StatsD({
      host: s.host,
      port: s.port,
      prefix: s.prefix ?? 'hashwire.',
      globalTags: { ...serviceLabels, ...s.tags },
      includeDataDogTags: false,
      telegraf: s.tagFormat === 'telegraf',
      maxBufferSize: s.bufferBytes ?? 0,
      bufferFlushInterval: s.flushIntervalMs ?? 1000,
      // Without a handler hot-shots logs to the console; metrics must never take a service down.
      errorHandler: s.onError ?? (() => {}),
    });
  }

  const count = (n: number | undefined) => {
    const value = n ?? 1;
    if (!Number.isFinite(value) || value < 0) throw new TypeError(`metrics: a count must be >= 0, got ${n}`);
    return value;
  };

  return {
    registry,
    contentType: registry.contentType,
    shares(result, n) {
      const value = count(n);
      if (value === 0) return;
      shares.inc({ result }, value);
      statsd?.increment(STATSD_NAMES.shares, value, { result });
    },
    acceptedDifficulty(diff) {
      if (!Number.isFinite(diff) || diff < 0)
        throw new TypeError(`metrics: a difficulty must be >= 0, got ${diff}`);
      if (diff === 0) return;
      acceptedDifficulty.inc(diff);
      statsd?.increment(STATSD_NAMES.acceptedDifficulty, diff);
    },
    connections(open) {
      connections.set(open);
      statsd?.gauge(STATSD_NAMES.connections, open);
    },
    spoolBacklog(batches) {
      spoolBacklog.set(batches);
      statsd?.gauge(STATSD_NAMES.spoolBacklog, batches);
    },
    jobPush(seconds) {
      jobPush.observe(seconds);
      statsd?.timing(STATSD_NAMES.jobPush, seconds * 1000);
    },
    blocks(state, n) {
      const value = count(n);
      blocks.inc({ state }, value);
      statsd?.increment(STATSD_NAMES.blocks, value, { state });
    },
    apiRequest(method, route, statusCode, seconds) {
      const status = `${Math.min(5, Math.max(1, Math.floor(statusCode / 100)))}xx`;
      apiRequests.inc({ method, route, status });
      apiRequestSeconds.observe({ method, route }, seconds);
      statsd?.increment(STATSD_NAMES.apiRequests, 1, { method, route, status });
      statsd?.timing(STATSD_NAMES.apiRequestSeconds, seconds * 1000, { method, route });
    },
    rpc(method, seconds) {
      rpc.observe({ method }, seconds);
      statsd?.timing(STATSD_NAMES.rpc, seconds * 1000, { method });
    },
    redisError(n) {
      const value = count(n);
      redisErrors.inc(value);
      statsd?.increment(STATSD_NAMES.redisErrors, value);
    },
    batches(outcome, n) {
      const value = count(n);
      batches.inc({ outcome }, value);
      statsd?.increment(STATSD_NAMES.batches, value, { outcome });
    },
    quarantined(reason, n) {
      const value = count(n);
      quarantined.inc({ reason }, value);
      statsd?.increment(STATSD_NAMES.quarantined, value, { reason });
    },
    leader(leading, epoch) {
      if (!Number.isFinite(epoch) || epoch < 0)
        throw new TypeError(`metrics: an epoch must be >= 0, got ${epoch}`);
      const value = leading ? epoch : 0;
      leader.set(leading ? 1 : 0);
      leaseEpoch.set(value);
      statsd?.gauge(STATSD_NAMES.leader, leading ? 1 : 0);
      statsd?.gauge(STATSD_NAMES.leaseEpoch, value);
    },
    draining(on) {
      draining.set(on ? 1 : 0);
      statsd?.gauge(STATSD_NAMES.draining, on ? 1 : 0);
    },
    templateHealth(healthy, ageSeconds) {
      templateHealthy.set(healthy ? 1 : 0);
      templateAge.set(ageSeconds);
      statsd?.gauge(STATSD_NAMES.templateHealthy, healthy ? 1 : 0);
      statsd?.gauge(STATSD_NAMES.templateAge, ageSeconds);
    },
    payoutRun(outcome, paidSat, atSeconds) {
      payoutRuns.inc({ outcome });
      statsd?.increment(STATSD_NAMES.payoutRuns, 1, { outcome });
      if (paidSat > 0) {
        payoutPaidSat.inc(paidSat);
        statsd?.increment(STATSD_NAMES.payoutPaidSat, paidSat);
      }
      payoutLastRun.set(atSeconds);
      statsd?.gauge(STATSD_NAMES.payoutLastRun, atSeconds);
    },
    payoutOwed(owedSat, heldAccounts) {
      payoutOwedSat.set(owedSat);
      payoutHeldAccounts.set(heldAccounts);
      statsd?.gauge(STATSD_NAMES.payoutOwedSat, owedSat);
      statsd?.gauge(STATSD_NAMES.payoutHeldAccounts, heldAccounts);
    },
    text: () => registry.metrics(),
    close() {
      const client = statsd;
      statsd = null;
      if (!client) return Promise.resolve();
      return new Promise<void>((resolve) => client.close(() => resolve()));
    },
  };
}
