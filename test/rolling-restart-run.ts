import { expect } from 'vitest';
import { backendServers, sampleBackendHealth } from './haproxy-front.js';
import { type Phase, blockOutcomes, checkReconnects } from './pool-checks.js';
import { CHAIN, type MinerGroup, type PoolOptions, startTestPool } from './pool-harness.js';
import {
  answerIssues,
  compareShares,
  describeShares,
  expectCreditedOnce,
  readLoggedShares,
} from './share-ledger.js';

// Issue 8, "rolling restart with zero loss": a whole pool as processes behind real HAProxy,
// 50 sim miners mining through it on litecoind regtest, and every process restarted one after
// another the way an operator upgrades: each stratum server drained (SIGTERM) and started
// again with its id and spool, each jobmanager handing over its lease (the leader too), each
// reporter drained. Afterwards, share by share, nothing lost and nothing doubled.

/** Dyadic, so every sum of credited difficulty is exact. */
const DIFF = 2 ** -9;
const MINERS = 50;

/** The test's name: what it restarts and what it checks. */
export const ROLLING_RESTART =
  'restarts every stratum server, jobmanager and reporter one after another while 50 miners mine through HAProxy: every accepted share credited once, one resumed reconnect per stratum restart, blocks accepted, HAProxy never without a healthy server';

/** The rolling restart on one Redis or on a Redis Cluster (3 masters, a replica each). */
export async function rollingRestart(redis: NonNullable<PoolOptions['redis']>): Promise<void> {
  const started = Date.now();
  const p = await startTestPool({ diff: DIFF, redis });

  const health = sampleBackendHealth(p.front);
  const group: MinerGroup = await p.startMiners({
    tag: 'w',
    workers: MINERS,
    firstAddress: 2,
    hashesPerSecond: 1500,
  });
  const { miners } = group;
  // Source hashing spreads the miners' 50 addresses over both servers.
  const spread = await backendServers(p.front);
  expect(
    spread.map((s) => s.sessions).every((n) => n > 0),
    `miners on both servers: ${JSON.stringify(spread)}`,
  ).toBe(true);

  const progress = async (what: string, shares = 30) => {
    const target = miners.stats().total.accepted + shares;
    await miners
      .until((s) => s.total.accepted >= target, 30_000)
      .catch((error: Error) => {
        throw new Error(`${what}: ${error.message}; miners ${JSON.stringify(miners.stats().total)}`);
      });
  };
  await progress('mining before the restarts');

  // One process after another; the next only once the last is back and healthy.
  const phases: (Phase & { stopMs: number; healthyMs: number; leader?: boolean; epochs?: number[] })[] = [];
  const jobmanagerEpoch = async (id: string) =>
    (await p.http<{ leader: boolean; epoch: number }>('jobmanager', id, '/stats')).body;
  for (const id of ['st-1', 'st-2', 'jm-1', 'jm-2', 'rep-1', 'rep-2']) {
    const minersOnIt = (await backendServers(p.front)).find((s) => s.name === id)?.sessions ?? 0;
    const kind = p.running.get(id)!.kind;
    const other = id === 'jm-1' ? 'jm-2' : 'jm-1';
    const leaderBefore = kind === 'jobmanager' ? await jobmanagerEpoch(id) : undefined;
    const start = Date.now();
    await p.stopService(id);
    const stopped = Date.now();
    await p.startService(kind, id);
    await p.waitHealthy(id);
    const healthy = Date.now();
    await progress(`mining after restarting ${id}`);
    phases.push({
      id,
      kind,
      start,
      end: Date.now(),
      minersOnIt,
      stopMs: stopped - start,
      healthyMs: healthy - stopped,
      ...(leaderBefore && {
        leader: leaderBefore.leader,
        epochs: [leaderBefore.epoch, (await jobmanagerEpoch(other)).epoch],
      }),
    });
  }
  await health.stop();
  // Taken before the miners stop (stopping is a disconnect of its own).
  const reconnects = checkReconnects(group, phases);

  const stoppedAt = Date.now();
  // Settle: the miners stop; each stratum server drains and hands its spool to the
  // reporters before it exits.
  await miners.stop();
  for (const id of ['st-1', 'st-2']) await p.stopService(id);

  const logged = await readLoggedShares(p.redis, p.keys, CHAIN);
  const ledger = compareShares(miners.shares(), logged);
  const blocks = await blockOutcomes(p);
  const answers = answerIssues(ledger.submitted.values(), stoppedAt);
  console.log(
    JSON.stringify({
      test: redis === 'cluster' ? 'rolling-restart-cluster' : 'rolling-restart',
      seconds: Math.round((Date.now() - started) / 1000),
      submitted: ledger.submitted.size,
      answers: ledger.answers,
      rejectedByCode: answers.rejectedByCode,
      credited: logged.length,
      noAnswerCredited: ledger.noAnswerCredited,
      phases: phases.map((ph) => ({
        id: ph.id,
        ms: ph.end - ph.start,
        stopMs: ph.stopMs,
        backHealthyMs: ph.healthyMs,
        minersOnIt: ph.minersOnIt,
        reconnects: reconnects.perPhase[ph.id] ?? 0,
        ...(ph.leader !== undefined && { leader: ph.leader, epochs: ph.epochs }),
      })),
      blocks: blocks.counts,
      haproxySamples: health.samples,
      zeroHealthySamples: health.zeroHealthy.length,
      follower: p.front.follower.stats,
      minHealthy: health.minHealthy,
    }),
  );

  expectCreditedOnce(ledger, answers.unanswered);
  expect(logged.every((s) => s.diff === DIFF && s.account === p.account)).toBe(true);
  expect(describeShares(answers.notStale), 'shares rejected for another reason than a stale job').toEqual([]);
  // Once per stratum restart for the miners it held, resumed with the same extranonce1;
  // none at all while jobmanagers and reporters restart.
  expect(reconnects.problems, `reconnects: ${reconnects.problems.join('; ')}`).toEqual([]);
  expect(blocks.problems, `blocks found during the run: ${blocks.problems.join('; ')}`).toEqual([]);
  // The leader was among the restarted jobmanagers: it handed its lease over (a higher epoch).
  const [before, after] = phases.find((ph) => ph.leader)?.epochs ?? [];
  expect(before, 'the epoch of a jobmanager restarted while leader').toBeDefined();
  expect(after, 'the epoch after it handed over').toBeGreaterThan(before!);
  expect(health.zeroHealthy, `HAProxy samples with no healthy server (of ${health.samples})`).toEqual([]);
}
