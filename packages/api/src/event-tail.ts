import { type KeyBuilder, POOL_STREAM, type PoolEvent } from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';

/**
 * Reads the pool's event streams (`events:{chain}` per chain and `events:{pool}`) for one api
 * process: one blocking XREAD per stream on a connection of its own (streams of different
 * chains live in different Cluster slots, so one XREAD over all of them would be CROSSSLOT),
 * fanned out in process to every listener. The watches and the live stream both read through it.
 */
export interface EventTailOptions {
  redis: RedisClient;
  keys: KeyBuilder;
  /** The chains whose streams to read; the pool stream is always read. */
  chains: readonly string[];
  /** How long one XREAD blocks, ms. @defaultValue 1000 */
  blockMs?: number;
  /** Entries read per XREAD. @defaultValue 500 */
  count?: number;
  onError?: (error: Error, stream: string) => void;
}

/** A resume point older than a stream keeps: the client must take a new snapshot. */
export class EventTooOldError extends Error {
  override readonly name = 'EventTooOldError';
  constructor(
    readonly stream: string,
    readonly seq: string,
    readonly oldest: string | null,
  ) {
    super(
      `stream ${stream}: seq ${seq} is older than what is kept (oldest ${oldest ?? 'none'}); take a new snapshot`,
    );
  }
}

export interface EventTail {
  /** The stream names read: the chains and `pool`. */
  readonly streams: readonly string[];
  /** Listens to every event read from now on, in each stream's order. */
  subscribe(listener: (event: PoolEvent) => void): () => void;
  /** The newest seq of each stream (`0-0` when empty), read from Redis now. */
  heads(): Promise<Record<string, string>>;
  /** Resolves once every stream's starting point is pinned (after start()). */
  ready(): Promise<void>;
  /**
   * Resolves once every event appended to the streams before this call has reached the
   * listeners (after start()): a snapshot taken after it covers them, so none of them arrives
   * after it as a live event.
   */
  caughtUp(): Promise<void>;
  /**
   * The seq of the last event of each stream given to the listeners (or the head when the tail
   * started): every event after it will still reach the listeners. A live subscription's position.
   */
  positions(): Record<string, string>;
  /**
   * Also reads `key` (a watch's outbox) as stream `stream` while someone needs it: resolves once
   * its starting point is pinned, with a function that lets it go (the last one stops the read).
   * Each followed stream has a connection of its own.
   */
  follow(stream: string, key: string): Promise<() => void>;
  /**
   * Up to `count` events of `stream` after `afterSeq`, oldest first. Throws EventTooOldError when
   * entries after `afterSeq` were already trimmed away.
   */
  range(stream: string, afterSeq: string, count: number): Promise<PoolEvent[]>;
  start(): void;
  close(): Promise<void>;
}

type StreamEntry = [id: string, fields: string[]];

export function toEvent(stream: string, [id, fields]: StreamEntry): PoolEvent {
  let type = '';
  let ts = 0;
  let data: unknown = null;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i];
    const value = fields[i + 1] as string;
    if (name === 'type') type = value;
    else if (name === 'ts') ts = Number(value);
    else if (name === 'data') {
      try {
        data = JSON.parse(value);
      } catch {
        data = value;
      }
    }
  }
  return { stream, seq: id, type: type as PoolEvent['type'], ts, data };
}

/** `a` < `b` for stream ids (`<ms>-<n>`). */
export function seqBefore(a: string, b: string): boolean {
  const [am = '0', an = '0'] = a.split('-');
  const [bm = '0', bn = '0'] = b.split('-');
  const ams = BigInt(am);
  const bms = BigInt(bm);
  return ams < bms || (ams === bms && BigInt(an) < BigInt(bn));
}

/**
 * A connection of its own for a blocking XREAD. Its errors reach the read loop through the
 * failed command (which reports and retries); without a listener ioredis would also print every
 * reconnect attempt as an unhandled error event while Redis is away.
 */
function quietDuplicate(redis: RedisClient): RedisClient {
  const reader = redis.duplicate() as RedisClient;
  reader.on('error', () => {});
  return reader;
}

export function createEventTail(options: EventTailOptions): EventTail {
  const { redis, keys } = options;
  const blockMs = options.blockMs ?? 1000;
  const count = options.count ?? 500;
  const streams = [...options.chains, POOL_STREAM];
  /** Streams followed on demand (watch outboxes): their key, users, reader and whether to go on. */
  const extra = new Map<
    string,
    { key: string; refs: number; reader: RedisClient; active: { on: boolean }; pinned: Promise<void> }
  >();
  const keyOf = (stream: string) =>
    extra.get(stream)?.key ?? (stream === POOL_STREAM ? keys.poolEvents() : keys.events(stream));
  const listeners = new Set<(event: PoolEvent) => void>();
  const readers: RedisClient[] = [];
  let running = false;
  const loops: Promise<void>[] = [];
  const seen: Record<string, string> = {};
  let pinned = 0;
  let markReady: () => void = () => {};
  const readyPromise = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  /** caughtUp() calls waiting for the listeners to have seen these heads. */
  let waiters: { heads: Record<string, string>; resolve: () => void }[] = [];
  const reached = (heads: Record<string, string>) =>
    Object.entries(heads).every(([stream, head]) => {
      const at = seen[stream];
      return at !== undefined && !seqBefore(at, head);
    });
  const settleWaiters = () => {
    if (waiters.length === 0) return;
    waiters = waiters.filter((w) => {
      if (!reached(w.heads)) return true;
      w.resolve();
      return false;
    });
  };

  async function follow(
    stream: string,
    key: string,
    reader: RedisClient,
    active: { on: boolean },
    onPinned: () => void,
  ): Promise<void> {
    let last = '$';
    // '$' is "after the newest": pin it to a real id before the first read, so an entry
    // added between two reads is never skipped.
    while (running && active.on) {
      try {
        if (last === '$') {
          const newest = (await redis.xrevrange(key, '+', '-', 'COUNT', 1)) as StreamEntry[];
          last = newest[0]?.[0] ?? '0-0';
          seen[stream] = last;
          onPinned();
        }
        const result = (await reader.xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', key, last)) as
          | [string, StreamEntry[]][]
          | null;
        // A stream let go while its read was answered: its events are no one's now.
        if (!result || !active.on) continue;
        for (const [, entries] of result) {
          for (const entry of entries) {
            last = entry[0];
            seen[stream] = last;
            const event = toEvent(stream, entry);
            for (const listener of listeners) listener(event);
          }
        }
        settleWaiters();
      } catch (error) {
        if (!running || !active.on) return;
        options.onError?.(error as Error, stream);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }

  async function heads(): Promise<Record<string, string>> {
    const newest: Record<string, string> = {};
    await Promise.all(
      streams.map(async (stream) => {
        const entries = (await redis.xrevrange(keyOf(stream), '+', '-', 'COUNT', 1)) as StreamEntry[];
        newest[stream] = entries[0]?.[0] ?? '0-0';
      }),
    );
    return newest;
  }

  return {
    streams,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    heads,
    ready: () => readyPromise,
    async caughtUp() {
      await readyPromise;
      const target = await heads();
      if (!running || reached(target)) return;
      await new Promise<void>((resolve) => waiters.push({ heads: target, resolve }));
    },
    positions: () => ({ ...seen }),
    async range(stream, afterSeq, max) {
      if (!streams.includes(stream) && !extra.has(stream)) throw new TypeError(`unknown stream ${stream}`);
      const key = keyOf(stream);
      const entries = (await redis.xrange(key, `(${afterSeq}`, '+', 'COUNT', max)) as StreamEntry[];
      // Entries older than the oldest kept may have been trimmed: a resume point before it
      // cannot prove nothing was lost, so the client must re-snapshot ('0-0' asks for all kept).
      const oldest = (await redis.xrange(key, '-', '+', 'COUNT', 1)) as StreamEntry[];
      const oldestId = oldest[0]?.[0] ?? null;
      if (afterSeq !== '0-0' && oldestId !== null && seqBefore(afterSeq, oldestId))
        throw new EventTooOldError(stream, afterSeq, oldestId);
      return entries.map((entry) => toEvent(stream, entry));
    },
    start() {
      if (running) return;
      running = true;
      const always = { on: true };
      for (const stream of streams) {
        const reader = quietDuplicate(redis);
        readers.push(reader);
        loops.push(
          follow(stream, keyOf(stream), reader, always, () => {
            if (++pinned === streams.length) markReady();
          }),
        );
      }
    },
    async follow(stream, key) {
      if (!running) throw new Error('event tail: not started');
      let entry = extra.get(stream);
      if (!entry) {
        const reader = quietDuplicate(redis);
        const active = { on: true };
        let markPinned: () => void = () => {};
        const pinnedPromise = new Promise<void>((resolve) => {
          markPinned = resolve;
        });
        entry = { key, refs: 0, reader, active, pinned: pinnedPromise };
        extra.set(stream, entry);
        loops.push(follow(stream, key, reader, active, markPinned));
      }
      entry.refs++;
      const held = entry;
      await held.pinned;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        if (--held.refs > 0) return;
        held.active.on = false;
        held.reader.disconnect();
        extra.delete(stream);
        delete seen[stream];
      };
    },
    async close() {
      running = false;
      for (const waiter of waiters.splice(0)) waiter.resolve();
      for (const reader of readers) reader.disconnect();
      for (const entry of extra.values()) entry.reader.disconnect();
      extra.clear();
      await Promise.allSettled(loops);
      listeners.clear();
    },
  };
}
