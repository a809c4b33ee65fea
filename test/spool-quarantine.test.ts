// The spool never gets stuck and never credits a share twice, against real reporters, real
// Redis and real ZeroMQ: a sub-batch reporters refuse as malformed goes to quarantine while
// everything around it is credited; a restart resends only what no reporter acknowledged,
// under the sub-batch ids of the first split even after a ring layout change; and a batch
// older than the reporters' batch-id retention is quarantined instead of being credited again.
import { randomBytes, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@hashwire/core';
import {
  BucketRing,
  type BucketRingOptions,
  type KeyBuilder,
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
import { type Reporter, createReporter, readRound } from '@hashwire/reporter';
import { type RpcClient, RpcError, type RpcServer, createRpcClient, createRpcServer } from '@hashwire/rpc';
import {
  type ForwarderEvents,
  type QuarantineRecord,
  ShareForwarder,
  type ShareForwarderOptions,
  ShareSpool,
  splitBatch,
} from '@hashwire/stratum';
import { type RedisServer, startRedis } from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

type SharesRequest = RpcMethods['reporter.shares']['req'];
type SharesReply = RpcMethods['reporter.shares']['rep'];

const CHAIN = 'ltc';
const HEARTBEAT_MS = 200;
const WAIT_MS = 20_000;
const DAY_MS = 86_400_000;
const quiet = createLogger({ name: 'spool-quarantine-test', level: 'silent' });

let redisServer: RedisServer;
let redis: RedisClient;
/** Where the reporters write (and register, unless a relay stands in front of them). */
let keys: KeyBuilder;
let dir: string;
const cleanup: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  redisServer = await startRedis();
  redis = connectRedis(redisServer.url);
});
afterAll(async () => {
  redis?.disconnect();
  await redisServer?.stop();
});
beforeEach(() => {
  keys = testKeys();
  dir = mkdtempSync(join(tmpdir(), 'hw-quarantine-'));
});
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
  rmSync(dir, { recursive: true, force: true });
});

function testKeys(): KeyBuilder {
  return createKeyBuilder({ prefix: `q${randomBytes(4).toString('hex')}:` });
}

let seq = 0;
/** An accepted share of difficulty 1, unique in every field a duplicate check could key on. */
function share(account: string, worker = 'rig'): Share {
  seq++;
  return {
    shareId: `sh${seq}-${randomUUID()}`,
    sessionId: 'sess',
    account,
    worker,
    jobId: 'j1',
    extranonce1: '00000001',
    extranonce2: seq.toString(16).padStart(8, '0'),
    ntime: '65f1c2a0',
    nonce: randomBytes(4).toString('hex'),
    version: '20000000',
    diff: 1,
    actualDiff: 1.5,
    result: 'accepted',
    ts: Date.now(),
    ip: '127.0.0.1',
  };
}

/** What an older version could spool and no reporter accepts: whitespace in a job id, a negative difficulty. */
function poisoned(account: string, worker = 'rig'): Share {
  return { ...share(account, worker), jobId: 'a b', diff: -1 };
}

/** Sub-batches a batch of these shares has under the default ring layout. */
function subBatchCount(list: Share[]): number {
  return splitBatch({ batchId: 'x', shares: list }, new BucketRing(['any'])).length;
}

/** Shares of `accounts` accounts, `perAccount` each, one worker per account. */
function shares(tag: string, accounts: number, perAccount: number): Share[] {
  const out: Share[] = [];
  for (let a = 0; a < accounts; a++) for (let n = 0; n < perAccount; n++) out.push(share(`${tag}${a}`));
  return out;
}

/** A spool file as an older version left it: batch lines, no journal. */
function writeLegacyBatch(list: Share[]): string {
  const batchId = randomUUID();
  writeFileSync(join(dir, `batch-${batchId}.jsonl`), list.map((s) => `${JSON.stringify(s)}\n`).join(''));
  return batchId;
}

/** Credited difficulty per account, as the reporters wrote it. */
function expectedRound(list: Share[]): Record<string, number> {
  const round: Record<string, number> = {};
  for (const s of list) round[s.account] = (round[s.account] ?? 0) + s.diff;
  return round;
}

async function startRealReporter(id: string): Promise<Reporter> {
  const reporter = await createReporter({
    id,
    chain: CHAIN,
    redis,
    keys,
    logger: quiet,
    heartbeatIntervalMs: HEARTBEAT_MS,
    blockPollMs: 3_600_000,
  });
  cleanup.push(() => reporter.close());
  await reporter.start();
  return reporter;
}

/** What the relays in front of the reporters saw, together: requests and answers per sub-batch id. */
class Tally extends EventEmitter<{ request: [SharesRequest]; answered: [string] }> {
  readonly frontKeys = testKeys();
  /** Sends per sub-batch id. */
  readonly requests = new Map<string, number>();
  /** Sub-batches whose request was answered. */
  readonly answered = new Set<string>();
  /** Every sub-batch sent: its id and share ids. */
  readonly bodies: { id: string; shareIds: string[] }[] = [];
}

/**
 * Stands in the registry (under the tally's key prefix) for a real reporter: passes each
 * request on and its reply back, or holds it unanswered while `gate` says so. Counts every
 * sub-batch it carries in the tally it shares with the other relays.
 */
class Relay {
  gate: (body: SharesRequest) => boolean = () => true;
  private server!: RpcServer;
  private client!: RpcClient<RpcMethods>;
  private registration!: ServiceRegistration;

  private constructor(readonly tally: Tally) {}

  static async start(target: Reporter, tally = new Tally(), id = 'relay'): Promise<Relay> {
    const relay = new Relay(tally);
    relay.client = createRpcClient<RpcMethods>(target.endpoint!, { heartbeatIntervalMs: HEARTBEAT_MS });
    relay.server = await createRpcServer<RpcMethods>({
      heartbeatIntervalMs: HEARTBEAT_MS,
      handlers: { 'reporter.shares': (body) => relay.handle(body) },
    });
    relay.registration = await registerService({
      redis,
      keys: tally.frontKeys,
      kind: 'reporter',
      id,
      rpc: relay.server.endpoint,
      chain: CHAIN,
      sharesWire: SHARES_WIRE,
    });
    cleanup.push(() => relay.close());
    return relay;
  }

  private async handle(body: SharesRequest): Promise<SharesReply> {
    const { tally } = this;
    for (const sub of body.subs) {
      tally.requests.set(sub.id, (tally.requests.get(sub.id) ?? 0) + 1);
      tally.bodies.push({ id: sub.id, shareIds: sub.shares.map((s) => s.shareId) });
    }
    tally.emit('request', body);
    if (!this.gate(body)) return new Promise<never>(() => {});
    const reply = await this.client.request('reporter.shares', body);
    for (const sub of body.subs) {
      tally.answered.add(sub.id);
      tally.emit('answered', sub.id);
    }
    return reply;
  }

  async close(): Promise<void> {
    await this.registration.close();
    await this.server.close();
    await this.client.close();
  }
}

/**
 * Two real reporters, each behind a relay: `held` holds every request (until its gate is
 * opened), `answering` passes them on. A batch's sub-batches are routed over both.
 */
async function relayPair(): Promise<{ tally: Tally; answering: Relay; held: Relay }> {
  const tally = new Tally();
  const [a, b] = await Promise.all([startRealReporter('rep-a'), startRealReporter('rep-b')]);
  const answering = await Relay.start(a, tally, 'relay-a');
  const held = await Relay.start(b, tally, 'relay-b');
  held.gate = () => false;
  return { tally, answering, held };
}

/** A reporter that refuses every batch as malformed (a bug, an old version, a wrong config). */
async function startBrokenReporter(id: string): Promise<{ refused: string[] }> {
  const refused: string[] = [];
  const server = await createRpcServer<RpcMethods>({
    heartbeatIntervalMs: HEARTBEAT_MS,
    handlers: {
      'reporter.shares': (body) => {
        refused.push(...body.subs.map((sub) => sub.id));
        throw new RpcError(RpcErrorCode.BadRequest, 'shares[0].jobId must be a string (a broken reporter)');
      },
    },
  });
  const registration = await registerService({
    redis,
    keys,
    kind: 'reporter',
    id,
    rpc: server.endpoint,
    chain: CHAIN,
    sharesWire: SHARES_WIRE,
  });
  cleanup.push(async () => {
    await registration.close();
    await server.close();
  });
  return { refused };
}

async function openSpool(): Promise<ShareSpool> {
  const spool = await ShareSpool.open({ dir, batchIntervalMs: 60_000 });
  cleanup.push(() => spool.close());
  return spool;
}

function newForwarder(
  spool: ShareSpool,
  options: Partial<ShareForwarderOptions> & { discovery?: KeyBuilder } = {},
): ShareForwarder {
  const { discovery, ...rest } = options;
  const forwarder = new ShareForwarder({
    spool,
    redis,
    keys: discovery ?? keys,
    stratumId: 'st-1',
    chain: CHAIN,
    heartbeatIntervalMs: HEARTBEAT_MS,
    reconcileMs: 100,
    // Held requests are never retried within a test: each resend counted is a restart's.
    requestTimeoutMs: 60_000,
    retryDelayMs: 20,
    maxRetryDelayMs: 200,
    suspectMs: 60_000,
    ...rest,
  });
  cleanup.push(() => forwarder.close());
  return forwarder;
}

/** Resolves once `check()` holds, re-checking on every `event`; rejects naming `what` after WAIT_MS. */
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

function idle(forwarder: ShareForwarder): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    forwarder.whenIdle(),
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the spool never drained: ${JSON.stringify(forwarder.stats())}`)),
        WAIT_MS,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

function collect<K extends keyof ForwarderEvents & string>(
  forwarder: ShareForwarder,
  event: K,
): ForwarderEvents[K][0][] {
  const seen: ForwarderEvents[K][0][] = [];
  forwarder.on(event, ((payload: ForwarderEvents[K][0]) => seen.push(payload)) as never);
  return seen;
}

function quarantineFiles(): QuarantineRecord[] {
  const qdir = join(dir, 'quarantine');
  return readdirSync(qdir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(qdir, f), 'utf8')) as QuarantineRecord);
}

const spoolLeft = () => readdirSync(dir).filter((f) => f.startsWith('batch-'));

describe('share spool: quarantine, durable acks, fixed splits', () => {
  it('quarantines a sub-batch both reporters refuse as malformed; the rest of its batch and every batch behind it are credited, and a restart is not stuck', async () => {
    await Promise.all([startRealReporter('rep-a'), startRealReporter('rep-b')]);
    // Three spool batches an older version left, each with one unreadable share, and two good
    // ones behind them; one batch in flight at a time, so a stuck one would block the rest.
    const good: Share[] = [];
    const quarantined: Share[] = [];
    const ring = new BucketRing(['any']);
    for (let b = 0; b < 3; b++) {
      const evil = [poisoned(`evil${b}`), share(`evil${b}`)];
      const fine = shares(`p${b}-`, 4, 3);
      const list = [...fine.slice(0, 5), ...evil, ...fine.slice(5)];
      // Whatever shares the poisoned one's bucket goes to quarantine with it.
      const bucket = ring.bucketFor(`evil${b}`, 'rig');
      for (const s of list) (ring.bucketFor(s.account, s.worker) === bucket ? quarantined : good).push(s);
      writeLegacyBatch(list);
    }
    for (let b = 0; b < 2; b++) {
      const fine = shares(`g${b}-`, 5, 2);
      good.push(...fine);
      writeLegacyBatch(fine);
    }
    const spool = await openSpool();
    expect(spool.pendingBatchIds()).toHaveLength(5);
    const forwarder = newForwarder(spool, { maxInFlightBatches: 1 });
    const events = collect(forwarder, 'quarantined');
    await forwarder.start();
    await idle(forwarder);

    expect(await readRound(redis, keys, CHAIN)).toEqual(expectedRound(good));
    expect(spoolLeft()).toEqual([]);
    // One quarantine per poisoned sub-batch, refused by both reporters, with what they said.
    expect(events.map((e) => e.reason)).toEqual(['refused', 'refused', 'refused']);
    const records = quarantineFiles();
    expect(records).toHaveLength(3);
    for (const record of records) {
      expect(record).toMatchObject({ reason: 'refused', stratumId: 'st-1', chain: CHAIN });
      expect(record.refusals.map((r) => r.reporterId).sort()).toEqual(['rep-a', 'rep-b']);
      expect(record.refusals.every((r) => r.code === RpcErrorCode.BadRequest)).toBe(true);
      expect(record.message).toMatch(/shares\[\d+\]/);
      expect(record.quarantinedAt).toBeGreaterThan(0);
    }
    const held = records.flatMap((r) => r.shares.map((s) => s.shareId)).sort();
    expect(held).toEqual(quarantined.map((s) => s.shareId).sort());
    expect(forwarder.stats()).toMatchObject({
      backlogBatches: 0,
      ackedBatches: 5,
      quarantinedSubBatches: 3,
      quarantinedShares: quarantined.length,
      ackedShares: good.length,
      quarantine: { subBatches: 3, shares: quarantined.length, dir: join(dir, 'quarantine') },
    });

    // The next process with this spool directory: nothing to send, the quarantine still shown.
    await forwarder.close();
    spool.close();
    const reopened = await openSpool();
    const restarted = newForwarder(reopened);
    await restarted.start();
    await idle(restarted);
    expect(restarted.stats()).toMatchObject({
      requests: 0,
      quarantine: { subBatches: 3, shares: quarantined.length },
    });
  });

  it('with two reporters up, one that refuses everything as malformed quarantines nothing: the other credits it all', async () => {
    const broken = await startBrokenReporter('rep-broken');
    await startRealReporter('rep-ok');
    const spool = await openSpool();
    const forwarder = newForwarder(spool);
    const events = collect(forwarder, 'quarantined');
    await forwarder.start();
    await when(forwarder, 'ring', () => forwarder.currentRing().servers.length === 2, 'both reporters');
    const list = shares('acct', 12, 2);
    await Promise.all(list.map((s) => spool.append(s)));
    spool.seal();
    await idle(forwarder);

    expect(broken.refused.length).toBeGreaterThan(0);
    expect(events).toEqual([]);
    expect(await readRound(redis, keys, CHAIN)).toEqual(expectedRound(list));
    expect(forwarder.stats().quarantine.subBatches).toBe(0);
  });

  it('after a restart, resends only the sub-batches no reporter acknowledged', async () => {
    const { tally, held } = await relayPair();
    const spool = await openSpool();
    const list = shares('acct', 10, 2);
    await Promise.all(list.map((s) => spool.append(s)));
    const batch = spool.seal()!;
    // The sub-batches routed to one reporter are answered; the other's request is held until the process goes away.
    const forwarder = newForwarder(spool, { discovery: tally.frontKeys });
    const delivered = collect(forwarder, 'delivered');
    await forwarder.start();
    const total = subBatchCount(list);
    expect(total).toBeGreaterThanOrEqual(4);
    await when(tally, 'request', () => tally.requests.size === total, 'every sub-batch sent');
    await when(tally, 'answered', () => tally.answered.size > 0, 'the answering reporter');
    const acked = [...tally.answered];
    await when(forwarder, 'delivered', () => delivered.length === acked.length, 'the answered part');
    expect(acked.length).toBeGreaterThan(0);
    expect(acked.length).toBeLessThan(total);
    expect(spool.stats().pendingBatches).toBe(1);
    expect(forwarder.stats().requests).toBe(2); // one per reporter
    await forwarder.close();
    spool.close();

    held.gate = () => true;
    const reopened = await openSpool();
    const restarted = newForwarder(reopened, { discovery: tally.frontKeys });
    await restarted.start();
    await idle(restarted);

    for (const id of acked) expect({ [id]: tally.requests.get(id) }).toEqual({ [id]: 1 });
    for (const id of [...tally.requests.keys()].filter((x) => !acked.includes(x)))
      expect({ [id]: tally.requests.get(id) }).toEqual({ [id]: 2 });
    expect(tally.requests.size).toBe(total);
    expect(restarted.stats()).toMatchObject({
      resumedAckedSubBatches: acked.length,
      subBatchesSent: total - acked.length,
      requests: 1,
    });
    expect(await readRound(redis, keys, CHAIN)).toEqual(expectedRound(list));
    expect(reopened.stats().pendingBatches).toBe(0);
    expect(spoolLeft()).toEqual([]);
    expect(batch.shares).toHaveLength(list.length);
  });

  it('a ring layout change between the first send and the resend keeps the sub-batch ids and members: every share credited once', async () => {
    const { tally, held } = await relayPair();
    const spool = await openSpool();
    const list = shares('acct', 12, 3);
    await Promise.all(list.map((s) => spool.append(s)));
    spool.seal();
    const forwarder = newForwarder(spool, { discovery: tally.frontKeys });
    const delivered = collect(forwarder, 'delivered');
    await forwarder.start();
    const total = subBatchCount(list);
    expect(total).toBeGreaterThanOrEqual(4);
    await when(tally, 'request', () => tally.requests.size === total, 'every sub-batch sent');
    await when(tally, 'answered', () => tally.answered.size > 0, 'the answering reporter');
    const answered = tally.answered.size;
    await when(forwarder, 'delivered', () => delivered.length === answered, 'the answered part');
    expect(answered).toBeLessThan(total);
    await forwarder.close();
    spool.close();
    const firstRun = new Map(tally.bodies.map((b) => [b.id, b.shareIds]));
    const firstCount = tally.bodies.length;

    // The operator changes the layout; the batch on disk keeps the split it was sent with.
    held.gate = () => true;
    const layout: BucketRingOptions = { buckets: 7, bucketsPerAccount: 2 };
    const reopened = await openSpool();
    const restarted = newForwarder(reopened, { discovery: tally.frontKeys, ring: layout });
    await restarted.start();
    await idle(restarted);

    // Only the unanswered part again, each with the ids and shares it had.
    const resent = tally.bodies.slice(firstCount);
    expect(resent).toHaveLength(total - answered);
    for (const body of resent) expect(body.shareIds).toEqual(firstRun.get(body.id));
    expect(await readRound(redis, keys, CHAIN)).toEqual(expectedRound(list));
  });

  it('a batch an older version spooled more than batchTtlS ago is quarantined, not credited', async () => {
    const reporter = await startRealReporter('rep-a');
    const old = shares('old', 3, 2);
    const oldId = writeLegacyBatch(old);
    const twoDaysAgo = (Date.now() - 2 * DAY_MS) / 1000;
    utimesSync(join(dir, `batch-${oldId}.jsonl`), twoDaysAgo, twoDaysAgo);
    const recent = shares('new', 3, 2);
    writeLegacyBatch(recent);

    const spool = await openSpool();
    const forwarder = newForwarder(spool);
    const events = collect(forwarder, 'quarantined');
    await forwarder.start();
    await idle(forwarder);

    expect(await readRound(redis, keys, CHAIN)).toEqual(expectedRound(recent));
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.reason === 'expired' && e.batchId === oldId)).toBe(true);
    const records = quarantineFiles();
    expect(records.flatMap((r) => r.shares.map((s) => s.shareId)).sort()).toEqual(
      old.map((s) => s.shareId).sort(),
    );
    expect(records[0]!.message).toMatch(/batchTtlS 86400/);
    expect(reporter.stats().shares.accepted).toBe(recent.length);
    expect(spoolLeft()).toEqual([]);
  });

  it('a partly acknowledged batch restarted after batchTtlS: its unacknowledged sub-batches and a batch never sent are quarantined as expired, nothing sent again', async () => {
    const { tally, held } = await relayPair();
    const spool = await openSpool();
    const sent = shares('sent', 8, 2);
    await Promise.all(sent.map((s) => spool.append(s)));
    spool.seal();
    const forwarder = newForwarder(spool, { discovery: tally.frontKeys });
    const delivered = collect(forwarder, 'delivered');
    await forwarder.start();
    const total = subBatchCount(sent);
    expect(total).toBeGreaterThanOrEqual(3);
    await when(tally, 'request', () => tally.requests.size === total, 'every sub-batch sent');
    await when(tally, 'answered', () => tally.answered.size > 0, 'the answering reporter');
    const answered = tally.answered.size;
    await when(forwarder, 'delivered', () => delivered.length === answered, 'the answered part');
    expect(answered).toBeLessThan(total);
    await forwarder.close();
    const creditedFirst = await readRound(redis, keys, CHAIN);
    // Sealed after the forwarder stopped: never sent under any id.
    const unsent = shares('unsent', 3, 2);
    await Promise.all(unsent.map((s) => spool.append(s)));
    spool.seal();
    spool.close();

    held.gate = () => true;
    const requestsBefore = new Map(tally.requests);
    const reopened = await openSpool();
    const later = () => Date.now() + 2 * DAY_MS;
    const restarted = newForwarder(reopened, { discovery: tally.frontKeys, now: later });
    const events = collect(restarted, 'quarantined');
    await restarted.start();
    await idle(restarted);

    // Nothing of the old batch was sent again; what was credited stays credited once.
    for (const [id, count] of requestsBefore)
      expect({ [id]: tally.requests.get(id) }).toEqual({ [id]: count });
    // The unanswered half of the sent batch, and every sub-batch of the one never sent: a
    // copy of one of its shares may have been credited through another server over a day ago,
    // and the reporters' duplicate check no longer remembers it.
    const unsentSubs = subBatchCount(unsent);
    expect(events.map((e) => e.reason)).toEqual(Array(total - answered + unsentSubs).fill('expired'));
    expect(await readRound(redis, keys, CHAIN)).toEqual(creditedFirst);
    const quarantinedShares = quarantineFiles().flatMap((r) => r.shares.map((s) => s.account));
    for (const account of quarantinedShares) expect(creditedFirst[account]).toBeUndefined();
    expect(quarantinedShares.length + Object.values(creditedFirst).reduce((a, b) => a + b, 0)).toBe(
      sent.length + unsent.length,
    );
    expect(spoolLeft()).toEqual([]);
  });
});
