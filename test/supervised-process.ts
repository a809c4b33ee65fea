import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';

// What the supervisor stand-ins (circus-run.ts for circusd, systemd-run.ts for systemd) have in
// common: splitting a command line into words, starting a program with its output appended to
// files, starting it again when it exits, and stopping it with a signal and SIGKILL after a
// deadline.

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export function exited(child: ChildProcess): Promise<Exit> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

const C_ESCAPES: Record<string, string> = {
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  s: ' ',
  '\\': '\\',
  '"': '"',
  "'": "'",
};

/** systemd.syntax(7)'s C-style escape at `line[i]` (the backslash): its value and its length. */
function cEscape(line: string, i: number): [string, number] {
  const c = line[i + 1];
  if (c !== undefined && c in C_ESCAPES) return [C_ESCAPES[c] as string, 2];
  const hex = /^x([0-9a-fA-F]{2})/.exec(line.slice(i + 1));
  if (hex) return [String.fromCharCode(Number.parseInt(hex[1] as string, 16)), 4];
  throw new Error(`escape \\${c ?? ''} in ${line}: not one this stand-in reads (systemd.syntax(7) has more)`);
}

/**
 * Splits a command line into words as Python's `shlex.split` (POSIX mode, what circusd uses)
 * or as systemd unquotes a setting (systemd.syntax(7), "Quoting": a quote opens only at the
 * start of a word and closes only before whitespace or the end; C-style escapes everywhere).
 */
export function splitWords(line: string, dialect: 'shlex' | 'systemd' = 'shlex'): string[] {
  const systemd = dialect === 'systemd';
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if ((c === "'" || c === '"') && (!systemd || !inWord)) {
      inWord = true;
      for (i++; i < line.length && line[i] !== c; i++) {
        if (line[i] === '\\' && systemd) {
          const [value, length] = cEscape(line, i);
          word += value;
          i += length - 1;
          continue;
        }
        const next = line[i + 1];
        if (line[i] === '\\' && c === '"' && (next === '"' || next === '\\' || next === '$')) i++;
        word += line[i];
      }
      if (i >= line.length) throw new Error(`unclosed ${c} in ${line}`);
      if (systemd && i + 1 < line.length && !/\s/.test(line[i + 1] as string))
        throw new Error(`systemd: a closing ${c} must end its word, in ${line}`);
    } else if (c === '\\' && i + 1 < line.length) {
      if (systemd) {
        const [value, length] = cEscape(line, i);
        word += value;
        i += length - 1;
      } else {
        word += line[++i];
      }
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

export interface SpawnOptions {
  cwd?: string;
  env: NodeJS.ProcessEnv;
  /** Files the output is appended to (the same file for both is fine); without one it is read and dropped. */
  stdout?: string;
  stderr?: string;
  /** In a process group of its own, so that the group can be signalled (what a cgroup is to systemd). */
  group?: boolean;
}

/** Starts `argv` with its output appended to files. A missing program shows as an exit. */
export function spawnLogged(argv: string[], options: SpawnOptions): ChildProcess {
  const child = spawn(argv[0] as string, argv.slice(1), {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.group ?? false,
  });
  child.on('error', () => {});
  for (const stream of ['stdout', 'stderr'] as const) {
    const file = options[stream];
    if (file) child[stream]?.pipe(createWriteStream(file, { flags: 'a' }));
    else child[stream]?.resume();
  }
  return child;
}

export interface SupervisedProcess {
  child: ChildProcess;
  /** Starts of this process (1, then one more per restart). */
  starts: number;
  /** Exit code or signal of the last exit, once it exited. */
  lastExit?: Exit;
}

interface Supervision {
  stopping: boolean;
  restartTimer?: NodeJS.Timeout;
}
const supervisions = new WeakMap<SupervisedProcess, Supervision>();

/**
 * Starts a process with `start` and starts it again each time it exits, after the delay
 * `restartDelayMs` gives for that exit (`undefined`: it stays down), until it is stopped.
 */
export function supervise<P extends SupervisedProcess>(
  start: () => ChildProcess,
  restartDelayMs: (process: P) => number | undefined,
  fields: Omit<P, keyof SupervisedProcess>,
): P {
  const supervision: Supervision = { stopping: false };
  const running = { ...fields, starts: 0 } as P;
  const run = () => {
    const child = start();
    running.child = child;
    running.starts++;
    child.once('exit', (code, signal) => {
      running.lastExit = { code, signal };
      if (supervision.stopping) return;
      const delay = restartDelayMs(running);
      if (delay === undefined) return;
      supervision.restartTimer = setTimeout(() => {
        if (!supervision.stopping) run();
      }, delay);
    });
  };
  run();
  supervisions.set(running, supervision);
  return running;
}

/** No more restarts for this process (a pending one is cancelled): what a stop begins with. */
export function endRestarts(running: SupervisedProcess): void {
  const supervision = supervisions.get(running);
  if (!supervision) return;
  supervision.stopping = true;
  clearTimeout(supervision.restartTimer);
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops a supervised process for good: `signal` to it, SIGKILL after `deadlineMs`. With
 * `group` (started with `group: true`) it is stopped once its whole process group is gone, and
 * the SIGKILL goes to the group. `killed` says whether the SIGKILL was needed.
 */
export async function stopSupervised(
  running: SupervisedProcess,
  signal: NodeJS.Signals,
  deadlineMs: number,
  group = false,
): Promise<Exit & { killed: boolean }> {
  endRestarts(running);
  const { child } = running;
  const done = exited(child);
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  const deadline = Date.now() + deadlineMs;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), deadlineMs);
  });
  let killed = (await Promise.race([done, timeout])) === 'timeout';
  clearTimeout(timer);
  const pgid = child.pid;
  if (group && pgid !== undefined) {
    // What is left of the group after the main process: no event says when it is gone, so look.
    while (!killed && groupAlive(pgid) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (groupAlive(pgid)) {
      killed = true;
      process.kill(-pgid, 'SIGKILL');
    }
  } else if (killed) {
    child.kill('SIGKILL');
  }
  return { ...(await done), killed };
}
