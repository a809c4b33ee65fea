import { ShareResult as Results, type ShareResult } from '@hashwire/protocol';
import { HASHRATE_WINDOWS_MIN, type ReporterKeys } from './keys.js';
import type { ShareBatch } from './validate.js';

export interface CreditReply {
  batchId: string;
  credited: number;
}

export type ResultCounts = Record<ShareResult, number>;

/** One batch turned into the arguments of `credit-batch.lua`: everything aggregated per account, worker and bucket. */
export interface CreditPlan {
  keys: string[];
  args: (string | number)[];
  reply: CreditReply;
  counts: ResultCounts;
  /** Accepted shares carrying a block hash (block candidates). */
  candidates: string[];
}

export interface CreditSettings {
  batchTtlS: number;
  shareLogMaxLen: number;
  now: number;
}

const RESULT_INDEX: Record<ShareResult, 0 | 1 | 2 | 3 | 4> = {
  [Results.Accepted]: 0,
  [Results.Stale]: 1,
  [Results.Duplicate]: 2,
  [Results.LowDiff]: 3,
  [Results.Invalid]: 4,
};

/** What a worker did in one batch: counts by result, credited difficulty, last share time. */
interface WorkerTally {
  counts: [number, number, number, number, number];
  diff: number;
  lastMs: number;
}

/** `account.worker`, or the account alone when the miner gave no worker name (as it logged in). */
export function workerName(account: string, worker: string): string {
  return worker === '' ? account : `${account}.${worker}`;
}

export function planCredit(batch: ShareBatch, keys: ReporterKeys, settings: CreditSettings): CreditPlan {
  const { now } = settings;
  const accounts = new Map<string, number>();
  const workers = new Map<string, WorkerTally>();
  // Per window size: bucket number → worker → difficulty.
  const buckets = HASHRATE_WINDOWS_MIN.map(() => new Map<number, Map<string, number>>());
  const counts: ResultCounts = { accepted: 0, stale: 0, duplicate: 0, lowdiff: 0, invalid: 0 };
  const log: string[] = [];
  const candidates: string[] = [];
  const candidateArgs: string[] = [];

  for (const share of batch.shares) {
    const name = workerName(share.account, share.worker);
    let tally = workers.get(name);
    if (!tally) {
      tally = { counts: [0, 0, 0, 0, 0], diff: 0, lastMs: 0 };
      workers.set(name, tally);
    }
    tally.counts[RESULT_INDEX[share.result]]++;
    counts[share.result]++;
    if (share.ts > tally.lastMs) tally.lastMs = share.ts;
    if (share.result !== Results.Accepted) continue;

    const diff = share.diff;
    tally.diff += diff;
    accounts.set(share.account, (accounts.get(share.account) ?? 0) + diff);
    // The submission itself too, so a credit can be traced to what the miner sent.
    log.push(
      `${share.shareId}\t${share.account}\t${share.worker}\t${diff}\t${share.jobId}\t${share.extranonce1}\t${share.extranonce2}\t${share.ntime}\t${share.nonce}\t${share.version}`,
    );
    // A share stamped in the future (clock skew) counts now; one older than its bucket's
    // lifetime (a spool replayed after an outage) no longer moves any hashrate window.
    const ts = Math.min(share.ts, now);
    for (let w = 0; w < HASHRATE_WINDOWS_MIN.length; w++) {
      const sizeMs = HASHRATE_WINDOWS_MIN[w]! * 60_000;
      const bucket = Math.floor(ts / sizeMs);
      if ((bucket + 2) * sizeMs <= now) continue;
      const byBucket = buckets[w]!;
      let perWorker = byBucket.get(bucket);
      if (!perWorker) {
        perWorker = new Map();
        byBucket.set(bucket, perWorker);
      }
      perWorker.set(name, (perWorker.get(name) ?? 0) + diff);
    }
    if (share.blockHash !== undefined) {
      const hash = share.blockHash.toLowerCase();
      candidates.push(hash);
      candidateArgs.push(
        hash,
        JSON.stringify({
          shareId: share.shareId,
          account: share.account,
          worker: share.worker,
          diff: share.diff,
          actualDiff: share.actualDiff,
          ts: share.ts,
          batchId: batch.batchId,
          stratumId: batch.stratumId,
        }),
      );
    }
  }

  const reply: CreditReply = { batchId: batch.batchId, credited: counts.accepted };
  const scriptKeys = [keys.batch(batch.batchId), keys.round, keys.workers, keys.shareLog, keys.candidates];
  const args: (string | number)[] = [
    settings.batchTtlS,
    JSON.stringify(reply),
    settings.shareLogMaxLen,
    batch.batchId,
    batch.stratumId,
    now,
    log.join('\n'),
    `${counts.accepted} ${counts.stale} ${counts.duplicate} ${counts.lowdiff} ${counts.invalid}`,
    accounts.size,
    workers.size,
    candidates.length,
  ];
  for (const [account, diff] of accounts) args.push(account, diff);
  for (const [name, t] of workers) {
    args.push(
      name,
      `${t.counts[0]} ${t.counts[1]} ${t.counts[2]} ${t.counts[3]} ${t.counts[4]} ${t.diff} ${t.lastMs}`,
    );
  }
  for (let w = 0; w < HASHRATE_WINDOWS_MIN.length; w++) {
    const window = HASHRATE_WINDOWS_MIN[w]!;
    const sizeMs = window * 60_000;
    for (const [bucket, perWorker] of buckets[w]!) {
      scriptKeys.push(keys.hashrate(window, bucket));
      // Kept while it can still be the previous bucket of a window, plus a minute of slack.
      args.push(Math.ceil(((bucket + 2) * sizeMs) / 1000) + 60, perWorker.size);
      for (const [name, diff] of perWorker) args.push(name, diff);
    }
  }
  args.push(...candidateArgs);
  return { keys: scriptKeys, args, reply, counts, candidates };
}
