import type { KeyBuilder } from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';
import { type BlockRecord, readWorkers, reporterKeys } from '@hashwire/reporter';
import type { SimMiners } from '@hashwire/testkit';
import { formatHashRate } from './sim.js';

/** What one status line shows: the miners' own view, and what the pool wrote to Redis. */
export interface PoolSample {
  elapsedMs: number;
  miners: number;
  connected: number;
  authorized: number;
  hashesPerSecond: number;
  /** Shares the miners were told were accepted, and rejected as stale (21) or otherwise. */
  accepted: number;
  stale: number;
  rejected: number;
  /** Accepted shares the reporters credited (lifetime worker counters in Redis). */
  credited: number;
  /** Block records the jobmanagers wrote, by state. */
  blocksFound: number;
  blocksAccepted: number;
  blocksRejected: number;
  height: number;
}

export interface SampleSources {
  miners: readonly SimMiners[];
  redis: RedisClient;
  keys: KeyBuilder;
  chain: string;
  height: () => Promise<number>;
  startedAt: number;
}

/** The miners' counters, summed over every group. */
export function sampleMiners(
  miners: readonly SimMiners[],
): Pick<
  PoolSample,
  'miners' | 'connected' | 'authorized' | 'hashesPerSecond' | 'accepted' | 'stale' | 'rejected'
> {
  const sum = {
    miners: 0,
    connected: 0,
    authorized: 0,
    hashesPerSecond: 0,
    accepted: 0,
    stale: 0,
    rejected: 0,
  };
  for (const group of miners) {
    const t = group.stats().total;
    sum.miners += t.workers;
    sum.connected += t.connected;
    sum.authorized += t.authorized;
    sum.hashesPerSecond += t.hashesPerSecond;
    sum.accepted += t.accepted;
    sum.stale += t.stale;
    sum.rejected += t.rejected - t.stale;
  }
  return sum;
}

/** Credited shares and block records from Redis, the height from the daemon. */
export async function samplePool(sources: SampleSources): Promise<PoolSample> {
  const k = reporterKeys(sources.keys, sources.chain);
  const [workers, records, height] = await Promise.all([
    readWorkers(sources.redis, sources.keys, sources.chain),
    sources.redis.hvals(k.blocks),
    sources.height(),
  ]);
  let credited = 0;
  for (const counters of workers.values()) credited += counters.accepted;
  let blocksAccepted = 0;
  let blocksRejected = 0;
  for (const text of records) {
    const state = (JSON.parse(text) as BlockRecord).state;
    if (state === 'accepted' || state === 'confirmed') blocksAccepted++;
    else if (state === 'rejected') blocksRejected++;
  }
  return {
    elapsedMs: Date.now() - sources.startedAt,
    ...sampleMiners(sources.miners),
    credited,
    blocksFound: records.length,
    blocksAccepted,
    blocksRejected,
    height,
  };
}

function shares(s: PoolSample): string {
  const other = s.rejected > 0 ? `, ${s.rejected} other rejected` : '';
  return `shares ${s.accepted} accepted, ${s.stale} stale${other}`;
}

function blocks(s: PoolSample): string {
  const rejected = s.blocksRejected > 0 ? `, ${s.blocksRejected} rejected` : '';
  return `blocks ${s.blocksFound} found, ${s.blocksAccepted} accepted${rejected}`;
}

/** `[12s] miners 20/20 · 4.00 kH/s · shares 31 accepted, 1 stale · credited 28 · blocks 31 found, 31 accepted · height 564` */
export function formatStatus(s: PoolSample): string {
  return [
    `[${Math.round(s.elapsedMs / 1000)}s] miners ${s.authorized}/${s.miners}`,
    formatHashRate(s.hashesPerSecond),
    shares(s),
    `credited ${s.credited}`,
    blocks(s),
    `height ${s.height}`,
  ].join(' · ');
}

/** The last line: what the run did in total. */
export function formatSummary(s: PoolSample, leftBehind: string): string {
  return [
    `demo done after ${(s.elapsedMs / 1000).toFixed(0)} s: ${s.miners} miners`,
    shares(s),
    `credited ${s.credited}`,
    blocks(s),
    `height ${s.height}`,
    leftBehind,
  ].join(' · ');
}
