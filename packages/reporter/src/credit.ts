import { createHash } from 'node:crypto';
import { ShareResult as Results, type Share, type ShareResult } from '@hashwire/protocol';
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
  /** The difficulty of the accepted shares it credits (`hashwire_accepted_difficulty_total`). */
  acceptedDiff: number;
  /** Accepted shares carrying a block hash (block candidates). */
  candidates: string[];
  /**
   * The share (index in the batch) behind each share digest given to the script, in order: the
   * script names shares another batch claimed first by these positions (1-based).
   */
  seenShares: number[];
}

export interface CreditSettings {
  batchTtlS: number;
  /** How long a job's seen hash lives after its last credited share. */
  seenTtlS: number;
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

const HEX = /^[0-9a-f]*$/;

function byteLength(hex: string): string {
  return (hex.length >>> 1).toString(16).padStart(2, '0');
}

/**
 * What makes a share the same share, whoever submitted it and through whichever server:
 * extranonce1, extranonce2, ntime, nonce and version (the job is the key it is stored under),
 * case-folded. Packed as bytes (with the two extranonce lengths) and written base64url: 35
 * characters for 4 + 8 extranonce bytes, exact, so two shares never collide. A field that is
 * not plain hex (never the case for a share a stratum server accepted) falls back to the text.
 */
export function shareIdentity(share: Share): string {
  const en1 = share.extranonce1.toLowerCase();
  const en2 = share.extranonce2.toLowerCase();
  const ntime = share.ntime.toLowerCase();
  const nonce = share.nonce.toLowerCase();
  const version = share.version.toLowerCase();
  if (
    ntime.length === 8 &&
    nonce.length === 8 &&
    version.length === 8 &&
    en1.length > 0 &&
    en1.length <= 64 &&
    (en1.length & 1) === 0 &&
    en2.length > 0 &&
    en2.length <= 64 &&
    (en2.length & 1) === 0
  ) {
    const packed = `${byteLength(en1)}${en1}${byteLength(en2)}${en2}${ntime}${nonce}${version}`;
    if (HEX.test(packed)) return Buffer.from(packed, 'hex').toString('base64url');
  }
  // '~' never appears in base64url.
  return `~${en1} ${en2} ${ntime} ${nonce} ${version}`;
}

/** The value a share's seen entry holds: which batch claimed it (12 characters). */
export function batchDigest(batchId: string): string {
  return createHash('sha256').update(batchId).digest().subarray(0, 9).toString('base64url');
}

/**
 * Plans the credit of `batch`. Shares at the indices in `duplicates` (found claimed by another
 * batch on an earlier try) and any repeat of a share inside the batch itself are counted as
 * `duplicate` for their worker and not credited.
 */
export function planCredit(
  batch: ShareBatch,
  keys: ReporterKeys,
  settings: CreditSettings,
  duplicates: ReadonlySet<number> = new Set(),
): CreditPlan {
  const { now } = settings;
  const accounts = new Map<string, number>();
  const workers = new Map<string, WorkerTally>();
  // Per window size: bucket number → worker → difficulty.
  const buckets = HASHRATE_WINDOWS_MIN.map(() => new Map<number, Map<string, number>>());
  const counts: ResultCounts = { accepted: 0, stale: 0, duplicate: 0, lowdiff: 0, invalid: 0 };
  const log: string[] = [];
  const candidates: string[] = [];
  const candidateArgs: string[] = [];
  // Seen key → the identities of this batch's accepted shares on that job.
  const seen = new Map<string, { identities: Set<string>; shares: number[] }>();

  for (let index = 0; index < batch.shares.length; index++) {
    const share = batch.shares[index]!;
    let result = share.result;
    if (result === Results.Accepted) {
      const seenKey = keys.shareSeen(share.jobId);
      let job = seen.get(seenKey);
      if (!job) {
        job = { identities: new Set(), shares: [] };
        seen.set(seenKey, job);
      }
      const identity = shareIdentity(share);
      if (duplicates.has(index) || job.identities.has(identity)) {
        result = Results.Duplicate;
      } else {
        job.identities.add(identity);
        job.shares.push(index);
      }
    }
    const name = workerName(share.account, share.worker);
    let tally = workers.get(name);
    if (!tally) {
      tally = { counts: [0, 0, 0, 0, 0], diff: 0, lastMs: 0 };
      workers.set(name, tally);
    }
    tally.counts[RESULT_INDEX[result]]++;
    counts[result]++;
    if (share.ts > tally.lastMs) tally.lastMs = share.ts;
    if (result !== Results.Accepted) continue;

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
  const seenShares: number[] = [];
  const seenArgs: (string | number)[] = [];
  for (const [seenKey, job] of seen) {
    if (job.shares.length === 0) continue;
    scriptKeys.push(seenKey);
    seenArgs.push(job.shares.length, ...job.identities);
    seenShares.push(...job.shares);
  }
  const seenKeyCount = scriptKeys.length - 5;
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
    settings.seenTtlS,
    batchDigest(batch.batchId),
    seenKeyCount,
    ...seenArgs,
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
  let acceptedDiff = 0;
  for (const diff of accounts.values()) acceptedDiff += diff;
  return { keys: scriptKeys, args, reply, counts, acceptedDiff, candidates, seenShares };
}
