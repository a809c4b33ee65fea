import { RpcErrorCode } from '@hashwire/protocol';
import { createRpcClient, createRpcServer } from '@hashwire/rpc';
import { afterEach, describe, expect, it } from 'vitest';
import { Router } from 'zeromq';
import { Closer, nextEvent, randomRange, within } from './helpers.js';

interface Feed {
  'feed.subscribe': { req: { topic: string }; rep: { server: string } };
  'feed.hang': { req: null; rep: null };
}
interface FeedPushes {
  job: { jobId: string };
}

const HEARTBEAT_MS = 100;
const closer = new Closer();
afterEach(() => closer.closeAll());

async function startServer(name: string, portRange: [number, number]) {
  return createRpcServer<Feed, FeedPushes>({
    portRange,
    heartbeatIntervalMs: HEARTBEAT_MS,
    handlers: {
      'feed.subscribe': ({ topic }, ctx) => {
        ctx.subscribe(topic);
        return { server: name };
      },
      'feed.hang': () => new Promise<null>(() => {}),
    },
  });
}

describe('client reconnect', () => {
  it('finds a restarted server on another port through its resolver and re-subscribes by itself', async () => {
    const range = randomRange(20);
    const first = await startServer('first', range);
    let current = first.endpoint;
    let resolves = 0;
    const client = closer.add(
      createRpcClient<Feed, FeedPushes>(
        async () => {
          resolves++;
          return current;
        },
        { heartbeatIntervalMs: HEARTBEAT_MS },
      ),
    );
    const serversSeen: string[] = [];
    await client.subscribe('feed.subscribe', { topic: 'ltc' }, (r) => serversSeen.push(r.server));
    const jobs: string[] = [];
    client.onPush('job', (j) => jobs.push(j.jobId));
    const firstJob = new Promise<void>((resolve) => client.onPush('job', () => resolve()));
    first.push('ltc', 'job', { jobId: 'a1' });
    await within(firstJob, 5000, 'push from the first server');

    const events: string[] = [];
    for (const name of ['dropped', 'reconnected', 'resubscribed'] as const)
      client.on(name, () => events.push(name));
    const hanging = client.request('feed.hang', null, { timeoutMs: 60_000 }).catch((err: unknown) => err);

    // The replacement starts while the old one still holds its port, so it binds another port of
    // the range; then the old one goes away and the registry (the resolver) points to the new one.
    const second = closer.add(await startServer('second', range));
    expect(second.port).not.toBe(first.port);
    await first.close();
    current = second.endpoint;

    const [resubscribed] = await nextEvent<
      [{ endpoint: string; reason: string; count: number; failed: number }]
    >(client, 'resubscribed', 10_000);
    expect(resubscribed).toEqual({ endpoint: second.endpoint, reason: 'reconnect', count: 1, failed: 0 });
    expect(events).toEqual(['dropped', 'reconnected', 'resubscribed']);
    expect(client.endpoint).toBe(second.endpoint);
    expect(serversSeen).toEqual(['first', 'second']);
    expect(resolves).toBe(2);
    // A request in flight on the lost connection fails at once instead of waiting out its deadline.
    expect(await hanging).toMatchObject({ code: RpcErrorCode.Unavailable });

    const secondJob = new Promise<void>((resolve) => client.onPush('job', () => resolve()));
    expect(second.push('ltc', 'job', { jobId: 'b1' })).toBe(1);
    await within(secondJob, 5000, 'push from the second server');
    expect(jobs).toEqual(['a1', 'b1']);
    expect(client.stats()).toMatchObject({ reconnects: 1, resubscribes: 1 });
  });

  it('keeps asking a failing resolver, and requests made meanwhile go out once it answers', async () => {
    const server = closer.add(await startServer('only', randomRange()));
    let calls = 0;
    const client = closer.add(
      createRpcClient<Feed, FeedPushes>(
        async () => {
          calls++;
          if (calls < 3) throw new Error('not registered yet');
          return server.endpoint;
        },
        { heartbeatIntervalMs: 20 },
      ),
    );
    const failures: unknown[] = [];
    client.on('resolveFailed', (err) => failures.push(err));
    expect(client.endpoint).toBeNull();
    await expect(client.request('feed.subscribe', { topic: 'x' })).resolves.toEqual({ server: 'only' });
    expect(failures).toHaveLength(2);
    expect(client.endpoint).toBe(server.endpoint);
  });

  it('times out requests when nothing ever answers, and close() ends everything', async () => {
    // A ROUTER that never answers, on a port the OS picked.
    const mute = closer.add(new Router({ linger: 0 }));
    await mute.bind('tcp://127.0.0.1:*');
    const client = createRpcClient<Feed, FeedPushes>(mute.lastEndpoint as string, { timeoutMs: 100 });
    await expect(client.request('feed.subscribe', { topic: 'x' })).rejects.toMatchObject({
      code: RpcErrorCode.Timeout,
    });
    const pending = client.request('feed.hang', null, { timeoutMs: 60_000 });
    await client.close();
    await expect(pending).rejects.toMatchObject({ code: RpcErrorCode.Unavailable });
    await expect(client.request('feed.hang', null)).rejects.toMatchObject({ code: RpcErrorCode.Unavailable });
  });
});
