import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { KeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis, registerService, sweepServiceEvents } from '@hashwire/registry';
import { type RedisServer, startRedis, startRedisCluster, waitFor } from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clients, testKeys } from './helpers.js';

// service.<kind>.up|draining|down in the pool's stream: said by the service itself, and `down`
// (`ttl expired`) by whichever live process finds a registration expired, once.

const childScript = fileURLToPath(new URL('./fixtures/child.mjs', import.meta.url));

let server: RedisServer;
let redis: RedisClient;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  server = await startRedis();
  redis = connectRedis(server.url);
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  redis.disconnect();
  await server.stop();
});

interface PoolEntry {
  type: string;
  data: Record<string, unknown>;
}

/** The pool stream's service events, in order. */
async function serviceEvents(client: RedisClient, keys: KeyBuilder): Promise<PoolEntry[]> {
  const entries = (await client.xrange(keys.poolEvents(), '-', '+')) as [string, string[]][];
  return entries
    .map(([, fields]) => ({
      type: fields[fields.indexOf('type') + 1]!,
      data: JSON.parse(fields[fields.indexOf('data') + 1]!) as Record<string, unknown>,
    }))
    .filter((e) => e.type.startsWith('service.'));
}

/** A stratum registration in its own process (`fixtures/child.mjs`), up when this resolves. */
async function childService(keys: KeyBuilder, id: string, ttlMs: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [childScript, server.url, keys.prefix, 'service', id, String(ttlMs)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  cleanups.push(() => child.kill('SIGKILL'));
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  expect(line.toString()).toContain('ready');
  return child;
}

describe('service events', () => {
  it('up at registration, draining with its reason, down on close with its reason', async () => {
    const keys = testKeys();
    const reg = await registerService({
      redis,
      keys,
      kind: 'reporter',
      id: 'r1',
      version: '1.2.3',
      chain: 'ltc',
    });
    await reg.drain('SIGTERM');
    await reg.update({ state: 'draining' }); // already draining: nothing more
    await reg.close('SIGTERM');
    await reg.close(); // closed once
    expect(await serviceEvents(redis, keys)).toEqual([
      { type: 'service.reporter.up', data: { kind: 'reporter', id: 'r1', version: '1.2.3', chain: 'ltc' } },
      {
        type: 'service.reporter.draining',
        data: { kind: 'reporter', id: 'r1', version: '1.2.3', chain: 'ltc', reason: 'SIGTERM' },
      },
      {
        type: 'service.reporter.down',
        data: { kind: 'reporter', id: 'r1', version: '1.2.3', chain: 'ltc', reason: 'SIGTERM' },
      },
    ]);
    // Nothing is left announced: a sweep finds nothing to say.
    expect(await redis.hgetall(keys.announcedServices())).toEqual({});
    expect(await sweepServiceEvents(redis, keys)).toBe(0);
  });

  it('update to draining (what the services call in drain) emits draining; close without a reason says closed', async () => {
    const keys = testKeys();
    const reg = await registerService({ redis, keys, kind: 'api', id: 'a1' });
    await reg.update({ load: 3 });
    await reg.update({ state: 'draining' });
    await reg.close();
    expect((await serviceEvents(redis, keys)).map((e) => [e.type, e.data.reason])).toEqual([
      ['service.api.up', undefined],
      ['service.api.draining', undefined],
      ['service.api.down', 'closed'],
    ]);
  });

  it('a SIGKILLed service is announced down (ttl expired) exactly once, however many processes sweep', async () => {
    const keys = testKeys();
    // Two live services sweep on their own every second, racing the explicit sweeps below (a TTL
    // long enough that a loaded machine never lets their own registrations expire).
    for (const id of ['o1', 'o2']) {
      const observer = await registerService({ redis, keys, kind: 'jobmanager', id, ttlMs: 3000 });
      cleanups.push(() => observer.close());
    }
    const child = await childService(keys, 'victim', 500);
    const [a, b, c] = clients(server.url, 3);
    cleanups.push(() => [a, b, c].forEach((x) => x!.disconnect()));
    child.kill('SIGKILL');
    await once(child, 'exit');
    // Three more processes sweep concurrently, again and again, until the stream has the down.
    let emittedHere = 0;
    await waitFor(
      async () => {
        const counts = await Promise.all([a, b, c].map((x) => sweepServiceEvents(x!, keys)));
        emittedHere += counts.reduce((x, y) => x + y, 0);
        const events = await serviceEvents(redis, keys);
        return events.some((e) => e.type === 'service.stratum.down');
      },
      { timeoutMs: 20_000, intervalMs: 20, what: 'service.stratum.down for the SIGKILLed service' },
    );
    expect(emittedHere).toBeLessThanOrEqual(1);
    // Nothing is announced for it any more: every later sweep, here or in the observers, is a no-op.
    expect(Object.keys(await redis.hgetall(keys.announcedServices())).sort()).toEqual([
      'jobmanager o1',
      'jobmanager o2',
    ]);
    expect(await Promise.all([a, b, c].map((x) => sweepServiceEvents(x!, keys)))).toEqual([0, 0, 0]);
    const victim = (await serviceEvents(redis, keys)).filter((e) => e.data.id === 'victim');
    expect(victim).toEqual([
      { type: 'service.stratum.up', data: { kind: 'stratum', id: 'victim', version: '0.0.0' } },
      { type: 'service.stratum.down', data: { kind: 'stratum', id: 'victim', reason: 'ttl expired' } },
    ]);
  });

  it('the pool sweeps for expired registrations at most once a second, however many services refresh', async () => {
    const keys = testKeys();
    // A Redis of its own: its command counters are this test's alone.
    const own = await startRedis();
    const client = connectRedis(own.url);
    cleanups.push(async () => {
      client.disconnect();
      await own.stop();
    });
    const stats = async () => {
      const info = await client.info('commandstats');
      const calls = (command: string) =>
        Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
      return { hgetall: calls('hgetall'), refreshes: calls('evalsha') };
    };
    const started = performance.now();
    // 20 services refreshing every 100 ms: 200 refreshes a second between them.
    for (let i = 0; i < 20; i++) {
      const reg = await registerService({ redis: client, keys, kind: 'stratum', id: `st-${i}`, ttlMs: 300 });
      cleanups.push(() => reg.close());
    }
    const seen = await waitFor(async () => {
      const now = await stats();
      return now.refreshes >= 600 ? now : undefined;
    });
    const seconds = (performance.now() - started) / 1000;
    // One sweep (one HGETALL of announced:{pool}) per second at most, not one per refresh.
    expect(seen.hgetall).toBeGreaterThan(0);
    expect(seen.hgetall).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
  });

  it('a service back under the same id before anyone saw it go: down (went without closing), then up; no ttl expired after', async () => {
    const keys = testKeys();
    const child = await childService(keys, 'phoenix', 60_000);
    child.kill('SIGKILL');
    await once(child, 'exit');
    // Its hash still lives (60 s TTL): the new process registers over it.
    const again = await registerService({ redis, keys, kind: 'stratum', id: 'phoenix', ttlMs: 60_000 });
    cleanups.push(() => again.close());
    expect(await sweepServiceEvents(redis, keys)).toBe(0);
    expect((await serviceEvents(redis, keys)).map((e) => [e.type, e.data.reason])).toEqual([
      ['service.stratum.up', undefined],
      ['service.stratum.down', 'went without closing'],
      ['service.stratum.up', undefined],
    ]);
    await again.close();
    expect((await serviceEvents(redis, keys)).map((e) => e.type).at(-1)).toBe('service.stratum.down');
  });

  it('a registration whose hash expired while it lived (Redis away longer than its TTL) is down, then up again when it refreshes', async () => {
    const keys = testKeys();
    const reg = await registerService({ redis, keys, kind: 'stratum', id: 'flaky', ttlMs: 60_000 });
    cleanups.push(() => reg.close());
    // What an expiry does to the registration's keys, without waiting a TTL out.
    await redis.del(keys.service('stratum', 'flaky'));
    expect(await sweepServiceEvents(redis, keys)).toBe(1);
    await reg.refresh(); // creates the hash again: up
    expect(await sweepServiceEvents(redis, keys)).toBe(0);
    await reg.close();
    expect((await serviceEvents(redis, keys)).map((e) => [e.type, e.data.reason])).toEqual([
      ['service.stratum.up', undefined],
      ['service.stratum.down', 'ttl expired'],
      ['service.stratum.up', undefined],
      ['service.stratum.down', 'closed'],
    ]);
  });
});

describe('on Redis Cluster', () => {
  it('emits service events into events:{pool} while the registration lives in its kind slot', async () => {
    const cluster = await startRedisCluster({ masters: 3 });
    const client = connectRedis({ cluster: cluster.nodes });
    cleanups.push(async () => {
      client.disconnect();
      await cluster.stop();
    });
    const keys = testKeys();
    const reg = await registerService({ redis: client, keys, kind: 'stratum', id: 'c1' });
    const gone = await registerService({ redis: client, keys, kind: 'reporter', id: 'c2' });
    await reg.drain('admin drain');
    await reg.close('admin drain');
    await client.del(keys.service('reporter', 'c2')); // as an expiry would
    expect(await sweepServiceEvents(client, keys)).toBe(1);
    await gone.close(); // already announced down: nothing more
    expect((await serviceEvents(client, keys)).map((e) => [e.type, e.data.id, e.data.reason])).toEqual([
      ['service.stratum.up', 'c1', undefined],
      ['service.reporter.up', 'c2', undefined],
      ['service.stratum.draining', 'c1', 'admin drain'],
      ['service.stratum.down', 'c1', 'admin drain'],
      ['service.reporter.down', 'c2', 'ttl expired'],
    ]);
  });
});
