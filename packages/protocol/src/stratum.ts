/**
 * Stratum v1 vocabulary: method names, error codes and message shapes.
 * Error codes follow the convention every miner understands (20–25).
 */
export const StratumErrorCode = {
  Other: 20,
  JobNotFound: 21,
  Duplicate: 22,
  LowDifficulty: 23,
  Unauthorized: 24,
  NotSubscribed: 25,
} as const;
export type StratumErrorCode = (typeof StratumErrorCode)[keyof typeof StratumErrorCode];

/** Methods a miner calls. */
export const ClientMethod = {
  Subscribe: 'mining.subscribe',
  Authorize: 'mining.authorize',
  Submit: 'mining.submit',
  Configure: 'mining.configure',
  ExtranonceSubscribe: 'mining.extranonce.subscribe',
  SuggestDifficulty: 'mining.suggest_difficulty',
} as const;
export type ClientMethod = (typeof ClientMethod)[keyof typeof ClientMethod];

/** Notifications the server sends. */
export const ServerMethod = {
  SetDifficulty: 'mining.set_difficulty',
  Notify: 'mining.notify',
  SetExtranonce: 'mining.set_extranonce',
  SetVersionMask: 'mining.set_version_mask',
  Reconnect: 'client.reconnect',
  /** A text for the miner's operator (e.g. why the pool is sending the miner away). */
  ShowMessage: 'client.show_message',
} as const;
export type ServerMethod = (typeof ServerMethod)[keyof typeof ServerMethod];

/** A stratum error as it goes on the wire: `[code, message, traceback]`; traceback is always null. */
export type StratumErrorTuple = [code: number, message: string, traceback: null];

/** A stratum error raised while handling a miner's request; the message is shown to the miner. */
export class StratumError extends Error {
  override readonly name = 'StratumError';
  constructor(
    readonly code: StratumErrorCode,
    message: string,
    /** The id of the request it answers, when the request got that far: the miner matches answers by id. */
    readonly requestId: StratumId = null,
  ) {
    super(message);
  }

  toTuple(): StratumErrorTuple {
    return [this.code, this.message, null];
  }
}

export type StratumId = number | string | null;

export interface StratumRequest {
  id: StratumId;
  method: string;
  params: unknown[];
}

export interface StratumResponse {
  id: StratumId;
  result: unknown;
  error: StratumErrorTuple | null;
}

export interface StratumNotification {
  id: null;
  method: ServerMethod;
  params: unknown[];
}

/**
 * `mining.notify` params in wire order:
 * job id, prevhash (4-byte words swapped), coinb1, coinb2, merkle branch (LE hex), version, nbits, ntime, clean jobs.
 */
export type NotifyParams = [
  jobId: string,
  prevhash: string,
  coinb1: string,
  coinb2: string,
  merkleBranch: string[],
  version: string,
  nbits: string,
  ntime: string,
  cleanJobs: boolean,
];

/** `mining.submit` params: worker, job id, extranonce2, ntime, nonce, and (BIP310) version bits. */
export type SubmitParams = [
  worker: string,
  jobId: string,
  extranonce2: string,
  ntime: string,
  nonce: string,
  versionBits?: string,
];

/**
 * Parse one line from a miner into a request. Throws StratumError(20) naming what is wrong;
 * never echoes more than a short prefix of the input back.
 */
export function parseStratumRequest(line: string): StratumRequest {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    throw new StratumError(StratumErrorCode.Other, 'invalid JSON');
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
    throw new StratumError(StratumErrorCode.Other, 'request must be a JSON object');
  }
  const { id, method, params } = msg as Record<string, unknown>;
  if (id !== undefined && id !== null && typeof id !== 'number' && typeof id !== 'string') {
    throw new StratumError(StratumErrorCode.Other, '"id" must be a number, a string or null');
  }
  // From here on the id is usable: the error answers that request, so a miner waiting on it hears.
  const requestId = (id ?? null) as StratumId;
  if (typeof method !== 'string' || method.length === 0 || method.length > 64) {
    throw new StratumError(StratumErrorCode.Other, 'request needs a "method" string', requestId);
  }
  if (params !== undefined && !Array.isArray(params)) {
    throw new StratumError(StratumErrorCode.Other, '"params" must be an array', requestId);
  }
  return { id: (id ?? null) as StratumId, method, params: (params as unknown[] | undefined) ?? [] };
}

/** Serialize a response line (with the trailing newline). */
export function formatResponse(
  id: StratumId,
  result: unknown,
  error: StratumErrorTuple | null = null,
): string {
  return `${JSON.stringify({ id, result, error })}\n`;
}

/** Serialize a server notification line (with the trailing newline). */
export function formatNotification(method: ServerMethod, params: unknown[]): string {
  return `${JSON.stringify({ id: null, method, params })}\n`;
}
