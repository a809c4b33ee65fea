import { randomBytes, randomUUID } from 'node:crypto';
import { createLogger } from '@hashwire/core';
import {
  type KeyBuilder,
  type RpcErrorCode,
  type RpcMethods,
  type Share,
  createKeyBuilder,
} from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { type RpcClient, RpcError, createRpcClient } from '@hashwire/rpc';
import { type RedisServer, startRedis } from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { type Reporter, type ReporterOptions, createReporter } from '../src/index.js';

/** A fresh key prefix per test: tests share one redis-server and leave each other alone. */
export function testKeys(): KeyBuilder {
  return createKeyBuilder({ prefix: `t${randomBytes(4).toString('hex')}:` });
}

export const CHAIN = 'ltc';

let submissionSeq = 0;

/** A share; unless given, a submission of its own (extranonce2 from a counter), so the reporter's duplicate check never merges two. */
export function share(fields: Partial<Share> & Pick<Share, 'account'>): Share {
  return {
    shareId: randomUUID(),
    sessionId: 'sess-1',
    worker: 'rig1',
    jobId: '1a',
    extranonce1: 'f0000001',
    extranonce2: (++submissionSeq).toString(16).padStart(8, '0'),
    ntime: '65a1b2c3',
    nonce: randomBytes(4).toString('hex'),
    version: '20000000',
    diff: 1,
    actualDiff: 1.5,
    result: 'accepted',
    ts: Date.now(),
    ip: '10.0.0.1',
    ...fields,
  };
}

export type SharesRequest = RpcMethods['reporter.shares']['req'];

/** One sub-batch as a stratum server's spool numbers it: its id, seq and shares. */
export interface TestBatch {
  batchId: string;
  seq: number;
  stratumId: string;
  chain: string;
  shares: Share[];
}

let seqCounter = 1;

/** A sub-batch with a fresh seq in the spool of `stratumId` (`spool-<stratumId>`). */
export function batch(shares: Share[], stratumId = 'stratum-1'): TestBatch {
  return { batchId: `${randomUUID()}:0`, seq: seqCounter++, stratumId, chain: CHAIN, shares };
}

export function spoolOf(stratumId: string): string {
  return `spool-${stratumId}`;
}

/** The `reporter.shares` request carrying `subs` (all of one stratum server), with the spool's floor. */
export function wire(subs: TestBatch | TestBatch[], floor = 0): SharesRequest {
  const list = Array.isArray(subs) ? subs : [subs];
  const first = list[0]!;
  return {
    stratumId: first.stratumId,
    spoolId: spoolOf(first.stratumId),
    chain: first.chain,
    floor,
    subs: list.map((b) => ({ seq: b.seq, id: b.batchId, shares: b.shares })),
  };
}

/**
 * Sends one sub-batch in a request of its own; resolves with what it credited (first answer
 * for a repeat), rejects with the reporter's error when the request or the sub-batch is refused.
 */
export async function send(
  c: RpcClient<RpcMethods>,
  b: TestBatch,
  floor = 0,
): Promise<{ batchId: string; credited: number }> {
  const reply = await c.request('reporter.shares', wire(b, floor));
  const outcome = reply.subs[0]!;
  if (outcome.status === 'refused')
    throw new RpcError(outcome.error.code as RpcErrorCode, outcome.error.message);
  return { batchId: b.batchId, credited: outcome.credited };
}

/** `count` shares spread over `accounts` accounts of `workersPerAccount` workers, with mixed results and dyadic difficulties (sums are exact). */
export function mixedShares(count: number, accounts: number, workersPerAccount: number, seed = 1): Share[] {
  let x = seed;
  const next = () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
  const diffs = [0.5, 1, 2, 8, 64, 1024, 65536, 0.125];
  const results = [
    'accepted',
    'accepted',
    'accepted',
    'accepted',
    'accepted',
    'accepted',
    'stale',
    'duplicate',
    'lowdiff',
    'invalid',
  ] as const;
  return Array.from({ length: count }, () =>
    share({
      account: `acct${Math.floor(next() * accounts)}`,
      worker: `w${Math.floor(next() * workersPerAccount)}`,
      diff: diffs[Math.floor(next() * diffs.length)]!,
      result: results[Math.floor(next() * results.length)]!,
    }),
  );
}

/**
 * `quietHeartbeat`: no heartbeat within a test's span (60 s), so a loaded box's event-loop
 * stall never makes the client find the server again and resend what is pending: for tests
 * that count what the reporter was handed (a resend is legitimate, and counted, otherwise).
 */
export function client(endpoint: string, options: { quietHeartbeat?: boolean } = {}): RpcClient<RpcMethods> {
  return createRpcClient<RpcMethods>(endpoint, {
    timeoutMs: 10_000,
    ...(options.quietHeartbeat && { heartbeatIntervalMs: 60_000 }),
  });
}

/** Every key under the prefix with its type, TTL-independent content: to prove nothing changed. */
export async function snapshot(redis: RedisClient, keys: KeyBuilder): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const found = (await redis.keys(`${keys.prefix}*`)).sort();
  for (const key of found) {
    const type = await redis.type(key);
    if (type === 'hash') out[key] = await redis.hgetall(key);
    else if (type === 'string') out[key] = await redis.get(key);
    else if (type === 'stream') out[key] = await redis.xrange(key, '-', '+');
    else if (type === 'zset') out[key] = await redis.zrange(key, 0, -1, 'WITHSCORES');
    else out[key] = type;
  }
  return out;
}

/** Calls per command from INFO commandstats. */
export async function commandCalls(redis: RedisClient): Promise<Map<string, number>> {
  const text = (await redis.info('commandstats')) as string;
  const calls = new Map<string, number>();
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1]!, Number(match[2]));
  return calls;
}

/** Commands Redis ran between two `commandCalls` readings, leaving out the measuring itself. */
export function callsBetween(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const delta = new Map<string, number>();
  for (const [name, n] of after) {
    if (name === 'info') continue;
    const d = n - (before.get(name) ?? 0);
    if (d > 0) delta.set(name, d);
  }
  return delta;
}

/**
 * Resolves with the first `events` stream entry after `fromId` of the given type whose data
 * matches: XREAD BLOCK on a dedicated connection, so the test waits on the event itself.
 */
export async function nextStreamEvent(
  redis: RedisClient,
  key: string,
  fromId: string,
  type: string,
  match: (data: Record<string, unknown>) => boolean,
  timeoutMs = 20_000,
): Promise<{ id: string; data: Record<string, unknown> }> {
  const reader = redis.duplicate();
  reader.on('error', () => {});
  const deadline = Date.now() + timeoutMs;
  let last = fromId;
  try {
    while (Date.now() < deadline) {
      const got = (await reader.xread('BLOCK', Math.max(1, deadline - Date.now()), 'STREAMS', key, last)) as
        | [string, [string, string[]][]][]
        | null;
      if (!got) break;
      for (const [id, fields] of got[0]![1]) {
        last = id;
        const f = new Map<string, string>();
        for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
        if (f.get('type') !== type) continue;
        const data = JSON.parse(f.get('data') ?? 'null') as Record<string, unknown>;
        if (match(data)) return { id, data };
      }
    }
    throw new Error(`no ${type} event on ${key} within ${timeoutMs} ms`);
  } finally {
    reader.disconnect();
  }
}

/** The id of the last entry of a stream ('0-0' when empty): read events after it. */
export async function streamTail(redis: RedisClient, key: string): Promise<string> {
  const last = (await redis.xrevrange(key, '+', '-', 'COUNT', 1)) as [string, string[]][];
  return last[0]?.[0] ?? '0-0';
}

/**
 * One Redis server for a test file, reporters started on it and closed after each test, and
 * RPC clients to them: the set-up every reporter test file shares. Call at the file's top level
 * (it registers the hooks); read `redis` inside tests and hooks, not at import time.
 */
export interface ReporterBed {
  /** The file's Redis client (set in beforeAll). */
  redis: RedisClient;
  /** The file's redis-server URL (set in beforeAll). */
  readonly url: string;
  /** Run after each test, last pushed first. */
  cleanups: (() => Promise<unknown> | unknown)[];
  startReporter(
    keys: KeyBuilder,
    extra?: Partial<ReporterOptions>,
    redisClient?: RedisClient,
  ): Promise<Reporter>;
  rpc(reporter: Reporter, options?: { quietHeartbeat?: boolean }): RpcClient<RpcMethods>;
}

export function useReporterBed(): ReporterBed {
  let server: RedisServer | undefined;
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  const quiet = createLogger({ name: 'reporter-test', level: 'silent' });
  const bed: ReporterBed = {
    redis: undefined as unknown as RedisClient,
    get url() {
      return server!.url;
    },
    cleanups,
    /**
     * A started reporter of CHAIN on `redis` (or `redisClient`), no block poll or online sweep in
     * the way of command counts (tests sweep with `sweepOnline`).
     */
    async startReporter(
      keys: KeyBuilder,
      extra: Partial<ReporterOptions> = {},
      redisClient: RedisClient = bed.redis,
    ): Promise<Reporter> {
      const reporter = await createReporter({
        id: `r-${Math.random().toString(16).slice(2, 8)}`,
        chain: CHAIN,
        redis: redisClient,
        keys,
        logger: quiet,
        blockPollMs: 3_600_000,
        onlineSweepMs: 3_600_000,
        ...extra,
      });
      cleanups.push(() => reporter.close());
      await reporter.start();
      return reporter;
    },
    /** A client of the reporter, closed after the test (see `client` for `quietHeartbeat`). */
    rpc(reporter: Reporter, options: { quietHeartbeat?: boolean } = {}): RpcClient<RpcMethods> {
      const c = client(reporter.endpoint!, options);
      cleanups.push(() => c.close());
      return c;
    },
  };
  beforeAll(async () => {
    server = await startRedis();
    bed.redis = connectRedis(server.url, 'test');
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(async () => {
    bed.redis?.disconnect();
    await server?.stop();
  });
  return bed;
}
