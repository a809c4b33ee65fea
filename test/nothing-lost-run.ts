import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type KeyBuilder, type RpcMethods, type Share, createKeyBuilder } from '@hashwire/protocol';
import { type RedisClient, connectRedis } from '@hashwire/registry';
import { readWorkers, reporterKeys } from '@hashwire/reporter';
import { createRpcClient } from '@hashwire/rpc';
import {
  type SimMiners,
  startLitecoinRegtest,
  startRedis,
  startRedisCluster,
  startSimMiners,
  waitFor,
} from '@hashwire/testkit';
import { expect, onTestFailed, onTestFinished } from 'vitest';
import {
  type ServiceProcess,
  type TestRedis,
  killService,
  regtestJobmanagerConfig,
  regtestReporterConfig,
  regtestStratumConfig,
  spawnService,
} from './service-process.js';
import { compareShares, keysMatching, readLoggedShares, submissionKey } from './share-ledger.js';

// Issue 7, "Nothing lost, nothing doubled": the whole share path in real processes (two
// jobmanagers, two stratum servers with their spools, two reporters) on real Redis (AOF) and
// litecoind, sim miners submitting throughout while a stratum server, then a reporter, are
// SIGKILLed and Redis restarts. Afterwards every share is compared with what the miners saw.
// On a Redis Cluster (3 masters with a replica each, AOF on) the restart is of the master
// serving the chain.

const CHAIN = 'litecoin-regtest';
/** Dyadic, so every sum of credited difficulty is exact. */
const DIFF = 2 ** -9;
/** Shares per group before and after each fault. */
const STEP = 25;

/**
 * Redis for the run: one redis-server, or a Redis Cluster of 3 masters with a replica each;
 * AOF on either way, so a restart keeps the data.
 */
async function startTopology(kind: 'single' | 'cluster'): Promise<{
  target: TestRedis;
  redis: RedisClient;
  /** Restarts Redis (the chain's master on a Cluster); names what it restarted. */
  restart(keys: KeyBuilder): Promise<string>;
  stop(): Promise<void>;
}> {
  if (kind === 'cluster') {
    const cluster = await startRedisCluster({ masters: 3, replicas: 1, appendonly: true });
    return {
      target: { cluster: cluster.nodes },
      redis: connectRedis({ cluster: cluster.nodes }),
      async restart(keys) {
        const master = await cluster.masterFor(keys.round(CHAIN));
        await master.restart();
        // Back with its data (AOF); if it was away long enough, its replica took over meanwhile.
        await cluster.healthy();
        return `cluster master ${master.port}, now ${(await cluster.masterFor(keys.round(CHAIN))).port}`;
      },
      stop: () => cluster.stop(),
    };
  }
  const server = await startRedis({ appendonly: true });
  return {
    target: server.url,
    redis: connectRedis(server.url),
    async restart() {
      await server.restart();
      return `redis ${server.port}`;
    },
    stop: () => server.stop(),
  };
}

/** Every share a spool directory holds (open segment and sealed batches). */
function spooled(dir: string): Share[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.jsonl'))
    .flatMap((name) => readFileSync(join(dir, name), 'utf8').split('\n'))
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Share);
}

/** No share left: an empty open segment at most, and the spool's identity (spool.json), which stays with it. */
function spoolEmpty(dir: string): boolean {
  return readdirSync(dir).every(
    (name) => name === 'spool.json' || (name === 'open.jsonl' && statSync(join(dir, name)).size === 0),
  );
}

async function readAllRounds(redis: RedisClient, keys: KeyBuilder): Promise<Record<string, number>> {
  const round = reporterKeys(keys, CHAIN).round;
  // The current round and every round a block closed (an orphaned block's went back).
  const roundKeys = [round, ...(await keysMatching(redis, `${round}:*`))];
  const totals: Record<string, number> = {};
  for (const key of roundKeys) {
    for (const [account, diff] of Object.entries(await redis.hgetall(key))) {
      totals[account] = (totals[account] ?? 0) + Number(diff);
    }
  }
  return totals;
}

/** The test's name: the faults and what it checks. */
export const NOTHING_LOST =
  'SIGKILL a stratum server, SIGKILL a reporter, restart Redis: every accepted share credited exactly once';

/** The whole run on one Redis or on a Redis Cluster. */
export async function nothingLost(kind: 'single' | 'cluster'): Promise<void> {
  const [ltc, topology] = await Promise.all([startLitecoinRegtest({ nodes: 2 }), startTopology(kind)]);
  const { redis } = topology;
  const services = new Set<ServiceProcess>();
  const dirs: string[] = [];
  const minerGroups: SimMiners[] = [];
  onTestFinished(async () => {
    await Promise.all(minerGroups.map((m) => m.stop()));
    await Promise.all([...services].map(killService));
    redis.disconnect();
    await Promise.all([ltc.stop(), topology.stop()]);
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  const started = Date.now();
  const prefix = `t${randomBytes(4).toString('hex')}:`;
  const keys = createKeyBuilder({ prefix });
  const payout = await ltc.rpc[0]!.call<string>('getnewaddress', ['', 'bech32']);
  const account = await ltc.rpc[1]!.call<string>('getnewaddress', ['', 'bech32']);
  const start = async (kind: ServiceProcess['kind'], config: Record<string, unknown>) => {
    const service = await spawnService(kind, config);
    services.add(service);
    void service.exited.then(() => services.delete(service));
    return service;
  };
  const running: Record<string, ServiceProcess> = {};
  onTestFailed(() => {
    for (const [id, s] of Object.entries(running)) console.error(`--- ${id} ---\n${s.logs()}`);
  });

  const jobmanager = (id: string) =>
    start(
      'jobmanager',
      regtestJobmanagerConfig({
        id,
        keyPrefix: prefix,
        redisUrl: topology.target,
        payout,
        nodes: ltc.nodes,
      }),
    );
  const reporter = (id: string) =>
    start(
      'reporter',
      regtestReporterConfig({
        id,
        keyPrefix: prefix,
        redisUrl: topology.target,
        nodes: ltc.nodes,
        // Outlives the freeze below; a SIGKILLed reporter is found out by request timeouts.
        extra: { serviceTtlMs: 10_000 },
      }),
    );
  const spoolDirs = new Map<string, string>();
  const ports = new Map<string, number>();
  const stratum = (id: string) => {
    if (!spoolDirs.has(id)) {
      const dir = mkdtempSync(join(tmpdir(), `hw-spool-${id}-`));
      dirs.push(dir);
      spoolDirs.set(id, dir);
    }
    return start(
      'stratum',
      regtestStratumConfig({
        id,
        keyPrefix: prefix,
        redisUrl: topology.target,
        spoolDir: spoolDirs.get(id)!,
        // A restart takes the same port, so its miners come back to it.
        port: ports.get(id) ?? 0,
        diff: DIFF,
        // Requests time out well before a silent reporter's connection is dropped (3 heartbeats):
        // during the freeze below every copy of a sub-batch waits in a frozen reporter's socket
        // buffer on a connection that stays open, so both reporters get it once they thaw.
        forwarder: { suspectMs: 2000, requestTimeoutMs: 1000, heartbeatIntervalMs: 10_000 },
      }),
    ).then((s) => {
      ports.set(id, s.ready.port as number);
      return s;
    });
  };

  running['jm-1'] = await jobmanager('jm-1');
  running['jm-2'] = await jobmanager('jm-2');
  running['rep-1'] = await reporter('rep-1');
  running['rep-2'] = await reporter('rep-2');
  running['st-1'] = await stratum('st-1');
  running['st-2'] = await stratum('st-2');

  // Every share on regtest also meets the network target: each accepted share is a block
  // candidate too, so rounds close all the time and the round check spans closed rounds.
  for (const [g, id] of ['st-1', 'st-2'].entries()) {
    const miners = await startSimMiners({
      host: '127.0.0.1',
      port: ports.get(id)!,
      workers: 3,
      username: (i) => `${account}.g${g}w${i}`,
      algorithm: 'scrypt',
      recordShares: true,
      hashesPerSecondLimit: 600,
    });
    minerGroups.push(miners);
  }
  const accepted = (g: number) => minerGroups[g]!.stats().total.accepted;
  const progress = async (what: string) => {
    const targets = minerGroups.map((_, g) => accepted(g) + STEP);
    await Promise.all(
      minerGroups.map((m, g) => m.until((s) => s.total.accepted >= targets[g]!, 60_000)),
    ).catch((error: Error) => {
      throw new Error(`${what}: ${error.message}`);
    });
  };
  const shareLogLength = () => redis.xlen(reporterKeys(keys, CHAIN).shareLog);
  await progress('mining before any fault');

  // 1. Reporters freeze (SIGSTOP), so nothing leaves the spools: st-1's fills with shares
  //    its miners were told are accepted, and st-2's requests time out and are sent again
  //    to the other reporter (each copy waits in a frozen reporter's queue). Five sealed
  //    batches at st-2 span four batch intervals: longer than the request timeout.
  for (const id of ['rep-1', 'rep-2']) running[id]!.child.kill('SIGSTOP');
  const st1Spool = spoolDirs.get('st-1')!;
  const sealed = (id: string) =>
    readdirSync(spoolDirs.get(id)!).filter((name) => /^batch-.*\.jsonl$/.test(name)).length;
  const minerSawAccepted = (share: Share) =>
    minerGroups[0]!
      .shares()
      .some((s) => s.answer === 'accepted' && submissionKey(s) === submissionKey(share));
  await waitFor(() => sealed('st-2') >= 5 && spooled(st1Spool).some(minerSawAccepted), {
    timeoutMs: 30_000,
    what: 'acknowledged shares waiting in the spools',
  });
  //    Freeze st-1 too until one of its miners has a share in flight, then SIGKILL it with
  //    its spool on disk, thaw the reporters, and start st-1 again with the same id, port and
  //    spool directory: it replays the spool, its miners come back.
  running['st-1']!.child.kill('SIGSTOP');
  const frozenAt = Date.now();
  await waitFor(
    () => minerGroups[0]!.shares().some((s) => s.answer === 'pending' && s.submittedAt >= frozenAt),
    { timeoutMs: 30_000, what: 'a share submitted to the frozen st-1' },
  );
  expect(await killService(running['st-1']!)).toEqual({ code: null, signal: 'SIGKILL' });
  for (const id of ['rep-1', 'rep-2']) running[id]!.child.kill('SIGCONT');
  const leftInSpool = spooled(st1Spool).filter((s) => s.result === 'accepted');
  expect(leftInSpool.some(minerSawAccepted)).toBe(true);
  running['st-1'] = await stratum('st-1');
  await progress('mining after the stratum restart');

  // The copies sent during the freeze reached both reporters: credited once, then refused.
  const duplicates = async () => {
    let sum = 0;
    for (const id of ['rep-1', 'rep-2']) {
      const client = createRpcClient<RpcMethods>(running[id]!.ready.endpoint as string, {
        heartbeatIntervalMs: 250,
      });
      const status = (await client.request('svc.status', {})) as { batches: { duplicate: number } };
      await client.close();
      sum += status.batches.duplicate;
    }
    return sum;
  };
  const duplicatesAfterFreeze = await duplicates();
  expect(duplicatesAfterFreeze, 'batches delivered twice during the freeze').toBeGreaterThan(0);

  // 2. SIGKILL a reporter; the other takes every bucket; then start it again.
  const logBefore = await shareLogLength();
  expect(await killService(running['rep-1']!)).toEqual({ code: null, signal: 'SIGKILL' });
  await progress('mining with one reporter');
  await waitFor(async () => (await shareLogLength()) >= logBefore + 4, {
    timeoutMs: 30_000,
    what: 'batches credited by the remaining reporter',
  });
  running['rep-1'] = await reporter('rep-1');

  // 3. Redis restarts (AOF on): every service loses its connection for a moment.
  const restarted = await topology.restart(keys);
  const logAfterRestart = await shareLogLength();
  await progress('mining after the Redis restart');
  await waitFor(async () => (await shareLogLength()) >= logAfterRestart + 4, {
    timeoutMs: 30_000,
    what: 'batches credited after the Redis restart',
  });

  // Settle: miners stop, every spool is carried to the reporters, then everything drains.
  await Promise.all(minerGroups.map((m) => m.stop()));
  await waitFor(() => [...spoolDirs.values()].every(spoolEmpty), {
    timeoutMs: 30_000,
    what: 'every spool to be acknowledged by reporters',
  });
  for (const id of ['st-1', 'st-2', 'rep-1', 'rep-2', 'jm-1', 'jm-2']) {
    running[id]!.child.kill('SIGTERM');
    expect(await running[id]!.exited, `${id} exit`).toEqual({ code: 0, signal: null });
  }

  // Share by share.
  const logged = await readLoggedShares(redis, keys, CHAIN);
  const ledger = compareShares(
    minerGroups.flatMap((m) => m.shares()),
    logged,
  );
  expect(ledger.doubled, 'submissions credited more than once').toEqual([]);
  expect(ledger.doubledIds, 'share ids logged twice').toEqual([]);
  expect(ledger.lost, 'shares miners saw accepted but never credited').toEqual([]);
  expect(ledger.unknown, 'credited shares no miner submitted').toEqual([]);
  expect(ledger.creditedRejections, 'credited shares the miner was told were rejected').toEqual([]);
  expect(logged.every((s) => s.diff === DIFF && s.account === account)).toBe(true);
  // What the killed server held in its spool was replayed by its successor and credited.
  expect(leftInSpool.filter((s) => !ledger.creditedById.has(s.shareId))).toEqual([]);

  // Round totals (current round plus every closed one) equal the sum over the share log.
  const fromLog = logged.reduce((sum, s) => sum + s.diff, 0);
  expect(await readAllRounds(redis, keys)).toEqual({ [account]: fromLog });
  const workers = await readWorkers(redis, keys, CHAIN);
  for (const [name, counters] of workers) {
    const mine = logged.filter((s) => `${s.account}.${s.worker}` === name);
    expect({ name, accepted: counters.accepted, diff: counters.acceptedDiff }).toEqual({
      name,
      accepted: mine.length,
      diff: mine.reduce((sum, s) => sum + s.diff, 0),
    });
  }

  console.log(
    JSON.stringify({
      test: kind === 'cluster' ? 'nothing-lost-cluster' : 'nothing-lost',
      restarted,
      seconds: Math.round((Date.now() - started) / 1000),
      submitted: ledger.submitted.size,
      answers: ledger.answers,
      credited: logged.length,
      noAnswerCredited: ledger.noAnswerCredited,
      leftInKilledSpool: leftInSpool.length,
      duplicatesAfterFreeze,
      blocks: (await redis.hlen(keys.blocks(CHAIN))) || 0,
    }),
  );
}
