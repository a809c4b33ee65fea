import { randomUUID } from 'node:crypto';
import {
  type Share,
  ShareResult,
  StratumError,
  StratumErrorCode,
  type StratumErrorTuple,
  type StratumRequest,
} from '@hashwire/protocol';
import { BlockUnansweredError } from './block-submit.js';
import type { Connection } from './connection.js';
import { difficultyForJob } from './difficulty.js';
import type { JobBook } from './job-book.js';
import type { PreparedJob } from './job.js';
import type { BlockSink, ShareSink, StratumLogger, SubmitBlockReply, SubmitBlockRequest } from './options.js';
import { splitUsername } from './session.js';
import type { ShareCheck, ShareValidator, ShareVerdict } from './validate.js';

/** A share submitted but not yet judged, with what its answer needs. */
interface Queued {
  conn: Connection;
  id: StratumRequest['id'];
  username: string;
  jobId: string;
  job: PreparedJob | undefined;
  check: ShareCheck;
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
  /** The server is sending miners away (no fresh work): shares are answered stale. */
  readonly suspended: boolean;
  readonly logger: StratumLogger;
  reply(conn: Connection, id: StratumRequest['id'], result: unknown, error?: StratumErrorTuple | null): void;
  /** Called for every judged share (counters, vardiff, bans) before the answer goes out. */
  judged(conn: Connection, verdict: ShareVerdict, now: number): void;
  shareEvent(share: Share): void;
  blockEvent(event: BlockEvent): void;
}

function field(value: unknown): string {
  return typeof value === 'string' && value.length <= 16 ? value.toLowerCase() : '';
}

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

  /** Checks what needs the session (subscribed, authorized worker, job) and queues the share. */
  submit(conn: Connection, req: StratumRequest): void {
    const state = conn.state;
    if (!state.subscribed) throw new StratumError(StratumErrorCode.NotSubscribed, 'not subscribed');
    const [username, jobId, extranonce2, ntime, nonce, versionBits] = req.params;
    if (req.params.length < 5 || req.params.length > 6) {
      throw new StratumError(
        StratumErrorCode.Other,
        'mining.submit needs [worker, job id, extranonce2, ntime, nonce] and optional version bits',
      );
    }
    if (typeof username !== 'string' || !state.workers.includes(username)) {
      throw new StratumError(StratumErrorCode.Unauthorized, 'unauthorized worker');
    }
    if (typeof jobId !== 'string' || jobId.length > 64) {
      throw new StratumError(StratumErrorCode.Other, 'job id must be a string');
    }
    const diff = difficultyForJob(state.jobDiffs, jobId);
    // A job this session was never sent is as unknown to it as one long gone; while the server
    // is suspended every job is (its work is stale: nothing more is credited on it).
    const job = diff === undefined || this.host.suspended ? undefined : this.host.book.get(jobId);
    this.queue.push({
      conn,
      id: req.id,
      username,
      jobId,
      job,
      check: {
        job,
        context: {
          extranonce1: conn.extranonce1,
          diff: diff ?? state.difficulty,
          versionMask: state.versionMask,
        },
        submission: { extranonce2, ntime, nonce, ...(versionBits !== undefined && { versionBits }) },
      },
    });
    conn.inFlight++;
    this.schedule();
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
    const { account, worker } = splitUsername(q.username);
    const submission = q.check.submission;
    const share: Share = {
      shareId: randomUUID(),
      sessionId: state.sessionId,
      account,
      worker,
      jobId: q.jobId,
      extranonce1: state.extranonce1,
      extranonce2: field(submission.extranonce2),
      ntime: field(submission.ntime),
      nonce: field(submission.nonce),
      version: hex8(verdict.version || (q.job?.version ?? 0)),
      diff: verdict.diff,
      actualDiff: verdict.actualDiff,
      result: verdict.result,
      ts: now,
      ip: state.ip,
      ...(verdict.blockHash !== null && { blockHash: verdict.blockHash }),
    };
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
    if (verdict.blockCandidate) this.submitBlock(share, q.job!);
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

  private submitBlock(share: Share, job: PreparedJob): void {
    const request: SubmitBlockRequest = {
      chain: this.host.chain,
      jobId: share.jobId,
      extranonce1: share.extranonce1,
      extranonce2: share.extranonce2,
      ntime: share.ntime,
      nonce: share.nonce,
      version: share.version,
      shareId: share.shareId,
    };
    this.host.logger.info(
      {
        jobId: job.jobId,
        height: job.job.height,
        hash: share.blockHash,
        worker: share.worker,
        account: share.account,
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
