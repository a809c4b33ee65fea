import {
  BITCOIN_MAIN,
  LITECOIN_MAIN,
  OP_CHECKSIG,
  bitsToTarget,
  blockHash,
  blockHashHex,
  bufferToTarget,
  buildHeader,
  hashFromDisplayHex,
  hashMeetsTarget,
  hashToDisplayHex,
  merkleBranch,
  merkleRoot,
  merkleRootFromBranch,
  packMerkleBranch,
  powHash,
  pushData,
  pushInt,
  scriptNumBytes,
  serializeBlock,
  sha256d,
  stripTransaction,
  targetToBuffer,
} from '@hashwire/chain';
import { describe, expect, it } from 'vitest';
import { type GenesisFacts, type RealBlock, bitcoinBlock, genesis, litecoinBlock } from './fixtures/load.js';

/** The genesis coinbase exactly as CreateGenesisBlock builds it. */
function genesisCoinbase(facts: GenesisFacts): Buffer {
  const scriptSig = Buffer.concat([
    pushInt(486604799),
    pushData(scriptNumBytes(4)),
    pushData(Buffer.from(facts.timestamp, 'utf8')),
  ]);
  const scriptPubKey = Buffer.concat([pushData(Buffer.from(facts.pubkeyHex, 'hex')), Buffer.of(OP_CHECKSIG)]);
  const value = Buffer.alloc(8);
  value.writeBigUInt64LE(BigInt(facts.rewardSat));
  return Buffer.concat([
    Buffer.from('01000000', 'hex'), // version 1
    Buffer.of(1),
    Buffer.alloc(32),
    Buffer.from('ffffffff', 'hex'),
    Buffer.of(scriptSig.length),
    scriptSig,
    Buffer.from('ffffffff', 'hex'),
    Buffer.of(1),
    value,
    Buffer.of(scriptPubKey.length),
    scriptPubKey,
    Buffer.alloc(4), // locktime
  ]);
}

function genesisHeader(
  facts: Pick<GenesisFacts, 'version' | 'time' | 'bits' | 'nonce'>,
  root: Buffer,
): Buffer {
  return buildHeader({
    version: facts.version,
    prevHash: Buffer.alloc(32),
    merkleRoot: root,
    time: facts.time,
    bits: Number.parseInt(facts.bits, 16),
    nonce: facts.nonce,
  });
}

function realHeader(block: RealBlock, root: Buffer = hashFromDisplayHex(block.merkleroot)): Buffer {
  return buildHeader({
    version: block.version,
    prevHash: hashFromDisplayHex(block.previousblockhash),
    merkleRoot: root,
    time: block.time,
    bits: Number.parseInt(block.bits, 16),
    nonce: block.nonce,
  });
}

describe('bitcoin genesis', () => {
  const facts = genesis().bitcoin;
  const coinbase = genesisCoinbase(facts);
  const root = merkleRoot([sha256d(coinbase)]);
  const header = genesisHeader(facts, root);

  it('rebuilds the coinbase whose txid is the merkle root', () => {
    expect(hashToDisplayHex(root)).toBe(facts.merkleroot);
  });

  it('hashes the header to the genesis hash and meets its bits', () => {
    expect(blockHashHex(header)).toBe(facts.hash);
    expect(blockHashHex(header)).toBe(BITCOIN_MAIN.genesisHash);
    const target = targetToBuffer(bitsToTarget(facts.bits));
    expect(hashMeetsTarget(powHash('sha256d', header), target)).toBe(true);
  });

  it('serializes the 285-byte genesis block', () => {
    const block = serializeBlock({ header, coinbase, transactions: [] });
    expect(block.length).toBe(285);
    expect(block.subarray(0, 80)).toEqual(header);
    expect(block[80]).toBe(1);
  });
});

describe('litecoin genesis', () => {
  const facts = genesis().litecoin;
  const coinbase = genesisCoinbase(facts);
  const root = merkleRoot([sha256d(coinbase)]);

  it('rebuilds the coinbase whose txid is the merkle root', () => {
    expect(hashToDisplayHex(root)).toBe(facts.merkleroot);
  });

  it('has block hash 12a765e3… (sha256d) and a scrypt PoW at or below its target', () => {
    const header = genesisHeader(facts, root);
    expect(blockHashHex(header)).toBe('12a765e31ffd4059bada1e25190f6e98c99d9714d334efa41a195a7e7e04bfe2');
    expect(blockHashHex(header)).toBe(LITECOIN_MAIN.genesisHash);
    const pow = powHash('scrypt', header);
    const target = bitsToTarget(facts.bits);
    expect(hashMeetsTarget(pow, targetToBuffer(target))).toBe(true);
    expect(bufferToTarget(pow) <= target).toBe(true);
    // The sha256d hash is far above the target: scrypt, not sha256d, is litecoin's PoW.
    expect(hashMeetsTarget(blockHash(header), targetToBuffer(target))).toBe(false);
  });

  it('shares its coinbase with the test and regtest genesis blocks', () => {
    for (const net of [facts.test, facts.regtest]) {
      expect(blockHashHex(genesisHeader({ ...net, version: 1 }, root))).toBe(net.hash);
    }
  });
});

/** Runs a real block through the share-validation path: coinbase split, branch, header, PoW. */
function shareValidationPath(block: RealBlock, algorithm: 'sha256d' | 'scrypt') {
  const coinbase = Buffer.from(block.coinbaseHex, 'hex');
  const stripped = stripTransaction(coinbase);
  const extranonce = Buffer.from(block.coinbaseExtranonceHex, 'hex');
  const at = stripped.indexOf(extranonce);
  const coinb1 = stripped.subarray(0, at);
  const coinb2 = stripped.subarray(at + extranonce.length);
  const en1 = extranonce.subarray(0, 4);
  const en2 = extranonce.subarray(4);

  const txids = block.tx.map((t) => hashFromDisplayHex(t.txid));
  const branch = merkleBranch(txids.slice(1));
  const assembled = Buffer.concat([coinb1, en1, en2, coinb2]);
  const root = merkleRootFromBranch(sha256d(assembled), packMerkleBranch(branch));
  const header = realHeader(block, root);
  const target = targetToBuffer(bitsToTarget(block.bits));
  return { assembled, txids, root, header, pow: powHash(algorithm, header), target };
}

describe('bitcoin mainnet block 766390 (segwit)', () => {
  const block = bitcoinBlock();

  it('recomputes the merkle root from its txid list', () => {
    const root = merkleRoot(block.tx.map((t) => hashFromDisplayHex(t.txid)));
    expect(hashToDisplayHex(root)).toBe(block.merkleroot);
  });

  it('validates like a share: coinbase from coinb1/extranonces/coinb2, branch, header hash, PoW', () => {
    const run = shareValidationPath(block, 'sha256d');
    expect(hashToDisplayHex(sha256d(run.assembled))).toBe(block.tx[0]!.txid);
    expect(hashToDisplayHex(run.root)).toBe(block.merkleroot);
    expect(blockHashHex(run.header)).toBe(block.hash);
    expect(hashMeetsTarget(run.pow, run.target)).toBe(true);
  });

  it('fails PoW when the nonce is off by one', () => {
    const header = realHeader({ ...block, nonce: block.nonce + 1 });
    expect(hashMeetsTarget(powHash('sha256d', header), targetToBuffer(bitsToTarget(block.bits)))).toBe(false);
  });
});

describe('litecoin mainnet block 2383209 (segwit + MWEB)', () => {
  const block = litecoinBlock();

  it('recomputes the merkle root from its txid list, HogEx last', () => {
    const root = merkleRoot(block.tx.map((t) => hashFromDisplayHex(t.txid)));
    expect(hashToDisplayHex(root)).toBe(block.merkleroot);
  });

  it('validates like a share with a scrypt PoW at or below its target', () => {
    const run = shareValidationPath(block, 'scrypt');
    expect(hashToDisplayHex(sha256d(run.assembled))).toBe(block.tx[0]!.txid);
    expect(hashToDisplayHex(run.root)).toBe(block.merkleroot);
    expect(blockHashHex(run.header)).toBe(block.hash);
    expect(hashMeetsTarget(run.pow, run.target)).toBe(true);
    expect(hashMeetsTarget(blockHash(run.header), run.target)).toBe(false);
  });
});

describe('serializeBlock', () => {
  const header = Buffer.alloc(80, 7);
  const coinbase = Buffer.from('c0ffee', 'hex');

  it('writes header, count, coinbase, transactions in order', () => {
    const block = serializeBlock({ header, coinbase, transactions: ['aa', Buffer.from('bbbb', 'hex')] });
    expect(block.subarray(80).toString('hex')).toBe('03c0ffeeaabbbb');
  });

  it('appends 0x01 and the MWEB block for litecoin with MWEB', () => {
    const block = serializeBlock({ header, coinbase, transactions: ['aa'], mweb: 'deadbeef' });
    expect(block.subarray(80).toString('hex')).toBe('02c0ffeeaa01deadbeef');
  });

  it('uses a 3-byte count past 252 transactions', () => {
    const block = serializeBlock({ header, coinbase, transactions: Array.from({ length: 252 }, () => 'aa') });
    expect(block.subarray(80, 83).toString('hex')).toBe('fdfd00');
  });

  it('refuses a header that is not 80 bytes', () => {
    expect(() => serializeBlock({ header: Buffer.alloc(79), coinbase, transactions: [] })).toThrow(
      /80 bytes/,
    );
  });
});
