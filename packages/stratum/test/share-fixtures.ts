import {
  BITCOIN_MAIN,
  type BlockTemplate,
  type ChainParams,
  type SoloFee,
  bitsToTarget,
  buildJob,
  hashFromDisplayHex,
  headerFieldHex,
  merkleBranch,
  stratumPrevhashFromDisplay,
  stripTransaction,
} from '@hashwire/chain';
import type { Job } from '@hashwire/protocol';
import type { RealBlock } from '../../chain/test/fixtures/load.js';

export { bitcoinBlock, litecoinBlock } from '../../chain/test/fixtures/load.js';

/** Network target hex for a difficulty of about 2^72: no test share ever meets it by chance. */
export const HARD_TARGET = `000000000000000000${'ff'.repeat(23)}`;
/** Regtest-like network target: nearly every hash meets it. */
export const EASY_TARGET = `7f${'ff'.repeat(31)}`;

/** A synthetic template on top of bitcoin block 766390 with `txCount` made-up transactions. */
export function syntheticTemplate(txCount: number, extra: Partial<BlockTemplate> = {}): BlockTemplate {
  const transactions = Array.from({ length: txCount }, (_, i) => {
    const txid = Buffer.alloc(32);
    txid.writeUInt32BE(i + 1, 0);
    txid.writeUInt32BE(0xc0ffee, 28);
    const hex = txid.toString('hex');
    return { data: `0100000001${hex}`, txid: hex, hash: hex };
  });
  return {
    version: 0x20000000,
    previousblockhash: '000000000000000000075bae6cd5fec1f241b01a46b3b45e9628a2efb769cede',
    transactions,
    coinbaseaux: {},
    coinbasevalue: 625_000_000,
    target: HARD_TARGET,
    mintime: 1_670_461_000,
    curtime: 1_670_462_000,
    bits: '17083830',
    height: 766390,
    default_witness_commitment: `6a24aa21a9ed${'11'.repeat(32)}`,
    ...extra,
  };
}

export interface JobFixtureOptions {
  readonly jobId?: string;
  readonly epoch?: number;
  readonly cleanJobs?: boolean;
  readonly txCount?: number;
  readonly template?: Partial<BlockTemplate>;
  readonly params?: ChainParams;
  /** A SOLO job (`Job.solo`) with this fee. */
  readonly solo?: SoloFee;
}

/** A job as the jobmanager would push it (chain's buildJob), 4-byte extranonce1, 8-byte extranonce2. */
export function makeJob(options: JobFixtureOptions = {}): Job {
  return buildJob({
    template: syntheticTemplate(options.txCount ?? 15, options.template),
    params: options.params ?? BITCOIN_MAIN,
    chain: 'btc-main',
    payouts: [{ address: 'bc1qxhmdufsvnuaaaer4ynz88fspdsxq2h9e9cetdj' }],
    extranonce1Size: 4,
    extranonce2Size: 8,
    epoch: options.epoch ?? 1,
    jobId: options.jobId ?? '1',
    jmId: 'jm-test',
    cleanJobs: options.cleanJobs ?? true,
    createdAt: 1_700_000_000_000,
    ...(options.solo && { solo: options.solo }),
  }).job;
}

/**
 * A job around a real mined block: its real coinbase split at the extranonce the miner used
 * (first 4 bytes as extranonce1, the rest as extranonce2), its real branch, its header fields
 * in stratum wire order, and `jobVersion` as the version before the miner rolled it.
 */
export function realBlockJob(block: RealBlock, chain: string, jobVersion = block.version) {
  const stripped = stripTransaction(Buffer.from(block.coinbaseHex, 'hex'));
  const extranonce = Buffer.from(block.coinbaseExtranonceHex, 'hex');
  const at = stripped.indexOf(extranonce);
  const branch = merkleBranch(block.tx.slice(1).map((t) => hashFromDisplayHex(t.txid)));
  const job: Job = {
    chain,
    epoch: 1,
    jobId: 'real',
    jmId: 'jm-test',
    height: block.height,
    prevhash: stratumPrevhashFromDisplay(block.previousblockhash),
    coinb1: stripped.subarray(0, at).toString('hex'),
    coinb2: stripped.subarray(at + extranonce.length).toString('hex'),
    merkleBranch: branch.map((h) => h.toString('hex')),
    version: headerFieldHex(jobVersion),
    nbits: block.bits,
    ntime: headerFieldHex(block.time),
    cleanJobs: true,
    target: bitsToTarget(block.bits).toString(16).padStart(64, '0'),
    createdAt: 1_700_000_000_000,
  };
  return {
    job,
    extranonce1: extranonce.subarray(0, 4),
    extranonce2Hex: extranonce.subarray(4).toString('hex'),
    extranonce2Size: extranonce.length - 4,
  };
}
