import { hashFromDisplayHex, hexToBytes } from './bytes.js';
import { ChainError } from './errors.js';
import { merkleBranch } from './merkle.js';
import { transactionLayout } from './transaction.js';

/** One non-coinbase transaction of a `getblocktemplate` result (BIP22/BIP23, BIP141). */
export interface BlockTemplateTransaction {
  /** Full serialization, witness included (litecoin: MWEB-flagged for the HogEx). */
  readonly data: string;
  /** txid, display hex. */
  readonly txid: string;
  /** wtxid, display hex. */
  readonly hash: string;
  readonly depends?: readonly number[];
  readonly fee?: number;
  readonly sigops?: number;
  readonly weight?: number;
}

/** `getblocktemplate` result of bitcoind and litecoind (0.21, with `rules: ["mweb","segwit"]`). */
export interface BlockTemplate {
  readonly version: number;
  readonly rules?: readonly string[];
  readonly vbavailable?: Readonly<Record<string, number>>;
  readonly vbrequired?: number;
  /** Display hex. */
  readonly previousblockhash: string;
  readonly transactions: readonly BlockTemplateTransaction[];
  readonly coinbaseaux?: Readonly<Record<string, string>>;
  /** Satoshis (litoshis) the coinbase may claim: subsidy plus fees. */
  readonly coinbasevalue: number;
  readonly longpollid?: string;
  /** Network target, big-endian hex. */
  readonly target: string;
  readonly mintime: number;
  readonly mutable?: readonly string[];
  readonly noncerange?: string;
  readonly sigoplimit?: number;
  readonly sizelimit?: number;
  readonly weightlimit?: number;
  readonly curtime: number;
  /** Compact target, hex (e.g. `1a00d3d8`). */
  readonly bits: string;
  readonly height: number;
  /** Complete scriptPubKey (hex) of the BIP141 commitment output, when segwit is active. */
  readonly default_witness_commitment?: string;
  /** Litecoin with MWEB active: the serialized MWEB block, appended to the block after `0x01`. */
  readonly mweb?: string;
}

function need(ok: boolean, field: string, what: string): void {
  if (!ok) throw new ChainError('bad-template', `getblocktemplate result: ${field} must be ${what}`);
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
const isHex = (v: unknown): v is string => typeof v === 'string' && /^(?:[0-9a-fA-F]{2})*$/.test(v);
const isHash = (v: unknown): v is string => isHex(v) && v.length === 64;

/** Checks the fields this package relies on and returns the template typed; clear errors otherwise. */
export function parseBlockTemplate(raw: unknown): BlockTemplate {
  need(typeof raw === 'object' && raw !== null, 'the result', 'an object');
  const t = raw as Record<string, unknown>;
  need(isInt(t.version), 'version', 'an integer');
  need(isHash(t.previousblockhash), 'previousblockhash', 'a 64-digit hex hash');
  need(isInt(t.coinbasevalue) && (t.coinbasevalue as number) >= 0, 'coinbasevalue', 'a non-negative integer');
  need(isHash(t.target), 'target', 'a 64-digit hex target');
  need(isInt(t.mintime), 'mintime', 'an integer');
  need(isInt(t.curtime), 'curtime', 'an integer');
  need(
    typeof t.bits === 'string' && /^[0-9a-fA-F]{8}$/.test(t.bits),
    'bits',
    'an 8-digit hex compact target',
  );
  need(isInt(t.height) && (t.height as number) >= 1, 'height', 'a positive integer');
  need(Array.isArray(t.transactions), 'transactions', 'an array');
  (t.transactions as unknown[]).forEach((tx, i) => {
    need(typeof tx === 'object' && tx !== null, `transactions[${i}]`, 'an object');
    const entry = tx as Record<string, unknown>;
    need(isHex(entry.data) && (entry.data as string).length > 0, `transactions[${i}].data`, 'hex');
    need(isHash(entry.txid), `transactions[${i}].txid`, 'a 64-digit hex hash');
    need(isHash(entry.hash), `transactions[${i}].hash`, 'a 64-digit hex hash');
  });
  if (t.default_witness_commitment !== undefined) {
    need(isHex(t.default_witness_commitment), 'default_witness_commitment', 'hex');
  }
  if (t.mweb !== undefined) need(isHex(t.mweb), 'mweb', 'hex');
  return raw as BlockTemplate;
}

/** Cheap look at the hex: marker 0x00 then a flags byte with the MWEB bit (0x08). */
function mayBeHogEx(dataHex: string): boolean {
  return dataHex.startsWith('00', 8) && (Number.parseInt(dataHex.slice(10, 12), 16) & 0x08) !== 0;
}

/**
 * The template's transactions in block order. With MWEB (the template has `mweb`) the HogEx
 * must be the block's last transaction: litecoind already lists it last, and if it ever came
 * elsewhere it is moved there (the order of the others is kept). A template with `mweb` but
 * no HogEx cannot make a valid block: `hogex-missing`.
 */
export function blockTransactions(
  template: Pick<BlockTemplate, 'transactions' | 'mweb'>,
): BlockTemplateTransaction[] {
  const txs = [...template.transactions];
  if (template.mweb === undefined) return txs;
  const hogExIndex = txs.findIndex(
    (tx) => mayBeHogEx(tx.data) && transactionLayout(hexToBytes(tx.data, 'transaction data')).isHogEx,
  );
  if (hogExIndex < 0) {
    throw new ChainError(
      'hogex-missing',
      'getblocktemplate result has an mweb block but no HogEx transaction; litecoind would reject the block',
    );
  }
  if (hogExIndex !== txs.length - 1) txs.push(...txs.splice(hogExIndex, 1));
  return txs;
}

/** txids of the template's transactions in block order, internal byte order. */
export function templateTxids(template: Pick<BlockTemplate, 'transactions' | 'mweb'>): Buffer[] {
  return blockTransactions(template).map((tx, i) => hashFromDisplayHex(tx.txid, `transactions[${i}].txid`));
}

/** The stratum merkle branch (internal-order hashes) for a job built from this template. */
export function templateMerkleBranch(template: Pick<BlockTemplate, 'transactions' | 'mweb'>): Buffer[] {
  return merkleBranch(templateTxids(template));
}
