import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  closeSync,
  fdatasyncSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Share } from '@hashwire/protocol';

/**
 * The share spool: a share is acknowledged to the miner only after it is written here, and
 * leaves only when a reporter has acknowledged the batch holding it. Shares are appended to
 * an open segment file (one write per event-loop turn for all shares that arrived in it);
 * every `batchIntervalMs` or `batchMaxShares` the segment is closed and renamed to
 * `batch-<id>.jsonl`, and that id — fixed on disk — is the batch id the reporter dedupes on.
 * A process killed at any point loses nothing that was acknowledged (the kernel keeps what
 * write() accepted) and, on restart, replays every batch file with its original id.
 */
export interface ShareSpoolOptions {
  /** Directory of this stratum instance's spool; created if missing. */
  dir: string;
  /** @defaultValue 1000 */
  batchIntervalMs?: number;
  /** @defaultValue 5000 */
  batchMaxShares?: number;
  /**
   * `fdatasync` after each append: survives a machine crash, not only a process kill.
   * @defaultValue false
   */
  sync?: boolean;
}

export interface ShareBatch {
  batchId: string;
  shares: Share[];
}

export interface SpoolStats {
  /** Shares written but not yet in a sealed batch. */
  open: number;
  /** Sealed batches waiting for a reporter's ack. */
  pendingBatches: number;
  pendingShares: number;
  appended: number;
  acked: number;
}

const OPEN_SEGMENT = 'open.jsonl';
const BATCH = /^batch-([0-9a-f-]{36})\.jsonl$/;

function readShares(file: string): Share[] {
  const text = readFileSync(file, 'utf8');
  const shares: Share[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      shares.push(JSON.parse(line) as Share);
    } catch {
      // A torn last line from a crash mid-write: that share was never acknowledged.
    }
  }
  return shares;
}

export class ShareSpool extends EventEmitter<{ batch: [ShareBatch]; error: [Error] }> {
  private readonly dir: string;
  private readonly intervalMs: number;
  private readonly maxShares: number;
  private readonly sync: boolean;
  private fd: number | null = null;
  private openShares: Share[] = [];
  /** Sealed batches on disk: id → share count. Their shares are read back only to send them. */
  private readonly pending = new Map<string, number>();
  private queue: { share: Share; line: string; done: () => void; fail: (e: Error) => void }[] = [];
  private flushScheduled = false;
  private timer: NodeJS.Timeout | null = null;
  private appended = 0;
  private acked = 0;
  private closed = false;

  private constructor(options: ShareSpoolOptions) {
    super();
    this.dir = options.dir;
    this.intervalMs = options.batchIntervalMs ?? 1000;
    this.maxShares = options.batchMaxShares ?? 5000;
    this.sync = options.sync ?? false;
  }

  /** Opens the spool and recovers what a previous process left: every batch, and its open segment sealed as a batch. */
  static async open(options: ShareSpoolOptions): Promise<ShareSpool> {
    await mkdir(options.dir, { recursive: true });
    const spool = new ShareSpool(options);
    spool.recover();
    spool.fd = openSync(join(spool.dir, OPEN_SEGMENT), 'a');
    spool.timer = setInterval(() => spool.seal(), spool.intervalMs);
    spool.timer.unref();
    return spool;
  }

  private recover(): void {
    const leftover = join(this.dir, OPEN_SEGMENT);
    const names = readdirSync(this.dir);
    if (names.includes(OPEN_SEGMENT)) {
      if (readShares(leftover).length > 0)
        renameSync(leftover, join(this.dir, `batch-${randomUUID()}.jsonl`));
      else unlinkSync(leftover);
    }
    for (const name of readdirSync(this.dir)) {
      const match = BATCH.exec(name);
      if (!match) continue;
      const count = readShares(join(this.dir, name)).length;
      if (count === 0) unlinkSync(join(this.dir, name));
      else this.pending.set(match[1]!, count);
    }
  }

  /** Ids of sealed batches not yet acknowledged (replayed ones included), oldest first. */
  pendingBatchIds(): string[] {
    return [...this.pending.keys()];
  }

  /** Reads a pending batch back from disk (to send or resend it). */
  loadBatch(batchId: string): ShareBatch | null {
    if (!this.pending.has(batchId)) return null;
    return { batchId, shares: readShares(join(this.dir, `batch-${batchId}.jsonl`)) };
  }

  /** Resolves once the share is on disk (page cache, or synced with `sync`). */
  append(share: Share): Promise<void> {
    if (this.closed) return Promise.reject(new Error('share spool is closed'));
    return new Promise((done, fail) => {
      this.queue.push({ share, line: `${JSON.stringify(share)}\n`, done, fail });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // Group commit: every share that arrives in this turn goes out in one write().
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const items = this.queue;
    this.queue = [];
    if (items.length === 0 || this.fd === null) return;
    try {
      writeSync(this.fd, items.map((i) => i.line).join(''));
      if (this.sync) fdatasyncSync(this.fd);
    } catch (error) {
      for (const item of items) item.fail(error as Error);
      this.emit('error', error as Error);
      return;
    }
    for (const item of items) this.openShares.push(item.share);
    this.appended += items.length;
    for (const item of items) item.done();
    if (this.openShares.length >= this.maxShares) this.seal();
  }

  /** Closes the open segment into a batch with a fresh id and emits it; no-op when empty. */
  seal(): ShareBatch | null {
    if (this.queue.length > 0) this.flush();
    if (this.openShares.length === 0 || this.fd === null) return null;
    closeSync(this.fd);
    const batchId = randomUUID();
    const sealed = join(this.dir, `batch-${batchId}.jsonl`);
    renameSync(join(this.dir, OPEN_SEGMENT), sealed);
    this.fd = this.closed ? null : openSync(join(this.dir, OPEN_SEGMENT), 'a');
    const batch = { batchId, shares: this.openShares };
    this.openShares = [];
    this.pending.set(batchId, batch.shares.length);
    this.emit('batch', batch);
    return batch;
  }

  /** A reporter acknowledged the batch: it leaves the spool. Unknown ids are ignored (a duplicate ack). */
  ack(batchId: string): void {
    const count = this.pending.get(batchId);
    if (count === undefined) return;
    this.pending.delete(batchId);
    unlinkSync(join(this.dir, `batch-${batchId}.jsonl`));
    this.acked += count;
  }

  stats(): SpoolStats {
    let pendingShares = 0;
    for (const count of this.pending.values()) pendingShares += count;
    return {
      open: this.openShares.length + this.queue.length,
      pendingBatches: this.pending.size,
      pendingShares,
      appended: this.appended,
      acked: this.acked,
    };
  }

  /** Writes what is queued, seals the open segment, stops the timer. Pending batches stay on disk. */
  close(): void {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    this.closed = true;
    this.flush();
    this.seal();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
