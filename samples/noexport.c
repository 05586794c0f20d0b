/*
 * noexport.c - failure fixture: a library that is not a complete extension.
 *
 * It exports GetExtensionVersion (which succeeds) but no HttpExtensionProc, so
 * the server must refuse to load it with a clear error instead of crashing on
 * the first request. (IIS answers such a mapping with a 500.)
 */
#include <stdio.h>

#include "isapi.h"

ISAPI_EXPORT BOOL WINAPI GetExtensionVersion(HSE_VERSION_INFO *pVer) {
  pVer->dwExtensionVersion = HSE_VERSION;
  snprintf(pVer->lpszExtensionDesc, sizeof pVer->lpszExtensionDesc, "%s", "noexport fixture");
  return TRUE;
}

/* Deliberately no HttpExtensionProc. */
