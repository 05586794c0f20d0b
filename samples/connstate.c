/*
 * connstate.c - the smaller ServerSupportFunction requests: connection state,
 * logging, health, custom errors, URL mapping and child requests.
 *
 *   GET /scripts/connstate.dll?mode=<mode>[&...]
 *
 * Unless noted, answers are 200 OK, text/plain, with a Content-Length.
 *
 *   mode=isconnected      HSE_REQ_IS_CONNECTED (lpvBuffer = BOOL*):
 *                         "connected=<0|1>\n" (or "connected=0 ret=0 err=<e>\n")
 *   mode=close            writes "closing\n" (Content-Length 8), then
 *                         HSE_REQ_CLOSE_CONNECTION: the server closes the
 *                         connection after the response.
 *                         lpszLogData "close ret=<r> err=<e>"
 *   mode=flush[&pause=MS] HSE_REQ_SET_FLUSH_FLAG (lpvBuffer = (LPVOID)TRUE: send
 *                         every WriteClient at once, no buffering), then three
 *                         writes "flush-1\n" "flush-2\n" "flush-3\n", MS ms apart
 *                         (default 0, max 60000). lpszLogData "flush ret=<r> err=<e>"
 *   mode=applog&text=X    HSE_APPEND_LOG_PARAMETER with X (appended to the
 *                         request's log entry): "ok\n"
 *   mode=unhealthy&reason=X
 *                         HSE_REQ_REPORT_UNHEALTHY (lpvBuffer = reason): the
 *                         server should recycle the worker process. "reported\n"
 *   mode=customerror[&status=500%20Server%20Error][&sub=13]
 *                         HSE_REQ_SEND_CUSTOM_ERROR with HSE_CUSTOM_ERROR_INFO
 *                         {status, sub, fAsync FALSE}: the server sends its own
 *                         error page for that status; nothing else is written.
 *                         lpszLogData "customerror ret=<r> err=<e>"
 *   mode=mapex&url=/scripts/x.txt
 *                         HSE_REQ_MAP_URL_TO_PATH_EX (lpvBuffer = URL,
 *                         lpdwDataType = HSE_URL_MAPEX_INFO*):
 *                         "ret=<r> err=<e>\npath=<lpszPath>\nflags=0x<hex>\n"
 *                         "cchMatchingPath=<n>\ncchMatchingURL=<n>\n"
 *   mode=sendurl&url=/scripts/hello.dll
 *                         HSE_REQ_SEND_URL (lpvBuffer = URL): the server answers
 *                         with that URL's response. lpszLogData "sendurl ret=<r> err=<e>"
 *   mode=execurl&url=/scripts/hello.dll
 *                         HSE_REQ_EXEC_URL with HSE_EXEC_URL_INFO {pszUrl}: runs
 *                         the URL as a child request whose response becomes ours.
 *                         Asynchronous: needs HSE_REQ_IO_COMPLETION, returns
 *                         HSE_STATUS_PENDING; the completion calls
 *                         HSE_REQ_GET_EXEC_URL_STATUS, writes nothing more, logs
 *                         "exec status=<code> sub=<sub> err=<win32>" and ends the
 *                         session.
 *   mode=unsupported-token
 *                         HSE_REQ_GET_IMPERSONATION_TOKEN (lpvBuffer = HANDLE*):
 *                         "ret=<r> err=<e>\n" (a server without Windows tokens
 *                         fails it)
 *
 * When one of these calls fails where the mode would otherwise write nothing
 * (customerror, sendurl, execurl), the answer is 500, "<mode> ret=0 err=<e>\n".
 * No mode, or an unknown one: 400 with this list.
 * Status text from the query goes through a control-character filter, so it
 * cannot add header lines.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isapi.h"
#include "common/portable.h" /* sleep_ms */
#include "common/query.h"

#define TEXT_MAX 1024

static const char usage[] =
    "connstate modes:\n"
    "  mode=isconnected\n"
    "  mode=close\n"
    "  mode=flush[&pause=MS]\n"
    "  mode=applog&text=X\n"
    "  mode=unhealthy&reason=X\n"
    "  mode=customerror[&status=500%20Server%20Error][&sub=13]\n"
    "  mode=mapex&url=/scripts/x.txt\n"
    "  mode=mapunicode&url=/scripts/x.txt\n"
    "  mode=mapunicodeex&url=/scripts/x.txt\n"
    "  mode=normalize&url=/a/./b/../c\n"
    "  mode=sendurl&url=/scripts/hello.dll\n"
    "  mode=execurl&url=/scripts/hello.dll[&unicode=1]\n"
    "  mode=unsupported-token\n";

/* mode=execurl: the child request's parameters live until its completion. */
struct exec_request {
  char url[TEXT_MAX];
  HSE_EXEC_URL_INFO info;
  WCHAR wide_url[TEXT_MAX];           /* &unicode=1: HSE_REQ_EXEC_UNICODE_URL */
  HSE_EXEC_UNICODE_URL_INFO wide_info;
};

ISAPI_EXPORT BOOL WINAPI GetExtensionVersion(HSE_VERSION_INFO *pVer) {
  pVer->dwExtensionVersion = HSE_VERSION;
  snprintf(pVer->lpszExtensionDesc, sizeof pVer->lpszExtensionDesc, "%s", "connstate sample");
  return TRUE;
}

/* Replaces control characters, so that query text cannot add header lines. */
static void no_controls(char *s) {
  for (; *s != '\0'; s++) {
    if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = ' ';
  }
}

/* Sends the head; content_length < 0 sends none. */
static BOOL send_head(EXTENSION_CONTROL_BLOCK *ecb, const char *status, long content_length) {
  char headers[128];
  HSE_SEND_HEADER_EX_INFO hdr;

  if (content_length >= 0) {
    snprintf(headers, sizeof headers, "Content-Type: text/plain\r\nContent-Length: %lu\r\n\r\n",
             (unsigned long)content_length);
  } else {
    snprintf(headers, sizeof headers, "Content-Type: text/plain\r\n\r\n");
  }
  hdr.pszStatus = status;
  hdr.cchStatus = (DWORD)strlen(status);
  hdr.pszHeader = headers;
  hdr.cchHeader = (DWORD)strlen(headers);
  hdr.fKeepConn = content_length >= 0 ? TRUE : FALSE;
  return ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_SEND_RESPONSE_HEADER_EX, &hdr, NULL, NULL);
}

static BOOL write_text(EXTENSION_CONTROL_BLOCK *ecb, const char *text) {
  DWORD n = (DWORD)strlen(text);
  return ecb->WriteClient(ecb->ConnID, (LPVOID)text, &n, HSE_IO_SYNC);
}

/* A complete response with a Content-Length. */
static DWORD answer(EXTENSION_CONTROL_BLOCK *ecb, const char *status, const char *body) {
  if (!send_head(ecb, status, (long)strlen(body)) || !write_text(ecb, body)) return HSE_STATUS_ERROR;
  return HSE_STATUS_SUCCESS;
}

/* The 500 answer of a mode whose call failed before anything was sent. */
static DWORD failed(EXTENSION_CONTROL_BLOCK *ecb, const char *mode, unsigned long err) {
  char body[96];
  snprintf(body, sizeof body, "%s ret=0 err=%lu\n", mode, err);
  answer(ecb, "500 Internal Server Error", body);
  return HSE_STATUS_ERROR;
}

/* mode=execurl: the child request has finished. */
static VOID WINAPI on_exec_done(EXTENSION_CONTROL_BLOCK *ecb, PVOID context, DWORD cbIO, DWORD dwError) {
  HSE_EXEC_URL_STATUS st;
  DWORD status = HSE_STATUS_SUCCESS;
  (void)cbIO;

  memset(&st, 0, sizeof st);
  if (!ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_GET_EXEC_URL_STATUS, &st, NULL, NULL)) {
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "exec status=? err=%lu (GET_EXEC_URL_STATUS) io=%lu",
             (unsigned long)GetLastError(), (unsigned long)dwError);
    status = HSE_STATUS_ERROR;
  } else {
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "exec status=%u sub=%u err=%lu", (unsigned)st.uHttpStatusCode,
             (unsigned)st.uHttpSubStatus, (unsigned long)st.dwWin32Error);
  }
  if (dwError != 0) status = HSE_STATUS_ERROR;
  free(context);
  ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_DONE_WITH_SESSION, &status, NULL, NULL);
}

static DWORD run_execurl(EXTENSION_CONTROL_BLOCK *ecb, const char *qs) {
  struct exec_request *x = (struct exec_request *)calloc(1, sizeof *x);
  unsigned long err;

  if (x == NULL) return HSE_STATUS_ERROR;
  if (!query_get(qs, "url", x->url, sizeof x->url) || x->url[0] == '\0') {
    free(x);
    return answer(ecb, "400 Bad Request", "execurl: url= is required\n");
  }
  /* Everything else NULL/0: same method, headers, user and entity as ours. */
  x->info.pszUrl = x->url;
  if (query_is(qs, "unicode", "1")) {
    size_t i;
    for (i = 0; x->url[i] && i < TEXT_MAX - 1; i++) x->wide_url[i] = (WCHAR)(unsigned char)x->url[i];
    x->wide_url[i] = 0;
    x->wide_info.pszUrl = x->wide_url;
  }

  if (!ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_IO_COMPLETION, (LPVOID)on_exec_done, NULL, (LPDWORD)x)) {
    err = (unsigned long)GetLastError();
    free(x);
    return failed(ecb, "execurl", err);
  }
  if (x->wide_info.pszUrl ? ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_EXEC_UNICODE_URL, &x->wide_info, NULL, NULL)
                          : ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_EXEC_URL, &x->info, NULL, NULL)) {
    return HSE_STATUS_PENDING; /* the completion frees x and ends the session */
  }
  err = (unsigned long)GetLastError();
  free(x);
  snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "execurl ret=0 err=%lu", err);
  return failed(ecb, "execurl", err);
}

ISAPI_EXPORT DWORD WINAPI HttpExtensionProc(EXTENSION_CONTROL_BLOCK *ecb) {
  const char *qs = ecb->lpszQueryString;
  char text[TEXT_MAX], body[TEXT_MAX + 256];
  BOOL ret;
  unsigned long err;

  if (query_is(qs, "mode", "isconnected")) {
    BOOL connected = FALSE;
    SetLastError(0);
    ret = ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_IS_CONNECTED, &connected, NULL, NULL);
    err = ret ? 0 : (unsigned long)GetLastError();
    if (ret) {
      snprintf(body, sizeof body, "connected=%d\n", (int)connected);
    } else {
      snprintf(body, sizeof body, "connected=%d ret=0 err=%lu\n", (int)connected, err);
    }
    return answer(ecb, "200 OK", body);
  }

  if (query_is(qs, "mode", "close")) {
    DWORD status = answer(ecb, "200 OK", "closing\n");
    SetLastError(0);
    ret = ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_CLOSE_CONNECTION, NULL, NULL, NULL);
    err = ret ? 0 : (unsigned long)GetLastError();
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "close ret=%d err=%lu", (int)ret, err);
    return status;
  }

  if (query_is(qs, "mode", "flush")) {
    unsigned long pause = query_get_ulong(qs, "pause", 0);
    int i;
    if (pause > 60000) pause = 60000;
    SetLastError(0);
    ret = ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_SET_FLUSH_FLAG, (LPVOID)(intptr_t)TRUE, NULL, NULL);
    err = ret ? 0 : (unsigned long)GetLastError();
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "flush ret=%d err=%lu", (int)ret, err);
    if (!send_head(ecb, "200 OK", 3 * 8)) return HSE_STATUS_ERROR;
    for (i = 1; i <= 3; i++) {
      char line[16];
      snprintf(line, sizeof line, "flush-%d\n", i);
      if (!write_text(ecb, line)) return HSE_STATUS_ERROR;
      if (pause > 0 && i < 3) sleep_ms(pause);
    }
    return HSE_STATUS_SUCCESS;
  }

  if (query_is(qs, "mode", "applog")) {
    DWORD len;
    query_get(qs, "text", text, sizeof text);
    len = (DWORD)strlen(text);
    SetLastError(0);
    ret = ecb->ServerSupportFunction(ecb->ConnID, HSE_APPEND_LOG_PARAMETER, text, &len, NULL);
    err = ret ? 0 : (unsigned long)GetLastError();
    if (ret) return answer(ecb, "200 OK", "ok\n");
    snprintf(body, sizeof body, "applog ret=0 err=%lu\n", err);
    return answer(ecb, "200 OK", body);
  }

  if (query_is(qs, "mode", "unhealthy")) {
    query_get(qs, "reason", text, sizeof text);
    SetLastError(0);
    ret = ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_REPORT_UNHEALTHY, text, NULL, NULL);
    err = ret ? 0 : (unsigned long)GetLastError();
    if (ret) return answer(ecb, "200 OK", "reported\n");
    snprintf(body, sizeof body, "unhealthy ret=0 err=%lu\n", err);
    return answer(ecb, "200 OK", body);
  }

  if (query_is(qs, "mode", "customerror")) {
    HSE_CUSTOM_ERROR_INFO ce;
    if (!query_get(qs, "status", text, sizeof text) || text[0] == '\0') strcpy(text, "500 Server Error");
    no_controls(text);
    ce.pszStatus = text;
    ce.uHttpSubError = (USHORT)query_get_ulong(qs, "sub", 13);
    ce.fAsync = FALSE; /* synchronous: the page has been sent when the call returns */
    SetLastError(0);
    ret = ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_SEND_CUSTOM_ERROR, &ce, NULL, NULL);
    err = ret ? 0 : (unsigned long)GetLastError();
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "customerror ret=%d err=%lu", (int)ret, err);
    return ret ? HSE_STATUS_SUCCESS : failed(ecb, "customerror", err);
  }

  if (query_is(qs, "mode", "mapex")) {
    HSE_URL_MAPEX_INFO mi;
    DWORD size;
    memset(&mi, 0, sizeof mi);
    if (!query_get(qs, "url", text, sizeof text) || text[0] == '\0') strcpy(text, "/");
    size = (DWORD)strlen(text) + 1;
    SetLastError(0);
    ret = ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_MAP_URL_TO_PATH_EX, text, &size, (LPDWORD)&mi);
    err = ret ? 0 : (unsigned long)GetLastError();
    mi.lpszPath[sizeof mi.lpszPath - 1] = '\0';
    snprintf(body, sizeof body, "ret=%d err=%lu\npath=%s\nflags=0x%lx\ncchMatchingPath=%lu\ncchMatchingURL=%lu\n",
             (int)ret, err, mi.lpszPath, (unsigned long)mi.dwFlags, (unsigned long)mi.cchMatchingPath,
             (unsigned long)mi.cchMatchingURL);
    return answer(ecb, "200 OK", body);
  }

  if (query_is(qs, "mode", "normalize")) {
    /* HSE_REQ_NORMALIZE_URL canonicalises the URL in place (%XX, "\\", "." and ".."). */
    if (!query_get(qs, "url", text, sizeof text)) strcpy(text, "/");
    SetLastError(0);
    ret = ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_NORMALIZE_URL, text, NULL, NULL);
    err = ret ? 0 : (unsigned long)GetLastError();
    snprintf(body, sizeof body, "ret=%d err=%lu\nurl=%s\n", (int)ret, err, ret ? text : "");
    return answer(ecb, "200 OK", body);
  }

  if (query_is(qs, "mode", "mapunicode")) {
    /* HSE_REQ_MAP_UNICODE_URL_TO_PATH: the same mapping with UTF-16 strings; sizes are in bytes. */
    WCHAR wide[TEXT_MAX];
    DWORD size = sizeof wide;
    size_t i;
    if (!query_get(qs, "url", text, sizeof text) || text[0] == '\0') strcpy(text, "/");
    for (i = 0; text[i] && i < TEXT_MAX - 1; i++) wide[i] = (WCHAR)(unsigned char)text[i];
    wide[i] = 0;
    SetLastError(0);
    ret = ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_MAP_UNICODE_URL_TO_PATH, wide, &size, NULL);
    err = ret ? 0 : (unsigned long)GetLastError();
    /* Back to 8 bits for the answer; anything outside Latin-1 shows as '?'. */
    for (i = 0; ret && wide[i] && i < TEXT_MAX - 1; i++) text[i] = wide[i] < 256 ? (char)wide[i] : '?';
    text[ret ? i : 0] = '\0';
    snprintf(body, sizeof body, "ret=%d err=%lu size=%lu\npath=%s\n", (int)ret, err, (unsigned long)size, text);
    return answer(ecb, "200 OK", body);
  }

  if (query_is(qs, "mode", "mapunicodeex")) {
    /* HSE_REQ_MAP_UNICODE_URL_TO_PATH_EX fills HSE_UNICODE_URL_MAPEX_INFO (a WCHAR path). */
    HSE_UNICODE_URL_MAPEX_INFO mi;
    WCHAR wide[TEXT_MAX];
    size_t i;
    memset(&mi, 0, sizeof mi);
    if (!query_get(qs, "url", text, sizeof text) || text[0] == '\0') strcpy(text, "/");
    for (i = 0; text[i] && i < TEXT_MAX - 1; i++) wide[i] = (WCHAR)(unsigned char)text[i];
    wide[i] = 0;
    SetLastError(0);
    ret = ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_MAP_UNICODE_URL_TO_PATH_EX, wide, NULL, (LPDWORD)&mi);
    err = ret ? 0 : (unsigned long)GetLastError();
    for (i = 0; mi.lpszPath[i] && i < 259; i++) text[i] = mi.lpszPath[i] < 256 ? (char)mi.lpszPath[i] : '?';
    text[i] = '\0';
    snprintf(body, sizeof body, "ret=%d err=%lu\npath=%s\nflags=0x%lx\ncchMatchingURL=%lu\n", (int)ret, err, text,
             (unsigned long)mi.dwFlags, (unsigned long)mi.cchMatchingURL);
    return answer(ecb, "200 OK", body);
  }

  if (query_is(qs, "mode", "sendurl")) {
    DWORD len;
    if (!query_get(qs, "url", text, sizeof text) || text[0] == '\0') {
      return answer(ecb, "400 Bad Request", "sendurl: url= is required\n");
    }
    len = (DWORD)strlen(text);
    SetLastError(0);
    ret = ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_SEND_URL, text, &len, NULL);
    err = ret ? 0 : (unsigned long)GetLastError();
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "sendurl ret=%d err=%lu", (int)ret, err);
    return ret ? HSE_STATUS_SUCCESS : failed(ecb, "sendurl", err);
  }

  if (query_is(qs, "mode", "execurl")) return run_execurl(ecb, qs);

  if (query_is(qs, "mode", "unsupported-token")) {
    HANDLE token = NULL;
    SetLastError(0);
    ret = ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_GET_IMPERSONATION_TOKEN, &token, NULL, NULL);
    err = ret ? 0 : (unsigned long)GetLastError();
    /* On success the token belongs to the server: the extension does not close it. */
    snprintf(body, sizeof body, "ret=%d err=%lu\n", (int)ret, err);
    return answer(ecb, "200 OK", body);
  }

  answer(ecb, "400 Bad Request", usage);
  return HSE_STATUS_SUCCESS;
}

ISAPI_EXPORT BOOL WINAPI TerminateExtension(DWORD dwFlags) {
  (void)dwFlags;
  return TRUE;
}
