import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RotatingLog } from './rotating-log.js';

/**
 * Runs a pool's processes locally, the way `hashwire up` and the demo do: each child in its own
 * process group (a terminal's Ctrl-C reaches only us, and we stop them in order), stdout and
 * stderr appended to `<logDir>/<name>.log` (rotated by size: `.1` … `.<logKeep>`), started once it says it is ready, restarted when it
 * exits on its own (at once after a clean exit, e.g. a `hashwire drain`; with a doubling backoff
 * after a crash), and stopped with SIGTERM then SIGKILL after its deadline.
 */

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ProcessSpec {
  /** Unique name: the log file and every lifecycle line use it. */
  name: string;
  /** Groups processes for ordered stopping (`stratum`, `reporter`, `jobmanager`, `haproxy`). */
  kind: string;
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  /**
   * How it says it is ready: a JSON line `{"ready":true,…}` on stdout (the service bins), or a
   * probe asked every 50 ms until it answers true (HAProxy's stats socket). @defaultValue 'line'
   */
  ready?: 'line' | ((pid: number) => Promise<boolean>);
  /** @defaultValue 30_000 */
  readyTimeoutMs?: number;
  /** Between SIGTERM and SIGKILL when stopping. @defaultValue 10_000 */
  stopDeadlineMs?: number;
  /** Start it again when it exits without being asked to. @defaultValue true */
  restart?: boolean;
  /** What asks it to stop gracefully (HAProxy: SIGUSR1, a soft stop). @defaultValue 'SIGTERM' */
  stopSignal?: NodeJS.Signals;
}

export interface SupervisorOptions {
  logDir: string;
  /** A child's log file is rotated once it holds this many bytes (at a line end). @defaultValue 50 MiB */
  logMaxBytes?: number;
  /** Rotated log files kept per child (`name.log.1` newest). @defaultValue 5 */
  logKeep?: number;
  /** Receives one line per lifecycle event. */
  write: (line: string) => void;
  /** First delay before restarting a crashed process; doubles per crash in a row. @defaultValue 500 */
  backoffInitialMs?: number;
  /** @defaultValue 30_000 */
  backoffMaxMs?: number;
  /** A process that stayed up this long has its backoff reset. @defaultValue 30_000 */
  stableAfterMs?: number;
}

/** One supervised process across its restarts. */
export interface Supervised {
  readonly spec: ProcessSpec;
  readonly logFile: string;
  /** The current (or last) process id. */
  readonly pid: number;
  /** Every pid it had, oldest first. */
  readonly pids: readonly number[];
  readonly restarts: number;
  /** The ready line of the current process (`{}` for a probe). */
  readonly ready: Record<string, unknown>;
  readonly running: boolean;
  /** Resolves when the current process has exited. */
  readonly exited: Promise<ProcessExit>;
  /** Stops it for good (no restart): SIGTERM, SIGKILL after the deadline. */
  stop(deadlineMs?: number): Promise<ProcessExit>;
}

/** A process that did not become ready: the message carries its log tail. */
export class ProcessStartError extends Error {
  override readonly name = 'ProcessStartError';
}

/** Children started here and not yet exited: killed outright if this process exits first. */
const children = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of children) child.kill('SIGKILL');
  });
}

export async function logTail(file: string, lines = 15): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

function readyLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const parsed = JSON.parse(line) as unknown;
    if (typeof parsed === 'object' && parsed !== null && (parsed as { ready?: unknown }).ready === true) {
      return parsed as Record<string, unknown>;
    }
  } catch {
    // A log line that only looks like JSON.
  }
  return undefined;
}

const exitText = (exit: ProcessExit) => (exit.code !== null ? `exit ${exit.code}` : `signal ${exit.signal}`);
const secondsSince = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;

interface Run {
  child: ChildProcess;
  exited: Promise<ProcessExit>;
  exit?: ProcessExit;
  ready: Record<string, unknown>;
  startedAt: number;
  /** Resolves when its stdout and stderr are closed: everything it wrote is in the log. */
  outputDone: Promise<void>;
}

/** Spawns one process and resolves once it is ready; a ProcessStartError with its log tail if it exits or hangs first. */
async function launch(spec: ProcessSpec, log: RotatingLog): Promise<Run> {
  const logFile = log.file;
  const child = spawn(spec.command, [...spec.args], {
    env: spec.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  installExitHook();
  children.add(child);
  let outputClosed = () => {};
  const run: Run = {
    child,
    exited: undefined as unknown as Promise<ProcessExit>,
    ready: {},
    startedAt: 0,
    outputDone: new Promise<void>((resolve) => {
      outputClosed = resolve;
    }),
  };
  run.exited = new Promise<ProcessExit>((resolve) => {
    child.once('exit', (code, signal) => {
      run.exit = { code, signal };
      children.delete(child);
      resolve(run.exit);
    });
  });
  let closed = 0;
  const closeLog = () => {
    if (++closed === 2) outputClosed();
  };
  let onReady: ((ready: Record<string, unknown>) => void) | undefined;
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    log.write(chunk);
    if (!onReady) return;
    partial += chunk.toString('utf8');
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const ready = readyLine(line);
      if (ready) {
        onReady(ready);
        break;
      }
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => log.write(chunk));
  child.stdout?.once('close', closeLog);
  child.stderr?.once('close', closeLog);

  type Outcome =
    | { is: 'ready'; ready: Record<string, unknown> }
    | { is: 'error'; error: Error }
    | { is: 'exited' }
    | { is: 'timeout' };
  const timeoutMs = spec.readyTimeoutMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;
  let probing = true;
  const readiness = new Promise<Outcome>((resolve) => {
    if (spec.ready === undefined || spec.ready === 'line') {
      onReady = (ready) => resolve({ is: 'ready', ready });
      return;
    }
    const probe = spec.ready;
    const ask = async () => {
      while (probing && !run.exit) {
        if (await probe(child.pid as number).catch(() => false)) return resolve({ is: 'ready', ready: {} });
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    void ask();
  });
  const outcome = await Promise.race<Outcome>([
    readiness,
    new Promise((resolve) => child.once('error', (error) => resolve({ is: 'error', error }))),
    run.exited.then(() => ({ is: 'exited' })),
    new Promise((resolve) => {
      timer = setTimeout(() => resolve({ is: 'timeout' }), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  probing = false;
  onReady = undefined;
  if (outcome.is === 'ready') {
    run.ready = outcome.ready;
    run.startedAt = performance.now();
    return run;
  }
  if (outcome.is === 'error') {
    children.delete(child);
    throw new ProcessStartError(`${spec.name} could not be started: ${outcome.error.message}`);
  }
  if (!run.exit) {
    child.kill('SIGKILL');
    await run.exited;
  }
  const why =
    outcome.is === 'timeout'
      ? `was not ready within ${timeoutMs / 1000} s`
      : `exited (${exitText(run.exit as ProcessExit)}) before it was ready`;
  throw new ProcessStartError(`${spec.name} ${why}; ${logFile}:\n${await logTail(logFile)}`);
}

export class Supervisor {
  readonly #options: SupervisorOptions;
  readonly #processes: Supervised[] = [];
  #stopping = false;

  constructor(options: SupervisorOptions) {
    this.#options = options;
  }

  get processes(): readonly Supervised[] {
    return this.#processes;
  }

  /** Starts a process and resolves once it is ready (then keeps it running); throws if the first start fails. */
  async start(spec: ProcessSpec): Promise<Supervised> {
    const { write } = this.#options;
    const logFile = join(this.#options.logDir, `${spec.name}.log`);
    // One writer per name across restarts: the size it tracks is the file's.
    const log = new RotatingLog({
      file: logFile,
      ...(this.#options.logMaxBytes !== undefined ? { maxBytes: this.#options.logMaxBytes } : {}),
      ...(this.#options.logKeep !== undefined ? { keep: this.#options.logKeep } : {}),
    });
    const since = performance.now();
    let run: Run;
    try {
      run = await launch(spec, log);
    } catch (error) {
      log.close();
      throw error;
    }
    write(`${spec.name} started (pid ${run.child.pid}), ready in ${secondsSince(since)}`);
    const pids: number[] = [run.child.pid as number];
    let restarts = 0;
    let wanted = true;
    let crashesInRow = 0;
    let restartTimer: NodeJS.Timeout | undefined;
    let exitedNow: Promise<ProcessExit> = run.exited;

    const watch = (current: Run) => {
      void current.exited.then((exit) => {
        if (!wanted || this.#stopping || spec.restart === false) return;
        const upFor = performance.now() - current.startedAt;
        if (exit.code === 0) crashesInRow = 0;
        else crashesInRow = upFor >= (this.#options.stableAfterMs ?? 30_000) ? 1 : crashesInRow + 1;
        const delayMs =
          crashesInRow === 0
            ? 0
            : Math.min(
                (this.#options.backoffInitialMs ?? 500) * 2 ** (crashesInRow - 1),
                this.#options.backoffMaxMs ?? 30_000,
              );
        write(
          exit.code === 0
            ? `${spec.name} exited 0 on its own (drained); restarting`
            : `${spec.name} exited on its own (${exitText(exit)}) after ${(upFor / 1000).toFixed(1)} s; restart in ${(delayMs / 1000).toFixed(1)} s; log ${logFile}`,
        );
        // Until the new process is up, `exited` stays resolved: it is not running.
        restartTimer = setTimeout(relaunch, delayMs);
      });
    };
    let launching: Promise<void> | undefined;
    const relaunch = () => {
      launching = relaunchNow().finally(() => {
        launching = undefined;
      });
    };
    const relaunchNow = async () => {
      restartTimer = undefined;
      if (!wanted || this.#stopping) return;
      const since = performance.now();
      try {
        const next = await launch(spec, log);
        restarts++;
        pids.push(next.child.pid as number);
        run = next;
        exitedNow = next.exited;
        write(
          `${spec.name} restarted (pid ${next.child.pid}, restart ${restarts}), ready in ${secondsSince(since)}`,
        );
        if (!wanted || this.#stopping) {
          // Stopped while it was starting: stop it now.
          await stopRun(next, spec.stopDeadlineMs ?? 10_000, spec.stopSignal);
          return;
        }
        watch(next);
      } catch (error) {
        crashesInRow++;
        const delayMs = Math.min(
          (this.#options.backoffInitialMs ?? 500) * 2 ** (crashesInRow - 1),
          this.#options.backoffMaxMs ?? 30_000,
        );
        write(`${(error as Error).message.split('\n')[0]}; next try in ${(delayMs / 1000).toFixed(1)} s`);
        restartTimer = setTimeout(relaunch, delayMs);
      }
    };
    watch(run);

    const supervised: Supervised = {
      spec,
      logFile,
      get pid() {
        return run.child.pid as number;
      },
      pids,
      get restarts() {
        return restarts;
      },
      get ready() {
        return run.ready;
      },
      get running() {
        return run.exit === undefined;
      },
      get exited() {
        return exitedNow;
      },
      stop: async (deadlineMs?: number) => {
        wanted = false;
        clearTimeout(restartTimer);
        // A restart under way finishes first, and stops what it started.
        await launching;
        const exit = await stopRun(run, deadlineMs ?? spec.stopDeadlineMs ?? 10_000, spec.stopSignal);
        // Closed once its last output is written (a grandchild may hold the pipes a while).
        void run.outputDone.then(() => log.close());
        return exit;
      },
    };
    this.#processes.push(supervised);
    return supervised;
  }

  /**
   * Stops everything, one group of kinds after the other (each group at once, in parallel),
   * then whatever kind was not named; one line per group with each exit and the time it took.
   */
  async stopAll(order: readonly string[]): Promise<void> {
    const unnamed = this.#processes.map((p) => p.spec.kind).filter((k) => !order.includes(k));
    await this.stopKinds([...order, ...new Set(unnamed)]);
  }

  /** Stops the processes of these kinds only, kind after kind; none of them restarts from now on. */
  async stopKinds(kinds: readonly string[]): Promise<void> {
    this.#stopping = true;
    for (const kind of kinds) {
      const group = this.#processes
        .filter((p) => p.spec.kind === kind)
        .sort((a, b) => a.spec.name.localeCompare(b.spec.name, 'en', { numeric: true }));
      if (group.length === 0) continue;
      const since = performance.now();
      const exits = await Promise.all(group.map((p) => p.stop()));
      this.#options.write(
        `stopped ${group.map((p, i) => `${p.spec.name} (${exitText(exits[i] as ProcessExit)})`).join(', ')} in ${secondsSince(since)}`,
      );
    }
  }
}

async function stopRun(
  run: Run,
  deadlineMs: number,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<ProcessExit> {
  if (run.exit) return run.exit;
  run.child.kill(signal);
  const kill = setTimeout(() => run.child.kill('SIGKILL'), deadlineMs);
  try {
    return await run.exited;
  } finally {
    clearTimeout(kill);
  }
}

/** Whether a process with this pid still exists (signal 0 only checks). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
