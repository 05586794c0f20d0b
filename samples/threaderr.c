/*
 * threaderr.c - finishes a request on its own thread (HSE_STATUS_PENDING) and
 * checks that callback error codes land on whichever thread made the call.
 *
 *   GET /scripts/threaderr.dll[?delay=MS]
 *
 * IIS sets the calling thread's last error (GetLastError) when a callback
 * fails. Extensions that answer from worker threads depend on that, so this
 * sample makes the same three failing calls twice, first synchronously on the
 * HttpExtensionProc thread, then on a thread of its own:
 *
 *   gsv-small    GetServerVariable("SERVER_NAME") into a 1-byte buffer
 *                -> ret=0 err=122 (ERROR_INSUFFICIENT_BUFFER), size = bytes needed
 *   gsv-unknown  GetServerVariable("NO_SUCH_VARIABLE_XYZ")
 *                -> ret=0 err=1413 (ERROR_INVALID_INDEX)
 *   ssf-unknown  ServerSupportFunction(9999, NULL, NULL, NULL)
 *                -> ret=0 err=87 (ERROR_INVALID_PARAMETER)
 *
 * The last error is cleared before each call, so err=0 means "not reported".
 * Response (text/plain, with Content-Length), e.g.:
 *
 *   main-gsv-small ret=0 err=122 size=10
 *   main-gsv-unknown ret=0 err=1413
 *   main-ssf-unknown ret=0 err=87
 *   thread-gsv-small ret=0 err=122 size=10
 *   thread-gsv-unknown ret=0 err=1413
 *   thread-ssf-unknown ret=0 err=87
 *   thread-distinct=1
 *
 * How an asynchronous ISAPI request works:
 *   1. HttpExtensionProc hands the ECB to another thread and returns
 *      HSE_STATUS_PENDING right away. It must not wait for that thread: the
 *      server may only be able to serve the thread's callbacks after
 *      HttpExtensionProc has returned.
 *   2. The ECB stays valid until the extension says it is finished; meanwhile
 *      any thread may call GetServerVariable, WriteClient, etc. on it.
 *   3. The extension ends the request with HSE_REQ_DONE_WITH_SESSION, passing a
 *      pointer to an HSE_STATUS_* DWORD. After that the ECB must not be touched.
 *
 * ?delay=MS makes the thread sleep MS milliseconds (at most 60000) before it
 * starts. The default, 0, lets the thread race HttpExtensionProc's return,
 * which a server must handle.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isapi.h"
#include "common/portable.h" /* sleep_ms, start_thread, thread_id, counter_t */
#include "common/query.h"

/* Worker threads still running code of this library (see TerminateExtension). */
static counter_t active_workers = 0;

/* Everything the worker thread needs; it frees this when done. */
struct job {
  EXTENSION_CONTROL_BLOCK *ecb;
  unsigned long delay_ms;
  char main_results[512]; /* the "main-" lines, measured before the thread started */
  unsigned long main_thread; /* thread_id() of the HttpExtensionProc thread */
};

ISAPI_EXPORT BOOL WINAPI GetExtensionVersion(HSE_VERSION_INFO *pVer) {
  pVer->dwExtensionVersion = HSE_VERSION;
  snprintf(pVer->lpszExtensionDesc, sizeof pVer->lpszExtensionDesc, "%s", "threaderr sample");
  return TRUE;
}

/*
 * The three failing calls. Each one: clear the last error, call, and read
 * GetLastError() immediately (on Linux it is errno, which the next library
 * call could overwrite). Appends three lines, prefixed with `who`, to out.
 */
static void run_checks(EXTENSION_CONTROL_BLOCK *ecb, const char *who, char *out, size_t size) {
  char tiny[1];
  DWORD n;
  BOOL r1, r2, r3;
  DWORD e1, e2, e3, size1;

  n = sizeof tiny;
  SetLastError(0);
  r1 = ecb->GetServerVariable(ecb->ConnID, (LPSTR) "SERVER_NAME", tiny, &n);
  e1 = GetLastError();
  size1 = n;

  n = sizeof tiny;
  SetLastError(0);
  r2 = ecb->GetServerVariable(ecb->ConnID, (LPSTR) "NO_SUCH_VARIABLE_XYZ", tiny, &n);
  e2 = GetLastError();

  SetLastError(0);
  r3 = ecb->ServerSupportFunction(ecb->ConnID, 9999, NULL, NULL, NULL);
  e3 = GetLastError();

  snprintf(out + strlen(out), size - strlen(out),
           "%s-gsv-small ret=%d err=%lu size=%lu\n"
           "%s-gsv-unknown ret=%d err=%lu\n"
           "%s-ssf-unknown ret=%d err=%lu\n",
           who, (int)r1, (unsigned long)e1, (unsigned long)size1, who, (int)r2, (unsigned long)e2, who, (int)r3,
           (unsigned long)e3);
}

/* Worker thread: checks again, answers, and ends the session. */
static void finish_request(struct job *job) {
  EXTENSION_CONTROL_BLOCK *ecb = job->ecb;
  char body[1024];
  char headers[128];
  HSE_SEND_HEADER_EX_INFO hdr;
  DWORD len;
  DWORD status = HSE_STATUS_SUCCESS;
  int distinct;

  if (job->delay_ms > 0) sleep_ms(job->delay_ms);

  distinct = thread_id() != job->main_thread;

  snprintf(body, sizeof body, "%s", job->main_results);
  run_checks(ecb, "thread", body, sizeof body);
  snprintf(body + strlen(body), sizeof body - strlen(body), "thread-distinct=%d\n", distinct);
  free(job);

  len = (DWORD)strlen(body);
  snprintf(headers, sizeof headers, "Content-Type: text/plain\r\nContent-Length: %lu\r\n\r\n",
           (unsigned long)len);
  hdr.pszStatus = "200 OK";
  hdr.cchStatus = (DWORD)strlen(hdr.pszStatus);
  hdr.pszHeader = headers;
  hdr.cchHeader = (DWORD)strlen(headers);
  hdr.fKeepConn = TRUE;

  if (!ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_SEND_RESPONSE_HEADER_EX, &hdr, NULL, NULL) ||
      !ecb->WriteClient(ecb->ConnID, body, &len, HSE_IO_SYNC)) {
    status = HSE_STATUS_ERROR;
  }

  /* Last call on this ECB: the request is complete. */
  ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_DONE_WITH_SESSION, &status, NULL, NULL);
}

THREAD_PROC(worker, arg) {
  finish_request((struct job *)arg);
  counter_add(&active_workers, -1);
  THREAD_RETURN;
}

ISAPI_EXPORT DWORD WINAPI HttpExtensionProc(EXTENSION_CONTROL_BLOCK *ecb) {
  struct job *job = (struct job *)calloc(1, sizeof *job);

  if (job == NULL) return HSE_STATUS_ERROR;
  job->ecb = ecb;
  job->delay_ms = query_get_ulong(ecb->lpszQueryString, "delay", 0);
  if (job->delay_ms > 60000) job->delay_ms = 60000;

  /* The same checks, synchronously, before any other thread exists. */
  run_checks(ecb, "main", job->main_results, sizeof job->main_results);

  /* Start a detached thread: nobody waits for it, it ends the request itself. */
  counter_add(&active_workers, 1);
  job->main_thread = thread_id();
  if (!start_thread(worker, job)) {
    counter_add(&active_workers, -1);
    free(job);
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "threaderr: could not start a thread");
    return HSE_STATUS_ERROR;
  }

  /* From here on the worker owns the request (and `job`): do not touch either. */
  return HSE_STATUS_PENDING;
}

/*
 * The server unloads the library after TerminateExtension returns. A worker
 * that has already sent HSE_REQ_DONE_WITH_SESSION may still be executing the
 * last few instructions of worker() in this library, so wait (at most about
 * 5 s) for the workers to leave before agreeing to be unloaded.
 */
ISAPI_EXPORT BOOL WINAPI TerminateExtension(DWORD dwFlags) {
  (void)dwFlags;
  counter_wait_zero(&active_workers, 5000);
  return TRUE;
}
