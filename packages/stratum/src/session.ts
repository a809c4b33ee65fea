import {
  type JobDifficulties,
  createJobDifficulties,
  difficultyForJob,
  recordJobSent,
} from './difficulty.js';

/**
 * One miner's session as plain data: no sockets, timers or closures. Everything the server
 * knows about a miner lives here, so a session can be written to Redis (resume on another
 * process) and, later, handed to another process while the miner stays connected.
 */
export interface SessionCounters {
  accepted: number;
  stale: number;
  duplicate: number;
  lowdiff: number;
  invalid: number;
  /** Sum of credited difficulty of accepted shares. */
  acceptedDiff: number;
  /** Malformed requests (bad JSON, wrong types) since connecting. */
  protocolErrors: number;
}

export interface VardiffState {
  /** Start of the current retarget window (ms since epoch). */
  windowStartMs: number;
  /** Accepted shares in the window. */
  windowShares: number;
}

/** A worker `mining.authorize` accepted: the username as the miner sends it, and what shares carry. */
export interface AuthorizedWorker {
  /** Exactly as sent in `mining.authorize` (submits name it the same way). */
  username: string;
  /** The payout address in its one canonical form (bech32 lower-cased). */
  account: string;
  /** The worker name (may be empty). */
  worker: string;
}

export interface SessionState {
  sessionId: string;
  /** Connection id: HAProxy's unique-id (PROXY v2 TLV) or one made up here. */
  connId: string;
  /** The miner's address: from the PROXY header when a trusted proxy sent one. */
  ip: string;
  port: number;
  /** Hex, `extranonce1Size` bytes; empty until subscribed. */
  extranonce1: string;
  subscribed: boolean;
  /** Whether this session continued one from Redis (same extranonce1 and difficulty). */
  resumed: boolean;
  userAgent: string;
  /** Workers this connection authorized, first one first. */
  workers: AuthorizedWorker[];
  /** Payout address of the first authorized worker. */
  account: string;
  /** Worker part of the first authorized worker (may be empty). */
  worker: string;
  /** Difficulty for jobs sent from now on (what the miner was last told). */
  difficulty: number;
  /** Difficulty decided but not yet sent: goes out right before the next job. */
  pendingDifficulty: number | null;
  /** Whether this connection was told a difficulty yet. */
  difficultyAnnounced: boolean;
  /**
   * Difficulty each job was sent with. A share is judged at the difficulty of the job it
   * names, not the session's current one.
   */
  jobDiffs: JobDifficulties;
  /** Floor from `mining.configure` minimum-difficulty, `mining.suggest_difficulty` or `d=`. */
  minDifficulty: number | null;
  /** BIP310 mask agreed with the miner (0: no version rolling). */
  versionMask: number;
  /** The mask the miner asked for in `mining.configure` (kept to renegotiate when the pool's changes). */
  minerVersionMask: number;
  extranonceSubscribed: boolean;
  connectedAt: number;
  /** Last accepted or rejected submit; idle timeouts count from here (or from connectedAt). */
  lastSubmitAt: number;
  vardiff: VardiffState;
  counters: SessionCounters;
}

export function newSessionState(init: {
  sessionId: string;
  connId: string;
  ip: string;
  port: number;
  difficulty: number;
  now: number;
}): SessionState {
  return {
    sessionId: init.sessionId,
    connId: init.connId,
    ip: init.ip,
    port: init.port,
    extranonce1: '',
    subscribed: false,
    resumed: false,
    userAgent: '',
    workers: [],
    account: '',
    worker: '',
    difficulty: init.difficulty,
    pendingDifficulty: null,
    difficultyAnnounced: false,
    jobDiffs: createJobDifficulties(),
    minDifficulty: null,
    versionMask: 0,
    minerVersionMask: 0,
    extranonceSubscribed: false,
    connectedAt: init.now,
    lastSubmitAt: 0,
    vardiff: { windowStartMs: init.now, windowShares: 0 },
    counters: {
      accepted: 0,
      stale: 0,
      duplicate: 0,
      lowdiff: 0,
      invalid: 0,
      acceptedDiff: 0,
      protocolErrors: 0,
    },
  };
}

/** Whether the session is worth resuming: it mined here (authorized) or continues one that did. */
export function isResumable(state: SessionState): boolean {
  return state.subscribed && (state.workers.length > 0 || state.resumed);
}

/**
 * Called right before `jobId` goes out: a pending difficulty takes effect first, and the job
 * is recorded with the difficulty in force. Returns the difficulty to announce with
 * `mining.set_difficulty` before the notify, or null when the miner already knows it.
 */
export function beforeJobSent(state: SessionState, jobId: string, keep: number): number | null {
  const recorded = difficultyForJob(state.jobDiffs, jobId);
  if (recorded !== undefined) {
    // Sent before (a resumed session gets its current job again): the job keeps the
    // difficulty it went out with, and the miner is told that one; a change waits for
    // the next new job.
    if (state.difficultyAnnounced && recorded === state.difficulty) return null;
    if (state.pendingDifficulty === null && recorded !== state.difficulty) {
      state.pendingDifficulty = state.difficulty;
    }
    state.difficulty = recorded;
    state.difficultyAnnounced = true;
    return recorded;
  }
  let announce: number | null = null;
  if (state.pendingDifficulty !== null) {
    if (state.pendingDifficulty !== state.difficulty) announce = state.pendingDifficulty;
    state.difficulty = state.pendingDifficulty;
    state.pendingDifficulty = null;
  }
  // The first job of a connection always comes with its difficulty (also after a resume).
  if (!state.difficultyAnnounced) {
    announce = state.difficulty;
    state.difficultyAnnounced = true;
  }
  recordJobSent(state.jobDiffs, jobId, state.difficulty, keep);
  return announce;
}

/** The authorized worker a submit names, or undefined (at most `maxWorkersPerConnection` to look through). */
export function authorizedWorker(state: SessionState, username: unknown): AuthorizedWorker | undefined {
  if (typeof username !== 'string') return undefined;
  for (const w of state.workers) if (w.username === username) return w;
  return undefined;
}

/** Splits `address.worker` at the first dot; the worker part may be empty. */
export function splitUsername(username: string): { account: string; worker: string } {
  const dot = username.indexOf('.');
  if (dot === -1) return { account: username, worker: '' };
  return { account: username.slice(0, dot), worker: username.slice(dot + 1) };
}

/** Difficulty hint from a password like `x,d=512` or `d=0.01`; null when there is none. */
export function difficultyHint(password: unknown): number | null {
  if (typeof password !== 'string' || password.length > 256) return null;
  for (const part of password.split(/[,;\s]+/)) {
    const match = /^d=([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)$/i.exec(part);
    if (match) {
      const diff = Number(match[1]);
      if (Number.isFinite(diff) && diff > 0) return diff;
    }
  }
  return null;
}
