// A rolling upgrade from the release before share wire 2: a stratum server not yet upgraded
// sends one `{ batchId, stratumId, chain, shares }` per request. The new reporter must not call
// it malformed (the old forwarder quarantines a sub-batch refused BadRequest/TooLarge): it
// answers Unavailable, which the old forwarder fails over on, writes nothing and says why.
import { createLogger } from '@hashwire/core';
import { RpcErrorCode, SHARES_WIRE } from '@hashwire/protocol';
import { type RedisClient, connectRedis, getService } from '@hashwire/registry';
import { RpcError } from '@hashwire/rpc';
import { type RedisServer, startRedis } from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createReporter, readRound } from '../src/index.js';
import { CHAIN, batch, client, send, share, snapshot, testKeys } from './helpers.js';

let server: RedisServer;
let redis: RedisClient;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  server = await startRedis();
  redis = connectRedis(server.url, 'test');
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

/** What the previous release's forwarder sent for one sub-batch. */
function wire1Body(stratumId: string, account: string) {
  return {
    batchId: `${stratumId}-batch:3`,
    stratumId,
    chain: CHAIN,
    shares: [share({ account }), share({ account })],
  };
}

/** Data keys only: the registry hash refreshes its load figures on a timer. */
async function dataSnapshot(keys: ReturnType<typeof testKeys>): Promise<Record<string, unknown>> {
  const all = await snapshot(redis, keys);
  return Object.fromEntries(Object.entries(all).filter(([key]) => !/:svc(idx)?:/.test(key)));
}

describe('a reporter of share wire 2 and a stratum server of the release before', () => {
  it('answers its requests Unavailable naming the upgrade, credits nothing, logs it once per server and minute, and advertises its wire', async () => {
    const keys = testKeys();
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({
      name: 'reporter-test',
      level: 'warn',
      destination: { write: (line: string) => lines.push(JSON.parse(line)) },
    });
    const reporter = await createReporter({
      id: 'rep-new',
      chain: CHAIN,
      redis,
      keys,
      logger,
      blockPollMs: 3_600_000,
    });
    cleanups.push(() => reporter.close());
    await reporter.start();
    const c = client(reporter.endpoint!);
    cleanups.push(() => c.close());

    expect(await getService(redis, keys, 'reporter', 'rep-new')).toMatchObject({ sharesWire: SHARES_WIRE });

    const before = await dataSnapshot(keys);
    for (const stratumId of ['old-a', 'old-a', 'old-a', 'old-b']) {
      const refusal = await c.request('reporter.shares', wire1Body(stratumId, 'alice') as never).then(
        () => null,
        (error: unknown) => error,
      );
      expect(refusal).toBeInstanceOf(RpcError);
      // Not BadRequest or TooLarge: the release before quarantines on those, fails over on this.
      expect(refusal).toMatchObject({
        code: RpcErrorCode.Unavailable,
        message: expect.stringMatching(/speaks share wire 2; upgrade this stratum server/),
      });
    }
    expect(await dataSnapshot(keys)).toEqual(before);
    expect(await readRound(redis, keys, CHAIN)).toEqual({});
    expect(reporter.stats()).toMatchObject({
      wire1Requests: 4,
      requests: 0,
      credited: 0,
      batches: { credited: 0, refused: 0, unavailable: 4 },
    });
    const logged = lines.filter((l) => /sent share wire 1/.test(String(l.msg)));
    expect(logged.map((l) => l.stratumId)).toEqual(['old-a', 'old-b']);
    expect(logged[0]).toMatchObject({
      level: 'warn',
      msg: expect.stringMatching(/upgrade that stratum server/),
    });

    // A stratum server of its own wire is credited as ever by the same reporter.
    const b = batch([share({ account: 'bob', diff: 4 })]);
    await expect(send(c, b)).resolves.toEqual({ batchId: b.batchId, credited: 1 });
    expect(await readRound(redis, keys, CHAIN)).toEqual({ bob: 4 });
  });
});
