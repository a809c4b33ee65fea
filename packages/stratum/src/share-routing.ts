import type { BucketRing, Share } from '@hashwire/protocol';
import type { SplitRecord } from './spool-journal.js';
import type { ShareBatch } from './spool.js';

/** `<spool batch id>:<bucket>`: the same after any restart, whatever reporters are up. */
export function subBatchId(batchId: string, bucket: number): string {
  return `${batchId}:${bucket}`;
}

/** One sub-batch: its id, bucket, shares and their positions in the spool batch, and its seq once recorded. */
export interface SubBatchSplit {
  id: string;
  seq?: number;
  bucket: number;
  shares: Share[];
  indices: number[];
}

/** Splits a batch per ring bucket, buckets ascending, shares in spool order. */
export function splitBatch(batch: Pick<ShareBatch, 'batchId' | 'shares'>, ring: BucketRing): SubBatchSplit[] {
  const byWorker = new Map<string, number>();
  const byBucket = new Map<number, number[]>();
  for (const [i, share] of batch.shares.entries()) {
    const key = `${share.account}\n${share.worker}`;
    let bucket = byWorker.get(key);
    if (bucket === undefined) {
      bucket = ring.bucketFor(String(share.account), String(share.worker));
      byWorker.set(key, bucket);
    }
    const list = byBucket.get(bucket);
    if (list) list.push(i);
    else byBucket.set(bucket, [i]);
  }
  return [...byBucket.entries()]
    .sort(([a], [b]) => a - b)
    .map(([bucket, indices]) => ({
      id: subBatchId(batch.batchId, bucket),
      bucket,
      shares: indices.map((i) => batch.shares[i]!),
      indices,
    }));
}

/**
 * The sub-batches of a split recorded in the spool journal, whatever the ring layout is now:
 * ids and membership never change once a sub-batch may have reached a reporter. Null when the
 * record does not fit the batch file (a position out of range or used twice).
 */
export function recordedSplit(batch: Pick<ShareBatch, 'shares'>, split: SplitRecord): SubBatchSplit[] | null {
  const used = new Set<number>();
  const subs: SubBatchSplit[] = [];
  for (const sub of split.subs) {
    const shares: Share[] = [];
    for (const i of sub.shares) {
      const share = batch.shares[i];
      if (share === undefined || used.has(i)) return null;
      used.add(i);
      shares.push(share);
    }
    subs.push({
      id: sub.id,
      bucket: sub.bucket,
      shares,
      indices: sub.shares,
      ...(sub.seq !== undefined ? { seq: sub.seq } : {}),
    });
  }
  return used.size === batch.shares.length ? subs : null;
}
