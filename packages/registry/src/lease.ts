import { EventEmitter } from 'node:events';
import type { KeyBuilder } from '@hashwire/protocol';
import { type RedisClient, duplicateRedis } from './redis.js';
import { runScript } from './scripts.js';

export interface LeaseOptions {
  redis: RedisClient;
  keys: KeyBuilder;
  /** e.g. `jm:ltc` — one lease per group. */
  group: string;
  /** This process's id, unique in the group. */
  holder: string;
  /**
   * Lease lifetime without a renew.
   * @defaultValue 3000
   */
  ttlMs?: number;
  /**
   * How often the leader renews.
   * @defaultValue ttlMs / 4
   */
  renewEveryMs?: number;
  /**
   * How often a standby tries to take the lease. Shorter than the renew period, so a lease
   * left by a dead leader is taken within about ttlMs of its last renew.
   * @defaultValue ttlMs / 8
   */
  retryEveryMs?: number;
}

export type LeaseEvents = {
  elected: [epoch: number];
  deposed: [epoch: number, reason: 'lost' | 'expired' | 'released' | 'handed-over'];
  error: [Error];
};

/** Outcome of one acquire attempt. */
export type AcquireResult = { held: true; epoch: number } | { held: false; epoch: number; holder: string };

export async function acquireLease(
  redis: RedisClient,
  keys: KeyBuilder,
  group: string,
  holder: string,
  ttlMs: number,
): Promise<AcquireResult> {
  const reply = (await runScript(
    redis,
    'lease-acquire',
    [keys.lease(group), keys.leaseEpoch(group)],
    [holder, ttlMs],
  )) as [number, number, string?];
  return reply[0] === 1
    ? { held: true, epoch: reply[1] }
    : { held: false, epoch: reply[1], holder: reply[2] ?? '' };
}

export async function renewLease(
  redis: RedisClient,
  keys: KeyBuilder,
  group: string,
  holder: string,
  epoch: number,
  ttlMs: number,
): Promise<boolean> {
  return (await runScript(redis, 'lease-renew', [keys.lease(group)], [holder, epoch, ttlMs])) === 1;
}

/**
 * Leadership of one group with a fencing epoch. A standby tries to take the lease every
 * `retryEveryMs`; the leader renews it every `renewEveryMs`. The leader trusts its lease only for ttlMs × 0.8
 * measured from when its last successful renew was *sent*, on the monotonic clock — so a
 * leader frozen (SIGSTOP, a long GC pause) past its lease knows on waking that it is no
 * longer leader, before it can act, even if no renew has run yet.
 */
export class Leadership extends EventEmitter<LeaseEvents> {
  readonly group: string;
  readonly holder: string;
  readonly ttlMs: number;
  private readonly redis: RedisClient;
  private readonly keys: KeyBuilder;
  private readonly renewEveryMs: number;
  private readonly retryEveryMs: number;
  private lastRenewAt = 0;
  private currentEpoch: number | null = null;
  private validUntil = 0;
  private timer: NodeJS.Timeout | null = null;
  private subscriber: RedisClient | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(options: LeaseOptions) {
    super();
    this.redis = options.redis;
    this.keys = options.keys;
    this.group = options.group;
    this.holder = options.holder;
    this.ttlMs = options.ttlMs ?? 3000;
    this.renewEveryMs = options.renewEveryMs ?? Math.max(10, Math.floor(this.ttlMs / 4));
    this.retryEveryMs = options.retryEveryMs ?? Math.max(10, Math.floor(this.ttlMs / 8));
  }

  /** The epoch to stamp on everything this leader publishes; null when not leader. */
  get epoch(): number | null {
    return this.isLeader() ? this.currentEpoch : null;
  }

  /** True only while the lease is known held; check it right before acting. */
  isLeader(): boolean {
    if (this.currentEpoch === null) return false;
    if (performance.now() >= this.validUntil) {
      this.lose('expired');
      return false;
    }
    return true;
  }

  /** Starts campaigning; resolves after the first attempt. */
  async start(): Promise<void> {
    this.subscriber = duplicateRedis(this.redis);
    this.subscriber.on('message', (_channel: string, message: string) => {
      try {
        const note = JSON.parse(message) as { to?: string };
        if (note.to === this.holder) void this.tick();
      } catch {
        // not ours
      }
    });
    await this.subscriber.subscribe(this.keys.leaseChannel());
    await this.tick();
    this.timer = setInterval(() => void this.tick(), Math.min(this.renewEveryMs, this.retryEveryMs));
    this.timer.unref();
  }

  /** One acquire-or-renew round (also run on the timer). */
  tick(): Promise<void> {
    if (this.running) return this.running;
    this.running = this.round().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async round(): Promise<void> {
    if (this.stopped) return;
    const sentAt = performance.now();
    try {
      if (this.currentEpoch !== null && this.isLeader()) {
        if (sentAt - this.lastRenewAt < this.renewEveryMs) return;
        this.lastRenewAt = sentAt;
        const renewed = await renewLease(
          this.redis,
          this.keys,
          this.group,
          this.holder,
          this.currentEpoch,
          this.ttlMs,
        );
        if (renewed) this.validUntil = sentAt + this.ttlMs * 0.8;
        else this.lose('lost');
        return;
      }
      const result = await acquireLease(this.redis, this.keys, this.group, this.holder, this.ttlMs);
      if (result.held && !this.stopped) {
        this.validUntil = sentAt + this.ttlMs * 0.8;
        this.lastRenewAt = sentAt;
        if (this.currentEpoch !== result.epoch) {
          this.currentEpoch = result.epoch;
          this.emit('elected', result.epoch);
        }
      }
    } catch (error) {
      // Redis away: a leader stays leader only until its lease would have run out.
      if (this.listenerCount('error') > 0) this.emit('error', error as Error);
      this.isLeader();
    }
  }

  private lose(reason: LeaseEvents['deposed'][1]): void {
    const epoch = this.currentEpoch;
    if (epoch === null) return;
    this.currentEpoch = null;
    this.validUntil = 0;
    this.emit('deposed', epoch, reason);
  }

  /**
   * Planned step-down: the lease passes to `successor` under a new epoch, without a gap.
   * Returns the successor's epoch. This process stops campaigning.
   */
  async handover(successor: string): Promise<number> {
    const epoch = this.currentEpoch;
    if (epoch === null || !this.isLeader())
      throw new Error(`${this.holder} is not the leader of ${this.group}`);
    await this.stop();
    const next = (await runScript(
      this.redis,
      'lease-handover',
      [this.keys.lease(this.group), this.keys.leaseEpoch(this.group)],
      [this.holder, epoch, successor, this.ttlMs, this.keys.leaseChannel()],
    )) as number;
    this.lose('handed-over');
    if (next === 0) throw new Error(`${this.holder} lost the lease of ${this.group} before handing it over`);
    return next;
  }

  /** Stop campaigning and give the lease up if held. */
  async close(): Promise<void> {
    const epoch = this.currentEpoch;
    await this.stop();
    if (epoch !== null) {
      try {
        await runScript(this.redis, 'lease-release', [this.keys.lease(this.group)], [this.holder, epoch]);
      } finally {
        this.lose('released');
      }
    }
  }

  private async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
    this.subscriber?.disconnect();
    this.subscriber = null;
  }
}

export function leaseLeadership(options: LeaseOptions): Leadership {
  return new Leadership(options);
}
