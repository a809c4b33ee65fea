import { type ChildProcess, spawn } from 'node:child_process';
import { type WriteStream, createWriteStream, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The pool's services as the demo runs them: each built bin in its own process, its JSON config
 * in its env var, stdout and stderr appended to `<logDir>/<id>.log`. Each is started in its own
 * process group, so a Ctrl-C in the terminal reaches the demo only and the demo stops them in
 * order (miners, stratum, reporters, jobmanagers) instead of all at once.
 */

export type ServiceKind = 'jobmanager' | 'stratum' | 'reporter';

/** Built entries, found beside this package (`src/` under vitest, `dist/` when built). */
const BINS: Record<ServiceKind, string> = {
  jobmanager: fileURLToPath(new URL('../../jobmanager/dist/bin.js', import.meta.url)),
  stratum: fileURLToPath(new URL('../../stratum/dist/bin.js', import.meta.url)),
  reporter: fileURLToPath(new URL('../../reporter/dist/bin.js', import.meta.url)),
};

const CONFIG_ENV: Record<ServiceKind, string> = {
  jobmanager: 'HASHWIRE_JOBMANAGER_CONFIG',
  stratum: 'HASHWIRE_STRATUM_CONFIG',
  reporter: 'HASHWIRE_REPORTER_CONFIG',
};

export interface ServiceExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface DemoService {
  readonly kind: ServiceKind;
  readonly id: string;
  readonly pid: number;
  readonly logFile: string;
  /** The `ready` line the service printed (`endpoint`, `port`, …). */
  readonly ready: Record<string, unknown>;
  /** Resolves when the process has exited, whoever stopped it. */
  readonly exited: Promise<ServiceExit>;
  readonly running: boolean;
  /** SIGTERM (the service drains), SIGKILL after `deadlineMs`; resolves once it exited. */
  stop(deadlineMs: number): Promise<ServiceExit>;
}

export interface StartServiceOptions {
  kind: ServiceKind;
  id: string;
  config: Record<string, unknown>;
  logDir: string;
  /** How long to wait for the `ready` line before giving up on the service. */
  readyTimeoutMs: number;
}

/** Processes started here and not yet exited: killed outright if the demo itself exits first. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

/** The bins are run from their build output; say how to get it instead of a module-not-found trace. */
export function checkBinsBuilt(): void {
  const missing = Object.values(BINS).filter((bin) => !existsSync(bin));
  if (missing.length > 0) {
    throw new Error(
      `the services are not built (missing ${missing.join(', ')}): run "pnpm build" (./hashwire demo builds by itself)`,
    );
  }
}

async function logTail(file: string, lines = 15): Promise<string> {
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

/** Runs one service's bin and resolves on its `ready` line; rejects with its log tail if it exits or hangs first. */
export async function startService(options: StartServiceOptions): Promise<DemoService> {
  const { kind, id, logDir } = options;
  const logFile = join(logDir, `${id}.log`);
  const log: WriteStream = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(process.execPath, [BINS[kind]], {
    env: { ...process.env, [CONFIG_ENV[kind]]: JSON.stringify(options.config) },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  installExitHook();
  running.add(child);
  let exit: ServiceExit | undefined;
  const exited = new Promise<ServiceExit>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      running.delete(child);
      resolve(exit);
    });
  });
  // Output is copied to the log until the pipes close; the ready line is picked out of stdout.
  let closedStreams = 0;
  const closeLog = () => {
    if (++closedStreams === 2) log.end();
  };
  let onReady: ((ready: Record<string, unknown>) => void) | undefined;
  let partial = '';
  child.stdout.on('data', (chunk: Buffer) => {
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
  child.stderr.on('data', (chunk: Buffer) => log.write(chunk));
  child.stdout.once('close', closeLog);
  child.stderr.once('close', closeLog);

  type Outcome =
    | { is: 'ready'; ready: Record<string, unknown> }
    | { is: 'spawn-error'; error: Error }
    | { is: 'exited' }
    | { is: 'timeout' };
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race<Outcome>([
    new Promise((resolve) => {
      onReady = (ready) => resolve({ is: 'ready', ready });
    }),
    new Promise((resolve) => child.once('error', (error) => resolve({ is: 'spawn-error', error }))),
    exited.then(() => ({ is: 'exited' })),
    new Promise((resolve) => {
      timer = setTimeout(() => resolve({ is: 'timeout' }), options.readyTimeoutMs);
    }),
  ]);
  clearTimeout(timer);
  onReady = undefined;
  if (outcome.is === 'spawn-error') {
    running.delete(child);
    log.end();
    throw new Error(`${kind} ${id} could not be started: ${outcome.error.message}`);
  }
  if (outcome.is !== 'ready') {
    if (!exit) {
      child.kill('SIGKILL');
      await exited;
    }
    const why =
      outcome.is === 'timeout'
        ? `printed no ready line within ${options.readyTimeoutMs / 1000} s`
        : `exited (${exit?.code ?? exit?.signal}) before it was ready`;
    throw new Error(`${kind} ${id} ${why}; ${logFile}:\n${await logTail(logFile)}`);
  }

  return {
    kind,
    id,
    pid: child.pid as number,
    logFile,
    ready: outcome.ready,
    exited,
    get running() {
      return exit === undefined;
    },
    async stop(deadlineMs: number) {
      if (exit) return exit;
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), deadlineMs);
      try {
        return await exited;
      } finally {
        clearTimeout(kill);
      }
    },
  };
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
