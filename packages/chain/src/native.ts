import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * Kernel argument of the addon: best available, portable C only, or SIMD only (the widest the
 * CPU has); `sse2` (scrypt only) keeps to the 4-way SSE2 kernel even where AVX2 is present.
 */
export const NativeKernel = { auto: 0, scalar: 1, simd: 2, sse2: 3 } as const;
export type NativeKernel = (typeof NativeKernel)[keyof typeof NativeKernel];

/** The functions `native/src/addon.c` exports; lengths are checked by the caller. */
export interface NativeHashBinding {
  abiVersion: number;
  sha256dHeaders(headers: Uint8Array, kernel: NativeKernel): Buffer;
  sha256dMerkleRoot(coinbaseHash: Uint8Array, branch: Uint8Array, kernel: NativeKernel): Buffer;
  scryptHeadersSync(headers: Uint8Array, kernel: NativeKernel): Buffer;
  scryptHeaders(headers: Uint8Array, kernel: NativeKernel): Promise<Buffer>;
  features(): { shaNi: boolean; sse2: boolean; avx2: boolean };
}

/** Must match HW_ABI_VERSION in addon.c: an addon built from older sources is not used. */
const EXPECTED_ABI_VERSION = 2;

// Same relative path from src/ (vitest) and dist/ (built package).
const ADDON_PATH = fileURLToPath(new URL('../native/build/Release/hashwire_chain.node', import.meta.url));

interface LoadOutcome {
  binding: NativeHashBinding | null;
  /** Why the addon is not in use; null when it is. */
  reason: string | null;
}

let outcome: LoadOutcome | undefined;

function load(): LoadOutcome {
  if (process.env.HASHWIRE_NO_NATIVE === '1') return { binding: null, reason: 'HASHWIRE_NO_NATIVE=1' };
  let binding: NativeHashBinding;
  try {
    binding = createRequire(import.meta.url)(ADDON_PATH) as NativeHashBinding;
  } catch (err) {
    return { binding: null, reason: `addon not loaded: ${(err as Error).message.split('\n')[0]}` };
  }
  if (binding.abiVersion !== EXPECTED_ABI_VERSION) {
    return {
      binding: null,
      reason: `addon is stale (abi ${binding.abiVersion}, want ${EXPECTED_ABI_VERSION}); run pnpm build`,
    };
  }
  return { binding, reason: null };
}

/** The native hashing addon, loaded once; null when it is missing, stale or disabled. */
export function loadNativeHash(): NativeHashBinding | null {
  outcome ??= load();
  return outcome.binding;
}

/** Why `loadNativeHash()` returned null (for a startup log line); null when the addon is in use. */
export function nativeHashUnavailableReason(): string | null {
  outcome ??= load();
  return outcome.reason;
}
