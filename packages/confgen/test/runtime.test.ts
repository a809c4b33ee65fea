import path from 'node:path';
import { HaproxyRuntime, HaproxyRuntimeError, followStratumServers } from '@hashwire/confgen';
import { createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { getFreePort, makeTempDir, startRedis, waitFor } from '@hashwire/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { FAST_CHECKS, Miner, StandIn, isLive, startFront, waitServer } from './stand-in.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function front(input: Parameters<typeof startFront>[0] = {}) {
  const f = await startFront(input);
  cleanups.push(() => f.haproxy.stop());
  return f;
}

describe('HaproxyRuntime', () => {
  it('reads servers with their address, health, admin state and agent port', async () => {
    const down = await getFreePort();
    const { runtime } = await front({
      servers: [
        { name: 'a', address: '127.0.0.1', port: down, agentPort: 4000 },
        { name: 'b', address: '127.0.0.2', port: down },
      ],
    });
    await runtime.execute('set server stratum/b state drain');
    const states = await runtime.serversState('stratum');
    expect(states.map((s) => [s.name, s.address, s.port, s.agentPort, s.drain, s.maint])).toEqual([
      ['a', '127.0.0.1', down, 4000, false, false],
      ['b', '127.0.0.2', down, 0, true, false],
    ]);
    const stats = await runtime.serverStats('stratum');
    expect(stats.map((s) => [s.name, s.sessions])).toEqual([
      ['a', 0],
      ['b', 0],
    ]);
    // Nothing listens on the servers' port: HAProxy's checks say so.
    await waitServer(runtime, 'a', (s) => s?.operational === 'stopped', 'down');
    expect((await runtime.serverStats('stratum')).find((s) => s.name === 'a')?.status).toBe('DOWN');
  });

  it('counts the sessions of a server', async () => {
    const redisServer = await startRedis();
    cleanups.push(() => redisServer.stop());
    const redis = connectRedis(redisServer.url);
    cleanups.push(() => redis.disconnect());
    const keys = createKeyBuilder({ prefix: 'rt:' });
    const s = await StandIn.start({ redis, keys, id: 'st-a' });
    cleanups.push(() => s.stop());
    const { runtime, port } = await front({
      servers: [{ name: 'st-a', address: '127.0.0.1', port: s.port, agentPort: s.agent.port }],
    });
    await waitServer(runtime, 'st-a', isLive, 'up');
    const miners = await Promise.all([Miner.connect(port), Miner.connect(port)]);
    cleanups.push(() => miners.forEach((m) => m.close()));
    expect((await runtime.serverStats('stratum'))[0]).toMatchObject({
      name: 'st-a',
      sessions: 2,
      totalSessions: 2,
    });
  });

  it('a refused command throws with HAProxy’s own words; an unknown backend too', async () => {
    const { runtime } = await front();
    const error = await runtime.execute('set server stratum/nope state drain').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HaproxyRuntimeError);
    expect((error as HaproxyRuntimeError).reply).toBe('No such server.');
    expect((error as Error).message).toBe(
      'haproxy refused "set server stratum/nope state drain": No such server.',
    );
    await expect(runtime.serversState('nope')).rejects.toThrow(/show servers state nope.*find backend/);
  });

  it('names the socket when HAProxy is not there', async () => {
    const socketPath = path.join(await makeTempDir('no-haproxy'), 'admin.sock');
    const runtime = new HaproxyRuntime({ socketPath });
    await expect(runtime.command('show info')).rejects.toThrow(`haproxy runtime API at ${socketPath}: `);
  });

  it('a follower refuses a backend name or check settings HAProxy would not take', () => {
    const base = {
      // Refused before the registry is touched.
      redis: {} as RedisClient,
      keys: createKeyBuilder({ prefix: 'bad:' }),
      runtime: new HaproxyRuntime({ socketPath: '/nonexistent' }),
    };
    expect(() => followStratumServers({ ...base, backend: 'two words' })).toThrow(
      /follower render input is invalid:\n {2}backend: must be a backend name/,
    );
    expect(() => followStratumServers({ ...base, backend: 'stratum', check: { rise: 0 } })).toThrow(
      /rise: must be positive/,
    );
  });

  it('a follower started before HAProxy syncs once HAProxy answers', async () => {
    const redisServer = await startRedis();
    cleanups.push(() => redisServer.stop());
    const redis = connectRedis(redisServer.url);
    cleanups.push(() => redis.disconnect());
    const keys = createKeyBuilder({ prefix: 'early:' });
    const dir = await makeTempDir('early-haproxy');
    const statsSocket = path.join(dir, 'admin.sock');
    const s = await StandIn.start({ redis, keys, id: 'st-a' });
    cleanups.push(() => s.stop());
    const follower = followStratumServers({
      redis,
      keys,
      runtime: new HaproxyRuntime({ socketPath: statsSocket }),
      backend: 'stratum',
      check: FAST_CHECKS,
      resyncMs: 100,
    });
    cleanups.push(() => follower.close());
    await waitFor(() => follower.stats.errors > 0, { what: 'a failed pass', timeoutMs: 5000 });
    const { runtime, port } = await front({ statsSocket });
    await follower.synced;
    await waitServer(runtime, 'st-a', isLive, 'added once HAProxy runs');
    const m = await Miner.connect(port);
    cleanups.push(() => m.close());
    expect(m.server).toBe('st-a');
    expect(follower.stats.lastError).toMatch(/haproxy runtime API at .*admin\.sock/);
  });
});
