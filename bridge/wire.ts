/**
 * The gateway <-> bridge wire format: the only module that knows byte offsets.
 * Documented in bridge/PROTOCOL.md; keep the two in step.
 *
 * Every frame is a 12-byte header followed by its payload:
 *   u8 type | u8 flags | u16 reserved (0) | u32 stream id | u32 payload length   (little endian)
 * Strings inside payloads are u32 length + latin1 bytes: HTTP heads are bytes, not
 * text, and latin1 round-trips every byte exactly as Node's http parser hands them over.
 */
import { COUNT_FIELDS, emptyAccounting, type RequestAccounting } from '../metrics/accounting';
import { ASYNC_OP_KINDS } from '../metrics/labels';
import type { RequestInfo } from './request-info';

export const PROTOCOL_VERSION = 4;
export const FRAME_HEADER_SIZE = 12;
/** Large enough for a 64 KiB WriteClient plus head; small enough that one frame never pins much memory. */
export const DEFAULT_MAX_PAYLOAD = 1 << 20;

export const FrameType = {
  /** First frame in each direction: u16 protocol version, string role, string credential. */
  HELLO: 0x01,
  /** Gateway -> bridge: a new request on this connection (payload: RequestInfo). */
  REQUEST: 0x10,
  /** Gateway -> bridge: request body bytes. */
  REQUEST_BODY: 0x11,
  /** Gateway -> bridge: end of the request body. */
  REQUEST_END: 0x12,
  /** Either way: the request is over before its end (payload: u32 code, string reason). */
  ABORT: 0x13,
  /** Bridge -> gateway: status and headers (payload: ResponseHeadFrame). */
  RESPONSE_HEAD: 0x20,
  /** Bridge -> gateway: response body bytes, in the order WriteClient produced them. */
  RESPONSE_BODY: 0x21,
  /** Bridge -> gateway: the extension finished the request (payload: ResponseEndFrame). */
  RESPONSE_END: 0x22,
  /** Bridge -> gateway, before RESPONSE_END: HSE_REQ_SEND_URL, serve this URL instead (payload: string url). */
  SEND_URL: 0x23,
  /** Bridge -> gateway: HSE_REQ_EXEC_URL, run a child request whose response goes to the client (payload: ExecUrlFrame). */
  EXEC_URL: 0x24,
  /** Gateway -> bridge: the child request finished (payload: u16 status, u16 substatus, u32 Win32 error). */
  EXEC_URL_DONE: 0x25,
  /** Gateway -> bridge: ask for a metrics snapshot; bridge answers METRICS_RESPONSE (string payload). */
  METRICS_REQUEST: 0x30,
  METRICS_RESPONSE: 0x31,
  /** Bridge -> gateway: an extension called HSE_REQ_REPORT_UNHEALTHY (payload: string reason); the gateway recycles the bridge. */
  UNHEALTHY: 0x32,
  /** Gateway -> bridge, empty: stop accepting, drain in-flight requests, TerminateExtension, exit 0 (SIGTERM is not graceful under Wine). */
  SHUTDOWN: 0x33,
  /** Gateway -> bridge, empty: ask for the bridge's status; the bridge answers STATUS. */
  STATUS_REQUEST: 0x34,
  /** Bridge -> gateway: u32 requests in flight, u32 count, then (app, reason) string pairs of apps that failed to load. */
  STATUS: 0x35,
  /**
   * Bridge -> gateway, Unix-socket bridges only: send this file range as body yourself
   * (payload: FileOffer); the bridge sends nothing more for the request until FILE_DONE.
   */
  RESPONSE_FILE: 0x26,
  /** Gateway -> bridge: how a RESPONSE_FILE went (payload: FileDone). */
  FILE_DONE: 0x27,
  /** Gateway -> bridge, empty, on a Unix socket once HELLO is done: offer your response spool, if you have one. */
  SPOOL_REQUEST: 0x28,
  /** Bridge -> gateway: the response spool file (payload: SpoolOffer). Not sent by a bridge without one. */
  SPOOL_OFFER: 0x29,
  /** Gateway -> bridge, empty: the spool file is open here; bodies in it may come as RESPONSE_SPOOL on this connection. */
  SPOOL_ACCEPT: 0x2a,
  /** Bridge -> gateway: response body bytes, in WriteClient order, read from the spool file (payload: SpoolPiece). */
  RESPONSE_SPOOL: 0x2b,
  /** Gateway -> bridge: RESPONSE_SPOOL pieces of this connection, by offset, whose bytes it no longer needs (payload: u32 count, count x f64 offset). */
  SPOOL_FREE: 0x2c,
} as const;
export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];

const knownTypes = new Set<number>(Object.values(FrameType));

/** Flags of RESPONSE_HEAD. */
export const HeadFlags = {
  /** The extension framed the body itself with chunked encoding (pass it through). */
  EXTENSION_CHUNKED: 0x1,
  /** HSE_SEND_HEADER_EX_INFO.fKeepConn was FALSE or the extension asked to close. */
  CLOSE: 0x2,
} as const;

export class WireProtocolError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'WireProtocolError';
    this.code = code;
  }
}

export interface Frame {
  type: FrameTypeCode;
  flags: number;
  streamId: number;
  payload: Buffer;
  /**
   * Set by FrameDecoder on REQUEST_BODY / RESPONSE_BODY pieces: true when more of
   * this frame's payload follows in the next Frame(s) of the same type, flags and
   * stream id. See {@link FrameDecoder}.
   */
  partial?: boolean;
}

export function encodeFrame(type: FrameTypeCode, streamId: number, payload?: Buffer, flags = 0): Buffer {
  const length = payload ? payload.length : 0;
  const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + length);
  writeFrameHeader(frame, 0, type, flags, streamId, length);
  if (payload) payload.copy(frame, FRAME_HEADER_SIZE);
  return frame;
}

/** Just the 12-byte header, for writing a large payload without copying it. */
export function encodeFrameHeader(type: FrameTypeCode, streamId: number, length: number, flags = 0): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  writeFrameHeader(header, 0, type, flags, streamId, length);
  return header;
}

/** Writes a frame header at `at` (for a frame whose payload already follows it in `buf`). */
export function writeFrameHeader(buf: Buffer, at: number, type: number, flags: number, streamId: number, length: number): void {
  buf[at] = type;
  buf[at + 1] = flags;
  buf.writeUInt16LE(0, at + 2);
  buf.writeUInt32LE(streamId >>> 0, at + 4);
  buf.writeUInt32LE(length, at + 8);
}

export interface FrameDecoderOptions {
  /** Largest payload accepted (ERR_WIRE_TOO_LARGE beyond it); DEFAULT_MAX_PAYLOAD (1 MiB) by default. */
  maxPayload?: number;
  /** Deliver every frame whole, body frames included (the payload of a frame that straddles reads is then copied once). */
  wholeBodies?: boolean;
  /**
   * Copy the bytes kept for the next chunk (a partial header or frame) instead of keeping
   * a view: for a reader whose chunk buffers are reused (gateway/read-buffers.ts).
   */
  copyRetained?: boolean;
}

/**
 * Incremental decoder: feed it socket chunks, get frames. Payloads are views into
 * the received chunks, not copies (Node hands every socket read a buffer of its
 * own, so views stay valid).
 *
 * Body frames (REQUEST_BODY, RESPONSE_BODY) are byte streams, so their payload is
 * passed on as it arrives: a body frame whose payload straddles socket reads comes
 * out as several consecutive Frames of the same type, flags and stream id, every
 * one but the last with `partial: true`; concatenated, their payloads are the
 * frame's payload. Nothing is buffered for them and nothing is copied. Every other
 * frame type is delivered whole (`partial: false`), copied once only when it
 * straddles reads. The header of every frame, body frames included, is checked
 * (type, reserved bits, the size limit) before any of its payload is delivered.
 * With `wholeBodies: true` body frames are delivered whole too.
 */
export class FrameDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly maxPayload: number;
  private readonly pieces: boolean;
  private readonly copyRetained: boolean;
  /** The body frame being passed on in pieces: payload bytes still to come (0: none), and its header fields. */
  private bodyLeft = 0;
  private bodyDelivered = 0;
  private bodyType: FrameTypeCode = FrameType.RESPONSE_BODY;
  private bodyFlags = 0;
  private bodyStream = 0;

  constructor(options: FrameDecoderOptions = {}) {
    this.maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    this.pieces = !options.wholeBodies;
    this.copyRetained = options.copyRetained ?? false;
  }

  /** Decodes as many frames (and body pieces) as the data completes. Throws WireProtocolError on a malformed frame. */
  push(chunk: Buffer, onFrame: (frame: Frame) => void): void {
    let data: Buffer;
    let offset = 0;
    if (this.bodyLeft > 0) {
      // The rest (or more) of a body frame whose start came in an earlier chunk.
      const n = Math.min(this.bodyLeft, chunk.length);
      this.bodyLeft -= n;
      const partial = this.bodyLeft > 0;
      this.bodyDelivered = partial ? this.bodyDelivered + n : 0;
      if (n > 0) onFrame({ type: this.bodyType, flags: this.bodyFlags, streamId: this.bodyStream, payload: chunk.subarray(0, n), partial });
      if (n === chunk.length) return;
      data = chunk;
      offset = n;
    } else if (this.pendingBytes === 0) {
      data = chunk;
    } else {
      this.pending.push(chunk);
      data = Buffer.concat(this.pending, this.pendingBytes + chunk.length);
      this.pending = [];
      this.pendingBytes = 0;
    }
    while (data.length - offset >= FRAME_HEADER_SIZE) {
      const type = data[offset]!;
      const flags = data[offset + 1]!;
      const reserved = data.readUInt16LE(offset + 2);
      const streamId = data.readUInt32LE(offset + 4);
      const length = data.readUInt32LE(offset + 8);
      if (!knownTypes.has(type)) {
        throw new WireProtocolError('ERR_WIRE_UNKNOWN_TYPE', `unknown frame type 0x${type.toString(16)}`);
      }
      if (reserved !== 0) {
        throw new WireProtocolError('ERR_WIRE_RESERVED', `reserved header bits set (0x${reserved.toString(16)})`);
      }
      if (length > this.maxPayload) {
        throw new WireProtocolError('ERR_WIRE_TOO_LARGE', `frame payload of ${length} bytes exceeds ${this.maxPayload}`);
      }
      const start = offset + FRAME_HEADER_SIZE;
      const available = data.length - start;
      if (available < length) {
        if (!this.pieces || (type !== FrameType.RESPONSE_BODY && type !== FrameType.REQUEST_BODY)) break;
        // A body frame that continues in the next chunk(s): pass on what is here.
        this.bodyType = type as FrameTypeCode;
        this.bodyFlags = flags;
        this.bodyStream = streamId;
        this.bodyLeft = length - available;
        this.bodyDelivered = available;
        if (available > 0) onFrame({ type: type as FrameTypeCode, flags, streamId, payload: data.subarray(start), partial: true });
        return;
      }
      onFrame({ type: type as FrameTypeCode, flags, streamId, payload: data.subarray(start, start + length), partial: false });
      offset = start + length;
    }
    if (offset < data.length) {
      const rest = this.copyRetained ? Buffer.from(data.subarray(offset)) : data.subarray(offset);
      this.pending.push(rest);
      this.pendingBytes = rest.length;
    }
  }

  /**
   * Bytes received but not yet part of a whole frame: a partial header or frame, or
   * the header and delivered pieces of a body frame that has not ended (a
   * connection closing with any of these is truncated).
   */
  get bufferedBytes(): number {
    return this.pendingBytes + (this.bodyLeft > 0 ? FRAME_HEADER_SIZE + this.bodyDelivered : 0);
  }
}

// ---------------------------------------------------------------------------
// Payload encoding helpers

class PayloadWriter {
  private buf: Buffer;
  private at = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  u8(v: number): this {
    this.buf[this.at++] = v;
    return this;
  }
  u16(v: number): this {
    this.buf.writeUInt16LE(v, this.at);
    this.at += 2;
    return this;
  }
  u32(v: number): this {
    this.buf.writeUInt32LE(v >>> 0, this.at);
    this.at += 4;
    return this;
  }
  i64(v: number): this {
    this.buf.writeDoubleLE(v, this.at);
    this.at += 8;
    return this;
  }
  str(s: string): this {
    const n = this.buf.write(s, this.at + 4, 'latin1');
    this.buf.writeUInt32LE(n, this.at);
    this.at += 4 + n;
    return this;
  }
  done(): Buffer {
    return this.at === this.buf.length ? this.buf : this.buf.subarray(0, this.at);
  }
}

class PayloadReader {
  private at = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}
  private need(n: number): void {
    if (this.at + n > this.buf.length) {
      throw new WireProtocolError('ERR_WIRE_TRUNCATED', `${this.what} payload truncated at byte ${this.at}`);
    }
  }
  u8(): number {
    this.need(1);
    return this.buf[this.at++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16LE(this.at);
    this.at += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.at);
    this.at += 4;
    return v;
  }
  f64(): number {
    this.need(8);
    const v = this.buf.readDoubleLE(this.at);
    this.at += 8;
    return v;
  }
  str(): string {
    const n = this.u32();
    if (n === 0) return ''; // Most log fields are empty: no call into Buffer for them.
    this.need(n);
    const s = this.buf.toString('latin1', this.at, this.at + n);
    this.at += n;
    return s;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return b;
  }
  skip(n: number): void {
    this.need(n);
    this.at += n;
  }
  end(): void {
    if (this.at !== this.buf.length) {
      throw new WireProtocolError('ERR_WIRE_TRAILING', `${this.what} payload has ${this.buf.length - this.at} trailing bytes`);
    }
  }
}

const strSize = (s: string): number => 4 + s.length;

// ---------------------------------------------------------------------------
// HELLO

export interface Hello {
  version: number;
  role: 'gateway' | 'bridge';
  /** The shared-secret proof for TCP transports; "" on local sockets. */
  credential: string;
}

export function encodeHello(hello: Hello): Buffer {
  const w = new PayloadWriter(2 + strSize(hello.role) + strSize(hello.credential));
  return encodeFrame(FrameType.HELLO, 0, w.u16(hello.version).str(hello.role).str(hello.credential).done());
}

export function decodeHello(payload: Buffer): Hello {
  const r = new PayloadReader(payload, 'HELLO');
  const version = r.u16();
  const role = r.str();
  const credential = r.str();
  r.end();
  if (role !== 'gateway' && role !== 'bridge') {
    throw new WireProtocolError('ERR_WIRE_BAD_VALUE', `HELLO role must be gateway or bridge, got ${JSON.stringify(role)}`);
  }
  return { version, role, credential };
}

// ---------------------------------------------------------------------------
// REQUEST

/** Fixed-size prefix of REQUEST: f64 content length, u32 remote port, u32 local port, u8 secure. */
const REQUEST_FIXED = 8 + 4 + 4 + 1;

export function encodeRequest(streamId: number, info: RequestInfo): Buffer {
  let size = REQUEST_FIXED + 4;
  size += strSize(info.requestId) + strSize(info.appName) + strSize(info.method) + strSize(info.url);
  size += strSize(info.httpVersion) + strSize(info.scriptName) + strSize(info.pathInfo) + strSize(info.queryString);
  size += strSize(info.remoteAddress) + strSize(info.localAddress);
  for (const [name, value] of info.headers) size += strSize(name) + strSize(value);
  const w = new PayloadWriter(size);
  w.i64(info.contentLength).u32(info.remotePort).u32(info.localPort).u8(info.secure ? 1 : 0);
  w.str(info.requestId).str(info.appName).str(info.method).str(info.url).str(info.httpVersion);
  w.str(info.scriptName).str(info.pathInfo).str(info.queryString);
  w.str(info.remoteAddress).str(info.localAddress);
  w.u32(info.headers.length);
  for (const [name, value] of info.headers) w.str(name).str(value);
  return encodeFrame(FrameType.REQUEST, streamId, w.done());
}

export function decodeRequest(payload: Buffer): RequestInfo {
  const r = new PayloadReader(payload, 'REQUEST');
  const contentLength = r.f64();
  const remotePort = r.u32();
  const localPort = r.u32();
  const secure = r.u8() === 1;
  const info: RequestInfo = {
    requestId: r.str(),
    appName: r.str(),
    method: r.str(),
    url: r.str(),
    httpVersion: r.str(),
    scriptName: r.str(),
    pathInfo: r.str(),
    queryString: r.str(),
    remoteAddress: r.str(),
    remotePort,
    localAddress: r.str(),
    localPort,
    secure,
    contentLength,
    headers: [],
  };
  const count = r.u32();
  if (count > 10000) throw new WireProtocolError('ERR_WIRE_BAD_VALUE', `REQUEST declares ${count} headers`);
  for (let i = 0; i < count; i++) info.headers.push([r.str(), r.str()]);
  r.end();
  return info;
}

/** The app name of a REQUEST payload without decoding the rest (the main thread only schedules). */
export function peekRequestApp(payload: Buffer): string {
  const r = new PayloadReader(payload, 'REQUEST');
  r.skip(REQUEST_FIXED);
  r.str();
  return r.str();
}

/** Content-Length of a REQUEST payload, -1 for a body of unknown length. */
export function peekRequestContentLength(payload: Buffer): number {
  if (payload.length < 8) throw new WireProtocolError('ERR_WIRE_TRUNCATED', 'REQUEST payload truncated at byte 0');
  return payload.readDoubleLE(0);
}

// ---------------------------------------------------------------------------
// ABORT

export interface Abort {
  /** A Win32 error code (ERROR_OPERATION_ABORTED when the client left) or an HTTP status. */
  code: number;
  reason: string;
}

export function encodeAbort(streamId: number, abort: Abort): Buffer {
  const w = new PayloadWriter(4 + strSize(abort.reason));
  return encodeFrame(FrameType.ABORT, streamId, w.u32(abort.code).str(abort.reason).done());
}

export function decodeAbort(payload: Buffer): Abort {
  const r = new PayloadReader(payload, 'ABORT');
  const abort = { code: r.u32(), reason: r.str() };
  r.end();
  return abort;
}

// ---------------------------------------------------------------------------
// RESPONSE_HEAD

export interface ResponseHeadFrame {
  statusCode: number;
  reason: string;
  headers: Array<[string, string]>;
  flags: number;
}

export function encodeResponseHead(streamId: number, head: ResponseHeadFrame): Buffer {
  let size = 2 + strSize(head.reason) + 4;
  for (const [name, value] of head.headers) size += strSize(name) + strSize(value);
  const w = new PayloadWriter(size);
  w.u16(head.statusCode).str(head.reason).u32(head.headers.length);
  for (const [name, value] of head.headers) w.str(name).str(value);
  return encodeFrame(FrameType.RESPONSE_HEAD, streamId, w.done(), head.flags);
}

export function decodeResponseHead(payload: Buffer, flags: number): ResponseHeadFrame {
  const r = new PayloadReader(payload, 'RESPONSE_HEAD');
  const statusCode = r.u16();
  const reason = r.str();
  const count = r.u32();
  if (count > 10000) throw new WireProtocolError('ERR_WIRE_BAD_VALUE', `RESPONSE_HEAD declares ${count} headers`);
  const headers: Array<[string, string]> = [];
  for (let i = 0; i < count; i++) headers.push([r.str(), r.str()]);
  r.end();
  return { statusCode, reason, headers, flags };
}

// ---------------------------------------------------------------------------
// RESPONSE_END

/**
 * RESPONSE_END carries the request's I/O accounting (metrics/accounting.ts) as
 * numbers and short strings, not JSON: it goes with every response.
 */
export const EndFlags = {
  /** HSE_IO_DISCONNECT_AFTER_SEND or HSE_REQ_CLOSE_CONNECTION: close the client connection after the response. */
  CLOSE: 0x1,
  /** HSE_REQ_ABORTIVE_CLOSE: reset the client connection. */
  ABORTIVE: 0x2,
} as const;

export interface ResponseEndFrame {
  /** What HttpExtensionProc returned (or the DONE_WITH_SESSION status for PENDING requests). */
  hseStatus: number;
  /** ECB.dwHttpStatusCode at the end, as IIS logs it. */
  loggedStatus: number;
  /** ECB.lpszLogData at the end. */
  logData: string;
  accounting: RequestAccounting;
  flags: number;
}

export function encodeResponseEnd(streamId: number, end: ResponseEndFrame): Buffer {
  const acc = end.accounting;
  const errors = Object.entries(acc.completionErrors);
  const ssf = Object.entries(acc.ssfCalls);
  let size = 4 + 4 + strSize(end.logData) + 8 * COUNT_FIELDS.length + 24 * ASYNC_OP_KINDS.length + 4 + 4 + strSize(acc.appendLog);
  for (const [code] of errors) size += strSize(code) + 8;
  for (const [name] of ssf) size += strSize(name) + 24;
  const w = new PayloadWriter(size);
  w.u32(end.hseStatus).u32(end.loggedStatus).str(end.logData);
  for (const f of COUNT_FIELDS) w.i64(acc[f]);
  for (const kind of ASYNC_OP_KINDS) {
    const op = acc.ops[kind];
    w.i64(op.count).i64(op.totalOutstandingSeconds).i64(op.maxOutstandingSeconds);
  }
  w.u32(errors.length);
  for (const [code, count] of errors) w.str(code).i64(count);
  w.u32(ssf.length);
  for (const [name, c] of ssf) w.str(name).i64(c.ok).i64(c.error).i64(c.unsupported);
  w.str(acc.appendLog);
  return encodeFrame(FrameType.RESPONSE_END, streamId, w.done(), end.flags);
}

export function decodeResponseEnd(payload: Buffer, flags = 0): ResponseEndFrame {
  const r = new PayloadReader(payload, 'RESPONSE_END');
  const hseStatus = r.u32();
  const loggedStatus = r.u32();
  const logData = r.str();
  const accounting = emptyAccounting();
  for (const f of COUNT_FIELDS) accounting[f] = r.f64();
  for (const kind of ASYNC_OP_KINDS) {
    const op = accounting.ops[kind];
    op.count = r.f64();
    op.totalOutstandingSeconds = r.f64();
    op.maxOutstandingSeconds = r.f64();
  }
  const nErrors = r.u32();
  if (nErrors > 1000) throw new WireProtocolError('ERR_WIRE_BAD_VALUE', `RESPONSE_END declares ${nErrors} error codes`);
  for (let i = 0; i < nErrors; i++) accounting.completionErrors[r.str()] = r.f64();
  const nSsf = r.u32();
  if (nSsf > 1000) throw new WireProtocolError('ERR_WIRE_BAD_VALUE', `RESPONSE_END declares ${nSsf} SSF names`);
  for (let i = 0; i < nSsf; i++) accounting.ssfCalls[r.str()] = { ok: r.f64(), error: r.f64(), unsupported: r.f64() };
  accounting.appendLog = r.str();
  r.end();
  return { hseStatus, loggedStatus, logData, accounting, flags };
}

// ---------------------------------------------------------------------------
// SEND_URL, EXEC_URL, EXEC_URL_DONE

export function encodeSendUrl(streamId: number, url: string): Buffer {
  return encodeFrame(FrameType.SEND_URL, streamId, new PayloadWriter(strSize(url)).str(url).done());
}

export function decodeSendUrl(payload: Buffer): string {
  const r = new PayloadReader(payload, 'SEND_URL');
  const url = r.str();
  r.end();
  return url;
}

export interface ExecUrlFrame {
  /** "" for the parent's own URL. */
  url: string;
  /** "" for the parent's method. */
  method: string;
  /** Extra request headers, `Name: value\r\n` lines (HSE_EXEC_URL_INFO.pszChildHeaders). */
  headers: string;
  /** HSE_EXEC_URL_* flags. */
  flags: number;
  /** The child's entity body (HSE_EXEC_URL_ENTITY_INFO); empty when none. */
  entity: Buffer;
}

export function encodeExecUrl(streamId: number, x: ExecUrlFrame): Buffer {
  const w = new PayloadWriter(strSize(x.url) + strSize(x.method) + strSize(x.headers) + 4 + 4 + x.entity.length);
  w.str(x.url).str(x.method).str(x.headers).u32(x.flags).u32(x.entity.length);
  const head = w.done();
  return encodeFrame(FrameType.EXEC_URL, streamId, Buffer.concat([head, x.entity]));
}

export function decodeExecUrl(payload: Buffer): ExecUrlFrame {
  const r = new PayloadReader(payload, 'EXEC_URL');
  const url = r.str();
  const method = r.str();
  const headers = r.str();
  const flags = r.u32();
  const n = r.u32();
  const entity = Buffer.from(r.bytes(n));
  r.end();
  return { url, method, headers, flags, entity };
}

export interface ExecUrlStatus {
  status: number;
  subStatus: number;
  win32Error: number;
}

export function encodeExecUrlDone(streamId: number, s: ExecUrlStatus): Buffer {
  return encodeFrame(FrameType.EXEC_URL_DONE, streamId, new PayloadWriter(8).u16(s.status).u16(s.subStatus).u32(s.win32Error).done());
}

export function decodeExecUrlDone(payload: Buffer): ExecUrlStatus {
  const r = new PayloadReader(payload, 'EXEC_URL_DONE');
  const done = { status: r.u16(), subStatus: r.u16(), win32Error: r.u32() };
  r.end();
  return done;
}

// ---------------------------------------------------------------------------
// UNHEALTHY, SHUTDOWN, STATUS_REQUEST, STATUS

/**
 * A file the bridge has open and offers to a gateway on the same host, which opens it
 * through /proc/<pid>/fd/<fd> (gateway/bridge-descriptor.ts).
 */
export interface BridgeDescriptor {
  pid: number;
  fd: number;
  /** st_dev and st_ino of the file, in decimal: the gateway uses it only if what it opened is this file. */
  dev: string;
  ino: string;
}

/**
 * A TransmitFile range the gateway may stream to the client itself: it opens the
 * bridge's descriptor through /proc/<pid>/fd/<fd> (same host, same user: a Unix-socket
 * bridge), so the bytes cross no process boundary and no frames.
 */
export interface FileOffer extends BridgeDescriptor {
  offset: number;
  length: number;
}

/** FILE_DONE results. */
export const FileDoneResult = {
  /** `bytes` went to the client (fewer than offered if the file ended first). */
  SENT: 0,
  /** Not taken (no /proc, another host, not a regular file...): the bridge sends the range itself. */
  DECLINED: 1,
  /** The client left; `bytes` had gone before. */
  CLIENT_GONE: 2,
  /** Reading failed after `bytes`; `win32Error` says why. */
  READ_FAILED: 3,
} as const;
export type FileDoneResultCode = (typeof FileDoneResult)[keyof typeof FileDoneResult];

export interface FileDone {
  result: FileDoneResultCode;
  bytes: number;
  win32Error: number;
}

export function encodeResponseFile(streamId: number, f: FileOffer): Buffer {
  const w = new PayloadWriter(24 + strSize(f.dev) + strSize(f.ino));
  return encodeFrame(FrameType.RESPONSE_FILE, streamId, w.u32(f.pid).u32(f.fd).str(f.dev).str(f.ino).i64(f.offset).i64(f.length).done());
}
export function decodeResponseFile(payload: Buffer): FileOffer {
  const r = new PayloadReader(payload, 'RESPONSE_FILE');
  const offer = { pid: r.u32(), fd: r.u32(), dev: r.str(), ino: r.str(), offset: r.f64(), length: r.f64() };
  r.end();
  if (!Number.isSafeInteger(offer.offset) || offer.offset < 0 || !Number.isSafeInteger(offer.length) || offer.length < 0) {
    throw new WireProtocolError('ERR_WIRE_BAD_VALUE', 'RESPONSE_FILE range must be non-negative integers');
  }
  return offer;
}

export function encodeFileDone(streamId: number, d: FileDone): Buffer {
  return encodeFrame(FrameType.FILE_DONE, streamId, new PayloadWriter(16).u32(d.result).i64(d.bytes).u32(d.win32Error).done());
}
export function decodeFileDone(payload: Buffer): FileDone {
  const r = new PayloadReader(payload, 'FILE_DONE');
  const result = r.u32();
  const done = { bytes: r.f64(), win32Error: r.u32() };
  r.end();
  if (!(Object.values(FileDoneResult) as number[]).includes(result)) {
    throw new WireProtocolError('ERR_WIRE_BAD_VALUE', `FILE_DONE result ${result} is unknown`);
  }
  return { result: result as FileDoneResultCode, ...done };
}

// ---------------------------------------------------------------------------
// SPOOL_REQUEST, SPOOL_OFFER, SPOOL_ACCEPT, RESPONSE_SPOOL, SPOOL_FREE

/**
 * The bridge's response spool (bridge/spool.ts): a memory file the gateway opens through
 * /proc/<pid>/fd/<fd>, like a RESPONSE_FILE's descriptor, and reads body bytes from.
 */
export interface SpoolOffer extends BridgeDescriptor {
  /** The file's size: every RESPONSE_SPOOL lies within it. */
  size: number;
}

/** Where a RESPONSE_SPOOL's bytes are in the spool file. */
export interface SpoolPiece {
  offset: number;
  length: number;
}

export function encodeSpoolOffer(o: SpoolOffer): Buffer {
  const w = new PayloadWriter(16 + strSize(o.dev) + strSize(o.ino));
  return encodeFrame(FrameType.SPOOL_OFFER, 0, w.u32(o.pid).u32(o.fd).str(o.dev).str(o.ino).i64(o.size).done());
}
export function decodeSpoolOffer(payload: Buffer): SpoolOffer {
  const r = new PayloadReader(payload, 'SPOOL_OFFER');
  const offer = { pid: r.u32(), fd: r.u32(), dev: r.str(), ino: r.str(), size: r.f64() };
  r.end();
  if (!Number.isSafeInteger(offer.size) || offer.size <= 0) throw new WireProtocolError('ERR_WIRE_BAD_VALUE', 'SPOOL_OFFER size must be a positive integer');
  return offer;
}

const SPOOL_PIECE_SIZE = 12;

/** The frame in one buffer: it is sent for every spooled WriteClient. */
export function encodeResponseSpool(streamId: number, piece: SpoolPiece): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_SIZE + SPOOL_PIECE_SIZE);
  writeFrameHeader(buf, 0, FrameType.RESPONSE_SPOOL, 0, streamId, SPOOL_PIECE_SIZE);
  buf.writeDoubleLE(piece.offset, FRAME_HEADER_SIZE);
  buf.writeUInt32LE(piece.length, FRAME_HEADER_SIZE + 8);
  return buf;
}
/** `size`: the spool file's, from the SPOOL_OFFER; a piece outside it is a protocol error. */
export function decodeResponseSpool(payload: Buffer, size: number): SpoolPiece {
  const r = new PayloadReader(payload, 'RESPONSE_SPOOL');
  const piece = { offset: r.f64(), length: r.u32() };
  r.end();
  if (!Number.isSafeInteger(piece.offset) || piece.offset < 0 || piece.offset + piece.length > size) {
    throw new WireProtocolError('ERR_WIRE_BAD_VALUE', `RESPONSE_SPOOL bytes ${piece.offset}+${piece.length} are outside the ${size}-byte spool`);
  }
  return piece;
}

/** `offsets`: the RESPONSE_SPOOL pieces, by their offset, whose bytes the gateway no longer needs (any order). */
export function encodeSpoolFree(offsets: readonly number[]): Buffer {
  const w = new PayloadWriter(4 + 8 * offsets.length).u32(offsets.length);
  for (const offset of offsets) w.i64(offset);
  return encodeFrame(FrameType.SPOOL_FREE, 0, w.done());
}
export function decodeSpoolFree(payload: Buffer): number[] {
  const r = new PayloadReader(payload, 'SPOOL_FREE');
  const count = r.u32();
  if (payload.length !== 4 + 8 * count) throw new WireProtocolError('ERR_WIRE_BAD_VALUE', `SPOOL_FREE of ${count} pieces has ${payload.length - 4} bytes of offsets`);
  const offsets: number[] = [];
  for (let i = 0; i < count; i++) offsets.push(r.f64());
  r.end();
  return offsets;
}

export function encodeUnhealthy(streamId: number, reason: string): Buffer {
  return encodeFrame(FrameType.UNHEALTHY, streamId, new PayloadWriter(strSize(reason)).str(reason).done());
}

export function decodeUnhealthy(payload: Buffer): string {
  const r = new PayloadReader(payload, 'UNHEALTHY');
  const reason = r.str();
  r.end();
  return reason;
}

export function encodeShutdown(): Buffer {
  return encodeFrame(FrameType.SHUTDOWN, 0);
}

/** SHUTDOWN carries nothing; a payload means the peer is confused, not a request to stop. */
export function decodeShutdown(payload: Buffer): void {
  new PayloadReader(payload, 'SHUTDOWN').end();
}

export function encodeStatusRequest(streamId: number): Buffer {
  return encodeFrame(FrameType.STATUS_REQUEST, streamId);
}

export function decodeStatusRequest(payload: Buffer): void {
  new PayloadReader(payload, 'STATUS_REQUEST').end();
}

export interface BridgeStatus {
  /** Requests the bridge is serving or queueing right now. */
  inFlight: number;
  /** Apps whose extension failed to load, with the reason (their requests get 503). */
  failedApps: Array<[app: string, reason: string]>;
}

export function encodeStatus(streamId: number, status: BridgeStatus): Buffer {
  let size = 8;
  for (const [app, reason] of status.failedApps) size += strSize(app) + strSize(reason);
  const w = new PayloadWriter(size);
  w.u32(status.inFlight).u32(status.failedApps.length);
  for (const [app, reason] of status.failedApps) w.str(app).str(reason);
  return encodeFrame(FrameType.STATUS, streamId, w.done());
}

export function decodeStatus(payload: Buffer): BridgeStatus {
  const r = new PayloadReader(payload, 'STATUS');
  const inFlight = r.u32();
  const count = r.u32();
  if (count > 10000) throw new WireProtocolError('ERR_WIRE_BAD_VALUE', `STATUS declares ${count} failed apps`);
  const failedApps: Array<[string, string]> = [];
  for (let i = 0; i < count; i++) failedApps.push([r.str(), r.str()]);
  r.end();
  return { inFlight, failedApps };
}
