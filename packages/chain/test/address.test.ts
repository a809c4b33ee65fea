import {
  AddressError,
  BITCOIN_MAIN,
  BITCOIN_REGTEST,
  BITCOIN_TEST,
  type ChainParams,
  LITECOIN_MAIN,
  LITECOIN_REGTEST,
  LITECOIN_TEST,
  addressToScript,
  chainsForAddress,
  decodeAddress,
  isValidAddress,
} from '@hashwire/chain';
import bs58check from 'bs58check';
import { describe, expect, it } from 'vitest';
import { bitcoinBlock, litecoinBlock, loadFixture } from './fixtures/load.js';

interface Vectors {
  valid: { address: string; network: 'main' | 'test'; scriptHex: string; type: string }[];
  invalid: { address: string; network: 'main' | 'test'; reason: string }[];
}
const vectors = loadFixture<Vectors>('segwit-addresses.json');
const btc = (network: 'main' | 'test'): ChainParams => (network === 'main' ? BITCOIN_MAIN : BITCOIN_TEST);

function errorOf(fn: () => unknown): AddressError {
  try {
    fn();
  } catch (e) {
    if (e instanceof AddressError) return e;
    throw e;
  }
  throw new Error('expected an AddressError');
}

describe('BIP173/BIP350 segwit vectors', () => {
  it.each(vectors.valid)('$address → $scriptHex', ({ address, network, scriptHex, type }) => {
    const decoded = decodeAddress(address, btc(network));
    expect(decoded.scriptPubKey.toString('hex')).toBe(scriptHex);
    expect(decoded.type).toBe(type);
  });

  it.each(vectors.invalid)('$address is refused ($reason)', ({ address, network }) => {
    const err = errorOf(() => decodeAddress(address, btc(network)));
    expect(err.address).toBe(address);
    expect(err.message).toContain(address);
    expect(err.code).toBe(
      address.toLowerCase().startsWith('tc1') ? 'invalid-address' : 'invalid-witness-program',
    );
  });

  it('does not pay witness versions nobody can spend yet', () => {
    const v16 = vectors.valid.find((v) => v.type === 'witness-unknown')!;
    const err = errorOf(() => addressToScript(v16.address, btc(v16.network)));
    expect(err.code).toBe('unsupported-address-type');
  });
});

describe('real mainnet addresses', () => {
  it.each(Object.entries(bitcoinBlock().otherAddresses))('bitcoin %s', (type, { address, scriptHex }) => {
    expect(decodeAddress(address, BITCOIN_MAIN).type).toBe(type);
    expect(addressToScript(address, BITCOIN_MAIN).toString('hex')).toBe(scriptHex);
  });

  it.each(Object.entries(litecoinBlock().otherAddresses))('litecoin %s', (type, { address, scriptHex }) => {
    expect(decodeAddress(address, LITECOIN_MAIN).type).toBe(type);
    expect(addressToScript(address, LITECOIN_MAIN).toString('hex')).toBe(scriptHex);
  });

  it('pays the coinbase outputs of the real blocks to the same scripts', () => {
    for (const [block, params] of [
      [bitcoinBlock(), BITCOIN_MAIN],
      [litecoinBlock(), LITECOIN_MAIN],
    ] as const) {
      const out = block.coinbaseOutputs[0]!;
      expect(addressToScript(out.address!, params).toString('hex')).toBe(out.scriptHex);
    }
  });

  it('accepts litecoin legacy 3… P2SH (version 5) as litecoind does', () => {
    const legacy = bs58check.encode(Buffer.concat([Buffer.of(5), Buffer.alloc(20, 0x11)]));
    expect(decodeAddress(legacy, LITECOIN_MAIN).type).toBe('p2sh');
    expect(chainsForAddress(legacy).map((c) => c.name)).toEqual(['litecoin main', 'bitcoin main']);
  });
});

describe('wrong network', () => {
  it('names the network the address is for and the one expected', () => {
    const err = errorOf(() => decodeAddress('bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4', LITECOIN_REGTEST));
    expect(err.code).toBe('wrong-network');
    expect(err.message).toBe(
      'address "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4" is for bitcoin main, expected litecoin regtest (bech32 hrp "rltc" or base58 prefixes 111, 58, 196)',
    );
  });

  it('names every network sharing a base58 prefix', () => {
    const testnetKeyHash = bs58check.encode(Buffer.concat([Buffer.of(111), Buffer.alloc(20, 1)]));
    const err = errorOf(() => decodeAddress(testnetKeyHash, LITECOIN_MAIN));
    expect(err.message).toContain(
      'is for litecoin test or litecoin regtest or bitcoin test or bitcoin regtest',
    );
    expect(err.message).toContain('expected litecoin main');
    expect(isValidAddress(testnetKeyHash, BITCOIN_REGTEST)).toBe(true);
  });

  it('tells a litecoin address from a bitcoin one', () => {
    const ltc = litecoinBlock().coinbaseOutputs[0]!.address!;
    expect(errorOf(() => decodeAddress(ltc, BITCOIN_MAIN)).message).toMatch(
      /is for litecoin main, expected bitcoin main/,
    );
    expect(
      errorOf(() => decodeAddress('ltc1qrqlkqqa7d9kpvxdcpd6ycja8uerskwxkhfy500', LITECOIN_TEST)).code,
    ).toBe('wrong-network');
  });

  it('lists where an address is valid', () => {
    expect(chainsForAddress('BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4').map((c) => c.name)).toEqual([
      'bitcoin main',
    ]);
    expect(chainsForAddress('not an address')).toEqual([]);
  });
});

describe('MWEB and malformed input', () => {
  const mweb = `ltcmweb1${'q'.repeat(100)}`;

  it('refuses MWEB stealth addresses as payout with a clear reason', () => {
    const err = errorOf(() => addressToScript(mweb, LITECOIN_MAIN));
    expect(err.code).toBe('mweb-address');
    expect(err.message).toMatch(/MWEB stealth address \(litecoin main\); a coinbase cannot pay MWEB/);
    expect(errorOf(() => decodeAddress(`TMWEB1${'Q'.repeat(100)}`, LITECOIN_REGTEST)).code).toBe(
      'mweb-address',
    );
  });

  it('refuses garbage, empty input and bad checksums', () => {
    expect(errorOf(() => decodeAddress('', BITCOIN_MAIN)).code).toBe('invalid-address');
    expect(errorOf(() => decodeAddress('hello', BITCOIN_MAIN)).code).toBe('invalid-address');
    const good = bitcoinBlock().otherAddresses.p2pkh!.address;
    const broken = `${good.slice(0, -1)}${good.endsWith('3') ? '4' : '3'}`;
    expect(errorOf(() => decodeAddress(broken, BITCOIN_MAIN)).code).toBe('invalid-address');
  });

  it('trims surrounding whitespace', () => {
    expect(decodeAddress('  bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4\n', BITCOIN_MAIN).type).toBe('p2wpkh');
  });
});
