import { randomBytes } from 'node:crypto';
import {
  type FollowerStats,
  type StratumFollower,
  followStratumServers,
  haproxyServerFromService,
} from '@hashwire/confgen';
import { type KeyBuilder, createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis, getService } from '@hashwire/registry';
import { type RedisServer, getFreePort, startRedis, waitFor } from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FAST_CHECKS, Miner, StandIn, isLive, startFront, waitServer } from './stand-in.js';

let redisServer: RedisServer;
let redis: RedisClient;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  redisServer = await startRedis();
  redis = connectRedis(redisServer.url);
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  redis.disconnect();
  await redisServer.stop();
});

const testKeys = (): KeyBuilder => createKeyBuilder({ prefix: `f${randomBytes(4).toString('hex')}:` });

async function front(input: Parameters<typeof startFront>[0] = {}) {
  const f = await startFront(input);
  cleanups.push(() => f.haproxy.stop());
  return f;
}

function follow(keys: KeyBuilder, runtime: Awaited<ReturnType<typeof startFront>>['runtime'], r = redis) {
  const follower = followStratumServers({
    redis: r,
    keys,
    runtime,
    backend: 'stratum',
    chain: 'ltc',
    check: FAST_CHECKS,
    resyncMs: 100,
    reconcileMs: 100,
  });
  cleanups.push(() => follower.close());
  return follower;
}

async function standIn(keys: KeyBuilder, id: string, r = redis) {
  const s = await StandIn.start({ redis: r, keys, id });
  cleanups.push(() => s.stop());
  return s;
}

async function miner(port: number, localAddress?: string) {
  const m = await Miner.connect(port, localAddress);
  cleanups.push(() => m.close());
  return m;
}

/**
 * The follower counts a command once HAProxy has answered it, a moment after the change is
 * visible in HAProxy: wait for the counts, then compare them exactly.
 */
async function statsReach(follower: StratumFollower, expected: Partial<FollowerStats>) {
  const matches = () =>
    Object.entries(expected).every(([k, v]) => follower.stats[k as keyof FollowerStats] === v);
  await waitFor(matches, { what: `stats ${JSON.stringify(expected)}`, timeoutMs: 5000 }).catch(() => {});
  expect(follower.stats).toMatchObject(expected);
}

/** 16 distinct loopback sources: `balance source` hashes on the client address. */
const SOURCES = Array.from({ length: 16 }, (_, i) => `127.0.0.${10 + i}`);

describe('followStratumServers', () => {
  it('adds a registered stratum server and HAProxy routes a new connection to it', async () => {
    const keys = testKeys();
    const { runtime, port } = await front();
    const follower = follow(keys, runtime);
    await follower.synced;
    const a = await standIn(keys, 'st-a');
    await waitServer(runtime, 'st-a', isLive, 'added and up');
    const m = await miner(port);
    expect(m.server).toBe('st-a');
    expect(await m.ping('hi')).toBe('st-a:hi');
    // PROXY v2 with the unique-id TLV from the frontend's unique-id-format (hex: client
    // 127.0.0.1:port, frontend address:port, accept time, request counter, pid).
    expect(a.uniqueIds).toHaveLength(1);
    expect(a.uniqueIds[0]).toMatch(
      /^7F000001:[0-9A-F]{4}_7F000001:[0-9A-F]{4}_[0-9A-F]+_[0-9A-F]+:[0-9A-F]+$/,
    );
    await statsReach(follower, { added: 1, removed: 0, errors: 0 });
  });

  it('spreads miners over two servers; drain and removal never cut a connected miner', async () => {
    const keys = testKeys();
    const { runtime, port } = await front();
    const follower = follow(keys, runtime);
    const a = await standIn(keys, 'st-a');
    await standIn(keys, 'st-b');
    await waitServer(runtime, 'st-a', isLive, 'up');
    await waitServer(runtime, 'st-b', isLive, 'up');

    const miners = await Promise.all(SOURCES.map((source) => miner(port, source)));
    const onA = miners.filter((m) => m.server === 'st-a');
    const onB = miners.filter((m) => m.server === 'st-b');
    expect(onA.length).toBeGreaterThan(0);
    expect(onB.length).toBeGreaterThan(0);

    // Draining: A's miners stay and keep talking; their addresses now land on B.
    await a.registration.update({ state: 'draining' });
    await waitServer(runtime, 'st-a', (s) => s?.drain === true, 'drain');
    for (const m of onA) expect(await m.ping('still here')).toBe('st-a:still here');
    const sourcesOfA = SOURCES.filter((_, i) => miners[i]?.server === 'st-a');
    for (const source of sourcesOfA) expect((await miner(port, source)).server).toBe('st-b');

    // Gone from the registry: maintenance, but not deleted while A's miners are connected.
    await a.registration.close();
    await waitServer(runtime, 'st-a', (s) => s?.maint === true, 'maintenance');
    await waitFor(() => follower.stats.removalsDeferred > 0, {
      what: 'a deferred removal',
      timeoutMs: 10_000,
    });
    expect((await runtime.serversState('stratum')).map((s) => s.name)).toContain('st-a');
    for (const m of onA) expect(await m.ping('after maint')).toBe('st-a:after maint');

    // Their last connection closed: deleted.
    for (const m of onA) m.close();
    await waitServer(runtime, 'st-a', (s) => s === undefined, 'deleted');
    await statsReach(follower, { added: 2, drained: 1, maintained: 1, removed: 1 });
    // Nobody on B noticed any of it.
    for (const m of onB) expect(await m.ping('b ok')).toBe('st-b:b ok');
  });

  it('adopts servers rendered into the file and removes the ones the registry does not list', async () => {
    const keys = testKeys();
    const a = await standIn(keys, 'st-a');
    const info = await getService(redis, keys, 'stratum', 'st-a');
    const rendered = haproxyServerFromService(info!);
    const ghost = { name: 'ghost', address: '127.0.0.1', port: await getFreePort() };
    const { runtime, port } = await front({ servers: [rendered!, ghost] });
    const follower = follow(keys, runtime);
    await follower.synced;
    await waitServer(runtime, 'ghost', (s) => s === undefined, 'removed');
    await waitServer(runtime, 'st-a', isLive, 'kept');
    await statsReach(follower, { added: 0, maintained: 1, removed: 1 });
    expect((await miner(port)).server).toBe(a.id);
  });

  it('re-adds its servers after a HAProxy reload; the connection through the old process lives on', async () => {
    const keys = testKeys();
    const { haproxy, runtime, port } = await front();
    const follower = follow(keys, runtime);
    await standIn(keys, 'st-a');
    await waitServer(runtime, 'st-a', isLive, 'up');
    const before = await miner(port);
    await haproxy.reload();
    await waitServer(runtime, 'st-a', isLive, 'up in the new process');
    await statsReach(follower, { added: 2 });
    expect((await miner(port)).server).toBe('st-a');
    expect(await before.ping('old process')).toBe('st-a:old process');
  });

  it('moves a server restarted under the same id to its new port; the old instance’s miner stays', async () => {
    const keys = testKeys();
    const { runtime, port } = await front();
    const follower = follow(keys, runtime);
    const first = await standIn(keys, 'st-a');
    await waitServer(runtime, 'st-a', isLive, 'up');
    const old = await miner(port);
    await first.registration.close();
    await waitServer(runtime, 'st-a', (s) => s?.maint === true, 'maintenance');
    const second = await standIn(keys, 'st-a');
    await waitServer(runtime, 'st-a', (s) => isLive(s) && s?.port === second.port, 'moved and up');
    const fresh = await miner(port);
    expect([fresh.server, first.miners.size, second.miners.size]).toEqual(['st-a', 1, 1]);
    expect(await old.ping('old')).toBe('st-a:old');
    await statsReach(follower, { moved: 2, readied: 1, removed: 0 });
  });

  it('keeps HAProxy as it is while Redis restarts, and follows again after', async () => {
    const own = await startRedis();
    cleanups.push(() => own.stop());
    const client = connectRedis(own.url);
    cleanups.push(() => client.disconnect());
    const keys = testKeys();
    const { runtime, port } = await front();
    const follower = follow(keys, runtime, client);
    await standIn(keys, 'st-a', client);
    await waitServer(runtime, 'st-a', isLive, 'up');
    const m = await miner(port);
    await own.restart();
    const b = await standIn(keys, 'st-b', client);
    await waitServer(runtime, 'st-b', isLive, 'added after the restart');
    await statsReach(follower, { maintained: 0, removed: 0 });
    expect(await m.ping('through it all')).toBe('st-a:through it all');
    expect(b.id).toBe('st-b');
  });
});
