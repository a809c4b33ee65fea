import { difficultyFromBits } from '@hashwire/chain';
import { type Job, type KeyBuilder, SERVICE_KINDS } from '@hashwire/protocol';
import { type RedisClient, listServices } from '@hashwire/registry';
import {
  type BlockRecord,
  type WorkerCounters,
  hashesPerDiff,
  readAccountHashrate,
  readAccountWorkerNames,
  readChainHashrate,
  readHashrate,
  readHashrateHistory,
  readOnline,
  readRoundTotal,
  readShareCounts,
  readWorkers,
  reporterKeys,
} from '@hashwire/reporter';
import type { z } from 'zod';
import { decodeCursor, encodeCursor } from './cursor.js';
import type { ApiPayments } from './read-payouts.js';
import type { block, workerCounters } from './schemas.js';

/** What the api reads, from the keys the reporter and jobmanager write (every name from the key builder). */

export interface ApiChain {
  /** The chain's name (the key part of `round:{chain}`). */
  chain: string;
  /** Turns credited difficulty into hashes. */
  algorithm: 'sha256d' | 'scrypt';
  /** How the chain pays (`chains[].payments`); absent or null: it pays nobody. */
  payments?: ApiPayments | null;
}

type Block = z.infer<typeof block>;
type Worker = z.infer<typeof workerCounters>;

function scale(
  series: Record<string, number>,
  factor: number,
): { '5m': number; '1h': number; '24h': number } {
  return {
    '5m': (series['5m'] ?? 0) * factor,
    '1h': (series['1h'] ?? 0) * factor,
    '24h': (series['24h'] ?? 0) * factor,
  };
}

export async function readPool(redis: RedisClient, keys: KeyBuilder, c: ApiChain, now = Date.now()) {
  const [series, active, latest, round, shares] = await Promise.all([
    readChainHashrate(redis, keys, c.chain, now),
    readOnline(redis, keys, c.chain, now),
    redis.get(keys.latestJob(c.chain)),
    readRoundTotal(redis, keys, c.chain),
    readShareCounts(redis, keys, c.chain),
  ]);
  let network: { height: number; difficulty: number; jobAt: number } | null = null;
  if (latest) {
    const job = JSON.parse(latest) as Job;
    network = { height: job.height, difficulty: difficultyFromBits(job.nbits), jobAt: job.createdAt };
  }
  return {
    chain: c.chain,
    algorithm: c.algorithm,
    hashrate: scale(series, hashesPerDiff(c.algorithm)),
    minersOnline: active.accounts,
    workersOnline: active.workers,
    network,
    round,
    shares,
  };
}

/**
 * The stored hashrate history of the chain, or of an account: 5-minute points over the last one
 * to two hours and hourly points over 24 h (hashes per second), only those starting at or after `since`.
 */
export async function readHistory(
  redis: RedisClient,
  keys: KeyBuilder,
  c: ApiChain,
  options: { account?: string | undefined; since?: number | undefined },
  now = Date.now(),
) {
  const history = await readHashrateHistory(redis, keys, c.chain, options.account, now);
  const factor = hashesPerDiff(c.algorithm);
  const since = options.since ?? 0;
  const points = (list: { t: number; rate: number }[]) =>
    list.filter((p) => p.t >= since).map((p) => ({ t: p.t, hashrate: p.rate * factor }));
  return {
    chain: c.chain,
    ...(options.account === undefined ? {} : { account: options.account }),
    at: now,
    fiveMinutes: points(history.fiveMinutes),
    hours: points(history.hours),
  };
}

function worker(
  account: string,
  name: string,
  counters: WorkerCounters,
  rate: Record<'1m' | '5m' | '60m', number>,
  factor: number,
): Worker {
  return {
    name: name === account ? '' : name.slice(account.length + 1),
    lastShareMs: counters.lastShareMs,
    hashrate: { '1m': rate['1m'] * factor, '5m': rate['5m'] * factor, '60m': rate['60m'] * factor },
    accepted: counters.accepted,
    stale: counters.stale,
    rejected: counters.duplicate + counters.lowdiff + counters.invalid,
    duplicate: counters.duplicate,
    lowdiff: counters.lowdiff,
    invalid: counters.invalid,
    acceptedDiff: counters.acceptedDiff,
  };
}

/** One page of an account's workers, by name; the cursor is the last name given. */
export async function readAccountWorkers(
  redis: RedisClient,
  keys: KeyBuilder,
  c: ApiChain,
  account: string,
  options: { limit: number; cursor?: string | undefined },
  now = Date.now(),
): Promise<{ items: Worker[]; next: string | null; total: number }> {
  const after = decodeCursor(options.cursor, ['string'])?.[0] as string | undefined;
  const { names, more, total } = await readAccountWorkerNames(redis, keys, c.chain, account, {
    after,
    limit: options.limit,
  });
  const [counters, rates] = await Promise.all([
    readWorkers(redis, keys, c.chain, names),
    readHashrate(redis, keys, c.chain, names, now),
  ]);
  const factor = hashesPerDiff(c.algorithm);
  const items = names.flatMap((n) => {
    const w = counters.get(n);
    return w ? [worker(account, n, w, rates.get(n)!, factor)] : [];
  });
  const last = names.at(-1);
  return { items, next: more && last !== undefined ? encodeCursor([last]) : null, total };
}

export function toBlock(record: BlockRecord, candidate: string | null): Block {
  const round = record.round;
  let finder: Block['finder'] = null;
  if (round) finder = { account: round.account, worker: round.worker, shareId: round.shareId };
  else if (candidate) {
    const share = JSON.parse(candidate) as { shareId: string; account: string; worker: string };
    finder = { account: share.account, worker: share.worker, shareId: share.shareId };
  }
  return {
    hash: record.hash,
    chain: record.chain,
    height: record.height,
    state: record.state,
    confirmations: typeof record.confirmations === 'number' ? record.confirmations : null,
    finder,
    submittedAt: typeof record.submittedAt === 'number' ? record.submittedAt : null,
    updatedAt: record.updatedAt,
    reason: typeof record.reason === 'string' ? record.reason : null,
    round: round
      ? {
          accounts: round.accounts,
          totalDiff: round.totalDiff,
          closedAt: round.closedAt,
          returned: round.returned === true,
        }
      : null,
  };
}

async function readBlocks(redis: RedisClient, keys: KeyBuilder, chain: string, hashes: string[]) {
  if (hashes.length === 0) return [];
  const k = reporterKeys(keys, chain);
  const [records, candidates] = await Promise.all([
    redis.hmget(k.blocks, ...hashes),
    redis.hmget(k.candidates, ...hashes),
  ]);
  return hashes.flatMap((_, i) =>
    records[i] ? [toBlock(JSON.parse(records[i]!) as BlockRecord, candidates[i] ?? null)] : [],
  );
}

export async function readBlock(redis: RedisClient, keys: KeyBuilder, chain: string, hash: string) {
  return (await readBlocks(redis, keys, chain, [hash]))[0] ?? null;
}

/**
 * Blocks newest first (height descending, then hash descending); the cursor is the (height,
 * hash) of the last one given. `keep` filters (a page may then hold fewer than `limit`).
 */
export async function readBlockPage(
  redis: RedisClient,
  keys: KeyBuilder,
  chain: string,
  options: { limit: number; cursor?: string | undefined },
  keep: (b: Block) => boolean = () => true,
): Promise<{ items: Block[]; next: string | null }> {
  const k = reporterKeys(keys, chain);
  const after = decodeCursor(options.cursor, ['number', 'string']);
  const top = after ? String(after[0]) : '+inf';
  // Blocks at the cursor's height sort by hash; skip those at or above the cursor's hash.
  const ties = after ? await redis.zcount(k.blocksIndex, top, top) : 0;
  const flat = await redis.zrevrangebyscore(
    k.blocksIndex,
    top,
    '-inf',
    'WITHSCORES',
    'LIMIT',
    0,
    options.limit + ties + 1,
  );
  const entries: { hash: string; height: number }[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    const hash = flat[i]!;
    const height = Number(flat[i + 1]);
    if (after && height === after[0] && hash >= (after[1] as string)) continue;
    entries.push({ hash, height });
  }
  const more = entries.length > options.limit;
  const pageEntries = entries.slice(0, options.limit);
  const blocks = await readBlocks(
    redis,
    keys,
    chain,
    pageEntries.map((e) => e.hash),
  );
  const last = pageEntries.at(-1);
  return {
    items: blocks.filter(keep),
    next: more && last ? encodeCursor([last.height, last.hash]) : null,
  };
}

export async function readAccount(
  redis: RedisClient,
  keys: KeyBuilder,
  c: ApiChain,
  account: string,
  now = Date.now(),
) {
  const k = reporterKeys(keys, c.chain);
  const [series, roundDiff, workers, recent] = await Promise.all([
    readAccountHashrate(redis, keys, c.chain, [account], now),
    redis.hget(k.round, account),
    readAccountWorkerNames(redis, keys, c.chain, account, { limit: 0 }),
    readBlockPage(redis, keys, c.chain, { limit: 100 }, (b) => b.finder?.account === account),
  ]);
  const rate = series.get(account) ?? { '5m': 0, '1h': 0, '24h': 0 };
  return {
    chain: c.chain,
    account,
    hashrate: scale(rate, hashesPerDiff(c.algorithm)),
    roundDiff: Number(roundDiff ?? 0),
    workers: workers.total,
    recentBlocks: recent.items.slice(0, 10),
  };
}

/** The live services in discovery, with the endpoints each published. */
/** Endpoints anyone may see: where miners and API clients connect. */
const PUBLIC_ENDPOINTS = ['stratum', 'api'] as const;
/** And the pool's internal ones (RPC, status ports, agents): for read and admin tokens only. */
const ALL_ENDPOINTS = ['rpc', 'http', 'stratum', 'agent', 'api'] as const;

/**
 * The live services in discovery. Without `internal`, only their public endpoints (stratum and
 * api URLs): the RPC and status ports are the pool's own business (closed by default).
 */
export async function readServices(
  redis: RedisClient,
  keys: KeyBuilder,
  options: { internal?: boolean } = {},
) {
  const fields = options.internal ? ALL_ENDPOINTS : PUBLIC_ENDPOINTS;
  const lists = await Promise.all(SERVICE_KINDS.map((kind) => listServices(redis, keys, kind)));
  return lists.flat().map((s) => {
    const endpoints: Record<string, string> = {};
    for (const field of fields) {
      const value = s[field];
      if (value) endpoints[field] = value;
    }
    return {
      kind: s.kind,
      id: s.id,
      chain: s.chain,
      state: s.state,
      version: s.version,
      startedAt: s.startedAt,
      load: s.load,
      loadFigures: s.loadFigures ?? {},
      endpoints,
    };
  });
}
