import { type Share, ShareResult } from './rpc.js';

/**
 * The one definition of a valid {@link Share}: a stratum server builds every share it spools
 * so that it passes {@link shareProblem}, and a reporter refuses a batch holding one that does
 * not. Both sides use these checks and nothing else, so whatever a stratum server writes, a
 * reporter accepts.
 *
 * Hand-written (no schema library, no allocation for a valid share): the stratum server checks
 * every share on its hot path.
 */
export const ShareLimits = {
  /** shareId, sessionId, account (at least 1) and worker (may be empty). */
  maxNameChars: 128,
  /** Job ids are 1–64 characters of `A-Z a-z 0-9 . _ : -`. */
  maxJobIdChars: 64,
  /** extranonce1 (at least one byte) and extranonce2: at most 16 bytes each. */
  maxExtranonceHexDigits: 32,
  /** ntime, nonce: at most 8 hex digits; version: exactly 8. */
  wordHexDigits: 8,
  maxIpChars: 64,
  /** Highest difficulty a share may be credited with; keeps every sum far from float overflow. */
  maxDiff: 1e15,
  blockHashHexDigits: 64,
} as const;

/**
 * The job id a rejected share carries when the miner's was not a job id at all (whitespace,
 * control characters, too long, not a string): the share still counts in the worker's
 * statistics, and its text never reaches the share log.
 */
export const NO_JOB_ID = '';

const RESULTS: ReadonlySet<unknown> = new Set(Object.values(ShareResult));

/**
 * Whether a non-ASCII `code` may appear in a name (shareId, sessionId, account, worker, ip):
 * letters and symbols are allowed; control, whitespace and separator characters are not.
 * (ASCII: printable, no space, no `|`, the reporter's key separator.)
 */
function nonAsciiNameChar(code: number): boolean {
  // C1 controls, no-break space, Unicode spaces and separators, BOM; surrogates are checked by the caller.
  if (code <= 0xa0) return false;
  if (code === 0x1680 || code === 0x180e) return false;
  if (code >= 0x2000 && code <= 0x200f) return false;
  if (code >= 0x2028 && code <= 0x202f) return false;
  if (code >= 0x205f && code <= 0x206f) return false;
  if (code === 0x3000 || code === 0xfeff) return false;
  return true;
}

/** Whether `value` is a name of `min`–`max` characters (UTF-16 units) without whitespace, control characters or `|`. */
export function isShareName(
  value: unknown,
  min = 1,
  max: number = ShareLimits.maxNameChars,
): value is string {
  if (typeof value !== 'string' || value.length < min || value.length > max) return false;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x80) {
      // The common case (addresses, uuids, hex ids) without a call.
      if (code <= 0x20 || code === 0x7f || code === 0x7c) return false;
      continue;
    }
    if (code >= 0xd800 && code <= 0xdfff) {
      // Only whole surrogate pairs: a lone half is not text (and not valid UTF-8 in a log).
      const next = value.charCodeAt(i + 1);
      if (code > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) return false;
      i++;
      continue;
    }
    if (!nonAsciiNameChar(code)) return false;
  }
  return true;
}

function jobIdChar(code: number): boolean {
  return (
    (code >= 0x30 && code <= 0x39) || // 0-9
    (code >= 0x41 && code <= 0x5a) || // A-Z
    (code >= 0x61 && code <= 0x7a) || // a-z
    code === 0x2e || // .
    code === 0x5f || // _
    code === 0x3a || // :
    code === 0x2d // -
  );
}

/** Whether `value` is a job id: 1–64 characters of `A-Z a-z 0-9 . _ : -` (jobmanagers use hex). */
export function isJobId(value: unknown): value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > ShareLimits.maxJobIdChars)
    return false;
  for (let i = 0; i < value.length; i++) if (!jobIdChar(value.charCodeAt(i))) return false;
  return true;
}

/** Whether `value` is lower-case hex of `min`–`max` digits. */
export function isLowerHex(value: unknown, min: number, max: number): value is string {
  if (typeof value !== 'string' || value.length < min || value.length > max) return false;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (!((code >= 0x30 && code <= 0x39) || (code >= 0x61 && code <= 0x66))) return false;
  }
  return true;
}

/**
 * A submitted hex field as a share carries it: lower-cased when it is hex of at most
 * `maxDigits` digits, otherwise empty (a rejected share keeps no junk).
 */
export function canonicalHex(value: unknown, maxDigits: number): string {
  if (typeof value !== 'string' || value.length > maxDigits) return '';
  let lower = true;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if ((code >= 0x30 && code <= 0x39) || (code >= 0x61 && code <= 0x66)) continue;
    if (code >= 0x41 && code <= 0x46) {
      lower = false;
      continue;
    }
    return '';
  }
  return lower ? value : value.toLowerCase();
}

function hexProblem(at: string, field: string, value: unknown, min: number, max: number): string | null {
  if (isLowerHex(value, min, max)) return null;
  const size = min === max ? `${max}` : `${min}–${max}`;
  return `${at}.${field} must be ${size} lower-case hex digits, got ${show(value)}`;
}

function numberProblem(at: string, field: string, value: unknown, max: number): string | null {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= max) return null;
  return `${at}.${field} must be a number from 0 to ${max}, got ${show(value)}`;
}

/** A value for an error message: short, JSON, never raw control characters. */
function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

const NAME_RULE = 'without whitespace, control characters or |';

/**
 * What is wrong with `share`, as a message naming the field (`shares[3].jobId must be …`), or
 * null when it is a valid {@link Share}. `at` is how the message names the share.
 */
export function shareProblem(share: unknown, at = 'share'): string | null {
  if (typeof share !== 'object' || share === null || Array.isArray(share)) return `${at} must be an object`;
  const s = share as Record<string, unknown>;
  const max = ShareLimits.maxNameChars;
  if (!isShareName(s.shareId)) return `${at}.shareId must be 1–${max} characters ${NAME_RULE}`;
  if (!isShareName(s.sessionId)) return `${at}.sessionId must be 1–${max} characters ${NAME_RULE}`;
  if (!isShareName(s.account)) {
    return `${at}.account must be 1–${max} characters ${NAME_RULE} (the payout address)`;
  }
  if (!isShareName(s.worker, 0)) return `${at}.worker must be at most ${max} characters ${NAME_RULE}`;
  if (!RESULTS.has(s.result)) {
    return `${at}.result must be one of ${[...RESULTS].join(', ')}, got ${show(s.result)}`;
  }
  if (s.jobId !== NO_JOB_ID || s.result === ShareResult.Accepted) {
    if (!isJobId(s.jobId)) {
      return `${at}.jobId must be 1–${ShareLimits.maxJobIdChars} characters of A-Z a-z 0-9 . _ : -${
        s.result === ShareResult.Accepted ? '' : ' (or empty on a rejected share)'
      }, got ${show(s.jobId)}`;
    }
  }
  const en = ShareLimits.maxExtranonceHexDigits;
  const word = ShareLimits.wordHexDigits;
  const problem =
    hexProblem(at, 'extranonce1', s.extranonce1, 2, en) ??
    hexProblem(at, 'extranonce2', s.extranonce2, 0, en) ??
    hexProblem(at, 'ntime', s.ntime, 0, word) ??
    hexProblem(at, 'nonce', s.nonce, 0, word) ??
    hexProblem(at, 'version', s.version, word, word) ??
    numberProblem(at, 'diff', s.diff, ShareLimits.maxDiff) ??
    numberProblem(at, 'actualDiff', s.actualDiff, Number.MAX_VALUE);
  if (problem !== null) return problem;
  if (typeof s.ts !== 'number' || !Number.isSafeInteger(s.ts) || s.ts < 0) {
    return `${at}.ts must be a time in epoch milliseconds, got ${show(s.ts)}`;
  }
  if (!isShareName(s.ip, 0, ShareLimits.maxIpChars)) {
    return `${at}.ip must be at most ${ShareLimits.maxIpChars} characters ${NAME_RULE}`;
  }
  if (s.blockHash !== undefined) {
    const digits = ShareLimits.blockHashHexDigits;
    const bad = hexProblem(at, 'blockHash', s.blockHash, digits, digits);
    if (bad !== null) return `${bad} (when present)`;
  }
  return null;
}

/** Thrown by {@link assertShare}; the message names the field. */
export class ShareSchemaError extends Error {
  override readonly name = 'ShareSchemaError';
}

/** @throws ShareSchemaError naming the field when `share` is not a valid {@link Share} */
export function assertShare(share: unknown, at = 'share'): asserts share is Share {
  const problem = shareProblem(share, at);
  if (problem !== null) throw new ShareSchemaError(problem);
}
