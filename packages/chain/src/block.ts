import { hashToDisplayHex, hexToBytes, varIntSize, writeVarInt } from './bytes.js';
import { type CoinbaseTemplate, assembleCoinbaseForBlock } from './coinbase.js';
import { ChainError } from './errors.js';
import { scryptHeadersSync, sha256dHeaders } from './hash.js';
import { HEADER_SIZE } from './header.js';
import type { PowAlgorithm } from './params.js';
import { type BlockTemplate, blockTransactions } from './template.js';

/** Block hash (the id daemons show) in internal byte order: sha256d of the header, for both coins. */
export function blockHash(header: Uint8Array): Buffer {
  checkHeader(header);
  return sha256dHeaders(header);
}

/** Block hash as daemons display it (reversed hex). */
export function blockHashHex(header: Uint8Array): string {
  return hashToDisplayHex(blockHash(header));
}

/** Proof-of-work hash of a header, little-endian: sha256d for bitcoin, scrypt(1024,1,1) for litecoin. */
export function powHash(algorithm: PowAlgorithm, header: Uint8Array): Buffer {
  checkHeader(header);
  return algorithm === 'scrypt' ? scryptHeadersSync(header) : sha256dHeaders(header);
}

function checkHeader(header: Uint8Array): void {
  if (header.length !== HEADER_SIZE)
    throw new ChainError('bad-length', `header must be 80 bytes, got ${header.length}`);
}

export interface BlockParts {
  readonly header: Uint8Array;
  /** Coinbase in its block serialization (witness form when the block commits to witnesses). */
  readonly coinbase: Uint8Array;
  /** The other transactions in block order, serialized (hex or bytes), witnesses included. */
  readonly transactions: readonly (string | Uint8Array)[];
  /** Litecoin MWEB block bytes (hex or bytes): appended after a `0x01` byte. */
  readonly mweb?: string | Uint8Array;
}

/**
 * Serializes a block: header, transaction count, coinbase, transactions, then for litecoin
 * with MWEB the byte `0x01` and the MWEB block (without it litecoind rejects the block).
 */
export function serializeBlock(parts: BlockParts): Buffer {
  checkHeader(parts.header);
  const txs = parts.transactions.map((tx, i) =>
    typeof tx === 'string' ? hexToBytes(tx, `transactions[${i}]`) : tx,
  );
  const mweb =
    parts.mweb === undefined
      ? undefined
      : typeof parts.mweb === 'string'
        ? hexToBytes(parts.mweb, 'mweb')
        : parts.mweb;
  const count = txs.length + 1;
  const size =
    HEADER_SIZE +
    varIntSize(count) +
    parts.coinbase.length +
    txs.reduce((n, tx) => n + tx.length, 0) +
    (mweb ? 1 + mweb.length : 0);
  const out = Buffer.allocUnsafe(size);
  out.set(parts.header, 0);
  let at = writeVarInt(out, HEADER_SIZE, count);
  out.set(parts.coinbase, at);
  at += parts.coinbase.length;
  for (const tx of txs) {
    out.set(tx, at);
    at += tx.length;
  }
  if (mweb) {
    out[at++] = 0x01;
    out.set(mweb, at);
  }
  return out;
}

export interface TemplateBlockOptions {
  readonly template: Pick<BlockTemplate, 'transactions' | 'mweb'>;
  readonly header: Uint8Array;
  readonly coinbase: CoinbaseTemplate;
  readonly extranonce1: Uint8Array;
  readonly extranonce2: Uint8Array;
}

/**
 * The block for a winning share, ready for `submitblock`: the coinbase in witness form when
 * the template commits to witnesses, the template's transactions in block order (HogEx last)
 * and the MWEB block when there is one.
 */
export function serializeTemplateBlock(options: TemplateBlockOptions): Buffer {
  const { template } = options;
  return serializeBlock({
    header: options.header,
    coinbase: assembleCoinbaseForBlock(options.coinbase, options.extranonce1, options.extranonce2),
    transactions: blockTransactions(template).map((tx) => tx.data),
    ...(template.mweb !== undefined && { mweb: template.mweb }),
  });
}
