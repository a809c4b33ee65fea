import {
  BITCOIN_MAIN,
  type BlockTemplate,
  ChainError,
  LITECOIN_MAIN,
  assembleCoinbase,
  bip34HeightPush,
  blockHashHex,
  buildCoinbaseForTemplate,
  buildJob,
  hashFromDisplayHex,
  hashToDisplayHex,
  merkleRootFromBranch,
  prevHashFromStratum,
  sha256d,
  stratumPrevhashFromDisplay,
  stripTransaction,
  writeHeader,
} from '@hashwire/chain';
import { describe, expect, it } from 'vitest';
import { type RealBlock, bitcoinBlock, litecoinBlock } from './fixtures/load.js';

/** A getblocktemplate result shaped like the daemon's for a real block (tx data elided). */
function templateOf(block: RealBlock, extra: Partial<BlockTemplate> = {}): BlockTemplate {
  return {
    version: block.version,
    previousblockhash: block.previousblockhash,
    transactions: block.tx.slice(1).map((t) => ({ data: `0100000001${t.txid}`, txid: t.txid, hash: t.hash })),
    coinbaseaux: {},
    coinbasevalue: block.coinbaseOutputs[0]!.valueSat,
    target: `00000000000000000008${'ff'.repeat(22)}`,
    mintime: block.time - 600,
    curtime: block.time,
    bits: block.bits,
    height: block.height,
    default_witness_commitment: block.coinbaseOutputs[1]!.scriptHex,
    ...extra,
  };
}

const btc = bitcoinBlock();
const base = {
  params: BITCOIN_MAIN,
  chain: 'btc-main',
  payouts: [{ address: btc.coinbaseOutputs[0]!.address! }],
  extranonce1Size: 4,
  extranonce2Size: 8,
  epoch: 7,
  jobId: '1f',
  jmId: 'jm-a',
  cleanJobs: true,
  createdAt: 1_700_000_000_000,
};

/** What a miner does with a job: header from the notify fields, a coinbase's merkle root and a nonce. */
function minerHeader(
  job: ReturnType<typeof buildJob>['job'],
  merkleRoot: Buffer,
  nonce: number,
  ntime = job.ntime,
): Buffer {
  return writeHeader(Buffer.alloc(80), {
    version: Number.parseInt(job.version, 16),
    prevHash: prevHashFromStratum(job.prevhash),
    merkleRoot,
    time: Number.parseInt(ntime, 16),
    bits: Number.parseInt(job.nbits, 16),
    nonce,
  });
}

describe('buildJob', () => {
  const built = buildJob({ ...base, template: templateOf(btc) });
  const { job } = built;

  it('carries the identity, epoch and template facts', () => {
    expect(job).toMatchObject({
      chain: 'btc-main',
      epoch: 7,
      jobId: '1f',
      jmId: 'jm-a',
      height: 766390,
      cleanJobs: true,
      createdAt: 1_700_000_000_000,
      target: `00000000000000000008${'ff'.repeat(22)}`,
    });
  });

  it('sends version, nbits and ntime as 8-digit big-endian hex', () => {
    expect(job.version).toBe('2e6e6000'); // 778985472, version-rolled by the miner
    expect(job.nbits).toBe('17083830');
    expect(job.ntime).toBe(btc.time.toString(16));
    expect(buildJob({ ...base, template: templateOf(btc, { version: 4 }) }).job.version).toBe('00000004');
    expect(buildJob({ ...base, template: templateOf(btc), ntime: 0x5 }).job.ntime).toBe('00000005');
  });

  it('sends prevhash with its 4-byte words swapped', () => {
    expect(job.prevhash).toBe(stratumPrevhashFromDisplay(btc.previousblockhash));
    expect(job.prevhash).not.toBe(btc.previousblockhash);
    expect(prevHashFromStratum(job.prevhash)).toEqual(hashFromDisplayHex(btc.previousblockhash));
  });

  it('gives the real block 766390 branch: little-endian hex that leads its coinbase txid to the merkle root', () => {
    expect(job.merkleBranch).toHaveLength(4); // 16 transactions
    expect(job.merkleBranch[0]).toBe(hashFromDisplayHex(btc.tx[1]!.txid).toString('hex'));
    const branch = job.merkleBranch.map((h) => Buffer.from(h, 'hex'));
    const root = merkleRootFromBranch(hashFromDisplayHex(btc.tx[0]!.txid), branch);
    expect(hashToDisplayHex(root)).toBe(btc.merkleroot);
  });

  it('lets a miner rebuild the real block header from the notify fields alone', () => {
    const header = minerHeader(job, hashFromDisplayHex(btc.merkleroot), btc.nonce);
    expect(blockHashHex(header)).toBe(btc.hash);
    expect(blockHashHex(minerHeader(job, hashFromDisplayHex(btc.merkleroot), btc.nonce + 1))).not.toBe(
      btc.hash,
    );
  });

  it('splits the coinbase around the extranonce slot: BIP34 height, payout, witness commitment', () => {
    const en1 = Buffer.from('01020304', 'hex');
    const en2 = Buffer.from('a1a2a3a4a5a6a7a8', 'hex');
    const assembled = Buffer.concat([
      Buffer.from(job.coinb1, 'hex'),
      en1,
      en2,
      Buffer.from(job.coinb2, 'hex'),
    ]);
    expect(assembled).toEqual(assembleCoinbase(built.coinbase, en1, en2));
    expect(assembled.subarray(42, 46)).toEqual(bip34HeightPush(btc.height));
    expect(built.coinbase.hasWitness).toBe(true);
    // Outputs byte for byte as the real coinbase (same payout address, value, commitment).
    const real = stripTransaction(Buffer.from(btc.coinbaseHex, 'hex'));
    const outputsOf = (tx: Buffer) =>
      tx.subarray(tx.indexOf(Buffer.from('ffffffff02', 'hex'), 42)).toString('hex');
    expect(outputsOf(assembled)).toBe(outputsOf(real));
    expect(built.branch.map((h) => h.toString('hex'))).toEqual(job.merkleBranch);
  });

  it('uses the same coinbase the chain helpers build (no second coinbase builder)', () => {
    const direct = buildCoinbaseForTemplate(templateOf(btc), {
      params: BITCOIN_MAIN,
      payouts: base.payouts,
      extranonce1Size: 4,
      extranonce2Size: 8,
    });
    expect(job.coinb1).toBe(direct.coinb1.toString('hex'));
    expect(job.coinb2).toBe(direct.coinb2.toString('hex'));
  });

  it('builds a litecoin job with the HogEx last in the branch (MWEB)', () => {
    const ltc = litecoinBlock();
    const hogEx = ltc.tx[ltc.tx.length - 1]!;
    const txs = ltc.tx.slice(1).map((t) => ({
      data: t.txid === hogEx.txid ? ltc.hogExHex! : `0100000001${t.txid}`,
      txid: t.txid,
      hash: t.hash,
    }));
    // litecoind lists the HogEx last; a template with it elsewhere still gets it moved last.
    const template = templateOf(ltc, {
      transactions: [txs[txs.length - 1]!, ...txs.slice(0, -1)],
      mweb: '00',
    });
    const { job: ltcJob } = buildJob({
      ...base,
      params: LITECOIN_MAIN,
      chain: 'ltc-main',
      payouts: [{ address: ltc.coinbaseOutputs[0]!.address! }],
      template,
    });
    const branch = ltcJob.merkleBranch.map((h) => Buffer.from(h, 'hex'));
    const root = merkleRootFromBranch(hashFromDisplayHex(ltc.tx[0]!.txid), branch);
    expect(hashToDisplayHex(root)).toBe(ltc.merkleroot);
    const header = minerHeader(ltcJob, root, ltc.nonce);
    expect(blockHashHex(header)).toBe(ltc.hash);
  });

  it('refuses bad input with a ChainError naming the field', () => {
    expect(() => buildJob({ ...base, template: templateOf(btc), ntime: -1 })).toThrow(/ntime/);
    expect(() => buildJob({ ...base, template: templateOf(btc), epoch: 1.5 })).toThrow(/epoch/);
    expect(() => buildJob({ ...base, template: templateOf(btc), jobId: '' })).toThrow(/jobId/);
    expect(() => buildJob({ ...base, template: templateOf(btc), payouts: [] })).toThrow(ChainError);
  });

  it('keeps the coinbase txid consistent with the job hex (what validation hashes)', () => {
    const en1 = Buffer.alloc(4, 1);
    const en2 = Buffer.alloc(8, 2);
    const fromHex = sha256d(
      Buffer.concat([Buffer.from(job.coinb1, 'hex'), en1, en2, Buffer.from(job.coinb2, 'hex')]),
    );
    expect(fromHex).toEqual(sha256d(assembleCoinbase(built.coinbase, en1, en2)));
  });
});
