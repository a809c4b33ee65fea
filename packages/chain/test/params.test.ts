import {
  ALL_CHAIN_PARAMS,
  BITCOIN_MAIN,
  CHAIN_PARAMS,
  ChainError,
  DIFF1_TARGET,
  LITECOIN_MAIN,
  LITECOIN_REGTEST,
  bitsToTarget,
  getChainParams,
} from '@hashwire/chain';
import { describe, expect, it } from 'vitest';
import { genesis } from './fixtures/load.js';

describe('chain params', () => {
  it('looks chains up by coin and network', () => {
    expect(getChainParams('litecoin', 'regtest')).toBe(LITECOIN_REGTEST);
    expect(getChainParams('bitcoin', 'main')).toBe(BITCOIN_MAIN);
    expect(() => getChainParams('dogecoin', 'main')).toThrow(
      'unknown chain "dogecoin" "main": coin must be one of bitcoin, litecoin and network one of main, test, regtest',
    );
    expect(() => getChainParams('litecoin', 'testnet4')).toThrow(ChainError);
  });

  it('matches the genesis blocks (chainparams.cpp)', () => {
    const g = genesis();
    expect(BITCOIN_MAIN.genesisHash).toBe(g.bitcoin.hash);
    expect(LITECOIN_MAIN.genesisHash).toBe(g.litecoin.hash);
    expect(CHAIN_PARAMS.litecoin.test.genesisHash).toBe(g.litecoin.test.hash);
    expect(LITECOIN_REGTEST.genesisHash).toBe(g.litecoin.regtest.hash);
  });

  it('uses the consensus algorithms and share conventions', () => {
    for (const p of ALL_CHAIN_PARAMS) {
      expect(p.algorithm).toBe(p.coin === 'litecoin' ? 'scrypt' : 'sha256d');
      expect(p.shareDiffMultiplier).toBe(p.coin === 'litecoin' ? 65536 : 1);
      expect(p.hasMweb).toBe(p.coin === 'litecoin');
      expect(p.diff1Target).toBe(DIFF1_TARGET);
      expect(bitsToTarget(p.powLimitBits) <= p.powLimit).toBe(true);
      expect(p.name).toBe(`${p.coin} ${p.network}`);
    }
  });

  it('has distinct bech32 hrps per network', () => {
    const hrps = ALL_CHAIN_PARAMS.map((p) => p.bech32Hrp);
    expect(hrps).toEqual(['ltc', 'tltc', 'rltc', 'bc', 'tb', 'bcrt']);
    expect(ALL_CHAIN_PARAMS.map((p) => p.mwebHrp)).toEqual(['ltcmweb', 'tmweb', 'tmweb', null, null, null]);
  });
});
