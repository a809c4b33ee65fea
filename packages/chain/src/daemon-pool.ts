import { EventEmitter } from 'node:events';
import {
  type CallOptions,
  DaemonClient,
  type DaemonClientOptions,
  DaemonError,
  DaemonUnreachableError,
  type GetBlockTemplateOptions,
  RpcCode,
  type SubmitBlockResult,
  submitVerdict,
} from './daemon.js';
import type { BlockTemplate } from './template.js';

export interface DaemonPoolOptions {
  /** First pause after a daemon fails; doubles on each further failure. @defaultValue 1_000 */
  backoffInitialMs?: number;
  /** @defaultValue 30_000 */
  backoffMaxMs?: number;
  /**
   * How long `submitBlock` keeps asking `getblockheader` about an `inconclusive` block that a
   * daemon holds but has not connected yet (it may still be connecting the copy a peer sent).
   * @defaultValue 3_000
   */
  verifyMs?: number;
}

/** One daemon's answer in a call made to every daemon. */
export interface DaemonOutcome<T> {
  daemon: string;
  result?: T;
  error?: Error;
}

export interface PoolSubmitResult {
  /** At least one daemon took the block (or already had it, or has it in its active chain). */
  accepted: boolean;
  /**
   * True when no daemon's answer said so but one has the block in its active chain (asked with
   * `getblockheader` after answers of only `inconclusive` or errors).
   */
  verified?: boolean;
  /**
   * True when the block is valid but off the active chain: a sibling at the same height reached
   * the daemons first (its chain tip status is `valid-fork`). Not accepted; `reason` says why.
   */
  orphaned?: boolean;
  /**
   * True when the block is valid but its parent was no longer any daemon's tip when it was
   * submitted (given `parent`): the work it was found on had gone stale (the chain moved on,
   * often by one of our own blocks while no fresh template came). Not accepted, not orphaned.
   */
  stale?: boolean;
  /** The first rejection reason or error message when no daemon accepted. */
  reason?: string;
  results: DaemonOutcome<SubmitBlockResult>[];
}

export interface DaemonHealth {
  daemon: string;
  url: string;
  up: boolean;
  failures: number;
  /** Epoch ms after which a down daemon is tried first again. */
  retryAt: number;
  lastError?: string;
}

export interface DaemonPoolEvents {
  down: [{ daemon: string; error: Error; retryInMs: number }];
  up: [{ daemon: string }];
}

// RPC errors that say "this daemon cannot serve now" rather than "the request is wrong".
const UNAVAILABLE_CODES: ReadonlySet<number> = new Set([
  RpcCode.InWarmup,
  RpcCode.NotConnected,
  RpcCode.InInitialDownload,
]);

function isDaemonFailure(err: unknown): boolean {
  return (
    err instanceof DaemonUnreachableError || (err instanceof DaemonError && UNAVAILABLE_CODES.has(err.code))
  );
}

interface Member {
  client: DaemonClient;
  failures: number;
  retryAt: number;
  lastError?: string;
}

/**
 * The tip a daemon answered when none of those that answered was at `parent` (nor already at
 * the block itself): the block was built on stale work. Null when the block was not stale, or
 * when no daemon said.
 */
function staleTip(tips: DaemonOutcome<string>[], parent: string | undefined, hash: string): string | null {
  const answered = tips.flatMap((t) => (typeof t.result === 'string' ? [t.result] : []));
  if (!parent || answered.length === 0) return null;
  if (answered.some((tip) => tip === parent || tip === hash)) return null;
  return answered[0] as string;
}

/**
 * Several daemons of one chain: ordinary calls go to the first healthy one in the configured
 * order, a failing daemon is marked down with exponential backoff, and `submitBlock` goes to
 * every daemon in parallel.
 */
export class DaemonPool extends EventEmitter<DaemonPoolEvents> {
  readonly #members: Member[];
  readonly #backoffInitialMs: number;
  readonly #backoffMaxMs: number;
  readonly #verifyMs: number;

  constructor(daemons: readonly (DaemonClient | DaemonClientOptions)[], options: DaemonPoolOptions = {}) {
    super();
    if (daemons.length === 0) {
      throw new TypeError('daemon pool: give at least one daemon');
    }
    this.#members = daemons.map((d) => ({
      client: d instanceof DaemonClient ? d : new DaemonClient(d),
      failures: 0,
      retryAt: 0,
    }));
    this.#backoffInitialMs = options.backoffInitialMs ?? 1_000;
    this.#backoffMaxMs = options.backoffMaxMs ?? 30_000;
    this.#verifyMs = options.verifyMs ?? 3_000;
  }

  get clients(): DaemonClient[] {
    return this.#members.map((m) => m.client);
  }

  health(): DaemonHealth[] {
    const now = Date.now();
    return this.#members.map((m) => {
      const h: DaemonHealth = {
        daemon: m.client.name,
        url: m.client.url,
        up: m.failures === 0 || m.retryAt <= now,
        failures: m.failures,
        retryAt: m.retryAt,
      };
      if (m.lastError) h.lastError = m.lastError;
      return h;
    });
  }

  /**
   * Calls the first healthy daemon; on a daemon failure marks it down and tries the next. Down
   * daemons are still tried last (soonest retry first), so a pool whose daemons all failed
   * recovers as soon as one comes back. RPC errors about the request itself are thrown at once.
   */
  call<T = unknown>(method: string, params: readonly unknown[] = [], options: CallOptions = {}): Promise<T> {
    return this.#failover((client) => client.call<T>(method, params, options));
  }

  getBlockTemplate(options: GetBlockTemplateOptions = {}): Promise<BlockTemplate> {
    return this.#failover((client) => client.getBlockTemplate(options));
  }

  /** Calls every daemon in parallel and reports each outcome; marks failing daemons down. */
  async callAll<T = unknown>(
    method: string,
    params: readonly unknown[] = [],
    options: CallOptions = {},
  ): Promise<DaemonOutcome<T>[]> {
    return Promise.all(
      this.#members.map(async (m): Promise<DaemonOutcome<T>> => {
        try {
          const result = await m.client.call<T>(method, params, options);
          this.#markUp(m);
          return { daemon: m.client.name, result };
        } catch (err) {
          if (isDaemonFailure(err)) this.#markDown(m, err as Error);
          return { daemon: m.client.name, error: err as Error };
        }
      }),
    );
  }

  /**
   * `submitblock` to every daemon in parallel. Given the block's `hash`, answers that settle
   * nothing — `inconclusive` (the daemon got the same block from a peer while checking ours) or
   * failures — are followed by `getblockheader`: a daemon with the block in its active chain
   * makes it accepted.
   */
  async submitBlock(
    blockHex: string,
    options: CallOptions & { hash?: string; parent?: string } = {},
  ): Promise<PoolSubmitResult> {
    const { hash, parent, ...callOptions } = options;
    // The tips are asked alongside, not before: the submission never waits on them (a daemon
    // connecting a block holds its lock). A sibling that arrives in that very instant may make
    // a lost race count as stale.
    const [outcomes, tips] = await Promise.all([
      this.callAll<string | null>('submitblock', [blockHex], callOptions),
      parent
        ? this.callAll<string>('getbestblockhash', [], callOptions)
        : Promise.resolve([] as DaemonOutcome<string>[]),
    ]);
    const results = outcomes.map((o): DaemonOutcome<SubmitBlockResult> => {
      if (o.error) return { daemon: o.daemon, error: o.error };
      return { daemon: o.daemon, result: submitVerdict(o.result ?? null) };
    });
    const accepted = results.some((r) => r.result?.accepted);
    const submitResult: PoolSubmitResult = { accepted, results };
    if (!accepted && hash && results.every((r) => r.error || r.result?.reason === 'inconclusive')) {
      const where = await this.#whereIs(hash, callOptions);
      if (where === 'active') {
        submitResult.accepted = true;
        submitResult.verified = true;
        return submitResult;
      }
      const tip = staleTip(tips, parent, hash);
      if (tip !== null) {
        submitResult.stale = true;
        submitResult.reason = `stale: its parent ${parent} was no longer the tip (the daemons were at ${tip})`;
        return submitResult;
      }
      if (where === 'fork') {
        submitResult.orphaned = true;
        submitResult.reason = 'orphaned: a sibling block at this height reached the daemons first';
        return submitResult;
      }
    }
    if (!accepted) {
      const first = results.find((r) => r.result?.reason) ?? results.find((r) => r.error);
      const reason = first?.result?.reason ?? first?.error?.message;
      if (reason) submitResult.reason = reason;
    }
    return submitResult;
  }

  /**
   * Where the daemons hold block `hash`: in an active chain, on a fork (a sibling won the race),
   * or nowhere that counts (unknown, invalid, or still not connected after `verifyMs`). A block
   * off the active chain is on a fork when a daemon once connected it (chain tip `valid-fork`),
   * or when it stores it unconnected (`valid-headers`) with no more chain work than its active
   * chain: a sibling at least as heavy is there, and the daemon connects ours only if a block is
   * built on it. One with more work is still being connected (the copy a peer sent, being
   * validated): that daemon is asked again every 100 ms.
   */
  async #whereIs(hash: string, callOptions: CallOptions): Promise<'active' | 'fork' | 'unknown'> {
    const deadline = performance.now() + this.#verifyMs;
    for (;;) {
      const headers = await this.callAll<{ confirmations?: number; chainwork?: string }>(
        'getblockheader',
        [hash, true],
        callOptions,
      );
      if (headers.some((h) => (h.result?.confirmations ?? -1) >= 0)) return 'active';
      if (!headers.some((h) => h.result)) return 'unknown';
      const [tips, infos] = await Promise.all([
        this.callAll<{ hash?: string; status?: string }[]>('getchaintips', [], callOptions),
        this.callAll<{ chainwork?: string }>('getblockchaininfo', [], callOptions),
      ]);
      const statuses = tips.flatMap((t) =>
        Array.isArray(t.result) ? t.result.filter((tip) => tip?.hash === hash).map((tip) => tip.status) : [],
      );
      if (statuses.includes('valid-fork')) return 'fork';
      const connecting = statuses.some((status) => status === 'valid-headers' || status === 'headers-only');
      if (!connecting) return 'unknown';
      const outworked = headers.some((h, i) => {
        const ours = chainWork(h.result?.chainwork);
        const active = chainWork(infos[i]?.result?.chainwork);
        return ours !== null && active !== null && ours <= active;
      });
      if (outworked) return 'fork';
      if (performance.now() >= deadline) return 'unknown';
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  close(): void {
    for (const m of this.#members) m.client.close();
  }

  async #failover<T>(attempt: (client: DaemonClient) => Promise<T>): Promise<T> {
    const now = Date.now();
    const ready = this.#members.filter((m) => m.retryAt <= now);
    const waiting = this.#members.filter((m) => m.retryAt > now).sort((a, b) => a.retryAt - b.retryAt);
    let lastError: unknown;
    for (const m of [...ready, ...waiting]) {
      try {
        const result = await attempt(m.client);
        this.#markUp(m);
        return result;
      } catch (err) {
        if (!isDaemonFailure(err)) throw err;
        this.#markDown(m, err as Error);
        lastError = err;
      }
    }
    throw lastError;
  }

  #markDown(m: Member, error: Error): void {
    m.failures += 1;
    const retryInMs = Math.min(this.#backoffMaxMs, this.#backoffInitialMs * 2 ** (m.failures - 1));
    m.retryAt = Date.now() + retryInMs;
    m.lastError = error.message;
    this.emit('down', { daemon: m.client.name, error, retryInMs });
  }

  #markUp(m: Member): void {
    if (m.failures === 0) return;
    m.failures = 0;
    m.retryAt = 0;
    m.lastError = undefined;
    this.emit('up', { daemon: m.client.name });
  }
}

/** A daemon's `chainwork` (hex) as a number; null when absent or not hex. */
function chainWork(hex: unknown): bigint | null {
  return typeof hex === 'string' && /^[0-9a-f]{1,64}$/i.test(hex) ? BigInt(`0x${hex}`) : null;
}
