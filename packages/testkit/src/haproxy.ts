import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { socketCommand } from '@hashwire/core';
import { type ManagedProcess, makeTempDir, spawnManaged } from './process.js';
import { StopWaiting, waitFor } from './wait.js';

export interface HaproxyOptions {
  /** @defaultValue 'haproxy' */
  binary?: string;
  /** @defaultValue 10_000 */
  startTimeoutMs?: number;
}

export interface HaproxyInstance {
  /** Pid of the current haproxy process (changes on `reload`). */
  pid: number;
  /** Admin-level stats socket (runtime API): the config's own, or one the testkit added to `global`. */
  statsSocket: string;
  configFile: string;
  logFile: string;
  /** Sends one runtime API command and returns the answer. */
  command(line: string): Promise<string>;
  /** Hitless reload (`-sf <old pid> -x <stats socket>`) with a new config, or the same one. */
  reload(configText?: string): Promise<void>;
  /** Stops every haproxy process of this instance and removes its directory. */
  stop(): Promise<void>;
}

/** `haproxy -c` rejected the configuration; `output` is haproxy's own explanation. */
export class HaproxyConfigError extends Error {
  override readonly name = 'HaproxyConfigError';
  constructor(
    readonly output: string,
    readonly configFile: string,
  ) {
    super(`haproxy rejected ${configFile}:\n${output.trim()}`);
  }
}

/** One command on haproxy's runtime API socket (core's socketCommand, which confgen's HaproxyRuntime uses too). */
export function runtimeCommand(socketPath: string, line: string): Promise<string> {
  return socketCommand(socketPath, line);
}

const STATS_SOCKET = /^\s*stats\s+socket\s+(\S+)/m;

/**
 * Checks `configText` with `haproxy -c`, then runs haproxy in the foreground. A `global`
 * section gets an admin stats socket (with `expose-fd listeners`, for reloads) when the
 * config has none. Bind the listeners to ports from `getFreePort()`.
 */
export async function startHaproxy(
  configText: string,
  options: HaproxyOptions = {},
): Promise<HaproxyInstance> {
  const binary = options.binary ?? 'haproxy';
  const dir = await makeTempDir('haproxy');
  const logFile = path.join(dir, 'haproxy.log');
  const configFile = path.join(dir, 'haproxy.cfg');
  const withSocket = (text: string) => ensureStatsSocket(text, path.join(dir, 'admin.sock'));
  let text = withSocket(configText);
  const statsSocket = (text.match(STATS_SOCKET)?.[1] as string).replace(/^unix@/, '');
  await writeChecked(binary, configFile, text);

  const procs: ManagedProcess[] = [];
  const launch = async (extra: string[]) => {
    const proc = await spawnManaged('haproxy', binary, ['-db', '-f', configFile, ...extra], { logFile });
    procs.push(proc);
    await waitFor(
      async () => {
        if (!proc.running) throw new StopWaiting('haproxy exited');
        const info = await runtimeCommand(statsSocket, 'show info');
        return new RegExp(`^Pid: ${proc.pid}$`, 'm').test(info);
      },
      { timeoutMs: options.startTimeoutMs ?? 10_000, intervalMs: 20, what: 'haproxy stats socket' },
    ).catch(async (err: Error) => {
      await proc.stop({ deadlineMs: 2_000 });
      throw new Error(`haproxy did not start (${err.message}); log ${logFile}:\n${await proc.logTail(20)}`);
    });
    return proc;
  };
  let current = await launch([]);

  const instance: HaproxyInstance = {
    pid: current.pid,
    statsSocket,
    configFile,
    logFile,
    command: (line) => runtimeCommand(statsSocket, line),
    async reload(newText?: string) {
      if (newText !== undefined) {
        text = withSocket(newText);
        await writeChecked(binary, configFile, text);
      }
      current = await launch(['-sf', String(current.pid), '-x', statsSocket]);
      instance.pid = current.pid;
    },
    async stop() {
      await Promise.all(procs.map((p) => p.stop({ deadlineMs: 5_000 })));
      await rm(dir, { recursive: true, force: true });
    },
  };
  return instance;
}

function ensureStatsSocket(configText: string, socketPath: string): string {
  if (STATS_SOCKET.test(configText)) return configText;
  const line = `    stats socket ${socketPath} mode 600 level admin expose-fd listeners`;
  if (/^global\b.*$/m.test(configText)) return configText.replace(/^global\b.*$/m, (g) => `${g}\n${line}`);
  return `global\n${line}\n\n${configText}`;
}

async function writeChecked(binary: string, configFile: string, text: string): Promise<void> {
  await writeFile(configFile, text);
  const output = await new Promise<string | undefined>((resolve) => {
    execFile(binary, ['-c', '-f', configFile], (err, stdout, stderr) => {
      // A failure to run haproxy at all (ENOENT, EAGAIN) prints nothing: name the error instead.
      resolve(err ? `${stdout}${stderr}`.trim() || `${binary} -c failed: ${err.message}` : undefined);
    });
  });
  if (output !== undefined) throw new HaproxyConfigError(output, configFile);
}
