/*
 * isapi.h - build ISAPI extensions for isapi-gateway with any C compiler.
 *
 * On Windows this simply includes Microsoft's <windows.h> and <httpext.h>, so the
 * same source builds a normal IIS extension DLL. Elsewhere it declares the same
 * types with the same x64 layout (DWORD is 32 bits, pointers 64), so the source
 * also builds as a shared object that isapi-bridge loads on Linux.
 *
 * Off Windows, SetLastError/GetLastError map to errno: the bridge stores the
 * Win32 error code (ERROR_INSUFFICIENT_BUFFER = 122, ...) in the calling
 * thread's errno, exactly where IIS would have set the thread's last error.
 *
 * Values and layouts follow Microsoft's httpext.h; bridge/abi/constants.ts holds
 * the same numbers for the bridge and a test keeps the two identical.
 */
#ifndef ISAPI_GATEWAY_ISAPI_H
#define ISAPI_GATEWAY_ISAPI_H

#if defined(_WIN32)

#include <windows.h>
#include <httpext.h>

#else /* !_WIN32 */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint32_t DWORD;
typedef DWORD *LPDWORD;
typedef int32_t BOOL;
typedef uint8_t BYTE;
typedef BYTE *LPBYTE;
typedef char CHAR;
typedef char *LPSTR;
typedef const char *LPCSTR;
typedef void VOID;
typedef void *LPVOID;
typedef void *PVOID;
typedef void *HANDLE;
typedef void *HCONN;
typedef uint16_t USHORT;
typedef uint16_t WCHAR; /* UTF-16, as on Windows (wchar_t is 32 bits on Linux) */
typedef WCHAR *LPWSTR;
typedef uint64_t ULONGLONG;

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif
#define WINAPI
#define MAKELONG(lo, hi) ((DWORD)(((DWORD)(uint16_t)(lo)) | (((DWORD)(uint16_t)(hi)) << 16)))
#define INVALID_HANDLE_VALUE ((HANDLE)(intptr_t)-1)

static inline DWORD GetLastError(void) { return (DWORD)errno; }
static inline void SetLastError(DWORD code) { errno = (int)code; }

#define ERROR_SUCCESS 0
#define ERROR_INVALID_FUNCTION 1
#define ERROR_FILE_NOT_FOUND 2
#define ERROR_ACCESS_DENIED 5
#define ERROR_INVALID_HANDLE 6
#define ERROR_NOT_ENOUGH_MEMORY 8
#define ERROR_WRITE_FAULT 29
#define ERROR_READ_FAULT 30
#define ERROR_HANDLE_EOF 38
#define ERROR_NOT_SUPPORTED 50
#define ERROR_NETNAME_DELETED 64
#define ERROR_INVALID_PARAMETER 87
#define ERROR_SEM_TIMEOUT 121
#define ERROR_INSUFFICIENT_BUFFER 122
#define ERROR_BUSY 170
#define ERROR_NO_DATA 232
#define ERROR_OPERATION_ABORTED 995
#define ERROR_IO_PENDING 997
#define ERROR_CONNECTION_ABORTED 1236
#define ERROR_INVALID_INDEX 1413
#define ERROR_TIMEOUT 1460

#define HSE_VERSION_MAJOR 6
#define HSE_VERSION_MINOR 0
#define HSE_VERSION MAKELONG(HSE_VERSION_MINOR, HSE_VERSION_MAJOR)
#define HSE_LOG_BUFFER_LEN 80
#define HSE_MAX_EXT_DLL_NAME_LEN 256

#define HSE_STATUS_SUCCESS 1
#define HSE_STATUS_SUCCESS_AND_KEEP_CONN 2
#define HSE_STATUS_PENDING 3
#define HSE_STATUS_ERROR 4

#define HSE_REQ_BASE 0
#define HSE_REQ_SEND_URL_REDIRECT_RESP 1
#define HSE_REQ_SEND_URL 2
#define HSE_REQ_SEND_RESPONSE_HEADER 3
#define HSE_REQ_DONE_WITH_SESSION 4
#define HSE_REQ_END_RESERVED 1000
#define HSE_REQ_MAP_URL_TO_PATH 1001
#define HSE_REQ_GET_SSPI_INFO 1002
#define HSE_APPEND_LOG_PARAMETER 1003
#define HSE_REQ_IO_COMPLETION 1005
#define HSE_REQ_TRANSMIT_FILE 1006
#define HSE_REQ_REFRESH_ISAPI_ACL 1007
#define HSE_REQ_IS_KEEP_CONN 1008
#define HSE_REQ_ASYNC_READ_CLIENT 1010
#define HSE_REQ_GET_IMPERSONATION_TOKEN 1011
#define HSE_REQ_MAP_URL_TO_PATH_EX 1012
#define HSE_REQ_ABORTIVE_CLOSE 1014
#define HSE_REQ_GET_CERT_INFO_EX 1015
#define HSE_REQ_SEND_RESPONSE_HEADER_EX 1016
#define HSE_REQ_CLOSE_CONNECTION 1017
#define HSE_REQ_IS_CONNECTED 1018
#define HSE_REQ_MAP_UNICODE_URL_TO_PATH 1023
#define HSE_REQ_MAP_UNICODE_URL_TO_PATH_EX 1024
#define HSE_REQ_EXEC_UNICODE_URL 1025
#define HSE_REQ_EXEC_URL 1026
#define HSE_REQ_GET_EXEC_URL_STATUS 1027
#define HSE_REQ_SEND_CUSTOM_ERROR 1028
#define HSE_REQ_IS_IN_PROCESS 1030
#define HSE_REQ_REPORT_UNHEALTHY 1032
#define HSE_REQ_NORMALIZE_URL 1033
#define HSE_REQ_VECTOR_SEND 1037
#define HSE_REQ_GET_ANONYMOUS_TOKEN 1038
#define HSE_REQ_GET_CACHE_INVALIDATION_CALLBACK 1040
#define HSE_REQ_GET_UNICODE_ANONYMOUS_TOKEN 1041
#define HSE_REQ_GET_TRACE_INFO 1042
#define HSE_REQ_SET_FLUSH_FLAG 1043
#define HSE_REQ_GET_TRACE_INFO_EX 1044
#define HSE_REQ_RAISE_TRACE_EVENT 1045
#define HSE_REQ_GET_CONFIG_OBJECT 1046
#define HSE_REQ_GET_WORKER_PROCESS_SETTINGS 1047
#define HSE_REQ_GET_PROTOCOL_MANAGER_CUSTOM_INTERFACE_CALLBACK 1048
#define HSE_REQ_CANCEL_IO 1049
#define HSE_REQ_GET_CHANNEL_BINDING_TOKEN 1050

#define HSE_TERM_ADVISORY_UNLOAD 1
#define HSE_TERM_MUST_UNLOAD 2

#define HSE_IO_SYNC 0x00000001
#define HSE_IO_ASYNC 0x00000002
#define HSE_IO_DISCONNECT_AFTER_SEND 0x00000004
#define HSE_IO_SEND_HEADERS 0x00000008
#define HSE_IO_FINAL_SEND 0x00000010
#define HSE_IO_CACHE_RESPONSE 0x00000020
#define HSE_IO_TRY_SKIP_CUSTOM_ERRORS 0x00000040
#define HSE_IO_NODELAY 0x00001000

#define HSE_URL_FLAGS_READ 0x00000001
#define HSE_URL_FLAGS_WRITE 0x00000002
#define HSE_URL_FLAGS_EXECUTE 0x00000004
#define HSE_URL_FLAGS_SSL 0x00000008
#define HSE_URL_FLAGS_DONT_CACHE 0x00000010
#define HSE_URL_FLAGS_NEGO_CERT 0x00000020
#define HSE_URL_FLAGS_REQUIRE_CERT 0x00000040
#define HSE_URL_FLAGS_MAP_CERT 0x00000080
#define HSE_URL_FLAGS_SSL128 0x00000100
#define HSE_URL_FLAGS_SCRIPT 0x00000200

#define HSE_VECTOR_ELEMENT_TYPE_MEMORY_BUFFER 0
#define HSE_VECTOR_ELEMENT_TYPE_FILE_HANDLE 1

typedef struct _HSE_VERSION_INFO {
  DWORD dwExtensionVersion;
  CHAR lpszExtensionDesc[HSE_MAX_EXT_DLL_NAME_LEN];
} HSE_VERSION_INFO, *LPHSE_VERSION_INFO;

typedef struct _EXTENSION_CONTROL_BLOCK EXTENSION_CONTROL_BLOCK, *LPEXTENSION_CONTROL_BLOCK;

struct _EXTENSION_CONTROL_BLOCK {
  DWORD cbSize;
  DWORD dwVersion;
  HCONN ConnID;
  DWORD dwHttpStatusCode;
  CHAR lpszLogData[HSE_LOG_BUFFER_LEN];
  LPSTR lpszMethod;
  LPSTR lpszQueryString;
  LPSTR lpszPathInfo;
  LPSTR lpszPathTranslated;
  DWORD cbTotalBytes;
  DWORD cbAvailable;
  LPBYTE lpbData;
  LPSTR lpszContentType;
  BOOL(WINAPI *GetServerVariable)(HCONN hConn, LPSTR lpszVariableName, LPVOID lpvBuffer, LPDWORD lpdwSize);
  BOOL(WINAPI *WriteClient)(HCONN ConnID, LPVOID Buffer, LPDWORD lpdwBytes, DWORD dwReserved);
  BOOL(WINAPI *ReadClient)(HCONN ConnID, LPVOID lpvBuffer, LPDWORD lpdwSize);
  BOOL(WINAPI *ServerSupportFunction)(HCONN hConn, DWORD dwHSERequest, LPVOID lpvBuffer, LPDWORD lpdwSize,
                                      LPDWORD lpdwDataType);
};

typedef VOID(WINAPI *PFN_HSE_IO_COMPLETION)(EXTENSION_CONTROL_BLOCK *pECB, PVOID pContext, DWORD cbIO,
                                            DWORD dwError);

typedef struct _HSE_TF_INFO {
  PFN_HSE_IO_COMPLETION pfnHseIO;
  PVOID pContext;
  HANDLE hFile;
  LPCSTR pszStatusCode;
  DWORD BytesToWrite;
  DWORD Offset;
  PVOID pHead;
  DWORD HeadLength;
  PVOID pTail;
  DWORD TailLength;
  DWORD dwFlags;
} HSE_TF_INFO, *LPHSE_TF_INFO;

typedef struct _HSE_SEND_HEADER_EX_INFO {
  LPCSTR pszStatus;
  LPCSTR pszHeader;
  DWORD cchStatus;
  DWORD cchHeader;
  BOOL fKeepConn;
} HSE_SEND_HEADER_EX_INFO, *LPHSE_SEND_HEADER_EX_INFO;

typedef struct _HSE_URL_MAPEX_INFO {
  CHAR lpszPath[260];
  DWORD dwFlags;
  DWORD cchMatchingPath;
  DWORD cchMatchingURL;
  DWORD dwReserved1;
  DWORD dwReserved2;
} HSE_URL_MAPEX_INFO, *LPHSE_URL_MAPEX_INFO;

typedef struct _HSE_UNICODE_URL_MAPEX_INFO {
  WCHAR lpszPath[260];
  DWORD dwFlags;
  DWORD cchMatchingPath;
  DWORD cchMatchingURL;
} HSE_UNICODE_URL_MAPEX_INFO, *LPHSE_UNICODE_URL_MAPEX_INFO;

typedef struct _HSE_VECTOR_ELEMENT {
  DWORD ElementType;
  PVOID pvContext;
  ULONGLONG cbOffset;
  ULONGLONG cbSize;
} HSE_VECTOR_ELEMENT, *LPHSE_VECTOR_ELEMENT;

typedef struct _HSE_RESPONSE_VECTOR {
  DWORD dwFlags;
  LPSTR pszStatus;
  LPSTR pszHeaders;
  DWORD nElementCount;
  LPHSE_VECTOR_ELEMENT lpElementArray;
} HSE_RESPONSE_VECTOR, *LPHSE_RESPONSE_VECTOR;

typedef struct _HSE_EXEC_URL_USER_INFO {
  HANDLE hImpersonationToken;
  LPSTR pszCustomUserName;
  LPSTR pszCustomAuthType;
} HSE_EXEC_URL_USER_INFO, *LPHSE_EXEC_URL_USER_INFO;

typedef struct _HSE_EXEC_URL_ENTITY_INFO {
  DWORD cbAvailable;
  LPVOID lpbData;
} HSE_EXEC_URL_ENTITY_INFO, *LPHSE_EXEC_URL_ENTITY_INFO;

typedef struct _HSE_EXEC_URL_INFO {
  LPSTR pszUrl;
  LPSTR pszMethod;
  LPSTR pszChildHeaders;
  LPHSE_EXEC_URL_USER_INFO pUserInfo;
  LPHSE_EXEC_URL_ENTITY_INFO pEntity;
  DWORD dwExecUrlFlags;
} HSE_EXEC_URL_INFO, *LPHSE_EXEC_URL_INFO;

typedef struct _HSE_EXEC_UNICODE_URL_USER_INFO {
  HANDLE hImpersonationToken;
  LPWSTR pszCustomUserName;
  LPSTR pszCustomAuthType;
} HSE_EXEC_UNICODE_URL_USER_INFO, *LPHSE_EXEC_UNICODE_URL_USER_INFO;

typedef struct _HSE_EXEC_UNICODE_URL_INFO {
  LPWSTR pszUrl;
  LPSTR pszMethod;
  LPSTR pszChildHeaders;
  LPHSE_EXEC_UNICODE_URL_USER_INFO pUserInfo;
  LPHSE_EXEC_URL_ENTITY_INFO pEntity;
  DWORD dwExecUrlFlags;
} HSE_EXEC_UNICODE_URL_INFO, *LPHSE_EXEC_UNICODE_URL_INFO;

typedef struct _HSE_EXEC_URL_STATUS {
  USHORT uHttpStatusCode;
  USHORT uHttpSubStatus;
  DWORD dwWin32Error;
} HSE_EXEC_URL_STATUS, *LPHSE_EXEC_URL_STATUS;

typedef struct _HSE_CUSTOM_ERROR_INFO {
  CHAR *pszStatus;
  USHORT uHttpSubError;
  BOOL fAsync;
} HSE_CUSTOM_ERROR_INFO, *LPHSE_CUSTOM_ERROR_INFO;

/* The three exports, as httpext.h declares them. */
BOOL WINAPI GetExtensionVersion(HSE_VERSION_INFO *pVer);
DWORD WINAPI HttpExtensionProc(EXTENSION_CONTROL_BLOCK *pECB);
BOOL WINAPI TerminateExtension(DWORD dwFlags);
typedef BOOL(WINAPI *PFN_GETEXTENSIONVERSION)(HSE_VERSION_INFO *pVer);
typedef DWORD(WINAPI *PFN_HTTPEXTENSIONPROC)(EXTENSION_CONTROL_BLOCK *pECB);
typedef BOOL(WINAPI *PFN_TERMINATEEXTENSION)(DWORD dwFlags);

#define MAX_PATH 260
#define ERROR_MORE_DATA 234

#define HSE_EXEC_URL_NO_HEADERS 0x02
#define HSE_EXEC_URL_IGNORE_CURRENT_INTERCEPTOR 0x04
#define HSE_EXEC_URL_IGNORE_VALIDATION_AND_RANGE 0x10
#define HSE_EXEC_URL_DISABLE_CUSTOM_ERROR 0x20
#define HSE_EXEC_URL_SSI_CMD 0x40
#define HSE_EXEC_URL_HTTP_CACHE_ELIGIBLE 0x80

#ifdef __cplusplus
}
#endif

#endif /* _WIN32 */

/* Extensions export these three; the bridge resolves them by name. */
#if defined(_WIN32)
#define ISAPI_EXPORT __declspec(dllexport)
#else
#define ISAPI_EXPORT __attribute__((visibility("default")))
#endif

#endif /* ISAPI_GATEWAY_ISAPI_H */
