import { createLogger } from '@hashwire/core';
import { RpcErrorCode, type Share } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { RpcError } from '@hashwire/rpc';
import { type RedisServer, startRedis, waitFor } from '@hashwire/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Reporter, createReporter, readRound } from '../src/index.js';
import { CHAIN, batch, callsBetween, client, commandCalls, mixedShares, send, testKeys } from './helpers.js';

// Redis replicates asynchronously: a credit acknowledged before a replica has it can vanish
// with its master. The reporter waits (WAIT) for the master's replica before it answers.

let master: RedisServer;
let replica: RedisServer;
let redis: RedisClient;
let fromReplica: RedisClient;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

const accepted = (shares: Share[]) => shares.filter((s) => s.result === 'accepted');

beforeAll(async () => {
  master = await startRedis();
  replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
  redis = connectRedis(master.url, 'test-master');
  fromReplica = connectRedis(replica.url, 'test-replica');
  await waitFor(
    async () => ((await fromReplica.info('replication')) as string).includes('master_link_status:up'),
    {
      timeoutMs: 20_000,
      what: 'the replica to sync',
    },
  );
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  redis?.disconnect();
  fromReplica?.disconnect();
  await replica?.stop();
  await master?.stop();
});

async function startReporter(
  timeoutMs = 500,
  client: RedisClient = redis,
): Promise<{ reporter: Reporter; keys: ReturnType<typeof testKeys> }> {
  const keys = testKeys();
  const reporter = await createReporter({
    id: `r-${Math.random().toString(16).slice(2, 8)}`,
    chain: CHAIN,
    redis: client,
    keys,
    logger: createLogger({ name: 'reporter-test', level: 'silent' }),
    blockPollMs: 3_600_000,
    replication: { timeoutMs },
  });
  cleanups.push(() => reporter.close());
  await reporter.start();
  return { reporter, keys };
}

describe('reporter on a master with a replica', () => {
  it('acknowledges a credit only once the replica has it', async () => {
    const { reporter, keys } = await startReporter();
    const c = client(reporter.endpoint!);
    cleanups.push(() => c.close());
    const calls = await commandCalls(redis);
    for (let i = 0; i < 5; i++) {
      const request = batch(mixedShares(200, 10, 2, 40 + i));
      expect(await send(c, request)).toEqual({
        batchId: request.batchId,
        credited: accepted(request.shares).length,
      });
      // Read from the replica right after the answer: the credit is already there.
      expect(await readRound(fromReplica, keys, CHAIN)).toEqual(await readRound(redis, keys, CHAIN));
    }
    expect(reporter.stats().batches).toMatchObject({ credited: 5, unreplicated: 0 });
    // One WAIT per request, in the script's pipeline.
    expect(callsBetween(calls, await commandCalls(redis)).get('wait')).toBe(5);
  });

  it('answers Unavailable while the replica does not confirm, and credits the batch once when it comes again', async () => {
    const { reporter, keys } = await startReporter();
    const c = client(reporter.endpoint!);
    cleanups.push(() => c.close());
    const warmup = batch(mixedShares(10, 2, 1, 7));
    await send(c, warmup); // the replica is known to the reporter
    const before = await readRound(redis, keys, CHAIN);

    const request = batch(mixedShares(100, 5, 2, 8));
    process.kill(replica.pid, 'SIGSTOP');
    let refused: unknown;
    try {
      refused = await send(c, request).catch((error: unknown) => error);
    } finally {
      process.kill(replica.pid, 'SIGCONT');
    }
    expect(refused).toBeInstanceOf(RpcError);
    expect((refused as RpcError).code).toBe(RpcErrorCode.Unavailable);
    expect((refused as RpcError).message).toMatch(/replica/);
    expect(reporter.stats().batches).toMatchObject({ unreplicated: 1 });

    // The stratum server sends it again: already credited, so answered with the first reply,
    // once the replica has it; credited once.
    expect(await send(c, request)).toEqual({
      batchId: request.batchId,
      credited: accepted(request.shares).length,
    });
    expect(reporter.stats().batches).toMatchObject({ duplicate: 1, unreplicated: 1 });
    const after = await readRound(fromReplica, keys, CHAIN);
    const added: Record<string, number> = {};
    for (const s of accepted(request.shares)) added[s.account] = (added[s.account] ?? 0) + s.diff;
    for (const [account, diff] of Object.entries(added)) {
      expect(after[account]).toBe((before[account] ?? 0) + diff);
    }
  });

  // ioredis 5 aborts the commands in flight when their connection closes ("Command aborted due
  // to connection close"), so the WAIT fails; a client that sent it again on a new connection
  // instead would get an instant, empty confirmation, which the CLIENT ID check around the
  // WAIT refuses (replication.ts). Either way the credit is not acknowledged.
  it('acknowledges nothing when its connection drops during the WAIT, and credits it once when it comes again', async () => {
    // Its own connection, so the test can find it in CLIENT LIST and cut it.
    const own = connectRedis(master.url, 'test-cut');
    cleanups.push(() => own.disconnect());
    const admin = connectRedis(master.url, 'test-admin');
    cleanups.push(() => admin.disconnect());
    const { reporter, keys } = await startReporter(10_000, own);
    const c = client(reporter.endpoint!);
    cleanups.push(() => c.close());
    await send(c, batch(mixedShares(10, 2, 1, 9))); // the replica is known to the reporter

    const request = batch(mixedShares(50, 5, 2, 10));
    process.kill(replica.pid, 'SIGSTOP');
    let refused: unknown;
    try {
      const sending = send(c, request).catch((error: unknown) => error);
      // The reporter's connection blocked in WAIT (the replica cannot answer): cut it.
      let blocked = '';
      await waitFor(
        async () => {
          const list = (await admin.client('LIST')) as string;
          blocked = list.split('\n').find((l) => / name=test-cut /.test(l) && / cmd=wait /.test(l)) ?? '';
          return blocked !== '';
        },
        { timeoutMs: 8000, what: "the reporter's WAIT blocked on the stopped replica" },
      );
      await admin.client('KILL', 'ID', /id=(\d+)/.exec(blocked)![1]!);
      refused = await sending;
    } finally {
      process.kill(replica.pid, 'SIGCONT');
    }
    // Not acknowledged: the stratum server will send it again.
    expect(refused).toBeInstanceOf(RpcError);
    expect((refused as RpcError).code).toBe(RpcErrorCode.Unavailable);
    expect(reporter.stats().batches.unreplicated).toBe(1);
    // Sent again once the replica is back: answered, credited once, on the replica.
    expect(await send(c, request)).toEqual({
      batchId: request.batchId,
      credited: accepted(request.shares).length,
    });
    const onReplica = await readRound(fromReplica, keys, CHAIN);
    expect(onReplica).toEqual(await readRound(own, keys, CHAIN));
  });
});
