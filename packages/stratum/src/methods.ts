import { randomFillSync } from 'node:crypto';
import { AddressError } from '@hashwire/chain';
import { StratumError, StratumErrorCode, type StratumRequest } from '@hashwire/protocol';
import type { PayoutAddressCache } from './address-cache.js';
import type { CloseReason, Connection } from './connection.js';
import type { ExtranonceAllocator } from './extranonce.js';
import type { ResolvedStratumOptions } from './options.js';
import type { ResumableSession, SessionStore } from './session-store.js';
import { isSessionId } from './session-store.js';
import { authorizedWorker, difficultyHint, splitUsername } from './session.js';
import { parseHexWord } from './validate.js';
import { clampDifficulty, effectiveDifficulty } from './vardiff.js';

/** What the method handlers need from the server. */
export interface MethodHost {
  readonly options: ResolvedStratumOptions;
  readonly store: SessionStore;
  readonly allocator: ExtranonceAllocator;
  /** Payout addresses (the account part of usernames) checked for this chain. */
  readonly payoutAddresses: PayoutAddressCache;
  /** Version bits the pool lets miners roll now (may change at runtime). */
  readonly versionMask: number;
  /** The current job pays SOLO (carries `solo`), whatever the server's `solo` option says. */
  readonly soloJob: boolean;
  /** The live connection holding `sessionId` in this process, if any. */
  liveSession(sessionId: string): Connection | undefined;
  /** `conn` now holds its session id (after subscribe). */
  bindSession(conn: Connection): void;
  reply(
    conn: Connection,
    id: StratumRequest['id'],
    result: unknown,
    error?: [code: number, message: string, traceback: null] | null,
  ): void;
  /** Sends the current job (with its difficulty) once the session is subscribed and authorized. */
  startMining(conn: Connection): void;
  saveSession(conn: Connection): void;
  closeConnection(conn: Connection, reason: CloseReason, detail?: string): void;
  /** Runs the lines held while `conn` was busy. */
  releaseHeld(conn: Connection): void;
  /** Logs an unexpected failure (never shown to the miner). */
  fail(conn: Connection, error: unknown, what: string): void;
}

/** Random bytes drawn in bulk: one call into the CSPRNG per 512 session ids. */
const idPool = Buffer.alloc(4096);
let idPoolOffset = idPool.length;

/** A fresh session id: 8 random bytes as 16 hex digits (unguessable, fits a Redis key). */
export function newSessionId(): string {
  if (idPoolOffset === idPool.length) {
    randomFillSync(idPool);
    idPoolOffset = 0;
  }
  idPoolOffset += 8;
  return idPool.toString('hex', idPoolOffset - 8, idPoolOffset);
}

const WORKER_NAME = /^[A-Za-z0-9_.@+-]{0,64}$/;

function hex8(value: number): string {
  return (value >>> 0).toString(16).padStart(8, '0');
}

function positiveNumber(value: unknown): number | null {
  const n = typeof value === 'string' && value.length <= 32 ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : null;
}

function printable(value: unknown, max: number): string {
  return typeof value === 'string' ? value.replace(/[^\x20-\x7e]/g, '').slice(0, max) : '';
}

/** `mining.subscribe [userAgent?, sessionId?]`: resumes a session from here or Redis, or starts one. */
export async function handleSubscribe(
  host: MethodHost,
  conn: Connection,
  req: StratumRequest,
): Promise<void> {
  const state = conn.state;
  if (state.subscribed) throw new StratumError(StratumErrorCode.Other, 'already subscribed');
  state.userAgent = printable(req.params[0], 128);
  const wanted = req.params[1];
  conn.held = [];
  let extranonce1 = '';
  try {
    let resumable: ResumableSession | null = null;
    if (isSessionId(wanted)) {
      const live = host.liveSession(wanted);
      if (live && live !== conn) {
        // The miner came back before we noticed its old connection die: this one takes over.
        resumable = resumableFromLive(live);
        host.closeConnection(live, 'replaced', 'session resumed on a new connection');
      } else {
        resumable = await host.store.load(wanted);
      }
      if (resumable) resumable = await claimResumed(host, resumable);
    }
    if (conn.closed) return;
    if (resumable) {
      applyResume(conn, resumable);
      extranonce1 = resumable.extranonce1;
    } else {
      extranonce1 = await host.allocator.allocate(state.sessionId);
      if (conn.closed) {
        await host.allocator.release(extranonce1, state.sessionId);
        return;
      }
    }
  } catch (error) {
    host.fail(conn, error, 'subscribe');
    host.reply(conn, req.id, null, [StratumErrorCode.Other, 'session store unavailable, try again', null]);
    conn.held = null;
    host.closeConnection(conn, 'socket-error', 'session store unavailable');
    return;
  }
  state.extranonce1 = extranonce1;
  state.subscribed = true;
  host.bindSession(conn);
  // The reply and whatever the held lines answer (authorize, the first job) leave in one write.
  conn.socket.cork();
  try {
    host.reply(conn, req.id, [
      [
        ['mining.set_difficulty', state.sessionId],
        ['mining.notify', state.sessionId],
      ],
      extranonce1,
      host.options.extranonce2Size,
    ]);
    // Not saved yet: a session is written once it is authorized and has its first job.
    host.startMining(conn);
    host.releaseHeld(conn);
  } finally {
    conn.socket.uncork();
  }
}

/**
 * Claims a resumed session's extranonce1 for this connection. When a live connection on another
 * server holds it, that server is asked to close it and let go first (the old connection is
 * gone before this one gets work), and the session is read again as it saved it last. Null
 * when the value cannot be had: another session holds it, or the holder did not let go in
 * time (it died); the miner then gets a fresh extranonce1. Nothing async may run between the
 * last claim and binding the session, or a takeover from elsewhere could miss this connection.
 */
async function claimResumed(host: MethodHost, resumable: ResumableSession): Promise<ResumableSession | null> {
  const { sessionId, extranonce1 } = resumable;
  const claim = await host.allocator.reclaim(extranonce1, sessionId);
  if (claim === 'held') return resumable;
  if (claim === 'taken' || !(await host.allocator.takeOver(extranonce1, sessionId))) return null;
  const saved = await host.store.load(sessionId);
  const latest = saved?.extranonce1 === extranonce1 ? saved : resumable;
  return (await host.allocator.reclaim(extranonce1, sessionId)) === 'held' ? latest : null;
}

function resumableFromLive(live: Connection): ResumableSession {
  const s = live.state;
  return {
    sessionId: s.sessionId,
    extranonce1: s.extranonce1,
    difficulty: effectiveDifficulty(s),
    minDifficulty: s.minDifficulty,
    versionMask: s.versionMask,
    account: s.account,
    worker: s.worker,
    jobDiffs: { jobIds: [...s.jobDiffs.jobIds], diffs: [...s.jobDiffs.diffs] },
    connId: s.connId,
    stratumId: '',
    updatedAt: Date.now(),
  };
}

function applyResume(conn: Connection, r: ResumableSession): void {
  const state = conn.state;
  state.sessionId = r.sessionId;
  state.resumed = true;
  // What this connection already negotiated (configure, suggest) wins over the stored values.
  if (state.pendingDifficulty === null) state.difficulty = r.difficulty;
  if (state.minDifficulty === null) state.minDifficulty = r.minDifficulty;
  if (state.versionMask === 0) {
    state.versionMask = r.versionMask;
    state.minerVersionMask = r.versionMask;
  }
  state.jobDiffs = r.jobDiffs;
}

/** Whitespace (ASCII and Unicode), control characters, and the separators that are not text. */
const NOT_IN_USERNAME = /[\s\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

/**
 * `mining.authorize [address.worker, password]`: the address must be payable on this chain.
 * Names are checked before anything keeps them: a username with whitespace or control
 * characters is refused (a trailing space would otherwise make a second account), the
 * address is kept in its canonical form (bech32 lower-cased: one address, one account), and
 * the worker name holds only `A-Z a-z 0-9 _ . @ + -`. Refusals never echo the name.
 */
export function handleAuthorize(host: MethodHost, conn: Connection, req: StratumRequest): void {
  const state = conn.state;
  const [username, password] = req.params;
  if (typeof username !== 'string' || username.length === 0 || username.length > 128) {
    throw new StratumError(
      StratumErrorCode.Unauthorized,
      'username must be "address.worker" (at most 128 characters)',
    );
  }
  if (NOT_IN_USERNAME.test(username)) {
    throw new StratumError(
      StratumErrorCode.Unauthorized,
      'username must not contain spaces, tabs, line breaks or control characters: send "address.worker" exactly',
    );
  }
  const split = splitUsername(username);
  let account: string;
  try {
    account = host.payoutAddresses.canonical(split.account);
  } catch (error) {
    if (error instanceof AddressError) throw new StratumError(StratumErrorCode.Unauthorized, error.message);
    throw error;
  }
  const worker = split.worker;
  if (!WORKER_NAME.test(worker)) {
    throw new StratumError(
      StratumErrorCode.Unauthorized,
      'worker name may hold only letters, digits and _ . @ + - (at most 64 characters)',
    );
  }
  if ((host.options.solo || host.soloJob) && state.account !== '' && account !== state.account) {
    // SOLO: the connection's coinbase pays one address, the first one authorized. Also when the
    // server was not told (`solo` option) but its jobs pay SOLO: a block must pay its finder.
    throw new StratumError(
      StratumErrorCode.Unauthorized,
      'this pool pays SOLO in the coinbase: one connection mines for one payout address, the one authorized first; connect again for another address',
    );
  }
  if (!authorizedWorker(state, username)) {
    if (state.workers.length >= host.options.limits.maxWorkersPerConnection) {
      throw new StratumError(
        StratumErrorCode.Other,
        `at most ${host.options.limits.maxWorkersPerConnection} workers per connection`,
      );
    }
    state.workers.push({ username, account, worker });
  }
  const first = state.account === '';
  if (first) {
    state.account = account;
    state.worker = worker;
  }
  const hint = difficultyHint(password);
  if (hint !== null) requestDifficulty(host, conn, hint);
  host.reply(conn, req.id, true);
  if (first) {
    host.startMining(conn);
    // Once, with everything resume needs: extranonce1, difficulty, the first job's difficulty.
    host.saveSession(conn);
  }
}

/**
 * A difficulty the miner asked for (`mining.suggest_difficulty`, `d=` in the password): it
 * becomes the session's floor and, clamped to the pool's limits, its difficulty from the
 * next job on. Vardiff may raise it later, never lower it below the request.
 */
function requestDifficulty(host: MethodHost, conn: Connection, diff: number): void {
  const state = conn.state;
  const vardiff = host.options.vardiff;
  state.minDifficulty = Math.min(Math.max(diff, vardiff.minDifficulty), vardiff.maxDifficulty);
  const next = clampDifficulty(diff, state, vardiff);
  if (next !== effectiveDifficulty(state)) state.pendingDifficulty = next;
}

/** `mining.suggest_difficulty [diff]`. */
export function handleSuggestDifficulty(host: MethodHost, conn: Connection, req: StratumRequest): void {
  const diff = positiveNumber(req.params[0]);
  if (diff === null) {
    throw new StratumError(StratumErrorCode.Other, 'suggested difficulty must be a positive number');
  }
  requestDifficulty(host, conn, diff);
  host.reply(conn, req.id, true);
  host.saveSession(conn);
}

/** `mining.extranonce.subscribe`: the miner accepts `mining.set_extranonce`. */
export function handleExtranonceSubscribe(host: MethodHost, conn: Connection, req: StratumRequest): void {
  conn.state.extranonceSubscribed = true;
  host.reply(conn, req.id, true);
}

/**
 * `mining.configure [extensions, params]` (BIP310): version-rolling (the mask is the pool's
 * ANDed with the miner's), minimum-difficulty, subscribe-extranonce; others answered false.
 */
export function handleConfigure(host: MethodHost, conn: Connection, req: StratumRequest): void {
  const [extensions, rawParams] = req.params;
  if (
    !Array.isArray(extensions) ||
    extensions.length > 16 ||
    !extensions.every((e) => typeof e === 'string')
  ) {
    throw new StratumError(StratumErrorCode.Other, 'mining.configure needs a list of extension names');
  }
  if (
    rawParams !== undefined &&
    (typeof rawParams !== 'object' || rawParams === null || Array.isArray(rawParams))
  ) {
    throw new StratumError(StratumErrorCode.Other, 'mining.configure parameters must be an object');
  }
  const params = (rawParams ?? {}) as Record<string, unknown>;
  const state = conn.state;
  const result: Record<string, unknown> = {};
  for (const name of extensions as string[]) {
    const ext = name.slice(0, 64);
    if (ext === 'version-rolling') {
      const asked = params['version-rolling.mask'] ?? 'ffffffff';
      const minerMask = parseHexWord(asked);
      if (minerMask < 0) {
        result[ext] = false;
        result['version-rolling.error'] = 'version-rolling.mask must be 8 hex digits';
        continue;
      }
      state.minerVersionMask = minerMask;
      state.versionMask = (host.versionMask & minerMask) >>> 0;
      result[ext] = state.versionMask !== 0;
      result['version-rolling.mask'] = hex8(state.versionMask);
    } else if (ext === 'minimum-difficulty') {
      const value = positiveNumber(params['minimum-difficulty.value']);
      if (value === null) {
        result[ext] = false;
        continue;
      }
      const vardiff = host.options.vardiff;
      state.minDifficulty = Math.min(value, vardiff.maxDifficulty);
      if (effectiveDifficulty(state) < state.minDifficulty) {
        state.pendingDifficulty = clampDifficulty(state.minDifficulty, state, vardiff);
      }
      result[ext] = true;
    } else if (ext === 'subscribe-extranonce') {
      state.extranonceSubscribed = true;
      result[ext] = true;
    } else {
      result[ext] = false;
    }
  }
  host.reply(conn, req.id, result);
  host.saveSession(conn);
}
