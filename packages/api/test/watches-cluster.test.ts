import { createLogger } from '@hashwire/core';
import { EventType } from '@hashwire/protocol';
import { appendEvent, connectRedis } from '@hashwire/registry';
import { startRedisCluster, waitFor } from '@hashwire/testkit';
import { describe, expect, it } from 'vitest';
import { testKeys } from '../../reporter/test/helpers.js';
import { createApiService } from '../src/index.js';
import { call } from './helpers.js';
import { ADMIN_TOKEN, admin, poolEvents, startWebhook, waitForCount } from './watch-helpers.js';

// Every watch script keeps to one slot (the watch's hash and its outbox share the id's tag):
// registration, delivery, the ws outbox and removal run on a Cluster without CROSSSLOT.

describe('watches on Redis Cluster', () => {
  it('registers, delivers (webhook and ws outbox) and removes', async () => {
    const cluster = await startRedisCluster({ masters: 3 });
    const redis = connectRedis({ cluster: cluster.nodes });
    const keys = testKeys();
    const hook = await startWebhook();
    const api = await createApiService({
      id: 'api-wc',
      redis,
      keys,
      chains: [{ chain: 'ltc', algorithm: 'scrypt' }],
      port: 0,
      httpPortRange: [0, 0],
      adminToken: ADMIN_TOKEN,
      watches: { leaseMs: 1000 },
      logger: createLogger({ name: 'api-test', level: 'silent' }),
    });
    try {
      await api.start();
      const register = (endpoint: string) =>
        call(`${api.url}/v1/watches`, {
          method: 'POST',
          headers: admin,
          body: JSON.stringify({ pattern: 'block.*', endpoint }),
        });
      const http = await register(`${hook.url}/c`);
      const ws = await register('ws');
      expect([http.status, ws.status]).toEqual([201, 201]);
      const seqs: string[] = [];
      for (let height = 1; height <= 5; height++) {
        seqs.push(
          await appendEvent(
            redis,
            keys,
            EventType.BlockAccepted,
            { chain: 'ltc', hash: `h${height}`, height, state: 'accepted' },
            'ltc',
          ),
        );
        await appendEvent(redis, keys, EventType.JobNew, { chain: 'ltc' }, 'ltc');
      }
      const got = await waitForCount(hook.delivered, 5, '5 webhook deliveries');
      expect(got.map((h) => h.body.seq)).toEqual(seqs);
      const outbox = await waitForCount(
        async () => (await redis.xrange(keys.watchOutbox(ws.body.id), '-', '+')) as [string, string[]][],
        5,
        '5 outbox entries',
      );
      expect(outbox.map(([, f]) => f[f.indexOf('seq') + 1])).toEqual(seqs);
      const del = await call(`${api.url}/v1/watches/${ws.body.id}`, { method: 'DELETE', headers: admin });
      expect(del.status).toBe(200);
      await waitFor(async () => (await poolEvents(redis, keys, 'watch.removed')).length === 1, {
        what: 'watch.removed',
      });
      expect(await redis.exists(keys.watchOutbox(ws.body.id))).toBe(0);
    } finally {
      await api.close();
      await hook.close();
      redis.disconnect();
      await cluster.stop();
    }
  }, 90_000);
});
