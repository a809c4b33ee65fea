import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  type HaproxyProcesses,
  type HaproxyReload,
  haproxyProcesses,
  reloadHaproxy,
  socketCommand,
} from '@hashwire/core';
import { makeTempDir, spawnManaged } from './process.js';
import { StopWaiting, waitFor } from './wait.js';

export interface HaproxyOptions {
  /** @defaultValue 'haproxy' */
  binary?: string;
  /** @defaultValue 10_000 */
  startTimeoutMs?: number;
}

export interface HaproxyInstance {
  /** Pid of the current worker (changes on `reload`). */
  pid: number;
  /** Pid of the master (`-W`): the process started, the same across reloads. */
  masterPid: number;
  /** Admin-level stats socket (runtime API of the current worker): the config's own, or one the testkit added to `global`. */
  statsSocket: string;
  /** The master CLI (`-S`): `show proc`, `reload`, `@!<pid> <command>` to any worker. */
  masterSocket: string;
  configFile: string;
  logFile: string;
  /** Sends one runtime API command to the current worker and returns the answer. */
  command(line: string): Promise<string>;
  /** The master CLI's `show proc`: the master, the current worker, old workers still serving. */
  processes(): Promise<HaproxyProcesses>;
  /**
   * Master-worker reload (`reload` on the master CLI) with a new config, or the same one;
   * resolves once the new worker answers on the stats socket. Throws HaproxyReloadError when
   * the master could not load it (the previous worker keeps serving).
   */
  reload(configText?: string): Promise<HaproxyReload>;
  /** Stops the master, which stops every worker, old ones included; removes its directory. */
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
 * Checks `configText` with `haproxy -c`, then runs haproxy in the foreground in master-worker
 * mode (`-W -db -S <master socket>`), as the pool runs it. A `global` section gets an admin
 * stats socket when the config has none. Bind the listeners to ports from `getFreePort()`.
 */
export async function startHaproxy(
  configText: string,
  options: HaproxyOptions = {},
): Promise<HaproxyInstance> {
  const binary = options.binary ?? 'haproxy';
  const timeoutMs = options.startTimeoutMs ?? 10_000;
  const dir = await makeTempDir('haproxy');
  const logFile = path.join(dir, 'haproxy.log');
  const configFile = path.join(dir, 'haproxy.cfg');
  const masterSocket = path.join(dir, 'master.sock');
  const withSocket = (text: string) => ensureStatsSocket(text, path.join(dir, 'admin.sock'));
  const text = withSocket(configText);
  const statsSocket = (text.match(STATS_SOCKET)?.[1] as string).replace(/^unix@/, '');
  await writeChecked(binary, configFile, text);

  // The stats socket answers with the worker's own pid: not an older worker's, nor a leftover socket's.
  const workerServes = async (pid: number) =>
    new RegExp(`^Pid: ${pid}$`, 'm').test(await runtimeCommand(statsSocket, 'show info'));
  const master = await spawnManaged(
    'haproxy',
    binary,
    ['-W', '-db', '-S', `${masterSocket},mode,600`, '-f', configFile],
    { logFile },
  );
  let worker = 0;
  await waitFor(
    async () => {
      if (!master.running) throw new StopWaiting('haproxy exited');
      const procs = await haproxyProcesses(masterSocket);
      const current = procs.workers[0];
      if (procs.master.pid !== master.pid || !current) return false;
      worker = current.pid;
      return workerServes(worker);
    },
    { timeoutMs, intervalMs: 20, what: 'haproxy master and worker' },
  ).catch(async (err: Error) => {
    await master.stop({ deadlineMs: 2_000 });
    throw new Error(`haproxy did not start (${err.message}); log ${logFile}:\n${await master.logTail(20)}`);
  });

  const instance: HaproxyInstance = {
    pid: worker,
    masterPid: master.pid,
    statsSocket,
    masterSocket,
    configFile,
    logFile,
    command: (line) => runtimeCommand(statsSocket, line),
    processes: () => haproxyProcesses(masterSocket),
    async reload(newText?: string) {
      if (newText !== undefined) await writeChecked(binary, configFile, withSocket(newText));
      const reloaded = await reloadHaproxy(masterSocket, { timeoutMs });
      // The new worker answers its master; the stats socket path is its own once it has bound it.
      await waitFor(() => workerServes(reloaded.workerPid), {
        timeoutMs,
        intervalMs: 20,
        what: `haproxy worker ${reloaded.workerPid} on the stats socket`,
      });
      instance.pid = reloaded.workerPid;
      return reloaded;
    },
    async stop() {
      await master.stop({ deadlineMs: 5_000 });
      await rm(dir, { recursive: true, force: true });
    },
  };
  return instance;
}

function ensureStatsSocket(configText: string, socketPath: string): string {
  if (STATS_SOCKET.test(configText)) return configText;
  const line = `    stats socket ${socketPath} mode 600 level admin`;
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
