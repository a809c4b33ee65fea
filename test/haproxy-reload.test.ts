import net from 'node:net';
import type { HaproxyReload } from '@hashwire/core';
import { waitFor } from '@hashwire/testkit';
import { describe, expect, it } from 'vitest';
import { backendServers, isHealthy, reloadStratumFront } from './haproxy-front.js';
import { CHAIN, startTestPool } from './pool-harness.js';

// Issue 20, "upgrade without disconnecting a single miner", HAProxy's part: HAProxy reloaded
// the way the pool runs it (master-worker, `reload` on the master CLI, haproxy.cfg rendered
// again from the registry first) while miners mine through it and new connections keep
// arriving. The whole pool runs as processes (litecoind regtest, jobmanagers, reporters,
// stratum servers); the miners and the probing clients are real TCP clients of HAProxy.

const DIFF = 2 ** -9;
const MINERS = 20;
const RELOADS = 5;
/** Clients opening connection after connection during the reloads, each from its own address. */
const PROBES = 4;

interface ProbeFailure {
  at: number;
  /** ECONNREFUSED, ECONNRESET, `closed` (HAProxy or the server closed before answering), `timeout`. */
  error: string;
}

interface ProbeRecord {
  started: number;
  ended: number;
  ok: boolean;
}

/**
 * Connects, sends `mining.subscribe` and waits for its answer: the connection was accepted by
 * HAProxy, sent to a stratum server, and that server answered. Resolves with the failure, if any.
 */
function probeOnce(port: number, localAddress: string): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    let buffered = '';
    let settled = false;
    const settle = (error: string | null) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(error);
    };
    socket.setTimeout(5_000, () => settle('timeout'));
    socket.on('connect', () =>
      socket.write(`${JSON.stringify({ id: 1, method: 'mining.subscribe', params: ['reload-probe'] })}\n`),
    );
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (const line of buffered.split('\n').slice(0, -1)) {
        const message = JSON.parse(line) as { id?: unknown; result?: unknown; error?: unknown };
        if (message.id === 1)
          settle(message.error ? `subscribe refused: ${JSON.stringify(message.error)}` : null);
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => settle(error.code ?? error.message));
    socket.on('close', () => settle('closed'));
  });
}

/** PROBES clients, each opening one connection after another until stopped. */
function probeConnections(port: number) {
  const records: ProbeRecord[] = [];
  const failures: ProbeFailure[] = [];
  let stopped = false;
  const loops = Array.from({ length: PROBES }, async (_, i) => {
    while (!stopped) {
      const started = Date.now();
      const error = await probeOnce(port, `127.0.1.${i + 1}`);
      records.push({ started, ended: Date.now(), ok: error === null });
      if (error !== null) failures.push({ at: started, error });
    }
  });
  return {
    records,
    failures,
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

describe('HAProxy master-worker reload (issue 20)', () => {
  it(`reloads HAProxy ${RELOADS} times while ${MINERS} miners mine through it: no miner disconnected, no new connection refused, the master stays, old workers leave with their last connection`, async () => {
    const p = await startTestPool({ diff: DIFF });
    const haproxy = p.front.haproxy;
    const { miners, disconnects, reconnects } = await p.startMiners({
      tag: 'hr',
      workers: MINERS,
      firstAddress: 2,
      hashesPerSecond: 1500,
    });
    const acceptedEach = () => miners.stats().workers.map((w) => w.accepted);
    /** Every miner gets a share accepted after `before` (their counts then): shares are answered. */
    const everyMinerAnswered = async (before: number[], what: string) => {
      await miners
        .until((s) => s.workers.every((w, i) => w.accepted > (before[i] ?? 0)), 60_000)
        .catch((error: Error) => {
          throw new Error(`${what}: ${error.message}`);
        });
    };
    await everyMinerAnswered(
      acceptedEach().map(() => 0),
      'every miner mining before the reloads',
    );
    // Source hashing spreads the miners over both stratum servers.
    expect((await backendServers(p.front)).map((s) => s.sessions > 0)).toEqual([true, true]);

    const masterPid = haproxy.masterPid;
    const firstWorker = haproxy.pid;
    const followerAdded = p.front.follower.stats.added;
    const probes = probeConnections(p.front.port);
    const reloads: (HaproxyReload & { started: number; ended: number })[] = [];
    for (let i = 0; i < RELOADS; i++) {
      const before = acceptedEach();
      // Probes in flight on the current worker, so each reload has connections to hand over.
      const probed = probes.records.length;
      await waitFor(() => probes.records.length >= probed + PROBES, {
        timeoutMs: 10_000,
        what: 'probe connections before the reload',
      });
      const started = Date.now();
      const reload = await reloadStratumFront(p.front, { redis: p.redis, keys: p.keys, chain: CHAIN });
      reloads.push({ ...reload, started, ended: Date.now() });
      expect(reload.masterPid).toBe(masterPid);
      // The new worker serves both stratum servers from its first connection (they are in the
      // file it loaded), and every miner's shares keep being answered through the old worker.
      expect(
        (await backendServers(p.front))
          .filter(isHealthy)
          .map((s) => s.name)
          .sort(),
      ).toEqual(['st-1', 'st-2']);
      await everyMinerAnswered(before, `every miner answered after reload ${i + 1}`);
    }
    const afterReloads = probes.records.length;
    await waitFor(() => probes.records.length >= afterReloads + PROBES, {
      timeoutMs: 10_000,
      what: 'probe connections after the last reload',
    });
    await probes.stop();

    const during = probes.records.filter((r) =>
      reloads.some((rl) => r.started <= rl.ended && r.ended >= rl.started),
    );
    const procs = await haproxy.processes();
    const summary = {
      test: 'haproxy-reload',
      reloads: reloads.map((r) => ({ worker: r.workerPid, tookMs: r.tookMs })),
      probeConnections: probes.records.length,
      probeConnectionsDuringReloads: during.length,
      probeFailures: probes.failures,
      minerDisconnects: disconnects.length,
      minerReconnects: reconnects.length,
      shares: miners.stats().total,
      processes: procs,
      followerAddedSinceReloads: p.front.follower.stats.added - followerAdded,
    };
    console.log(JSON.stringify(summary));

    expect(probes.failures).toEqual([]);
    expect(during.length).toBeGreaterThan(0);
    expect([disconnects, reconnects]).toEqual([[], []]);
    expect(miners.stats().workers.every((w) => w.connected && w.reconnects === 0)).toBe(true);
    expect(miners.stats().total.noAnswer).toBe(0);
    // One master all along, reloaded RELOADS times, none failed.
    expect([procs.master.pid, procs.master.reloads, procs.master.failedReloads]).toEqual([
      masterPid,
      RELOADS,
      0,
    ]);
    // The first worker still holds every miner (they connected before the first reload); the
    // workers between had only probe connections, all closed: they left.
    await waitFor(
      async () => (await haproxy.processes()).oldWorkers.map((w) => w.pid).join() === String(firstWorker),
      { timeoutMs: 15_000, what: `only the first worker (${firstWorker}) left among the old workers` },
    );
    // Its last miner gone, the first worker leaves too.
    await miners.stop();
    await waitFor(async () => (await haproxy.processes()).oldWorkers.length === 0, {
      timeoutMs: 15_000,
      what: 'the first worker to exit once its miners disconnected',
    });
  }, 300_000);
});
