import { randomBytes, randomUUID } from 'node:crypto';
import { createApiService } from '@hashwire/api';
import { createLogger } from '@hashwire/core';
import { type RpcMethods, type Share, createKeyBuilder } from '@hashwire/protocol';
import { appendEvent, connectRedis } from '@hashwire/registry';
import { createReporter } from '@hashwire/reporter';
import { createRpcClient } from '@hashwire/rpc';
import { startRedis } from '@hashwire/testkit';
import { WebSocketServer } from 'ws';
import { startBenchChild } from '../child-ipc.js';
import { percentile } from '../measure.js';
import type { BenchContext, BenchResult, BenchSuite } from '../types.js';
import type { CollectResult, OpenSubscribersParams } from '../ws-subscribers-child.js';

const CHAIN = 'bench';
const WORKERS_PER_ACCOUNT = 1000;
const RATE_PER_S = 500;
const SHARES_PER_SUB_BATCH = 5000;

/** One accepted share per worker, credited by a real reporter: the pool the reads run against. */
export async function creditPool(ctx: BenchContext, endpoint: string, accounts: number): Promise<void> {
  const rpc = createRpcClient<RpcMethods>(endpoint, { timeoutMs: 120_000 });
  const now = Date.now();
  const all: Share[] = [];
  for (let a = 0; a < accounts; a++) {
    for (let w = 0; w < WORKERS_PER_ACCOUNT; w++) {
      all.push({
        shareId: randomUUID(),
        sessionId: `s${a}`,
        account: `acct${a}`,
        worker: `w${w}`,
        jobId: '1',
        extranonce1: (a + 1).toString(16).padStart(8, '0'),
        extranonce2: w.toString(16).padStart(8, '0'),
        ntime: '65a1b2c3',
        nonce: randomBytes(4).toString('hex'),
        version: '20000000',
        diff: 1024,
        actualDiff: 2048,
        result: 'accepted',
        ts: now,
        ip: '10.0.0.1',
      });
    }
  }
  try {
    for (let seq = 0; seq * SHARES_PER_SUB_BATCH < all.length; seq++) {
      const shares = all.slice(seq * SHARES_PER_SUB_BATCH, (seq + 1) * SHARES_PER_SUB_BATCH);
      const reply = await rpc.request('reporter.shares', {
        stratumId: 'bench',
        spoolId: 'bench-spool',
        chain: CHAIN,
        floor: seq,
        subs: [{ seq, id: `${randomUUID()}:0`, shares }],
      });
      if (reply.subs[0]?.status !== 'credited') throw new Error(`api bench: sub-batch ${seq} not credited`);
    }
    ctx.log(`api: ${all.length} workers in ${accounts} accounts credited`);
  } finally {
    rpc.close();
  }
}

/** Requests in flight at most; past it the next waits (and its wait counts in its latency). */
const MAX_IN_FLIGHT = 64;
/** A request this late on its schedule ends the run: the API cannot keep the rate. */
const GIVE_UP_LATE_MS = 10_000;

/**
 * Requests at `RATE_PER_S` for `seconds` (open loop): each latency is counted from when the
 * request was due, so time spent queued behind slow ones counts (no coordinated omission).
 * When the API falls `GIVE_UP_LATE_MS` behind, the run stops early and says so.
 */
async function load(ctx: BenchContext, what: string, url: string, seconds: number): Promise<number[]> {
  const planned = Math.max(1, Math.round(seconds * RATE_PER_S));
  const intervalMs = 1000 / RATE_PER_S;
  const start = performance.now();
  const pending: Promise<number>[] = [];
  let inFlight = 0;
  const slot: { wake: (() => void) | null } = { wake: null };
  for (let i = 0; i < planned; i++) {
    const due = start + i * intervalMs;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    while (inFlight >= MAX_IN_FLIGHT)
      await new Promise<void>((resolve) => {
        slot.wake = resolve;
      });
    if (performance.now() - due > GIVE_UP_LATE_MS) {
      ctx.log(`api: ${what}: ${GIVE_UP_LATE_MS / 1000} s behind after ${i} of ${planned} requests; stopped`);
      break;
    }
    inFlight++;
    pending.push(
      (async () => {
        try {
          const res = await fetch(url);
          await res.arrayBuffer();
          if (res.status !== 200) throw new Error(`api bench: ${url} answered ${res.status}`);
          return performance.now() - due;
        } finally {
          inFlight--;
          const wake = slot.wake;
          slot.wake = null;
          wake?.();
        }
      })(),
    );
  }
  return Promise.all(pending);
}

function p99(name: string, samples: number[], baseline: number[], baselineName: string): BenchResult {
  return {
    name,
    value: Number(percentile(samples, 99).toFixed(3)),
    unit: 'ms (p99)',
    higherIsBetter: false,
    baseline: { name: baselineName, value: Number(percentile(baseline, 99).toFixed(3)) },
  };
}

/** Epoch ms with sub-millisecond precision: the subscribers' child reads the same clock. */
const nowMs = (): number => performance.timeOrigin + performance.now();

const FANOUT_TARGET_MS = 50;
const FANOUT_INTERVAL_MS = 50;

/**
 * `count` WebSocket subscribers in a child process, `events` events at one per 50 ms through
 * `send` (which stamps `sentAt`); every subscriber must receive every event. The latencies, from
 * just before the send (the XADD for the api) to each arrival.
 */
async function fanout(
  ctx: BenchContext,
  what: string,
  params: OpenSubscribersParams,
  events: number,
  send: (n: number) => Promise<void> | void,
): Promise<number[]> {
  const child = startBenchChild('ws-subscribers-child');
  try {
    await child.request('open', params);
    for (let n = 0; n < events; n++) {
      const started = performance.now();
      await send(n);
      const wait = FANOUT_INTERVAL_MS - (performance.now() - started);
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    const result = await child.request<CollectResult>('collect', { events, timeoutMs: 30_000 });
    if (result.short > 0)
      throw new Error(`api bench: ${what}: ${result.short} of ${params.count} subscribers missed events`);
    ctx.log(`api: ${what}: ${params.count} subscribers × ${events} events received`);
    return result.latenciesMs;
  } finally {
    await child.close();
  }
}

/**
 * `api.ws_fanout_2k_p99_ms`: 2,000 subscribers of `GET /v1/stream` (topic `block.*`), each
 * receiving every event appended to the chain's stream. Baseline, same run: a bare `ws` server
 * sending each event to the same number of sockets in a loop (no Redis, no topics).
 */
export async function wsFanout(ctx: BenchContext): Promise<BenchResult> {
  const count = ctx.quick ? 200 : 2000;
  const events = ctx.quick ? 10 : 100;
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => wss.once('listening', resolve));
  let baseline: number[];
  try {
    const address = wss.address() as { port: number };
    baseline = await fanout(
      ctx,
      'bare ws broadcast',
      { url: `ws://127.0.0.1:${address.port}`, count, topic: null },
      events,
      (n) => {
        const text = JSON.stringify({ n, sentAt: nowMs() });
        for (const client of wss.clients) client.send(text);
      },
    );
  } finally {
    for (const client of wss.clients) client.terminate();
    await new Promise((resolve) => wss.close(resolve));
  }
  const server = await startRedis();
  const redis = connectRedis(server.url, 'bench-ws');
  const keys = createKeyBuilder({ prefix: 'benchws:' });
  const api = await createApiService({
    id: 'api-ws',
    redis,
    keys,
    chains: [{ chain: CHAIN, algorithm: 'scrypt' }],
    port: 0,
    httpPortRange: [0, 0],
    // 2,000 subscribers from one address: WebSocket upgrades count against the rate limit, which
    // stays in the path with a budget this one client cannot exhaust.
    rateLimit: { max: 1_000_000, windowMs: 60_000 },
    logger: createLogger({ name: 'bench', level: 'silent' }),
  });
  try {
    await api.start();
    const url = `${api.url!.replace(/^http/, 'ws')}/v1/stream`;
    const samples = await fanout(ctx, 'api stream', { url, count, topic: 'block.*' }, events, async (n) => {
      await appendEvent(
        redis,
        keys,
        'block.accepted',
        {
          chain: CHAIN,
          hash: n.toString(16).padStart(64, '0'),
          height: n,
          state: 'accepted',
          sentAt: nowMs(),
        },
        CHAIN,
      );
    });
    const value = Number(percentile(samples, 99).toFixed(3));
    return {
      name: 'api.ws_fanout_2k_p99_ms',
      value,
      unit: 'ms (p99)',
      higherIsBetter: false,
      baseline: {
        name: `bare ws broadcast loop to ${count} sockets p99`,
        value: Number(percentile(baseline, 99).toFixed(3)),
      },
      target: `< ${FANOUT_TARGET_MS} ms`,
      met: value < FANOUT_TARGET_MS,
    };
  } finally {
    await api.close();
    redis.disconnect();
    await server.stop();
  }
}

/**
 * Reads of one account of 1,000 workers in a pool of 100k workers (10k with --quick), at 500
 * requests a second, through the real api on data a real reporter credited. Baseline, same run:
 * `/v1/openapi.json` at the same rate, an answer without Redis (the HTTP floor).
 */
export const apiSuite: BenchSuite = {
  name: 'api',
  description:
    'read API: an account of 1,000 workers among 100k, at 500 requests/s; live stream fan-out to 2,000 WebSocket subscribers',
  async run(ctx) {
    const accounts = ctx.quick ? 10 : 100;
    const seconds = ctx.quick ? 1 : 10;
    const server = await startRedis();
    const redis = connectRedis(server.url, 'bench');
    const keys = createKeyBuilder({ prefix: 'bench:' });
    const logger = createLogger({ name: 'bench', level: 'silent' });
    const reporter = await createReporter({
      id: 'r',
      chain: CHAIN,
      redis,
      keys,
      logger,
      blockPollMs: 3_600_000,
    });
    const api = await createApiService({
      id: 'api',
      redis,
      keys,
      chains: [{ chain: CHAIN, algorithm: 'scrypt' }],
      port: 0,
      httpPortRange: [0, 0],
      // One client at 500 requests/s: the limiter stays in the path (its Redis count is part
      // of a request's cost) but never refuses.
      rateLimit: { max: 1_000_000, windowMs: 60_000 },
      logger,
    });
    try {
      await reporter.start();
      await creditPool(ctx, reporter.endpoint!, accounts);
      await api.start();
      const base = api.url!;
      const target = `acct${Math.floor(accounts / 2)}`;
      ctx.log(`api: ${RATE_PER_S} requests/s for ${seconds} s per figure`);
      const chain = `${base}/v1/chains/${CHAIN}`;
      const floor = await load(ctx, 'openapi', `${base}/v1/openapi.json`, seconds);
      const account = await load(ctx, 'account', `${chain}/accounts/${target}`, seconds);
      const workers = await load(ctx, 'workers', `${chain}/accounts/${target}/workers?limit=100`, seconds);
      const pool = await load(ctx, 'pool', chain, seconds);
      const floorName = '/v1/openapi.json p99 (no Redis)';
      return [
        await wsFanout(ctx),
        p99('api.read_account_p99_ms', account, floor, floorName),
        p99('api.read_account_workers_p99_ms', workers, floor, floorName),
        p99('api.read_pool_p99_ms', pool, floor, floorName),
      ];
    } finally {
      await api.close();
      await reporter.close();
      redis.disconnect();
      await server.stop();
    }
  },
};
