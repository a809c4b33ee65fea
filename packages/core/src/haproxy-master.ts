import { socketCommand } from './socket-command.js';

/*
 * HAProxy's master CLI (`haproxy -W -S <socket>`): which processes run, and the master-worker
 * reload. A reload re-executes the master (same pid) on the config file as it is now; the new
 * worker takes the listening sockets from the old one over the master's socketpair, so no
 * connection attempt is refused; the old workers stop accepting and leave once their last
 * connection has closed. Checked against HAProxy 2.6 (Debian 12): `reload` answers nothing, the
 * master CLI refuses connections while the master re-executes, and a config that fails to load
 * counts `[failed: N]` and leaves the current worker serving.
 */

/** One line of the master CLI's `show proc`. */
export interface HaproxyProcess {
  pid: number;
  /** Reloads this process has lived through (the master: every reload it did). */
  reloads: number;
  /** As HAProxy prints it, e.g. `0d00h02m07s`. */
  uptime: string;
  version: string;
}

export interface HaproxyProcesses {
  /** The master; `failedReloads` counts reloads whose configuration did not load. */
  master: HaproxyProcess & { failedReloads: number };
  /** The worker(s) taking new connections. */
  workers: HaproxyProcess[];
  /** Workers from before a reload, still serving the connections they had. */
  oldWorkers: HaproxyProcess[];
}

/** A master-worker reload did not give a new worker: the master answers why, or its log does. */
export class HaproxyReloadError extends Error {
  override readonly name = 'HaproxyReloadError';
  constructor(
    message: string,
    readonly masterSocket: string,
  ) {
    super(`haproxy master CLI at ${masterSocket}: ${message}`);
  }
}

const LINE = /^(\d+)\s+(\S+)\s+(\d+)(?:\s+\[failed: (\d+)\])?\s+(\S+)\s+(\S+)\s*$/;

/** Parses `show proc`; throws when the text has no master line (not a master CLI's answer). */
export function parseHaproxyProcesses(text: string): HaproxyProcesses {
  let master: HaproxyProcesses['master'] | undefined;
  const workers: HaproxyProcess[] = [];
  const oldWorkers: HaproxyProcess[] = [];
  let section: 'master' | 'workers' | 'old' | 'other' = 'master';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#')) {
      if (line === '# workers') section = 'workers';
      else if (line === '# old workers') section = 'old';
      else if (!line.startsWith('#<PID>')) section = 'other';
      continue;
    }
    const m = LINE.exec(line);
    if (!m) continue;
    const proc: HaproxyProcess = {
      pid: Number(m[1]),
      reloads: Number(m[3]),
      uptime: m[5] as string,
      version: m[6] as string,
    };
    if (m[2] === 'master') master = { ...proc, failedReloads: Number(m[4] ?? 0) };
    else if (m[2] === 'worker' && section === 'workers') workers.push(proc);
    else if (m[2] === 'worker' && section === 'old') oldWorkers.push(proc);
  }
  if (!master) throw new Error(`not an answer to "show proc" of a haproxy master CLI: ${text.slice(0, 200)}`);
  return { master, workers, oldWorkers };
}

/** The master CLI's `show proc`, parsed. */
export async function haproxyProcesses(masterSocket: string, timeoutMs = 5000): Promise<HaproxyProcesses> {
  return parseHaproxyProcesses(await socketCommand(masterSocket, 'show proc', timeoutMs));
}

export interface HaproxyReloadOptions {
  /** How long the new worker may take to load and answer. @defaultValue 15_000 */
  timeoutMs?: number;
  /** Between two looks at the master CLI. @defaultValue 20 */
  intervalMs?: number;
}

export interface HaproxyReload {
  /** The master's pid, the same before and after. */
  masterPid: number;
  /** The new worker, answering on its CLI. */
  workerPid: number;
  /** The workers that were current before: they now serve only the connections they had. */
  previousWorkers: number[];
  /** From the `reload` command to the new worker answering. */
  tookMs: number;
}

/**
 * Reloads HAProxy through its master CLI (`reload`, the same as SIGUSR2 to the master) and
 * resolves once the new worker answers on its CLI. Throws HaproxyReloadError when the new
 * configuration did not load (the previous worker keeps serving: nothing changed) or no new
 * worker answers within `timeoutMs`. Check the file with `haproxy -c` first for HAProxy's
 * own words.
 */
export async function reloadHaproxy(
  masterSocket: string,
  options: HaproxyReloadOptions = {},
): Promise<HaproxyReload> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const intervalMs = options.intervalMs ?? 20;
  const before = await haproxyProcesses(masterSocket);
  const started = Date.now();
  const deadline = started + timeoutMs;
  // The master closes the connection as it re-executes: the answer is empty. A reset then
  // means the command arrived; whether it did shows in the reload count below.
  await socketCommand(masterSocket, 'reload').catch((error: Error) => {
    if (/ECONNRESET|EPIPE/.test(error.message)) return '';
    throw new HaproxyReloadError(`reload not sent: ${error.message}`, masterSocket);
  });
  const previous = before.workers.map((w) => w.pid);
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    // Refused while the master re-executes; the new worker's CLI answers once it has loaded.
    const now = await haproxyProcesses(masterSocket).catch((error: Error) => error);
    if (now instanceof Error) last = now.message;
    else if (now.master.pid !== before.master.pid) {
      throw new HaproxyReloadError(
        `the master changed from ${before.master.pid} to ${now.master.pid}: it was restarted, not reloaded`,
        masterSocket,
      );
    } else if (now.master.failedReloads > before.master.failedReloads) {
      throw new HaproxyReloadError(
        `the new configuration did not load (failed reloads ${now.master.failedReloads}); worker ${previous.join(', ')} still serves the previous one. The master's log has HAProxy's words`,
        masterSocket,
      );
    } else if (now.master.reloads > before.master.reloads) {
      const fresh = now.workers.find((w) => !previous.includes(w.pid));
      if (fresh) {
        const info = await socketCommand(masterSocket, `@!${fresh.pid} show info`).catch(
          (error: Error) => error.message,
        );
        if (new RegExp(`^Pid: ${fresh.pid}$`, 'm').test(info)) {
          return {
            masterPid: now.master.pid,
            workerPid: fresh.pid,
            previousWorkers: previous,
            tookMs: Date.now() - started,
          };
        }
        last = `worker ${fresh.pid} not answering yet`;
      } else last = 'reloaded, no new worker listed yet';
    } else last = `master at ${now.master.reloads} reloads, waiting for ${before.master.reloads + 1}`;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new HaproxyReloadError(`no new worker within ${timeoutMs} ms (${last})`, masterSocket);
}
