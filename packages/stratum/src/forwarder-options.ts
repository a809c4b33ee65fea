import type { BucketRing, BucketRingOptions, KeyBuilder } from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';
import type { ServiceCurve } from '@hashwire/rpc';
import type { ShareSpool } from './spool.js';

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
  /** Bucket layout; every stratum server must use the same (it decides sub-batch ids). */
  ring?: BucketRingOptions;
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
  /** Reporters in the ring (registered `up`, with an rpc endpoint). */
  reporters: number;
  /** Increases each time the set of reporters changes. */
  ringVersion: number;
  /** Spool batches not yet acknowledged by reporters: waiting on disk plus in flight. */
  backlogBatches: number;
  queuedBatches: number;
  inFlightBatches: number;
  inFlightSubBatches: number;
  requests: number;
  failedRequests: number;
  /** Failed requests by `RpcErrorCode`. */
  errors: Record<number, number>;
  /** A sub-batch moved on to the next server of its bucket. */
  failovers: number;
  /** Rounds in which every reporter of a bucket failed a sub-batch. */
  exhausted: number;
  ackedBatches: number;
  ackedSubBatches: number;
  ackedShares: number;
  /** Sum of `credited` in reporters' replies. */
  credited: number;
  backlogWarnings: number;
}

export interface BacklogEvent {
  reason: 'no-reporter' | 'growing';
  batches: number;
  shares: number;
}

export interface ForwarderEvents {
  /** A spool batch was acknowledged in full and removed from disk. */
  acked: [{ batchId: string; shares: number; subBatches: string[] }];
  /** One sub-batch was acknowledged by `reporterId`. */
  delivered: [{ subBatchId: string; bucket: number; reporterId: string; attempt: number }];
  backlog: [BacklogEvent];
  /** The backlog fell back under the warning level. */
  backlogCleared: [{ batches: number }];
  ring: [BucketRing];
  error: [Error];
}
