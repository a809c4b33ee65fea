/**
 * The pool's events: their names and payloads, defined once. Services append them to Redis
 * streams — a chain's events to `events:{chain}` (in the chain's slot, so a script that changes
 * a round or a block emits its event in the same atomic step), the pool's own (services, admin
 * actions, watches) to `events:{pool}` — and the api's watches and live stream read them there.
 *
 * A stream entry has three fields: `type` (the event name), `ts` (epoch ms) and `data` (JSON).
 */

/** Event names that do not depend on a service kind or an admin action. */
export const EventType = {
  /** A new job (every template change; high rate: not for webhooks without a narrow pattern). */
  JobNew: 'job.new',
  /** A block the pool found, by its lifecycle state (`BlockRecord.state`). */
  BlockSubmitted: 'block.submitted',
  BlockAccepted: 'block.accepted',
  BlockRejected: 'block.rejected',
  BlockStale: 'block.stale',
  BlockConfirmed: 'block.confirmed',
  BlockOrphaned: 'block.orphaned',
  RoundClosed: 'round.closed',
  /** A worker's first accepted share after it was offline (or ever). */
  WorkerOnline: 'worker.online',
  /** A worker with no accepted share for the online window. */
  WorkerOffline: 'worker.offline',
  /** A watch was removed: its lifetime ended, its endpoint failed past the retry window, or by DELETE. */
  WatchRemoved: 'watch.removed',
  /** A matured block shared out into the ledger (payouts), once per block. */
  PayoutCredited: 'payout.credited',
  /** A block that shares out nothing (orphaned, rejected, stale, SOLO), once per block. */
  PayoutVoid: 'payout.void',
  /** A payment batch the wallet sent, recorded with its txid. */
  PayoutSent: 'payout.sent',
  /** A payment batch the daemon refused: nothing was sent. */
  PayoutFailed: 'payout.failed',
  /** Accounts whose payment is held (an address refused, the wallet short of funds). */
  PayoutHeld: 'payout.held',
} as const;
export type EventType = (typeof EventType)[keyof typeof EventType];

export type ServiceState = 'up' | 'draining' | 'down';
/** `service.<kind>.<state>`: a pool process joined discovery, started draining, or left it. */
export type ServiceEventType = `service.${string}.${ServiceState}`;
/** `admin.<action>`: an admin action through the api (`admin.drain`, `admin.token.create`…): the audit trail. */
export type AdminEventType = `admin.${string}`;
export type EventName = EventType | ServiceEventType | AdminEventType;

/** `block.*`: the block record as it is now (the jobmanager's fields plus what reporters add). */
export interface BlockEventData {
  chain: string;
  hash: string;
  height: number;
  state: 'submitted' | 'accepted' | 'rejected' | 'stale' | 'confirmed' | 'orphaned';
  confirmations?: number;
  /**
   * The finder, from the submission on: its account, and its worker name as the miner gave it
   * (`''` for none; not `account.worker`). Absent only when an earlier stratum release submitted it.
   */
  account?: string;
  worker?: string;
  [field: string]: unknown;
}

export interface RoundClosedData {
  chain: string;
  /** The block that closed the round. */
  hash: string;
  height: number;
  /** Accounts credited in the round and the round's credited difficulty. */
  accounts: number;
  totalDiff: number;
  /** The finder: its account and worker name as the miner gave it (`''` for none). */
  account: string;
  worker?: string;
  shareId?: string;
  [field: string]: unknown;
}

export interface WorkerEventData {
  chain: string;
  account: string;
  /** `account.worker`, or the account alone when the miner named no worker. */
  worker: string;
  /** Epoch ms of the worker's latest accepted share. */
  lastShareAt: number;
}

export interface ServiceEventData {
  kind: string;
  id: string;
  version?: string;
  /** The chain it serves, for services of one chain (jobmanager, stratum, reporter). */
  chain?: string;
  /** Why it left or drains, when known (`ttl expired`, `SIGTERM`, `admin drain`). */
  reason?: string;
}

export interface AdminEventData {
  /**
   * Who did it: the token's id, name and kind (never the token). `pool-admin` is the pool's admin
   * token, `cli` is `hashwire tokens` (which needs no token).
   */
  actor: { tokenId: string; name?: string; kind: 'admin' | 'read' | 'account' };
  /** What the action was on (`stratum st-1`, a token id, a watch id). */
  target?: string;
  [field: string]: unknown;
}

export interface WatchRemovedData {
  id: string;
  pattern: string;
  /** The endpoint with any password removed. */
  endpoint: string;
  reason: 'lifetime' | 'retries exhausted' | 'deleted';
}

/** One event as read from a stream. */
export interface PoolEvent<T = unknown> {
  /** The stream it came from: a chain name, or `pool`. */
  stream: string;
  /** The stream entry id (`<ms>-<n>`): the event's sequence number within its stream. */
  seq: string;
  type: EventName;
  ts: number;
  data: T;
}

/** The stream name pool-wide events use (`events:{pool}`). */
export const POOL_STREAM = 'pool';

export function serviceEventType(kind: string, state: ServiceState): ServiceEventType {
  return `service.${kind}.${state}`;
}

export function adminEventType(action: string): AdminEventType {
  return `admin.${action}`;
}

/**
 * The names an event answers to when matched against a watch pattern or a stream topic: its
 * type, and `account.<account>.<type>` when it concerns one account (a worker, a block or round
 * it found). One list per event, so a pattern costs one match per event whatever the watches.
 */
export function eventNames(type: string, data: unknown): string[] {
  const account =
    typeof data === 'object' && data !== null && typeof (data as { account?: unknown }).account === 'string'
      ? (data as { account: string }).account
      : undefined;
  return account ? [type, `account.${account}.${type}`] : [type];
}
