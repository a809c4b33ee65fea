import { type ChainParams, addressToScript } from '@hashwire/chain';

/**
 * Payout addresses known to be payable on one chain. Miners authorize with the same few
 * addresses over and over; decoding (base58 checksum or bech32) each time is wasted work.
 * Only valid addresses are kept, so garbage usernames cannot fill it with junk that matters.
 */
export class PayoutAddressCache {
  readonly #valid = new Set<string>();

  /** @param maxEntries addresses kept; the cache starts over when it is full */
  constructor(
    readonly params: ChainParams,
    readonly maxEntries = 10_000,
  ) {}

  /**
   * Returns when `address` is payable on this chain.
   * @throws AddressError naming what is wrong with it
   */
  check(address: string): void {
    if (this.#valid.has(address)) return;
    addressToScript(address, this.params);
    if (this.#valid.size >= this.maxEntries) this.#valid.clear();
    this.#valid.add(address);
  }
}
