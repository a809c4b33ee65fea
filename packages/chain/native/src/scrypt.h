/* scrypt (RFC 7914) with litecoin's fixed parameters: N=1024, r=1, p=1, 32-byte output,
 * password = salt = the 80-byte block header. */
#ifndef HW_SCRYPT_H
#define HW_SCRYPT_H

#include <stddef.h>
#include <stdint.h>

#define HW_SCRYPT_HEADER_BYTES 80
#define HW_SCRYPT_HASH_BYTES 32

enum hw_scrypt_status { HW_SCRYPT_OK = 0, HW_SCRYPT_NO_MEMORY = -1, HW_SCRYPT_NO_KERNEL = -2 };

/* 1 when the 4-way SSE2 salsa20/8 kernel was compiled in (always on x86-64). */
int hw_scrypt_has_sse2(void);

/* 1 when the 8-way AVX2 kernel was compiled in and this CPU (and OS) can run it. */
int hw_scrypt_has_avx2(void);

/* Hashes `n` consecutive 80-byte headers into `n` consecutive 32-byte digests.
 * `kernel` is an enum hw_kernel: AUTO and SIMD pick the widest kernel present (AVX2, then
 * SSE2), SSE2 keeps to the 4-way SSE2 kernel, SCALAR forces the portable code (SHA-256
 * included); SIMD and SSE2 fail with HW_SCRYPT_NO_KERNEL when SSE2 is missing. */
int hw_scrypt_headers(const uint8_t *headers, size_t n, uint8_t *out, int kernel);

#endif
