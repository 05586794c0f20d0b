/**
 * Request-size limits and slow-client answers of the HTTP front door.
 *
 * Node's parser (llhttp) enforces one combined limit on the request head
 * (`maxHeaderSize`), so the server is created with room for both limits and the
 * two are told apart here: a request target over `maxUrlBytes` gets 414, headers
 * over `maxHeaderBytes` get 431. Heads beyond even Node's limit are refused
 * inside the parser; `clientErrorResponse` then picks 414 or 431 from the bytes
 * received. Timeouts (headersTimeout/requestTimeout against slowloris) arrive as
 * ERR_HTTP_REQUEST_TIMEOUT and get 408. Everything else the parser refuses
 * (request smuggling: Content-Length with Transfer-Encoding, conflicting
 * Content-Length values, obs-fold, an unknown final transfer coding) gets 400.
 */
import type http from 'node:http';
import type { LimitsConfig } from './config';

export interface LimitRefusal {
  status: 400 | 408 | 413 | 414 | 431;
  reason: string;
}

const REASONS: Record<LimitRefusal['status'], string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  413: 'Content Too Large',
  414: 'URI Too Long',
  431: 'Request Header Fields Too Large',
};

/** Node's maxHeaderSize for these limits: room for a maximal URL and maximal headers plus the request line's framing. */
export function parserHeadLimit(limits: LimitsConfig): number {
  return limits.maxUrlBytes + limits.maxHeaderBytes + 64;
}

/** How often Node checks headersTimeout/requestTimeout: often enough for the shortest of them to be precise-ish. */
export function timeoutCheckInterval(limits: LimitsConfig): number {
  const shortest = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs || Infinity);
  return Math.max(50, Math.min(30000, Math.floor(shortest / 4)));
}

/** Checks a parsed request against the limits; undefined when it may proceed. */
export function checkRequestLimits(req: http.IncomingMessage, limits: LimitsConfig): LimitRefusal | undefined {
  if (Buffer.byteLength(req.url ?? '', 'latin1') > limits.maxUrlBytes) {
    return { status: 414, reason: `request target longer than ${limits.maxUrlBytes} bytes` };
  }
  let headerBytes = 0;
  const raw = req.rawHeaders;
  // name + ": " + value + CRLF, as on the wire.
  for (let i = 0; i < raw.length; i += 2) headerBytes += raw[i]!.length + raw[i + 1]!.length + 4;
  if (headerBytes > limits.maxHeaderBytes) return { status: 431, reason: `request headers larger than ${limits.maxHeaderBytes} bytes` };
  return checkFraming(req);
}

/**
 * What llhttp lets through but RFC 9112 says to refuse (it already refuses
 * CL+TE, differing or repeated Content-Length, obs-fold, a final coding other
 * than chunked, whitespace before the colon, bare LF):
 *  - Transfer-Encoding in an HTTP/1.0 request: the framing is faulty (§6.1) and
 *    a 1.0 intermediary in front of us would have framed it by Content-Length;
 *  - more than one Host header (§3.2): which one routes the request is ambiguous;
 *  - a Transfer-Encoding whose final coding is not chunked (§6.3): llhttp hands
 *    such a request over and only fails on its body.
 */
export function checkFraming(req: http.IncomingMessage): LimitRefusal | undefined {
  let hosts = 0;
  const codings: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name === 'host') hosts++;
    else if (name === 'transfer-encoding') codings.push(...raw[i + 1]!.split(',').map((c) => c.trim().toLowerCase()));
  }
  if (hosts > 1) return { status: 400, reason: 'more than one Host header' };
  if (codings.length === 0) return undefined;
  if (req.httpVersion === '1.0') return { status: 400, reason: 'Transfer-Encoding in an HTTP/1.0 request' };
  if (codings[codings.length - 1] !== 'chunked') return { status: 400, reason: 'Transfer-Encoding whose final coding is not chunked' };
  return undefined;
}

/** The status for an error Node's parser or its timers raised on a client connection. */
export function clientErrorStatus(err: NodeJS.ErrnoException & { rawPacket?: Buffer }, limits: LimitsConfig): LimitRefusal['status'] {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 408;
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    // The request line alone over the URL limit (or not even finished): 414; otherwise the headers were too big.
    const packet = err.rawPacket;
    if (packet) {
      const eol = packet.indexOf('\r\n');
      const lineLength = eol < 0 ? packet.length : eol;
      if (lineLength > limits.maxUrlBytes) return 414;
    }
    return 431;
  }
  return 400;
}

/** A complete, connection-closing HTTP/1.1 response for a refused request. */
export function refusalResponse(status: LimitRefusal['status'], detail: string): string {
  const body = `${status} ${REASONS[status]}: ${detail}\r\n`;
  return (
    `HTTP/1.1 ${status} ${REASONS[status]}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

export function reasonPhrase(status: LimitRefusal['status']): string {
  return REASONS[status];
}
