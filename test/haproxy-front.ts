import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  HaproxyRuntime,
  type HaproxyServer,
  type ServerStat,
  type StratumFollower,
  followStratumServers,
  haproxyServerFromService,
  renderHaproxy,
} from '@hashwire/confgen';
import type { HaproxyReload } from '@hashwire/core';
import type { KeyBuilder } from '@hashwire/protocol';
import { type RedisClient, listServices } from '@hashwire/registry';
import { type HaproxyInstance, getFreePort, startHaproxy } from '@hashwire/testkit';

// HAProxy in front of the pool's stratum servers as an operator runs it (confgen's rendered
// config, its follower keeping the backend equal to the registry), and a background sampler
// of HAProxy's view of the backend.

export const BACKEND = 'stratum';

/** The stratum servers as HAProxy's `show stat` lists them. */
export function backendServers(front: StratumFront): Promise<ServerStat[]> {
  return front.runtime.serverStats(BACKEND);
}

/** Takes new connections: up (also while a failing check counts down) and not drained. */
export const isHealthy = (s: ServerStat) => s.status.startsWith('UP') && s.weight > 0;

export interface HealthSampler {
  /** Samples taken so far. */
  readonly samples: number;
  /** Samples in which no server was healthy, with what HAProxy showed then (or why it did not answer). */
  readonly zeroHealthy: { at: number; servers: ServerStat[]; error?: string }[];
  /** Fewest healthy servers seen in one sample. */
  readonly minHealthy: number;
  stop(): Promise<void>;
}

/** Reads `show stat` every `intervalMs` until stopped, counting samples with no healthy server. */
export function sampleBackendHealth(front: StratumFront, intervalMs = 50): HealthSampler {
  let stopped = false;
  const state = {
    samples: 0,
    zeroHealthy: [] as HealthSampler['zeroHealthy'],
    minHealthy: Number.POSITIVE_INFINITY,
  };
  const loop = (async () => {
    while (!stopped) {
      // HAProxy not answering counts as no healthy server: miners could not connect either.
      const sample = await backendServers(front).then(
        (servers) => ({ servers }),
        (error: Error) => ({ servers: [] as ServerStat[], error: error.message }),
      );
      const healthy = sample.servers.filter(isHealthy).length;
      state.samples++;
      state.minHealthy = Math.min(state.minHealthy, healthy);
      if (healthy === 0) state.zeroHealthy.push({ at: Date.now(), ...sample });
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    get samples() {
      return state.samples;
    },
    get zeroHealthy() {
      return state.zeroHealthy;
    },
    get minHealthy() {
      return state.minHealthy;
    },
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

export interface StratumFront {
  haproxy: HaproxyInstance;
  runtime: HaproxyRuntime;
  follower: StratumFollower;
  /** Where miners connect. */
  port: number;
  close(): Promise<void>;
}

/** Fast checks, so a test sees a server come up or drain within a fraction of a second. */
export const CHECK = { intervalMs: 250, rise: 1, fall: 2, agentIntervalMs: 250 } as const;

/** The front's haproxy.cfg (confgen's `renderHaproxy`, the pool's template) with these servers. */
function frontConfig(statsSocket: string, port: number, servers: HaproxyServer[]): string {
  return renderHaproxy({
    statsSocket,
    frontend: { bind: '127.0.0.1', port },
    backend: { name: BACKEND, check: CHECK },
    timeouts: { connectMs: 2000 },
    servers,
  });
}

/**
 * A reload as an operator does it: haproxy.cfg rendered again with the stratum servers live in
 * the registry (`hashwire render haproxy`), then `reload` on the master CLI. The new worker
 * starts with every server in its backend; the follower adopts them.
 */
export async function reloadStratumFront(
  front: StratumFront,
  registry: { redis: RedisClient; keys: KeyBuilder; chain: string },
): Promise<HaproxyReload> {
  const live = (await listServices(registry.redis, registry.keys, 'stratum'))
    .filter((s) => s.chain === registry.chain)
    .map(haproxyServerFromService)
    .filter((s) => s !== null);
  return front.haproxy.reload(frontConfig(front.haproxy.statsSocket, front.port, live));
}

/**
 * HAProxy from the pool's template (confgen's `renderHaproxy`) on a free port of 127.0.0.1,
 * in master-worker mode, with an empty stratum backend that `followStratumServers` fills from
 * the registry.
 */
export async function startStratumFront(options: {
  redis: RedisClient;
  keys: KeyBuilder;
  chain: string;
}): Promise<StratumFront> {
  const port = await getFreePort();
  const dir = mkdtempSync(join(tmpdir(), 'hw-haproxy-'));
  const haproxy = await startHaproxy(frontConfig(join(dir, 'admin.sock'), port, []));
  const runtime = new HaproxyRuntime({ socketPath: haproxy.statsSocket });
  const follower = followStratumServers({
    redis: options.redis,
    keys: options.keys,
    runtime,
    backend: BACKEND,
    chain: options.chain,
    check: CHECK,
    resyncMs: 250,
    reconcileMs: 250,
  });
  let timer: NodeJS.Timeout | undefined;
  const synced = await Promise.race([
    follower.synced.then(() => true),
    new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), 10_000);
    }),
  ]);
  clearTimeout(timer);
  if (!synced) {
    await follower.close();
    await haproxy.stop();
    throw new Error(`HAProxy follower did not sync within 10 s: ${JSON.stringify(follower.stats)}`);
  }
  return {
    haproxy,
    runtime,
    follower,
    port,
    async close() {
      await follower.close();
      await haproxy.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
