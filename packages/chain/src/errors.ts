/**
 * Why a chain function refused its input. Codes are stable strings so callers can
 * branch on them (`err.code === 'wrong-network'`) and show the message to an operator.
 */
export type ChainErrorCode =
  | 'bad-hex'
  | 'bad-length'
  | 'bad-value'
  | 'bad-bits'
  | 'bad-template'
  | 'bad-transaction'
  | 'coinbase-overpays'
  | 'coinbase-script-too-long'
  | 'hogex-missing'
  | 'unknown-chain';

export type AddressErrorCode =
  | 'invalid-address'
  | 'wrong-network'
  | 'mweb-address'
  | 'invalid-witness-program'
  | 'unsupported-address-type';

/** Invalid input to a consensus helper: a clear message naming the field and what was expected. */
export class ChainError extends Error {
  override name = 'ChainError';
  readonly code: ChainErrorCode | AddressErrorCode;

  constructor(code: ChainErrorCode | AddressErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** A payout address that cannot be paid on the configured chain. */
export class AddressError extends ChainError {
  override name = 'AddressError';
  declare readonly code: AddressErrorCode;
  /** The address as given (trimmed). */
  readonly address: string;

  constructor(code: AddressErrorCode, address: string, message: string) {
    super(code, message);
    this.address = address;
  }
}
