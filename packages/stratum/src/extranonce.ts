import { EventEmitter } from 'node:events';
import type { KeyBuilder } from '@hashwire/protocol';
import { type ExtranonceSlotLease, type RedisClient, leaseExtranonceSlot } from '@hashwire/registry';
import { RedisBatch, unwrapReplies } from './redis-batch.js';

/**
 * Hands out extranonce1 values that are unique across the cluster for every live or
 * resumable session. A value is `slot prefix ‖ counter`: the slot is leased from the
 * registry, so two live processes never count in the same space. That alone is not
 * enough: a session outlives its process (it can be resumed for `claimTtlMs` after a
 * disconnect), and a dead process's slot may be leased again by another one. So every
 * value handed out is also claimed in Redis (`en1:<hex>`, SET NX with the session TTL,
 * valued with the session id); a claimed value is skipped.
 */
export interface ExtranonceAllocatorOptions {
  redis: RedisClient;
  keys: KeyBuilder;
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
}

/** SET the claim if it is free or already ours (a resume); returns 1 when held. */
const CLAIM_OWN = `local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0`;

/** DEL the claim only if it is still ours. */
const RELEASE_OWN = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** At most this many taken values in a row before another slot is leased as well. */
const MAX_PROBES_PER_SLOT = 256;

export class ExtranonceAllocator extends EventEmitter<{ error: [Error]; slot: [slot: number] }> {
  readonly extranonce1Size: number;
  private readonly slotBytes: number;
  private readonly counterSpace: number;
  private lease: ExtranonceSlotLease | null = null;
  private counter = 0;
  private readonly retired: ExtranonceSlotLease[] = [];
  /** Claims of many subscribes handled in one turn go to Redis in one write. */
  private readonly batch: RedisBatch;

  private constructor(private readonly options: ExtranonceAllocatorOptions) {
    super();
    this.batch = RedisBatch.of(options.redis);
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
    await allocator.leaseSlot();
    return allocator;
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
          await this.batch.send((p) => p.set(keys.extranonce1(hex), sessionId, 'PX', claimTtlMs, 'NX')),
        );
        if (ok === 'OK') return hex;
      }
      // This slot's space is crowded with resumable sessions: count in another one as well.
      await this.leaseSlot();
    }
    throw new Error('no free extranonce1 value found');
  }

  /** Takes back `hex` for a resumed session; false when another session holds it. */
  async reclaim(hex: string, sessionId: string): Promise<boolean> {
    const { redis, keys, claimTtlMs } = this.options;
    const held = await redis.eval(CLAIM_OWN, 1, keys.extranonce1(hex), sessionId, claimTtlMs);
    return held === 1;
  }

  /** Frees a value at once (a session that will never be resumed). */
  async release(hex: string, sessionId: string): Promise<void> {
    const { redis, keys } = this.options;
    await redis.eval(RELEASE_OWN, 1, keys.extranonce1(hex), sessionId);
  }

  /** Gives the slot lease(s) back; claims stay until their TTL so sessions can still be resumed elsewhere. */
  async close(): Promise<void> {
    const leases = [...this.retired, ...(this.lease ? [this.lease] : [])];
    this.lease = null;
    this.retired.length = 0;
    await Promise.all(leases.map((l) => l.release().catch(() => {})));
  }
}
