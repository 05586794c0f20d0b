/*
 * isapi_shim - the four ECB entry points isapi-bridge hands to extensions.
 *
 * The request logic lives in JavaScript (koffi callbacks). What JavaScript cannot
 * do is set the last-error value of the thread that called it: when an extension
 * calls GetServerVariable from one of its own threads, koffi runs the JS callback
 * on the bridge thread that owns the request, so SetLastError()/errno from there
 * would land on the wrong thread. These entry points call the JS side with one
 * extra out-parameter for the Win32 error code and then set it on the CALLING
 * thread, as IIS does (GetLastError on Windows, errno elsewhere).
 *
 * Each bridge thread registers its four callbacks under an owner slot; a ConnID
 * carries its owner slot in bits 40..47, so any thread's call is routed to the
 * JS thread that owns that request.
 */
#if defined(__linux__)
#define _GNU_SOURCE /* SCHED_BATCH */
#endif
#include "../include/isapi.h"

#include <stdint.h>
#include <string.h>
#if defined(__linux__)
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#endif

typedef BOOL (*host_gsv_fn)(HCONN, LPSTR, LPVOID, LPDWORD, LPDWORD err);
typedef BOOL (*host_wc_fn)(HCONN, LPVOID, LPDWORD, DWORD, LPDWORD err);
typedef BOOL (*host_rc_fn)(HCONN, LPVOID, LPDWORD, LPDWORD err);
typedef BOOL (*host_ssf_fn)(HCONN, DWORD, LPVOID, LPDWORD, LPDWORD, LPDWORD err);
typedef VOID (*completion_fn)(EXTENSION_CONTROL_BLOCK *, PVOID, DWORD, DWORD);

#define SHIM_OWNER_SHIFT 40
#define SHIM_MAX_OWNERS 256

static struct {
  host_gsv_fn gsv;
  host_wc_fn wc;
  host_rc_fn rc;
  host_ssf_fn ssf;
} owners[SHIM_MAX_OWNERS];

static unsigned owner_of(HCONN conn) { return (unsigned)(((uintptr_t)conn >> SHIM_OWNER_SHIFT) & 0xFF); }

/* Only a failing call sets the last error, as with Win32 APIs. */
static BOOL finish(BOOL ok, DWORD err) {
  if (!ok) SetLastError(err);
  return ok;
}

static BOOL WINAPI shim_GetServerVariable(HCONN conn, LPSTR name, LPVOID buf, LPDWORD size) {
  DWORD err = ERROR_INVALID_PARAMETER;
  host_gsv_fn fn = owners[owner_of(conn)].gsv;
  if (!fn) return finish(FALSE, ERROR_INVALID_PARAMETER);
  BOOL ok = fn(conn, name, buf, size, &err); /* before reading err: argument order is unspecified in C */
  return finish(ok, err);
}

static BOOL WINAPI shim_WriteClient(HCONN conn, LPVOID buf, LPDWORD bytes, DWORD flags) {
  DWORD err = ERROR_INVALID_PARAMETER;
  host_wc_fn fn = owners[owner_of(conn)].wc;
  if (!fn) return finish(FALSE, ERROR_INVALID_PARAMETER);
  BOOL ok = fn(conn, buf, bytes, flags, &err); /* before reading err: argument order is unspecified in C */
  return finish(ok, err);
}

static BOOL WINAPI shim_ReadClient(HCONN conn, LPVOID buf, LPDWORD size) {
  DWORD err = ERROR_INVALID_PARAMETER;
  host_rc_fn fn = owners[owner_of(conn)].rc;
  if (!fn) return finish(FALSE, ERROR_INVALID_PARAMETER);
  BOOL ok = fn(conn, buf, size, &err); /* before reading err: argument order is unspecified in C */
  return finish(ok, err);
}

static BOOL WINAPI shim_ServerSupportFunction(HCONN conn, DWORD req, LPVOID buf, LPDWORD size, LPDWORD type) {
  DWORD err = ERROR_INVALID_PARAMETER;
  host_ssf_fn fn = owners[owner_of(conn)].ssf;
  if (!fn) return finish(FALSE, ERROR_INVALID_PARAMETER);
  BOOL ok = fn(conn, req, buf, size, type, &err); /* before reading err: argument order is unspecified in C */
  return finish(ok, err);
}

/* Where the owner's number sits in a ConnID: the bridge threads build their ConnIDs with it. */
ISAPI_EXPORT unsigned shim_owner_shift(void) { return SHIM_OWNER_SHIFT; }

/* Registration happens once per bridge thread, before any ECB of that thread exists. */
ISAPI_EXPORT int shim_register(unsigned owner, host_gsv_fn gsv, host_wc_fn wc, host_rc_fn rc, host_ssf_fn ssf) {
  if (owner >= SHIM_MAX_OWNERS) return 0;
  owners[owner].gsv = gsv;
  owners[owner].wc = wc;
  owners[owner].rc = rc;
  owners[owner].ssf = ssf;
  return 1;
}

/* The addresses to store in EXTENSION_CONTROL_BLOCK: 0 GSV, 1 WriteClient, 2 ReadClient, 3 SSF. */
ISAPI_EXPORT void *shim_entry(int which) {
  switch (which) {
  case 0: return (void *)shim_GetServerVariable;
  case 1: return (void *)shim_WriteClient;
  case 2: return (void *)shim_ReadClient;
  case 3: return (void *)shim_ServerSupportFunction;
  default: return 0;
  }
}

/* Length of a NUL-terminated string, bounded: lets JS read extension strings as raw bytes. */
ISAPI_EXPORT size_t shim_strnlen(const char *s, size_t max) {
  size_t n = 0;
  if (!s) return 0;
  while (n < max && s[n]) n++;
  return n;
}

/* Length in characters of a NUL-terminated UTF-16 string (WCHAR*), bounded. */
ISAPI_EXPORT size_t shim_wcsnlen(const uint16_t *s, size_t max) {
  size_t n = 0;
  if (!s) return 0;
  while (n < max && s[n]) n++;
  return n;
}

/* memcpy for the bridge's reads and writes of extension memory: koffi.view would make
 * an external ArrayBuffer (and a GC finalizer) for each one. */
ISAPI_EXPORT void shim_copy(void *dst, const void *src, size_t n) {
  if (n) memcpy(dst, src, n);
}

/*
 * Moves every thread of this process to SCHED_BATCH, Linux's policy for throughput
 * work: a woken batch thread does not preempt the thread that woke it, so a request
 * handed from thread to thread (socket, extension thread, socket) costs a context
 * switch per hand-over no more. Threads started later inherit the policy from the
 * thread that starts them. Returns how many threads were moved, or -errno; 0 where
 * there is no such policy.
 */
ISAPI_EXPORT int shim_sched_batch(void) {
#if defined(__linux__)
  struct sched_param param;
  struct dirent *entry;
  int moved = 0;
  DIR *tasks = opendir("/proc/self/task");
  if (tasks == NULL) return -errno;
  memset(&param, 0, sizeof param);
  while ((entry = readdir(tasks)) != NULL) {
    pid_t tid = (pid_t)strtol(entry->d_name, NULL, 10);
    if (tid <= 0) continue;
    if (sched_setscheduler(tid, SCHED_BATCH, &param) == 0) {
      moved++;
    } else if (errno != ESRCH) { /* ESRCH: the thread ended meanwhile */
      int err = errno;
      closedir(tasks);
      return -err;
    }
  }
  closedir(tasks);
  return moved;
#else
  return 0;
#endif
}

/* Calls an extension's PFN_HSE_IO_COMPLETION with IIS's argument order (ecb, ctx, cbIO, dwError). */
ISAPI_EXPORT void shim_complete(completion_fn fn, EXTENSION_CONTROL_BLOCK *ecb, PVOID ctx, DWORD cb_io, DWORD error) {
  fn(ecb, ctx, cb_io, error);
}
