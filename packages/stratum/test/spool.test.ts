import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Share } from '@hashwire/protocol';
import { type ShareBatch, ShareSpool } from '@hashwire/stratum';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hw-spool-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function share(n: number): Share {
  return {
    shareId: `sh${n}`,
    sessionId: 'sess',
    account: 'rltc1qacct',
    worker: 'w1',
    jobId: 'j1',
    extranonce1: '00000001',
    extranonce2: n.toString(16).padStart(8, '0'),
    ntime: '65f1c2a0',
    nonce: '00000000',
    version: '20000000',
    diff: 1,
    actualDiff: 1.5,
    result: 'accepted',
    ts: 1_700_000_000_000 + n,
    ip: '127.0.0.1',
  };
}

describe('share spool', () => {
  it('acknowledges a share only once it is on disk, and batches what arrived together', async () => {
    const spool = await ShareSpool.open({ dir, batchIntervalMs: 60_000 });
    await Promise.all([0, 1, 2].map((n) => spool.append(share(n))));
    expect(spool.stats()).toMatchObject({ open: 3, appended: 3, pendingBatches: 0 });
    const batch = spool.seal()!;
    expect(batch.shares.map((s) => s.shareId)).toEqual(['sh0', 'sh1', 'sh2']);
    expect(spool.pendingBatchIds()).toEqual([batch.batchId]);
    expect(spool.loadBatch(batch.batchId)).toEqual(batch);
    spool.ack(batch.batchId);
    spool.ack(batch.batchId); // a duplicate ack changes nothing
    expect(spool.stats()).toMatchObject({ pendingBatches: 0, pendingShares: 0, acked: 3 });
    expect(readdirSync(dir).filter((f) => f.startsWith('batch-'))).toEqual([]);
    spool.close();
  });

  it('seals a batch by itself at batchMaxShares and on the interval', async () => {
    const spool = await ShareSpool.open({ dir, batchIntervalMs: 60_000, batchMaxShares: 5 });
    const sealed: ShareBatch[] = [];
    spool.on('batch', (b) => sealed.push(b));
    await Promise.all(Array.from({ length: 12 }, (_, n) => spool.append(share(n))));
    // One group commit of 12 shares passes the cap once: sealed as one batch.
    expect(sealed.map((b) => b.shares.length)).toEqual([12]);
    spool.close();

    const timed = await ShareSpool.open({ dir: join(dir, 't'), batchIntervalMs: 20 });
    const next = new Promise<ShareBatch>((resolve) => timed.once('batch', resolve));
    await timed.append(share(99));
    expect((await next).shares.map((s) => s.shareId)).toEqual(['sh99']);
    timed.close();
  });

  it('replays, after a SIGKILL, every acknowledged share with its batch id unchanged', async () => {
    // A child process appends shares, seals one batch, appends more, reports, and is killed.
    const script = `
      import { ShareSpool } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
      const spool = await ShareSpool.open({ dir: ${JSON.stringify(dir)}, batchIntervalMs: 60000 });
      const mk = (n) => ({ shareId: 'k' + n, sessionId: 's', account: 'a', worker: 'w', jobId: 'j', extranonce1: '00', extranonce2: '00', ntime: '00', nonce: '00', version: '00', diff: 1, actualDiff: 1, result: 'accepted', ts: n, ip: '' });
      for (let n = 0; n < 4; n++) await spool.append(mk(n));
      const b = spool.seal();
      for (let n = 4; n < 7; n++) await spool.append(mk(n));
      process.stdout.write(b.batchId + '\\n');
      process.kill(process.pid, 'SIGKILL');
    `;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(run.signal).toBe('SIGKILL');
    const firstBatchId = run.stdout.trim();

    const spool = await ShareSpool.open({ dir, batchIntervalMs: 60_000 });
    const ids = spool.pendingBatchIds();
    expect(ids).toHaveLength(2);
    expect(ids).toContain(firstBatchId);
    const all = ids.flatMap((id) => spool.loadBatch(id)!.shares.map((s) => s.shareId)).sort();
    expect(all).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6']);
    expect(spool.stats().pendingShares).toBe(7);
    spool.close();
  });

  it('journals each batch: seal time, split, acks, quarantines; a torn line or a stray journal changes nothing', async () => {
    const spool = await ShareSpool.open({ dir, batchIntervalMs: 60_000 });
    await Promise.all([0, 1, 2].map((n) => spool.append(share(n))));
    const batch = spool.seal()!;
    expect(spool.batchState(batch.batchId)).toMatchObject({
      sealedAt: batch.sealedAt,
      legacy: false,
      split: null,
    });
    const split = {
      firstSendAt: batch.sealedAt + 5,
      layout: { buckets: 100, bucketsPerAccount: 3, virtualNodes: 1024 },
      subs: [
        { id: `${batch.batchId}:1`, bucket: 1, shares: [0, 2] },
        { id: `${batch.batchId}:2`, bucket: 2, shares: [1] },
      ],
    };
    spool.recordSplit(batch.batchId, split);
    // A second split is never taken: the first one stands.
    spool.recordSplit(batch.batchId, { ...split, subs: [{ id: 'other', bucket: 9, shares: [0, 1, 2] }] });
    spool.recordAck(batch.batchId, `${batch.batchId}:1`, 'rep-a', 2);
    const file = spool.quarantine({
      subBatchId: `${batch.batchId}:2`,
      batchId: batch.batchId,
      bucket: 2,
      reason: 'refused',
      message: 'shares[0].jobId …',
      refusals: [],
      stratumId: 'st',
      chain: 'ltc',
      quarantinedAt: 1,
      sealedAt: batch.sealedAt,
      firstSendAt: split.firstSendAt,
      shares: [batch.shares[1]!],
    });
    expect(file).toBe(join(dir, 'quarantine', `${batch.batchId}_2.json`));
    // A machine crash mid-write, then a record after it: only the torn one is lost.
    appendFileSync(join(dir, `batch-${batch.batchId}.journal`), '{"acked":"torn');
    spool.recordAck(batch.batchId, `${batch.batchId}:9`, 'rep-a', 0);
    // A journal whose batch already left (a crash between the two deletes).
    writeFileSync(join(dir, `batch-${randomUUID()}.journal`), '{"sealed":1}\n');
    spool.close();

    const reopened = await ShareSpool.open({ dir, batchIntervalMs: 60_000 });
    const state = reopened.batchState(batch.batchId)!;
    expect(state.split).toEqual(split);
    expect([...state.acked]).toEqual([`${batch.batchId}:1`, `${batch.batchId}:9`]);
    expect([...state.quarantined]).toEqual([`${batch.batchId}:2`]);
    expect(reopened.loadBatch(batch.batchId)).toEqual(batch);
    expect(reopened.quarantineStats()).toEqual({ subBatches: 1, shares: 1, dir: join(dir, 'quarantine') });
    reopened.ack(batch.batchId);
    expect(readdirSync(dir).sort()).toEqual(['open.jsonl', 'quarantine', 'spool.json']);
    reopened.close();
  });

  it('keeps its identity and never gives a sequence number twice across restarts; its floor is the lowest seq still pending', async () => {
    const spool = await ShareSpool.open({ dir, batchIntervalMs: 60_000 });
    const id = spool.spoolId;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await Promise.all([0, 1, 2].map((n) => spool.append(share(n))));
    const a = spool.seal()!;
    await Promise.all([3, 4].map((n) => spool.append(share(n))));
    const b = spool.seal()!;
    const first = spool.allocateSeqs(2);
    const layout = { buckets: 100, bucketsPerAccount: 3, virtualNodes: 1024 };
    spool.recordSplit(a.batchId, {
      firstSendAt: 1,
      layout,
      subs: [
        { id: `${a.batchId}:1`, bucket: 1, shares: [0, 2], seq: first },
        { id: `${a.batchId}:2`, bucket: 2, shares: [1], seq: first + 1 },
      ],
    });
    const second = spool.allocateSeqs(1);
    expect(second).toBe(first + 2);
    spool.recordSplit(b.batchId, {
      firstSendAt: 1,
      layout,
      subs: [{ id: `${b.batchId}:1`, bucket: 1, shares: [0, 1], seq: second }],
    });
    expect(spool.floor()).toBe(first);
    spool.ack(a.batchId);
    expect(spool.floor()).toBe(second); // a left: everything below b's seq was acknowledged
    // Killed (no close): the next process is the same spool and continues above every seq given.
    const reopened = await ShareSpool.open({ dir, batchIntervalMs: 60_000 });
    expect(reopened.spoolId).toBe(id);
    expect(reopened.floor()).toBe(second); // b is still pending, with its recorded seq
    expect(reopened.batchState(b.batchId)!.split!.subs[0]!.seq).toBe(second);
    const next = reopened.allocateSeqs(1);
    expect(next).toBeGreaterThan(second);
    reopened.ack(b.batchId);
    expect(reopened.floor()).toBe(next + 1);
    reopened.close();
    spool.close();
  });

  it('gives sequence numbers to a split an older version recorded without them, once', async () => {
    const spool = await ShareSpool.open({ dir, batchIntervalMs: 60_000 });
    await Promise.all([0, 1].map((n) => spool.append(share(n))));
    const batch = spool.seal()!;
    const subs = [
      { id: `${batch.batchId}:1`, bucket: 1, shares: [0] },
      { id: `${batch.batchId}:2`, bucket: 2, shares: [1] },
    ];
    spool.recordSplit(batch.batchId, {
      firstSendAt: 1,
      layout: { buckets: 100, bucketsPerAccount: 3, virtualNodes: 1024 },
      subs,
    });
    expect(spool.batchState(batch.batchId)!.split!.subs.map((s) => s.seq)).toEqual([undefined, undefined]);
    spool.recordSeqs(batch.batchId, [7, 8]);
    spool.recordSeqs(batch.batchId, [70, 80]); // never taken: the first stands
    spool.close();
    const reopened = await ShareSpool.open({ dir, batchIntervalMs: 60_000 });
    expect(reopened.batchState(batch.batchId)!.split!.subs.map((s) => s.seq)).toEqual([7, 8]);
    expect(reopened.floor()).toBe(7);
    reopened.close();
  });

  it('refuses appends after close', async () => {
    const spool = await ShareSpool.open({ dir });
    spool.close();
    await expect(spool.append(share(1))).rejects.toThrow('share spool is closed');
  });

  it('refuses to open on a damaged identity file, naming it', async () => {
    writeFileSync(join(dir, 'spool.json'), '{"spoolId":"a b"}\n');
    await expect(ShareSpool.open({ dir })).rejects.toThrow(
      `${join(dir, 'spool.json')}: not a spool identity`,
    );
  });
});
