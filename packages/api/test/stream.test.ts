import { type PoolEvent, type StreamClient, createStream } from '@hashwire/client';
import { createLogger } from '@hashwire/core';
import { type KeyBuilder, POOL_STREAM } from '@hashwire/protocol';
import { type RedisClient, appendEvent, connectRedis } from '@hashwire/registry';
import { type RedisServer, startRedis } from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { testKeys } from '../../reporter/test/helpers.js';
import { type ApiService, createApiService, createTokenStore } from '../src/index.js';
import { CuttableWebSocket, record, waitFor } from './stream-helpers.js';

// The live stream against a real Redis and real WebSockets, through @hashwire/client.

const quiet = createLogger({ name: 'api-test', level: 'silent' });
/** Stored tokens (the api's token store), by role. */
const tokens: Record<'admin' | 'read' | 'acctA' | 'revokeMe', { token: string; id: string }> = {} as never;

let server: RedisServer;
let redis: RedisClient;
let keys: KeyBuilder;
let api: ApiService;
const streams: StreamClient[] = [];
/**
 * Event producers of the running test. A test that timed out is abandoned, not stopped: its
 * producer kept appending into the tests after it (one run at load 44: the cut-and-resume test
 * timed out, and the next two got its block.accepted events among theirs).
 */
const producers: { stop: boolean; done: Promise<unknown> }[] = [];

function open(options: Partial<Parameters<typeof createStream>[0]> & { topics: string[] }): StreamClient {
  const stream = createStream({ url: api.url!, WebSocket: CuttableWebSocket, backoffMs: 20, ...options });
  streams.push(stream);
  return stream;
}

const block = (account: string, height: number) => ({
  chain: 'ltc',
  hash: height.toString(16).padStart(64, '0'),
  height,
  state: 'accepted',
  account,
});

beforeAll(async () => {
  server = await startRedis();
  redis = connectRedis(server.url, 'api-stream-test');
  keys = testKeys();
  api = await createApiService({
    id: 'api-s',
    redis,
    keys,
    chains: [{ chain: 'ltc', algorithm: 'scrypt' }],
    port: 0,
    httpPortRange: [0, 0],
    logger: quiet,
    stream: { checkpointMs: 100 },
  });
  await api.start();
  const store = createTokenStore(redis, keys);
  const make = async (request: Parameters<typeof store.create>[0]) => {
    const made = await store.create(request);
    return { token: made.token, id: made.record.id };
  };
  tokens.admin = await make({ kind: 'admin', name: 'ops' });
  tokens.read = await make({ kind: 'read', name: 'dashboard' });
  tokens.acctA = await make({ kind: 'account', name: 'miner A', account: 'acctA' });
  tokens.revokeMe = await make({ kind: 'read', name: 'to revoke' });
});

afterEach(async () => {
  for (const s of streams.splice(0)) s.close();
  for (const p of producers) p.stop = true;
  await Promise.allSettled(producers.splice(0).map((p) => p.done));
});

afterAll(async () => {
  await api?.close();
  redis?.disconnect();
  await server?.stop();
});

describe('GET /v1/stream', () => {
  it('answers a subscribe with the state it covers and its positions, then the changes after them', async () => {
    const before = await appendEvent(redis, keys, 'block.accepted', block('acctA', 100), 'ltc');
    const stream = open({ topics: ['services', 'account:ltc:acctA', 'block.*'] });
    const seen = record(stream);
    const snapshot = await new Promise<Parameters<Parameters<typeof stream.on<'snapshot'>>[1]>[0]>(
      (resolve) => stream.on('snapshot', resolve),
    );
    expect(stream.state).toBe('connected');
    expect(snapshot.positions.ltc).toBe(before);
    expect(snapshot.topics).toEqual(['services', 'account:ltc:acctA', 'block.*']);
    const services = snapshot.state.services as { services: { kind: string; id: string }[] };
    expect(services.services).toContainEqual(expect.objectContaining({ kind: 'api', id: 'api-s' }));
    expect(snapshot.state['account:ltc:acctA']).toMatchObject({ chain: 'ltc', account: 'acctA' });
    expect(snapshot.state['block.*']).toBeUndefined();

    const after = [
      await appendEvent(redis, keys, 'block.accepted', block('acctA', 101), 'ltc'),
      await appendEvent(redis, keys, 'service.stratum.up', { kind: 'stratum', id: 'st-1' }),
      await appendEvent(
        redis,
        keys,
        'worker.online',
        { chain: 'ltc', account: 'acctB', worker: 'acctB.r' },
        'ltc',
      ),
      await appendEvent(redis, keys, 'block.confirmed', block('acctB', 99), 'ltc'),
    ];
    await waitFor('three events', () => seen.events.length >= 3);
    // block.accepted (two topics take it: once), service.stratum.up; not worker.online of acctB
    expect(seen.events.map((e) => [e.stream, e.seq, e.type])).toEqual([
      ['ltc', after[0], 'block.accepted'],
      [POOL_STREAM, after[1], 'service.stratum.up'],
      ['ltc', after[3], 'block.confirmed'],
    ]);
    expect(seen.events[0]!.data).toMatchObject({ account: 'acctA', height: 101 });
  });

  it('resumes after connections are cut mid-flow: every event once, in order', async () => {
    const stream = open({ topics: ['block.*', 'service.*'] });
    const seen = record(stream);
    await stream.until('connected');
    const appended: Record<string, string[]> = { ltc: [], pool: [] };
    const TOTAL = 600;
    let producing = true;
    const control = { stop: false, done: Promise.resolve() as Promise<unknown> };
    const producer = (async () => {
      for (let i = 0; i < TOTAL && !control.stop; i++) {
        if (i % 3 === 2)
          appended.pool!.push(
            await appendEvent(redis, keys, 'service.stratum.up', { kind: 'stratum', id: `st-${i}` }),
          );
        else
          appended.ltc!.push(
            await appendEvent(redis, keys, 'block.accepted', block('acctA', 1000 + i), 'ltc'),
          );
      }
      producing = false;
    })();
    control.done = producer;
    producers.push(control);
    let cuts = 0;
    for (const mark of [100, 300]) {
      await waitFor(`${mark} events`, () => seen.events.length >= mark);
      // The socket of the previous resume, open (events may arrive in bursts under load).
      await waitFor('an open socket', () =>
        CuttableWebSocket.opened.some((ws) => ws.readyState === WebSocket.OPEN),
      );
      cuts += CuttableWebSocket.cutAll();
    }
    await producer;
    expect(producing).toBe(false);
    await waitFor('every event', () => seen.events.length >= TOTAL);
    const got = (stream: string) => seen.events.filter((e) => e.stream === stream).map((e) => e.seq);
    expect(got('ltc')).toEqual(appended.ltc);
    expect(got(POOL_STREAM)).toEqual(appended.pool);
    expect(seen.events).toHaveLength(TOTAL);
    expect(cuts).toBeGreaterThanOrEqual(2);
    expect(seen.states).toEqual(expect.arrayContaining(['reconnecting', 'catching-up', 'connected']));
  });

  it('tells a client resuming from a trimmed-away position to take a new snapshot', async () => {
    const first = open({ topics: ['block.*'] });
    await first.until('connected');
    const old = first.positions!;
    first.close();
    for (let i = 0; i < 5; i++)
      await appendEvent(redis, keys, 'block.accepted', block('acctA', 2000 + i), 'ltc');
    await redis.xtrim(keys.events('ltc'), 'MAXLEN', 2);

    // The raw protocol: the error names the stream and says what to do.
    const raw = new WebSocket(`${api.url!.replace('http', 'ws')}/v1/stream`);
    const answer = new Promise<{ type: string; id: number; error: Record<string, unknown> }>((resolve) =>
      raw.once('message', (data) => resolve(JSON.parse(String(data)))),
    );
    raw.on('open', () =>
      raw.send(JSON.stringify({ op: 'resume', id: 7, topics: ['block.*'], positions: old })),
    );
    const error = await answer;
    raw.close();
    expect(error).toMatchObject({ type: 'error', id: 7, error: { code: 'too_old', stream: 'ltc' } });
    expect(String(error.error.message)).toMatch(/new snapshot/);

    // The client takes the new snapshot by itself.
    const second = open({ topics: ['block.*'], positions: old });
    const seen = record(second);
    const snapshot = new Promise((resolve) => second.on('snapshot', resolve));
    await snapshot;
    expect(seen.errors.map((e) => e.code)).toEqual(['too_old']);
    expect(second.state).toBe('connected');
    const next = await appendEvent(redis, keys, 'block.accepted', block('acctA', 3000), 'ltc');
    await waitFor('the event after the new snapshot', () => seen.events.length === 1);
    expect(seen.events[0]!.seq).toBe(next);
  });

  it('keeps account tokens to their account and admin events to admins', async () => {
    const denied = async (token: string | undefined, topics: string[]) => {
      const s = open({ topics, ...(token !== undefined && { token }) });
      const seen = record(s);
      // A refused subscription ends the client: the same topics would be refused again.
      await waitFor(`an error for ${topics}`, () => s.state === 'closed');
      return seen.errors[0];
    };
    expect(await denied(tokens.acctA.token, ['account:ltc:acctB'])).toMatchObject({
      code: 'forbidden',
      message: expect.stringContaining('only account acctA'),
    });
    expect(await denied(tokens.acctA.token, ['account.acctB.*'])).toMatchObject({ code: 'forbidden' });
    expect(await denied(tokens.read.token, ['admin.*'])).toMatchObject({ code: 'forbidden' });
    expect(await denied(undefined, ['admin.drain'])).toMatchObject({ code: 'forbidden' });

    const mine = open({ topics: ['worker.*', 'account:ltc:acctA', '*'], token: tokens.acctA.token });
    const admin = open({ topics: ['admin.*'], token: tokens.admin.token });
    const seenMine = record(mine);
    const seenAdmin = record(admin);
    await Promise.all([mine.until('connected'), admin.until('connected')]);
    await appendEvent(
      redis,
      keys,
      'worker.online',
      { chain: 'ltc', account: 'acctB', worker: 'acctB.x', lastShareAt: 1 },
      'ltc',
    );
    await appendEvent(redis, keys, 'admin.drain', {
      actor: { tokenId: 'tok-admin', kind: 'admin' },
      target: 'st-1',
    });
    const own = await appendEvent(
      redis,
      keys,
      'worker.online',
      { chain: 'ltc', account: 'acctA', worker: 'acctA.x', lastShareAt: 2 },
      'ltc',
    );
    await waitFor('acctA’s event', () => seenMine.events.length > 0);
    await waitFor('the admin event', () => seenAdmin.events.length > 0);
    // In order: had acctB's event or the admin event reached the account token, it would be first.
    expect(seenMine.events.map((e) => e.seq)).toEqual([own]);
    expect(seenAdmin.events.map((e) => e.type)).toEqual(['admin.drain']);
  });

  it('cuts a stream within a second of its token being revoked through another instance', async () => {
    const other = await createApiService({
      id: 'api-s2',
      redis,
      keys,
      chains: [{ chain: 'ltc', algorithm: 'scrypt' }],
      port: 0,
      httpPortRange: [0, 0],
      logger: quiet,
    });
    await other.start();
    try {
      const stream = open({ topics: ['block.*'], token: tokens.revokeMe.token });
      const seen = record(stream);
      await stream.until('connected');
      const closed = stream.until('closed').catch(() => {});
      let closedAt = 0;
      void closed.then(() => {
        closedAt = performance.now();
      });
      const revoked = await fetch(`${other.url}/v1/tokens/${tokens.revokeMe.id}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${tokens.admin.token}` },
      });
      expect(revoked.status).toBe(200);
      // From the moment the revocation is done (answered), not counting the DELETE's own trip.
      const revokedAt = performance.now();
      await closed;
      const tookMs = Math.max(0, closedAt - revokedAt);
      expect(stream.state).toBe('closed');
      expect(tookMs).toBeLessThan(1000);
      expect(seen.errors.map((e) => e.code)).toContain('unauthorized');
      // It does not come back: the token is refused now.
      const again = open({ topics: ['block.*'], token: tokens.revokeMe.token });
      const seenAgain = record(again);
      await waitFor('the refusal', () => again.state === 'closed');
      expect(seenAgain.errors[0]).toMatchObject({ code: 'unauthorized' });
    } finally {
      await other.close();
    }
  });

  it('closes a stream when its token expires, not before', async () => {
    // The api runs in this process: its clock (Date.now) is held here. A 1 s token on the real
    // clock raced the connection, which took over a second with the machine busy (the stream
    // was refused, or connected with the token already expired). An hour ahead, so Redis's own
    // expiry of the token's key (by its clock) is not what ends it either.
    let clock = Date.now() + 3_600_000;
    const held = vi.spyOn(Date, 'now').mockImplementation(() => clock);
    try {
      const made = await createTokenStore(redis, keys).create({ kind: 'read', name: 'short', expiresInS: 1 });
      const expiresAt = made.record.expiresAt!;
      expect(expiresAt).toBe(clock + 1000);
      const stream = open({ topics: ['block.*'], token: made.token });
      const seen = record(stream);
      await stream.until('connected');

      // A millisecond before: a checkpoint tick (it reports an event the topic does not take,
      // appended after the clock moved) looks at the token and leaves the stream open.
      clock = expiresAt - 1;
      const unrelated = await appendEvent(redis, keys, 'service.stratum.up', { kind: 'stratum', id: 'st-x' });
      await waitFor(
        'a checkpoint past the unrelated event, or the stream closed',
        () => stream.state !== 'connected' || stream.positions?.[POOL_STREAM] === unrelated,
      );
      expect(stream.state, JSON.stringify(seen.errors)).toBe('connected');

      // At the expiry: the next tick closes it.
      clock = expiresAt;
      await stream.until('closed');
      expect(seen.events).toEqual([]);
      expect(seen.errors).toContainEqual(
        expect.objectContaining({ code: 'unauthorized', message: 'token expired' }),
      );
    } finally {
      held.mockRestore();
    }
  });

  it('serves a watch’s outbox as topic watch:<id> to admins, with the same positions and resume', async () => {
    const outbox = keys.watchOutbox('w1');
    const deliver = async (n: number) =>
      (await redis.xadd(
        outbox,
        '*',
        'type',
        'block.accepted',
        'ts',
        String(Date.now()),
        'data',
        JSON.stringify(block('acctA', n)),
      )) as string;
    expect(
      await (async () => {
        const s = open({ topics: ['watch:w1'], token: tokens.read.token });
        const seen = record(s);
        await waitFor('the refusal', () => seen.errors.length > 0);
        return seen.errors[0];
      })(),
    ).toMatchObject({ code: 'forbidden', message: expect.stringContaining('admin') });

    await deliver(1); // before the subscription: not given
    const stream = open({ topics: ['watch:w1'], token: tokens.admin.token });
    const seen = record(stream);
    await stream.until('connected');
    expect(Object.keys(stream.positions!).sort()).toEqual(['ltc', 'pool', 'watch:w1']);
    const ids: string[] = [];
    for (let n = 2; n < 6; n++) ids.push(await deliver(n));
    await waitFor('four deliveries', () => seen.events.length >= 4);
    CuttableWebSocket.cutAll();
    for (let n = 6; n < 10; n++) ids.push(await deliver(n));
    await stream.until('connected');
    await waitFor('eight deliveries', () => seen.events.length >= 8);
    expect(seen.events.map((e) => [e.stream, e.seq])).toEqual(ids.map((id) => ['watch:w1', id]));
    expect(seen.states).toContain('catching-up');
  });

  it('indexes subscriptions by distinct filter: many sockets on one topic are one filter; unsubscribe stops them', async () => {
    const url = `${api.url!.replace('http', 'ws')}/v1/stream`;
    // The sockets of the tests before are closed; wait until the server has let them go.
    await waitFor('no connection left', () => api.stats().stream.connections === 0);
    const base = api.stats().stream.filters;
    expect(base).toBe(0);
    const sockets = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const ws = new WebSocket(url);
        const got: { type: string; event?: { seq: string } }[] = [];
        ws.on('message', (data) => got.push(JSON.parse(String(data))));
        await new Promise((resolve) => ws.on('open', resolve));
        ws.send(JSON.stringify({ op: 'subscribe', topics: ['round.closed'] }));
        await waitFor('subscribed', () => got.some((m) => m.type === 'subscribed'));
        return { ws, got };
      }),
    );
    try {
      expect(api.stats().stream.filters - base).toBe(1);
      const first = await appendEvent(
        redis,
        keys,
        'round.closed',
        { chain: 'ltc', hash: 'ab', height: 1, accounts: 1, totalDiff: 8, account: 'acctA' },
        'ltc',
      );
      await waitFor('every socket has it', () =>
        sockets.every((s) => s.got.some((m) => m.event?.seq === first)),
      );
      for (const s of sockets)
        s.ws.send(JSON.stringify({ op: 'unsubscribe', id: 'u', topics: ['round.closed', 'never.held'] }));
      await waitFor('unsubscribed', () => sockets.every((s) => s.got.some((m) => m.type === 'unsubscribed')));
      expect(sockets[0]!.got.find((m) => m.type === 'unsubscribed')).toEqual({
        type: 'unsubscribed',
        id: 'u',
        topics: ['round.closed'],
      });
      expect(api.stats().stream.filters).toBe(base);
      await appendEvent(
        redis,
        keys,
        'round.closed',
        { chain: 'ltc', hash: 'cd', height: 2, accounts: 1, totalDiff: 8, account: 'acctA' },
        'ltc',
      );
      // A later event on a topic still held shows the unsubscribed one did not come before it.
      sockets[0]!.ws.send(JSON.stringify({ op: 'subscribe', topics: ['block.*'] }));
      await waitFor(
        'resubscribed',
        () => sockets[0]!.got.filter((m) => m.type === 'subscribed').length === 2,
      );
      const marker = await appendEvent(redis, keys, 'block.accepted', block('acctA', 5), 'ltc');
      await waitFor('the marker', () => sockets[0]!.got.some((m) => m.event?.seq === marker));
      expect(sockets[0]!.got.filter((m) => m.type === 'event').map((m) => m.event!.seq)).toEqual([
        first,
        marker,
      ]);
    } finally {
      for (const s of sockets) s.ws.close();
    }
  });

  it('holds thousands of topics and gives each event only to the sockets whose topics take it', async () => {
    const url = `${api.url!.replace('http', 'ws')}/v1/stream`;
    await waitFor('no connection left', () => api.stats().stream.connections === 0);
    const subscriber = async (from: number) => {
      const ws = new WebSocket(url);
      const got: { type: string; event?: { seq: string } }[] = [];
      ws.on('message', (data) => got.push(JSON.parse(String(data))));
      await new Promise((resolve) => ws.on('open', resolve));
      const topics = Array.from({ length: 1000 }, (_, i) => `account.acct${from + i}.*`);
      ws.send(JSON.stringify({ op: 'subscribe', topics }));
      await waitFor('subscribed', () => got.some((m) => m.type === 'subscribed'));
      return { ws, seqs: () => got.filter((m) => m.type === 'event').map((m) => m.event!.seq) };
    };
    const [a, b] = [await subscriber(0), await subscriber(1000)];
    try {
      expect(api.stats().stream).toMatchObject({ connections: 2, topics: 2000, filters: 2000 });
      const online = (account: string) =>
        appendEvent(
          redis,
          keys,
          'worker.online',
          { chain: 'ltc', account, worker: `${account}.r`, lastShareAt: 1 },
          'ltc',
        );
      const e1 = await online('acct5');
      const e2 = await online('acct1500');
      await online('acct2500'); // no one's
      const e4 = await online('acct999');
      const e5 = await online('acct1999');
      await waitFor('two events each', () => a.seqs().length >= 2 && b.seqs().length >= 2);
      expect(a.seqs()).toEqual([e1, e4]);
      expect(b.seqs()).toEqual([e2, e5]);
    } finally {
      a.ws.close();
      b.ws.close();
    }
  });

  it('refuses bad input with one error shape', async () => {
    const url = `${api.url!.replace('http', 'ws')}/v1/stream`;
    const rejected = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${url}?token=nope`);
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.on('error', () => {});
    });
    expect(rejected).toBe(401);

    const ws = new WebSocket(url);
    const answers: {
      type: string;
      id?: unknown;
      error?: { code: string; field?: string; message: string };
    }[] = [];
    ws.on('message', (data) => answers.push(JSON.parse(String(data))));
    await new Promise((resolve) => ws.on('open', resolve));
    ws.send('not json');
    ws.send(JSON.stringify({ op: 'subscribe', id: 1, topics: ['nope:ltc'] }));
    ws.send(JSON.stringify({ op: 'subscribe', id: 2, topics: ['chain:doge'] }));
    ws.send(JSON.stringify({ op: 'subscribe', id: 3, topics: ['a*b*c*d*e*f'] }));
    ws.send(JSON.stringify({ op: 'subscribe', id: 4, topics: [] }));
    ws.send(JSON.stringify({ op: 'resume', id: 5, topics: ['block.*'], positions: { ltc: 'x' } }));
    ws.send(JSON.stringify({ op: 'fly', id: 6 }));
    await waitFor('seven answers', () => answers.length >= 7);
    ws.close();
    expect(answers.map((a) => [a.id, a.error?.code, a.error?.field])).toEqual([
      [undefined, 'bad_request', 'message'],
      [1, 'bad_request', 'topics'],
      [2, 'not_found', 'topics'],
      [3, 'bad_request', 'topics'],
      [4, 'bad_request', 'topics'],
      [5, 'bad_request', 'positions.ltc'],
      [6, 'bad_request', 'op'],
    ]);
    expect(answers[2]!.error!.message).toMatch(/no chain doge \(this pool has: ltc\)/);
  });

  it('refuses stream limits that are not positive integers, naming the option', async () => {
    const make = (stream: Record<string, unknown>) =>
      createApiService({
        id: 'api-bad',
        redis,
        keys,
        chains: [],
        port: 0,
        logger: quiet,
        stream: stream as never,
      });
    await expect(make({ checkpointMs: 0 })).rejects.toThrow(
      /stream\.checkpointMs must be a positive integer, got 0/,
    );
    await expect(make({ maxBufferedBytes: '4MB' })).rejects.toThrow(
      /stream\.maxBufferedBytes must be a positive integer/,
    );
    await expect(make({ maxBuffer: 1 })).rejects.toThrow(
      /stream\.maxBuffer is not an option \(options: maxBufferedBytes/,
    );
  });

  it('closes a consumer that does not read, without holding its backlog', async () => {
    const slowApi = await createApiService({
      id: 'api-slow',
      redis,
      keys,
      chains: [{ chain: 'ltc', algorithm: 'scrypt' }],
      port: 0,
      httpPortRange: [0, 0],
      logger: quiet,
      stream: { maxBufferedBytes: 256 * 1024 },
    });
    await slowApi.start();
    try {
      const ws = new WebSocket(`${slowApi.url!.replace('http', 'ws')}/v1/stream`);
      const closed = new Promise<{ code: number; reason: string }>((resolve) =>
        ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })),
      );
      let subscribed = false;
      ws.on('message', (data) => {
        if (JSON.parse(String(data)).type === 'subscribed') {
          subscribed = true;
          // Stop reading: what the server sends piles up in its socket buffer.
          (ws as unknown as { _socket: { pause(): void } })._socket.pause();
        }
      });
      await new Promise((resolve) => ws.on('open', resolve));
      ws.send(JSON.stringify({ op: 'subscribe', topics: ['block.*'] }));
      await waitFor('subscribed', () => subscribed);
      const filler = 'x'.repeat(32 * 1024);
      const deadline = Date.now() + 60_000;
      // Events until the server gives up on it (it cannot see the close frame while paused).
      while (slowApi.stats().stream.connections > 0 && Date.now() < deadline)
        await appendEvent(redis, keys, 'block.accepted', { ...block('acctA', 1), filler }, 'ltc');
      (ws as unknown as { _socket: { resume(): void } })._socket.resume();
      const { code, reason } = await closed;
      expect(code).toBe(4008);
      expect(reason).toMatch(/slow consumer/);
    } finally {
      await slowApi.close();
    }
  });
});
