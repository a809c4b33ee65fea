import {
  hashFromDisplayHex,
  hashToDisplayHex,
  merkleBranch,
  merkleRoot,
  merkleRootFromBranch,
  packMerkleBranch,
  sha256d,
  witnessCommitment,
  witnessMerkleRoot,
} from '@hashwire/chain';
import { describe, expect, it } from 'vitest';
import { type RealBlock, bitcoinBlock, litecoinBlock } from './fixtures/load.js';

const blocks: [string, RealBlock][] = [
  ['bitcoin 766390', bitcoinBlock()],
  ['litecoin 2383209', litecoinBlock()],
];
const leaf = (i: number) => sha256d(Buffer.of(i));

describe.each(blocks)('%s', (_name, block) => {
  const txids = block.tx.map((t) => hashFromDisplayHex(t.txid));

  it('full-tree root equals the header merkle root', () => {
    expect(hashToDisplayHex(merkleRoot(txids))).toBe(block.merkleroot);
  });

  it('coinbase txid + stratum branch gives the same root', () => {
    const root = merkleRootFromBranch(txids[0]!, merkleBranch(txids.slice(1)));
    expect(hashToDisplayHex(root)).toBe(block.merkleroot);
  });

  it('changes the root when one bit of one txid changes', () => {
    for (const index of [0, 1, txids.length - 1]) {
      const flipped = txids.map((t) => Buffer.from(t));
      flipped[index]![0]! ^= 1;
      expect(hashToDisplayHex(merkleRoot(flipped))).not.toBe(block.merkleroot);
    }
  });

  it('commits to the wtxids as the coinbase commitment output says (BIP141)', () => {
    const wtxids = block.tx.slice(1).map((t) => hashFromDisplayHex(t.hash));
    const commitment = witnessCommitment(witnessMerkleRoot(wtxids));
    const output = block.coinbaseOutputs.find((o) => o.scriptHex.startsWith('6a24aa21a9ed'))!;
    expect(commitment.toString('hex')).toBe(output.scriptHex.slice(12));
  });
});

describe('merkle branch', () => {
  it('is empty for a coinbase-only block, whose root is the coinbase hash', () => {
    expect(merkleBranch([])).toEqual([]);
    expect(merkleRootFromBranch(leaf(0), [])).toEqual(leaf(0));
    expect(merkleRoot([leaf(0)])).toEqual(leaf(0));
  });

  it('agrees with the full tree for every size from 1 to 33 transactions', () => {
    for (let n = 1; n <= 33; n++) {
      const hashes = Array.from({ length: n }, (_, i) => leaf(i));
      const branch = merkleBranch(hashes.slice(1));
      expect(branch.length).toBe(n === 1 ? 0 : Math.ceil(Math.log2(n)));
      expect(merkleRootFromBranch(hashes[0]!, branch)).toEqual(merkleRoot(hashes));
    }
  });

  it('starts with the first txid (little-endian, internal order)', () => {
    const hashes = [leaf(1), leaf(2), leaf(3)];
    const branch = merkleBranch(hashes);
    expect(branch[0]).toEqual(leaf(1));
    expect(branch[1]).toEqual(sha256d(Buffer.concat([leaf(2), leaf(3)])));
    expect(branch.length).toBe(2);
    // An odd level pairs its last hash with itself: coinbase + 4 txids → third step H(H(t4||t4)||H(t4||t4)).
    const five = merkleBranch([leaf(1), leaf(2), leaf(3), leaf(4)]);
    const t44 = sha256d(Buffer.concat([leaf(4), leaf(4)]));
    expect(five[2]).toEqual(sha256d(Buffer.concat([t44, t44])));
  });

  it('takes the branch packed (one buffer per job) with the same result', () => {
    const hashes = Array.from({ length: 9 }, (_, i) => leaf(i));
    const branch = merkleBranch(hashes.slice(1));
    const packed = packMerkleBranch(branch);
    expect(packed.length).toBe(32 * branch.length);
    expect(merkleRootFromBranch(hashes[0]!, packed)).toEqual(merkleRoot(hashes));
    expect(() => merkleRootFromBranch(hashes[0]!, packed.subarray(1))).toThrow(/multiple of 32/);
  });

  it('refuses hashes that are not 32 bytes', () => {
    expect(() => merkleBranch([Buffer.alloc(31)])).toThrow(/32 bytes/);
    expect(() => merkleRoot([Buffer.alloc(33)])).toThrow(/32 bytes/);
  });
});
