import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { KeyBuilder } from '@hashwire/protocol';
import {
  type ExtranonceSlotLease,
  type RedisClient,
  duplicateRedis,
  leaseExtranonceSlot,
} from '@hashwire/registry';
import { RedisBatch, unwrapReplies } from './redis-batch.js';
import { runScript } from './scripts.js';

/**
 * Hands out extranonce1 values that are unique across the cluster for every live or
 * resumable session. A value is `slot prefix ‖ counter`: the slot is leased from the
 * registry, so two live processes never count in the same space. That alone is not
 * enough: a session outlives its process (it can be resumed for `claimTtlMs` after a
 * disconnect), and a dead process's slot may be leased again by another one. So every
 * value handed out is also claimed in Redis (`en1:<hex>`, SET NX with the session TTL,
 * valued with the session id); a claimed value is skipped.
 *
 * One live owner: while a connection holds the value, the claim also names the process
 * holding it (`sessionId|holder`); when the connection is gone it is detached
 * (`sessionId`), resumable anywhere. A resume on another process asks the holder, over its
 * takeover channel, to close that connection and detach; only then is the value claimed
 * again. So an extranonce1 is never live on two connections at once, in the whole cluster.
 */
export interface ExtranonceAllocatorOptions {
  redis: RedisClient;
  keys: KeyBuilder;
  /** The chain served: claims are `en1:{chain}:<hex>`, in the chain's hash slot. */
  chain: string;
  /** Owner recorded on the slot lease (the stratum instance id). */
  owner: string;
  /**
   * extranonce1 length in bytes (slot prefix + counter).
   * @defaultValue 4
   */
  extranonce1Size?: number;
  /**
   * Slot prefix length in bytes; the cluster has 256^slotBytes slots.
   * @defaultValue 2
   */
  slotBytes?: number;
  /** Lifetime of a claim without a refresh: the session TTL. */
  claimTtlMs: number;
  /**
   * Slot lease TTL (renewed every third of it while this process lives).
   * @defaultValue 30000
   */
  slotTtlMs?: number;
  /**
   * How long a resume waits for another process to hand over the session it holds live;
   * after that (the holder died or does not answer) the miner gets a new extranonce1.
   * @defaultValue 3000
   */
  takeoverTimeoutMs?: number;
}

/** What claiming a resumed session's extranonce1 found. */
export type ReclaimResult =
  /** Held by this process now. */
  | 'held'
  /** A live connection on another process holds it: `takeOver` first. */
  | 'live-elsewhere'
  /** Another session holds the value: the session cannot be resumed. */
  | 'taken';

/**
 * Closes the live connection of `sessionId` on `extranonce1` here, if there is one, before
 * the claim is detached and the asker told: the old connection is gone before the new one
 * gets work.
 */
export type TakeoverHandler = (extranonce1: string, sessionId: string) => Promise<void>;

interface TakeoverMessage {
  op: 'take' | 'released';
  extranonce1: string;
  sessionId: string;
  /** The asker's holder token (on `take`). */
  from?: string;
}

/** At most this many taken values in a row before another slot is leased as well. */
const MAX_PROBES_PER_SLOT = 256;

export class ExtranonceAllocator extends EventEmitter<{ error: [Error]; slot: [slot: number] }> {
  readonly extranonce1Size: number;
  /** This process in claims: its id and a token of this run (a restarted process is another holder). */
  readonly holder: string;
  private readonly slotBytes: number;
  private readonly counterSpace: number;
  private lease: ExtranonceSlotLease | null = null;
  private counter = 0;
  private readonly retired: ExtranonceSlotLease[] = [];
  /** Claims of many subscribes handled in one turn go to Redis in one write. */
  private readonly batch: RedisBatch;
  private subscriber: RedisClient | null = null;
  private handler: TakeoverHandler = async () => {};
  /** Resumes waiting for a holder to hand over, by `extranonce1|sessionId`. */
  private readonly waiting = new Map<string, (released: boolean) => void>();
  /** Takeover requests being served, awaited on close. */
  private readonly serving = new Set<Promise<void>>();

  private constructor(private readonly options: ExtranonceAllocatorOptions) {
    super();
    this.batch = RedisBatch.of(options.redis, options.chain);
    this.holder = `${options.owner}.${randomBytes(4).toString('hex')}`;
    this.extranonce1Size = options.extranonce1Size ?? 4;
    this.slotBytes = options.slotBytes ?? 2;
    if (!Number.isInteger(this.slotBytes) || this.slotBytes < 1 || this.slotBytes > 3) {
      throw new RangeError(`slotBytes must be 1, 2 or 3, got ${this.slotBytes}`);
    }
    if (
      !Number.isInteger(this.extranonce1Size) ||
      this.extranonce1Size <= this.slotBytes ||
      this.extranonce1Size > 8
    ) {
      throw new RangeError(
        `extranonce1Size must be an integer from ${this.slotBytes + 1} to 8 (more than slotBytes), got ${this.extranonce1Size}`,
      );
    }
    this.counterSpace = 2 ** (8 * Math.min(6, this.extranonce1Size - this.slotBytes));
  }

  static async create(options: ExtranonceAllocatorOptions): Promise<ExtranonceAllocator> {
    const allocator = new ExtranonceAllocator(options);
    await allocator.listen();
    try {
      await allocator.leaseSlot();
    } catch (error) {
      allocator.subscriber?.disconnect();
      throw error;
    }
    return allocator;
  }

  /** Subscribes to this process's takeover channel. */
  private async listen(): Promise<void> {
    const subscriber = duplicateRedis(this.options.redis);
    this.subscriber = subscriber;
    subscriber.on('message', (_channel: string, text: string) => {
      let message: TakeoverMessage;
      try {
        message = JSON.parse(text) as TakeoverMessage;
      } catch {
        return;
      }
      if (typeof message.extranonce1 !== 'string' || typeof message.sessionId !== 'string') return;
      if (message.op === 'released') {
        this.waiting.get(`${message.extranonce1}|${message.sessionId}`)?.(true);
      } else if (message.op === 'take' && typeof message.from === 'string') {
        const served = this.handOver(message.extranonce1, message.sessionId, message.from);
        this.serving.add(served);
        void served.finally(() => this.serving.delete(served));
      }
    });
    try {
      await subscriber.subscribe(this.options.keys.takeoverChannel(this.holder));
    } catch (error) {
      subscriber.disconnect();
      throw error;
    }
  }

  /** Who closes this process's live connections when another process takes their session over. */
  serveTakeovers(handler: TakeoverHandler): void {
    this.handler = handler;
  }

  /** Another process asked for a session held here: close its connection, detach, answer. */
  private async handOver(extranonce1: string, sessionId: string, from: string): Promise<void> {
    try {
      await this.handler(extranonce1, sessionId);
      await this.detach(extranonce1, sessionId);
      const answer: TakeoverMessage = { op: 'released', extranonce1, sessionId };
      await this.options.redis.publish(this.options.keys.takeoverChannel(from), JSON.stringify(answer));
    } catch (error) {
      // The asker times out and gives its miner a new extranonce1.
      this.emit('error', error as Error);
    }
  }

  /** The slot this process counts in now. */
  get slot(): number | null {
    return this.lease?.isHeld ? this.lease.slot : null;
  }

  private async leaseSlot(): Promise<void> {
    const { redis, keys, owner } = this.options;
    const lease = await leaseExtranonceSlot({
      redis,
      keys,
      owner,
      slots: 2 ** (8 * this.slotBytes),
      ttlMs: this.options.slotTtlMs ?? 30_000,
    });
    lease.on('error', (error) => this.emit('error', error));
    lease.on('lost', () => {
      // Another process has this slot now; claims keep values unique, but stop counting here.
      if (this.lease === lease) this.lease = null;
    });
    if (this.lease) this.retired.push(this.lease);
    this.lease = lease;
    this.counter = Math.floor(Math.random() * this.counterSpace);
    this.emit('slot', lease.slot);
  }

  /** The claim key of an extranonce1 value (hex). */
  claimKey(hex: string): string {
    return this.options.keys.extranonce1(this.options.chain, hex);
  }

  private candidate(): string {
    const lease = this.lease!;
    const value = Buffer.alloc(this.extranonce1Size);
    value.writeUIntBE(lease.slot, 0, this.slotBytes);
    value.writeUIntBE(this.counter, this.slotBytes, this.extranonce1Size - this.slotBytes);
    this.counter = (this.counter + 1) % this.counterSpace;
    return value.toString('hex');
  }

  /** A fresh extranonce1 (hex) claimed for `sessionId`. */
  async allocate(sessionId: string): Promise<string> {
    const { keys, claimTtlMs } = this.options;
    for (let round = 0; round < 4; round++) {
      if (!this.lease?.isHeld) await this.leaseSlot();
      const probes = Math.min(this.counterSpace, MAX_PROBES_PER_SLOT);
      for (let probe = 0; probe < probes; probe++) {
        const hex = this.candidate();
        const [ok] = unwrapReplies(
          await this.batch.send((p) =>
            p.set(this.claimKey(hex), `${sessionId}|${this.holder}`, 'PX', claimTtlMs, 'NX'),
          ),
        );
        if (ok === 'OK') return hex;
      }
      // This slot's space is crowded with resumable sessions: count in another one as well.
      await this.leaseSlot();
    }
    throw new Error('no free extranonce1 value found');
  }

  /**
   * Claims `hex` again for resumed session `sessionId`, on a live connection of this process.
   * `live-elsewhere`: a connection on another process holds it; `takeOver` first.
   */
  async reclaim(hex: string, sessionId: string): Promise<ReclaimResult> {
    const { redis, keys, claimTtlMs } = this.options;
    const [code] = (await runScript(
      redis,
      'extranonce-claim',
      [this.claimKey(hex)],
      [sessionId, this.holder, claimTtlMs],
    )) as [number, string];
    return code === 1 ? 'held' : code === 2 ? 'live-elsewhere' : 'taken';
  }

  /**
   * Asks the process holding `hex` live for `sessionId` to close that connection and detach
   * the claim. True once it has (then `reclaim` again); false when it did not answer within
   * `takeoverTimeoutMs` or nobody listens on its channel (the process is gone).
   */
  async takeOver(hex: string, sessionId: string): Promise<boolean> {
    const { redis, keys } = this.options;
    const value = await redis.get(this.claimKey(hex));
    const bar = value?.indexOf('|') ?? -1;
    if (value === null || value === undefined || bar < 0 || value.slice(0, bar) !== sessionId) {
      // Detached or gone meanwhile: free to reclaim (another session's: `reclaim` says so).
      return true;
    }
    const holder = value.slice(bar + 1);
    if (holder === this.holder) return true;
    const id = `${hex}|${sessionId}`;
    if (this.waiting.has(id)) return false; // one takeover of a session at a time
    let timer: NodeJS.Timeout | undefined;
    const released = new Promise<boolean>((resolve) => {
      this.waiting.set(id, resolve);
      timer = setTimeout(() => resolve(false), this.options.takeoverTimeoutMs ?? 3000);
    });
    try {
      const ask: TakeoverMessage = { op: 'take', extranonce1: hex, sessionId, from: this.holder };
      const listeners = await redis.publish(keys.takeoverChannel(holder), JSON.stringify(ask));
      // On one Redis (or Sentinel) no listener means the holder is gone. A Cluster counts only
      // the listeners on the node it asked, so there the answer is awaited in any case.
      if (listeners === 0 && !('isCluster' in redis && redis.isCluster)) return false;
      return await released;
    } finally {
      clearTimeout(timer);
      this.waiting.delete(id);
    }
  }

  /** The live connection holding `hex` is gone; the session stays resumable anywhere. */
  async detach(hex: string, sessionId: string): Promise<void> {
    const { redis, keys } = this.options;
    await runScript(redis, 'extranonce-detach', [this.claimKey(hex)], [sessionId, this.holder]);
  }

  /** Frees a value at once (a session that will never be resumed). */
  async release(hex: string, sessionId: string): Promise<void> {
    const { redis, keys } = this.options;
    await runScript(redis, 'extranonce-release', [this.claimKey(hex)], [sessionId, this.holder]);
  }

  /** Gives the slot lease(s) back; claims stay until their TTL so sessions can still be resumed elsewhere. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.serving]);
    for (const resolve of this.waiting.values()) resolve(false);
    this.subscriber?.disconnect();
    this.subscriber = null;
    const leases = [...this.retired, ...(this.lease ? [this.lease] : [])];
    this.lease = null;
    this.retired.length = 0;
    await Promise.all(leases.map((l) => l.release().catch(() => {})));
  }
}
