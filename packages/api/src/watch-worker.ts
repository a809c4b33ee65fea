import { createHash } from 'node:crypto';
import type { Logger } from '@hashwire/core';
import { type PoolEvent, eventNames } from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';
import { seqBefore, toEvent } from './event-tail.js';
import type { Deliverers } from './watch-deliver.js';
import { type WatchEndpoint, parseEndpoint, redact } from './watch-endpoint.js';
import { type NameMatcher, compilePattern, matchesAny } from './watch-pattern.js';
import type { WatchRecord, WatchStore } from './watch-store.js';

/**
 * Delivers watches from one api process. Any number of processes run one each:
 *
 * - A watch is delivered by the process holding its lease (in the watch's hash, with a fencing
 *   epoch raised on every take). Leases are renewed every `leaseMs / 3` and trusted locally for
 *   0.8 × `leaseMs` after a renew was sent, so a process that froze stops before its successor
 *   starts; a SIGKILLed one's watches are taken by the others once the lease lapses.
 * - Each stream is read once per process (XRANGE from the last entry read, woken by the event
 *   tail). Every event is matched once per distinct pattern of the watches held here, whatever
 *   their number, and handed to each held watch of a matching pattern.
 * - A watch's cursors (one per stream) move only after its endpoint took the event, by a script
 *   that checks the lease: nothing is lost when a process dies mid-delivery, and the next holder
 *   sends the event again with the same idempotency key. A watch that is behind (just taken, or
 *   whose in-memory queue overflowed while its endpoint was down) first reads what it missed from
 *   Redis itself, then goes on with the shared feed.
 */
export interface WatchWorkerOptions {
  redis: RedisClient;
  store: WatchStore;
  deliverers: Deliverers;
  streams: readonly string[];
  /** Unique per process (instance id and a nonce). */
  holder: string;
  /** Wakes the stream readers when an event arrives (the api's event tail). */
  wake?: { subscribe(listener: (event: PoolEvent) => void): () => void };
  leaseMs: number;
  retryWindowMs: number;
  retryBaseMs: number;
  retryMaxDelayMs: number;
  outboxMaxLen: number;
  /** Poll period of the stream readers without a wake, and of idle checks. @defaultValue 1000 */
  pollMs?: number;
  /** Events queued in memory per watch before it falls back to reading Redis. @defaultValue 1000 */
  maxQueue?: number;
  logger: Logger;
}

export interface WatchWorkerStats {
  /** Watches this process delivers now. */
  held: number;
  /** Distinct patterns among them (what each event is matched against). */
  patterns: number;
  delivered: number;
  failedAttempts: number;
  /** Event time to delivery of the latest delivery, ms. */
  lagMs: number | null;
}

interface CatchUpStream {
  readFrom: string;
  until: string;
  buffer: PoolEvent[];
  done: boolean;
}

interface HeldWatch {
  id: string;
  pattern: string;
  matcher: NameMatcher;
  endpoint: WatchEndpoint;
  epoch: number;
  expiresAt: number | null;
  cursors: Record<string, string>;
  attempts: number;
  /** Monotonic ms until which the lease is trusted. */
  trustedUntil: number;
  queue: PoolEvent[];
  catchUp: Map<string, CatchUpStream> | null;
  stopped: boolean;
  /** A delivery (with its retries) is under way. */
  busy: boolean;
  wakeIdle: (() => void) | null;
  wakeStop: (() => void) | null;
  loop: Promise<void> | null;
}

interface PatternGroup {
  matcher: NameMatcher;
  watches: Set<HeldWatch>;
}

const CATCH_UP_PAGE = 200;
const READ_PAGE = 500;

export function createWatchWorker(options: WatchWorkerOptions) {
  const { redis, store, deliverers, streams, holder, logger } = options;
  const pollMs = options.pollMs ?? 1000;
  const maxQueue = options.maxQueue ?? 1000;
  const held = new Map<string, HeldWatch>();
  const groups = new Map<string, PatternGroup>();
  const positions = new Map<string, string>();
  const readerWakers = new Map<string, () => void>();
  const stats = { delivered: 0, failedAttempts: 0, lagMs: null as number | null };
  let running = false;
  let readers: Promise<void>[] = [];
  let ticker: NodeJS.Timeout | null = null;
  let ticking: Promise<void> | null = null;
  let unsubscribe: (() => void) | null = null;

  const idempotencyKey = (w: HeldWatch, event: PoolEvent) => `${w.id}:${event.stream}:${event.seq}`;

  function offer(w: HeldWatch, event: PoolEvent): void {
    if (w.stopped) return;
    if (w.queue.length >= maxQueue) {
      // Too far behind to keep in memory: read from Redis later, up to this event.
      w.queue = [];
      const until = new Map(
        streams.map((s) => [s, s === event.stream ? event.seq : (positions.get(s) ?? '0-0')]),
      );
      extendCatchUp(w, until);
      return;
    }
    w.queue.push(event);
    w.wakeIdle?.();
  }

  function extendCatchUp(w: HeldWatch, until: Map<string, string>): void {
    w.catchUp ??= new Map();
    for (const [stream, seq] of until) {
      const current = w.catchUp.get(stream);
      if (current) {
        if (seqBefore(current.until, seq)) {
          current.until = seq;
          current.done = false;
        }
      } else {
        const readFrom = w.cursors[stream] ?? '0-0';
        w.catchUp.set(stream, { readFrom, until: seq, buffer: [], done: !seqBefore(readFrom, seq) });
      }
    }
  }

  function dispatch(event: PoolEvent): void {
    let names: string[] | null = null;
    for (const group of groups.values()) {
      if (group.watches.size === 0) continue;
      names ??= eventNames(event.type, event.data);
      if (!matchesAny(group.matcher, names)) continue;
      for (const w of group.watches) offer(w, event);
    }
  }

  async function follow(stream: string): Promise<void> {
    const key = store.streamKey(stream);
    while (running) {
      try {
        const from = positions.get(stream) ?? '0-0';
        const entries = (await redis.xrange(key, `(${from}`, '+', 'COUNT', READ_PAGE)) as [
          string,
          string[],
        ][];
        for (const entry of entries) {
          const event = toEvent(stream, entry);
          positions.set(stream, event.seq);
          dispatch(event);
        }
        if (entries.length < READ_PAGE && running) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, pollMs);
            readerWakers.set(stream, () => {
              clearTimeout(timer);
              resolve();
            });
          });
          readerWakers.delete(stream);
        }
      } catch (error) {
        if (!running) return;
        logger.warn({ err: error, stream }, 'watches: reading the stream failed');
        await new Promise((resolve) => setTimeout(resolve, pollMs));
      }
    }
  }

  /** The next event a watch missed, oldest first across streams; null when caught up. */
  async function nextMissed(w: HeldWatch): Promise<PoolEvent | null> {
    if (!w.catchUp) return null;
    for (const [stream, st] of w.catchUp) {
      while (st.buffer.length === 0 && !st.done) {
        const entries = (await redis.xrange(
          store.streamKey(stream),
          `(${st.readFrom}`,
          st.until,
          'COUNT',
          CATCH_UP_PAGE,
        )) as [string, string[]][];
        if (entries.length < CATCH_UP_PAGE) st.done = true;
        for (const entry of entries) {
          const event = toEvent(stream, entry);
          st.readFrom = event.seq;
          if (matchesAny(w.matcher, eventNames(event.type, event.data))) st.buffer.push(event);
        }
      }
    }
    let best: CatchUpStream | null = null;
    for (const st of w.catchUp.values()) {
      const head = st.buffer[0];
      if (head && (!best || seqBefore(head.seq, (best.buffer[0] as PoolEvent).seq))) best = st;
    }
    if (!best) {
      w.catchUp = null;
      return null;
    }
    return best.buffer.shift() as PoolEvent;
  }

  function stop(w: HeldWatch, why: string): void {
    if (w.stopped) return;
    w.stopped = true;
    held.delete(w.id);
    const group = groups.get(w.pattern);
    group?.watches.delete(w);
    if (group && group.watches.size === 0) groups.delete(w.pattern);
    w.wakeIdle?.();
    w.wakeStop?.();
    logger.debug({ watch: w.id, why }, 'watches: no longer delivering');
  }

  /** Delivers one event, retrying with backoff; returns when delivered, or the watch stopped. */
  async function deliverWithRetries(w: HeldWatch, event: PoolEvent): Promise<void> {
    const key = idempotencyKey(w, event);
    while (!w.stopped) {
      if (performance.now() >= w.trustedUntil) return stop(w, 'lease not renewed in time');
      if (w.expiresAt !== null && Date.now() >= w.expiresAt) {
        await store.remove(w.id, 'lifetime', { onlyIfExpired: true });
        return stop(w, 'lifetime ended');
      }
      try {
        let outcome: 'moved' | 'already' | 'lost';
        if (w.endpoint.kind === 'ws') {
          outcome = await store.advance(w.id, holder, w.epoch, event.stream, event.seq, {
            maxLen: options.outboxMaxLen,
            type: event.type,
            ts: event.ts,
            data: JSON.stringify(event.data),
            key,
          });
        } else {
          await deliverers.deliver(w.endpoint, { key, watch: w.id, event, attempt: w.attempts + 1 });
          outcome = await store.advance(w.id, holder, w.epoch, event.stream, event.seq);
        }
        if (outcome === 'lost') return stop(w, 'lease lost or watch removed');
        w.cursors[event.stream] = event.seq;
        w.attempts = 0;
        stats.delivered++;
        stats.lagMs = Date.now() - event.ts;
        return;
      } catch (error) {
        stats.failedAttempts++;
        const message = redact((error as Error).message ?? String(error), w.endpoint.password).slice(0, 300);
        const failed = await store.fail(w.id, holder, w.epoch, message);
        if (!failed) return stop(w, 'lease lost or watch removed');
        w.attempts = failed.attempts;
        const deadline = failed.failSince + options.retryWindowMs;
        if (failed.now >= deadline) {
          logger.warn(
            { watch: w.id, attempts: failed.attempts, error: message },
            'watches: retries exhausted',
          );
          await store.remove(w.id, 'retries exhausted', { fence: { holder, epoch: w.epoch } });
          return stop(w, 'retries exhausted');
        }
        let delay = Math.min(options.retryBaseMs * 2 ** (failed.attempts - 1), options.retryMaxDelayMs);
        // The last attempt falls on the window's end.
        if (failed.now + delay > deadline) delay = deadline - failed.now;
        logger.debug(
          { watch: w.id, attempt: failed.attempts, delay, error: message },
          'watches: delivery failed',
        );
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          w.wakeStop = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        w.wakeStop = null;
      }
    }
  }

  async function run(w: HeldWatch): Promise<void> {
    // The event under way stays here until delivered: when Redis fails mid-way (its failure
    // could not even be recorded) the same event is tried again, never the next one instead.
    let event: PoolEvent | null = null;
    while (!w.stopped) {
      try {
        event ??= (await nextMissed(w)) ?? w.queue.shift() ?? null;
        if (!event) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, pollMs);
            w.wakeIdle = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          w.wakeIdle = null;
          continue;
        }
        const cursor = w.cursors[event.stream] ?? '0-0';
        if (seqBefore(cursor, event.seq)) {
          w.busy = true;
          await deliverWithRetries(w, event);
        }
        event = null;
        w.busy = false;
      } catch (error) {
        if (w.stopped) return;
        logger.warn({ err: error, watch: w.id }, 'watches: delivery loop error (Redis?)');
        await new Promise((resolve) => setTimeout(resolve, pollMs));
      }
    }
  }

  function hold(record: WatchRecord, sentAt: number): void {
    let endpoint: WatchEndpoint;
    let matcher: NameMatcher;
    const group = groups.get(record.pattern);
    try {
      endpoint = parseEndpoint(record.endpoint);
      matcher = group?.matcher ?? compilePattern(record.pattern);
    } catch (error) {
      logger.error({ err: error, watch: record.id }, 'watches: stored watch is not valid; not delivering it');
      return;
    }
    const w: HeldWatch = {
      id: record.id,
      pattern: record.pattern,
      matcher,
      endpoint,
      epoch: record.epoch,
      expiresAt: record.expiresAt,
      cursors: { ...record.cursors },
      attempts: record.attempts,
      trustedUntil: sentAt + options.leaseMs * 0.8,
      queue: [],
      catchUp: null,
      stopped: false,
      busy: false,
      wakeIdle: null,
      wakeStop: null,
      loop: null,
    };
    // A stream the watch has no cursor for (a chain added since it was registered) starts now,
    // not at the oldest entry kept.
    for (const stream of streams) w.cursors[stream] ??= positions.get(stream) ?? '0-0';
    // What this process has read so far comes from Redis; what it reads next, from the feed.
    extendCatchUp(w, new Map(streams.map((s) => [s, positions.get(s) ?? '0-0'])));
    held.set(w.id, w);
    if (group) group.watches.add(w);
    else groups.set(w.pattern, { matcher, watches: new Set([w]) });
    w.loop = run(w);
    logger.debug({ watch: w.id, epoch: w.epoch }, 'watches: delivering');
  }

  /**
   * Which delivering process should hold a watch: rendezvous hashing over the live ones, so each
   * gets a fair share and a process joining or leaving moves only its share.
   */
  function preferredHolder(workers: readonly string[], id: string): string {
    let best = holder;
    let bestScore = -1n;
    for (const worker of workers) {
      const score = createHash('sha1').update(`${worker}\n${id}`).digest().readBigUInt64BE(0);
      if (score > bestScore) {
        best = worker;
        bestScore = score;
      }
    }
    return best;
  }

  const idle = (w: HeldWatch) => !w.busy && w.queue.length === 0 && w.catchUp === null && w.attempts === 0;

  async function tick(): Promise<void> {
    const workers = await store.heartbeat(holder, Date.now(), options.leaseMs);
    if (!workers.includes(holder)) workers.push(holder);
    // Renew what is held.
    await Promise.all(
      [...held.values()].map(async (w) => {
        const sentAt = performance.now();
        const renewed = await store.renew(w.id, holder, w.epoch, options.leaseMs).catch(() => undefined);
        if (renewed === undefined) return; // Redis unreachable: trust runs out by itself
        if (renewed === null) return stop(w, 'lease lost or watch removed');
        w.trustedUntil = sentAt + options.leaseMs * 0.8;
        if (renewed.expiresAt > 0 && renewed.now >= renewed.expiresAt) {
          await store.remove(w.id, 'lifetime', { onlyIfExpired: true });
          stop(w, 'lifetime ended');
        }
      }),
    );
    // Hand idle watches to the process they belong to; it takes them at its next round.
    for (const w of [...held.values()]) {
      if (!running || !idle(w) || preferredHolder(workers, w.id) === holder) continue;
      stop(w, 'handed over');
      await w.loop;
      await store.release(w.id, holder, w.epoch);
    }
    // Take the free watches that belong here. A dead process stops heartbeating and drops out
    // of `workers` after leaseMs, as its leases lapse: its watches then belong to the others.
    const ids = await store.ids();
    for (const id of ids) {
      if (!running) return;
      if (held.has(id) || preferredHolder(workers, id) !== holder) continue;
      const sentAt = performance.now();
      const taken = await store.acquire(id, holder, options.leaseMs);
      if (taken === 'held') continue;
      if (taken === 'gone') {
        const record = await store.get(id);
        if (!record) await store.forget(id);
        else await store.finishStale(record, Date.now(), options.leaseMs * 3);
        continue;
      }
      if (taken.record.expiresAt !== null && taken.now >= taken.record.expiresAt) {
        await store.remove(id, 'lifetime', { onlyIfExpired: true });
        continue;
      }
      hold(taken.record, sentAt);
    }
  }

  function runTick(): void {
    if (ticking || !running) return;
    ticking = tick()
      .catch((error) => logger.warn({ err: error }, 'watches: lease round failed'))
      .finally(() => {
        ticking = null;
      });
  }

  return {
    async start(): Promise<void> {
      if (running) return;
      const heads = await store.heads();
      for (const stream of streams) positions.set(stream, heads[stream] ?? '0-0');
      running = true;
      readers = streams.map((s) => follow(s));
      unsubscribe =
        options.wake?.subscribe((event) => {
          readerWakers.get(event.stream)?.();
        }) ?? null;
      runTick();
      ticker = setInterval(runTick, Math.max(50, Math.floor(options.leaseMs / 3)));
      ticker.unref();
    },
    /** Looks for new watches now (after a create), instead of at the next lease round. */
    poke(): void {
      runTick();
    },
    stats(): WatchWorkerStats {
      return { held: held.size, patterns: groups.size, ...stats };
    },
    /** Stops delivering and gives the leases up, so other processes take the watches at once. */
    async close(): Promise<void> {
      if (!running) return;
      running = false;
      if (ticker) clearInterval(ticker);
      unsubscribe?.();
      for (const wake of readerWakers.values()) wake();
      await ticking;
      const watches = [...held.values()];
      for (const w of watches) stop(w, 'closing');
      // Deliveries in flight finish (bounded by the delivery timeout) before the lease goes.
      await Promise.allSettled(watches.map((w) => w.loop));
      await Promise.allSettled(watches.map((w) => store.release(w.id, holder, w.epoch)));
      await store.leave(holder).catch(() => {});
      await Promise.allSettled(readers);
      await deliverers.close();
    },
  };
}
