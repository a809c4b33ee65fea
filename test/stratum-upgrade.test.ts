import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getService } from '@hashwire/registry';
import type { SimShare } from '@hashwire/testkit';
import { describe, expect, it } from 'vitest';
import { StratumSocket, grindShare } from './hostile-clients.js';
import { CHAIN, type MinerGroup, startTestPool } from './pool-harness.js';
import {
  answerIssues,
  compareShares,
  describeShares,
  expectCreditedOnce,
  readLoggedShares,
} from './share-ledger.js';

// Issue 20: the stratum code of a running service replaced twice while miners mine through
// HAProxy, with `hashwire upgrade stratum` against the service's master (the process `hashwire
// run stratum` runs): to a build that differs (a copy of this checkout's build with another
// version) and back. No miner's TCP connection may close; every share a miner saw accepted is
// credited once; no answer takes longer than 1 s during a switch; a half-sent line is processed
// once; a build that fails at start changes nothing; a session resumed after a real disconnect
// gets its extranonce1 back.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'packages/cli/dist/bin.js');
const DIFF = 2 ** -9;
const MINERS = Number(process.env.HASHWIRE_UPGRADE_MINERS ?? 1000);
/** No answer during a switch may take longer (the issue's bound). */
const ANSWER_BOUND_MS = 1000;

/** A copy of this checkout's build (dist and package files), its stratum version changed. */
function copyBuild(version: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'hw-build-'));
  cpSync(join(ROOT, 'packages'), join(dir, 'packages'), {
    recursive: true,
    verbatimSymlinks: true,
    filter: (src) => !/\/packages\/[^/]+\/(src|test)(\/|$)/.test(src),
  });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  const pkgFile = join(dir, 'packages/stratum/package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { version: string };
  writeFileSync(pkgFile, JSON.stringify({ ...pkg, version }, null, 2));
  return dir;
}

/** `hashwire upgrade stratum <id>` as an operator runs it; its exit code and output. */
function upgradeCommand(id: string, socket: string, build: string, json = false) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(
      process.execPath,
      [CLI, 'upgrade', 'stratum', id, '--socket', socket, '--build', build, ...(json ? ['--json'] : [])],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Rejections of shares submitted in [from, to], by the server's message. */
function rejectedBetween(shares: readonly SimShare[], from: number, to: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of shares) {
    if (s.submittedAt < from || s.submittedAt > to || s.answer !== 'rejected') continue;
    const what = `${s.code} ${s.message}`;
    counts[what] = (counts[what] ?? 0) + 1;
  }
  return counts;
}

/** The slowest answer among shares submitted in [from, to], and when it was submitted (ms after `from`). */
function worstAnswer(shares: readonly SimShare[], from: number, to: number): { ms: number; atMs: number } {
  let worst = { ms: 0, atMs: 0 };
  for (const s of shares) {
    if (s.submittedAt < from || s.submittedAt > to || s.answeredAt === null) continue;
    const ms = s.answeredAt - s.submittedAt;
    if (ms > worst.ms) worst = { ms, atMs: s.submittedAt - from };
  }
  return worst;
}

describe('upgrading the stratum code without disconnecting a miner (issue 20)', () => {
  it(`${MINERS} miners through HAProxy stay connected across two upgrades (another build and back): every accepted share credited once, no answer over 1 s, a half-sent line processed once, a failed start changes nothing, resume keeps its extranonce1`, async () => {
    const started = Date.now();
    const p = await startTestPool({ diff: DIFF, stratumMaster: true, stratumIds: ['st-1'] });
    const builds = [copyBuild('0.1.0-upgrade-test'), copyBuild('0.1.0-broken')];
    // A build whose stratum bin fails at start, as a broken release would.
    writeFileSync(
      join(builds[1]!, 'packages/stratum/dist/bin.js'),
      "process.stderr.write('stratum: this build refuses to start (test)\\n');\nprocess.exit(1);\n",
    );
    try {
      const master = p.running.get('st-1')!;
      const control = String(master.ready.control);
      const masterPid = master.child.pid;
      const version = async () => (await getService(p.redis, p.keys, 'stratum', 'st-1'))?.version;
      const workerPid = async () =>
        (await p.http<{ worker: { pid: number } }>('stratum', 'st-1', '/stats')).body.worker.pid;
      const versionBefore = await version();

      const group: MinerGroup = await p.startMiners({
        tag: 'w',
        workers: MINERS,
        firstAddress: 2,
        hashesPerSecond: Number(process.env.HASHWIRE_UPGRADE_HASHRATE ?? 1500),
      });
      const { miners } = group;
      const progress = async (what: string, shares = 60) => {
        const target = miners.stats().total.accepted + shares;
        await miners
          .until((s) => s.total.accepted >= target, 60_000)
          .catch((error: Error) => {
            throw new Error(`${what}: ${error.message}; miners ${JSON.stringify(miners.stats().total)}`);
          });
      };
      await progress('mining before the upgrades');

      // A miner of its own that has sent half a submit when the switch begins.
      const half = (await StratumSocket.open(p.front.port, '127.0.1.1'))!;
      expect(await half.handshake(`${p.account}.half`)).toBe(true);
      expect(await half.job()).not.toBeNull();
      const params = grindShare(half, 1)!;
      const submitId = 9001;
      const line = `${JSON.stringify({ id: submitId, method: 'mining.submit', params: [`${p.account}.half`, ...params] })}\n`;
      let halfAnswers = 0;
      let halfReply: { result?: unknown; error?: unknown } | null = null;
      half.socket.on('data', (chunk) => {
        for (const text of String(chunk).split('\n')) {
          if (!text.includes(`"id":${submitId}`)) continue;
          halfAnswers++;
          halfReply = JSON.parse(text);
        }
      });
      half.write(line.slice(0, 40));

      // Upgrade 1: to the other build.
      const switches: {
        what: string;
        from: number;
        to: number;
        worstMs: number;
        worstAtMs: number;
        worstMovingMs: number;
        result: Record<string, unknown>;
      }[] = [];
      const upgrade = async (what: string, build: string) => {
        const from = Date.now();
        const run = await upgradeCommand('st-1', control, build, true);
        const to = Date.now();
        expect(run.code, `${what}: ${run.stderr}`).toBe(0);
        const result = JSON.parse(run.stdout) as Record<string, unknown>;
        switches.push({ what, from, to, worstMs: 0, worstAtMs: 0, worstMovingMs: 0, result });
        return result;
      };
      const first = await upgrade('to the copied build', builds[0]!);
      expect(first.toVersion).toBe('0.1.0-upgrade-test');
      half.write(line.slice(40));
      await progress('mining after the first upgrade');
      expect(await version()).toBe('0.1.0-upgrade-test');
      expect(half.closed, 'the half-line miner was disconnected').toBe(false);
      expect(halfAnswers, 'answers to the half-sent submit').toBe(1);
      // Processed: accepted, or stale when regtest's blocks replaced its job during the switch.
      const halfAccepted = (halfReply as { result?: unknown } | null)?.result === true;
      if (!halfAccepted) expect((halfReply as { error?: unknown[] } | null)?.error?.[0]).toBe(21);

      // A failed start: the broken build's worker exits at once; the old one keeps serving.
      const pidBefore = await workerPid();
      const failed = await upgradeCommand('st-1', control, builds[1]!);
      expect(failed.code).toBe(1);
      expect(failed.stderr).toContain('this build refuses to start (test)');
      expect(failed.stderr).toContain('keeps serving');
      await progress('mining after the failed upgrade');
      expect(await workerPid()).toBe(pidBefore);
      expect(await version()).toBe('0.1.0-upgrade-test');

      // Upgrade 2: back to this checkout's build.
      await upgrade('back to this build', ROOT);
      await progress('mining after the second upgrade');
      expect(await version()).toBe(versionBefore);
      expect(master.child.exitCode).toBeNull();
      expect(master.child.pid).toBe(masterPid);

      // A real disconnect: the session resumes with its extranonce1, on the current worker.
      const resumeFrom = (await StratumSocket.open(p.front.port, '127.0.1.2'))!;
      expect(await resumeFrom.handshake(`${p.account}.resume`)).toBe(true);
      const { sessionId, extranonce1 } = resumeFrom;
      resumeFrom.close();
      const resumed = (await StratumSocket.open(p.front.port, '127.0.1.2'))!;
      expect(await resumed.handshake(`${p.account}.resume`, sessionId)).toBe(true);
      expect(resumed.extranonce1).toBe(extranonce1);
      // One live owner: the claim names the one connection's process.
      const claim = await p.redis.get(p.keys.extranonce1(CHAIN, extranonce1));
      expect(claim?.startsWith(`${sessionId}|st-1.`)).toBe(true);
      resumed.close();

      // Taken before the miners stop (stopping is a disconnect of its own).
      const disconnects = [...group.disconnects];
      const reconnects = [...group.reconnects];
      const halfClosed = half.closed;
      const stoppedAt = Date.now();
      await miners.stop();
      half.close();
      await p.stopService('st-1');

      const shares = miners.shares();
      for (const s of switches) {
        const worst = worstAnswer(shares, s.from, s.to);
        s.worstMs = worst.ms;
        s.worstAtMs = worst.atMs;
        // While sessions move and the spool changes hands (after the new worker's start).
        s.worstMovingMs = worstAnswer(shares, s.from + Number(s.result.startMs), s.to).ms;
      }
      const all = await readLoggedShares(p.redis, p.keys, CHAIN);
      // The half-sent submit, credited once (the sim miners' ledger is checked apart).
      const halfCredited = all.filter((s) => s.worker === 'half');
      expect(halfCredited.map((s) => s.extranonce2)).toEqual(halfAccepted ? [params[1]] : []);
      const logged = all.filter((s) => s.worker !== 'half');
      const ledger = compareShares(shares, logged);
      const answers = answerIssues(ledger.submitted.values(), stoppedAt);
      console.log(
        JSON.stringify({
          test: 'stratum-upgrade',
          miners: MINERS,
          seconds: Math.round((Date.now() - started) / 1000),
          submitted: ledger.submitted.size,
          answers: ledger.answers,
          rejectedByCode: answers.rejectedByCode,
          credited: logged.length,
          switches: switches.map((s) => ({
            what: s.what,
            ms: s.to - s.from,
            worstAnswerMs: s.worstMs,
            worstAnswerSubmittedAtMs: s.worstAtMs,
            worstAnswerWhileMovingMs: s.worstMovingMs,
            answered: shares.filter((x) => x.submittedAt >= s.from && x.submittedAt <= s.to).length,
            rejected: rejectedBetween(shares, s.from, s.to),
            result: s.result,
          })),
          failedUpgrade: failed.stderr.trim(),
          halfLine: halfReply,
          disconnects: disconnects.length,
          reconnects: reconnects.length,
        }),
      );
      // The issue's bound: no answer takes longer than 1 s during a switch (worst measured since
      // the listening socket is handed to the worker: 0.23–0.46 s, in CI too).
      for (const s of switches) {
        expect(
          s.worstMs,
          `${s.what}: the slowest answer to a share submitted during the switch, ms`,
        ).toBeLessThan(ANSWER_BOUND_MS);
      }
      expect(disconnects, 'disconnects seen by the miners').toEqual([]);
      expect(reconnects, 'reconnects seen by the miners').toEqual([]);
      expect(halfClosed, 'the half-line miner was disconnected').toBe(false);
      expectCreditedOnce(ledger, answers.unanswered);
      expect(describeShares(answers.notStale), 'shares rejected for another reason than a stale job').toEqual(
        [],
      );
    } finally {
      for (const dir of builds) rmSync(dir, { recursive: true, force: true });
    }
  }, 600_000);
});
