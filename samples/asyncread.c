/*
 * asyncread.c - reads the request body with HSE_REQ_ASYNC_READ_CLIENT.
 *
 *   POST /scripts/asyncread.dll[?thread=1]   (any body, Content-Length or chunked)
 *     ->  200 OK, text/plain, Content-Length, "bytes=<n> fnv=<hex8>\n"
 *
 *   n     the body size: the lpbData read-ahead plus every asynchronous read
 *   fnv   FNV-1a (32 bit) over all body bytes, 8 lowercase hex digits
 *         (an empty body gives 811c9dc5)
 *
 *   thread=1   the first asynchronous read is issued from a thread of our own
 *              instead of from HttpExtensionProc
 *
 * How an asynchronous read works:
 *   1. The first cbAvailable bytes of the body are already in ecb->lpbData
 *      (the server's read-ahead); the rest, up to cbTotalBytes (0xFFFFFFFF for a
 *      chunked upload), has to be read.
 *   2. HSE_REQ_IO_COMPLETION registers the completion function (lpvBuffer) and
 *      its context (lpdwDataType).
 *   3. ServerSupportFunction(HSE_REQ_ASYNC_READ_CLIENT, buffer, &size, &flags)
 *      with flags = HSE_IO_ASYNC starts a read of up to `size` bytes into
 *      `buffer` and returns TRUE at once; the buffer must stay valid until the
 *      completion runs (`size` means nothing afterwards).
 *   4. The server calls completion(ecb, context, cbIO, dwError): cbIO bytes are
 *      in the buffer; cbIO == 0 means the body is over. One asynchronous
 *      operation at a time, so the next read is issued from the completion.
 *   5. HttpExtensionProc has returned HSE_STATUS_PENDING; the last completion
 *      answers (a synchronous WriteClient from the completion thread is fine)
 *      and calls HSE_REQ_DONE_WITH_SESSION.
 *
 * lpszLogData: "asyncread ok bytes=<n> reads=<completions>", or, when a read
 * fails (dwError != 0, e.g. 64 or 995 because the client aborted the upload, or
 * the call itself returns FALSE), "asyncread error=<code> bytes=<n>"; the
 * session then ends with HSE_STATUS_ERROR and nothing is written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isapi.h"
#include "common/portable.h" /* start_thread, counter_t, counter_wait_zero */
#include "common/query.h"

#define AR_BUFFER_SIZE 65536

/* Requests that may still run code of this library (see TerminateExtension). */
static counter_t active_requests = 0;

struct request {
  EXTENSION_CONTROL_BLOCK *ecb;
  unsigned long long bytes; /* body bytes seen so far */
  unsigned long reads;      /* completions */
  unsigned long fnv;        /* FNV-1a state (32 bits used) */
  DWORD size;               /* HSE_REQ_ASYNC_READ_CLIENT's lpdwSize */
  DWORD flags;              /* ... and its lpdwDataType: HSE_IO_ASYNC */
  unsigned char buffer[AR_BUFFER_SIZE];
};

ISAPI_EXPORT BOOL WINAPI GetExtensionVersion(HSE_VERSION_INFO *pVer) {
  pVer->dwExtensionVersion = HSE_VERSION;
  snprintf(pVer->lpszExtensionDesc, sizeof pVer->lpszExtensionDesc, "%s", "asyncread sample");
  return TRUE;
}

/* FNV-1a, 32 bit: hash = (hash ^ byte) * 16777619, starting at 2166136261. */
static void consume(struct request *req, const unsigned char *data, DWORD n) {
  unsigned long h = req->fnv;
  DWORD i;
  for (i = 0; i < n; i++) h = ((h ^ data[i]) * 16777619UL) & 0xFFFFFFFFUL;
  req->fnv = h;
  req->bytes += n;
}

/* Ends the request: answer (or not, after an error), log, DONE_WITH_SESSION, free. */
static void finish(struct request *req, DWORD error) {
  EXTENSION_CONTROL_BLOCK *ecb = req->ecb;
  DWORD status = HSE_STATUS_SUCCESS;

  if (error != 0) {
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "asyncread error=%lu bytes=%llu", (unsigned long)error,
             req->bytes);
    status = HSE_STATUS_ERROR;
  } else {
    char body[64], headers[128];
    HSE_SEND_HEADER_EX_INFO hdr;
    DWORD n;

    snprintf(body, sizeof body, "bytes=%llu fnv=%08lx\n", req->bytes, req->fnv);
    n = (DWORD)strlen(body);
    snprintf(headers, sizeof headers, "Content-Type: text/plain\r\nContent-Length: %lu\r\n\r\n",
             (unsigned long)n);
    hdr.pszStatus = "200 OK";
    hdr.cchStatus = (DWORD)strlen(hdr.pszStatus);
    hdr.pszHeader = headers;
    hdr.cchHeader = (DWORD)strlen(headers);
    hdr.fKeepConn = TRUE;
    if (!ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_SEND_RESPONSE_HEADER_EX, &hdr, NULL, NULL) ||
        !ecb->WriteClient(ecb->ConnID, body, &n, HSE_IO_SYNC)) {
      status = HSE_STATUS_ERROR;
    }
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "asyncread ok bytes=%llu reads=%lu", req->bytes, req->reads);
  }
  ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_DONE_WITH_SESSION, &status, NULL, NULL);
  free(req);
  counter_add(&active_requests, -1);
}

/*
 * Starts the next read. TRUE: under way, the completion owns req now and the
 * caller must not touch it. FALSE: refused; returns the error in *err.
 */
static BOOL issue_read(struct request *req, DWORD *err) {
  EXTENSION_CONTROL_BLOCK *ecb = req->ecb;
  req->size = AR_BUFFER_SIZE;
  req->flags = HSE_IO_ASYNC;
  if (ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_ASYNC_READ_CLIENT, req->buffer, &req->size, &req->flags)) {
    return TRUE;
  }
  *err = GetLastError();
  if (*err == 0) *err = ERROR_INVALID_FUNCTION; /* make sure a failure is logged as one */
  return FALSE;
}

/* The completion: cbIO bytes arrived in req->buffer (0: end of body). */
static VOID WINAPI on_read_done(EXTENSION_CONTROL_BLOCK *ecb, PVOID context, DWORD cbIO, DWORD dwError) {
  struct request *req = (struct request *)context;
  DWORD err = 0;
  (void)ecb; /* the same ECB as req->ecb */

  req->reads++;
  if (dwError != 0) {
    finish(req, dwError); /* e.g. the client aborted the upload */
    return;
  }
  if (cbIO == 0) {
    finish(req, 0); /* end of the body */
    return;
  }
  consume(req, req->buffer, cbIO);
  if (issue_read(req, &err)) return; /* under way: req belongs to the next completion */
  finish(req, err);
}

/* thread=1: the first read comes from a thread of ours. */
THREAD_PROC(first_read_thread, arg) {
  struct request *req = (struct request *)arg;
  DWORD err = 0;
  if (!issue_read(req, &err)) finish(req, err);
  THREAD_RETURN;
}

ISAPI_EXPORT DWORD WINAPI HttpExtensionProc(EXTENSION_CONTROL_BLOCK *ecb) {
  struct request *req = (struct request *)calloc(1, sizeof *req);
  DWORD err = 0;

  if (req == NULL) return HSE_STATUS_ERROR;
  req->ecb = ecb;
  req->fnv = 2166136261UL;

  /* 1. The read-ahead the server has already received. */
  if (ecb->cbAvailable > 0 && ecb->lpbData != NULL) consume(req, ecb->lpbData, ecb->cbAvailable);

  /* 2. The completion and its context. */
  if (!ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_IO_COMPLETION, (LPVOID)on_read_done, NULL,
                                  (LPDWORD)req)) {
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "asyncread error=%lu bytes=0 (IO_COMPLETION)",
             (unsigned long)GetLastError());
    free(req);
    return HSE_STATUS_ERROR;
  }
  counter_add(&active_requests, 1);

  /*
   * 3. The first read. Even when the read-ahead was the whole body we read
   *    once more: the completion then reports 0 bytes, the end of the body.
   */
  if (query_is(ecb->lpszQueryString, "thread", "1")) {
    if (start_thread(first_read_thread, req)) return HSE_STATUS_PENDING; /* the thread owns req now */
    err = ERROR_NOT_ENOUGH_MEMORY;
  } else if (issue_read(req, &err)) {
    return HSE_STATUS_PENDING; /* the completion owns req now: do not touch it */
  }

  /* Nothing is under way, so no completion will come: fail synchronously. */
  snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "asyncread error=%lu bytes=%llu", (unsigned long)err,
           req->bytes);
  free(req);
  counter_add(&active_requests, -1);
  return HSE_STATUS_ERROR;
}

/* Completions run code of this library until just after DONE_WITH_SESSION. */
ISAPI_EXPORT BOOL WINAPI TerminateExtension(DWORD dwFlags) {
  (void)dwFlags;
  counter_wait_zero(&active_requests, 5000); /* at most about 5 s */
  return TRUE;
}
