import { ShareLimits } from '@hashwire/protocol';
import type { SessionState } from './session.js';

/** Variable difficulty: keep each miner near a steady share rate whatever its hashrate. */
export interface VardiffOptions {
  /** @defaultValue true */
  enabled?: boolean;
  /**
   * Share rate to aim for.
   * @defaultValue 18
   */
  targetSharesPerMin?: number;
  /**
   * Window over which the rate is measured before a retarget.
   * @defaultValue 60000
   */
  retargetMs?: number;
  /**
   * A window is cut short once it holds this many times the shares expected for a whole
   * window (and at least `minWindowMs` passed), so a fast miner starting far too low
   * climbs quickly.
   * @defaultValue 4
   */
  burstFactor?: number;
  /** @defaultValue 5000 */
  minWindowMs?: number;
  /**
   * No change while the measured rate is within this fraction of the target.
   * @defaultValue 0.3
   */
  tolerance?: number;
  /**
   * Largest change of one retarget, as a factor (up or down).
   * @defaultValue 4
   */
  maxStepFactor?: number;
  /**
   * Difficulty of a new session.
   * @defaultValue 16
   */
  initialDifficulty?: number;
  /** @defaultValue 0.001 */
  minDifficulty?: number;
  /** @defaultValue 4294967296 */
  maxDifficulty?: number;
}

export type ResolvedVardiffOptions = Required<VardiffOptions>;

export function resolveVardiffOptions(options: VardiffOptions = {}): ResolvedVardiffOptions {
  const resolved: ResolvedVardiffOptions = {
    enabled: options.enabled ?? true,
    targetSharesPerMin: options.targetSharesPerMin ?? 18,
    retargetMs: options.retargetMs ?? 60_000,
    burstFactor: options.burstFactor ?? 4,
    minWindowMs: options.minWindowMs ?? 5_000,
    tolerance: options.tolerance ?? 0.3,
    maxStepFactor: options.maxStepFactor ?? 4,
    initialDifficulty: options.initialDifficulty ?? 16,
    minDifficulty: options.minDifficulty ?? 0.001,
    maxDifficulty: options.maxDifficulty ?? 2 ** 32,
  };
  for (const [field, value] of Object.entries(resolved)) {
    if (typeof value === 'number' && !(Number.isFinite(value) && value > 0)) {
      throw new RangeError(`vardiff.${field} must be a positive number, got ${value}`);
    }
  }
  if (resolved.maxDifficulty > ShareLimits.maxDiff || resolved.initialDifficulty > ShareLimits.maxDiff) {
    throw new RangeError(
      `vardiff.maxDifficulty and vardiff.initialDifficulty must be at most ${ShareLimits.maxDiff} (the highest difficulty a share carries), got ${resolved.maxDifficulty} and ${resolved.initialDifficulty}`,
    );
  }
  if (resolved.minDifficulty > resolved.maxDifficulty) {
    throw new RangeError(
      `vardiff.minDifficulty (${resolved.minDifficulty}) must not exceed vardiff.maxDifficulty (${resolved.maxDifficulty})`,
    );
  }
  if (resolved.maxStepFactor < 1) throw new RangeError('vardiff.maxStepFactor must be at least 1');
  return resolved;
}

/** Clamps into [max(min, session floor), max], rounded to 4 significant digits. */
export function clampDifficulty(diff: number, state: SessionState, options: ResolvedVardiffOptions): number {
  const floor = Math.max(options.minDifficulty, state.minDifficulty ?? 0);
  const clamped = Math.min(options.maxDifficulty, Math.max(floor, diff));
  const rounded = Number(clamped.toPrecision(4));
  return rounded < floor ? floor : rounded > options.maxDifficulty ? options.maxDifficulty : rounded;
}

/** The difficulty the session works at after what is pending goes out. */
export function effectiveDifficulty(state: SessionState): number {
  return state.pendingDifficulty ?? state.difficulty;
}

/**
 * Counts an accepted share and retargets when the window is over or overfull. Returns the
 * new pending difficulty, or null when nothing changed. Cheap: a few comparisons per share.
 */
export function vardiffOnShare(
  state: SessionState,
  now: number,
  options: ResolvedVardiffOptions,
): number | null {
  const v = state.vardiff;
  v.windowShares++;
  if (!options.enabled) return null;
  const elapsed = now - v.windowStartMs;
  const expectedPerWindow = (options.targetSharesPerMin * options.retargetMs) / 60_000;
  if (elapsed >= options.retargetMs) return retarget(state, now, options);
  if (elapsed >= options.minWindowMs && v.windowShares >= expectedPerWindow * options.burstFactor) {
    return retarget(state, now, options);
  }
  return null;
}

/**
 * Called from the periodic sweep: a miner that found too few shares for a whole window
 * gets an easier target even though no share arrives to trigger a retarget.
 */
export function vardiffOnTick(
  state: SessionState,
  now: number,
  options: ResolvedVardiffOptions,
): number | null {
  if (!options.enabled) return null;
  if (now - state.vardiff.windowStartMs < options.retargetMs) return null;
  return retarget(state, now, options);
}

function retarget(state: SessionState, now: number, options: ResolvedVardiffOptions): number | null {
  const v = state.vardiff;
  const minutes = Math.max(now - v.windowStartMs, 1) / 60_000;
  const rate = v.windowShares / minutes;
  v.windowStartMs = now;
  v.windowShares = 0;
  const ratio = rate / options.targetSharesPerMin;
  if (Math.abs(ratio - 1) <= options.tolerance) return null;
  const step = Math.min(options.maxStepFactor, Math.max(1 / options.maxStepFactor, ratio));
  const current = effectiveDifficulty(state);
  const next = clampDifficulty(current * step, state, options);
  if (next === current) return null;
  state.pendingDifficulty = next;
  return next;
}
