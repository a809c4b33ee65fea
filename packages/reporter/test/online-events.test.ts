import type { RedisClient } from '@hashwire/registry';
import { connectRedis } from '@hashwire/registry';
import { startRedisCluster } from '@hashwire/testkit';
import { beforeAll, describe, expect, it } from 'vitest';
import { ONLINE_WINDOW_MS, readOnline, reporterKeys } from '../src/index.js';
import { CHAIN, batch, send, share, streamTail, testKeys, useReporterBed } from './helpers.js';

// worker.online / worker.offline: emitted by the scripts that change the online set, so each
// happens once per change however many reporters credit and sweep.

const bed = useReporterBed();
const { cleanups, startReporter, rpc } = bed;
let redis: RedisClient;
beforeAll(() => {
  redis = bed.redis;
});

interface Emitted {
  type: string;
  data: Record<string, unknown>;
}

/** The worker events of the chain's stream after `from`, in order. */
async function workerEvents(client: RedisClient, key: string, from: string): Promise<Emitted[]> {
  const entries = (await client.xrange(key, `(${from}`, '+')) as [string, string[]][];
  return entries
    .map(([, fields]) => ({
      type: fields[fields.indexOf('type') + 1]!,
      data: JSON.parse(fields[fields.indexOf('data') + 1]!) as Record<string, unknown>,
    }))
    .filter((e) => e.type.startsWith('worker.'));
}

describe('worker.online and worker.offline', () => {
  it("a worker's first accepted share emits worker.online once; more shares emit nothing; rejected shares bring no one online", async () => {
    const keys = testKeys();
    const k = reporterKeys(keys, CHAIN);
    const c = rpc(await startReporter(keys));
    const from = await streamTail(redis, k.events);
    const t0 = Date.now() - 1000;
    await send(
      c,
      batch([
        share({ account: 'alice', worker: 'rig1', ts: t0 }),
        share({ account: 'alice', worker: 'rig1', ts: t0 + 5 }),
        share({ account: 'bob', worker: '', ts: t0 + 7 }),
        share({ account: 'carol', worker: 'rig9', result: 'invalid', ts: t0 }),
        share({ account: 'dave', worker: 'old', ts: Date.now() - ONLINE_WINDOW_MS - 60_000 }),
      ]),
    );
    await send(c, batch([share({ account: 'alice', worker: 'rig1', ts: t0 + 10 })]));
    const events = await workerEvents(redis, k.events, from);
    expect(events.map((e) => e.type)).toEqual(['worker.online', 'worker.online']);
    expect(
      events.map((e) => e.data).sort((a, b) => String(a.worker).localeCompare(String(b.worker))),
    ).toEqual([
      { chain: CHAIN, account: 'alice', worker: 'alice.rig1', lastShareAt: t0 + 5 },
      { chain: CHAIN, account: 'bob', worker: 'bob', lastShareAt: t0 + 7 },
    ]);
    expect(await readOnline(redis, keys, CHAIN)).toEqual({ workers: 2, accounts: 2 });
  });

  it('two reporters crediting a new worker at once emit one worker.online; two sweeping at once emit one worker.offline, then a share brings it back', async () => {
    const keys = testKeys();
    const k = reporterKeys(keys, CHAIN);
    const [a, b] = await Promise.all([startReporter(keys), startReporter(keys)]);
    const [ca, cb] = [rpc(a), rpc(b)];
    const from = await streamTail(redis, k.events);
    const now = Date.now();
    const workers = Array.from({ length: 50 }, (_, i) => `w${i}`);
    // Every worker's first shares reach both reporters at once, through two stratum servers.
    await Promise.all([
      send(
        ca,
        batch(
          workers.map((w) => share({ account: 'acct', worker: w, ts: now - 2000 })),
          'stratum-a',
        ),
      ),
      send(
        cb,
        batch(
          workers.map((w) => share({ account: 'acct', worker: w, ts: now - 1000 })),
          'stratum-b',
        ),
      ),
    ]);
    let events = await workerEvents(redis, k.events, from);
    expect(
      events
        .filter((e) => e.type === 'worker.online')
        .map((e) => e.data.worker)
        .sort(),
    ).toEqual(workers.map((w) => `acct.${w}`).sort());
    expect(events).toHaveLength(50);

    // Nothing is offline yet: a sweep now takes no one.
    expect(await Promise.all([a.sweepOnline(), b.sweepOnline()])).toEqual([0, 0]);
    // Past the window: both reporters sweep at once, several times; each worker leaves once.
    const later = now + ONLINE_WINDOW_MS + 1;
    const swept = await Promise.all([
      a.sweepOnline(later),
      b.sweepOnline(later),
      a.sweepOnline(later),
      b.sweepOnline(later),
    ]);
    expect(swept.reduce((x, y) => x + y, 0)).toBe(50);
    events = await workerEvents(redis, k.events, from);
    const offline = events.filter((e) => e.type === 'worker.offline');
    expect(offline).toHaveLength(50);
    expect(new Set(offline.map((e) => e.data.worker)).size).toBe(50);
    // Its last share is what the latest credit recorded (either stratum server's time).
    for (const e of offline) {
      expect(e.data).toMatchObject({ chain: CHAIN, account: 'acct' });
      expect([now - 2000, now - 1000]).toContain(e.data.lastShareAt);
    }
    expect(await redis.zcard(k.onlineWorkers)).toBe(0);

    // Back with a new share: online again, once.
    const back = await streamTail(redis, k.events);
    await send(ca, batch([share({ account: 'acct', worker: 'w7' })], 'stratum-a'));
    expect((await workerEvents(redis, k.events, back)).map((e) => [e.type, e.data.worker])).toEqual([
      ['worker.online', 'acct.w7'],
    ]);
  });

  it('sweeps more workers than one script run takes, each once', async () => {
    const keys = testKeys();
    const k = reporterKeys(keys, CHAIN);
    const reporter = await startReporter(keys);
    const c = rpc(reporter);
    const now = Date.now();
    await send(
      c,
      batch(
        Array.from({ length: 2500 }, (_, i) => share({ account: `a${i % 7}`, worker: `w${i}`, ts: now })),
      ),
    );
    const from = await streamTail(redis, k.events);
    expect(await reporter.sweepOnline(now + ONLINE_WINDOW_MS + 1)).toBe(2500);
    const offline = await workerEvents(redis, k.events, from);
    expect(offline.filter((e) => e.type === 'worker.offline')).toHaveLength(2500);
  });

  it('the reporter sweeps on its own timer', async () => {
    const keys = testKeys();
    const k = reporterKeys(keys, CHAIN);
    const reporter = await startReporter(keys, { onlineSweepMs: 50 });
    const c = rpc(reporter);
    // A worker whose latest share the online set holds as older than the window (as if its
    // reporter had credited it then): the timer's sweep takes it offline.
    await send(c, batch([share({ account: 'zed', worker: 'r' })]));
    const from = await streamTail(redis, k.events);
    await redis.zadd(k.onlineWorkers, Date.now() - ONLINE_WINDOW_MS - 1000, 'zed.r');
    const deadline = Date.now() + 20_000;
    let offline: Emitted[] = [];
    while (offline.length === 0 && Date.now() < deadline) {
      await redis.xread('BLOCK', 1000, 'STREAMS', k.events, from).catch(() => null);
      offline = (await workerEvents(redis, k.events, from)).filter((e) => e.type === 'worker.offline');
    }
    expect(offline.map((e) => e.data.worker)).toEqual(['zed.r']);
  });
});

describe('on Redis Cluster', () => {
  it('emits worker.online and worker.offline into the chain stream (one slot with the online set)', async () => {
    const cluster = await startRedisCluster({ masters: 3 });
    const client = connectRedis({ cluster: cluster.nodes });
    cleanups.push(async () => {
      client.disconnect();
      await cluster.stop();
    });
    const keys = testKeys();
    const k = reporterKeys(keys, CHAIN);
    const reporter = await startReporter(keys, {}, client);
    const c = rpc(reporter);
    const now = Date.now();
    await send(c, batch([share({ account: 'eve', worker: 'r1', ts: now })]));
    await reporter.sweepOnline(now + ONLINE_WINDOW_MS + 1);
    expect((await workerEvents(client, k.events, '0-0')).map((e) => [e.type, e.data])).toEqual([
      ['worker.online', { chain: CHAIN, account: 'eve', worker: 'eve.r1', lastShareAt: now }],
      ['worker.offline', { chain: CHAIN, account: 'eve', worker: 'eve.r1', lastShareAt: now }],
    ]);
  });
});
