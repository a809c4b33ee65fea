import { requireRedisVersion } from '@hashwire/registry';
import { ExtranonceAllocator } from './extranonce.js';
import { type ShareSink, type StratumServerOptions, resolveStratumOptions } from './options.js';
import { StratumServer } from './server.js';
import { ShareSpool } from './spool.js';

/**
 * Creates a stratum server: options checked, the share spool opened (replaying what a
 * previous process left), an extranonce slot leased. Call `start()` to bind the port and
 * take jobs; `drain()` to hand every miner to another server; `close()` to stop at once.
 *
 * ```ts
 * const server = await createStratumServer({
 *   id: 'stratum-1', chain: 'ltc-main', params: LITECOIN_MAIN, redis, keys,
 *   jobs: jobFeed, blockSink: jobFeed, spoolDir: '/var/lib/hashwire/spool',
 *   trustedProxies: ['10.0.0.0/8'],
 * });
 * server.on('batch', (batch) => forwardToReporter(batch));
 * await server.start();
 * ```
 */
export async function createStratumServer(options: StratumServerOptions): Promise<StratumServer> {
  const resolved = resolveStratumOptions(options);
  if (!options.shareSink && !options.spoolDir) {
    throw new TypeError('give spoolDir (for the default share spool) or a shareSink');
  }
  // The extranonce1 claim scripts use SET … KEEPTTL (6.0).
  await requireRedisVersion(options.redis, `stratum ${resolved.id}`);
  let spool: ShareSpool | null = null;
  let shareSink: ShareSink;
  if (options.shareSink) {
    shareSink = options.shareSink;
  } else {
    spool = await ShareSpool.open({ dir: options.spoolDir!, ...options.spool });
    const opened = spool;
    shareSink = { append: (share) => opened.append(share), close: () => opened.close() };
  }
  let allocator: ExtranonceAllocator;
  try {
    allocator = await ExtranonceAllocator.create({
      redis: options.redis,
      keys: options.keys,
      chain: resolved.chain,
      owner: resolved.id,
      extranonce1Size: resolved.extranonce1Size,
      claimTtlMs: resolved.sessionTtlMs,
    });
  } catch (error) {
    spool?.close();
    throw error;
  }
  return new StratumServer({
    options: resolved,
    redis: options.redis,
    keys: options.keys,
    jobs: options.jobs,
    shareSink,
    spool,
    blockSink: options.blockSink,
    allocator,
  });
}
