/*
 * rawheaders.c - writes its own response head with WriteClient.
 *
 * Some old extensions never call HSE_REQ_SEND_RESPONSE_HEADER[_EX]: they
 * WriteClient the whole response, head included, the way a CGI program prints
 * to stdout. This sample reproduces the usual variants; ?mode= picks one:
 *
 *   mode=statusline (default)  one write: "HTTP/1.1 201 Created\r\n
 *                              Content-Type: text/plain\r\nX-Raw: yes\r\n\r\n
 *                              raw body\n"
 *   mode=status                one write, CGI style: "Status: 202 Accepted\r\n
 *                              Content-Type: text/plain\r\n\r\naccepted\n"
 *   mode=split                 the statusline response in three writes: the head
 *                              cut in the middle of a header line, then the rest
 *                              of the head, then the body;
 *                              with &at=N: two writes, split after byte N
 *                              (N is kept within 1 .. 70, the response is 71 bytes)
 *   mode=plain                 "just a body\n" and no head at all
 *   mode=chunked               a head with "Transfer-Encoding: chunked", then the
 *                              extension's own chunk framing, one write per chunk;
 *                              decoded body: "hello, chunked world\n"
 *
 * Any other mode gets a raw "HTTP/1.1 400 Bad Request" listing the modes.
 */
#include <stdio.h>
#include <string.h>

#include "isapi.h"
#include "common/query.h"

/* The statusline response, reused by mode=split. */
static const char statusline_response[] =
    "HTTP/1.1 201 Created\r\n"
    "Content-Type: text/plain\r\n"
    "X-Raw: yes\r\n"
    "\r\n"
    "raw body\n";

ISAPI_EXPORT BOOL WINAPI GetExtensionVersion(HSE_VERSION_INFO *pVer) {
  pVer->dwExtensionVersion = HSE_VERSION;
  snprintf(pVer->lpszExtensionDesc, sizeof pVer->lpszExtensionDesc, "%s", "rawheaders sample");
  return TRUE;
}

/* One WriteClient call with `len` bytes of `data`. */
static BOOL write_bytes(EXTENSION_CONTROL_BLOCK *ecb, const char *data, size_t len) {
  DWORD n = (DWORD)len;
  return ecb->WriteClient(ecb->ConnID, (LPVOID)data, &n, HSE_IO_SYNC);
}

static BOOL write_text(EXTENSION_CONTROL_BLOCK *ecb, const char *text) {
  return write_bytes(ecb, text, strlen(text));
}

ISAPI_EXPORT DWORD WINAPI HttpExtensionProc(EXTENSION_CONTROL_BLOCK *ecb) {
  const char *qs = ecb->lpszQueryString;
  char mode[32];
  BOOL ok;

  if (!query_get(qs, "mode", mode, sizeof mode) || mode[0] == '\0') strcpy(mode, "statusline");

  if (strcmp(mode, "statusline") == 0) {
    ok = write_text(ecb, statusline_response);

  } else if (strcmp(mode, "status") == 0) {
    ok = write_text(ecb,
                    "Status: 202 Accepted\r\n"
                    "Content-Type: text/plain\r\n"
                    "\r\n"
                    "accepted\n");

  } else if (strcmp(mode, "split") == 0) {
    const size_t total = sizeof statusline_response - 1;
    const size_t head_end = (size_t)(strstr(statusline_response, "\r\n\r\n") - statusline_response) + 4;
    const size_t mid_header = (size_t)(strstr(statusline_response, "text/plain") - statusline_response) + 4;
    unsigned long at = query_get_ulong(qs, "at", ~0UL);
    if (at == ~0UL) {
      /* "HTTP/1.1 201 Created\r\nContent-Type: text" | "/plain\r\nX-Raw: yes\r\n\r\n" | "raw body\n" */
      ok = write_bytes(ecb, statusline_response, mid_header) &&
           write_bytes(ecb, statusline_response + mid_header, head_end - mid_header) &&
           write_bytes(ecb, statusline_response + head_end, total - head_end);
    } else {
      /* Always two non-empty writes: N is kept within 1 .. total - 1. */
      size_t cut = at < 1 ? 1 : at > total - 1 ? total - 1 : (size_t)at;
      ok = write_bytes(ecb, statusline_response, cut) &&
           write_bytes(ecb, statusline_response + cut, total - cut);
    }

  } else if (strcmp(mode, "plain") == 0) {
    ok = write_text(ecb, "just a body\n");

  } else if (strcmp(mode, "chunked") == 0) {
    /* Each chunk is "<size in hex>\r\n<data>\r\n"; a 0-size chunk ends the body.
     * The extension owns the framing here, so the server must pass it through
     * untouched (and must not add a Content-Length or chunk it again). */
    ok = write_text(ecb,
                    "HTTP/1.1 200 OK\r\n"
                    "Content-Type: text/plain\r\n"
                    "Transfer-Encoding: chunked\r\n"
                    "\r\n") &&
         write_text(ecb, "5\r\nhello\r\n") &&
         write_text(ecb, "2\r\n, \r\n") &&
         write_text(ecb, "D\r\nchunked world\r\n") &&
         write_text(ecb, "1\r\n\n\r\n") &&
         write_text(ecb, "0\r\n\r\n");

  } else {
    ok = write_text(ecb,
                    "HTTP/1.1 400 Bad Request\r\n"
                    "Content-Type: text/plain\r\n"
                    "\r\n"
                    "unknown mode; use mode=statusline|status|split|plain|chunked\n");
  }

  return ok ? HSE_STATUS_SUCCESS : HSE_STATUS_ERROR;
}
