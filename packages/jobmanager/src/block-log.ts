import type { BlockRecord, JobStore } from './job-store.js';

export interface BlockLogOptions {
  /** Records kept while Redis does not take them; past it the oldest is dropped (and counted). @defaultValue 10000 */
  maxQueued?: number;
  /** First pause after a failed write; doubles up to `maxRetryMs`. @defaultValue 100 */
  retryMs?: number;
  /** @defaultValue 2000 */
  maxRetryMs?: number;
  /** A write failed (it is retried). */
  onError?: (error: Error, record: BlockRecord) => void;
  /** A record was dropped because the queue was full. */
  onDropped?: (record: BlockRecord) => void;
}

/**
 * Block records and their events, written to Redis in the order given, after the block went to
 * the daemons: a block never waits on Redis. A write that fails (Redis away) is retried until
 * Redis takes it; one that hangs (Redis frozen) holds the queue until Redis answers again.
 */
export class BlockLog {
  private readonly queue: BlockRecord[] = [];
  private readonly maxQueued: number;
  private readonly retryMs: number;
  private readonly maxRetryMs: number;
  private writing: Promise<void> | null = null;
  private stopped = false;
  private dropped = 0;

  constructor(
    private readonly store: JobStore,
    private readonly options: BlockLogOptions = {},
  ) {
    this.maxQueued = options.maxQueued ?? 10_000;
    this.retryMs = options.retryMs ?? 100;
    this.maxRetryMs = options.maxRetryMs ?? 2000;
  }

  /** Queues the record; returns at once. */
  write(record: BlockRecord): void {
    this.queue.push(record);
    if (this.queue.length > this.maxQueued) {
      const lost = this.queue.shift() as BlockRecord;
      this.dropped++;
      this.options.onDropped?.(lost);
    }
    this.writing ??= this.drain().finally(() => {
      this.writing = null;
    });
  }

  /** Records not yet in Redis, and records dropped because the queue was full. */
  stats(): { pending: number; dropped: number } {
    return { pending: this.queue.length, dropped: this.dropped };
  }

  /** Waits until every queued record is written, or `timeoutMs`; true when nothing is left. */
  async flush(timeoutMs: number): Promise<boolean> {
    if (!this.writing) return this.queue.length === 0;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.writing,
      new Promise((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    return this.queue.length === 0;
  }

  /** Stops retrying (what is left is lost with the process; `flush` first). */
  close(): void {
    this.stopped = true;
  }

  private async drain(): Promise<void> {
    let pauseMs = this.retryMs;
    while (this.queue.length > 0 && !this.stopped) {
      const record = this.queue[0] as BlockRecord;
      try {
        await this.store.recordBlock(record);
        if (this.queue[0] === record) this.queue.shift();
        pauseMs = this.retryMs;
      } catch (error) {
        this.options.onError?.(error as Error, record);
        await new Promise((resolve) => setTimeout(resolve, pauseMs).unref());
        pauseMs = Math.min(pauseMs * 2, this.maxRetryMs);
      }
    }
  }
}
