import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { headerFieldHex } from '@hashwire/chain';
import type { Share } from '@hashwire/protocol';
import { type ShareSink, ShareSpool, type StratumServer } from '@hashwire/stratum';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHAIN, type Harness, RawClient, TestJobSource, USER, createHarness, job } from './server-helpers.js';

// Issue 20: the stratum code is replaced while every miner's TCP connection stays open. The
// old server hands each session with its socket to the new one (here both in this process;
// between processes the socket travels over IPC, see docs/architecture.md).

let h: Harness;
const jobs = new TestJobSource();

beforeAll(async () => {
  h = await createHarness();
  jobs.push(job('t1'));
});
afterAll(() => h.close());

let en2 = 0;
function share(jobId: string) {
  en2++;
  return [USER, jobId, en2.toString(16).padStart(16, '0'), headerFieldHex(1_670_462_000), '00000000'];
}

function accepted(servers: StratumServer[]): Share[] {
  const seen: Share[] = [];
  for (const server of servers) server.on('share', (s) => s.result === 'accepted' && seen.push(s));
  return seen;
}

function handTo(to: StratumServer) {
  return async (
    session: Parameters<StratumServer['adoptSession']>[1],
    socket: Parameters<StratumServer['adoptSession']>[0],
  ) => {
    if (!(await to.adoptSession(socket, session))) throw new Error('not adopted');
  };
}

describe('handing sessions to a new server with their connections open', () => {
  it('no miner is disconnected; a half-sent line is answered once, by the new server; extranonce1, claim and difficulty move', async () => {
    const { server: a } = await h.start({ id: 'stratum-old', jobs });
    const { server: b } = await h.start({ id: 'stratum-new', jobs });
    const shares = accepted([a, b]);
    const clients = await Promise.all([1, 2, 3].map(() => RawClient.connect(a.port)));
    const sessions = await Promise.all(clients.map((c) => c.handshake()));
    expect(await clients[0]!.request('mining.submit', share('t1'))).toMatchObject({ result: true });
    const before = new Map(a.sessions().map((s) => [s.sessionId, s]));

    // Half a submit on the wire when the switch starts.
    const half = clients[0]!.line('mining.submit', share('t1'));
    clients[0]!.write(half.text.slice(0, 25));
    const moved = await a.handOffSessions(handTo(b));
    expect(moved).toBe(3);
    expect(a.sessions()).toEqual([]);
    const answer = clients[0]!.waitFor((m) => m.id === half.id);
    clients[0]!.write(half.text.slice(25));
    expect(await answer).toMatchObject({ result: true, error: null });

    // New work reaches the same connections from the new server, and their shares count there.
    const notifies = clients.map((c) => c.nextNotification('mining.notify'));
    jobs.push(job('t2'));
    for (const [i, client] of clients.entries()) {
      const { sessionId, extranonce1 } = sessions[i]!;
      const now = b.sessions().find((s) => s.sessionId === sessionId);
      expect(now).toMatchObject({ extranonce1, difficulty: before.get(sessionId)!.difficulty });
      expect(await h.client.get(h.keys.extranonce1(CHAIN, extranonce1))).toBe(
        `${sessionId}|${b.allocator.holder}`,
      );
      expect((await notifies[i]!).params?.[0]).toBe('t2');
      expect(await client.request('mining.submit', share('t2'))).toMatchObject({ result: true });
      expect(client.closed).toBe(false);
    }
    // Answered once: one reply to the half-sent line, one accepted share for it.
    expect(clients[0]!.messages.filter((m) => m.id === half.id)).toHaveLength(1);
    const keys = shares.map((s) => `${s.sessionId}/${s.extranonce2}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(shares).toHaveLength(1 + 1 + 3);
    expect(a.stats().connections).toBe(0);
    await a.close();
    for (const client of clients) expect(client.closed).toBe(false);
    for (const client of clients) client.close();
  });

  it('the new server judges shares on earlier jobs as the old one did: accepted on a job it had not seen, a duplicate of what the old one credited', async () => {
    const feed = new TestJobSource();
    feed.push(job('u1'));
    const { server: a } = await h.start({ id: 'stratum-jobs-old', jobs: feed });
    const client = await RawClient.connect(a.port);
    await client.handshake();
    const notify = client.nextNotification('mining.notify');
    feed.push(job('u2', { cleanJobs: false }));
    expect((await notify).params?.[0]).toBe('u2');
    const creditedBefore = [share('u1'), share('u2')];
    for (const params of creditedBefore) {
      expect(await client.request('mining.submit', params)).toMatchObject({ result: true });
    }

    // The new version starts now: its feed gives it the current job only.
    const { server: b } = await h.start({ id: 'stratum-jobs-new', jobs: feed });
    expect(b.adoptJobs(a.handedJobs())).toBe(1);
    expect(await a.handOffSessions(handTo(b))).toBe(1);
    // u1 is still valid (u2 did not clean it): the miner's next share on it counts.
    expect(await client.request('mining.submit', share('u1'))).toMatchObject({ result: true, error: null });
    for (const params of creditedBefore) {
      expect(await client.request('mining.submit', params)).toMatchObject({
        result: null,
        error: [22, 'duplicate share', null],
      });
    }
    expect(client.closed).toBe(false);
    client.close();
  });

  it('after the handover a real disconnect still resumes with its extranonce1, and a live session still has one owner', async () => {
    const { server: a } = await h.start({ id: 'stratum-v1', jobs });
    const { server: b } = await h.start({ id: 'stratum-v2', jobs });
    const { server: c } = await h.start({ id: 'stratum-other', jobs });
    const first = await RawClient.connect(a.port);
    const one = await first.handshake();
    const second = await RawClient.connect(a.port);
    const two = await second.handshake();
    expect(await a.handOffSessions(handTo(b))).toBe(2);

    // A real disconnect from the new server, then a resume on another one.
    first.close();
    await new Promise<void>((resolve) =>
      b.on('disconnect', (e) => e.sessionId === one.sessionId && resolve()),
    );
    const again = await RawClient.connect(c.port);
    expect(await again.handshake(USER, one.sessionId)).toMatchObject({
      sessionId: one.sessionId,
      extranonce1: one.extranonce1,
    });

    // The adopted live session resumed elsewhere: the new server lets it go first.
    const replaced = new Promise<string>((resolve) =>
      b.on('disconnect', (e) => e.sessionId === two.sessionId && resolve(e.reason)),
    );
    const third = await RawClient.connect(c.port);
    expect(await third.handshake(USER, two.sessionId)).toMatchObject({ extranonce1: two.extranonce1 });
    expect(await replaced).toBe('replaced');
    await second.waitClosed();
    expect(await h.client.get(h.keys.extranonce1(CHAIN, two.extranonce1))).toBe(
      `${two.sessionId}|${c.allocator.holder}`,
    );
    again.close();
    third.close();
  });

  it('a share whose spool write takes longer than a second is answered on the same connection before it moves, once, and spooled once', async () => {
    // A slow disk cannot be made for real: the old server's spool is real, its appends delayed.
    const feed = new TestJobSource();
    feed.push(job('s1'));
    const dir = mkdtempSync(join(tmpdir(), 'hw-stratum-slow-'));
    h.dirs.push(dir);
    const spool = await ShareSpool.open({ dir });
    const appended: Share[] = [];
    let slowFrom = Number.POSITIVE_INFINITY;
    let started: () => void = () => {};
    const appendStarted = new Promise<void>((resolve) => {
      started = resolve;
    });
    const slowSink: ShareSink = {
      async append(s) {
        appended.push(s);
        if (appended.length >= slowFrom) {
          started();
          await new Promise((resolve) => setTimeout(resolve, 1500));
        }
        await spool.append(s);
      },
      close: () => spool.close(),
    };
    const { server: a } = await h.start({
      id: 'stratum-slow-old',
      jobs: feed,
      shareSink: slowSink,
      spoolDir: undefined,
    });
    const { server: b } = await h.start({ id: 'stratum-slow-new', jobs: feed });
    const byOld = accepted([a]);
    const byNew = accepted([b]);
    const client = await RawClient.connect(a.port);
    await client.handshake();

    // The share is validated and being written when the switch starts.
    slowFrom = appended.length + 1;
    const slow = share('s1');
    const pending = client.line('mining.submit', slow);
    client.write(pending.text);
    await appendStarted;
    expect(await a.handOffSessions(handTo(b))).toBe(1);

    // The next answer comes from the new server on the same connection, after whatever the old
    // one wrote before letting it go: the slow share's answer must be among it.
    expect(await client.request('mining.submit', share('s1'))).toMatchObject({ result: true, error: null });
    expect(client.messages.filter((m) => m.id === pending.id)).toEqual([
      expect.objectContaining({ id: pending.id, result: true, error: null }),
    ]);
    expect(client.closed).toBe(false);
    const en2 = slow[2];
    expect(appended.filter((s) => s.extranonce2 === en2)).toHaveLength(1);
    expect(byOld.filter((s) => s.extranonce2 === en2)).toHaveLength(1);
    expect(byNew.filter((s) => s.extranonce2 === en2)).toHaveLength(0);
    client.close();
  });
});
