import { existsSync, readdirSync, rmSync } from 'node:fs';
import { main } from '@hashwire/cli';
import { liveProcesses } from '@hashwire/testkit';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

let out: string;
/** Called after every write; lets a test wait for a line. */
let onOutput: (() => void) | undefined;
const logDirs: string[] = [];

beforeEach(() => {
  out = '';
  onOutput = undefined;
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    onOutput?.();
    return true;
  });
});
afterEach(() => {
  vi.restoreAllMocks();
  for (const dir of logDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const lines = () => out.split('\n');

const STATUS =
  /^\[\d+s\] miners (\d+)\/20 · [\d.]+ k?H\/s · shares (\d+) accepted, (\d+) stale.* · credited (\d+) · blocks (\d+) found, (\d+) accepted.* · height (\d+)$/;
const SUMMARY =
  /^demo done after \d+ s: 20 miners · shares (\d+) accepted, (\d+) stale.* · credited (\d+) · blocks (\d+) found, (\d+) accepted.* · height (\d+) · (.*)$/;

/** The pids of the service processes, from the start lines. */
function servicePids(): number[] {
  const starts = lines().filter((l) => /^\[[345]\/6\]/.test(l));
  return starts.flatMap((l) => [...l.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1])));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The printed log directory, removed after the test. */
function logDir(): string {
  const dir = lines()
    .map((l) => l.match(/^logs: (\S+)$/)?.[1])
    .find((d) => d !== undefined);
  expect(dir).toBeDefined();
  logDirs.push(dir!);
  return dir!;
}

function expectNothingLeft(pids: number[]): void {
  expect(pids).toHaveLength(6);
  expect(liveProcesses()).toEqual([]);
  expect(pids.filter(alive)).toEqual([]);
}

describe('hashwire demo', () => {
  it('starts the pool step by step, mines, credits and finds blocks, and stops by itself with nothing left', async () => {
    expect(await main(['demo', '--duration', '8', '--interval', '2'])).toBe(0);

    expect(out).toContain(
      'not built yet, so not started: HAProxy on :3333, the api and the dashboard; the miners connect to the stratum servers directly',
    );
    // One line per start step, in order.
    const steps = lines().filter((l) => /^\[\d\/6\]/.test(l));
    expect(steps.map((l) => l.slice(0, 5))).toEqual(['[1/6]', '[2/6]', '[3/6]', '[4/6]', '[5/6]', '[6/6]']);
    expect(steps[1]).toMatch(/litecoind regtest x2, MWEB active/);
    expect(steps[2]).toMatch(/jobmanagers jm-1 tcp:\/\/127\.0\.0\.1:\d+ \(pid \d+\), jm-2 /);
    expect(steps[5]).toMatch(/^\[6\/6\] 20 sim miners .* 10 on each of :\d+, :\d+/);
    // Where to look.
    const ports = [...out.matchAll(/stratum\+tcp:\/\/127\.0\.0\.1:(\d+) \(stratum-\d\)/g)].map((m) => m[1]);
    expect(new Set(ports).size).toBe(2);
    expect(out).toMatch(/username a regtest address \(e\.g\. rltc1\w+\.rig1\)/);
    const dir = logDir();
    expect(readdirSync(dir).sort()).toEqual(
      ['jm-1', 'jm-2', 'reporter-1', 'reporter-2', 'stratum-1', 'stratum-2'].map((id) => `${id}.log`),
    );

    // Live status lines while it runs.
    const status = lines()
      .map((l) => l.match(STATUS))
      .filter((m): m is RegExpMatchArray => m !== null);
    expect(status.length).toBeGreaterThanOrEqual(1);
    expect(status.every((m) => m[1] === '20')).toBe(true);

    // Ordered teardown, every service drained and exited 0.
    expect(out).toContain('stopped stratum-1 (exit 0), stratum-2 (exit 0)');
    expect(out).toContain('stopped reporter-1 (exit 0), reporter-2 (exit 0)');
    expect(out).toContain('stopped jm-1 (exit 0), jm-2 (exit 0)');

    // The summary is read after the stratum servers handed their spools to the reporters:
    // every share a miner saw accepted is credited, and at least one block got in.
    const summary = lines()
      .map((l) => l.match(SUMMARY))
      .find((m) => m !== null);
    expect(summary, out).toBeDefined();
    const [, accepted, , credited, found, blocksAccepted, height, left] = summary!;
    expect(Number(accepted)).toBeGreaterThanOrEqual(1);
    expect(Number(credited)).toBeGreaterThanOrEqual(Number(accepted));
    expect(Number(blocksAccepted)).toBeGreaterThanOrEqual(1);
    expect(Number(found)).toBeGreaterThanOrEqual(Number(blocksAccepted));
    expect(Number(height)).toBeGreaterThan(533);
    expect(left).toBe('no process left');
    expect(out).toContain(`logs kept in ${dir}`);
    expect(existsSync(`${dir}/stratum-1-spool`)).toBe(false);
    expectNothingLeft(servicePids());
  }, 90_000);

  it('stops everything on Ctrl-C and exits 0', async () => {
    const firstStatus = new Promise<void>((resolve) => {
      onOutput = () => {
        if (lines().some((l) => STATUS.test(l))) resolve();
      };
    });
    const sigintListeners = process.listenerCount('SIGINT');
    const run = main(['demo', '--interval', '1']);
    await Promise.race([
      firstStatus,
      run.then((code) => {
        throw new Error(`demo ended (exit ${code}) before its first status line:\n${out}`);
      }),
    ]);
    process.kill(process.pid, 'SIGINT');
    expect(await run).toBe(0);
    logDir();
    expect(out).toContain('SIGINT: stopping');
    expect(out).toContain('stopped stratum-1 (exit 0), stratum-2 (exit 0)');
    expect(lines().find((l) => SUMMARY.test(l))).toMatch(/ · no process left$/);
    expectNothingLeft(servicePids());
    expect(process.listenerCount('SIGINT')).toBe(sigintListeners);
  }, 90_000);

  it('refuses a bad duration with a one-line usage error', async () => {
    await expect(main(['demo', '--duration', 'soon'])).rejects.toThrow(
      '--duration must be a number of seconds above 0, got "soon"',
    );
  });
});
