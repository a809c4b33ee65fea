import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BucketRing,
  RpcErrorCode,
  type RpcMethods,
  SHARES_WIRE,
  type Share,
  createKeyBuilder,
} from '@hashwire/protocol';
import {
  type RedisClient,
  type ServiceRegistration,
  connectRedis,
  registerService,
} from '@hashwire/registry';
import { RpcError, type RpcServer, createRpcServer } from '@hashwire/rpc';
import { type RedisServer, startRedis } from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ForwarderEvents, ShareForwarderOptions } from '../src/forwarder-options.js';
import { ShareForwarder } from '../src/forwarder.js';
import { splitBatch } from '../src/share-routing.js';
import { type ShareBatch, ShareSpool } from '../src/spool.js';

type SharesRequest = RpcMethods['reporter.shares']['req'];
/** One sub-batch as a reporter sees it: its request's envelope with its id, seq and shares. */
type SubBody = Omit<SharesRequest, 'subs'> & { batchId: string; seq: number; shares: Share[] };
type SubReply = { batchId: string; credited: number; status?: 'credited' | 'repeat' | 'forgotten' };

/**
 * The rpc heartbeat (the default): 3 s of silence make a dead reporter. With 200 ms the 600 ms
 * allowed are within a loaded machine's event-loop delays in a process holding both ends, and a
 * live reporter taken for dead gets its request resent: a second copy where one is asserted.
 */
const HEARTBEAT_MS = 1000;
const WAIT_MS = 20_000;

let redisServer: RedisServer;
let redis: RedisClient;
let keys: ReturnType<typeof createKeyBuilder>;
let dir: string;
const cleanup: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  redisServer = await startRedis();
  redis = connectRedis(redisServer.url);
});
afterAll(async () => {
  redis.disconnect();
  await redisServer.stop();
});
beforeEach(() => {
  keys = createKeyBuilder({ prefix: `t${randomBytes(4).toString('hex')}:` });
  dir = mkdtempSync(join(tmpdir(), 'hw-fwd-'));
});
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
  rmSync(dir, { recursive: true, force: true });
});

let shareSeq = 0;
function share(account: string, worker: string): Share {
  shareSeq++;
  return {
    shareId: `sh${shareSeq}`,
    sessionId: 'sess',
    account,
    worker,
    jobId: 'j1',
    extranonce1: '00000001',
    extranonce2: shareSeq.toString(16).padStart(8, '0'),
    ntime: '65f1c2a0',
    nonce: '00000000',
    version: '20000000',
    diff: 1,
    actualDiff: 1.5,
    result: 'accepted',
    ts: 1_700_000_000_000 + shareSeq,
    ip: '127.0.0.1',
  };
}

/** Appends shares of `accounts` accounts × `workers` workers and seals them as one batch. */
async function sealBatch(
  spool: ShareSpool,
  accounts: number,
  workers: number,
  tag = 'a',
): Promise<ShareBatch> {
  const shares: Share[] = [];
  for (let a = 0; a < accounts; a++)
    for (let w = 0; w < workers; w++) shares.push(share(`${tag}cct${a}`, `rig${w}`));
  await Promise.all(shares.map((s) => spool.append(s)));
  const batch = spool.seal();
  if (!batch) throw new Error('nothing sealed');
  return batch;
}

type Behaviour = (body: SubBody, reporter: FakeReporter) => SubReply | Promise<SubReply>;

const answer: Behaviour = (body) => ({ batchId: body.batchId, credited: body.shares.length });

/** A reporter test double: a real rpc server registered in the real registry, recording batch ids. */
function isMalformed(error: unknown): boolean {
  return (
    error instanceof RpcError &&
    (error.code === RpcErrorCode.BadRequest || error.code === RpcErrorCode.TooLarge)
  );
}

class FakeReporter extends EventEmitter<{ request: [SubBody] }> {
  /** Every sub-batch received, in order. */
  readonly received: SubBody[] = [];
  /** Every request received (each carries one or more sub-batches). */
  readonly requests: SharesRequest[] = [];
  server!: RpcServer;
  registration!: ServiceRegistration;
  behaviour: Behaviour = answer;
  /** Judges the request as a whole first (throws to refuse all of it). */
  checkRequest: (request: SharesRequest) => void = () => {};
  /** Replies waiting for `release()`. */
  held: (() => void)[] = [];

  constructor(readonly id: string) {
    super();
  }

  ids(): string[] {
    return this.received.map((r) => r.batchId);
  }

  async listen(): Promise<string> {
    this.server = await createRpcServer<RpcMethods>({
      heartbeatIntervalMs: HEARTBEAT_MS,
      handlers: {
        'reporter.shares': async (request) => {
          this.requests.push(request);
          this.checkRequest(request);
          const { subs, ...envelope } = request;
          const bodies = subs.map((sub) => ({
            ...envelope,
            batchId: sub.id,
            seq: sub.seq,
            shares: sub.shares,
          }));
          for (const body of bodies) {
            this.received.push(body);
            this.emit('request', body);
          }
          // A sub-batch's malformed refusal is its own; any other failure fails the request.
          const results = await Promise.allSettled(bodies.map(async (body) => this.behaviour(body, this)));
          for (const result of results) {
            if (result.status === 'rejected' && !isMalformed(result.reason)) throw result.reason;
          }
          return {
            subs: results.map((result, i) =>
              result.status === 'fulfilled'
                ? {
                    seq: bodies[i]!.seq,
                    status: result.value.status ?? ('credited' as const),
                    credited: result.value.credited,
                  }
                : {
                    seq: bodies[i]!.seq,
                    status: 'refused' as const,
                    error: {
                      code: (result.reason as RpcError).code,
                      message: (result.reason as RpcError).message,
                    },
                  },
            ),
          };
        },
      },
    });
    return this.server.endpoint;
  }

  release(): void {
    const held = this.held;
    this.held = [];
    for (const resolve of held) resolve();
  }

  /** The process dies: the rpc server is gone, the registry entry stays until its TTL. */
  kill(): void {
    void this.server.close();
  }

  async close(): Promise<void> {
    this.release();
    await this.registration.close();
    await this.server.close();
  }
}

async function startReporter(id: string, behaviour: Behaviour = answer): Promise<FakeReporter> {
  const reporter = new FakeReporter(id);
  reporter.behaviour = behaviour;
  const rpc = await reporter.listen();
  reporter.registration = await registerService({
    redis,
    keys,
    kind: 'reporter',
    id,
    rpc,
    chain: 'ltc',
    sharesWire: SHARES_WIRE,
  });
  cleanup.push(() => reporter.close());
  return reporter;
}

/** Holds the reply until `release()`, then answers normally. */
function holding(): Behaviour {
  return (body, reporter) =>
    new Promise<SubReply>((resolve) => {
      reporter.held.push(() => resolve(answer(body, reporter)));
    });
}

async function openSpool(): Promise<ShareSpool> {
  const spool = await ShareSpool.open({ dir, batchIntervalMs: 60_000 });
  cleanup.push(() => spool.close());
  return spool;
}

async function startForwarder(
  spool: ShareSpool,
  options: Partial<ShareForwarderOptions> = {},
): Promise<ShareForwarder> {
  const forwarder = new ShareForwarder({
    spool,
    redis,
    keys,
    stratumId: 'st-1',
    chain: 'ltc',
    heartbeatIntervalMs: HEARTBEAT_MS,
    reconcileMs: 100,
    requestTimeoutMs: 10_000,
    retryDelayMs: 20,
    maxRetryDelayMs: 200,
    suspectMs: 60_000,
    ...options,
  });
  cleanup.push(() => forwarder.close());
  await forwarder.start();
  return forwarder;
}

/** The first `event` whose payload passes `match`, or a rejection naming what was awaited. */
function until<K extends keyof ForwarderEvents & string>(
  emitter: ShareForwarder,
  event: K,
  match: (...args: ForwarderEvents[K]) => boolean,
  what: string,
): Promise<ForwarderEvents[K][0]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, listener as never);
      reject(new Error(`waited ${WAIT_MS} ms for ${what}`));
    }, WAIT_MS);
    const listener = (...args: ForwarderEvents[K]) => {
      if (!match(...args)) return;
      clearTimeout(timer);
      emitter.off(event, listener as never);
      resolve(args[0]);
    };
    emitter.on(event, listener as never);
  });
}

/** Resolves once `check()` holds, re-checking on every `event` of `emitter`. */
function when(emitter: EventEmitter, event: string, check: () => boolean, what: string): Promise<void> {
  if (check()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`waited ${WAIT_MS} ms for ${what}`));
    }, WAIT_MS);
    const listener = () => {
      if (!check()) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve();
    };
    emitter.on(event, listener);
  });
}

function ringOf(forwarder: ShareForwarder, n: number): Promise<void> {
  return when(
    forwarder,
    'ring',
    () => forwarder.currentRing().servers.length === n,
    `a ring of ${n} reporters`,
  );
}

function idle(forwarder: ShareForwarder): Promise<void> {
  return Promise.race([
    forwarder.whenIdle(),
    new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error(`backlog not drained: ${JSON.stringify(forwarder.stats())}`)),
        WAIT_MS,
      ),
    ),
  ]);
}

function batchFiles(): string[] {
  return readdirSync(dir).filter((f) => f.startsWith('batch-'));
}

function shareIdsOf(...reporters: FakeReporter[]): Set<string> {
  return new Set(reporters.flatMap((r) => r.received.flatMap((b) => b.shares.map((s) => s.shareId))));
}

const bucketOf = (subBatchId: string) => Number(subBatchId.slice(subBatchId.lastIndexOf(':') + 1));

describe('share forwarder', () => {
  it('splits a batch per bucket, sends each part to its bucket’s first reporter and acks the spool once all answered', async () => {
    const reporters = await Promise.all([startReporter('rep-a'), startReporter('rep-b')]);
    const spool = await openSpool();
    const forwarder = await startForwarder(spool);
    await ringOf(forwarder, 2);
    const ring = forwarder.currentRing();

    const batch = await sealBatch(spool, 6, 5);
    const acked = await until(forwarder, 'acked', (e) => e.batchId === batch.batchId, 'the batch ack');

    const parts = splitBatch(batch, ring);
    expect(parts.length).toBeGreaterThan(3);
    expect(acked.subBatches).toEqual(parts.map((p) => `${batch.batchId}:${p.bucket}`));
    for (const part of parts) {
      const primary = ring.serversFor(part.bucket)[0];
      for (const reporter of reporters) {
        expect(reporter.ids().filter((id) => id === part.id)).toHaveLength(reporter.id === primary ? 1 : 0);
      }
    }
    expect(reporters.every((r) => r.received.length > 0)).toBe(true);
    // One request per reporter carries all of the batch's sub-batches routed to it, numbered
    // in the spool and with the spool's floor.
    for (const reporter of reporters) expect(reporter.requests).toHaveLength(1);
    expect(forwarder.stats()).toMatchObject({ requests: 2, subBatchesSent: parts.length });
    expect(reporters[0]!.received[0]).toMatchObject({
      stratumId: 'st-1',
      chain: 'ltc',
      spoolId: spool.spoolId,
    });
    const seqs = reporters.flatMap((r) => r.received.map((b) => b.seq)).sort((x, y) => x - y);
    expect(new Set(seqs).size).toBe(parts.length);
    for (const reporter of reporters) expect(reporter.requests[0]!.floor).toBeLessThanOrEqual(seqs[0]!);
    const delivered = reporters.flatMap((r) => r.received.flatMap((b) => b.shares.map((s) => s.shareId)));
    expect(delivered.sort()).toEqual(batch.shares.map((s) => s.shareId).sort());
    expect(spool.stats()).toMatchObject({ pendingBatches: 0, acked: 30 });
    expect(batchFiles()).toEqual([]);
    expect(forwarder.stats()).toMatchObject({
      reporters: 2,
      backlogBatches: 0,
      ackedBatches: 1,
      ackedShares: 30,
      credited: 30,
      failedRequests: 0,
    });
  });

  it('a reporter killed mid-stream: the next server of its buckets takes the same sub-batches, nothing is lost', async () => {
    const reporters = await Promise.all(['rep-a', 'rep-b', 'rep-c'].map((id) => startReporter(id)));
    const byId = new Map(reporters.map((r) => [r.id, r]));
    const spool = await openSpool();
    const forwarder = await startForwarder(spool);
    await ringOf(forwarder, 3);
    const ring = forwarder.currentRing();

    const first = await sealBatch(spool, 8, 4);
    await until(forwarder, 'acked', (e) => e.batchId === first.batchId, 'the first batch');

    // The victim dies with the next batch's requests in hand: handled or not, never answered.
    const victim = byId.get(ring.route('acct0', 'rig0').servers[0]!)!;
    const unanswered: string[] = [];
    victim.behaviour = (body) => {
      unanswered.push(body.batchId);
      victim.kill();
      return new Promise<never>(() => {});
    };
    const second = await sealBatch(spool, 8, 4);
    await until(forwarder, 'acked', (e) => e.batchId === second.batchId, 'the batch the victim held');
    const third = await sealBatch(spool, 8, 4);
    await until(forwarder, 'acked', (e) => e.batchId === third.batchId, 'a batch after the kill');

    expect(unanswered.length).toBeGreaterThan(0);
    for (const id of unanswered) {
      const next = byId.get(ring.serversFor(bucketOf(id))[1]!)!;
      expect(next.ids()).toContain(id);
    }
    // Later batches go straight past the dead reporter (still registered, as after SIGKILL).
    for (const part of splitBatch(third, ring)) {
      const order = ring.serversFor(part.bucket).filter((id) => id !== victim.id);
      expect(byId.get(order[0]!)!.ids()).toContain(part.id);
    }
    const survivors = reporters.filter((r) => r !== victim);
    const answeredByVictim = victim.received.filter((b) => !unanswered.includes(b.batchId));
    const delivered = new Set([
      ...shareIdsOf(...survivors),
      ...answeredByVictim.flatMap((b) => b.shares.map((s) => s.shareId)),
    ]);
    for (const batch of [first, second, third]) {
      for (const s of batch.shares) expect(delivered.has(s.shareId)).toBe(true);
    }
    expect(spool.stats().pendingBatches).toBe(0);
    expect(forwarder.stats().failovers).toBeGreaterThan(0);
  });

  it('resends a sub-batch whose ack was lost with the same id (the reporter dedupes on it)', async () => {
    const reporter = await startReporter('rep-a');
    let dropped = false;
    reporter.behaviour = async (body, self) => {
      if (dropped) return answer(body, self);
      dropped = true;
      // Handled, then the connection drops before the reply: the reporter comes back on a new port.
      const old = self.server;
      await self.listen();
      void old.close();
      await self.registration.update({ rpc: self.server.endpoint });
      return new Promise<never>(() => {});
    };
    const spool = await openSpool();
    const forwarder = await startForwarder(spool);
    await ringOf(forwarder, 1);

    const batch = await sealBatch(spool, 1, 1);
    const acked = await until(
      forwarder,
      'acked',
      (e) => e.batchId === batch.batchId,
      'the ack after the resend',
    );
    expect(acked.subBatches).toHaveLength(1);
    // The same id, at least twice: once handled without an answer, then acknowledged.
    expect(reporter.ids().length).toBeGreaterThanOrEqual(2);
    expect(new Set(reporter.ids())).toEqual(new Set(acked.subBatches));
    expect(spool.stats()).toMatchObject({ pendingBatches: 0, acked: 1 });
    expect(forwarder.stats().ackedSubBatches).toBe(1);
  });

  it('after a restart, replays the spool and resends every pending batch with the same sub-batch ids', async () => {
    const reporter = await startReporter('rep-a', holding());
    const spool = await ShareSpool.open({ dir, batchIntervalMs: 60_000 });
    const forwarder = await startForwarder(spool);
    await ringOf(forwarder, 1);
    const batches = [await sealBatch(spool, 3, 3, 'x'), await sealBatch(spool, 3, 3, 'y')];
    const expected = batches.flatMap((b) => splitBatch(b, forwarder.currentRing()).map((p) => p.id)).sort();
    await when(
      reporter,
      'request',
      () => reporter.received.length === expected.length,
      'every sub-batch sent',
    );
    const firstRun = reporter.ids().sort();
    expect(firstRun).toEqual(expected);

    // The stratum process goes away with nothing acknowledged.
    await forwarder.close();
    spool.close();
    reporter.received.length = 0;
    reporter.behaviour = answer;

    const reopened = await openSpool();
    expect(reopened.pendingBatchIds().sort()).toEqual(batches.map((b) => b.batchId).sort());
    const restarted = await startForwarder(reopened);
    await idle(restarted);
    expect(reporter.ids().sort()).toEqual(firstRun);
    expect(reopened.stats().pendingBatches).toBe(0);
    expect(batchFiles()).toEqual([]);
  });

  it('with no reporter, batches pile up on disk (a bounded window in memory), operators are warned, and they drain once one appears', async () => {
    const spool = await openSpool();
    const forwarder = await startForwarder(spool, { maxInFlightBatches: 2, backlogWarnBatches: 4 });
    const warnings: string[] = [];
    forwarder.on('backlog', (e) => warnings.push(`${e.reason}@${e.batches}`));

    const batches: ShareBatch[] = [];
    for (let i = 0; i < 6; i++) batches.push(await sealBatch(spool, 2, 2, `b${i}`));
    expect(warnings).toEqual(['no-reporter@1', 'no-reporter@4']);
    expect(forwarder.stats()).toMatchObject({ backlogBatches: 6, queuedBatches: 6, inFlightBatches: 0 });
    // Each batch and its journal.
    expect(batchFiles().filter((f) => f.endsWith('.jsonl'))).toHaveLength(6);
    expect(batchFiles().filter((f) => f.endsWith('.journal'))).toHaveLength(6);

    // A reporter that does not answer yet: only the window of batches is read from disk.
    const reporter = await startReporter('rep-a', holding());
    await ringOf(forwarder, 1);
    expect(forwarder.stats()).toMatchObject({ backlogBatches: 6, queuedBatches: 4, inFlightBatches: 2 });
    const sent = () => new Set(reporter.ids().map((id) => id.slice(0, id.lastIndexOf(':'))));
    await when(reporter, 'request', () => sent().size === 2, 'the window of two batches');

    const cleared = until(forwarder, 'backlogCleared', () => true, 'the backlog to clear');
    reporter.behaviour = answer;
    reporter.release();
    await cleared;
    expect(spool.stats().pendingBatches).toBe(0);
    expect(batchFiles()).toEqual([]);
    expect(shareIdsOf(reporter)).toEqual(new Set(batches.flatMap((b) => b.shares.map((s) => s.shareId))));
    expect(forwarder.stats()).toMatchObject({ backlogBatches: 0, ackedBatches: 6, backlogWarnings: 2 });
  });

  it('keeps an in-flight sub-batch on the reporter it was first routed to when a new one joins; a draining reporter gets no new batches', async () => {
    const a = await startReporter('rep-a', holding());
    const spool = await openSpool();
    const forwarder = await startForwarder(spool);
    await ringOf(forwarder, 1);

    // A worker whose bucket rep-b will lead once it joins.
    const grown = new BucketRing(['rep-a', 'rep-b']);
    let worker = 0;
    while (grown.route('acct', `rig${worker}`).servers[0] !== 'rep-b') worker++;
    await spool.append(share('acct', `rig${worker}`));
    const held = spool.seal()!;
    await when(a, 'request', () => a.received.length === 1, 'the sub-batch at rep-a');

    const b = await startReporter('rep-b');
    await ringOf(forwarder, 2);
    await spool.append(share('acct', `rig${worker}`));
    const fresh = spool.seal()!;
    await until(forwarder, 'acked', (e) => e.batchId === fresh.batchId, 'the new batch');
    expect(b.ids()).toEqual(splitBatch(fresh, grown).map((p) => p.id));

    a.release();
    await until(forwarder, 'acked', (e) => e.batchId === held.batchId, 'the held batch');
    expect(a.ids()).toEqual(splitBatch(held, grown).map((p) => p.id));
    expect(b.ids()).not.toContain(a.ids()[0]);

    // rep-b drains: everything new goes to rep-a.
    a.behaviour = answer;
    await b.registration.update({ state: 'draining' });
    await ringOf(forwarder, 1);
    const after = await sealBatch(spool, 4, 4);
    await until(forwarder, 'acked', (e) => e.batchId === after.batchId, 'a batch while rep-b drains');
    expect(b.received).toHaveLength(1);
    expect(a.ids()).toEqual(expect.arrayContaining(splitBatch(after, grown).map((p) => p.id)));
  });

  it('quarantines, never takes as credited, a sub-batch the reporters call forgotten (below the spool floor) though it was never acknowledged here', async () => {
    const reporter = await startReporter('rep-a', (body) => ({
      batchId: body.batchId,
      credited: 0,
      status: 'forgotten',
    }));
    const spool = await openSpool();
    const forwarder = await startForwarder(spool);
    await ringOf(forwarder, 1);
    const batch = await sealBatch(spool, 1, 1);
    const quarantined = await until(
      forwarder,
      'quarantined',
      (e) => e.batchId === batch.batchId,
      'the quarantine',
    );
    expect(quarantined).toMatchObject({ reason: 'refused', shares: 1, reporters: ['rep-a'] });
    expect(quarantined.message).toMatch(/sequence numbers were given twice/);
    await idle(forwarder);
    expect(forwarder.stats()).toMatchObject({ credited: 0, ackedSubBatches: 0, quarantinedShares: 1 });
    expect(reporter.received).toHaveLength(1);
  });

  it('a request refused whole as malformed (too large) is sent again one sub-batch per request: each judged on itself, all credited, none quarantined', async () => {
    const reporter = await startReporter('rep-a');
    reporter.checkRequest = (request) => {
      if (request.subs.length > 1) throw new RpcError(RpcErrorCode.TooLarge, 'message too large');
    };
    const spool = await openSpool();
    const forwarder = await startForwarder(spool);
    await ringOf(forwarder, 1);
    const batch = await sealBatch(spool, 6, 5);
    const parts = splitBatch(batch, forwarder.currentRing());
    expect(parts.length).toBeGreaterThan(1);
    await until(forwarder, 'acked', (e) => e.batchId === batch.batchId, 'the batch ack');
    expect(reporter.requests.map((r) => r.subs.length)).toEqual([parts.length, ...parts.map(() => 1)]);
    expect(forwarder.stats()).toMatchObject({
      credited: batch.shares.length,
      quarantinedSubBatches: 0,
      malformedRefusals: 0,
    });
  });
});
