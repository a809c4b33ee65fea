import { EventEmitter } from 'node:events';
import type {
  SimMinerOptions,
  SimMinersEvents,
  SimMinersStats,
  SimShare,
  SimShareCounters,
  SimWorkerStats,
} from './types.js';
import { type ResolvedSimOptions, SimWorker, type WorkerSink } from './worker.js';

/** A bad `startSimMiners` option; the message names the field and what is allowed. */
export class SimMinerOptionsError extends Error {
  override readonly name = 'SimMinerOptionsError';
}

function positiveNumber(value: number | undefined, field: string): number | undefined {
  if (value !== undefined && (!Number.isFinite(value) || value <= 0)) {
    throw new SimMinerOptionsError(`${field} must be a positive number, got ${value}`);
  }
  return value;
}

function resolveOptions(options: SimMinerOptions): ResolvedSimOptions & { workers: number } {
  const workers = options.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1) {
    throw new SimMinerOptionsError(`workers must be a positive integer, got ${workers}`);
  }
  if (options.algorithm !== 'scrypt' && options.algorithm !== 'sha256d') {
    throw new SimMinerOptionsError(
      `algorithm must be "scrypt" or "sha256d", got ${String(options.algorithm)}`,
    );
  }
  if (typeof options.host !== 'string' || options.host.length === 0) {
    throw new SimMinerOptionsError('host must be a non-empty string');
  }
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
    throw new SimMinerOptionsError(`port must be an integer from 1 to 65535, got ${options.port}`);
  }
  const maskHex = options.versionRollingMask ?? '1fffe000';
  if (!/^[0-9a-fA-F]{8}$/.test(maskHex)) {
    throw new SimMinerOptionsError(`versionRollingMask must be 8 hex digits, got ${maskHex}`);
  }
  const limit = positiveNumber(options.hashesPerSecondLimit, 'hashesPerSecondLimit');
  return {
    workers,
    host: options.host,
    port: options.port,
    algorithm: options.algorithm,
    versionRolling: options.versionRolling ?? false,
    versionRollingMask: Number.parseInt(maskHex, 16),
    minimumDifficulty: positiveNumber(options.minimumDifficulty, 'minimumDifficulty'),
    suggestDifficulty: positiveNumber(options.suggestDifficulty, 'suggestDifficulty'),
    extranonceSubscribe: options.extranonceSubscribe ?? true,
    recordShares: options.recordShares ?? false,
    hashesPerSecondLimit: limit === undefined ? undefined : limit / workers,
    userAgent: options.userAgent ?? 'hashwire-sim/0.1',
    reconnectOnClose: options.reconnectOnClose ?? true,
    reconnectDelayMs: positiveNumber(options.reconnectDelayMs, 'reconnectDelayMs') ?? 250,
    reconnectGraceMs: positiveNumber(options.reconnectGraceMs, 'reconnectGraceMs') ?? 5000,
    requestTimeoutMs: positiveNumber(options.requestTimeoutMs, 'requestTimeoutMs') ?? 10_000,
  };
}

function emptyCounters(): SimShareCounters {
  return {
    submitted: 0,
    accepted: 0,
    rejected: 0,
    rejectedByCode: {},
    stale: 0,
    duplicate: 0,
    lowDifficulty: 0,
    noAnswer: 0,
    blockCandidates: 0,
    blockCandidatesAccepted: 0,
  };
}

/**
 * A group of simulated miners started by {@link startSimMiners}. Events: `accepted` and
 * `rejected` (a {@link SimShare}), `notify`, `reconnect`, `disconnect`.
 */
export class SimMiners extends EventEmitter<SimMinersEvents> {
  private readonly workers: SimWorker[] = [];
  private readonly recorded: SimShare[] = [];
  private readonly waiters = new Set<() => void>();
  private readonly startedAt = performance.now();
  private checkScheduled = false;
  private stopping: Promise<void> | null = null;

  /** @internal use {@link startSimMiners} */
  constructor(options: ResolvedSimOptions & { workers: number }, source: SimMinerOptions) {
    super();
    const sink: WorkerSink = {
      emit: (name, ...args) => {
        (this.emit as (event: string, ...rest: unknown[]) => boolean)(name, ...args);
      },
      changed: () => this.changed(),
      record: (share) => {
        this.recorded.push(share);
      },
    };
    for (let i = 0; i < options.workers; i++) {
      const username = typeof source.username === 'function' ? source.username(i) : source.username;
      const password = typeof source.password === 'function' ? source.password(i) : (source.password ?? 'x');
      const localAddress =
        typeof source.localAddress === 'function' ? source.localAddress(i) : source.localAddress;
      this.workers.push(new SimWorker(i, username, password, options, sink, localAddress));
    }
  }

  /** @internal */
  start(): Promise<void>[] {
    for (const w of this.workers) w.start();
    return this.workers.map((w) => w.ready);
  }

  /** A snapshot: every worker and the totals. */
  stats(): SimMinersStats {
    const workers: SimWorkerStats[] = this.workers.map((w) => ({
      ...w.stats,
      rejectedByCode: { ...w.stats.rejectedByCode },
    }));
    const elapsedMs = performance.now() - this.startedAt;
    const total: SimMinersStats['total'] = {
      ...emptyCounters(),
      workers: workers.length,
      connected: 0,
      authorized: 0,
      reconnects: 0,
      resumes: 0,
      hashes: 0,
      hashesPerSecond: 0,
      elapsedMs,
    };
    for (const w of workers) {
      total.submitted += w.submitted;
      total.accepted += w.accepted;
      total.rejected += w.rejected;
      for (const [code, n] of Object.entries(w.rejectedByCode)) {
        total.rejectedByCode[Number(code)] = (total.rejectedByCode[Number(code)] ?? 0) + n;
      }
      total.stale += w.stale;
      total.duplicate += w.duplicate;
      total.lowDifficulty += w.lowDifficulty;
      total.noAnswer += w.noAnswer;
      total.blockCandidates += w.blockCandidates;
      total.blockCandidatesAccepted += w.blockCandidatesAccepted;
      if (w.connected) total.connected++;
      if (w.authorized) total.authorized++;
      total.reconnects += w.reconnects;
      total.resumes += w.resumes;
      total.hashes += w.hashes;
    }
    total.hashesPerSecond = elapsedMs > 0 ? (total.hashes * 1000) / elapsedMs : 0;
    return { workers, total };
  }

  /** Every share submitted so far, in submit order, with its answer (needs `recordShares`). */
  shares(): SimShare[] {
    return this.recorded.map((s) => ({ ...s, params: [...s.params] as SimShare['params'] }));
  }

  /**
   * Resolves with the stats once `predicate` holds; checked whenever a worker's state, job,
   * shares or hash count change. Rejects after `timeoutMs`, or when the miners stop first.
   */
  until(predicate: (stats: SimMinersStats) => boolean, timeoutMs = 30_000): Promise<SimMinersStats> {
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      const check = (): void => {
        const stats = this.stats();
        let ok: boolean;
        try {
          ok = predicate(stats);
        } catch (err) {
          done();
          reject(err);
          return;
        }
        if (ok) {
          done();
          resolve(stats);
        } else if (this.stopping) {
          done();
          reject(
            new Error(`sim miners stopped before the condition held; totals ${JSON.stringify(stats.total)}`),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `sim miners: condition not met within ${timeoutMs} ms; totals ${JSON.stringify(this.stats().total)}`,
          ),
        );
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Closes every connection (shares in flight become 'no answer') and stops hashing. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all(this.workers.map((w) => w.stop()));
      for (const check of [...this.waiters]) check();
    })();
    return this.stopping;
  }

  private changed(): void {
    if (this.checkScheduled || this.waiters.size === 0) return;
    this.checkScheduled = true;
    // One evaluation per turn of the event loop, however many workers changed.
    setImmediate(() => {
      this.checkScheduled = false;
      for (const check of [...this.waiters]) check();
    });
  }
}

/**
 * Starts `workers` simulated miners speaking stratum v1 to host:port, each really hashing
 * (scrypt or sha256d) and submitting the shares that meet its difficulty. Resolves once every
 * worker's first `mining.authorize` is answered (unless `waitForAuthorize` is false).
 */
export async function startSimMiners(options: SimMinerOptions): Promise<SimMiners> {
  const resolved = resolveOptions(options);
  const startTimeoutMs = positiveNumber(options.startTimeoutMs, 'startTimeoutMs') ?? 15_000;
  const miners = new SimMiners(resolved, options);
  const ready = miners.start();
  if (options.waitForAuthorize === false) return miners;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.all(ready),
      new Promise((_, reject) => {
        timer = setTimeout(() => {
          const stats = miners.stats();
          const reasons = [...new Set(stats.workers.map((w) => w.lastDisconnect ?? w.state))];
          reject(
            new Error(
              `sim miners: ${stats.workers.length - stats.total.authorized} of ${stats.workers.length} workers not authorized by ${options.host}:${options.port} within ${startTimeoutMs} ms (${reasons.join('; ')})`,
            ),
          );
        }, startTimeoutMs);
      }),
    ]);
  } catch (err) {
    await miners.stop();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return miners;
}
