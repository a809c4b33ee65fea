import { addressToScript } from './address.js';
import { hexToBytes, varIntSize, writeVarInt } from './bytes.js';
import { ChainError } from './errors.js';
import type { ChainParams } from './params.js';
import { OP_RETURN, bip34HeightPush, pushData } from './script.js';
import type { BlockTemplate } from './template.js';

/** One coinbase output: an address (decoded for the chain) or a ready script. */
export interface CoinbasePayout {
  readonly address?: string;
  readonly script?: Uint8Array;
  /**
   * Amount in satoshis. At most one payout may leave it out: that one receives whatever the
   * others leave of `coinbasevalue`.
   */
  readonly valueSat?: number;
}

export interface CoinbaseOptions {
  /** Chain whose addresses the payouts use. */
  readonly params: ChainParams;
  readonly height: number;
  /** Template `coinbasevalue`: the outputs may not pay more. */
  readonly coinbaseValueSat: number;
  readonly payouts: readonly CoinbasePayout[];
  /** Template `default_witness_commitment`: added as the last output, and the coinbase gets a witness. */
  readonly witnessCommitment?: string | Uint8Array;
  /** Template `coinbaseaux.flags` (hex), placed right after the height. */
  readonly auxFlags?: string;
  /** Text or bytes pushed at the end of the scriptSig. @defaultValue `"/hashwire/"` */
  readonly poolTag?: string | Uint8Array;
  /** Bytes of the per-session extranonce1. */
  readonly extranonce1Size: number;
  /** Bytes of the miner-chosen extranonce2. */
  readonly extranonce2Size: number;
  /** @defaultValue 1 */
  readonly txVersion?: number;
  /** @defaultValue 0 */
  readonly lockTime?: number;
}

/**
 * A coinbase split for stratum: `coinb1 || extranonce1 || extranonce2 || coinb2` is its
 * non-witness serialization (the one its txid hashes).
 */
export interface CoinbaseTemplate {
  readonly coinb1: Buffer;
  readonly coinb2: Buffer;
  readonly extranonce1Size: number;
  readonly extranonce2Size: number;
  /** Whether the block needs the witness serialization (segwit commitment present). */
  readonly hasWitness: boolean;
  /** Size of the non-witness serialization. */
  readonly size: number;
  readonly outputs: readonly { readonly script: Buffer; readonly valueSat: number }[];
  /** Offset in `coinb2` of the first output (after the pool tag, the sequence and the output count). */
  readonly outputsAt: number;
}

/** Coinbase scriptSig length limits (consensus: `bad-cb-length`). */
const MIN_SCRIPT_SIG = 2;
const MAX_SCRIPT_SIG = 100;
const MAX_EXTRANONCE = 32;
const DEFAULT_TAG = '/hashwire/';

function checkSize(value: number, field: string, min: number): void {
  if (!Number.isInteger(value) || value < min || value > MAX_EXTRANONCE) {
    throw new ChainError(
      'bad-value',
      `${field} must be an integer from ${min} to ${MAX_EXTRANONCE}, got ${value}`,
    );
  }
}

function checkSat(value: number, field: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ChainError(
      'bad-value',
      `${field} must be a non-negative integer number of satoshis, got ${value}`,
    );
  }
}

function resolveOutputs(options: CoinbaseOptions): { script: Buffer; valueSat: number }[] {
  const { payouts, coinbaseValueSat, params } = options;
  checkSat(coinbaseValueSat, 'coinbaseValueSat');
  if (payouts.length === 0) throw new ChainError('bad-value', 'a coinbase needs at least one payout');
  const open = payouts.filter((p) => p.valueSat === undefined).length;
  if (open > 1) {
    throw new ChainError(
      'bad-value',
      `only one payout may leave valueSat out (it takes the rest), ${open} do`,
    );
  }
  let fixed = 0;
  payouts.forEach((p, i) => {
    if (p.valueSat !== undefined) {
      checkSat(p.valueSat, `payouts[${i}].valueSat`);
      fixed += p.valueSat;
    }
  });
  if (fixed > coinbaseValueSat) {
    throw new ChainError(
      'coinbase-overpays',
      `coinbase outputs total ${fixed} sat but the template allows only ${coinbaseValueSat} sat (coinbasevalue)`,
    );
  }
  return payouts.map((p, i) => {
    if ((p.address === undefined) === (p.script === undefined)) {
      throw new ChainError('bad-value', `payouts[${i}] needs exactly one of address or script`);
    }
    const script = p.address !== undefined ? addressToScript(p.address, params) : Buffer.from(p.script!);
    return { script, valueSat: p.valueSat ?? coinbaseValueSat - fixed };
  });
}

function scriptOf(value: string | Uint8Array, field: string): Buffer {
  return typeof value === 'string' ? hexToBytes(value, field) : Buffer.from(value);
}

/**
 * Builds the coinbase of a block template, split around the extranonce slot.
 *
 * scriptSig = BIP34 height · aux flags · push(extranonce1 ‖ extranonce2) · push(pool tag)
 * outputs   = payouts in the given order · witness commitment (last, value 0)
 *
 * @throws ChainError `coinbase-overpays` when the payouts exceed `coinbaseValueSat`,
 *   `coinbase-script-too-long` past the 100-byte scriptSig limit, AddressError for bad addresses.
 */
export function buildCoinbase(options: CoinbaseOptions): CoinbaseTemplate {
  const { extranonce1Size, extranonce2Size } = options;
  checkSize(extranonce1Size, 'extranonce1Size', 0);
  checkSize(extranonce2Size, 'extranonce2Size', 1);
  const txVersion = options.txVersion ?? 1;
  const lockTime = options.lockTime ?? 0;
  const outputs = resolveOutputs(options);
  if (options.witnessCommitment !== undefined) {
    outputs.push({ script: scriptOf(options.witnessCommitment, 'default_witness_commitment'), valueSat: 0 });
  }

  const tag = options.poolTag ?? DEFAULT_TAG;
  const tagBytes = typeof tag === 'string' ? Buffer.from(tag, 'utf8') : Buffer.from(tag);
  const head = Buffer.concat([
    bip34HeightPush(options.height),
    options.auxFlags ? hexToBytes(options.auxFlags, 'coinbaseaux.flags') : Buffer.alloc(0),
    Buffer.of(extranonce1Size + extranonce2Size),
  ]);
  const tail = tagBytes.length > 0 ? pushData(tagBytes) : Buffer.alloc(0);
  const scriptSigSize = head.length + extranonce1Size + extranonce2Size + tail.length;
  if (scriptSigSize > MAX_SCRIPT_SIG) {
    throw new ChainError(
      'coinbase-script-too-long',
      `coinbase scriptSig would be ${scriptSigSize} bytes, consensus allows ${MAX_SCRIPT_SIG}: shorten the pool tag (${tagBytes.length} bytes)`,
    );
  }
  if (scriptSigSize < MIN_SCRIPT_SIG)
    throw new ChainError('bad-value', 'coinbase scriptSig must be at least 2 bytes');

  const coinb1 = Buffer.alloc(4 + 1 + 36 + varIntSize(scriptSigSize) + head.length);
  let at = coinb1.writeInt32LE(txVersion, 0);
  coinb1[at++] = 1; // one input
  at += 32; // null prevout hash (zeros from alloc)
  at = coinb1.writeUInt32LE(0xffffffff, at);
  at = writeVarInt(coinb1, at, scriptSigSize);
  coinb1.set(head, at);

  const outputsSize = outputs.reduce((n, o) => n + 8 + varIntSize(o.script.length) + o.script.length, 0);
  const coinb2 = Buffer.alloc(tail.length + 4 + varIntSize(outputs.length) + outputsSize + 4);
  coinb2.set(tail, 0);
  at = coinb2.writeUInt32LE(0xffffffff, tail.length); // sequence
  at = writeVarInt(coinb2, at, outputs.length);
  const outputsAt = at;
  for (const o of outputs) {
    at = coinb2.writeBigUInt64LE(BigInt(o.valueSat), at);
    at = writeVarInt(coinb2, at, o.script.length);
    coinb2.set(o.script, at);
    at += o.script.length;
  }
  coinb2.writeUInt32LE(lockTime >>> 0, at);

  return {
    coinb1,
    coinb2,
    extranonce1Size,
    extranonce2Size,
    hasWitness: options.witnessCommitment !== undefined,
    size: coinb1.length + extranonce1Size + extranonce2Size + coinb2.length,
    outputs,
    outputsAt,
  };
}

/** {@link buildCoinbase} with height, value and witness commitment taken from a template. */
export function buildCoinbaseForTemplate(
  template: Pick<BlockTemplate, 'height' | 'coinbasevalue' | 'default_witness_commitment' | 'coinbaseaux'>,
  options: Omit<CoinbaseOptions, 'height' | 'coinbaseValueSat' | 'witnessCommitment' | 'auxFlags'>,
): CoinbaseTemplate {
  return buildCoinbase({
    ...options,
    height: template.height,
    coinbaseValueSat: template.coinbasevalue,
    ...(template.default_witness_commitment !== undefined && {
      witnessCommitment: template.default_witness_commitment,
    }),
    ...(template.coinbaseaux?.flags && { auxFlags: template.coinbaseaux.flags }),
  });
}

function checkExtranonces(cb: CoinbaseTemplate, extranonce1: Uint8Array, extranonce2: Uint8Array): void {
  if (extranonce1.length !== cb.extranonce1Size || extranonce2.length !== cb.extranonce2Size) {
    throw new ChainError(
      'bad-length',
      `extranonce1/extranonce2 must be ${cb.extranonce1Size}/${cb.extranonce2Size} bytes, got ${extranonce1.length}/${extranonce2.length}`,
    );
  }
}

/**
 * The coinbase's non-witness serialization (hash it for the txid) for one extranonce pair.
 * Pass `out` (`cb.size` bytes, reused per session or job) to avoid allocating per share.
 */
export function assembleCoinbase(
  cb: CoinbaseTemplate,
  extranonce1: Uint8Array,
  extranonce2: Uint8Array,
  out: Buffer = Buffer.allocUnsafe(cb.size),
): Buffer {
  checkExtranonces(cb, extranonce1, extranonce2);
  if (out.length !== cb.size) throw new ChainError('bad-length', `coinbase buffer must be ${cb.size} bytes`);
  let at = 0;
  out.set(cb.coinb1, at);
  at += cb.coinb1.length;
  out.set(extranonce1, at);
  at += extranonce1.length;
  out.set(extranonce2, at);
  out.set(cb.coinb2, at + extranonce2.length);
  return out;
}

/**
 * The coinbase as it goes into a block. With a witness commitment that is the BIP144
 * serialization: marker/flag `00 01` after the version and one witness item, the 32-byte
 * zero witness reserved value, before the locktime. Without one it equals {@link assembleCoinbase}.
 */
export function assembleCoinbaseForBlock(
  cb: CoinbaseTemplate,
  extranonce1: Uint8Array,
  extranonce2: Uint8Array,
): Buffer {
  const plain = assembleCoinbase(cb, extranonce1, extranonce2);
  if (!cb.hasWitness) return plain;
  const out = Buffer.alloc(plain.length + 2 + 34);
  plain.copy(out, 0, 0, 4);
  out[4] = 0x00;
  out[5] = 0x01;
  plain.copy(out, 6, 4, plain.length - 4);
  let at = 6 + plain.length - 8;
  out[at++] = 1; // one witness item
  out[at++] = 32; // of 32 bytes, left zero: the witness reserved value
  at += 32;
  plain.copy(out, at, plain.length - 4);
  return out;
}

/** Output script of a BIP141 witness commitment: `OP_RETURN 36 aa21a9ed <commitment>`. */
export function witnessCommitmentScript(commitment: Uint8Array): Buffer {
  if (commitment.length !== 32) throw new ChainError('bad-length', 'witness commitment must be 32 bytes');
  return Buffer.concat([Buffer.of(OP_RETURN, 0x24, 0xaa, 0x21, 0xa9, 0xed), commitment]);
}
