import { createLogger } from '@hashwire/core';
import { EventType } from '@hashwire/protocol';
import { appendEvent, connectRedis } from '@hashwire/registry';
import { startRedis, waitFor } from '@hashwire/testkit';
import { describe, expect, it } from 'vitest';
import { testKeys } from '../../reporter/test/helpers.js';
import { createApiService } from '../src/index.js';
import { call } from './helpers.js';
import { ADMIN_TOKEN, admin, startWebhook, waitForCount } from './watch-helpers.js';

// Redis restarts (append-only file kept) while a webhook holds a delivery open and then fails
// it: the watch goes on from its cursor once Redis is back, in order, nothing skipped.

describe('watch delivery across a Redis restart', () => {
  it('loses and skips nothing', async () => {
    const server = await startRedis({ appendonly: true });
    const redis = connectRedis(server.url, 'api-watch-restart');
    const keys = testKeys();
    const hook = await startWebhook();
    const api = await createApiService({
      id: 'api-rr',
      redis,
      keys,
      chains: [{ chain: 'ltc', algorithm: 'scrypt' }],
      port: 0,
      httpPortRange: [0, 0],
      adminToken: ADMIN_TOKEN,
      watches: { leaseMs: 1500, retryBaseMs: 50, retryMaxDelayMs: 200 },
      logger: createLogger({ name: 'api-test', level: 'silent' }),
    });
    let holdOnce = true;
    hook.setAnswer((h) => {
      if (h.body.data.height !== 2 || !holdOnce) return 200;
      holdOnce = false;
      return 'hold';
    });
    try {
      await api.start();
      const created = await call(`${api.url}/v1/watches`, {
        method: 'POST',
        headers: admin,
        body: JSON.stringify({ pattern: 'block.*', endpoint: `${hook.url}/rr` }),
      });
      expect(created.status).toBe(201);
      const seqs: string[] = [];
      const produce = async (from: number, to: number) => {
        for (let height = from; height < to; height++)
          seqs.push(
            await appendEvent(
              redis,
              keys,
              EventType.BlockAccepted,
              { chain: 'ltc', hash: 'h', height, state: 'accepted' },
              'ltc',
            ),
          );
      };
      await produce(0, 5);
      await waitFor(() => hook.hooks.some((h) => h.body.data.height === 2), { what: 'event 2 held' });
      // fail the held attempt while Redis goes down and comes back
      const restarting = server.restart();
      const held = hook.hooks.find((h) => h.body.data.height === 2);
      expect(held?.status).toBeNull();
      await hook.answerHeld(500);
      await restarting;
      await waitFor(async () => (await redis.ping().catch(() => null)) === 'PONG', { what: 'redis back' });
      await produce(5, 8);
      // A delivery whose cursor move met Redis down is sent again, with its key: an endpoint
      // that keeps keys sees each event once, in order.
      const firstOfEachKey = () => [
        ...new Map(
          hook.delivered().map((h) => [h.headers['idempotency-key'], h.body.seq as string]),
        ).values(),
      ];
      const got = await waitForCount(firstOfEachKey, 8, '8 events delivered after the restart');
      expect(got).toEqual(seqs);
      for (const h of hook.delivered())
        expect(h.headers['idempotency-key']).toBe(`${created.body.id}:ltc:${h.body.seq}`);
    } finally {
      await api.close();
      await hook.close();
      redis.disconnect();
      await server.stop();
    }
  }, 90_000);
});
