/*
 * versionfalse.c - failure fixture: GetExtensionVersion refuses to load.
 *
 * Returning FALSE from GetExtensionVersion tells the server the extension
 * cannot run (a missing configuration file, say): the server must report the
 * load as failed and never send it a request. GetLastError() is set to
 * ERROR_NOT_SUPPORTED (50) as a hint.
 *
 * HttpExtensionProc exists so that the only reason for the failure is the
 * FALSE; if a server calls it anyway it answers 500 "versionfalse: should not
 * be reached\n".
 */
#include <stdio.h>
#include <string.h>

#include "isapi.h"

ISAPI_EXPORT BOOL WINAPI GetExtensionVersion(HSE_VERSION_INFO *pVer) {
  pVer->dwExtensionVersion = HSE_VERSION;
  snprintf(pVer->lpszExtensionDesc, sizeof pVer->lpszExtensionDesc, "%s", "versionfalse fixture");
  SetLastError(ERROR_NOT_SUPPORTED);
  return FALSE;
}

ISAPI_EXPORT DWORD WINAPI HttpExtensionProc(EXTENSION_CONTROL_BLOCK *ecb) {
  static const char headers[] = "Content-Type: text/plain\r\n\r\n";
  char body[] = "versionfalse: should not be reached\n";
  DWORD len = (DWORD)strlen(body);
  ecb->ServerSupportFunction(ecb->ConnID, HSE_REQ_SEND_RESPONSE_HEADER, (LPVOID) "500 Internal Server Error", NULL,
                             (LPDWORD)headers);
  ecb->WriteClient(ecb->ConnID, body, &len, HSE_IO_SYNC);
  return HSE_STATUS_SUCCESS;
}
