import { closeSync, existsSync, fstatSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';

export interface RotatingLogOptions {
  file: string;
  /**
   * Once the file holds this many bytes it is rotated at the next line boundary: `name.log`
   * becomes `name.log.1`, `.1` becomes `.2`, … and the oldest beyond `keep` is deleted.
   * @defaultValue 50 MiB
   */
  maxBytes?: number;
  /** Rotated files kept besides the live one. @defaultValue 5 */
  keep?: number;
}

/**
 * An append-only log file that rotates by size. Writes are synchronous, in arrival order, and
 * a file is only rotated at a line end, so no line is lost or split across two files (a file
 * may exceed `maxBytes` by the rest of the line that crossed it). One writer per file:
 * the supervisor keeps one per process name across its restarts.
 */
export class RotatingLog {
  readonly file: string;
  readonly maxBytes: number;
  readonly keep: number;
  #fd: number | null;
  #size: number;
  #atLineEnd = true;
  #rotations = 0;

  constructor(options: RotatingLogOptions) {
    this.file = options.file;
    this.maxBytes = options.maxBytes ?? 50 * 1024 * 1024;
    this.keep = options.keep ?? 5;
    if (!Number.isInteger(this.maxBytes) || this.maxBytes < 1)
      throw new RangeError(`log maxBytes must be a positive integer, got ${options.maxBytes}`);
    if (!Number.isInteger(this.keep) || this.keep < 1)
      throw new RangeError(`log keep must be a positive integer, got ${options.keep}`);
    this.#fd = openSync(this.file, 'a');
    this.#size = fstatSync(this.#fd).size;
  }

  /** How many times this writer rotated the file. */
  get rotations(): number {
    return this.#rotations;
  }

  write(chunk: Buffer | string): void {
    if (this.#fd === null) return;
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (data.length === 0) return;
    let start = 0;
    while (start < data.length) {
      if (this.#size >= this.maxBytes && this.#atLineEnd) this.#rotate();
      // Up to the first line end at or past the size limit, so the next part goes to a new file.
      const room = Math.max(0, this.maxBytes - this.#size - 1);
      const lineEnd = data.indexOf(0x0a, start + room);
      const end = lineEnd === -1 ? data.length : lineEnd + 1;
      this.#append(data, start, end);
      start = end;
    }
  }

  #append(data: Buffer, start: number, end: number): void {
    let offset = start;
    while (offset < end) offset += writeSync(this.#fd as number, data, offset, end - offset);
    this.#size += end - start;
    this.#atLineEnd = data[end - 1] === 0x0a;
  }

  #rotate(): void {
    closeSync(this.#fd as number);
    this.#fd = null;
    rmSync(`${this.file}.${this.keep}`, { force: true });
    for (let n = this.keep - 1; n >= 1; n--) {
      if (existsSync(`${this.file}.${n}`)) renameSync(`${this.file}.${n}`, `${this.file}.${n + 1}`);
    }
    renameSync(this.file, `${this.file}.1`);
    this.#fd = openSync(this.file, 'a');
    this.#size = 0;
    this.#rotations++;
  }

  close(): void {
    if (this.#fd === null) return;
    closeSync(this.#fd);
    this.#fd = null;
  }
}
