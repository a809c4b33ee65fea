import { EventEmitter } from 'node:events';
import { type BlockList, type Server, type Socket, createServer } from 'node:net';
import {
  type Job,
  type KeyBuilder,
  ServerMethod,
  type Share,
  type StratumErrorTuple,
  type StratumRequest,
  formatNotification,
  formatResponse,
} from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';
import { PayoutAddressCache } from './address-cache.js';
import { type CloseReason, Connection } from './connection.js';
import { DEFAULT_JOB_DIFFICULTIES, createJobDifficulties } from './difficulty.js';
import { type DispatchHost, dispatchLine } from './dispatch.js';
import { drainConnections } from './drain.js';
import type { ExtranonceAllocator } from './extranonce.js';
import {
  HANDOFF_WAVE_SIZE,
  type HandedSession,
  type SessionReceiver,
  handedSession,
  startReading,
  stopReading,
} from './handover.js';
import { type IntakeHost, plainAddress, readChunk, releaseHeld } from './intake.js';
import { type HandedJob, JobBook } from './job-book.js';
import { JobError, type PreparedJob } from './job.js';
import { AddressLimiter } from './limits.js';
import { listenOnRange } from './listen.js';
import { newSessionId } from './methods.js';
import type { BlockSink, JobSource, ResolvedStratumOptions, ShareSink, StratumLogger } from './options.js';
import { isTrustedProxy, trustedProxies } from './proxy-protocol.js';
import { SessionKeeper } from './session-keeper.js';
import { SessionStore } from './session-store.js';
import { type SessionState, beforeJobSent, isResumable, newSessionState } from './session.js';
import { type BlockEvent, type ShareHost, SharePipeline } from './shares.js';
import type { ShareBatch, ShareSpool, SpoolStats } from './spool.js';
import { sendMinersAway } from './suspend.js';
import { ShareRejectReason, ShareValidator, type ShareVerdict } from './validate.js';
import { vardiffOnShare, vardiffOnTick } from './vardiff.js';

export interface DisconnectEvent {
  sessionId: string;
  connId: string;
  ip: string;
  reason: CloseReason;
  subscribed: boolean;
}

export interface StratumServerEvents {
  /** A spool batch sealed (only with the default ShareSpool): forward it to a reporter. */
  batch: [ShareBatch];
  /** A share was judged (accepted ones once written). */
  share: [Share];
  /** A block candidate's submission finished. */
  block: [BlockEvent];
  /** A job was taken into the job book and sent to the sessions. */
  job: [PreparedJob];
  disconnect: [DisconnectEvent];
  error: [Error];
}

export interface StratumStats {
  id: string;
  port: number;
  /** `suspended`: running, but sending miners away (no real work; see `suspend()`). */
  state: 'created' | 'running' | 'suspended' | 'draining' | 'closed';
  /** Why the server is suspended (the operator's text), null when it is not. */
  suspendedReason: string | null;
  connections: number;
  sessions: number;
  mining: number;
  addresses: number;
  bans: number;
  extranonceSlot: number | null;
  currentJobId: string | null;
  shares: {
    accepted: number;
    stale: number;
    duplicate: number;
    lowdiff: number;
    invalid: number;
    blocks: number;
    /** Shares that failed the share schema and were not spooled (a bug; each one is logged). */
    unspoolable: number;
  };
  closed: Partial<Record<CloseReason, number>>;
  spool: SpoolStats | null;
}

/** Internals the server is built from; see `createStratumServer`. */
export interface StratumServerParts {
  options: ResolvedStratumOptions;
  redis: RedisClient;
  keys: KeyBuilder;
  jobs: JobSource;
  shareSink: ShareSink;
  spool: ShareSpool | null;
  blockSink: BlockSink;
  allocator: ExtranonceAllocator;
}

/** After a last error line, how long a miner has to read it before the socket is destroyed. */
const LINGER_MS = 2000;
/**
 * A connection whose session another server takes over waits at most this long for the
 * answers to its shares in flight before it is closed.
 */
const TAKEOVER_SETTLE_MS = 1000;
/**
 * A connection handed to another process (`handOffSessions`) waits at most this long for the
 * answers to its shares in flight: they depend only on validation and the local spool write,
 * which a loaded machine can make take seconds. The socket moves only once they are out (an
 * answer due after `letGo` would never be written); past this bound the connection is closed
 * instead, so its miner sees a disconnect, not a submit left unanswered on a live connection.
 */
const HANDOFF_ANSWERS_MS = 30_000;
/** Reasons that come with a last message worth delivering (or answers to shares). */
const LINGER: ReadonlySet<CloseReason> = new Set([
  'replaced',
  'line-too-long',
  'too-many-errors',
  'banned',
  'socket-error',
  'suspended',
]);

/** What the connection, method and share code call back into: the server's private context. */
type ServerHost = DispatchHost & IntakeHost & ShareHost;

export class StratumServer extends EventEmitter<StratumServerEvents> {
  readonly id: string;
  readonly chain: string;
  /** Holds this server's extranonce1 claims (read-only use: tests, tools). */
  readonly allocator: ExtranonceAllocator;
  /** The jobs sent to miners and still answerable (read-only use: tests, tools). */
  readonly book: JobBook;
  private readonly options: ResolvedStratumOptions;
  private readonly store: SessionStore;
  private readonly keeper: SessionKeeper;
  private readonly validator: ShareValidator;
  private readonly shareSink: ShareSink;
  private readonly blockSink: BlockSink;
  /** The default share spool (null when a custom share sink was given). */
  readonly spool: ShareSpool | null;
  private readonly logger: StratumLogger;
  private readonly payoutAddresses: PayoutAddressCache;
  private readonly spoolRejected: boolean;
  private mask: number;
  private readonly jobs: JobSource;
  private readonly trusted: BlockList;
  private readonly limiter: AddressLimiter;
  private readonly host: ServerHost;
  private readonly pipeline: SharePipeline;
  private readonly connections = new Set<Connection>();
  private readonly bySession = new Map<string, Connection>();
  private readonly mining = new Set<Connection>();
  private listener: Server | null = null;
  private boundPort = 0;
  private phase: 'created' | 'running' | 'draining' | 'closed' = 'created';
  private suspension: { reason: string; since: number } | null = null;
  private leaveTimer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | undefined;
  private sweepTimer: NodeJS.Timeout | null = null;
  private refreshTimer: NodeJS.Timeout | null = null;
  private connSeq = 0;
  private drainDone: Promise<void> | null = null;
  private closeDone: Promise<void> | null = null;
  /** Sessions were handed to another server (`handOffSessions`). */
  private handedOff = false;
  private readonly limitLogged = new Map<string, number>();
  private emptyWaiters: (() => void)[] = [];
  private readonly shareCounts = {
    accepted: 0,
    stale: 0,
    duplicate: 0,
    lowdiff: 0,
    invalid: 0,
    blocks: 0,
    unspoolable: 0,
  };
  private readonly closedCounts: StratumStats['closed'] = {};

  constructor(parts: StratumServerParts) {
    super();
    const { options } = parts;
    this.options = options;
    this.id = options.id;
    this.chain = options.chain;
    this.logger = options.logger;
    this.mask = options.versionMask;
    this.spoolRejected = options.spoolRejectedShares;
    this.jobs = parts.jobs;
    this.shareSink = parts.shareSink;
    this.spool = parts.spool;
    this.blockSink = parts.blockSink;
    this.allocator = parts.allocator;
    this.store = new SessionStore({
      redis: parts.redis,
      keys: parts.keys,
      chain: options.chain,
      stratumId: options.id,
      ttlMs: options.sessionTtlMs,
    });
    this.payoutAddresses = new PayoutAddressCache(options.params);
    this.book = new JobBook({
      chain: options.chain,
      params: options.params,
      extranonce1Size: options.extranonce1Size,
      extranonce2Size: options.extranonce2Size,
      payoutScript: (address) => this.payoutAddresses.script(address),
    });
    this.keeper = new SessionKeeper({
      store: this.store,
      allocator: this.allocator,
      logger: this.logger,
      sessionTtlMs: options.sessionTtlMs,
    });
    this.validator = new ShareValidator({ ntimeMaxAheadSec: options.ntimeMaxAheadSeconds });
    this.trusted = trustedProxies(options.trustedProxies);
    this.limiter = new AddressLimiter(options.limits);
    this.host = this.privateContext();
    this.pipeline = new SharePipeline(this.host);
    this.spool?.on('batch', (batch) => this.emit('batch', batch));
    this.spool?.on('error', (error) => this.report(error));
    this.allocator.on('error', (error) => this.report(error));
    this.allocator.serveTakeovers((extranonce1, sessionId) => this.handOver(extranonce1, sessionId));
  }

  /** The port miners connect to (0 before `start()`). */
  get port(): number {
    return this.boundPort;
  }

  /** Version bits miners may roll now (see `setVersionMask`). */
  get versionMask(): number {
    return this.mask;
  }

  /** Resolves once every share received so far is answered (tests, tools). */
  settleShares(): Promise<void> {
    return this.pipeline.settle();
  }

  /**
   * Binds the first free port of the range, takes jobs, starts the timers. With `accepted`
   * (a worker under a stratum master) nothing is bound: the master owns the miner port
   * (`accepted.port`) and passes each connection to `acceptSocket`.
   */
  async start(accepted?: { port: number }): Promise<void> {
    if (this.phase !== 'created') throw new Error(`stratum server ${this.id} was already started`);
    if (accepted) {
      this.boundPort = accepted.port;
    } else {
      const listener = createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 });
      listener.on('connection', (socket) => this.onConnection(socket));
      listener.on('error', (error) => this.report(error));
      this.boundPort = await listenOnRange(listener, this.options.host, this.options.ports);
      this.listener = listener;
    }
    this.phase = 'running';
    const current = this.jobs.current();
    if (current) this.takeJob(current);
    this.unsubscribe = this.jobs.onJob((job) => this.takeJob(job));
    this.sweepTimer = setInterval(() => this.sweep(), this.options.sweepIntervalMs);
    this.sweepTimer.unref();
    this.refreshTimer = setInterval(
      () => this.keeper.refresh(this.connections),
      Math.floor(this.options.sessionTtlMs / 3),
    );
    this.refreshTimer.unref();
    this.logger.info({ stratumId: this.id, port: this.boundPort, chain: this.chain }, 'stratum: listening');
  }

  stats(): StratumStats {
    let sessions = 0;
    for (const conn of this.connections) if (conn.state.subscribed) sessions++;
    const limiter = this.limiter.stats();
    return {
      id: this.id,
      port: this.boundPort,
      state: this.phase === 'running' && this.suspension ? 'suspended' : this.phase,
      suspendedReason: this.suspension?.reason ?? null,
      connections: this.connections.size,
      sessions,
      mining: this.mining.size,
      addresses: limiter.addresses,
      bans: limiter.bans,
      extranonceSlot: this.allocator.slot,
      currentJobId: this.book.current?.jobId ?? null,
      shares: { ...this.shareCounts },
      closed: { ...this.closedCounts },
      spool: this.spool?.stats() ?? null,
    };
  }

  /** The live sessions' plain state (read-only use: tests, status pages). */
  sessions(): SessionState[] {
    return [...this.connections].filter((c) => c.state.subscribed).map((c) => c.state);
  }

  /**
   * The context the connection, method and share code work through: the server's internals,
   * reachable there and nowhere else.
   */
  private privateContext(): ServerHost {
    const server = this;
    return {
      get chain() {
        return server.chain;
      },
      get options() {
        return server.options;
      },
      get store() {
        return server.store;
      },
      get allocator() {
        return server.allocator;
      },
      get book() {
        return server.book;
      },
      get validator() {
        return server.validator;
      },
      get shareSink() {
        return server.shareSink;
      },
      get blockSink() {
        return server.blockSink;
      },
      get spoolRejected() {
        return server.spoolRejected;
      },
      get logger() {
        return server.logger;
      },
      get payoutAddresses() {
        return server.payoutAddresses;
      },
      get soloJob() {
        return server.book.current?.solo != null;
      },
      get versionMask() {
        return server.mask;
      },
      get pipeline() {
        return server.pipeline;
      },
      get suspended() {
        return server.suspension !== null;
      },
      get maxSubmitsInFlight() {
        return server.options.limits.maxSubmitsInFlight;
      },
      admit: (conn, now) => server.admit(conn, now),
      dispatch: (conn, line) => server.dispatch(conn, line),
      releaseHeld: (conn) => server.releaseHeld(conn),
      fail: (conn, error, what) => server.fail(conn, error, what),
      reply: (conn, id, result, error) => server.reply(conn, id, result, error),
      liveSession: (sessionId) => server.liveSession(sessionId),
      bindSession: (conn) => server.bindSession(conn),
      saveSession: (conn) => server.saveSession(conn),
      startMining: (conn) => server.startMining(conn),
      closeConnection: (conn, reason, detail) => server.closeConnection(conn, reason, detail),
      judged: (conn, verdict, now) => server.judged(conn, verdict, now),
      refusedSubmit: (conn, now) => server.refusedSubmit(conn, now),
      unspoolable: (share, problem) => server.unspoolable(share, problem),
      shareEvent: (share) => server.shareEvent(share),
      blockEvent: (event) => server.blockEvent(event),
    };
  }

  // ---- connections -------------------------------------------------------------------

  /**
   * A connection another process accepted on this server's behalf (a stratum master, which
   * never reads it): taken as if this server's own listener had accepted it. Refused (closed)
   * unless the server is running.
   */
  /**
   * Accepts from a listening socket this process was given (a stratum master's miner port, shared
   * with it): each connection as one accepted here. Drain, hand-off and close stop it as they stop
   * the server's own listener.
   */
  useListener(listener: Server): void {
    if (this.phase !== 'running') {
      listener.close();
      return;
    }
    listener.on('connection', (socket) => this.acceptSocket(socket));
    listener.on('error', (error) => this.report(error));
    this.listener?.close();
    this.listener = listener;
  }

  /** Lets go of the listening socket (to send on, then close) and returns it, or null. */
  releaseListener(): Server | null {
    // Still accepting until the caller closes it: what comes until then is a session of this
    // server like any other (handed over with the rest).
    const listener = this.listener;
    this.listener = null;
    return listener;
  }

  acceptSocket(socket: Socket): void {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    this.onConnection(socket);
  }

  private onConnection(socket: Socket): void {
    if (this.phase !== 'running') {
      socket.destroy();
      return;
    }
    const now = Date.now();
    const ip = plainAddress(socket.remoteAddress);
    const state = newSessionState({
      sessionId: newSessionId(),
      connId: `${this.id}-${++this.connSeq}`,
      ip,
      port: socket.remotePort ?? 0,
      difficulty: this.options.vardiff.initialDifficulty,
      now,
    });
    const conn = new Connection(
      socket,
      state,
      this.options.limits.maxLineBytes,
      this.options.limits.maxOutputBytes,
    );
    const trusted =
      this.options.trustedProxies.length > 0 && isTrustedProxy(this.trusted, socket.remoteAddress);
    if (!trusted) {
      // Counted at once: a flood from one address costs no more than accept and close.
      const refused = this.admit(conn, now);
      if (refused) {
        this.closedCounts[refused] = (this.closedCounts[refused] ?? 0) + 1;
        socket.destroy();
        return;
      }
    }
    this.connections.add(conn);
    socket.on('data', (chunk: Buffer) => readChunk(this.host, conn, chunk, trusted));
    socket.on('error', () => this.closeConnection(conn, 'socket-error'));
    socket.on('close', () => this.onClosed(conn));
  }

  /** Counts the connection against its address; the reason (logged) when it is refused. */
  private admit(conn: Connection, now: number): 'banned' | 'per-ip-limit' | 'server-full' | null {
    const refused = this.limiter.admit(conn.state.ip, now);
    if (refused === null) {
      conn.counted = true;
      return null;
    }
    // One line per address and minute: a flood must not become a log flood.
    const key = `${refused}:${conn.state.ip}`;
    if ((this.limitLogged.get(key) ?? 0) < now) {
      this.limitLogged.set(key, now + 60_000);
      this.logger.warn(
        { ip: conn.state.ip, reason: refused, open: this.limiter.connectionsFrom(conn.state.ip) },
        'stratum: connection refused',
      );
    }
    return refused;
  }

  private dispatch(conn: Connection, line: string): void {
    dispatchLine(this.host, conn, line);
  }

  private releaseHeld(conn: Connection): void {
    releaseHeld(this.host, conn);
  }

  private fail(conn: Connection, error: unknown, what: string): void {
    this.logger.error(
      { err: error, sessionId: conn.state.sessionId, connId: conn.state.connId, what },
      'stratum: request failed',
    );
  }

  private reply(
    conn: Connection,
    id: StratumRequest['id'],
    result: unknown,
    error: StratumErrorTuple | null = null,
  ): void {
    if (!conn.write(formatResponse(id, result, error))) this.closeConnection(conn, 'output-overflow');
  }

  private liveSession(sessionId: string): Connection | undefined {
    return this.bySession.get(sessionId);
  }

  private bindSession(conn: Connection): void {
    conn.extranonce1 = Buffer.from(conn.state.extranonce1, 'hex');
    this.bySession.set(conn.state.sessionId, conn);
  }

  /** Writes the session to Redis when what resume needs changed since this connection last wrote it. */
  private saveSession(conn: Connection): void {
    this.keeper.save(conn);
  }

  /**
   * Another server resumes a session live here: no more work or submits on this connection,
   * the answers to its shares in flight go out (for up to TAKEOVER_SETTLE_MS), then it is
   * closed and its newest state saved, all before the claim is detached and the other server
   * gives the miner work.
   */
  private async handOver(extranonce1: string, sessionId: string): Promise<void> {
    const conn = this.bySession.get(sessionId);
    if (!conn || conn.closed || conn.state.extranonce1 !== extranonce1) return;
    this.mining.delete(conn);
    conn.socket.pause();
    if (conn.inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.pipeline.settle(),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, TAKEOVER_SETTLE_MS);
        }),
      ]);
      clearTimeout(timer);
    }
    this.closeConnection(conn, 'replaced', 'session taken over by another server');
    await this.keeper.persist(conn).catch((error: unknown) => {
      this.logger.warn({ err: error, sessionId }, 'stratum: session not saved before takeover');
    });
  }

  private startMining(conn: Connection): void {
    const state = conn.state;
    if (conn.closed || !state.subscribed || state.workers.length === 0 || this.mining.has(conn)) return;
    if (this.suspension) return; // being sent away: no work to give
    this.mining.add(conn);
    const job = this.book.current;
    if (job) this.sendJob(conn, job, true);
  }

  private sendJob(conn: Connection, job: PreparedJob, first: boolean): void {
    let line: Buffer;
    if (job.solo) {
      // SOLO: the coinbase pays this session's address (one line per address per job).
      try {
        line = job.solo.notifyLine(conn.state.account, first);
      } catch (error) {
        this.closeConnection(conn, 'bad-payout-address', (error as Error).message);
        return;
      }
    } else {
      line = first ? job.notifyLineClean : job.notifyLine;
    }
    const announce = beforeJobSent(conn.state, job.jobId, DEFAULT_JOB_DIFFICULTIES);
    let ok: boolean;
    if (announce === null) {
      ok = conn.write(line);
    } else {
      conn.socket.cork();
      ok = conn.write(formatNotification(ServerMethod.SetDifficulty, [announce])) && conn.write(line);
      conn.socket.uncork();
      if (ok && !first) this.saveSession(conn);
    }
    if (!ok) this.closeConnection(conn, 'output-overflow');
  }

  private closeConnection(conn: Connection, reason: CloseReason, detail?: string): void {
    if (conn.closed) return;
    conn.closed = true;
    conn.held = null;
    this.closedCounts[reason] = (this.closedCounts[reason] ?? 0) + 1;
    const fields = {
      sessionId: conn.state.sessionId,
      connId: conn.state.connId,
      ip: conn.state.ip,
      reason,
      detail,
    };
    if (
      reason === 'socket-error' ||
      reason === 'drained' ||
      reason === 'suspended' ||
      reason === 'replaced' ||
      reason === 'server-closed'
    ) {
      this.logger.debug(fields, 'stratum: connection closed');
    } else {
      this.logger.info(fields, 'stratum: connection closed');
    }
    this.forget(conn, reason);
    const socket = conn.socket;
    if (
      LINGER.has(reason) &&
      !socket.destroyed &&
      socket.writableLength <= this.options.limits.maxOutputBytes
    ) {
      // Let the last error line out, but do not wait on a miner that does not read.
      socket.end();
      setTimeout(() => socket.destroy(), LINGER_MS).unref();
    } else {
      socket.destroy();
    }
  }

  private onClosed(conn: Connection): void {
    if (!conn.closed) {
      conn.closed = true;
      conn.held = null;
      this.closedCounts['client-closed'] = (this.closedCounts['client-closed'] ?? 0) + 1;
      this.forget(conn, 'client-closed');
    }
  }

  /** Drops every reference to the connection; its session stays resumable in Redis. */
  private forget(conn: Connection, reason: CloseReason): void {
    if (!this.connections.delete(conn)) return;
    this.mining.delete(conn);
    if (conn.counted) this.limiter.release(conn.state.ip);
    conn.framer.reset();
    const state = conn.state;
    if (this.bySession.get(state.sessionId) === conn) this.bySession.delete(state.sessionId);
    if (state.subscribed && reason !== 'replaced') {
      if (!isResumable(state)) {
        // Never mined: nothing worth resuming. Give its extranonce1 back at once, so a flood
        // of subscribe-and-leave connections does not fill the space for ten minutes.
        this.keeper.discard(state);
      } else {
        // (On close() every session was saved already.)
        if (this.phase !== 'closed') this.keeper.keepResumable(conn);
        this.keeper.detachClaim(state);
      }
    }
    this.emit('disconnect', {
      sessionId: state.sessionId,
      connId: state.connId,
      ip: state.ip,
      reason,
      subscribed: state.subscribed,
    });
    if (this.connections.size === 0) {
      const waiters = this.emptyWaiters;
      this.emptyWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  // ---- jobs and shares -----------------------------------------------------------------

  private takeJob(job: Job): void {
    let outcome: ReturnType<JobBook['add']>;
    try {
      outcome = this.book.add(job);
    } catch (error) {
      if (error instanceof JobError) {
        this.logger.warn({ jobId: job.jobId, code: error.code, err: error.message }, 'stratum: job refused');
        return;
      }
      throw error;
    }
    if (outcome.status === 'fenced') {
      this.logger.warn(
        { jobId: job.jobId, epoch: job.epoch, highestEpoch: outcome.highestEpoch },
        'stratum: job from an old epoch ignored',
      );
      return;
    }
    if (outcome.status !== 'added') return;
    const prepared = outcome.job;
    // One serialisation per job: every session gets the same buffer.
    for (const conn of this.mining) this.sendJob(conn, prepared, false);
    this.logger.debug(
      { jobId: prepared.jobId, clean: outcome.clean, sessions: this.mining.size },
      'stratum: job sent',
    );
    this.emit('job', prepared);
  }

  private judged(conn: Connection, verdict: ShareVerdict, now: number): void {
    const state = conn.state;
    const counters = state.counters;
    counters[verdict.result]++;
    this.shareCounts[verdict.result]++;
    if (verdict.blockCandidate) this.shareCounts.blocks++;
    if (verdict.result === 'accepted') {
      counters.acceptedDiff += verdict.diff;
      if (vardiffOnShare(state, now, this.options.vardiff) !== null) this.saveSession(conn);
    }
    // A stale job is normal around a block; a job never sent to this session (or long gone) is not.
    if (verdict.result === 'stale' && verdict.reason !== ShareRejectReason.JobNotFound) return;
    this.scoreSubmit(conn, verdict.result !== 'accepted', now);
  }

  private refusedSubmit(conn: Connection, now: number): void {
    this.scoreSubmit(conn, true, now);
  }

  private unspoolable(share: Share, problem: string): void {
    this.shareCounts.unspoolable++;
    this.logger.error(
      { sessionId: share.sessionId, result: share.result, problem },
      'stratum: share fails the share schema, not spooled',
    );
  }

  /** One submit toward the address's ban window; a full window with too many bad ones bans the address. */
  private scoreSubmit(conn: Connection, bad: boolean, now: number): void {
    const state = conn.state;
    const ratio = this.limiter.score(state.ip, bad, now);
    if (ratio === null) return;
    this.logger.warn(
      {
        ip: state.ip,
        sessionId: state.sessionId,
        worker: state.worker,
        ratio,
        until: now + this.options.limits.banDurationMs,
      },
      'stratum: address banned for bad submits',
    );
    // Every connection of the address goes; each answers what it has first (next turn).
    for (const other of this.connections) {
      if (other.state.ip !== state.ip) continue;
      setImmediate(() => this.closeConnection(other, 'banned', `bad submit ratio ${ratio.toFixed(2)}`));
    }
  }

  private shareEvent(share: Share): void {
    if (this.listenerCount('share') > 0) this.emit('share', share);
  }

  private blockEvent(event: BlockEvent): void {
    this.emit('block', event);
  }

  // ---- timers -------------------------------------------------------------------------

  private sweep(): void {
    const now = Date.now();
    const { authTimeoutMs, idleTimeoutMs } = this.options.limits;
    for (const conn of this.connections) {
      const state = conn.state;
      if (state.workers.length === 0 || !state.subscribed) {
        if (now - state.connectedAt > authTimeoutMs) this.closeConnection(conn, 'auth-timeout');
        continue;
      }
      if (now - Math.max(state.lastSubmitAt, state.connectedAt) > idleTimeoutMs) {
        this.closeConnection(conn, 'idle-timeout');
        continue;
      }
      if (vardiffOnTick(state, now, this.options.vardiff) !== null) this.saveSession(conn);
    }
    this.limiter.sweep(now);
    for (const [key, until] of this.limitLogged) if (until < now) this.limitLogged.delete(key);
  }

  // ---- runtime changes -----------------------------------------------------------------

  /**
   * Changes the version bits miners may roll; sessions rolling versions get their new
   * negotiated mask with `mining.set_version_mask`.
   */
  setVersionMask(mask: number): void {
    if (!Number.isInteger(mask) || mask < 0 || mask > 0xffffffff) {
      throw new RangeError(`version mask must be a 32-bit unsigned integer, got ${mask}`);
    }
    this.mask = mask >>> 0;
    for (const conn of this.connections) {
      const state = conn.state;
      if (state.minerVersionMask === 0) continue;
      const next = (state.minerVersionMask & this.mask) >>> 0;
      if (next === state.versionMask) continue;
      state.versionMask = next;
      const line = formatNotification(ServerMethod.SetVersionMask, [next.toString(16).padStart(8, '0')]);
      if (!conn.write(line)) this.closeConnection(conn, 'output-overflow');
      else this.saveSession(conn);
    }
  }

  /**
   * Gives a live session a new extranonce1 with `mining.set_extranonce` (only to miners that
   * subscribed to it), then its current job again, clean. Jobs sent before carry the old
   * extranonce1, so shares on them are answered 21. False when the session is not here or
   * the miner cannot take it.
   */
  async renewExtranonce(sessionId: string): Promise<boolean> {
    const conn = this.bySession.get(sessionId);
    if (!conn || !conn.state.extranonceSubscribed) return false;
    const state = conn.state;
    const old = state.extranonce1;
    const next = await this.allocator.allocate(sessionId);
    if (conn.closed) {
      await this.allocator.release(next, sessionId);
      return false;
    }
    state.extranonce1 = next;
    conn.extranonce1 = Buffer.from(next, 'hex');
    state.jobDiffs = createJobDifficulties();
    const line = formatNotification(ServerMethod.SetExtranonce, [next, this.options.extranonce2Size]);
    if (!conn.write(line)) {
      this.closeConnection(conn, 'output-overflow');
      return false;
    }
    const job = this.book.current;
    if (job && this.mining.has(conn)) this.sendJob(conn, job, true);
    this.saveSession(conn);
    await this.allocator.release(old, sessionId);
    return true;
  }

  /** Sends `client.reconnect` to one live session (an operator moving a miner); false when it is not here. */
  async reconnectSession(sessionId: string): Promise<boolean> {
    const conn = this.bySession.get(sessionId);
    if (!conn) return false;
    // Saved first, so the server the miner lands on resumes the newest state.
    await this.keeper.persist(conn);
    if (conn.closed) return false;
    this.reconnect(conn);
    return true;
  }

  private reconnect(conn: Connection): void {
    const to = this.options.drain.reconnectTo;
    const params = to ? [to.host, to.port, to.waitSeconds ?? 0] : [];
    if (!conn.write(formatNotification(ServerMethod.Reconnect, params)))
      this.closeConnection(conn, 'output-overflow');
  }

  // ---- no real work ------------------------------------------------------------------

  /** Whether miners are being sent away (see `suspend()`). */
  get suspended(): boolean {
    return this.suspension !== null;
  }

  /**
   * The pool has no real work (no coin daemon answers behind any jobmanager): sends every
   * session away — `client.reconnect` to `daemonLoss.reconnectTo` (closing those still here
   * after `daemonLoss.graceMs`), or without a backup pool a `client.show_message` and a
   * clean close — and refuses new miners with a stratum error until `resume()`. Sessions stay
   * resumable in Redis, so miners that come back continue where they were. `reason` is for
   * the log; miners get a fixed text.
   */
  suspend(reason: string): void {
    if (this.phase === 'draining' || this.phase === 'closed') return;
    if (this.suspension) {
      this.suspension.reason = reason;
      return;
    }
    this.suspension = { reason, since: Date.now() };
    const to = this.options.daemonLoss.reconnectTo;
    this.logger.warn(
      {
        stratumId: this.id,
        reason,
        sessions: this.connections.size,
        ...(to && { reconnectTo: `${to.host}:${to.port}` }),
      },
      'stratum: suspended, sending miners away',
    );
    this.leaveTimer = sendMinersAway({
      connections: () => [...this.connections],
      stopJobs: (conn) => this.mining.delete(conn),
      close: (conn, detail) => this.closeConnection(conn, 'suspended', detail),
      overflow: (conn) => this.closeConnection(conn, 'output-overflow'),
      reconnectTo: to,
      graceMs: this.options.daemonLoss.graceMs,
    });
  }

  /** Real work is back: miners are accepted again. */
  resume(): void {
    const suspension = this.suspension;
    if (!suspension) return;
    this.suspension = null;
    if (this.leaveTimer) clearTimeout(this.leaveTimer);
    this.leaveTimer = null;
    this.logger.info(
      { stratumId: this.id, suspendedMs: Date.now() - suspension.since },
      'stratum: resumed, accepting miners',
    );
  }

  // ---- handover to another process -----------------------------------------------------

  /**
   * Hands every session, with its open TCP connection, to another stratum server (the next
   * version of this one), `waveSize` sessions moving at a time: each connection stops reading at
   * once (what the miner sends from then on waits in the kernel), the answers to its requests
   * in flight and what it had written go out, its extranonce1 claim is detached, and `receive`
   * gets the session and the socket. New connections are refused from the start. Resolves with
   * the number of sessions handed over; close the server afterwards. A session `receive`
   * fails on is closed: its miner reconnects and resumes as after any disconnect; so is one
   * whose shares are still unanswered after HANDOFF_ANSWERS_MS.
   */
  async handOffSessions(receive: SessionReceiver, waveSize = HANDOFF_WAVE_SIZE): Promise<number> {
    if (this.phase !== 'running') throw new Error(`stratum server ${this.id} is ${this.phase}, not running`);
    this.phase = 'draining';
    this.handedOff = true;
    this.listener?.close();
    // Each session takes the share keys credited to its extranonce1 (the key's first bytes), so a
    // share it sent here is a duplicate there too: those held now, and those taken until it leaves.
    const e1Size = this.options.extranonce1Size;
    const accepted = new Map<string, [jobId: string, key: string][]>();
    const note = (jobId: string, key: string) => {
      const e1 = key.slice(0, e1Size);
      const list = accepted.get(e1);
      if (list) list.push([jobId, key]);
      else accepted.set(e1, [[jobId, key]]);
    };
    for (const [jobId, key] of this.book.acceptedKeys()) note(jobId, key);
    const unwatch = this.book.watchAccepted(note);
    let moved = 0;
    try {
      moved = await this.handOffWaves(receive, waveSize, accepted);
    } finally {
      unwatch();
    }
    this.logger.info({ stratumId: this.id, moved }, 'stratum: sessions handed over');
    return moved;
  }

  /**
   * Moves the sessions `waveSize` at a time, each on its own: when one has gone the next stops
   * reading, so a session waits for the few moving beside it, never for a whole wave's slowest.
   */
  private async handOffWaves(
    receive: SessionReceiver,
    waveSize: number,
    accepted: Map<string, [jobId: string, key: string][]>,
  ): Promise<number> {
    let moved = 0;
    const moving = new Set<Connection>();
    // Once one connection waited the whole HANDOFF_ANSWERS_MS, the spool is stuck, not slow: the
    // others wait the short bound, so the switch does not take that long per connection.
    const wait = { ms: HANDOFF_ANSWERS_MS };
    const next = (): Connection | undefined => {
      for (const conn of this.connections) if (!conn.closed && !moving.has(conn)) return conn;
      return undefined;
    };
    const lane = async () => {
      for (let conn = next(); conn; conn = next()) {
        moving.add(conn);
        if (await this.handOffOne(conn, receive, accepted, wait)) moved++;
        moving.delete(conn);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, waveSize) }, lane));
    return moved;
  }

  /** Stops one connection at a line boundary and hands it over; false when it was closed instead. */
  private async handOffOne(
    conn: Connection,
    receive: SessionReceiver,
    accepted: Map<string, [jobId: string, key: string][]>,
    wait: { ms: number },
  ): Promise<boolean> {
    const stoppedAt = Date.now();
    this.mining.delete(conn);
    stopReading(conn.socket);
    // Its answers first: after `letGo` an answer still due is dropped (the connection is closed
    // to this server), and nothing carries it to the new owner.
    await this.settleWave([conn], wait.ms);
    if (!conn.closed && conn.inFlight > 0) {
      wait.ms = TAKEOVER_SETTLE_MS;
      // Shares still not answered (a stuck spool): the miner resumes after a reconnect, knowing
      // those submits went unanswered, rather than waiting on them forever on a live connection.
      this.closeConnection(conn, 'replaced', 'handed over before its shares were answered');
      return false;
    }
    const flushed = await written(conn.socket, TAKEOVER_SETTLE_MS);
    if (conn.closed) return false;
    if (conn.held !== null) {
      // A subscribe that Redis did not answer in time: the miner resumes after a reconnect.
      this.closeConnection(conn, 'replaced', 'handed over before its subscribe was answered');
      return false;
    }
    if (!flushed) {
      this.closeConnection(conn, 'output-overflow');
      return false;
    }
    const keys = accepted.get(conn.extranonce1.toString('latin1')) ?? [];
    const session = handedSession(conn, keys, stoppedAt);
    this.letGo(conn);
    const state = conn.state;
    try {
      if (state.subscribed && state.extranonce1) {
        await this.allocator.detach(state.extranonce1, state.sessionId);
      }
      session.sentAt = Date.now();
      await receive(session, conn.socket);
      return true;
    } catch (error) {
      this.logger.warn({ err: error, sessionId: state.sessionId }, 'stratum: session not handed over');
      conn.socket.destroy();
      return false;
    }
  }

  /**
   * Waits for the answers to a wave's shares in flight (at most `ms`) and for subscribes being
   * answered (at most TAKEOVER_SETTLE_MS). Only the wave's: the other miners keep submitting
   * meanwhile, so the whole pipeline may never be idle.
   */
  private async settleWave(wave: Connection[], ms: number): Promise<void> {
    const started = Date.now();
    const busy = () => {
      const waited = Date.now() - started;
      return wave.some(
        (c) =>
          !c.closed && ((c.inFlight > 0 && waited < ms) || (c.held !== null && waited < TAKEOVER_SETTLE_MS)),
      );
    };
    while (busy()) {
      // Answers come from Redis and the spool: look again on the next turns of the loop.
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  /** Drops a connection handed to another server without closing its socket or its session. */
  private letGo(conn: Connection): void {
    conn.closed = true;
    conn.held = null;
    for (const event of ['data', 'error', 'close'] as const) conn.socket.removeAllListeners(event);
    this.connections.delete(conn);
    this.mining.delete(conn);
    if (conn.counted) this.limiter.release(conn.state.ip);
    if (this.bySession.get(conn.state.sessionId) === conn) this.bySession.delete(conn.state.sessionId);
    if (this.connections.size === 0) {
      const waiters = this.emptyWaiters;
      this.emptyWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /** The jobs a miner may still submit on (current and stale), for the server taking over (`adoptJobs`). */
  handedJobs(): HandedJob[] {
    return this.book.handed();
  }

  /**
   * Takes the jobs of the server whose sessions this one is about to adopt (its `handedJobs()`),
   * so a share on an earlier job those miners still work on is judged as it was there. Returns
   * how many jobs were new here.
   */
  adoptJobs(jobs: readonly HandedJob[]): number {
    return this.book.adopt(jobs);
  }

  /**
   * Takes over a session another server handed off (`handOffSessions`) on its open socket:
   * claims its extranonce1 (which the old owner detached), reads on after the unfinished line
   * the old owner had read, and sends the current job if the miner does not have it yet. False
   * (and the socket closed: the miner reconnects and resumes) when the claim went to another
   * connection meanwhile, or this server is not running.
   */
  async adoptSession(socket: Socket, session: HandedSession): Promise<boolean> {
    const state = session.state;
    if (this.phase !== 'running') {
      socket.destroy();
      return false;
    }
    const conn = new Connection(
      socket,
      state,
      this.options.limits.maxLineBytes,
      this.options.limits.maxOutputBytes,
    );
    conn.headerDone = session.headerDone;
    conn.preamble = session.preamble ? Buffer.from(session.preamble, 'base64') : null;
    conn.saved = session.saved;
    conn.ttlStartedAt = session.ttlStartedAt;
    if (state.subscribed && state.extranonce1) {
      const claim = await this.allocator.reclaim(state.extranonce1, state.sessionId).catch(() => 'error');
      if (claim !== 'held') {
        this.logger.warn({ sessionId: state.sessionId, claim }, 'stratum: handed session not adopted');
        socket.destroy();
        return false;
      }
      this.bindSession(conn);
    }
    if (session.counted) this.admit(conn, Date.now());
    for (const [jobId, key] of session.accepted ?? []) {
      this.book.get(jobId)?.dedupe.add(Buffer.from(key, 'base64').toString('latin1'));
    }
    const unfinished = Buffer.from(session.unfinished, 'base64');
    if (unfinished.length > 0) conn.framer.push(unfinished);
    const trusted =
      this.options.trustedProxies.length > 0 && isTrustedProxy(this.trusted, socket.remoteAddress);
    this.connections.add(conn);
    socket.on('data', (chunk: Buffer) => readChunk(this.host, conn, chunk, trusted));
    socket.on('error', () => this.closeConnection(conn, 'socket-error'));
    socket.on('close', () => this.onClosed(conn));
    if (socket.destroyed) {
      this.onClosed(conn);
      return false;
    }
    if (state.subscribed && state.workers.length > 0 && !this.suspension) {
      this.mining.add(conn);
      const job = this.book.current;
      if (job && !state.jobDiffs.jobIds.includes(job.jobId)) this.sendJob(conn, job, false);
    }
    startReading(socket);
    return true;
  }

  // ---- lifecycle ---------------------------------------------------------------------

  /**
   * Stops taking connections, sends `client.reconnect` in waves (each session saved to
   * Redis first, so the miner resumes elsewhere), waits for the sessions to leave (closing
   * the rest after `drain.graceMs`), then closes the share sink. Resolves with no session left.
   */
  drain(): Promise<void> {
    if (this.drainDone) return this.drainDone;
    this.drainDone = (async () => {
      if (this.phase === 'created' || this.phase === 'closed') return this.close();
      this.phase = 'draining';
      this.listener?.close();
      this.logger.info({ stratumId: this.id, sessions: this.connections.size }, 'stratum: draining');
      await drainConnections({
        connections: () => [...this.connections].filter((c) => !c.closed),
        save: (conn) => this.keeper.persist(conn),
        reconnect: (conn) => this.reconnect(conn),
        waitEmpty: () => this.waitEmpty(),
        closeRest: (conn) => this.closeConnection(conn, 'drain-timeout'),
        waveSize: this.options.drain.waveSize,
        waveIntervalMs: this.options.drain.waveIntervalMs,
        graceMs: this.options.drain.graceMs,
        logger: this.logger,
      });
      await this.close();
    })();
    return this.drainDone;
  }

  private waitEmpty(): Promise<void> {
    if (this.connections.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptyWaiters.push(resolve));
  }

  /** Closes every connection (sessions stay resumable), writes what is queued, releases the slot. */
  close(): Promise<void> {
    if (this.closeDone) return this.closeDone;
    this.closeDone = (async () => {
      this.phase = 'closed';
      this.unsubscribe?.();
      if (this.leaveTimer) clearTimeout(this.leaveTimer);
      if (this.sweepTimer) clearInterval(this.sweepTimer);
      if (this.refreshTimer) clearInterval(this.refreshTimer);
      const listener = this.listener;
      this.listener = null;
      const saves = [...this.connections].map((conn) => this.keeper.persist(conn).catch(() => {}));
      for (const conn of [...this.connections]) this.closeConnection(conn, 'server-closed');
      await Promise.all(saves);
      await this.keeper.settle();
      await this.pipeline.settle();
      await this.shareSink.close?.();
      await this.allocator.close();
      // After a handover the sockets live on elsewhere, still counted by this listener, which
      // would wait for them: it is closed without waiting.
      if (listener && this.handedOff) listener.close();
      else if (listener) await new Promise<void>((resolve) => listener.close(() => resolve()));
      this.logger.info({ stratumId: this.id }, 'stratum: closed');
    })();
    return this.closeDone;
  }

  private report(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else this.logger.error({ err: error }, 'stratum: background error');
  }
}

/** Resolves true once what was written to the socket left this process, false after `timeoutMs`. */
function written(socket: Socket, timeoutMs: number): Promise<boolean> {
  if (socket.writableLength === 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    // Writes complete in order: this one's callback runs once everything before it is out.
    socket.write(Buffer.alloc(0), () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
