import { hash, randomBytes, scryptSync } from 'node:crypto';
import { type HashImplementation, hashBackendInfo, hashImplementations } from '@hashwire/chain';
import { opsPerSecond, opsPerSecondAsync } from '../measure.js';
import type { BenchResult, BenchSuite } from '../types.js';

const SHA_BATCH = 1024;
const SCRYPT_BATCH = 64;
const SCRYPT_TARGET_RATIO = 2.5;

/** `chain.x_per_s` for the active implementation, `chain.x_per_s.native_scalar` etc. for the others. */
function resultName(metric: string, impl: HashImplementation, active: HashImplementation): string {
  return impl === active ? `chain.${metric}` : `chain.${metric}.${impl.name.replace(/-/g, '_')}`;
}

/**
 * Proof-of-work hashing throughput of every hash implementation (native SIMD, native scalar,
 * node:crypto), each against node:crypto one-shot calls measured in the same run. scrypt runs
 * one job at a time on one threadpool thread, so its figure is per core.
 */
export const chainSuite: BenchSuite = {
  name: 'chain',
  description: 'sha256d and scrypt header hashing (native addon vs node:crypto)',
  async run(ctx) {
    const seconds = ctx.quick ? 0.3 : 2;
    const info = hashBackendInfo();
    const why = info.unavailableReason ? `; native unavailable: ${info.unavailableReason}` : '';
    ctx.log(
      `chain: hash backend ${info.backend} (sha256d ${info.kernels.sha256d}, scrypt ${info.kernels.scrypt})${why}`,
    );
    const impls = hashImplementations();
    const active = impls[0]!;
    const results: BenchResult[] = [];

    const shaHeaders = randomBytes(SHA_BATCH * 80);
    ctx.log('chain: sha256d baseline, crypto.hash one-shot per header');
    const shaBaseline = opsPerSecond(() => {
      for (let i = 0; i < shaHeaders.length; i += 80) {
        hash('sha256', hash('sha256', shaHeaders.subarray(i, i + 80), 'buffer'), 'buffer');
      }
      return SHA_BATCH;
    }, seconds);
    // native-sse2 differs from native in its scrypt kernel only.
    for (const impl of impls.filter((i) => i.name !== 'native-sse2')) {
      ctx.log(`chain: sha256dHeaders, ${impl.name} (${impl.kernels.sha256d}), batches of ${SHA_BATCH}`);
      const rate = opsPerSecond(() => impl.sha256dHeaders(shaHeaders).length / 32, seconds);
      results.push({
        name: resultName('sha256d_headers_per_s', impl, active),
        value: Math.round(rate),
        unit: 'headers/s',
        higherIsBetter: true,
        baseline: { name: 'crypto.hash sha256 twice, one header per call', value: Math.round(shaBaseline) },
        ...(impl === active ? { target: '>= 1x baseline', met: rate >= shaBaseline } : {}),
      });
    }

    const scryptHeaders = randomBytes(SCRYPT_BATCH * 80);
    const params = { N: 1024, r: 1, p: 1, maxmem: 4 * 1024 * 1024 };
    ctx.log('chain: scrypt baseline, crypto.scryptSync per header');
    const scryptBaseline = opsPerSecond(() => {
      for (let i = 0; i < 8 * 80; i += 80) {
        const header = scryptHeaders.subarray(i, i + 80);
        scryptSync(header, header, 32, params);
      }
      return 8;
    }, seconds);
    for (const impl of impls) {
      ctx.log(
        `chain: scryptHeaders, ${impl.name} (${impl.kernels.scrypt}), one job of ${SCRYPT_BATCH} at a time`,
      );
      const rate = await opsPerSecondAsync(
        async () => (await impl.scryptHeaders(scryptHeaders, { parallelism: 1 })).length / 32,
        seconds,
      );
      results.push({
        name: resultName('scrypt_headers_per_s', impl, active),
        value: Math.round(rate),
        unit: 'headers/s',
        higherIsBetter: true,
        baseline: { name: 'crypto.scryptSync N=1024 r=1 p=1, one core', value: Math.round(scryptBaseline) },
        ...(impl === active
          ? {
              target: `>= ${SCRYPT_TARGET_RATIO}x baseline on one core`,
              met: rate >= SCRYPT_TARGET_RATIO * scryptBaseline,
            }
          : {}),
      });
    }
    return results;
  },
};
