import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getChainParams } from '@hashwire/chain';
import type { KeyBuilder } from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';
import { type DaemonLossOptions, JobFeed, type StratumServer, createStratumServer } from '@hashwire/stratum';

// A stratum server inside the test process, fed by the whole jobmanager group (run as
// processes) through its own JobFeed, as the pool-jobs and daemon-loss tests run it.

const CHAIN = 'litecoin-regtest';
const params = getChainParams('litecoin', 'regtest');

export interface FedStratum {
  server: StratumServer;
  feed: JobFeed;
}

/**
 * Starts stratum server `id` (any free port, vardiff off, its own spool directory) behind a
 * started JobFeed. Closing both and removing the spool goes on `cleanups` (run last to first).
 */
export async function startFedStratum(options: {
  redis: RedisClient;
  keys: KeyBuilder;
  id: string;
  cleanups: (() => Promise<unknown> | unknown)[];
  /** The feed's; unset, its default. */
  daemonGraceMs?: number;
  /** The server's; unset, its default. */
  daemonLoss?: DaemonLossOptions;
}): Promise<FedStratum> {
  const { redis, keys, id } = options;
  const feed = new JobFeed({
    redis,
    keys,
    chain: CHAIN,
    stratumId: id,
    heartbeatIntervalMs: 250,
    reconcileMs: 250,
    ...(options.daemonGraceMs !== undefined && { daemonGraceMs: options.daemonGraceMs }),
  });
  await feed.start();
  const spoolDir = mkdtempSync(join(tmpdir(), 'hw-spool-'));
  const server = await createStratumServer({
    id,
    chain: CHAIN,
    params,
    host: '127.0.0.1',
    port: 0,
    redis,
    keys,
    jobs: feed,
    blockSink: feed,
    spoolDir,
    vardiff: { enabled: false, initialDifficulty: 0.002 },
    ...(options.daemonLoss && { daemonLoss: options.daemonLoss }),
  });
  await server.start();
  options.cleanups.push(async () => {
    // Candidates still waiting for a jobmanager are given up first: the server's close waits on them.
    feed.releaseBlocks('test over');
    await server.close();
    await feed.close();
    rmSync(spoolDir, { recursive: true, force: true });
  });
  return { server, feed };
}
