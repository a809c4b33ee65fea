import { createStream } from '@hashwire/client';
import { createLogger } from '@hashwire/core';
import { connectRedis } from '@hashwire/registry';
import { startRedisCluster } from '@hashwire/testkit';
import { describe, expect, it } from 'vitest';
import { testKeys } from '../../reporter/test/helpers.js';
import { createApiService } from '../src/index.js';
import { CuttableWebSocket, appendNumbered, record, waitFor } from './stream-helpers.js';

// The stream's streams live in different slots (one per chain, one for the pool): on a Cluster
// every read stays within one slot, and a resume catches up on each.

describe('live stream on Redis Cluster', () => {
  it('subscribes, is cut mid-flow and resumes with every event once, in order', async () => {
    const cluster = await startRedisCluster({ masters: 3 });
    const redis = connectRedis({ cluster: cluster.nodes });
    const keys = testKeys();
    const api = await createApiService({
      id: 'api-sc',
      redis,
      keys,
      chains: [
        { chain: 'ltc', algorithm: 'scrypt' },
        { chain: 'btc', algorithm: 'sha256d' },
      ],
      port: 0,
      httpPortRange: [0, 0],
      logger: createLogger({ name: 'api-test', level: 'silent' }),
    });
    try {
      await api.start();
      const client = createStream({
        url: api.url!,
        topics: ['pool', '*'],
        WebSocket: CuttableWebSocket,
        backoffMs: 20,
      });
      try {
        const seen = record(client);
        const snapshot = new Promise<{ state: Record<string, unknown> }>((resolve) =>
          client.on('snapshot', resolve),
        );
        expect((await snapshot).state.pool).toMatchObject({ chains: [{ chain: 'ltc' }, { chain: 'btc' }] });
        const appended: Record<string, string[]> = { ltc: [], btc: [], pool: [] };
        const streams = ['ltc', 'btc', 'pool'] as const;
        const TOTAL = 300;
        const producer = (async () => {
          for (let i = 0; i < TOTAL; i++) {
            const s = streams[i % 3]!;
            const id = await appendNumbered(redis, keys, s, i);
            appended[s]!.push(id);
          }
        })();
        await waitFor('100 events', () => seen.events.length >= 100);
        expect(CuttableWebSocket.cutAll()).toBe(1);
        await client.until('connected');
        await producer;
        await waitFor('every event', () => seen.events.length >= TOTAL);
        for (const s of streams)
          expect(seen.events.filter((e) => e.stream === s).map((e) => e.seq)).toEqual(appended[s]);
        expect(seen.events).toHaveLength(TOTAL);
        expect(seen.states).toContain('catching-up');
      } finally {
        client.close();
      }
    } finally {
      await api.close();
      redis.disconnect();
      await cluster.stop();
    }
  });
});
