import { BLOCK_SUBMIT_TIMEOUT_MS, RpcErrorCode, type RpcMethods } from '@hashwire/protocol';
import { RpcError } from '@hashwire/rpc';

type SubmitRequest = RpcMethods['jm.submitBlock']['req'];
type SubmitReply = RpcMethods['jm.submitBlock']['rep'];

/** One jobmanager a candidate can be sent to. */
export interface BlockTarget {
  id: string;
  /**
   * It spoke recently (its subscription is alive): its errors about a candidate are a verdict.
   * One that did not is tried last, and its errors only mean "no answer": a dead jobmanager's
   * port may have been taken by another process.
   */
  heard: boolean;
  submit(request: SubmitRequest, timeoutMs: number): Promise<SubmitReply>;
}

/**
 * A block candidate no jobmanager answered: `stale` when the chain moved on before one did
 * (its parent is no longer the tip), otherwise given up for `reason` (the stratum server stops).
 * The candidate is never dropped silently: this error reaches the server's `block` event.
 */
export class BlockUnansweredError extends Error {
  override readonly name = 'BlockUnansweredError';
  constructor(
    message: string,
    readonly stale: boolean,
  ) {
    super(message);
  }
}

export interface BlockSubmitterOptions {
  /** The jobmanagers to try, looked up again before each attempt. */
  targets(): BlockTarget[];
  /** Which jobmanager issued a job (tried first). */
  issuerOf(jobId: string): string | undefined;
  /** The previous block hash (stratum order) of a job, when still known. */
  parentOf(jobId: string): string | undefined;
  /** Deadline of each `jm.submitBlock` call. @defaultValue `BLOCK_SUBMIT_TIMEOUT_MS` */
  submitTimeoutMs?: number;
  /** While candidates are held, how often they are tried again. @defaultValue 1000 */
  retryMs?: number;
  /** Held candidates at most; the oldest is given up past it. @defaultValue 256 */
  maxHeld?: number;
}

interface Held {
  request: SubmitRequest;
  /** Its job's previous block, when known: the tip it must still be built on. */
  parent: string | undefined;
  since: number;
  attempts: number;
  lastError: string;
  running: boolean;
  /** A job on another parent arrived: the next attempt without an answer is the last. */
  moved: boolean;
  /** Held: its first attempt found no jobmanager to answer. */
  held: boolean;
  resolve(reply: SubmitReply): void;
  reject(error: Error): void;
}

/** An error that judges the candidate itself (a bad or expired job), not the call. */
function isVerdict(error: unknown): boolean {
  return error instanceof RpcError && error.code === RpcErrorCode.BadRequest;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Block candidates to the jobmanager group: the job's issuer first, then every other member
 * until one answers, each call within its deadline. A candidate that no jobmanager answers
 * (none reachable, every call timed out or failed) is held and tried again every `retryMs` and
 * whenever a jobmanager (re)appears, for as long as its parent is still the tip: once a job on
 * another parent arrives it gets one last try, and without an answer it fails as stale.
 * A reply (accepted, rejected, stale, orphaned) is final, and so is `BadRequest` (an unknown or
 * expired job) from a jobmanager we hear from.
 */
export class BlockSubmitter {
  private readonly options: BlockSubmitterOptions;
  /** Every candidate not answered yet: in its first attempt, or held. */
  private readonly pending = new Set<Held>();
  private timer: NodeJS.Timeout | null = null;
  private releasedFor: string | null = null;
  readonly stats = {
    submits: 0,
    submitFailovers: 0,
    held: 0,
    heldTotal: 0,
    unanswered: 0,
    staleUnanswered: 0,
  };

  constructor(options: BlockSubmitterOptions) {
    this.options = options;
  }

  /** Candidates waiting for a jobmanager. */
  heldCount(): number {
    let n = 0;
    for (const entry of this.pending) if (entry.held) n++;
    return n;
  }

  submit(request: SubmitRequest): Promise<SubmitReply> {
    this.stats.submits++;
    return new Promise<SubmitReply>((resolve, reject) => {
      const entry: Held = {
        request,
        parent: this.options.parentOf(request.jobId),
        since: Date.now(),
        attempts: 0,
        lastError: 'no jobmanager connected',
        running: false,
        moved: false,
        held: false,
        resolve,
        reject,
      };
      this.pending.add(entry);
      void this.attempt(entry);
    });
  }

  /** A jobmanager appeared or answered again: try every held candidate now. */
  retry(): void {
    for (const entry of this.pending) if (entry.held) void this.attempt(entry);
  }

  /**
   * A job on `parent` arrived: candidates built on another parent get a last try (a jobmanager
   * may still take them, or judge them) and fail as stale without an answer.
   */
  tipChanged(parent: string): void {
    for (const entry of this.pending) {
      if (entry.parent === undefined || entry.parent === parent) continue;
      entry.moved = true;
      void this.attempt(entry);
    }
  }

  /** Gives up every held candidate now and holds no more (the server is stopping). */
  release(reason: string): void {
    this.releasedFor = reason;
    for (const entry of [...this.pending]) if (entry.held) this.giveUp(entry, false, reason);
    this.stopTimer();
  }

  private async attempt(entry: Held): Promise<void> {
    if (entry.running) return;
    entry.running = true;
    entry.attempts++;
    // Whether this is the last try a job on another parent gives (started after it arrived).
    const lastTry = entry.moved;
    let answered: SubmitReply | null = null;
    let finalError: unknown = null;
    try {
      const tried = new Set<string>();
      const issuer = this.options.issuerOf(entry.request.jobId);
      for (;;) {
        const untried = this.options.targets().filter((t) => !tried.has(t.id));
        const next =
          untried.find((t) => t.id === issuer && t.heard) ?? untried.find((t) => t.heard) ?? untried[0];
        if (!next) break;
        if (tried.size > 0) this.stats.submitFailovers++;
        tried.add(next.id);
        try {
          answered = await next.submit(
            entry.request,
            this.options.submitTimeoutMs ?? BLOCK_SUBMIT_TIMEOUT_MS,
          );
          break;
        } catch (error) {
          entry.lastError = `${next.id}: ${message(error)}`;
          // A jobmanager of ours that answered with an error about the request has judged it.
          if (next.heard && isVerdict(error)) finalError ??= error;
        }
      }
    } finally {
      entry.running = false;
    }
    if (answered) {
      this.settle(entry);
      entry.resolve(answered);
      return;
    }
    if (finalError) {
      this.settle(entry);
      entry.reject(finalError as Error);
      return;
    }
    if (entry.moved && !lastTry) {
      // The other parent arrived while this attempt was still waiting on jobmanagers it knew
      // before (a dead one's deadline): the last try goes to the ones there are now.
      void this.attempt(entry);
      return;
    }
    if (entry.moved) {
      this.giveUp(
        entry,
        true,
        'the chain moved on (a job on another parent arrived) before any jobmanager answered',
      );
      return;
    }
    if (this.releasedFor !== null) {
      this.giveUp(entry, false, this.releasedFor);
      return;
    }
    this.hold(entry);
  }

  private hold(entry: Held): void {
    if (entry.held) return;
    entry.held = true;
    this.stats.heldTotal++;
    this.stats.held = this.heldCount();
    const max = this.options.maxHeld ?? 256;
    if (this.stats.held > max) {
      const oldest = [...this.pending].find((e) => e.held) as Held;
      this.giveUp(
        oldest,
        false,
        `more than ${max} candidates waiting for a jobmanager; the oldest is given up`,
      );
    }
    if (!this.timer) {
      this.timer = setInterval(() => this.retry(), this.options.retryMs ?? 1000);
      this.timer.unref();
    }
  }

  private settle(entry: Held): void {
    this.pending.delete(entry);
    entry.held = false;
    this.stats.held = this.heldCount();
    if (this.stats.held === 0) this.stopTimer();
  }

  private giveUp(entry: Held, stale: boolean, reason: string): void {
    this.settle(entry);
    this.stats.unanswered++;
    if (stale) this.stats.staleUnanswered++;
    const waited = Date.now() - entry.since;
    entry.reject(
      new BlockUnansweredError(
        `${stale ? 'stale' : 'unanswered'}: ${reason}; no jobmanager answered in ${waited} ms (${entry.attempts} attempts, last: ${entry.lastError})`,
        stale,
      ),
    );
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
