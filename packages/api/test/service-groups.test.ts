import { createLogger } from '@hashwire/core';
import type { KeyBuilder } from '@hashwire/protocol';
import {
  type RedisClient,
  type ServiceRegistration,
  connectRedis,
  registerService,
} from '@hashwire/registry';
import { type RedisServer, startRedis } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testKeys } from '../../reporter/test/helpers.js';
import { type ApiService, createApiService } from '../src/index.js';
import { call } from './helpers.js';

// The pool's own services as members of their kind's group: listed from the registry,
// read-only, and the group version moving when they come, change or go.

const quiet = createLogger({ name: 'api-test', level: 'silent' });
let server: RedisServer;
let redis: RedisClient;
let keys: KeyBuilder;
let api: ApiService;
let base: string;
const registrations: ServiceRegistration[] = [];

const version = (headers: Headers) => Number(headers.get('x-group-version'));
const ids = (body: { active_members: Record<string, unknown>[] }) =>
  body.active_members.map((m) => Object.keys(m)[0]);

function stratum(id: string, port: number): Promise<ServiceRegistration> {
  return registerService({
    redis,
    keys,
    kind: 'stratum',
    id,
    chain: 'ltc',
    version: '0.1.0',
    http: `http://127.0.0.1:${port + 6000}`,
    stratum: `127.0.0.1:${port}`,
    measureLoad: () => ({ sessions: 7, connections: 8 }),
  }).then((r) => {
    registrations.push(r);
    return r;
  });
}

beforeAll(async () => {
  server = await startRedis();
  redis = connectRedis(server.url, 'api-test');
  keys = testKeys();
  api = await createApiService({
    id: 'api-1',
    redis,
    keys,
    chains: [{ chain: 'ltc', algorithm: 'scrypt' }],
    port: 0,
    httpPortRange: [0, 0],
    logger: quiet,
  });
  await api.start();
  base = `${api.url}/v1/groups`;
});

afterAll(async () => {
  await Promise.all(registrations.map((r) => r.close().catch(() => {})));
  await api?.close();
  redis?.disconnect();
  await server?.stop();
});

describe('service-backed groups', () => {
  it("lists the registry's live services of the group's kind beside its HTTP members", async () => {
    await stratum('stratum-ltc-1', 23001);
    await stratum('stratum-ltc-2', 23002);
    const joined = await call(`${base}/stratum/watcher-1`, { method: 'PUT', body: '{"role":"monitor"}' });
    expect(joined.status).toBe(200);
    const group = await call(`${base}/stratum`);
    expect(group.status).toBe(200);
    expect(ids(group.body)).toEqual(['stratum-ltc-1', 'stratum-ltc-2', 'watcher-1']);
    expect(group.body.active_members[0]['stratum-ltc-1']).toMatchObject({
      pool_service: true,
      kind: 'stratum',
      chain: 'ltc',
      state: 'up',
      version: '0.1.0',
      url: 'stratum+tcp://127.0.0.1:23001',
      // Where miners connect; its status port is not for whoever reads a group.
      endpoints: { stratum: '127.0.0.1:23001' },
    });
    expect(group.body.active_members[2]).toEqual({ 'watcher-1': { role: 'monitor' } });
    expect(version(group.headers)).toBe(group.body.version);

    // The api group lists the api instance itself, with its URL.
    const apis = await call(`${base}/api`);
    expect(apis.body.active_members).toEqual([
      { 'api-1': expect.objectContaining({ pool_service: true, kind: 'api', url: api.url }) },
    ]);
    // A group named otherwise has only its HTTP members.
    expect(ids((await call(`${base}/database`)).body)).toEqual([]);
  });

  it('moves the version when a service comes, drains or goes, and only then', async () => {
    const v0 = version((await call(`${base}/reporter`)).headers);
    // Nothing changed: same version, on GET and on a member's HEAD heartbeat.
    expect(version((await call(`${base}/reporter`)).headers)).toBe(v0);
    await call(`${base}/reporter/watcher-2`, { method: 'PUT' });
    const v1 = version((await call(`${base}/reporter`)).headers);
    expect(v1).toBeGreaterThan(v0);
    expect(version((await call(`${base}/reporter/watcher-2`, { method: 'HEAD' })).headers)).toBe(v1);

    const reporter = await registerService({
      redis,
      keys,
      kind: 'reporter',
      id: 'reporter-ltc-1',
      chain: 'ltc',
    });
    registrations.push(reporter);
    // A member heartbeating learns of it from the header alone.
    const v2 = version((await call(`${base}/reporter/watcher-2`, { method: 'HEAD' })).headers);
    expect(v2).toBeGreaterThan(v1);
    const withIt = await call(`${base}/reporter`);
    expect(withIt.body.version).toBe(v2);
    expect(ids(withIt.body)).toEqual(['reporter-ltc-1', 'watcher-2']);

    await reporter.update({ state: 'draining' });
    const draining = await call(`${base}/reporter`);
    expect(draining.body.version).toBeGreaterThan(v2);
    expect(draining.body.active_members[0]['reporter-ltc-1']).toMatchObject({
      state: 'draining',
      url: null,
      endpoints: {},
    });

    await reporter.close();
    const gone = await call(`${base}/reporter`);
    expect(gone.body.version).toBeGreaterThan(draining.body.version);
    expect(ids(gone.body)).toEqual(['watcher-2']);
  });

  it('refuses to join, heartbeat, configure or remove a service member over HTTP: 409 naming it', async () => {
    await stratum('stratum-ltc-9', 23009);
    const before = await call(`${base}/stratum`);
    for (const [method, path, body] of [
      ['PUT', 'stratum-ltc-9', '{"x":1}'],
      ['DELETE', 'stratum-ltc-9', undefined],
      ['PUT', 'stratum-ltc-9/config', 'cfg'],
      ['GET', 'stratum-ltc-9', undefined],
    ] as const) {
      const refused = await call(`${base}/stratum/${path}`, { method, ...(body && { body }) });
      expect(refused.status, `${method} ${path}`).toBe(409);
      expect(refused.body.error).toMatchObject({ code: 'pool_service', field: 'member', in: 'path' });
      expect(refused.body.error.message).toMatch(
        /^path member: stratum-ltc-9 is a stratum of the pool \(stratum\+tcp:\/\/127\.0\.0\.1:23009\); its membership is the registry's/,
      );
    }
    expect((await call(`${base}/stratum/stratum-ltc-9`, { method: 'HEAD' })).status).toBe(409);
    // Nothing changed: not in the inactive list, same version, still listed as a service.
    const after = await call(`${base}/stratum`);
    expect(after.body.version).toBe(before.body.version);
    expect(after.body.inactive_members).toEqual(before.body.inactive_members);
    expect(after.body.active_members).toEqual(before.body.active_members);
  });
});
