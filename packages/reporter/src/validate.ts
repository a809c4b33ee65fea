import {
  MAX_SUB_BATCHES_PER_REQUEST,
  RpcErrorCode,
  SPOOL_ID,
  type Share,
  ShareLimits,
  type ShareSubBatch,
  isShareName,
  shareProblem,
} from '@hashwire/protocol';
import { RpcError } from '@hashwire/rpc';

/** A sub-batch that passed validation, with the request it came in. */
export interface ShareBatch {
  /** `<spool batch id>:<bucket>`, for tracing. */
  batchId: string;
  seq: number;
  stratumId: string;
  chain: string;
  shares: Share[];
}

/** A `reporter.shares` request whose envelope passed validation; each sub-batch is judged on its own. */
export interface ValidRequest {
  stratumId: string;
  spoolId: string;
  chain: string;
  floor: number;
  /** The readable sub-batches, in request order. */
  subs: ShareBatch[];
  /** Sub-batches refused (by seq): unreadable, nothing of them is written. */
  refused: Map<number, RpcError>;
  /** Every seq of the request, in its order. */
  order: number[];
}

export interface BatchLimits {
  /** The chain this reporter credits; batches for another are refused. */
  chain: string;
  /** Shares per sub-batch at most. @defaultValue 20000 */
  maxShares: number;
}

/** Highest difficulty a share may be credited with; keeps every sum far from float overflow. */
export const MAX_SHARE_DIFF = ShareLimits.maxDiff;
/** Sub-batch ids are logged and traced (the spool's are `<uuid>:<bucket>`). */
const BATCH_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function refuse(message: string): never {
  throw new RpcError(RpcErrorCode.BadRequest, message);
}

function isSeq(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Checks one sub-batch completely before anything is written: one bad share refuses it whole
 * (`BadRequest`, or `TooLarge` above `maxShares`) with a message naming the field, so nothing
 * of it is ever half-applied. `at` names it in messages.
 */
export function validateBatch(
  body: unknown,
  limits: BatchLimits,
  at = 'batch',
): Pick<ShareBatch, 'batchId' | 'shares'> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) refuse(`${at} must be an object`);
  const { batchId, shares } = body as Record<string, unknown>;
  if (typeof batchId !== 'string' || !BATCH_ID.test(batchId)) {
    refuse(`${at}.id must be 1–128 characters of A-Z a-z 0-9 . _ : -`);
  }
  if (!Array.isArray(shares)) refuse(`${at}.shares must be an array`);
  if (shares.length > limits.maxShares) {
    throw new RpcError(
      RpcErrorCode.TooLarge,
      `a sub-batch holds at most ${limits.maxShares} shares, ${at} ${shares.length}`,
    );
  }
  const ids = new Set<string>();
  for (let i = 0; i < shares.length; i++) {
    const share = shares[i] as Share;
    // The one share schema, the same the stratum server builds every spooled share with.
    const problem = shareProblem(share, `${at}.shares[${i}]`);
    if (problem !== null) refuse(problem);
    if (ids.has(share.shareId))
      refuse(`${at}.shares[${i}].shareId ${share.shareId} appears twice in the batch`);
    ids.add(share.shareId);
  }
  return { batchId, shares: shares as Share[] };
}

/**
 * Checks a `reporter.shares` request: a bad envelope (chain, spoolId, floor, the list of
 * sub-batches, a seq used twice or below the floor) refuses it whole; a bad sub-batch is
 * refused alone, the others go on.
 */
export function validateRequest(body: unknown, limits: BatchLimits): ValidRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    refuse('the request must be an object');
  const { stratumId, spoolId, chain, floor, subs } = body as Record<string, unknown>;
  if (!isShareName(stratumId)) {
    refuse('stratumId must be 1–128 characters without whitespace, control characters or |');
  }
  if (chain !== limits.chain) {
    refuse(
      `chain must be ${JSON.stringify(limits.chain)} (this reporter's chain), got ${JSON.stringify(chain)}`,
    );
  }
  if (typeof spoolId !== 'string' || !SPOOL_ID.test(spoolId)) {
    refuse('spoolId must be 1–64 characters of A-Z a-z 0-9 . _ -');
  }
  if (!isSeq(floor)) refuse('floor must be a non-negative integer');
  if (!Array.isArray(subs) || subs.length === 0) refuse('subs must be a non-empty array');
  if (subs.length > MAX_SUB_BATCHES_PER_REQUEST) {
    throw new RpcError(
      RpcErrorCode.TooLarge,
      `a request holds at most ${MAX_SUB_BATCHES_PER_REQUEST} sub-batches, this one ${subs.length}`,
    );
  }
  const out: ValidRequest = { stratumId, spoolId, chain, floor, subs: [], refused: new Map(), order: [] };
  const seqs = new Set<number>();
  for (let i = 0; i < subs.length; i++) {
    const sub = subs[i] as Partial<ShareSubBatch> | null;
    const seq = sub?.seq;
    if (!isSeq(seq)) refuse(`subs[${i}].seq must be a non-negative integer`);
    if (seq < floor) refuse(`subs[${i}].seq ${seq} is below the request's floor ${floor}`);
    if (seqs.has(seq)) refuse(`subs[${i}].seq ${seq} appears twice in the request`);
    seqs.add(seq);
    out.order.push(seq);
    try {
      const { batchId, shares } = validateBatch(
        { batchId: sub?.id, shares: sub?.shares },
        limits,
        `subs[${i}]`,
      );
      out.subs.push({ batchId, seq, stratumId, chain, shares });
    } catch (error) {
      if (!(error instanceof RpcError)) throw error;
      out.refused.set(seq, error);
    }
  }
  return out;
}
