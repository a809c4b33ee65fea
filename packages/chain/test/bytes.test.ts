import {
  ChainError,
  bytesToHex,
  encodeVarInt,
  hashFromDisplayHex,
  hashToDisplayHex,
  hexToBytes,
  readVarInt,
  reverseBytes,
  varIntSize,
} from '@hashwire/chain';
import { describe, expect, it } from 'vitest';

describe('hex', () => {
  it('decodes strict hex and names the field on bad input', () => {
    expect(hexToBytes('00ffAB')).toEqual(Buffer.from([0, 255, 171]));
    expect(() => hexToBytes('abc', 'coinb1')).toThrow('coinb1 must be an even-length hex string, got "abc"');
    expect(() => hexToBytes('zz')).toThrow(ChainError);
    expect(bytesToHex(new Uint8Array([1, 2]))).toBe('0102');
  });

  it('converts display hashes to internal order and back', () => {
    const display = '000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f';
    const internal = hashFromDisplayHex(display);
    expect(internal[0]).toBe(0x6f);
    expect(internal[31]).toBe(0x00);
    expect(hashToDisplayHex(internal)).toBe(display);
    expect(reverseBytes(reverseBytes(internal))).toEqual(internal);
    expect(() => hashFromDisplayHex('00ff')).toThrow(/32 bytes/);
  });
});

describe('CompactSize', () => {
  it.each([
    [0, '00'],
    [252, 'fc'],
    [253, 'fdfd00'],
    [0xffff, 'fdffff'],
    [0x10000, 'fe00000100'],
    [0xffffffff, 'feffffffff'],
    [0x100000000, 'ff0000000001000000'],
  ])('%i ↔ %s', (n, hex) => {
    expect(encodeVarInt(n).toString('hex')).toBe(hex);
    expect(varIntSize(n)).toBe(hex.length / 2);
    expect(readVarInt(Buffer.from(hex, 'hex'), 0)).toEqual({ value: n, next: hex.length / 2 });
  });

  it('refuses truncated and negative values', () => {
    expect(() => readVarInt(Buffer.from('fd00', 'hex'), 0)).toThrow(/past the end/);
    expect(() => encodeVarInt(-1)).toThrow(ChainError);
  });
});
