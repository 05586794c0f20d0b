/*
 * vectorsend.c - a whole response (head, memory buffers and a file) in one
 * HSE_REQ_VECTOR_SEND call.
 *
 *   GET /scripts/vectorsend.dll?path=/srv/files/a.txt[&async=1][&final=1]
 *     ->  200 OK, text/plain (no Content-Length: chunked or close),
 *         "vector-begin\n" <the whole file> "vector-end\n"
 *
 *   path=FILE   the file sent between the two memory buffers; without path=
 *               the vector holds only the two buffers
 *   async=1     HSE_IO_ASYNC: return HSE_STATUS_PENDING, finish in the completion
 *   final=1     HSE_IO_FINAL_SEND: tells the server this is the last send of
 *               the response
 *
 * HSE_RESPONSE_VECTOR describes a response as a list of elements:
 *   dwFlags        HSE_IO_SEND_HEADERS (pszStatus and pszHeaders are sent first),
 *                  HSE_IO_SYNC or HSE_IO_ASYNC, optionally HSE_IO_FINAL_SEND,
 *                  HSE_IO_DISCONNECT_AFTER_SEND
 *   pszStatus      "200 OK"
 *   pszHeaders     the header block, ending with the blank line
 *   lpElementArray nElementCount HSE_VECTOR_ELEMENTs, each either
 *                    HSE_VECTOR_ELEMENT_TYPE_MEMORY_BUFFER: pvContext = buffer,
 *                      cbSize bytes (cbOffset unused), or
 *                    HSE_VECTOR_ELEMENT_TYPE_FILE_HANDLE: pvContext = file handle
 *                      (a HANDLE on Windows, (HANDLE)(intptr_t)fd on Linux),
 *                      cbSize bytes from cbOffset; cbSize 0 = the whole file.
 * For an asynchronous send the vector, the buffers and the file must stay
 * valid/open until the completion runs.
 *
 * lpszLogData: "vector ret=<0|1> err=<GetLastError()>" for a synchronous send
 * (or a failed asynchronous call), "vector cb=<cbIO> err=<dwError>" from the
 * completion of an asynchronous one.
 * If the file cannot be opened: 404, "vectorsend: cannot open <path> (error <code>)\n".
 *
 * This is a test fixture: it sends any file the server process can read.
 * Never install it on a server that faces untrusted clients.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isapi.h"
#include "common/portable.h" /* open_file, close_file */
#include "common/query.h"

static char vs_status[] = "200 OK";
static char vs_headers[] = "Content-Type: text/plain\r\n\r\n";
static char vs_begin[] = "vector-begin\n";
static char vs_end[] = "vector-end\n";

/* Everything that must outlive an asynchronous send. */
struct send {
  HANDLE file; /* INVALID_HANDLE_VALUE without path= */
  HSE_VECTOR_ELEMENT elements[3];
  HSE_RESPONSE_VECTOR vector;
};

ISAPI_EXPORT BOOL WINAPI GetExtensionVersion(HSE_VERSION_INFO *pVer) {
  pVer->dwExtensionVersion = HSE_VERSION;
  snprintf(pVer->lpszExtensionDesc, sizeof pVer->lpszExtensionDesc, "%s", "vectorsend sample");
  return TRUE;
}

static void free_send(struct send *s) {
  close_file(s->file);
  free(s);
}

/* The 404 answer when the file cannot be opened. */
static DWORD not_found(EXTENSION_CONTROL_BLOCK *ecb, char *path, unsigned long err) {
  char body[1200], headers[128];
  HSE_SEND_HEADER_EX_INFO hdr;
  DWORD n;
  char *p;

  for (p = path; *p != '\0'; p++) {
    if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' '; /* keep it one line */
  }
  snprintf(body, sizeof body, "vectorsend: cannot open %s (error %lu)\n", path, err);
  n = (DWORD)strlen(body);
  snprintf(headers, sizeof headers, "Content-Type: text/plain\r\nContent-Length: %lu\r\n\r\n", (unsigned long)n);
  hdr.pszStatus = "404 Not Found";
  hdr.cchStatus = (DWORD)strlen(hdr.pszStatus);
  hdr.pszHeader = headers;
  hdr.cchHeader = (DWORD)strlen(headers);
  hdr.fKeepConn = TRUE;
  snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "vector open failed err=%lu", err);
  if (!ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_SEND_RESPONSE_HEADER_EX, &hdr, NULL, NULL)) {
    return HSE_STATUS_ERROR;
  }
  return ecb->WriteClient(ecb->ConnID, body, &n, HSE_IO_SYNC) ? HSE_STATUS_SUCCESS : HSE_STATUS_ERROR;
}

/* Completion of an asynchronous send: log, DONE_WITH_SESSION, then clean up. */
static VOID WINAPI on_send_done(EXTENSION_CONTROL_BLOCK *ecb, PVOID context, DWORD cbIO, DWORD dwError) {
  DWORD status = dwError == 0 ? HSE_STATUS_SUCCESS : HSE_STATUS_ERROR;
  snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "vector cb=%lu err=%lu", (unsigned long)cbIO,
           (unsigned long)dwError);
  free_send((struct send *)context); /* the send is over: the file may be closed */
  ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_DONE_WITH_SESSION, &status, NULL, NULL);
}

/* One memory-buffer element. */
static void memory_element(HSE_VECTOR_ELEMENT *e, char *text) {
  e->ElementType = HSE_VECTOR_ELEMENT_TYPE_MEMORY_BUFFER;
  e->pvContext = text;
  e->cbOffset = 0;
  e->cbSize = (ULONGLONG)strlen(text);
}

ISAPI_EXPORT DWORD WINAPI HttpExtensionProc(EXTENSION_CONTROL_BLOCK *ecb) {
  const char *qs = ecb->lpszQueryString;
  int async = query_is(qs, "async", "1");
  struct send *s;
  char path[1024];
  DWORD n = 0;
  BOOL ret;
  DWORD err;

  s = (struct send *)calloc(1, sizeof *s);
  if (s == NULL) return HSE_STATUS_ERROR;
  s->file = INVALID_HANDLE_VALUE;

  if (query_get(qs, "path", path, sizeof path) && path[0] != '\0') {
    unsigned long open_err = 0;
    s->file = open_file(path, &open_err);
    if (s->file == INVALID_HANDLE_VALUE) {
      free(s);
      return not_found(ecb, path, open_err);
    }
  }

  /* The elements: "vector-begin\n", the file (if any), "vector-end\n". */
  memory_element(&s->elements[n++], vs_begin);
  if (s->file != INVALID_HANDLE_VALUE) {
    HSE_VECTOR_ELEMENT *e = &s->elements[n++];
    e->ElementType = HSE_VECTOR_ELEMENT_TYPE_FILE_HANDLE;
    e->pvContext = s->file;
    e->cbOffset = 0;
    e->cbSize = 0; /* 0: the whole file */
  }
  memory_element(&s->elements[n++], vs_end);

  s->vector.dwFlags = HSE_IO_SEND_HEADERS | (async ? HSE_IO_ASYNC : HSE_IO_SYNC);
  if (query_is(qs, "final", "1")) s->vector.dwFlags |= HSE_IO_FINAL_SEND;
  s->vector.pszStatus = vs_status;
  s->vector.pszHeaders = vs_headers;
  s->vector.nElementCount = n;
  s->vector.lpElementArray = s->elements;

  if (async) {
    if (!ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_IO_COMPLETION, (LPVOID)on_send_done, NULL,
                                    (LPDWORD)s)) {
      snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "vector IO_COMPLETION failed err=%lu",
               (unsigned long)GetLastError());
      free_send(s);
      return HSE_STATUS_ERROR;
    }
  }

  SetLastError(0);
  ret = ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_VECTOR_SEND, &s->vector, NULL, NULL);
  err = ret ? 0 : GetLastError();

  if (async && ret) return HSE_STATUS_PENDING; /* the completion owns s now: touch nothing */

  snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "vector ret=%d err=%lu", (int)ret, (unsigned long)err);
  free_send(s);
  return ret ? HSE_STATUS_SUCCESS : HSE_STATUS_ERROR;
}

ISAPI_EXPORT BOOL WINAPI TerminateExtension(DWORD dwFlags) {
  (void)dwFlags;
  return TRUE;
}
