import type { PoolEvent } from '@hashwire/protocol';
import { appendEvent, connectRedis } from '@hashwire/registry';
import { startRedis } from '@hashwire/testkit';
import { expect, it } from 'vitest';
import { testKeys } from '../../reporter/test/helpers.js';
import { createEventTail } from '../src/event-tail.js';
import { appendNumbered } from './stream-helpers.js';

it('caughtUp() resolves once every event appended before it reached the listeners, in order', async () => {
  const server = await startRedis();
  const redis = connectRedis(server.url, 'event-tail-test');
  const keys = testKeys();
  const tail = createEventTail({ redis, keys, chains: ['ltc'] });
  try {
    await appendEvent(redis, keys, 'service.stratum.up', { kind: 'stratum', id: 'before' });
    tail.start();
    await tail.ready();
    const got: PoolEvent[] = [];
    tail.subscribe((e) => got.push(e));
    // Already caught up: nothing appended since the tail pinned its start.
    await tail.caughtUp();
    expect(got).toEqual([]);

    const appended: [string, string][] = [];
    for (let i = 0; i < 200; i++) {
      const stream = i % 2 === 0 ? 'ltc' : 'pool';
      const seq = await appendNumbered(redis, keys, stream, i);
      appended.push([stream, seq]);
    }
    await tail.caughtUp();
    for (const stream of ['ltc', 'pool'])
      expect(got.filter((e) => e.stream === stream).map((e) => e.seq)).toEqual(
        appended.filter(([s]) => s === stream).map(([, seq]) => seq),
      );
  } finally {
    await tail.close();
    redis.disconnect();
    await server.stop();
  }
});
