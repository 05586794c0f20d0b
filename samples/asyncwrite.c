/*
 * asyncwrite.c - asynchronous WriteClient (HSE_IO_ASYNC) with an I/O completion.
 *
 *   GET /scripts/asyncwrite.dll?count=N&size=S[&thread=1][&delay=MS]
 *     ->  200 OK, text/plain, Content-Length N*S
 *         body: write i (0-based) is S bytes of 'A' + (i % 26), i.e. S x "A",
 *         then S x "B", ...
 *
 *   count=N     number of asynchronous writes (default 4, 1 .. 100000)
 *   size=S      bytes per write (default 4096, 1 .. 1048576); N*S is capped at
 *               4294967295 by lowering N
 *   thread=1    issue the first write from a thread of our own instead of from
 *               HttpExtensionProc
 *   delay=MS    with thread=1, the thread sleeps MS ms first (default 0, max 60000)
 *
 * How asynchronous writes work in ISAPI:
 *   1. HSE_REQ_IO_COMPLETION registers the request's completion function
 *      (lpvBuffer) and a context pointer for it (lpdwDataType).
 *   2. WriteClient(..., HSE_IO_ASYNC) starts the write and returns TRUE at once;
 *      the buffer must stay valid until the completion runs.
 *   3. The server later calls completion(ecb, context, cbIO, dwError) on one of
 *      its threads: cbIO is the number of bytes written, dwError 0 or a Win32
 *      error (64 or 995 when the client went away).
 *   4. Only ONE asynchronous operation may be outstanding per request, so the
 *      next write is issued from the completion of the previous one (a chain).
 *   5. HttpExtensionProc returns HSE_STATUS_PENDING; the last completion ends
 *      the request with HSE_REQ_DONE_WITH_SESSION.
 *
 * Completions can run on another thread as soon as the write is issued, even
 * before WriteClient has returned to us, so whoever issues a write must not
 * touch the request state afterwards: the completion may already have freed it.
 *
 * lpszLogData, written just before DONE_WITH_SESSION (the server reads it then):
 *   "asyncwrite writes=<completed writes> bytes=<sum of cbIO> errors=<n> lasterr=<code>"
 * DONE_WITH_SESSION gets HSE_STATUS_SUCCESS, or HSE_STATUS_ERROR after any error.
 *
 * Other modes, for a server's conformance tests:
 *
 *   ?mode=second        a second async write while the first is still pending
 *                       must fail. Writes "first\n" asynchronously, immediately
 *                       tries another async write, then (once the first has
 *                       completed) writes "second ret=<r> err=<e>\n" synchronously
 *                       and ends the session. Expected: "second ret=0 err=<e>"
 *                       (no Content-Length: the second line's length is not
 *                       known when the head is sent). lpszLogData gets
 *                       "second ret=<r> err=<e>".
 *   ?mode=nocompletion  async WriteClient without HSE_REQ_IO_COMPLETION: must
 *                       fail with 87 (ERROR_INVALID_PARAMETER). Answers
 *                       synchronously "nocompletion ret=<r> err=<e>\n" and
 *                       returns HSE_STATUS_SUCCESS (not pending).
 *   ?mode=done-first    a thread answers "done-first\n" (with Content-Length) and
 *                       calls DONE_WITH_SESSION right away, possibly before
 *                       HttpExtensionProc has returned HSE_STATUS_PENDING.
 *                       lpszLogData: "asyncwrite done-first".
 *   ?mode=never         returns HSE_STATUS_PENDING, sends nothing and never calls
 *                       DONE_WITH_SESSION: exercises the server's pending timeout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isapi.h"
#include "common/portable.h" /* sleep_ms, threads, counter_t, THREAD_LOCAL */
#include "common/query.h"

/*
 * Set while this thread is inside an async WriteClient: a completion that finds
 * it set was called from within WriteClient itself, which IIS never does.
 */
static THREAD_LOCAL int inside_write_client;

#define AW_DEFAULT_COUNT 4UL
#define AW_MAX_COUNT 100000UL
#define AW_DEFAULT_SIZE 4096UL
#define AW_MAX_SIZE (1024UL * 1024UL)

/* Requests that may still run code of this library (see TerminateExtension). */
static counter_t active_requests = 0;

enum mode { MODE_CHAIN, MODE_SECOND, MODE_NOCOMPLETION, MODE_DONE_FIRST, MODE_NEVER };

/* Per-request state: allocated in HttpExtensionProc, freed after DONE_WITH_SESSION. */
struct request {
  EXTENSION_CONTROL_BLOCK *ecb;
  enum mode mode;
  unsigned long count;     /* writes to issue */
  unsigned long size;      /* bytes per write */
  unsigned long delay_ms;  /* thread=1: sleep before the first write */
  unsigned long issued;    /* writes issued so far */
  unsigned long writes;    /* completions that reported success */
  unsigned long bytes;     /* sum of their cbIO */
  unsigned long errors;    /* failed writes (completion error or FALSE from WriteClient) */
  unsigned long lasterr;   /* the last error code, 0 if none */
  unsigned long inline_completions; /* completions called from inside WriteClient (should stay 0) */
  unsigned long completion_tid;     /* OS thread id that ran the last completion */
  DWORD io_bytes;          /* WriteClient's byte count; lives as long as the write */
  char *buffer;            /* the bytes of the outstanding write */
  /* mode=second */
  counter_t parties;       /* who still has to report before the final line is written */
  BOOL second_ret;
  DWORD second_err;
};

ISAPI_EXPORT BOOL WINAPI GetExtensionVersion(HSE_VERSION_INFO *pVer) {
  pVer->dwExtensionVersion = HSE_VERSION;
  snprintf(pVer->lpszExtensionDesc, sizeof pVer->lpszExtensionDesc, "%s", "asyncwrite sample");
  return TRUE;
}

static void free_request(struct request *req) {
  free(req->buffer);
  free(req);
}

/* The response head; content_length < 0 sends none (and asks for no keep-alive). */
static BOOL send_head(EXTENSION_CONTROL_BLOCK *ecb, long long content_length) {
  char headers[128];
  HSE_SEND_HEADER_EX_INFO hdr;

  if (content_length >= 0) {
    snprintf(headers, sizeof headers, "Content-Type: text/plain\r\nContent-Length: %lu\r\n\r\n",
             (unsigned long)content_length);
  } else {
    snprintf(headers, sizeof headers, "Content-Type: text/plain\r\n\r\n");
  }
  hdr.pszStatus = "200 OK";
  hdr.cchStatus = (DWORD)strlen(hdr.pszStatus);
  hdr.pszHeader = headers;
  hdr.cchHeader = (DWORD)strlen(headers);
  hdr.fKeepConn = content_length >= 0 ? TRUE : FALSE;
  return ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_SEND_RESPONSE_HEADER_EX, &hdr, NULL, NULL);
}

/* Synchronous WriteClient of a C string. */
static BOOL write_text(EXTENSION_CONTROL_BLOCK *ecb, const char *text) {
  DWORD n = (DWORD)strlen(text);
  return ecb->WriteClient(ecb->ConnID, (LPVOID)text, &n, HSE_IO_SYNC);
}

/*
 * Ends the request: log line first (the server reads lpszLogData when it sees
 * DONE_WITH_SESSION), then DONE_WITH_SESSION, then our own cleanup. The ECB
 * must not be touched after DONE_WITH_SESSION.
 */
static void finish(struct request *req) {
  EXTENSION_CONTROL_BLOCK *ecb = req->ecb;
  DWORD status = req->errors == 0 ? HSE_STATUS_SUCCESS : HSE_STATUS_ERROR;

  char where[64];
  DWORD where_len;

  snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "asyncwrite writes=%lu bytes=%lu errors=%lu lasterr=%lu",
           req->writes, req->bytes, req->errors, req->lasterr);
  /* Where the completions ran, for the server's log (HSE_APPEND_LOG_PARAMETER). */
  where_len = (DWORD)snprintf(where, sizeof where, "inline=%lu ctid=%lu", req->inline_completions, req->completion_tid);
  ecb->ServerSupportFunction(ecb->ConnID, HSE_APPEND_LOG_PARAMETER, where, &where_len, NULL);
  ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_DONE_WITH_SESSION, &status, NULL, NULL);
  free_request(req);
  counter_add(&active_requests, -1);
}

/*
 * Issues the next write of the chain. Returns TRUE when it is under way: from
 * then on the completion owns `req` and the caller must not touch it. Returns
 * FALSE (error recorded in req) when WriteClient refused it.
 */
static BOOL issue_next_write(struct request *req) {
  EXTENSION_CONTROL_BLOCK *ecb = req->ecb;

  memset(req->buffer, 'A' + (int)(req->issued % 26), req->size);
  req->issued++;
  req->io_bytes = (DWORD)req->size;
  inside_write_client = 1;
  BOOL ok = ecb->WriteClient(ecb->ConnID, req->buffer, &req->io_bytes, HSE_IO_ASYNC);
  inside_write_client = 0;
  if (ok) return TRUE;
  req->lasterr = (unsigned long)GetLastError(); /* read it before any other call */
  req->errors++;
  return FALSE;
}

/* mode=second: the last of the three parties (see below) writes the result and ends. */
static void second_finish(struct request *req) {
  EXTENSION_CONTROL_BLOCK *ecb = req->ecb;
  char line[64];
  DWORD status;

  snprintf(line, sizeof line, "second ret=%d err=%lu\n", (int)req->second_ret, (unsigned long)req->second_err);
  if (!write_text(ecb, line)) {
    req->lasterr = (unsigned long)GetLastError();
    req->errors++;
  }
  status = req->errors == 0 ? HSE_STATUS_SUCCESS : HSE_STATUS_ERROR;
  snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "second ret=%d err=%lu", (int)req->second_ret,
           (unsigned long)req->second_err);
  ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_DONE_WITH_SESSION, &status, NULL, NULL);
  free_request(req);
  counter_add(&active_requests, -1);
}

/*
 * The completion function, called by the server on one of its threads when
 * an asynchronous write has finished.
 */
static VOID WINAPI on_write_done(EXTENSION_CONTROL_BLOCK *ecb, PVOID context, DWORD cbIO, DWORD dwError) {
  struct request *req = (struct request *)context;
  (void)ecb; /* the same ECB as req->ecb */

  if (inside_write_client) req->inline_completions++;
  req->completion_tid = thread_id();
  if (dwError != 0) {
    req->errors++;
    req->lasterr = (unsigned long)dwError;
  } else {
    req->writes++;
    req->bytes += (unsigned long)cbIO;
  }

  if (req->mode == MODE_SECOND) {
    if (counter_add(&req->parties, -1) == 0) second_finish(req);
    return;
  }

  /* The chain: stop on the first error, else issue the next write or finish. */
  if (dwError == 0 && req->issued < req->count) {
    if (issue_next_write(req)) return; /* under way: req now belongs to its completion */
  }
  finish(req);
}

/* Head and first write of the chain; FALSE (error recorded) if either failed. */
static BOOL start_chain(struct request *req) {
  if (!send_head(req->ecb, (long long)req->count * (long long)req->size)) {
    req->lasterr = (unsigned long)GetLastError();
    req->errors++;
    return FALSE;
  }
  return issue_next_write(req);
}

/* thread=1: the first write comes from a thread of ours. */
THREAD_PROC(chain_thread, arg) {
  struct request *req = (struct request *)arg;
  if (req->delay_ms > 0) sleep_ms(req->delay_ms);
  if (!start_chain(req)) finish(req); /* nothing under way: end the request here */
  THREAD_RETURN;
}

/* mode=done-first: answer and end the session as soon as the thread runs. */
THREAD_PROC(done_first_thread, arg) {
  struct request *req = (struct request *)arg;
  EXTENSION_CONTROL_BLOCK *ecb = req->ecb;
  DWORD status = HSE_STATUS_SUCCESS;

  if (!send_head(ecb, (long long)strlen("done-first\n")) || !write_text(ecb, "done-first\n")) {
    status = HSE_STATUS_ERROR;
  }
  snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "asyncwrite done-first");
  ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_DONE_WITH_SESSION, &status, NULL, NULL);
  free_request(req);
  counter_add(&active_requests, -1);
  THREAD_RETURN;
}

/* mode=nocompletion: synchronous from start to end. */
static DWORD run_nocompletion(EXTENSION_CONTROL_BLOCK *ecb) {
  static char unexpected[] = "unexpected\n"; /* appears in the body only if the server wrongly accepts */
  DWORD n = (DWORD)strlen(unexpected);
  char body[64];
  BOOL ret;
  DWORD err;

  SetLastError(0);
  ret = ecb->WriteClient(ecb->ConnID, unexpected, &n, HSE_IO_ASYNC); /* no completion registered */
  err = ret ? 0 : GetLastError();
  snprintf(body, sizeof body, "nocompletion ret=%d err=%lu\n", (int)ret, (unsigned long)err);
  snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "nocompletion ret=%d err=%lu", (int)ret, (unsigned long)err);
  if (!send_head(ecb, (long long)strlen(body)) || !write_text(ecb, body)) return HSE_STATUS_ERROR;
  return HSE_STATUS_SUCCESS;
}

/* mode=second: see the comment at the top. */
static DWORD run_second(struct request *req) {
  EXTENSION_CONTROL_BLOCK *ecb = req->ecb;
  static char unexpected[] = "unexpected\n";
  DWORD n = (DWORD)strlen(unexpected);

  /*
   * Three parties must be through before the final line is written: this
   * function (once it knows the second call's result), the first write's
   * completion, and the completion of the second write should the server
   * wrongly accept it. Each subtracts its share; whoever reaches 0 finishes,
   * so no thread ever waits for another.
   */
  req->parties = 3;
  strcpy(req->buffer, "first\n");
  req->io_bytes = (DWORD)strlen(req->buffer);
  if (!send_head(ecb, -1) || !ecb->WriteClient(ecb->ConnID, req->buffer, &req->io_bytes, HSE_IO_ASYNC)) {
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "second: first write failed err=%lu",
             (unsigned long)GetLastError());
    free_request(req);
    counter_add(&active_requests, -1);
    return HSE_STATUS_ERROR;
  }

  /* The first write is (probably) still outstanding: this must fail. */
  SetLastError(0);
  req->second_ret = ecb->WriteClient(ecb->ConnID, unexpected, &n, HSE_IO_ASYNC);
  req->second_err = req->second_ret ? 0 : GetLastError();

  if (counter_add(&req->parties, req->second_ret ? -1 : -2) == 0) second_finish(req);
  return HSE_STATUS_PENDING; /* req belongs to whoever finishes: do not touch it */
}

ISAPI_EXPORT DWORD WINAPI HttpExtensionProc(EXTENSION_CONTROL_BLOCK *ecb) {
  const char *qs = ecb->lpszQueryString;
  struct request *req;

  if (query_is(qs, "mode", "nocompletion")) return run_nocompletion(ecb);
  if (query_is(qs, "mode", "never")) {
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "asyncwrite never");
    return HSE_STATUS_PENDING; /* and nothing else, ever */
  }

  req = (struct request *)calloc(1, sizeof *req);
  if (req == NULL) return HSE_STATUS_ERROR;
  req->ecb = ecb;
  req->mode = query_is(qs, "mode", "second")       ? MODE_SECOND
              : query_is(qs, "mode", "done-first") ? MODE_DONE_FIRST
                                                   : MODE_CHAIN;
  req->count = query_get_ulong(qs, "count", AW_DEFAULT_COUNT);
  req->size = query_get_ulong(qs, "size", AW_DEFAULT_SIZE);
  req->delay_ms = query_get_ulong(qs, "delay", 0);
  if (req->count < 1) req->count = 1;
  if (req->count > AW_MAX_COUNT) req->count = AW_MAX_COUNT;
  if (req->size < 1) req->size = 1;
  if (req->size > AW_MAX_SIZE) req->size = AW_MAX_SIZE;
  if ((unsigned long long)req->count * req->size > 0xFFFFFFFFULL) req->count = 0xFFFFFFFFUL / req->size;
  if (req->delay_ms > 60000) req->delay_ms = 60000;
  if (req->mode == MODE_SECOND && req->size < 16) req->size = 16; /* room for "first\n" */

  req->buffer = (char *)malloc(req->size);
  if (req->buffer == NULL) {
    free(req);
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "asyncwrite: out of memory");
    return HSE_STATUS_ERROR;
  }
  counter_add(&active_requests, 1);

  if (req->mode == MODE_DONE_FIRST) {
    if (!start_thread(done_first_thread, req)) goto no_thread;
    return HSE_STATUS_PENDING;
  }

  /* Register the completion function and its context for this request. */
  if (!ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_IO_COMPLETION, (LPVOID)on_write_done, NULL,
                                  (LPDWORD)req)) {
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "asyncwrite: IO_COMPLETION failed err=%lu",
             (unsigned long)GetLastError());
    free_request(req);
    counter_add(&active_requests, -1);
    return HSE_STATUS_ERROR;
  }

  if (req->mode == MODE_SECOND) return run_second(req);

  if (query_is(qs, "thread", "1")) {
    if (!start_thread(chain_thread, req)) goto no_thread;
    return HSE_STATUS_PENDING; /* the thread owns req now */
  }

  if (!start_chain(req)) {
    /* Nothing is under way, so no completion will come: fail synchronously. */
    snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "asyncwrite writes=0 bytes=0 errors=%lu lasterr=%lu",
             req->errors, req->lasterr);
    free_request(req);
    counter_add(&active_requests, -1);
    return HSE_STATUS_ERROR;
  }
  return HSE_STATUS_PENDING; /* the completion chain owns req now: do not touch it */

no_thread:
  free_request(req);
  counter_add(&active_requests, -1);
  snprintf(ecb->lpszLogData, HSE_LOG_BUFFER_LEN, "asyncwrite: could not start a thread");
  return HSE_STATUS_ERROR;
}

/*
 * Completions and our threads run code of this library until just after
 * DONE_WITH_SESSION; wait (at most about 5 s) for them before agreeing to be
 * unloaded. (mode=never requests are not counted: they never finish.)
 */
ISAPI_EXPORT BOOL WINAPI TerminateExtension(DWORD dwFlags) {
  (void)dwFlags;
  counter_wait_zero(&active_requests, 5000);
  return TRUE;
}
