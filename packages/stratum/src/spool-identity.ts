import { randomUUID } from 'node:crypto';
import { closeSync, fdatasyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SPOOL_ID } from '@hashwire/protocol';

/** The spool's identity and the sequence numbers reserved so far (`{ spoolId, seqReserved }`). */
export const IDENTITY_FILE = 'spool.json';
/** Sequence numbers reserved per write of the identity file. */
const SEQ_BLOCK = 100_000;

/**
 * A spool's identity (reporters keep its acknowledgements under it) and its sequence numbers
 * for sub-batches: created with the spool, kept in `<dir>/spool.json` across restarts.
 * Numbers are reserved in blocks, the file written whole (fsync, rename) before any of a block
 * is given; a restart continues after every number reserved before, so a number is never
 * given twice.
 */
export class SpoolIdentity {
  private nextSeq: number;

  private constructor(
    private readonly file: string,
    readonly spoolId: string,
    private reserved: number,
  ) {
    this.nextSeq = reserved;
  }

  /** Reads the identity of the spool in `dir`, or makes one. Throws, naming the file, on a damaged one. */
  static open(dir: string): SpoolIdentity {
    const file = join(dir, IDENTITY_FILE);
    let text: string | null = null;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (text === null) {
      const identity = new SpoolIdentity(file, randomUUID(), 0);
      identity.reserve(0);
      return identity;
    }
    let parsed: { spoolId?: unknown; seqReserved?: unknown } = {};
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      // reported below
    }
    const { spoolId, seqReserved } = parsed;
    if (
      typeof spoolId !== 'string' ||
      !SPOOL_ID.test(spoolId) ||
      typeof seqReserved !== 'number' ||
      !Number.isSafeInteger(seqReserved) ||
      seqReserved < 0
    ) {
      throw new Error(`${file}: not a spool identity ({ spoolId, seqReserved }); fix or remove it`);
    }
    return new SpoolIdentity(file, spoolId, seqReserved);
  }

  /** The next number to give: every number below it may have been given. */
  get next(): number {
    return this.nextSeq;
  }

  /** `count` consecutive new numbers: returns the first. */
  allocate(count: number): number {
    if (this.nextSeq + count > this.reserved) this.reserve(count);
    const first = this.nextSeq;
    this.nextSeq += count;
    return first;
  }

  private reserve(count: number): void {
    const reserved = this.nextSeq + count + SEQ_BLOCK;
    const tmp = `${this.file}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, `${JSON.stringify({ spoolId: this.spoolId, seqReserved: reserved })}\n`);
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
    this.reserved = reserved;
  }
}
