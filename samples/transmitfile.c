/*
 * transmitfile.c - sends (part of) a file with HSE_REQ_TRANSMIT_FILE.
 *
 *   GET /scripts/transmitfile.dll?path=/srv/files/a.bin&offset=0&length=0
 *
 *   path=FILE       the file to send (required; opened read-only)
 *   offset=O        first byte to send (HSE_TF_INFO.Offset, default 0)
 *   length=L        bytes to send (HSE_TF_INFO.BytesToWrite, default 0 = up to EOF)
 *   head=TEXT       body bytes sent before the file (pHead/HeadLength)
 *   tail=TEXT       body bytes sent after the file (pTail/TailLength)
 *   sendheaders=1   let the server send the response head (HSE_IO_SEND_HEADERS):
 *                   pszStatusCode is the status and pHead is then the header
 *                   block "Content-Type: application/octet-stream\r\nX-TF: 1\r\n\r\n"
 *                   (head= is ignored). Without it the extension sends its own
 *                   head first (SEND_RESPONSE_HEADER_EX, same two headers).
 *   status=TEXT     status for sendheaders=1 (default "200 OK")
 *   async=1         HSE_IO_ASYNC: return HSE_STATUS_PENDING, finish in the completion
 *   disconnect=1    HSE_IO_DISCONNECT_AFTER_SEND: close the connection afterwards
 *   nodelay=1       HSE_IO_NODELAY: no Nagle delay on the socket
 *   override=1      (with async=1) pass the completion in HSE_TF_INFO.pfnHseIO /
 *                   pContext, and register a different one with
 *                   HSE_REQ_IO_COMPLETION; pfnHseIO must win
 *
 * Neither head announces a Content-Length, so the server chunks the body or
 * closes the connection after it.
 *
 * HSE_TF_INFO in short:
 *   hFile          an open file handle. On Windows a HANDLE from CreateFile
 *                  (IIS documents FILE_FLAG_SEQUENTIAL_SCAN | FILE_FLAG_OVERLAPPED);
 *                  for isapi-gateway on Linux, a file descriptor cast to HANDLE:
 *                  (HANDLE)(intptr_t)fd. It must stay open until the transmit
 *                  has completed: after the call for a synchronous transmit,
 *                  in the completion for an asynchronous one.
 *   pHead, pTail   buffers sent before/after the file; like the file they must
 *                  stay valid until the transmit has completed.
 *   pfnHseIO       if not NULL, the completion for this transmit (with pContext),
 *                  overriding the one registered with HSE_REQ_IO_COMPLETION.
 *
 * lpszLogData:
 *   synchronous:   "tf ret=<0|1> err=<GetLastError(), 0 on success>"
 *   asynchronous:  "tf cb=<cbIO> err=<dwError>" from the completion, or
 *                  "wrong-completion cb=<cbIO> err=<dwError>" if the registered
 *                  completion ran although pfnHseIO was set (override=1);
 *                  "tf ret=0 err=<e>" if the call itself failed.
 *
 * If the file cannot be opened: 404 Not Found, text/plain,
 * "transmitfile: cannot open <path> (error <code>)\n".
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

#define TF_TEXT_MAX 1024

static const char tf_headers[] = "Content-Type: application/octet-stream\r\nX-TF: 1\r\n\r\n";

/* Everything that must outlive an asynchronous transmit. */
struct transmit {
  HANDLE file;
  char status[128];
  char head[TF_TEXT_MAX];
  char tail[TF_TEXT_MAX];
  HSE_TF_INFO info;
};

ISAPI_EXPORT BOOL WINAPI GetExtensionVersion(HSE_VERSION_INFO *pVer) {
  pVer->dwExtensionVersion = HSE_VERSION;
  snprintf(pVer->lpszExtensionDesc, sizeof pVer->lpszExtensionDesc, "%s", "transmitfile sample");
  return TRUE;
}

/* Replaces control characters, so that query text cannot add header lines. */
static void no_controls(char *s) {
  for (; *s != '\0'; s++) {
    if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = ' ';
  }
}

/* A complete small response (used when the file cannot be opened). */
static DWORD answer(EXTENSION_CONTROL_BLOCK *ecb, const char *status, const char *body) {
  char headers[128];
  HSE_SEND_HEADER_EX_INFO hdr;
  DWORD n = (DWORD)strlen(body);

  snprintf(headers, sizeof headers, "Content-Type: text/plain\r\nContent-Length: %lu\r\n\r\n", (unsigned long)n);
  hdr.pszStatus = status;
  hdr.cchStatus = (DWORD)strlen(status);
  hdr.pszHeader = headers;
  hdr.cchHeader = (DWORD)strlen(headers);
  hdr.fKeepConn = TRUE;
  if (!ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_SEND_RESPONSE_HEADER_EX, &hdr, NULL, NULL)) {
    return HSE_STATUS_ERROR;
  }
  return ecb->WriteClient(ecb->ConnID, (LPVOID)body, &n, HSE_IO_SYNC) ? HSE_STATUS_SUCCESS : HSE_STATUS_ERROR;
}

/* Common end of an asynchronous transmit: log, close, DONE_WITH_SESSION, free. */
static void complete(EXTENSION_CONTROL_BLOCK *ecb, struct transmit *t, const char *who, DWORD cbIO,
                     DWORD dwError) {
  DWORD status = dwError == 0 ? HSE_STATUS_SUCCESS : HSE_STATUS_ERROR;

  snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "%s cb=%lu err=%lu", who, (unsigned long)cbIO,
           (unsigned long)dwError);
  close_file(t->file); /* the transmit is over: now the file may be closed */
  ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_DONE_WITH_SESSION, &status, NULL, NULL);
  free(t);
}

/* The completion for the transmit (registered, or in pfnHseIO with override=1). */
static VOID WINAPI on_transmit_done(EXTENSION_CONTROL_BLOCK *ecb, PVOID context, DWORD cbIO, DWORD dwError) {
  complete(ecb, (struct transmit *)context, "tf", cbIO, dwError);
}

/* override=1 registers this one with HSE_REQ_IO_COMPLETION: it should never run. */
static VOID WINAPI on_wrong_completion(EXTENSION_CONTROL_BLOCK *ecb, PVOID context, DWORD cbIO, DWORD dwError) {
  complete(ecb, (struct transmit *)context, "wrong-completion", cbIO, dwError);
}

ISAPI_EXPORT DWORD WINAPI HttpExtensionProc(EXTENSION_CONTROL_BLOCK *ecb) {
  const char *qs = ecb->lpszQueryString;
  int async = query_is(qs, "async", "1");
  int override = async && query_is(qs, "override", "1");
  int send_headers = query_is(qs, "sendheaders", "1");
  char path[1024];
  struct transmit *t;
  unsigned long open_err = 0;
  BOOL ret;
  DWORD err;

  if (!query_get(qs, "path", path, sizeof path) || path[0] == '\0') {
    return answer(ecb, "400 Bad Request", "transmitfile: path= is required\n");
  }

  t = (struct transmit *)calloc(1, sizeof *t);
  if (t == NULL) return HSE_STATUS_ERROR;

  t->file = open_file(path, &open_err);
  if (t->file == INVALID_HANDLE_VALUE) {
    char body[1200];
    free(t);
    no_controls(path);
    snprintf(body, sizeof body, "transmitfile: cannot open %s (error %lu)\n", path, open_err);
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "tf open failed err=%lu", open_err);
    return answer(ecb, "404 Not Found", body);
  }

  if (!query_get(qs, "status", t->status, sizeof t->status) || t->status[0] == '\0') {
    strcpy(t->status, "200 OK");
  }
  no_controls(t->status);
  query_get(qs, "head", t->head, sizeof t->head);
  query_get(qs, "tail", t->tail, sizeof t->tail);

  /* Fill in HSE_TF_INFO. */
  t->info.hFile = t->file;
  t->info.Offset = (DWORD)query_get_ulong(qs, "offset", 0);
  t->info.BytesToWrite = (DWORD)query_get_ulong(qs, "length", 0); /* 0: up to the end of the file */
  if (t->tail[0] != '\0') {
    t->info.pTail = t->tail;
    t->info.TailLength = (DWORD)strlen(t->tail);
  }
  t->info.dwFlags = async ? HSE_IO_ASYNC : HSE_IO_SYNC;
  if (query_is(qs, "disconnect", "1")) t->info.dwFlags |= HSE_IO_DISCONNECT_AFTER_SEND;
  if (query_is(qs, "nodelay", "1")) t->info.dwFlags |= HSE_IO_NODELAY;

  if (send_headers) {
    /* The server sends "HTTP/1.1 <pszStatusCode>" and the header block in pHead
     * (a NUL-terminated string ending with the blank line). */
    t->info.dwFlags |= HSE_IO_SEND_HEADERS;
    t->info.pszStatusCode = t->status;
    t->info.pHead = (PVOID)tf_headers;
    t->info.HeadLength = (DWORD)strlen(tf_headers);
  } else {
    /* We send our own head; pHead is just the first bytes of the body. */
    HSE_SEND_HEADER_EX_INFO hdr;
    hdr.pszStatus = "200 OK";
    hdr.cchStatus = (DWORD)strlen(hdr.pszStatus);
    hdr.pszHeader = tf_headers;
    hdr.cchHeader = (DWORD)strlen(tf_headers);
    hdr.fKeepConn = FALSE; /* no Content-Length: the server chunks or closes */
    if (!ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_SEND_RESPONSE_HEADER_EX, &hdr, NULL, NULL)) {
      snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "tf head failed err=%lu", (unsigned long)GetLastError());
      close_file(t->file);
      free(t);
      return HSE_STATUS_ERROR;
    }
    if (t->head[0] != '\0') {
      t->info.pHead = t->head;
      t->info.HeadLength = (DWORD)strlen(t->head);
    }
  }

  if (async) {
    /*
     * Who gets told when the transmit is over: normally the function registered
     * with HSE_REQ_IO_COMPLETION (pfnHseIO NULL). With override=1 the transmit
     * names its own completion, and the registered one must not be called.
     */
    PFN_HSE_IO_COMPLETION registered = override ? on_wrong_completion : on_transmit_done;
    if (!ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_IO_COMPLETION, (LPVOID)registered, NULL,
                                    (LPDWORD)t)) {
      snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "tf IO_COMPLETION failed err=%lu",
               (unsigned long)GetLastError());
      close_file(t->file);
      free(t);
      return HSE_STATUS_ERROR;
    }
    if (override) {
      t->info.pfnHseIO = on_transmit_done;
      t->info.pContext = t;
    }
  }

  SetLastError(0);
  ret = ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_TRANSMIT_FILE, &t->info, NULL, NULL);
  err = ret ? 0 : GetLastError();

  if (async && ret) {
    /* Under way: the completion closes the file, ends the session and frees t,
     * possibly already now on another thread. Touch nothing. */
    return HSE_STATUS_PENDING;
  }

  /* Synchronous transmit (or a failed asynchronous one): it is over already. */
  snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "tf ret=%d err=%lu", (int)ret, (unsigned long)err);
  close_file(t->file);
  free(t);
  return ret ? HSE_STATUS_SUCCESS : HSE_STATUS_ERROR;
}

ISAPI_EXPORT BOOL WINAPI TerminateExtension(DWORD dwFlags) {
  (void)dwFlags;
  return TRUE;
}
