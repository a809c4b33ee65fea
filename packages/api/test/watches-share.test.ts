import { createLogger } from '@hashwire/core';
import { EventType } from '@hashwire/protocol';
import { appendEvent, connectRedis } from '@hashwire/registry';
import { startRedis, waitFor } from '@hashwire/testkit';
import { describe, expect, it } from 'vitest';
import { testKeys } from '../../reporter/test/helpers.js';
import { type ApiService, createApiService } from '../src/index.js';
import { call } from './helpers.js';
import { ADMIN_TOKEN, admin } from './watch-helpers.js';

// Delivering api instances share the watches (rendezvous hashing over the live ones), and an
// instance that closes hands its watches to the others at once, without losing an event.

describe('watches shared between api instances', () => {
  it('splits the watches, and moves them all when one instance closes', async () => {
    const server = await startRedis();
    const redis = connectRedis(server.url, 'api-watch-share');
    const keys = testKeys();
    const quiet = createLogger({ name: 'api-test', level: 'silent' });
    const make = (id: string) =>
      createApiService({
        id,
        redis,
        keys,
        chains: [{ chain: 'ltc', algorithm: 'scrypt' }],
        port: 0,
        httpPortRange: [0, 0],
        adminToken: ADMIN_TOKEN,
        watches: { leaseMs: 1500 },
        logger: quiet,
      });
    const apis: ApiService[] = [await make('api-s1'), await make('api-s2')];
    try {
      for (const api of apis) await api.start();
      const ids: string[] = [];
      for (let i = 0; i < 30; i++) {
        const res = await call(`${apis[0]!.url}/v1/watches`, {
          method: 'POST',
          headers: admin,
          body: JSON.stringify({ pattern: 'block.*', endpoint: `redis://127.0.0.1:${server.port}/0/ch${i}` }),
        });
        ids.push(res.body.id);
      }
      const held = () => apis.map((a) => a.stats().watches?.held ?? 0);
      const split = await waitFor(
        () => {
          const [a, b] = held();
          return a! + b! === 30 && a! > 0 && b! > 0 ? [a, b] : undefined;
        },
        { what: 'both instances delivering some of the 30 watches' },
      );
      expect(split[0]! + split[1]!).toBe(30);
      // each instance matches an event once for its one pattern, however many watches it has
      expect(apis.map((a) => a.stats().watches?.patterns)).toEqual([1, 1]);

      await apis[0]!.close();
      await waitFor(() => apis[1]!.stats().watches?.held === 30, {
        what: 'the other instance holding all 30',
      });
      await appendEvent(
        redis,
        keys,
        EventType.BlockAccepted,
        { chain: 'ltc', hash: 'h', height: 1, state: 'accepted' },
        'ltc',
      );
      await waitFor(() => apis[1]!.stats().watches!.delivered >= 30, {
        what: '30 deliveries after the handover',
      });
      for (const id of ids)
        expect(
          (await call(`${apis[1]!.url}/v1/watches/${id}`, { headers: admin })).body.delivery.attempts,
        ).toBe(0);
    } finally {
      for (const api of apis) await api.close();
      redis.disconnect();
      await server.stop();
    }
  }, 60_000);
});
