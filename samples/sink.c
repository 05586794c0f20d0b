/*
 * sink.c - reads a whole request body with ReadClient and answers its size.
 *
 *   POST /scripts/sink.dll   (any body, Content-Length or chunked)
 *     ->  200 OK, text/plain, "<bytes read>\n"
 *
 *   buffer=K   bytes per ReadClient call (default 65536, 1 .. 16777216)
 *
 * It counts the lpbData read-ahead (cbAvailable bytes) and then calls
 * ReadClient until cbTotalBytes have arrived (or, for a chunked upload where
 * cbTotalBytes is 0xFFFFFFFF, until ReadClient returns 0 bytes). Nothing is
 * written back until the body is over, so an upload benchmark measures only
 * the request direction. lpszLogData gets "sink <bytes> reads=<n>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isapi.h"
#include "common/query.h"

#define SINK_DEFAULT_BUFFER 65536UL
#define SINK_MAX_BUFFER (16UL * 1024UL * 1024UL)

ISAPI_EXPORT BOOL WINAPI GetExtensionVersion(HSE_VERSION_INFO *pVer) {
  pVer->dwExtensionVersion = HSE_VERSION;
  snprintf(pVer->lpszExtensionDesc, sizeof pVer->lpszExtensionDesc, "%s", "sink sample");
  return TRUE;
}

ISAPI_EXPORT DWORD WINAPI HttpExtensionProc(EXTENSION_CONTROL_BLOCK *ecb) {
  unsigned long size = query_get_ulong(ecb->lpszQueryString, "buffer", SINK_DEFAULT_BUFFER);
  int chunked = ecb->cbTotalBytes == 0xFFFFFFFFUL;
  unsigned long total = (unsigned long)ecb->cbTotalBytes;
  unsigned long got_all = (unsigned long)ecb->cbAvailable;
  unsigned long reads = 0;
  char body[32], headers[128];
  HSE_SEND_HEADER_EX_INFO hdr;
  DWORD body_len;
  char *buffer;

  if (size < 1) size = 1;
  if (size > SINK_MAX_BUFFER) size = SINK_MAX_BUFFER;
  buffer = (char *)malloc(size);
  if (buffer == NULL) {
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "sink: out of memory");
    return HSE_STATUS_ERROR;
  }

  while (chunked || got_all < total) {
    DWORD got = (DWORD)size;
    if (!chunked && total - got_all < size) got = (DWORD)(total - got_all);
    if (!ecb->ReadClient(ecb->ConnID, buffer, &got)) {
      unsigned long err = (unsigned long)GetLastError();
      snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "sink: ReadClient failed err=%lu after %lu bytes", err, got_all);
      free(buffer);
      return HSE_STATUS_ERROR;
    }
    reads++;
    if (got == 0) break; /* end of a chunked body, or the client sent less than it declared */
    got_all += (unsigned long)got;
  }
  free(buffer);

  body_len = (DWORD)snprintf(body, sizeof body, "%lu\n", got_all);
  snprintf(headers, sizeof headers, "Content-Type: text/plain\r\nContent-Length: %lu\r\n\r\n", (unsigned long)body_len);
  hdr.pszStatus = "200 OK";
  hdr.cchStatus = (DWORD)strlen(hdr.pszStatus);
  hdr.pszHeader = headers;
  hdr.cchHeader = (DWORD)strlen(headers);
  hdr.fKeepConn = TRUE;
  if (!ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_SEND_RESPONSE_HEADER_EX, &hdr, NULL, NULL)) {
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "sink: sending headers failed");
    return HSE_STATUS_ERROR;
  }
  if (!ecb->WriteClient(ecb->ConnID, body, &body_len, HSE_IO_SYNC)) {
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "sink: WriteClient failed");
    return HSE_STATUS_ERROR;
  }
  snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "sink %lu reads=%lu", got_all, reads);
  return HSE_STATUS_SUCCESS;
}

ISAPI_EXPORT BOOL WINAPI TerminateExtension(DWORD dwFlags) {
  (void)dwFlags;
  return TRUE;
}
