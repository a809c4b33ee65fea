import { EventEmitter } from 'node:events';
import {
  BucketRing,
  DEFAULT_RING_VIRTUAL_NODES,
  RpcErrorCode,
  type RpcMethods,
  SHARES_WIRE,
  type Share,
} from '@hashwire/protocol';
import { type ServiceInfo, type ServiceWatcher, watchServices } from '@hashwire/registry';
import { RpcError, clientCurveFor, createRpcClient } from '@hashwire/rpc';
import {
  type BacklogEvent,
  type ForwarderEvents,
  type ForwarderLogger,
  type ForwarderStats,
  type ShareForwarderOptions,
  silentForwarderLogger,
} from './forwarder-options.js';
import { type ReporterClient, ReporterRequests, isMalformed } from './forwarder-requests.js';
import { type SubBatchSplit, recordedSplit, splitBatch } from './share-routing.js';
import type { BatchState, QuarantineReason, QuarantineRecord } from './spool-journal.js';
import type { ShareBatch, ShareSpool } from './spool.js';

interface Refusal {
  reporterId: string;
  code: number;
  message: string;
  at: number;
}

interface SubBatch {
  id: string;
  /** Its sequence number in the spool, given when the split is recorded (before the first send). */
  seq?: number;
  bucket: number;
  shares: Share[];
  indices: number[];
  /** The bucket's server order from the ring the sub-batch was first routed with. */
  order: readonly string[] | null;
  attempts: number;
  /** Reporters that refused it as malformed, by id. */
  refusals: Map<string, Refusal>;
}

interface InFlight {
  batchId: string;
  shares: number;
  sealedAt: number;
  /**
   * From when a reporter may have seen a sub-batch (null: none was sent yet); the split is
   * recorded in the spool when this is first set.
   */
  firstSendAt: number | null;
  splitRecorded: boolean;
  subs: SubBatch[];
  remaining: number;
  quarantined: string[];
  quarantinedShares: number;
}

/**
 * Refusals as malformed needed before a sub-batch is quarantined: two different reporters when
 * two or more are up, so one reporter with a bug, an old version or a wrong config cannot send
 * the pool's shares to quarantine on its own (the sub-batch goes to the bucket's next reporter
 * instead, and a reporter that refuses what another credits is logged); with a single reporter
 * its word is final, or a poisoned batch would block every batch behind it forever. Either way
 * nothing is lost: the shares are on disk in quarantine/ for an operator to re-inject.
 */
const REFUSALS_TO_QUARANTINE = 2;

/**
 * Carries sealed spool batches to reporters. Each batch is split per ring bucket into
 * sub-batches with derived ids, each sent with `reporter.shares` to its bucket's first
 * reporter and on failure to the next; the spool batch is acked (and leaves the disk) only
 * when every sub-batch was. A sub-batch keeps the server order it was first routed with,
 * newcomers appended, until acked. Reporters dedupe on the id, so a resend after a lost
 * ack or a restart is harmless. With no reporter answering, batches stay on disk, at most
 * `maxInFlightBatches` are in memory, and operators are warned.
 *
 * The spool journal makes this hold across restarts of any age: the split is recorded before
 * the first send (a batch keeps its sub-batch ids and membership whatever the ring layout
 * later), each ack is recorded (an acked sub-batch is never sent again), and a sub-batch
 * unacked for the reporters' `batchTtlS` since its batch was sealed is quarantined, not sent
 * (a reporter no longer remembers whether it credited it, or a copy of one of its shares). A sub-batch reporters refuse
 * as malformed is quarantined too (see REFUSALS_TO_QUARANTINE): it is kept on disk with the
 * reason and never holds up the batches behind it.
 */
export class ShareForwarder extends EventEmitter<ForwarderEvents> {
  private readonly options: ShareForwarderOptions;
  private readonly spool: ShareSpool;
  private readonly log: ForwarderLogger;
  private readonly maxInFlight: number;
  private readonly batchTtlMs: number;
  private readonly now: () => number;
  private ring: BucketRing;
  private watcher: ServiceWatcher | null = null;
  /**
   * Every reporter of our chain known to the registry, in any state; the ring holds those `up`
   * that speak our share wire.
   */
  private readonly reporters = new Map<string, ServiceInfo>();
  /** Reporters left out of the ring for another share wire (an older release), logged once each. */
  private readonly otherWire = new Set<string>();
  private readonly clients = new Map<
    string,
    { endpoint: string; curveKey: string | undefined; client: ReporterClient }
  >();
  private readonly suspects = new Map<string, number>();
  /** Groups the sub-batches sent to one reporter in one turn into one request. */
  private readonly requests: ReporterRequests;
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
    subBatchesSent: 0,
    failedRequests: 0,
    failovers: 0,
    exhausted: 0,
    ackedBatches: 0,
    ackedSubBatches: 0,
    ackedShares: 0,
    resumedAckedSubBatches: 0,
    malformedRefusals: 0,
    quarantinedSubBatches: 0,
    quarantinedShares: 0,
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
    this.batchTtlMs = positive('batchTtlS', options.batchTtlS, 86_400) * 1000;
    this.now = options.now ?? Date.now;
    this.ring = new BucketRing([], options.ring);
    this.requests = new ReporterRequests({
      stratumId: options.stratumId,
      chain: options.chain,
      spool: this.spool,
      timeoutMs: options.requestTimeoutMs ?? 5000,
      maxShares: positive('maxRequestShares', options.maxRequestShares, 5000),
      closed: () => this.closed,
      onRequest: (subBatches) => {
        this.counters.requests++;
        this.counters.subBatchesSent += subBatches;
      },
    });
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
      reportersOtherWire: this.otherWire.size,
      backlogBatches: this.backlog(),
      queuedBatches: this.queue.size,
      inFlightBatches: this.inFlight.size,
      inFlightSubBatches: subs,
      errors: { ...this.errors },
      quarantine: this.spool.quarantineStats(),
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
    if (this.started && this.queue.size === 0 && this.canDispatch()) {
      const fresh: BatchState = {
        sealedAt: batch.sealedAt,
        legacy: false,
        split: null,
        acked: new Set(),
        quarantined: new Set(),
      };
      this.dispatch(batch, fresh);
    } else this.enqueue(batch.batchId);
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
      let batch: ShareBatch | null;
      let state: BatchState | null;
      try {
        batch = this.spool.loadBatch(batchId);
        state = this.spool.batchState(batchId);
      } catch (error) {
        // Left on disk for the next start; the batches behind it go on.
        this.report(error as Error);
        continue;
      }
      if (batch && state) this.dispatch(batch, state);
    }
    this.checkBacklog();
  }

  private dispatch(batch: ShareBatch, state: BatchState): void {
    // Split before (by an earlier run, maybe under another ring layout): the same sub-batches.
    const parts: SubBatchSplit[] | null = state.split
      ? recordedSplit(batch, state.split)
      : splitBatch(batch, this.ring);
    if (!parts) {
      // Only a hand-edited spool gets here: resplitting could credit a share twice.
      this.report(
        new Error(
          `spool batch ${batch.batchId}: its journal's split does not fit its shares; left on disk, not sent`,
        ),
      );
      return;
    }
    const subs: SubBatch[] = parts.map((s) => ({ ...s, order: null, attempts: 0, refusals: new Map() }));
    const done = (s: SubBatch) => state.acked.has(s.id) || state.quarantined.has(s.id);
    const pending = subs.filter((s) => !done(s));
    const entry: InFlight = {
      batchId: batch.batchId,
      shares: batch.shares.length,
      sealedAt: state.sealedAt,
      // An older version may have sent a batch it spooled: count from its file's time.
      firstSendAt: state.split?.firstSendAt ?? (state.legacy ? state.sealedAt : null),
      splitRecorded: state.split !== null,
      subs,
      remaining: pending.length,
      quarantined: subs.filter((s) => state.quarantined.has(s.id)).map((s) => s.id),
      quarantinedShares: 0,
    };
    for (const sub of subs) if (state.quarantined.has(sub.id)) entry.quarantinedShares += sub.shares.length;
    this.counters.resumedAckedSubBatches += subs.filter((s) => state.acked.has(s.id)).length;
    this.inFlight.set(batch.batchId, entry);
    if (pending.length === 0) {
      this.finish(entry);
      return;
    }
    for (const sub of pending) {
      const loop = this.deliver(entry, sub).catch((error: Error) => this.report(error));
      this.loops.add(loop);
      void loop.finally(() => this.loops.delete(loop));
    }
  }

  /**
   * Before the batch's first request: record its split in the spool, so it is never split
   * differently, and from when its age counts. False when the journal cannot be written.
   */
  private recordSplit(entry: InFlight): boolean {
    if (entry.splitRecorded) {
      if (entry.subs.every((s) => s.seq !== undefined)) return true;
      // Split by an older version, which gave no sequence numbers: given now, once, before this version sends any.
      try {
        const first = this.spool.allocateSeqs(entry.subs.length);
        const seqs = entry.subs.map((_, i) => first + i);
        this.spool.recordSeqs(entry.batchId, seqs);
        entry.subs.forEach((s, i) => {
          s.seq = seqs[i]!;
        });
      } catch (error) {
        this.report(error as Error);
        return false;
      }
      return true;
    }
    const firstSendAt = entry.firstSendAt ?? this.now();
    try {
      const first = this.spool.allocateSeqs(entry.subs.length);
      this.spool.recordSplit(entry.batchId, {
        firstSendAt,
        layout: {
          buckets: this.ring.bucketCount,
          bucketsPerAccount: this.ring.bucketsPerAccount,
          virtualNodes: this.options.ring?.virtualNodes ?? DEFAULT_RING_VIRTUAL_NODES,
        },
        subs: entry.subs.map((s, i) => ({ id: s.id, bucket: s.bucket, shares: s.indices, seq: first + i })),
      });
      entry.subs.forEach((s, i) => {
        s.seq = first + i;
      });
    } catch (error) {
      this.report(error as Error);
      return false;
    }
    entry.firstSendAt = firstSendAt;
    entry.splitRecorded = true;
    return true;
  }

  /**
   * Too old to send, counted from its seal: a reporter may have credited it and forgotten its
   * id since, and the reporters' duplicate check (share identities, kept `batchTtlS` + 1 h after
   * a job's last credit) only covers copies delivered within `batchTtlS` of their seal. A batch
   * never sent is held to the same bound: one copy of a share it holds may have been credited
   * through another server more than a day ago.
   */
  private expired(entry: InFlight): boolean {
    const marginMs = Math.min((this.options.requestTimeoutMs ?? 5000) + 60_000, this.batchTtlMs / 10);
    return this.now() >= entry.sealedAt + this.batchTtlMs - marginMs;
  }

  /** Servers to try, in order: the first routing's order, newcomers after, suspects last. */
  private candidates(sub: SubBatch): string[] {
    // Any reporter can credit any sub-batch (they share Redis); a bucket of an older, bigger
    // layout is only routed like one of the current layout.
    const current = this.ring.serversFor(sub.bucket % this.ring.bucketCount);
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
    while (!this.closed) {
      if (this.expired(entry)) {
        const ageS = Math.round((this.now() - entry.sealedAt) / 1000);
        const message = `sealed ${ageS} s ago; reporters remember batch ids and share identities for about batchTtlS ${this.batchTtlMs / 1000} s, so sending it now could credit a share twice`;
        if (this.quarantine(entry, sub, 'expired', message)) return;
        // Never sent again: tried again once the quarantine can be written.
        await this.pause(maxRetryDelayMs);
        continue;
      }
      const candidates = this.candidates(sub);
      if (candidates.length > 0 && !this.recordSplit(entry)) {
        await this.pause(maxRetryDelayMs);
        continue;
      }
      for (const [i, reporterId] of candidates.entries()) {
        const client = this.clientFor(reporterId);
        if (!client) continue;
        sub.attempts++;
        try {
          const outcome = await this.requests.send(reporterId, client, {
            seq: sub.seq!,
            id: sub.id,
            shares: sub.shares,
          });
          if (this.closed) return;
          if (outcome.status === 'refused')
            throw new RpcError(outcome.error.code as RpcErrorCode, outcome.error.message);
          if (outcome.status === 'forgotten') {
            // Below the floor the reporters hold for this spool, yet never acknowledged here: this
            // spool's sequence numbers were given twice (spool.json restored or copied). Never
            // taken as credited: refused like a malformed sub-batch, so it ends in quarantine.
            throw new RpcError(
              RpcErrorCode.BadRequest,
              `the reporters count seq ${sub.seq} of spool ${this.spool.spoolId} as acknowledged (below its floor), but this server never had it acknowledged: its sequence numbers were given twice (a restored or copied spool.json?)`,
            );
          }
          const reply = { credited: outcome.credited };
          this.suspects.delete(reporterId);
          this.counters.credited += Number(reply.credited) || 0;
          try {
            this.spool.recordAck(entry.batchId, sub.id, reporterId, Number(reply.credited) || 0);
          } catch (error) {
            // Credited all the same; without the record a restart resends it (deduped by id).
            this.report(error as Error);
          }
          if (sub.refusals.size > 0) {
            this.log.warn(
              { subBatchId: sub.id, reporterId, refusedBy: [...sub.refusals.values()] },
              'a reporter credited a share sub-batch another refused as malformed: check the refusing reporter (version, config)',
            );
          }
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
          if (error instanceof RpcError && isMalformed(error.code)) {
            if (this.refused(entry, sub, reporterId, error)) return;
            continue;
          }
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

  /**
   * A reporter refused the sub-batch as malformed. True once it is quarantined (enough
   * reporters said so); until then it goes on to the bucket's next reporter.
   */
  private refused(entry: InFlight, sub: SubBatch, reporterId: string, error: RpcError): boolean {
    this.counters.failedRequests++;
    this.counters.malformedRefusals++;
    this.errors[error.code] = (this.errors[error.code] ?? 0) + 1;
    sub.refusals.set(reporterId, { reporterId, code: error.code, message: error.message, at: this.now() });
    const needed = Math.max(1, Math.min(REFUSALS_TO_QUARANTINE, this.ring.servers.length));
    if (sub.refusals.size >= needed) return this.quarantine(entry, sub, 'refused', error.message);
    this.log.warn(
      { reporterId, subBatchId: sub.id, code: error.code, reason: error.message },
      'a reporter refused a share sub-batch as malformed; asking another reporter before quarantining it',
    );
    return false;
  }

  /** Moves the sub-batch to the spool's quarantine. False when that could not be written (retried). */
  private quarantine(entry: InFlight, sub: SubBatch, reason: QuarantineReason, message: string): boolean {
    // The split too, so a restart cannot quarantine these shares again under other ids.
    if (!this.recordSplit(entry)) return false;
    const refusals = [...sub.refusals.values()];
    const record: QuarantineRecord = {
      subBatchId: sub.id,
      batchId: entry.batchId,
      bucket: sub.bucket,
      reason,
      message,
      refusals,
      stratumId: this.options.stratumId,
      chain: this.options.chain,
      quarantinedAt: this.now(),
      sealedAt: entry.sealedAt,
      firstSendAt: entry.firstSendAt,
      shares: sub.shares,
    };
    let file: string;
    try {
      file = this.spool.quarantine(record);
    } catch (error) {
      this.report(error as Error);
      return false;
    }
    this.counters.quarantinedSubBatches++;
    this.counters.quarantinedShares += sub.shares.length;
    entry.quarantined.push(sub.id);
    entry.quarantinedShares += sub.shares.length;
    const reporters = refusals.map((r) => r.reporterId);
    this.log.error(
      {
        subBatchId: sub.id,
        batchId: entry.batchId,
        reason,
        message,
        shares: sub.shares.length,
        reporters,
        file,
      },
      reason === 'refused'
        ? 'share sub-batch quarantined: reporters refused it as malformed'
        : 'share sub-batch quarantined: too old to resend safely',
    );
    this.emit('quarantined', {
      subBatchId: sub.id,
      batchId: entry.batchId,
      bucket: sub.bucket,
      reason,
      message,
      shares: sub.shares.length,
      reporters,
      file,
    });
    this.subDone(entry, false);
    return true;
  }

  private subDone(entry: InFlight, acked = true): void {
    if (acked) this.counters.ackedSubBatches++;
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
    this.counters.ackedShares += entry.shares - entry.quarantinedShares;
    if (this.outage) {
      this.outage = false;
      this.log.info({ backlogBatches: this.backlog() }, 'reporters accept share batches again');
    }
    this.emit('acked', {
      batchId: entry.batchId,
      shares: entry.shares,
      subBatches: entry.subs.map((s) => s.id),
      quarantined: [...entry.quarantined],
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
    // Reporters are registered, but none speaks our wire: the operator has reporters to upgrade.
    const why =
      reason === 'no-reporter' && this.otherWire.size > 0
        ? `no reporter speaks share wire ${SHARES_WIRE} — upgrade the reporters (${this.otherWire.size} registered speak an older wire)`
        : undefined;
    this.log.warn(
      {
        reason,
        ...(why ? { why } : {}),
        backlogBatches: batches,
        backlogShares: shares,
        reporters: this.ring.servers.length,
      },
      'share batches are piling up in the spool',
    );
    this.emit('backlog', { reason, batches, shares, ...(why ? { why } : {}) });
  }

  private onReporter(type: 'up' | 'down' | 'changed', service: ServiceInfo): void {
    if (this.closed) return;
    if (service.chain !== '' && service.chain !== this.options.chain) return;
    if (type === 'down') {
      this.reporters.delete(service.id);
      this.otherWire.delete(service.id);
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
    const up: string[] = [];
    for (const s of this.reporters.values()) {
      if (s.state !== 'up' || s.rpc === '') continue;
      if (s.sharesWire === SHARES_WIRE) {
        this.otherWire.delete(s.id);
        up.push(s.id);
      } else if (!this.otherWire.has(s.id)) {
        // It would refuse our requests and we its answers: left out until upgraded (it comes
        // back as `changed` or `up` when it is), its batches go to the others or wait on disk.
        this.otherWire.add(s.id);
        this.log.warn(
          { reporterId: s.id, version: s.version, sharesWire: s.sharesWire ?? 1, ours: SHARES_WIRE },
          `reporter left out: it does not speak share wire ${SHARES_WIRE} (an older release); share batches go to reporters that do, or wait in the spool until one is upgraded`,
        );
      }
    }
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
