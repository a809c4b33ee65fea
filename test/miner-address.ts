/**
 * The loopback address of sim miner number `n` (from 1): each miner gets its own, as a stratum
 * server limits connections per address. 127.0.0.n up to 255, then 127.0.2.1–254, 127.0.3.1–254
 * and on (127.0.1.x is left to tests' own sockets).
 */
export function minerAddress(n: number): string {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`miner address number must be 1 or more, got ${n}`);
  if (n <= 255) return `127.0.0.${n}`;
  const k = n - 256;
  const third = 2 + Math.floor(k / 254);
  if (third > 255) throw new RangeError(`miner address number ${n} is past 127.0.255.254`);
  return `127.0.${third}.${1 + (k % 254)}`;
}
