import { DIFF1_TARGET, bitsToTarget } from '@hashwire/chain';
import type { RedisClient } from '@hashwire/registry';
import { WEIGHT_PER_DIFF, diffToWeight } from './amounts.js';

/** The PPLNS factor is taken in 10^-4 steps (2, 2.5, 0.1234). */
const FACTOR_SCALE = 10_000n;

/**
 * N of PPLNS in weight units: factor × the network difficulty of the block (from its `bits`,
 * in the chain's share-difficulty convention: diff1Target × multiplier / target), exactly:
 * ⌊factor×10^4 × diff1 × multiplier × 10^8 / (target × 10^4)⌋.
 */
export function pplnsWindowWeight(
  bits: string | number,
  factor: number,
  shareDiffMultiplier: number,
): bigint {
  const scaled = BigInt(Math.round(factor * Number(FACTOR_SCALE)));
  if (scaled <= 0n) throw new RangeError(`pplnsFactor must be positive, got ${factor}`);
  const target = bitsToTarget(bits);
  return (scaled * DIFF1_TARGET * BigInt(shareDiffMultiplier) * WEIGHT_PER_DIFF) / (target * FACTOR_SCALE);
}

export interface PplnsWindow {
  weights: Map<string, bigint>;
  /** The weight asked for (N). */
  wantedWeight: bigint;
  /** The weight found: N, or less when the window holds fewer shares (a young pool). */
  coveredWeight: bigint;
  /** Window entries read. */
  entries: number;
}

export interface WindowKeys {
  window: string;
  found: string;
}

const PAGE = 500;

/**
 * The last `wantedWeight` units of difficulty credited up to and including the request that
 * carried the block's share, newest first. The oldest entry needed is counted in part: each of
 * its accounts by ⌊weight × (what is still wanted) / (the entry's weight)⌋. Null when the block
 * is not in the window (found before the window was on).
 */
export async function readPplnsWindow(
  redis: RedisClient,
  keys: WindowKeys,
  blockHash: string,
  wantedWeight: bigint,
): Promise<PplnsWindow | null> {
  const found = await redis.hget(keys.found, blockHash);
  if (!found) return null;
  const [entryId] = found.split(' ');
  const weights = new Map<string, bigint>();
  let remaining = wantedWeight;
  let entries = 0;
  let end = entryId as string;
  let inclusive = true;
  while (remaining > 0n) {
    const page = (await redis.xrevrange(keys.window, inclusive ? end : `(${end}`, '-', 'COUNT', PAGE)) as [
      string,
      string[],
    ][];
    inclusive = false;
    if (page.length === 0) break;
    for (const [id, fields] of page) {
      end = id;
      entries++;
      const lines = fieldOf(fields, 'a').split('\n');
      const entry: [string, bigint][] = [];
      let entryWeight = 0n;
      for (const line of lines) {
        const space = line.lastIndexOf(' ');
        if (space <= 0) continue;
        const weight = diffToWeight(line.slice(space + 1));
        entry.push([line.slice(0, space), weight]);
        entryWeight += weight;
      }
      if (entryWeight === 0n) continue;
      const whole = entryWeight <= remaining;
      for (const [account, weight] of entry) {
        const counted = whole ? weight : (weight * remaining) / entryWeight;
        if (counted > 0n) weights.set(account, (weights.get(account) ?? 0n) + counted);
      }
      remaining = whole ? remaining - entryWeight : 0n;
      if (remaining === 0n) break;
    }
    if (page.length < PAGE) break;
  }
  let covered = 0n;
  for (const w of weights.values()) covered += w;
  return { weights, wantedWeight, coveredWeight: covered, entries };
}

function fieldOf(fields: string[], name: string): string {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1] as string;
  return '';
}

/** A round's hash (account → credited difficulty) as weights: PROP. */
export function roundWeights(round: Record<string, string>): Map<string, bigint> {
  const weights = new Map<string, bigint>();
  for (const [account, diff] of Object.entries(round)) {
    const weight = diffToWeight(diff);
    if (weight > 0n) weights.set(account, weight);
  }
  return weights;
}
