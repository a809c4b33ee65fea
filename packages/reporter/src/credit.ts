import { createHash } from 'node:crypto';
import { ShareResult as Results, type Share, type ShareResult } from '@hashwire/protocol';
import { HASHRATE_WINDOWS_MIN, type ReporterKeys } from './keys.js';
import type { ShareBatch } from './validate.js';

/** What one sub-batch of a request credited. */
export interface SubCredit {
  seq: number;
  batchId: string;
  credited: number;
}

export type ResultCounts = Record<ShareResult, number>;

/** The sub-batches of one request (validated) and whose spool they come from. */
export interface CreditRequest {
  stratumId: string;
  spoolId: string;
  floor: number;
  subs: ShareBatch[];
}

/** One request turned into the arguments of `credit-batch.lua`: everything aggregated per account, worker and bucket. */
export interface CreditPlan {
  keys: string[];
  args: (string | number)[];
  /** Per sub-batch, in request order. */
  credits: SubCredit[];
  counts: ResultCounts;
  /** The difficulty of the accepted shares it credits (`hashwire_accepted_difficulty_total`). */
  acceptedDiff: number;
  /** Accepted shares carrying a block hash (block candidates). */
  candidates: string[];
  /**
   * The share (`<seq>:<share index>`) behind each share digest given to the script, in
   * order: the script names shares another batch claimed first by these positions (1-based).
   */
  seenShares: string[];
}

export interface CreditSettings {
  /** How long a spool's acknowledgements live after its last credit. */
  batchTtlS: number;
  /** How long a job's seen hash lives after its last credited share. */
  seenTtlS: number;
  /** Share log entries kept at most (approximate). */
  shareLogMaxLen: number;
  /** Share log entries older than this are deleted. */
  shareLogRetentionS: number;
  /** The chain, named in the `worker.online` events the credit emits. */
  chain: string;
  /** Entries kept in the chain's events stream (approximate). */
  eventsMaxLen: number;
  /** Append each credit to the PPLNS share window (payouts). @defaultValue false */
  shareWindow?: boolean;
  now: number;
}

/** Hashrate bucket field of an account's total (`|` never appears in a worker name). */
export function accountField(account: string): string {
  return `|${account}`;
}
/** Hashrate bucket field of the chain's total. */
export const CHAIN_FIELD = '|';

const HOUR_MS = 3_600_000;
/** The 5-minute slots of an hour bucket (`hr:{chain}:60m:<hour>`) hold the hashrate history's 5-minute points. */
export const SLOT_MS = 300_000;

/**
 * Field of the hour bucket holding the credited difficulty of one 5-minute slot (0–11) of the
 * hour: of an account (`|<slot>|<account>`), or of the chain (`|<slot>|`). No worker name has a
 * `|`, and no account either, so it never meets a worker's or `|<account>` field.
 */
export function slotField(slot: number, account = ''): string {
  return `|${slot}|${account}`;
}
/** A worker or account is online while its latest accepted share is at most this old. */
export const ONLINE_WINDOW_MS = 600_000;
/** Keys every credit script call has, before the seen keys (see `credit-batch.lua`). */
const FIXED_KEYS = 11;
/** Hour buckets of accounts and the chain are kept this many hours from their start (24 h + the partial one + slack). */
export const ACCOUNT_HOURS_KEPT = 26;

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

/** The value a share's seen entry holds: which sub-batch claimed it (12 characters). */
export function batchDigest(batchId: string): string {
  return createHash('sha256').update(batchId).digest().subarray(0, 9).toString('base64url');
}

/** The spool acknowledgement of a sub-batch: `<seq>:<credited>:<digest of its id>`. */
export function ackMember(seq: number, credited: number, batchId: string): string {
  return `${seq}:${credited}:${batchDigest(batchId)}`;
}

/**
 * Plans the credit of a request's sub-batches. Shares named in `duplicates`
 * (`<seq>:<share index>`, found claimed by another batch on an earlier try) and any
 * repeat of a share inside the request itself are counted as `duplicate` for their worker and
 * not credited.
 */
export function planCredit(
  request: CreditRequest,
  keys: ReporterKeys,
  settings: CreditSettings,
  duplicates: ReadonlySet<string> = new Set(),
): CreditPlan {
  const { now } = settings;
  const accounts = new Map<string, number>();
  const workers = new Map<string, WorkerTally>();
  // Per window size: bucket number → field (worker, |account, |) → difficulty.
  const buckets = HASHRATE_WINDOWS_MIN.map(() => new Map<number, Map<string, number>>());
  // Hour bucket → |account and | (chain) → difficulty, kept for the 24 h hashrate.
  const hours = new Map<number, Map<string, number>>();
  // Latest accepted share (ms, never in the future) of each worker and account: who is online.
  const onlineWorkers = new Map<string, number>();
  const onlineAccounts = new Map<string, number>();
  const latest = (map: Map<string, number>, field: string, ms: number) =>
    map.set(field, Math.max(map.get(field) ?? 0, ms));
  const counts: ResultCounts = { accepted: 0, stale: 0, duplicate: 0, lowdiff: 0, invalid: 0 };
  const log: string[] = [];
  const candidates: string[] = [];
  const candidateArgs: string[] = [];
  const credits: SubCredit[] = [];
  // Seen key → the identities of this request's accepted shares on that job, with the digest of their sub-batch.
  const seen = new Map<string, { identities: Map<string, string>; shares: string[] }>();
  const add = (map: Map<string, number>, field: string, diff: number) =>
    map.set(field, (map.get(field) ?? 0) + diff);

  for (let s = 0; s < request.subs.length; s++) {
    const batch = request.subs[s]!;
    const digest = batchDigest(batch.batchId);
    let subCredited = 0;
    for (let index = 0; index < batch.shares.length; index++) {
      const share = batch.shares[index]!;
      let result = share.result;
      if (result === Results.Accepted) {
        const seenKey = keys.shareSeen(share.jobId);
        let job = seen.get(seenKey);
        if (!job) {
          job = { identities: new Map(), shares: [] };
          seen.set(seenKey, job);
        }
        const identity = shareIdentity(share);
        const position = `${batch.seq}:${index}`;
        if (duplicates.has(position) || job.identities.has(identity)) {
          result = Results.Duplicate;
        } else {
          job.identities.set(identity, digest);
          job.shares.push(position);
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

      subCredited++;
      const diff = share.diff;
      tally.diff += diff;
      add(accounts, share.account, diff);
      // The submission itself too, so a credit can be traced to what the miner sent.
      log.push(
        `${share.shareId}\t${share.account}\t${share.worker}\t${diff}\t${share.jobId}\t${share.extranonce1}\t${share.extranonce2}\t${share.ntime}\t${share.nonce}\t${share.version}`,
      );
      // A share stamped in the future (clock skew) counts now; one older than its bucket's
      // lifetime (a spool replayed after an outage) no longer moves any hashrate window.
      const ts = Math.min(share.ts, now);
      // A share older than the online window (a replayed spool) does not bring anyone online.
      if (ts >= now - ONLINE_WINDOW_MS) {
        latest(onlineWorkers, name, ts);
        latest(onlineAccounts, share.account, ts);
      }
      for (let w = 0; w < HASHRATE_WINDOWS_MIN.length; w++) {
        const sizeMs = HASHRATE_WINDOWS_MIN[w]! * 60_000;
        const bucket = Math.floor(ts / sizeMs);
        if ((bucket + 2) * sizeMs <= now) continue;
        const byBucket = buckets[w]!;
        let fields = byBucket.get(bucket);
        if (!fields) {
          fields = new Map();
          byBucket.set(bucket, fields);
        }
        add(fields, name, diff);
        if (HASHRATE_WINDOWS_MIN[w] === 5) {
          // The account and the chain in the worker hash: no command more per request.
          add(fields, accountField(share.account), diff);
          add(fields, CHAIN_FIELD, diff);
        } else if (HASHRATE_WINDOWS_MIN[w] === 60) {
          // The account and the chain per 5-minute slot of the hour, kept as long as the hour
          // bucket (its hour and the next): the 5-minute history (`readHashrateHistory`), no command more.
          const slot = Math.floor((ts % HOUR_MS) / SLOT_MS);
          add(fields, slotField(slot, share.account), diff);
          add(fields, slotField(slot), diff);
        }
      }
      const hour = Math.floor(ts / HOUR_MS);
      if ((hour + ACCOUNT_HOURS_KEPT) * HOUR_MS > now) {
        let fields = hours.get(hour);
        if (!fields) {
          fields = new Map();
          hours.set(hour, fields);
        }
        add(fields, accountField(share.account), diff);
        add(fields, CHAIN_FIELD, diff);
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
    credits.push({ seq: batch.seq, batchId: batch.batchId, credited: subCredited });
  }

  const scriptKeys = [
    keys.spoolAcks(request.spoolId),
    keys.round,
    keys.workers,
    keys.shareLog,
    keys.candidates,
    keys.roundTotal,
    keys.workerIndex,
    keys.onlineWorkers,
    keys.onlineAccounts,
    keys.events,
    keys.shareCounts,
  ];
  const seenShares: string[] = [];
  const seenArgs: (string | number)[] = [];
  for (const [seenKey, job] of seen) {
    if (job.shares.length === 0) continue;
    scriptKeys.push(seenKey);
    seenArgs.push(job.shares.length);
    for (const [identity, digest] of job.identities) seenArgs.push(identity, digest);
    seenShares.push(...job.shares);
  }
  const seenKeyCount = scriptKeys.length - FIXED_KEYS;
  const args: (string | number)[] = [
    settings.batchTtlS,
    now - settings.shareLogRetentionS * 1000,
    settings.shareLogMaxLen,
    request.subs.map((b) => b.batchId).join(' '),
    request.stratumId,
    now,
    log.join('\n'),
    `${counts.accepted} ${counts.stale} ${counts.duplicate} ${counts.lowdiff} ${counts.invalid}`,
    accounts.size,
    workers.size,
    candidates.length,
    settings.seenTtlS,
    seenKeyCount,
    request.floor,
    credits.length,
    request.spoolId,
  ];
  for (const c of credits) args.push(c.seq, ackMember(c.seq, c.credited, c.batchId));
  args.push(...seenArgs);
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
    for (const [bucket, fields] of buckets[w]!) {
      scriptKeys.push(keys.hashrate(window, bucket));
      // Kept while it can still be the previous bucket of a window, plus a minute of slack.
      args.push(Math.ceil(((bucket + 2) * sizeMs) / 1000) + 60, fields.size);
      for (const [field, diff] of fields) args.push(field, diff);
    }
  }
  for (const [hour, fields] of hours) {
    scriptKeys.push(keys.accountHashrate(hour));
    args.push(Math.ceil(((hour + ACCOUNT_HOURS_KEPT) * HOUR_MS) / 1000) + 60, fields.size);
    for (const [field, diff] of fields) args.push(field, diff);
  }
  args.push(...candidateArgs);
  args.push(now - ONLINE_WINDOW_MS, onlineWorkers.size);
  for (const [name, ms] of onlineWorkers) args.push(name, ms);
  args.push(onlineAccounts.size);
  for (const [account, ms] of onlineAccounts) args.push(account, ms);
  args.push(settings.chain, settings.eventsMaxLen);
  // The PPLNS share window's keys go last; the last argument says how many there are.
  if (settings.shareWindow) scriptKeys.push(...keys.shareWindow);
  args.push(settings.shareWindow ? keys.shareWindow.length : 0);
  let acceptedDiff = 0;
  for (const diff of accounts.values()) acceptedDiff += diff;
  return { keys: scriptKeys, args, credits, counts, acceptedDiff, candidates, seenShares };
}
