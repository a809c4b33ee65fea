import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { type Server, type Socket, createConnection, createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Logger } from '@hashwire/core';
import { type AgentCheck, type AgentWord, startAgentCheck } from './agent.js';
import { HANDOFF_WAVE_SIZE, relayOverIpc } from './handover.js';
import { listenOnRange } from './listen.js';
import { MSG, type SwitchCost, WORKER_ENV, type WorkerMessage } from './worker.js';

/**
 * The stratum master: the process a supervisor (`hashwire up`, Circus, systemd) runs for a
 * stratum service. It owns the miner port (accepting with `pauseOnConnect`: it never reads a
 * byte, so the PROXY header and every line are the worker's), HAProxy's agent-check port and a
 * control socket, and runs the stratum service itself as one child process, its worker (the
 * stratum bin of a build directory, forked with an IPC channel). Each accepted connection goes
 * to the worker over IPC. An upgrade (`upgrade(buildDir)`, or `{"op":"upgrade"}` on the control
 * socket) starts the worker of the new build beside the old one and moves every live session,
 * socket and all, from the old to the new (`handOffSessions` through this process); the
 * service keeps its PID, its miner port and every miner's TCP connection.
 */
export interface StratumMasterOptions {
  /** The service id (for logs and errors). */
  id: string;
  /** The stratum config as JSON, passed to each worker in HASHWIRE_STRATUM_CONFIG. */
  configText: string;
  /** The miner port: `host` and the first free port of `ports` (as the stratum server binds it). */
  host: string;
  ports: readonly [number, number];
  /** The agent-check port. @defaultValue the miner port range, or any port for a single port */
  agentPorts?: readonly [number, number];
  /** The control socket (`hashwire upgrade stratum`), mode 0600. @defaultValue none */
  controlPath?: string;
  /** The build the first worker runs. @defaultValue the checkout this file is part of */
  buildDir?: string;
  /** How long a new worker may take to print its ready line. @defaultValue 60000 */
  readyTimeoutMs?: number;
  /** Sessions moving at once during an upgrade. @defaultValue HANDOFF_WAVE_SIZE (3) */
  waveSize?: number;
  logger: Logger;
}

/** What an upgrade did, as the control socket answers it. */
export interface UpgradeResult {
  ok: true;
  fromPid: number;
  toPid: number;
  fromVersion: string;
  toVersion: string;
  build: string;
  /** Sessions moved with their connections. */
  moved: number;
  /** From the request to the new worker owning the spool. */
  ms: number;
  /** The new worker's start, within `ms`. */
  startMs: number;
  /** Jobs of the old worker the new one did not hold yet (taken before any session moved). */
  jobsTaken: number;
  /**
   * The switch's steps after the new worker's start: the sessions moving; the new worker's
   * shares sent to the old one answered (`hold`); the old worker letting the spool and the
   * registration go (`retire`); the new one taking them (`takeSpool`), of which until the shares
   * held since `hold` went to its spool (`spoolOwned`).
   */
  stepsMs: { move: number; hold: number; retire: number; takeSpool: number; spoolOwned: number };
  /** What the moved sessions felt, measured by the new worker. */
  cost: SwitchCost | null;
}

export interface StratumMaster {
  readonly port: number;
  readonly agentPort: number;
  /** The ready line's fields of the first worker (with the master's pid). */
  readonly ready: Record<string, unknown>;
  /** The current worker's pid. */
  readonly workerPid: number;
  upgrade(buildDir?: string): Promise<UpgradeResult>;
  /** Drains the worker (SIGTERM) and closes; resolves with the worker's exit code. */
  stop(): Promise<number>;
  /** Resolves with the exit code the master should end with once its worker is gone. */
  readonly done: Promise<number>;
}

/** The checkout a built master belongs to (`packages/stratum/dist/master.js` → the root). */
export const DEFAULT_BUILD_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The stratum bin inside a build directory. */
export function workerBin(buildDir: string): string {
  return join(buildDir, 'packages', 'stratum', 'dist', 'bin.js');
}

/** Where a stratum service's master listens for `hashwire upgrade stratum`: in its spool directory. */
export function controlSocketPath(spoolDir: string): string {
  return join(spoolDir, 'control.sock');
}

/** Why an upgrade did not happen; the old worker keeps serving. */
export class UpgradeError extends Error {
  override readonly name = 'UpgradeError';
  /** The worker printed its own reason on stderr (its one-line start error). */
  workerSaid = false;
}

interface Worker {
  child: ChildProcess;
  pid: number;
  build: string;
  version: string;
  ready: Record<string, unknown>;
  /** Resolves with the exit code (a signal counts as 1). */
  exited: Promise<number>;
  stderrTail: string[];
  word: AgentWord;
}

/** Starts the master: binds the ports, starts the first worker, resolves once it is ready. */
export async function startStratumMaster(options: StratumMasterOptions): Promise<StratumMaster> {
  const { logger } = options;
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  let target: Worker | null = null; // where new connections go
  let owner: Worker | null = null; // the worker of the service (spool, registration, agent word)
  let standby: Worker | null = null;
  let upgrading = false;
  let stopping = false;
  /** A new worker failed in the middle of a switch: the service ends and is started again. */
  let failedSwitch = false;

  // The miner port's listening socket. The worker that serves accepts from it itself (the master
  // hands it the socket, `giveListener`, and closes its own copy), so a connection costs what it
  // costs a stratum server on its own; an upgrade passes it from the old worker to the new one
  // through here. Only while the master holds it (at start, during that pass, or with a worker
  // of a build that cannot take it) does it accept, passing each connection on unread.
  const forward = (socket: Socket) => {
    const to = target;
    if (!to || !to.child.connected) {
      socket.destroy();
      return;
    }
    to.child.send({ type: MSG.connection }, socket, { keepOpen: false }, (error) => {
      if (error) socket.destroy();
    });
  };
  let listener: Server | null = createServer({ pauseOnConnect: true, noDelay: true }, forward);
  const onListenerError = (error: Error) => logger.error({ err: error }, 'stratum master: listener error');
  listener.on('error', onListenerError);
  const port = await listenOnRange(listener, options.host, options.ports);
  /** The listening socket a worker gave back (`yieldListener`): accepted from here, unread, meanwhile. */
  const adoptListener = (server: Server) => {
    // Set in the turn the message arrives, before any poll could accept a connection on it.
    (server as Server & { pauseOnConnect: boolean }).pauseOnConnect = true;
    server.on('connection', forward);
    server.on('error', onListenerError);
    listener?.close();
    listener = server;
  };
  /** How long a worker has to take or give back the listening socket (a build without it never answers). */
  const LISTENER_STEP_MS = 5000;
  const agent: AgentCheck = await startAgentCheck({
    host: options.host,
    ports: options.agentPorts ?? (options.ports[0] < options.ports[1] ? options.ports : [0, 0]),
    status: () => (stopping ? 'drain' : (owner?.word ?? 'down')),
  });

  // One master per spool directory: a live one answers on the control socket.
  if (options.controlPath && existsSync(options.controlPath)) {
    const path = options.controlPath;
    const live = await new Promise<boolean>((r) => {
      const probe = createConnection(path);
      probe.once('connect', () => {
        probe.destroy();
        r(true);
      });
      probe.once('error', () => r(false));
    });
    if (live) {
      listener.close();
      await agent.close();
      throw new Error(`another stratum master of this spool directory answers on ${path}`);
    }
    unlinkSync(path);
  }

  const spawnWorker = async (build: string, isStandby: boolean): Promise<Worker> => {
    const bin = workerBin(build);
    if (!existsSync(bin))
      throw new UpgradeError(`no stratum build at ${build}: ${bin} is missing (pnpm build)`);
    const child = fork(bin, [], {
      env: {
        ...process.env,
        HASHWIRE_STRATUM_CONFIG: options.configText,
        [WORKER_ENV]: JSON.stringify({ port, agentPort: agent.port, standby: isStandby }),
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const stderrTail: string[] = [];
    const stderrDone = new Promise((r) => child.stderr!.once('close', r));
    createInterface({ input: child.stderr! }).on('line', (line) => {
      process.stderr.write(`${line}\n`);
      stderrTail.push(line);
      if (stderrTail.length > 20) stderrTail.shift();
    });
    const exited = new Promise<number>((resolveExit) =>
      child.once('exit', (code, signal) => resolveExit(code ?? (signal ? 1 : 0))),
    );
    const lines = createInterface({ input: child.stdout! });
    let timer: NodeJS.Timeout | undefined;
    const first = await Promise.race([
      once(lines, 'line').then(([line]) => line as string),
      exited.then((code) => ({ code })),
      new Promise<'timeout'>((resolveTimeout) => {
        timer = setTimeout(() => resolveTimeout('timeout'), readyTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    lines.on('line', (line) => process.stdout.write(`${line}\n`));
    const lastWords = () => stderrTail.filter((l) => !l.startsWith('{')).at(-1) ?? stderrTail.at(-1) ?? '';
    if (first === 'timeout') {
      child.kill('SIGKILL');
      await exited;
      throw new UpgradeError(`the new worker printed no ready line within ${readyTimeoutMs} ms`);
    }
    if (typeof first !== 'string') {
      await stderrDone;
      const error = new UpgradeError(
        `the new worker exited with code ${first.code} at start: ${lastWords()}`,
      );
      error.workerSaid = true;
      throw error;
    }
    const ready = JSON.parse(first) as Record<string, unknown>;
    const worker: Worker = {
      child,
      pid: child.pid!,
      build,
      version: String(ready.version ?? ''),
      ready,
      exited,
      stderrTail,
      word: 'down',
    };
    child.on('message', (message: WorkerMessage, handle?: unknown) => {
      if (message?.type === MSG.agent) worker.word = message.word as AgentWord;
      else if (message?.type === MSG.listenerBack && handle) adoptListener(handle as Server);
    });
    return worker;
  };

  /** The next message of `type` from `worker`, or false after `ms` (or when it exits first). */
  const answered = (worker: Worker, type: string, ms: number): Promise<boolean> =>
    new Promise((resolveStep) => {
      const timer = setTimeout(() => finishStep(false), ms);
      const onMessage = (message: WorkerMessage) => {
        if (message?.type === type) finishStep(true);
      };
      const onExit = () => finishStep(false);
      const finishStep = (ok: boolean) => {
        clearTimeout(timer);
        worker.child.off('message', onMessage);
        worker.child.off('exit', onExit);
        resolveStep(ok);
      };
      worker.child.on('message', onMessage);
      worker.child.once('exit', onExit);
    });

  /** Hands the listening socket to `worker`; the master's copy closes once it accepts from it. */
  const giveListener = async (worker: Worker): Promise<void> => {
    const held = listener;
    if (!held || !worker.child.connected) return;
    const taken = answered(worker, MSG.listening, LISTENER_STEP_MS);
    worker.child.send({ type: MSG.listen }, held);
    if (!(await taken)) {
      logger.warn(
        { worker: worker.pid },
        'stratum master: the worker did not take the listening socket; the master passes it each connection',
      );
      return;
    }
    if (listener === held) listener = null;
    held.close();
  };

  /** Asks `worker` to stop accepting and give the listening socket back (adopted on arrival). */
  const takeListenerBack = async (worker: Worker): Promise<void> => {
    if (listener || !worker.child.connected) return;
    const closed = answered(worker, MSG.listenerClosed, LISTENER_STEP_MS);
    worker.child.send({ type: MSG.yieldListener });
    if (!(await closed))
      throw new UpgradeError(`worker ${worker.pid} did not give the listening socket back`);
  };

  const first = await spawnWorker(options.buildDir ?? DEFAULT_BUILD_DIR, false).catch(async (error) => {
    listener?.close();
    await agent.close();
    throw error;
  });
  owner = first;
  target = first;
  await giveListener(first);
  logger.info(
    { port, agentPort: agent.port, worker: first.pid, version: first.version },
    'stratum master: ready',
  );

  let finish: (code: number) => void = () => {};
  const done = new Promise<number>((r) => {
    finish = r;
  });
  const closeAll = async () => {
    listener?.close();
    listener = null;
    await agent.close();
    if (control) {
      control.close();
      if (options.controlPath && existsSync(options.controlPath)) unlinkSync(options.controlPath);
    }
  };
  const watchOwner = (worker: Worker) => {
    void worker.exited.then(async (code) => {
      if (owner !== worker) return;
      // The service's worker is gone outside an upgrade: so is the service.
      if (!stopping) logger.error({ worker: worker.pid, code }, 'stratum master: the worker exited');
      standby?.child.kill('SIGKILL');
      await closeAll();
      finish(failedSwitch ? 1 : code);
    });
  };
  watchOwner(first);

  /** The next message of `type` from `worker`, or an error when it fails or exits first. */
  const expect = (worker: Worker, type: string, step: string, timeoutMs?: number): Promise<WorkerMessage> =>
    new Promise((resolveStep, reject) => {
      // A worker of a build that does not know the step never answers it.
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              cleanup();
              reject(
                new UpgradeError(
                  `${step}: worker ${worker.pid} (${worker.version}) did not answer within ${timeoutMs} ms (a build older than the master's?)`,
                ),
              );
            }, timeoutMs);
      const onMessage = (message: WorkerMessage) => {
        if (message?.type === type) {
          cleanup();
          resolveStep(message);
        } else if (message?.type === MSG.failed) {
          cleanup();
          reject(new UpgradeError(`${step}: ${message.error}`));
        }
      };
      const onExit = (code: number | null) => {
        cleanup();
        reject(
          new UpgradeError(
            `${step}: worker ${worker.pid} exited (${code}) ${worker.stderrTail.at(-1) ?? ''}`,
          ),
        );
      };
      const cleanup = () => {
        clearTimeout(timer);
        worker.child.off('message', onMessage);
        worker.child.off('exit', onExit);
      };
      worker.child.on('message', onMessage);
      worker.child.once('exit', onExit);
    });

  let switching: Promise<UpgradeResult> | null = null;
  const upgrade = (buildDir?: string): Promise<UpgradeResult> => {
    const already = upgrading;
    // switchTo marks the switch as begun before its first await.
    const run = switchTo(buildDir);
    if (!already && upgrading) switching = run;
    return run;
  };
  const switchTo = async (buildDir = DEFAULT_BUILD_DIR): Promise<UpgradeResult> => {
    if (stopping) throw new UpgradeError('the service is stopping');
    if (upgrading) throw new UpgradeError('an upgrade is already under way');
    const old = owner!;
    upgrading = true;
    const started = performance.now();
    try {
      const build = resolve(buildDir);
      // Failed start: the old worker was not touched and keeps serving.
      const next = await spawnWorker(build, true);
      const startMs = performance.now() - started;
      standby = next;
      // The old worker serves the new one's shares on a socket of its own (the spool's one writer
      // until it retires), and its jobs go to the new one before any session: a miner's share on
      // an earlier job it still works on is judged there as it would have been here.
      const prepared = expect(old, MSG.prepared, 'prepare', readyTimeoutMs);
      old.child.send({ type: MSG.prepare });
      const { jobs = [] } = await prepared;
      const adopted = expect(next, MSG.jobsAdopted, 'adopt-jobs', readyTimeoutMs);
      next.child.send({ type: MSG.adoptJobs, jobs });
      const jobsTaken = (await adopted).n ?? 0;
      logger.info(
        { from: old.pid, to: next.pid, version: next.version, build, jobs: jobs.length, jobsTaken },
        'stratum master: switching',
      );
      // New connections go to the new worker from here; the old one's sessions follow it.
      const stopRelay = relayOverIpc(old.child, next.child);
      target = next;
      // The listening socket goes with them: the old worker stops accepting and gives it back
      // (what it accepted until then is handed over below), the new one accepts from it. The
      // kernel queues connections meanwhile; the master passes on what it accepts in between.
      try {
        await takeListenerBack(old);
        await giveListener(next);
      } catch (error) {
        stopRelay();
        throw error;
      }
      const handed = expect(old, MSG.handed, 'hand-off');
      old.child.send({ type: MSG.handOff, waveSize: options.waveSize ?? HANDOFF_WAVE_SIZE });
      let moved = 0;
      const moving = performance.now();
      try {
        moved = (await handed).moved ?? 0;
      } finally {
        stopRelay();
      }
      // One spool, one writer: the new worker stops sending shares to the old one, the old one
      // seals and closes its spool and leaves the registration, then the new one takes both.
      const holdFrom = performance.now();
      const holding = expect(next, MSG.holding, 'hold');
      next.child.send({ type: MSG.hold });
      await holding;
      const retireFrom = performance.now();
      const retired = expect(old, MSG.retired, 'retire');
      old.child.send({ type: MSG.retire });
      await retired;
      const takeFrom = performance.now();
      const owning = expect(next, MSG.owning, 'take-spool');
      next.child.send({ type: MSG.takeSpool });
      owner = next;
      standby = null;
      watchOwner(next);
      const { switchCost, ownedMs } = await owning;
      const done = performance.now();
      const result: UpgradeResult = {
        ok: true,
        fromPid: old.pid,
        toPid: next.pid,
        fromVersion: old.version || String(old.ready.version ?? ''),
        toVersion: next.version,
        build,
        moved,
        ms: Math.round(done - started),
        startMs: Math.round(startMs),
        jobsTaken,
        stepsMs: {
          move: Math.round(holdFrom - moving),
          hold: Math.round(retireFrom - holdFrom),
          retire: Math.round(takeFrom - retireFrom),
          takeSpool: Math.round(done - takeFrom),
          spoolOwned: ownedMs ?? 0,
        },
        cost: switchCost ?? null,
      };
      logger.info(result, 'stratum master: upgraded');
      return result;
    } catch (error) {
      if (standby) {
        standby.child.kill('SIGKILL');
        standby = null;
      }
      if (owner === old && target === old && old.child.connected) old.child.send({ type: MSG.cancel });
      if (owner === old && target !== old) {
        // The new worker failed after the switch began: the old one was handing its sessions
        // over and takes no new ones. It drains (what it still holds is sent away and its spool
        // flushed), and the master ends non-zero so the supervisor starts the service again.
        failedSwitch = true;
        target = null;
        old.child.kill('SIGTERM');
      }
      logger.error({ err: error }, 'stratum master: upgrade failed');
      const said = (error as Error).message;
      throw new UpgradeError(
        failedSwitch
          ? `${said}; the switch had begun: the old worker drains its miners to the other servers and the service ends to be started again`
          : `${said}; the old worker (pid ${old.pid}, ${old.version}) keeps serving`,
      );
    } finally {
      upgrading = false;
    }
  };

  // The control socket: one JSON request a line, one JSON answer a line.
  let control: Server | null = null;
  if (options.controlPath) {
    const path = options.controlPath;
    control = createServer((socket: Socket) => {
      socket.on('error', () => {});
      createInterface({ input: socket }).on('line', (line) => {
        let request: { op?: string; build?: string };
        try {
          request = JSON.parse(line) as typeof request;
        } catch {
          socket.end(`${JSON.stringify({ ok: false, error: 'a request is one JSON object a line' })}\n`);
          return;
        }
        if (request.op === 'status') {
          socket.end(
            `${JSON.stringify({ ok: true, pid: process.pid, port, worker: { pid: owner?.pid, build: owner?.build, version: owner?.version }, upgrading })}\n`,
          );
        } else if (request.op === 'upgrade') {
          upgrade(request.build).then(
            (result) => socket.end(`${JSON.stringify(result)}\n`),
            (error: Error) => socket.end(`${JSON.stringify({ ok: false, error: error.message })}\n`),
          );
        } else {
          socket.end(
            `${JSON.stringify({ ok: false, error: `op must be upgrade or status, got ${request.op}` })}\n`,
          );
        }
      });
    });
    const server = control;
    await new Promise<void>((r, reject) => {
      server.once('error', reject);
      server.listen(path, () => r());
    });
    // Closed by default: only the service's own user may ask for an upgrade.
    chmodSync(path, 0o600);
  }

  const stop = async (): Promise<number> => {
    if (!stopping) {
      stopping = true;
      // A switch under way ends first (it refuses nothing once begun), then its owner drains.
      await switching?.catch(() => {});
      // The worker drains as a stratum server does on SIGTERM (miners sent away, spool flushed).
      owner?.child.kill('SIGTERM');
    }
    return done;
  };

  return {
    port,
    agentPort: agent.port,
    ready: { ...first.ready, master: process.pid },
    get workerPid() {
      return owner?.pid ?? 0;
    },
    upgrade,
    stop,
    done,
  };
}
