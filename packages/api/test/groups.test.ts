import { type RedisServer, startRedis, waitFor } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testKeys } from '../../reporter/test/helpers.js';
import { type ApiProcess, call, spawnApi } from './helpers.js';

// The seed's (002) curl walkthrough, with fetch, against two api processes on one Redis.

let server: RedisServer;
let a: ApiProcess;
let b: ApiProcess;
const started: ApiProcess[] = [];

const version = (headers: Headers) => Number(headers.get('x-group-version'));

beforeAll(async () => {
  server = await startRedis();
  const prefix = testKeys().prefix;
  const config = (id: string) => ({
    id,
    redisUrl: server.url,
    keyPrefix: prefix,
    chains: [{ chain: 'ltc', algorithm: 'scrypt' }],
    port: 0,
    httpPortRange: [0, 0],
    // A killed instance leaves the endpoint list within about this.
    serviceTtlMs: 2000,
    logLevel: 'warn',
  });
  a = await spawnApi(config('api-a'));
  started.push(a);
  b = await spawnApi(config('api-b'));
  started.push(b);
});

afterAll(async () => {
  for (const p of started) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
    await p.exited;
  }
  await server?.stop();
});

describe('membership groups over HTTP (seeds/002)', () => {
  it('follows the walkthrough: join, heartbeat, version bumps, expiry, configs, active and inactive lists', async () => {
    const A = `${a.ready.url}/v1/groups/database`;
    const B = `${b.ready.url}/v1/groups/database`;

    // join the database group; the group is created. Default timeout 10 s.
    const join1 = await call(`${A}/db1.example.com`, { method: 'PUT', body: '{"opaque": "metadata"}' });
    expect(join1.status).toBe(200);
    const v0 = version(join1.headers);
    expect(join1.body).toMatchObject({
      config: null,
      endpoints: [a.ready.url, b.ready.url].sort(),
      active_members: [{ 'db1.example.com': { opaque: 'metadata' } }],
      inactive_members: [],
    });
    expect(join1.body.version).toBe(v0);

    // heartbeat with HEAD: same version, nothing changed.
    const beat = await call(`${A}/db1.example.com`, { method: 'HEAD' });
    expect(beat.status).toBe(200);
    expect(version(beat.headers)).toBe(v0);

    // another member joins, through the other instance, with no metadata. With the default
    // timeout: the checks below must see it still joined, and with a 1 s timeout they raced its
    // expiry (join to GET took up to 851 ms with the machine busy).
    const join2 = await call(`${B}/db2.example.com`, { method: 'PUT' });
    const v1 = version(join2.headers);
    expect(v1).toBeGreaterThan(v0);
    expect(join2.body.active_members).toEqual([
      { 'db1.example.com': { opaque: 'metadata' } },
      { 'db2.example.com': null },
    ]);

    // db1 finds out the group changed from its next heartbeat; GET gives the new group.
    expect(version((await call(`${A}/db1.example.com`, { method: 'HEAD' })).headers)).toBe(v1);
    const got = await call(`${A}/db1.example.com`);
    expect(version(got.headers)).toBe(v1);
    expect(got.body.active_members).toHaveLength(2);

    // db2 joins again with a 1 s timeout: the same members, so the same version.
    const shortened = await call(`${B}/db2.example.com?timeout=1`, { method: 'PUT' });
    expect(shortened.status).toBe(200);
    expect(version(shortened.headers)).toBe(v1);

    // db2 stops heartbeating: after its timeout it is dropped and the version moves; db1 sees it.
    const v2 = await waitFor(
      async () => {
        const v = version((await call(`${A}/db1.example.com`, { method: 'HEAD' })).headers);
        return v > v1 ? v : undefined;
      },
      { timeoutMs: 30_000, what: 'db2 to expire' },
    );
    const afterExpiry = await call(`${A}/db1.example.com`);
    expect(afterExpiry.body.active_members).toEqual([{ 'db1.example.com': { opaque: 'metadata' } }]);
    expect(version(afterExpiry.headers)).toBe(v2);
    const stale = await call(`${B}/db2.example.com`, { method: 'HEAD' });
    expect(stale.status).toBe(404);
    const staleGet = await call(`${B}/db2.example.com`);
    expect(staleGet.body.error).toMatchObject({ code: 'not_member', field: 'member' });

    // configure db1 and db2; a member may be configured before it joins.
    const c1 = await call(`${A}/db1.example.com/config`, { method: 'PUT', body: 'db1 config' });
    const c2 = await call(`${B}/db2.example.com/config`, { method: 'PUT', body: 'db2 config' });
    expect(version(c1.headers)).toBeGreaterThan(v2);
    expect(version(c2.headers)).toBeGreaterThan(version(c1.headers));
    const configured = await call(`${A}/db1.example.com`);
    expect(configured.body).toMatchObject({
      config: null,
      active_members: [{ 'db1.example.com': 'db1 config' }],
      inactive_members: [{ 'db2.example.com': 'db2 config' }],
    });

    // group-wide configuration
    const groupConfig = await call(`${B}/config`, { method: 'PUT', body: 'group config' });
    expect(version(groupConfig.headers)).toBe(version(c2.headers) + 1);
    expect(groupConfig.body).toMatchObject({
      config: 'group config',
      active_members: [{ 'db1.example.com': 'db1 config' }],
      inactive_members: [{ 'db2.example.com': 'db2 config' }],
    });
    // the same config again is no change
    const same = await call(`${A}/config`, { method: 'PUT', body: 'group config' });
    expect(version(same.headers)).toBe(version(groupConfig.headers));

    // leaving keeps the config: the member is listed inactive.
    const left = await call(`${B}/db1.example.com`, { method: 'DELETE' });
    expect(version(left.headers)).toBe(version(groupConfig.headers) + 1);
    expect(left.body.active_members).toEqual([]);
    expect(left.body.inactive_members).toEqual([
      { 'db1.example.com': 'db1 config' },
      { 'db2.example.com': 'db2 config' },
    ]);
    const whole = await call(`${A}`);
    expect(whole.body.version).toBe(version(left.headers));
  });

  it('keeps a session alive through another instance when the one it joined through is killed', async () => {
    const G = (p: ApiProcess) => `${p.ready.url}/v1/groups/workers`;
    const timeoutS = 5;
    const joined = await call(`${G(a)}/w1?timeout=${timeoutS}`, { method: 'PUT', body: 'w1 meta' });
    expect(joined.status).toBe(200);
    const control = await call(`${G(a)}/w2?timeout=${timeoutS}`, { method: 'PUT' });
    const joinedVersion = version(control.headers);

    a.child.kill('SIGKILL');
    await a.exited;
    const killedAt = Date.now();

    // w1 keeps heartbeating through b for well past its timeout: every beat is answered,
    // w1 stays active. w2, silent, expires (so time really passed its timeout).
    await waitFor(
      async () => {
        const beat = await call(`${G(b)}/w1`, { method: 'HEAD' });
        expect(beat.status).toBe(200);
        return Date.now() - killedAt > 2 * timeoutS * 1000;
      },
      { timeoutMs: 60_000, intervalMs: 250, what: 'two timeouts of heartbeats through b' },
    );
    const view = await call(`${G(b)}/w1`);
    expect(view.status).toBe(200);
    expect(view.body.active_members).toEqual([{ w1: 'w1 meta' }]);
    expect(version(view.headers)).toBeGreaterThan(joinedVersion); // w2's expiry
    // the dead instance leaves the endpoints once its registry entry expires
    await waitFor(
      async () => {
        const g = await call(`${G(b)}/w1`);
        return g.body.endpoints.length === 1 && g.body.endpoints[0] === b.ready.url;
      },
      { timeoutMs: 30_000, what: 'the killed instance to leave the endpoints' },
    );
  });
});
