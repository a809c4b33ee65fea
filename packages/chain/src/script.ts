import { ChainError } from './errors.js';

export const OP_0 = 0x00;
export const OP_PUSHDATA1 = 0x4c;
export const OP_PUSHDATA2 = 0x4d;
export const OP_1NEGATE = 0x4f;
export const OP_1 = 0x51;
export const OP_16 = 0x60;
export const OP_RETURN = 0x6a;
export const OP_DUP = 0x76;
export const OP_EQUAL = 0x87;
export const OP_EQUALVERIFY = 0x88;
export const OP_HASH160 = 0xa9;
export const OP_CHECKSIG = 0xac;

/**
 * CScriptNum serialization (Bitcoin Core script.h): minimal little-endian magnitude with the
 * sign in the top bit of the last byte, an extra 0x00 (or 0x80) byte when that bit is taken.
 */
export function scriptNumBytes(n: number): Buffer {
  if (!Number.isSafeInteger(n))
    throw new ChainError('bad-value', `script number must be a safe integer, got ${n}`);
  if (n === 0) return Buffer.alloc(0);
  const negative = n < 0;
  let abs = Math.abs(n);
  const bytes: number[] = [];
  while (abs > 0) {
    bytes.push(abs % 256);
    abs = Math.floor(abs / 256);
  }
  const last = bytes.length - 1;
  if ((bytes[last]! & 0x80) !== 0) bytes.push(negative ? 0x80 : 0x00);
  else if (negative) bytes[last] = bytes[last]! | 0x80;
  return Buffer.from(bytes);
}

/** A minimal push of `data` (direct push up to 75 bytes, then PUSHDATA1/2). */
export function pushData(data: Uint8Array): Buffer {
  const n = data.length;
  if (n <= 75) return Buffer.concat([Buffer.of(n), data]);
  if (n <= 0xff) return Buffer.concat([Buffer.of(OP_PUSHDATA1, n), data]);
  if (n <= 0xffff) return Buffer.concat([Buffer.of(OP_PUSHDATA2, n & 0xff, n >> 8), data]);
  throw new ChainError('bad-length', `script push of ${n} bytes is too long (max 65535 here)`);
}

/**
 * `CScript() << n` exactly as Bitcoin Core writes it (CScript::push_int64): OP_0 for 0,
 * OP_1NEGATE for -1, OP_1..OP_16 for 1..16, otherwise a push of the CScriptNum bytes.
 */
export function pushInt(n: number): Buffer {
  if (n === 0) return Buffer.of(OP_0);
  if (n === -1) return Buffer.of(OP_1NEGATE);
  if (n >= 1 && n <= 16) return Buffer.of(OP_1 + n - 1);
  return pushData(scriptNumBytes(n));
}

/**
 * The BIP34 block-height prefix of a coinbase scriptSig. Consensus (ContextualCheckBlock)
 * requires the scriptSig to start with `CScript() << nHeight`, so heights 1..16 are the single
 * opcodes OP_1..OP_16 — not a one-byte push `01 0n`, which Bitcoin Core rejects as
 * `bad-cb-height` — and larger heights are minimal CScriptNum pushes (128 → `02 80 00`).
 */
export function bip34HeightPush(height: number): Buffer {
  if (!Number.isSafeInteger(height) || height < 1 || height > 0x7fffffff) {
    throw new ChainError('bad-value', `block height must be an integer from 1 to 2147483647, got ${height}`);
  }
  return pushInt(height);
}

/** `OP_DUP OP_HASH160 <20> OP_EQUALVERIFY OP_CHECKSIG`. */
export function p2pkhScript(hash160: Uint8Array): Buffer {
  return Buffer.concat([Buffer.of(OP_DUP, OP_HASH160, 20), hash160, Buffer.of(OP_EQUALVERIFY, OP_CHECKSIG)]);
}

/** `OP_HASH160 <20> OP_EQUAL`. */
export function p2shScript(hash160: Uint8Array): Buffer {
  return Buffer.concat([Buffer.of(OP_HASH160, 20), hash160, Buffer.of(OP_EQUAL)]);
}

/** `OP_n <program>` for witness version n (0..16). */
export function witnessScript(version: number, program: Uint8Array): Buffer {
  if (!Number.isInteger(version) || version < 0 || version > 16) {
    throw new ChainError('bad-value', `witness version must be 0..16, got ${version}`);
  }
  if (program.length < 2 || program.length > 40) {
    throw new ChainError('bad-length', `witness program must be 2..40 bytes, got ${program.length}`);
  }
  return Buffer.concat([Buffer.of(version === 0 ? OP_0 : OP_1 + version - 1, program.length), program]);
}
