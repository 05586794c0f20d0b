/*
 * Maps a bridge's response spool (bridge/spool.ts) into the gateway, read-only, as
 * an external ArrayBuffer: the gateway then writes body bytes to clients straight
 * from the bridge's memory (gateway/spool-mapping.ts). The mapping ends when V8
 * collects the ArrayBuffer, that is after the last view of it, and so the last
 * client write from it, is gone.
 *
 * A Node-API addon of our own rather than koffi: koffi loaded in the gateway made
 * V8 run twice as many full collections under load (bench/RESULTS.md, session 9).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <node_api.h>

static void unmap(napi_env env, void *data, void *hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint);
}

static napi_value throw_error(napi_env env, const char *code, const char *message) {
  napi_throw_error(env, code, message);
  return NULL;
}

/* map(fd, size): the first `size` bytes of the file open at `fd`, shared, read-only. */
static napi_value map(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  int64_t size;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int64(env, argv[1], &size) != napi_ok) {
    return throw_error(env, "ERR_INVALID_ARG_TYPE", "map(fd, size) takes two numbers");
  }
  if (fd < 0 || size <= 0) return throw_error(env, "ERR_OUT_OF_RANGE", "map(fd, size) needs an open fd and a positive size");
  void *at = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
  if (at == MAP_FAILED) return throw_error(env, "ERR_SPOOL_MAP", strerror(errno));
  napi_value buffer;
  if (napi_create_external_arraybuffer(env, at, (size_t)size, unmap, (void *)(uintptr_t)size, &buffer) != napi_ok) {
    munmap(at, (size_t)size);
    return throw_error(env, "ERR_SPOOL_MAP", "napi_create_external_arraybuffer failed");
  }
  return buffer;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "map", NAPI_AUTO_LENGTH, map, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "map", fn) != napi_ok) return NULL;
  return exports;
}
