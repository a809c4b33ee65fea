import type { Share } from '@hashwire/protocol';
import type { ShareSink } from './options.js';
import type { ShareSpool } from './spool.js';

/**
 * The share sink of a stratum worker under a master (`master.ts`). One spool directory, one
 * writer: while the worker it replaces still owns the spool, shares go to that worker
 * (`remote`, over the master's IPC) and are answered once it wrote them; for the moment the
 * spool changes hands they wait here (`hold`); then they go to this worker's own spool
 * (`own`), the held ones first, in the order they came.
 */
export class WorkerShareSink implements ShareSink {
  private mode: 'remote' | 'hold' | 'local';
  private spool: ShareSpool | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private held: { share: Share; resolve: () => void; reject: (error: Error) => void }[] = [];

  constructor(private readonly remote: ((share: Share) => Promise<void>) | null) {
    this.mode = remote ? 'remote' : 'hold';
  }

  append(share: Share): Promise<void> {
    if (this.mode === 'local') return this.spool!.append(share);
    if (this.mode === 'remote') {
      const sent = this.remote!(share);
      this.inFlight.add(sent);
      const forget = () => this.inFlight.delete(sent);
      sent.then(forget, forget);
      return sent;
    }
    return new Promise((resolve, reject) => this.held.push({ share, resolve, reject }));
  }

  /** Stops sending shares elsewhere; resolves once every share sent there was answered. */
  async hold(): Promise<void> {
    if (this.mode === 'remote') this.mode = 'hold';
    await Promise.allSettled([...this.inFlight]);
  }

  /** From now on shares go to `spool`, the held ones first. */
  own(spool: ShareSpool): void {
    this.spool = spool;
    this.mode = 'local';
    const held = this.held;
    this.held = [];
    for (const { share, resolve, reject } of held) spool.append(share).then(resolve, reject);
  }

  /** Shares still waiting for a spool are refused (their miners hear an error, never `true`). */
  close(): void | Promise<void> {
    const held = this.held;
    this.held = [];
    for (const { reject } of held) reject(new Error('stratum worker closed before it had a spool'));
    if (this.mode === 'local') return this.spool!.close();
  }
}
