// Issue 14: junk and unknown-job submits count toward the ban, a connection cannot queue
// submits without bound, and names are checked (and made canonical) before anything keeps them.
import { EventEmitter, once } from 'node:events';
import { headerFieldHex } from '@hashwire/chain';
import type { Share } from '@hashwire/protocol';
import type { CloseReason, DisconnectEvent, StratumServer } from '@hashwire/stratum';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADDRESS, type Harness, RawClient, USER, createHarness, job } from './server-helpers.js';

const NTIME = headerFieldHex(1_670_462_000);

let h: Harness;

beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h.close();
});

function nextDisconnect(srv: StratumServer, ip: string): Promise<DisconnectEvent> {
  return new Promise((resolve) => {
    const on = (e: DisconnectEvent) => {
      if (e.ip !== ip) return;
      srv.off('disconnect', on);
      resolve(e);
    };
    srv.on('disconnect', on);
  });
}

let en2 = 0;
function goodShare(user = USER, jobId = 'x1'): unknown[] {
  return [user, jobId, (++en2).toString(16).padStart(16, '0'), NTIME, '00000000'];
}

describe('ban score: malformed and unknown-job submits count', () => {
  it('bans an address sending only junk and unknown-job submits, across reconnects; an honest address mines on', async () => {
    const { server, jobs } = await h.start({
      limits: { banCheckShares: 10, banInvalidRatio: 0.5, banDurationMs: 60_000, maxProtocolErrors: 3 },
    });
    jobs.push(job('x1'));
    const honest = await RawClient.connect(server.port, '127.0.0.60');
    await honest.handshake();

    const junk: unknown[][] = [
      [USER],
      [USER, { job: 1 }, '00', NTIME, '00000000'],
      [7, 'x1', '00', NTIME, '00000000'],
      [`${ADDRESS}.notme`, 'x1', '00'.repeat(8), NTIME, '00000000'],
      [USER, ['x1'], '00'.repeat(8), NTIME, '00000000'],
      [USER, 'x1', '00'.repeat(8), NTIME, '00000000', '00000000', 'extra'],
    ];
    // First connection: six malformed submits (four of them errors 20: past maxProtocolErrors)
    // close it…
    const first = await RawClient.connect(server.port, '127.0.0.61');
    await first.handshake();
    const tooMany = nextDisconnect(server, '127.0.0.61');
    for (const params of junk) first.write(first.line('mining.submit', params).text);
    expect((await tooMany).reason).toBe<CloseReason>('too-many-errors');
    await first.waitClosed();
    expect(first.messages.filter((m) => m.id !== null && m.error)).toHaveLength(junk.length);

    // …the address keeps its score: four unknown-job submits on a new connection fill the
    // window of ten with ten bad ones, and the address is banned.
    const second = await RawClient.connect(server.port, '127.0.0.61');
    await second.handshake();
    const banned = nextDisconnect(server, '127.0.0.61');
    for (const jobId of ['nojob', 'a b', 'x1 ', 'ffff']) {
      const reply = await second.request('mining.submit', goodShare(USER, jobId));
      expect(reply.error).toEqual([21, 'job not found', null]);
    }
    expect((await banned).reason).toBe<CloseReason>('banned');
    await second.waitClosed();
    const again = await RawClient.connect(server.port, '127.0.0.61');
    await again.waitClosed();
    expect(again.messages).toEqual([]);
    expect(server.stats().bans).toBe(1);

    // The honest miner on another address never noticed.
    expect(await honest.request('mining.submit', goodShare())).toMatchObject({ result: true, error: null });
    expect(honest.closed).toBe(false);
    honest.close();
  });

  it('does not ban for stale shares on a job a new block superseded', async () => {
    const { server, jobs } = await h.start({
      limits: { banCheckShares: 4, banInvalidRatio: 0.5, banDurationMs: 60_000 },
    });
    jobs.push(job('s1'));
    const c = await RawClient.connect(server.port, '127.0.0.62');
    await c.handshake();
    const clean = c.nextNotification('mining.notify');
    jobs.push(job('s2', { template: { previousblockhash: 'aa'.repeat(32) } }));
    await clean;
    for (let i = 0; i < 8; i++) {
      expect((await c.request('mining.submit', goodShare(USER, 's1'))).error).toEqual([
        21,
        'stale job',
        null,
      ]);
    }
    expect(await c.request('mining.submit', goodShare(USER, 's2'))).toMatchObject({ result: true });
    expect(c.closed).toBe(false);
    expect(server.stats().bans).toBe(0);
    c.close();
  });
});

/** A share sink whose writes wait for the test: the submits of accepted shares stay in flight. */
function heldSink() {
  const held: (() => void)[] = [];
  const written: Share[] = [];
  const emitter = new EventEmitter<{ held: [] }>();
  return {
    written,
    sink: {
      append: (share: Share) =>
        new Promise<void>((resolve) => {
          written.push(share);
          held.push(resolve);
          emitter.emit('held');
        }),
    },
    /** Resolves once `n` writes are held. */
    async holding(n: number): Promise<void> {
      while (held.length < n) await once(emitter, 'held');
    },
    release(): void {
      for (const resolve of held.splice(0)) resolve();
    },
  };
}

describe('in-flight cap', () => {
  it('answers a submit past maxSubmitsInFlight with an error at once, and counts it toward the ban', async () => {
    const writes = heldSink();
    const { server, jobs } = await h.start({
      shareSink: writes.sink,
      limits: { maxSubmitsInFlight: 3, banCheckShares: 10, banInvalidRatio: 0.3, banDurationMs: 60_000 },
    });
    jobs.push(job('f1'));
    const c = await RawClient.connect(server.port, '127.0.0.63');
    await c.handshake();
    const submit = () => c.request('mining.submit', goodShare(USER, 'f1'));
    const answers = [submit(), submit(), submit()];
    await writes.holding(3);
    const tooMany = [20, 'too many submits waiting for an answer (at most 3): wait for the replies', null];
    expect((await submit()).error).toEqual(tooMany);
    writes.release();
    for (const answer of await Promise.all(answers)) expect(answer).toMatchObject({ result: true });
    expect(writes.written).toHaveLength(3);

    // Three in flight again (the window holds 7 submits, 1 bad); three more past the cap make
    // 10 with 4 bad: banned.
    const inFlight = [submit(), submit(), submit()].map((p) => p.catch(() => null));
    await writes.holding(3);
    const banned = nextDisconnect(server, '127.0.0.63');
    const over = [submit(), submit(), submit()].map((p) => p.catch(() => null));
    expect((await banned).reason).toBe<CloseReason>('banned');
    writes.release();
    await Promise.all([...inFlight, ...over]);
    expect(c.messages.filter((m) => m.error?.[1] === tooMany[1])).toHaveLength(4);
    expect(server.stats().bans).toBe(1);
  });
});

describe('account and worker names at mining.authorize', () => {
  it('maps an upper-case bech32 address to the same account, refuses mixed case and whitespace', async () => {
    const shares: Share[] = [];
    const { server, jobs } = await h.start({ shareSink: { append: async (s) => void shares.push(s) } });
    jobs.push(job('n1'));
    const c = await RawClient.connect(server.port, '127.0.0.64');
    await c.handshake(`${ADDRESS.toUpperCase()}.upper`);
    expect(await c.request('mining.submit', goodShare(`${ADDRESS.toUpperCase()}.upper`, 'n1'))).toMatchObject(
      {
        result: true,
      },
    );
    expect(await c.request('mining.authorize', [`${ADDRESS}.lower`, 'x'])).toMatchObject({ result: true });
    expect(await c.request('mining.submit', goodShare(`${ADDRESS}.lower`, 'n1'))).toMatchObject({
      result: true,
    });
    expect(shares.map((s) => [s.account, s.worker])).toEqual([
      [ADDRESS, 'upper'],
      [ADDRESS, 'lower'],
    ]);
    expect(server.sessions()[0]!.account).toBe(ADDRESS);

    const mixed = `${ADDRESS.slice(0, 8).toUpperCase()}${ADDRESS.slice(8)}`;
    const refused: [string, RegExp][] = [
      [`${mixed}.rig`, /mixed-case|Mixed-case/i],
      [`${ADDRESS} `, /spaces/],
      [`${ADDRESS} .rig`, /spaces/],
      [` ${ADDRESS}.rig`, /spaces/],
      [`${ADDRESS}.rig\t`, /spaces/],
      [`${ADDRESS}\u00a0.rig`, /spaces/],
    ];
    for (const [username, message] of refused) {
      const reply = await c.request('mining.authorize', [username, 'x']);
      expect(reply.error?.[0], JSON.stringify(username)).toBe(24);
      expect(reply.error?.[1], JSON.stringify(username)).toMatch(message);
    }
    c.close();
  });

  it('refuses worker names with unicode, control characters or 10 KB of text; none reaches Redis or the log', async () => {
    const logged: unknown[] = [];
    const log = (obj: object, msg?: string) => logged.push(obj, msg);
    const { server, jobs } = await h.start({
      logger: { debug: log, info: log, warn: log, error: log },
      limits: { maxLineBytes: 65_536 },
    });
    jobs.push(job('w1'));
    const hostile = [
      'rigé',
      '矿工',
      'rig😀',
      'rig\u0000x',
      'rig\u001b[31mred',
      'rig\r\nINFO fake log line',
      'rig\u2028x',
      'rig\u200bx',
      'rig|x',
      'x'.repeat(10_240),
      'é'.repeat(10_240),
    ];
    const c = await RawClient.connect(server.port, '127.0.0.65');
    await c.request('mining.subscribe', ['raw/1']);
    for (const worker of hostile) {
      const reply = await c.request('mining.authorize', [`${ADDRESS}.${worker}`, 'x']);
      expect(reply.error?.[0], worker.slice(0, 20)).toBe(24);
      expect(reply.error?.[1]).not.toContain(worker);
    }
    // One good worker, so the session is written to Redis and logged like any other.
    await c.request('mining.authorize', [USER, 'x']);
    expect(await c.request('mining.submit', goodShare(USER, 'w1'))).toMatchObject({ result: true });
    c.close();
    await server.close();
    const keys = await h.client.keys(`${h.keys.prefix}*`);
    const values: string[] = [...keys];
    for (const key of keys) {
      const type = await h.client.type(key);
      if (type === 'hash') values.push(...Object.entries(await h.client.hgetall(key)).flat());
      else if (type === 'string') values.push((await h.client.get(key)) ?? '');
    }
    const text = JSON.stringify(logged);
    for (const worker of hostile) {
      for (const value of values)
        expect(value.includes(worker), `${worker.slice(0, 20)} in Redis`).toBe(false);
      expect(text.includes(JSON.stringify(worker).slice(1, -1)), `${worker.slice(0, 20)} logged`).toBe(false);
    }
  });
});
