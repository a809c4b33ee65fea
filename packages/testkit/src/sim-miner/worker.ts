import {
  BITCOIN_MAIN,
  LITECOIN_MAIN,
  difficultyFromHash,
  scryptHeaders,
  sha256dHeaders,
} from '@hashwire/chain';
import { ClientMethod, ServerMethod, StratumErrorCode, type SubmitParams } from '@hashwire/protocol';
import { NoAnswerError, type ServerMessageHandler, StratumClientConnection } from './connection.js';
import { Signal, pause, yieldTurn } from './signal.js';
import type { SimAlgorithm, SimMinersEvents, SimReconnectEvent, SimShare, SimWorkerStats } from './types.js';
import { type MinerJob, type ShareHit, type WorkBatch, WorkScanner, hex8, parseNotify } from './work.js';

/** Worker settings after defaults; shared by every worker of one handle. */
export interface ResolvedSimOptions {
  host: string;
  port: number;
  algorithm: SimAlgorithm;
  versionRolling: boolean;
  versionRollingMask: number;
  minimumDifficulty: number | undefined;
  suggestDifficulty: number | undefined;
  extranonceSubscribe: boolean;
  recordShares: boolean;
  /** Per worker. */
  hashesPerSecondLimit: number | undefined;
  userAgent: string;
  reconnectOnClose: boolean;
  reconnectDelayMs: number;
  reconnectGraceMs: number;
  requestTimeoutMs: number;
}

/** What a worker reports to its handle. */
export interface WorkerSink {
  emit<K extends keyof SimMinersEvents>(name: K, ...args: SimMinersEvents[K]): void;
  changed(): void;
  record(share: SimShare): void;
}

const MAX_RECONNECT_DELAY_MS = 5000;
const SHA256D_BATCH = 4096;
const SCRYPT_BATCH = 16;
/** With a hash-rate cap, batches are sized to run about this many times a second. */
const PACED_BATCHES_PER_S = 20;
/** Job ids kept valid for submitting after a notify without clean_jobs. */
const LIVE_JOBS_KEPT = 8;
const HEX = /^(?:[0-9a-fA-F]{2})*$/;

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
  settled: boolean;
}

function deferred(): Deferred {
  const d = { settled: false } as Deferred;
  d.promise = new Promise<void>((resolve, reject) => {
    d.resolve = () => {
      d.settled = true;
      resolve();
    };
    d.reject = (err) => {
      d.settled = true;
      reject(err);
    };
  });
  // Only startSimMiners looks at it; never an unhandled rejection.
  d.promise.catch(() => {});
  return d;
}

function errorText(error: unknown): string {
  if (Array.isArray(error)) return String(error[1] ?? error[0]);
  if (error instanceof Error) return error.message;
  return JSON.stringify(error);
}

function parseSubscribeResult(result: unknown): {
  sessionId: string | null;
  extranonce1: Buffer;
  extranonce2Size: number;
} {
  if (!Array.isArray(result) || result.length < 3) {
    throw new Error('subscribe reply must be [subscriptions, extranonce1, extranonce2_size]');
  }
  const [subscriptions, extranonce1, extranonce2Size] = result;
  if (typeof extranonce1 !== 'string' || !HEX.test(extranonce1)) {
    throw new Error('subscribe reply: extranonce1 must be hex');
  }
  if (!Number.isInteger(extranonce2Size) || extranonce2Size < 0 || extranonce2Size > 32) {
    throw new Error('subscribe reply: extranonce2_size must be an integer from 0 to 32');
  }
  // [[method, id], ...] or a single [method, id]; the notify subscription id is the session id.
  const list: unknown[] = Array.isArray(subscriptions)
    ? Array.isArray(subscriptions[0])
      ? subscriptions
      : [subscriptions]
    : [];
  let sessionId: string | null = null;
  for (const entry of list) {
    if (!Array.isArray(entry) || entry[1] === undefined || entry[1] === null) continue;
    if (entry[0] === ServerMethod.Notify || sessionId === null) sessionId = String(entry[1]);
  }
  return { sessionId, extranonce1: Buffer.from(extranonce1, 'hex'), extranonce2Size };
}

function parseMask(value: unknown): number | null {
  return typeof value === 'string' && /^[0-9a-fA-F]{1,8}$/.test(value) ? Number.parseInt(value, 16) : null;
}

/** One simulated miner: one TCP connection at a time, a handshake, a hashing loop. */
export class SimWorker {
  readonly stats: SimWorkerStats;
  /** Resolves when the first `mining.authorize` is answered; rejects if the worker gives up first. */
  readonly ready: Promise<void>;

  private readonly readyState = deferred();
  private readonly abort = new AbortController();
  private readonly wake = new Signal();
  private readonly multiplier: number;
  private stopped = false;
  private conn: StratumClientConnection | null = null;
  private generation = 0;
  private job: MinerJob | null = null;
  private liveJobIds: string[] = [];
  private difficulty = 1;
  private extranonce1: Buffer = Buffer.alloc(0);
  private extranonce2Size = 0;
  private versionMask: number | null = null;
  private redirect: { host: string; port: number; waitMs: number } | null = null;
  private leaving: (() => void) | null = null;
  private runLoop: Promise<void> | null = null;
  private mineLoop: Promise<void> | null = null;

  constructor(
    readonly index: number,
    private readonly username: string,
    private readonly password: string,
    private readonly options: ResolvedSimOptions,
    private readonly sink: WorkerSink,
    private readonly localAddress?: string,
  ) {
    this.ready = this.readyState.promise;
    this.multiplier = (options.algorithm === 'scrypt' ? LITECOIN_MAIN : BITCOIN_MAIN).shareDiffMultiplier;
    this.stats = {
      index,
      username,
      state: 'connecting',
      connected: false,
      authorized: false,
      host: options.host,
      port: options.port,
      sessionId: null,
      extranonce1: null,
      extranonce2Size: null,
      difficulty: null,
      versionMask: null,
      jobId: null,
      jobs: 0,
      reconnects: 0,
      resumes: 0,
      hashes: 0,
      protocolErrors: 0,
      lastDisconnect: null,
      submitted: 0,
      accepted: 0,
      rejected: 0,
      rejectedByCode: {},
      stale: 0,
      duplicate: 0,
      lowDifficulty: 0,
      noAnswer: 0,
      blockCandidates: 0,
      blockCandidatesAccepted: 0,
    };
  }

  start(): void {
    this.runLoop = this.run();
    this.mineLoop = this.mine();
  }

  /** Closes the connection and ends both loops; resolves once the socket is closed. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.conn?.close('stopped');
    this.wake.notify();
    if (!this.readyState.settled) this.readyState.reject(new Error(`worker ${this.index} stopped`));
    await Promise.all([this.runLoop, this.mineLoop]);
    this.stats.state = 'stopped';
    this.sink.changed();
  }

  // ---- connection lifecycle ----

  private async run(): Promise<void> {
    let reason: SimReconnectEvent['reason'] | null = null;
    let delayMs = this.options.reconnectDelayMs;
    while (!this.stopped) {
      let established = false;
      try {
        established = await this.session(reason);
      } catch (err) {
        const reason = `connect failed: ${(err as Error).message}`;
        this.stats.state = 'disconnected';
        this.stats.lastDisconnect = reason;
        this.sink.emit('disconnect', { worker: this.index, reason });
        this.sink.changed();
      }
      if (this.stopped) break;
      const redirect = this.redirect;
      if (redirect) {
        this.redirect = null;
        this.stats.host = redirect.host;
        this.stats.port = redirect.port;
        reason = 'client.reconnect';
        delayMs = this.options.reconnectDelayMs;
        if (redirect.waitMs > 0) await pause(redirect.waitMs, this.abort.signal);
        continue;
      }
      if (!this.options.reconnectOnClose) break;
      reason = 'closed';
      if (established) delayMs = this.options.reconnectDelayMs;
      await pause(delayMs, this.abort.signal);
      delayMs = Math.min(delayMs * 2, MAX_RECONNECT_DELAY_MS);
    }
    if (!this.readyState.settled) {
      this.readyState.reject(
        new Error(
          `worker ${this.index} gave up before authorizing${this.stats.lastDisconnect ? `: ${this.stats.lastDisconnect}` : ''}`,
        ),
      );
    }
  }

  /** One connection from connect to close; false when it closed before the handshake got anywhere. */
  private async session(reason: SimReconnectEvent['reason'] | null): Promise<boolean> {
    this.stats.state = 'connecting';
    const handler: ServerMessageHandler = {
      onMessage: (method, params, id) => {
        if (conn === this.conn) this.onServerMessage(conn, method, params, id);
      },
      onProtocolError: () => {
        this.stats.protocolErrors++;
      },
    };
    const conn: StratumClientConnection = await StratumClientConnection.connect(
      this.stats.host,
      this.stats.port,
      handler,
      this.abort.signal,
      this.localAddress,
    );
    if (this.stopped) {
      conn.close('stopped');
      await conn.closed;
      return false;
    }
    this.conn = conn;
    this.generation++;
    this.stats.connected = true;
    this.stats.state = 'handshake';
    if (reason !== null) this.stats.reconnects++;
    this.sink.changed();
    let subscribed = false;
    try {
      subscribed = await this.handshake(conn, reason);
    } catch (err) {
      conn.close(`handshake failed: ${(err as Error).message}`);
    }
    const why = await conn.closed;
    this.onClosed(why);
    return subscribed;
  }

  private async handshake(
    conn: StratumClientConnection,
    reason: SimReconnectEvent['reason'] | null,
  ): Promise<boolean> {
    const { options } = this;
    const timeoutMs = options.requestTimeoutMs;
    if (options.versionRolling || options.minimumDifficulty !== undefined) {
      const extensions: string[] = [];
      const params: Record<string, unknown> = {};
      if (options.versionRolling) {
        extensions.push('version-rolling');
        params['version-rolling.mask'] = hex8(options.versionRollingMask);
        params['version-rolling.min-bit-count'] = 2;
      }
      if (options.minimumDifficulty !== undefined) {
        extensions.push('minimum-difficulty');
        params['minimum-difficulty.value'] = options.minimumDifficulty;
      }
      const reply = await conn.request(ClientMethod.Configure, [extensions, params], timeoutMs);
      const result = reply.result as Record<string, unknown> | null;
      const mask = result?.['version-rolling'] === true ? parseMask(result['version-rolling.mask']) : null;
      this.setVersionMask(options.versionRolling && mask !== null ? mask & options.versionRollingMask : null);
    }

    const previous = { sessionId: this.stats.sessionId, extranonce1: this.stats.extranonce1 };
    const subscribeParams: unknown[] = [options.userAgent];
    if (previous.sessionId !== null) subscribeParams.push(previous.sessionId);
    const sub = await conn.request(ClientMethod.Subscribe, subscribeParams, timeoutMs);
    if (sub.error) throw new Error(`subscribe refused: ${errorText(sub.error)}`);
    const subscription = parseSubscribeResult(sub.result);
    this.extranonce1 = subscription.extranonce1;
    this.extranonce2Size = subscription.extranonce2Size;
    this.stats.sessionId = subscription.sessionId;
    this.stats.extranonce1 = subscription.extranonce1.toString('hex');
    this.stats.extranonce2Size = subscription.extranonce2Size;
    if (reason !== null) {
      const resumed =
        previous.sessionId !== null &&
        previous.sessionId === subscription.sessionId &&
        previous.extranonce1 === this.stats.extranonce1;
      if (resumed) this.stats.resumes++;
      this.sink.emit('reconnect', {
        worker: this.index,
        host: this.stats.host,
        port: this.stats.port,
        reason,
        resumed,
        sessionId: this.stats.sessionId,
        extranonce1: this.stats.extranonce1,
      });
    }
    this.sink.changed();

    // Servers that do not know these answer with an error or not at all: neither stops mining.
    if (options.extranonceSubscribe) conn.request(ClientMethod.ExtranonceSubscribe, []).catch(() => {});
    if (options.suggestDifficulty !== undefined) {
      conn.request(ClientMethod.SuggestDifficulty, [options.suggestDifficulty]).catch(() => {});
    }

    const auth = await conn.request(ClientMethod.Authorize, [this.username, this.password], timeoutMs);
    const authorized = auth.result === true && !auth.error;
    this.stats.authorized = authorized;
    this.stats.state = authorized ? 'mining' : 'unauthorized';
    this.readyState.resolve();
    this.sink.changed();
    this.wake.notify();
    return true;
  }

  private onClosed(reason: string): void {
    this.conn = null;
    this.job = null;
    this.liveJobIds = [];
    this.leaving = null;
    this.stats.connected = false;
    this.stats.authorized = false;
    this.stats.jobId = null;
    this.stats.lastDisconnect = reason;
    if (!this.stopped) this.stats.state = 'disconnected';
    this.sink.emit('disconnect', { worker: this.index, reason });
    this.sink.changed();
  }

  // ---- server messages ----

  private onServerMessage(
    conn: StratumClientConnection,
    method: string,
    params: unknown[],
    id: unknown,
  ): void {
    switch (method) {
      case ServerMethod.SetDifficulty: {
        const diff = Number(params[0]);
        if (!Number.isFinite(diff) || diff <= 0) {
          this.stats.protocolErrors++;
          return;
        }
        // Like real miners: the job being hashed keeps its difficulty; the next notify takes this one.
        this.difficulty = diff;
        this.stats.difficulty = diff;
        break;
      }
      case ServerMethod.Notify:
        this.onNotify(params);
        break;
      case ServerMethod.SetExtranonce: {
        const [extranonce1, extranonce2Size] = params;
        if (
          typeof extranonce1 !== 'string' ||
          !HEX.test(extranonce1) ||
          !Number.isInteger(extranonce2Size) ||
          (extranonce2Size as number) < 0 ||
          (extranonce2Size as number) > 32
        ) {
          this.stats.protocolErrors++;
          return;
        }
        // Takes effect with the next job, as the extension specifies.
        this.extranonce1 = Buffer.from(extranonce1, 'hex');
        this.extranonce2Size = extranonce2Size as number;
        this.stats.extranonce1 = extranonce1.toLowerCase();
        this.stats.extranonce2Size = extranonce2Size as number;
        break;
      }
      case ServerMethod.SetVersionMask: {
        const mask = parseMask(params[0]);
        if (mask === null) {
          this.stats.protocolErrors++;
          return;
        }
        if (this.options.versionRolling) this.setVersionMask(mask & this.options.versionRollingMask);
        break;
      }
      case ServerMethod.Reconnect:
        this.onReconnectRequest(conn, params);
        break;
      case 'client.get_version':
        conn.reply(id, this.options.userAgent);
        return;
      default:
        if (id !== null) conn.reply(id, null, [StratumErrorCode.Other, `unknown method ${method}`, null]);
        return;
    }
    this.sink.changed();
  }

  private onNotify(params: unknown[]): void {
    let job: MinerJob;
    try {
      job = parseNotify(params, {
        difficulty: this.difficulty,
        shareDiffMultiplier: this.multiplier,
        extranonce1: this.extranonce1,
        extranonce2Size: this.extranonce2Size,
      });
    } catch {
      this.stats.protocolErrors++;
      return;
    }
    this.stats.jobs++;
    if (this.leaving) return;
    // clean_jobs: shares on older jobs would be stale; found ones are dropped, not sent.
    this.liveJobIds = job.cleanJobs
      ? [job.jobId]
      : [...this.liveJobIds.filter((id) => id !== job.jobId), job.jobId].slice(-LIVE_JOBS_KEPT);
    this.job = job;
    this.stats.jobId = job.jobId;
    this.sink.emit('notify', {
      worker: this.index,
      jobId: job.jobId,
      prevhash: job.prevhash,
      cleanJobs: job.cleanJobs,
      difficulty: job.difficulty,
    });
    this.wake.notify();
  }

  private onReconnectRequest(conn: StratumClientConnection, params: unknown[]): void {
    const [host, port, wait] = params;
    const portNumber = typeof port === 'string' ? Number(port) : port;
    this.redirect = {
      host: typeof host === 'string' && host.length > 0 ? host : this.stats.host,
      port:
        typeof portNumber === 'number' && Number.isInteger(portNumber) && portNumber > 0 && portNumber < 65536
          ? portNumber
          : this.stats.port,
      waitMs: typeof wait === 'number' && wait > 0 ? Math.min(wait, 3600) * 1000 : 0,
    };
    // Stop hashing here, wait (bounded) for the answers to shares in flight, then go.
    this.job = null;
    this.liveJobIds = [];
    this.stats.jobId = null;
    const timer = setTimeout(() => conn.close('client.reconnect'), this.options.reconnectGraceMs);
    void conn.closed.then(() => clearTimeout(timer));
    this.leaving = () => {
      if (conn.pendingCount === 0) conn.close('client.reconnect');
    };
    this.leaving();
  }

  private setVersionMask(mask: number | null): void {
    this.versionMask = mask;
    this.stats.versionMask = mask === null ? null : hex8(mask);
  }

  // ---- hashing ----

  private batchSize(): number {
    const base = this.options.algorithm === 'scrypt' ? SCRYPT_BATCH : SHA256D_BATCH;
    const limit = this.options.hashesPerSecondLimit;
    if (limit === undefined) return base;
    return Math.max(1, Math.min(base, Math.floor(limit / PACED_BATCHES_PER_S)));
  }

  private async mine(): Promise<void> {
    const scanner = new WorkScanner();
    const limit = this.options.hashesPerSecondLimit;
    let paceStart = 0;
    let paceHashes = 0;
    let idle = true;
    while (!this.stopped) {
      const job = this.job;
      if (job === null || !this.stats.authorized) {
        idle = true;
        await this.wake.wait();
        continue;
      }
      if (idle) {
        idle = false;
        paceStart = performance.now();
        paceHashes = 0;
      }
      scanner.use(job, this.versionMask);
      const generation = this.generation;
      const batch = scanner.fill(this.batchSize());
      const hashes =
        this.options.algorithm === 'scrypt'
          ? await scryptHeaders(batch.headers, { parallelism: 1 })
          : sha256dHeaders(batch.headers);
      this.stats.hashes += batch.count;
      for (const hit of scanner.scan(batch, hashes)) this.submit(batch, hit, generation);
      this.sink.changed();
      if (limit !== undefined) {
        paceHashes += batch.count;
        const aheadMs = paceStart + (paceHashes / limit) * 1000 - performance.now();
        if (aheadMs > 0) {
          await pause(aheadMs, this.abort.signal);
          continue;
        }
      }
      await yieldTurn();
    }
  }

  private submit(batch: WorkBatch, hit: ShareHit, generation: number): void {
    const conn = this.conn;
    const { job } = batch;
    // Work that no longer counts: another connection, a cleaned job, a narrowed mask.
    if (this.stopped || conn === null || generation !== this.generation || this.leaving) return;
    if (!this.liveJobIds.includes(job.jobId)) return;
    if (
      batch.versionBits !== null &&
      (this.versionMask === null || (batch.versionBits & ~this.versionMask) !== 0)
    )
      return;
    const extranonce2 = batch.extranonce2.toString('hex');
    const nonce = hex8(hit.nonce);
    const params: SubmitParams = [this.username, job.jobId, extranonce2, job.ntimeHex, nonce];
    if (batch.versionBits !== null) params.push(hex8(batch.versionBits));
    const share: SimShare = {
      worker: this.index,
      username: this.username,
      sessionId: this.stats.sessionId,
      jobId: job.jobId,
      extranonce1: job.extranonce1.toString('hex'),
      extranonce2,
      ntime: job.ntimeHex,
      nonce,
      versionBits: batch.versionBits === null ? null : hex8(batch.versionBits),
      version: hex8(batch.version),
      params,
      difficulty: job.difficulty,
      shareDifficulty: difficultyFromHash(hit.hash, this.multiplier),
      hash: Buffer.from(hit.hash).reverse().toString('hex'),
      blockCandidate: hit.blockCandidate,
      submittedAt: Date.now(),
      answer: 'pending',
      code: null,
      message: null,
      answeredAt: null,
    };
    this.stats.submitted++;
    if (hit.blockCandidate) this.stats.blockCandidates++;
    if (this.options.recordShares) this.sink.record(share);
    conn.request(ClientMethod.Submit, params).then(
      (reply) => this.onAnswer(share, reply.result, reply.error),
      (err: unknown) => {
        if (!(err instanceof NoAnswerError)) throw err;
        share.answer = 'no answer';
        share.answeredAt = Date.now();
        this.stats.noAnswer++;
        this.sink.changed();
      },
    );
  }

  private onAnswer(share: SimShare, result: unknown, error: unknown): void {
    share.answeredAt = Date.now();
    if (result === true && !error) {
      share.answer = 'accepted';
      this.stats.accepted++;
      if (share.blockCandidate) this.stats.blockCandidatesAccepted++;
      this.sink.emit('accepted', share);
    } else {
      const code =
        Array.isArray(error) && typeof error[0] === 'number' ? error[0] : (StratumErrorCode.Other as number);
      share.answer = 'rejected';
      share.code = code;
      share.message = error ? errorText(error) : 'rejected without a reason';
      this.stats.rejected++;
      this.stats.rejectedByCode[code] = (this.stats.rejectedByCode[code] ?? 0) + 1;
      if (code === StratumErrorCode.JobNotFound) this.stats.stale++;
      else if (code === StratumErrorCode.Duplicate) this.stats.duplicate++;
      else if (code === StratumErrorCode.LowDifficulty) this.stats.lowDifficulty++;
      this.sink.emit('rejected', share);
    }
    this.leaving?.();
    this.sink.changed();
  }
}
