/*
 * servervars.c - reads server variables the way careful ISAPI code does.
 *
 *   GET /scripts/servervars.dll?names=SERVER_NAME,HTTP_HOST,NOPE
 *   GET /scripts/servervars.dll              (a default list of common ones)
 *
 * GetServerVariable copies a variable's value, NUL-terminated, into a buffer
 * the caller owns. Since the caller cannot know the length in advance, the
 * idiom is to ask twice:
 *
 *   1. size = 0, buffer = NULL: the call fails with GetLastError() ==
 *      ERROR_INSUFFICIENT_BUFFER (122) and sets size to the bytes needed,
 *      terminating NUL included;
 *   2. allocate exactly `size` bytes and call again: it succeeds and copies
 *      the value.
 *
 * A variable the server does not know fails with ERROR_INVALID_INDEX (1413);
 * the documentation also lists ERROR_NO_DATA (232, "the data requested is not
 * available") and ERROR_INVALID_PARAMETER (87, bad handle or arguments).
 *
 * Output (text/plain, one line per fact, in the order asked):
 *
 *   NAME=<value>            the value, escaped: '\\' -> "\\\\", CR -> "\\r",
 *                           LF -> "\\n", other control bytes -> "\\xHH"
 *                           (ALL_HTTP / ALL_RAW are multi-line)
 *   NAME#size=<n>           the size the first call asked for (NUL included)
 *   NAME!error=<code>       a call failed; code is GetLastError() right after it
 *   NAME!size2=<n>          only if the second call reported a different size
 *   NAME!unexpected=<what>  the first call did not behave as documented
 *
 * ?names= is a comma-separated list (URL-decoded, spaces around names ignored).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isapi.h"
#include "common/query.h"

/* What is shown when no ?names= is given: the usual CGI variables plus the
 * IIS-specific ones that legacy extensions tend to read. */
static const char *const default_names[] = {
    "ALL_HTTP",        "ALL_RAW",         "APPL_MD_PATH",      "APPL_PHYSICAL_PATH", "AUTH_TYPE",
    "AUTH_USER",       "CONTENT_LENGTH",  "CONTENT_TYPE",      "GATEWAY_INTERFACE",  "HTTPS",
    "HTTP_ACCEPT",     "HTTP_HOST",       "HTTP_USER_AGENT",   "INSTANCE_ID",        "LOCAL_ADDR",
    "LOGON_USER",      "PATH_INFO",       "PATH_TRANSLATED",   "QUERY_STRING",       "REMOTE_ADDR",
    "REMOTE_HOST",     "REMOTE_PORT",     "REMOTE_USER",       "REQUEST_METHOD",     "SCRIPT_NAME",
    "SERVER_NAME",     "SERVER_PORT",     "SERVER_PORT_SECURE", "SERVER_PROTOCOL",   "SERVER_SOFTWARE",
    "URL",             "UNENCODED_URL",   "HTTP_URL",
};

ISAPI_EXPORT BOOL WINAPI GetExtensionVersion(HSE_VERSION_INFO *pVer) {
  pVer->dwExtensionVersion = HSE_VERSION;
  snprintf(pVer->lpszExtensionDesc, sizeof pVer->lpszExtensionDesc, "%s", "servervars sample");
  return TRUE;
}

static BOOL write_text(EXTENSION_CONTROL_BLOCK *ecb, const char *text) {
  DWORD len = (DWORD)strlen(text);
  return ecb->WriteClient(ecb->ConnID, (LPVOID)text, &len, HSE_IO_SYNC);
}

/* Appends `value` (at most `len` bytes, stopping at a NUL) to out, escaped so
 * that it stays on one line. out needs room for 4 * len + 1 bytes. */
static void escape_value(char *out, const char *value, size_t len) {
  static const char hex[] = "0123456789ABCDEF";
  size_t i;
  for (i = 0; i < len && value[i] != '\0'; i++) {
    unsigned char c = (unsigned char)value[i];
    if (c == '\\') {
      *out++ = '\\';
      *out++ = '\\';
    } else if (c == '\r') {
      *out++ = '\\';
      *out++ = 'r';
    } else if (c == '\n') {
      *out++ = '\\';
      *out++ = 'n';
    } else if (c < 0x20 || c == 0x7f) {
      *out++ = '\\';
      *out++ = 'x';
      *out++ = hex[c >> 4];
      *out++ = hex[c & 15];
    } else {
      *out++ = (char)c;
    }
  }
  *out = '\0';
}

/* Looks up one variable with the two-call idiom and writes its lines. */
static BOOL show_variable(EXTENSION_CONTROL_BLOCK *ecb, const char *name) {
  char line[512];
  char *value, *text;
  DWORD size = 0, size2;
  DWORD err;
  BOOL ok;
  size_t name_len = strlen(name);

  if (name_len > 200) return write_text(ecb, "(name too long)\n");

  /* Call 1: how big is it? Clear the last error first so that what we read
   * afterwards really comes from this call. */
  SetLastError(0);
  ok = ecb->GetServerVariable(ecb->ConnID, (LPSTR)name, NULL, &size);
  err = GetLastError(); /* immediately: any later library call may change it */

  if (ok) {
    snprintf(line, sizeof line, "%s!unexpected=size 0 succeeded (size=%lu)\n", name, (unsigned long)size);
    return write_text(ecb, line);
  }
  if (err != ERROR_INSUFFICIENT_BUFFER) {
    snprintf(line, sizeof line, "%s!error=%lu\n", name, (unsigned long)err);
    return write_text(ecb, line);
  }
  if (size == 0) {
    snprintf(line, sizeof line, "%s!unexpected=error 122 with size 0\n", name);
    return write_text(ecb, line);
  }

  /* Call 2: a buffer of exactly the size we were told. */
  value = (char *)malloc(size);
  if (value == NULL) return write_text(ecb, "(out of memory)\n");
  size2 = size;
  SetLastError(0);
  ok = ecb->GetServerVariable(ecb->ConnID, (LPSTR)name, value, &size2);
  err = GetLastError();
  if (!ok) {
    free(value);
    snprintf(line, sizeof line, "%s!error=%lu\n", name, (unsigned long)err);
    return write_text(ecb, line);
  }

  /* "NAME=" + escaped value (4x worst case) + "\n", then the size line(s). */
  text = (char *)malloc(name_len + 2 + 4 * (size_t)size + 1 + 2 * sizeof line);
  if (text == NULL) {
    free(value);
    return write_text(ecb, "(out of memory)\n");
  }
  memcpy(text, name, name_len);
  text[name_len] = '=';
  escape_value(text + name_len + 1, value, size);
  snprintf(line, sizeof line, "\n%s#size=%lu\n", name, (unsigned long)size);
  strcat(text, line);
  if (size2 != size) {
    snprintf(line, sizeof line, "%s!size2=%lu\n", name, (unsigned long)size2);
    strcat(text, line);
  }
  free(value);
  ok = write_text(ecb, text);
  free(text);
  return ok;
}

ISAPI_EXPORT DWORD WINAPI HttpExtensionProc(EXTENSION_CONTROL_BLOCK *ecb) {
  static const char headers[] = "Content-Type: text/plain\r\n\r\n";
  char names[4096];
  HSE_SEND_HEADER_EX_INFO hdr;

  /* The total length is not known up front, so there is no Content-Length:
   * the server ends the body for us (chunked encoding or closing). */
  hdr.pszStatus = "200 OK";
  hdr.cchStatus = (DWORD)strlen(hdr.pszStatus);
  hdr.pszHeader = headers;
  hdr.cchHeader = (DWORD)strlen(headers);
  hdr.fKeepConn = FALSE;
  if (!ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_SEND_RESPONSE_HEADER_EX, &hdr, NULL, NULL)) {
    return HSE_STATUS_ERROR;
  }

  if (query_get(ecb->lpszQueryString, "names", names, sizeof names) && names[0] != '\0') {
    /* Walk the comma-separated list in place. */
    char *p = names;
    while (*p != '\0') {
      char *end = strchr(p, ',');
      char *last;
      if (end != NULL) *end = '\0';
      while (*p == ' ') p++;
      last = p + strlen(p);
      while (last > p && last[-1] == ' ') *--last = '\0';
      if (*p != '\0' && !show_variable(ecb, p)) return HSE_STATUS_ERROR;
      if (end == NULL) break;
      p = end + 1;
    }
  } else {
    size_t i;
    for (i = 0; i < sizeof default_names / sizeof default_names[0]; i++) {
      if (!show_variable(ecb, default_names[i])) return HSE_STATUS_ERROR;
    }
  }
  return HSE_STATUS_SUCCESS;
}

ISAPI_EXPORT BOOL WINAPI TerminateExtension(DWORD dwFlags) {
  (void)dwFlags;
  return TRUE;
}
