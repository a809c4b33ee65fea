const UNITS = ['H/s', 'kH/s', 'MH/s', 'GH/s', 'TH/s', 'PH/s', 'EH/s'];

export function hashrate(hps: number): string {
  let value = hps;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(value >= 100 || unit === 0 ? 0 : 2)} ${UNITS[unit]}`;
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 4 });

export const count = (n: number): string => integer.format(n);
/** Difficulty: 4 significant digits; tiny ones (regtest's network) in exponent form so they fit. */
export const diff = (n: number): string =>
  n !== 0 && Math.abs(n) < 0.001 ? n.toExponential(3) : decimal.format(n);
export const percent = (ratio: number): string => `${(ratio * 100).toFixed(ratio < 0.1 ? 2 : 1)} %`;

export function ago(ms: number, now = Date.now()): string {
  if (!ms) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

export const time = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

export const shortHash = (hash: string): string =>
  hash.length > 16 ? `${hash.slice(0, 8)}…${hash.slice(-8)}` : hash;
