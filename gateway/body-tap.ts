/**
 * Observing a request body without consuming it. Adding a 'data' listener would put
 * the request into flowing mode before its real consumer (http-proxy-3's pipe, or an
 * IsapiExchange that first waits for a bridge connection) is attached, and chunks
 * would be lost. Wrapping `emit` sees exactly the chunks the consumer gets, when it
 * gets them, and leaves flow control to the consumer.
 */
import crypto from 'node:crypto';
import type http from 'node:http';

export interface BodyObserver {
  /** Sees each chunk before the consumer; return false to withhold it from the consumer. */
  chunk?(data: Buffer): boolean | void;
  /** The body is complete. */
  end?(): void;
}

export function tapRequestBody(req: http.IncomingMessage, observer: BodyObserver): void {
  const emit = req.emit;
  req.emit = function tappedEmit(this: http.IncomingMessage, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'data' && observer.chunk) {
      const chunk = args[0];
      if (Buffer.isBuffer(chunk) && observer.chunk(chunk) === false) return true;
    } else if (event === 'end') {
      observer.end?.();
    }
    return emit.call(this, event, ...args);
  } as typeof req.emit;
}

/** What a response looked like, for comparisons: filled in as the response is written. */
export interface ResponseSummary {
  status: number;
  /** Lower-case header name -> value (repeated headers joined with ", "). */
  headers: Record<string, string>;
  bodyBytes: number;
  bodySha256: string;
  durationMs: number;
  error?: string;
}

type HeaderInput = http.OutgoingHttpHeaders | readonly string[] | ReadonlyArray<readonly [string, string]> | undefined;

function addHeader(into: Record<string, string>, name: string, value: unknown): void {
  const lower = name.toLowerCase();
  const v = Array.isArray(value) ? value.map(String).join(', ') : String(value);
  into[lower] = lower in into ? `${into[lower]}, ${v}` : v;
}

function collectHeaders(into: Record<string, string>, headers: HeaderInput): void {
  if (!headers) return;
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      for (const [n, v] of headers as ReadonlyArray<readonly [string, string]>) addHeader(into, n, v);
    } else {
      const flat = headers as readonly string[];
      for (let i = 0; i + 1 < flat.length; i += 2) addHeader(into, flat[i]!, flat[i + 1]);
    }
    return;
  }
  for (const [n, v] of Object.entries(headers as http.OutgoingHttpHeaders)) if (v !== undefined) addHeader(into, n, v);
}

/**
 * Watches what is written to a ServerResponse (status, headers, a running sha256 of
 * the body) without changing or delaying it. `done` gets the summary once the response
 * finished, or undefined when it was cut off.
 */
export function tapResponse(res: http.ServerResponse, done: (summary: Omit<ResponseSummary, 'durationMs'> | undefined) => void): void {
  const hash = crypto.createHash('sha256');
  const headers: Record<string, string> = {};
  let bodyBytes = 0;
  const take = (chunk: unknown, encoding?: unknown): void => {
    if (chunk === undefined || chunk === null || typeof chunk === 'function') return;
    const buf = Buffer.isBuffer(chunk)
      ? chunk
      : chunk instanceof Uint8Array
        ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
        : Buffer.from(String(chunk), typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
    bodyBytes += buf.length;
    hash.update(buf);
  };
  const writeHead = res.writeHead;
  res.writeHead = function (this: http.ServerResponse, statusCode: number, ...rest: unknown[]) {
    const last = rest[rest.length - 1];
    if (typeof last === 'object' && last !== null) collectHeaders(headers, last as HeaderInput);
    return (writeHead as (...a: unknown[]) => http.ServerResponse).call(this, statusCode, ...rest);
  } as typeof res.writeHead;
  const write = res.write;
  res.write = function (this: http.ServerResponse, chunk: unknown, ...rest: unknown[]) {
    take(chunk, rest[0]);
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof res.write;
  const end = res.end;
  res.end = function (this: http.ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    take(chunk, rest[0]);
    return (end as (...a: unknown[]) => http.ServerResponse).call(this, chunk, ...rest);
  } as typeof res.end;
  let reported = false;
  res.once('finish', () => {
    reported = true;
    // Headers set with setHeader (not writeHead) are still readable here; writeHead's win.
    for (const [n, v] of Object.entries(res.getHeaders())) if (!(n in headers) && v !== undefined) addHeader(headers, n, v);
    done({ status: res.statusCode, headers, bodyBytes, bodySha256: hash.digest('hex') });
  });
  res.once('close', () => {
    if (!reported) done(undefined);
  });
}
