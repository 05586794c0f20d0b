/**
 * Label vocabulary of every isapi-gateway metric, and the normalisers that turn raw
 * values (HTTP methods, status codes, Win32 error codes, SSF names, socket errors)
 * into a small fixed set of label values.
 *
 * Cardinality rule: a label value is either taken from configuration (app, route,
 * bridge, upstream, target — bounded by the config file) or is one of the enums below.
 * Nothing from a request (path, query, header, raw method) ever becomes a label.
 */
import { WIN32_ERROR } from '../bridge/abi/constants';

export const METHOD_CLASSES = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OTHER'] as const;
export type MethodClass = (typeof METHOD_CLASSES)[number];

export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'other'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

/** How an extension called WriteClient/ReadClient: plain call, or HSE_IO_ASYNC / HSE_REQ_ASYNC_READ_CLIENT. */
export const IO_MODES = ['sync', 'async'] as const;
export type IoMode = (typeof IO_MODES)[number];

/** Kinds of asynchronous operation an extension can have outstanding. */
export const ASYNC_OP_KINDS = ['write', 'read', 'transmit_file', 'vector_send'] as const;
export type AsyncOpKind = (typeof ASYNC_OP_KINDS)[number];

/** Outcome of a ServerSupportFunction call. */
export const SSF_RESULTS = ['ok', 'error', 'unsupported'] as const;
export type SsfResult = (typeof SSF_RESULTS)[number];

/**
 * ServerSupportFunction request names (the HSE_REQ_* constants without the prefix),
 * identical to the keys of HSE_REQ in bridge/abi/constants.ts (a test keeps them equal),
 * plus UNKNOWN for any other dwHSERequest value.
 */
export const SSF_REQUEST_NAMES = [
  'SEND_URL_REDIRECT_RESP',
  'SEND_URL',
  'SEND_RESPONSE_HEADER',
  'DONE_WITH_SESSION',
  'MAP_URL_TO_PATH',
  'GET_SSPI_INFO',
  'APPEND_LOG_PARAMETER',
  'IO_COMPLETION',
  'TRANSMIT_FILE',
  'REFRESH_ISAPI_ACL',
  'IS_KEEP_CONN',
  'ASYNC_READ_CLIENT',
  'GET_IMPERSONATION_TOKEN',
  'MAP_URL_TO_PATH_EX',
  'ABORTIVE_CLOSE',
  'GET_CERT_INFO_EX',
  'SEND_RESPONSE_HEADER_EX',
  'CLOSE_CONNECTION',
  'IS_CONNECTED',
  'MAP_UNICODE_URL_TO_PATH',
  'MAP_UNICODE_URL_TO_PATH_EX',
  'EXEC_UNICODE_URL',
  'EXEC_URL',
  'GET_EXEC_URL_STATUS',
  'SEND_CUSTOM_ERROR',
  'IS_IN_PROCESS',
  'REPORT_UNHEALTHY',
  'NORMALIZE_URL',
  'VECTOR_SEND',
  'GET_ANONYMOUS_TOKEN',
  'GET_CACHE_INVALIDATION_CALLBACK',
  'GET_UNICODE_ANONYMOUS_TOKEN',
  'GET_TRACE_INFO',
  'SET_FLUSH_FLAG',
  'GET_TRACE_INFO_EX',
  'RAISE_TRACE_EVENT',
  'GET_CONFIG_OBJECT',
  'GET_WORKER_PROCESS_SETTINGS',
  'GET_PROTOCOL_MANAGER_CUSTOM_INTERFACE_CALLBACK',
  'CANCEL_IO',
  'GET_CHANNEL_BINDING_TOKEN',
  'UNKNOWN',
] as const;
export type SsfRequestLabel = (typeof SSF_REQUEST_NAMES)[number];

/**
 * Win32 error codes that get their own `code` label value (completion errors of async
 * I/O). Every other code is reported as `other`. Names are the Windows symbolic names.
 */
type Win32Name = Exclude<keyof typeof WIN32_ERROR, 'SUCCESS'>;
type Win32Label<N extends string> = N extends `WSA${string}` ? N : `ERROR_${N}`;
export type ErrorCodeLabel = Win32Label<Win32Name> | 'other';

/** Win32 code -> symbolic label, from the one table of codes in bridge/abi/constants.ts. */
export const WIN32_ERROR_LABELS: Readonly<Record<number, ErrorCodeLabel>> = Object.fromEntries(
  (Object.entries(WIN32_ERROR) as Array<[keyof typeof WIN32_ERROR, number]>)
    .filter(([name]) => name !== 'SUCCESS')
    .map(([name, code]) => [code, (name.startsWith('WSA') ? name : `ERROR_${name}`) as ErrorCodeLabel]),
);
export const ERROR_CODE_LABELS: readonly ErrorCodeLabel[] = [...Object.values(WIN32_ERROR_LABELS), 'other'];

/** Failure kinds of a request to an HTTP upstream. */
export const UPSTREAM_ERROR_KINDS = ['connect', 'timeout', 'reset', '5xx', 'other'] as const;
export type UpstreamErrorKind = (typeof UPSTREAM_ERROR_KINDS)[number];

/** Why the gateway (re)started a bridge process. */
export const BRIDGE_RESTART_REASONS = ['crash', 'exit', 'timeout', 'unhealthy', 'recycle', 'other'] as const;
export type BridgeRestartReason = (typeof BRIDGE_RESTART_REASONS)[number];

/** Where loading an extension failed. */
export const LOAD_FAILURE_STAGES = [
  /** LoadLibrary/dlopen failed (missing file, bad architecture, missing dependency). */
  'load_library',
  /** GetExtensionVersion or HttpExtensionProc is not exported. */
  'missing_export',
  /** GetExtensionVersion returned FALSE or a version the bridge does not support. */
  'version_rejected',
  /** The bridge did not report the load result in time. */
  'timeout',
  'other',
] as const;
export type LoadFailureStage = (typeof LOAD_FAILURE_STAGES)[number];

/** Which process a default (process_*, nodejs_*) metric describes. */
export const COMPONENTS = ['gateway', 'bridge'] as const;
export type Component = (typeof COMPONENTS)[number];

/**
 * Every label name used by any metric, with its value domain: `config` values come from
 * the configuration file (bounded by it), `enum` values are listed, `merge` is added by
 * metrics/merge.ts when a bridge snapshot is merged into the gateway's exposition.
 */
export const LABEL_DOMAINS = {
  route: { kind: 'config' },
  app: { kind: 'config' },
  bridge: { kind: 'config' },
  upstream: { kind: 'config' },
  target: { kind: 'config' },
  method: { kind: 'enum', values: METHOD_CLASSES },
  status_class: { kind: 'enum', values: STATUS_CLASSES },
  mode: { kind: 'enum', values: IO_MODES },
  kind: { kind: 'enum', values: ASYNC_OP_KINDS },
  request: { kind: 'enum', values: SSF_REQUEST_NAMES },
  result: { kind: 'enum', values: SSF_RESULTS },
  code: { kind: 'enum', values: ERROR_CODE_LABELS },
  error_kind: { kind: 'enum', values: UPSTREAM_ERROR_KINDS },
  reason: { kind: 'enum', values: BRIDGE_RESTART_REASONS },
  stage: { kind: 'enum', values: LOAD_FAILURE_STAGES },
  component: { kind: 'enum', values: COMPONENTS },
} as const satisfies Readonly<
  Record<string, { readonly kind: 'config' } | { readonly kind: 'enum'; readonly values: readonly string[] }>
>;
export type LabelName = keyof typeof LABEL_DOMAINS;

/** The label that metrics/merge.ts adds to every series of a bridge snapshot. */
export const BRIDGE_LABEL = 'bridge';

const methodClasses: ReadonlySet<string> = new Set<string>(METHOD_CLASSES.filter((m) => m !== 'OTHER'));

/** `GET`, `HEAD`, `POST`, `PUT`, `DELETE` map to themselves (case-sensitive, RFC 9110); anything else is `OTHER`. */
export function methodClass(method: string): MethodClass {
  return methodClasses.has(method) ? (method as MethodClass) : 'OTHER';
}

/** 100–599 map to `1xx`…`5xx`; anything else (0 for an aborted request, NaN, 600+) is `other`. */
export function statusClass(status: number): StatusClass {
  if (!Number.isInteger(status) || status < 100 || status > 599) return 'other';
  // The constant, not a string built per request: label keys hash it on every update.
  return STATUS_CLASSES[Math.floor(status / 100) - 1]!;
}

/** Win32 error code to its symbolic label, or `other` when it is not in WIN32_ERROR_LABELS. */
export function errorCodeLabel(code: number): ErrorCodeLabel {
  if (!Number.isInteger(code) || !Object.prototype.hasOwnProperty.call(WIN32_ERROR_LABELS, code)) return 'other';
  return WIN32_ERROR_LABELS[code]!;
}

const ssfNames: ReadonlySet<string> = new Set<string>(SSF_REQUEST_NAMES);

/** An SSF request name (with or without the `HSE_REQ_` prefix) to its label; anything unknown is `UNKNOWN`. */
export function ssfRequestLabel(name: string): SsfRequestLabel {
  const bare = name.startsWith('HSE_REQ_') ? name.slice('HSE_REQ_'.length) : name;
  return ssfNames.has(bare) ? (bare as SsfRequestLabel) : 'UNKNOWN';
}

/** Node's connect-phase error codes: the request never reached the upstream (the gateway retries on these too). */
export const NODE_CONNECT_ERROR_CODES = [
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
] as const;

const connectCodes: ReadonlySet<string> = new Set([
  ...NODE_CONNECT_ERROR_CODES,
  'ERR_UPSTREAM_CONNECT_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
]);
const timeoutCodes: ReadonlySet<string> = new Set([
  'ERR_UPSTREAM_HEADERS_TIMEOUT',
  'ERR_UPSTREAM_IDLE_TIMEOUT',
  'ERR_UPSTREAM_TOTAL_TIMEOUT',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ABORT_ERR',
]);
const resetCodes: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/**
 * Classifies a failed upstream request: a Node/undici error (by its `code`; a connect
 * timeout is `connect`) or an HTTP status (500–599 is `5xx`). Anything else is `other`.
 */
export function upstreamErrorKind(failure: unknown): UpstreamErrorKind {
  if (typeof failure === 'number') return failure >= 500 && failure <= 599 ? '5xx' : 'other';
  if (typeof failure !== 'object' || failure === null) return 'other';
  const code = (failure as { code?: unknown }).code;
  if (typeof code !== 'string') return 'other';
  if (connectCodes.has(code)) return 'connect';
  if (timeoutCodes.has(code)) return 'timeout';
  if (resetCodes.has(code)) return 'reset';
  return 'other';
}
