import { createHash, scrypt, scryptSync } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { ChainError } from './errors.js';
import {
  type NativeHashBinding,
  NativeKernel,
  loadNativeHash,
  nativeHashUnavailableReason,
} from './native.js';

const HEADER_BYTES = 80;
const HASH_BYTES = 32;
const SCRYPT_PARAMS = { N: 1024, r: 1, p: 1, maxmem: 4 * 1024 * 1024 } as const;

/** sha256(sha256(data)), the block-header and txid hash of bitcoin-family chains. */
export function sha256d(data: Uint8Array): Buffer {
  const first = createHash('sha256').update(data).digest();
  return createHash('sha256').update(first).digest();
}

/** scrypt(N=1024, r=1, p=1) of an 80-byte header, salted with itself: litecoin's proof of work. */
export function scryptHash(header: Uint8Array): Buffer {
  return scryptSync(header, header, HASH_BYTES, SCRYPT_PARAMS);
}

export type HashBackend = 'native' | 'js';

export interface ScryptHeadersOptions {
  /**
   * Most jobs in flight at once; each occupies one libuv threadpool thread. 1 keeps the
   * whole batch on a single core.
   * @defaultValue `os.availableParallelism()`, at most 4 (libuv's default pool size)
   */
  parallelism?: number;
}

/** One way of computing the chain hashes; every implementation returns identical bytes. */
export interface HashImplementation {
  /** `native` (best kernels), `native-scalar`, `native-simd`, `native-sse2` or `js`. */
  readonly name: string;
  /** Which code computes each hash. */
  readonly kernels: {
    sha256d: 'sha-ni' | 'scalar' | 'node-crypto';
    scrypt: 'avx2' | 'sse2' | 'scalar' | 'node-crypto';
  };
  /** sha256d of each 80-byte header of `headers` (n*80 bytes) → n*32 bytes, in order. */
  sha256dHeaders(headers: Uint8Array): Buffer;
  /** Merkle root from the coinbase txid and a stratum branch (k*32 bytes): cur = sha256d(cur || branch[i]). */
  sha256dMerkleRoot(coinbaseHash: Uint8Array, branch: Uint8Array): Buffer;
  /** Litecoin scrypt of each 80-byte header (n*80 bytes) → n*32 bytes, on the calling thread. */
  scryptHeadersSync(headers: Uint8Array): Buffer;
  /** As `scryptHeadersSync`, computed off the main thread. */
  scryptHeaders(headers: Uint8Array, options?: ScryptHeadersOptions): Promise<Buffer>;
}

function checkHeaders(headers: Uint8Array): number {
  if (!(headers instanceof Uint8Array))
    throw new ChainError('bad-value', 'headers must be a Buffer or Uint8Array');
  if (headers.length % HEADER_BYTES !== 0) {
    throw new ChainError(
      'bad-length',
      `headers must be a whole number of 80-byte headers, got ${headers.length} bytes`,
    );
  }
  return headers.length / HEADER_BYTES;
}

function checkMerkleArgs(coinbaseHash: Uint8Array, branch: Uint8Array): void {
  if (!(coinbaseHash instanceof Uint8Array) || coinbaseHash.length !== HASH_BYTES) {
    throw new ChainError('bad-length', 'coinbaseHash must be a 32-byte Buffer or Uint8Array');
  }
  if (!(branch instanceof Uint8Array) || branch.length % HASH_BYTES !== 0) {
    throw new ChainError(
      'bad-length',
      'branch must be a Buffer or Uint8Array of k concatenated 32-byte hashes',
    );
  }
}

function resolveParallelism(options: ScryptHeadersOptions | undefined): number {
  const parallelism = options?.parallelism ?? Math.min(availableParallelism(), 4);
  if (!Number.isInteger(parallelism) || parallelism < 1) {
    throw new ChainError('bad-value', `parallelism must be a positive integer, got ${parallelism}`);
  }
  return parallelism;
}

/** Headers one pass of the widest scrypt kernel takes (AVX2: 8 lanes). */
const SIMD_GROUP = 8;

/** Splits n headers into at most `parallelism` runs whose sizes are multiples of one SIMD group. */
function chunkHeaders(headers: Uint8Array, count: number, parallelism: number): Uint8Array[] {
  const perChunk = Math.max(SIMD_GROUP, Math.ceil(count / parallelism / SIMD_GROUP) * SIMD_GROUP);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < count; i += perChunk) {
    chunks.push(headers.subarray(i * HEADER_BYTES, Math.min(count, i + perChunk) * HEADER_BYTES));
  }
  return chunks;
}

function scryptOneAsync(header: Uint8Array): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(header, header, HASH_BYTES, SCRYPT_PARAMS, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

const jsImplementation: HashImplementation = {
  name: 'js',
  kernels: { sha256d: 'node-crypto', scrypt: 'node-crypto' },
  sha256dHeaders(headers) {
    const count = checkHeaders(headers);
    const out = Buffer.allocUnsafe(count * HASH_BYTES);
    for (let i = 0; i < count; i++) {
      sha256d(headers.subarray(i * HEADER_BYTES, (i + 1) * HEADER_BYTES)).copy(out, i * HASH_BYTES);
    }
    return out;
  },
  sha256dMerkleRoot(coinbaseHash, branch) {
    checkMerkleArgs(coinbaseHash, branch);
    const pair = Buffer.alloc(2 * HASH_BYTES);
    pair.set(coinbaseHash);
    for (let i = 0; i < branch.length; i += HASH_BYTES) {
      pair.set(branch.subarray(i, i + HASH_BYTES), HASH_BYTES);
      sha256d(pair).copy(pair);
    }
    return Buffer.from(pair.subarray(0, HASH_BYTES));
  },
  scryptHeadersSync(headers) {
    const count = checkHeaders(headers);
    const out = Buffer.allocUnsafe(count * HASH_BYTES);
    for (let i = 0; i < count; i++) {
      scryptHash(headers.subarray(i * HEADER_BYTES, (i + 1) * HEADER_BYTES)).copy(out, i * HASH_BYTES);
    }
    return out;
  },
  async scryptHeaders(headers, options) {
    const count = checkHeaders(headers);
    const parallelism = resolveParallelism(options);
    // Copy first: the caller may reuse its buffer while the hashes run.
    const input = Buffer.from(headers);
    const runs = chunkHeaders(input, count, parallelism).map(async (chunk) => {
      const digests: Buffer[] = [];
      for (let i = 0; i < chunk.length; i += HEADER_BYTES) {
        digests.push(await scryptOneAsync(chunk.subarray(i, i + HEADER_BYTES)));
      }
      return digests;
    });
    return Buffer.concat((await Promise.all(runs)).flat(), count * HASH_BYTES);
  },
};

function nativeImplementation(
  binding: NativeHashBinding,
  name: string,
  shaKernel: NativeKernel,
  scryptKernel: NativeKernel,
  kernels: HashImplementation['kernels'],
): HashImplementation {
  return {
    name,
    kernels,
    sha256dHeaders(headers) {
      checkHeaders(headers);
      return binding.sha256dHeaders(headers, shaKernel);
    },
    sha256dMerkleRoot(coinbaseHash, branch) {
      checkMerkleArgs(coinbaseHash, branch);
      return binding.sha256dMerkleRoot(coinbaseHash, branch, shaKernel);
    },
    scryptHeadersSync(headers) {
      checkHeaders(headers);
      return binding.scryptHeadersSync(headers, scryptKernel);
    },
    async scryptHeaders(headers, options) {
      const count = checkHeaders(headers);
      const chunks = chunkHeaders(headers, count, resolveParallelism(options));
      // The addon copies each chunk before queueing it, so the caller's buffer is free at once.
      const digests = await Promise.all(chunks.map((chunk) => binding.scryptHeaders(chunk, scryptKernel)));
      return digests.length === 1 ? digests[0]! : Buffer.concat(digests, count * HASH_BYTES);
    },
  };
}

let implementations: readonly HashImplementation[] | undefined;

/**
 * Every implementation usable in this process, the active one first: `native` (the addon with
 * the best kernels this CPU has) when the addon loaded, then `native-scalar` (portable C),
 * `native-simd` (SHA-NI / the widest scrypt SIMD kernel only, when the CPU has either; a
 * family without its SIMD kernel runs scalar), `native-sse2` (scrypt on the 4-way SSE2
 * kernel, only where AVX2 would otherwise be used) and `js` (node:crypto). For tests and
 * benchmarks.
 */
export function hashImplementations(): readonly HashImplementation[] {
  if (implementations) return implementations;
  const list: HashImplementation[] = [];
  const binding = loadNativeHash();
  if (binding) {
    const { shaNi, sse2, avx2 } = binding.features();
    const best = {
      sha256d: shaNi ? 'sha-ni' : 'scalar',
      scrypt: avx2 ? 'avx2' : sse2 ? 'sse2' : 'scalar',
    } as const;
    list.push(nativeImplementation(binding, 'native', NativeKernel.auto, NativeKernel.auto, best));
    list.push(
      nativeImplementation(binding, 'native-scalar', NativeKernel.scalar, NativeKernel.scalar, {
        sha256d: 'scalar',
        scrypt: 'scalar',
      }),
    );
    if (shaNi || sse2) {
      const sha = shaNi ? NativeKernel.simd : NativeKernel.scalar;
      const scr = sse2 ? NativeKernel.simd : NativeKernel.scalar;
      list.push(nativeImplementation(binding, 'native-simd', sha, scr, best));
    }
    if (avx2) {
      list.push(
        nativeImplementation(binding, 'native-sse2', NativeKernel.auto, NativeKernel.sse2, {
          sha256d: best.sha256d,
          scrypt: 'sse2',
        }),
      );
    }
  }
  list.push(jsImplementation);
  implementations = list;
  return list;
}

function active(): HashImplementation {
  return hashImplementations()[0]!;
}

/** Which implementation the hashing functions below use: the native addon, or node:crypto. */
export function hashBackend(): HashBackend {
  return active().name === 'native' ? 'native' : 'js';
}

/** The active backend, its kernels, and why the addon is not in use (null when it is). */
export function hashBackendInfo(): {
  backend: HashBackend;
  kernels: HashImplementation['kernels'];
  unavailableReason: string | null;
} {
  return {
    backend: hashBackend(),
    kernels: active().kernels,
    unavailableReason: nativeHashUnavailableReason(),
  };
}

/** sha256d of each 80-byte header in `headers` (n*80 bytes) → n*32 bytes, in order. */
export function sha256dHeaders(headers: Uint8Array): Buffer {
  return active().sha256dHeaders(headers);
}

/** Merkle root from the coinbase txid and a branch (k*32 bytes): cur = sha256d(cur || branch[i]). */
export function sha256dMerkleRoot(coinbaseHash: Uint8Array, branch: Uint8Array): Buffer {
  return active().sha256dMerkleRoot(coinbaseHash, branch);
}

/** Litecoin scrypt of each 80-byte header (n*80 bytes) → n*32 bytes, off the main thread. */
export function scryptHeaders(headers: Uint8Array, options?: ScryptHeadersOptions): Promise<Buffer> {
  return active().scryptHeaders(headers, options);
}

/** As `scryptHeaders`, on the calling thread (blocks it: ~0.1 ms per header natively). */
export function scryptHeadersSync(headers: Uint8Array): Buffer {
  return active().scryptHeadersSync(headers);
}
