/**
 * Why an upstream exchange failed, as classes with codes: the status the client gets
 * (502/503/504/413) depends on the class, not on parsing messages.
 */
import { NODE_CONNECT_ERROR_CODES } from '../metrics/labels';

export type TimeoutPhase = 'connect' | 'headers' | 'idle' | 'total';

const TIMEOUT_CODES = {
  connect: 'ERR_UPSTREAM_CONNECT_TIMEOUT',
  headers: 'ERR_UPSTREAM_HEADERS_TIMEOUT',
  idle: 'ERR_UPSTREAM_IDLE_TIMEOUT',
  total: 'ERR_UPSTREAM_TOTAL_TIMEOUT',
} as const satisfies Record<TimeoutPhase, string>;

/** One of our own timers fired (http-proxy-3's proxyTimeout would look like a reset). Answered with 504. */
export class UpstreamTimeoutError extends Error {
  readonly code: (typeof TIMEOUT_CODES)[TimeoutPhase];
  constructor(
    readonly phase: TimeoutPhase,
    readonly ms: number,
  ) {
    super(`upstream ${phase} timeout after ${ms} ms`);
    this.name = 'UpstreamTimeoutError';
    this.code = TIMEOUT_CODES[phase];
  }
}

/** No target is healthy (active checks) or admitted (passive ejection). Answered with 503. */
export class NoHealthyTargetError extends Error {
  readonly code = 'ERR_UPSTREAM_NO_HEALTHY_TARGET';
  constructor(readonly upstream: string) {
    super(`no healthy target in upstream ${upstream}`);
    this.name = 'NoHealthyTargetError';
  }
}

/** The request body is larger than maxRequestBodyBytes. Answered with 413. */
export class BodyTooLargeError extends Error {
  readonly code = 'ERR_UPSTREAM_BODY_TOO_LARGE';
  constructor(readonly limit: number) {
    super(`request body larger than ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/** Node's connect-phase errors: the request certainly never reached the upstream. */
export const CONNECT_ERROR_CODES: ReadonlySet<string> = new Set([...NODE_CONNECT_ERROR_CODES, TIMEOUT_CODES.connect]);

/** Errors a stale keep-alive socket produces when the upstream closed it under us. */
export const STALE_SOCKET_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE']);

export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** The status the client gets for a failure before any response head was sent. */
export function statusForError(err: unknown): 413 | 502 | 503 | 504 {
  if (err instanceof BodyTooLargeError) return 413;
  if (err instanceof NoHealthyTargetError) return 503;
  if (err instanceof UpstreamTimeoutError) return 504;
  return 502;
}
