import { readShareLog } from '@hashwire/reporter';
import { waitFor } from '@hashwire/testkit';
import { describe, expect, it } from 'vitest';
import { CHAIN, startTestPool } from './pool-harness.js';
import {
  answerIssues,
  compareShares,
  describeShares,
  expectCreditedOnce,
  readLoggedShares,
} from './share-ledger.js';

// Issue 16, failover: the pool on a Redis Cluster of 3 masters with a replica each, 20 sim miners
// mining through HAProxy, and the master serving the chain's keys (rounds, shares, jobs,
// sessions) SIGKILLed mid-run. Its replica is promoted; every share a miner saw accepted is
// credited exactly once. Reporters acknowledge a credit only once a replica has it (WAIT), so
// nothing acknowledged vanishes with the master. The stall (time without an accepted share,
// time without a credit) is reported, not asserted: the box may be loaded.

/** Dyadic, so every sum of credited difficulty is exact. */
const DIFF = 2 ** -9;
const MINERS = 20;

/** The longest time between two consecutive instants of `times` that falls after `from`. */
function longestGap(times: number[], from: number): { ms: number; at: number } {
  const sorted = times.filter((t) => t >= from).sort((a, b) => a - b);
  let gap = { ms: sorted.length > 0 ? sorted[0]! - from : 0, at: from };
  for (let i = 1; i < sorted.length; i++) {
    const ms = sorted[i]! - sorted[i - 1]!;
    if (ms > gap.ms) gap = { ms, at: sorted[i - 1]! };
  }
  return gap;
}

describe('Redis Cluster master failover (issue 16)', () => {
  it('SIGKILL the master serving the chain while 20 miners mine: its replica takes over, every accepted share credited exactly once', async () => {
    const started = Date.now();
    // Registrations outlive the failover (production: 60 s), so no service drops out of
    // discovery while the cluster elects the replica.
    const p = await startTestPool({
      diff: DIFF,
      redis: 'cluster',
      serviceTtlMs: 15_000,
      jobmanagerTtlMs: 15_000,
    });
    const cluster = p.cluster!;
    const { miners } = await p.startMiners({
      tag: 'f',
      workers: MINERS,
      firstAddress: 2,
      hashesPerSecond: 1500,
    });
    const progress = async (what: string, shares = 40) => {
      const target = miners.stats().total.accepted + shares;
      await miners
        .until((s) => s.total.accepted >= target, 60_000)
        .catch((error: Error) => {
          throw new Error(`${what}: ${error.message}; miners ${JSON.stringify(miners.stats().total)}`);
        });
    };
    const creditedBatches = async () => {
      let n = 0;
      for await (const _ of readShareLog(p.redis, p.keys, CHAIN)) n++;
      return n;
    };
    await progress('mining before the failover');
    await waitFor(async () => (await creditedBatches()) >= 3, {
      timeoutMs: 30_000,
      what: 'batches credited before the failover',
    });

    const master = await cluster.masterFor(p.keys.round(CHAIN));
    const killedAt = Date.now();
    const { promoted, failoverMs } = await cluster.killMaster(master);
    expect(await cluster.masterFor(p.keys.round(CHAIN))).toBe(promoted);
    const batchesAtPromotion = await creditedBatches();
    await progress('mining after the failover');
    await waitFor(async () => (await creditedBatches()) >= batchesAtPromotion + 3, {
      timeoutMs: 60_000,
      what: 'batches credited by the promoted master',
    });
    const minedUntil = Date.now();

    // Settle: the miners stop; each stratum server drains and hands its spool to the reporters.
    const stoppedAt = Date.now();
    await miners.stop();
    for (const id of ['st-1', 'st-2']) await p.stopService(id);

    const logged = await readLoggedShares(p.redis, p.keys, CHAIN);
    const ledger = compareShares(miners.shares(), logged);
    const answers = answerIssues(ledger.submitted.values(), stoppedAt);
    const acceptedAt = miners
      .shares()
      .filter((s) => s.answer === 'accepted' && s.answeredAt !== null && s.answeredAt <= minedUntil)
      .map((s) => s.answeredAt!);
    const creditedAt: number[] = [];
    for await (const entry of readShareLog(p.redis, p.keys, CHAIN)) {
      const at = Number(entry.id.split('-')[0]);
      if (at <= minedUntil) creditedAt.push(at);
    }
    const reporters: Record<string, unknown> = {};
    for (const id of ['rep-1', 'rep-2']) {
      reporters[id] = (
        await p.http<{ batches: Record<string, number> }>('reporter', id, '/stats')
      ).body.batches;
    }
    const acceptStall = longestGap(acceptedAt, killedAt - 1000);
    const creditStall = longestGap(creditedAt, killedAt - 1000);
    console.log(
      JSON.stringify({
        test: 'redis-failover',
        seconds: Math.round((Date.now() - started) / 1000),
        killedMaster: master.port,
        promoted: promoted.port,
        failoverMs,
        miningStallMs: acceptStall.ms,
        miningStallStartsAfterKillMs: acceptStall.at - killedAt,
        creditStallMs: creditStall.ms,
        creditStallStartsAfterKillMs: creditStall.at - killedAt,
        submitted: ledger.submitted.size,
        answers: ledger.answers,
        rejectedByCode: answers.rejectedByCode,
        credited: logged.length,
        noAnswerCredited: ledger.noAnswerCredited,
        reporters,
      }),
    );

    expectCreditedOnce(ledger, answers.unanswered);
    expect(logged.every((s) => s.diff === DIFF && s.account === p.account)).toBe(true);
  }, 300_000);
});
