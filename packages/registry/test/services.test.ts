import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import {
  type RedisClient,
  type ServiceEvent,
  ServiceIdInUseError,
  ServiceNotFoundError,
  connectRedis,
  createRateMeter,
  getService,
  listServices,
  registerService,
  serviceEndpointResolver,
  watchServices,
} from '@hashwire/registry';
import { type RedisServer, startRedis, waitFor } from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { nextEvent, testKeys } from './helpers.js';

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

function isEvent(type: ServiceEvent['type'], id: string) {
  return (e: ServiceEvent) => e.type === type && e.service.id === id;
}

describe('service discovery', () => {
  it('registers a TTL hash with endpoints, pid, version, chain, state and load', async () => {
    const keys = testKeys();
    const reg = await registerService({
      redis,
      keys,
      kind: 'stratum',
      id: 's1',
      rpc: 'tcp://127.0.0.1:28001',
      http: 'http://127.0.0.1:29001',
      version: '1.2.3',
      chain: 'ltc',
      load: 0.25,
      ttlMs: 60_000,
    });
    cleanups.push(() => reg.close());
    const hash = await redis.hgetall(keys.service('stratum', 's1'));
    expect(hash).toMatchObject({
      kind: 'stratum',
      id: 's1',
      rpc: 'tcp://127.0.0.1:28001',
      http: 'http://127.0.0.1:29001',
      pid: String(process.pid),
      version: '1.2.3',
      chain: 'ltc',
      state: 'up',
      load: '0.25',
    });
    const ttl = await redis.pttl(keys.service('stratum', 's1'));
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('publishes the load figures measured at each refresh, the first one as load, without telling watchers', async () => {
    const keys = testKeys();
    let sessions = 4;
    let handled = 0;
    const handledPerS = createRateMeter(() => handled);
    const registeredBefore = performance.now();
    const reg = await registerService({
      redis,
      keys,
      kind: 'stratum',
      id: 'busy',
      rpc: 'tcp://127.0.0.1:2',
      ttlMs: 60_000,
      measureLoad: () => ({ sessions, handledPerS: handledPerS() }),
    });
    cleanups.push(() => reg.close());
    expect(await redis.hgetall(keys.service('stratum', 'busy'))).toMatchObject({
      load: '4',
      'load.sessions': '4',
      'load.handledPerS': '0',
    });
    const watcher = watchServices({ redis, keys, kind: 'stratum', reconcileMs: 3_600_000 });
    cleanups.push(() => watcher.close());
    await watcher.ready;
    const events: ServiceEvent[] = [];
    watcher.on('event', (e) => events.push(e));

    sessions = 9;
    handled = 500;
    await reg.refresh();
    const elapsedS = (performance.now() - registeredBefore) / 1000;
    const [info] = await listServices(redis, keys, 'stratum');
    expect(info?.load).toBe(9);
    expect(info?.loadFigures?.sessions).toBe(9);
    // 500 handled between the two refreshes, which both fall within elapsedS.
    expect(info?.loadFigures?.handledPerS).toBeGreaterThanOrEqual(
      Number((500 / elapsedS).toPrecision(3)) * 0.99,
    );
    // A new load is no change of endpoint or state: the watcher was not told.
    await reg.update({ state: 'draining' });
    await waitFor(() => events.length > 0, { what: 'the state change announced' });
    expect(events.map((e) => e.type)).toEqual(['changed']);
    expect(events[0]?.service.loadFigures).toEqual({ sessions: 9, handledPerS: expect.any(Number) });
  });

  it('tells a watcher about a new service, a change and a graceful close by announcement alone', async () => {
    const keys = testKeys();
    // The reconcile period is an hour: only the pub/sub announcements can deliver these events.
    const watcher = watchServices({ redis, keys, kind: 'stratum', reconcileMs: 3_600_000 });
    cleanups.push(() => watcher.close());
    await watcher.ready;

    const up = nextEvent(watcher, 'event', isEvent('up', 'a'), 1000);
    const reg = await registerService({ redis, keys, kind: 'stratum', id: 'a', rpc: 'tcp://127.0.0.1:1' });
    expect((await up).service.rpc).toBe('tcp://127.0.0.1:1');

    const changed = nextEvent<ServiceEvent>(watcher, 'event', isEvent('changed', 'a'), 1000);
    await reg.update({ state: 'draining', load: 0.9 });
    expect((await changed).service).toMatchObject({ state: 'draining', load: 0.9 });

    const down = nextEvent(watcher, 'event', isEvent('down', 'a'), 1000);
    await reg.close();
    await down;
    expect(await redis.exists(keys.service('stratum', 'a'))).toBe(0);
    expect(watcher.services.size).toBe(0);
  });

  it('carries a stratum server’s miner and agent endpoints; services without them have none', async () => {
    const keys = testKeys();
    const watcher = watchServices({ redis, keys, kind: 'stratum', reconcileMs: 3_600_000 });
    cleanups.push(() => watcher.close());
    await watcher.ready;
    const up = nextEvent<ServiceEvent>(watcher, 'event', isEvent('up', 's'), 1000);
    const reg = await registerService({
      redis,
      keys,
      kind: 'stratum',
      id: 's',
      stratum: '10.0.0.5:23001',
      agent: '10.0.0.5:23501',
    });
    cleanups.push(() => reg.close());
    expect((await up).service).toMatchObject({ stratum: '10.0.0.5:23001', agent: '10.0.0.5:23501' });

    // A restart on another port is a change watchers hear about.
    const changed = nextEvent<ServiceEvent>(watcher, 'event', isEvent('changed', 's'), 1000);
    await reg.update({ stratum: '10.0.0.5:23002' });
    expect((await changed).service.stratum).toBe('10.0.0.5:23002');

    const plain = await registerService({ redis, keys, kind: 'stratum', id: 'plain' });
    cleanups.push(() => plain.close());
    const listed = await listServices(redis, keys, 'stratum');
    const found = listed.find((s) => s.id === 'plain');
    expect(found).toBeDefined();
    expect(found).not.toHaveProperty('stratum');
    expect(found).not.toHaveProperty('agent');
    expect(await redis.hexists(keys.service('stratum', 'plain'), 'agent')).toBe(0);
  });

  it('carries the share wire a reporter speaks; a reporter of an older release has none', async () => {
    const keys = testKeys();
    const fresh = await registerService({ redis, keys, kind: 'reporter', id: 'new', sharesWire: 2 });
    cleanups.push(() => fresh.close());
    const old = await registerService({ redis, keys, kind: 'reporter', id: 'old' });
    cleanups.push(() => old.close());
    const listed = new Map((await listServices(redis, keys, 'reporter')).map((s) => [s.id, s]));
    expect(listed.get('new')).toMatchObject({ sharesWire: 2 });
    expect(listed.get('old')).toBeDefined();
    expect(listed.get('old')).not.toHaveProperty('sharesWire');
    // Whatever else stands in the field is no wire at all.
    await redis.hset(keys.service('reporter', 'old'), 'sharesWire', 'two');
    expect(await getService(redis, keys, 'reporter', 'old')).not.toHaveProperty('sharesWire');
  });

  it('lists services already running when a watcher starts, and only of its kind', async () => {
    const keys = testKeys();
    const a = await registerService({ redis, keys, kind: 'stratum', id: 'a' });
    const b = await registerService({ redis, keys, kind: 'reporter', id: 'b' });
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    const watcher = watchServices({ redis, keys, kind: 'stratum' });
    cleanups.push(() => watcher.close());
    await watcher.ready;
    expect([...watcher.services.keys()]).toEqual(['a']);
    expect((await listServices(redis, keys, 'reporter')).map((s) => s.id)).toEqual(['b']);
  });

  it('forgets a SIGKILLed service once its TTL runs out', async () => {
    const keys = testKeys();
    const watcher = watchServices({ redis, keys, kind: 'stratum', reconcileMs: 100 });
    cleanups.push(() => watcher.close());
    await watcher.ready;
    const up = nextEvent(watcher, 'event', isEvent('up', 'victim'), 5000);
    const child: ChildProcess = spawn(
      process.execPath,
      [childScript, server.url, keys.prefix, 'service', 'victim', '1500'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    cleanups.push(() => child.kill('SIGKILL'));
    await up;
    const killedAt = Date.now();
    child.kill('SIGKILL');
    await once(child, 'exit');
    await nextEvent(watcher, 'event', isEvent('down', 'victim'), 5000);
    // Gone within its TTL (1.5 s), give or take a reconcile period and a loaded machine.
    expect(Date.now() - killedAt).toBeLessThan(1500 + 1500);
    expect(await listServices(redis, keys, 'stratum')).toEqual([]);
  });

  it('refuses a second process under a live service id, and takes the id of a dead one at once', async () => {
    const keys = testKeys();
    const child: ChildProcess = spawn(
      process.execPath,
      [childScript, server.url, keys.prefix, 'service', 'twin', '60000'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    cleanups.push(() => child.kill('SIGKILL'));
    await once(child.stdout!, 'data');
    const register = () => registerService({ redis, keys, kind: 'stratum', id: 'twin', ttlMs: 60_000 });
    await expect(register()).rejects.toThrow(
      new ServiceIdInUseError(
        `stratum twin is already running (pid ${child.pid} on this host): each process needs its own id`,
      ),
    );
    expect(await redis.hget(keys.service('stratum', 'twin'), 'pid')).toBe(String(child.pid));
    // SIGKILLed: its hash lives on for a minute, but its process is gone: a restart need not wait.
    child.kill('SIGKILL');
    await once(child, 'exit');
    const reg = await register();
    cleanups.push(() => reg.close());
    expect(await redis.hget(keys.service('stratum', 'twin'), 'pid')).toBe(String(process.pid));
    // A registration from another host holds the id until its TTL lapses.
    await redis.hset(keys.service('stratum', 'far'), {
      kind: 'stratum',
      id: 'far',
      pid: '1',
      host: 'elsewhere',
    });
    await expect(registerService({ redis, keys, kind: 'stratum', id: 'far', ttlMs: 60_000 })).rejects.toThrow(
      /stratum far is registered by pid 1 on host elsewhere: each process needs its own id/,
    );
  });

  it('keeps the hash alive by refreshing it every TTL/3', async () => {
    const keys = testKeys();
    const key = keys.service('stratum', 'r');
    const reg = await registerService({ redis, keys, kind: 'stratum', id: 'r', ttlMs: 600 });
    cleanups.push(() => reg.close());
    // Watch the remaining TTL go down and jump back up: each jump is a refresh.
    let refreshes = 0;
    let last = await redis.pttl(key);
    await waitFor(
      async () => {
        const now = await redis.pttl(key);
        expect(now, 'the hash expired between refreshes').toBeGreaterThan(0);
        if (now > last) refreshes++;
        last = now;
        return refreshes >= 3;
      },
      { timeoutMs: 5000, what: 'three refreshes' },
    );
  });

  it('resolves an rpc endpoint: the least-loaded live service, or one by id, never a draining one', async () => {
    const keys = testKeys();
    const a = await registerService({
      redis,
      keys,
      kind: 'reporter',
      id: 'a',
      rpc: 'tcp://127.0.0.1:1',
      load: 0.7,
    });
    const b = await registerService({
      redis,
      keys,
      kind: 'reporter',
      id: 'b',
      rpc: 'tcp://127.0.0.1:2',
      load: 0.2,
    });
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    const any = serviceEndpointResolver({ redis, keys, kind: 'reporter' });
    expect(await any()).toBe('tcp://127.0.0.1:2');
    await b.update({ state: 'draining' });
    expect(await any()).toBe('tcp://127.0.0.1:1');
    expect(await serviceEndpointResolver({ redis, keys, kind: 'reporter', id: 'b' })()).toBe(
      'tcp://127.0.0.1:2',
    );
    await a.close();
    await expect(any()).rejects.toThrow(ServiceNotFoundError);
    await expect(serviceEndpointResolver({ redis, keys, kind: 'reporter', id: 'zz' })()).rejects.toThrow(
      'no live reporter with id zz with an rpc endpoint',
    );
  });

  it('a new service on a reused endpoint evicts the dead one still registered there', async () => {
    const keys = testKeys();
    // 'dead' was SIGKILLed: its hash lives on until its TTL; its port is free again.
    await redis.hset(keys.service('jobmanager', 'dead'), {
      kind: 'jobmanager',
      id: 'dead',
      rpc: 'tcp://127.0.0.1:28001',
    });
    await redis.zadd(keys.serviceIndex('jobmanager'), Date.now(), 'dead');
    const watcher = watchServices({ redis, keys, kind: 'jobmanager', reconcileMs: 3_600_000 });
    cleanups.push(() => watcher.close());
    await watcher.ready;
    expect(watcher.services.has('dead')).toBe(true);
    const other = await registerService({
      redis,
      keys,
      kind: 'jobmanager',
      id: 'other',
      rpc: 'tcp://127.0.0.1:28002',
    });
    const down = nextEvent(watcher, 'event', isEvent('down', 'dead'), 1000);
    const reg = await registerService({
      redis,
      keys,
      kind: 'jobmanager',
      id: 'new',
      rpc: 'tcp://127.0.0.1:28001',
    });
    cleanups.push(
      () => reg.close(),
      () => other.close(),
    );
    await down;
    expect((await listServices(redis, keys, 'jobmanager')).map((s) => s.id).sort()).toEqual(['new', 'other']);
  });
});
