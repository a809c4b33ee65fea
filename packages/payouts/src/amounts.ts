/**
 * Money and difficulty as integers. Amounts are satoshis (`bigint`) from end to end; a
 * daemon's JSON amounts (doubles with at most 8 decimals) are converted once, at the edge.
 */

/** Satoshis per coin. */
export const SAT_PER_COIN = 100_000_000n;

/** Difficulty is weighed in units of 10^-8 (`WEIGHT_DECIMALS`): integer weights, exact shares. */
export const WEIGHT_DECIMALS = 8;
export const WEIGHT_PER_DIFF = 10n ** BigInt(WEIGHT_DECIMALS);

const DECIMAL = /^(\d+)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/**
 * A non-negative decimal text (`12`, `0.5`, `1e-7`, `1.5E+3`) as an integer count of
 * 10^-`decimals`, rounded half up. Throws on anything else (negative, NaN, Infinity).
 */
export function decimalToUnits(text: string, decimals: number): bigint {
  const match = DECIMAL.exec(text.trim());
  if (!match) throw new RangeError(`not a non-negative decimal number: ${JSON.stringify(text)}`);
  const whole = match[1] ?? '0';
  const fraction = match[2] ?? '';
  const exponent = Number(match[3] ?? '0');
  // digits × 10^(exponent − fraction.length) × 10^decimals
  const digits = BigInt(whole + fraction);
  const shift = exponent - fraction.length + decimals;
  if (shift >= 0) return digits * 10n ** BigInt(shift);
  const divisor = 10n ** BigInt(-shift);
  const quotient = digits / divisor;
  return digits % divisor >= (divisor + 1n) / 2n ? quotient + 1n : quotient;
}

/** A share difficulty (as Redis or JSON holds it) in weight units. */
export function diffToWeight(diff: string | number): bigint {
  return decimalToUnits(typeof diff === 'number' ? String(diff) : diff, WEIGHT_DECIMALS);
}

/**
 * A daemon's JSON amount (a double such as 0.1 or -12.5) in satoshis. Every amount of at most
 * 21 million coins with 8 decimals is a double whose `toFixed(8)` gives back its decimal text
 * exactly, so this conversion loses nothing.
 */
export function coinToSat(value: number | string): bigint {
  const text = typeof value === 'number' ? value.toFixed(8) : value.trim();
  const negative = text.startsWith('-');
  const units = decimalToUnits(negative ? text.slice(1) : text, 8);
  return negative ? -units : units;
}

/** Satoshis as a coin amount with 8 decimals (`1.50000000`), the form `sendmany` takes exactly. */
export function satToCoin(sat: bigint): string {
  const negative = sat < 0n;
  const abs = negative ? -sat : sat;
  const text = `${abs / SAT_PER_COIN}.${(abs % SAT_PER_COIN).toString().padStart(8, '0')}`;
  return negative ? `-${text}` : text;
}
