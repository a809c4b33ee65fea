import * as crypto from 'node:crypto';
import { type StatusServer, createLogger, startStatusServer } from '@hashwire/core';
import type { KeyBuilder } from '@hashwire/protocol';
import {
  type RedisClient,
  type ServiceRegistration,
  connectRedis,
  registerService,
} from '@hashwire/registry';
import { type RedisServer, startRedis, waitFor } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { testKeys } from '../../reporter/test/helpers.js';
import { type ApiService, type ApiServiceOptions, createApiService } from '../src/index.js';
import { call } from './helpers.js';

// Stored tokens, permissions, the audit trail, rate limits and closed-by-default membership,
// against real Redis and api instances over real HTTP.

// Counts constant-time comparisons made by the code under test (the real function still runs).
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual) };
});

const POOL_ADMIN = 'pool-admin-token-0123456789abcdef';
const quiet = createLogger({ name: 'api-auth-test', level: 'silent' });

let server: RedisServer;
let redis: RedisClient;
let keys: KeyBuilder;
let a: ApiService;
let b: ApiService;
const closers: (() => Promise<unknown> | unknown)[] = [];

async function startApi(id: string, extra: Partial<ApiServiceOptions> = {}): Promise<ApiService> {
  const api = await createApiService({
    id,
    redis,
    keys,
    chains: [{ chain: 'ltc', algorithm: 'scrypt' }],
    port: 0,
    httpPortRange: [0, 0],
    adminToken: POOL_ADMIN,
    logger: quiet,
    ...extra,
  });
  closers.push(() => api.close());
  await api.start();
  return api;
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function makeToken(
  api: ApiService,
  body: Record<string, unknown>,
): Promise<{ id: string; token: string; kind: string }> {
  const made = await call(`${api.url}/v1/tokens`, {
    method: 'POST',
    headers: { ...bearer(POOL_ADMIN), 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(made.status).toBe(201);
  return made.body;
}

/** Every key and every value in Redis, as text. */
async function dumpRedis(): Promise<string> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const key of found) {
      out.push(key);
      const type = await redis.type(key);
      if (type === 'string') out.push(String(await redis.get(key)));
      else if (type === 'hash') out.push(JSON.stringify(await redis.hgetall(key)));
      else if (type === 'stream') out.push(JSON.stringify(await redis.xrange(key, '-', '+')));
      else if (type === 'zset') out.push(JSON.stringify(await redis.zrange(key, 0, -1, 'WITHSCORES')));
      else if (type === 'set') out.push(JSON.stringify(await redis.smembers(key)));
      else if (type === 'list') out.push(JSON.stringify(await redis.lrange(key, 0, -1)));
    }
  } while (cursor !== '0');
  return out.join('\n');
}

beforeAll(async () => {
  server = await startRedis();
  redis = connectRedis(server.url, 'api-auth-test');
  keys = testKeys();
  a = await startApi('api-a');
  b = await startApi('api-b');
});

afterAll(async () => {
  for (const close of closers.reverse()) await close();
  redis?.disconnect();
  await server?.stop();
});

describe('stored tokens', () => {
  it('are made by an admin only, shown once, listed without secrets, and stored hashed', async () => {
    const body = JSON.stringify({ kind: 'read', name: 'dashboard' });
    const json = { 'content-type': 'application/json' };
    const anonymous = await call(`${a.url}/v1/tokens`, { method: 'POST', headers: json, body });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.code).toBe('unauthorized');

    const read = await makeToken(a, { kind: 'read', name: 'dashboard' });
    expect(read.token).toMatch(/^hwt_[A-Za-z0-9_-]{43}$/);
    const byRead = await call(`${a.url}/v1/tokens`, {
      method: 'POST',
      headers: { ...json, ...bearer(read.token) },
      body,
    });
    expect(byRead.status).toBe(403);
    expect(byRead.body.error.message).toMatch(/admin token; the token given is a read token/);

    const acct = await makeToken(a, { kind: 'account', name: 'miner A', account: 'acctA', expiresInS: 3600 });
    const listed = await call(`${b.url}/v1/tokens`, { headers: bearer(POOL_ADMIN) });
    expect(listed.status).toBe(200);
    const mine = listed.body.tokens.filter((t: { id: string }) => [read.id, acct.id].includes(t.id));
    expect(mine).toEqual([
      { id: read.id, kind: 'read', name: 'dashboard', createdAt: expect.any(Number) },
      {
        id: acct.id,
        kind: 'account',
        name: 'miner A',
        account: 'acctA',
        createdAt: expect.any(Number),
        expiresAt: expect.any(Number),
      },
    ]);
    expect(JSON.stringify(listed.body)).not.toContain('hwt_');
    expect(
      (await call(`${b.url}/v1/chains/ltc/accounts/acctA`, { headers: bearer(acct.token) })).status,
    ).toBe(200);

    // At rest: the SHA-256 of each token is there, the token nowhere (keys, values, events).
    const everything = await dumpRedis();
    for (const t of [read.token, acct.token]) {
      expect(everything).toContain(crypto.createHash('sha256').update(t).digest('hex'));
      expect(everything).not.toContain(t);
      expect(everything).not.toContain(t.slice(4, 24));
    }
  });

  it('names the field of a bad request', async () => {
    const post = (body: unknown) =>
      call(`${a.url}/v1/tokens`, {
        method: 'POST',
        headers: { ...bearer(POOL_ADMIN), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const malformed = await call(`${a.url}/v1/tokens`, {
      method: 'POST',
      headers: { ...bearer(POOL_ADMIN), 'content-type': 'application/json' },
      body: '{"kind": "read",',
    });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toMatchObject({ field: 'body', in: 'body' });
    expect(malformed.body.error.message).toMatch(/malformed JSON/);
    const noAccount = await post({ kind: 'account', name: 'x' });
    expect(noAccount.status).toBe(400);
    expect(noAccount.body.error).toMatchObject({ field: 'account', in: 'body' });
    const badKind = await post({ kind: 'root', name: 'x' });
    expect(badKind.body.error).toMatchObject({ field: 'kind', in: 'body' });
    const readWithAccount = await post({ kind: 'read', name: 'x', account: 'acctA' });
    expect(readWithAccount.body.error.message).toMatch(/account: only account tokens have one/);
    const badExpiry = await post({ kind: 'read', name: 'x', expiresInS: -5 });
    expect(badExpiry.body.error).toMatchObject({ field: 'expiresInS' });
    const unknownId = await call(`${a.url}/v1/tokens/tok_AAAAAAAAAAAA`, {
      method: 'DELETE',
      headers: bearer(POOL_ADMIN),
    });
    expect(unknownId.status).toBe(404);
    const notAnId = await call(`${a.url}/v1/tokens/nope`, { method: 'DELETE', headers: bearer(POOL_ADMIN) });
    expect(notAnId.body.error).toMatchObject({ field: 'id', in: 'path' });
  });

  it('are compared in constant time, and a record that does not hash to the token is refused', async () => {
    const made = await makeToken(a, { kind: 'read', name: 'ct' });
    const compare = vi.mocked(crypto.timingSafeEqual);
    compare.mockClear();
    const ok = await call(`${a.url}/v1/pool`, { headers: bearer(made.token) });
    expect(ok.status).toBe(200);
    const digest = crypto.createHash('sha256').update(made.token).digest();
    expect(
      compare.mock.calls.some(([x, y]) => digest.equals(x as Buffer) && digest.equals(y as Buffer)),
    ).toBe(true);

    // Tampered at rest: the record under the token's key claims another hash. Instance b has
    // never seen this token, so it looks it up and compares.
    const key = keys.token(digest.toString('hex'));
    await redis.hset(key, 'sha256', 'ab'.repeat(32));
    const refused = await call(`${b.url}/v1/pool`, { headers: bearer(made.token) });
    expect(refused.status).toBe(401);
  });

  it('an expired token stops working, cached or not', async () => {
    const made = await makeToken(a, { kind: 'read', name: 'short', expiresInS: 1 });
    const listed = await call(`${a.url}/v1/tokens`, { headers: bearer(POOL_ADMIN) });
    const expiresAt = listed.body.tokens.find((t: { id: string }) => t.id === made.id).expiresAt as number;
    // Each instance is asked until it refuses; whatever the load, no answer to a request sent
    // after the expiry may be a 200 (a's cache, filled by its first answer, must not outlive it).
    const answers: { api: string; sentAt: number; answeredAt: number; status: number }[] = [];
    for (const api of [a, b]) {
      await waitFor(
        async () => {
          const sentAt = Date.now();
          const { status } = await call(`${api.url}/v1/pool`, { headers: bearer(made.token) });
          answers.push({ api: api.id, sentAt, answeredAt: Date.now(), status });
          return status === 401;
        },
        { timeoutMs: 5000 },
      );
    }
    expect(answers.filter((x) => x.sentAt > expiresAt && x.status !== 401)).toEqual([]);
    expect(answers.filter((x) => x.answeredAt < expiresAt && x.status !== 200)).toEqual([]);
  });
});

describe('revocation', () => {
  it('closes access on another api instance within 1 s, and tells its onRevoked listeners', async () => {
    const made = await makeToken(a, { kind: 'read', name: 'to revoke' });
    // Instance b has it cached (its cache lasts 5 s): only the published revocation can stop it.
    expect((await call(`${b.url}/v1/pool`, { headers: bearer(made.token) })).status).toBe(200);
    expect((await call(`${b.url}/v1/pool`, { headers: bearer(made.token) })).status).toBe(200);
    const heard: string[] = [];
    const stop = b.authenticator.onRevoked((id) => heard.push(id));
    const revokedAt = performance.now();
    const revoked = await call(`${a.url}/v1/tokens/${made.id}`, {
      method: 'DELETE',
      headers: bearer(POOL_ADMIN),
    });
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked).toMatchObject({ id: made.id, kind: 'read', name: 'to revoke' });
    // The revoking instance refuses it at once.
    expect((await call(`${a.url}/v1/pool`, { headers: bearer(made.token) })).status).toBe(401);
    await waitFor(() => heard.includes(made.id), { timeoutMs: 1000 });
    const deniedOnB = await call(`${b.url}/v1/pool`, { headers: bearer(made.token) });
    const elapsedMs = performance.now() - revokedAt;
    stop();
    expect(deniedOnB.status).toBe(401);
    expect(deniedOnB.body.error.message).toMatch(/unknown, expired or revoked token/);
    expect(elapsedMs).toBeLessThan(1000);
    console.log(`revocation: refused on the other instance ${elapsedMs.toFixed(1)} ms after DELETE`);
    const again = await call(`${a.url}/v1/tokens/${made.id}`, {
      method: 'DELETE',
      headers: bearer(POOL_ADMIN),
    });
    expect(again.status).toBe(404);
  });
});

describe('account tokens', () => {
  it('read only their own account; public reads need no token', async () => {
    const acct = await makeToken(a, { kind: 'account', name: 'acct', account: 'acctA' });
    const own = await call(`${a.url}/v1/chains/ltc/accounts/acctA`, { headers: bearer(acct.token) });
    expect(own.status).toBe(200);
    expect(
      (await call(`${a.url}/v1/chains/ltc/accounts/acctA/workers`, { headers: bearer(acct.token) })).status,
    ).toBe(200);
    expect(
      (
        await call(`${a.url}/v1/chains/ltc/accounts/acctA/hashrate/history`, {
          headers: bearer(acct.token),
        })
      ).status,
    ).toBe(200);
    for (const path of [
      '/v1/chains/ltc/accounts/acctB',
      '/v1/chains/ltc/accounts/acctB/workers',
      '/v1/chains/ltc/accounts/acctB/hashrate/history',
    ]) {
      const other = await call(`${a.url}${path}`, { headers: bearer(acct.token) });
      expect(other.status).toBe(403);
      expect(other.body.error).toMatchObject({ code: 'forbidden', field: 'account', in: 'path' });
      expect(other.body.error.message).toBe('this token reads only account acctA');
    }
    expect((await call(`${a.url}/v1/chains/ltc/accounts/acctB`)).status).toBe(200);
    expect((await call(`${a.url}/v1/pool`)).status).toBe(200);
    expect((await call(`${a.url}/v1/tokens`, { headers: bearer(acct.token) })).status).toBe(403);
  });
});

describe('drain through the api', () => {
  let status: StatusServer;
  let registration: ServiceRegistration;
  let drains = 0;

  beforeAll(async () => {
    status = await startStatusServer({
      portRange: [0, 0],
      health: () => ({ ok: true }),
      stats: () => ({}),
      adminToken: POOL_ADMIN,
      onDrain: () => {
        drains++;
      },
    });
    closers.push(() => status.close());
    registration = await registerService({ redis, keys, kind: 'stratum', id: 'st-1', http: status.url });
    closers.push(() => registration.close());
  });

  it('a read token cannot drain; an admin token drains the service via its status server', async () => {
    const read = await makeToken(a, { kind: 'read', name: 'reader' });
    const admin = await makeToken(a, { kind: 'admin', name: 'ops alice' });
    const denied = await call(`${a.url}/v1/services/stratum/st-1/drain`, {
      method: 'POST',
      headers: bearer(read.token),
    });
    expect(denied.status).toBe(403);
    expect(drains).toBe(0);
    const anonymous = await call(`${a.url}/v1/services/stratum/st-1/drain`, { method: 'POST' });
    expect(anonymous.status).toBe(401);

    const done = await call(`${b.url}/v1/services/stratum/st-1/drain`, {
      method: 'POST',
      headers: bearer(admin.token),
    });
    expect(done.status).toBe(202);
    expect(done.body).toEqual({ kind: 'stratum', id: 'st-1', draining: true });
    expect(drains).toBe(1);

    const unknown = await call(`${a.url}/v1/services/stratum/st-9/drain`, {
      method: 'POST',
      headers: bearer(admin.token),
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.message).toMatch(/no live stratum st-9/);
    const badKind = await call(`${a.url}/v1/services/miner/st-1/drain`, {
      method: 'POST',
      headers: bearer(admin.token),
    });
    expect(badKind.body.error).toMatchObject({ field: 'kind', in: 'path' });

    const audit = await call(`${a.url}/v1/audit?limit=50`, { headers: bearer(POOL_ADMIN) });
    const drained = audit.body.items.find((e: { type: string }) => e.type === 'admin.drain');
    expect(drained).toMatchObject({
      actor: { tokenId: admin.id, name: 'ops alice', kind: 'admin' },
      target: 'stratum st-1',
      data: { outcome: 'started' },
    });
  });

  it('answers 502 with the reason when the service refuses', async () => {
    const other = await startStatusServer({
      portRange: [0, 0],
      health: () => ({ ok: true }),
      stats: () => ({}),
      adminToken: 'another-hosts-token-0123456789',
      onDrain: () => {
        drains++;
      },
    });
    closers.push(() => other.close());
    const reg = await registerService({ redis, keys, kind: 'reporter', id: 'rp-1', http: other.url });
    closers.push(() => reg.close());
    const before = drains;
    const refused = await call(`${a.url}/v1/services/reporter/rp-1/drain`, {
      method: 'POST',
      headers: bearer(POOL_ADMIN),
    });
    expect(refused.status).toBe(502);
    expect(refused.body.error.message).toMatch(/reporter rp-1 refused the drain: .*\/drain answered 401/);
    expect(drains).toBe(before);
  });
});

describe('audit trail', () => {
  it('records each admin action with its actor, never the token, newest first and paginated', async () => {
    const admin = await makeToken(a, { kind: 'admin', name: 'auditor' });
    const made = await call(`${a.url}/v1/tokens`, {
      method: 'POST',
      headers: { ...bearer(admin.token), 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'read', name: 'audited' }),
    });
    await call(`${b.url}/v1/tokens/${made.body.id}`, { method: 'DELETE', headers: bearer(admin.token) });

    const first = await call(`${a.url}/v1/audit?limit=1`, { headers: bearer(POOL_ADMIN) });
    expect(first.status).toBe(200);
    expect(first.body.items).toEqual([
      {
        seq: expect.any(String),
        ts: expect.any(Number),
        type: 'admin.token.revoke',
        actor: { tokenId: admin.id, name: 'auditor', kind: 'admin' },
        target: made.body.id,
        data: expect.objectContaining({ kind: 'read', name: 'audited' }),
      },
    ]);
    const second = await call(`${a.url}/v1/audit?limit=1&cursor=${first.body.next}`, {
      headers: bearer(POOL_ADMIN),
    });
    expect(second.body.items[0]).toMatchObject({
      type: 'admin.token.create',
      actor: { tokenId: admin.id, name: 'auditor' },
      target: made.body.id,
    });
    // The create of `auditor` itself, by the pool admin token.
    const third = await call(`${a.url}/v1/audit?limit=1&cursor=${second.body.next}`, {
      headers: bearer(POOL_ADMIN),
    });
    expect(third.body.items[0]).toMatchObject({
      type: 'admin.token.create',
      actor: { tokenId: 'pool-admin', kind: 'admin' },
      target: admin.id,
    });
    const everything = await call(`${a.url}/v1/audit?limit=500`, { headers: bearer(POOL_ADMIN) });
    expect(everything.body.next).toBeNull();
    expect(JSON.stringify(everything.body)).not.toContain(made.body.token);
    expect(JSON.stringify(everything.body)).not.toContain(admin.token);
    expect((await call(`${a.url}/v1/audit`, { headers: bearer(made.body.token) })).status).toBe(401);
    const badCursor = await call(`${a.url}/v1/audit?cursor=zz`, { headers: bearer(POOL_ADMIN) });
    expect(badCursor.body.error).toMatchObject({ field: 'cursor', in: 'query' });
  });
});

describe('limits', () => {
  it('answers 429 in the error shape with Retry-After past the rate, per token', async () => {
    const limitedKeys = testKeys();
    const limited = await createApiService({
      id: 'api-limited',
      redis,
      keys: limitedKeys,
      chains: [{ chain: 'ltc', algorithm: 'scrypt' }],
      port: 0,
      httpPortRange: [0, 0],
      adminToken: POOL_ADMIN,
      logger: quiet,
      rateLimit: { max: 5, windowMs: 60_000 },
    });
    closers.push(() => limited.close());
    await limited.start();
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await call(`${limited.url}/v1/pool`)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    const over = await call(`${limited.url}/v1/pool`);
    expect(over.status).toBe(429);
    expect(over.body.error.code).toBe('rate_limited');
    expect(over.body.error.message).toMatch(/at most 5 per 60 s/);
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    // Guessing tokens counts against the address too.
    expect((await call(`${limited.url}/v1/pool`, { headers: bearer('hwt_guess') })).status).toBe(429);
    // A token has a budget of its own.
    expect((await call(`${limited.url}/v1/pool`, { headers: bearer(POOL_ADMIN) })).status).toBe(200);
  });

  it('refuses a body over maxBodyBytes on the admin routes, with or without a length', async () => {
    const small = await startApi('api-small', { maxBodyBytes: 256 });
    const big = JSON.stringify({ kind: 'read', name: 'x'.repeat(100), pad: 'y'.repeat(400) });
    const sized = await call(`${small.url}/v1/tokens`, {
      method: 'POST',
      headers: { ...bearer(POOL_ADMIN), 'content-type': 'application/json' },
      body: big,
    });
    expect(sized.status).toBe(413);
    expect(sized.body.error).toMatchObject({ code: 'too_large', field: 'body' });
    const chunked = await call(`${small.url}/v1/tokens`, {
      method: 'POST',
      headers: { ...bearer(POOL_ADMIN), 'content-type': 'application/json' },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(big));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
  });
});

describe('membership off loopback', () => {
  it('needs a token to write, unless openGroups or straight from loopback; reads stay public', async () => {
    const closed = await startApi('api-closed', { host: '0.0.0.0' });
    const url = closed.url as string;
    const join = await call(`${url}/v1/groups/db/db1`, { method: 'PUT' });
    expect(join.status).toBe(401);
    expect(join.body.error.message).toMatch(/openGroups: true/);
    for (const method of ['HEAD', 'DELETE']) {
      expect((await fetch(`${url}/v1/groups/db/db1`, { method })).status).toBe(401);
    }
    expect((await call(`${url}/v1/groups/db/config`, { method: 'PUT', body: 'x' })).status).toBe(401);
    const acct = await makeToken(a, { kind: 'account', name: 'acct', account: 'acctA' });
    expect(
      (await call(`${url}/v1/groups/db/db1`, { method: 'PUT', headers: bearer(acct.token) })).status,
    ).toBe(403);
    const read = await makeToken(a, { kind: 'read', name: 'member' });
    const joined = await call(`${url}/v1/groups/db/db1`, { method: 'PUT', headers: bearer(read.token) });
    expect(joined.status).toBe(200);
    expect(
      (await fetch(`${url}/v1/groups/db/db1`, { method: 'HEAD', headers: bearer(read.token) })).status,
    ).toBe(200);
    const group = await call(`${url}/v1/groups/db`);
    expect(group.status).toBe(200);
    expect(group.body.active_members).toEqual([{ db1: null }]);

    // On an api listening on loopback, a write straight from loopback is open (the seed's
    // walkthrough); one relayed by a proxy comes from off loopback and needs a token.
    expect((await call(`${a.url}/v1/groups/lo/m1`, { method: 'PUT' })).status).toBe(200);
    const relayed = await call(`${a.url}/v1/groups/lo/m2`, {
      method: 'PUT',
      headers: { 'x-forwarded-for': '203.0.113.7' },
    });
    expect(relayed.status).toBe(401);
    expect(relayed.body.error.message).toMatch(/openGroups: true/);
    expect(
      (
        await call(`${a.url}/v1/groups/lo/m2`, {
          method: 'PUT',
          headers: { forwarded: 'for=203.0.113.7', ...bearer(read.token) },
        })
      ).status,
    ).toBe(200);

    const open = await startApi('api-open', { host: '0.0.0.0', openGroups: true });
    expect((await call(`${open.url}/v1/groups/db/db2`, { method: 'PUT' })).status).toBe(200);
  });
});
