/** Default cap on one stratum line; real requests are a few hundred bytes. */
export const DEFAULT_MAX_LINE_BYTES = 16 * 1024;

const LF = 0x0a;
const CR = 0x0d;

/** Raised when a peer sends a line longer than allowed; the connection should be closed. */
export class FrameError extends Error {
  override readonly name = 'FrameError';
  constructor(
    readonly maxLineBytes: number,
    readonly seenBytes: number,
  ) {
    super(`line exceeds the maximum of ${maxLineBytes} bytes (got ${seenBytes} bytes without a newline)`);
  }
}

export interface LineFramerOptions {
  /**
   * Longest line accepted, without its line ending.
   * @defaultValue 16384
   */
  maxLineBytes?: number;
}

/**
 * Splits a byte stream into newline-terminated lines (LF or CRLF), across any chunking.
 * Empty lines are skipped. Buffers at most `maxLineBytes` of an unfinished line: the
 * moment a partial line passes the cap, `push` throws FrameError, so a peer cannot make
 * us hold a megabyte waiting for a newline.
 */
export class LineFramer {
  readonly maxLineBytes: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(options: LineFramerOptions = {}) {
    this.maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  }

  /** Bytes of an unfinished line held right now. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  /** Feed a chunk; returns the complete lines it finished, in order (decoded as UTF-8). */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    let nl = chunk.indexOf(LF, start);
    while (nl !== -1) {
      let line: Buffer;
      if (this.pendingBytes > 0) {
        const tail = chunk.subarray(start, nl);
        const total = this.pendingBytes + tail.length;
        const last = tail.length > 0 ? tail[tail.length - 1] : this.lastPendingByte();
        this.checkLength(last === CR ? total - 1 : total, true);
        this.pending.push(tail);
        line = Buffer.concat(this.pending, total);
        this.pending = [];
        this.pendingBytes = 0;
      } else {
        line = chunk.subarray(start, nl);
      }
      let end = line.length;
      if (end > 0 && line[end - 1] === CR) end--;
      this.checkLength(end, true);
      if (end > 0) lines.push(line.toString('utf8', 0, end));
      start = nl + 1;
      nl = chunk.indexOf(LF, start);
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      // A trailing CR may belong to a CRLF split across chunks: allow one byte of slack.
      this.checkLength(this.pendingBytes + rest.length - 1, false);
      // Copy: the caller may reuse its chunk buffer.
      this.pending.push(Buffer.from(rest));
      this.pendingBytes += rest.length;
    }
    return lines;
  }

  /**
   * A copy of the unfinished line held now (empty when none): what another framer, in another
   * process, must be fed first to carry on where this one stopped.
   */
  unfinished(): Buffer {
    return Buffer.concat(this.pending, this.pendingBytes);
  }

  /** Drop any unfinished line (on disconnect). */
  reset(): void {
    this.pending = [];
    this.pendingBytes = 0;
  }

  private lastPendingByte(): number | undefined {
    const last = this.pending[this.pending.length - 1];
    return last?.[last.length - 1];
  }

  private checkLength(bytes: number, complete: boolean): void {
    if (bytes > this.maxLineBytes) {
      this.reset();
      throw new FrameError(this.maxLineBytes, complete ? bytes : bytes + 1);
    }
  }
}
