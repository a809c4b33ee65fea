/* SHA-256 (FIPS 180-4) with a portable scalar compressor and an x86 SHA-NI one,
 * chosen at run time from cpuid. */
#ifndef HW_SHA256_H
#define HW_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* Compresses `nblocks` consecutive 64-byte blocks into `state`. */
typedef void (*hw_sha256_compress_fn)(uint32_t state[8], const uint8_t *blocks, size_t nblocks);

/* HW_KERNEL_SSE2 is for scrypt only: its 4-way SSE2 kernel even where AVX2 is present. */
enum hw_kernel { HW_KERNEL_AUTO = 0, HW_KERNEL_SCALAR = 1, HW_KERNEL_SIMD = 2, HW_KERNEL_SSE2 = 3 };

extern const uint32_t hw_sha256_iv[8];

/* 1 when the CPU has SHA extensions (plus the SSSE3/SSE4.1 the kernel also uses). */
int hw_sha256_has_shani(void);

/* The compressor for `kernel`; NULL when HW_KERNEL_SIMD is asked for but missing. */
hw_sha256_compress_fn hw_sha256_compressor(int kernel);

typedef struct {
  hw_sha256_compress_fn compress;
  uint32_t state[8];
  uint8_t buf[64];
  size_t buflen;
  uint64_t total;
} hw_sha256_ctx;

void hw_sha256_init(hw_sha256_ctx *ctx, hw_sha256_compress_fn compress);
void hw_sha256_update(hw_sha256_ctx *ctx, const uint8_t *data, size_t len);
void hw_sha256_final(hw_sha256_ctx *ctx, uint8_t out[32]);

/* sha256(sha256(in)) for the two fixed sizes the chain needs: headers and merkle pairs. */
void hw_sha256d_80(hw_sha256_compress_fn compress, const uint8_t in[80], uint8_t out[32]);
void hw_sha256d_64(hw_sha256_compress_fn compress, const uint8_t in[64], uint8_t out[32]);

#endif
