import { type ChainParams, addressToScript, decodeAddress } from '@hashwire/chain';

/**
 * Payout addresses known to be payable on one chain, each with its one canonical spelling.
 * Miners authorize with the same few addresses over and over; decoding (base58 checksum or
 * bech32) each time is wasted work. Only valid addresses are kept, so garbage usernames
 * cannot fill it with junk that matters.
 */
export class PayoutAddressCache {
  /** As the miner wrote it → canonical. */
  readonly #valid = new Map<string, string>();
  /** Canonical → output script. */
  readonly #scripts = new Map<string, Buffer>();

  /** @param maxEntries addresses kept; the cache starts over when it is full */
  constructor(
    readonly params: ChainParams,
    readonly maxEntries = 10_000,
  ) {}

  /**
   * The account `address` is credited to, when it is payable on this chain: one payout
   * address is one account, so a bech32 address (valid all upper-case or all lower-case,
   * BIP173) is lower-cased; base58 is case-sensitive and stays as written.
   * @throws AddressError naming what is wrong with it (mixed-case bech32 among others)
   */
  canonical(address: string): string {
    const known = this.#valid.get(address);
    if (known !== undefined) return known;
    addressToScript(address, this.params);
    const canonical =
      decodeAddress(address, this.params).witnessVersion === undefined ? address : address.toLowerCase();
    if (this.#valid.size >= this.maxEntries) this.#valid.clear();
    this.#valid.set(address, canonical);
    return canonical;
  }

  /**
   * The output script a coinbase pays `address` (canonical, as {@link canonical} gave it) with.
   * @throws AddressError when it is no address of this chain
   */
  script(address: string): Buffer {
    let script = this.#scripts.get(address);
    if (script === undefined) {
      script = addressToScript(address, this.params);
      if (this.#scripts.size >= this.maxEntries) this.#scripts.clear();
      this.#scripts.set(address, script);
    }
    return script;
  }
}
