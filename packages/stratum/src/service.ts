import type { Server, Socket } from 'node:net';
import { type ChainParams, getChainParams } from '@hashwire/chain';
import {
  type Logger,
  type Metrics,
  type StatsdOptions,
  type StatusServer,
  createMetrics,
  isWildcardHost,
  packageVersion,
} from '@hashwire/core';
import {
  BucketRing,
  type BucketRingOptions,
  type KeyBuilder,
  SHARES_WIRE,
  type Share,
  createKeyBuilder,
} from '@hashwire/protocol';
import { type RedisClient, type ServiceRegistration, registerService } from '@hashwire/registry';
import { type ServiceCurve, checkServiceCurve } from '@hashwire/rpc';
import {
  type AgentCheck,
  type AgentWord,
  advertisedEndpoint,
  agentWordFor,
  startAgentCheck,
} from './agent.js';
import { createStratumServer } from './create.js';
import type { ShareForwarderOptions } from './forwarder-options.js';
import { ShareForwarder } from './forwarder.js';
import { JobFeed, type JobFeedOptions } from './job-feed.js';
import { observeStratum } from './observe.js';
import { type ResolvedStratumOptions, type StratumServerOptions, resolveStratumOptions } from './options.js';
import type { StratumServer, StratumStats } from './server.js';
import { ShareSpool } from './spool.js';
import { followDaemonHealth } from './suspend.js';
import { WorkerShareSink } from './worker-sink.js';

type ServerPart = Omit<
  StratumServerOptions,
  'redis' | 'keys' | 'jobs' | 'blockSink' | 'shareSink' | 'params' | 'logger' | 'spoolDir'
>;

/** One stratum server with its share path, job feed, HTTP face, agent check and registration. */
export interface StratumServiceOptions extends ServerPart {
  /** With `network`, picks the chain parameters (`getChainParams`), e.g. `litecoin` / `main`. */
  coin: string;
  network: string;
  /** Shared Redis connection (the caller owns it). */
  redis: RedisClient;
  /** @defaultValue a key builder with prefix 'hw:' */
  keys?: KeyBuilder;
  /** @defaultValue 'hw:' (ignored when `keys` is given) */
  keyPrefix?: string;
  logger: Logger;
  /** This instance's spool; keep it across restarts of the same `id`. */
  spoolDir: string;
  /**
   * `daemonGraceMs` (default 60000): how long miners keep the last job once no jobmanager has a
   * coin daemon; `maxJobAgeMs` (default 90000): the oldest job they are kept on, whatever the
   * jobmanagers say. Past either, they are sent away as `daemonLoss` says, and taken back when
   * fresh work comes.
   */
  jobFeed?: Omit<JobFeedOptions, 'redis' | 'keys' | 'chain' | 'stratumId'>;
  forwarder?: Omit<
    ShareForwarderOptions,
    'spool' | 'redis' | 'keys' | 'stratumId' | 'chain' | 'ring' | 'logger' | 'now'
  >;
  /** Bucket layout of the reporter ring; the same on every stratum server. */
  ring?: BucketRingOptions;
  /** How long a drain waits for reporters to take the spool before closing anyway (it stays on disk). @defaultValue 30000 */
  flushTimeoutMs?: number;
  /** @defaultValue 60000 */
  serviceTtlMs?: number;
  /** @defaultValue this package's version, with the git commit when run from a checkout */
  version?: string;
  /** statsd mirror of the metrics. */
  statsd?: StatsdOptions;
  /** `/healthz`, `/stats`, `/metrics`: first free port of this range. @defaultValue [29000, 29999] */
  httpPortRange?: [number, number];
  /**
   * Address of the HTTP `/healthz`, `/stats`, `/metrics` (and `POST /drain`) server; loopback
   * unless told otherwise (pool config `http.host`). @defaultValue '127.0.0.1'
   */
  httpHost?: string;
  /**
   * Address HAProxy reaches this server at, registered in its `stratum` and `agent` endpoints.
   * @defaultValue `host` when it is one address, else '127.0.0.1'
   */
  advertiseHost?: string;
  /** HAProxy agent-check listener: first free port of this range. @defaultValue the miner port range */
  agentPortRange?: [number, number];
  /**
   * CURVE keys (already read from their files), used to call jobmanagers and reporters that
   * publish a `curveKey`.
   */
  curve?: { publicKey: string; secretKey: string };
  /** The token `POST /drain` needs; without one `/drain` is refused. */
  adminToken?: string;
  /** Called on `POST /drain`; the owner decides (the bin drains the service). */
  onDrain?: () => void;
  /**
   * On drain, how long the server announces it (registry `draining`, agent `drain`) before it
   * closes its listener and sends miners away: HAProxy must have stopped routing new
   * connections here by then, or the miners sent away are routed straight back to the closed
   * listener and dropped. Cover the agent check interval. @defaultValue 1000
   */
  drainAnnounceMs?: number;
  /**
   * Run as the worker of a stratum master (`master.ts`), which owns the miner port and the agent
   * check and passes each accepted connection in (`worker.acceptSocket`). A `standby` worker (the
   * next version during an upgrade) opens the spool, the forwarder and the registration only at
   * `worker.takeSpool()`, once the worker it replaces let them go; until then its shares go to
   * that worker through `appendElsewhere`.
   */
  worker?: {
    port: number;
    agentPort: number;
    standby: boolean;
    appendElsewhere?: (share: Share) => Promise<void>;
  };
}

/** What a master drives in its worker (`StratumService.worker`). */
export interface StratumWorkerControl {
  /** A connection the master accepted. */
  acceptSocket(socket: Socket): void;
  /** The miner port's listening socket, from the master: accepted from until drained or released. */
  listenOn(listener: Server): void;
  /** Lets go of the master's listening socket (the caller sends it on, then closes it), or null. */
  releaseListener(): Server | null;
  /** What the agent check should answer now. */
  agentWord(): AgentWord;
  /** The owner, for the standby: writes a share to its spool; resolves once written. */
  appendForPeer(share: Share): Promise<void>;
  /** The standby: stops sending shares to the owner; resolves once all it sent were answered. */
  holdShares(): Promise<void>;
  /**
   * The owner, after its sessions were handed over: stops refreshing the registration without
   * removing it, stops the forwarder and seals and closes the spool, so the next worker takes
   * the service over as it is. Then `close()` the rest.
   */
  retire(): Promise<void>;
  /**
   * The standby: opens the spool (replaying what the old worker left), forwarder and
   * registration. Resolves with how long the held shares waited in it for the spool.
   */
  takeSpool(): Promise<{ ownedMs: number }>;
}

/** The options checked: what `createStratumService` builds from. */
interface CheckedOptions {
  params: ChainParams;
  server: ResolvedStratumOptions;
  serverOptions: ServerPart;
  curve: ServiceCurve | undefined;
  drainAnnounceMs: number;
  flushTimeoutMs: number;
}

export interface StratumService {
  readonly id: string;
  readonly chain: string;
  /** The version it registers (this package's, with the git commit when run from a checkout). */
  readonly version: string;
  /** The miners' port (0 before `start()`). */
  readonly port: number;
  /** The stratum server itself, for tests and tools (null before `start()`). */
  readonly server: StratumServer | null;
  stats(): StratumStats | null;
  /** Opens the spool, job feed, forwarder, miner port, HTTP face and agent check; registers. */
  start(): Promise<void>;
  /**
   * Announces the drain (registry, agent check), sends the miners to other servers with their
   * sessions saved, then waits (up to `flushTimeoutMs`) for reporters to take the spool.
   */
  drain(): Promise<void>;
  /** Closes everything at once; sessions stay resumable, the spool stays on disk. */
  close(): Promise<void>;
  /** Under a master (`worker` option): what the master drives; null otherwise. */
  readonly worker: StratumWorkerControl | null;
}

/**
 * Checks every option a stratum service takes, naming the field, before anything is opened.
 * Throws a TypeError or RangeError with the message an operator reads.
 */
export function checkStratumServiceOptions(options: Omit<StratumServiceOptions, 'redis' | 'logger'>): void {
  checkOptions(options);
}

/** Where a stratum service takes miners and agent checks (a master binds them for its workers). */
export function stratumListenOptions(options: Omit<StratumServiceOptions, 'redis' | 'logger'>): {
  host: string;
  ports: [number, number];
  agentPorts?: [number, number];
} {
  const { server } = checkOptions(options);
  return {
    host: server.host,
    ports: server.ports,
    ...(options.agentPortRange ? { agentPorts: options.agentPortRange } : {}),
  };
}

function checkOptions(options: Omit<StratumServiceOptions, 'redis' | 'logger'>): CheckedOptions {
  const {
    coin,
    network,
    keys: _keys,
    keyPrefix: _keyPrefix,
    spoolDir: _spoolDir,
    jobFeed,
    forwarder: _forwarder,
    ring: _ring,
    flushTimeoutMs = 30_000,
    serviceTtlMs: _serviceTtlMs,
    version: _version,
    statsd: _statsd,
    httpPortRange: _httpPortRange,
    httpHost: _httpHost,
    advertiseHost: _advertiseHost,
    agentPortRange: _agentPortRange,
    curve,
    adminToken: _adminToken,
    onDrain: _onDrain,
    drainAnnounceMs = 1000,
    worker: _worker,
    redis: _redis,
    logger: _logger,
    ...serverOptions
  } = options as StratumServiceOptions;
  let params: ChainParams;
  try {
    params = getChainParams(coin, network);
  } catch (error) {
    throw new TypeError(`coin/network: ${(error as Error).message}`);
  }
  const checkedCurve = curve ? checkServiceCurve('curve', curve) : undefined;
  if (!Number.isInteger(drainAnnounceMs) || drainAnnounceMs < 0) {
    throw new RangeError(
      `drainAnnounceMs must be a whole number of milliseconds (0 or more), got ${drainAnnounceMs}`,
    );
  }
  // Checked before anything is opened, so a bad value is reported by its field name.
  const server = resolveStratumOptions({ ...serverOptions, params } as StratumServerOptions);
  for (const key of ['daemonGraceMs', 'maxJobAgeMs', 'silenceMs', 'blockRetryMs'] as const) {
    const value = jobFeed?.[key];
    if (value !== undefined && (!Number.isInteger(value) || value <= 0)) {
      throw new RangeError(`jobFeed.${key} must be a positive number of milliseconds, got ${value}`);
    }
  }
  return { params, server, serverOptions, curve: checkedCurve, drainAnnounceMs, flushTimeoutMs };
}

/**
 * A stratum service, the shape of `createReporter` and `createJobManager`: options checked
 * here (a bad one throws naming its field), nothing opened until `start()`.
 *
 * ```ts
 * const service = createStratumService({
 *   id: 'stratum-1', chain: 'ltc-main', coin: 'litecoin', network: 'main',
 *   redis, logger, spoolDir: '/var/lib/hashwire/spool/stratum-1',
 * });
 * await service.start();
 * // … SIGTERM:
 * await service.drain();
 * await service.close();
 * ```
 */
export function createStratumService(options: StratumServiceOptions): StratumService {
  const checked = checkOptions(options);
  const { params, serverOptions, curve, drainAnnounceMs, flushTimeoutMs } = checked;
  const { redis, logger, id, chain } = options;
  const keys = options.keys ?? createKeyBuilder({ prefix: options.keyPrefix ?? 'hw:' });
  const serviceVersion = options.version ?? packageVersion(import.meta.url);
  const resolved = checked.server;

  /** What `close()` undoes, in reverse order. */
  const cleanup: (() => Promise<unknown> | unknown)[] = [];
  let server: StratumServer | null = null;
  let forwarder: ShareForwarder | null = null;
  let feed: JobFeed | null = null;
  let registration: ServiceRegistration | null = null;
  let metrics: Metrics | null = null;
  let stopping = false;
  let drainDone: Promise<void> | null = null;
  let closeDone: Promise<void> | null = null;

  const unwind = async (): Promise<void> => {
    for (const step of cleanup.splice(0).reverse()) await step();
  };

  let spool: ShareSpool | null = null;
  let sink: WorkerShareSink | null = null;
  /** Retiring under a master: the registration is left to the next worker, not removed. */
  let retiring = false;
  let httpUrl = '';
  let agentPort = 0;

  const openSpool = async (): Promise<ShareSpool> => {
    // Replays what a previous process of this id left: its batches keep their ids, so a
    // reporter that credited one before the kill answers the resend as a duplicate.
    const opened = await ShareSpool.open({ dir: options.spoolDir, ...options.spool });
    opened.on('error', (error) => logger.error({ err: error }, 'stratum: spool write failed'));
    spool = opened;
    return opened;
  };

  const openForwarder = (opened: ShareSpool, m: Metrics): ShareForwarder => {
    const fwd = new ShareForwarder({
      ...options.forwarder,
      ...(options.ring ? { ring: options.ring } : {}),
      spool: opened,
      redis,
      keys,
      stratumId: id,
      chain,
      logger,
      ...(curve ? { curve } : {}),
    });
    forwarder = fwd;
    fwd.on('error', () => {}); // logged by the forwarder itself
    fwd.on('quarantined', (event) => m.quarantined(event.reason));
    return fwd;
  };

  const register = async (srv: StratumServer, fwd: ShareForwarder, m: Metrics): Promise<void> => {
    const backlog = setInterval(() => m.spoolBacklog(fwd.stats().backlogBatches), 1000);
    backlog.unref();
    cleanup.push(() => clearInterval(backlog));
    const reg = await registerService({
      redis,
      keys,
      kind: 'stratum',
      id,
      chain,
      // Miners (through HAProxy) at stratum; /healthz, /stats and /metrics at http.
      stratum: advertisedEndpoint(resolved.host, srv.port, options.advertiseHost),
      agent: advertisedEndpoint(resolved.host, agentPort, options.advertiseHost),
      http: httpUrl,
      ...(options.serviceTtlMs !== undefined ? { ttlMs: options.serviceTtlMs } : {}),
      version: serviceVersion,
      // The reporters' wire its forwarder speaks, for operators (`hashwire status`) mid-upgrade.
      sharesWire: SHARES_WIRE,
      measureLoad: () => {
        const { sessions, connections } = srv.stats();
        return { sessions, connections };
      },
      onError: (error) => logger.warn({ err: error }, 'stratum: registry refresh failed'),
      // Under a master the service's process is the master (what the supervisor runs).
      ...(options.worker ? { pid: process.ppid } : {}),
    });
    registration = reg;
    // Retiring under a master, the next worker of this id takes the registration over as it is.
    cleanup.push(() => (retiring ? reg.release() : reg.close().catch(() => {})));
  };

  const openHttp = async (srv: StratumServer, m: Metrics, jobs: JobFeed): Promise<void> => {
    const http: StatusServer = await observeStratum({
      server: srv,
      metrics: m,
      feed: jobs,
      ...(options.httpPortRange ? { httpPortRange: options.httpPortRange } : {}),
      ...(options.httpHost ? { host: options.httpHost } : {}),
      // A wildcard HTTP host is published as the address HAProxy reaches this server at.
      ...(options.advertiseHost || !isWildcardHost(resolved.host)
        ? { advertiseHost: options.advertiseHost ?? resolved.host }
        : {}),
      extraStats: () => ({
        version: serviceVersion,
        spool: spool?.stats() ?? null,
        forwarder: forwarder?.stats() ?? null,
        jobs: jobs.stats,
        ...(options.worker ? { worker: { pid: process.pid, owner: spool !== null } } : {}),
      }),
      onDrain: () => options.onDrain?.(),
      ...(options.adminToken ? { adminToken: options.adminToken } : {}),
    });
    httpUrl = http.url;
    cleanup.push(() => http.close());
  };

  const openCommon = async (m: Metrics): Promise<JobFeed> => {
    metrics = m;
    cleanup.push(() => m.close());
    m.draining(false);
    const jobs = new JobFeed({
      ...options.jobFeed,
      redis,
      keys,
      chain,
      stratumId: id,
      ...(curve ? { curve } : {}),
    });
    feed = jobs;
    jobs.on('error', (error) => logger.warn({ err: error }, 'stratum: job feed error'));
    jobs.on('unhealthy', (event) => logger.error(event, 'stratum: no fresh work from any jobmanager'));
    jobs.on('healthy', () => logger.info('stratum: fresh work again'));
    cleanup.push(() => jobs.close());
    await jobs.start();
    return jobs;
  };

  const newMetrics = (): Metrics =>
    createMetrics({
      service: 'stratum',
      id,
      chain,
      version: serviceVersion,
      hashesPerDiff: 2 ** 32 / params.shareDiffMultiplier,
      ...(options.statsd ? { statsd: options.statsd } : {}),
    });

  const openServer = async (jobs: JobFeed, shareSink: StratumServerOptions['shareSink']) => {
    const srv = await createStratumServer({
      ...serverOptions,
      params,
      redis,
      keys,
      jobs,
      blockSink: jobs,
      shareSink: shareSink!,
      logger,
    });
    server = srv;
    srv.on('error', (error) => logger.error({ err: error }, 'stratum: server error'));
    cleanup.push(() => srv.close());
    return srv;
  };

  const start = async (): Promise<void> => {
    if (server) throw new Error(`stratum service ${id} was already started`);
    if (options.worker) return startWorker(options.worker);
    const opened = await openSpool();
    cleanup.push(() => opened.close());

    // Before the forwarder: it may quarantine a batch of the replayed spool as it starts.
    const m = newMetrics();
    const jobs = await openCommon(m);

    const fwd = openForwarder(opened, m);
    cleanup.push(() => fwd.close());
    await fwd.start();

    const srv = await openServer(jobs, {
      append: (share) => opened.append(share),
      close: () => opened.close(),
    });
    await srv.start();
    // No daemon for jobFeed.daemonGraceMs: miners are sent away (daemonLoss), and taken back later.
    cleanup.push(followDaemonHealth(jobs, srv));
    await openHttp(srv, m, jobs);
    // HAProxy's agent check asks the server itself: up, drain while draining, down while suspended.
    const agent: AgentCheck = await startAgentCheck({
      host: resolved.host,
      // A single configured miner port leaves none for the agent: then any free port.
      ports: options.agentPortRange ?? (resolved.ports[0] < resolved.ports[1] ? resolved.ports : [0, 0]),
      status: () => (stopping ? 'drain' : agentWordFor(srv.stats())),
    });
    agentPort = agent.port;
    cleanup.push(() => agent.close());
    await register(srv, fwd, m);
  };

  /** Under a master: no listener and no agent check of its own; the spool now or at `takeSpool`. */
  const startWorker = async (worker: NonNullable<StratumServiceOptions['worker']>): Promise<void> => {
    agentPort = worker.agentPort;
    const m = newMetrics();
    const jobs = await openCommon(m);
    const workerSink = new WorkerShareSink(worker.standby ? (worker.appendElsewhere ?? null) : null);
    sink = workerSink;
    const srv = await openServer(jobs, workerSink);
    await srv.start({ port: worker.port });
    cleanup.push(followDaemonHealth(jobs, srv));
    await openHttp(srv, m, jobs);
    if (!worker.standby) {
      await takeSpool();
      return;
    }
    // The reporter ring's layout (every bucket's virtual nodes hashed and sorted: 0.15 s of CPU
    // idle, over 1 s under load) is built once per process, at the forwarder's first ring. A
    // standby builds it now: at `takeSpool` the miners' shares wait for the spool meanwhile.
    new BucketRing([], options.ring);
  };

  const takeSpool = async (): Promise<{ ownedMs: number }> => {
    if (!server || !metrics || !sink) throw new Error(`stratum service ${id} is not a started worker`);
    if (spool) return { ownedMs: 0 };
    const from = performance.now();
    const opened = await openSpool();
    const m = metrics;
    const fwd = openForwarder(opened, m);
    // Closed after the server (whose share sink seals the spool): first in the list, undone last.
    cleanup.unshift(() => fwd.close());
    cleanup.unshift(() => opened.close());
    sink.own(opened);
    const ownedMs = Math.round(performance.now() - from);
    await fwd.start();
    await register(server, fwd, m);
    return { ownedMs };
  };

  const drain = async (): Promise<void> => {
    if (!server || !feed || !forwarder) return;
    logger.info({ stratumId: id }, 'stratum: draining');
    stopping = true;
    // Candidates still waiting for a jobmanager are given up now (each logged with its request),
    // so the drain does not wait on them.
    feed.releaseBlocks('the stratum server stopped before any jobmanager answered');
    metrics?.draining(true);
    await registration?.update({ state: 'draining' }).catch(() => {});
    // HAProxy takes the server out through its follower (the registry) or the agent check; until
    // then it would route miners sent away straight back here.
    await new Promise((resolve) => setTimeout(resolve, drainAnnounceMs));
    // Miners are sent elsewhere, then the share sink closes: the open segment is sealed into a
    // last batch, which the forwarder still carries.
    await server.drain();
    const fwd = forwarder;
    let timer: NodeJS.Timeout | undefined;
    const flushed = await Promise.race([
      fwd.whenIdle().then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), flushTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!flushed) {
      logger.warn(
        { backlogBatches: fwd.stats().backlogBatches },
        'stratum: reporters did not take the whole spool; it stays on disk for the next start',
      );
    }
  };

  return {
    id,
    chain,
    version: serviceVersion,
    get port() {
      return server?.port ?? 0;
    },
    get server() {
      return server;
    },
    stats: () => server?.stats() ?? null,
    async start() {
      try {
        await start();
      } catch (error) {
        await unwind().catch(() => {});
        throw error;
      }
    },
    drain() {
      drainDone ??= drain();
      return drainDone;
    },
    close() {
      closeDone ??= unwind();
      return closeDone;
    },
    worker: options.worker
      ? {
          acceptSocket(socket) {
            if (server) server.acceptSocket(socket);
            else socket.destroy();
          },
          listenOn(listener) {
            if (server) server.useListener(listener);
            else listener.close();
          },
          releaseListener: () => server?.releaseListener() ?? null,
          agentWord: () => (stopping || !server ? 'drain' : agentWordFor(server.stats())),
          appendForPeer(share) {
            if (!spool || closeDone || retiring) {
              return Promise.reject(new Error(`stratum worker ${process.pid} holds no spool`));
            }
            return spool.append(share);
          },
          holdShares: () => sink?.hold() ?? Promise.resolve(),
          async retire() {
            retiring = true;
            // The next worker's shares wait for the spool meanwhile: what it takes over goes
            // first (the registration no longer refreshed, the forwarder stopped, the spool
            // sealed and closed); the rest closes with `close()`.
            await registration?.release();
            await forwarder?.close();
            spool?.close();
          },
          takeSpool,
        }
      : null,
  };
}
