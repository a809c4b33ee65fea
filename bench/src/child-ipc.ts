// Bench work that must run in a process of its own (a server whose memory is measured, a
// swarm of client sockets that would not fit one process's file descriptors), driven by the
// suite over the IPC channel: one request, one reply, matched by id.
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

interface Request {
  id: number;
  type: string;
  params: unknown;
}

type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

/**
 * The compiled script `name` next to this module. From the TypeScript sources (vitest runs
 * the bench from `src`) it is the build in `dist`: node cannot run the `.ts` file itself.
 */
export function benchScript(name: string): string {
  const path = fileURLToPath(new URL(`./${name}.js`, import.meta.url));
  return import.meta.url.endsWith('.ts') ? path.replace(/([/\\])src([/\\])([^/\\]+)$/, '$1dist$2$3') : path;
}

export interface BenchChild {
  readonly pid: number;
  /** Sends `type` with `params` to the child's handler of that name; resolves with its result. */
  request<T>(type: string, params?: unknown): Promise<T>;
  /** Disconnects (the child cleans up and exits), SIGKILL after `graceMs`. */
  close(graceMs?: number): Promise<void>;
}

export interface BenchChildOptions {
  /** Node flags of the child, e.g. `['--expose-gc']`. @defaultValue [] (not the parent's) */
  execArgv?: string[];
}

/** Starts bench script `name` (see `benchScript`) as a child that serves `serveParent` handlers. */
export function startBenchChild(name: string, options: BenchChildOptions = {}): BenchChild {
  const child: ChildProcess = fork(benchScript(name), [], {
    execArgv: options.execArgv ?? [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let exited: Error | null = null;
  const exit = once(child, 'exit');
  child.on('message', (message: Reply) => {
    const waiter = pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id);
    if (message.ok) waiter.resolve(message.result);
    else waiter.reject(new Error(`${name}: ${message.error}`));
  });
  child.on('exit', (code, signal) => {
    exited = new Error(`${name} exited (${signal ?? `code ${code}`})`);
    for (const waiter of pending.values()) waiter.reject(exited);
    pending.clear();
  });
  return {
    pid: child.pid ?? 0,
    request<T>(type: string, params: unknown = {}) {
      if (exited) return Promise.reject(exited);
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ id, type, params } satisfies Request);
      });
    },
    async close(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (child.connected) child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: each handler declares its own params type
type Handler = (params: any) => unknown;

/**
 * In the child: answers the parent's requests with `handlers`; when the parent disconnects,
 * runs `onClose` and exits.
 */
export function serveParent(handlers: Record<string, Handler>, onClose: () => Promise<void> | void): void {
  if (!process.send) throw new Error('serveParent: not started with an IPC channel (use startBenchChild)');
  const send = process.send.bind(process);
  process.on('message', (request: Request) => {
    const handler = handlers[request.type];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`unknown request "${request.type}"`);
        return handler(request.params);
      })
      .then(
        (result) => send({ id: request.id, ok: true, result } satisfies Reply),
        (error: unknown) =>
          send({
            id: request.id,
            ok: false,
            error: error instanceof Error ? (error.stack ?? error.message) : String(error),
          } satisfies Reply),
      );
  });
  process.on('disconnect', () => {
    Promise.resolve()
      .then(onClose)
      .then(
        () => process.exit(0),
        (error: unknown) => {
          process.stderr.write(`bench child: cleanup failed: ${String(error)}\n`);
          process.exit(1);
        },
      );
  });
}
