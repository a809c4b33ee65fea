/** How one chain pays its miners (pool config `chains[].payments`). */
export interface PaymentSettings {
  /** `pplns`: the last N of difficulty; `prop`: the block's round; `solo`: the finder, in the coinbase (not in the ledger). */
  scheme: 'pplns' | 'prop' | 'solo';
  /** N = factor × network difficulty when the block was found (PPLNS). @defaultValue 2 */
  pplnsFactor: number;
  /** Pool fee, percent with at most two decimals. @defaultValue 0 */
  feePercent: number;
  /** Account (address) the fee and rounding remainders are credited to; none: `@pool`, never paid. */
  feeAddress?: string;
  /** An account is paid once its balance reaches this (satoshis). @defaultValue 10_000_000 */
  minimumPayoutSat: number;
  /** Seconds between two payment runs. @defaultValue 3600 */
  intervalS: number;
  /** Confirmations before a block's reward is shared out (coinbase maturity). @defaultValue 100 */
  maturity: number;
}

/** The fee account when no fee address is set: it holds the pool's part and is never paid. */
export const POOL_ACCOUNT = '@pool';

export const DEFAULT_PAYMENT_SETTINGS: PaymentSettings = {
  scheme: 'pplns',
  pplnsFactor: 2,
  feePercent: 0,
  minimumPayoutSat: 10_000_000,
  intervalS: 3600,
  maturity: 100,
};

/** Thrown for a bad payments setting; the message names the field and what it allows. */
export class PaymentSettingsError extends Error {
  override readonly name = 'PaymentSettingsError';
}

/** Checks `input` (a JSON object) and fills in defaults. */
export function resolvePaymentSettings(input: unknown): PaymentSettings {
  if (typeof input !== 'object' || input === null)
    throw new PaymentSettingsError('payments: an object is required');
  const record = input as Record<string, unknown>;
  const out: PaymentSettings = { ...DEFAULT_PAYMENT_SETTINGS };
  const number = (field: keyof PaymentSettings, min: number, max: number, integer: boolean) => {
    const value = record[field];
    if (value === undefined) return;
    if (
      typeof value !== 'number' ||
      !Number.isFinite(value) ||
      value < min ||
      value > max ||
      (integer && !Number.isInteger(value))
    ) {
      throw new PaymentSettingsError(
        `payments.${field}: ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${JSON.stringify(value)}`,
      );
    }
    (out as unknown as Record<string, unknown>)[field] = value;
  };
  if (record.scheme !== undefined) {
    if (record.scheme !== 'pplns' && record.scheme !== 'prop' && record.scheme !== 'solo') {
      throw new PaymentSettingsError(
        `payments.scheme: one of pplns, prop, solo, got ${JSON.stringify(record.scheme)}`,
      );
    }
    out.scheme = record.scheme;
  }
  number('pplnsFactor', 0.0001, 1000, false);
  number('feePercent', 0, 100, false);
  if (Math.abs(Math.round(out.feePercent * 100) - out.feePercent * 100) > 1e-6) {
    throw new PaymentSettingsError(`payments.feePercent: at most two decimals, got ${out.feePercent}`);
  }
  number('minimumPayoutSat', 1, Number.MAX_SAFE_INTEGER, true);
  number('intervalS', 1, 2 ** 31 - 1, true);
  number('maturity', 1, 10_000, true);
  if (record.feeAddress !== undefined) {
    if (typeof record.feeAddress !== 'string' || record.feeAddress === '') {
      throw new PaymentSettingsError('payments.feeAddress: a payout address');
    }
    out.feeAddress = record.feeAddress;
  }
  return out;
}
