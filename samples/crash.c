/*
 * crash.c - misbehaves on request, the way a buggy legacy extension does, so
 * the gateway's supervision can be seen (and tested) working.
 *
 *   GET /scripts/crash.dll               ->  segmentation fault (the default)
 *   GET /scripts/crash.dll?mode=segv     ->  writes through a NULL pointer
 *   GET /scripts/crash.dll?mode=abort    ->  abort()  (SIGABRT, like a failed assert)
 *   GET /scripts/crash.dll?mode=exit     ->  exit(3)  (a library that "handles" errors by exiting)
 *   GET /scripts/crash.dll?mode=ok       ->  200, text/plain, "ok\n"
 *   GET /scripts/crash.dll?mode=leak&mb=64  ->  allocates and touches 64 MiB it never
 *                                            frees (at most 1024), then "leaked 64\n"
 *
 * Any of the first three takes down the whole hosting process, exactly as it
 * takes down an IIS worker process: the gateway answers 502 for the requests
 * that were in flight on that bridge and restarts it; other bridges carry on.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isapi.h"
#include "common/query.h"

#define CRASH_MAX_LEAK_MB 1024UL

/* Leaked blocks stay reachable from here, so the compiler cannot drop the allocation. */
static void *volatile leaked_head = NULL;

ISAPI_EXPORT BOOL WINAPI GetExtensionVersion(HSE_VERSION_INFO *pVer) {
  pVer->dwExtensionVersion = HSE_VERSION;
  snprintf(pVer->lpszExtensionDesc, sizeof pVer->lpszExtensionDesc, "%s", "crash sample");
  return TRUE;
}

static DWORD answer(EXTENSION_CONTROL_BLOCK *ecb, const char *body) {
  char headers[128];
  HSE_SEND_HEADER_EX_INFO hdr;
  DWORD len = (DWORD)strlen(body);

  snprintf(headers, sizeof headers, "Content-Type: text/plain\r\nContent-Length: %lu\r\n\r\n",
           (unsigned long)len);
  hdr.pszStatus = "200 OK";
  hdr.cchStatus = (DWORD)strlen(hdr.pszStatus);
  hdr.pszHeader = headers;
  hdr.cchHeader = (DWORD)strlen(headers);
  hdr.fKeepConn = TRUE;
  if (!ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_SEND_RESPONSE_HEADER_EX, &hdr, NULL, NULL) ||
      !ecb->WriteClient(ecb->ConnID, (LPVOID)body, &len, HSE_IO_SYNC)) {
    return HSE_STATUS_ERROR;
  }
  return HSE_STATUS_SUCCESS;
}

ISAPI_EXPORT DWORD WINAPI HttpExtensionProc(EXTENSION_CONTROL_BLOCK *ecb) {
  const char *qs = ecb->lpszQueryString;
  char body[64];

  if (query_is(qs, "mode", "ok")) return answer(ecb, "ok\n");
  if (query_is(qs, "mode", "leak")) {
    unsigned long mb = query_get_ulong(qs, "mb", 16);
    char *block;
    if (mb > CRASH_MAX_LEAK_MB) mb = CRASH_MAX_LEAK_MB;
    block = (char *)malloc(mb * 1024UL * 1024UL);
    if (block == NULL) return HSE_STATUS_ERROR;
    memset(block, 0x5a, mb * 1024UL * 1024UL); /* touch every page: resident, not just reserved */
    *(void **)block = leaked_head;
    leaked_head = block;
    snprintf(body, sizeof body, "leaked %lu\n", mb);
    return answer(ecb, body); /* block is never freed, on purpose */
  }
  if (query_is(qs, "mode", "abort")) abort();
  if (query_is(qs, "mode", "exit")) exit(3);

  /* segv (and anything unknown): a write through a NULL pointer the compiler cannot remove. */
  {
    volatile int *volatile nowhere = NULL;
    *nowhere = 42;
  }
  return HSE_STATUS_ERROR; /* not reached */
}

ISAPI_EXPORT BOOL WINAPI TerminateExtension(DWORD dwFlags) {
  (void)dwFlags;
  return TRUE;
}
