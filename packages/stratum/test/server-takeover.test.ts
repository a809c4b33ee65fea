import { headerFieldHex } from '@hashwire/chain';
import type { StratumServer } from '@hashwire/stratum';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHAIN, type Harness, RawClient, TestJobSource, USER, createHarness, job } from './server-helpers.js';

// Issue 14, defect 2: one extranonce1 belongs to exactly one live connection in the cluster.
// A `mining.subscribe [agent, <session id of a live connection>]` sent straight to another
// server used to get the same extranonce1 while the first connection kept mining.

let h: Harness;
let a: StratumServer;
let b: StratumServer;
let c: StratumServer;
const jobs = new TestJobSource();

beforeAll(async () => {
  h = await createHarness();
  jobs.push(job('t1'));
  ({ server: a } = await h.start({ id: 'stratum-a', jobs }));
  ({ server: b } = await h.start({ id: 'stratum-b', jobs }));
  ({ server: c } = await h.start({ id: 'stratum-c', jobs }));
});
afterAll(() => h.close());

let en2 = 0;
function share(jobId: string) {
  en2++;
  return [USER, jobId, en2.toString(16).padStart(16, '0'), headerFieldHex(1_670_462_000), '00000000'];
}

/** Resolves with the reason once `server` closed the connection of `sessionId`. */
function closedOn(server: StratumServer, sessionId: string): Promise<string> {
  return new Promise((resolve) => {
    server.on('disconnect', function on(e) {
      if (e.sessionId !== sessionId) return;
      server.off('disconnect', on);
      resolve(e.reason);
    });
  });
}

function live(server: StratumServer, sessionId: string): boolean {
  return server.sessions().some((s) => s.sessionId === sessionId);
}

describe('one live owner per extranonce1, across servers', () => {
  it('a resume of a live session on another server closes the old connection before the new one gets work', async () => {
    const first = await RawClient.connect(a.port);
    const one = await first.handshake();
    const closed = closedOn(a, one.sessionId);

    const second = await RawClient.connect(b.port);
    // What was true when the new connection got its first job (servers and test share a process).
    let atFirstJob: { oldLiveOnA: boolean; newLiveOnB: boolean } | null = null;
    second.on('message', (m) => {
      if (m.method === 'mining.notify' && atFirstJob === null) {
        atFirstJob = { oldLiveOnA: live(a, one.sessionId), newLiveOnB: live(b, one.sessionId) };
      }
    });
    const two = await second.handshake(USER, one.sessionId);
    expect(two).toMatchObject({ sessionId: one.sessionId, extranonce1: one.extranonce1 });
    expect(atFirstJob).toEqual({ oldLiveOnA: false, newLiveOnB: true });
    expect(await closed).toBe('replaced');
    await first.waitClosed();
    // The claim names b's process now.
    expect(await h.client.get(h.keys.extranonce1(CHAIN, one.extranonce1))).toBe(
      `${one.sessionId}|${b.allocator.holder}`,
    );
    expect(await second.request('mining.submit', share('t1'))).toMatchObject({ result: true });

    // And back again: b lets go the same way.
    const back = closedOn(b, one.sessionId);
    const third = await RawClient.connect(a.port);
    const three = await third.handshake(USER, one.sessionId);
    expect(three.extranonce1).toBe(one.extranonce1);
    expect(await back).toBe('replaced');
    await second.waitClosed();
    expect(live(b, one.sessionId)).toBe(false);
    third.close();
  });

  it('answers the shares in flight on the old connection before closing it', async () => {
    const first = await RawClient.connect(a.port);
    const one = await first.handshake();
    // Written before the new connection even exists: the old server reads them first.
    const answers = Array.from({ length: 20 }, () => first.request('mining.submit', share('t1')));
    const second = await RawClient.connect(b.port);
    const two = await second.handshake(USER, one.sessionId);
    expect(two.extranonce1).toBe(one.extranonce1);
    const replies = await Promise.all(answers);
    expect(replies.every((r) => r.result === true)).toBe(true);
    await first.waitClosed();
    second.close();
  });

  it('two servers resuming the same live session at once: one gets its extranonce1, the other a fresh one', async () => {
    const first = await RawClient.connect(a.port);
    const one = await first.handshake();
    const [x, y] = await Promise.all([RawClient.connect(b.port), RawClient.connect(c.port)]);
    const [onB, onC] = await Promise.all([
      x.handshake(USER, one.sessionId),
      y.handshake(USER, one.sessionId),
    ]);
    const same = [onB, onC].filter((r) => r.extranonce1 === one.extranonce1);
    expect(same).toHaveLength(1);
    const other = [onB, onC].find((r) => r.extranonce1 !== one.extranonce1)!;
    expect(other.sessionId).not.toBe(one.sessionId);
    await first.waitClosed();
    expect([live(b, one.sessionId), live(c, one.sessionId)].filter(Boolean)).toHaveLength(1);
    x.close();
    y.close();
  });

  it('a holder that is gone (its process died) never answers: the resume gets a fresh extranonce1 and nothing is shared', async () => {
    const first = await RawClient.connect(a.port);
    const one = await first.handshake();
    const gone = closedOn(a, one.sessionId);
    first.close();
    await gone;
    // As a SIGKILLed process leaves it: the claim still names it as the live holder.
    const claim = h.keys.extranonce1(CHAIN, one.extranonce1);
    await h.client.set(claim, `${one.sessionId}|stratum-x.deadbeef`, 'PX', 600_000);
    const started = Date.now();
    const again = await RawClient.connect(b.port);
    const resumed = await again.handshake(USER, one.sessionId);
    expect(resumed.extranonce1).not.toBe(one.extranonce1);
    expect(resumed.sessionId).not.toBe(one.sessionId);
    // Nobody listens on the dead holder's channel: no waiting for the takeover timeout.
    expect(Date.now() - started).toBeLessThan(2500);
    expect(await h.client.get(claim)).toBe(`${one.sessionId}|stratum-x.deadbeef`);
    again.close();
  });

  it('detaches the claim when the connection leaves, so a resume anywhere needs nobody', async () => {
    const first = await RawClient.connect(a.port);
    const one = await first.handshake();
    const gone = closedOn(a, one.sessionId);
    first.close();
    expect(await gone).toBe('client-closed');
    expect(await h.client.get(h.keys.extranonce1(CHAIN, one.extranonce1))).toBe(one.sessionId);
    const again = await RawClient.connect(c.port);
    expect((await again.handshake(USER, one.sessionId)).extranonce1).toBe(one.extranonce1);
    again.close();
  });
});

describe('Redis version', () => {
  it('a stratum server does not start on a Redis older than 6.0 (its claim scripts need SET … KEEPTTL)', async () => {
    const old = new Proxy(h.client, {
      get(target, prop, receiver) {
        if (prop === 'info') return async () => '# Server\r\nredis_version:5.0.7\r\n';
        return Reflect.get(target, prop, receiver);
      },
    });
    await expect(h.start({ id: 'stratum-old', jobs, redis: old })).rejects.toThrow(
      'stratum stratum-old: Redis 5.0.7 is too old, it needs Redis 6.0.0 or newer',
    );
  });
});
