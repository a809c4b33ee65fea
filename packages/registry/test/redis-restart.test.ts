import {
  Membership,
  type RedisClient,
  type ServiceEvent,
  connectRedis,
  leaseLeadership,
  registerService,
  watchServices,
} from '@hashwire/registry';
import { type RedisServer, startRedis, waitFor } from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextEvent, testKeys } from './helpers.js';

let server: RedisServer;

beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server.stop();
});

describe('a Redis restart while services run', () => {
  it('keeps peers known, re-registers within seconds, and never crashes', async () => {
    const keys = testKeys();
    const serviceSide: RedisClient = connectRedis(server.url, 'service');
    const watcherSide: RedisClient = connectRedis(server.url, 'watcher');
    const reg = await registerService({ redis: serviceSide, keys, kind: 'stratum', id: 's1', ttlMs: 60_000 });
    const watcher = watchServices({ redis: watcherSide, keys, kind: 'stratum', reconcileMs: 100 });
    const downs: ServiceEvent[] = [];
    watcher.on('event', (e) => {
      if (e.type === 'down') downs.push(e);
    });
    await watcher.ready;
    const leader = leaseLeadership({ redis: serviceSide, keys, group: 'jm:ltc', holder: 'A', ttlMs: 3000 });
    await leader.start();
    const membership = new Membership(serviceSide, keys);
    const member = await membership.member('pool', 's1', { timeoutMs: 1500 });

    // The member rejoins on its next heartbeat: listened for from before the restart, since that
    // heartbeat may come before the re-registration below is seen.
    const rejoined = nextEvent(
      member,
      'changed',
      (v: { active: { id: string }[] }) => v.active.some((a) => a.id === 's1'),
      20_000,
    );
    // The test redis keeps nothing on disk: after the restart every key is gone.
    await server.restart();
    expect(watcher.services.has('s1')).toBe(true);

    // The registration puts its hash back as soon as the connection is ready again.
    await waitFor(
      async () => (await watcherSide.exists(keys.service('stratum', 's1')).catch(() => 0)) === 1,
      { timeoutMs: 10_000, what: 're-registration' },
    );
    await rejoined;
    // The leader either kept or retook the lease; a leader exists again.
    await waitFor(async () => (await watcherSide.get(keys.lease('jm:ltc')).catch(() => null)) !== null, {
      timeoutMs: 10_000,
      what: 'a leader',
    });

    // Through all of it the watcher never reported the service down.
    expect(downs).toEqual([]);
    expect(watcher.services.has('s1')).toBe(true);

    await member.leave();
    await leader.close();
    await watcher.close();
    await reg.close();
    serviceSide.disconnect();
    watcherSide.disconnect();
  });
});
