/**
 * Per-request accounting: what the bridge counts while one request runs and sends to
 * the gateway with the end of the response. The gateway adds it to its counters
 * (metrics/record.ts) and writes it to the access log (metrics/access-log.ts).
 * The wire encoding is not defined here.
 */
import { InvalidAccountingError } from './errors';
import { ASYNC_OP_KINDS, SSF_RESULTS, type AsyncOpKind, type SsfResult } from './labels';

export interface AsyncOpStats {
  /** Operations of this kind that completed (their completion routine was called). */
  count: number;
  /** Sum over those operations of the time from issue to completion. */
  totalOutstandingSeconds: number;
  /** The longest of those times. */
  maxOutstandingSeconds: number;
}

export type SsfCallCounts = Record<SsfResult, number>;

export interface RequestAccounting {
  /** WriteClient calls without HSE_IO_ASYNC, and the bytes they wrote. */
  syncWrites: number;
  syncWriteBytes: number;
  /** WriteClient calls with HSE_IO_ASYNC, and the bytes their completions reported. */
  asyncWrites: number;
  asyncWriteBytes: number;
  /** ReadClient calls and the bytes they returned. */
  syncReads: number;
  syncReadBytes: number;
  /** HSE_REQ_ASYNC_READ_CLIENT requests and the bytes their completions reported. */
  asyncReads: number;
  asyncReadBytes: number;
  /** Bytes sent by HSE_REQ_TRANSMIT_FILE (head + file range + tail). */
  transmitFileBytes: number;
  /** Bytes sent by HSE_REQ_VECTOR_SEND. */
  vectorSendBytes: number;
  /** Most async operations outstanding at the same time during the request. */
  maxOutstanding: number;
  /** Async operations refused because another one was still outstanding. */
  rejectedSecondOutstanding: number;
  /** Completions with a non-zero Win32 error: decimal error code → count. */
  completionErrors: Record<string, number>;
  /** Completed async operations by kind. */
  ops: Record<AsyncOpKind, AsyncOpStats>;
  /** ServerSupportFunction calls: request name (HSE_REQ_ without the prefix) → counts by result. */
  ssfCalls: Record<string, SsfCallCounts>;
  /** Concatenation of every HSE_APPEND_LOG_PARAMETER string, at most APPEND_LOG_MAX_LENGTH characters. */
  appendLog: string;
}

/** Longest appendLog kept; IIS itself truncates the log field. */
export const APPEND_LOG_MAX_LENGTH = 1024;

export const COUNT_FIELDS = [
  'syncWrites',
  'syncWriteBytes',
  'asyncWrites',
  'asyncWriteBytes',
  'syncReads',
  'syncReadBytes',
  'asyncReads',
  'asyncReadBytes',
  'transmitFileBytes',
  'vectorSendBytes',
  'maxOutstanding',
  'rejectedSecondOutstanding',
] as const satisfies readonly (keyof RequestAccounting)[];

export function emptyAccounting(): RequestAccounting {
  const ops = {} as Record<AsyncOpKind, AsyncOpStats>;
  for (const kind of ASYNC_OP_KINDS) ops[kind] = { count: 0, totalOutstandingSeconds: 0, maxOutstandingSeconds: 0 };
  return {
    syncWrites: 0,
    syncWriteBytes: 0,
    asyncWrites: 0,
    asyncWriteBytes: 0,
    syncReads: 0,
    syncReadBytes: 0,
    asyncReads: 0,
    asyncReadBytes: 0,
    transmitFileBytes: 0,
    vectorSendBytes: 0,
    maxOutstanding: 0,
    rejectedSecondOutstanding: 0,
    completionErrors: {},
    ops,
    ssfCalls: {},
    appendLog: '',
  };
}

/** The longest time any async operation of the request stayed outstanding, in seconds. */
export function longestOutstandingSeconds(acc: RequestAccounting): number {
  let longest = 0;
  for (const kind of ASYNC_OP_KINDS) longest = Math.max(longest, acc.ops[kind].maxOutstandingSeconds);
  return longest;
}

/**
 * Checks a decoded value is a well-formed RequestAccounting: counts are non-negative
 * safe integers, seconds non-negative finite numbers, ops has exactly the known kinds.
 * Throws InvalidAccountingError (ERR_METRICS_INVALID_ACCOUNTING) naming the bad field.
 * It runs for every ISAPI request: field names are spelled out only for an error.
 */
export function validateAccounting(value: unknown): asserts value is RequestAccounting {
  const acc = asRecord(value, 'accounting');
  for (const field of COUNT_FIELDS) checkCount(acc[field], field);
  if (typeof acc.appendLog !== 'string') throw new InvalidAccountingError('appendLog', 'not a string');

  const errors = asRecord(acc.completionErrors, 'completionErrors');
  for (const code in errors) {
    if (!/^-?\d+$/.test(code)) throw new InvalidAccountingError(`completionErrors.${code}`, 'key is not a decimal error code');
    checkCount(errors[code], 'completionErrors.', code);
  }

  const ops = asRecord(acc.ops, 'ops');
  for (const kind in ops) {
    if (!(ASYNC_OP_KINDS as readonly string[]).includes(kind)) throw new InvalidAccountingError(`ops.${kind}`, 'unknown kind');
  }
  for (const kind of ASYNC_OP_KINDS) {
    const op = asRecord(ops[kind], `ops.${kind}`);
    checkCount(op.count, 'ops.', kind, '.count');
    checkSeconds(op.totalOutstandingSeconds, 'ops.', kind, '.totalOutstandingSeconds');
    checkSeconds(op.maxOutstandingSeconds, 'ops.', kind, '.maxOutstandingSeconds');
  }

  const ssf = asRecord(acc.ssfCalls, 'ssfCalls');
  for (const name in ssf) {
    const c = asRecord(ssf[name], `ssfCalls.${name}`);
    for (const result of SSF_RESULTS) checkCount(c[result], 'ssfCalls.', name, '.', result);
  }
}

function asRecord(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidAccountingError(field, 'not an object');
  }
  return value as Record<string, unknown>;
}

/** `field` comes in parts, joined only when the value is bad. */
function checkCount(value: unknown, ...field: string[]): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidAccountingError(field.join(''), `expected a non-negative integer, got ${String(value)}`);
  }
}

function checkSeconds(value: unknown, ...field: string[]): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidAccountingError(field.join(''), `expected a non-negative number of seconds, got ${String(value)}`);
  }
}
