import type { RedisClient } from '@hashwire/registry';

type Pipeline = ReturnType<RedisClient['pipeline']>;

/** Each command's `[error, result]`, in the order they were added. */
export type BatchReplies = [error: Error | null, result: unknown][];

interface Queued {
  add: (pipeline: Pipeline) => void;
  resolve: (replies: BatchReplies) => void;
  reject: (error: Error) => void;
}

/**
 * Commands issued while the server is busy (many miners' handshakes at once) leave for Redis
 * as one pipeline, in one write, instead of one write each: on a busy server the syscalls
 * cost more than the commands. A group is sent at `setImmediate`, right after the turn that
 * queued it; while a group is still waiting for its replies the next one keeps filling, and
 * leaves when those replies arrive. So an idle server sends at once, and a loaded one sends
 * one write per Redis round trip, however many sessions that covers. Every user of one
 * client shares one batch per slot group (`RedisBatch.of(redis, chain)`): every key sent
 * through it carries the chain's hash tag (`{chain}`), so on a Redis Cluster too the whole
 * pipeline goes to the one node serving that slot.
 */
export class RedisBatch {
  private static readonly shared = new WeakMap<RedisClient, Map<string, RedisBatch>>();

  /**
   * The batch every user of `redis` shares for the keys of `chain` (all in its `{chain}` hash
   * slot), so their commands leave in the same writes.
   */
  static of(redis: RedisClient, chain: string): RedisBatch {
    let byChain = RedisBatch.shared.get(redis);
    if (!byChain) {
      byChain = new Map();
      RedisBatch.shared.set(redis, byChain);
    }
    let batch = byChain.get(chain);
    if (!batch) {
      batch = new RedisBatch(redis);
      byChain.set(chain, batch);
    }
    return batch;
  }

  private queue: Queued[] = [];
  private scheduled = false;
  private inFlight = false;

  private constructor(private readonly redis: RedisClient) {}

  /** Sends the commands `add` puts on the pipeline; resolves with their replies. */
  send(add: (pipeline: Pipeline) => void): Promise<BatchReplies> {
    return new Promise((resolve, reject) => {
      this.queue.push({ add, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    const queued = this.queue;
    this.queue = [];
    this.scheduled = false;
    this.inFlight = true;
    const pipeline = this.redis.pipeline();
    const ends: number[] = [];
    for (const q of queued) {
      q.add(pipeline);
      ends.push(pipeline.length);
    }
    const done = () => {
      this.inFlight = false;
      this.schedule();
    };
    pipeline.exec().then(
      (replies) => {
        done();
        let start = 0;
        queued.forEach((q, i) => {
          const end = ends[i]!;
          q.resolve((replies ?? []).slice(start, end) as BatchReplies);
          start = end;
        });
      },
      (error: Error) => {
        done();
        for (const q of queued) q.reject(error);
      },
    );
  }
}

/** The first command error of a group, thrown; else the replies' results. */
export function unwrapReplies(replies: BatchReplies): unknown[] {
  for (const [error] of replies) if (error) throw error;
  return replies.map(([, result]) => result);
}
