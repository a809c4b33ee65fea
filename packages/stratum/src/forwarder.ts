import { EventEmitter } from 'node:events';
import { BucketRing, RpcErrorCode, type RpcMethods, type Share } from '@hashwire/protocol';
import { type ServiceInfo, type ServiceWatcher, watchServices } from '@hashwire/registry';
import { type RpcClient, RpcError, clientCurveFor, createRpcClient } from '@hashwire/rpc';
import {
  type BacklogEvent,
  type ForwarderEvents,
  type ForwarderLogger,
  type ForwarderStats,
  type ShareForwarderOptions,
  silentForwarderLogger,
} from './forwarder-options.js';
import { splitBatch } from './share-routing.js';
import type { ShareBatch, ShareSpool } from './spool.js';

type ReporterClient = RpcClient<RpcMethods>;

interface SubBatch {
  id: string;
  bucket: number;
  shares: Share[];
  /** The bucket's server order from the ring the sub-batch was first routed with. */
  order: readonly string[] | null;
  attempts: number;
}

interface InFlight {
  batchId: string;
  shares: number;
  subs: SubBatch[];
  remaining: number;
}

/**
 * Carries sealed spool batches to reporters. Each batch is split per ring bucket into
 * sub-batches with derived ids, each sent with `reporter.shares` to its bucket's first
 * reporter and on failure to the next; the spool batch is acked (and leaves the disk) only
 * when every sub-batch was. A sub-batch keeps the server order it was first routed with,
 * newcomers appended, until acked. Reporters dedupe on the id, so a resend after a lost
 * ack or a restart is harmless. With no reporter answering, batches stay on disk, at most
 * `maxInFlightBatches` are in memory, and operators are warned.
 */
export class ShareForwarder extends EventEmitter<ForwarderEvents> {
  private readonly options: ShareForwarderOptions;
  private readonly spool: ShareSpool;
  private readonly log: ForwarderLogger;
  private readonly maxInFlight: number;
  private ring: BucketRing;
  private watcher: ServiceWatcher | null = null;
  /** Every reporter of our chain known to the registry, in any state; the ring holds those `up`. */
  private readonly reporters = new Map<string, ServiceInfo>();
  private readonly clients = new Map<
    string,
    { endpoint: string; curveKey: string | undefined; client: ReporterClient }
  >();
  private readonly suspects = new Map<string, number>();
  /** Batch ids waiting on disk, oldest first (a Set keeps insertion order). */
  private readonly queue = new Set<string>();
  private readonly inFlight = new Map<string, InFlight>();
  private readonly loops = new Set<Promise<void>>();
  private waiters: (() => void)[] = [];
  private idleWaiters: { resolve(): void; reject(error: Error): void }[] = [];
  private readonly warnBase: number;
  private warnAt: number;
  private warned = false;
  private noReporterWarned = false;
  private outage = false;
  private started = false;
  private closed = false;
  private readonly counters = {
    ringVersion: 0,
    requests: 0,
    failedRequests: 0,
    failovers: 0,
    exhausted: 0,
    ackedBatches: 0,
    ackedSubBatches: 0,
    ackedShares: 0,
    credited: 0,
    backlogWarnings: 0,
  };
  private readonly errors: Record<number, number> = {};
  private readonly onBatch = (batch: ShareBatch) => this.accept(batch);

  constructor(options: ShareForwarderOptions) {
    super();
    this.options = { ...options };
    this.spool = options.spool;
    this.log = options.logger ?? silentForwarderLogger;
    this.maxInFlight = positive('maxInFlightBatches', options.maxInFlightBatches, 4);
    this.warnBase = positive('backlogWarnBatches', options.backlogWarnBatches, 10);
    this.warnAt = this.warnBase;
    this.ring = new BucketRing([], options.ring);
  }

  /** Watches the reporters, then sends every batch the spool holds (a previous run's included). */
  async start(): Promise<void> {
    const { redis, keys } = this.options;
    this.spool.on('batch', this.onBatch);
    const watcher = watchServices({ redis, keys, kind: 'reporter', reconcileMs: this.options.reconcileMs });
    this.watcher = watcher;
    watcher.on('event', ({ type, service }) => this.onReporter(type, service));
    watcher.on('error', (error) => this.report(error));
    await watcher.ready;
    if (this.closed) return;
    for (const batchId of this.spool.pendingBatchIds()) this.enqueue(batchId);
    this.started = true;
    this.updateRing();
    this.checkBacklog();
    this.pump();
  }

  /** The current ring (the one new batches are routed with). */
  currentRing(): BucketRing {
    return this.ring;
  }

  stats(): ForwarderStats {
    let subs = 0;
    for (const entry of this.inFlight.values()) subs += entry.remaining;
    return {
      ...this.counters,
      reporters: this.ring.servers.length,
      backlogBatches: this.backlog(),
      queuedBatches: this.queue.size,
      inFlightBatches: this.inFlight.size,
      inFlightSubBatches: subs,
      errors: { ...this.errors },
    };
  }

  /**
   * Resolves once no batch waits for a reporter (seal the spool first to include open shares);
   * rejects if the forwarder is closed before.
   */
  whenIdle(): Promise<void> {
    if (this.backlog() === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.idleWaiters.push({ resolve, reject }));
  }

  /** Stops sending; batches not yet acked stay in the spool for the next start. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.spool.off('batch', this.onBatch);
    this.wake();
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const waiter of waiters) waiter.reject(new Error('share forwarder closed with batches pending'));
    await this.watcher?.close();
    await Promise.all([...this.clients.values()].map(({ client }) => client.close()));
    this.clients.clear();
    await Promise.allSettled([...this.loops]);
  }

  private backlog(): number {
    return this.queue.size + this.inFlight.size;
  }

  private accept(batch: ShareBatch): void {
    if (this.closed) return;
    // A fresh batch is still in memory: send it now if there is room, else it waits on disk.
    if (this.started && this.queue.size === 0 && this.canDispatch()) this.dispatch(batch);
    else this.enqueue(batch.batchId);
    this.checkBacklog();
  }

  private enqueue(batchId: string): void {
    if (!this.inFlight.has(batchId)) this.queue.add(batchId);
  }

  private canDispatch(): boolean {
    return this.inFlight.size < this.maxInFlight && this.ring.servers.length > 0;
  }

  /** Reads waiting batches from disk while there is room and a reporter to send to. */
  private pump(): void {
    while (this.started && !this.closed && this.queue.size > 0 && this.canDispatch()) {
      const batchId = this.queue.values().next().value as string;
      this.queue.delete(batchId);
      if (this.inFlight.has(batchId)) continue;
      const batch = this.spool.loadBatch(batchId);
      if (batch) this.dispatch(batch);
    }
    this.checkBacklog();
  }

  private dispatch(batch: ShareBatch): void {
    const subs: SubBatch[] = splitBatch(batch, this.ring).map((s) => ({ ...s, order: null, attempts: 0 }));
    const entry: InFlight = {
      batchId: batch.batchId,
      shares: batch.shares.length,
      subs,
      remaining: subs.length,
    };
    this.inFlight.set(batch.batchId, entry);
    if (subs.length === 0) {
      this.finish(entry);
      return;
    }
    for (const sub of subs) {
      const loop = this.deliver(entry, sub).catch((error: Error) => this.report(error));
      this.loops.add(loop);
      void loop.finally(() => this.loops.delete(loop));
    }
  }

  /** Servers to try, in order: the first routing's order, newcomers after, suspects last. */
  private candidates(sub: SubBatch): string[] {
    const current = this.ring.serversFor(sub.bucket);
    if (sub.order === null && current.length > 0) sub.order = current;
    if (sub.order === null) return [];
    const order = sub.order;
    const merged = [...order, ...current.filter((id) => !order.includes(id))];
    const live = merged.filter((id) => this.ring.servers.includes(id));
    const now = Date.now();
    const suspect = (id: string) => (this.suspects.get(id) ?? 0) > now;
    return [...live.filter((id) => !suspect(id)), ...live.filter(suspect)];
  }

  private async deliver(entry: InFlight, sub: SubBatch): Promise<void> {
    let retryDelayMs = positive('retryDelayMs', this.options.retryDelayMs, 500);
    const maxRetryDelayMs = positive('maxRetryDelayMs', this.options.maxRetryDelayMs, 10_000);
    const body = {
      batchId: sub.id,
      stratumId: this.options.stratumId,
      chain: this.options.chain,
      shares: sub.shares,
    };
    while (!this.closed) {
      const candidates = this.candidates(sub);
      for (const [i, reporterId] of candidates.entries()) {
        const client = this.clientFor(reporterId);
        if (!client) continue;
        sub.attempts++;
        this.counters.requests++;
        try {
          const reply = await client.request('reporter.shares', body, {
            timeoutMs: this.options.requestTimeoutMs ?? 5000,
          });
          if (this.closed) return;
          if (reply?.batchId !== sub.id) {
            throw new RpcError(
              RpcErrorCode.Internal,
              `reporter acknowledged batch ${String(reply?.batchId)} for ${sub.id}`,
            );
          }
          this.suspects.delete(reporterId);
          this.counters.credited += Number(reply.credited) || 0;
          this.emit('delivered', {
            subBatchId: sub.id,
            bucket: sub.bucket,
            reporterId,
            attempt: sub.attempts,
          });
          this.subDone(entry);
          return;
        } catch (error) {
          if (this.closed) return;
          this.failed(reporterId, sub, error, i + 1 < candidates.length);
        }
      }
      if (candidates.length > 0) {
        this.counters.exhausted++;
        if (!this.outage) {
          this.outage = true;
          this.log.warn(
            { subBatchId: sub.id, bucket: sub.bucket, tried: candidates, backlogBatches: this.backlog() },
            'no reporter accepted a share batch; batches stay on disk and are retried',
          );
        }
      }
      // Woken early when the reporter set changes.
      await this.pause(candidates.length > 0 ? retryDelayMs : maxRetryDelayMs);
      if (candidates.length > 0) retryDelayMs = Math.min(retryDelayMs * 2, maxRetryDelayMs);
    }
  }

  private failed(reporterId: string, sub: SubBatch, error: unknown, failover: boolean): void {
    const code = error instanceof RpcError ? error.code : RpcErrorCode.Internal;
    this.counters.failedRequests++;
    this.errors[code] = (this.errors[code] ?? 0) + 1;
    if (failover) this.counters.failovers++;
    this.suspects.set(reporterId, Date.now() + (this.options.suspectMs ?? 5000));
    const transient = code === RpcErrorCode.Timeout || code === RpcErrorCode.Unavailable;
    const fields = { reporterId, subBatchId: sub.id, code, err: error };
    if (transient) this.log.debug(fields, 'reporter did not take a share batch');
    else this.log.warn(fields, 'reporter refused a share batch');
  }

  private subDone(entry: InFlight): void {
    this.counters.ackedSubBatches++;
    entry.remaining--;
    if (entry.remaining === 0) this.finish(entry);
  }

  private finish(entry: InFlight): void {
    this.inFlight.delete(entry.batchId);
    try {
      this.spool.ack(entry.batchId);
    } catch (error) {
      this.report(error as Error);
    }
    this.counters.ackedBatches++;
    this.counters.ackedShares += entry.shares;
    if (this.outage) {
      this.outage = false;
      this.log.info({ backlogBatches: this.backlog() }, 'reporters accept share batches again');
    }
    this.emit('acked', {
      batchId: entry.batchId,
      shares: entry.shares,
      subBatches: entry.subs.map((s) => s.id),
    });
    this.pump();
  }

  /** Warns at the first batch with no reporter at all, at `backlogWarnBatches` and each doubling. */
  private checkBacklog(): void {
    const batches = this.backlog();
    if (batches === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const waiter of waiters) waiter.resolve();
      if (this.warned) {
        this.warned = false;
        this.noReporterWarned = false;
        this.warnAt = this.warnBase;
        this.log.info({}, 'share batch backlog drained');
        this.emit('backlogCleared', { batches });
      }
      return;
    }
    const noReporter = this.ring.servers.length === 0;
    if (noReporter && !this.noReporterWarned) {
      this.noReporterWarned = true;
      this.warn('no-reporter', batches);
    }
    if (batches >= this.warnAt) {
      this.warnAt *= 2;
      this.warn(noReporter ? 'no-reporter' : 'growing', batches);
    }
  }

  private warn(reason: BacklogEvent['reason'], batches: number): void {
    const shares = this.spool.stats().pendingShares;
    this.warned = true;
    this.counters.backlogWarnings++;
    this.log.warn(
      { reason, backlogBatches: batches, backlogShares: shares, reporters: this.ring.servers.length },
      'share batches are piling up in the spool',
    );
    this.emit('backlog', { reason, batches, shares });
  }

  private onReporter(type: 'up' | 'down' | 'changed', service: ServiceInfo): void {
    if (this.closed) return;
    if (service.chain !== '' && service.chain !== this.options.chain) return;
    if (type === 'down') {
      this.reporters.delete(service.id);
      this.suspects.delete(service.id);
      this.dropClient(service.id);
    } else {
      this.reporters.set(service.id, service);
      const known = this.clients.get(service.id);
      if (known && known.endpoint !== service.rpc) this.dropClient(service.id);
      // Announced up again (restarted, or back from draining): worth trying at once.
      this.suspects.delete(service.id);
    }
    this.updateRing();
  }

  private updateRing(): void {
    const up = [...this.reporters.values()].filter((s) => s.state === 'up' && s.rpc !== '').map((s) => s.id);
    const next = this.ring.withServers(up);
    const same =
      next.servers.length === this.ring.servers.length &&
      next.servers.every((id, i) => id === this.ring.servers[i]);
    if (!same) {
      this.ring = next;
      if (next.servers.length > 0) this.noReporterWarned = false;
      this.counters.ringVersion++;
      this.log.info({ reporters: next.servers }, 'reporter ring changed');
      this.emit('ring', next);
    }
    this.wake();
    if (this.started) this.pump();
  }

  private clientFor(reporterId: string): ReporterClient | null {
    const info = this.reporters.get(reporterId);
    if (!info || info.rpc === '') return null;
    const known = this.clients.get(reporterId);
    if (known?.endpoint === info.rpc && known.curveKey === info.curveKey) return known.client;
    if (known) this.dropClient(reporterId);
    let curve: ReturnType<typeof clientCurveFor>;
    try {
      curve = clientCurveFor(this.options.curve, info.curveKey, `reporter ${reporterId}`);
    } catch (error) {
      this.report(error as Error);
      return null;
    }
    const client = createRpcClient<RpcMethods>(info.rpc, {
      heartbeatIntervalMs: this.options.heartbeatIntervalMs ?? 1000,
      timeoutMs: this.options.requestTimeoutMs ?? 5000,
      ...(curve ? { curve } : {}),
    });
    this.clients.set(reporterId, { endpoint: info.rpc, curveKey: info.curveKey, client });
    return client;
  }

  /** Closing fails the client's requests at once, so their sub-batches move on. */
  private dropClient(reporterId: string): void {
    const known = this.clients.get(reporterId);
    if (!known) return;
    this.clients.delete(reporterId);
    void known.client.close();
  }

  private pause(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== wake);
        resolve();
      }, ms);
      this.waiters.push(wake);
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private report(error: Error): void {
    this.log.error({ err: error }, 'share forwarder error');
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }
}

function positive(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0)
    throw new RangeError(`${field} must be a positive number, got ${value}`);
  return value;
}
