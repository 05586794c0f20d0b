/*
 * status.c - status codes, errors, redirects and other ServerSupportFunction calls.
 *
 * ?mode= picks what to do (numbers are decimal, strings URL-decoded):
 *
 *   mode=status&code=404&reason=Not%20Found
 *        HSE_REQ_SEND_RESPONSE_HEADER with status string "404 Not Found"
 *        ("404" alone when reason is absent); body "status 404 Not Found\n"
 *   mode=dwstatus&code=418
 *        sets ecb->dwHttpStatusCode = 418, then HSE_REQ_SEND_RESPONSE_HEADER
 *        with a NULL status string; body "dwstatus 418\n"
 *   mode=both&code=404&reason=...&dw=299
 *        sets ecb->dwHttpStatusCode = dw AND sends the status string built from
 *        code/reason; body "both status=<string> dw=<dw>\n"
 *   mode=error
 *        returns HSE_STATUS_ERROR before any output
 *   mode=error-after-output
 *        sends a 200 head (no Content-Length) and "partial body\n", then returns
 *        HSE_STATUS_ERROR: the server should abort the response, not end it cleanly
 *   mode=redirect&to=/elsewhere
 *        HSE_REQ_SEND_URL_REDIRECT_RESP to `to` (default "/")
 *   mode=unsupported&code=9999
 *        ServerSupportFunction(code, NULL, NULL, NULL) and a 200 response with
 *        "ssf=<return value> error=<GetLastError()>\n" (87 is expected for an
 *        unknown code: ERROR_INVALID_PARAMETER)
 *   mode=logdata
 *        puts "status-sample logdata" in ecb->lpszLogData; 200 "logdata set\n"
 *   mode=keepconn
 *        HSE_REQ_IS_KEEP_CONN; 200 "keepconn=<BOOL> ssf=<return value>\n"
 *   mode=map&url=/scripts/x.txt[&size=N]
 *        HSE_REQ_MAP_URL_TO_PATH on `url` with a buffer of N bytes (default and
 *        maximum 4096); 200 "map ssf=<ret> error=<err> size=<returned size>\n"
 *        "path=<returned path, or empty when the call failed>\n"
 *
 * Without a mode (or with an unknown one) it answers 200 (400) with this list.
 * Every status-setting mode puts code and reason through a number parse and a
 * control-character filter, so the query cannot inject header lines.
 */
#include <stdio.h>
#include <string.h>

#include "isapi.h"
#include "common/query.h"

#define MAP_BUFFER_SIZE 4096

static const char usage[] =
    "status sample modes: status&code=&reason= | dwstatus&code= | both&code=&reason=&dw= | error |\n"
    "error-after-output | redirect&to= | unsupported&code= | logdata | keepconn | map&url=[&size=]\n";

ISAPI_EXPORT BOOL WINAPI GetExtensionVersion(HSE_VERSION_INFO *pVer) {
  pVer->dwExtensionVersion = HSE_VERSION;
  snprintf(pVer->lpszExtensionDesc, sizeof pVer->lpszExtensionDesc, "%s", "status sample");
  return TRUE;
}

static BOOL write_text(EXTENSION_CONTROL_BLOCK *ecb, const char *text) {
  DWORD len = (DWORD)strlen(text);
  return ecb->WriteClient(ecb->ConnID, (LPVOID)text, &len, HSE_IO_SYNC);
}

/*
 * The classic way to send a response head: HSE_REQ_SEND_RESPONSE_HEADER takes
 * the status string in lpvBuffer (NULL means "use ecb->dwHttpStatusCode", or
 * 200 OK) and the header block, ending with an empty line, disguised as the
 * LPDWORD lpdwDataType parameter. (_EX, see hello.c, is the tidier form.)
 */
static BOOL send_head(EXTENSION_CONTROL_BLOCK *ecb, const char *status) {
  static const char headers[] = "Content-Type: text/plain\r\n\r\n";
  return ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_SEND_RESPONSE_HEADER, (LPVOID)status, NULL,
                                    (LPDWORD)headers);
}

/* A complete text/plain answer with the given status string. */
static DWORD answer(EXTENSION_CONTROL_BLOCK *ecb, const char *status, const char *body) {
  if (!send_head(ecb, status) || !write_text(ecb, body)) return HSE_STATUS_ERROR;
  return HSE_STATUS_SUCCESS;
}

/* Builds "<code> <reason>" (or "<code>") from the query, without control chars. */
static void status_from_query(const char *qs, char *out, size_t size) {
  char reason[128];
  unsigned long code = query_get_ulong(qs, "code", 200);
  char *p;
  if (code > 999) code = 999;
  if (query_get(qs, "reason", reason, sizeof reason) && reason[0] != '\0') {
    for (p = reason; *p != '\0'; p++) {
      if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    }
    snprintf(out, size, "%lu %s", code, reason);
  } else {
    snprintf(out, size, "%lu", code);
  }
}

ISAPI_EXPORT DWORD WINAPI HttpExtensionProc(EXTENSION_CONTROL_BLOCK *ecb) {
  const char *qs = ecb->lpszQueryString;
  char mode[32];
  char status[160];
  char body[MAP_BUFFER_SIZE + 256];

  if (!query_get(qs, "mode", mode, sizeof mode) || mode[0] == '\0') return answer(ecb, "200 OK", usage);

  if (strcmp(mode, "status") == 0) {
    status_from_query(qs, status, sizeof status);
    snprintf(body, sizeof body, "status %s\n", status);
    return answer(ecb, status, body);
  }

  if (strcmp(mode, "dwstatus") == 0) {
    ecb->dwHttpStatusCode = (DWORD)query_get_ulong(qs, "code", 200);
    snprintf(body, sizeof body, "dwstatus %lu\n", (unsigned long)ecb->dwHttpStatusCode);
    return answer(ecb, NULL, body); /* NULL status: the server uses dwHttpStatusCode */
  }

  if (strcmp(mode, "both") == 0) {
    status_from_query(qs, status, sizeof status);
    ecb->dwHttpStatusCode = (DWORD)query_get_ulong(qs, "dw", 200);
    snprintf(body, sizeof body, "both status=%s dw=%lu\n", status, (unsigned long)ecb->dwHttpStatusCode);
    return answer(ecb, status, body);
  }

  if (strcmp(mode, "error") == 0) {
    /* Nothing sent yet: the server answers with its own 500. */
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "status-sample: error before output");
    return HSE_STATUS_ERROR;
  }

  if (strcmp(mode, "error-after-output") == 0) {
    /* The head and part of the body are already on their way; returning
     * HSE_STATUS_ERROR now tells the server the response is broken. */
    if (send_head(ecb, "200 OK")) write_text(ecb, "partial body\n");
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "status-sample: error after output");
    return HSE_STATUS_ERROR;
  }

  if (strcmp(mode, "redirect") == 0) {
    char to[1024];
    DWORD len;
    char *p;
    if (!query_get(qs, "to", to, sizeof to) || to[0] == '\0') strcpy(to, "/");
    for (p = to; *p != '\0'; p++) {
      if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    }
    /* The server sends "302 Object Moved" with Location: <to>. lpdwSize holds
     * the length of the URL. */
    len = (DWORD)strlen(to);
    if (!ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_SEND_URL_REDIRECT_RESP, to, &len, NULL)) {
      return HSE_STATUS_ERROR;
    }
    return HSE_STATUS_SUCCESS;
  }

  if (strcmp(mode, "unsupported") == 0) {
    DWORD code = (DWORD)query_get_ulong(qs, "code", 9999);
    BOOL ret;
    DWORD err;
    SetLastError(0); /* so that what we read below comes from this call */
    ret = ecb->ServerSupportFunction(ecb->ConnID, code, NULL, NULL, NULL);
    err = GetLastError();
    snprintf(body, sizeof body, "ssf=%d error=%lu\n", (int)ret, (unsigned long)err);
    return answer(ecb, "200 OK", body);
  }

  if (strcmp(mode, "logdata") == 0) {
    /* lpszLogData (80 bytes, NUL-terminated) is appended to the request log. */
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "%s", "status-sample logdata");
    return answer(ecb, "200 OK", "logdata set\n");
  }

  if (strcmp(mode, "keepconn") == 0) {
    BOOL keep = FALSE;
    BOOL ret = ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_IS_KEEP_CONN, &keep, NULL, NULL);
    snprintf(body, sizeof body, "keepconn=%d ssf=%d\n", (int)keep, (int)ret);
    return answer(ecb, "200 OK", body);
  }

  if (strcmp(mode, "map") == 0) {
    /* lpvBuffer holds the URL on the way in and the physical path on the way
     * out; *lpdwSize is the buffer size in, the bytes returned out. */
    char path[MAP_BUFFER_SIZE];
    DWORD size = (DWORD)query_get_ulong(qs, "size", MAP_BUFFER_SIZE);
    BOOL ret;
    DWORD err;
    if (size > MAP_BUFFER_SIZE) size = MAP_BUFFER_SIZE;
    if (!query_get(qs, "url", path, sizeof path) || path[0] == '\0') strcpy(path, "/");
    SetLastError(0);
    ret = ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_MAP_URL_TO_PATH, path, &size, NULL);
    err = GetLastError();
    path[MAP_BUFFER_SIZE - 1] = '\0';
    snprintf(body, sizeof body, "map ssf=%d error=%lu size=%lu\npath=%s\n", (int)ret, (unsigned long)err,
             (unsigned long)size, ret ? path : "");
    return answer(ecb, "200 OK", body);
  }

  send_head(ecb, "400 Bad Request");
  write_text(ecb, usage);
  return HSE_STATUS_SUCCESS;
}

ISAPI_EXPORT BOOL WINAPI TerminateExtension(DWORD dwFlags) {
  (void)dwFlags;
  return TRUE;
}
