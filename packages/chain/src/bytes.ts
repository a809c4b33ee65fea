import { ChainError } from './errors.js';

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

/** Decodes strict hex (even length, hex digits only); `field` names the input in the error. */
export function hexToBytes(hex: string, field = 'hex'): Buffer {
  if (typeof hex !== 'string' || !HEX_RE.test(hex)) {
    const shown =
      typeof hex === 'string' ? `"${hex.length > 80 ? `${hex.slice(0, 80)}…` : hex}"` : typeof hex;
    throw new ChainError('bad-hex', `${field} must be an even-length hex string, got ${shown}`);
  }
  return Buffer.from(hex, 'hex');
}

/** Lower-case hex of the bytes. */
export function bytesToHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** A reversed copy of the bytes. */
export function reverseBytes(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(bytes.length);
  for (let i = 0, j = bytes.length - 1; j >= 0; i++, j--) out[i] = bytes[j]!;
  return out;
}

/**
 * A 32-byte hash shown the way daemons print it (txid, block hash, GBT previousblockhash:
 * most significant byte first) into the byte order used inside headers and merkle trees.
 */
export function hashFromDisplayHex(hex: string, field = 'hash'): Buffer {
  const bytes = hexToBytes(hex, field);
  if (bytes.length !== 32) {
    throw new ChainError(
      'bad-length',
      `${field} must be 32 bytes (64 hex digits), got ${bytes.length} bytes`,
    );
  }
  return bytes.reverse();
}

/** The inverse of {@link hashFromDisplayHex}: internal byte order to the daemon's display hex. */
export function hashToDisplayHex(hash: Uint8Array): string {
  return reverseBytes(hash).toString('hex');
}

/** Bytes needed by a Bitcoin CompactSize integer. */
export function varIntSize(n: number): number {
  if (n < 0xfd) return 1;
  if (n <= 0xffff) return 3;
  if (n <= 0xffffffff) return 5;
  return 9;
}

/** Writes a Bitcoin CompactSize integer at `offset`; returns the offset after it. */
export function writeVarInt(out: Uint8Array, offset: number, n: number): number {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new ChainError('bad-value', `varint must be a safe non-negative integer, got ${n}`);
  if (n < 0xfd) {
    out[offset] = n;
    return offset + 1;
  }
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  if (n <= 0xffff) {
    out[offset] = 0xfd;
    view.setUint16(offset + 1, n, true);
    return offset + 3;
  }
  if (n <= 0xffffffff) {
    out[offset] = 0xfe;
    view.setUint32(offset + 1, n, true);
    return offset + 5;
  }
  out[offset] = 0xff;
  view.setBigUint64(offset + 1, BigInt(n), true);
  return offset + 9;
}

/** A CompactSize integer as its own buffer. */
export function encodeVarInt(n: number): Buffer {
  const out = Buffer.allocUnsafe(varIntSize(n));
  writeVarInt(out, 0, n);
  return out;
}

/** Reads a CompactSize integer; returns the value and the offset after it. */
export function readVarInt(data: Uint8Array, offset: number): { value: number; next: number } {
  const first = data[offset];
  if (first === undefined) throw new ChainError('bad-length', `varint at offset ${offset} runs past the end`);
  if (first < 0xfd) return { value: first, next: offset + 1 };
  const size = first === 0xfd ? 2 : first === 0xfe ? 4 : 8;
  if (offset + 1 + size > data.length) {
    throw new ChainError('bad-length', `varint at offset ${offset} runs past the end`);
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const value =
    size === 2
      ? view.getUint16(offset + 1, true)
      : size === 4
        ? view.getUint32(offset + 1, true)
        : Number(view.getBigUint64(offset + 1, true));
  return { value, next: offset + 1 + size };
}
