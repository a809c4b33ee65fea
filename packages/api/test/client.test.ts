import { HashwireApiError, createRestClient } from '@hashwire/client';
import { createLogger } from '@hashwire/core';
import { connectRedis } from '@hashwire/registry';
import { createReporter } from '@hashwire/reporter';
import { startRedis } from '@hashwire/testkit';
import { describe, expect, it } from 'vitest';
import { batch, client, share, testKeys, wire } from '../../reporter/test/helpers.js';
import { createApiService } from '../src/index.js';

// @hashwire/client's REST calls against the real api, on what a real reporter credited.

describe('@hashwire/client REST', () => {
  it('reads the pool, an account, its workers page by page and the services; errors name the field', async () => {
    const server = await startRedis();
    const redis = connectRedis(server.url, 'client-test');
    const keys = testKeys();
    const logger = createLogger({ name: 'client-test', level: 'silent' });
    const reporter = await createReporter({
      id: 'r',
      chain: 'ltc',
      redis,
      keys,
      logger,
      blockPollMs: 3_600_000,
    });
    const api = await createApiService({
      id: 'api-cl',
      redis,
      keys,
      chains: [{ chain: 'ltc', algorithm: 'scrypt' }],
      port: 0,
      httpPortRange: [0, 0],
      logger,
    });
    try {
      await reporter.start();
      const rpc = client(reporter.endpoint!);
      const shares = ['r1', 'r2', 'r3', 'r4', 'r5'].map((worker) =>
        share({ account: 'acctA', worker, diff: 8 }),
      );
      const reply = await rpc.request('reporter.shares', wire(batch(shares)));
      rpc.close();
      expect(reply.subs[0]?.status).toBe('credited');
      await api.start();
      const hw = createRestClient({ url: `${api.url}/` });

      const pool = await hw.pool();
      expect(pool.chains).toMatchObject([
        { chain: 'ltc', algorithm: 'scrypt', workersOnline: 5, minersOnline: 1 },
      ]);
      expect((await hw.chain('ltc')).round.totalDiff).toBe(40);
      expect(pool.chains[0]!.shares).toEqual({ accepted: 5, stale: 0, duplicate: 0, lowdiff: 0, invalid: 0 });
      // The stored history: the 40 credited, whole, in the account's and the chain's points.
      for (const history of [await hw.history('ltc'), await hw.history('ltc', { account: 'acctA' })]) {
        const seconds = (t: number, size: number) => Math.max(1, Math.min(size, history.at - t)) / 1000;
        const diff = history.fiveMinutes.reduce(
          (n, p) => n + (p.hashrate / 2 ** 16) * seconds(p.t, 300_000),
          0,
        );
        expect(diff).toBeCloseTo(40, 9);
        expect(history.hours).toHaveLength(25);
      }
      const later = await hw.history('ltc', { account: 'acctA', since: Date.now() + 3_600_000 });
      expect(later).toMatchObject({ account: 'acctA', fiveMinutes: [], hours: [] });
      const account = await hw.account('ltc', 'acctA');
      expect(account).toMatchObject({ account: 'acctA', roundDiff: 40, workers: 5 });
      const names: string[] = [];
      for await (const w of hw.all((page) => hw.workers('ltc', 'acctA', page), 2)) names.push(w.name);
      expect(names).toEqual(['r1', 'r2', 'r3', 'r4', 'r5']);
      expect((await hw.blocks('ltc')).items).toEqual([]);
      expect((await hw.currentRound('ltc')).accounts).toEqual({ acctA: 40 });
      expect((await hw.services()).services).toContainEqual(
        expect.objectContaining({ kind: 'api', id: 'api-cl' }),
      );

      const failure = await hw.workers('ltc', 'acctA', { limit: 0 }).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(HashwireApiError);
      expect(failure).toMatchObject({ status: 400, code: 'bad_request', field: 'limit', place: 'query' });
      await expect(hw.chain('doge')).rejects.toMatchObject({ status: 404, field: 'chain' });
    } finally {
      await api.close();
      await reporter.close();
      redis.disconnect();
      await server.stop();
    }
  });
});
