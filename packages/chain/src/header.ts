import { hexToBytes } from './bytes.js';
import { ChainError } from './errors.js';

export const HEADER_SIZE = 80;

export interface HeaderFields {
  /** nVersion; the top bits may be rolled by miners (BIP310), so any uint32/int32 value is fine. */
  readonly version: number;
  /** Previous block hash, 32 bytes in internal order. */
  readonly prevHash: Uint8Array;
  /** Merkle root, 32 bytes in internal order. */
  readonly merkleRoot: Uint8Array;
  /** nTime, seconds. */
  readonly time: number;
  /** nBits, compact target. */
  readonly bits: number;
  readonly nonce: number;
}

function checkUint32(value: number, field: string): void {
  if (!Number.isInteger(value) || value < -0x80000000 || value > 0xffffffff) {
    throw new ChainError('bad-value', `${field} must be a 32-bit integer, got ${value}`);
  }
}

/**
 * Writes the 80-byte header into `out` at `offset` (no allocation; the share-validation path
 * reuses one buffer per job). Returns `out`.
 */
export function writeHeader(out: Buffer, fields: HeaderFields, offset = 0): Buffer {
  if (fields.prevHash.length !== 32) throw new ChainError('bad-length', 'prevHash must be 32 bytes');
  if (fields.merkleRoot.length !== 32) throw new ChainError('bad-length', 'merkleRoot must be 32 bytes');
  checkUint32(fields.version, 'version');
  checkUint32(fields.time, 'time');
  checkUint32(fields.bits, 'bits');
  checkUint32(fields.nonce, 'nonce');
  out.writeUInt32LE(fields.version >>> 0, offset);
  out.set(fields.prevHash, offset + 4);
  out.set(fields.merkleRoot, offset + 36);
  out.writeUInt32LE(fields.time >>> 0, offset + 68);
  out.writeUInt32LE(fields.bits >>> 0, offset + 72);
  out.writeUInt32LE(fields.nonce >>> 0, offset + 76);
  return out;
}

/** A new 80-byte header. */
export function buildHeader(fields: HeaderFields): Buffer {
  return writeHeader(Buffer.allocUnsafe(HEADER_SIZE), fields);
}

/** Reverses the bytes inside every 4-byte word (its own inverse). `out` may be `src`. */
export function swapWords32(src: Uint8Array, out: Buffer = Buffer.allocUnsafe(src.length)): Buffer {
  if (src.length % 4 !== 0)
    throw new ChainError('bad-length', `word swap needs a multiple of 4 bytes, got ${src.length}`);
  for (let i = 0; i < src.length; i += 4) {
    const a = src[i]!;
    const b = src[i + 1]!;
    out[i] = src[i + 3]!;
    out[i + 1] = src[i + 2]!;
    out[i + 2] = b;
    out[i + 3] = a;
  }
  return out;
}

/**
 * `mining.notify` prevhash from a daemon's previousblockhash (display hex). Stratum sends the
 * header's internal-order bytes with each 4-byte word byte-swapped; the net effect is the
 * display hex with its eight 8-digit words in reverse order.
 */
export function stratumPrevhashFromDisplay(previousblockhash: string): string {
  const display = hexToBytes(previousblockhash, 'previousblockhash');
  if (display.length !== 32) throw new ChainError('bad-length', 'previousblockhash must be 32 bytes');
  return swapWords32(display.reverse()).toString('hex');
}

/** The header's prevHash bytes (internal order) from a stratum prevhash. */
export function prevHashFromStratum(stratumPrevhash: string): Buffer {
  const bytes = hexToBytes(stratumPrevhash, 'stratum prevhash');
  if (bytes.length !== 32) throw new ChainError('bad-length', 'stratum prevhash must be 32 bytes');
  return swapWords32(bytes, bytes);
}

/** A daemon's display hex from a stratum prevhash (inverse of {@link stratumPrevhashFromDisplay}). */
export function displayFromStratumPrevhash(stratumPrevhash: string): string {
  return prevHashFromStratum(stratumPrevhash).reverse().toString('hex');
}
