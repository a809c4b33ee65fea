import { varIntSize, writeVarInt } from './bytes.js';
import { type CoinbasePayout, buildCoinbaseForTemplate } from './coinbase.js';
import { ChainError } from './errors.js';
import type { ChainParams } from './params.js';
import type { BlockTemplate } from './template.js';

/** The pool's cut of a SOLO coinbase. */
export interface SoloFee {
  /** Pool fee in basis points (`feePercent` × 100): 0 to 10000. */
  readonly feeBasisPoints: number;
  /** Where the fee output pays; required when `feeBasisPoints` > 0. */
  readonly feeAddress?: string;
}

/**
 * The coinbase end of a SOLO job without its first output: a stratum server writes the finder's
 * output between `head` and `tail` for each payout address it serves ({@link soloCoinb2}).
 * `head` is the pool tag push, the input's sequence and the output count; `tail` the fee output
 * (if any), the witness commitment (if any) and the locktime.
 */
export interface SoloCoinbaseEnd {
  readonly head: Buffer;
  /** What the finder's output pays: `coinbasevalue` less the fee. */
  readonly finderValueSat: number;
  readonly tail: Buffer;
}

function checkFee(fee: SoloFee): void {
  const bp = fee.feeBasisPoints;
  if (!Number.isInteger(bp) || bp < 0 || bp > 10_000) {
    throw new ChainError('bad-value', `feeBasisPoints must be an integer from 0 to 10000, got ${bp}`);
  }
  if (bp > 0 && (fee.feeAddress === undefined || fee.feeAddress === '')) {
    throw new ChainError('bad-value', 'a SOLO pool fee needs a fee address (payments.feeAddress)');
  }
}

/** The fee output of a SOLO coinbase: ⌊coinbasevalue × feeBasisPoints / 10000⌋, in integers. */
export function soloFeeSat(coinbaseValueSat: number, feeBasisPoints: number): number {
  return Number((BigInt(coinbaseValueSat) * BigInt(feeBasisPoints)) / 10_000n);
}

/**
 * The outputs of a SOLO coinbase, in order: the finder (everything but the fee), then the fee
 * output when the fee is more than 0 satoshis. The witness commitment follows them
 * (`buildCoinbase`).
 */
export function soloPayouts(
  finder: Pick<CoinbasePayout, 'address' | 'script'>,
  coinbaseValueSat: number,
  fee: SoloFee,
): CoinbasePayout[] {
  checkFee(fee);
  const feeSat = soloFeeSat(coinbaseValueSat, fee.feeBasisPoints);
  const first: CoinbasePayout =
    finder.script !== undefined ? { script: finder.script } : { address: finder.address as string };
  return feeSat > 0 ? [first, { address: fee.feeAddress as string, valueSat: feeSat }] : [first];
}

/**
 * Builds the SOLO coinbase end of a template once per job: the same serialization
 * `buildCoinbaseForTemplate` gives with {@link soloPayouts}, cut around the finder's output.
 */
export function buildSoloCoinbaseEnd(
  template: Pick<BlockTemplate, 'height' | 'coinbasevalue' | 'default_witness_commitment' | 'coinbaseaux'>,
  options: {
    readonly params: ChainParams;
    readonly poolTag?: string | Uint8Array;
    readonly extranonce1Size: number;
    readonly extranonce2Size: number;
    readonly fee: SoloFee;
  },
): SoloCoinbaseEnd {
  const cb = buildCoinbaseForTemplate(template, {
    params: options.params,
    payouts: soloPayouts({ script: Buffer.alloc(0) }, template.coinbasevalue, options.fee),
    extranonce1Size: options.extranonce1Size,
    extranonce2Size: options.extranonce2Size,
    ...(options.poolTag !== undefined && { poolTag: options.poolTag }),
  });
  // The placeholder output: 8 bytes of value and an empty script (1 byte of length).
  return {
    head: cb.coinb2.subarray(0, cb.outputsAt),
    finderValueSat: cb.outputs[0]!.valueSat,
    tail: cb.coinb2.subarray(cb.outputsAt + 9),
  };
}

/** `coinb2` of a SOLO job for one finder's output script: head ‖ value ‖ script ‖ tail. */
export function soloCoinb2(end: SoloCoinbaseEnd, script: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(
    end.head.length + 8 + varIntSize(script.length) + script.length + end.tail.length,
  );
  end.head.copy(out, 0);
  let at = out.writeBigUInt64LE(BigInt(end.finderValueSat), end.head.length);
  at = writeVarInt(out, at, script.length);
  out.set(script, at);
  end.tail.copy(out, at + script.length);
  return out;
}
