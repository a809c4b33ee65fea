import type { KeyBuilder } from '@hashwire/protocol';
import type { RedisClient } from '@hashwire/registry';
import type { JobDifficulties } from './difficulty.js';
import { RedisBatch, unwrapReplies } from './redis-batch.js';
import type { SessionState } from './session.js';

/**
 * What a session leaves in Redis (`sess:{chain}:<id>`, a hash) so the miner can resume it on any
 * stratum process: same extranonce1, same difficulty, same version mask, and the
 * difficulty of every job it was sent (shares on those are still judged right after a
 * reconnect). The hash lives `ttlMs` after the last refresh: live sessions are refreshed
 * in the background, so it expires `ttlMs` after the disconnect.
 */
export interface ResumableSession {
  sessionId: string;
  extranonce1: string;
  difficulty: number;
  minDifficulty: number | null;
  versionMask: number;
  account: string;
  worker: string;
  jobDiffs: JobDifficulties;
  connId: string;
  stratumId: string;
  updatedAt: number;
}

export interface SessionStoreOptions {
  redis: RedisClient;
  keys: KeyBuilder;
  /** The chain served: sessions are `sess:{chain}:<id>`, in the chain's hash slot with the extranonce1 claims. */
  chain: string;
  /** The stratum instance writing (recorded, for operators). */
  stratumId: string;
  /** @defaultValue 600000 (10 min) */
  ttlMs?: number;
}

const SESSION_ID = /^[0-9a-f]{16}$/;

/** Whether `value` has the shape of a session id this server hands out. */
export function isSessionId(value: unknown): value is string {
  return typeof value === 'string' && SESSION_ID.test(value);
}

/**
 * What `save` last wrote for a session (the TTL aside), to skip writes that would change
 * nothing. Strings are the state's own (shared, not copied); `jobDiffs` is only ever appended
 * to (and renewed together with extranonce1), so its length and newest entry stand for it.
 */
export interface SavedSession {
  extranonce1: string;
  difficulty: number;
  minDifficulty: number | null;
  versionMask: number;
  account: string;
  worker: string;
  connId: string;
  jobCount: number;
  lastJobId: string | undefined;
  lastJobDiff: number | undefined;
}

export function savedSession(state: SessionState): SavedSession {
  const jobs = state.jobDiffs;
  const last = jobs.jobIds.length - 1;
  return {
    extranonce1: state.extranonce1,
    difficulty: state.pendingDifficulty ?? state.difficulty,
    minDifficulty: state.minDifficulty,
    versionMask: state.versionMask,
    account: state.account,
    worker: state.worker,
    connId: state.connId,
    jobCount: jobs.jobIds.length,
    lastJobId: jobs.jobIds[last],
    lastJobDiff: jobs.diffs[last],
  };
}

/** Whether `saved` still holds everything `save` would write for `state`. */
export function isSavedCurrent(state: SessionState, saved: SavedSession | null): boolean {
  if (saved === null) return false;
  const jobs = state.jobDiffs;
  const last = jobs.jobIds.length - 1;
  return (
    saved.extranonce1 === state.extranonce1 &&
    saved.difficulty === (state.pendingDifficulty ?? state.difficulty) &&
    saved.minDifficulty === state.minDifficulty &&
    saved.versionMask === state.versionMask &&
    saved.account === state.account &&
    saved.worker === state.worker &&
    saved.connId === state.connId &&
    saved.jobCount === jobs.jobIds.length &&
    saved.lastJobId === jobs.jobIds[last] &&
    saved.lastJobDiff === jobs.diffs[last]
  );
}

function finite(text: string | undefined, fallback: number): number {
  const n = Number(text);
  return text !== undefined && text !== '' && Number.isFinite(n) ? n : fallback;
}

export class SessionStore {
  readonly ttlMs: number;
  private readonly redis: RedisClient;
  private readonly keys: KeyBuilder;
  private readonly stratumId: string;
  private readonly chain: string;
  private readonly batch: RedisBatch;

  constructor(options: SessionStoreOptions) {
    this.redis = options.redis;
    this.batch = RedisBatch.of(options.redis, options.chain);
    this.keys = options.keys;
    this.stratumId = options.stratumId;
    this.chain = options.chain;
    this.ttlMs = options.ttlMs ?? 600_000;
  }

  /** Writes what resume needs and (re)starts the TTL. */
  async save(state: SessionState, now = Date.now()): Promise<void> {
    if (!state.subscribed) return;
    const key = this.keys.session(this.chain, state.sessionId);
    const difficulty = state.pendingDifficulty ?? state.difficulty;
    const fields = {
      extranonce1: state.extranonce1,
      difficulty: String(difficulty),
      minDifficulty: state.minDifficulty === null ? '' : String(state.minDifficulty),
      versionMask: String(state.versionMask),
      account: state.account,
      worker: state.worker,
      jobDiffs: JSON.stringify(state.jobDiffs),
      connId: state.connId,
      stratumId: this.stratumId,
      updatedAt: String(now),
    };
    // Written and given its TTL back to back, in the same write as other sessions' saves. No
    // MULTI around them: Redis runs one connection's commands in order and both leave in one
    // write, and MULTI/EXEC doubled the commands of every handshake.
    unwrapReplies(await this.batch.send((p) => p.hset(key, fields).pexpire(key, this.ttlMs)));
  }

  /** Removes a session nobody will resume. */
  async discard(sessionId: string): Promise<void> {
    await this.redis.del(this.keys.session(this.chain, sessionId));
  }

  /** The stored session, or null when it expired, never existed or is unreadable. */
  async load(sessionId: string): Promise<ResumableSession | null> {
    if (!isSessionId(sessionId)) return null;
    const hash = await this.redis.hgetall(this.keys.session(this.chain, sessionId));
    if (!hash.extranonce1 || !/^[0-9a-f]+$/.test(hash.extranonce1)) return null;
    const difficulty = finite(hash.difficulty, 0);
    if (!(difficulty > 0)) return null;
    const jobDiffs: JobDifficulties = { jobIds: [], diffs: [] };
    try {
      const parsed = JSON.parse(hash.jobDiffs ?? '{}') as Partial<JobDifficulties>;
      const ids = Array.isArray(parsed.jobIds) ? parsed.jobIds : [];
      const diffs = Array.isArray(parsed.diffs) ? parsed.diffs : [];
      ids.forEach((id, i) => {
        const diff = diffs[i];
        if (typeof id === 'string' && typeof diff === 'number' && diff > 0) {
          jobDiffs.jobIds.push(id);
          jobDiffs.diffs.push(diff);
        }
      });
    } catch {
      // Unreadable list: shares on older jobs are then unknown (21), nothing worse.
    }
    const minDifficulty = finite(hash.minDifficulty, 0);
    return {
      sessionId,
      extranonce1: hash.extranonce1,
      difficulty,
      minDifficulty: minDifficulty > 0 ? minDifficulty : null,
      versionMask: finite(hash.versionMask, 0) >>> 0,
      account: hash.account ?? '',
      worker: hash.worker ?? '',
      jobDiffs,
      connId: hash.connId ?? '',
      stratumId: hash.stratumId ?? '',
      updatedAt: finite(hash.updatedAt, 0),
    };
  }

  /**
   * Keeps live sessions (and their extranonce1 claims) resumable: a PEXPIRE of each, in
   * pipelines of at most 1000 sessions (every key is in the chain's slot, so on a Cluster too).
   */
  async refresh(states: Iterable<SessionState>): Promise<void> {
    let chunk: SessionState[] = [];
    const send = async () => {
      const sending = chunk;
      chunk = [];
      const replies = await this.batch.send((p) => {
        for (const state of sending) {
          p.pexpire(this.keys.session(this.chain, state.sessionId), this.ttlMs);
          p.pexpire(this.keys.extranonce1(this.chain, state.extranonce1), this.ttlMs);
        }
      });
      unwrapReplies(replies);
    };
    for (const state of states) {
      if (!state.subscribed) continue;
      chunk.push(state);
      if (chunk.length >= 1000) await send();
    }
    if (chunk.length > 0) await send();
  }
}
