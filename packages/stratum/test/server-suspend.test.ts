import { headerFieldHex } from '@hashwire/chain';
import type { CloseReason, DisconnectEvent, StratumLogger, StratumServer } from '@hashwire/stratum';
import { waitFor } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, RawClient, TestJobSource, USER, createHarness, job } from './server-helpers.js';

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(() => h.close());

let en2 = 0;
function share(jobId: string) {
  en2++;
  return [USER, jobId, en2.toString(16).padStart(16, '0'), headerFieldHex(1_670_462_000), '00000000'];
}

function nextDisconnect(server: StratumServer, match: (e: DisconnectEvent) => boolean) {
  return new Promise<DisconnectEvent>((resolve) => {
    server.on('disconnect', function on(e) {
      if (!match(e)) return;
      server.off('disconnect', on);
      resolve(e);
    });
  });
}

function recordingLogger() {
  const logged: { level: string; msg: string; obj: Record<string, unknown> }[] = [];
  const at =
    (level: string) =>
    (obj: object, msg = '') =>
      logged.push({ level, msg, obj: obj as Record<string, unknown> });
  const logger: StratumLogger = {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  };
  return { logged, logger };
}

describe('suspend: no real work, miners sent away', () => {
  it('without a backup pool: says why (no notify, no stack trace), closes, refuses newcomers, and takes them back after resume', async () => {
    const jobs = new TestJobSource();
    jobs.push(job('s1'));
    const { logged, logger } = recordingLogger();
    const { server } = await h.start({ jobs, logger });
    const miner = await RawClient.connect(server.port);
    const first = await miner.handshake();
    expect(await miner.request('mining.submit', share('s1'))).toMatchObject({ result: true });
    const notifies = miner.messages.filter((m) => m.method === 'mining.notify').length;

    const gone = nextDisconnect(server, (e) => e.sessionId === first.sessionId);
    server.suspend('jm-1: connect ECONNREFUSED 10.1.2.3:9332');
    const goodbye = await miner.nextNotification('client.show_message', 0);
    expect(goodbye.params).toEqual([expect.stringMatching(/no work from its coin daemons.*backup pool/)]);
    expect(JSON.stringify(goodbye)).not.toMatch(/ECONNREFUSED|10\.1\.2\.3|at .*\.js/);
    expect((await gone).reason).toBe<CloseReason>('suspended');
    await miner.waitClosed();
    expect(miner.messages.filter((m) => m.method === 'mining.notify').length).toBe(notifies);
    expect(server.stats()).toMatchObject({
      state: 'suspended',
      suspendedReason: 'jm-1: connect ECONNREFUSED 10.1.2.3:9332',
      connections: 0,
    });
    expect(logged).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        msg: 'stratum: suspended, sending miners away',
        obj: expect.objectContaining({ reason: 'jm-1: connect ECONNREFUSED 10.1.2.3:9332', sessions: 1 }),
      }),
    );

    // A miner arriving now is told so and closed, whatever it asks first.
    for (const [method, params] of [
      ['mining.subscribe', ['raw/1', first.sessionId]],
      ['mining.configure', [['version-rolling'], {}]],
    ] as const) {
      const newcomer = await RawClient.connect(server.port);
      const reply = await newcomer.request(method, [...params]);
      expect(reply.error).toEqual([20, expect.stringMatching(/no work from its coin daemons/), null]);
      await newcomer.waitClosed();
    }
    // Jobs arriving while suspended go to nobody (and are kept for later).
    jobs.push(job('s2'));

    server.resume();
    expect(server.stats()).toMatchObject({ state: 'running', suspendedReason: null });
    const back = await RawClient.connect(server.port);
    const again = await back.handshake(USER, first.sessionId);
    expect(again).toMatchObject({ sessionId: first.sessionId, extranonce1: first.extranonce1 });
    expect(again.notify.params![0]).toBe('s2');
    expect(await back.request('mining.submit', share('s2'))).toMatchObject({ result: true });
    back.close();
  });

  it('with a backup pool: client.reconnect to it, shares in flight answered stale, stragglers closed after the grace', async () => {
    const jobs = new TestJobSource();
    jobs.push(job('b1'));
    const reconnectTo = { host: 'backup.example', port: 3333, waitSeconds: 5 };
    // A grace nothing here waits out: a miner still answering and another leaving of its own
    // accord must both happen inside it. (With 300 ms, an event-loop stall of the loaded
    // machine between the suspend and the polite miner's close ended the grace first.)
    const { server } = await h.start({ jobs, daemonLoss: { reconnectTo, graceMs: 600_000 } });
    const polite = await RawClient.connect(server.port);
    const stubborn = await RawClient.connect(server.port);
    const left = await polite.handshake();
    const stays = await stubborn.handshake();
    // A connection mid-handshake (no subscribe yet) is simply closed.
    const early = await RawClient.connect(server.port);
    await waitFor(() => server.stats().connections === 3, {
      what: 'the server to hold the third connection',
    });
    const politeGone = nextDisconnect(server, (e) => e.sessionId === left.sessionId);

    server.suspend('no daemon');
    for (const c of [polite, stubborn]) {
      const told = await c.nextNotification('client.reconnect', 0);
      expect(told.params).toEqual(['backup.example', 3333, 5]);
    }
    await early.waitClosed();
    expect(early.messages).toEqual([]);
    // A share it sends before leaving is still answered, but as stale: the work it was found
    // on is what the pool stopped crediting when it suspended.
    expect(await polite.request('mining.submit', share('b1'))).toMatchObject({
      result: null,
      error: [21, expect.any(String), null],
    });
    expect(server.stats().shares).toMatchObject({ accepted: 0, stale: 1 });
    polite.close();
    expect((await politeGone).reason).toBe<CloseReason>('client-closed');
    // The one that ignores client.reconnect is still here while the grace lasts.
    expect(stubborn.closed).toBe(false);
    expect(server.stats()).toMatchObject({ state: 'suspended', connections: 1 });
    expect(server.stats().closed).toMatchObject({ suspended: 1, 'client-closed': 1 });
    stubborn.close();

    // A straggler is closed once the grace is over: on a server whose grace is short, with
    // nothing to do before it ends.
    const { server: brief } = await h.start({ jobs, daemonLoss: { reconnectTo, graceMs: 300 } });
    const straggler = await RawClient.connect(brief.port);
    const late = await straggler.handshake();
    const lateGone = nextDisconnect(brief, (e) => e.sessionId === late.sessionId);
    brief.suspend('no daemon');
    expect((await straggler.nextNotification('client.reconnect', 0)).params).toEqual([
      'backup.example',
      3333,
      5,
    ]);
    expect((await lateGone).reason).toBe<CloseReason>('suspended');
    await straggler.waitClosed();
    expect(brief.stats()).toMatchObject({ state: 'suspended', connections: 0 });
    expect(brief.stats().closed).toMatchObject({ suspended: 1 });
  });

  it('a second suspend keeps the suspension with the newest reason; drain and close end it', async () => {
    const jobs = new TestJobSource();
    jobs.push(job('c1'));
    const { server } = await h.start({ jobs });
    server.suspend('first');
    server.suspend('second reason');
    expect(server.stats()).toMatchObject({ state: 'suspended', suspendedReason: 'second reason' });
    await server.drain();
    expect(server.stats().state).toBe('closed');
    server.resume();
    server.suspend('after close');
    expect(server.stats().state).toBe('closed');
  });
});
