import { createLogger } from '@hashwire/core';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { type RedisServer, startRedis } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testKeys } from '../../reporter/test/helpers.js';
import { type ApiService, createApiService } from '../src/index.js';
import { call } from './helpers.js';

// Every bad input gets a 4xx whose body names the field; nothing is written for it.

const quiet = createLogger({ name: 'api-test', level: 'silent' });
let server: RedisServer;
let redis: RedisClient;
let api: ApiService;
let base: string;

beforeAll(async () => {
  server = await startRedis();
  redis = connectRedis(server.url, 'api-hostile');
  api = await createApiService({
    id: 'api-h',
    redis,
    keys: testKeys(),
    chains: [{ chain: 'ltc', algorithm: 'scrypt' }],
    port: 0,
    httpPortRange: [0, 0],
    maxBodyBytes: 1024,
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

async function refused(path: string, init: RequestInit, status: number, field: string) {
  const res = await call(`${base}${path}`, init);
  expect(res.status, `${init.method ?? 'GET'} ${path}`).toBe(status);
  expect(res.body.error.field, `${init.method ?? 'GET'} ${path}: ${res.body.error.message}`).toBe(field);
  expect(res.body.error.message).toContain(field);
  return res.body.error as { code: string; message: string; in?: string };
}

describe('hostile input', () => {
  it('refuses malformed JSON and oversized bodies, naming the body, and stores nothing', async () => {
    const json = { 'content-type': 'application/json' };
    const bad = await refused(
      '/v1/groups/g1/m1',
      { method: 'PUT', headers: json, body: '{"opaque": ' },
      400,
      'body',
    );
    expect(bad.message).toMatch(/not valid JSON/);
    const big = await refused('/v1/groups/g1/m1', { method: 'PUT', body: 'x'.repeat(2000) }, 413, 'body');
    expect(big.code).toBe('too_large');
    await refused('/v1/groups/g1/config', { method: 'PUT', headers: json, body: '[1,' }, 400, 'body');
    const group = await call(`${base}/v1/groups/g1`);
    expect(group.body).toMatchObject({ config: null, active_members: [], inactive_members: [] });
    // the same body declared as text is opaque metadata, taken as it is
    const ok = await call(`${base}/v1/groups/g1/m1`, { method: 'PUT', body: '{"opaque": ' });
    expect(ok.body.active_members).toEqual([{ m1: '{"opaque": ' }]);
  });

  it('refuses bad paging parameters naming them', async () => {
    const path = '/v1/chains/ltc/blocks';
    for (const limit of ['0', 'abc', '501', '1.5', ''])
      await refused(`${path}?limit=${limit}`, {}, 400, 'limit');
    await refused(`${path}?limt=5`, {}, 400, 'limt');
    await refused(`${path}?cursor=not-a-cursor`, {}, 400, 'cursor');
    // a cursor of another list (a worker name where a height and hash belong)
    const workerCursor = Buffer.from(JSON.stringify(['rig1'])).toString('base64url');
    await refused(`${path}?cursor=${workerCursor}`, {}, 400, 'cursor');
    await refused(`/v1/chains/ltc/accounts/a/workers?cursor=${'x'.repeat(600)}`, {}, 400, 'cursor');
  });

  it('refuses bad path parameters naming them, and says which chains exist', async () => {
    await refused('/v1/chains/l%20tc', {}, 400, 'chain');
    const unknown = await refused('/v1/chains/btc', {}, 404, 'chain');
    expect(unknown.message).toContain('ltc');
    await refused('/v1/chains/ltc/blocks/xyz', {}, 400, 'hash');
    await refused(`/v1/chains/ltc/blocks/${'0'.repeat(64)}`, {}, 404, 'hash');
    await refused('/v1/chains/ltc/accounts/acct%20A', {}, 400, 'account');
    await refused('/v1/chains/ltc/accounts/acct%7CA', {}, 400, 'account');
    await refused(`/v1/chains/ltc/accounts/${'a'.repeat(129)}`, {}, 400, 'account');
    await refused(`/v1/groups/${'g'.repeat(201)}`, {}, 400, 'group');
    await refused('/v1/groups/g%7B1%7D/m', { method: 'PUT' }, 400, 'group');
    await refused('/v1/groups/g1/config', { method: 'DELETE' }, 400, 'member');
    for (const timeout of ['-1', '0', 'abc', '100000'])
      await refused(`/v1/groups/g1/m2?timeout=${timeout}`, { method: 'PUT' }, 400, 'timeout');
    const group = await call(`${base}/v1/groups/g1`);
    expect(group.body.active_members.map((m: object) => Object.keys(m)[0])).toEqual(['m1']);
  });

  it('answers bad URIs and unknown routes with a JSON 4xx', async () => {
    const badUri = await call(`${base}/v1/chains/%E0%A4%A/blocks`);
    expect(badUri.status).toBe(400);
    expect(badUri.body.error).toMatchObject({
      field: 'path',
      message: expect.stringContaining('not a valid url'),
    });
    const none = await call(`${base}/v1/nothing`);
    expect(none.status).toBe(404);
    expect(none.body.error.message).toContain('/v1/openapi.json');
  });

  // Membership writes off loopback (token or openGroups) are tested in auth.test.ts.
  it('refuses a bad chain, naming the field', async () => {
    await expect(
      createApiService({
        id: 'x',
        redis,
        chains: [{ chain: 'ltc', algorithm: 'x' as 'scrypt' }],
        logger: quiet,
      }),
    ).rejects.toThrow(/chains\[0\]\.algorithm/);
  });
});
