import {
  closeSync,
  existsSync,
  fdatasyncSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Share } from '@hashwire/protocol';

/**
 * Each sealed batch `batch-<id>.jsonl` has a journal `batch-<id>.journal` next to it: JSON
 * lines, appended, never rewritten. It is what makes a batch's delivery survive restarts of any
 * age without a second credit: when it was sealed, how it was split into sub-batches (written
 * once, before the first request, so a batch is never split again under another ring layout),
 * and which sub-batches were acknowledged or quarantined (never sent again). A torn last line
 * (a crash mid-write) is ignored: at worst one sub-batch is sent again, which the reporter
 * dedupes on its id while the batch is younger than its `batchTtlS`.
 */
export type JournalRecord =
  | { sealed: number }
  | { split: SplitRecord }
  | { seqs: number[] }
  | { acked: string; at: number; reporterId: string; credited: number }
  | { quarantined: string; at: number; file: string };

/** The ring layout a batch was split with (for operators; the membership below is what counts). */
export interface RingLayoutRecord {
  buckets: number;
  bucketsPerAccount: number;
  virtualNodes: number;
}

export interface SplitRecord {
  /**
   * No reporter can have seen a sub-batch of this batch before this time (epoch ms): the split
   * time, or for a batch an older version spooled (no journal) its file's mtime. A reporter
   * forgets a batch id `batchTtlS` after it first credited it, so a sub-batch still unacked
   * that long after this is quarantined rather than sent again.
   */
  firstSendAt: number;
  layout: RingLayoutRecord;
  /**
   * Sub-batches: id, bucket, the positions of their shares in the batch file, and their
   * sequence number in the spool (absent in splits an older version recorded: given by a later
   * `seqs` record, before the first send of this version).
   */
  subs: { id: string; bucket: number; shares: number[]; seq?: number }[];
}

/** What the journal says about a batch. */
export interface BatchState {
  /** When the batch was sealed (epoch ms); the file's mtime for a batch without a journal. */
  sealedAt: number;
  /** No journal: spooled by an older version, which may have sent it already. */
  legacy: boolean;
  split: SplitRecord | null;
  acked: Set<string>;
  quarantined: Set<string>;
}

/** Why a sub-batch went to quarantine. */
export type QuarantineReason = 'refused' | 'expired';

/** One quarantined sub-batch: `<spoolDir>/quarantine/<batchId>_<bucket>.json`. */
export interface QuarantineRecord {
  subBatchId: string;
  batchId: string;
  bucket: number;
  reason: QuarantineReason;
  /** The reporters' refusal, or why the batch is too old to send. */
  message: string;
  /** Every malformed refusal, one per reporter (empty when expired). */
  refusals: { reporterId: string; code: number; message: string; at: number }[];
  stratumId: string;
  chain: string;
  quarantinedAt: number;
  sealedAt: number;
  firstSendAt: number | null;
  shares: Share[];
}

export const QUARANTINE_DIR = 'quarantine';

export function journalPath(dir: string, batchId: string): string {
  return join(dir, `batch-${batchId}.journal`);
}

/**
 * Appends one record; `sync` also fdatasyncs it (the spool's `sync` option). Each record starts
 * on a new line even after a torn one (a machine crash mid-write), which is then skipped alone.
 */
export function appendJournal(file: string, record: JournalRecord, sync: boolean): void {
  const fd = openSync(file, 'a');
  try {
    writeSync(fd, `\n${JSON.stringify(record)}\n`);
    if (sync) fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function isSplit(value: unknown): value is SplitRecord {
  const split = value as SplitRecord;
  return (
    typeof split === 'object' &&
    split !== null &&
    typeof split.firstSendAt === 'number' &&
    Array.isArray(split.subs) &&
    split.subs.every(
      (s) =>
        typeof s?.id === 'string' &&
        Number.isInteger(s.bucket) &&
        Array.isArray(s.shares) &&
        s.shares.every((i) => Number.isInteger(i)) &&
        (s.seq === undefined || Number.isSafeInteger(s.seq)),
    )
  );
}

/** The journal of `batchFile`, or a legacy state (the file's mtime) when there is none. */
export function readJournal(file: string, batchFile: string): BatchState {
  const state: BatchState = {
    sealedAt: 0,
    legacy: true,
    split: null,
    acked: new Set(),
    quarantined: new Set(),
  };
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue; // a torn last line
    }
    if (typeof record.sealed === 'number') {
      state.sealedAt = record.sealed;
      state.legacy = false;
    } else if ('split' in record && state.split === null && isSplit(record.split)) {
      // The first split is the one: a batch is never split twice.
      state.split = record.split;
    } else if (
      Array.isArray(record.seqs) &&
      state.split &&
      state.split.subs.some((sub) => sub.seq === undefined)
    ) {
      // Sequence numbers for a split an older version recorded: the first such record is the one.
      const seqs = record.seqs as unknown[];
      if (seqs.length === state.split.subs.length && seqs.every((q) => Number.isSafeInteger(q))) {
        state.split = {
          ...state.split,
          subs: state.split.subs.map((sub, i) => ({ ...sub, seq: seqs[i] as number })),
        };
      }
    } else if (typeof record.acked === 'string') state.acked.add(record.acked);
    else if (typeof record.quarantined === 'string') state.quarantined.add(record.quarantined);
  }
  if (state.legacy) state.sealedAt = statSync(batchFile).mtimeMs;
  return state;
}

/** Writes the record whole (temporary file, fsync, rename) and returns its path. */
export function writeQuarantine(dir: string, record: QuarantineRecord): string {
  const file = join(dir, `${record.batchId}_${record.bucket}.json`);
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, `${JSON.stringify(record, null, 1)}\n`);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  return file;
}

/** Quarantined sub-batches on disk now: file name → shares. Unreadable files count 0 shares. */
export function scanQuarantine(dir: string, known: Map<string, number>): Map<string, number> {
  const seen = new Map<string, number>();
  if (!existsSync(dir)) return seen;
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.json')) continue;
    let shares = known.get(name);
    if (shares === undefined) {
      try {
        const record = JSON.parse(readFileSync(join(dir, name), 'utf8')) as { shares?: unknown };
        shares = Array.isArray(record.shares) ? record.shares.length : 0;
      } catch {
        shares = 0;
      }
    }
    seen.set(name, shares);
  }
  return seen;
}
