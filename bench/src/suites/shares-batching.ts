import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@hashwire/core';
import { type Share, createKeyBuilder } from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';
import { type Reporter, createReporter, reporterKeys } from '@hashwire/reporter';
import { ShareForwarder, ShareSpool } from '@hashwire/stratum';
import type { BenchContext, BenchResult } from '../types.js';

const CHAIN = 'benchb';
const SERVERS = 2;
/** 10,000 workers (5,000 per server, one per account): every server's batch spans all 100 buckets. */
const WORKERS = 10_000;
const REPORTERS = 2;
const BUCKETS = 100;
const JOB_ID = '2b3c';

let submission = 0;

function shareOf(worker: number, ts: number): Share {
  submission++;
  return {
    shareId: `b${submission}`,
    sessionId: `s${worker}`,
    account: `ltc1qbatch${worker}`,
    worker: 'rig',
    jobId: JOB_ID,
    extranonce1: 'f0000002',
    extranonce2: submission.toString(16).padStart(8, '0'),
    ntime: '65a1b2c3',
    nonce: randomBytes(4).toString('hex'),
    version: '20000000',
    diff: 64,
    actualDiff: 300,
    result: 'accepted',
    ts,
    ip: '10.0.0.2',
  };
}

async function usedMemory(redis: RedisClient): Promise<number> {
  const text = (await redis.info('memory')) as string;
  return Number(/^used_memory:(\d+)/m.exec(text)?.[1] ?? Number.NaN);
}

/**
 * Stratum servers (a real spool and forwarder each, 1 s batches) sending the shares of 10,000
 * workers to real reporters, one share per worker and second: `reporter.shares` calls per
 * server and second of spooled shares (one 1 s spool batch), and Redis memory growth per
 * million shares credited (INFO used_memory).
 * Baselines, same run: the calls the per-sub-batch protocol made (one per sub-batch: the
 * sub-batches these servers sent per second), and the memory with the per-sub-batch
 * idempotency keys of that protocol (`batch:{chain}:<id>`, kept a day: written for the same
 * sub-batches in the same Redis and measured) in place of the spools' acknowledgement sets.
 */
export async function measureBatching(ctx: BenchContext, redis: RedisClient): Promise<BenchResult[]> {
  const seconds = ctx.quick ? 2 : 6;
  const keys = createKeyBuilder({ prefix: 'benchb:' });
  const quiet = createLogger({ name: 'bench', level: 'warn' });
  const reporters: Reporter[] = [];
  const forwarders: ShareForwarder[] = [];
  const spools: ShareSpool[] = [];
  const dirs: string[] = [];
  try {
    for (let r = 0; r < REPORTERS; r++) {
      const reporter = await createReporter({
        id: `bench-batching-${r}`,
        chain: CHAIN,
        redis,
        keys,
        logger: quiet,
        blockPollMs: 3_600_000,
      });
      await reporter.start();
      reporters.push(reporter);
    }
    for (let s = 0; s < SERVERS; s++) {
      const dir = mkdtempSync(join(tmpdir(), 'hw-bench-spool-'));
      dirs.push(dir);
      const spool = await ShareSpool.open({ dir, batchIntervalMs: 1000, batchMaxShares: 1_000_000 });
      spools.push(spool);
      const forwarder = new ShareForwarder({
        spool,
        redis,
        keys,
        stratumId: `bench-stratum-${s}`,
        chain: CHAIN,
        ring: { buckets: BUCKETS },
        requestTimeoutMs: 30_000,
      });
      await forwarder.start();
      forwarders.push(forwarder);
    }
    while (forwarders.some((f) => f.currentRing().servers.length < REPORTERS)) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    ctx.log(`shares: ${seconds}s of ${WORKERS} workers over ${BUCKETS} buckets, ${SERVERS} stratum servers`);
    const memoryBefore = await usedMemory(redis);
    const perServer = WORKERS / SERVERS;
    const start = performance.now();
    for (let t = 0; t < seconds; t++) {
      const now = Date.now();
      await Promise.all(
        spools.flatMap((spool, s) =>
          Array.from({ length: perServer }, (_, w) => spool.append(shareOf(s * perServer + w, now))),
        ),
      );
      // Load pacing: one share per worker and second, sealed by the spools' own 1 s timer.
      const next = start + (t + 1) * 1000;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - performance.now())));
    }
    for (const spool of spools) spool.seal();
    await Promise.all(forwarders.map((f) => f.whenIdle()));
    const elapsedS = (performance.now() - start) / 1000;
    const memoryAfter = await usedMemory(redis);

    const stats = forwarders.map((f) => f.stats());
    // Per second of spooled shares: each spool batch holds one second (batchIntervalMs 1000), so
    // a backlog drained after the load stops counts where its shares belong.
    const batches = stats.reduce((n, s) => n + s.ackedBatches, 0);
    const calls = stats.reduce((n, s) => n + s.requests, 0) / batches;
    const subCalls = stats.reduce((n, s) => n + s.subBatchesSent, 0) / batches;
    const credited = reporters.reduce((n, r) => n + r.stats().credited, 0);
    const subBatches = reporters.reduce((n, r) => n + r.stats().batches.credited, 0);
    if (credited !== WORKERS * seconds) {
      throw new Error(`bench: ${credited} shares credited of ${WORKERS * seconds}`);
    }
    const k = reporterKeys(keys, CHAIN);
    let acksBytes = 0;
    for (const spool of spools) acksBytes += Number(await redis.memory('USAGE', k.spoolAcks(spool.spoolId)));
    const grown = memoryAfter - memoryBefore;
    const shareLogBytes = Number(await redis.memory('USAGE', k.shareLog, 'SAMPLES', 0));
    const seenBytes = Number(await redis.memory('USAGE', k.shareSeen(JOB_ID), 'SAMPLES', 0));

    // The per-sub-batch protocol's idempotency keys for the same sub-batches, in the same Redis.
    const beforeOld = await usedMemory(redis);
    const reply = JSON.stringify({ batchId: `${'0'.repeat(36)}:00`, credited: 50 });
    for (let i = 0; i < subBatches; i += 1000) {
      const pipeline = redis.pipeline();
      for (let j = i; j < Math.min(i + 1000, subBatches); j++) {
        pipeline.set(
          `${keys.prefix}batch:{${CHAIN}}:${randomBytes(16).toString('hex')}:${j % BUCKETS}`,
          reply,
          'EX',
          86_400,
        );
      }
      await pipeline.exec();
    }
    const oldKeysBytes = (await usedMemory(redis)) - beforeOld;
    const perMillion = (bytes: number) => Math.round((bytes / credited) * 1_000_000);
    ctx.log(
      `shares: ${credited} credited in ${batches} 1 s batches, ${subBatches} sub-batches, ${stats.reduce((n, s) => n + s.requests, 0)} requests in ${elapsedS.toFixed(1)} s; Redis +${grown} B, of which the duplicate check (seen) ${seenBytes} B (${Math.round(seenBytes / credited)} B/share), the share log ${shareLogBytes} B (${Math.round(shareLogBytes / credited)} B/share), the spools' acknowledgements ${acksBytes} B (the per-sub-batch keys would be ${oldKeysBytes} B, and grow for a day)`,
    );
    return [
      {
        name: 'shares.reporter_calls_per_server_s',
        value: Number(calls.toFixed(2)),
        unit: 'calls/s',
        higherIsBetter: false,
        baseline: {
          name: `one call per sub-batch (${BUCKETS} buckets): sub-batches sent per server per s`,
          value: Number(subCalls.toFixed(2)),
        },
        target: `<= ${REPORTERS + 1} (one per reporter and second)`,
        met: calls <= REPORTERS + 1,
      },
      {
        name: 'shares.redis_bytes_per_million_shares',
        value: perMillion(grown),
        unit: 'bytes',
        higherIsBetter: false,
        baseline: {
          name: 'the same with a day-long batch:{chain}:<id> key per sub-batch instead of the acks zset',
          value: perMillion(grown - acksBytes + oldKeysBytes),
        },
      },
    ];
  } finally {
    await Promise.all(forwarders.map((f) => f.close()));
    for (const spool of spools) spool.close();
    await Promise.all(reporters.map((r) => r.close()));
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}
