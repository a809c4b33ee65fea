import type { BucketRing, Share } from '@hashwire/protocol';
import type { ShareBatch } from './spool.js';

/** `<spool batch id>:<bucket>`: the same after any restart, whatever reporters are up. */
export function subBatchId(batchId: string, bucket: number): string {
  return `${batchId}:${bucket}`;
}

/** Splits a batch per ring bucket, buckets ascending, shares in spool order. */
export function splitBatch(
  batch: ShareBatch,
  ring: BucketRing,
): { id: string; bucket: number; shares: Share[] }[] {
  const byWorker = new Map<string, number>();
  const byBucket = new Map<number, Share[]>();
  for (const share of batch.shares) {
    const key = `${share.account}\n${share.worker}`;
    let bucket = byWorker.get(key);
    if (bucket === undefined) {
      bucket = ring.bucketFor(String(share.account), String(share.worker));
      byWorker.set(key, bucket);
    }
    const list = byBucket.get(bucket);
    if (list) list.push(share);
    else byBucket.set(bucket, [share]);
  }
  return [...byBucket.entries()]
    .sort(([a], [b]) => a - b)
    .map(([bucket, shares]) => ({ id: subBatchId(batch.batchId, bucket), bucket, shares }));
}
