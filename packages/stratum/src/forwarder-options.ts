import type { BucketRing, BucketRingOptions, KeyBuilder } from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';
import type { ServiceCurve } from '@hashwire/rpc';
import type { QuarantineReason } from './spool-journal.js';
import type { QuarantineStats, ShareSpool } from './spool.js';

/** pino, or anything with these methods. */
export interface ForwarderLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentForwarderLogger: ForwarderLogger = { debug() {}, info() {}, warn() {}, error() {} };

export interface ShareForwarderOptions {
  spool: ShareSpool;
  redis: RedisClient;
  keys: KeyBuilder;
  /** Sent with every batch. */
  stratumId: string;
  /** Sent with every batch; reporters registered for another (non-empty) chain are not used. */
  chain: string;
  /**
   * Bucket layout; every stratum server must use the same (it decides sub-batch ids). A batch
   * keeps the split it was first sent with (recorded in the spool) if this changes later.
   */
  ring?: BucketRingOptions;
  /**
   * The reporters' `batchTtlS`: how long they remember a batch id. It must be the same value (the
   * pool config passes the reporter's): a sub-batch still unacknowledged this long (less a
   * safety margin: the request timeout plus a minute, at most a tenth of it) after its batch
   * was sealed could be credited a second time (the reporters forget its id, and the identities
   * of its shares after about as long), so it is quarantined instead, sent before or not.
   * @defaultValue 86400
   */
  batchTtlS?: number;
  /**
   * Shares one `reporter.shares` request carries at most: the sub-batches routed to one reporter
   * in one turn go out together up to this (a single bigger sub-batch goes alone). Keep a
   * request well under the reporters' 4 MiB message limit. @defaultValue 5000
   */
  maxRequestShares?: number;
  /** The clock for batch ages and quarantine records. @defaultValue Date.now */
  now?: () => number;
  /** Spool batches read into memory and being delivered at once; the rest wait on disk. @defaultValue 4 */
  maxInFlightBatches?: number;
  /** Deadline of one `reporter.shares` request. @defaultValue 5000 */
  requestTimeoutMs?: number;
  /** RPC heartbeat, the reporters' value. @defaultValue 1000 */
  heartbeatIntervalMs?: number;
  /** How often the registry is re-read for reporters whose TTL ran out. @defaultValue 1000 */
  reconcileMs?: number;
  /** Wait before a sub-batch every reporter failed is tried again; doubles each time. @defaultValue 500 */
  retryDelayMs?: number;
  /** @defaultValue 10000 */
  maxRetryDelayMs?: number;
  /** A reporter that failed a request is tried after the others for this long. @defaultValue 5000 */
  suspectMs?: number;
  /** Operators are warned when this many batches wait, and again at each doubling. @defaultValue 10 */
  backlogWarnBatches?: number;
  logger?: ForwarderLogger;
  /**
   * This stratum server's CURVE key pair, for reporters that publish a `curveKey` (a reporter
   * that publishes none is then not used).
   */
  curve?: ServiceCurve;
}

export interface ForwarderStats {
  /** Reporters in the ring (registered `up`, with an rpc endpoint, speaking our share wire). */
  reporters: number;
  /**
   * Reporters registered but left out of the ring because they speak another `reporter.shares`
   * wire (an older release, mid rolling upgrade).
   */
  reportersOtherWire: number;
  /** Increases each time the set of reporters changes. */
  ringVersion: number;
  /** Spool batches not yet acknowledged by reporters: waiting on disk plus in flight. */
  backlogBatches: number;
  queuedBatches: number;
  inFlightBatches: number;
  inFlightSubBatches: number;
  /** `reporter.shares` requests sent (each carries every sub-batch routed to one reporter in one turn). */
  requests: number;
  /** Sub-batch sends those requests carried (a failed-over sub-batch counts again). */
  subBatchesSent: number;
  failedRequests: number;
  /** Failed requests by `RpcErrorCode`. */
  errors: Record<number, number>;
  /** A sub-batch moved on to the next server of its bucket. */
  failovers: number;
  /** Rounds in which every reporter of a bucket failed a sub-batch. */
  exhausted: number;
  /** Spool batches that left the spool: every sub-batch acknowledged or quarantined. */
  ackedBatches: number;
  ackedSubBatches: number;
  /** Shares of those batches that were acknowledged (quarantined ones not included). */
  ackedShares: number;
  /** Sub-batches found acknowledged in the spool's journal at a restart, and not sent again. */
  resumedAckedSubBatches: number;
  /** Refusals as malformed (`BadRequest`, `TooLarge`), one per reporter and sub-batch. */
  malformedRefusals: number;
  /** Sub-batches this process moved to quarantine, and their shares. */
  quarantinedSubBatches: number;
  quarantinedShares: number;
  /** What `<spoolDir>/quarantine` holds now, whichever process put it there. */
  quarantine: QuarantineStats;
  /** Sum of `credited` in reporters' replies. */
  credited: number;
  backlogWarnings: number;
}

export interface BacklogEvent {
  reason: 'no-reporter' | 'growing';
  batches: number;
  shares: number;
  /** With `no-reporter` while reporters of another share wire are registered: what to do. */
  why?: string;
}

/** A sub-batch moved to quarantine. */
export interface QuarantineEvent {
  subBatchId: string;
  batchId: string;
  bucket: number;
  reason: QuarantineReason;
  message: string;
  shares: number;
  /** The reporters that refused it as malformed (empty when expired). */
  reporters: string[];
  file: string;
}

export interface ForwarderEvents {
  /**
   * A spool batch left the disk: every sub-batch was acknowledged, or quarantined (those are
   * also in `quarantined`). `shares` counts the batch's shares, quarantined ones included.
   */
  acked: [{ batchId: string; shares: number; subBatches: string[]; quarantined: string[] }];
  quarantined: [QuarantineEvent];
  /** One sub-batch was acknowledged by `reporterId`. */
  delivered: [{ subBatchId: string; bucket: number; reporterId: string; attempt: number }];
  backlog: [BacklogEvent];
  /** The backlog fell back under the warning level. */
  backlogCleared: [{ batches: number }];
  ring: [BucketRing];
  error: [Error];
}
