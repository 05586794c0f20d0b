/**
 * ISAPI constants, exactly as Microsoft's httpext.h defines them.
 *
 * This is the only place in TypeScript where these numbers live. The C header
 * `bridge/include/isapi.h` carries the same values for extensions built with gcc;
 * `test/abi-layout.test.ts` compiles that header and fails if the two ever differ.
 */

/** HSE_VERSION = MAKELONG(HSE_VERSION_MINOR = 0, HSE_VERSION_MAJOR = 6). */
export const HSE_VERSION_MAJOR = 6;
export const HSE_VERSION_MINOR = 0;
export const HSE_VERSION = (HSE_VERSION_MAJOR << 16) | HSE_VERSION_MINOR;

export const HSE_LOG_BUFFER_LEN = 80;
export const HSE_MAX_EXT_DLL_NAME_LEN = 256;

/** Return values of HttpExtensionProc and the optional DWORD of DONE_WITH_SESSION. */
export const HSE_STATUS = {
  SUCCESS: 1,
  SUCCESS_AND_KEEP_CONN: 2,
  PENDING: 3,
  ERROR: 4,
} as const;

/** TerminateExtension flags. mod_isapi swaps these; the values below are Microsoft's. */
export const HSE_TERM = {
  ADVISORY_UNLOAD: 1,
  MUST_UNLOAD: 2,
} as const;

/** dwFlags of WriteClient, HSE_TF_INFO and HSE_RESPONSE_VECTOR. */
export const HSE_IO = {
  SYNC: 0x1,
  ASYNC: 0x2,
  DISCONNECT_AFTER_SEND: 0x4,
  SEND_HEADERS: 0x8,
  FINAL_SEND: 0x10,
  CACHE_RESPONSE: 0x20,
  TRY_SKIP_CUSTOM_ERRORS: 0x40,
  NODELAY: 0x1000,
} as const;

/** dwFlags of HSE_URL_MAPEX_INFO. */
export const HSE_URL_FLAGS = {
  READ: 0x1,
  WRITE: 0x2,
  EXECUTE: 0x4,
  SSL: 0x8,
  DONT_CACHE: 0x10,
  NEGO_CERT: 0x20,
  REQUIRE_CERT: 0x40,
  MAP_CERT: 0x80,
  SSL128: 0x100,
  SCRIPT: 0x200,
} as const;

/** HSE_EXEC_URL_INFO.dwExecUrlFlags. */
export const HSE_EXEC_URL = {
  NO_HEADERS: 0x02,
  IGNORE_CURRENT_INTERCEPTOR: 0x04,
  IGNORE_VALIDATION_AND_RANGE: 0x10,
  DISABLE_CUSTOM_ERROR: 0x20,
  SSI_CMD: 0x40,
  HTTP_CACHE_ELIGIBLE: 0x80,
} as const;

/** ServerSupportFunction request codes (dwHSERequest). */
export const HSE_REQ = {
  SEND_URL_REDIRECT_RESP: 1,
  SEND_URL: 2,
  SEND_RESPONSE_HEADER: 3,
  DONE_WITH_SESSION: 4,
  MAP_URL_TO_PATH: 1001,
  GET_SSPI_INFO: 1002,
  APPEND_LOG_PARAMETER: 1003,
  IO_COMPLETION: 1005,
  TRANSMIT_FILE: 1006,
  REFRESH_ISAPI_ACL: 1007,
  IS_KEEP_CONN: 1008,
  ASYNC_READ_CLIENT: 1010,
  GET_IMPERSONATION_TOKEN: 1011,
  MAP_URL_TO_PATH_EX: 1012,
  ABORTIVE_CLOSE: 1014,
  GET_CERT_INFO_EX: 1015,
  SEND_RESPONSE_HEADER_EX: 1016,
  CLOSE_CONNECTION: 1017,
  IS_CONNECTED: 1018,
  MAP_UNICODE_URL_TO_PATH: 1023,
  MAP_UNICODE_URL_TO_PATH_EX: 1024,
  EXEC_UNICODE_URL: 1025,
  EXEC_URL: 1026,
  GET_EXEC_URL_STATUS: 1027,
  SEND_CUSTOM_ERROR: 1028,
  IS_IN_PROCESS: 1030,
  REPORT_UNHEALTHY: 1032,
  NORMALIZE_URL: 1033,
  VECTOR_SEND: 1037,
  GET_ANONYMOUS_TOKEN: 1038,
  GET_CACHE_INVALIDATION_CALLBACK: 1040,
  GET_UNICODE_ANONYMOUS_TOKEN: 1041,
  GET_TRACE_INFO: 1042,
  SET_FLUSH_FLAG: 1043,
  GET_TRACE_INFO_EX: 1044,
  RAISE_TRACE_EVENT: 1045,
  GET_CONFIG_OBJECT: 1046,
  GET_WORKER_PROCESS_SETTINGS: 1047,
  GET_PROTOCOL_MANAGER_CUSTOM_INTERFACE_CALLBACK: 1048,
  CANCEL_IO: 1049,
  GET_CHANNEL_BINDING_TOKEN: 1050,
} as const;

export type HseRequestName = keyof typeof HSE_REQ;

const requestNames = new Map<number, HseRequestName>(
  (Object.keys(HSE_REQ) as HseRequestName[]).map((name) => [HSE_REQ[name], name]),
);

/** The symbolic name of an SSF code, or "UNKNOWN" (a bounded label for metrics and logs). */
export function hseRequestName(code: number): HseRequestName | 'UNKNOWN' {
  return requestNames.get(code) ?? 'UNKNOWN';
}

/** Win32 error codes an extension can read with GetLastError() (errno off Windows). */
export const WIN32_ERROR = {
  SUCCESS: 0,
  INVALID_FUNCTION: 1,
  FILE_NOT_FOUND: 2,
  ACCESS_DENIED: 5,
  INVALID_HANDLE: 6,
  NOT_ENOUGH_MEMORY: 8,
  READ_FAULT: 30,
  WRITE_FAULT: 29,
  HANDLE_EOF: 38,
  NOT_SUPPORTED: 50,
  NETNAME_DELETED: 64,
  INVALID_PARAMETER: 87,
  SEM_TIMEOUT: 121,
  INSUFFICIENT_BUFFER: 122,
  IO_PENDING: 997,
  NO_DATA: 232,
  /** A second asynchronous operation while one is outstanding (IIS allows one per request). */
  BUSY: 170,
  OPERATION_ABORTED: 995,
  CONNECTION_ABORTED: 1236,
  INVALID_INDEX: 1413,
  TIMEOUT: 1460,
  /** WSAEINVAL: HSE_TF_INFO.Offset past end of file (Microsoft's TransmitFile). */
  WSAEINVAL: 10022,
  WSAECONNABORTED: 10053,
  WSAECONNRESET: 10054,
} as const;
