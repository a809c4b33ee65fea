import { scryptSync } from 'node:crypto';
import { type HashImplementation, hashImplementations, scryptHash, scryptHeaders } from '@hashwire/chain';
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

// version 1, null prevhash, merkle root 97ddfbba…ced9, time 1317972665, bits 1e0ffff0, nonce 2084524493.
const LITECOIN_GENESIS_HEADER = Buffer.from(
  '010000000000000000000000000000000000000000000000000000000000000000000000d9ced4ed1130f7b7faad9be25323ffafa33232a17c3edf6cfd97bee6bafbdd97b9aa8e4ef0ff0f1ecd513f7c',
  'hex',
);
const LITECOIN_GENESIS_POW = '0000050c34a64b415b6b15b37f2216634b5b1669cb9a2e38d76f7213b0671e00';

function referenceHeaders(headers: Uint8Array): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < headers.length; i += 80) out.push(scryptHash(headers.subarray(i, i + 80)));
  return Buffer.concat(out);
}

const display = (digest: Uint8Array) => Buffer.from(digest).reverse().toString('hex');

describe('scrypt reference', () => {
  it('node:crypto scrypt reproduces the RFC 7914 test vector for N=16, r=1, p=1', () => {
    expect(scryptSync('', '', 64, { N: 16, r: 1, p: 1 }).toString('hex')).toBe(
      '77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442' +
        'fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906',
    );
  });

  it('the litecoin genesis header hashes below its own target (bits 1e0ffff0)', () => {
    const pow = display(scryptHash(LITECOIN_GENESIS_HEADER));
    expect(pow).toBe(LITECOIN_GENESIS_POW);
    expect(pow < `00000ffff0${'0'.repeat(54)}`).toBe(true);
  });
});

describe.each(hashImplementations().map((impl) => [impl.name, impl] as const))(
  'scrypt, %s implementation',
  (_name, impl: HashImplementation) => {
    it('hashes the litecoin genesis header to its proof of work', async () => {
      expect(display(impl.scryptHeadersSync(LITECOIN_GENESIS_HEADER))).toBe(LITECOIN_GENESIS_POW);
      expect(display(await impl.scryptHeaders(LITECOIN_GENESIS_HEADER))).toBe(LITECOIN_GENESIS_POW);
    });

    // 3, 5, 6, 9, 13 and 17 leave partial groups for the 4-way and 8-way kernels
    // (13 = one 8-way pass of 8, then 5 in a padded 8-way pass; 12 = 8, then a 4-way pass).
    it.each([0, 1, 2, 3, 4, 5, 6, 8, 9, 12, 13, 17])(
      'matches crypto.scryptSync on %i random headers',
      async (count) => {
        const headers = seededBytes(count * 80, 2000 + count);
        const expected = referenceHeaders(headers).toString('hex');
        expect(impl.scryptHeadersSync(headers).toString('hex')).toBe(expected);
        expect((await impl.scryptHeaders(headers)).toString('hex')).toBe(expected);
        expect((await impl.scryptHeaders(headers, { parallelism: 1 })).toString('hex')).toBe(expected);
        expect((await impl.scryptHeaders(headers, { parallelism: 3 })).toString('hex')).toBe(expected);
      },
    );

    it.each([4, 8])(
      'keeps the lanes of a %i-header pass apart: one changed byte changes one digest',
      (lanes) => {
        const headers = seededBytes(lanes * 80, 77);
        const before = impl.scryptHeadersSync(headers);
        const changed = lanes - 2;
        headers[changed * 80 + 79]! ^= 1;
        const after = impl.scryptHeadersSync(headers);
        for (let lane = 0; lane < lanes; lane++) {
          const same = before
            .subarray(lane * 32, lane * 32 + 32)
            .equals(after.subarray(lane * 32, lane * 32 + 32));
          expect(same).toBe(lane !== changed);
        }
        expect(after.equals(referenceHeaders(headers))).toBe(true);
      },
    );

    it('hashes the headers as they were when called, even if the caller reuses the buffer', async () => {
      const headers = seededBytes(6 * 80, 5);
      const expected = referenceHeaders(headers);
      const pending = impl.scryptHeaders(headers);
      headers.fill(0);
      expect((await pending).equals(expected)).toBe(true);
    });

    it('refuses input that is not whole headers', async () => {
      expect(() => impl.scryptHeadersSync(Buffer.alloc(79))).toThrow(
        expect.objectContaining({ code: 'bad-length' }),
      );
      await expect(impl.scryptHeaders(Buffer.alloc(161))).rejects.toMatchObject({ code: 'bad-length' });
      await expect(impl.scryptHeaders(Buffer.alloc(80), { parallelism: 0 })).rejects.toThrow(/parallelism/);
    });
  },
);

describe('scryptHeaders', () => {
  it('agrees with scryptHash for a batch spread over the threadpool', async () => {
    const headers = seededBytes(13 * 80, 13);
    expect((await scryptHeaders(headers)).equals(referenceHeaders(headers))).toBe(true);
  });
});
