import type { KeyBuilder } from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';
import {
  ACCOUNT_HOURS_KEPT,
  CHAIN_FIELD,
  ONLINE_WINDOW_MS,
  SLOT_MS,
  accountField,
  slotField,
} from './credit.js';
import { HASHRATE_WINDOWS_MIN, type HashrateWindow, reporterKeys } from './keys.js';

/** Readers of what reporters write, for the API, the CLI and tests. */

export interface WorkerCounters {
  accepted: number;
  stale: number;
  duplicate: number;
  lowdiff: number;
  invalid: number;
  /** Difficulty credited over the worker's lifetime. */
  acceptedDiff: number;
  /** Time of its latest share (epoch ms), 0 if none. */
  lastShareMs: number;
}

export interface LoggedShare {
  shareId: string;
  account: string;
  worker: string;
  diff: number;
  /** The submission as the stratum server took it (hex as sent); '' in entries written before they were logged. */
  jobId: string;
  extranonce1: string;
  extranonce2: string;
  ntime: string;
  nonce: string;
  version: string;
}

export interface ShareLogEntry {
  /** Stream entry id. */
  id: string;
  /** The ids of the sub-batches credited together (space-separated). */
  batchId: string;
  stratumId: string;
  /** The stratum spool they came from ('' in entries written before). */
  spoolId: string;
  ts: number;
  counts: { accepted: number; stale: number; duplicate: number; lowdiff: number; invalid: number };
  shares: LoggedShare[];
}

function toNumbers(record: Record<string, string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(record)) out[k] = Number(v);
  return out;
}

/** Account → credited difficulty of the current round, or of the round a block closed. */
export async function readRound(
  redis: RedisClient,
  keys: KeyBuilder,
  chain: string,
  blockHash?: string,
): Promise<Record<string, number>> {
  const k = reporterKeys(keys, chain);
  return toNumbers(await redis.hgetall(blockHash ? k.closedRound(blockHash) : k.round));
}

/**
 * The current round's number of accounts and credited difficulty, in O(1): the total the credit
 * script keeps beside the round, and the round's field count. Summed from the round itself only
 * while the total is absent (after a closed block's round was given back, until the next credit).
 */
export async function readRoundTotal(
  redis: RedisClient,
  keys: KeyBuilder,
  chain: string,
): Promise<{ accounts: number; totalDiff: number }> {
  const k = reporterKeys(keys, chain);
  const [total, accounts] = await Promise.all([redis.get(k.roundTotal), redis.hlen(k.round)]);
  if (accounts === 0) return { accounts, totalDiff: 0 };
  if (total !== null) return { accounts, totalDiff: Number(total) };
  const round = Object.values(await readRound(redis, keys, chain));
  return { accounts: round.length, totalDiff: round.reduce((a, b) => a + b, 0) };
}

/**
 * Workers and accounts online (their latest accepted share at most `ONLINE_WINDOW_MS` old), in
 * O(log N) from the zsets the credit script keeps.
 */
export async function readOnline(
  redis: RedisClient,
  keys: KeyBuilder,
  chain: string,
  now = Date.now(),
): Promise<{ workers: number; accounts: number }> {
  const k = reporterKeys(keys, chain);
  const from = now - ONLINE_WINDOW_MS;
  const [workers, accounts] = await Promise.all([
    redis.zcount(k.onlineWorkers, from, '+inf'),
    redis.zcount(k.onlineAccounts, from, '+inf'),
  ]);
  return { workers, accounts };
}

/**
 * A page of an account's worker names, sorted (`account` itself, for shares without a worker
 * name, then `account.<worker>`), after `after` (a name given before), and how many it has: from
 * the chain's worker index by lexical range, O(log N + the page).
 */
export async function readAccountWorkerNames(
  redis: RedisClient,
  keys: KeyBuilder,
  chain: string,
  account: string,
  options: { after?: string | undefined; limit: number },
): Promise<{ names: string[]; more: boolean; total: number }> {
  const k = reporterKeys(keys, chain);
  const prefix = `${account}.`;
  // Every `account.<worker>` sorts at or after `account.` and before `account/` ('/' follows '.').
  const end = `(${account}/`;
  const { after, limit } = options;
  const start = after !== undefined && after >= prefix ? `(${after}` : `[${prefix}`;
  const [bare, count, range] = await Promise.all([
    redis.zscore(k.workerIndex, account),
    redis.zlexcount(k.workerIndex, `[${prefix}`, end),
    redis.zrangebylex(k.workerIndex, start, end, 'LIMIT', 0, limit + 1),
  ]);
  const names = bare !== null && (after === undefined || after < account) ? [account] : [];
  names.push(...range);
  return { names: names.slice(0, limit), more: names.length > limit, total: count + (bare !== null ? 1 : 0) };
}

export function parseWorkerCounters(packed: string | null | undefined): WorkerCounters {
  const [
    accepted = 0,
    stale = 0,
    duplicate = 0,
    lowdiff = 0,
    invalid = 0,
    acceptedDiff = 0,
    lastShareMs = 0,
  ] = (packed ?? '')
    .split(' ')
    .filter((v) => v !== '')
    .map(Number);
  return { accepted, stale, duplicate, lowdiff, invalid, acceptedDiff, lastShareMs };
}

/** Lifetime counters of workers (`account.worker`, or the account alone); all of the chain's when `names` is absent. */
export async function readWorkers(
  redis: RedisClient,
  keys: KeyBuilder,
  chain: string,
  names?: readonly string[],
): Promise<Map<string, WorkerCounters>> {
  const k = reporterKeys(keys, chain);
  const out = new Map<string, WorkerCounters>();
  if (names) {
    if (names.length === 0) return out;
    const values = await redis.hmget(k.workers, ...names);
    names.forEach((name, i) => {
      if (values[i] != null) out.set(name, parseWorkerCounters(values[i]));
    });
    return out;
  }
  for (const [name, packed] of Object.entries(await redis.hgetall(k.workers))) {
    out.set(name, parseWorkerCounters(packed));
  }
  return out;
}

/**
 * Credited difficulty per second over the last 1, 5 and 60 minutes for each worker: the
 * current bucket of the window's size plus the part of the previous bucket still inside the
 * window. Multiply by the chain's hashes per difficulty 1 (`hashesPerDiff`) for a hashrate.
 */
export async function readHashrate(
  redis: RedisClient,
  keys: KeyBuilder,
  chain: string,
  names: readonly string[],
  now = Date.now(),
): Promise<Map<string, Record<`${HashrateWindow}m`, number>>> {
  const k = reporterKeys(keys, chain);
  const out = new Map<string, Record<`${HashrateWindow}m`, number>>();
  for (const name of names) out.set(name, { '1m': 0, '5m': 0, '60m': 0 });
  if (names.length === 0) return out;
  const pipeline = redis.pipeline();
  for (const window of HASHRATE_WINDOWS_MIN) {
    const bucket = Math.floor(now / (window * 60_000));
    pipeline.hmget(k.hashrate(window, bucket), ...names);
    pipeline.hmget(k.hashrate(window, bucket - 1), ...names);
  }
  const results = (await pipeline.exec()) ?? [];
  HASHRATE_WINDOWS_MIN.forEach((window, w) => {
    const sizeMs = window * 60_000;
    const elapsed = now % sizeMs;
    const [currentError, current] = results[2 * w] ?? [];
    const [previousError, previous] = results[2 * w + 1] ?? [];
    if (currentError) throw currentError;
    if (previousError) throw previousError;
    names.forEach((name, i) => {
      const cur = Number((current as (string | null)[])[i] ?? 0);
      const prev = Number((previous as (string | null)[])[i] ?? 0);
      out.get(name)![`${window}m`] = (cur + prev * (1 - elapsed / sizeMs)) / (window * 60);
    });
  });
  return out;
}

/** The account and chain hashrate windows. */
export type SeriesWindow = '5m' | '1h' | '24h';

const HOUR_MS = 3_600_000;

/**
 * Credited difficulty per second over the last 5 min, 1 h and 24 h of hashrate fields (`|account`,
 * `|` for the chain): 5 min from the 5-minute buckets, 1 h and 24 h from the hour buckets, each
 * the whole buckets inside the window plus the part of the oldest one still inside it.
 */
async function readSeries(
  redis: RedisClient,
  keys: KeyBuilder,
  chain: string,
  fields: readonly string[],
  now: number,
): Promise<Record<SeriesWindow, number>[]> {
  const k = reporterKeys(keys, chain);
  const out = fields.map(() => ({ '5m': 0, '1h': 0, '24h': 0 }));
  if (fields.length === 0) return out;
  const pipeline = redis.pipeline();
  const five = Math.floor(now / 300_000);
  pipeline.hmget(k.hashrate(5, five), ...fields);
  pipeline.hmget(k.hashrate(5, five - 1), ...fields);
  const hour = Math.floor(now / HOUR_MS);
  // Index i holds hour `hour - i`, 0 to 24.
  for (let i = 0; i <= 24; i++) pipeline.hmget(k.accountHashrate(hour - i), ...fields);
  const results = (await pipeline.exec()) ?? [];
  const values = results.map(([error, value]) => {
    if (error) throw error;
    return (value as (string | null)[]).map((v) => Number(v ?? 0));
  });
  const fiveLeft = 1 - (now % 300_000) / 300_000;
  const hourLeft = 1 - (now % HOUR_MS) / HOUR_MS;
  fields.forEach((_, f) => {
    const at = (i: number) => values[i]![f]!;
    out[f]!['5m'] = (at(0) + at(1) * fiveLeft) / 300;
    out[f]!['1h'] = (at(2) + at(3) * hourLeft) / 3600;
    let day = at(2 + 24) * hourLeft;
    for (let i = 0; i < 24; i++) day += at(2 + i);
    out[f]!['24h'] = day / 86_400;
  });
  return out;
}

/** Credited difficulty per second of accounts over the last 5 min, 1 h and 24 h (× `hashesPerDiff` for a hashrate). */
export async function readAccountHashrate(
  redis: RedisClient,
  keys: KeyBuilder,
  chain: string,
  accounts: readonly string[],
  now = Date.now(),
): Promise<Map<string, Record<SeriesWindow, number>>> {
  const series = await readSeries(redis, keys, chain, accounts.map(accountField), now);
  return new Map(accounts.map((account, i) => [account, series[i]!]));
}

/** Credited difficulty per second of the whole chain over the last 5 min, 1 h and 24 h. */
export async function readChainHashrate(
  redis: RedisClient,
  keys: KeyBuilder,
  chain: string,
  now = Date.now(),
): Promise<Record<SeriesWindow, number>> {
  return (await readSeries(redis, keys, chain, [CHAIN_FIELD], now))[0]!;
}

/** Share counts by result. */
export interface ShareCounts {
  accepted: number;
  stale: number;
  duplicate: number;
  lowdiff: number;
  invalid: number;
}

/**
 * The chain's share counts by result over its lifetime, pool-wide, in O(1): the sum the credit
 * script keeps with every credited request (counted once however often a request is delivered).
 */
export async function readShareCounts(
  redis: RedisClient,
  keys: KeyBuilder,
  chain: string,
): Promise<ShareCounts> {
  const packed = await redis.get(reporterKeys(keys, chain).shareCounts);
  const [accepted = 0, stale = 0, duplicate = 0, lowdiff = 0, invalid = 0] = (packed ?? '')
    .split(' ')
    .filter((v) => v !== '')
    .map(Number);
  return { accepted, stale, duplicate, lowdiff, invalid };
}

/** One point of a hashrate history: credited difficulty per second over `[t, t + step)` (so far, for the current one). */
export interface HistoryPoint {
  /** Start of the interval, epoch ms. */
  t: number;
  /** Credited difficulty per second (× `hashesPerDiff` for a hashrate). */
  rate: number;
}

export interface HashrateHistory {
  /** Every 5 minutes from the start of the previous hour (what the hour buckets of workers keep) to now, oldest first. */
  fiveMinutes: HistoryPoint[];
  /** Every hour of the last 24 and the current one, oldest first. */
  hours: HistoryPoint[];
}

/**
 * The stored hashrate history of an account (or of the chain, `account` absent): 5-minute
 * points from the 5-minute slots of the hour buckets `hr:{chain}:60m:<hour>` (kept for their hour
 * and the next), hourly points from `hra:{chain}:60m:<hour>` (kept 26 h). An interval with no
 * credit is 0; the current interval is averaged over its elapsed part. One pipeline of 27 reads.
 */
export async function readHashrateHistory(
  redis: RedisClient,
  keys: KeyBuilder,
  chain: string,
  account?: string,
  now = Date.now(),
): Promise<HashrateHistory> {
  const k = reporterKeys(keys, chain);
  const hour = Math.floor(now / HOUR_MS);
  const slots = HOUR_MS / SLOT_MS;
  const slotFields = Array.from({ length: slots }, (_, slot) => slotField(slot, account));
  const hourField = account === undefined ? CHAIN_FIELD : accountField(account);
  const pipeline = redis.pipeline();
  pipeline.hmget(k.hashrate(60, hour - 1), ...slotFields);
  pipeline.hmget(k.hashrate(60, hour), ...slotFields);
  const hoursBack = Math.min(24, ACCOUNT_HOURS_KEPT - 1);
  for (let i = hoursBack; i >= 0; i--) pipeline.hmget(k.accountHashrate(hour - i), hourField);
  const results = ((await pipeline.exec()) ?? []).map(([error, value]) => {
    if (error) throw error;
    return (value as (string | null)[]).map((v) => Number(v ?? 0));
  });
  // Seconds of [start, start + size) already past (at least 1, so a just-begun interval is finite).
  const seconds = (start: number, size: number) => Math.max(1, Math.min(size, now - start)) / 1000;
  const fiveMinutes: HistoryPoint[] = [];
  for (let h = 0; h < 2; h++) {
    const start = (hour - 1 + h) * HOUR_MS;
    results[h]!.forEach((diff, slot) => {
      const t = start + slot * SLOT_MS;
      if (t <= now) fiveMinutes.push({ t, rate: diff / seconds(t, SLOT_MS) });
    });
  }
  const hours: HistoryPoint[] = results.slice(2).map(([diff = 0], i) => {
    const t = (hour - hoursBack + i) * HOUR_MS;
    return { t, rate: diff / seconds(t, HOUR_MS) };
  });
  return { fiveMinutes, hours };
}

/** Hashes a miner does on average per share of difficulty 1 (scrypt pools use diff1 × 65536). */
export function hashesPerDiff(algorithm: 'sha256d' | 'scrypt'): number {
  return algorithm === 'scrypt' ? 2 ** 16 : 2 ** 32;
}

export function parseShareLogEntry(id: string, fields: string[]): ShareLogEntry {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
  const [accepted = 0, stale = 0, duplicate = 0, lowdiff = 0, invalid = 0] = (f.get('counts') ?? '')
    .split(' ')
    .map(Number);
  const text = f.get('shares') ?? '';
  const shares: LoggedShare[] =
    text === ''
      ? []
      : text.split('\n').map((line) => {
          const [
            shareId = '',
            account = '',
            worker = '',
            diff = '0',
            jobId = '',
            extranonce1 = '',
            extranonce2 = '',
            ntime = '',
            nonce = '',
            version = '',
          ] = line.split('\t');
          return {
            shareId,
            account,
            worker,
            diff: Number(diff),
            jobId,
            extranonce1,
            extranonce2,
            ntime,
            nonce,
            version,
          };
        });
  return {
    id,
    batchId: f.get('batch') ?? '',
    stratumId: f.get('stratum') ?? '',
    spoolId: f.get('spool') ?? '',
    ts: Number(f.get('ts') ?? 0),
    counts: { accepted, stale, duplicate, lowdiff, invalid },
    shares,
  };
}

/** Every entry of the share log still retained, oldest first (read in pages of `pageSize` entries). */
export async function* readShareLog(
  redis: RedisClient,
  keys: KeyBuilder,
  chain: string,
  options: { after?: string; pageSize?: number } = {},
): AsyncGenerator<ShareLogEntry> {
  const key = reporterKeys(keys, chain).shareLog;
  const pageSize = options.pageSize ?? 100;
  let start = options.after ? `(${options.after}` : '-';
  for (;;) {
    const page = (await redis.xrange(key, start, '+', 'COUNT', pageSize)) as [string, string[]][];
    for (const [id, fields] of page) yield parseShareLogEntry(id, fields);
    if (page.length < pageSize) return;
    start = `(${page.at(-1)![0]}`;
  }
}
