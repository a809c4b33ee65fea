import { readVarInt } from './bytes.js';
import { ChainError } from './errors.js';
import { sha256d } from './hash.js';

/** Segwit flag bit (BIP144). */
const FLAG_WITNESS = 0x01;
/** Litecoin MWEB flag bit (LIP-0002): an optional MWEB transaction follows the witnesses. */
const FLAG_MWEB = 0x08;

/** Where the parts of a serialized transaction sit, for txid and HogEx detection. */
export interface TransactionLayout {
  /** Serialization flags after the 0x00 marker, 0 for a legacy serialization. */
  readonly flags: number;
  readonly hasWitness: boolean;
  /**
   * Litecoin HogEx (integrating transaction): MWEB flag set with an empty MWEB part.
   * litecoind marks a transaction as HogEx exactly this way when it deserializes one.
   */
  readonly isHogEx: boolean;
  /** Byte range of the inputs and outputs (counts included), shared by every serialization. */
  readonly bodyStart: number;
  readonly bodyEnd: number;
}

function fail(what: string): never {
  throw new ChainError('bad-transaction', `transaction data is malformed: ${what}`);
}

/** Parses the framing of a serialized transaction (bitcoin, segwit, or litecoin MWEB-flagged). */
export function transactionLayout(data: Uint8Array): TransactionLayout {
  if (data.length < 10) fail(`only ${data.length} bytes`);
  let flags = 0;
  let at = 4;
  if (data[4] === 0x00) {
    flags = data[5]!;
    if (flags === 0) fail('segwit marker with zero flags');
    at = 6;
  }
  const bodyStart = at;
  // inputs: outpoint (36), script, sequence (4); outputs: value (8), script
  const vin = readVarInt(data, at);
  at = vin.next;
  for (let i = 0; i < vin.value; i++) {
    const len = readVarInt(data, at + 36);
    at = len.next + len.value + 4;
    if (at > data.length) fail('input runs past the end');
  }
  const vout = readVarInt(data, at);
  at = vout.next;
  for (let i = 0; i < vout.value; i++) {
    const len = readVarInt(data, at + 8);
    at = len.next + len.value;
    if (at > data.length) fail('output runs past the end');
  }
  const bodyEnd = at;
  if ((flags & FLAG_WITNESS) !== 0) {
    for (let i = 0; i < vin.value; i++) {
      const items = readVarInt(data, at);
      at = items.next;
      for (let j = 0; j < items.value; j++) {
        const len = readVarInt(data, at);
        at = len.next + len.value;
        if (at > data.length) fail('witness runs past the end');
      }
    }
  }
  const isHogEx = (flags & FLAG_MWEB) !== 0 && data[at] === 0x00;
  // Only a non-empty MWEB part has a length we cannot know without parsing MWEB itself.
  const expectedEnd = (flags & FLAG_MWEB) === 0 ? at + 4 : isHogEx ? at + 5 : data.length;
  if (expectedEnd !== data.length) fail(`${data.length - expectedEnd} unexpected bytes before the locktime`);
  return { flags, hasWitness: (flags & FLAG_WITNESS) !== 0, isHogEx, bodyStart, bodyEnd };
}

/**
 * The serialization without witness and MWEB parts (version, inputs, outputs, locktime):
 * what the txid hashes.
 */
export function stripTransaction(data: Uint8Array, layout = transactionLayout(data)): Buffer {
  if (layout.flags === 0) return Buffer.from(data);
  const out = Buffer.allocUnsafe(4 + (layout.bodyEnd - layout.bodyStart) + 4);
  out.set(data.subarray(0, 4), 0);
  out.set(data.subarray(layout.bodyStart, layout.bodyEnd), 4);
  out.set(data.subarray(data.length - 4), 4 + layout.bodyEnd - layout.bodyStart);
  return out;
}

/** txid in internal byte order: sha256d of the stripped serialization. */
export function transactionId(data: Uint8Array): Buffer {
  return sha256d(stripTransaction(data));
}

/** Whether serialized transaction data is a litecoin HogEx. */
export function isHogExTransaction(data: Uint8Array): boolean {
  return transactionLayout(data).isHogEx;
}
