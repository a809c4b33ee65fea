import { randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { KeyBuilder } from '@hashwire/protocol';
import type { RedisClient } from './redis.js';
import { runScript } from './scripts.js';

export interface ExtranonceSlotOptions {
  redis: RedisClient;
  keys: KeyBuilder;
  /** The stratum instance id that owns the slot. */
  owner: string;
  /**
   * Number of slots in the cluster (slot numbers 0 … slots-1).
   * @defaultValue 65536
   */
  slots?: number;
  /**
   * Lease lifetime without a renew; renewed every ttlMs/3. Tied to the owner's liveness.
   * @defaultValue 30000
   */
  ttlMs?: number;
}

/**
 * A cluster-unique extranonce1 prefix leased by one stratum instance. SET NX PX on
 * `en1slot:{n}` for random candidates; renewed while the owner lives; if a renew finds the
 * slot gone or owned by another (the owner stalled past its TTL), `lost` fires and the
 * owner must stop handing out extranonce1 values from it.
 */
export class ExtranonceSlotLease extends EventEmitter<{ lost: [slot: number]; error: [Error] }> {
  private timer: NodeJS.Timeout | null = null;
  private held = true;

  constructor(
    private readonly options: Required<Pick<ExtranonceSlotOptions, 'ttlMs'>> & ExtranonceSlotOptions,
    readonly slot: number,
  ) {
    super();
    this.timer = setInterval(() => void this.renew(), Math.max(10, Math.floor(options.ttlMs / 3)));
    this.timer.unref();
  }

  get isHeld(): boolean {
    return this.held;
  }

  private async renew(): Promise<void> {
    const { redis, keys, owner, ttlMs } = this.options;
    try {
      const renewed = await runScript(
        redis,
        'extranonce-slot-renew',
        [keys.extranonceSlot(this.slot)],
        [owner, ttlMs],
      );
      if (renewed !== 1) {
        // Gone after a Redis restart without persistence: take it back if still free.
        const retaken = await redis.set(keys.extranonceSlot(this.slot), owner, 'PX', ttlMs, 'NX');
        if (retaken !== 'OK') this.lose();
      }
    } catch (error) {
      if (this.listenerCount('error') > 0) this.emit('error', error as Error);
    }
  }

  private lose(): void {
    if (!this.held) return;
    this.held = false;
    if (this.timer) clearInterval(this.timer);
    this.emit('lost', this.slot);
  }

  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (!this.held) return;
    this.held = false;
    const { redis, keys, owner } = this.options;
    await runScript(redis, 'extranonce-slot-release', [keys.extranonceSlot(this.slot)], [owner]);
  }
}

export async function leaseExtranonceSlot(options: ExtranonceSlotOptions): Promise<ExtranonceSlotLease> {
  const slots = options.slots ?? 65_536;
  const ttlMs = options.ttlMs ?? 30_000;
  if (!Number.isInteger(slots) || slots < 1 || slots > 2 ** 32) {
    throw new RangeError(`slots must be an integer from 1 to 2^32, got ${slots}`);
  }
  const start = randomInt(slots);
  // Random probing first (cheap when the space is sparse), then a full sweep so a nearly
  // full space still finds its last free slot.
  const candidates = Array.from({ length: Math.min(slots, 64) }, () => randomInt(slots));
  const sweep = function* () {
    yield* candidates;
    for (let i = 0; i < slots; i++) yield (start + i) % slots;
  };
  for (const slot of sweep()) {
    const ok = await options.redis.set(options.keys.extranonceSlot(slot), options.owner, 'PX', ttlMs, 'NX');
    if (ok === 'OK') return new ExtranonceSlotLease({ ...options, ttlMs }, slot);
  }
  throw new Error(`no free extranonce slot among ${slots}`);
}
