/*
 * stream.c - writes a large response in pieces and notices when the client leaves.
 *
 *   GET /scripts/stream.dll?bytes=10000000&chunk=65536
 *
 *   bytes=N     body size in bytes (default 1048576, at most 4294967295)
 *   chunk=K     bytes per WriteClient call (default 65536, 1 .. 16777216)
 *   nolength=1  no Content-Length: the server has to chunk or close
 *   pause=MS    sleep MS ms between writes (default 0, at most 60000), to keep a
 *               stream open long enough to test disconnects and back-pressure
 *   flush=1     send every write at once (HSE_REQ_SET_FLUSH_FLAG). Without it,
 *               IIS 7 and later hold the output until the response ends or the
 *               response buffer limit is reached (Microsoft KB 946086), and so
 *               does the bridge: a slow stream reaches the client in bursts.
 *
 * The body is the alphabet repeated: byte i is 'a' + (i % 26), so a client can
 * check every byte without knowing the chunk size.
 *
 * WriteClient returns FALSE once the client has gone away. A well-behaved
 * extension then stops writing and returns HSE_STATUS_ERROR, as this one does.
 * Either way ecb->lpszLogData (the server's request log) records how far it
 * got: "stream ok writes=<n> bytes=<b>" or
 * "stream aborted writes=<n> bytes=<b> err=<GetLastError()>", where writes
 * counts the successful WriteClient calls.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isapi.h"
#include "common/portable.h" /* sleep_ms */
#include "common/query.h"

#define STREAM_DEFAULT_BYTES (1024UL * 1024UL)
#define STREAM_DEFAULT_CHUNK 65536UL
#define STREAM_MAX_CHUNK (16UL * 1024UL * 1024UL)
#define STREAM_MAX_BYTES 0xFFFFFFFFUL

ISAPI_EXPORT BOOL WINAPI GetExtensionVersion(HSE_VERSION_INFO *pVer) {
  pVer->dwExtensionVersion = HSE_VERSION;
  snprintf(pVer->lpszExtensionDesc, sizeof pVer->lpszExtensionDesc, "%s", "stream sample");
  return TRUE;
}

ISAPI_EXPORT DWORD WINAPI HttpExtensionProc(EXTENSION_CONTROL_BLOCK *ecb) {
  const char *qs = ecb->lpszQueryString;
  unsigned long total = query_get_ulong(qs, "bytes", STREAM_DEFAULT_BYTES);
  unsigned long chunk = query_get_ulong(qs, "chunk", STREAM_DEFAULT_CHUNK);
  unsigned long pause = query_get_ulong(qs, "pause", 0);
  int send_length = !query_is(qs, "nolength", "1");
  int flush_each = query_is(qs, "flush", "1");
  unsigned long sent = 0, writes = 0, i;
  char headers[128];
  HSE_SEND_HEADER_EX_INFO hdr;
  char *pattern;

  if (total > STREAM_MAX_BYTES) total = STREAM_MAX_BYTES;
  if (pause > 60000) pause = 60000;
  if (chunk < 1) chunk = 1;
  if (chunk > STREAM_MAX_CHUNK) chunk = STREAM_MAX_CHUNK;

  /* One chunk of alphabet plus 26 spare bytes: a write that starts at body
   * offset `sent` starts at pattern + sent % 26. */
  pattern = (char *)malloc(chunk + 26);
  if (pattern == NULL) {
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "stream: out of memory");
    return HSE_STATUS_ERROR;
  }
  for (i = 0; i < chunk + 26; i++) pattern[i] = (char)('a' + i % 26);

  /* lpvBuffer is the BOOL itself. A server before IIS 7 fails it: it flushes anyway. */
  if (flush_each) ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_SET_FLUSH_FLAG, (LPVOID)(intptr_t)TRUE, NULL, NULL);

  if (send_length) {
    snprintf(headers, sizeof headers, "Content-Type: application/octet-stream\r\nContent-Length: %lu\r\n\r\n",
             total);
  } else {
    snprintf(headers, sizeof headers, "Content-Type: application/octet-stream\r\n\r\n");
  }
  hdr.pszStatus = "200 OK";
  hdr.cchStatus = (DWORD)strlen(hdr.pszStatus);
  hdr.pszHeader = headers;
  hdr.cchHeader = (DWORD)strlen(headers);
  hdr.fKeepConn = send_length ? TRUE : FALSE;
  if (!ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_SEND_RESPONSE_HEADER_EX, &hdr, NULL, NULL)) {
    free(pattern);
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "stream aborted writes=0 bytes=0 (headers)");
    return HSE_STATUS_ERROR;
  }

  while (sent < total) {
    unsigned long left = total - sent;
    DWORD n = (DWORD)(left < chunk ? left : chunk);

    if (!ecb->WriteClient(ecb->ConnID, pattern + sent % 26, &n, HSE_IO_SYNC)) {
      unsigned long err = (unsigned long)GetLastError();
      free(pattern);
      snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "stream aborted writes=%lu bytes=%lu err=%lu", writes,
               sent, err);
      return HSE_STATUS_ERROR; /* the client is gone: stop writing */
    }
    if (n == 0) break; /* a server that accepts nothing: avoid looping forever */
    writes++;
    sent += (unsigned long)n; /* n now holds the bytes actually sent */
    if (pause > 0 && sent < total) sleep_ms(pause);
  }

  free(pattern);
  snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "stream %s writes=%lu bytes=%lu",
           sent == total ? "ok" : "aborted", writes, sent);
  return sent == total ? HSE_STATUS_SUCCESS : HSE_STATUS_ERROR;
}

ISAPI_EXPORT BOOL WINAPI TerminateExtension(DWORD dwFlags) {
  (void)dwFlags;
  return TRUE;
}
