import { powHash as computePowHash, serializeTemplateBlock } from './block.js';
import { hashFromDisplayHex, hashToDisplayHex } from './bytes.js';
import {
  type CoinbasePayout,
  type CoinbaseTemplate,
  assembleCoinbase,
  buildCoinbaseForTemplate,
} from './coinbase.js';
import { ChainError } from './errors.js';
import { sha256d, sha256dHeaders } from './hash.js';
import { buildHeader } from './header.js';
import { merkleRootFromBranch, packMerkleBranch } from './merkle.js';
import type { ChainParams } from './params.js';
import { bitsToTarget, hashMeetsTarget, targetToBuffer } from './target.js';
import { type BlockTemplate, templateMerkleBranch } from './template.js';

export interface AssembleTemplateBlockOptions {
  /** The daemon's `getblocktemplate` result the block is built on. */
  readonly template: BlockTemplate;
  readonly params: ChainParams;
  /**
   * Coinbase outputs, for a coinbase built here (the extranonce sizes are those of
   * `extranonce1`/`extranonce2`). Give either this or `coinbase`.
   */
  readonly payouts?: readonly CoinbasePayout[];
  /** Pool tag when the coinbase is built here. @defaultValue `"/hashwire/"` (see `buildCoinbase`) */
  readonly poolTag?: string | Uint8Array;
  /** A coinbase already split for this template, e.g. the job's (`buildJob(...).coinbase`). */
  readonly coinbase?: CoinbaseTemplate;
  readonly extranonce1: Uint8Array;
  readonly extranonce2: Uint8Array;
  /** Header time. @defaultValue `template.curtime` */
  readonly ntime?: number;
  readonly nonce: number;
  /** Header version, possibly rolled by the miner (BIP310). @defaultValue `template.version` */
  readonly version?: number;
}

/** A block for a template and one extranonce/ntime/nonce/version choice. */
export interface AssembledBlock {
  /** The 80-byte header. */
  readonly header: Buffer;
  /** Block hash (sha256d of the header), internal byte order. */
  readonly hash: Buffer;
  /** Block hash as daemons display it. */
  readonly hashHex: string;
  /** Proof-of-work hash (scrypt for litecoin, sha256d for bitcoin), internal byte order. */
  readonly powHash: Buffer;
  /** Whether `powHash` meets the network target of `template.bits`: worth submitting. */
  readonly meetsTarget: boolean;
  /** The coinbase used (built here, or the one given). */
  readonly coinbase: CoinbaseTemplate;
  /** Coinbase txid, internal byte order. */
  readonly coinbaseTxid: Buffer;
  readonly merkleRoot: Buffer;
  /** The serialized block: witness coinbase, template transactions (HogEx last), MWEB part. */
  readonly block: Buffer;
  /** `block` as hex, the `submitblock` argument. */
  readonly blockHex: string;
}

function resolveCoinbase(options: AssembleTemplateBlockOptions): CoinbaseTemplate {
  if ((options.coinbase === undefined) === (options.payouts === undefined)) {
    throw new ChainError('bad-value', 'assembleTemplateBlock needs exactly one of payouts or coinbase');
  }
  if (options.coinbase) return options.coinbase;
  return buildCoinbaseForTemplate(options.template, {
    params: options.params,
    payouts: options.payouts as readonly CoinbasePayout[],
    extranonce1Size: options.extranonce1.length,
    extranonce2Size: options.extranonce2.length,
    ...(options.poolTag !== undefined && { poolTag: options.poolTag }),
  });
}

/**
 * Everything between a block template and `submitblock`: the coinbase (built from `payouts`
 * or the job's), its txid, the merkle root from the template's branch, the 80-byte header,
 * block and proof-of-work hashes, and the serialized block. A miner grinding nonces only
 * needs `header` (bytes 76–79 hold the nonce); call this again with the winning nonce.
 *
 * @throws ChainError / AddressError for a payout the chain cannot pay, extranonces of the
 *   wrong size, header fields outside 32 bits, a template with `mweb` but no HogEx.
 */
export function assembleTemplateBlock(options: AssembleTemplateBlockOptions): AssembledBlock {
  const { template, params, extranonce1, extranonce2 } = options;
  const coinbase = resolveCoinbase(options);
  const coinbaseTxid = sha256d(assembleCoinbase(coinbase, extranonce1, extranonce2));
  const merkleRoot = merkleRootFromBranch(coinbaseTxid, packMerkleBranch(templateMerkleBranch(template)));
  const header = buildHeader({
    version: options.version ?? template.version,
    prevHash: hashFromDisplayHex(template.previousblockhash, 'previousblockhash'),
    merkleRoot,
    time: options.ntime ?? template.curtime,
    bits: Number.parseInt(template.bits, 16),
    nonce: options.nonce,
  });
  const hash = sha256dHeaders(header);
  const powHash = computePowHash(params.algorithm, header);
  const block = serializeTemplateBlock({ template, header, coinbase, extranonce1, extranonce2 });
  return {
    header,
    hash,
    hashHex: hashToDisplayHex(hash),
    powHash,
    meetsTarget: hashMeetsTarget(powHash, targetToBuffer(bitsToTarget(template.bits))),
    coinbase,
    coinbaseTxid,
    merkleRoot,
    block,
    blockHex: block.toString('hex'),
  };
}
