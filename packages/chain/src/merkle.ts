import { ChainError } from './errors.js';
import { sha256d, sha256dMerkleRoot } from './hash.js';

/*
 * All hashes here are 32-byte buffers in internal byte order (what stratum calls
 * "little-endian": the reverse of the hex daemons display).
 */

function check32(hash: Uint8Array, what: string): void {
  if (hash.length !== 32) throw new ChainError('bad-length', `${what} must be 32 bytes, got ${hash.length}`);
}

/** sha256d(left || right) through a caller-owned 64-byte scratch buffer. */
function hashPair(scratch: Buffer, left: Uint8Array, right: Uint8Array): Buffer {
  scratch.set(left, 0);
  scratch.set(right, 32);
  return sha256d(scratch);
}

/**
 * Merkle root of a full list of hashes (Bitcoin Core's BlockMerkleRoot: an odd level pairs its
 * last hash with itself). Empty input gives 32 zero bytes.
 */
export function merkleRoot(hashes: readonly Uint8Array[]): Buffer {
  if (hashes.length === 0) return Buffer.alloc(32);
  hashes.forEach((h, i) => check32(h, `hash ${i}`));
  const scratch = Buffer.allocUnsafe(64);
  let level: Uint8Array[] = [...hashes];
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(hashPair(scratch, level[i]!, level[i + 1] ?? level[i]!));
    }
    level = next;
  }
  return Buffer.from(level[0]!);
}

/**
 * The stratum merkle branch for a block whose coinbase is leaf 0 and whose other transactions
 * have the given txids (block order, coinbase excluded): the sibling at each level on the
 * coinbase's path to the root.
 */
export function merkleBranch(txids: readonly Uint8Array[]): Buffer[] {
  txids.forEach((h, i) => check32(h, `txid ${i}`));
  const branch: Buffer[] = [];
  const scratch = Buffer.allocUnsafe(64);
  // level[0] stands for the (unknown) coinbase-side hash; only the rest is ever hashed here.
  let level: Uint8Array[] = [Buffer.alloc(32), ...txids];
  while (level.length > 1) {
    branch.push(Buffer.from(level[1]!));
    if (level.length % 2 === 1) level.push(level[level.length - 1]!);
    const next: Uint8Array[] = [level[0]!];
    for (let i = 2; i < level.length; i += 2) next.push(hashPair(scratch, level[i]!, level[i + 1]!));
    level = next;
  }
  return branch;
}

/** A branch as one buffer of k×32 bytes: the form {@link merkleRootFromBranch} hashes without copying. */
export function packMerkleBranch(branch: readonly Uint8Array[]): Buffer {
  branch.forEach((h, i) => check32(h, `branch hash ${i}`));
  return Buffer.concat(branch);
}

/**
 * Merkle root from the coinbase txid and a stratum branch: the share-validation path. Pass the
 * branch packed ({@link packMerkleBranch}, once per job) to hash it in one native call per share.
 */
export function merkleRootFromBranch(
  coinbaseHash: Uint8Array,
  branch: readonly Uint8Array[] | Uint8Array,
): Buffer {
  check32(coinbaseHash, 'coinbase hash');
  const packed = branch instanceof Uint8Array ? branch : packMerkleBranch(branch);
  if (packed.length % 32 !== 0) {
    throw new ChainError(
      'bad-length',
      `a packed merkle branch must be a multiple of 32 bytes, got ${packed.length}`,
    );
  }
  return sha256dMerkleRoot(coinbaseHash, packed);
}

/**
 * BIP141 witness merkle root: the coinbase's wtxid counts as 32 zero bytes, then the
 * wtxids (internal order) of the other transactions in block order.
 */
export function witnessMerkleRoot(wtxids: readonly Uint8Array[]): Buffer {
  return merkleRoot([Buffer.alloc(32), ...wtxids]);
}

/**
 * BIP141 commitment: sha256d(witness root || witness reserved value). The reserved value is the
 * coinbase input's single witness item, 32 zero bytes unless a future soft fork says otherwise.
 */
export function witnessCommitment(
  witnessRoot: Uint8Array,
  reservedValue: Uint8Array = Buffer.alloc(32),
): Buffer {
  check32(witnessRoot, 'witness root');
  check32(reservedValue, 'witness reserved value');
  return sha256d(Buffer.concat([witnessRoot, reservedValue]));
}
