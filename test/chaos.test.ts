import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { waitFor } from '@hashwire/testkit';
import { describe, expect, it } from 'vitest';
import { CHECK, sampleBackendHealth } from './haproxy-front.js';
import { type StratumBlockCounts, blockRecords, stratumBlockCounts } from './pool-checks.js';
import { CHAIN, type Pool, startTestPool } from './pool-harness.js';
import { type ServiceProcess, killService } from './service-process.js';
import { compareShares, describeShares, readLoggedShares, submissionKey } from './share-ledger.js';

// Issue 15, acceptance "Chaos test": 20 sim miners mine through HAProxy while one of each
// service is SIGKILLed in turn (and started again under its id, as a supervisor does), then
// every jobmanager at once, then Redis is frozen for 15 s, then the daemons' peer link is cut
// and restored. Afterwards: every share a miner saw accepted is credited once; the chain rose
// again within the failover bound after each fault; every block candidate got a verdict
// (accepted, stale or orphaned, with the daemons' reason); and `/healthz` of the stratum servers
// and jobmanagers was 503 exactly while the pool could not give fresh work.

/** Every share meets the regtest target: each accepted share is a block candidate. */
const DIFF = 2 ** -6;
const MINERS = 20;
/** 1024 hashes a share at DIFF: about 4 shares, hence 4 block candidates, a second. */
const HASHES_PER_S = 4000;

// The pool as this test runs it: production lease, heartbeat and registration TTLs; the
// refresh and the two staleness bounds shortened (30 s, 90 s and 20 s in production) so that a
// fault outlasts them within a test's time.
/** jobmanager `leaseTtlMs` (the default): a dead or frozen-out leader's lease lapses within it. */
const LEASE_TTL_MS = 2000;
/** jobmanager ↔ job feed `heartbeatIntervalMs` (the production value). */
const HEARTBEAT_MS = 1000;
/** Every registration's TTL (production): a killed process stays registered across its restart. */
const SERVICE_TTL_MS = 60_000;
/** jobmanager `refreshIntervalMs`: the leader sends a job at least this often. */
const REFRESH_MS = 1000;
/**
 * stratum `jobFeed.maxJobAgeMs`: work older than this is stale. Above a refresh plus a lease
 * (a killed leader's standby publishes within REFRESH_MS + LEASE_TTL_MS of the last job) with
 * room for a loaded machine, so a single jobmanager's death never suspends the pool.
 */
const MAX_JOB_AGE_MS = 6000;
/** jobmanager `templateGraceMs`: unhealthy after this long without a template. */
const TEMPLATE_GRACE_MS = 3000;
/** The sim miners' reconnect backoff doubles from 250 ms up to this (testkit's cap). */
const MINER_RECONNECT_MAX_MS = 5000;
/**
 * The first share found on fresh work is a block (every share meets the regtest target). At 4
 * shares a second, none in 4 s happens e^-16 of the time.
 */
const BLOCK_WAIT_MS = 4000;
/** How long a supervisor waits before it starts a dead service again. */
const SUPERVISOR_DELAY_MS = 1000;
const FREEZE_MS = 15_000;
/** How long the peer link stays cut once every server and jobmanager answers 503. */
const CUT_HOLD_MS = 3000;
/** Slack for a loaded 2-core machine: timers late, a health check or push a beat behind. */
const SLACK_MS = 1500;

/**
 * The failover bound: once a fault is over (the killed process started again, Redis answering,
 * the peers back), fresh work reaches the stratum servers within a lease TTL (a dead or
 * frozen-out leader's lease lapses and the next leader publishes at once) plus three heartbeats
 * (a restarted jobmanager is subscribed to on its registry event, at worst once its old
 * subscription missed three) plus a refresh (the leader's next job when the tip did not move);
 * a resumed server takes miners at HAProxy's next agent check; the miners come back within
 * their reconnect backoff; the next block comes within BLOCK_WAIT_MS of mining.
 * 2000 + 3000 + 1000 + 250 + 5000 + 4000 = 15,250 ms.
 */
const FAILOVER_BOUND_MS =
  LEASE_TTL_MS +
  3 * HEARTBEAT_MS +
  REFRESH_MS +
  CHECK.agentIntervalMs +
  MINER_RECONNECT_MAX_MS +
  BLOCK_WAIT_MS;
/**
 * A stratum server answers 503 within this of the last fresh job: the job-age bound, then its
 * job feed's health check (every 250 ms).
 */
const STRATUM_503_BOUND_MS = MAX_JOB_AGE_MS + 250 + SLACK_MS;
/**
 * A fresh job reaches a stratum server at once, or through a subscription made again within
 * three heartbeats: it answers 200 again within this of the job's creation.
 */
const RESUME_BOUND_MS = 3 * HEARTBEAT_MS;
/** A jobmanager answers 503 within this of its last template: the grace, checked every half of it. */
const JOBMANAGER_503_BOUND_MS = TEMPLATE_GRACE_MS * 1.5 + SLACK_MS;

const STRATUM_IDS = ['st-1', 'st-2'];
const JOBMANAGER_IDS = ['jm-1', 'jm-2'];
const SAMPLED = [...STRATUM_IDS, ...JOBMANAGER_IDS];

/** One fault and what the pool did about it (times: `Date.now()`). */
interface Fault {
  name: string;
  /** Whether the pool could still give fresh work throughout (one of two killed). */
  poolServes: boolean;
  /** Processes killed (their own restart may answer 503 or nothing). */
  killed: string[];
  start: number;
  /** The daemons stopped giving templates (the peer cut: once they had no peers). */
  noTemplatesFrom?: number;
  /** The fault is over: processes started again, Redis thawed, peers back. */
  end: number;
  /** Single kills: from the kill to the next block, before any restart (the pool failed over). */
  failoverMs?: number;
  /** From `end` to every restarted process healthy (`waitHealthy`). */
  healthyMs?: number;
  /** From `end` to every stratum server and jobmanager answering 200. */
  healthz200Ms?: number;
  /** From `end` to the next block. */
  heightMs: number;
  heights: { atStart: number; atEnd: number };
}

interface HealthSample {
  sentAt: number;
  at: number;
  status: number | 'down';
  reasons?: string[];
}

/**
 * Asks every stratum server's and jobmanager's `/healthz` every 100 ms, each in a loop of its own,
 * at addresses the test keeps itself (the registry is frozen with Redis), each answer kept with its send and receive time.
 */
function sampleHealthz(urls: Map<string, string>) {
  const samples = new Map<string, HealthSample[]>(SAMPLED.map((id) => [id, []]));
  let stopped = false;
  const one = async (id: string) => {
    const sentAt = Date.now();
    const url = urls.get(id);
    const sample: HealthSample = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) })
      .then(async (res) => {
        const reasons = ((await res.json()) as { reasons?: string[] }).reasons;
        // A killed process's port is free for any process on the machine (other test files
        // run beside this one): an answer counts only when it is the sampled service that gave it.
        const stats = (await fetch(`${url}/stats`, { signal: AbortSignal.timeout(2000) }).then((r) =>
          r.json(),
        )) as { id?: string };
        if (stats.id !== id) return { sentAt, at: Date.now(), status: 'down' as const };
        return { sentAt, at: Date.now(), status: res.status, reasons };
      })
      .catch(() => ({ sentAt, at: Date.now(), status: 'down' as const }));
    samples.get(id)!.push(sample);
  };
  // One loop per service: a service slow to answer (a jobmanager waiting on a cut-off daemon,
  // up to the 2 s timeouts) must not hold back the samples of the others.
  const loop = Promise.all(
    SAMPLED.map(async (id) => {
      while (!stopped) {
        await one(id);
        await delay(100);
      }
    }),
  );
  return {
    samples,
    latest: (id: string) => samples.get(id)!.at(-1),
    /**
     * Runs of 503 answers per service: from the first 503 (sent; `firstAt` received) to the
     * last (received).
     */
    windows(id: string): { from: number; firstAt: number; to: number; reasons: string[] }[] {
      const runs: { from: number; firstAt: number; to: number; reasons: string[] }[] = [];
      let open: (typeof runs)[number] | null = null;
      for (const s of samples.get(id)!) {
        if (s.status === 503) {
          if (!open) {
            open = { from: s.sentAt, firstAt: s.at, to: s.at, reasons: s.reasons ?? [] };
            runs.push(open);
          }
          open.to = s.at;
        } else open = null;
      }
      return runs;
    },
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** What a stratum process logged about each block candidate (every incarnation, whole run). */
interface CandidateLog {
  incarnation: string;
  hash: string;
  jobId: string;
  /** When the stratum server handed it on (its log time). */
  at: number;
  outcome?: { at: number; msg: string; verdict?: string; reason?: string; shareId?: string };
}

describe('chaos (issue 15 acceptance)', () => {
  it('20 miners through HAProxy while one of each service is SIGKILLed, then every jobmanager, then Redis frozen 15 s, then the peer link cut: every accepted share credited once, height rising again within the failover bound after each fault, every block candidate answered, /healthz 503 exactly while there was no fresh work', async () => {
    const started = Date.now();
    const rel = (t: number) => Math.round((t - started) / 100) / 10;
    const p: Pool = await startTestPool({
      diff: DIFF,
      jobmanagerTtlMs: SERVICE_TTL_MS,
      serviceTtlMs: SERVICE_TTL_MS,
      jobHeartbeatMs: HEARTBEAT_MS,
      jobmanagerExtra: {
        leaseTtlMs: LEASE_TTL_MS,
        refreshIntervalMs: REFRESH_MS,
        templateGraceMs: TEMPLATE_GRACE_MS,
      },
      jobFeedExtra: { maxJobAgeMs: MAX_JOB_AGE_MS },
    });
    const rpc = p.ltc.rpc[0]!;
    const height = () => rpc.getBlockCount();

    // Block candidate lines of every stratum process, all of them (the harness keeps a tail).
    const candidates = new Map<string, CandidateLog>();
    const sigkilled = new Set<string>();
    const incarnations = new Map<string, number>();
    const follow = (service: ServiceProcess) => {
      const id = service.ready.id;
      const incarnation = `${id}#${(incarnations.get(id) ?? 0) + 1}`;
      incarnations.set(id, (incarnations.get(id) ?? 0) + 1);
      if (service.kind !== 'stratum') return incarnation;
      createInterface({ input: service.child.stderr! }).on('line', (line) => {
        if (!line.includes('block')) return;
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          return;
        }
        const msg = String(entry.msg);
        if (msg === 'stratum: block candidate') {
          const hash = String(entry.hash);
          candidates.set(hash, { incarnation, hash, jobId: String(entry.jobId), at: Number(entry.time) });
        } else if (
          msg === 'stratum: block candidate answered' ||
          msg === 'stratum: block candidate stale, no jobmanager answered' ||
          msg === 'stratum: block submission failed'
        ) {
          const hash = String(entry.hash);
          const request = entry.request as { shareId?: string } | undefined;
          const known = candidates.get(hash) ?? {
            incarnation,
            hash,
            jobId: String(entry.jobId),
            at: Number.NaN,
          };
          known.outcome = {
            at: Number(entry.time),
            msg,
            ...(entry.verdict !== undefined && { verdict: String(entry.verdict) }),
            ...(entry.reason !== undefined && { reason: String(entry.reason) }),
            ...(request?.shareId && { shareId: request.shareId }),
          };
          candidates.set(hash, known);
        }
      });
      return incarnation;
    };
    const live = new Map<string, string>(); // id → incarnation label
    for (const service of p.running.values()) live.set(service.ready.id, follow(service));

    const urls = new Map<string, string>();
    const readUrl = async (kind: 'stratum' | 'jobmanager', id: string) => {
      urls.set(id, (await p.redis.hget(p.keys.service(kind, id), 'http'))!);
    };
    for (const id of STRATUM_IDS) await readUrl('stratum', id);
    for (const id of JOBMANAGER_IDS) await readUrl('jobmanager', id);

    const group = await p.startMiners({
      tag: 'x',
      workers: MINERS,
      firstAddress: 2,
      hashesPerSecond: HASHES_PER_S,
    });
    const { miners } = group;
    /** Accepted shares go on: the miners are back at work. */
    const progress = async (what: string, shares = 10) => {
      const target = miners.stats().total.accepted + shares;
      await miners
        .until((st) => st.total.accepted >= target, 30_000)
        .catch((error: Error) => {
          throw new Error(`${what}: ${error.message}`);
        });
    };
    const height0 = await height();
    await waitFor(async () => (await height()) >= height0 + 3, {
      timeoutMs: 30_000,
      what: 'blocks through the pool before the first fault',
    });

    const healthz = sampleHealthz(urls);
    const haproxy = sampleBackendHealth(p.front, 250);
    const faults: Fault[] = [];

    /** Resolves with the ms from `since` to the first block above `above`. */
    const nextBlock = async (above: number, since: number, what: string) => {
      await waitFor(async () => (await height()) > above, {
        timeoutMs: 60_000,
        intervalMs: 100,
        what: `a block above ${above} ${what}`,
      });
      return Date.now() - since;
    };
    /** Every sampled service answers `status` (after `since`): ms from `since`. */
    const allAnswer = async (
      status: number,
      ids: string[],
      since: number,
      timeoutMs: number,
      what: string,
    ) => {
      await waitFor(
        () =>
          ids.every((id) => {
            const s = healthz.latest(id);
            return s !== undefined && s.sentAt >= since && s.status === status;
          }),
        { timeoutMs, intervalMs: 50, what },
      );
      return Date.now() - since;
    };
    const kinds = new Map([...p.running.values()].map((s) => [s.ready.id, s.kind]));
    /** Starts a killed service again under its id (the supervisor). */
    const restart = async (id: string) => {
      const kind = kinds.get(id)!;
      live.set(id, follow(await p.startService(kind, id)));
      return kind;
    };
    const kill = async (id: string) => {
      sigkilled.add(live.get(id)!);
      await killService(p.running.get(id)!);
      p.running.delete(id);
    };

    // 1–3. One of each service SIGKILLed, each after the last one recovered. The other of its
    //      kind serves meanwhile: the chain goes on rising before the restart.
    const leader = (
      await Promise.all(
        JOBMANAGER_IDS.map(async (id) => ({
          id,
          leader: (await p.http<{ leader: boolean }>('jobmanager', id, '/stats')).body.leader,
        })),
      )
    ).find((j) => j.leader)!.id;
    for (const id of ['st-1', leader, 'rep-1']) {
      const start = Date.now();
      const atStart = await height();
      await kill(id);
      const failoverMs = await nextBlock(atStart, start, `after ${id} was killed`);
      await delay(SUPERVISOR_DELAY_MS);
      const kind = await restart(id);
      const end = Date.now();
      const atEnd = await height();
      await p.waitHealthy(id, 30_000);
      const healthyMs = Date.now() - end;
      if (kind !== 'reporter') await readUrl(kind, id);
      const heightMs = await nextBlock(atEnd, end, `after ${id} restarted`);
      await progress(`mining after ${id} restarted`);
      faults.push({
        name: `SIGKILL ${id} (${kind}${id === leader ? ', leader' : ''})`,
        poolServes: true,
        killed: [id],
        start,
        end,
        failoverMs,
        healthyMs,
        heightMs,
        heights: { atStart, atEnd },
      });
    }

    // 4. Every jobmanager at once (a host reboot), started again by the supervisor.
    {
      const start = Date.now();
      const atStart = await height();
      await Promise.all(JOBMANAGER_IDS.map(kill));
      await delay(SUPERVISOR_DELAY_MS);
      await Promise.all(JOBMANAGER_IDS.map(restart));
      const end = Date.now();
      const atEnd = await height();
      await Promise.all(JOBMANAGER_IDS.map((id) => p.waitHealthy(id, 30_000)));
      const healthyMs = Date.now() - end;
      for (const id of JOBMANAGER_IDS) await readUrl('jobmanager', id);
      const healthz200Ms = await allAnswer(
        200,
        SAMPLED,
        end,
        60_000,
        'every service 200 after the jobmanagers restarted',
      );
      const heightMs = await nextBlock(atEnd, end, 'after every jobmanager restarted');
      await progress('mining after the jobmanagers restarted');
      faults.push({
        name: 'SIGKILL every jobmanager',
        poolServes: false,
        killed: [...JOBMANAGER_IDS],
        start,
        end,
        healthyMs,
        healthz200Ms,
        heightMs,
        heights: { atStart, atEnd },
      });
    }

    // 5. Redis frozen 15 s (a VM pause): blocks still reach the daemons; no job can be
    //    published, so the stratum servers suspend once their work is MAX_JOB_AGE_MS old.
    {
      const pid = p.redisServer!.pid;
      const start = Date.now();
      const atStart = await height();
      process.kill(pid, 'SIGSTOP');
      let atEnd: number;
      try {
        await allAnswer(503, STRATUM_IDS, start, FREEZE_MS, 'both stratum servers 503 during the freeze');
        await delay(start + FREEZE_MS - Date.now());
        // Found during the freeze and taken by litecoind without Redis.
        atEnd = await height();
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      const end = Date.now();
      const healthz200Ms = await allAnswer(200, SAMPLED, end, 60_000, 'every service 200 after the freeze');
      const heightMs = await nextBlock(atEnd, end, 'after Redis came back');
      await progress('mining after the freeze');
      faults.push({
        name: `Redis frozen ${FREEZE_MS / 1000} s`,
        poolServes: false,
        killed: [],
        start,
        end,
        healthz200Ms,
        heightMs,
        heights: { atStart, atEnd },
      });
    }

    // 6. The daemons' peer link cut: they answer RPC but refuse templates ("not connected").
    {
      const start = Date.now();
      const atStart = await height();
      await Promise.all(p.ltc.rpc.map((c) => c.call('setnetworkactive', [false])));
      let atEnd: number;
      let noPeersAt: number;
      try {
        // The daemons give templates until their peers are gone: the bounds count from then.
        await waitFor(
          async () =>
            (await Promise.all(p.ltc.rpc.map((c) => c.call<number>('getconnectioncount')))).every(
              (n) => n === 0,
            ),
          { timeoutMs: 10_000, intervalMs: 50, what: 'both nodes without peers' },
        );
        noPeersAt = Date.now();
        await allAnswer(
          503,
          SAMPLED,
          noPeersAt,
          Math.max(STRATUM_503_BOUND_MS, JOBMANAGER_503_BOUND_MS) + 30_000,
          'every stratum server and jobmanager 503 with the peers cut',
        );
        await delay(CUT_HOLD_MS);
        atEnd = await height();
      } finally {
        await Promise.all(p.ltc.rpc.map((c) => c.call('setnetworkactive', [true])));
        // The testkit's nodes were joined with onetry: joined again as chain-stall does.
        await p.ltc.connect();
      }
      const end = Date.now();
      const healthz200Ms = await allAnswer(
        200,
        SAMPLED,
        end,
        60_000,
        'every service 200 with the peers back',
      );
      const heightMs = await nextBlock(atEnd, end, 'with the peers back');
      await progress('mining with the peers back');
      faults.push({
        name: 'peer link cut',
        poolServes: false,
        killed: [],
        start,
        end,
        noTemplatesFrom: noPeersAt,
        healthz200Ms,
        heightMs,
        heights: { atStart, atEnd },
      });
    }

    await healthz.stop();
    await haproxy.stop();

    // Settle: the miners stop; nothing may stay held at a stratum server.
    const stoppedAt = Date.now();
    await miners.stop();
    const stratumCounts: Record<string, StratumBlockCounts> = {};
    await waitFor(
      async () => {
        for (const id of STRATUM_IDS) stratumCounts[id] = await stratumBlockCounts(p, id);
        return Object.values(stratumCounts).every((c) => c.held === 0 && c.submitted === c.candidates);
      },
      { timeoutMs: 30_000, what: 'no block candidate left waiting at a stratum server' },
    );
    for (const id of STRATUM_IDS) await p.stopService(id);

    // Records written after their submission (queued through the freeze) are all in.
    const records = await waitFor(
      async () => {
        const all = await blockRecords(p);
        return all.every((r) => r.state !== 'submitted') && all;
      },
      { timeoutMs: 15_000, what: 'every block record past submitted' },
    ).catch(async () => await blockRecords(p));
    const recordByHash = new Map(records.map((r) => [r.hash, r]));
    const recordByShare = new Map(records.map((r) => [r.shareId, r]));

    const freeze = faults.find((f) => f.name.startsWith('Redis'))!;
    const cut = faults.find((f) => f.name === 'peer link cut')!;

    // Shares, one by one.
    const logged = await readLoggedShares(p.redis, p.keys, CHAIN);
    const ledger = compareShares(miners.shares(), logged);
    const loggedByKey = new Map(logged.map((s) => [submissionKey(s), s]));

    // Every candidate a miner saw accepted, and what became of it.
    const problems: string[] = [];
    const fates: Record<string, number> = {};
    const candidateShares = [...ledger.submitted.values()].filter(
      (s) => s.blockCandidate && s.answer === 'accepted',
    );
    const staleUnanswered = [...candidates.values()].filter(
      (c) => c.outcome?.msg === 'stratum: block candidate stale, no jobmanager answered',
    );
    const fateOf = (shareId: string | undefined, hash: string | undefined): string => {
      const record = (shareId && recordByShare.get(shareId)) || (hash && recordByHash.get(hash)) || undefined;
      if (record) {
        const what = `block ${record.hash} at ${record.height} (${record.jmId}, ${record.state}${record.reason ? `: ${record.reason}` : ''})`;
        if (record.state === 'accepted' || record.state === 'confirmed') return 'accepted';
        if (record.state === 'stale') {
          if (!/^stale: its parent [0-9a-f]{64} was no longer the tip/.test(record.reason ?? ''))
            problems.push(`${what}: stale without the daemons' tip as its reason`);
          return 'stale';
        }
        if (record.state === 'orphaned') {
          // A reporter moves an accepted block that left the main chain to orphaned.
          if (!record.reason && (record.confirmations ?? 0) < 0)
            return 'orphaned (accepted, then reorganised away)';
          if (!/^orphaned: a sibling/.test(record.reason ?? ''))
            problems.push(`${what}: orphaned without the daemons' reason`);
          return 'orphaned';
        }
        // Reported with litecoind's view below, with every record left so.
        return record.state;
      }
      const stale = staleUnanswered.find((c) => c.outcome?.shareId === shareId || c.hash === hash);
      if (stale) return 'stale (no jobmanager answered before the chain moved on)';
      return 'unanswered';
    };
    for (const s of candidateShares) {
      const share = loggedByKey.get(submissionKey(s));
      const fate = fateOf(share?.shareId, undefined);
      fates[fate] = (fates[fate] ?? 0) + 1;
      if (fate === 'unanswered') {
        problems.push(
          `candidate share ${share?.shareId ?? '(not credited)'} (${describeShares([s])[0]}) has no block record and no stale line`,
        );
      }
    }
    // Every candidate a stratum process handed on: answered, or (in flight when that process
    // was SIGKILLed) recorded by a jobmanager.
    const stratumFates: Record<string, number> = {};
    for (const c of candidates.values()) {
      let fate: string;
      if (c.outcome?.msg === 'stratum: block candidate answered') fate = c.outcome.verdict ?? 'answered';
      else if (c.outcome?.msg === 'stratum: block candidate stale, no jobmanager answered') fate = 'stale';
      else if (c.outcome) {
        fate = 'unanswered';
        problems.push(`candidate ${c.hash} of ${c.incarnation}: ${c.outcome.reason}`);
      } else if (sigkilled.has(c.incarnation) && recordByHash.has(c.hash)) {
        fate = `in flight at the kill, ${recordByHash.get(c.hash)!.state}`;
      } else {
        fate = 'unanswered';
        problems.push(`candidate ${c.hash} of ${c.incarnation} (job ${c.jobId}) was never answered`);
      }
      stratumFates[fate] = (stratumFates[fate] ?? 0) + 1;
    }
    const frozenCandidates = [...candidates.values()].filter(
      (c) => c.at >= freeze.start && c.at < freeze.end,
    );
    const frozenLate = frozenCandidates
      .filter((c) => !(c.outcome?.msg === 'stratum: block candidate answered' && c.outcome.at < freeze.end))
      .map((c) => `${c.hash} of ${c.incarnation} at ${rel(c.at)} s: ${JSON.stringify(c.outcome)}`);
    const blocksByState: Record<string, number> = {};
    for (const r of records) {
      const key = r.state === 'rejected' ? `rejected: ${r.reason}` : r.state;
      blocksByState[key] = (blocksByState[key] ?? 0) + 1;
      if (r.state !== 'submitted' && r.state !== 'rejected') continue;
      // What litecoind says of it, for the failure message.
      const header = await rpc
        .call<{ confirmations: number }>('getblockheader', [r.hash])
        .then((h) => `litecoind has it with ${h.confirmations} confirmations`)
        .catch((error: Error) => `litecoind: ${error.message}`);
      const killedAround = faults
        .filter((f) => f.killed.includes(r.jmId) && Math.abs(f.start - r.submittedAt) < 10_000)
        .map((f) => `; "${f.name}" ${f.start - r.submittedAt} ms after its submission`);
      problems.push(
        `block ${r.hash} at ${r.height} (${r.jmId}) left ${r.state}${r.reason ? `: ${r.reason}` : ''} (${header}${killedAround.join('')})`,
      );
    }

    // /healthz: 503 only inside a fault the pool could not serve through (up to its recovery
    // bound), or from a process in its own restart; and 503 throughout the part of the freeze
    // and of the cut past the staleness bounds.
    const healthProblems: string[] = [];
    const allowed = (id: string, from: number, to: number) =>
      faults.some(
        (f) =>
          (!f.poolServes || f.killed.includes(id)) &&
          to >= f.start &&
          from <= f.end + (f.poolServes ? (f.healthyMs ?? 0) : FAILOVER_BOUND_MS),
      );
    const windows: Record<string, { from: number; to: number; reason: string }[]> = {};
    for (const id of SAMPLED) {
      windows[id] = healthz.windows(id).map((w) => ({
        from: rel(w.from),
        to: rel(w.to),
        reason: w.reasons.join('; ').slice(0, 160),
      }));
      for (const w of healthz.windows(id)) {
        if (!allowed(id, w.from, w.to))
          healthProblems.push(
            `${id} answered 503 from ${rel(w.from)} s to ${rel(w.to)} s, outside any fault: ${w.reasons.join('; ')}`,
          );
      }
    }
    // Where fresh work stopped (every fault the pool could not serve through), from the jobs the
    // leaders created (each in Redis with its `createdAt`; ids are the hex of the job sequence):
    // the longest gap between two jobs across the fault. A stratum server answers 503 once its
    // newest job is MAX_JOB_AGE_MS old (not before, within its bound) until the next job; a
    // jobmanager within its grace of the daemons refusing templates (the cut), until the peers
    // are back; and each is 200 again soon after (RESUME_BOUND_MS).
    const jobSeq = Number.parseInt((await p.redis.get(p.keys.jobSequence(CHAIN))) ?? '0', 10);
    const jobTexts = await Promise.all(
      Array.from({ length: jobSeq }, (_, i) => p.redis.hget(p.keys.job(CHAIN, (i + 1).toString(16)), 'job')),
    );
    const jobsCreated = jobTexts
      .flatMap((t) => (t ? [(JSON.parse(t) as { createdAt: number }).createdAt] : []))
      .sort((a, b) => a - b);
    const gapOf = (f: Fault) => {
      let gap = { from: f.start, to: f.end };
      for (let i = 1; i < jobsCreated.length; i++) {
        const [a, b] = [jobsCreated[i - 1]!, jobsCreated[i]!];
        if (b > f.start && a < f.end && b - a > gap.to - gap.from) gap = { from: a, to: b };
      }
      return gap;
    };
    const went503: Record<string, Record<string, number>> = {};
    const gaps: Record<string, { lastJobMs: number; nextJobMs: number }> = {};
    const stale = (
      f: Fault,
      ids: string[],
      from: number,
      until: number,
      boundMs: number,
      notBeforeMs: number,
    ) => {
      for (const id of ids) {
        // Its run of 503s for this gap (one starting after the next job belongs to no gap here).
        const run = healthz.windows(id).find((w) => w.to >= f.start && w.from <= until);
        if (run) went503[f.name] = { ...went503[f.name], [id]: run.firstAt - from };
        if (run && run.firstAt - from < notBeforeMs)
          healthProblems.push(
            `${id} answered 503 ${run.firstAt - from} ms into "${f.name}", before ${notBeforeMs} ms: ${run.reasons.join('; ')}`,
          );
        if (run && run.to > until + RESUME_BOUND_MS)
          healthProblems.push(
            `${id} still answered 503 ${run.to - until} ms after the next job of "${f.name}"`,
          );
        // A gap longer than the bound must have been seen, to its end.
        if (until - from <= boundMs) continue;
        if (!run || run.firstAt - from > boundMs)
          healthProblems.push(
            `${id} answered 503 ${run ? `only ${run.firstAt - from} ms` : 'never'} into "${f.name}", bound ${boundMs} ms`,
          );
        const wrong = healthz.samples
          .get(id)!
          .filter((s) => s.sentAt >= from + boundMs && s.at <= until && s.status !== 503);
        if (wrong.length > 0)
          healthProblems.push(
            `${id} answered ${wrong.map((s) => s.status).join(',')} at ${wrong.map((s) => rel(s.sentAt)).join(',')} s during "${f.name}", past its bound`,
          );
      }
    };
    for (const f of faults.filter((f) => !f.poolServes)) {
      const gap = gapOf(f);
      gaps[f.name] = { lastJobMs: gap.from - f.start, nextJobMs: gap.to - f.start };
      stale(f, STRATUM_IDS, gap.from, gap.to, STRATUM_503_BOUND_MS, MAX_JOB_AGE_MS - SLACK_MS);
      if (f.noTemplatesFrom !== undefined) {
        // Its last template may have come with the last job; none before the daemons refused;
        // templates again once the peers are back (before the next job is out).
        const from = Math.max(f.noTemplatesFrom, gap.from);
        const until = Math.min(gap.to, f.end);
        stale(f, JOBMANAGER_IDS, from, until, JOBMANAGER_503_BOUND_MS, f.noTemplatesFrom - from);
      }
    }
    // No share is accepted while every stratum server is suspended.
    const allSuspended = (t: number) =>
      STRATUM_IDS.every((id) => {
        const before = healthz.samples
          .get(id)!
          .filter((s) => s.at <= t)
          .at(-1);
        return before?.status === 503;
      });
    const acceptedWhileSuspended = [...ledger.submitted.values()].filter(
      (s) =>
        s.answer === 'accepted' && allSuspended(s.submittedAt - 200) && allSuspended(s.submittedAt + 200),
    );
    const zeroHealthyOutsideFaults = haproxy.zeroHealthy.filter(
      (z) => !faults.some((f) => !f.poolServes && z.at >= f.start && z.at <= f.end + FAILOVER_BOUND_MS),
    );

    console.log(
      JSON.stringify({
        test: 'chaos',
        seconds: Math.round((Date.now() - started) / 1000),
        failoverBoundMs: FAILOVER_BOUND_MS,
        shares: {
          submitted: ledger.submitted.size,
          answers: ledger.answers,
          credited: logged.length,
          noAnswerCredited: ledger.noAnswerCredited,
          rejectedByCode: miners.stats().total.rejectedByCode,
        },
        candidates: {
          minersAccepted: miners.stats().total.blockCandidatesAccepted,
          fates,
          atStratum: stratumFates,
          duringFreeze: {
            found: frozenCandidates.length,
            judgedBeforeThaw: frozenCandidates.length - frozenLate.length,
            accepted: frozenCandidates.filter((c) => c.outcome?.verdict === 'accepted').length,
          },
          stratumCountsEnd: stratumCounts,
        },
        blocks: blocksByState,
        heights: { height0, end: await height() },
        faults: faults.map((f) => ({
          name: f.name,
          at: rel(f.start),
          ms: f.end - f.start,
          ...(f.failoverMs !== undefined && { failoverMs: f.failoverMs }),
          ...(f.healthyMs !== undefined && { healthyMs: f.healthyMs }),
          ...gaps[f.name],
          ...(f.noTemplatesFrom !== undefined && { noTemplatesMs: f.noTemplatesFrom - f.start }),
          // From the newest job (stratum servers), from no templates (jobmanagers), to 503.
          ...(went503[f.name] && { went503Ms: went503[f.name] }),
          ...(f.healthz200Ms !== undefined && { healthz200Ms: f.healthz200Ms }),
          heightMs: f.heightMs,
          heights: f.heights,
        })),
        healthz503: windows,
        haproxy: { samples: haproxy.samples, zeroHealthy: haproxy.zeroHealthy.length },
        stoppedAt: rel(stoppedAt),
      }),
    );

    // Every check is reported (expect.soft), not only the first that fails.
    // Money: every accepted share credited once, nothing else.
    expect.soft(describeShares(ledger.lost), 'shares miners saw accepted but never credited').toEqual([]);
    expect.soft(ledger.doubled, 'submissions credited more than once').toEqual([]);
    expect.soft(ledger.doubledIds, 'share ids logged twice').toEqual([]);
    expect.soft(describeShares(ledger.unknown), 'credited shares no miner submitted').toEqual([]);
    expect
      .soft(
        describeShares(ledger.creditedRejections),
        'credited shares the miner was told were rejected (stale while suspended)',
      )
      .toEqual([]);
    expect
      .soft(describeShares(acceptedWhileSuspended), 'shares accepted while every server was suspended')
      .toEqual([]);
    // The chain: rising again within the bound after every fault, and past it after single kills.
    for (const f of faults) {
      expect
        .soft(f.heightMs, `${f.name}: ms to the next block once it was over`)
        .toBeLessThanOrEqual(FAILOVER_BOUND_MS);
      if (f.failoverMs !== undefined)
        expect
          .soft(f.failoverMs, `${f.name}: ms to the next block without it`)
          .toBeLessThanOrEqual(FAILOVER_BOUND_MS);
      if (f.healthz200Ms !== undefined)
        expect
          .soft(f.healthz200Ms, `${f.name}: ms to /healthz 200 everywhere`)
          .toBeLessThanOrEqual(FAILOVER_BOUND_MS);
    }
    // Blocks found in the freeze reached litecoind without Redis: each judged before the thaw.
    expect.soft(frozenCandidates.length, 'block candidates found during the freeze').toBeGreaterThan(0);
    expect.soft(frozenLate, 'candidates of the freeze judged only after it').toEqual([]);
    // Blocks: every candidate judged.
    expect.soft(candidateShares.length).toBe(miners.stats().total.blockCandidatesAccepted);
    expect.soft(problems, 'block candidates').toEqual([]);
    for (const c of Object.values(stratumCounts)) {
      expect.soft(c.unanswered, 'candidates a stratum server gave up unanswered').toBe(0);
      expect.soft(c.accepted! + c.rejected! + c.stale! + c.orphaned!).toBe(c.candidates);
    }
    // Health: 503 exactly while there was no fresh work.
    expect.soft(healthProblems, '/healthz').toEqual([]);
    expect.soft(zeroHealthyOutsideFaults, 'HAProxy without a healthy server outside the faults').toEqual([]);
  }, 400_000);
});
