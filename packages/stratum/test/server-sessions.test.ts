import { headerFieldHex } from '@hashwire/chain';
import { createKeyBuilder } from '@hashwire/protocol';
import { ExtranonceAllocator, type StratumServer } from '@hashwire/stratum';
import { waitFor } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ANY_DIFF,
  CHAIN,
  type Harness,
  RawClient,
  type StratumMessage,
  TestJobSource,
  USER,
  createHarness,
  job,
} from './server-helpers.js';

let h: Harness;
let a: StratumServer;
let b: StratumServer;
const jobs = new TestJobSource();

beforeAll(async () => {
  h = await createHarness();
  jobs.push(job('j1'));
  ({ server: a } = await h.start({ id: 'stratum-a', jobs }));
  ({ server: b } = await h.start({ id: 'stratum-b', jobs }));
});
afterAll(() => h.close());

let en2 = 0;
function share(jobId: string) {
  en2++;
  return [USER, jobId, en2.toString(16).padStart(16, '0'), headerFieldHex(1_670_462_000), '00000000'];
}

function difficulties(c: RawClient): unknown[] {
  return c.messages.filter((m) => m.method === 'mining.set_difficulty').map((m) => m.params![0]);
}

function disconnected(server: StratumServer, sessionId: string) {
  return new Promise<string>((resolve) => {
    server.on('disconnect', function on(e) {
      if (e.sessionId !== sessionId) return;
      server.off('disconnect', on);
      resolve(e.reason);
    });
  });
}

describe('sessions: resume anywhere with the same extranonce1 and difficulty', () => {
  it('resumes on a second server instance (same Redis): same session id, extranonce1, difficulty and job difficulties', async () => {
    const first = await RawClient.connect(a.port);
    const one = await first.handshake(USER, undefined, 'd=2e-12');
    expect(difficulties(first)).toEqual([2e-12]);
    expect(await first.request('mining.submit', share('j1'))).toMatchObject({ result: true });
    const gone = disconnected(a, one.sessionId);
    first.close();
    await gone;

    const stored = await h.client.hgetall(h.keys.session(CHAIN, one.sessionId));
    expect(stored).toMatchObject({
      extranonce1: one.extranonce1,
      difficulty: '2e-12',
      stratumId: 'stratum-a',
    });
    expect(await h.client.pttl(h.keys.session(CHAIN, one.sessionId))).toBeGreaterThan(590_000);
    expect(await h.client.get(h.keys.extranonce1(CHAIN, one.extranonce1))).toBe(one.sessionId);

    const second = await RawClient.connect(b.port);
    const two = await second.handshake(USER, one.sessionId);
    expect(two.sessionId).toBe(one.sessionId);
    expect(two.extranonce1).toBe(one.extranonce1);
    expect(difficulties(second)).toEqual([2e-12]);
    expect(b.sessions().find((s) => s.sessionId === one.sessionId)).toMatchObject({
      resumed: true,
      difficulty: 2e-12,
      minDifficulty: 2e-12,
    });
    expect(await second.request('mining.submit', share('j1'))).toMatchObject({ result: true });
    second.close();
  });

  it('writes a session once per handshake (authorized, with its first job), and at the disconnect only when it changed', async () => {
    const { server, jobs: own } = await h.start();
    own.push(job('w1'));
    const hsets = async () => {
      const text = (await h.client.info('commandstats')) as string;
      return Number(/cmdstat_hset:calls=(\d+)/.exec(text)?.[1] ?? 0);
    };
    const leave = async (c: RawClient, sessionId: string) => {
      const gone = disconnected(server, sessionId);
      c.close();
      await gone;
      // The server queues its session writes for one pipeline sent at setImmediate (any write
      // of the disconnect is queued before the event). It shares this test's Redis connection,
      // so once that callback ran, its commands are on the wire ahead of ours.
      await new Promise((resolve) => setImmediate(resolve));
    };

    // Handshake and leave: one write, holding what resume needs (the first job's difficulty too).
    const before = await hsets();
    const quick = await RawClient.connect(server.port);
    const one = await quick.handshake(USER, undefined, 'd=3e-12');
    await leave(quick, one.sessionId);
    expect((await hsets()) - before).toBe(1);
    const stored = await h.client.hgetall(h.keys.session(CHAIN, one.sessionId));
    expect(JSON.parse(stored.jobDiffs!)).toEqual({ jobIds: ['w1'], diffs: [3e-12] });
    expect(stored).toMatchObject({ extranonce1: one.extranonce1, difficulty: '3e-12' });
    expect(await h.client.pttl(h.keys.session(CHAIN, one.sessionId))).toBeGreaterThan(590_000);

    // A job sent after the save (same difficulty, so nothing written then): written at the disconnect.
    const miner = await RawClient.connect(server.port);
    const two = await miner.handshake(USER, one.sessionId);
    const notify = miner.nextNotification('mining.notify');
    own.push(job('w2', { cleanJobs: false }));
    await notify;
    const mid = await hsets();
    await leave(miner, two.sessionId);
    expect((await hsets()) - mid).toBe(1);
    expect(JSON.parse((await h.client.hget(h.keys.session(CHAIN, one.sessionId), 'jobDiffs'))!)).toEqual({
      jobIds: ['w1', 'w2'],
      diffs: [3e-12, 3e-12],
    });

    // Resumed again: shares on both jobs are judged at the stored difficulty.
    const back = await RawClient.connect(server.port);
    await back.handshake(USER, one.sessionId);
    expect(await back.request('mining.submit', share('w1'))).toMatchObject({ result: true });
    expect(await back.request('mining.submit', share('w2'))).toMatchObject({ result: true });
    back.close();
  });

  it('starts a new session for an unknown id, and for one whose extranonce1 another session holds', async () => {
    const c = await RawClient.connect(a.port);
    const fresh = await c.handshake(USER, 'ffffffffffffffff');
    expect(fresh.sessionId).not.toBe('ffffffffffffffff');
    const gone = disconnected(a, fresh.sessionId);
    c.close();
    await gone;
    // Someone else holds the extranonce1 now (it cannot happen through the server; the claim forbids sharing).
    await h.client.set(h.keys.extranonce1(CHAIN, fresh.extranonce1), '0123456789abcdef');
    const again = await RawClient.connect(b.port);
    const other = await again.handshake(USER, fresh.sessionId);
    expect(other.extranonce1).not.toBe(fresh.extranonce1);
    expect(other.sessionId).not.toBe(fresh.sessionId);
    again.close();
  });

  it('gives the extranonce1 of a session that never authorized back at once', async () => {
    const c = await RawClient.connect(a.port);
    const reply = await c.request('mining.subscribe', ['scanner']);
    const [[[, sessionId]], extranonce1] = reply.result as [[[string, string]], string];
    // Held live by this server's connection.
    expect(await h.client.get(h.keys.extranonce1(CHAIN, extranonce1))).toBe(
      `${sessionId}|${a.allocator.holder}`,
    );
    const gone = disconnected(a, sessionId);
    c.close();
    await gone;
    await waitFor(async () => (await h.client.get(h.keys.extranonce1(CHAIN, extranonce1))) === null, {
      what: 'the extranonce1 claim to go',
    });
    expect(await h.client.exists(h.keys.session(CHAIN, sessionId))).toBe(0);
  });

  it('moves a session to a new connection when the miner is back before its old connection died', async () => {
    const old = await RawClient.connect(a.port);
    const first = await old.handshake();
    const replaced = disconnected(a, first.sessionId);
    const next = await RawClient.connect(a.port);
    const second = await next.handshake(USER, first.sessionId);
    expect(await replaced).toBe('replaced');
    await old.waitClosed();
    expect(second).toMatchObject({ sessionId: first.sessionId, extranonce1: first.extranonce1 });
    expect(await next.request('mining.submit', share('j1'))).toMatchObject({ result: true });
    next.close();
  });

  it('hands out extranonce1 values unique across the cluster, skipping those of resumable sessions after a slot is leased again', async () => {
    const keys = createKeyBuilder({ prefix: `${h.keys.prefix}en:` });
    // 1-byte slots: take every slot but 0x42 so the allocator must lease that one.
    for (let slot = 0; slot < 256; slot++)
      if (slot !== 0x42) await h.client.set(keys.extranonceSlot(slot), 'elsewhere');
    // A previous owner of slot 0x42 died; 250 of its sessions are still resumable.
    const free = new Set(
      [0x07, 0x08, 0x80, 0xfe, 0xff, 0x00].map((n) => `42${n.toString(16).padStart(2, '0')}`),
    );
    for (let n = 0; n < 256; n++) {
      const hex = `42${n.toString(16).padStart(2, '0')}`;
      if (!free.has(hex)) await h.client.set(keys.extranonce1(CHAIN, hex), `old-${n}`, 'PX', 600_000);
    }
    const allocator = await ExtranonceAllocator.create({
      redis: h.client,
      keys,
      chain: CHAIN,
      owner: 'new-owner',
      extranonce1Size: 2,
      slotBytes: 1,
      claimTtlMs: 600_000,
    });
    expect(allocator.slot).toBe(0x42);
    const given = [];
    for (let i = 0; i < free.size; i++) given.push(await allocator.allocate(`s${i}`));
    expect(new Set(given)).toEqual(free);
    await expect(allocator.allocate('one-too-many')).rejects.toThrow(/no free extranonce slot/);
    // A resumable session takes its own value back; nobody else can.
    expect(await allocator.reclaim('4201', 'old-1')).toBe('held');
    expect(await allocator.reclaim('4201', 'intruder')).toBe('taken');
    await allocator.close();
  });
});

describe('difficulty', () => {
  it('applies a change to jobs sent after it: older jobs keep their difficulty, and set_difficulty comes right before the next notify', async () => {
    const c = await RawClient.connect(a.port);
    await c.handshake();
    expect(difficulties(c)).toEqual([ANY_DIFF]);
    expect(await c.request('mining.suggest_difficulty', [1e15])).toMatchObject({ result: true });
    expect(difficulties(c)).toEqual([ANY_DIFF]); // not yet: no new job
    // j1 went out at the old difficulty: still judged at it.
    expect(await c.request('mining.submit', share('j1'))).toMatchObject({ result: true });
    const from = c.messages.length;
    const notify = c.nextNotification('mining.notify');
    jobs.push(job('j2', { cleanJobs: false }));
    await notify;
    const sequence = c.messages.slice(from).map((m: StratumMessage) => m.method);
    expect(sequence).toEqual(['mining.set_difficulty', 'mining.notify']);
    // Clamped to the pool's maximum (2^32), which no test share meets either.
    expect(difficulties(c)).toEqual([ANY_DIFF, 2 ** 32]);
    expect(await c.request('mining.submit', share('j2'))).toMatchObject({
      error: [23, 'low difficulty share', null],
    });
    expect(await c.request('mining.submit', share('j1'))).toMatchObject({ result: true });
    c.close();
  });

  it('vardiff raises a fast miner within its clamps and announces it with the next job', async () => {
    const { server, jobs: own } = await h.start({
      vardiff: {
        enabled: true,
        initialDifficulty: 1e-11,
        minDifficulty: 1e-12,
        maxDifficulty: 3e-11,
        retargetMs: 60_000,
        minWindowMs: 1,
        burstFactor: 1,
      },
    });
    own.push(job('v1'));
    const c = await RawClient.connect(server.port);
    await c.handshake();
    // 18 shares/min expected per window: the 18th share within a burst retargets (×4, clamped to 3e-11).
    for (let i = 0; i < 18; i++) {
      expect(await c.request('mining.submit', share('v1'))).toMatchObject({ result: true });
    }
    expect(server.sessions()[0]).toMatchObject({ difficulty: 1e-11, pendingDifficulty: 3e-11 });
    const notify = c.nextNotification('mining.notify');
    own.push(job('v2', { cleanJobs: false }));
    await notify;
    expect(difficulties(c)).toEqual([1e-11, 3e-11]);
    c.close();
  });
});

describe('server messages', () => {
  it('renews an extranonce with mining.set_extranonce and a clean job; shares on older jobs become stale', async () => {
    const c = await RawClient.connect(a.port);
    await c.request('mining.extranonce.subscribe');
    const { sessionId, extranonce1, notify: firstJob } = await c.handshake();
    const before = firstJob.params![0] as string;
    const newer = c.nextNotification('mining.notify');
    jobs.push(job('j3', { cleanJobs: false }));
    await newer;
    const from = c.messages.length;
    const notify = c.nextNotification('mining.notify');
    expect(await a.renewExtranonce(sessionId)).toBe(true);
    await notify;
    const set = c.messages.slice(from).find((m) => m.method === 'mining.set_extranonce')!;
    const [next, size] = set.params as [string, number];
    expect(next).not.toBe(extranonce1);
    expect(size).toBe(8);
    expect(c.messages.at(-1)!.params![8]).toBe(true);
    expect(await h.client.get(h.keys.extranonce1(CHAIN, extranonce1))).toBeNull();
    expect(await h.client.get(h.keys.extranonce1(CHAIN, next))).toBe(`${sessionId}|${a.allocator.holder}`);
    expect(await c.request('mining.submit', share('j3'))).toMatchObject({ result: true });
    expect(await c.request('mining.submit', share(before))).toMatchObject({
      error: [21, 'job not found', null],
    });
    c.close();

    const plain = await RawClient.connect(a.port);
    const other = await plain.handshake();
    expect(await a.renewExtranonce(other.sessionId)).toBe(false); // did not subscribe to it
    plain.close();
  });

  it('sends client.reconnect to a session on request, after saving it', async () => {
    const c = await RawClient.connect(a.port);
    const { sessionId } = await c.handshake();
    const reconnect = c.nextNotification('client.reconnect');
    expect(await a.reconnectSession(sessionId)).toBe(true);
    expect((await reconnect).params).toEqual([]);
    c.close();
  });
});
