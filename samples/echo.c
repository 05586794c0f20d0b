/*
 * echo.c - sends the request body back, and describes the request in headers.
 *
 *   curl --data-binary @file http://127.0.0.1:8080/scripts/echo.dll/some/path?x=1
 *
 * Shows how an extension reads a request body of any size with bounded memory:
 *
 *   - the server hands over the first ecb->cbAvailable bytes up front, in
 *     ecb->lpbData (IIS calls this the "read-ahead");
 *   - ecb->cbTotalBytes is the whole body size (Content-Length), or 0xFFFFFFFF
 *     when it is unknown (a chunked upload);
 *   - the rest is pulled with ReadClient, which fills a buffer and reports how
 *     many bytes it got; it reports 0 bytes at the end of the body.
 *
 * Each piece is written straight back with WriteClient through one fixed 64 KiB
 * buffer, so a 10 GB upload uses the same memory as a 10 byte one.
 *
 * Response: 200, Content-Type: application/octet-stream, the body echoed byte
 * for byte, Content-Length = cbTotalBytes when known (none when chunked), and:
 *
 *   X-Echo-Total: <cbTotalBytes, decimal; 4294967295 when unknown>
 *   X-Echo-Available: <cbAvailable>
 *   X-Echo-Method: <lpszMethod>
 *   X-Echo-Query: <lpszQueryString, raw>
 *   X-Echo-PathInfo: <lpszPathInfo>
 *   X-Echo-PathTranslated: <lpszPathTranslated>
 *   X-Echo-ContentType: <lpszContentType>
 *   X-Echo-Version: <dwVersion as 0x%08X, e.g. 0x00060000>
 *   X-Echo-ConnId-Nonzero: <1 when ConnID != NULL>
 *   X-Echo-Null-Fields: <"none", or the ECB string fields that were NULL>
 *
 * The string fields of the ECB are never NULL: an absent query string is "",
 * not NULL (the same for path info and content type). Many real extensions rely
 * on that, so this sample reports any NULL it sees in X-Echo-Null-Fields (and
 * prints it as an empty value) instead of crashing. Control characters in the
 * values (e.g. a decoded "%0D%0A" in the path info) are replaced by '?', so a
 * request can never inject its own response headers.
 *
 * If ReadClient fails (client gone) or the body ends before cbTotalBytes, the
 * extension stops, explains why in ecb->lpszLogData (the server's request log)
 * and returns HSE_STATUS_ERROR, so the server aborts the response instead of
 * ending it cleanly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isapi.h"

#define ECHO_BUFFER_SIZE (64 * 1024)
#define ECHO_UNKNOWN_LENGTH 0xFFFFFFFFUL /* cbTotalBytes of a chunked upload */

ISAPI_EXPORT BOOL WINAPI GetExtensionVersion(HSE_VERSION_INFO *pVer) {
  pVer->dwExtensionVersion = HSE_VERSION;
  snprintf(pVer->lpszExtensionDesc, sizeof pVer->lpszExtensionDesc, "%s", "echo sample");
  return TRUE;
}

/* Appends "Name: value\r\n" to buf (which has room, see HttpExtensionProc);
 * control characters in the value become '?'. NULL prints as empty. */
static size_t add_header(char *buf, size_t len, const char *name, const char *value) {
  size_t n = strlen(name);
  memcpy(buf + len, name, n);
  len += n;
  buf[len++] = ':';
  buf[len++] = ' ';
  for (; value != NULL && *value != '\0'; value++) {
    unsigned char c = (unsigned char)*value;
    buf[len++] = (c < 0x20 && c != '\t') || c == 0x7f ? '?' : (char)c;
  }
  buf[len++] = '\r';
  buf[len++] = '\n';
  buf[len] = '\0';
  return len;
}

/* Adds `name` to the comma-separated list in `list` when `value` is NULL. */
static void note_null(char *list, size_t size, const char *name, const char *value) {
  if (value != NULL) return;
  if (list[0] != '\0') strncat(list, ",", size - strlen(list) - 1);
  strncat(list, name, size - strlen(list) - 1);
}

/* WriteClient of a whole buffer; FALSE when the client is gone. */
static BOOL write_all(EXTENSION_CONTROL_BLOCK *ecb, void *data, DWORD len) {
  while (len > 0) {
    DWORD sent = len;
    if (!ecb->WriteClient(ecb->ConnID, data, &sent, HSE_IO_SYNC)) return FALSE;
    if (sent == 0 || sent > len) return FALSE; /* no progress: treat as an error */
    data = (char *)data + sent;
    len -= sent;
  }
  return TRUE;
}

ISAPI_EXPORT DWORD WINAPI HttpExtensionProc(EXTENSION_CONTROL_BLOCK *ecb) {
  const unsigned long total = (unsigned long)ecb->cbTotalBytes;
  const int length_known = (total != ECHO_UNKNOWN_LENGTH);
  unsigned long echoed = 0;
  char nulls[128] = "";
  char number[64];
  char *head;
  size_t head_size, head_len = 0;
  HSE_SEND_HEADER_EX_INFO hdr;
  unsigned char *buffer;

  /* ---- 1. Response head ------------------------------------------------ */
  note_null(nulls, sizeof nulls, "lpszMethod", ecb->lpszMethod);
  note_null(nulls, sizeof nulls, "lpszQueryString", ecb->lpszQueryString);
  note_null(nulls, sizeof nulls, "lpszPathInfo", ecb->lpszPathInfo);
  note_null(nulls, sizeof nulls, "lpszPathTranslated", ecb->lpszPathTranslated);
  note_null(nulls, sizeof nulls, "lpszContentType", ecb->lpszContentType);

  /* The values can be long (query strings, paths): size the buffer to fit. */
  head_size = 1024;
  head_size += ecb->lpszMethod ? strlen(ecb->lpszMethod) : 0;
  head_size += ecb->lpszQueryString ? strlen(ecb->lpszQueryString) : 0;
  head_size += ecb->lpszPathInfo ? strlen(ecb->lpszPathInfo) : 0;
  head_size += ecb->lpszPathTranslated ? strlen(ecb->lpszPathTranslated) : 0;
  head_size += ecb->lpszContentType ? strlen(ecb->lpszContentType) : 0;
  head = (char *)malloc(head_size);
  buffer = (unsigned char *)malloc(ECHO_BUFFER_SIZE);
  if (head == NULL || buffer == NULL) {
    free(head);
    free(buffer);
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "echo: out of memory");
    return HSE_STATUS_ERROR;
  }

  head_len = add_header(head, head_len, "Content-Type", "application/octet-stream");
  if (length_known) {
    snprintf(number, sizeof number, "%lu", total);
    head_len = add_header(head, head_len, "Content-Length", number);
  }
  snprintf(number, sizeof number, "%lu", total);
  head_len = add_header(head, head_len, "X-Echo-Total", number);
  snprintf(number, sizeof number, "%lu", (unsigned long)ecb->cbAvailable);
  head_len = add_header(head, head_len, "X-Echo-Available", number);
  head_len = add_header(head, head_len, "X-Echo-Method", ecb->lpszMethod);
  head_len = add_header(head, head_len, "X-Echo-Query", ecb->lpszQueryString);
  head_len = add_header(head, head_len, "X-Echo-PathInfo", ecb->lpszPathInfo);
  head_len = add_header(head, head_len, "X-Echo-PathTranslated", ecb->lpszPathTranslated);
  head_len = add_header(head, head_len, "X-Echo-ContentType", ecb->lpszContentType);
  snprintf(number, sizeof number, "0x%08lX", (unsigned long)ecb->dwVersion);
  head_len = add_header(head, head_len, "X-Echo-Version", number);
  head_len = add_header(head, head_len, "X-Echo-ConnId-Nonzero", ecb->ConnID != NULL ? "1" : "0");
  head_len = add_header(head, head_len, "X-Echo-Null-Fields", nulls[0] ? nulls : "none");
  memcpy(head + head_len, "\r\n", 3); /* the empty line that ends the head */
  head_len += 2;

  hdr.pszStatus = "200 OK";
  hdr.cchStatus = (DWORD)strlen(hdr.pszStatus);
  hdr.pszHeader = head;
  hdr.cchHeader = (DWORD)head_len;
  hdr.fKeepConn = length_known ? TRUE : FALSE;
  if (!ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_SEND_RESPONSE_HEADER_EX, &hdr, NULL, NULL)) {
    free(head);
    free(buffer);
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "echo: sending headers failed");
    return HSE_STATUS_ERROR;
  }
  free(head);

  /* ---- 2. The part of the body the server already read for us ----------- */
  if (ecb->cbAvailable > 0) {
    if (!write_all(ecb, ecb->lpbData, ecb->cbAvailable)) goto write_failed;
    echoed += (unsigned long)ecb->cbAvailable;
  }

  /* ---- 3. The rest, 64 KiB at a time ------------------------------------ */
  for (;;) {
    DWORD got;
    if (length_known) {
      unsigned long left;
      if (echoed >= total) break; /* got all of it */
      left = total - echoed;
      got = (DWORD)(left < ECHO_BUFFER_SIZE ? left : ECHO_BUFFER_SIZE);
    } else {
      got = ECHO_BUFFER_SIZE;
    }

    if (!ecb->ReadClient(ecb->ConnID, buffer, &got)) {
      unsigned long err = (unsigned long)GetLastError(); /* read it right away */
      snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "echo: ReadClient failed err=%lu after %lu bytes", err,
               echoed);
      free(buffer);
      return HSE_STATUS_ERROR;
    }
    if (got == 0) {
      if (!length_known) break; /* end of a chunked body */
      snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "echo: body ended after %lu of %lu bytes", echoed,
               total);
      free(buffer);
      return HSE_STATUS_ERROR;
    }
    if (!write_all(ecb, buffer, got)) goto write_failed;
    echoed += (unsigned long)got;
  }

  free(buffer);
  snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "echo: %lu bytes", echoed);
  return HSE_STATUS_SUCCESS;

write_failed:
  free(buffer);
  snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "echo: WriteClient failed after %lu bytes", echoed);
  return HSE_STATUS_ERROR;
}

ISAPI_EXPORT BOOL WINAPI TerminateExtension(DWORD dwFlags) {
  (void)dwFlags;
  return TRUE;
}
