import { RpcErrorCode, type Share, ShareResult } from '@hashwire/protocol';
import { RpcError } from '@hashwire/rpc';

/** A `reporter.shares` request that passed validation. */
export interface ShareBatch {
  batchId: string;
  stratumId: string;
  chain: string;
  shares: Share[];
}

export interface BatchLimits {
  /** The chain this reporter credits; batches for another are refused. */
  chain: string;
  /** @defaultValue 20000 */
  maxShares: number;
}

/** Highest difficulty a share may be credited with; keeps every sum far from float overflow. */
export const MAX_SHARE_DIFF = 1e15;
const MAX_TEXT = 256;
/** Batch ids become Redis key names (the spool's are UUIDs). */
const BATCH_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** Names stored in hash fields and in the space-separated share log: no whitespace, no control characters. */
const NAME = /^[^\s\p{Cc}|]{1,128}$/u;
const WORKER = /^[^\s\p{Cc}|]{0,128}$/u;
const BLOCK_HASH = /^[0-9a-fA-F]{64}$/;
const RESULTS: ReadonlySet<string> = new Set(Object.values(ShareResult));

function refuse(message: string): never {
  throw new RpcError(RpcErrorCode.BadRequest, message);
}

/** Submission fields, also written into the tab-separated share log: no whitespace or control characters. */
const SUBMISSION = /^[^\s\p{Cc}]{0,256}$/u;

function submissionField(where: string, value: unknown): string {
  if (typeof value !== 'string' || !SUBMISSION.test(value)) {
    refuse(`${where} must be a string of at most ${MAX_TEXT} characters without whitespace`);
  }
  return value;
}

function text(where: string, value: unknown): string {
  if (typeof value !== 'string' || value.length > MAX_TEXT) {
    refuse(`${where} must be a string of at most ${MAX_TEXT} characters`);
  }
  return value;
}

function diffField(where: string, value: unknown, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > max) {
    refuse(`${where} must be a number from 0 to ${max}, got ${JSON.stringify(value) ?? String(value)}`);
  }
  return value;
}

/**
 * Checks a batch completely before anything is written: a batch with one bad share is refused
 * whole (`BadRequest`, or `TooLarge` above `maxShares`) with a message naming the field, so
 * nothing of it is ever half-applied.
 */
export function validateBatch(body: unknown, limits: BatchLimits): ShareBatch {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    refuse('the request must be an object');
  const { batchId, stratumId, chain, shares } = body as Record<string, unknown>;
  if (typeof batchId !== 'string' || !BATCH_ID.test(batchId)) {
    refuse('batchId must be 1–128 characters of A-Z a-z 0-9 . _ : -');
  }
  if (typeof stratumId !== 'string' || !NAME.test(stratumId)) {
    refuse('stratumId must be 1–128 characters without whitespace or |');
  }
  if (chain !== limits.chain) {
    refuse(
      `chain must be ${JSON.stringify(limits.chain)} (this reporter's chain), got ${JSON.stringify(chain)}`,
    );
  }
  if (!Array.isArray(shares)) refuse('shares must be an array');
  if (shares.length > limits.maxShares) {
    throw new RpcError(
      RpcErrorCode.TooLarge,
      `a batch holds at most ${limits.maxShares} shares, this one ${shares.length}`,
    );
  }
  const ids = new Set<string>();
  for (let i = 0; i < shares.length; i++) {
    const share = shares[i] as Record<string, unknown> | null;
    const at = `shares[${i}]`;
    if (typeof share !== 'object' || share === null || Array.isArray(share))
      refuse(`${at} must be an object`);
    const { shareId, account, worker, result, ts, blockHash } = share;
    if (typeof shareId !== 'string' || !NAME.test(shareId)) {
      refuse(`${at}.shareId must be 1–128 characters without whitespace or |`);
    }
    if (ids.has(shareId)) refuse(`${at}.shareId ${shareId} appears twice in the batch`);
    ids.add(shareId);
    if (typeof account !== 'string' || !NAME.test(account)) {
      refuse(`${at}.account must be 1–128 characters without whitespace or | (unknown worker)`);
    }
    if (typeof worker !== 'string' || !WORKER.test(worker)) {
      refuse(`${at}.worker must be at most 128 characters without whitespace or |`);
    }
    if (typeof result !== 'string' || !RESULTS.has(result)) {
      refuse(`${at}.result must be one of ${[...RESULTS].join(', ')}, got ${JSON.stringify(result)}`);
    }
    diffField(`${at}.diff`, share.diff, MAX_SHARE_DIFF);
    diffField(`${at}.actualDiff`, share.actualDiff, Number.MAX_VALUE);
    if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0) {
      refuse(`${at}.ts must be a time in epoch milliseconds`);
    }
    text(`${at}.sessionId`, share.sessionId);
    submissionField(`${at}.jobId`, share.jobId);
    submissionField(`${at}.extranonce1`, share.extranonce1);
    submissionField(`${at}.extranonce2`, share.extranonce2);
    submissionField(`${at}.ntime`, share.ntime);
    submissionField(`${at}.nonce`, share.nonce);
    submissionField(`${at}.version`, share.version);
    text(`${at}.ip`, share.ip);
    if (blockHash !== undefined && (typeof blockHash !== 'string' || !BLOCK_HASH.test(blockHash))) {
      refuse(`${at}.blockHash must be 64 hex digits when present`);
    }
  }
  return body as ShareBatch;
}
