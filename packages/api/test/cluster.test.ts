import { createLogger } from '@hashwire/core';
import { connectRedis } from '@hashwire/registry';
import { createReporter } from '@hashwire/reporter';
import { startRedisCluster, waitFor } from '@hashwire/testkit';
import { describe, expect, it } from 'vitest';
import { batch, client, share, testKeys, wire } from '../../reporter/test/helpers.js';
import { createApiService } from '../src/index.js';
import { call } from './helpers.js';

// Every read and every group operation keeps its keys in one hash slot: no CROSSSLOT on a Cluster.

describe('api on Redis Cluster', () => {
  it('serves reads and membership groups', async () => {
    const cluster = await startRedisCluster({ masters: 3 });
    const redis = connectRedis({ cluster: cluster.nodes });
    const keys = testKeys();
    const quiet = createLogger({ name: 'api-test', level: 'silent' });
    const reporter = await createReporter({
      id: 'r-c',
      chain: 'ltc',
      redis,
      keys,
      logger: quiet,
      blockPollMs: 3_600_000,
    });
    const api = await createApiService({
      id: 'api-c',
      redis,
      keys,
      chains: [{ chain: 'ltc', algorithm: 'scrypt' }],
      port: 0,
      httpPortRange: [0, 0],
      logger: quiet,
    });
    try {
      await reporter.start();
      const toReporter = client(reporter.endpoint!);
      const reply = await toReporter.request(
        'reporter.shares',
        wire(batch([share({ account: 'acctA', worker: 'rig1', diff: 32 })])),
      );
      toReporter.close();
      expect(reply.subs[0]?.status).toBe('credited');
      await api.start();
      const base = api.url!;
      for (const path of [
        '/v1/pool',
        '/v1/chains/ltc',
        '/v1/chains/ltc/accounts/acctA',
        '/v1/chains/ltc/accounts/acctA/workers',
        '/v1/chains/ltc/blocks',
        '/v1/chains/ltc/rounds',
        '/v1/chains/ltc/rounds/current',
        '/v1/services',
      ]) {
        const res = await call(`${base}${path}`);
        expect(res.status, `${path}: ${JSON.stringify(res.body)}`).toBe(200);
      }
      const joined = await call(`${base}/v1/groups/g/m1?timeout=30`, { method: 'PUT', body: 'meta' });
      expect(joined.body.active_members).toEqual([{ m1: 'meta' }]);
      expect(joined.body.endpoints).toEqual([base]);
      const beat = await call(`${base}/v1/groups/g/m1`, { method: 'HEAD' });
      expect(beat.status).toBe(200);
      const configured = await call(`${base}/v1/groups/g/config`, { method: 'PUT', body: 'cfg' });
      expect(Number(configured.headers.get('x-group-version'))).toBeGreaterThan(
        Number(beat.headers.get('x-group-version')),
      );
      const account = await call(`${base}/v1/chains/ltc/accounts/acctA`);
      expect(account.body.roundDiff).toBe(32);
      const workers = await call(`${base}/v1/chains/ltc/accounts/acctA/workers`);
      expect(workers.body.items).toMatchObject([{ name: 'rig1', accepted: 1, acceptedDiff: 32 }]);
      // HEAD of a read answers like its GET, without a body
      expect((await call(`${base}/v1/pool`, { method: 'HEAD' })).status).toBe(200);
    } finally {
      await api.close();
      await reporter.close();
      redis.disconnect();
      await cluster.stop();
    }
  });

  it('keeps tokens, revocation, the audit trail and the rate limit working', async () => {
    const cluster = await startRedisCluster({ masters: 3 });
    const keys = testKeys();
    const quiet = createLogger({ name: 'api-test', level: 'silent' });
    const adminToken = 'cluster-admin-token-0123456789';
    const clients = [connectRedis({ cluster: cluster.nodes }), connectRedis({ cluster: cluster.nodes })];
    const [a, b] = await Promise.all(
      clients.map((redis, i) =>
        createApiService({
          id: `api-${i}`,
          redis,
          keys,
          chains: [{ chain: 'ltc', algorithm: 'scrypt' }],
          port: 0,
          httpPortRange: [0, 0],
          adminToken,
          rateLimit: { max: 20, windowMs: 60_000 },
          logger: quiet,
        }),
      ),
    );
    try {
      await a!.start();
      await b!.start();
      const auth = (token: string) => ({ authorization: `Bearer ${token}` });
      const made = await call(`${a!.url}/v1/tokens`, {
        method: 'POST',
        headers: { ...auth(adminToken), 'content-type': 'application/json' },
        body: JSON.stringify({ kind: 'account', name: 'c', account: 'acctA' }),
      });
      expect(made.status).toBe(201);
      expect(
        (await call(`${b!.url}/v1/chains/ltc/accounts/acctA`, { headers: auth(made.body.token) })).status,
      ).toBe(200);
      expect(
        (await call(`${b!.url}/v1/chains/ltc/accounts/acctZ`, { headers: auth(made.body.token) })).status,
      ).toBe(403);
      const revokedAt = performance.now();
      expect(
        (await call(`${a!.url}/v1/tokens/${made.body.id}`, { method: 'DELETE', headers: auth(adminToken) }))
          .status,
      ).toBe(200);
      await waitFor(
        async () => (await call(`${b!.url}/v1/pool`, { headers: auth(made.body.token) })).status === 401,
        { timeoutMs: 1000 },
      );
      expect(performance.now() - revokedAt).toBeLessThan(1000);
      const trail = await call(`${b!.url}/v1/audit`, { headers: auth(adminToken) });
      expect(trail.body.items.map((e: { type: string }) => e.type)).toEqual([
        'admin.token.revoke',
        'admin.token.create',
      ]);
      // The two instances share one budget per address: 20 in all, then 429 on either.
      const statuses: number[] = [];
      for (let i = 0; i < 24; i++) statuses.push((await call(`${(i % 2 ? a : b)!.url}/v1/pool`)).status);
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
      expect(statuses.slice(-2)).toEqual([429, 429]);
    } finally {
      await a!.close();
      await b!.close();
      for (const redis of clients) redis.disconnect();
      await cluster.stop();
    }
  });
});
