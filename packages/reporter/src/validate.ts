import { RpcErrorCode, type Share, ShareLimits, isShareName, shareProblem } from '@hashwire/protocol';
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
export const MAX_SHARE_DIFF = ShareLimits.maxDiff;
/** Batch ids become Redis key names (the spool's are UUIDs). */
const BATCH_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function refuse(message: string): never {
  throw new RpcError(RpcErrorCode.BadRequest, message);
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
  if (!isShareName(stratumId)) {
    refuse('stratumId must be 1–128 characters without whitespace, control characters or |');
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
    const share = shares[i] as Share;
    // The one share schema, the same the stratum server builds every spooled share with.
    const problem = shareProblem(share, `shares[${i}]`);
    if (problem !== null) refuse(problem);
    if (ids.has(share.shareId)) refuse(`shares[${i}].shareId ${share.shareId} appears twice in the batch`);
    ids.add(share.shareId);
  }
  return body as ShareBatch;
}
