/** Calls `fn` in rounds until `seconds` have passed; returns operations per second. */
export function opsPerSecond(fn: () => number, seconds: number): number {
  // Warm up the JIT and caches before measuring.
  const warmUntil = performance.now() + Math.min(200, seconds * 200);
  while (performance.now() < warmUntil) fn();
  let ops = 0;
  const start = performance.now();
  const until = start + seconds * 1000;
  let now = start;
  while (now < until) {
    ops += fn();
    now = performance.now();
  }
  return ops / ((now - start) / 1000);
}

/** Like opsPerSecond for async work, one call in flight at a time. */
export async function opsPerSecondAsync(fn: () => Promise<number>, seconds: number): Promise<number> {
  const warmUntil = performance.now() + Math.min(200, seconds * 200);
  while (performance.now() < warmUntil) await fn();
  let ops = 0;
  const start = performance.now();
  const until = start + seconds * 1000;
  let now = start;
  while (now < until) {
    ops += await fn();
    now = performance.now();
  }
  return ops / ((now - start) / 1000);
}

/** The p-th percentile (0–100) of samples, nearest-rank. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

/**
 * `promise`, or an error naming `what` once `ms` have passed: a message that never arrives
 * fails the suite with a reason instead of hanging it.
 */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * Node flags for the processes whose RSS a bench reads (both designs alike): V8's young
 * generation held at its default maximum (2 × 16 MiB on 64-bit Node 20), and no memory reducer.
 * Left to itself V8 grows the young generation under the burst of opening sessions, and its
 * memory reducer gives that and free old-space pages back on a timer some seconds after the
 * process goes idle: 15–32 MiB, on whichever side of a reading it lands (a stratum master holding
 * no session measured 88.5 → 73.3 MiB between two readings with only the young generation fixed).
 */
export const STEADY_HEAP_FLAGS = [
  '--min-semi-space-size=16',
  '--max-semi-space-size=16',
  '--no-memory-reducer',
];
