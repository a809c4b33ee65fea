import { createHash, scryptSync } from 'node:crypto';

/** sha256(sha256(data)), the block-header and txid hash of bitcoin-family chains. */
export function sha256d(data: Uint8Array): Buffer {
  const first = createHash('sha256').update(data).digest();
  return createHash('sha256').update(first).digest();
}

/** scrypt(N=1024, r=1, p=1) of an 80-byte header, salted with itself: litecoin's proof of work. */
export function scryptHash(header: Uint8Array): Buffer {
  return scryptSync(header, header, 32, { N: 1024, r: 1, p: 1, maxmem: 4 * 1024 * 1024 });
}
