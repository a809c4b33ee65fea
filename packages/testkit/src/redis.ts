import { rm } from 'node:fs/promises';
import path from 'node:path';
import { getFreePort } from './ports.js';
import { type ManagedProcess, makeTempDir, spawnManaged } from './process.js';

export interface RedisOptions {
  /** Keep an append-only file so data survives `restart()`. @defaultValue false */
  appendonly?: boolean;
  /** The `save` setting; '' keeps no RDB snapshots. @defaultValue '' */
  save?: string;
  /** More `redis-server` arguments, e.g. `['--maxmemory', '64mb']`. */
  args?: readonly string[];
  /** @defaultValue 'redis-server' */
  binary?: string;
  /** @defaultValue 10_000 */
  startTimeoutMs?: number;
}

export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  host: string;
  port: number;
  pid: number;
  /** Working directory (AOF/RDB files). */
  dir: string;
  logFile: string;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
  /** Stops and starts it again on the same port and directory; data survives only with `appendonly`. */
  restart(): Promise<void>;
}

const START_ATTEMPTS = 3;

/** Starts a private redis-server on a free port of 127.0.0.1, in its own temporary directory. */
export async function startRedis(options: RedisOptions = {}): Promise<RedisServer> {
  const dir = await makeTempDir('redis');
  const logFile = path.join(dir, 'redis.log');
  let port = 0;
  let proc: ManagedProcess | undefined;
  for (let attempt = 1; !proc; attempt++) {
    port = await getFreePort();
    try {
      proc = await launch(options, dir, logFile, port);
    } catch (err) {
      // Another process took the port between our pick and redis binding it: pick again.
      if (!(err instanceof PortTakenError) || attempt === START_ATTEMPTS) throw err;
    }
  }
  let current: ManagedProcess = proc;
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    pid: current.pid,
    dir,
    logFile,
    async stop() {
      await current.stop();
      await rm(dir, { recursive: true, force: true });
    },
    async restart() {
      await current.stop();
      current = await launch(options, dir, logFile, port);
      server.pid = current.pid;
    },
  };
  return server;
}

class PortTakenError extends Error {}

async function launch(
  options: RedisOptions,
  dir: string,
  logFile: string,
  port: number,
): Promise<ManagedProcess> {
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    options.save ?? '',
    '--appendonly',
    options.appendonly ? 'yes' : 'no',
    '--daemonize',
    'no',
    ...(options.args ?? []),
  ];
  let ready: () => void = () => {};
  const readyLine = new Promise<void>((resolve) => {
    ready = resolve;
  });
  const proc = await spawnManaged(`redis:${port}`, options.binary ?? 'redis-server', args, {
    logFile,
    onLine: (line) => {
      if (line.includes('Ready to accept connections')) ready();
    },
  });
  const timeoutMs = options.startTimeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    readyLine.then(() => 'ready' as const),
    proc.exited.then(() => 'exited' as const),
    new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (outcome === 'ready') return proc;
  await proc.stop({ deadlineMs: 2_000 });
  const tail = await proc.logTail(20);
  if (/Address already in use/.test(tail)) throw new PortTakenError(tail);
  const why = outcome === 'timeout' ? `not ready within ${timeoutMs} ms` : 'exited during start';
  throw new Error(`redis-server on port ${port} ${why}; log ${logFile}:\n${tail}`);
}
