import { once } from 'node:events';
import { createKeyBuilder } from '@hashwire/protocol';
import {
  type ServiceEvent,
  connectRedis,
  duplicateRedis,
  registerService,
  watchServices,
} from '@hashwire/registry';
import { startRedis } from '@hashwire/testkit';
import { percentile, within } from '../measure.js';
import type { BenchSuite } from '../types.js';

/**
 * How fast a new service is seen by a peer watching its kind: registerService() called →
 * the watcher's `up` event. Baseline: a bare Redis PUBLISH → subscriber message on the same
 * server, the floor any announcement through Redis can reach.
 */
export const registrySuite: BenchSuite = {
  name: 'registry',
  description: 'service discovery through Redis',
  async run(ctx) {
    const rounds = ctx.quick ? 20 : 200;
    const server = await startRedis();
    const redis = connectRedis(server.url, 'bench');
    const keys = createKeyBuilder({ prefix: 'bench:' });
    try {
      ctx.log(`registry: ${rounds} registrations seen by a watcher`);
      const watcher = watchServices({ redis, keys, kind: 'stratum', reconcileMs: 3_600_000 });
      await watcher.ready;
      const seen: number[] = [];
      for (let i = 0; i < rounds; i++) {
        const id = `s${i}`;
        const up = new Promise<void>((resolve) => {
          const onEvent = (e: ServiceEvent) => {
            if (e.type === 'up' && e.service.id === id) {
              watcher.off('event', onEvent);
              resolve();
            }
          };
          watcher.on('event', onEvent);
        });
        const start = performance.now();
        const reg = await registerService({ redis, keys, kind: 'stratum', id, rpc: 'tcp://127.0.0.1:1' });
        await within(up, 10_000, `the watcher seeing ${id} register`);
        seen.push(performance.now() - start);
        await reg.close();
      }
      await watcher.close();

      ctx.log('registry: baseline bare publish → message');
      const subscriber = duplicateRedis(redis);
      await subscriber.subscribe('bench:raw');
      const raw: number[] = [];
      for (let i = 0; i < rounds; i++) {
        const start = performance.now();
        const got = once(subscriber, 'message');
        await redis.publish('bench:raw', String(i));
        await within(got, 10_000, 'a bare PUBLISH reaching its subscriber');
        raw.push(performance.now() - start);
      }
      subscriber.disconnect();

      const p99 = percentile(seen, 99);
      return [
        {
          name: 'registry.discovery_ms',
          value: Number(p99.toFixed(3)),
          unit: 'ms (p99)',
          higherIsBetter: false,
          baseline: { name: 'bare PUBLISH → message p99', value: Number(percentile(raw, 99).toFixed(3)) },
          target: '< 1000 ms',
          met: p99 < 1000,
        },
        {
          name: 'registry.discovery_p50_ms',
          value: Number(percentile(seen, 50).toFixed(3)),
          unit: 'ms',
          higherIsBetter: false,
          baseline: { name: 'bare PUBLISH → message p50', value: Number(percentile(raw, 50).toFixed(3)) },
        },
      ];
    } finally {
      redis.disconnect();
      await server.stop();
    }
  },
};
