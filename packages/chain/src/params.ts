import { ChainError } from './errors.js';

export type Coin = 'bitcoin' | 'litecoin';
export type Network = 'main' | 'test' | 'regtest';
export type PowAlgorithm = 'sha256d' | 'scrypt';

/**
 * Target of network difficulty 1 (bits `1d00ffff`). Daemons report difficulty against it for
 * both coins (`getdifficulty`), and sha256d stratum share difficulty uses it as is.
 */
export const DIFF1_TARGET = 0x00000000ffff0000000000000000000000000000000000000000000000000000n;

/** Consensus and network facts for one coin on one network. */
export interface ChainParams {
  readonly coin: Coin;
  readonly network: Network;
  /** Human name used in messages, e.g. `litecoin regtest`. */
  readonly name: string;
  readonly algorithm: PowAlgorithm;
  readonly base58: {
    /** Version byte of P2PKH addresses. */
    readonly pubkey: number;
    /** Version bytes accepted for P2SH addresses; the first is the one wallets create today. */
    readonly script: readonly number[];
  };
  readonly bech32Hrp: string;
  /** Human-readable part of MWEB stealth addresses (litecoin only): never payable by a coinbase. */
  readonly mwebHrp: string | null;
  readonly hasMweb: boolean;
  /** Genesis block hash in display order. */
  readonly genesisHash: string;
  /** Highest target the network allows, and its compact form. */
  readonly powLimit: bigint;
  readonly powLimitBits: number;
  /** Target of difficulty 1 for network difficulty (`getdifficulty`). */
  readonly diff1Target: bigint;
  /**
   * Stratum share difficulty D means target = diff1Target × shareDiffMultiplier / D.
   * 1 for sha256d; 65536 for scrypt (cpuminer/cgminer convention: scrypt diff 1 = target 0x0000ffff…).
   */
  readonly shareDiffMultiplier: number;
  readonly defaultPorts: { readonly p2p: number; readonly rpc: number };
}

const LTC_POW_LIMIT = 0x00000fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffn;
const BTC_POW_LIMIT = 0x00000000ffffffffffffffffffffffffffffffffffffffffffffffffffffffffn;
const REGTEST_POW_LIMIT = 0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffn;

// Sources: litecoin-project/litecoin src/chainparams.cpp and bitcoin/bitcoin src/chainparams.cpp
// (prefixes, hrps, genesis hashes, pow limits, ports); chainparamsbase.cpp for RPC ports.

export const LITECOIN_MAIN = {
  coin: 'litecoin',
  network: 'main',
  name: 'litecoin main',
  algorithm: 'scrypt',
  base58: { pubkey: 48, script: [50, 5] },
  bech32Hrp: 'ltc',
  mwebHrp: 'ltcmweb',
  hasMweb: true,
  genesisHash: '12a765e31ffd4059bada1e25190f6e98c99d9714d334efa41a195a7e7e04bfe2',
  powLimit: LTC_POW_LIMIT,
  powLimitBits: 0x1e0fffff,
  diff1Target: DIFF1_TARGET,
  shareDiffMultiplier: 65536,
  defaultPorts: { p2p: 9333, rpc: 9332 },
} as const satisfies ChainParams;

export const LITECOIN_TEST = {
  coin: 'litecoin',
  network: 'test',
  name: 'litecoin test',
  algorithm: 'scrypt',
  base58: { pubkey: 111, script: [58, 196] },
  bech32Hrp: 'tltc',
  mwebHrp: 'tmweb',
  hasMweb: true,
  genesisHash: '4966625a4b2851d9fdee139e56211a0d88575f59ed816ff5e6a63deb4e3e29a0',
  powLimit: LTC_POW_LIMIT,
  powLimitBits: 0x1e0fffff,
  diff1Target: DIFF1_TARGET,
  shareDiffMultiplier: 65536,
  defaultPorts: { p2p: 19335, rpc: 19332 },
} as const satisfies ChainParams;

export const LITECOIN_REGTEST = {
  coin: 'litecoin',
  network: 'regtest',
  name: 'litecoin regtest',
  algorithm: 'scrypt',
  base58: { pubkey: 111, script: [58, 196] },
  bech32Hrp: 'rltc',
  mwebHrp: 'tmweb',
  hasMweb: true,
  genesisHash: '530827f38f93b43ed12af0b3ad25a288dc02ed74d6d7857862df51fc56c416f9',
  powLimit: REGTEST_POW_LIMIT,
  powLimitBits: 0x207fffff,
  diff1Target: DIFF1_TARGET,
  shareDiffMultiplier: 65536,
  defaultPorts: { p2p: 19444, rpc: 19443 },
} as const satisfies ChainParams;

export const BITCOIN_MAIN = {
  coin: 'bitcoin',
  network: 'main',
  name: 'bitcoin main',
  algorithm: 'sha256d',
  base58: { pubkey: 0, script: [5] },
  bech32Hrp: 'bc',
  mwebHrp: null,
  hasMweb: false,
  genesisHash: '000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f',
  powLimit: BTC_POW_LIMIT,
  powLimitBits: 0x1d00ffff,
  diff1Target: DIFF1_TARGET,
  shareDiffMultiplier: 1,
  defaultPorts: { p2p: 8333, rpc: 8332 },
} as const satisfies ChainParams;

/** Bitcoin testnet3. */
export const BITCOIN_TEST = {
  coin: 'bitcoin',
  network: 'test',
  name: 'bitcoin test',
  algorithm: 'sha256d',
  base58: { pubkey: 111, script: [196] },
  bech32Hrp: 'tb',
  mwebHrp: null,
  hasMweb: false,
  genesisHash: '000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943',
  powLimit: BTC_POW_LIMIT,
  powLimitBits: 0x1d00ffff,
  diff1Target: DIFF1_TARGET,
  shareDiffMultiplier: 1,
  defaultPorts: { p2p: 18333, rpc: 18332 },
} as const satisfies ChainParams;

export const BITCOIN_REGTEST = {
  coin: 'bitcoin',
  network: 'regtest',
  name: 'bitcoin regtest',
  algorithm: 'sha256d',
  base58: { pubkey: 111, script: [196] },
  bech32Hrp: 'bcrt',
  mwebHrp: null,
  hasMweb: false,
  genesisHash: '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206',
  powLimit: REGTEST_POW_LIMIT,
  powLimitBits: 0x207fffff,
  diff1Target: DIFF1_TARGET,
  shareDiffMultiplier: 1,
  defaultPorts: { p2p: 18444, rpc: 18443 },
} as const satisfies ChainParams;

/** Every known chain, by coin then network. */
export const CHAIN_PARAMS = {
  litecoin: { main: LITECOIN_MAIN, test: LITECOIN_TEST, regtest: LITECOIN_REGTEST },
  bitcoin: { main: BITCOIN_MAIN, test: BITCOIN_TEST, regtest: BITCOIN_REGTEST },
} as const;

/** All known chains as a list (for lookups such as "which network is this address for"). */
export const ALL_CHAIN_PARAMS: readonly ChainParams[] = [
  LITECOIN_MAIN,
  LITECOIN_TEST,
  LITECOIN_REGTEST,
  BITCOIN_MAIN,
  BITCOIN_TEST,
  BITCOIN_REGTEST,
];

/** Params for a coin and network given as strings (config input); a clear error otherwise. */
export function getChainParams(coin: string, network: string): ChainParams {
  const byNetwork = (CHAIN_PARAMS as Record<string, Record<string, ChainParams> | undefined>)[coin];
  const params = byNetwork?.[network];
  if (!params) {
    throw new ChainError(
      'unknown-chain',
      `unknown chain "${coin}" "${network}": coin must be one of bitcoin, litecoin and network one of main, test, regtest`,
    );
  }
  return params;
}
