import { describe, expect, it } from 'vitest';
import { backendServers } from './haproxy-front.js';
import { CHAIN, type MinerGroup, startTestPool } from './pool-harness.js';
import { answerIssues, compareShares, describeShares, readLoggedShares } from './share-ledger.js';

// Issue 8, scaling: a third stratum server and a third jobmanager join a pool while miners
// mine through HAProxy. New miners are sent to the new server; the miners already connected
// notice nothing: no disconnect, no reconnect, shares accepted throughout.

const DIFF = 2 ** -9;

describe('scaling out (issue 8)', () => {
  it('adds a stratum server and a jobmanager while miners mine: new miners land on the new server, connected miners see no change', async () => {
    const started = Date.now();
    const p = await startTestPool({ diff: DIFF });

    const first: MinerGroup = await p.startMiners({
      tag: 'a',
      workers: 20,
      firstAddress: 2,
      hashesPerSecond: 600,
    });
    const accepted = (g: MinerGroup) => g.miners.stats().total.accepted;
    const progress = async (g: MinerGroup, what: string, shares = 20) => {
      const target = accepted(g) + shares;
      await g.miners
        .until((s) => s.total.accepted >= target, 30_000)
        .catch((error: Error) => {
          throw new Error(`${what}: ${error.message}; miners ${JSON.stringify(g.miners.stats().total)}`);
        });
    };
    await progress(first, 'mining on two servers');
    const before = await backendServers(p.front);

    // Scale out: a third jobmanager (a warm standby of the group) and a third stratum server.
    await p.startService('jobmanager', 'jm-3');
    await p.startService('stratum', 'st-3');
    for (const id of ['st-3', 'jm-3', 'jm-1', 'jm-2']) await p.waitHealthy(id);
    const acceptedAtScale = accepted(first);

    // New miners: HAProxy hashes their addresses over three servers now.
    const second: MinerGroup = await p.startMiners({
      tag: 'b',
      workers: 20,
      firstAddress: 102,
      hashesPerSecond: 600,
    });
    const after = await backendServers(p.front);
    const sessionsOn = (servers: typeof after, name: string) =>
      servers.find((s) => s.name === name)?.sessions ?? 0;
    await Promise.all([
      progress(first, 'the first miners after scaling'),
      progress(second, 'the new miners'),
    ]);

    const firstStats = first.miners.stats();
    const newOnSt3 = sessionsOn(after, 'st-3');
    const summary = {
      test: 'scaling',
      seconds: Math.round((Date.now() - started) / 1000),
      before: before.map((s) => `${s.name}:${s.sessions}`),
      after: after.map((s) => `${s.name}:${s.sessions}`),
      firstGroup: {
        accepted: firstStats.total.accepted,
        acceptedSinceScale: firstStats.total.accepted - acceptedAtScale,
        reconnects: first.reconnects.length,
        disconnects: first.disconnects.length,
      },
      secondGroup: { accepted: accepted(second), onSt3: newOnSt3 },
    };

    // The connected miners saw nothing: same connections, same servers, same extranonce1.
    expect(first.reconnects, 'reconnects of the miners connected before scaling').toEqual([]);
    expect(first.disconnects, 'disconnects of the miners connected before scaling').toEqual([]);
    expect(firstStats.workers.map((w) => w.extranonce1)).toEqual(first.extranonce1);
    // Every first-group miner is still where it was; the new ones spread over all three.
    expect(
      ['st-1', 'st-2'].map((id) => sessionsOn(after, id) >= sessionsOn(before, id)),
      `sessions per server before ${JSON.stringify(summary.before)} and after ${JSON.stringify(summary.after)}`,
    ).toEqual([true, true]);
    expect(newOnSt3, `new miners sent to st-3 (${JSON.stringify(summary.after)})`).toBeGreaterThan(0);
    const st3 = await p.http<{ connections: number }>('stratum', 'st-3', '/stats');
    expect(st3.body.connections, 'miners st-3 itself holds').toBe(newOnSt3);
    expect(after.reduce((sum, s) => sum + s.sessions, 0)).toBe(40);

    // Share by share, both groups.
    const stoppedAt = Date.now();
    await Promise.all([first.miners.stop(), second.miners.stop()]);
    for (const id of ['st-1', 'st-2', 'st-3']) await p.stopService(id);
    const logged = await readLoggedShares(p.redis, p.keys, CHAIN);
    const ledger = compareShares([...first.miners.shares(), ...second.miners.shares()], logged);
    const answers = answerIssues(ledger.submitted.values(), stoppedAt);
    console.log(
      JSON.stringify({
        ...summary,
        answers: ledger.answers,
        rejectedByCode: answers.rejectedByCode,
        credited: logged.length,
      }),
    );
    expect(describeShares(ledger.lost), 'shares miners saw accepted but never credited').toEqual([]);
    expect(ledger.doubled, 'submissions credited more than once').toEqual([]);
    expect(describeShares(ledger.unknown), 'credited shares no miner submitted').toEqual([]);
    expect(
      describeShares(answers.unanswered),
      'shares left without an answer before the miners stopped',
    ).toEqual([]);
    expect(describeShares(answers.notStale), 'shares rejected for another reason than a stale job').toEqual(
      [],
    );
  }, 180_000);
});
