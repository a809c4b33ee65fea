import { createLogger } from '@hashwire/core';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { type RedisServer, startRedis } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testKeys } from '../../reporter/test/helpers.js';
import { type ApiService, createApiService } from '../src/index.js';
import { call } from './helpers.js';
import { ADMIN_TOKEN, admin } from './watch-helpers.js';

// Every bad watch registration gets a 4xx naming the field, and nothing is stored for it.

const quiet = createLogger({ name: 'api-test', level: 'silent' });
const keys = testKeys();
let server: RedisServer;
let redis: RedisClient;
let api: ApiService;
let base: string;

beforeAll(async () => {
  server = await startRedis();
  redis = connectRedis(server.url, 'api-watch-hostile');
  api = await createApiService({
    id: 'api-wh',
    redis,
    keys,
    chains: [{ chain: 'ltc', algorithm: 'scrypt' }],
    port: 0,
    httpPortRange: [0, 0],
    adminToken: ADMIN_TOKEN,
    maxBodyBytes: 4096,
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

async function refused(body: string, status: number, field: string) {
  const res = await call(`${base}/v1/watches`, { method: 'POST', headers: admin, body });
  expect(res.status, body.slice(0, 200)).toBe(status);
  expect(res.body.error.field, `${body.slice(0, 200)}: ${res.body.error.message}`).toBe(field);
  expect(res.body.error.message).toContain(field);
  return res.body.error.message as string;
}

const watch = (pattern: unknown, endpoint: unknown, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ pattern, endpoint, ...extra });

describe('hostile watch registrations', () => {
  it('refuses malformed JSON, oversized bodies and unknown fields', async () => {
    await refused('{"pattern": "block.*", "endpoint": ', 400, 'body');
    await refused('[1,2', 400, 'body');
    await refused('', 400, 'body');
    await refused(watch('block.*', `http://h/${'x'.repeat(5000)}`), 413, 'body');
    await refused(watch('block.*', 'ws', { owner: 'me' }), 400, 'owner');
    await refused(JSON.stringify({ endpoint: 'ws' }), 400, 'pattern');
    await refused(watch('block.*', 'ws', { lifetime: -5 }), 400, 'lifetime');
    await refused(watch('block.*', 'ws', { lifetime: '1h' }), 400, 'lifetime');
    await refused(watch('block.*', 'ws', { lifetime: 1.5 }), 400, 'lifetime');
  });

  it('refuses patterns that would be expensive to match or are not globs over event names', async () => {
    expect(await refused(watch('*a*b*c*d*e', 'ws'), 400, 'pattern')).toMatch(/5 wildcards; at most 4/);
    expect(await refused(watch(`block.${'x'.repeat(200)}`, 'ws'), 400, 'pattern')).toMatch(/at most 200/);
    expect(await refused(watch('block.**', 'ws'), 400, 'pattern')).toMatch(/two wildcards in a row/);
    for (const pattern of ['', 'block.[ab]', 'block.?', 'block .*', 'a\\*', 'blöck.*', 7, null])
      await refused(watch(pattern, 'ws'), 400, 'pattern');
  });

  it('refuses bad endpoint URIs, saying what is wrong', async () => {
    const cases: [string, RegExp][] = [
      ['not a uri', /is not a URI/],
      ['ftp://h/x', /scheme ftp is not taken/],
      ['redis://h:6379', /needs a path \/channel/],
      ['redis://h:6379/99999/c', /db must be a number/],
      ['redis://h:99999/c', /not a URI|port/],
      ['redis://h/0/c?x=1', /no query string/],
      ['amqp://u:p@h:5672/exchange-only', /\/vhost\/exchange/],
      ['amqp://u:p@h:5672/%2F/ex%20change', /exchange must be/],
      ['amqp://u:p@h:5672//ex', /vhost must not be empty/],
      ['mysql://h:3306/test/t', /needs a user/],
      ['mysql://root@h:3306/test', /needs a path \/db\/table/],
      ['mysql://root@h/test/t/extra', /needs a path \/db\/table/],
      ['http://', /not a URI|needs a host/],
      ['wss', /not a URI/],
    ];
    for (const [endpoint, why] of cases)
      expect(await refused(watch('block.*', endpoint), 400, 'endpoint')).toMatch(why);
  });

  it('refuses mysql table and database names that look like injection', async () => {
    for (const table of [
      'events;DROP%20TABLE%20users',
      'events%60;%20DROP%20TABLE%20x;--',
      "t'%20OR%20'1'='1",
      '1events',
      'ev-ents',
      `t${'x'.repeat(64)}`,
      '%60t%60',
    ]) {
      const message = await refused(
        watch('block.*', `mysql://root:secretpw@127.0.0.1:3306/test/${table}`),
        400,
        'endpoint',
      );
      expect(message).toMatch(/table name must be a plain identifier/);
      expect(message).not.toContain('secretpw');
    }
    await refused(watch('block.*', 'mysql://root@127.0.0.1:3306/te%3Bst/t'), 400, 'endpoint');
  });

  it('needs an admin token, and stored nothing for any of the above', async () => {
    const anonymous = await call(`${base}/v1/watches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: watch('block.*', 'ws'),
    });
    expect(anonymous.status).toBe(401);
    expect((await call(`${base}/v1/watches`)).status).toBe(401);
    expect((await call(`${base}/v1/watches/${'0'.repeat(32)}`, { headers: admin })).status).toBe(404);
    const badId = await call(`${base}/v1/watches/not-an-id`, { headers: admin });
    expect(badId.status).toBe(400);
    expect(badId.body.error.field).toBe('id');
    const list = await call(`${base}/v1/watches`, { headers: admin });
    expect(list.body).toEqual({ items: [], next: null });
    expect(await redis.scard(keys.watchIndex())).toBe(0);
  });
});
