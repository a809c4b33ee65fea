import { Membership, NotMemberError, type RedisClient, connectRedis } from '@hashwire/registry';
import { type RedisServer, startRedis, waitFor } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextEvent, testKeys } from './helpers.js';

let server: RedisServer;
let redis: RedisClient;

beforeAll(async () => {
  server = await startRedis();
  redis = connectRedis(server.url);
});
afterAll(async () => {
  redis.disconnect();
  await server.stop();
});

describe('membership groups', () => {
  it('follows the tracker workflow: join, heartbeat, a second member, expiry by timeout', async () => {
    const m = new Membership(redis, testKeys());
    const v0 = await m.join('database', 'db1', { timeoutMs: 10_000, config: '{"opaque":"metadata"}' });
    expect(v0.active).toEqual([{ id: 'db1', config: '{"opaque":"metadata"}' }]);
    expect(await m.heartbeat('database', 'db1')).toBe(v0.version);

    const v1 = await m.join('database', 'db2', { timeoutMs: 300 });
    expect(v1.version).toBeGreaterThan(v0.version);
    expect(v1.active.map((a) => a.id).sort()).toEqual(['db1', 'db2']);
    // db1 learns of the change from the version its next heartbeat returns.
    expect(await m.heartbeat('database', 'db1')).toBe(v1.version);

    // db2 stops heartbeating: once its timeout passes it is dropped and the version moves.
    await waitFor(async () => (await m.heartbeat('database', 'db1')) > v1.version, {
      timeoutMs: 5000,
      what: 'db2 to expire',
    });
    const v2 = await m.get('database');
    expect(v2.active.map((a) => a.id)).toEqual(['db1']);
    await expect(m.heartbeat('database', 'db2')).rejects.toThrow(NotMemberError);
  });

  it('keeps member configs persistent, settable before joining, and lists inactive members', async () => {
    const m = new Membership(redis, testKeys());
    await m.join('g', 'db1');
    await m.setMemberConfig('g', 'db1', 'db1 config');
    const before = await m.setMemberConfig('g', 'db2', 'db2 config');
    expect(before.active).toEqual([{ id: 'db1', config: 'db1 config' }]);
    expect(before.inactive).toEqual([{ id: 'db2', config: 'db2 config' }]);

    const withConfig = await m.setGroupConfig('g', 'group config');
    expect(withConfig.version).toBe(before.version + 1);
    expect(withConfig.config).toBe('group config');

    const joined = await m.join('g', 'db2');
    expect(joined.active.map((a) => a.id).sort()).toEqual(['db1', 'db2']);
    expect(joined.active.find((a) => a.id === 'db2')?.config).toBe('db2 config');
    expect(joined.inactive).toEqual([]);

    const left = await m.leave('g', 'db2');
    expect(left.version).toBe(joined.version + 1);
    expect(left.inactive).toEqual([{ id: 'db2', config: 'db2 config' }]);
  });

  it('bumps the version on every change and never on a no-op', async () => {
    const m = new Membership(redis, testKeys());
    const a = await m.join('g', 'x');
    const b = await m.join('g', 'x');
    expect(b.version).toBe(a.version);
    const c = await m.setGroupConfig('g', 'same');
    const d = await m.setGroupConfig('g', 'same');
    expect(d.version).toBe(c.version);
    const e = await m.setGroupConfig('g', null);
    expect(e.version).toBe(d.version + 1);
    expect(e.config).toBeNull();
  });

  it('a group member heartbeats by itself, sees changes, and rejoins after being dropped', async () => {
    const keys = testKeys();
    const m = new Membership(redis, keys);
    const member = await m.member('g', 'me', { timeoutMs: 300 });
    const changed = nextEvent<{ active: { id: string }[] }>(
      member,
      'changed',
      (v) => v.active.some((a) => a.id === 'other'),
      3000,
    );
    await m.join('g', 'other', { timeoutMs: 60_000 });
    await changed;
    // Drop it behind its back (as a Redis restart would): its next heartbeat rejoins.
    await redis.zrem(keys.group('g', 'members'), 'me');
    await nextEvent<{ active: { id: string }[] }>(
      member,
      'changed',
      (v) => v.active.some((a) => a.id === 'me'),
      3000,
    );
    await member.leave();
    expect((await m.get('g')).active.map((a) => a.id)).toEqual(['other']);
  });

  it('refuses a nonsensical timeout, naming it', async () => {
    const m = new Membership(redis, testKeys());
    await expect(m.join('g', 'x', { timeoutMs: -5 })).rejects.toThrow(/timeoutMs must be a positive integer/);
  });
});
