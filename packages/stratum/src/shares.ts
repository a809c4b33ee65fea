import { randomUUID } from 'node:crypto';
import {
  NO_JOB_ID,
  type Share,
  ShareLimits,
  ShareResult,
  StratumError,
  StratumErrorCode,
  type StratumErrorTuple,
  type StratumRequest,
  canonicalHex,
  isJobId,
  shareProblem,
} from '@hashwire/protocol';
import { BlockUnansweredError } from './block-submit.js';
import type { Connection } from './connection.js';
import { difficultyForJob } from './difficulty.js';
import type { JobBook } from './job-book.js';
import type { PreparedJob } from './job.js';
import type { BlockSink, ShareSink, StratumLogger, SubmitBlockReply, SubmitBlockRequest } from './options.js';
import { type AuthorizedWorker, authorizedWorker } from './session.js';
import type { ShareCheck, ShareValidator, ShareVerdict } from './validate.js';

/** A share submitted but not yet judged, with what its answer needs. */
interface Queued {
  conn: Connection;
  id: StratumRequest['id'];
  worker: AuthorizedWorker;
  /** The miner's job id when it is one (share schema), otherwise `NO_JOB_ID`. */
  jobId: string;
  job: PreparedJob | undefined;
  check: ShareCheck;
  /** A SOLO job: the address whose coinbase the session was sent (its blocks pay it). */
  payoutAddress?: string;
}

export interface BlockEvent {
  share: Share;
  request: SubmitBlockRequest;
  reply: SubmitBlockReply | null;
  /** Why the submission failed (no jobmanager answered, …); null when it answered. */
  error: string | null;
  /** No jobmanager answered before the chain moved on: the candidate was on stale work. */
  stale: boolean;
}

/** What the share pipeline needs from the server. */
export interface ShareHost {
  readonly chain: string;
  readonly book: JobBook;
  readonly validator: ShareValidator;
  readonly shareSink: ShareSink;
  readonly blockSink: BlockSink;
  readonly spoolRejected: boolean;
  /** At most this many submits of one connection wait for their answer (0: no limit). */
  readonly maxSubmitsInFlight: number;
  /** The server is sending miners away (no fresh work): shares are answered stale. */
  readonly suspended: boolean;
  readonly logger: StratumLogger;
  reply(conn: Connection, id: StratumRequest['id'], result: unknown, error?: StratumErrorTuple | null): void;
  /** Called for every judged share (counters, vardiff, bans) before the answer goes out. */
  judged(conn: Connection, verdict: ShareVerdict, now: number): void;
  /** A submit refused before judging (malformed, unauthorized, over the in-flight cap): counts toward the ban. */
  refusedSubmit(conn: Connection, now: number): void;
  /** A share that failed the share schema was not spooled (a bug: logged and counted). */
  unspoolable(share: Share, problem: string): void;
  shareEvent(share: Share): void;
  blockEvent(event: BlockEvent): void;
}

const EXTRANONCE_DIGITS = ShareLimits.maxExtranonceHexDigits;
const WORD_DIGITS = ShareLimits.wordHexDigits;

function hex8(value: number): string {
  return (value >>> 0).toString(16).padStart(8, '0');
}

/**
 * `mining.submit`: shares of one event-loop turn are judged together (one scrypt batch off
 * the main thread, or one native sha256d call), then each accepted one is written to the
 * share sink and answered `true` only when the write is done. Block candidates go to the
 * block sink as well. While a batch is being hashed the next one gathers.
 */
export class SharePipeline {
  private queue: Queued[] = [];
  private scheduled = false;
  private running: Promise<void> | null = null;
  /** Writes and block submissions not finished yet. */
  private readonly pending = new Set<Promise<unknown>>();

  constructor(private readonly host: ShareHost) {}

  /**
   * Checks what needs the session (subscribed, authorized worker, shape, in-flight cap) and
   * queues the share. A submit refused here is answered with the error thrown, and counts as a
   * bad share toward the address's ban.
   */
  submit(conn: Connection, req: StratumRequest): void {
    const state = conn.state;
    if (!state.subscribed) this.refuse(conn, StratumErrorCode.NotSubscribed, 'not subscribed');
    const [username, jobId, extranonce2, ntime, nonce, versionBits] = req.params;
    if (req.params.length < 5 || req.params.length > 6) {
      this.refuse(
        conn,
        StratumErrorCode.Other,
        'mining.submit needs [worker, job id, extranonce2, ntime, nonce] and optional version bits',
      );
    }
    const worker = authorizedWorker(state, username);
    if (!worker) this.refuse(conn, StratumErrorCode.Unauthorized, 'unauthorized worker');
    if (typeof jobId !== 'string') this.refuse(conn, StratumErrorCode.Other, 'job id must be a string');
    const limit = this.host.maxSubmitsInFlight;
    if (limit > 0 && conn.inFlight >= limit) {
      this.refuse(
        conn,
        StratumErrorCode.Other,
        `too many submits waiting for an answer (at most ${limit}): wait for the replies`,
      );
    }
    // A string that is no job id (whitespace, control characters, too long) names no job: the
    // share is judged "job not found" and keeps NO_JOB_ID, never the miner's text.
    const knownId = isJobId(jobId);
    const diff = knownId ? difficultyForJob(state.jobDiffs, jobId) : undefined;
    // A job this session was never sent is as unknown to it as one long gone; while the server
    // is suspended every job is (its work is stale: nothing more is credited on it).
    const job = diff === undefined || this.host.suspended ? undefined : this.host.book.get(jobId);
    // SOLO: the share is hashed with the coinbase this session was sent, paying its address.
    let coinbase: Buffer | undefined;
    if (job?.solo) {
      try {
        coinbase = job.solo.work(state.account).coinbase;
      } catch {
        this.refuse(conn, StratumErrorCode.Unauthorized, 'the payout address is not one of this chain');
      }
    }
    this.queue.push({
      conn,
      id: req.id,
      worker,
      jobId: knownId ? jobId : NO_JOB_ID,
      job,
      check: {
        job,
        context: {
          extranonce1: conn.extranonce1,
          diff: diff ?? state.difficulty,
          versionMask: state.versionMask,
          ...(coinbase && { coinbase }),
        },
        submission: { extranonce2, ntime, nonce, ...(versionBits !== undefined && { versionBits }) },
      },
      ...(coinbase && { payoutAddress: state.account }),
    });
    conn.inFlight++;
    this.schedule();
  }

  private refuse(conn: Connection, code: StratumErrorCode, message: string): never {
    this.host.refusedSubmit(conn, Date.now());
    throw new StratumError(code, message);
  }

  private schedule(): void {
    if (this.scheduled || this.running) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.running = this.run().finally(() => {
        this.running = null;
        if (this.queue.length > 0) this.schedule();
      });
    });
  }

  private async run(): Promise<void> {
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    let verdicts: ShareVerdict[];
    try {
      verdicts = await this.host.validator.validateBatch(batch.map((q) => q.check));
    } catch (error) {
      this.host.logger.error({ err: error, shares: batch.length }, 'stratum: share validation failed');
      for (const q of batch) {
        q.conn.inFlight--;
        this.host.reply(q.conn, q.id, null, [StratumErrorCode.Other, 'internal error', null]);
      }
      return;
    }
    const now = Date.now();
    for (let i = 0; i < batch.length; i++) this.finish(batch[i]!, verdicts[i]!, now);
  }

  private finish(q: Queued, verdict: ShareVerdict, now: number): void {
    const { conn } = q;
    this.host.judged(conn, verdict, now);
    const accepted = verdict.result === ShareResult.Accepted;
    if (!accepted && !this.host.spoolRejected) {
      conn.inFlight--;
      this.host.reply(conn, q.id, null, [
        verdict.code ?? StratumErrorCode.Other,
        verdict.reason ?? 'rejected',
        null,
      ]);
      return;
    }
    const state = conn.state;
    const submission = q.check.submission;
    // Built to the share schema (protocol's `shareProblem`), which the reporter checks.
    const share: Share = {
      shareId: randomUUID(),
      sessionId: state.sessionId,
      account: q.worker.account,
      worker: q.worker.worker,
      jobId: q.jobId,
      extranonce1: state.extranonce1,
      extranonce2: canonicalHex(submission.extranonce2, EXTRANONCE_DIGITS),
      ntime: canonicalHex(submission.ntime, WORD_DIGITS),
      nonce: canonicalHex(submission.nonce, WORD_DIGITS),
      version: hex8(verdict.version || (q.job?.version ?? 0)),
      diff: verdict.diff,
      actualDiff: Math.min(verdict.actualDiff, Number.MAX_VALUE),
      result: verdict.result,
      ts: now,
      ip: state.ip,
      ...(verdict.blockHash !== null && { blockHash: verdict.blockHash }),
    };
    // Never spool what a reporter would refuse: it would hold up every batch behind it.
    const problem = shareProblem(share);
    if (problem !== null) {
      this.host.unspoolable(share, problem);
      // A block is worth more than the share's record.
      if (accepted && verdict.blockCandidate) this.submitBlock(share, q.job!, q.payoutAddress);
      conn.inFlight--;
      this.host.reply(
        conn,
        q.id,
        null,
        accepted
          ? [StratumErrorCode.Other, 'share could not be stored, try again', null]
          : [verdict.code ?? StratumErrorCode.Other, verdict.reason ?? 'rejected', null],
      );
      return;
    }
    if (!accepted) {
      // Rejections are answered at once; their record is for statistics only.
      conn.inFlight--;
      this.host.reply(conn, q.id, null, [
        verdict.code ?? StratumErrorCode.Other,
        verdict.reason ?? 'rejected',
        null,
      ]);
      this.track(this.host.shareSink.append(share)).catch(() => {});
      this.host.shareEvent(share);
      return;
    }
    if (verdict.blockCandidate) this.submitBlock(share, q.job!, q.payoutAddress);
    this.track(this.host.shareSink.append(share)).then(
      () => {
        conn.inFlight--;
        this.host.reply(conn, q.id, true);
        this.host.shareEvent(share);
      },
      (error: unknown) => {
        conn.inFlight--;
        this.host.logger.error(
          { err: error, sessionId: state.sessionId },
          'stratum: share could not be stored',
        );
        this.host.reply(conn, q.id, null, [
          StratumErrorCode.Other,
          'share could not be stored, try again',
          null,
        ]);
      },
    );
  }

  private submitBlock(share: Share, job: PreparedJob, payoutAddress: string | undefined): void {
    const request: SubmitBlockRequest = {
      chain: this.host.chain,
      jobId: share.jobId,
      extranonce1: share.extranonce1,
      extranonce2: share.extranonce2,
      ntime: share.ntime,
      nonce: share.nonce,
      version: share.version,
      shareId: share.shareId,
      account: share.account,
      worker: share.worker,
      ...(payoutAddress !== undefined && { payoutAddress }),
    };
    this.host.logger.info(
      {
        jobId: job.jobId,
        height: job.job.height,
        hash: share.blockHash,
        worker: share.worker,
        account: share.account,
        ...(payoutAddress !== undefined && { payoutAddress }),
      },
      'stratum: block candidate',
    );
    this.track(this.host.blockSink.submitBlock(request)).then(
      (reply) => {
        const verdict = reply.accepted
          ? 'accepted'
          : reply.stale
            ? 'stale'
            : reply.orphaned
              ? 'orphaned'
              : 'rejected';
        this.host.logger.info(
          { jobId: job.jobId, hash: reply.hash, verdict, ...(reply.reason && { reason: reply.reason }) },
          'stratum: block candidate answered',
        );
        this.host.blockEvent({ share, request, reply, error: null, stale: false });
      },
      (error: unknown) => {
        const stale = error instanceof BlockUnansweredError && error.stale;
        const reason = error instanceof Error ? error.message : String(error);
        // Never silent: the full request goes to the log, so an operator can still submit it.
        this.host.logger.error(
          { hash: share.blockHash, jobId: job.jobId, height: job.job.height, reason, request },
          stale
            ? 'stratum: block candidate stale, no jobmanager answered'
            : 'stratum: block submission failed',
        );
        this.host.blockEvent({ share, request, reply: null, error: reason, stale });
      },
    );
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.pending.add(promise);
    const done = () => this.pending.delete(promise);
    promise.then(done, done);
    return promise;
  }

  /** Resolves when every queued share is judged and every write and block submission settled. */
  async settle(): Promise<void> {
    for (;;) {
      if (this.running) await this.running;
      else if (this.queue.length > 0 || this.scheduled) await new Promise<void>((r) => setImmediate(r));
      else if (this.pending.size > 0) await Promise.allSettled([...this.pending]);
      else return;
    }
  }
}
