/*
 * waitthread.c - HttpExtensionProc that waits for its own thread to answer.
 *
 * Some extensions hand each request to a thread (or a pool) of their own and
 * block in HttpExtensionProc until that thread has written the response, then
 * return HSE_STATUS_SUCCESS. Under IIS that works because ECB callbacks may be
 * made from any thread at any time. On an isapi-gateway bridge it needs the
 * app setting `relayCallbacks: true` (see README): otherwise the bridge thread
 * running HttpExtensionProc is the one that would serve the other thread's
 * callbacks, and it is busy waiting.
 *
 * Query:
 *   ?wait=MS   how long HttpExtensionProc waits for the thread (default 10000);
 *              if it gives up, it returns HSE_STATUS_ERROR and says so in
 *              lpszLogData ("waitthread: gave up after MS ms").
 *
 * The thread answers "answered by another thread\n" (with Content-Length).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isapi.h"
#include "common/portable.h" /* sleep_ms, counter_t, THREAD_PROC, start_thread */
#include "common/query.h"

struct job {
  EXTENSION_CONTROL_BLOCK *ecb;
  counter_t done; /* 1 once the thread has written the response */
  counter_t refs; /* the job is freed by whichever of the two lets go last */
};

static void release(struct job *job) {
  if (counter_add(&job->refs, -1) == 0) free(job);
}

ISAPI_EXPORT BOOL WINAPI GetExtensionVersion(HSE_VERSION_INFO *pVer) {
  pVer->dwExtensionVersion = HSE_VERSION;
  snprintf(pVer->lpszExtensionDesc, sizeof pVer->lpszExtensionDesc, "%s", "waitthread sample");
  return TRUE;
}

THREAD_PROC(answer, arg) {
  struct job *job = (struct job *)arg;
  EXTENSION_CONTROL_BLOCK *ecb = job->ecb;
  static const char body[] = "answered by another thread\n";
  char headers[128];
  HSE_SEND_HEADER_EX_INFO hdr;
  DWORD len = (DWORD)(sizeof body - 1);

  snprintf(headers, sizeof headers, "Content-Type: text/plain\r\nContent-Length: %lu\r\n\r\n", (unsigned long)len);
  memset(&hdr, 0, sizeof hdr);
  hdr.pszStatus = "200 OK";
  hdr.cchStatus = (DWORD)strlen(hdr.pszStatus);
  hdr.pszHeader = headers;
  hdr.cchHeader = (DWORD)strlen(headers);
  hdr.fKeepConn = TRUE;
  /* Callbacks from this thread, while HttpExtensionProc is still waiting below. */
  if (ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_SEND_RESPONSE_HEADER_EX, &hdr, NULL, NULL)) {
    ecb->WriteClient(ecb->ConnID, (LPVOID)body, &len, HSE_IO_SYNC);
  }
  counter_add(&job->done, 1);
  release(job);
  THREAD_RETURN;
}

ISAPI_EXPORT DWORD WINAPI HttpExtensionProc(EXTENSION_CONTROL_BLOCK *ecb) {
  unsigned long wait_ms = query_get_ulong(ecb->lpszQueryString, "wait", 10000);
  unsigned long waited = 0;
  struct job *job = (struct job *)calloc(1, sizeof *job);

  if (job == NULL) return HSE_STATUS_ERROR;
  job->ecb = ecb;
  job->refs = 2;
  if (!start_thread(answer, job)) {
    free(job);
    return HSE_STATUS_ERROR;
  }
  while (counter_add(&job->done, 0) == 0 && waited < wait_ms) {
    sleep_ms(5);
    waited += 5;
  }
  if (counter_add(&job->done, 0) == 0) {
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "waitthread: gave up after %lu ms", wait_ms);
    release(job);
    return HSE_STATUS_ERROR;
  }
  release(job);
  return HSE_STATUS_SUCCESS;
}

ISAPI_EXPORT BOOL WINAPI TerminateExtension(DWORD dwFlags) {
  (void)dwFlags;
  return TRUE;
}
