import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { hashBackend, hashBackendInfo, hashImplementations } from '@hashwire/chain';
import { afterEach, describe, expect, it, vi } from 'vitest';

const ADDON = fileURLToPath(new URL('../native/build/Release/hashwire_chain.node', import.meta.url));

describe('hash backend selection', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  it.runIf(existsSync(ADDON) && process.env.HASHWIRE_NO_NATIVE !== '1')(
    'uses the built addon, with the SIMD kernels the CPU offers',
    () => {
      const info = hashBackendInfo();
      expect(info.unavailableReason).toBeNull();
      expect(hashBackend()).toBe('native');
      expect(hashImplementations().map((impl) => impl.name)).toEqual(
        expect.arrayContaining(['native', 'native-scalar', 'js']),
      );
      // On x86-64 the scrypt kernel is the widest one cpuid allows: AVX2 where /proc/cpuinfo
      // lists it, SSE2 otherwise.
      if (process.arch === 'x64' && existsSync('/proc/cpuinfo')) {
        const avx2 = /\bavx2\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
        expect(info.kernels.scrypt).toBe(avx2 ? 'avx2' : 'sse2');
        expect(hashImplementations().some((impl) => impl.name === 'native-sse2')).toBe(avx2);
      }
    },
  );

  it('falls back to node:crypto when HASHWIRE_NO_NATIVE=1', async () => {
    vi.stubEnv('HASHWIRE_NO_NATIVE', '1');
    vi.resetModules();
    const chain = await import('@hashwire/chain');
    expect(chain.hashBackend()).toBe('js');
    expect(chain.hashBackendInfo()).toMatchObject({
      backend: 'js',
      kernels: { sha256d: 'node-crypto', scrypt: 'node-crypto' },
      unavailableReason: 'HASHWIRE_NO_NATIVE=1',
    });
    expect(chain.hashImplementations().map((impl) => impl.name)).toEqual(['js']);
  });

  it('lists the active implementation first and js last', () => {
    const names = hashImplementations().map((impl) => impl.name);
    expect(names[0]).toBe(hashBackend() === 'native' ? 'native' : 'js');
    expect(names.at(-1)).toBe('js');
  });
});
