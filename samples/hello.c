/*
 * hello.c - the smallest complete ISAPI extension.
 *
 *   GET /scripts/hello.dll   ->   200 OK, text/plain, "Hello from ISAPI!\n"
 *
 * An ISAPI extension is a DLL (a .so on Linux) that exports up to three
 * functions, looked up by name when the server loads it:
 *
 *   GetExtensionVersion  called once, right after loading; fills in the ISAPI
 *                        version the extension was written against.
 *   HttpExtensionProc    called once per request, with an EXTENSION_CONTROL_BLOCK
 *                        (ECB) describing the request and the callbacks used to
 *                        answer it.
 *   TerminateExtension   optional; called once before the server unloads it.
 *
 * This file builds unchanged with Visual C++ or MinGW (as an IIS extension DLL)
 * and with gcc/clang on Linux (as a shared object for isapi-gateway):
 *
 *   gcc -shared -fPIC -I bridge/include -o hello.so samples/hello.c
 *   x86_64-w64-mingw32-gcc -shared -I bridge/include -o hello.dll samples/hello.c
 */
#include <stdio.h>
#include <string.h>

/* On Windows this pulls in <windows.h> and <httpext.h>; elsewhere it declares
 * the same types and constants. ISAPI_EXPORT marks the exported functions. */
#include "isapi.h"

/*
 * GetExtensionVersion: report the ISAPI version we were built against
 * (HSE_VERSION, i.e. 6.0) and a short description. Returning FALSE would make
 * the server refuse to load the extension.
 */
ISAPI_EXPORT BOOL WINAPI GetExtensionVersion(HSE_VERSION_INFO *pVer) {
  pVer->dwExtensionVersion = HSE_VERSION;
  snprintf(pVer->lpszExtensionDesc, sizeof pVer->lpszExtensionDesc, "%s", "hello sample");
  return TRUE;
}

/*
 * HttpExtensionProc: answer one request. Everything goes through the ECB:
 * ecb->ConnID identifies the request and is passed back to every callback.
 */
ISAPI_EXPORT DWORD WINAPI HttpExtensionProc(EXTENSION_CONTROL_BLOCK *ecb) {
  char body[] = "Hello from ISAPI!\n";
  DWORD body_len = (DWORD)(sizeof body - 1); /* 18: the bytes we send, without the NUL */
  char headers[128];
  HSE_SEND_HEADER_EX_INFO hdr;

  /*
   * 1. The response head. HSE_REQ_SEND_RESPONSE_HEADER_EX takes the status line
   *    (without "HTTP/1.1 ") and a block of header lines. The header block must
   *    end with an empty line ("\r\n\r\n"): everything written afterwards with
   *    WriteClient is the body. Sending Content-Length lets the server keep the
   *    connection alive without chunking.
   */
  snprintf(headers, sizeof headers, "Content-Type: text/plain\r\nContent-Length: %lu\r\n\r\n",
           (unsigned long)body_len);

  hdr.pszStatus = "200 OK";
  hdr.cchStatus = (DWORD)strlen(hdr.pszStatus);
  hdr.pszHeader = headers;
  hdr.cchHeader = (DWORD)strlen(headers);
  hdr.fKeepConn = TRUE; /* we announced the length, so keep-alive is safe */

  if (!ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_SEND_RESPONSE_HEADER_EX, &hdr, NULL, NULL)) {
    return HSE_STATUS_ERROR; /* the client is probably gone */
  }

  /*
   * 2. The body. WriteClient takes a pointer to the byte count: on return it
   *    holds how many bytes were actually sent. HSE_IO_SYNC means "return when
   *    the data has been handed to the server" (the usual mode).
   */
  if (!ecb->WriteClient(ecb->ConnID, body, &body_len, HSE_IO_SYNC)) {
    return HSE_STATUS_ERROR;
  }

  /* 3. Done: the request is complete as soon as we return. */
  return HSE_STATUS_SUCCESS;
}

/*
 * TerminateExtension: the server is about to unload us. dwFlags is
 * HSE_TERM_MUST_UNLOAD (we cannot refuse) or HSE_TERM_ADVISORY_UNLOAD (returning
 * FALSE would ask to stay loaded). A real extension frees its global state here.
 */
ISAPI_EXPORT BOOL WINAPI TerminateExtension(DWORD dwFlags) {
  (void)dwFlags;
  return TRUE;
}
