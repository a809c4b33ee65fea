import type { Logger } from '@hashwire/core';
import type { RedisClient } from '@hashwire/registry';

/**
 * Redis replicates asynchronously: a credit the master has written can still vanish if the
 * master dies before a replica has it. So a reporter acknowledges a batch only once enough
 * replicas have it (`WAIT`, on the connection and node that wrote it); when they do not within
 * the timeout, the batch is answered `Unavailable`, the stratum server sends it again and the
 * batch id answers it (after a fresh WAIT) without crediting twice.
 */
export interface ReplicationOptions {
  /**
   * Replicas that must have a write before it is acknowledged, or all the replicas the node
   * serving the chain has when it has fewer (none: acknowledged when written). 0: never wait.
   * @defaultValue 1
   */
  replicas?: number;
  /** How long one WAIT may block. @defaultValue 1000 */
  timeoutMs?: number;
  /** How often the chain's node is asked (ROLE) how many replicas it has. @defaultValue 5000 */
  checkMs?: number;
}

export interface ResolvedReplication {
  replicas: number;
  timeoutMs: number;
  checkMs: number;
}

export function resolveReplication(options: ReplicationOptions = {}): ResolvedReplication {
  const replicas = options.replicas ?? 1;
  if (!Number.isSafeInteger(replicas) || replicas < 0) {
    throw new TypeError(`reporter: replication.replicas must be an integer >= 0, got ${String(replicas)}`);
  }
  const positive = (field: string, value: number | undefined, fallback: number): number => {
    const v = value ?? fallback;
    if (!Number.isSafeInteger(v) || v <= 0) {
      throw new TypeError(`reporter: replication.${field} must be a positive integer, got ${v}`);
    }
    return v;
  };
  return {
    replicas,
    timeoutMs: positive('timeoutMs', options.timeoutMs, 1000),
    checkMs: positive('checkMs', options.checkMs, 5000),
  };
}

/** How many replicas to wait for on the node serving one chain's keys: the setting, capped by what ROLE says the node has. */
export class ReplicaCount {
  #known = 0;
  #checkedAt = Number.NEGATIVE_INFINITY;
  #checking: Promise<number> | null = null;

  constructor(
    private readonly redis: RedisClient,
    /** A key of the chain's slot: routes ROLE to that slot's master on a Cluster. */
    private readonly slotKey: string,
    readonly settings: ResolvedReplication,
    private readonly logger: Logger,
  ) {}

  /** Replicas the next write must reach before it is acknowledged (0: acknowledge at once). */
  async wanted(now = Date.now()): Promise<number> {
    const { replicas, checkMs } = this.settings;
    if (replicas === 0) return 0;
    if (now - this.#checkedAt >= checkMs) {
      this.#checking ??= this.#check().finally(() => {
        this.#checking = null;
      });
      await this.#checking;
    }
    return Math.min(replicas, this.#known);
  }

  /** A WAIT fell short: ask the node again before the next write (its replica may be gone). */
  recheck(): void {
    this.#checkedAt = Number.NEGATIVE_INFINITY;
  }

  async #check(): Promise<number> {
    // EXISTS first: a pipeline goes to the node of its first key, so ROLE answers for it.
    const replies = (await this.redis.pipeline().exists(this.slotKey).call('ROLE').exec()) ?? [];
    const [error, role] = replies[1] ?? [new Error('no reply to ROLE')];
    if (error) throw error;
    const reply = role as [string, number, unknown[]?];
    const count = reply[0] === 'master' && Array.isArray(reply[2]) ? reply[2].length : 0;
    if (count !== this.#known) {
      this.logger.info(
        { replicas: count, was: this.#known },
        count > 0
          ? "reporter: the chain's Redis node has replicas: a credit is acknowledged once enough of them have it"
          : "reporter: the chain's Redis node has no replica: credits are acknowledged when written",
      );
    }
    this.#known = count;
    this.#checkedAt = Date.now();
    return count;
  }
}

type Pipeline = ReturnType<RedisClient['pipeline']>;

/** What a script run with a WAIT after it answered. */
export interface WaitedReply {
  reply: unknown;
  /** Replicas that acknowledged the script's writes; null when no WAIT was asked for. */
  acked: number | null;
}

/**
 * The replicas a WAIT confirmed, counting none unless the WAIT ran on the connection that
 * made the write: `CLIENT ID` is asked before the write and after the WAIT. When a connection
 * drops mid-pipeline, ioredis sends the commands still unanswered again on a new connection, and
 * a WAIT there (no write of its own) would confirm at once what it never saw.
 */
function confirmedOnOneConnection(
  replies: [Error | null, unknown][],
  first: number,
  wait: number,
  last: number,
): number {
  const [idError, id] = replies[first] ?? [new Error('no reply to CLIENT ID')];
  const [waitError, acked] = replies[wait] ?? [new Error('no reply to WAIT')];
  const [lastError, lastId] = replies[last] ?? [new Error('no reply to CLIENT ID')];
  if (idError || waitError || lastError || String(id) !== String(lastId)) return 0;
  return Number(acked);
}

/**
 * Runs a script (`make` queues it on a pipeline, after `before`), with `WAIT wanted timeoutMs`
 * after it in the same write when `wanted` > 0: same node, same connection, so the WAIT covers
 * what the script wrote (checked: see confirmedOnOneConnection). Throws the script's error; a
 * failed WAIT counts as no replica.
 */
export async function execWithWait(
  make: (before?: (pipeline: Pipeline) => void) => Pipeline,
  wanted: number,
  timeoutMs: number,
): Promise<WaitedReply> {
  if (wanted === 0) {
    const replies = (await make().exec()) ?? [];
    const [error, reply] = replies[0] ?? [new Error('no reply from the script')];
    if (error) throw error;
    return { reply, acked: null };
  }
  const pipeline = make((p) => p.call('CLIENT', 'ID'));
  pipeline.call('WAIT', wanted, timeoutMs);
  pipeline.call('CLIENT', 'ID');
  const replies = (await pipeline.exec()) ?? [];
  const [error, reply] = replies[1] ?? [new Error('no reply from the script')];
  if (error) throw error;
  return { reply, acked: confirmedOnOneConnection(replies, 0, 2, 3) };
}

/**
 * For a script that wrote nothing (a batch credited before, maybe by another reporter, maybe
 * not yet on any replica): a small write to the chain's node and a WAIT after it, which covers
 * every write that node had before, so that earlier credit too. Returns the replicas that acked.
 */
export async function waitForEarlierWrites(
  redis: RedisClient,
  probeKey: string,
  wanted: number,
  timeoutMs: number,
): Promise<number> {
  const replies =
    (await redis
      .pipeline()
      .call('CLIENT', 'ID')
      .set(probeKey, String(Date.now()), 'PX', 60_000)
      .call('WAIT', wanted, timeoutMs)
      .call('CLIENT', 'ID')
      .exec()) ?? [];
  const [setError] = replies[1] ?? [new Error('no reply to SET')];
  if (setError) throw setError;
  return confirmedOnOneConnection(replies, 0, 2, 3);
}
