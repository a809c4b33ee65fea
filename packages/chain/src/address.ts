import { bech32, bech32m } from 'bech32';
import bs58check from 'bs58check';
import { AddressError } from './errors.js';
import { ALL_CHAIN_PARAMS, type ChainParams } from './params.js';
import { p2pkhScript, p2shScript, witnessScript } from './script.js';

export type AddressType = 'p2pkh' | 'p2sh' | 'p2wpkh' | 'p2wsh' | 'p2tr' | 'witness-unknown';

export interface DecodedAddress {
  readonly type: AddressType;
  /** The output script paying this address. */
  readonly scriptPubKey: Buffer;
  /** Segwit only: witness version 0..16. */
  readonly witnessVersion?: number;
}

/** Types a coinbase may pay: witness versions above 1 (or v1 programs other than 32 bytes) are not spendable yet. */
const PAYABLE: ReadonlySet<AddressType> = new Set(['p2pkh', 'p2sh', 'p2wpkh', 'p2wsh', 'p2tr']);

/** bech32 strings are limited to 90 characters (BIP173). */
const BECH32_LIMIT = 90;

type Parsed =
  | { kind: 'base58'; version: number; hash: Uint8Array }
  | { kind: 'segwit'; hrp: string; version: number; program: Uint8Array }
  | { kind: 'segwit-invalid'; hrp: string; reason: string }
  | { kind: 'mweb'; hrp: string }
  | { kind: 'invalid'; reason: string };

function show(address: string): string {
  return `"${address.length > 100 ? `${address.slice(0, 100)}…` : address}"`;
}

function describeExpected(params: ChainParams): string {
  return `${params.name} (bech32 hrp "${params.bech32Hrp}" or base58 prefixes ${[params.base58.pubkey, ...params.base58.script].join(', ')})`;
}

function namesOf(chains: readonly ChainParams[]): string {
  return chains.map((c) => c.name).join(' or ');
}

function decodeBech32(
  address: string,
): { hrp: string; words: number[]; isBech32m: boolean } | { error: string } {
  try {
    const { prefix, words } = bech32.decode(address, BECH32_LIMIT);
    return { hrp: prefix, words, isBech32m: false };
  } catch (e) {
    const asBech32m = bech32m.decodeUnsafe(address, BECH32_LIMIT);
    if (asBech32m) return { hrp: asBech32m.prefix, words: asBech32m.words, isBech32m: true };
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

/** Network-independent parse: base58check, segwit (BIP173/BIP350 rules), or MWEB. */
function parseAddress(address: string): Parsed {
  const lower = address.toLowerCase();
  for (const chain of ALL_CHAIN_PARAMS) {
    if (chain.mwebHrp && lower.startsWith(`${chain.mwebHrp}1`)) return { kind: 'mweb', hrp: chain.mwebHrp };
  }

  const separator = lower.lastIndexOf('1');
  const hrpGuess = separator > 0 ? lower.slice(0, separator) : '';
  const looksSegwit = ALL_CHAIN_PARAMS.some((c) => c.bech32Hrp === hrpGuess);
  const decoded = decodeBech32(address);
  if ('error' in decoded) {
    if (looksSegwit) return { kind: 'segwit-invalid', hrp: hrpGuess, reason: `bech32: ${decoded.error}` };
  } else {
    const { hrp, words, isBech32m } = decoded;
    const version = words[0];
    if (version === undefined) return { kind: 'segwit-invalid', hrp, reason: 'empty data section' };
    if (version > 16)
      return { kind: 'segwit-invalid', hrp, reason: `witness version ${version} is above 16` };
    const programWords = bech32.fromWordsUnsafe(words.slice(1));
    if (!programWords)
      return { kind: 'segwit-invalid', hrp, reason: 'invalid padding in the witness program' };
    const program = Uint8Array.from(programWords);
    if (program.length < 2 || program.length > 40) {
      return {
        kind: 'segwit-invalid',
        hrp,
        reason: `witness program of ${program.length} bytes (must be 2..40)`,
      };
    }
    if (version === 0 && program.length !== 20 && program.length !== 32) {
      return {
        kind: 'segwit-invalid',
        hrp,
        reason: `v0 witness program of ${program.length} bytes (must be 20 or 32)`,
      };
    }
    if (version === 0 && isBech32m) {
      return { kind: 'segwit-invalid', hrp, reason: 'witness v0 must use bech32, not bech32m (BIP350)' };
    }
    if (version !== 0 && !isBech32m) {
      return {
        kind: 'segwit-invalid',
        hrp,
        reason: `witness v${version} must use bech32m, not bech32 (BIP350)`,
      };
    }
    return { kind: 'segwit', hrp, version, program };
  }

  const payload = bs58check.decodeUnsafe(address);
  if (!payload) return { kind: 'invalid', reason: 'neither valid base58check nor bech32/bech32m' };
  if (payload.length !== 21) {
    return { kind: 'invalid', reason: `base58check payload of ${payload.length} bytes (must be 21)` };
  }
  return { kind: 'base58', version: payload[0]!, hash: payload.subarray(1) };
}

function segwitType(version: number, programLength: number): AddressType {
  if (version === 0) return programLength === 20 ? 'p2wpkh' : 'p2wsh';
  if (version === 1 && programLength === 32) return 'p2tr';
  return 'witness-unknown';
}

/**
 * Decodes and validates an address for `params`, returning its output script.
 * Accepts every valid segwit version (BIP350: higher versions are valid recipients) as
 * `witness-unknown`; use {@link addressToScript} for payouts, which refuses those.
 * @throws AddressError (`invalid-address`, `wrong-network`, `mweb-address`, `invalid-witness-program`)
 */
export function decodeAddress(address: string, params: ChainParams): DecodedAddress {
  const given = typeof address === 'string' ? address.trim() : '';
  const expected = describeExpected(params);
  if (given === '')
    throw new AddressError('invalid-address', given, `address is empty, expected ${expected}`);
  const parsed = parseAddress(given);

  switch (parsed.kind) {
    case 'mweb': {
      const owner = ALL_CHAIN_PARAMS.filter((c) => c.mwebHrp === parsed.hrp);
      throw new AddressError(
        'mweb-address',
        given,
        `address ${show(given)} is an MWEB stealth address (${namesOf(owner)}); a coinbase cannot pay MWEB, expected ${expected}`,
      );
    }
    case 'invalid':
      throw new AddressError(
        'invalid-address',
        given,
        `address ${show(given)} is not valid: ${parsed.reason}; expected ${expected}`,
      );
    case 'segwit-invalid':
    case 'segwit': {
      if (parsed.hrp !== params.bech32Hrp) {
        const owners = ALL_CHAIN_PARAMS.filter((c) => c.bech32Hrp === parsed.hrp);
        const whose =
          owners.length > 0 ? `is for ${namesOf(owners)}` : `has unknown bech32 hrp "${parsed.hrp}"`;
        throw new AddressError(
          owners.length > 0 ? 'wrong-network' : 'invalid-address',
          given,
          `address ${show(given)} ${whose}, expected ${expected}`,
        );
      }
      if (parsed.kind === 'segwit-invalid') {
        throw new AddressError(
          'invalid-witness-program',
          given,
          `address ${show(given)} is not a valid ${params.name} segwit address: ${parsed.reason}`,
        );
      }
      return {
        type: segwitType(parsed.version, parsed.program.length),
        scriptPubKey: witnessScript(parsed.version, parsed.program),
        witnessVersion: parsed.version,
      };
    }
    case 'base58': {
      if (parsed.version === params.base58.pubkey)
        return { type: 'p2pkh', scriptPubKey: p2pkhScript(parsed.hash) };
      if (params.base58.script.includes(parsed.version))
        return { type: 'p2sh', scriptPubKey: p2shScript(parsed.hash) };
      const owners = ALL_CHAIN_PARAMS.filter(
        (c) => c.base58.pubkey === parsed.version || c.base58.script.includes(parsed.version),
      );
      const whose =
        owners.length > 0 ? `is for ${namesOf(owners)}` : `has unknown base58 prefix ${parsed.version}`;
      throw new AddressError(
        owners.length > 0 ? 'wrong-network' : 'invalid-address',
        given,
        `address ${show(given)} ${whose}, expected ${expected}`,
      );
    }
  }
}

/**
 * The output script for paying `address` from a coinbase on `params`' chain. Refuses MWEB
 * addresses and segwit versions nobody can spend yet, besides everything {@link decodeAddress} refuses.
 * @throws AddressError
 */
export function addressToScript(address: string, params: ChainParams): Buffer {
  const decoded = decodeAddress(address, params);
  if (!PAYABLE.has(decoded.type)) {
    throw new AddressError(
      'unsupported-address-type',
      address.trim(),
      `address ${show(address.trim())} is a witness v${decoded.witnessVersion} program that cannot be spent today; pay a P2PKH, P2SH, P2WPKH, P2WSH or P2TR address`,
    );
  }
  return decoded.scriptPubKey;
}

/** Whether `address` decodes for `params` (any valid type, MWEB excluded). */
export function isValidAddress(address: string, params: ChainParams): boolean {
  try {
    decodeAddress(address, params);
    return true;
  } catch {
    return false;
  }
}

/** Every known chain on which `address` is valid (several for shared base58 prefixes). */
export function chainsForAddress(address: string): ChainParams[] {
  return ALL_CHAIN_PARAMS.filter((c) => isValidAddress(address, c));
}
