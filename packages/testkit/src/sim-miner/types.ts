import type { SubmitParams } from '@hashwire/protocol';

export type SimAlgorithm = 'scrypt' | 'sha256d';

export interface SimMinerOptions {
  host: string;
  port: number;
  /** Number of workers, each with its own TCP connection. @defaultValue 1 */
  workers?: number;
  /** Username for `mining.authorize` (`address.worker`), by worker index (0-based). */
  username: string | ((index: number) => string);
  /** @defaultValue `"x"` */
  password?: string | ((index: number) => string);
  algorithm: SimAlgorithm;
  /** Negotiate BIP310 version rolling in `mining.configure` and roll version bits inside the mask. @defaultValue false */
  versionRolling?: boolean;
  /** The mask asked for when `versionRolling` is on (8 hex digits). @defaultValue `"1fffe000"` */
  versionRollingMask?: string;
  /** Sent as the `minimum-difficulty` extension of `mining.configure` (sends configure even without version rolling). */
  minimumDifficulty?: number;
  /** Sent as `mining.suggest_difficulty` after subscribing. */
  suggestDifficulty?: number;
  /** Send `mining.extranonce.subscribe`. @defaultValue true */
  extranonceSubscribe?: boolean;
  /** Keep every submitted share with its answer, for {@link SimMiners.shares}. @defaultValue false */
  recordShares?: boolean;
  /** Hash rate cap for all workers together (split evenly); unlimited when absent. */
  hashesPerSecondLimit?: number;
  /** First `mining.subscribe` parameter. @defaultValue `"hashwire-sim/0.1"` */
  userAgent?: string;
  /**
   * Source address of each worker's connections (a loopback address per worker, e.g. 127.0.0.2,
   * lets HAProxy's `balance source` tell the miners apart); the system picks one when absent.
   */
  localAddress?: string | ((index: number) => string);
  /** Reconnect (and resume) after the server closes the connection or a connect fails. @defaultValue true */
  reconnectOnClose?: boolean;
  /** Pause before reconnecting after an unexpected close or failed connect; doubles up to 5 s. @defaultValue 250 */
  reconnectDelayMs?: number;
  /**
   * On `client.reconnect`, how long to keep the old connection open for answers to shares in
   * flight before leaving anyway. @defaultValue 5000
   */
  reconnectGraceMs?: number;
  /** Handshake replies (configure, subscribe, authorize) must arrive within this. @defaultValue 10000 */
  requestTimeoutMs?: number;
  /** `startSimMiners` resolves once every worker's first `mining.authorize` is answered. @defaultValue true */
  waitForAuthorize?: boolean;
  /** How long `startSimMiners` waits for that. @defaultValue 15000 */
  startTimeoutMs?: number;
}

/** Where a share stands: answered by the server, still waiting, or lost with its connection. */
export type SimShareAnswer = 'pending' | 'accepted' | 'rejected' | 'no answer';

/** One `mining.submit` a worker sent, with what it knew and what the server answered. */
export interface SimShare {
  /** Worker index. */
  worker: number;
  username: string;
  sessionId: string | null;
  jobId: string;
  extranonce1: string;
  extranonce2: string;
  ntime: string;
  nonce: string;
  /** BIP310 version bits as submitted; null without version rolling. */
  versionBits: string | null;
  /** The header version the miner hashed (8 hex digits). */
  version: string;
  /** The exact `mining.submit` params sent. */
  params: SubmitParams;
  /** Share difficulty of the job the share was found on. */
  difficulty: number;
  /** Difficulty the hash achieved. */
  shareDifficulty: number;
  /** The PoW hash, display (big-endian) hex. */
  hash: string;
  /** The hash also meets the job's network target (nbits). */
  blockCandidate: boolean;
  submittedAt: number;
  answer: SimShareAnswer;
  /** Stratum error code of a rejection (20 when the server answered `false` without an error). */
  code: number | null;
  message: string | null;
  answeredAt: number | null;
}

export interface SimShareCounters {
  submitted: number;
  accepted: number;
  rejected: number;
  /** Rejections by stratum error code. */
  rejectedByCode: Record<number, number>;
  /** Rejected with 21 (job not found / stale). */
  stale: number;
  /** Rejected with 22. */
  duplicate: number;
  /** Rejected with 23. */
  lowDifficulty: number;
  /** Submitted, but the connection closed before the answer. */
  noAnswer: number;
  /** Submitted shares whose hash met the network target. */
  blockCandidates: number;
  /** Of those, the ones the pool accepted as shares: the block candidates it had to submit. */
  blockCandidatesAccepted: number;
}

export type SimWorkerState =
  | 'connecting'
  | 'handshake'
  | 'mining'
  | 'unauthorized'
  | 'disconnected'
  | 'stopped';

export interface SimWorkerStats extends SimShareCounters {
  index: number;
  username: string;
  state: SimWorkerState;
  connected: boolean;
  authorized: boolean;
  /** Endpoint of the current (or next) connection; changes on `client.reconnect`. */
  host: string;
  port: number;
  /** Subscription id from the last `mining.subscribe` reply (sent back to resume). */
  sessionId: string | null;
  extranonce1: string | null;
  extranonce2Size: number | null;
  /** Latest `mining.set_difficulty` (applies from the next job on). */
  difficulty: number | null;
  /** Negotiated version-rolling mask (8 hex digits), null when not rolling. */
  versionMask: string | null;
  /** Job being hashed. */
  jobId: string | null;
  /** `mining.notify` messages received. */
  jobs: number;
  /** Connections after the first one. */
  reconnects: number;
  /** Reconnections where the server gave back the same session id and extranonce1. */
  resumes: number;
  hashes: number;
  /** Server messages that could not be understood. */
  protocolErrors: number;
  /** Why the last connection ended (or the last connect failed); null before any. */
  lastDisconnect: string | null;
}

export interface SimMinersStats {
  workers: SimWorkerStats[];
  total: SimShareCounters & {
    workers: number;
    connected: number;
    authorized: number;
    reconnects: number;
    resumes: number;
    hashes: number;
    /** Hashes since start divided by the time since start. */
    hashesPerSecond: number;
    elapsedMs: number;
  };
}

export interface SimNotifyEvent {
  worker: number;
  jobId: string;
  /** As the server sent it (stratum form: 4-byte words swapped). */
  prevhash: string;
  cleanJobs: boolean;
  /** Difficulty the job is mined at. */
  difficulty: number;
}

export interface SimReconnectEvent {
  worker: number;
  host: string;
  port: number;
  /** Why the worker connected again. */
  reason: 'client.reconnect' | 'closed';
  /** Whether the server resumed the session (same session id and extranonce1). */
  resumed: boolean;
  sessionId: string | null;
  extranonce1: string | null;
}

export interface SimDisconnectEvent {
  worker: number;
  /** Why: the server closed, `client.reconnect`, a failed connect, a protocol timeout… */
  reason: string;
}

/** Events of a {@link SimMiners} handle. */
export interface SimMinersEvents {
  accepted: [share: SimShare];
  rejected: [share: SimShare];
  notify: [event: SimNotifyEvent];
  reconnect: [event: SimReconnectEvent];
  disconnect: [event: SimDisconnectEvent];
}
