/* SHA-256 written from FIPS 180-4. The SHA-NI path follows the register layout
 * the Intel SHA extensions define (state split into ABEF and CDGH). */
#include "sha256.h"

#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define HW_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

const uint32_t hw_sha256_iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static inline uint32_t rotr32(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static inline uint32_t load_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline void store_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static void compress_scalar(uint32_t state[8], const uint8_t *p, size_t nblocks) {
  uint32_t w[64];
  while (nblocks--) {
    for (int t = 0; t < 16; t++) w[t] = load_be32(p + 4 * t);
    for (int t = 16; t < 64; t++) {
      uint32_t s0 = rotr32(w[t - 15], 7) ^ rotr32(w[t - 15], 18) ^ (w[t - 15] >> 3);
      uint32_t s1 = rotr32(w[t - 2], 17) ^ rotr32(w[t - 2], 19) ^ (w[t - 2] >> 10);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int t = 0; t < 64; t++) {
      uint32_t t1 = h + (rotr32(e, 6) ^ rotr32(e, 11) ^ rotr32(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t];
      uint32_t t2 = (rotr32(a, 2) ^ rotr32(a, 13) ^ rotr32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
    p += 64;
  }
}

#ifdef HW_X86

/* Four rounds: the low two words of W+K feed the first sha256rnds2, the high two the second. */
#define SHANI_ROUNDS4(msg, k)                                                   \
  do {                                                                          \
    __m128i wk_ = _mm_add_epi32((msg), _mm_loadu_si128((const __m128i *)(k))); \
    cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk_);                              \
    abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk_, 0x0E));     \
  } while (0)

/* W[t..t+3] from the four previous groups: m0 holds W[t-16..t-13], m3 W[t-4..t-1]. */
#define SHANI_SCHEDULE(m0, m1, m2, m3) \
  (m0) = _mm_sha256msg2_epu32(         \
      _mm_add_epi32(_mm_sha256msg1_epu32((m0), (m1)), _mm_alignr_epi8((m3), (m2), 4)), (m3))

__attribute__((target("sha,sse4.1,ssse3"))) static void compress_shani(uint32_t state[8], const uint8_t *p,
                                                                         size_t nblocks) {
  const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
  __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[0]), 0xB1); /* b a d c */
  __m128i cdgh = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[4]), 0x1B); /* h g f e */
  __m128i abef = _mm_alignr_epi8(tmp, cdgh, 8);                                       /* f e b a */
  cdgh = _mm_blend_epi16(cdgh, tmp, 0xF0);                                            /* h g d c */

  while (nblocks--) {
    const __m128i abef_in = abef, cdgh_in = cdgh;
    __m128i m0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 0)), bswap);
    __m128i m1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16)), bswap);
    __m128i m2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 32)), bswap);
    __m128i m3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 48)), bswap);
    SHANI_ROUNDS4(m0, &K[0]);
    SHANI_ROUNDS4(m1, &K[4]);
    SHANI_ROUNDS4(m2, &K[8]);
    SHANI_ROUNDS4(m3, &K[12]);
    for (int t = 16; t < 64; t += 16) {
      SHANI_SCHEDULE(m0, m1, m2, m3);
      SHANI_ROUNDS4(m0, &K[t]);
      SHANI_SCHEDULE(m1, m2, m3, m0);
      SHANI_ROUNDS4(m1, &K[t + 4]);
      SHANI_SCHEDULE(m2, m3, m0, m1);
      SHANI_ROUNDS4(m2, &K[t + 8]);
      SHANI_SCHEDULE(m3, m0, m1, m2);
      SHANI_ROUNDS4(m3, &K[t + 12]);
    }
    abef = _mm_add_epi32(abef, abef_in);
    cdgh = _mm_add_epi32(cdgh, cdgh_in);
    p += 64;
  }

  tmp = _mm_shuffle_epi32(abef, 0x1B);                /* a b e f */
  cdgh = _mm_shuffle_epi32(cdgh, 0xB1);               /* g h c d */
  abef = _mm_blend_epi16(tmp, cdgh, 0xF0);            /* a b c d */
  cdgh = _mm_alignr_epi8(cdgh, tmp, 8);               /* e f g h */
  _mm_storeu_si128((__m128i *)&state[0], abef);
  _mm_storeu_si128((__m128i *)&state[4], cdgh);
}

static int detect_shani(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  const int ssse3 = (c >> 9) & 1, sse41 = (c >> 19) & 1;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  const int sha = (b >> 29) & 1;
  return ssse3 && sse41 && sha;
}

#else

static int detect_shani(void) { return 0; }

#endif

int hw_sha256_has_shani(void) {
  /* Racing first calls compute the same answer, so a plain cache is enough. */
  static int cached = -1;
  if (cached < 0) cached = detect_shani();
  return cached;
}

hw_sha256_compress_fn hw_sha256_compressor(int kernel) {
#ifdef HW_X86
  if (kernel != HW_KERNEL_SCALAR && hw_sha256_has_shani()) return compress_shani;
#endif
  return kernel == HW_KERNEL_SIMD ? NULL : compress_scalar;
}

void hw_sha256_init(hw_sha256_ctx *ctx, hw_sha256_compress_fn compress) {
  ctx->compress = compress;
  memcpy(ctx->state, hw_sha256_iv, sizeof ctx->state);
  ctx->buflen = 0;
  ctx->total = 0;
}

void hw_sha256_update(hw_sha256_ctx *ctx, const uint8_t *data, size_t len) {
  ctx->total += len;
  if (ctx->buflen > 0) {
    size_t take = 64 - ctx->buflen;
    if (take > len) take = len;
    memcpy(ctx->buf + ctx->buflen, data, take);
    ctx->buflen += take;
    data += take;
    len -= take;
    if (ctx->buflen < 64) return;
    ctx->compress(ctx->state, ctx->buf, 1);
    ctx->buflen = 0;
  }
  if (len >= 64) {
    ctx->compress(ctx->state, data, len / 64);
    data += len & ~(size_t)63;
    len &= 63;
  }
  memcpy(ctx->buf, data, len);
  ctx->buflen = len;
}

void hw_sha256_final(hw_sha256_ctx *ctx, uint8_t out[32]) {
  const uint64_t bits = ctx->total * 8;
  ctx->buf[ctx->buflen++] = 0x80;
  if (ctx->buflen > 56) {
    memset(ctx->buf + ctx->buflen, 0, 64 - ctx->buflen);
    ctx->compress(ctx->state, ctx->buf, 1);
    ctx->buflen = 0;
  }
  memset(ctx->buf + ctx->buflen, 0, 56 - ctx->buflen);
  store_be32(ctx->buf + 56, (uint32_t)(bits >> 32));
  store_be32(ctx->buf + 60, (uint32_t)bits);
  ctx->compress(ctx->state, ctx->buf, 1);
  for (int i = 0; i < 8; i++) store_be32(out + 4 * i, ctx->state[i]);
}

/* Second pass shared by both sha256d sizes: one padded block holding the 32-byte digest. */
static void sha256_of_state(hw_sha256_compress_fn compress, const uint32_t first[8], uint8_t out[32]) {
  uint8_t block[64] = {0};
  for (int i = 0; i < 8; i++) store_be32(block + 4 * i, first[i]);
  block[32] = 0x80;
  block[62] = 0x01; /* 256 bits */
  uint32_t state[8];
  memcpy(state, hw_sha256_iv, sizeof state);
  compress(state, block, 1);
  for (int i = 0; i < 8; i++) store_be32(out + 4 * i, state[i]);
}

void hw_sha256d_80(hw_sha256_compress_fn compress, const uint8_t in[80], uint8_t out[32]) {
  uint32_t state[8];
  memcpy(state, hw_sha256_iv, sizeof state);
  compress(state, in, 1);
  uint8_t tail[64] = {0};
  memcpy(tail, in + 64, 16);
  tail[16] = 0x80;
  tail[62] = 0x02; /* 640 bits */
  tail[63] = 0x80;
  compress(state, tail, 1);
  sha256_of_state(compress, state, out);
}

void hw_sha256d_64(hw_sha256_compress_fn compress, const uint8_t in[64], uint8_t out[32]) {
  static const uint8_t pad[64] = {0x80, [62] = 0x02}; /* 512 bits */
  uint32_t state[8];
  memcpy(state, hw_sha256_iv, sizeof state);
  compress(state, in, 1);
  compress(state, pad, 1);
  sha256_of_state(compress, state, out);
}
