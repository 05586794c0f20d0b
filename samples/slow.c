/*
 * slow.c - takes its time: sleeps inside HttpExtensionProc, then answers.
 *
 *   GET /scripts/slow.dll?ms=250   ->   200, text/plain, "slept 250\n"
 *
 * ?ms= is the delay in milliseconds (default 0, at most 3600000 = 1 hour).
 * The sleep blocks the thread that called HttpExtensionProc, the way a slow
 * database query in a legacy extension does; the gateway's concurrency limits
 * and queueing are tested with it.
 *
 * ?thread=1 adds the OS thread that ran HttpExtensionProc, to show which of the
 * bridge's extension threads took the request:
 *
 *   GET /scripts/slow.dll?ms=0&thread=1   ->   "slept 0\nthread 12345\n"
 */
#include <stdio.h>
#include <string.h>

#include "isapi.h"
#include "common/portable.h" /* sleep_ms, thread_id */
#include "common/query.h"

#define SLOW_MAX_MS 3600000UL

ISAPI_EXPORT BOOL WINAPI GetExtensionVersion(HSE_VERSION_INFO *pVer) {
  pVer->dwExtensionVersion = HSE_VERSION;
  snprintf(pVer->lpszExtensionDesc, sizeof pVer->lpszExtensionDesc, "%s", "slow sample");
  return TRUE;
}

ISAPI_EXPORT DWORD WINAPI HttpExtensionProc(EXTENSION_CONTROL_BLOCK *ecb) {
  unsigned long ms = query_get_ulong(ecb->lpszQueryString, "ms", 0);
  int show_thread = query_get_ulong(ecb->lpszQueryString, "thread", 0) != 0;
  char body[64];
  char headers[128];
  HSE_SEND_HEADER_EX_INFO hdr;
  DWORD len;

  if (ms > SLOW_MAX_MS) ms = SLOW_MAX_MS;
  if (ms > 0) sleep_ms(ms); /* ms=0 answers at once: nanosleep(0) would still give up the CPU */

  if (show_thread) {
    snprintf(body, sizeof body, "slept %lu\nthread %lu\n", ms, thread_id());
  } else {
    snprintf(body, sizeof body, "slept %lu\n", ms);
  }
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
    return HSE_STATUS_ERROR;
  }
  return HSE_STATUS_SUCCESS;
}

ISAPI_EXPORT BOOL WINAPI TerminateExtension(DWORD dwFlags) {
  (void)dwFlags;
  return TRUE;
}
