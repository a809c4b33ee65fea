import { createHash } from 'node:crypto';
import type { KeyBuilder } from '@hashwire/protocol';

/** Hashrate bucket sizes: a window of W minutes is read from the W-minute buckets. */
export const HASHRATE_WINDOWS_MIN = [1, 5, 60] as const;
export type HashrateWindow = (typeof HASHRATE_WINDOWS_MIN)[number];

const HEX64 = /^[0-9a-f]{64}$/;
/** Job ids used as they are in a key name; others (never a jobmanager's) by their digest. */
const PLAIN_JOB_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** The key part for a job id: the id itself, or `x:` and a digest when it is not key-safe (no plain id has a colon). */
function jobKeyPart(jobId: string): string {
  if (PLAIN_JOB_ID.test(jobId)) return jobId;
  return `x:${createHash('sha256').update(jobId).digest('hex').slice(0, 32)}`;
}

/**
 * The reporter's Redis keys of one chain. Every key comes from the protocol key builder; the
 * ones it has no entry for yet (worker counters, hashrate buckets, share log, block candidates)
 * are derived from `round(chain)` so they share its `{chain}` hash tag.
 */
export function reporterKeys(keys: KeyBuilder, chain: string) {
  const round = keys.round(chain); // validates the chain name
  const tag = round.slice(keys.prefix.length + 'round:'.length); // '{chain}'
  const blocks = keys.blocks(chain);
  return {
    /** Hash share identity → batch digest of one job's credited shares (the cluster-wide duplicate check). */
    shareSeen: (jobId: string) => keys.shareSeen(chain, jobKeyPart(jobId)),
    round,
    /** The round a block closed: `round:{chain}:<blockHash>`. */
    closedRound: (blockHash: string) => {
      if (!HEX64.test(blockHash))
        throw new TypeError(`block hash ${JSON.stringify(blockHash)} is not 64 hex digits`);
      return `${round}:${blockHash}`;
    },
    /** Hash worker (`account.worker`) → packed lifetime counters. */
    workers: `${keys.prefix}workers:${tag}`,
    /** Hash worker → credited difficulty in one bucket of `windowMin` minutes starting at `bucket × windowMin`. */
    hashrate: (windowMin: HashrateWindow, bucket: number) =>
      `${keys.prefix}hr:${tag}:${windowMin}m:${bucket}`,
    /** Hash `|account` / `|` (chain) → credited difficulty in one hour bucket; kept 26 h. */
    accountHashrate: (bucket: number) => keys.accountHashrate(chain, bucket),
    /** Zset of one stratum spool's acknowledged sub-batches and its floor. */
    spoolAcks: (spoolId: string) => keys.spoolAcks(chain, spoolId),
    /** Stream, one entry per credited request, with every accepted share; trimmed by age. */
    shareLog: `${keys.prefix}sharelog:${tag}`,
    blocks,
    blocksIndex: keys.blocksIndex(chain),
    /** Hash block hash → the share that found it, until its block record settles the round. */
    candidates: `${blocks}:candidates`,
    events: keys.events(),
  } as const;
}

export type ReporterKeys = ReturnType<typeof reporterKeys>;
