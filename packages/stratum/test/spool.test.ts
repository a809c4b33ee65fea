import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
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

  it('refuses appends after close', async () => {
    const spool = await ShareSpool.open({ dir });
    spool.close();
    await expect(spool.append(share(1))).rejects.toThrow('share spool is closed');
  });
});
