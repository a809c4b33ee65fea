import { createHash } from 'node:crypto';
import type { KeyBuilder } from '@hashwire/protocol';

/** Hashrate bucket sizes: a window of W minutes is read from the W-minute buckets. */
export const HASHRATE_WINDOWS_MIN = [1, 5, 60] as const;
export type HashrateWindow = (typeof HASHRATE_WINDOWS_MIN)[number];

/** Job ids used as they are in a key name; others (never a jobmanager's) by their digest. */
const PLAIN_JOB_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** The key part for a job id: the id itself, or `x:` and a digest when it is not key-safe (no plain id has a colon). */
function jobKeyPart(jobId: string): string {
  if (PLAIN_JOB_ID.test(jobId)) return jobId;
  return `x:${createHash('sha256').update(jobId).digest('hex').slice(0, 32)}`;
}

/**
 * The reporter's Redis keys of one chain, every one from the protocol key builder (so all in
 * the chain's `{chain}` hash slot: each script, and the replication WAIT after it, goes to one node).
 */
export function reporterKeys(keys: KeyBuilder, chain: string) {
  return {
    /** Hash share identity → batch digest of one job's credited shares (the cluster-wide duplicate check). */
    shareSeen: (jobId: string) => keys.shareSeen(chain, jobKeyPart(jobId)),
    round: keys.round(chain),
    /** The round a block closed: `round:{chain}:<blockHash>`. */
    closedRound: (blockHash: string) => keys.closedRound(chain, blockHash),
    /** Hash worker (`account.worker`) → packed lifetime counters. */
    workers: keys.workers(chain),
    /** Zset of the chain's worker names at score 0, read by lexical range (an account's workers). */
    workerIndex: keys.workerIndex(chain),
    /** Zsets worker / account → latest accepted share (ms), trimmed to the online window. */
    onlineWorkers: keys.onlineWorkers(chain),
    onlineAccounts: keys.onlineAccounts(chain),
    /** The chain's lifetime share counts by result, packed `accepted stale duplicate lowdiff invalid`. */
    shareCounts: keys.shareCounts(chain),
    /** The current round's credited difficulty, summed; absent until its first credit. */
    roundTotal: keys.roundTotal(chain),
    /** Hash worker → credited difficulty in one bucket of `windowMin` minutes starting at `bucket × windowMin`. */
    hashrate: (windowMin: HashrateWindow, bucket: number) => keys.hashrate(chain, windowMin, bucket),
    /** Hash `|account` / `|` (chain) → credited difficulty in one hour bucket; kept 26 h. */
    accountHashrate: (bucket: number) => keys.accountHashrate(chain, bucket),
    /** Zset of one stratum spool's acknowledged sub-batches and its floor. */
    spoolAcks: (spoolId: string) => keys.spoolAcks(chain, spoolId),
    /** Stream, one entry per credited request, with every accepted share; trimmed by age. */
    shareLog: keys.shareLog(chain),
    blocks: keys.blocks(chain),
    blocksIndex: keys.blocksIndex(chain),
    /** Hash block hash → the share that found it, until its block record settles the round. */
    candidates: keys.candidates(chain),
    events: keys.events(chain),
    /** The PPLNS share window's keys, in the order `credit-batch.lua` takes them last. */
    shareWindow: [
      keys.shareWindow(chain),
      keys.shareWindowTotal(chain),
      keys.shareWindowFound(chain),
      keys.shareWindowPending(chain),
      keys.shareWindowKeep(chain),
    ] as readonly string[],
  } as const;
}

export type ReporterKeys = ReturnType<typeof reporterKeys>;
