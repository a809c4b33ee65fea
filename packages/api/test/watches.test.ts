import { randomBytes } from 'node:crypto';
import { createLogger } from '@hashwire/core';
import { EventType } from '@hashwire/protocol';
import { type RedisClient, appendEvent, connectRedis } from '@hashwire/registry';
import { type RedisServer, startRedis, waitFor } from '@hashwire/testkit';
import * as amqp from 'amqplib';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testKeys } from '../../reporter/test/helpers.js';
import { type ApiService, createApiService } from '../src/index.js';
import { call } from './helpers.js';
import { ADMIN_TOKEN, admin, poolEvents, startWebhook, waitForCount } from './watch-helpers.js';

// Each endpoint kind gets its events in order, exactly once in steady state; a failing endpoint
// is retried within the window and gets everything once it is back; past the window the watch
// is removed and `watch.removed` says so. Each test watches its own account (`account.<a>.*`),
// so the tests' events never reach each other's watches.

const quiet = createLogger({ name: 'api-test', level: 'silent' });
const keys = testKeys();
let server: RedisServer;
let redis: RedisClient;
let api: ApiService;
let base: string;

beforeAll(async () => {
  server = await startRedis();
  redis = connectRedis(server.url, 'api-watches');
  api = await createApiService({
    id: 'api-w',
    redis,
    keys,
    chains: [{ chain: 'ltc', algorithm: 'scrypt' }],
    port: 0,
    httpPortRange: [0, 0],
    adminToken: ADMIN_TOKEN,
    watches: { retryBaseMs: 50, retryMaxDelayMs: 400, retryWindowMs: 20_000, leaseMs: 1000 },
    logger: quiet,
  });
  await api.start();
  base = api.url!;
});

afterAll(async () => {
  await api?.close();
  redis?.disconnect();
  await server?.stop();
});

const account = (name: string) => `${name}-${randomBytes(3).toString('hex')}`;

async function register(pattern: string, endpoint: string, lifetime?: number) {
  return call(`${base}/v1/watches`, {
    method: 'POST',
    headers: admin,
    body: JSON.stringify({ pattern, endpoint, ...(lifetime ? { lifetime } : {}) }),
  });
}

/** `count` events of one account, alternating between the chain's stream and the pool's, plus noise. */
async function produce(acct: string, count: number, from = 0): Promise<string[]> {
  const seqs: string[] = [];
  for (let i = from; i < from + count; i++) {
    // noise: another account and an event without one
    await appendEvent(
      redis,
      keys,
      EventType.WorkerOnline,
      { chain: 'ltc', account: 'someone-else', worker: 'x', lastShareAt: i },
      'ltc',
    );
    await appendEvent(redis, keys, EventType.JobNew, { chain: 'ltc', i }, 'ltc');
    const data = { chain: 'ltc', account: acct, worker: `${acct}.rig`, lastShareAt: i };
    seqs.push(
      await appendEvent(redis, keys, i % 2 ? EventType.WorkerOffline : EventType.WorkerOnline, data, 'ltc'),
    );
  }
  return seqs;
}

describe('watches', () => {
  it('delivers to a webhook in order, once each, with event name and idempotency key headers', async () => {
    const hook = await startWebhook();
    try {
      const acct = account('http');
      const endpoint = `http://user:hunter2secret@${hook.url.slice('http://'.length)}/hook?x=1`;
      const created = await register(`account.${acct}.*`, endpoint);
      expect(created.status).toBe(201);
      expect(created.body.endpoint).not.toContain('hunter2secret');
      expect(created.body.endpoint).toContain('user:***@');
      const id = created.body.id as string;

      // the same registration again: the same watch, 200
      const again = await register(`account.${acct}.*`, endpoint);
      expect(again.status).toBe(200);
      expect(again.body.id).toBe(id);
      const listed = await call(`${base}/v1/watches?limit=500`, { headers: admin });
      expect(listed.body.items.filter((w: { id: string }) => w.id === id)).toHaveLength(1);
      expect(JSON.stringify(listed.body)).not.toContain('hunter2secret');

      const seqs = await produce(acct, 12);
      const got = await waitForCount(hook.delivered, 12, '12 webhook deliveries');
      await waitFor(
        async () =>
          (await call(`${base}/v1/watches/${id}`, { headers: admin })).body.delivery.cursors.ltc === seqs[11],
        { what: 'cursor moved' },
      );
      expect(hook.hooks).toHaveLength(12);
      expect(got.map((h) => h.body.seq)).toEqual(seqs);
      for (const [i, h] of got.entries()) {
        expect(h.path).toBe('/hook?x=1');
        expect(h.headers['idempotency-key']).toBe(`${id}:ltc:${seqs[i]}`);
        expect(h.headers['x-hashwire-event']).toBe(i % 2 ? 'worker.offline' : 'worker.online');
        expect(h.headers.authorization).toBe(`Basic ${Buffer.from('user:hunter2secret').toString('base64')}`);
        expect(h.body).toMatchObject({
          key: `${id}:ltc:${seqs[i]}`,
          watch: id,
          stream: 'ltc',
          data: { account: acct },
        });
      }
      // the audit trail says who registered it
      const audits = await poolEvents(redis, keys, 'admin.watch.create');
      const mine = audits.find((a) => a.data.target === id);
      expect(mine?.data.actor).toMatchObject({ kind: 'admin', tokenId: 'pool-admin' });
      expect(JSON.stringify(mine)).not.toContain('hunter2secret');
    } finally {
      await hook.close();
    }
  });

  it('many watches on one pattern are matched once per event (one pattern group)', async () => {
    const hook = await startWebhook();
    try {
      const acct = account('fan');
      const before = api.stats().watches!;
      const ids: string[] = [];
      for (let i = 0; i < 20; i++)
        ids.push((await register(`account.${acct}.*`, `${hook.url}/w${i}`)).body.id);
      await waitFor(() => api.stats().watches!.held === before.held + ids.length, { what: 'watches held' });
      expect(api.stats().watches!.patterns).toBe(before.patterns + 1);
      await produce(acct, 3);
      const got = await waitForCount(hook.delivered, 60, '60 deliveries');
      for (let i = 0; i < 20; i++)
        expect(got.filter((h) => h.path === `/w${i}`).map((h) => h.body.data.lastShareAt)).toEqual([0, 1, 2]);
      for (const id of ids)
        expect((await call(`${base}/v1/watches/${id}`, { method: 'DELETE', headers: admin })).status).toBe(
          200,
        );
    } finally {
      await hook.close();
    }
  });

  it('publishes to a redis channel in order', async () => {
    const acct = account('redis');
    const sub = redis.duplicate();
    const messages: { key: string; seq: string }[] = [];
    sub.on('message', (_channel: string, text: string) => messages.push(JSON.parse(text)));
    const channel = `watch-${acct}`;
    await sub.subscribe(channel);
    try {
      const created = await register(
        `account.${acct}.worker.*`,
        `redis://${server.host}:${server.port}/0/${channel}`,
      );
      expect(created.status).toBe(201);
      const seqs = await produce(acct, 10);
      await waitForCount(() => messages, 10, '10 redis messages');
      expect(messages.map((m) => m.seq)).toEqual(seqs);
      expect(messages[0]?.key).toBe(`${created.body.id}:ltc:${seqs[0]}`);
    } finally {
      sub.disconnect();
    }
  });

  it('publishes to a RabbitMQ exchange with confirms, messageId = idempotency key', async () => {
    const acct = account('amqp');
    const exchange = `hw-test-${acct}`;
    const conn = await amqp.connect('amqp://guest:guest@127.0.0.1:5672');
    const ch = await conn.createChannel();
    const received: amqp.ConsumeMessage[] = [];
    try {
      await ch.assertExchange(exchange, 'topic', { durable: false, autoDelete: true });
      const q = await ch.assertQueue('', { exclusive: true });
      await ch.bindQueue(q.queue, exchange, '#');
      await ch.consume(q.queue, (m) => m && received.push(m), { noAck: true });
      const created = await register(
        `account.${acct}.*`,
        `amqp://guest:guest@127.0.0.1:5672/%2F/${exchange}`,
      );
      expect(created.status).toBe(201);
      expect(created.body.endpoint).toBe(`amqp://guest:***@127.0.0.1:5672/%2F/${exchange}`);
      const seqs = await produce(acct, 10);
      await waitForCount(() => received, 10, '10 amqp messages');
      expect(received.map((m) => JSON.parse(m.content.toString()).seq)).toEqual(seqs);
      expect(received.map((m) => m.properties.messageId)).toEqual(
        seqs.map((s) => `${created.body.id}:ltc:${s}`),
      );
      expect(received[1]?.fields.routingKey).toBe('worker.offline');
    } finally {
      await ch.close().catch(() => {});
      await conn.close();
    }
  });

  it('inserts into a MariaDB table (created when missing), the idempotency key as primary key', async () => {
    const acct = account('mysql');
    const table = `watch_${acct.replace(/-/g, '_')}`;
    const db = await mysql.createConnection({
      host: '127.0.0.1',
      port: 3306,
      user: 'root',
      database: 'test',
    });
    try {
      const created = await register(`account.${acct}.*`, `mysql://root@127.0.0.1:3306/test/${table}`);
      expect(created.status).toBe(201);
      const seqs = await produce(acct, 10);
      const rows = await waitForCount(
        async () => {
          try {
            const [r] = await db.query(`SELECT idempotency_key, seq, event, data FROM ${table} ORDER BY n`);
            return r as { idempotency_key: string; seq: string; event: string; data: string }[];
          } catch {
            return [];
          }
        },
        10,
        '10 rows',
      );
      expect(rows.map((r) => r.seq)).toEqual(seqs);
      expect(rows[0]?.idempotency_key).toBe(`${created.body.id}:ltc:${seqs[0]}`);
      expect(JSON.parse(rows[3]?.data as string)).toMatchObject({ account: acct, lastShareAt: 3 });
    } finally {
      await db.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
      await db.end();
    }
  });

  it('writes a ws watch into its outbox stream (topic watch:<id>), exactly once each', async () => {
    const acct = account('ws');
    const created = await register(`account.${acct}.*`, 'ws');
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect(created.body.topic).toBe(`watch:${id}`);
    const seqs = await produce(acct, 10);
    const entries = await waitForCount(
      async () => (await redis.xrange(keys.watchOutbox(id), '-', '+')) as [string, string[]][],
      10,
      '10 outbox entries',
    );
    const fields = entries.map(([, f]) =>
      Object.fromEntries(f.flatMap((v, i) => (i % 2 ? [] : [[v, f[i + 1]]]))),
    );
    expect(fields.map((f) => f.seq)).toEqual(seqs);
    expect(fields[0]).toMatchObject({ type: 'worker.online', stream: 'ltc', key: `${id}:ltc:${seqs[0]}` });
    expect(JSON.parse(fields[0]?.data as string)).toMatchObject({ account: acct });
  });

  it('an endpoint down for a while gets everything once it is back, the retried one with its key', async () => {
    const hook = await startWebhook();
    try {
      const acct = account('down');
      let down = true;
      hook.setAnswer(() => (down ? 503 : 200));
      const id = (await register(`account.${acct}.*`, `${hook.url}/down`)).body.id as string;
      const seqs = await produce(acct, 6);
      // several failed attempts of the first event, then the endpoint comes back
      await waitForCount(() => hook.hooks, 4, '4 failed attempts');
      const during = await call(`${base}/v1/watches/${id}`, { headers: admin });
      expect(during.body.delivery.failingSince).toBeGreaterThan(0);
      expect(during.body.delivery.lastError).toMatch(/HTTP 503/);
      down = false;
      const got = await waitForCount(hook.delivered, 6, '6 deliveries after recovery');
      expect(got.map((h) => h.body.seq)).toEqual(seqs);
      const firstKey = `${id}:ltc:${seqs[0]}`;
      const attempts = hook.hooks.filter((h) => h.headers['idempotency-key'] === firstKey);
      expect(attempts.length).toBeGreaterThanOrEqual(4);
      expect(attempts.map((h) => Number(h.headers['x-hashwire-attempt']))).toEqual(
        attempts.map((_, i) => i + 1),
      );
      // nothing but the first event was tried more than once
      expect(
        hook.hooks.filter((h) => h.status === 503).every((h) => h.headers['idempotency-key'] === firstKey),
      ).toBe(true);
      const after = await call(`${base}/v1/watches/${id}`, { headers: admin });
      expect(after.body.delivery).toMatchObject({ failingSince: null, attempts: 0, lastError: null });
    } finally {
      await hook.close();
    }
  });

  it('a webhook whose server is gone (connection refused) gets everything once it listens again', async () => {
    const first = await startWebhook();
    const port = first.port;
    await first.close();
    const acct = account('refused');
    const id = (await register(`account.${acct}.*`, `http://127.0.0.1:${port}/back`)).body.id as string;
    const seqs = await produce(acct, 5);
    const failing = await waitFor(
      async () => {
        const w = await call(`${base}/v1/watches/${id}`, { headers: admin });
        return w.body.delivery.attempts >= 3 ? w.body.delivery : undefined;
      },
      { what: '3 refused attempts' },
    );
    expect(failing.lastError).toBe('webhook unreachable: ECONNREFUSED');
    const back = await startWebhook(port);
    try {
      const got = await waitForCount(back.delivered, 5, '5 deliveries once back');
      expect(got.map((h) => h.body.seq)).toEqual(seqs);
      expect(back.hooks).toHaveLength(5);
      expect(Number(got[0]?.headers['x-hashwire-attempt'])).toBeGreaterThan(3);
      expect(got[0]?.headers['idempotency-key']).toBe(`${id}:ltc:${seqs[0]}`);
      expect(got.slice(1).map((h) => h.headers['x-hashwire-attempt'])).toEqual(['1', '1', '1', '1']);
    } finally {
      await back.close();
    }
  });

  it('removes a watch whose lifetime ended, with a watch.removed event', async () => {
    const acct = account('life');
    const created = await register(`account.${acct}.*`, 'ws', 1);
    expect(created.body.expiresAt).toBeGreaterThan(Date.now());
    const id = created.body.id as string;
    const removed = await waitFor(
      async () => (await poolEvents(redis, keys, 'watch.removed')).find((e) => e.data.id === id),
      { what: 'watch.removed for the expired watch' },
    );
    expect(removed.data).toMatchObject({
      id,
      pattern: `account.${acct}.*`,
      endpoint: 'ws',
      reason: 'lifetime',
    });
    expect((await call(`${base}/v1/watches/${id}`, { headers: admin })).status).toBe(404);
    expect(await redis.exists(keys.watch(id))).toBe(0);
  });

  it('DELETE removes a watch, says so in watch.removed and the audit trail, then 404', async () => {
    const created = await register('block.*', 'redis://:pw-secret-1@127.0.0.1:1/chan');
    const id = created.body.id as string;
    const del = await call(`${base}/v1/watches/${id}`, { method: 'DELETE', headers: admin });
    expect(del.status).toBe(200);
    expect(del.body.endpoint).toBe('redis://:***@127.0.0.1:1/0/chan');
    expect((await call(`${base}/v1/watches/${id}`, { method: 'DELETE', headers: admin })).status).toBe(404);
    const removed = (await poolEvents(redis, keys, 'watch.removed')).filter((e) => e.data.id === id);
    expect(removed).toHaveLength(1);
    expect(removed[0]?.data).toMatchObject({
      reason: 'deleted',
      endpoint: 'redis://:***@127.0.0.1:1/0/chan',
    });
    const audit = (await poolEvents(redis, keys, 'admin.watch.delete')).filter((e) => e.data.target === id);
    expect(audit).toHaveLength(1);
    // registered again after the delete: a new watch under the same id
    const again = await register('block.*', 'redis://:pw-secret-1@127.0.0.1:1/chan');
    expect(again.status).toBe(201);
    expect(again.body.id).toBe(id);
    expect((await call(`${base}/v1/watches/${id}`, { headers: admin })).status).toBe(200);
    expect((await call(`${base}/v1/watches/${id}`, { method: 'DELETE', headers: admin })).status).toBe(200);
  });
});

describe('watches past the retry window', () => {
  it('after the last retry the watch is gone and watch.removed says why', async () => {
    const k = testKeys();
    const short = await createApiService({
      id: 'api-short',
      redis,
      keys: k,
      chains: [{ chain: 'ltc', algorithm: 'scrypt' }],
      port: 0,
      httpPortRange: [0, 0],
      adminToken: ADMIN_TOKEN,
      watches: { retryBaseMs: 100, retryMaxDelayMs: 400, retryWindowMs: 1500, leaseMs: 1000 },
      logger: quiet,
    });
    await short.start();
    const hook = await startWebhook();
    hook.setAnswer(() => 500);
    try {
      const res = await call(`${short.url}/v1/watches`, {
        method: 'POST',
        headers: admin,
        body: JSON.stringify({
          pattern: 'block.*',
          endpoint: `http://u:pw-hidden@${hook.url.slice(7)}/never`,
        }),
      });
      const id = res.body.id as string;
      await appendEvent(
        redis,
        k,
        EventType.BlockAccepted,
        { chain: 'ltc', hash: 'ab', height: 1, state: 'accepted' },
        'ltc',
      );
      const removed = await waitFor(
        async () => (await poolEvents(redis, k, 'watch.removed')).find((e) => e.data.id === id),
        { what: 'watch.removed after the retry window' },
      );
      expect(removed.data).toMatchObject({ id, pattern: 'block.*', reason: 'retries exhausted' });
      expect(removed.data.endpoint).not.toContain('pw-hidden');
      expect((await call(`${short.url}/v1/watches/${id}`, { headers: admin })).status).toBe(404);
      // retried with backoff over the window (the last attempt at its end), one key throughout
      expect(hook.hooks.length).toBeGreaterThanOrEqual(3);
      const attempts = hook.hooks.map((h) => Number(h.headers['x-hashwire-attempt']));
      expect(attempts).toEqual(attempts.map((_, i) => i + 1));
      expect(new Set(hook.hooks.map((h) => h.headers['idempotency-key'])).size).toBe(1);
    } finally {
      await short.close();
      await hook.close();
    }
  });
});
