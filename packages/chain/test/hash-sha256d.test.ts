import { hash } from 'node:crypto';
import {
  type HashImplementation,
  hashImplementations,
  sha256dHeaders,
  sha256dMerkleRoot,
} from '@hashwire/chain';
import { describe, expect, it } from 'vitest';

/** Deterministic pseudo-random bytes (xorshift32), so a failure names reproducible input. */
function seededBytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed | 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const LITECOIN_GENESIS_HEADER =
  '010000000000000000000000000000000000000000000000000000000000000000000000d9ced4ed1130f7b7faad9be25323ffafa33232a17c3edf6cfd97bee6bafbdd97b9aa8e4ef0ff0f1ecd513f7c';
const BITCOIN_GENESIS_HEADER =
  '0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c';

function referenceSha256d(data: Uint8Array): Buffer {
  return hash('sha256', hash('sha256', data, 'buffer'), 'buffer');
}

function referenceHeaders(headers: Uint8Array): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < headers.length; i += 80) out.push(referenceSha256d(headers.subarray(i, i + 80)));
  return Buffer.concat(out);
}

function referenceMerkleRoot(coinbaseHash: Uint8Array, branch: Uint8Array): Buffer {
  let cur: Buffer = Buffer.from(coinbaseHash);
  for (let i = 0; i < branch.length; i += 32) {
    cur = referenceSha256d(Buffer.concat([cur, branch.subarray(i, i + 32)]));
  }
  return cur;
}

const display = (digest: Uint8Array) => Buffer.from(digest).reverse().toString('hex');

describe.each(hashImplementations().map((impl) => [impl.name, impl] as const))(
  'sha256d, %s implementation',
  (_name, impl: HashImplementation) => {
    it('hashes the bitcoin and litecoin genesis headers to their block hashes', () => {
      expect(display(impl.sha256dHeaders(Buffer.from(BITCOIN_GENESIS_HEADER, 'hex')))).toBe(
        '000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f',
      );
      expect(display(impl.sha256dHeaders(Buffer.from(LITECOIN_GENESIS_HEADER, 'hex')))).toBe(
        '12a765e31ffd4059bada1e25190f6e98c99d9714d334efa41a195a7e7e04bfe2',
      );
    });

    it.each([0, 1, 3, 4, 5, 17, 100])('matches node:crypto on a batch of %i random headers', (count) => {
      const headers = seededBytes(count * 80, 1000 + count);
      expect(impl.sha256dHeaders(headers).toString('hex')).toBe(referenceHeaders(headers).toString('hex'));
    });

    it('reads headers from a Uint8Array view at an odd offset', () => {
      const backing = seededBytes(3 + 5 * 80, 7);
      const view = new Uint8Array(backing.buffer, backing.byteOffset + 3, 5 * 80);
      expect(impl.sha256dHeaders(view).equals(referenceHeaders(view))).toBe(true);
    });

    it.each([0, 1, 2, 7, 12])('folds a merkle branch of %i hashes like node:crypto', (depth) => {
      const coinbaseHash = seededBytes(32, 50 + depth);
      const branch = seededBytes(depth * 32, 60 + depth);
      expect(impl.sha256dMerkleRoot(coinbaseHash, branch).toString('hex')).toBe(
        referenceMerkleRoot(coinbaseHash, branch).toString('hex'),
      );
    });

    it('leaves the caller’s coinbase hash untouched', () => {
      const coinbaseHash = seededBytes(32, 3);
      const before = Buffer.from(coinbaseHash);
      impl.sha256dMerkleRoot(coinbaseHash, seededBytes(64, 4));
      expect(coinbaseHash.equals(before)).toBe(true);
    });

    it('refuses input that is not whole headers or hashes, naming the field', () => {
      expect(() => impl.sha256dHeaders(Buffer.alloc(81))).toThrow(
        expect.objectContaining({ code: 'bad-length', message: expect.stringContaining('80-byte') }),
      );
      expect(() => impl.sha256dMerkleRoot(Buffer.alloc(31), Buffer.alloc(0))).toThrow(/coinbaseHash/);
      expect(() => impl.sha256dMerkleRoot(Buffer.alloc(32), Buffer.alloc(33))).toThrow(/branch/);
    });
  },
);

describe('sha256d public functions', () => {
  it('match the existing one-shot sha256d on random headers', () => {
    const headers = seededBytes(9 * 80, 99);
    expect(sha256dHeaders(headers).equals(referenceHeaders(headers))).toBe(true);
    expect(sha256dMerkleRoot(headers.subarray(0, 32), headers.subarray(32, 32 * 5))).toEqual(
      referenceMerkleRoot(headers.subarray(0, 32), headers.subarray(32, 32 * 5)),
    );
  });
});
