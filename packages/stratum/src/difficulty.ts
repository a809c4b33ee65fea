import { type ChainParams, shareTarget, targetToBuffer } from '@hashwire/chain';

/**
 * Share target buffers by stratum difficulty, for one chain's convention (diff1 for sha256d,
 * diff1 × 65536 for scrypt). The bigint work runs once per distinct difficulty, not per share.
 */
export class ShareTargetCache {
  #byDiff = new Map<number, Buffer>();

  /** @param maxEntries distinct difficulties kept; the cache starts over when it is full */
  constructor(
    readonly params: Pick<ChainParams, 'shareDiffMultiplier'>,
    readonly maxEntries = 1024,
  ) {}

  /**
   * 32-byte little-endian target for `diff`.
   * @throws ChainError when `diff` is not a positive finite number
   */
  get(diff: number): Buffer {
    let target = this.#byDiff.get(diff);
    if (target === undefined) {
      target = targetToBuffer(shareTarget(this.params, diff));
      if (this.#byDiff.size >= this.maxEntries) this.#byDiff.clear();
      this.#byDiff.set(diff, target);
    }
    return target;
  }
}

/**
 * The difficulty each job was sent to a session with: a difficulty change applies to jobs sent
 * after it, so a share is judged at the difficulty in force when its job went out. Plain data
 * (JSON-serializable), kept in the session's state; newest last.
 */
export interface JobDifficulties {
  jobIds: string[];
  diffs: number[];
}

/** @defaultValue how many sent jobs a session remembers */
export const DEFAULT_JOB_DIFFICULTIES = 16;

export function createJobDifficulties(): JobDifficulties {
  return { jobIds: [], diffs: [] };
}

/**
 * Records that `jobId` went out while `diff` was in force. A job sent again keeps the
 * difficulty of its first sending: the miner may still be working on it at that difficulty.
 */
export function recordJobSent(
  state: JobDifficulties,
  jobId: string,
  diff: number,
  maxJobs = DEFAULT_JOB_DIFFICULTIES,
): void {
  if (state.jobIds.includes(jobId)) return;
  state.jobIds.push(jobId);
  state.diffs.push(diff);
  const excess = state.jobIds.length - maxJobs;
  if (excess > 0) {
    state.jobIds.splice(0, excess);
    state.diffs.splice(0, excess);
  }
}

/** The difficulty `jobId` was sent with, or undefined when this session never got it (or forgot it). */
export function difficultyForJob(state: JobDifficulties, jobId: string): number | undefined {
  for (let i = state.jobIds.length - 1; i >= 0; i--) {
    if (state.jobIds[i] === jobId) return state.diffs[i];
  }
  return undefined;
}
