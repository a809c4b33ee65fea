import {
  HEADER_SIZE,
  blockHashHex,
  buildHeader,
  displayFromStratumPrevhash,
  hashFromDisplayHex,
  prevHashFromStratum,
  stratumPrevhashFromDisplay,
  swapWords32,
  writeHeader,
} from '@hashwire/chain';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bitcoinBlock, litecoinBlock } from './fixtures/load.js';

describe('buildHeader', () => {
  const block = bitcoinBlock();
  const fields = {
    version: block.version,
    prevHash: hashFromDisplayHex(block.previousblockhash),
    merkleRoot: hashFromDisplayHex(block.merkleroot),
    time: block.time,
    bits: Number.parseInt(block.bits, 16),
    nonce: block.nonce,
  };

  it('lays out version, prevhash, root, time, bits, nonce little-endian', () => {
    const header = buildHeader(fields);
    expect(header.length).toBe(HEADER_SIZE);
    expect(header.readUInt32LE(0)).toBe(block.version);
    expect(header.subarray(4, 36)).toEqual(fields.prevHash);
    expect(header.subarray(36, 68)).toEqual(fields.merkleRoot);
    expect(header.subarray(72, 76).toString('hex')).toBe('30380817');
    expect(blockHashHex(header)).toBe(block.hash);
  });

  it('writes into a reused buffer at an offset', () => {
    const out = Buffer.alloc(100, 0xee);
    writeHeader(out, fields, 10);
    expect(out.subarray(10, 90)).toEqual(buildHeader(fields));
    expect(out[9]).toBe(0xee);
    expect(out[90]).toBe(0xee);
  });

  it('accepts rolled versions with the top bit set (BIP310) and refuses non-32-bit fields', () => {
    expect(buildHeader({ ...fields, version: 0xe0000000 }).readUInt32LE(0)).toBe(0xe0000000);
    expect(buildHeader({ ...fields, version: -0x20000000 }).readUInt32LE(0)).toBe(0xe0000000);
    expect(() => buildHeader({ ...fields, nonce: 2 ** 32 })).toThrow(/nonce/);
    expect(() => buildHeader({ ...fields, prevHash: Buffer.alloc(31) })).toThrow(/prevHash/);
  });
});

describe('stratum prevhash word order', () => {
  it('sends the genesis hash with its 8 words in reverse order', () => {
    const display = '000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f';
    const stratum = stratumPrevhashFromDisplay(display);
    expect(stratum).toBe('0a8ce26f72b3f1b646a2a6c14ff763ae65831e939c085ae10019d66800000000');
    expect(displayFromStratumPrevhash(stratum)).toBe(display);
    expect(prevHashFromStratum(stratum)).toEqual(hashFromDisplayHex(display));
  });

  it('gives back the header bytes for real blocks', () => {
    for (const block of [bitcoinBlock(), litecoinBlock()]) {
      const stratum = stratumPrevhashFromDisplay(block.previousblockhash);
      expect(prevHashFromStratum(stratum)).toEqual(hashFromDisplayHex(block.previousblockhash));
    }
  });

  it('round-trips any hash both ways', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
        const display = Buffer.from(bytes).toString('hex');
        expect(displayFromStratumPrevhash(stratumPrevhashFromDisplay(display))).toBe(display);
        expect(swapWords32(swapWords32(bytes))).toEqual(Buffer.from(bytes));
      }),
    );
  });

  it('refuses input that is not 32 bytes of hex', () => {
    expect(() => stratumPrevhashFromDisplay('00ff')).toThrow(/32 bytes/);
    expect(() => prevHashFromStratum('zz'.repeat(32))).toThrow(/hex/);
  });
});
