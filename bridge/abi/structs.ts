/**
 * koffi definitions of the httpext.h structures, x64 layout (LLP64 on Windows,
 * LP64 elsewhere: DWORD is always 32 bits, pointers and HANDLEs 64).
 *
 * These are the only struct layouts in TypeScript. `test/abi-layout.test.ts`
 * compiles bridge/include/isapi.h and compares every sizeof/offsetof with these.
 *
 * The structs are anonymous to koffi: named types live in one registry per
 * process, and a module evaluated twice (test runners do) would collide with itself.
 * Their C names are the keys of STRUCTS.
 */
import koffi, { type TypeObject } from 'koffi';

export const HSE_VERSION_INFO = koffi.struct({
  dwExtensionVersion: 'uint32_t',
  lpszExtensionDesc: koffi.array('char', 256, 'Array'),
});

export const EXTENSION_CONTROL_BLOCK = koffi.struct({
  cbSize: 'uint32_t',
  dwVersion: 'uint32_t',
  ConnID: 'uintptr_t',
  dwHttpStatusCode: 'uint32_t',
  lpszLogData: koffi.array('char', 80, 'Array'),
  lpszMethod: 'void *',
  lpszQueryString: 'void *',
  lpszPathInfo: 'void *',
  lpszPathTranslated: 'void *',
  cbTotalBytes: 'uint32_t',
  cbAvailable: 'uint32_t',
  lpbData: 'void *',
  lpszContentType: 'void *',
  GetServerVariable: 'void *',
  WriteClient: 'void *',
  ReadClient: 'void *',
  ServerSupportFunction: 'void *',
});

export const HSE_TF_INFO = koffi.struct({
  pfnHseIO: 'void *',
  pContext: 'void *',
  hFile: 'void *',
  pszStatusCode: 'void *',
  BytesToWrite: 'uint32_t',
  Offset: 'uint32_t',
  pHead: 'void *',
  HeadLength: 'uint32_t',
  pTail: 'void *',
  TailLength: 'uint32_t',
  dwFlags: 'uint32_t',
});

export const HSE_SEND_HEADER_EX_INFO = koffi.struct({
  pszStatus: 'void *',
  pszHeader: 'void *',
  cchStatus: 'uint32_t',
  cchHeader: 'uint32_t',
  fKeepConn: 'int32_t',
});

export const HSE_URL_MAPEX_INFO = koffi.struct({
  lpszPath: koffi.array('char', 260, 'Array'),
  dwFlags: 'uint32_t',
  cchMatchingPath: 'uint32_t',
  cchMatchingURL: 'uint32_t',
  dwReserved1: 'uint32_t',
  dwReserved2: 'uint32_t',
});

export const HSE_VECTOR_ELEMENT = koffi.struct({
  ElementType: 'uint32_t',
  pvContext: 'void *',
  cbOffset: 'uint64_t',
  cbSize: 'uint64_t',
});

export const HSE_RESPONSE_VECTOR = koffi.struct({
  dwFlags: 'uint32_t',
  pszStatus: 'void *',
  pszHeaders: 'void *',
  nElementCount: 'uint32_t',
  lpElementArray: 'void *',
});

export const HSE_EXEC_URL_INFO = koffi.struct({
  pszUrl: 'void *',
  pszMethod: 'void *',
  pszChildHeaders: 'void *',
  pUserInfo: 'void *',
  pEntity: 'void *',
  dwExecUrlFlags: 'uint32_t',
});

/** HSE_EXEC_URL_INFO with a WCHAR URL (HSE_REQ_EXEC_UNICODE_URL). */
export const HSE_EXEC_UNICODE_URL_INFO = koffi.struct({
  pszUrl: 'void *',
  pszMethod: 'void *',
  pszChildHeaders: 'void *',
  pUserInfo: 'void *',
  pEntity: 'void *',
  dwExecUrlFlags: 'uint32_t',
});

export const HSE_UNICODE_URL_MAPEX_INFO = koffi.struct({
  lpszPath: koffi.array('uint16_t', 260, 'Array'),
  dwFlags: 'uint32_t',
  cchMatchingPath: 'uint32_t',
  cchMatchingURL: 'uint32_t',
});

export const HSE_EXEC_URL_STATUS = koffi.struct({
  uHttpStatusCode: 'uint16_t',
  uHttpSubStatus: 'uint16_t',
  dwWin32Error: 'uint32_t',
});

export const HSE_CUSTOM_ERROR_INFO = koffi.struct({
  pszStatus: 'void *',
  uHttpSubError: 'uint16_t',
  fAsync: 'int32_t',
});

/** Every struct above by its C name, for the layout test and for offset tables. */
export const STRUCTS = {
  HSE_VERSION_INFO,
  EXTENSION_CONTROL_BLOCK,
  HSE_TF_INFO,
  HSE_SEND_HEADER_EX_INFO,
  HSE_URL_MAPEX_INFO,
  HSE_VECTOR_ELEMENT,
  HSE_RESPONSE_VECTOR,
  HSE_EXEC_URL_INFO,
  HSE_EXEC_UNICODE_URL_INFO,
  HSE_UNICODE_URL_MAPEX_INFO,
  HSE_EXEC_URL_STATUS,
  HSE_CUSTOM_ERROR_INFO,
} as const;

export type StructName = keyof typeof STRUCTS;

/** Byte offsets of every member, read from koffi so the ECB writer never hard-codes a number. */
export function offsetsOf<const M extends string>(struct: TypeObject, members: readonly M[]): Record<M, number> {
  const out = {} as Record<M, number>;
  for (const m of members) out[m] = koffi.offsetof(struct, m);
  return out;
}

export const ECB = offsetsOf(EXTENSION_CONTROL_BLOCK, [
  'cbSize',
  'dwVersion',
  'ConnID',
  'dwHttpStatusCode',
  'lpszLogData',
  'lpszMethod',
  'lpszQueryString',
  'lpszPathInfo',
  'lpszPathTranslated',
  'cbTotalBytes',
  'cbAvailable',
  'lpbData',
  'lpszContentType',
  'GetServerVariable',
  'WriteClient',
  'ReadClient',
  'ServerSupportFunction',
] as const);
export const ECB_SIZE = koffi.sizeof(EXTENSION_CONTROL_BLOCK);

export const SEND_HEADER_EX = offsetsOf(HSE_SEND_HEADER_EX_INFO, ['pszStatus', 'pszHeader', 'cchStatus', 'cchHeader', 'fKeepConn'] as const);

export const VERSION_INFO_SIZE = koffi.sizeof(HSE_VERSION_INFO);

export const TF_INFO = offsetsOf(HSE_TF_INFO, [
  'pfnHseIO',
  'pContext',
  'hFile',
  'pszStatusCode',
  'BytesToWrite',
  'Offset',
  'pHead',
  'HeadLength',
  'pTail',
  'TailLength',
  'dwFlags',
] as const);

export const RESPONSE_VECTOR = offsetsOf(HSE_RESPONSE_VECTOR, ['dwFlags', 'pszStatus', 'pszHeaders', 'nElementCount', 'lpElementArray'] as const);

export const VECTOR_ELEMENT = offsetsOf(HSE_VECTOR_ELEMENT, ['ElementType', 'pvContext', 'cbOffset', 'cbSize'] as const);

export const EXEC_URL_INFO = offsetsOf(HSE_EXEC_URL_INFO, ['pszUrl', 'pszMethod', 'pszChildHeaders', 'pUserInfo', 'pEntity', 'dwExecUrlFlags'] as const);

export const EXEC_UNICODE_URL_INFO = offsetsOf(HSE_EXEC_UNICODE_URL_INFO, ['pszUrl', 'pszMethod', 'pszChildHeaders', 'pUserInfo', 'pEntity', 'dwExecUrlFlags'] as const);

export const UNICODE_URL_MAPEX = offsetsOf(HSE_UNICODE_URL_MAPEX_INFO, ['lpszPath', 'dwFlags', 'cchMatchingPath', 'cchMatchingURL'] as const);

export const CUSTOM_ERROR = offsetsOf(HSE_CUSTOM_ERROR_INFO, ['pszStatus', 'uHttpSubError', 'fAsync'] as const);

/** sizeof of every struct, by C name. */
export const sizeOf = Object.fromEntries(Object.entries(STRUCTS).map(([name, type]) => [name, koffi.sizeof(type)])) as Record<StructName, number>;
