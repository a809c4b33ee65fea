import { randomBytes } from 'node:crypto';
import { createKeyBuilder } from '@hashwire/protocol';
import { connectRedis, registerService, serviceEndpointResolver } from '@hashwire/registry';
import { createRpcClient, createRpcServer } from '@hashwire/rpc';
import { startRedis, waitFor } from '@hashwire/testkit';
import { describe, expect, it } from 'vitest';

interface Jobs {
  'jm.subscribe': { req: { stratumId: string }; rep: { server: string } };
}
interface JobPushes {
  job: { jobId: string; server: string };
}

const HEARTBEAT_MS = 100;

async function startJobmanager(name: string, portRange: [number, number]) {
  return createRpcServer<Jobs, JobPushes>({
    portRange,
    heartbeatIntervalMs: HEARTBEAT_MS,
    handlers: {
      'jm.subscribe': (_req, ctx) => {
        ctx.subscribe('jobs');
        return { server: name };
      },
    },
  });
}

describe('rpc wired through the registry', () => {
  it('a subscriber finds a restarted server on another port through Redis and keeps getting pushes', async () => {
    const redis = await startRedis();
    const client = connectRedis(redis.url);
    const keys = createKeyBuilder({ prefix: `t${randomBytes(4).toString('hex')}:` });
    const base = 28_000 + Math.floor(Math.random() * 900);
    try {
      // The first jobmanager takes the first port of the range and registers it.
      const first = await startJobmanager('first', [base, base + 49]);
      let reg = await registerService({
        redis: client,
        keys,
        kind: 'jobmanager',
        id: 'jm1',
        rpc: first.endpoint,
      });
      const subscriber = createRpcClient<Jobs, JobPushes>(
        serviceEndpointResolver({ redis: client, keys, kind: 'jobmanager' }),
        { heartbeatIntervalMs: HEARTBEAT_MS },
      );
      const seen: JobPushes['job'][] = [];
      subscriber.onPush('job', (job) => seen.push(job));
      expect(await subscriber.subscribe('jm.subscribe', { stratumId: 's1' })).toEqual({ server: 'first' });
      first.push('jobs', 'job', { jobId: 'a', server: 'first' });
      await waitFor(() => seen.length === 1, { timeoutMs: 5000, what: 'the first push' });

      // It goes away and comes back on another port (its old one is taken, or its range changed).
      await reg.close();
      await first.close();
      const second = await startJobmanager('second', [base + 50, base + 99]);
      expect(second.endpoint).not.toBe(first.endpoint);
      reg = await registerService({
        redis: client,
        keys,
        kind: 'jobmanager',
        id: 'jm1',
        rpc: second.endpoint,
      });

      // The client notices the silence, asks the registry again, reconnects and re-subscribes by itself.
      await waitFor(() => subscriber.endpoint === second.endpoint, {
        timeoutMs: 10_000,
        what: 'the reconnect',
      });
      await waitFor(
        () => {
          second.push('jobs', 'job', { jobId: 'b', server: 'second' });
          return seen.some((j) => j.server === 'second');
        },
        { timeoutMs: 10_000, intervalMs: 100, what: 'a push from the restarted server' },
      );

      await subscriber.close();
      await reg.close();
      await second.close();
    } finally {
      client.disconnect();
      await redis.stop();
    }
  });
});
