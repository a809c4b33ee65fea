import { EventEmitter } from 'node:events';
import type { BlockTemplate, DaemonPool } from '@hashwire/chain';

export interface TemplateSourceOptions {
  daemons: DaemonPool;
  /** @defaultValue ['mweb', 'segwit'] */
  rules?: readonly string[];
  /**
   * Safety-net poll of `getbestblockhash`.
   * @defaultValue 500
   */
  pollIntervalMs?: number;
  /**
   * A fresh template (new transactions, same prevhash) this often.
   * @defaultValue 30000
   */
  refreshIntervalMs?: number;
  /**
   * Keep a GBT long poll open (litecoind and bitcoind answer it within milliseconds of a block).
   * @defaultValue true
   */
  longpoll?: boolean;
}

export interface TemplateUpdate {
  template: BlockTemplate;
  /** The previous block changed since the last template: miners must drop old work. */
  newBlock: boolean;
  /** What made us fetch: `start`, `longpoll`, `poll`, `notify`, `refresh`. */
  reason: string;
}

/**
 * Keeps the newest block template of a daemon pool: learns of new blocks from whichever
 * comes first — the GBT long poll, `notifyBlock()` (blocknotify / ZMQ hashblock), or the
 * poll of the best block hash — and refreshes the template periodically for new transactions.
 */
export class TemplateSource extends EventEmitter<{ update: [TemplateUpdate]; error: [Error] }> {
  private readonly daemons: DaemonPool;
  private readonly rules: readonly string[];
  private readonly pollIntervalMs: number;
  private readonly refreshIntervalMs: number;
  private readonly useLongpoll: boolean;
  private current: BlockTemplate | null = null;
  private fetching: Promise<void> | null = null;
  private again: string | null = null;
  private timers: NodeJS.Timeout[] = [];
  private abort = new AbortController();
  private closed = false;
  private lastOkAt = 0;
  private lastError: Error | null = null;

  constructor(options: TemplateSourceOptions) {
    super();
    this.daemons = options.daemons;
    this.rules = options.rules ?? ['mweb', 'segwit'];
    this.pollIntervalMs = options.pollIntervalMs ?? 500;
    this.refreshIntervalMs = options.refreshIntervalMs ?? 30_000;
    this.useLongpoll = options.longpoll ?? true;
  }

  get template(): BlockTemplate | null {
    return this.current;
  }

  /** When a daemon last answered us, the last failure, and whether that answer is recent (three polls). */
  health(): { healthy: boolean; lastOkAt: number; lastError: string | null } {
    const healthy = Date.now() - this.lastOkAt <= Math.max(3 * this.pollIntervalMs, 2000);
    return { healthy, lastOkAt: this.lastOkAt, lastError: this.lastError?.message ?? null };
  }

  /** Fetches the first template (rejecting when no daemon answers), then keeps it current. */
  async start(): Promise<void> {
    await this.fetch('start');
    if (!this.current) throw this.lastError ?? new Error('no daemon answered getblocktemplate');
    const poll = setInterval(() => void this.poll(), this.pollIntervalMs);
    const refresh = setInterval(() => this.notify('refresh'), this.refreshIntervalMs);
    poll.unref();
    refresh.unref();
    this.timers.push(poll, refresh);
    if (this.useLongpoll) void this.longpollLoop();
  }

  /** A new block was announced (blocknotify, ZMQ): fetch now. */
  notify(reason = 'notify'): void {
    void this.fetch(reason);
  }

  private async poll(): Promise<void> {
    if (this.closed || !this.current) return;
    try {
      const best = await this.daemons.call<string>('getbestblockhash', [], { timeoutMs: 2000 });
      this.lastOkAt = Date.now();
      this.lastError = null;
      if (best !== this.current.previousblockhash) this.notify('poll');
    } catch (error) {
      this.fail(error as Error);
    }
  }

  private async longpollLoop(): Promise<void> {
    while (!this.closed) {
      const longpollId = this.current?.longpollid;
      try {
        const template = await this.daemons.getBlockTemplate({
          rules: this.rules,
          ...(longpollId ? { longpollId } : {}),
          signal: this.abort.signal,
        });
        if (this.closed) return;
        this.accept(template, 'longpoll');
      } catch (error) {
        if (this.closed) return;
        this.fail(error as Error);
        // The daemon is down or refused: the poll notices its return; retry the long poll then.
        await new Promise((resolve) => setTimeout(resolve, this.pollIntervalMs * 4).unref());
      }
    }
  }

  /** One fetch at a time; a request arriving meanwhile runs once more after it. */
  private fetch(reason: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.fetching) {
      this.again = reason;
      return this.fetching;
    }
    this.fetching = (async () => {
      try {
        const template = await this.daemons.getBlockTemplate({ rules: this.rules, timeoutMs: 5000 });
        this.accept(template, reason);
      } catch (error) {
        this.fail(error as Error);
      } finally {
        this.fetching = null;
        const next = this.again;
        this.again = null;
        if (next) void this.fetch(next);
      }
    })();
    return this.fetching;
  }

  private accept(template: BlockTemplate, reason: string): void {
    this.lastOkAt = Date.now();
    this.lastError = null;
    const previous = this.current;
    const newBlock = !previous || previous.previousblockhash !== template.previousblockhash;
    // Same prevhash, same transactions, same time: nothing for miners.
    if (previous && !newBlock && reason !== 'refresh' && previous.longpollid === template.longpollid) return;
    // An older template (a slow answer racing a newer one) never replaces a newer height.
    if (previous && template.height < previous.height) return;
    this.current = template;
    this.emit('update', { template, newBlock, reason });
  }

  private fail(error: Error): void {
    this.lastError = error;
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  close(): void {
    this.closed = true;
    this.abort.abort(new Error('template source closed'));
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }
}
