import { EventEmitter } from 'node:events';
import type { BlockTemplate, DaemonPool } from '@hashwire/chain';

export interface TemplateSourceOptions {
  daemons: DaemonPool;
  /** @defaultValue ['mweb', 'segwit'] */
  rules?: readonly string[];
  /**
   * Safety-net poll of `getbestblockhash`; also the pause after a long poll that answered with
   * nothing new or too soon.
   * @defaultValue 500
   */
  pollIntervalMs?: number;
  /**
   * While active, a fresh template (new transactions, same prevhash) this long after the last one.
   * @defaultValue 30000
   */
  refreshIntervalMs?: number;
  /**
   * Keep a GBT long poll open while active (litecoind and bitcoind answer it within milliseconds
   * of a block).
   * @defaultValue true
   */
  longpoll?: boolean;
  /**
   * Unhealthy when no daemon gave a template for this long (daemon errors such as "not
   * connected", initial block download or warm-up, not only unreachable daemons). A template is
   * asked for at least every half of it, so a healthy source never gets near it.
   * @defaultValue 20000
   */
  templateGraceMs?: number;
  /**
   * At most this many `getblocktemplate` calls (long polls included) in any second, whatever
   * the daemon answers and however many notifications arrive.
   * @defaultValue 4
   */
  maxTemplateCallsPerS?: number;
}

export interface TemplateUpdate {
  template: BlockTemplate;
  /** The previous block changed since the last template: miners must drop old work. */
  newBlock: boolean;
  /** What made us fetch: `start`, `longpoll`, `poll`, `notify`, `refresh`, `check`, … */
  reason: string;
}

export interface TemplateSourceHealth {
  /** A daemon answered recently and gave a template within the grace period. */
  healthy: boolean;
  /** Epoch ms of the last answer from any daemon (0: none yet). */
  lastOkAt: number;
  /** Epoch ms of the last template a daemon gave (0: none yet). */
  lastTemplateAt: number;
  /** The last failure (a template failure first), without credentials; null when the last calls worked. */
  lastError: string | null;
  /** Why it is unhealthy, for `/healthz` and logs; null when healthy. */
  reason: string | null;
}

/**
 * Keeps the newest block template of a daemon pool: learns of new blocks from whichever
 * comes first — the GBT long poll (while active), `notifyBlock()` (blocknotify / ZMQ hashblock),
 * or the poll of the best block hash — and, while active, refreshes the template periodically
 * for new transactions. A passive source (a standby) keeps a template warm cheaply: one fetch
 * per tip change and one per half grace period.
 */
export class TemplateSource extends EventEmitter<{ update: [TemplateUpdate]; error: [Error] }> {
  private readonly daemons: DaemonPool;
  private readonly rules: readonly string[];
  private readonly pollIntervalMs: number;
  private readonly refreshIntervalMs: number;
  private readonly useLongpoll: boolean;
  private readonly graceMs: number;
  private readonly maxCallsPerS: number;
  private current: BlockTemplate | null = null;
  private fetching: Promise<void> | null = null;
  private again: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private polling = false;
  private active = false;
  private longpolling: { abort: AbortController; done: Promise<void> } | null = null;
  /** Resolves the long poll's pause early: a new block makes the long poll worth asking again. */
  private wake: (() => void) | null = null;
  private readonly templateCalls: number[] = [];
  private closed = false;
  private lastOkAt = 0;
  private lastTemplateAt = 0;
  private lastAttemptAt = 0;
  private lastEmitAt = 0;
  private lastCallError: Error | null = null;
  private lastTemplateError: Error | null = null;

  constructor(options: TemplateSourceOptions) {
    super();
    this.daemons = options.daemons;
    this.rules = options.rules ?? ['mweb', 'segwit'];
    this.pollIntervalMs = options.pollIntervalMs ?? 500;
    this.refreshIntervalMs = options.refreshIntervalMs ?? 30_000;
    this.useLongpoll = options.longpoll ?? true;
    this.graceMs = options.templateGraceMs ?? 20_000;
    this.maxCallsPerS = options.maxTemplateCallsPerS ?? 4;
  }

  get template(): BlockTemplate | null {
    return this.current;
  }

  /** Whether it can give fresh work: a daemon answered recently (three polls) and gave a template within the grace period. */
  health(now = Date.now()): TemplateSourceHealth {
    const silentMs = now - this.lastOkAt;
    const templateAgeMs = now - this.lastTemplateAt;
    const answering = silentMs <= Math.max(3 * this.pollIntervalMs, 2000);
    const fresh = templateAgeMs <= this.graceMs;
    const lastError = (this.lastTemplateError ?? this.lastCallError)?.message ?? null;
    let reason: string | null = null;
    if (!answering) {
      const since = this.lastOkAt ? `for ${Math.round(silentMs / 1000)} s` : 'since start';
      reason = `no daemon answered ${since}${lastError ? `: ${lastError}` : ''}`;
    } else if (!fresh) {
      reason = `no fresh template for ${Math.round(templateAgeMs / 1000)} s${lastError ? `: ${lastError}` : ''}`;
    }
    return {
      healthy: reason === null,
      lastOkAt: this.lastOkAt,
      lastTemplateAt: this.lastTemplateAt,
      lastError,
      reason,
    };
  }

  /** Fetches the first template (rejecting when no daemon answers), then keeps it current. */
  async start(): Promise<void> {
    await this.fetch('start');
    if (!this.current) throw this.lastTemplateError ?? new Error('no daemon answered getblocktemplate');
    this.timer = setInterval(() => void this.tick(), this.pollIntervalMs);
    this.timer.unref();
  }

  /**
   * Active (the leader): holds a long poll open and refreshes the template for new transactions.
   * Passive (a standby): polls the tip and keeps a template warm, nothing more.
   */
  setActive(active: boolean): void {
    if (this.closed || active === this.active) return;
    this.active = active;
    if (active) {
      if (this.useLongpoll && !this.longpolling) {
        const abort = new AbortController();
        const done = this.longpollLoop(abort.signal).finally(() => {
          if (this.longpolling?.abort === abort) this.longpolling = null;
        });
        this.longpolling = { abort, done };
      }
      return;
    }
    // A standby holds no daemon RPC thread with a pending long poll.
    this.longpolling?.abort.abort(new Error('template source passive'));
    this.longpolling = null;
    this.wake?.();
  }

  /** A new block was announced (blocknotify, ZMQ): fetch now. */
  notify(reason = 'notify'): void {
    void this.fetch(reason);
  }

  private async tick(): Promise<void> {
    if (this.closed || !this.current || this.polling) return;
    this.polling = true;
    try {
      const best = await this.daemons.call<string>('getbestblockhash', [], { timeoutMs: 2000 });
      this.lastOkAt = Date.now();
      this.lastCallError = null;
      if (this.current && best !== this.current.previousblockhash) {
        this.notify('poll');
        return;
      }
    } catch (error) {
      this.fail(error as Error, false);
    } finally {
      this.polling = false;
    }
    if (this.fetching) return;
    const now = Date.now();
    if (this.active && now - this.lastEmitAt >= this.refreshIntervalMs) {
      this.notify('refresh');
      return;
    }
    // Proof that a template can still be had (a daemon that lost its peers answers the tip
    // poll but refuses templates); after a failure, ask again every few polls.
    const checkEveryMs = this.graceMs / 2;
    const sinceAttempt = now - this.lastAttemptAt;
    const failing = this.lastTemplateError !== null;
    if (
      now - this.lastTemplateAt >= checkEveryMs &&
      sinceAttempt >= (failing ? Math.min(checkEveryMs, 4 * this.pollIntervalMs) : checkEveryMs)
    ) {
      this.notify('check');
    }
  }

  private async longpollLoop(signal: AbortSignal): Promise<void> {
    let quickAnswers = 0;
    while (!this.closed && !signal.aborted) {
      const longpollId = this.current?.longpollid;
      let news = false;
      const sentAt = performance.now();
      try {
        await this.templateCallSlot(signal);
        const template = await this.daemons.getBlockTemplate({
          rules: this.rules,
          ...(longpollId ? { longpollId } : {}),
          signal,
        });
        if (this.closed || signal.aborted) return;
        news = this.accept(template, 'longpoll');
      } catch (error) {
        if (this.closed || signal.aborted) return;
        this.fail(error as Error, true);
      }
      // A daemon that answers at once with nothing new (litecoind until its first block after a
      // start) would be asked again at once, a thousand times a second: pause instead, longer
      // each time, until a new block makes the long poll worth holding again.
      if (news && performance.now() - sentAt >= this.pollIntervalMs) {
        quickAnswers = 0;
        continue;
      }
      quickAnswers++;
      const pauseMs = Math.min(this.pollIntervalMs * 2 ** (quickAnswers - 1), this.refreshIntervalMs);
      if (await this.pause(pauseMs)) quickAnswers = 0;
    }
  }

  /** Waits `ms`, or less if a new block arrives meanwhile (then resolves true). */
  private pause(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve(false);
      }, ms);
      timer.unref();
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve(true);
      };
    });
  }

  /** Waits until a `getblocktemplate` call fits in the rate limit, and takes the slot. */
  private async templateCallSlot(signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = performance.now();
      while (this.templateCalls.length > 0 && now - (this.templateCalls[0] as number) >= 1000) {
        this.templateCalls.shift();
      }
      if (this.templateCalls.length < this.maxCallsPerS) {
        this.templateCalls.push(now);
        return;
      }
      const waitMs = 1000 - (now - (this.templateCalls[0] as number));
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, waitMs)).unref());
      signal?.throwIfAborted();
      if (this.closed) throw new Error('template source closed');
    }
  }

  /** One fetch at a time; a request arriving meanwhile runs once more after it. */
  private fetch(reason: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.fetching) {
      // A block announcement outranks a periodic check or refresh waiting behind it.
      if (this.again === null || reason !== 'check') this.again = reason;
      return this.fetching;
    }
    this.fetching = (async () => {
      try {
        await this.templateCallSlot();
        this.lastAttemptAt = Date.now();
        const template = await this.daemons.getBlockTemplate({ rules: this.rules, timeoutMs: 5000 });
        this.accept(template, reason);
      } catch (error) {
        this.fail(error as Error, true);
      } finally {
        this.fetching = null;
        const next = this.again;
        this.again = null;
        if (next) void this.fetch(next);
      }
    })();
    return this.fetching;
  }

  /** Takes a daemon's template; true when it was news (published as an update). */
  private accept(template: BlockTemplate, reason: string): boolean {
    if (this.closed) return false;
    this.lastOkAt = Date.now();
    this.lastTemplateAt = this.lastOkAt;
    this.lastCallError = null;
    this.lastTemplateError = null;
    const previous = this.current;
    const newBlock = !previous || previous.previousblockhash !== template.previousblockhash;
    // An older template (a slow answer racing a newer one) never replaces a newer height.
    if (previous && template.height < previous.height) return false;
    if (previous && !newBlock) {
      // A check proves the daemon still gives work; the leader's jobs change on refresh only.
      if (reason === 'check') {
        if (!this.active) this.current = template;
        return false;
      }
      // Same prevhash, same transactions, same time: nothing for miners.
      if (reason !== 'refresh' && previous.longpollid === template.longpollid) return false;
    }
    this.current = template;
    this.lastEmitAt = this.lastOkAt;
    if (newBlock) this.wake?.();
    this.emit('update', { template, newBlock, reason });
    return true;
  }

  private fail(error: Error, template: boolean): void {
    if (this.closed) return;
    if (template) this.lastTemplateError = error;
    else this.lastCallError = error;
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  close(): void {
    this.closed = true;
    this.longpolling?.abort.abort(new Error('template source closed'));
    this.longpolling = null;
    this.wake?.();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
