import { randomBytes, randomUUID } from 'node:crypto';
import { createLogger } from '@hashwire/core';
import { type KeyBuilder, type RpcMethods, type Share, createKeyBuilder } from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';
import { type Reporter, type ReporterOptions, createReporter } from '@hashwire/reporter';
import { createRpcClient } from '@hashwire/rpc';
import type { LitecoinRegtest } from '@hashwire/testkit';
import { payoutKeys } from '../src/keys.js';

export const CHAIN = 'ltc';
export const quiet = createLogger({ name: 'payouts-test', level: 'silent' });

/** A fresh key prefix per test: tests share one redis-server and leave each other alone. */
export function testKeys(): KeyBuilder {
  return createKeyBuilder({ prefix: `t${randomBytes(4).toString('hex')}:` });
}

let counter = 0;
let seq = 1;

/** An accepted share of `account` at difficulty `diff` (a submission of its own). */
export function share(account: string, diff: number, blockHash?: string): Share {
  return {
    shareId: randomUUID(),
    sessionId: 'sess-1',
    account,
    worker: 'rig',
    jobId: '1a',
    extranonce1: 'f0000001',
    extranonce2: (++counter).toString(16).padStart(8, '0'),
    ntime: '65a1b2c3',
    nonce: randomBytes(4).toString('hex'),
    version: '20000000',
    diff,
    actualDiff: diff,
    result: 'accepted',
    ts: Date.now(),
    ip: '10.0.0.1',
    ...(blockHash ? { blockHash } : {}),
  };
}

export async function startReporter(
  redis: RedisClient,
  keys: KeyBuilder,
  ltc: LitecoinRegtest,
  extra: Partial<ReporterOptions> = {},
): Promise<Reporter> {
  const reporter = await createReporter({
    id: `r-${randomBytes(3).toString('hex')}`,
    chain: CHAIN,
    redis,
    keys,
    logger: quiet,
    daemons: ltc.nodes.map((n) => ({ url: n.rpcUrl, cookieFile: n.cookieFile })),
    confirmations: 100,
    blockPollMs: 3_600_000, // polled by hand
    replication: { replicas: 0 },
    ...extra,
  });
  await reporter.start();
  return reporter;
}

/** Credits `shares` as one reporter.shares request (one credit script run: one window entry). */
export async function credit(
  reporter: Reporter,
  shares: Share[],
  sub: { seq: number; id: string } = { seq: seq++, id: `${randomUUID()}:0` },
): Promise<void> {
  const c = createRpcClient<RpcMethods>(reporter.endpoint as string, { timeoutMs: 20_000 });
  try {
    const reply = await c.request('reporter.shares', {
      stratumId: 'stratum-1',
      spoolId: 'spool-1',
      chain: CHAIN,
      floor: 0,
      subs: [{ seq: sub.seq, id: sub.id, shares }],
    });
    const outcome = reply.subs[0];
    // `repeat`: a sub-batch delivered again gets its first answer.
    if (
      (outcome?.status !== 'credited' && outcome?.status !== 'repeat') ||
      outcome.credited !== shares.length
    ) {
      throw new Error(`credit failed: ${JSON.stringify(outcome)}`);
    }
  } finally {
    await c.close();
  }
}

/** Mines one block on node 0 to `address` (a block "we" found) and writes its record as the jobmanager does. */
export async function findBlock(
  redis: RedisClient,
  keys: KeyBuilder,
  ltc: LitecoinRegtest,
  address: string,
  options: { sync?: boolean } = {},
): Promise<{ hash: string; height: number }> {
  const [hash] = await ltc.mine(0, 1, address);
  if (options.sync !== false) await ltc.sync();
  const { height } = await ltc.rpc[0]!.call<{ height: number }>('getblockheader', [hash]);
  const k = payoutKeys(keys, CHAIN);
  const record = {
    hash,
    chain: CHAIN,
    height,
    jobId: '1a',
    jmId: 'jm-1',
    shareId: 'share-of-block',
    state: 'accepted',
    submittedAt: Date.now(),
    updatedAt: Date.now(),
  };
  await redis.multi().hset(k.blocks, hash!, JSON.stringify(record)).zadd(k.blocksIndex, height, hash!).exec();
  return { hash: hash!, height };
}

export async function blockState(redis: RedisClient, keys: KeyBuilder, hash: string): Promise<string> {
  const text = await redis.hget(payoutKeys(keys, CHAIN).blocks, hash);
  return (JSON.parse(text ?? '{}') as { state?: string }).state ?? 'none';
}
