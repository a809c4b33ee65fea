import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@hashwire/testkit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ProcessSpec, ProcessStartError, Supervisor, pidAlive } from '../src/supervisor.js';

/**
 * A small service: prints a ready line, exits 3 on SIGUSR2 (a crash), 0 on SIGUSR1 (as after a
 * drain), and on SIGTERM notes its name in the stop log before exiting 0.
 */
const CHILD = `
const fs = require('node:fs');
process.on('SIGTERM', () => { fs.appendFileSync(process.env.STOP_LOG, process.env.NAME + '\\n'); process.exit(0); });
process.on('SIGUSR1', () => process.exit(0));
process.on('SIGUSR2', () => process.exit(3));
console.error('booting ' + process.env.NAME);
if (process.env.FAIL) { console.error('cannot bind: ' + process.env.FAIL); process.exit(1); }
console.log(JSON.stringify({ ready: true, endpoint: 'tcp://x:' + process.pid }));
setInterval(() => {}, 1000);
`;

let dir: string;
let lines: string[];
let supervisor: Supervisor;

function spec(name: string, kind: string, extra: Partial<ProcessSpec> = {}): ProcessSpec {
  return {
    name,
    kind,
    command: process.execPath,
    args: ['-e', CHILD],
    env: { ...process.env, NAME: name, STOP_LOG: join(dir, 'stops') },
    readyTimeoutMs: 10_000,
    ...extra,
  };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hw-supervisor-'));
  lines = [];
  supervisor = new Supervisor({ logDir: dir, write: (line) => lines.push(line), backoffInitialMs: 200 });
});
afterEach(async () => {
  await supervisor.stopAll([]);
  rmSync(dir, { recursive: true, force: true });
});

describe('supervisor', () => {
  it('starts on the ready line, restarts a crash after a backoff and a clean exit at once, logs to a file', async () => {
    const jm = await supervisor.start(spec('jm-1', 'jobmanager'));
    expect(jm.ready).toEqual({ ready: true, endpoint: `tcp://x:${jm.pid}` });
    expect(lines).toEqual([
      expect.stringMatching(new RegExp(`^jm-1 started \\(pid ${jm.pid}\\), ready in [\\d.]+ s$`)),
    ]);

    const first = jm.pid;
    process.kill(first, 'SIGUSR2');
    await waitFor(() => jm.restarts === 1 && jm.running, { what: 'restart after the crash' });
    expect(jm.pid).not.toBe(first);
    expect(pidAlive(first)).toBe(false);
    expect(lines[1]).toMatch(
      /^jm-1 exited on its own \(exit 3\) after [\d.]+ s; restart in 0\.2 s; log .*jm-1\.log$/,
    );
    expect(lines[2]).toMatch(
      new RegExp(`^jm-1 restarted \\(pid ${jm.pid}, restart 1\\), ready in [\\d.]+ s$`),
    );

    const second = jm.pid;
    process.kill(second, 'SIGUSR1');
    await waitFor(() => jm.restarts === 2 && jm.running, { what: 'restart after the clean exit' });
    expect(lines[3]).toBe('jm-1 exited 0 on its own (drained); restarting');
    expect(jm.pids).toEqual([first, second, jm.pid]);

    // Each start of the process wrote to the same log (appended as its output arrives).
    const boots = () => readFileSync(jm.logFile, 'utf8').match(/booting jm-1/g)?.length;
    await waitFor(() => boots() === 3, { what: `3 boots in ${jm.logFile}` });
  });

  it('stops in the order given, each kind together, and nothing is left running', async () => {
    const started = await Promise.all([
      supervisor.start(spec('jm-1', 'jobmanager')),
      supervisor.start(spec('stratum-1', 'stratum')),
      supervisor.start(spec('reporter-1', 'reporter')),
      supervisor.start(spec('stratum-2', 'stratum')),
      supervisor.start(spec('haproxy', 'haproxy')),
    ]);
    await supervisor.stopAll(['stratum', 'reporter', 'jobmanager']);
    const stops = readFileSync(join(dir, 'stops'), 'utf8').trim().split('\n');
    expect(stops.slice(0, 2).sort()).toEqual(['stratum-1', 'stratum-2']);
    expect(stops.slice(2)).toEqual(['reporter-1', 'jm-1', 'haproxy']);
    expect(lines.filter((l) => l.startsWith('stopped ')).map((l) => l.replace(/ in [\d.]+ s$/, ''))).toEqual([
      'stopped stratum-1 (exit 0), stratum-2 (exit 0)',
      'stopped reporter-1 (exit 0)',
      'stopped jm-1 (exit 0)',
      'stopped haproxy (exit 0)',
    ]);
    expect(started.flatMap((p) => p.pids).filter(pidAlive)).toEqual([]);
  });

  it('does not restart once stopping, even a process that exits while the others stop', async () => {
    await supervisor.start(spec('stratum-1', 'stratum'));
    const jm = await supervisor.start(spec('jm-1', 'jobmanager'));
    await supervisor.stopKinds(['stratum']);
    // The jobmanager's turn has not come: only the supervisor's stopping keeps it from a restart,
    // which after a clean exit would be announced as soon as the exit is seen.
    process.kill(jm.pid, 'SIGUSR1');
    expect(await jm.exited).toEqual({ code: 0, signal: null });
    expect(lines.some((l) => l.includes('restart'))).toBe(false);
    await supervisor.stopKinds(['jobmanager']);
    expect(jm.restarts).toBe(0);
    expect(lines.at(-1)).toMatch(/^stopped jm-1 \(exit 0\) in/);
  });

  it('fails a start that exits before it is ready, with the log tail in the message', async () => {
    const failing = supervisor.start(
      spec('stratum-9', 'stratum', { env: { ...process.env, NAME: 'stratum-9', FAIL: 'port 23000 taken' } }),
    );
    await expect(failing).rejects.toThrow(ProcessStartError);
    await expect(failing).rejects.toThrow(
      /^stratum-9 exited \(exit 1\) before it was ready; .*stratum-9\.log:\nbooting stratum-9\ncannot bind: port 23000 taken$/,
    );
  });

  it('rotates a log by size at line ends, across restarts, keeping the configured number of files, losing no line', async () => {
    const maxBytes = 16 * 1024;
    const rotating = (keep: number) =>
      new Supervisor({
        logDir: dir,
        write: () => {},
        backoffInitialMs: 50,
        logMaxBytes: maxBytes,
        logKeep: keep,
      });
    // Numbered lines of ~100 bytes, each written in two pieces so pipe chunks end mid-line.
    const chatty = (name: string, lineCount: number) =>
      spec(name, 'stratum', {
        args: [
          '-e',
          `console.log(JSON.stringify({ ready: true }));
          const pad = 'x'.repeat(80);
          let i = 0;
          const more = () => {
            for (let n = 0; n < 200 && i < ${lineCount}; n++, i++) {
              const line = 'p' + process.pid + ' ' + i + ' ' + pad + '\\n';
              process.stdout.write(line.slice(0, 17));
              process.stdout.write(line.slice(17));
            }
            if (i < ${lineCount}) setImmediate(more);
            else console.log('done p' + process.pid);
          };
          more();
          process.on('SIGUSR2', () => process.exit(3));
          setInterval(() => {}, 1000);`,
        ],
      });
    const files = (name: string) =>
      readdirSync(dir)
        .filter((f) => f === `${name}.log` || f.startsWith(`${name}.log.`))
        .sort((a, b) => Number(b.split('.log.')[1] ?? 0) - Number(a.split('.log.')[1] ?? 0));
    const text = (name: string) =>
      files(name)
        .map((f) => readFileSync(join(dir, f), 'utf8'))
        .join('');
    const numbered = (name: string, pid: number) =>
      text(name)
        .split('\n')
        .filter((l) => l.startsWith(`p${pid} `))
        .map((l) => {
          expect(l).toMatch(new RegExp(`^p${pid} \\d+ x{80}$`));
          return Number(l.split(' ')[1]);
        });

    // Enough files for everything: every line of both runs is there, once, in order.
    const all = rotating(100);
    try {
      const logged = await all.start(chatty('st-all', 3000));
      const first = logged.pid;
      await waitFor(() => text('st-all').includes(`done p${first}\n`), { what: 'the first run written' });
      process.kill(first, 'SIGUSR2');
      await waitFor(() => logged.restarts === 1 && text('st-all').includes(`done p${logged.pid}\n`), {
        what: 'the second run written',
      });
      for (const pid of [first, logged.pid]) {
        expect(numbered('st-all', pid)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
      }
      const rotated = files('st-all').filter((f) => f !== 'st-all.log');
      // About 600 kB in 16 kB files.
      expect(rotated.length).toBeGreaterThan(20);
      for (const f of rotated) {
        const content = readFileSync(join(dir, f), 'utf8');
        // Full, and past the limit by at most the line that crossed it.
        expect(Buffer.byteLength(content), f).toBeGreaterThanOrEqual(maxBytes);
        expect(Buffer.byteLength(content), f).toBeLessThan(maxBytes + 120);
        expect(content.endsWith('\n'), f).toBe(true);
      }
    } finally {
      await all.stopAll([]);
    }

    // Two kept: the oldest go, what is kept is the newest lines without a gap.
    const few = rotating(2);
    try {
      const logged = await few.start(chatty('st-few', 3000));
      await waitFor(() => text('st-few').includes(`done p${logged.pid}\n`), { what: 'the run written' });
      expect(files('st-few')).toEqual(['st-few.log.2', 'st-few.log.1', 'st-few.log']);
      const kept = numbered('st-few', logged.pid);
      expect(kept.at(-1)).toBe(2999);
      expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => 3000 - kept.length + i));
      expect(kept.length).toBeLessThan(3000);
    } finally {
      await few.stopAll([]);
    }
  });

  it('waits for a probe instead of a ready line, and gives up after its timeout', async () => {
    let calls = 0;
    const probed = await supervisor.start(
      spec('haproxy', 'haproxy', {
        args: ['-e', 'setInterval(() => {}, 1000)'],
        ready: async () => ++calls >= 3,
      }),
    );
    expect(calls).toBe(3);
    expect(probed.ready).toEqual({});
    await expect(
      supervisor.start(
        spec('never', 'haproxy', {
          args: ['-e', 'setInterval(() => {}, 1000)'],
          ready: async () => false,
          readyTimeoutMs: 300,
        }),
      ),
    ).rejects.toThrow(/^never was not ready within 0\.3 s; /);
  });
});
