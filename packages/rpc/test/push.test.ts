import { createRpcClient, createRpcServer } from '@hashwire/rpc';
import { pack, unpack } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { Dealer } from 'zeromq';
import { Closer, nextEvent, randomRange, within } from './helpers.js';

interface Feed {
  'feed.subscribe': { req: { topic: string }; rep: { subscribed: string } };
}
interface FeedPushes {
  tick: { n: number; topic: string };
  big: { blob: string };
}

const closer = new Closer();
afterEach(() => closer.closeAll());

async function startServer(heartbeatIntervalMs?: number) {
  return closer.add(
    await createRpcServer<Feed, FeedPushes>({
      portRange: randomRange(),
      ...(heartbeatIntervalMs ? { heartbeatIntervalMs } : {}),
      handlers: {
        'feed.subscribe': ({ topic }, ctx) => {
          ctx.subscribe(topic);
          return { subscribed: topic };
        },
      },
    }),
  );
}

/** Resolves with the first `count` bodies of pushes of `tick` to `client`. */
function collectTicks(client: ReturnType<typeof createRpcClient<Feed, FeedPushes>>, count: number) {
  const got: FeedPushes['tick'][] = [];
  return new Promise<FeedPushes['tick'][]>((resolve) => {
    client.onPush('tick', (body) => {
      got.push(body);
      if (got.length === count) resolve(got);
    });
  });
}

describe('push to subscribers', () => {
  it('reaches every subscriber of the topic and no one else', async () => {
    const server = await startServer();
    const clients = Array.from({ length: 4 }, () =>
      closer.add(createRpcClient<Feed, FeedPushes>(server.endpoint)),
    );
    const topics = ['ltc', 'ltc', 'ltc', 'btc'];
    await Promise.all(clients.map((c, i) => c.subscribe('feed.subscribe', { topic: topics[i] as string })));
    expect(server.subscriberCount('ltc')).toBe(3);
    expect(server.subscriberCount()).toBe(4);

    const received = clients.map((c) => collectTicks(c, 1));
    const events = nextEvent<[string, unknown]>(clients[0] as NodeJS.EventEmitter, 'push', 5000);
    expect(server.push('ltc', 'tick', { n: 1, topic: 'ltc' })).toBe(3);
    expect(server.push('btc', 'tick', { n: 2, topic: 'btc' })).toBe(1);
    expect(server.push('doge', 'tick', { n: 3, topic: 'doge' })).toBe(0);
    const bodies = await within(Promise.all(received), 5000, 'pushes');
    // Each client's first push is its own topic's: the btc client never saw the ltc push.
    expect(bodies.map((b) => b[0])).toEqual([
      { n: 1, topic: 'ltc' },
      { n: 1, topic: 'ltc' },
      { n: 1, topic: 'ltc' },
      { n: 2, topic: 'btc' },
    ]);
    expect(await events).toEqual(['tick', { n: 1, topic: 'ltc' }]);
    expect(server.stats()).toMatchObject({ pushes: 3, pushMessages: 4, subscribers: 4, topics: 2 });
    expect(clients[3]?.stats().pushes).toBe(1);
  });

  it('encodes the body once per push, not once per subscriber', async () => {
    const server = await startServer();
    const clients = Array.from({ length: 5 }, () =>
      closer.add(createRpcClient<Feed, FeedPushes>(server.endpoint)),
    );
    await Promise.all(clients.map((c) => c.subscribe('feed.subscribe', { topic: 'all' })));
    let reads = 0;
    const body = {
      get blob() {
        reads++;
        return 'x'.repeat(2048);
      },
    };
    const got = clients.map((c) => new Promise((resolve) => c.onPush('big', resolve)));
    expect(server.push('all', 'big', body)).toBe(5);
    const bodies = await within(Promise.all(got), 5000, 'big pushes');
    expect(bodies).toEqual(Array.from({ length: 5 }, () => ({ blob: 'x'.repeat(2048) })));
    expect(reads).toBe(1);
  });

  it('stops pushing after onPush’s stop function', async () => {
    const server = await startServer();
    const client = closer.add(createRpcClient<Feed, FeedPushes>(server.endpoint));
    await client.subscribe('feed.subscribe', { topic: 't' });
    const seen: number[] = [];
    const stop = client.onPush('tick', (b) => seen.push(b.n));
    const second = collectTicks(client, 2);
    server.push('t', 'tick', { n: 1, topic: 't' });
    await within(new Promise<void>((resolve) => client.onPush('tick', () => resolve())), 5000, 'first push');
    stop();
    server.push('t', 'tick', { n: 2, topic: 't' });
    await within(second, 5000, 'second push');
    expect(seen).toEqual([1]);
  });
});

describe('heartbeats on the server side', () => {
  it('drops a subscriber silent for 3 intervals, tells it, and keeps the ones that beat', async () => {
    const server = await startServer(100);
    const good = closer.add(createRpcClient<Feed, FeedPushes>(server.endpoint, { heartbeatIntervalMs: 100 }));
    await good.subscribe('feed.subscribe', { topic: 'jobs' });

    const silent = closer.add(new Dealer({ linger: 0 }));
    silent.connect(server.endpoint);
    await silent.send(pack([1, 'req', 1, 'feed.subscribe', { topic: 'jobs' }]));
    const [reply] = await within(silent.receive(), 5000, 'subscribe reply');
    expect(unpack(reply as Buffer)).toEqual([1, 'rep', 1, 'feed.subscribe', { subscribed: 'jobs' }]);
    expect(server.subscriberCount('jobs')).toBe(2);

    const [dropped] = await nextEvent<[{ peer: string; topics: string[]; silentMs: number }]>(
      server,
      'peerDropped',
      5000,
    );
    expect(dropped.topics).toEqual(['jobs']);
    expect(dropped.silentMs).toBeGreaterThan(300);
    const [notice] = await within(silent.receive(), 5000, 'drop notice');
    expect(unpack(notice as Buffer)).toEqual([1, 'push', 0, '$drop', null]);
    expect(server.subscriberCount('jobs')).toBe(1);
    expect(server.stats().peersDropped).toBe(1);

    const tick = collectTicks(good, 1);
    expect(server.push('jobs', 'tick', { n: 7, topic: 'jobs' })).toBe(1);
    expect(await within(tick, 5000, 'push to the good client')).toEqual([{ n: 7, topic: 'jobs' }]);
  });

  it('a live client that the server dropped subscribes again by itself', async () => {
    const server = await startServer(50);
    // Beating far slower than the server expects: the server drops it, though it is alive.
    const client = closer.add(
      createRpcClient<Feed, FeedPushes>(server.endpoint, { heartbeatIntervalMs: 5000 }),
    );
    const replies: string[] = [];
    await client.subscribe('feed.subscribe', { topic: 'jobs' }, (r) => replies.push(r.subscribed));
    const [info] = await nextEvent<[{ reason: string; count: number; failed: number }]>(
      client,
      'resubscribed',
      5000,
    );
    expect(info).toMatchObject({ reason: 'server', count: 1, failed: 0 });
    expect(replies).toEqual(['jobs', 'jobs']);
  });
});
