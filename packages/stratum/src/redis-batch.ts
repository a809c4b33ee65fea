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
 * Commands issued while one turn of the event loop handles its I/O (many miners' handshakes
 * at once) leave for Redis as one pipeline, in one write, instead of one write each: on a
 * busy server the syscalls cost more than the commands. A group is sent at `setImmediate`,
 * right after the turn. On a Cluster every group goes alone (its commands name one key, so
 * one slot); a pipeline there cannot span slots.
 */
export class RedisBatch {
  private queue: Queued[] = [];
  private scheduled = false;

  constructor(private readonly redis: RedisClient) {}

  /** Sends the commands `add` puts on the pipeline; resolves with their replies. */
  send(add: (pipeline: Pipeline) => void): Promise<BatchReplies> {
    if (this.redis.isCluster) {
      const pipeline = this.redis.pipeline();
      add(pipeline);
      return pipeline.exec().then((replies) => replies ?? []);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ add, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const queued = this.queue;
    this.queue = [];
    this.scheduled = false;
    const pipeline = this.redis.pipeline();
    const ends: number[] = [];
    for (const q of queued) {
      q.add(pipeline);
      ends.push(pipeline.length);
    }
    pipeline.exec().then(
      (replies) => {
        let start = 0;
        queued.forEach((q, i) => {
          const end = ends[i]!;
          q.resolve((replies ?? []).slice(start, end) as BatchReplies);
          start = end;
        });
      },
      (error: Error) => {
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
