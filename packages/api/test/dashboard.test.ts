import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createLogger } from '@hashwire/core';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { type RedisServer, getFreePort, startHaproxy, startRedis } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testKeys } from '../../reporter/test/helpers.js';
import { type ApiService, type ApiServiceOptions, createApiService } from '../src/index.js';
import { call } from './helpers.js';

// The dashboard's pages and assets as an api instance serves them, and /v1/whoami, which the
// operator page asks before it shows admin actions. Real Redis, real HTTP.

const POOL_ADMIN = 'pool-admin-token-0123456789abcdef';
const quiet = createLogger({ name: 'api-dashboard-test', level: 'silent' });
let server: RedisServer;
let redis: RedisClient;
const closers: (() => Promise<unknown> | unknown)[] = [];
let built: string;

async function startApi(extra: Partial<ApiServiceOptions> = {}): Promise<ApiService> {
  const api = await createApiService({
    id: `api-${closers.length}`,
    redis,
    keys: testKeys(),
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

beforeAll(async () => {
  server = await startRedis();
  redis = connectRedis(server.url, 'dashboard-test');
  // A build of its own: the test does not depend on packages/dashboard having been built.
  built = mkdtempSync(join(tmpdir(), 'hw-dashboard-build-'));
  writeFileSync(
    join(built, 'index.html'),
    '<!doctype html><title>t</title><script src="/assets/app.abc.js"></script>',
  );
  writeFileSync(join(built, 'app.abc.js'), `console.log(${JSON.stringify('x'.repeat(2000))});`);
  writeFileSync(join(built, 'app.abc.css'), 'body{color:#000}');
  writeFileSync(join(built, 'manifest.json'), '{}');
});

afterAll(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  redis.disconnect();
  await server.stop();
  rmSync(built, { recursive: true, force: true });
});

describe('dashboard routes', () => {
  it('serves the same page at /, /account/<address> and /operator, never cached, same-origin only', async () => {
    const api = await startApi({ dashboardDir: built });
    const page = readFileSync(join(built, 'index.html'), 'utf8');
    for (const path of ['/', '/account/ltc1qexample.with.dots', '/account/', '/operator']) {
      const res = await fetch(`${api.url}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(res.headers.get('cache-control')).toBe('no-cache');
      expect(res.headers.get('content-security-policy')).toContain("default-src 'none'; script-src 'self'");
      expect(await res.text()).toBe(page);
    }
  });

  it('serves hashed assets for a year, gzipped when asked; an unknown asset is a 404 in the API error shape', async () => {
    const api = await startApi({ dashboardDir: built });
    const js = readFileSync(join(built, 'app.abc.js'));
    const plain = await fetch(`${api.url}/assets/app.abc.js`, { headers: { 'accept-encoding': 'identity' } });
    expect(plain.status).toBe(200);
    expect(plain.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(plain.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(Buffer.from(await plain.arrayBuffer())).toEqual(js);
    // node's fetch decodes gzip itself; a raw request shows what went over the wire.
    const { request } = await import('node:http');
    const wire = await new Promise<{ encoding: string | undefined; body: Buffer }>((resolve, reject) => {
      const req = request(
        `${api.url}/assets/app.abc.js`,
        { headers: { 'accept-encoding': 'gzip' } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ encoding: res.headers['content-encoding'], body: Buffer.concat(chunks) }),
          );
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(wire.encoding).toBe('gzip');
    expect(wire.body.length).toBeLessThan(js.length);
    expect(gunzipSync(wire.body)).toEqual(js);
    for (const name of ['nope.js', 'index.html', 'manifest.json']) {
      const missing = await call(`${api.url}/assets/${name}`);
      expect(missing.status, name).toBe(404);
      expect(missing.body.error.code).toBe('not_found');
    }
  });

  it('says how to build the dashboard when there is no build, and serves none with dashboardDir: false', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'hw-dashboard-empty-'));
    closers.push(() => rmSync(empty, { recursive: true, force: true }));
    const unbuilt = await startApi({ dashboardDir: empty });
    const res = await fetch(`${unbuilt.url}/`);
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(/dashboard is not built: run `pnpm build`/);
    const none = await startApi({ dashboardDir: false });
    expect((await call(`${none.url}/`)).status).toBe(404);
    // The API itself is unaffected.
    expect((await call(`${none.url}/v1/pool`)).status).toBe(200);
  });
});

describe('GET /v1/whoami', () => {
  it('names the kind of the request’s token: public, admin, read, account; a bad token is a 401', async () => {
    const api = await startApi();
    const make = async (body: Record<string, unknown>) =>
      (
        await call(`${api.url}/v1/tokens`, {
          method: 'POST',
          headers: { authorization: `Bearer ${POOL_ADMIN}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        })
      ).body as { id: string; token: string };
    const read = await make({ kind: 'read', name: 'reader' });
    const account = await make({ kind: 'account', name: 'acct', account: 'ltc1qabc' });
    const who = (token?: string) =>
      call(`${api.url}/v1/whoami`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    expect((await who()).body).toEqual({ kind: 'public' });
    expect((await who(read.token)).body).toEqual({ kind: 'read', tokenId: read.id, name: 'reader' });
    expect((await who(account.token)).body).toEqual({
      kind: 'account',
      tokenId: account.id,
      name: 'acct',
      account: 'ltc1qabc',
    });
    expect((await who(POOL_ADMIN)).body).toMatchObject({ kind: 'admin' });
    const bad = await who('hwt_not-a-token');
    expect(bad.status).toBe(401);
  });
});

describe('GET /v1/haproxy and /v1/quarantine (admin)', () => {
  it('lists HAProxy’s servers from its runtime socket; 503 without a socket; 401 without a token', async () => {
    const [front, backendPort] = await Promise.all([getFreePort(), getFreePort()]);
    const haproxy = await startHaproxy(
      `defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\nfrontend web\n  bind 127.0.0.1:${front}\n  default_backend api\nbackend api\n  server api-x 127.0.0.1:${backendPort}\n`,
    );
    closers.push(() => haproxy.stop());
    const api = await startApi({ haproxyStatsSocket: haproxy.statsSocket });
    const admin = { headers: { authorization: `Bearer ${POOL_ADMIN}` } };
    const listed = await call(`${api.url}/v1/haproxy`, admin);
    expect(listed.status).toBe(200);
    expect(listed.body.servers).toEqual([
      expect.objectContaining({ backend: 'api', name: 'api-x', weight: 1 }),
    ]);
    expect((await call(`${api.url}/v1/haproxy`)).status).toBe(401);
    const without = await startApi();
    const refused = await call(`${without.url}/v1/haproxy`, admin);
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('not_configured');
    // No stratum server in discovery: an empty list, not an error.
    expect((await call(`${api.url}/v1/quarantine`, admin)).body).toEqual({ servers: [] });
  });
});

describe('GET /v1/connect', () => {
  it('answers each chain’s public stratum addresses, a wildcard host as null, publicly', async () => {
    const api = await startApi({
      stratumFronts: [
        { chain: 'ltc', scheme: 'stratum+tcp', bind: ':3333' },
        { chain: 'ltc', scheme: 'stratum+ssl', bind: 'pool.example.org:3443' },
        { chain: 'ltc', scheme: 'stratum+tcp', bind: '[2001:db8::1]:3334' },
      ],
    });
    expect((await call(`${api.url}/v1/connect`)).body).toEqual({
      fronts: [
        { chain: 'ltc', scheme: 'stratum+tcp', host: null, port: 3333 },
        { chain: 'ltc', scheme: 'stratum+ssl', host: 'pool.example.org', port: 3443 },
        { chain: 'ltc', scheme: 'stratum+tcp', host: '2001:db8::1', port: 3334 },
      ],
    });
    const none = await startApi();
    expect((await call(`${none.url}/v1/connect`)).body).toEqual({ fronts: [] });
  });
});
