import { hexToBytes } from './bytes.js';
import { ChainError } from './errors.js';
import { type ChainParams, DIFF1_TARGET } from './params.js';

const MAX_TARGET = (1n << 256n) - 1n;
const DIFF1_FLOAT = Number(DIFF1_TARGET);

function parseBits(bits: number | string): number {
  const value =
    typeof bits === 'string'
      ? /^[0-9a-fA-F]{1,8}$/.test(bits)
        ? Number.parseInt(bits, 16)
        : Number.NaN
      : bits;
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new ChainError(
      'bad-bits',
      `bits must be a 32-bit compact target (e.g. "1d00ffff"), got ${String(bits)}`,
    );
  }
  return value;
}

/**
 * Compact `nBits` to the full target (Bitcoin Core arith_uint256::SetCompact). Refuses the
 * negative and overflowing encodings consensus refuses.
 */
export function bitsToTarget(bits: number | string): bigint {
  const compact = parseBits(bits);
  const size = compact >>> 24;
  const word = compact & 0x007fffff;
  if (word !== 0 && (compact & 0x00800000) !== 0) {
    throw new ChainError(
      'bad-bits',
      `bits ${compact.toString(16).padStart(8, '0')} encode a negative target`,
    );
  }
  if (word !== 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32))) {
    throw new ChainError('bad-bits', `bits ${compact.toString(16).padStart(8, '0')} overflow 256 bits`);
  }
  return size <= 3 ? BigInt(word >>> (8 * (3 - size))) : BigInt(word) << BigInt(8 * (size - 3));
}

/** Full target to compact `nBits` (arith_uint256::GetCompact), which rounds the target down. */
export function targetToBits(target: bigint): number {
  if (target < 0n || target > MAX_TARGET)
    throw new ChainError('bad-value', 'target must be within 0..2^256-1');
  let size = target === 0n ? 0 : Math.ceil(target.toString(2).length / 8);
  let compact =
    size <= 3 ? Number(target << BigInt(8 * (3 - size))) : Number(target >> BigInt(8 * (size - 3)));
  if ((compact & 0x00800000) !== 0) {
    compact >>>= 8;
    size += 1;
  }
  return ((size << 24) | compact) >>> 0;
}

/** Target as 32 little-endian bytes (the byte order of a hash), for {@link hashMeetsTarget}. */
export function targetToBuffer(target: bigint, out: Buffer = Buffer.allocUnsafe(32)): Buffer {
  if (target < 0n || target > MAX_TARGET)
    throw new ChainError('bad-value', 'target must be within 0..2^256-1');
  let rest = target;
  for (let i = 0; i < 32; i++) {
    out[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return out;
}

/** A 32-byte little-endian number (hash or target buffer) as a bigint. */
export function bufferToTarget(le: Uint8Array): bigint {
  let value = 0n;
  for (let i = le.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(le[i]!);
  return value;
}

/** GBT's `target` field (big-endian hex) as a bigint. */
export function targetFromHex(hex: string): bigint {
  const bytes = hexToBytes(hex, 'target');
  if (bytes.length !== 32) throw new ChainError('bad-length', `target must be 32 bytes, got ${bytes.length}`);
  return BigInt(`0x${hex}`);
}

/**
 * Whether a hash (32 bytes, little-endian as produced by sha256d/scrypt) is ≤ the target
 * (32 bytes little-endian, from {@link targetToBuffer}). Byte compare from the top: no bigint,
 * no allocation, usually decided by the first byte.
 */
export function hashMeetsTarget(hash: Uint8Array, target: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    const h = hash[i]!;
    const t = target[i]!;
    if (h !== t) return h < t;
  }
  return true;
}

/** Network difficulty of `bits` exactly as daemons compute it (GetDifficulty): diff1 = `1d00ffff`. */
export function difficultyFromBits(bits: number | string): number {
  const compact = parseBits(bits);
  let shift = (compact >>> 24) & 0xff;
  let diff = 0x0000ffff / (compact & 0x00ffffff);
  while (shift < 29) {
    diff *= 256;
    shift++;
  }
  while (shift > 29) {
    diff /= 256;
    shift--;
  }
  return diff;
}

/** A positive finite double as mantissa × 2^exponent, exactly. */
function exactBinary(value: number): { mantissa: bigint; exponent: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value);
  const raw = view.getBigUint64(0);
  const biased = Number((raw >> 52n) & 0x7ffn);
  const fraction = raw & ((1n << 52n) - 1n);
  return biased === 0
    ? { mantissa: fraction, exponent: -1074 }
    : { mantissa: fraction | (1n << 52n), exponent: biased - 1075 };
}

/**
 * Target for difficulty `diff`: floor(diff1Target × multiplier / diff), computed exactly from
 * the double (fractional difficulties included), capped at 2^256-1.
 * Multiplier 1 is the network/sha256d convention, 65536 the scrypt stratum convention.
 */
export function targetFromDifficulty(diff: number, multiplier = 1): bigint {
  if (!Number.isFinite(diff) || diff <= 0) {
    throw new ChainError('bad-value', `difficulty must be a positive finite number, got ${diff}`);
  }
  if (!Number.isSafeInteger(multiplier) || multiplier < 1) {
    throw new ChainError('bad-value', `difficulty multiplier must be a positive integer, got ${multiplier}`);
  }
  const numerator = DIFF1_TARGET * BigInt(multiplier);
  const { mantissa, exponent } = exactBinary(diff);
  const target =
    exponent >= 0 ? numerator / (mantissa << BigInt(exponent)) : (numerator << BigInt(-exponent)) / mantissa;
  return target > MAX_TARGET ? MAX_TARGET : target;
}

/** Difficulty of a target: diff1Target × multiplier / target (Infinity for 0). */
export function difficultyFromTarget(target: bigint, multiplier = 1): number {
  if (target <= 0n) return Number.POSITIVE_INFINITY;
  const scaled = ((DIFF1_TARGET * BigInt(multiplier)) << 64n) / target;
  return Number(scaled) / 2 ** 64;
}

/**
 * Difficulty a hash achieved (what a share is "worth"), in doubles: fast enough for every share;
 * relative error around 1e-15.
 */
export function difficultyFromHash(hash: Uint8Array, multiplier = 1): number {
  let value = 0;
  for (let i = 31; i >= 0; i--) value = value * 256 + hash[i]!;
  return value === 0 ? Number.POSITIVE_INFINITY : (DIFF1_FLOAT * multiplier) / value;
}

/** Share target for stratum difficulty `diff` under the chain's convention. */
export function shareTarget(params: Pick<ChainParams, 'shareDiffMultiplier'>, diff: number): bigint {
  return targetFromDifficulty(diff, params.shareDiffMultiplier);
}

/** Stratum share difficulty achieved by a PoW hash under the chain's convention. */
export function shareDifficultyOfHash(
  params: Pick<ChainParams, 'shareDiffMultiplier'>,
  powHash: Uint8Array,
): number {
  return difficultyFromHash(powHash, params.shareDiffMultiplier);
}
