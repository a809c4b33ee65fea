/* scrypt written from RFC 7914: PBKDF2-HMAC-SHA256 around ROMix of salsa20/8 BlockMix.
 * The SIMD kernels run independent headers side by side, one per 32-bit lane (four with
 * SSE2, eight with AVX2): word k of every lane's block lives in vector k, so the salsa20
 * quarter-rounds are plain vertical operations. Each lane keeps its own 128 KiB scratch in
 * ordinary (untransposed) order; blocks are transposed 4x4 (8x8) on their way in and out.
 * The AVX2 kernel is compiled with a target attribute and chosen at run time from cpuid,
 * so one build serves CPUs with and without it. */
#include "scrypt.h"

#include <stdlib.h>
#include <string.h>

#include "sha256.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HW_SCRYPT_AVX2 1
#include <immintrin.h>
#endif

#define SCRYPT_N 1024
#define BLOCK_WORDS 32 /* 128 * r bytes, r = 1 */
#define LANE_SCRATCH_WORDS ((size_t)SCRYPT_N * BLOCK_WORDS)

static inline uint32_t load_le32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline void store_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

/* ---- PBKDF2-HMAC-SHA256 with c = 1 ---------------------------------------------------- */

typedef struct {
  hw_sha256_compress_fn compress;
  uint32_t inner[8]; /* state after the ipad block */
  uint32_t outer[8]; /* state after the opad block */
} hmac_key;

static void hmac_init(hmac_key *k, hw_sha256_compress_fn compress, const uint8_t header[80]) {
  /* An 80-byte key is longer than the 64-byte block, so HMAC uses its hash. */
  uint8_t key[32], pad[64];
  hw_sha256_ctx ctx;
  hw_sha256_init(&ctx, compress);
  hw_sha256_update(&ctx, header, HW_SCRYPT_HEADER_BYTES);
  hw_sha256_final(&ctx, key);
  k->compress = compress;

  memset(pad, 0x36, sizeof pad);
  for (int i = 0; i < 32; i++) pad[i] ^= key[i];
  memcpy(k->inner, hw_sha256_iv, sizeof k->inner);
  compress(k->inner, pad, 1);

  memset(pad, 0x5c, sizeof pad);
  for (int i = 0; i < 32; i++) pad[i] ^= key[i];
  memcpy(k->outer, hw_sha256_iv, sizeof k->outer);
  compress(k->outer, pad, 1);
}

/* HMAC(key, msg || INT(block_index)), the PBKDF2 block function for one iteration. */
static void pbkdf2_block(const hmac_key *k, const uint8_t *msg, size_t len, uint32_t block_index,
                         uint8_t out[32]) {
  uint8_t idx[4] = {(uint8_t)(block_index >> 24), (uint8_t)(block_index >> 16), (uint8_t)(block_index >> 8),
                    (uint8_t)block_index};
  uint8_t inner[32];
  hw_sha256_ctx ctx;
  hw_sha256_init(&ctx, k->compress);
  memcpy(ctx.state, k->inner, sizeof ctx.state);
  ctx.total = 64;
  hw_sha256_update(&ctx, msg, len);
  hw_sha256_update(&ctx, idx, sizeof idx);
  hw_sha256_final(&ctx, inner);

  hw_sha256_init(&ctx, k->compress);
  memcpy(ctx.state, k->outer, sizeof ctx.state);
  ctx.total = 64;
  hw_sha256_update(&ctx, inner, sizeof inner);
  hw_sha256_final(&ctx, out);
}

/* B = PBKDF2(header, header, 1, 128) as little-endian words, ready for ROMix. */
static void scrypt_expand(const hmac_key *k, const uint8_t header[80], uint32_t x[BLOCK_WORDS]) {
  uint8_t t[32];
  for (uint32_t i = 0; i < 4; i++) {
    pbkdf2_block(k, header, HW_SCRYPT_HEADER_BYTES, i + 1, t);
    for (int w = 0; w < 8; w++) x[8 * i + w] = load_le32(t + 4 * w);
  }
}

/* Digest = PBKDF2(header, B', 1, 32). */
static void scrypt_compress(const hmac_key *k, const uint32_t x[BLOCK_WORDS], uint8_t out[32]) {
  uint8_t b[4 * BLOCK_WORDS];
  for (int w = 0; w < BLOCK_WORDS; w++) store_le32(b + 4 * w, x[w]);
  pbkdf2_block(k, b, sizeof b, 1, out);
}

/* ---- scalar salsa20/8 and ROMix ------------------------------------------------------ */

#define ROTL32(v, n) (((v) << (n)) | ((v) >> (32 - (n))))

/* B = salsa20/8(B xor Bx): one half of BlockMix with r = 1. */
static void salsa20_8_xor(uint32_t b[16], const uint32_t bx[16]) {
  uint32_t x[16];
  for (int i = 0; i < 16; i++) x[i] = b[i] ^= bx[i];
  for (int round = 0; round < 8; round += 2) {
    /* columns */
    x[4] ^= ROTL32(x[0] + x[12], 7);
    x[8] ^= ROTL32(x[4] + x[0], 9);
    x[12] ^= ROTL32(x[8] + x[4], 13);
    x[0] ^= ROTL32(x[12] + x[8], 18);
    x[9] ^= ROTL32(x[5] + x[1], 7);
    x[13] ^= ROTL32(x[9] + x[5], 9);
    x[1] ^= ROTL32(x[13] + x[9], 13);
    x[5] ^= ROTL32(x[1] + x[13], 18);
    x[14] ^= ROTL32(x[10] + x[6], 7);
    x[2] ^= ROTL32(x[14] + x[10], 9);
    x[6] ^= ROTL32(x[2] + x[14], 13);
    x[10] ^= ROTL32(x[6] + x[2], 18);
    x[3] ^= ROTL32(x[15] + x[11], 7);
    x[7] ^= ROTL32(x[3] + x[15], 9);
    x[11] ^= ROTL32(x[7] + x[3], 13);
    x[15] ^= ROTL32(x[11] + x[7], 18);
    /* rows */
    x[1] ^= ROTL32(x[0] + x[3], 7);
    x[2] ^= ROTL32(x[1] + x[0], 9);
    x[3] ^= ROTL32(x[2] + x[1], 13);
    x[0] ^= ROTL32(x[3] + x[2], 18);
    x[6] ^= ROTL32(x[5] + x[4], 7);
    x[7] ^= ROTL32(x[6] + x[5], 9);
    x[4] ^= ROTL32(x[7] + x[6], 13);
    x[5] ^= ROTL32(x[4] + x[7], 18);
    x[11] ^= ROTL32(x[10] + x[9], 7);
    x[8] ^= ROTL32(x[11] + x[10], 9);
    x[9] ^= ROTL32(x[8] + x[11], 13);
    x[10] ^= ROTL32(x[9] + x[8], 18);
    x[12] ^= ROTL32(x[15] + x[14], 7);
    x[13] ^= ROTL32(x[12] + x[15], 9);
    x[14] ^= ROTL32(x[13] + x[12], 13);
    x[15] ^= ROTL32(x[14] + x[13], 18);
  }
  for (int i = 0; i < 16; i++) b[i] += x[i];
}

static void romix_scalar(uint32_t x[BLOCK_WORDS], uint32_t *v) {
  for (size_t i = 0; i < SCRYPT_N; i++) {
    memcpy(v + i * BLOCK_WORDS, x, BLOCK_WORDS * sizeof *x);
    salsa20_8_xor(x, x + 16);
    salsa20_8_xor(x + 16, x);
  }
  for (size_t i = 0; i < SCRYPT_N; i++) {
    const uint32_t *vj = v + (size_t)(x[16] & (SCRYPT_N - 1)) * BLOCK_WORDS;
    for (int w = 0; w < BLOCK_WORDS; w++) x[w] ^= vj[w];
    salsa20_8_xor(x, x + 16);
    salsa20_8_xor(x + 16, x);
  }
}

static void scrypt_one_scalar(hw_sha256_compress_fn compress, const uint8_t header[80], uint8_t out[32],
                              uint32_t *v) {
  hmac_key k;
  uint32_t x[BLOCK_WORDS];
  hmac_init(&k, compress, header);
  scrypt_expand(&k, header, x);
  romix_scalar(x, v);
  scrypt_compress(&k, x, out);
}

/* ---- 4-way SSE2 salsa20/8 and ROMix -------------------------------------------------- */

#ifdef __SSE2__

#define ROTL4(v, n) _mm_or_si128(_mm_slli_epi32((v), (n)), _mm_srli_epi32((v), 32 - (n)))
#define QR4(a, b, c, n) x##a = _mm_xor_si128(x##a, ROTL4(_mm_add_epi32(x##b, x##c), (n)))

static inline void salsa20_8_xor4(__m128i b[16], const __m128i bx[16]) {
  for (int i = 0; i < 16; i++) b[i] = _mm_xor_si128(b[i], bx[i]);
  /* Named locals rather than an array so the compiler keeps as many as it can in registers. */
  __m128i x0 = b[0], x1 = b[1], x2 = b[2], x3 = b[3], x4 = b[4], x5 = b[5], x6 = b[6], x7 = b[7];
  __m128i x8 = b[8], x9 = b[9], x10 = b[10], x11 = b[11], x12 = b[12], x13 = b[13], x14 = b[14],
          x15 = b[15];
  for (int round = 0; round < 8; round += 2) {
    QR4(4, 0, 12, 7);
    QR4(9, 5, 1, 7);
    QR4(14, 10, 6, 7);
    QR4(3, 15, 11, 7);
    QR4(8, 4, 0, 9);
    QR4(13, 9, 5, 9);
    QR4(2, 14, 10, 9);
    QR4(7, 3, 15, 9);
    QR4(12, 8, 4, 13);
    QR4(1, 13, 9, 13);
    QR4(6, 2, 14, 13);
    QR4(11, 7, 3, 13);
    QR4(0, 12, 8, 18);
    QR4(5, 1, 13, 18);
    QR4(10, 6, 2, 18);
    QR4(15, 11, 7, 18);

    QR4(1, 0, 3, 7);
    QR4(6, 5, 4, 7);
    QR4(11, 10, 9, 7);
    QR4(12, 15, 14, 7);
    QR4(2, 1, 0, 9);
    QR4(7, 6, 5, 9);
    QR4(8, 11, 10, 9);
    QR4(13, 12, 15, 9);
    QR4(3, 2, 1, 13);
    QR4(4, 7, 6, 13);
    QR4(9, 8, 11, 13);
    QR4(14, 13, 12, 13);
    QR4(0, 3, 2, 18);
    QR4(5, 4, 7, 18);
    QR4(10, 9, 8, 18);
    QR4(15, 14, 13, 18);
  }
  b[0] = _mm_add_epi32(b[0], x0);
  b[1] = _mm_add_epi32(b[1], x1);
  b[2] = _mm_add_epi32(b[2], x2);
  b[3] = _mm_add_epi32(b[3], x3);
  b[4] = _mm_add_epi32(b[4], x4);
  b[5] = _mm_add_epi32(b[5], x5);
  b[6] = _mm_add_epi32(b[6], x6);
  b[7] = _mm_add_epi32(b[7], x7);
  b[8] = _mm_add_epi32(b[8], x8);
  b[9] = _mm_add_epi32(b[9], x9);
  b[10] = _mm_add_epi32(b[10], x10);
  b[11] = _mm_add_epi32(b[11], x11);
  b[12] = _mm_add_epi32(b[12], x12);
  b[13] = _mm_add_epi32(b[13], x13);
  b[14] = _mm_add_epi32(b[14], x14);
  b[15] = _mm_add_epi32(b[15], x15);
}

/* In-place 4x4 transpose of 32-bit words: (lane-major) <-> (word-major). */
#define TRANSPOSE4(a, b, c, d)                   \
  do {                                           \
    __m128i t0_ = _mm_unpacklo_epi32((a), (b));  \
    __m128i t1_ = _mm_unpacklo_epi32((c), (d));  \
    __m128i t2_ = _mm_unpackhi_epi32((a), (b));  \
    __m128i t3_ = _mm_unpackhi_epi32((c), (d));  \
    (a) = _mm_unpacklo_epi64(t0_, t1_);          \
    (b) = _mm_unpackhi_epi64(t0_, t1_);          \
    (c) = _mm_unpacklo_epi64(t2_, t3_);          \
    (d) = _mm_unpackhi_epi64(t2_, t3_);          \
  } while (0)

/* `v` holds four lane scratches of LANE_SCRATCH_WORDS each, 16-byte aligned. */
static void romix_sse2(__m128i x[BLOCK_WORDS], uint32_t *v) {
  uint32_t *lane[4] = {v, v + LANE_SCRATCH_WORDS, v + 2 * LANE_SCRATCH_WORDS, v + 3 * LANE_SCRATCH_WORDS};
  for (size_t i = 0; i < SCRYPT_N; i++) {
    const size_t at = i * BLOCK_WORDS;
    for (int g = 0; g < BLOCK_WORDS; g += 4) {
      __m128i a = x[g], b = x[g + 1], c = x[g + 2], d = x[g + 3];
      TRANSPOSE4(a, b, c, d);
      _mm_store_si128((__m128i *)(lane[0] + at + g), a);
      _mm_store_si128((__m128i *)(lane[1] + at + g), b);
      _mm_store_si128((__m128i *)(lane[2] + at + g), c);
      _mm_store_si128((__m128i *)(lane[3] + at + g), d);
    }
    salsa20_8_xor4(x, x + 16);
    salsa20_8_xor4(x + 16, x);
  }
  for (size_t i = 0; i < SCRYPT_N; i++) {
    /* Integerify per lane: word 16 of each lane picks that lane's block. */
    const uint32_t *src[4];
    src[0] = lane[0] + (size_t)((uint32_t)_mm_cvtsi128_si32(x[16]) & (SCRYPT_N - 1)) * BLOCK_WORDS;
    src[1] = lane[1] +
             (size_t)((uint32_t)_mm_cvtsi128_si32(_mm_shuffle_epi32(x[16], 0x55)) & (SCRYPT_N - 1)) * BLOCK_WORDS;
    src[2] = lane[2] +
             (size_t)((uint32_t)_mm_cvtsi128_si32(_mm_shuffle_epi32(x[16], 0xAA)) & (SCRYPT_N - 1)) * BLOCK_WORDS;
    src[3] = lane[3] +
             (size_t)((uint32_t)_mm_cvtsi128_si32(_mm_shuffle_epi32(x[16], 0xFF)) & (SCRYPT_N - 1)) * BLOCK_WORDS;
    for (int g = 0; g < BLOCK_WORDS; g += 4) {
      __m128i a = _mm_load_si128((const __m128i *)(src[0] + g));
      __m128i b = _mm_load_si128((const __m128i *)(src[1] + g));
      __m128i c = _mm_load_si128((const __m128i *)(src[2] + g));
      __m128i d = _mm_load_si128((const __m128i *)(src[3] + g));
      TRANSPOSE4(a, b, c, d);
      x[g] = _mm_xor_si128(x[g], a);
      x[g + 1] = _mm_xor_si128(x[g + 1], b);
      x[g + 2] = _mm_xor_si128(x[g + 2], c);
      x[g + 3] = _mm_xor_si128(x[g + 3], d);
    }
    salsa20_8_xor4(x, x + 16);
    salsa20_8_xor4(x + 16, x);
  }
}

/* Up to four headers; a short group repeats its last header in the idle lanes. */
static void scrypt_four_sse2(hw_sha256_compress_fn compress, const uint8_t *headers, size_t count,
                             uint8_t *out, uint32_t *v) {
  hmac_key k[4];
  uint32_t lanes[4][BLOCK_WORDS];
  __m128i x[BLOCK_WORDS];
  for (size_t l = 0; l < 4; l++) {
    const uint8_t *h = headers + (l < count ? l : count - 1) * HW_SCRYPT_HEADER_BYTES;
    hmac_init(&k[l], compress, h);
    scrypt_expand(&k[l], h, lanes[l]);
  }
  for (int w = 0; w < BLOCK_WORDS; w++)
    x[w] = _mm_set_epi32((int)lanes[3][w], (int)lanes[2][w], (int)lanes[1][w], (int)lanes[0][w]);
  romix_sse2(x, v);
  for (int w = 0; w < BLOCK_WORDS; w++) {
    uint32_t words[4];
    _mm_storeu_si128((__m128i *)words, x[w]);
    for (int l = 0; l < 4; l++) lanes[l][w] = words[l];
  }
  for (size_t l = 0; l < count; l++) scrypt_compress(&k[l], lanes[l], out + l * HW_SCRYPT_HASH_BYTES);
}

/* ---- 8-way AVX2 salsa20/8 and ROMix -------------------------------------------------- */

#ifdef HW_SCRYPT_AVX2

#define AVX2_FN __attribute__((target("avx2")))
#define ROTL8(v, n) _mm256_or_si256(_mm256_slli_epi32((v), (n)), _mm256_srli_epi32((v), 32 - (n)))
#define QR8(a, b, c, n) x##a = _mm256_xor_si256(x##a, ROTL8(_mm256_add_epi32(x##b, x##c), (n)))

static inline AVX2_FN void salsa20_8_xor8(__m256i b[16], const __m256i bx[16]) {
  for (int i = 0; i < 16; i++) b[i] = _mm256_xor_si256(b[i], bx[i]);
  __m256i x0 = b[0], x1 = b[1], x2 = b[2], x3 = b[3], x4 = b[4], x5 = b[5], x6 = b[6], x7 = b[7];
  __m256i x8 = b[8], x9 = b[9], x10 = b[10], x11 = b[11], x12 = b[12], x13 = b[13], x14 = b[14],
          x15 = b[15];
  for (int round = 0; round < 8; round += 2) {
    QR8(4, 0, 12, 7);
    QR8(9, 5, 1, 7);
    QR8(14, 10, 6, 7);
    QR8(3, 15, 11, 7);
    QR8(8, 4, 0, 9);
    QR8(13, 9, 5, 9);
    QR8(2, 14, 10, 9);
    QR8(7, 3, 15, 9);
    QR8(12, 8, 4, 13);
    QR8(1, 13, 9, 13);
    QR8(6, 2, 14, 13);
    QR8(11, 7, 3, 13);
    QR8(0, 12, 8, 18);
    QR8(5, 1, 13, 18);
    QR8(10, 6, 2, 18);
    QR8(15, 11, 7, 18);

    QR8(1, 0, 3, 7);
    QR8(6, 5, 4, 7);
    QR8(11, 10, 9, 7);
    QR8(12, 15, 14, 7);
    QR8(2, 1, 0, 9);
    QR8(7, 6, 5, 9);
    QR8(8, 11, 10, 9);
    QR8(13, 12, 15, 9);
    QR8(3, 2, 1, 13);
    QR8(4, 7, 6, 13);
    QR8(9, 8, 11, 13);
    QR8(14, 13, 12, 13);
    QR8(0, 3, 2, 18);
    QR8(5, 4, 7, 18);
    QR8(10, 9, 8, 18);
    QR8(15, 14, 13, 18);
  }
  b[0] = _mm256_add_epi32(b[0], x0);
  b[1] = _mm256_add_epi32(b[1], x1);
  b[2] = _mm256_add_epi32(b[2], x2);
  b[3] = _mm256_add_epi32(b[3], x3);
  b[4] = _mm256_add_epi32(b[4], x4);
  b[5] = _mm256_add_epi32(b[5], x5);
  b[6] = _mm256_add_epi32(b[6], x6);
  b[7] = _mm256_add_epi32(b[7], x7);
  b[8] = _mm256_add_epi32(b[8], x8);
  b[9] = _mm256_add_epi32(b[9], x9);
  b[10] = _mm256_add_epi32(b[10], x10);
  b[11] = _mm256_add_epi32(b[11], x11);
  b[12] = _mm256_add_epi32(b[12], x12);
  b[13] = _mm256_add_epi32(b[13], x13);
  b[14] = _mm256_add_epi32(b[14], x14);
  b[15] = _mm256_add_epi32(b[15], x15);
}

/* 8x8 transpose of 32-bit words: r[k] element l becomes r[l] element k. */
static inline AVX2_FN void transpose8(__m256i r[8]) {
  const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
  const __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);
  const __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);
  /* uN holds columns N and N+4 of rows 0-3 (u0-u3) or rows 4-7 (u4-u7), one per 128-bit half. */
  const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
  const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
  const __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
  const __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
  r[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
  r[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
  r[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
  r[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
  r[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
  r[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
  r[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
  r[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

/* `v` holds eight lane scratches of LANE_SCRATCH_WORDS each, 32-byte aligned. */
static AVX2_FN void romix_avx2(__m256i x[BLOCK_WORDS], uint32_t *v) {
  uint32_t *lane[8];
  for (int l = 0; l < 8; l++) lane[l] = v + (size_t)l * LANE_SCRATCH_WORDS;
  for (size_t i = 0; i < SCRYPT_N; i++) {
    const size_t at = i * BLOCK_WORDS;
    for (int g = 0; g < BLOCK_WORDS; g += 8) {
      __m256i r[8];
      for (int k = 0; k < 8; k++) r[k] = x[g + k];
      transpose8(r);
      for (int l = 0; l < 8; l++) _mm256_store_si256((__m256i *)(lane[l] + at + g), r[l]);
    }
    salsa20_8_xor8(x, x + 16);
    salsa20_8_xor8(x + 16, x);
  }
  for (size_t i = 0; i < SCRYPT_N; i++) {
    /* Integerify per lane: word 16 of each lane picks that lane's block. */
    uint32_t j[8];
    _mm256_storeu_si256((__m256i *)j, x[16]);
    const uint32_t *src[8];
    for (int l = 0; l < 8; l++) src[l] = lane[l] + (size_t)(j[l] & (SCRYPT_N - 1)) * BLOCK_WORDS;
    for (int g = 0; g < BLOCK_WORDS; g += 8) {
      __m256i r[8];
      for (int l = 0; l < 8; l++) r[l] = _mm256_load_si256((const __m256i *)(src[l] + g));
      transpose8(r);
      for (int k = 0; k < 8; k++) x[g + k] = _mm256_xor_si256(x[g + k], r[k]);
    }
    salsa20_8_xor8(x, x + 16);
    salsa20_8_xor8(x + 16, x);
  }
}

/* Moves eight lanes' blocks into (and out of) word-major vectors; kept apart from the PBKDF2
 * code so that only these functions need the AVX2 target. */
static AVX2_FN void romix_avx2_lanes(uint32_t lanes[8][BLOCK_WORDS], uint32_t *v) {
  __m256i x[BLOCK_WORDS];
  for (int g = 0; g < BLOCK_WORDS; g += 8) {
    __m256i r[8];
    for (int l = 0; l < 8; l++) r[l] = _mm256_loadu_si256((const __m256i *)(lanes[l] + g));
    transpose8(r);
    for (int k = 0; k < 8; k++) x[g + k] = r[k];
  }
  romix_avx2(x, v);
  for (int g = 0; g < BLOCK_WORDS; g += 8) {
    __m256i r[8];
    for (int k = 0; k < 8; k++) r[k] = x[g + k];
    transpose8(r);
    for (int l = 0; l < 8; l++) _mm256_storeu_si256((__m256i *)(lanes[l] + g), r[l]);
  }
}

/* Up to eight headers; a short group repeats its last header in the idle lanes. */
static void scrypt_eight_avx2(hw_sha256_compress_fn compress, const uint8_t *headers, size_t count,
                              uint8_t *out, uint32_t *v) {
  hmac_key k[8];
  uint32_t lanes[8][BLOCK_WORDS];
  for (size_t l = 0; l < 8; l++) {
    const uint8_t *h = headers + (l < count ? l : count - 1) * HW_SCRYPT_HEADER_BYTES;
    hmac_init(&k[l], compress, h);
    scrypt_expand(&k[l], h, lanes[l]);
  }
  romix_avx2_lanes(lanes, v);
  for (size_t l = 0; l < count; l++) scrypt_compress(&k[l], lanes[l], out + l * HW_SCRYPT_HASH_BYTES);
}

int hw_scrypt_has_avx2(void) {
  /* libgcc's check includes the OS saving YMM state (XGETBV), not only the cpuid bit. */
  static int cached = -1;
  if (cached < 0) {
    __builtin_cpu_init();
    cached = __builtin_cpu_supports("avx2") ? 1 : 0;
  }
  return cached;
}

#else

int hw_scrypt_has_avx2(void) { return 0; }

#endif

int hw_scrypt_has_sse2(void) { return 1; }

#else

int hw_scrypt_has_sse2(void) { return 0; }
int hw_scrypt_has_avx2(void) { return 0; }

#endif

int hw_scrypt_headers(const uint8_t *headers, size_t n, uint8_t *out, int kernel) {
  if ((kernel == HW_KERNEL_SIMD || kernel == HW_KERNEL_SSE2) && !hw_scrypt_has_sse2()) return HW_SCRYPT_NO_KERNEL;
  if (n == 0) return HW_SCRYPT_OK;
  const int simd = kernel != HW_KERNEL_SCALAR && hw_scrypt_has_sse2();
  const int avx2 = (kernel == HW_KERNEL_AUTO || kernel == HW_KERNEL_SIMD) && hw_scrypt_has_avx2();
  hw_sha256_compress_fn compress = hw_sha256_compressor(kernel == HW_KERNEL_SCALAR ? HW_KERNEL_SCALAR
                                                                                  : HW_KERNEL_AUTO);
  const size_t scratch_bytes = (size_t)(avx2 ? 8 : simd ? 4 : 1) * LANE_SCRATCH_WORDS * sizeof(uint32_t);
  void *raw = malloc(scratch_bytes + 64);
  if (raw == NULL) return HW_SCRYPT_NO_MEMORY;
  uint32_t *v = (uint32_t *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);

  size_t i = 0;
#ifdef HW_SCRYPT_AVX2
  if (avx2) {
    /* Five or more fill an 8-way pass well enough; fewer go to the narrower kernels below. */
    while (n - i >= 5) {
      const size_t count = n - i < 8 ? n - i : 8;
      scrypt_eight_avx2(compress, headers + i * HW_SCRYPT_HEADER_BYTES, count, out + i * HW_SCRYPT_HASH_BYTES, v);
      i += count;
    }
  }
#endif
#ifdef __SSE2__
  if (simd) {
    /* A lone leftover costs about the same either way (measured: one scalar hash vs one
     * 4-way pass), so it goes to the scalar kernel; two or three share a padded 4-way pass. */
    while (n - i >= 2) {
      const size_t count = n - i < 4 ? n - i : 4;
      scrypt_four_sse2(compress, headers + i * HW_SCRYPT_HEADER_BYTES, count, out + i * HW_SCRYPT_HASH_BYTES, v);
      i += count;
    }
  }
#endif
  for (; i < n; i++)
    scrypt_one_scalar(compress, headers + i * HW_SCRYPT_HEADER_BYTES, out + i * HW_SCRYPT_HASH_BYTES, v);
  free(raw);
  return HW_SCRYPT_OK;
}
