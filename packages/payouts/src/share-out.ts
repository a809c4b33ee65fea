/**
 * The share-out of one block's reward: pure integer arithmetic, the same for every scheme.
 *
 *   fee        = ⌊reward × feeBasisPoints / 10000⌋
 *   pot        = reward − fee
 *   credit(a)  = ⌊pot × weight(a) / Σ weight⌋
 *   remainder  = pot − Σ credit(a)            (0 ≤ remainder < number of accounts)
 *
 * The fee and the remainder both go to the fee account, as two ledger entries, so nothing is
 * lost to rounding and every satoshi of the reward is accounted for:
 * reward = fee + remainder + Σ credit(a). With no weight at all the whole pot is remainder.
 */

export interface ShareOutInput {
  /** The block's reward in satoshis. */
  rewardSat: bigint;
  /** The pool fee in hundredths of a percent (0–10000). */
  feeBasisPoints: number;
  /** Account → weight (difficulty in 10^-8 units): the window (PPLNS) or the round (PROP). */
  weights: ReadonlyMap<string, bigint>;
}

export interface ShareOut {
  rewardSat: bigint;
  feeSat: bigint;
  /** What rounding down each credit left over: to the fee account. */
  remainderSat: bigint;
  totalWeight: bigint;
  /** Account → satoshis, in account order; accounts whose credit rounds to 0 are left out. */
  credits: Map<string, bigint>;
}

export function computeShareOut(input: ShareOutInput): ShareOut {
  const { rewardSat, feeBasisPoints } = input;
  if (rewardSat < 0n) throw new RangeError(`reward must not be negative, got ${rewardSat}`);
  if (!Number.isInteger(feeBasisPoints) || feeBasisPoints < 0 || feeBasisPoints > 10_000) {
    throw new RangeError(`feeBasisPoints must be an integer 0–10000, got ${feeBasisPoints}`);
  }
  const feeSat = (rewardSat * BigInt(feeBasisPoints)) / 10_000n;
  const pot = rewardSat - feeSat;
  let totalWeight = 0n;
  for (const [account, weight] of input.weights) {
    if (weight < 0n) throw new RangeError(`weight of ${account} is negative`);
    totalWeight += weight;
  }
  const credits = new Map<string, bigint>();
  let credited = 0n;
  if (totalWeight > 0n) {
    const accounts = [...input.weights.keys()].sort();
    for (const account of accounts) {
      const credit = (pot * (input.weights.get(account) ?? 0n)) / totalWeight;
      if (credit === 0n) continue;
      credits.set(account, credit);
      credited += credit;
    }
  }
  return { rewardSat, feeSat, remainderSat: pot - credited, totalWeight, credits };
}

/** A fee in percent with at most two decimals (`1.25`) as basis points (125). */
export function feePercentToBasisPoints(feePercent: number): number {
  const bp = Math.round(feePercent * 100);
  if (
    !Number.isFinite(feePercent) ||
    feePercent < 0 ||
    feePercent > 100 ||
    Math.abs(bp - feePercent * 100) > 1e-6
  ) {
    throw new RangeError(`feePercent must be 0–100 with at most two decimals, got ${feePercent}`);
  }
  return bp;
}
