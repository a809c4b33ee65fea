/* Node-API surface of the chain hashing kernels. Argument checking beyond types and lengths
 * lives in the TypeScript wrapper (src/hash.ts); this layer only refuses what would be
 * unsafe to run. */
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scrypt.h"
#include "sha256.h"

/* Bumped whenever the exported functions change, so a stale build is refused by the loader. */
#define HW_ABI_VERSION 2

#define CHECK(env, call)                                     \
  do {                                                       \
    if ((call) != napi_ok) {                                 \
      throw_pending_or((env), "Node-API call failed");       \
      return NULL;                                           \
    }                                                        \
  } while (0)

static void throw_pending_or(napi_env env, const char *message) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, NULL, message);
}

/* Reads argument `index` as bytes from any Uint8Array (Buffer included). */
static bool get_bytes(napi_env env, napi_value value, const char *name, uint8_t **data, size_t *len) {
  bool is_typed = false;
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void *ptr = NULL;
  napi_value arraybuffer;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, value, &type, &length, &ptr, &arraybuffer, &offset) != napi_ok ||
      type != napi_uint8_array) {
    char message[96];
    snprintf(message, sizeof message, "%s must be a Buffer or Uint8Array", name);
    napi_throw_type_error(env, NULL, message);
    return false;
  }
  *data = (uint8_t *)ptr;
  *len = length;
  return true;
}

static bool get_kernel_upto(napi_env env, napi_value value, int max, int *kernel) {
  int32_t k = 0;
  if (napi_get_value_int32(env, value, &k) != napi_ok || k < HW_KERNEL_AUTO || k > max) {
    napi_throw_range_error(env, NULL,
                           max == HW_KERNEL_SSE2 ? "kernel must be 0 (auto), 1 (scalar), 2 (simd) or 3 (sse2)"
                                                 : "kernel must be 0 (auto), 1 (scalar) or 2 (simd)");
    return false;
  }
  *kernel = k;
  return true;
}

static bool get_kernel(napi_env env, napi_value value, int *kernel) {
  return get_kernel_upto(env, value, HW_KERNEL_SIMD, kernel);
}

static bool get_scrypt_kernel(napi_env env, napi_value value, int *kernel) {
  return get_kernel_upto(env, value, HW_KERNEL_SSE2, kernel);
}

static bool require_multiple(napi_env env, size_t len, size_t unit, const char *message) {
  if (len % unit == 0) return true;
  napi_throw_range_error(env, NULL, message);
  return false;
}

static hw_sha256_compress_fn sha_kernel(napi_env env, int kernel) {
  hw_sha256_compress_fn f = hw_sha256_compressor(kernel);
  if (f == NULL) napi_throw_error(env, NULL, "the SHA-NI kernel is not available on this CPU");
  return f;
}

/* sha256dHeaders(headers: Uint8Array(n*80), kernel: number): Buffer(n*32) */
static napi_value sha256d_headers(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  uint8_t *in, *out;
  size_t len;
  int kernel;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_bytes(env, argv[0], "headers", &in, &len) || !get_kernel(env, argv[1], &kernel)) return NULL;
  if (!require_multiple(env, len, 80, "headers length must be a multiple of 80")) return NULL;
  hw_sha256_compress_fn f = sha_kernel(env, kernel);
  if (f == NULL) return NULL;
  const size_t n = len / 80;
  CHECK(env, napi_create_buffer(env, n * 32, (void **)&out, &result));
  for (size_t i = 0; i < n; i++) hw_sha256d_80(f, in + i * 80, out + i * 32);
  return result;
}

/* sha256dMerkleRoot(coinbaseHash: Uint8Array(32), branch: Uint8Array(k*32), kernel): Buffer(32) */
static napi_value sha256d_merkle_root(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  uint8_t *coinbase, *branch, *out;
  size_t coinbase_len, branch_len;
  int kernel;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_bytes(env, argv[0], "coinbaseHash", &coinbase, &coinbase_len) ||
      !get_bytes(env, argv[1], "branch", &branch, &branch_len) || !get_kernel(env, argv[2], &kernel))
    return NULL;
  if (coinbase_len != 32) {
    napi_throw_range_error(env, NULL, "coinbaseHash must be 32 bytes");
    return NULL;
  }
  if (!require_multiple(env, branch_len, 32, "branch length must be a multiple of 32")) return NULL;
  hw_sha256_compress_fn f = sha_kernel(env, kernel);
  if (f == NULL) return NULL;
  uint8_t pair[64];
  memcpy(pair, coinbase, 32);
  for (size_t i = 0; i < branch_len / 32; i++) {
    memcpy(pair + 32, branch + i * 32, 32);
    hw_sha256d_64(f, pair, pair);
  }
  CHECK(env, napi_create_buffer_copy(env, 32, pair, (void **)&out, &result));
  return result;
}

static bool scrypt_status_ok(napi_env env, int status) {
  if (status == HW_SCRYPT_OK) return true;
  napi_throw_error(env, NULL,
                   status == HW_SCRYPT_NO_KERNEL ? "the SSE2 scrypt kernel is not available on this build"
                                                 : "out of memory for the scrypt scratchpad");
  return false;
}

/* scryptHeadersSync(headers: Uint8Array(n*80), kernel): Buffer(n*32) */
static napi_value scrypt_headers_sync(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  uint8_t *in, *out;
  size_t len;
  int kernel;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_bytes(env, argv[0], "headers", &in, &len) || !get_scrypt_kernel(env, argv[1], &kernel)) return NULL;
  if (!require_multiple(env, len, 80, "headers length must be a multiple of 80")) return NULL;
  const size_t n = len / 80;
  CHECK(env, napi_create_buffer(env, n * 32, (void **)&out, &result));
  if (!scrypt_status_ok(env, hw_scrypt_headers(in, n, out, kernel))) return NULL;
  return result;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  uint8_t *headers; /* private copy: the caller may reuse its buffer while we run */
  uint8_t *digests;
  size_t n;
  int kernel;
  int status;
} scrypt_job;

static void scrypt_job_free(scrypt_job *job) {
  free(job->headers);
  free(job->digests);
  free(job);
}

static void scrypt_job_execute(napi_env env, void *data) {
  (void)env;
  scrypt_job *job = data;
  job->status = hw_scrypt_headers(job->headers, job->n, job->digests, job->kernel);
}

static void scrypt_job_complete(napi_env env, napi_status status, void *data) {
  scrypt_job *job = data;
  napi_value value = NULL;
  if (status == napi_ok && job->status == HW_SCRYPT_OK &&
      napi_create_buffer_copy(env, job->n * 32, job->digests, NULL, &value) == napi_ok) {
    napi_resolve_deferred(env, job->deferred, value);
  } else {
    napi_value message, error;
    const char *text = status == napi_cancelled              ? "scrypt job cancelled"
                       : job->status == HW_SCRYPT_NO_KERNEL ? "the SSE2 scrypt kernel is not available"
                       : job->status == HW_SCRYPT_NO_MEMORY ? "out of memory for the scrypt scratchpad"
                                                             : "could not return the scrypt digests";
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &error);
    napi_reject_deferred(env, job->deferred, error);
  }
  napi_delete_async_work(env, job->work);
  scrypt_job_free(job);
}

/* scryptHeaders(headers: Uint8Array(n*80), kernel): Promise<Buffer(n*32)>, run on the libuv pool. */
static napi_value scrypt_headers(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], promise, name;
  uint8_t *in;
  size_t len;
  int kernel;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_bytes(env, argv[0], "headers", &in, &len) || !get_scrypt_kernel(env, argv[1], &kernel)) return NULL;
  if (!require_multiple(env, len, 80, "headers length must be a multiple of 80")) return NULL;
  if ((kernel == HW_KERNEL_SIMD || kernel == HW_KERNEL_SSE2) && !hw_scrypt_has_sse2()) {
    napi_throw_error(env, NULL, "the SSE2 scrypt kernel is not available on this build");
    return NULL;
  }
  scrypt_job *job = calloc(1, sizeof *job);
  if (job != NULL) {
    job->n = len / 80;
    job->kernel = kernel;
    job->headers = malloc(len ? len : 1);
    job->digests = malloc(job->n ? job->n * 32 : 1);
  }
  if (job == NULL || job->headers == NULL || job->digests == NULL) {
    if (job != NULL) scrypt_job_free(job);
    napi_throw_error(env, NULL, "out of memory for the scrypt job");
    return NULL;
  }
  if (len) memcpy(job->headers, in, len);
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "hashwire:scryptHeaders", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, scrypt_job_execute, scrypt_job_complete, job, &job->work) !=
          napi_ok) {
    scrypt_job_free(job);
    throw_pending_or(env, "could not create the scrypt job");
    return NULL;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_async_work(env, job->work);
    scrypt_job_free(job);
    throw_pending_or(env, "could not queue the scrypt job");
    return NULL;
  }
  return promise;
}

/* features(): { shaNi, sse2, avx2 } — which SIMD kernels `kernel = 2` can use here. */
static napi_value features(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result, sha_ni, sse2, avx2;
  CHECK(env, napi_create_object(env, &result));
  CHECK(env, napi_get_boolean(env, hw_sha256_has_shani(), &sha_ni));
  CHECK(env, napi_get_boolean(env, hw_scrypt_has_sse2(), &sse2));
  CHECK(env, napi_get_boolean(env, hw_scrypt_has_avx2(), &avx2));
  CHECK(env, napi_set_named_property(env, result, "shaNi", sha_ni));
  CHECK(env, napi_set_named_property(env, result, "sse2", sse2));
  CHECK(env, napi_set_named_property(env, result, "avx2", avx2));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value abi;
  napi_property_descriptor props[] = {
      {"sha256dHeaders", NULL, sha256d_headers, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sha256dMerkleRoot", NULL, sha256d_merkle_root, NULL, NULL, NULL, napi_enumerable, NULL},
      {"scryptHeadersSync", NULL, scrypt_headers_sync, NULL, NULL, NULL, napi_enumerable, NULL},
      {"scryptHeaders", NULL, scrypt_headers, NULL, NULL, NULL, napi_enumerable, NULL},
      {"features", NULL, features, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  CHECK(env, napi_create_uint32(env, HW_ABI_VERSION, &abi));
  CHECK(env, napi_set_named_property(env, exports, "abiVersion", abi));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
