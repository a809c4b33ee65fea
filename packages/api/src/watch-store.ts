import { createHash } from 'node:crypto';
import { EventType, type KeyBuilder, POOL_STREAM, type WatchRemovedData } from '@hashwire/protocol';
import { type RedisClient, appendEvent, defineLuaScripts } from '@hashwire/registry';
import { parseEndpoint } from './watch-endpoint.js';

/**
 * Watches in Redis. Each watch is one hash `watch:{<id>}` (definition, a delivery cursor per
 * stream, lease and fencing epoch, retry state), changed only by the scripts in `lua/` (one key,
 * or the hash and its `ws` outbox, which share the id's hash tag), so all of it works on Redis
 * Cluster. The set `watches` lists the ids; it is written after the hash on create and before
 * nothing on remove, so it may name a watch that is gone (skipped and cleaned when read).
 */

const runScript = defineLuaScripts(
  new URL('../lua/', import.meta.url),
  {
    'watch-create': 1,
    'watch-acquire': 1,
    'watch-renew': 1,
    'watch-release': 1,
    'watch-advance': -1,
    'watch-fail': 1,
    'watch-remove': 1,
    'watch-purge': 2,
  },
  'hwapi',
);

export type WatchRemovedReason = WatchRemovedData['reason'];

export interface WatchRecord {
  id: string;
  pattern: string;
  /** Canonical endpoint, password included: never answered as is. */
  endpoint: string;
  createdAt: number;
  /** Epoch ms its lifetime ends; null without one. */
  expiresAt: number | null;
  /** The api process holding its delivery lease ('' when none) and the lease's end (Redis clock). */
  owner: string;
  leaseUntil: number;
  epoch: number;
  /** Last delivered seq per stream. */
  cursors: Record<string, string>;
  /** Start of the current run of failures (epoch ms), 0 when delivering fine. */
  failSince: number;
  attempts: number;
  lastError: string | null;
  /** Set while it is being removed, since `removedAt`. */
  removed: WatchRemovedReason | null;
  removedAt: number;
}

/** The watch id: derived from the canonical pattern and endpoint, so a duplicate lands on it. */
export function watchId(pattern: string, canonicalEndpoint: string): string {
  return createHash('sha256').update(`${pattern}\n${canonicalEndpoint}`).digest('hex').slice(0, 32);
}

export function recordFrom(id: string, flat: readonly string[]): WatchRecord {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i] as string] = flat[i + 1] as string;
  const cursors: Record<string, string> = {};
  for (const [name, value] of Object.entries(f)) if (name.startsWith('c:')) cursors[name.slice(2)] = value;
  const expiresAt = Number(f.expiresAt ?? 0);
  return {
    id,
    pattern: f.pattern ?? '',
    endpoint: f.endpoint ?? '',
    createdAt: Number(f.createdAt ?? 0),
    expiresAt: expiresAt > 0 ? expiresAt : null,
    owner: f.owner ?? '',
    leaseUntil: Number(f.leaseUntil ?? 0),
    epoch: Number(f.epoch ?? 0),
    cursors,
    failSince: Number(f.failSince ?? 0),
    attempts: Number(f.attempts ?? 0),
    lastError: f.lastError ?? null,
    removed: (f.removed as WatchRemovedReason | undefined) ?? null,
    removedAt: Number(f.removedAt ?? 0),
  };
}

export interface WatchStoreOptions {
  redis: RedisClient;
  keys: KeyBuilder;
  /** Every stream a watch reads: the chains and `pool`. */
  streams: readonly string[];
}

export type WatchStore = ReturnType<typeof createWatchStore>;

type AdvancePayload = { maxLen: number; type: string; ts: number; data: string; key: string };

export function createWatchStore({ redis, keys, streams }: WatchStoreOptions) {
  const streamKey = (stream: string) => (stream === POOL_STREAM ? keys.poolEvents() : keys.events(stream));

  async function heads(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    await Promise.all(
      streams.map(async (stream) => {
        const newest = (await redis.xrevrange(streamKey(stream), '+', '-', 'COUNT', 1)) as [
          string,
          string[],
        ][];
        out[stream] = newest[0]?.[0] ?? '0-0';
      }),
    );
    return out;
  }

  async function get(id: string): Promise<WatchRecord | null> {
    const flat = (await redis.call('HGETALL', keys.watch(id))) as string[];
    return flat.length === 0 ? null : recordFrom(id, flat);
  }

  /** The final steps of a removal this caller marked: the event, then the keys. */
  async function finishRemoval(id: string, pattern: string, endpoint: string, reason: WatchRemovedReason) {
    let shown = endpoint;
    try {
      shown = parseEndpoint(endpoint).shown;
    } catch {
      shown = 'unparsable endpoint';
    }
    const data: WatchRemovedData = { id, pattern, endpoint: shown, reason };
    await appendEvent(redis, keys, EventType.WatchRemoved, data);
    if ((await runScript(redis, 'watch-purge', [keys.watch(id), keys.watchOutbox(id)], [])) !== 1) return;
    await redis.srem(keys.watchIndex(), id);
    // Registered again between the purge and here: its create's SADD may have come first.
    if ((await redis.exists(keys.watch(id))) === 1) await redis.sadd(keys.watchIndex(), id);
  }

  return {
    streamKey,
    heads,
    get,

    /** Creates the watch unless it exists; either way returns it. */
    async create(
      pattern: string,
      endpoint: string,
      lifetimeMs: number,
    ): Promise<{ created: boolean; record: WatchRecord }> {
      const id = watchId(pattern, endpoint);
      const start = await heads();
      const [created] = (await runScript(
        redis,
        'watch-create',
        [keys.watch(id)],
        [pattern, endpoint, lifetimeMs, ...Object.entries(start).flat()],
      )) as [number, number];
      // Always (also for an existing watch): a create that died between the hash and the index
      // is repaired by registering it again.
      await redis.sadd(keys.watchIndex(), id);
      const record = await get(id);
      if (!record) throw new Error(`watch ${id} vanished right after it was created`);
      return { created: created === 1, record };
    },

    /** Ids in the index (some may be gone: `get` answers null for those). */
    async ids(): Promise<string[]> {
      return (await redis.smembers(keys.watchIndex())).sort();
    },

    /** Says this process delivers watches (every lease round), and which others do. */
    async heartbeat(holder: string, now: number, freshMs: number): Promise<string[]> {
      await redis.zadd(keys.watchWorkers(), now, holder);
      await redis.zremrangebyscore(keys.watchWorkers(), '-inf', now - 10 * freshMs);
      return (await redis.zrangebyscore(keys.watchWorkers(), now - freshMs, '+inf')).sort();
    },

    async leave(holder: string): Promise<void> {
      await redis.zrem(keys.watchWorkers(), holder);
    },

    /** Drops an id from the index whose hash is gone. */
    async forget(id: string): Promise<void> {
      await redis.srem(keys.watchIndex(), id);
    },

    async acquire(
      id: string,
      holder: string,
      ttlMs: number,
    ): Promise<{ record: WatchRecord; now: number } | 'gone' | 'held'> {
      const reply = (await runScript(redis, 'watch-acquire', [keys.watch(id)], [holder, ttlMs])) as (
        | number
        | string
      )[];
      if (reply[0] === 0) return 'gone';
      if (reply[0] === -1) return 'held';
      return { record: recordFrom(id, reply.slice(3) as string[]), now: Number(reply[2]) };
    },

    async renew(
      id: string,
      holder: string,
      epoch: number,
      ttlMs: number,
    ): Promise<{ now: number; expiresAt: number } | null> {
      const reply = (await runScript(
        redis,
        'watch-renew',
        [keys.watch(id)],
        [holder, epoch, ttlMs],
      )) as number[];
      return reply[0] === 1 ? { now: Number(reply[1]), expiresAt: Number(reply[2]) } : null;
    },

    async release(id: string, holder: string, epoch: number): Promise<boolean> {
      return (await runScript(redis, 'watch-release', [keys.watch(id)], [holder, epoch])) === 1;
    },

    /** 'moved', 'already' (the cursor was past it) or 'lost' (lease lost, watch removed). */
    async advance(
      id: string,
      holder: string,
      epoch: number,
      stream: string,
      seq: string,
      outbox?: AdvancePayload,
    ): Promise<'moved' | 'already' | 'lost'> {
      const keyList = outbox ? [keys.watch(id), keys.watchOutbox(id)] : [keys.watch(id)];
      const args: (string | number)[] = [holder, epoch, stream, seq];
      if (outbox) args.push(outbox.maxLen, outbox.type, outbox.ts, outbox.data, outbox.key, seq);
      const reply = await runScript(redis, 'watch-advance', keyList, args);
      return reply === 1 ? 'moved' : reply === 2 ? 'already' : 'lost';
    },

    async fail(
      id: string,
      holder: string,
      epoch: number,
      message: string,
    ): Promise<{ failSince: number; attempts: number; now: number } | null> {
      const reply = (await runScript(
        redis,
        'watch-fail',
        [keys.watch(id)],
        [holder, epoch, message],
      )) as number[];
      if (reply[0] !== 1) return null;
      return { failSince: Number(reply[1]), attempts: Number(reply[2]), now: Number(reply[3]) };
    },

    /**
     * Removes a watch and emits `watch.removed` once. With `fence`, only that lease holder may;
     * with `onlyIfExpired`, only when its lifetime has ended. Returns the removed record's
     * pattern and endpoint, or null when there was nothing (allowed) to remove.
     */
    async remove(
      id: string,
      reason: WatchRemovedReason,
      opts: { fence?: { holder: string; epoch: number }; onlyIfExpired?: boolean } = {},
    ): Promise<{ pattern: string; endpoint: string } | null> {
      const reply = (await runScript(
        redis,
        'watch-remove',
        [keys.watch(id)],
        [reason, opts.fence?.holder ?? '', opts.fence?.epoch ?? 0, opts.onlyIfExpired ? '1' : '0'],
      )) as (number | string)[];
      if (reply[0] === 0) return null;
      const pattern = String(reply[1]);
      const endpoint = String(reply[2]);
      // 2: another caller marked it and is finishing (or died: `finishStale` then does it).
      if (reply[0] === 1) await finishRemoval(id, pattern, endpoint, reason);
      return { pattern, endpoint };
    },

    /**
     * Finishes a removal whose marker died before emitting and deleting (marked longer ago than
     * `staleMs`). The event may then come twice, never not at all.
     */
    async finishStale(record: WatchRecord, now: number, staleMs: number): Promise<boolean> {
      if (!record.removed || now - record.removedAt < staleMs) return false;
      await finishRemoval(record.id, record.pattern, record.endpoint, record.removed);
      return true;
    },
  };
}
