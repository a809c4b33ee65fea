// Issue 14, defect 4: with extranonce2Size 9–16 the stratum server emptied the extranonce2 of
// a block candidate (it kept only values of up to 16 hex digits), so the jobmanager refused the
// block. For every extranonce1 and extranonce2 size the pool config allows, a block is found
// here through a real TCP stratum session and accepted by a real litecoind.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getChainParams } from '@hashwire/chain';
import { poolConfigSchema } from '@hashwire/core';
import { createJobManager } from '@hashwire/jobmanager';
import { createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { type BlockEvent, JobFeed, createStratumServer } from '@hashwire/stratum';
import {
  type LitecoinRegtest,
  type RedisServer,
  grindNonce,
  startLitecoinRegtest,
  startRedis,
} from '@hashwire/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../packages/stratum/test/server-helpers.js';

const CHAIN = 'litecoin-regtest';
const params = getChainParams('litecoin', 'regtest');

let ltc: LitecoinRegtest;
let redisServer: RedisServer;
let redis: RedisClient;
let payout: string;

beforeAll(async () => {
  [ltc, redisServer] = await Promise.all([startLitecoinRegtest({ nodes: 2 }), startRedis()]);
  redis = connectRedis(redisServer.url);
  payout = await ltc.rpc[0]!.call<string>('getnewaddress', ['', 'bech32']);
});
afterAll(async () => {
  redis?.disconnect();
  await Promise.all([ltc?.stop(), redisServer?.stop()]);
});

/** The allowed range of a `stratum` integer key, read from the pool config schema itself. */
function allowedSizes(key: 'extranonce1Size' | 'extranonce2Size'): number[] {
  const accepts = (n: number) => poolConfigSchema.shape.stratum.safeParse({ [key]: n }).success;
  const sizes: number[] = [];
  for (let n = 0; n <= 64; n++) if (accepts(n)) sizes.push(n);
  return sizes;
}

/** Mines one block with these sizes: jobmanager → stratum server → TCP miner → litecoind. */
async function blockWith(extranonce1Size: number, extranonce2Size: number): Promise<BlockEvent> {
  const keys = createKeyBuilder({ prefix: `t${randomBytes(4).toString('hex')}:` });
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  try {
    const jm = await createJobManager({
      id: 'jm-sizes',
      coin: 'litecoin',
      network: 'regtest',
      daemons: [{ url: ltc.nodes[0]!.rpcUrl, cookieFile: ltc.nodes[0]!.cookieFile }],
      payouts: [{ address: payout }],
      extranonce1Size,
      extranonce2Size,
      redis,
      keys,
      heartbeatIntervalMs: 100,
      pollIntervalMs: 100,
    });
    cleanups.push(() => jm.close());
    const feed = new JobFeed({
      redis,
      keys,
      chain: CHAIN,
      stratumId: 's-sizes',
      heartbeatIntervalMs: 100,
      reconcileMs: 100,
    });
    cleanups.push(() => feed.close());
    await feed.start();
    const spoolDir = mkdtempSync(join(tmpdir(), 'hw-sizes-'));
    cleanups.push(() => rmSync(spoolDir, { recursive: true, force: true }));
    const server = await createStratumServer({
      id: 's-sizes',
      chain: CHAIN,
      params,
      host: '127.0.0.1',
      port: 0,
      redis,
      keys,
      jobs: feed,
      blockSink: feed,
      spoolDir,
      extranonce1Size,
      extranonce2Size,
      vardiff: { enabled: false, initialDifficulty: 1e-6, minDifficulty: 1e-9 },
    });
    cleanups.push(() => server.close());
    await server.start();
    const block = new Promise<BlockEvent>((resolve) => server.once('block', resolve));

    const miner = await RawClient.connect(server.port);
    cleanups.push(() => miner.close());
    const { extranonce1, extranonce2Size: told, notify } = await miner.handshake(`${payout}.sizes`);
    expect(told).toBe(extranonce2Size);
    expect(extranonce1).toHaveLength(2 * extranonce1Size);
    const jobId = notify.params![0] as string;
    const job = server.book.get(jobId)!.job;
    // High bytes set, so a lost or shortened extranonce2 cannot go unnoticed.
    const en2 = Buffer.alloc(extranonce2Size, 0xa5);
    en2[0] = 0xff;
    const nonce = grindNonce(job, Buffer.from(extranonce1, 'hex'), en2);
    const reply = await miner.request('mining.submit', [
      `${payout}.sizes`,
      jobId,
      en2.toString('hex'),
      job.ntime,
      nonce,
    ]);
    expect(reply, `extranonce1Size ${extranonce1Size}, extranonce2Size ${extranonce2Size}`).toMatchObject({
      result: true,
    });
    return await block;
  } finally {
    for (const c of cleanups.reverse()) await c();
  }
}

describe('every allowed extranonce size finds a block litecoind accepts', () => {
  it('extranonce1 3–8 bytes × extranonce2 1–16 bytes: 96 blocks', async () => {
    const e1 = allowedSizes('extranonce1Size');
    const e2 = allowedSizes('extranonce2Size');
    expect(e1).toEqual([3, 4, 5, 6, 7, 8]);
    expect(e2).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    const pairs = e1.flatMap((size1) => e2.map((size2) => [size1, size2] as const));
    for (const [size1, size2] of pairs) {
      const before = await ltc.rpc[0]!.getBestBlockHash();
      const event = await blockWith(size1, size2);
      const what = `extranonce1Size ${size1}, extranonce2Size ${size2}: ${JSON.stringify(event.reply ?? event.error)}`;
      expect(event.reply?.accepted, what).toBe(true);
      expect(event.share.extranonce2, what).toHaveLength(2 * size2);
      expect(await ltc.rpc[0]!.getBestBlockHash(), what).toBe(event.reply!.hash);
      expect(event.reply!.hash).not.toBe(before);
    }
  }, 180_000);
});
