import { waitFor } from '@hashwire/testkit';
import { describe, expect, it } from 'vitest';
import { blockRecords, stratumBlockCounts } from './pool-checks.js';
import { CHAIN, startTestPool } from './pool-harness.js';
import { killService } from './service-process.js';
import { readLoggedShares, submissionKey } from './share-ledger.js';

// Issue 15, defect 2: every jobmanager SIGKILLed at once (a host reboot, a careless redeploy)
// and started again by a supervisor within a couple of seconds, under the same ids, with the
// production registration TTL (60 s: the dead ones' entries are still there when the new ones
// register). The stratum servers must subscribe again, jobs must flow, and every block
// candidate found meanwhile must be judged (accepted, or stale with the daemons' reason).

/** Every share meets the regtest target: each accepted share is a block candidate. */
const DIFF = 2 ** -5;
/** From the restart to every stratum server subscribed to both jobmanagers again. */
const FAILOVER_BOUND_MS = 10_000;

describe('every jobmanager killed at once (issue 15, defect 2)', () => {
  it('SIGKILL of both jobmanagers while miners mine, restarted under the same ids: stratum servers subscribe again within the failover bound, jobs flow, new blocks are accepted, and every candidate found in the outage is accepted or recorded stale with the reason', async () => {
    // The production registration TTL and heartbeat: a jobmanager back within 3 heartbeats
    // (3 s) answers the old connection's heartbeats, so nothing there says it lost our subscription.
    const p = await startTestPool({ diff: DIFF, jobmanagerTtlMs: 60_000, jobHeartbeatMs: 1000 });
    const rpc = p.ltc.rpc[0]!;
    const group = await p.startMiners({ tag: 'k', workers: 4, firstAddress: 2, hashesPerSecond: 1500 });
    const { miners } = group;
    const height0 = await rpc.getBlockCount();
    await waitFor(async () => (await rpc.getBlockCount()) >= height0 + 2, {
      timeoutMs: 30_000,
      what: 'blocks through the pool before the kill',
    });

    // Every jobmanager at once.
    const killedAt = Date.now();
    await Promise.all(['jm-1', 'jm-2'].map((id) => killService(p.running.get(id)!)));
    const heightAtKill = await rpc.getBlockCount();
    // Miners keep hashing the last job meanwhile: block candidates nobody can submit now. The
    // supervisor starts them again once the first such candidate was accepted as a share (on a
    // loaded machine none may come in the second or two a restart takes).
    await waitFor(
      () =>
        miners.shares().some((s) => s.blockCandidate && s.answer === 'accepted' && s.submittedAt >= killedAt),
      { timeoutMs: 30_000, what: 'a block candidate found while no jobmanager runs' },
    );
    await Promise.all(['jm-1', 'jm-2'].map((id) => p.startService('jobmanager', id)));
    const restartedAt = Date.now();
    const startedAt = restartedAt;
    // Both: /healthz 200 and every stratum server subscribed (the new leader's /stats subscribers).
    await Promise.all(['jm-1', 'jm-2'].map((id) => p.waitHealthy(id, FAILOVER_BOUND_MS)));
    const subscribedMs = Date.now() - startedAt;

    // Jobs flow and new blocks are accepted.
    await waitFor(async () => (await rpc.getBlockCount()) >= heightAtKill + 3, {
      timeoutMs: 30_000,
      what: 'the chain to move again through the restarted jobmanagers',
    });
    await waitFor(
      async () => (await blockRecords(p)).some((r) => r.state === 'accepted' && r.submittedAt > startedAt),
      { timeoutMs: 30_000, what: 'a block accepted after the restart' },
    );

    // Every candidate the stratum servers held through the outage was answered.
    await miners.stop();
    const stratumCounts = await waitFor(
      async () => {
        const counts = await Promise.all(['st-1', 'st-2'].map((id) => stratumBlockCounts(p, id)));
        return counts.every((c) => c.held === 0 && c.submitted === c.candidates) && counts;
      },
      { timeoutMs: 15_000, what: 'no block candidate left waiting at a stratum server' },
    );
    for (const id of ['st-1', 'st-2']) await p.stopService(id);

    // The candidates found during the outage, as the miners submitted them (each accepted as
    // a share), and what became of each: its record in Redis, found through the share log.
    const outage = miners
      .shares()
      .filter(
        (s) =>
          s.blockCandidate &&
          s.answer === 'accepted' &&
          s.submittedAt >= killedAt &&
          s.submittedAt < restartedAt,
      );
    const logged = new Map(
      (await readLoggedShares(p.redis, p.keys, CHAIN)).map((s) => [submissionKey(s), s]),
    );
    const records = new Map((await blockRecords(p)).map((r) => [r.shareId, r]));
    const fates = outage.map((s) => {
      const share = logged.get(submissionKey(s));
      const record = share ? records.get(share.shareId) : undefined;
      return {
        job: s.jobId,
        at: s.submittedAt - killedAt,
        state: record?.state ?? 'no record',
        reason: record?.reason,
        confirmations: record?.confirmations,
      };
    });
    console.log(
      JSON.stringify({
        test: 'jobmanagers-killed',
        outageMs: restartedAt - killedAt,
        subscribedMs,
        outageCandidates: fates,
        stratumBlocks: stratumCounts,
        heights: { height0, heightAtKill, end: await rpc.getBlockCount() },
      }),
    );

    expect(outage.length, 'block candidates found while no jobmanager ran').toBeGreaterThanOrEqual(1);
    // Counted by the stratum servers: each candidate they handed on has its verdict, none unanswered.
    for (const c of stratumCounts) {
      expect(c.unanswered).toBe(0);
      expect(c.accepted! + c.rejected! + c.stale! + c.orphaned!).toBe(c.candidates);
    }
    // Candidates of one outage share a parent: once one is in, the others lost the race to it
    // (orphaned, when submitted together) or are stale (submitted after it): each says so.
    for (const fate of fates) {
      expect(['accepted', 'stale', 'orphaned'], JSON.stringify(fate)).toContain(fate.state);
      if (fate.state === 'stale')
        expect(fate.reason).toMatch(/^stale: its parent [0-9a-f]{64} was no longer the tip/);
      // Orphaned by the daemons (a sibling came first, with their reason), or accepted and then
      // reorganised away (a reporter's move: no reason, confirmations -1).
      if (fate.state === 'orphaned' && (fate.confirmations ?? 0) >= 0)
        expect(fate.reason).toBe('orphaned: a sibling block at this height reached the daemons first');
    }
  }, 240_000);
});
