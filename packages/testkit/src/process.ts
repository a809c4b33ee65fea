import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * Every process and temporary directory the testkit creates is registered here, so it is torn
 * down even when a test fails: `stop()` in the test's own teardown, a synchronous kill and
 * removal on process exit, and a watchdog shell for when the test process is killed outright
 * (vitest killing a worker on timeout) and no exit handler runs.
 */

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** stdout and stderr are appended here. */
  logFile: string;
  /** Called with each line of stdout/stderr (for readiness messages). */
  onLine?: (line: string) => void;
}

export interface StopOptions {
  /** Time between SIGTERM and SIGKILL. @defaultValue 10_000 */
  deadlineMs?: number;
}

/** A child process owned by the testkit. */
export class ManagedProcess {
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  #exit: ExitInfo | undefined;

  constructor(
    readonly name: string,
    readonly logFile: string,
    private readonly child: ChildProcess,
  ) {
    this.pid = child.pid as number;
    this.exited = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        live.delete(this);
        writeRegistry();
        resolve(this.#exit);
      });
    });
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  /** SIGTERM, then SIGKILL if it is still running after the deadline. Resolves once it exited. */
  async stop(options: StopOptions = {}): Promise<ExitInfo> {
    if (!this.running) return this.exited;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), options.deadlineMs ?? 10_000);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The last `lines` lines of the log file, for error messages. */
  logTail(lines = 40): Promise<string> {
    return tailOf(this.logFile, lines);
  }
}

const live = new Set<ManagedProcess>();
let root: string | undefined;
let registryFile: string | undefined;
let watchdog: ChildProcess | undefined;

/** The per-process directory that holds every temporary directory of the testkit. */
function tmpRoot(): string {
  if (!root) {
    root = mkdtempSync(path.join(tmpdir(), 'hw-testkit-'));
    registryFile = path.join(root, '.pids');
    process.once('exit', cleanupSync);
    startWatchdog();
  }
  return root;
}

/** A new temporary directory, removed on process exit if not before. */
export function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(tmpRoot(), `${prefix}-`));
}

/** Starts `command` with output to `logFile`, registered for teardown. */
export function spawnManaged(
  name: string,
  command: string,
  args: readonly string[],
  options: SpawnOptions,
): Promise<ManagedProcess> {
  tmpRoot();
  const log = createWriteStream(options.logFile, { flags: 'a' });
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: a Ctrl-C in the terminal reaches only our process (the demo),
    // which then stops the daemons in order; teardown still kills them by pid.
    detached: true,
  });
  return new Promise((resolve, reject) => {
    child.once('error', (err) => {
      log.end();
      reject(new Error(`${name}: cannot start ${command}: ${err.message}`));
    });
    child.once('spawn', () => {
      const managed = new ManagedProcess(name, options.logFile, child);
      live.add(managed);
      writeRegistry();
      for (const stream of [child.stdout, child.stderr]) {
        let partial = '';
        stream?.on('data', (chunk: Buffer) => {
          log.write(chunk);
          if (!options.onLine) return;
          partial += chunk.toString('utf8');
          const lines = partial.split('\n');
          partial = lines.pop() ?? '';
          for (const line of lines) options.onLine(line);
        });
      }
      // 'close', not 'exit': output can still arrive after the process exited, until both pipes
      // are drained (writing to an ended log threw, uncaught, in a test run).
      child.once('close', () => log.end());
      resolve(managed);
    });
  });
}

/** Processes started by the testkit in this process and still running. */
export function liveProcesses(): { name: string; pid: number }[] {
  return [...live].map((p) => ({ name: p.name, pid: p.pid }));
}

/** Last `lines` lines of a file; '' when it does not exist. */
export async function tailOf(file: string, lines = 40): Promise<string> {
  try {
    return (await readFile(file, 'utf8'))
      .split('\n')
      .slice(-lines - 1)
      .join('\n');
  } catch {
    return '';
  }
}

function writeRegistry(): void {
  if (!registryFile) return;
  const pids = [...live].map((p) => p.pid).join('\n');
  try {
    writeFileSync(registryFile, pids ? `${pids}\n` : '');
  } catch {
    // The root is gone: we are exiting.
  }
}

function cleanupSync(): void {
  for (const p of live) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  live.clear();
  if (root) rmSync(root, { recursive: true, force: true });
  watchdog?.kill('SIGKILL');
}

// Kills what is left and removes the temporary root once this process is gone. Polling once a
// second costs nothing; it only acts when the exit handler could not run.
const WATCHDOG = `
while kill -0 "$1" 2>/dev/null; do sleep 1; done
if [ -f "$2/.pids" ]; then xargs -r kill -KILL < "$2/.pids" 2>/dev/null; fi
rm -rf "$2"
`;

function startWatchdog(): void {
  watchdog = spawn('/bin/sh', ['-c', WATCHDOG, 'hw-testkit-watchdog', String(process.pid), root as string], {
    detached: true,
    stdio: 'ignore',
  });
  watchdog.unref();
}
