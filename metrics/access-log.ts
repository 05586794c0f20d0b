/**
 * The structured access-log line the gateway writes for every finished request: one
 * JSON object per line, fixed keys, request-derived strings length-capped.
 */
import { longestOutstandingSeconds, type RequestAccounting } from './accounting';

export const ACCESS_LOG_MAX_PATH = 2048;
export const ACCESS_LOG_MAX_METHOD = 32;

export interface AccessLogInput {
  readonly requestId: string;
  readonly app: string;
  /** Raw request method as received. */
  readonly method: string;
  /** Request path as the caller wants it logged (the gateway decides whether the query is included). */
  readonly path: string;
  /** Response status; 0 when no response was sent. */
  readonly status: number;
  /** Request body bytes received. */
  readonly bytesIn: number;
  /** Response body bytes sent. */
  readonly bytesOut: number;
  readonly durationSeconds: number;
  /** The bridge's accounting; absent for requests not served by an ISAPI app. */
  readonly accounting?: RequestAccounting;
  /** End of the request; defaults to now. */
  readonly time?: Date;
  /** What IIS logs beside the status: the query (cs-uri-query), and the ECB's own status and log data. */
  readonly query?: string;
  readonly ecbStatus?: number;
  readonly logData?: string;
  /** Why the request ended without a whole response. */
  readonly error?: string;
}

/** Key order is the order written. Durations are milliseconds rounded to microseconds. */
export interface AccessLogEntry {
  readonly time: string;
  readonly requestId: string;
  readonly app: string;
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly durationMs: number;
  readonly syncWrites: number;
  readonly syncWriteBytes: number;
  readonly asyncWrites: number;
  readonly asyncWriteBytes: number;
  readonly asyncReadBytes: number;
  readonly transmitFileBytes: number;
  readonly maxOutstanding: number;
  readonly longestPendingMs: number;
  readonly appendLog: string;
  /** The optional fields are left out of the line (undefined) when empty. */
  readonly query: string | undefined;
  readonly ecbStatus: number | undefined;
  readonly logData: string | undefined;
  readonly rejectedSecondOutstanding: number | undefined;
  readonly completionErrors: Record<string, number> | undefined;
  readonly error: string | undefined;
}

/**
 * One object literal with every key, so each entry has the same shape: spreading a
 * base entry into a bigger object cost 4 µs a line, and JSON.stringify took three
 * times as long on the result (bench/RESULTS.md, session 7).
 */
export function buildAccessLogEntry(input: AccessLogInput): AccessLogEntry {
  const acc = input.accounting;
  return {
    time: (input.time ?? new Date()).toISOString(),
    requestId: input.requestId,
    app: input.app,
    method: input.method.slice(0, ACCESS_LOG_MAX_METHOD),
    path: input.path.slice(0, ACCESS_LOG_MAX_PATH),
    status: input.status,
    bytesIn: input.bytesIn,
    bytesOut: input.bytesOut,
    durationMs: toMs(input.durationSeconds),
    syncWrites: acc?.syncWrites ?? 0,
    syncWriteBytes: acc?.syncWriteBytes ?? 0,
    asyncWrites: acc?.asyncWrites ?? 0,
    asyncWriteBytes: acc?.asyncWriteBytes ?? 0,
    asyncReadBytes: acc?.asyncReadBytes ?? 0,
    transmitFileBytes: acc?.transmitFileBytes ?? 0,
    maxOutstanding: acc?.maxOutstanding ?? 0,
    longestPendingMs: acc ? toMs(longestOutstandingSeconds(acc)) : 0,
    appendLog: acc?.appendLog ?? '',
    query: input.query ? input.query.slice(0, ACCESS_LOG_MAX_PATH) : undefined,
    ecbStatus: input.ecbStatus,
    logData: input.logData || undefined,
    rejectedSecondOutstanding: acc?.rejectedSecondOutstanding || undefined,
    completionErrors: acc && hasKeys(acc.completionErrors) ? acc.completionErrors : undefined,
    error: input.error,
  };
}

/** One JSON line without the trailing newline. */
export function formatAccessLogLine(input: AccessLogInput): string {
  return JSON.stringify(buildAccessLogEntry(input));
}

function hasKeys(record: object): boolean {
  for (const _ in record) return true;
  return false;
}

function toMs(seconds: number): number {
  if (!Number.isFinite(seconds) || seconds < 0) return 0;
  return Math.round(seconds * 1e6) / 1e3;
}
