import { HashblockListener } from '@hashwire/chain';
import type { RedisClient } from '@hashwire/registry';

const BLOCK_HASH = /^[0-9a-f]{64}$/;

export interface BlockSignalsOptions {
  redis: RedisClient;
  /** The Redis channel `-blocknotify` publishes on; null when off. */
  blocknotifyChannel: string | null;
  /** ZMQ `hashblock` endpoints of the daemons. */
  zmqHashblock: readonly string[];
  /** A daemon has a new tip: fetch a template now. */
  onBlock(reason: 'blocknotify' | 'hashblock'): void;
}

export interface BlockSignals {
  /** Block hashes heard on the blocknotify channel, and messages there that were not one. */
  readonly blocknotify: { received: number; ignored: number };
  close(): void;
}

/** What tells a jobmanager of a new block before its next poll: `-blocknotify` and ZMQ `hashblock`. */
export async function listenForBlocks(options: BlockSignalsOptions): Promise<BlockSignals> {
  const counts = { received: 0, ignored: 0 };
  const channel = options.blocknotifyChannel;
  let subscriber: RedisClient | null = null;
  if (channel) {
    // Its own connection: a subscribed one can send nothing else. ioredis subscribes again
    // after a reconnect.
    subscriber = options.redis.duplicate();
    // Redis trouble shows on the main connection (registry, lease); this one only reconnects.
    subscriber.on('error', () => {});
    subscriber.on('message', (from: string, message: string) => {
      if (from !== channel) return;
      if (!BLOCK_HASH.test(message.trim())) {
        counts.ignored++;
        return;
      }
      counts.received++;
      options.onBlock('blocknotify');
    });
    await subscriber.subscribe(channel);
  }
  const hashblock = options.zmqHashblock.map((endpoint) => {
    const listener = new HashblockListener({ endpoint });
    listener.on('block', () => options.onBlock('hashblock'));
    return listener;
  });
  return {
    blocknotify: counts,
    close() {
      for (const listener of hashblock) listener.close();
      subscriber?.disconnect();
    },
  };
}
