import {
  bip34HeightPush,
  p2pkhScript,
  p2shScript,
  pushData,
  pushInt,
  scriptNumBytes,
  witnessScript,
} from '@hashwire/chain';
import { describe, expect, it } from 'vitest';

const hex = (b: Buffer) => b.toString('hex');

describe('bip34HeightPush (must equal CScript() << nHeight, ContextualCheckBlock)', () => {
  // Bitcoin Core CScript::push_int64 writes OP_1..OP_16 for 1..16 and a minimal CScriptNum
  // push otherwise; the coinbase scriptSig must start with exactly those bytes.
  const cases: [number, string][] = [
    [1, '51'],
    [2, '52'],
    [16, '60'],
    [17, '0111'],
    [127, '017f'],
    [128, '028000'],
    [255, '02ff00'],
    [256, '020001'],
    [32767, '02ff7f'],
    [32768, '03008000'],
    [8388607, '03ffff7f'],
    [8388608, '0400008000'],
    [766390, '03b6b10b'], // bitcoin block 766390's coinbase starts with 03b6b10b
    [2383209, '03695d24'], // litecoin block 2383209's coinbase starts with 03695d24
    [2147483647, '04ffffff7f'],
  ];
  it.each(cases)('height %i → %s', (height, expected) => {
    expect(hex(bip34HeightPush(height))).toBe(expected);
  });

  it('uses OP_N, not a one-byte push, for heights 1..16', () => {
    for (let h = 1; h <= 16; h++) expect([...bip34HeightPush(h)]).toEqual([0x50 + h]);
  });

  it.each([0, -1, 1.5, 2 ** 31, Number.NaN])('refuses height %s', (height) => {
    expect(() => bip34HeightPush(height)).toThrow(/height/);
  });
});

describe('scriptNumBytes (CScriptNum::serialize)', () => {
  it.each([
    [0, ''],
    [1, '01'],
    [-1, '81'],
    [127, '7f'],
    [128, '8000'],
    [-128, '8080'],
    [255, 'ff00'],
    [-255, 'ff80'],
    [256, '0001'],
    [486604799, 'ffff001d'],
  ])('%i → "%s"', (n, expected) => {
    expect(hex(scriptNumBytes(n))).toBe(expected);
  });
});

describe('pushInt / pushData', () => {
  it('writes OP_0, OP_1NEGATE and OP_N like CScript::push_int64', () => {
    expect(hex(pushInt(0))).toBe('00');
    expect(hex(pushInt(-1))).toBe('4f');
    expect(hex(pushInt(486604799))).toBe('04ffff001d');
  });

  it('picks the minimal push opcode by length', () => {
    expect(hex(pushData(Buffer.alloc(75, 1)).subarray(0, 1))).toBe('4b');
    expect(hex(pushData(Buffer.alloc(76, 1)).subarray(0, 2))).toBe('4c4c');
    expect(hex(pushData(Buffer.alloc(256, 1)).subarray(0, 3))).toBe('4d0001');
  });
});

describe('output scripts', () => {
  const h20 = Buffer.alloc(20, 0xab);
  it('builds P2PKH, P2SH and witness scripts', () => {
    expect(hex(p2pkhScript(h20))).toBe(`76a914${'ab'.repeat(20)}88ac`);
    expect(hex(p2shScript(h20))).toBe(`a914${'ab'.repeat(20)}87`);
    expect(hex(witnessScript(0, h20))).toBe(`0014${'ab'.repeat(20)}`);
    expect(hex(witnessScript(1, Buffer.alloc(32)))).toBe(`5120${'00'.repeat(32)}`);
    expect(hex(witnessScript(16, Buffer.of(1, 2)))).toBe('60020102');
  });

  it('refuses impossible witness versions and program sizes', () => {
    expect(() => witnessScript(17, h20)).toThrow(/version/);
    expect(() => witnessScript(1, Buffer.alloc(1))).toThrow(/2\.\.40/);
    expect(() => witnessScript(1, Buffer.alloc(41))).toThrow(/2\.\.40/);
  });
});
