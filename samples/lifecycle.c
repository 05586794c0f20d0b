/*
 * lifecycle.c - records when the server loads and unloads the extension.
 *
 * If the environment variable ISAPI_LIFECYCLE_LOG names a file, one line is
 * appended to it for each event:
 *
 *   load               GetExtensionVersion was called
 *   terminate <flags>  TerminateExtension was called; flags in decimal:
 *                      1 = HSE_TERM_ADVISORY_UNLOAD, 2 = HSE_TERM_MUST_UNLOAD
 *
 * HttpExtensionProc answers 200 "ok\n" with the header X-Lifecycle-Loads: the
 * number of times GetExtensionVersion has run in this copy of the library
 * (1 unless the server calls it again without reloading).
 *
 * Tests use it to check that the server calls GetExtensionVersion exactly
 * once per load, and TerminateExtension exactly once before unloading.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isapi.h"

static unsigned long load_count = 0;

/* Appends one line to $ISAPI_LIFECYCLE_LOG, if set. Opening and closing the
 * file each time keeps every line on disk even if the process dies later. */
static void log_event(const char *line) {
  const char *path = getenv("ISAPI_LIFECYCLE_LOG");
  FILE *f;
  if (path == NULL || path[0] == '\0') return;
  f = fopen(path, "a");
  if (f == NULL) return;
  fprintf(f, "%s\n", line);
  fclose(f);
}

ISAPI_EXPORT BOOL WINAPI GetExtensionVersion(HSE_VERSION_INFO *pVer) {
  pVer->dwExtensionVersion = HSE_VERSION;
  snprintf(pVer->lpszExtensionDesc, sizeof pVer->lpszExtensionDesc, "%s", "lifecycle sample");
  load_count++;
  log_event("load");
  return TRUE;
}

ISAPI_EXPORT DWORD WINAPI HttpExtensionProc(EXTENSION_CONTROL_BLOCK *ecb) {
  char body[] = "ok\n";
  char headers[128];
  HSE_SEND_HEADER_EX_INFO hdr;
  DWORD len = (DWORD)strlen(body);

  snprintf(headers, sizeof headers, "Content-Type: text/plain\r\nContent-Length: %lu\r\nX-Lifecycle-Loads: %lu\r\n\r\n",
           (unsigned long)len, load_count);
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
  char line[64];
  snprintf(line, sizeof line, "terminate %lu", (unsigned long)dwFlags);
  log_event(line);
  return TRUE;
}
