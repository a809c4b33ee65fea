import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  closeSync,
  fdatasyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Share } from '@hashwire/protocol';
import { SpoolIdentity } from './spool-identity.js';
import {
  type BatchState,
  QUARANTINE_DIR,
  type QuarantineRecord,
  type SplitRecord,
  appendJournal,
  journalPath,
  readJournal,
  scanQuarantine,
  writeQuarantine,
} from './spool-journal.js';

/**
 * The share spool: a share is acknowledged to the miner only after it is written here, and
 * leaves only when a reporter has acknowledged the batch holding it. Shares are appended to
 * an open segment file (one write per event-loop turn for all shares that arrived in it);
 * every `batchIntervalMs` or `batchMaxShares` the segment is closed and renamed to
 * `batch-<id>.jsonl`, and that id — fixed on disk — is the batch id the reporter dedupes on.
 * A process killed at any point loses nothing that was acknowledged (the kernel keeps what
 * write() accepted) and, on restart, replays every batch with its original id.
 *
 * Next to each batch, its journal (`spool-journal.ts`) records the seal time, the split into
 * sub-batches (once, before the first send) and each sub-batch acknowledged or quarantined, so
 * a restart sends only what no reporter acknowledged, under the same sub-batch ids. A batch
 * leaves (both files deleted) once every sub-batch is acknowledged or quarantined; quarantined
 * sub-batches stay in `quarantine/` until an operator deals with them.
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
  /** When it was sealed (epoch ms); for a batch spooled by an older version, its file's mtime. */
  sealedAt: number;
}

/** Sub-batches in `<dir>/quarantine`, on disk now (whatever process put them there). */
export interface QuarantineStats {
  subBatches: number;
  shares: number;
  dir: string;
}

export interface SpoolStats {
  /** Shares written but not yet in a sealed batch. */
  open: number;
  /** Sealed batches waiting for a reporter's ack. */
  pendingBatches: number;
  pendingShares: number;
  appended: number;
  /** Shares that left the spool acknowledged by a reporter. */
  acked: number;
  /** Shares this process moved to quarantine. */
  quarantined: number;
}

const OPEN_SEGMENT = 'open.jsonl';
const BATCH = /^batch-([0-9a-f-]{36})\.jsonl$/;
const JOURNAL = /^batch-([0-9a-f-]{36})\.journal$/;

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
  /**
   * Sealed batches on disk: id → share count and shares quarantined so far. Their shares are
   * read back only to send them.
   */
  private readonly pending = new Map<string, { shares: number; quarantined: number }>();
  private readonly quarantineDir: string;
  private quarantineFiles = new Map<string, number>();
  private queue: { share: Share; line: string; done: () => void; fail: (e: Error) => void }[] = [];
  private flushScheduled = false;
  private timer: NodeJS.Timeout | null = null;
  private appended = 0;
  private acked = 0;
  private quarantinedShares = 0;
  private closed = false;
  private identity!: SpoolIdentity;
  /** Pending batches with sequence numbers: id → their lowest. */
  private readonly minSeqs = new Map<string, number>();

  private constructor(options: ShareSpoolOptions) {
    super();
    this.dir = options.dir;
    this.intervalMs = options.batchIntervalMs ?? 1000;
    this.maxShares = options.batchMaxShares ?? 5000;
    this.sync = options.sync ?? false;
    this.quarantineDir = join(this.dir, QUARANTINE_DIR);
  }

  /** Opens the spool and recovers what a previous process left: every batch, and its open segment sealed as a batch. */
  static async open(options: ShareSpoolOptions): Promise<ShareSpool> {
    await mkdir(options.dir, { recursive: true });
    const spool = new ShareSpool(options);
    spool.identity = SpoolIdentity.open(options.dir);
    spool.recover();
    spool.fd = openSync(join(spool.dir, OPEN_SEGMENT), 'a');
    spool.timer = setInterval(() => spool.seal(), spool.intervalMs);
    spool.timer.unref();
    return spool;
  }

  /** The spool's identity, the same after every restart. */
  get spoolId(): string {
    return this.identity.spoolId;
  }

  /** `count` new sequence numbers for sub-batches: returns the first of them (consecutive). */
  allocateSeqs(count: number): number {
    return this.identity.allocate(count);
  }

  /**
   * The lowest sequence number that may still be sent: every sub-batch below it was
   * acknowledged or quarantined (its batch left the spool), so reporters may forget it.
   */
  floor(): number {
    let low = this.identity.next;
    for (const seq of this.minSeqs.values()) if (seq < low) low = seq;
    return low;
  }

  private noteSeqs(batchId: string, seqs: readonly (number | undefined)[]): void {
    let low = Number.POSITIVE_INFINITY;
    for (const seq of seqs) if (seq !== undefined && seq < low) low = seq;
    if (low !== Number.POSITIVE_INFINITY) this.minSeqs.set(batchId, low);
  }

  private recover(): void {
    const leftover = join(this.dir, OPEN_SEGMENT);
    const names = readdirSync(this.dir);
    if (names.includes(OPEN_SEGMENT)) {
      // Never sent under any id: sealed now, with a fresh one.
      if (readShares(leftover).length > 0) this.sealFile(leftover, randomUUID(), Date.now());
      else unlinkSync(leftover);
    }
    const batches = new Set<string>();
    for (const name of readdirSync(this.dir)) {
      const match = BATCH.exec(name);
      if (!match) continue;
      const count = readShares(join(this.dir, name)).length;
      if (count === 0) {
        unlinkSync(join(this.dir, name));
        continue;
      }
      batches.add(match[1]!);
      this.pending.set(match[1]!, { shares: count, quarantined: 0 });
    }
    for (const batchId of batches) {
      const split = readJournal(
        journalPath(this.dir, batchId),
        join(this.dir, `batch-${batchId}.jsonl`),
      ).split;
      if (split)
        this.noteSeqs(
          batchId,
          split.subs.map((sub) => sub.seq),
        );
    }
    for (const name of readdirSync(this.dir)) {
      // A journal whose batch is gone: the batch left (or was never renamed into place) just before a crash.
      const match = JOURNAL.exec(name);
      if (match && !batches.has(match[1]!)) unlinkSync(join(this.dir, name));
    }
    this.quarantineFiles = scanQuarantine(this.quarantineDir, new Map());
  }

  /** The journal first (its seal time), then the batch under its final name. */
  private sealFile(segment: string, batchId: string, sealedAt: number): void {
    appendJournal(journalPath(this.dir, batchId), { sealed: sealedAt }, this.sync);
    renameSync(segment, join(this.dir, `batch-${batchId}.jsonl`));
  }

  /** Ids of sealed batches not yet acknowledged (replayed ones included), oldest first. */
  pendingBatchIds(): string[] {
    return [...this.pending.keys()];
  }

  /** Reads a pending batch back from disk (to send or resend it). */
  loadBatch(batchId: string): ShareBatch | null {
    if (!this.pending.has(batchId)) return null;
    const file = join(this.dir, `batch-${batchId}.jsonl`);
    const { sealedAt } = readJournal(journalPath(this.dir, batchId), file);
    return { batchId, shares: readShares(file), sealedAt };
  }

  /** What the journal says of a pending batch: its split, acknowledged and quarantined sub-batches. */
  batchState(batchId: string): BatchState | null {
    if (!this.pending.has(batchId)) return null;
    return readJournal(journalPath(this.dir, batchId), join(this.dir, `batch-${batchId}.jsonl`));
  }

  /** Records how a batch was split (with its sequence numbers); call once, before its first sub-batch is sent. */
  recordSplit(batchId: string, split: SplitRecord): void {
    if (!this.pending.has(batchId)) return;
    appendJournal(journalPath(this.dir, batchId), { split }, this.sync);
    this.noteSeqs(
      batchId,
      split.subs.map((sub) => sub.seq),
    );
  }

  /** Sequence numbers for a split an older version recorded without them, in its order; before the first send. */
  recordSeqs(batchId: string, seqs: number[]): void {
    if (!this.pending.has(batchId)) return;
    appendJournal(journalPath(this.dir, batchId), { seqs }, this.sync);
    this.noteSeqs(batchId, seqs);
  }

  /** A reporter acknowledged one sub-batch: it is never sent again, even after a restart. */
  recordAck(batchId: string, subBatchId: string, reporterId: string, credited: number): void {
    if (!this.pending.has(batchId)) return;
    appendJournal(
      journalPath(this.dir, batchId),
      { acked: subBatchId, at: Date.now(), reporterId, credited },
      this.sync,
    );
  }

  /**
   * Moves one sub-batch to `quarantine/` (its shares and why) and journals it, so it is never
   * sent again. Returns the quarantine file's path.
   */
  quarantine(record: QuarantineRecord): string {
    const entry = this.pending.get(record.batchId);
    mkdirSync(this.quarantineDir, { recursive: true });
    const file = writeQuarantine(this.quarantineDir, record);
    this.quarantineFiles.set(basename(file), record.shares.length);
    this.quarantinedShares += record.shares.length;
    if (entry) {
      entry.quarantined += record.shares.length;
      appendJournal(
        journalPath(this.dir, record.batchId),
        { quarantined: record.subBatchId, at: record.quarantinedAt, file },
        this.sync,
      );
    }
    return file;
  }

  /** The quarantine directory as it is now (files an operator removed are no longer counted). */
  quarantineStats(): QuarantineStats {
    this.quarantineFiles = scanQuarantine(this.quarantineDir, this.quarantineFiles);
    let shares = 0;
    for (const count of this.quarantineFiles.values()) shares += count;
    return { subBatches: this.quarantineFiles.size, shares, dir: this.quarantineDir };
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
    const sealedAt = Date.now();
    this.sealFile(join(this.dir, OPEN_SEGMENT), batchId, sealedAt);
    this.fd = this.closed ? null : openSync(join(this.dir, OPEN_SEGMENT), 'a');
    const batch = { batchId, shares: this.openShares, sealedAt };
    this.openShares = [];
    this.pending.set(batchId, { shares: batch.shares.length, quarantined: 0 });
    this.emit('batch', batch);
    return batch;
  }

  /**
   * Every sub-batch of the batch was acknowledged or quarantined: it leaves the spool. Unknown
   * ids are ignored (a duplicate ack).
   */
  ack(batchId: string): void {
    const entry = this.pending.get(batchId);
    if (entry === undefined) return;
    this.pending.delete(batchId);
    this.minSeqs.delete(batchId);
    // The batch first: a journal left by a crash here is removed at the next open, whereas a
    // batch without its journal would be sent again as if an older version had spooled it.
    unlinkSync(join(this.dir, `batch-${batchId}.jsonl`));
    try {
      unlinkSync(journalPath(this.dir, batchId));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    this.acked += entry.shares - entry.quarantined;
  }

  stats(): SpoolStats {
    let pendingShares = 0;
    for (const entry of this.pending.values()) pendingShares += entry.shares - entry.quarantined;
    return {
      open: this.openShares.length + this.queue.length,
      pendingBatches: this.pending.size,
      pendingShares,
      appended: this.appended,
      acked: this.acked,
      quarantined: this.quarantinedShares,
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
