import { existsSync, readdirSync, rmSync } from 'node:fs';
import { main } from '@hashwire/cli';
import { liveProcesses } from '@hashwire/testkit';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type CapturedOutput, captureOutput } from './capture-output.js';

let output: CapturedOutput;
/** Called after every write; lets a test wait for a line. */
let onOutput: (() => void) | undefined;
const logDirs: string[] = [];

beforeEach(() => {
  onOutput = undefined;
  output = captureOutput({ stderr: false, onWrite: () => onOutput?.() });
});
afterEach(() => {
  vi.restoreAllMocks();
  for (const dir of logDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const lines = () => output.out.split('\n');

const STATUS =
  /^\[\d+s\] miners (\d+)\/20 · [\d.]+ k?H\/s · shares (\d+) accepted, (\d+) stale.* · credited (\d+) · blocks (\d+) found, (\d+) accepted.* · height (\d+)$/;
const SUMMARY =
  /^demo done after \d+ s: 20 miners · shares (\d+) accepted, (\d+) stale.* · credited (\d+) · blocks (\d+) found, (\d+) accepted.* · height (\d+) · (.*)$/;

const SERVICES = [
  'api-1',
  ...['jobmanager', 'reporter', 'stratum'].flatMap((kind) =>
    [1, 2].map((k) => `${kind}-litecoin-regtest-${k}`),
  ),
];
/** The API's address at HAProxy, as the demo prints it. */
const API_LINE =
  /^ {2}api {9}(http:\/\/127\.0\.0\.1:\d+) \(HAProxy over api-1 http:\/\/127\.0\.0\.1:\d+\): /m;

/** The pids of HAProxy and the services, from the supervisor's start lines. */
function servicePids(): number[] {
  return lines().flatMap((l) => {
    const m = l.match(/^ {2}(\S+) started \(pid (\d+)\)/);
    return m ? [Number(m[2])] : [];
  });
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
  expect(pids).toHaveLength(8);
  expect(liveProcesses()).toEqual([]);
  expect(pids.filter(alive)).toEqual([]);
}

describe('hashwire demo', () => {
  it('starts the pool step by step, mines, credits and finds blocks, and stops by itself with nothing left', async () => {
    expect(await main(['demo', '--duration', '8', '--interval', '2'])).toBe(0);

    // The dashboard, served by the api at HAProxy's address.
    expect(output.out).toMatch(
      /^ {2}dashboard {3}http:\/\/127\.0\.0\.1:\d+\/ \(the pool\) · http:\/\/127\.0\.0\.1:\d+\/account\/<address> \(a miner\) · http:\/\/127\.0\.0\.1:\d+\/operator /m,
    );
    // The api's URL at HAProxy (8080 unless taken).
    expect(output.out).toMatch(API_LINE);
    // One line per start step, in order.
    const steps = lines().filter((l) => /^\[\d\/4\]/.test(l));
    expect(steps.map((l) => l.slice(0, 5))).toEqual(['[1/4]', '[2/4]', '[3/4]', '[4/4]']);
    expect(steps[1]).toMatch(/litecoind regtest x2, MWEB active/);
    const haproxyPort = steps[2]?.match(
      /^\[3\/4\] pool: HAProxy 127\.0\.0\.1:(\d+), 2 jobmanagers, 2 reporters, 2 stratum servers/,
    )?.[1];
    expect(haproxyPort, output.out).toBeDefined();
    // RPC runs with CURVE although the demo binds loopback, and says so.
    expect(steps[2]).toMatch(/; RPC with CURVE on, keys in \S+\/keys in [\d.]+ s$/);
    expect(output.out).toMatch(
      /^ {2}security {4}RPC CURVE \(encrypted, pool keys only\): jobmanager-litecoin-regtest-1 on, jobmanager-litecoin-regtest-2 on, reporter-litecoin-regtest-1 on, reporter-litecoin-regtest-2 on · POST \/drain needs the token in \S+\/keys\/admin\.token$/m,
    );
    if (haproxyPort !== '3333')
      expect(output.out).toContain(
        `127.0.0.1:3333 is taken (another demo?): HAProxy listens on 127.0.0.1:${haproxyPort} instead`,
      );
    expect(steps[3]).toMatch(
      new RegExp(`^\\[4/4\\] 20 sim miners .* through HAProxy 127\\.0\\.0\\.1:${haproxyPort} `),
    );
    // Every process started through the supervisor, HAProxy first.
    const started = lines().flatMap((l) => l.match(/^ {2}(\S+) started \(pid \d+\), ready in/)?.[1] ?? []);
    expect(started[0]).toBe('haproxy');
    expect(started.slice(1).sort()).toEqual(SERVICES);
    // Where to look: the public stratum address, and each service's /stats and /metrics.
    expect(output.out).toContain(
      `  miners      stratum+tcp://127.0.0.1:${haproxyPort} (HAProxy, balance source over stratum-litecoin-regtest-1 127.0.0.1:`,
    );
    expect(output.out).toMatch(/username a regtest address \(e\.g\. rltc1\w+\.rig1\)/);
    expect(output.out).toMatch(/^ {2}haproxy {5}stats page http:\/\/127\.0\.0\.1:\d+\/ · runtime API /m);
    for (const id of SERVICES) {
      expect(output.out).toMatch(
        new RegExp(`^ {4}${id} +(http://127\\.0\\.0\\.1:\\d+)/stats {2}\\1/metrics$`, 'm'),
      );
    }
    const dir = logDir();
    expect(readdirSync(dir)).toEqual(
      expect.arrayContaining([
        'haproxy.log',
        'haproxy.cfg',
        'pool.json',
        ...SERVICES.map((id) => `${id}.log`),
      ]),
    );

    // Live status lines while it runs.
    const status = lines()
      .map((l) => l.match(STATUS))
      .filter((m): m is RegExpMatchArray => m !== null);
    expect(status.length).toBeGreaterThanOrEqual(1);
    expect(status.every((m) => m[1] === '20')).toBe(true);

    // The miners went through HAProxy, spread over both stratum servers by their source address.
    const sessions = output.out.match(
      new RegExp(
        `^haproxy: (\\d+) miner connections through 127\\.0\\.0\\.1:${haproxyPort}: stratum-litecoin-regtest-1 (\\d+), stratum-litecoin-regtest-2 (\\d+)$`,
        'm',
      ),
    );
    expect(sessions, output.out).not.toBeNull();
    expect(Number(sessions![1])).toBeGreaterThanOrEqual(20);
    expect(Number(sessions![2])).toBeGreaterThan(0);
    expect(Number(sessions![3])).toBeGreaterThan(0);

    // Ordered teardown, every process drained and exited 0.
    const stops = lines()
      .filter((l) => l.startsWith('  stopped '))
      .map((l) => l.replace(/ in [\d.]+ s$/, ''));
    expect(stops).toEqual([
      '  stopped stratum-litecoin-regtest-1 (exit 0), stratum-litecoin-regtest-2 (exit 0)',
      '  stopped api-1 (exit 0)',
      '  stopped reporter-litecoin-regtest-1 (exit 0), reporter-litecoin-regtest-2 (exit 0)',
      '  stopped jobmanager-litecoin-regtest-1 (exit 0), jobmanager-litecoin-regtest-2 (exit 0)',
      '  stopped haproxy (exit 0)',
    ]);

    // The summary is read after the stratum servers handed their spools to the reporters:
    // every share a miner saw accepted is credited, and at least one block got in.
    const summary = lines()
      .map((l) => l.match(SUMMARY))
      .find((m) => m !== null);
    expect(summary, output.out).toBeDefined();
    const [, accepted, , credited, found, blocksAccepted, height, left] = summary!;
    expect(Number(accepted)).toBeGreaterThanOrEqual(1);
    expect(Number(credited)).toBeGreaterThanOrEqual(Number(accepted));
    expect(Number(blocksAccepted)).toBeGreaterThanOrEqual(1);
    expect(Number(found)).toBeGreaterThanOrEqual(Number(blocksAccepted));
    expect(Number(height)).toBeGreaterThan(533);
    expect(left).toBe('no process left');
    expect(output.out).toContain(`logs kept in ${dir}`);
    expect(existsSync(`${dir}/spool`)).toBe(false);
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
        throw new Error(`demo ended (exit ${code}) before its first status line:\n${output.out}`);
      }),
    ]);
    // The printed API address answers while the pool runs: the pool's chain, its miners online.
    const apiUrl = output.out.match(API_LINE)?.[1];
    expect(apiUrl, output.out).toBeDefined();
    const response = await fetch(`${apiUrl}/v1/pool`);
    expect(response.status).toBe(200);
    const pool = (await response.json()) as { chains: { chain: string }[] };
    expect(pool.chains.map((c) => c.chain)).toEqual(['litecoin-regtest']);
    process.kill(process.pid, 'SIGINT');
    expect(await run).toBe(0);
    logDir();
    expect(output.out).toContain('SIGINT: stopping');
    expect(output.out).toContain(
      '  stopped stratum-litecoin-regtest-1 (exit 0), stratum-litecoin-regtest-2 (exit 0)',
    );
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
