/**
 * One request as its extension thread sees it: the ECB memory, the response
 * head state, the body arriving from the gateway, the I/O accounting, the one
 * asynchronous operation IIS allows at a time, and the frames it sends back.
 * Methods here are the semantics of the ECB callbacks; ecb-callbacks.ts only
 * converts native arguments into calls on this class.
 */
import { HSE_STATUS, WIN32_ERROR } from './abi/constants';
import { EcbMemory } from './ecb-memory';
import type { RequestInfo, AppSettings } from './request-info';
import { RequestSlot, type OutputSegment } from './thread-messages';
import {
  EndFlags,
  FRAME_HEADER_SIZE,
  FrameType,
  HeadFlags,
  encodeFrameHeader,
  encodeResponseEnd,
  encodeResponseHead,
  encodeSendUrl,
  writeFrameHeader,
  type ResponseHeadFrame,
} from './wire';
import { RawHeadParser, defaultResponseHead, type ParsedHead, type RawHeadStep } from './response-head';
import type { SlotArena } from './slot-arena';
import { ServerVariables } from './server-variables';
import { RequestAccountant, type AsyncOperation, type LiveAsyncMetrics } from '../metrics/accountant';
import type { AsyncOpKind } from '../metrics/labels';

/** A completion routine registered with HSE_REQ_IO_COMPLETION or passed in HSE_TF_INFO. */
export interface Completion {
  fn: bigint;
  context: bigint;
}

/** What the extension thread needs from its host to move bytes, block, and call completions. */
export interface ContextHost {
  /** Hands encoded frames to the main thread, to be written in order (ownership moves with them). */
  post(ctx: RequestContext, parts: Buffer[], end: boolean, opId?: number): void;
  /** Hands a list of segments (frames and file ranges) to the main thread to send in order. */
  postSegments(ctx: RequestContext, segments: OutputSegment[], opId: number): void;
  /** Blocks this thread until `ready()` is true, serving incoming messages meanwhile. */
  waitUntil(ready: () => boolean): void;
  /** Calls `completion` from this thread's event loop, never inside another extension call. */
  complete(ctx: RequestContext, completion: Completion, cbIO: number, error: number): void;
  log(level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, string | number | boolean>): void;
  readonly outputWindow: number;
  /** Where large WriteClient data is read to (ecb-callbacks.ts); its frames are built in place. */
  readonly outputArena?: SlotArena;
  /** Where request body bytes arrive; a slot goes back once its bytes are read. */
  readonly inputArena?: SlotArena;
  /** Where live async-operation metrics go (the bridge's registry, via its main thread). */
  readonly liveMetrics?: LiveAsyncMetrics;
}

export class CallFailure {
  constructor(readonly error: number) {}
}

type HeadState = 'none' | 'held' | 'sent';

/** The asynchronous operation in flight (IIS allows one per request). */
interface Outstanding {
  id: number;
  kind: AsyncOpKind | 'exec_url';
  /** Absent for EXEC_URL, which is not an I/O operation of the accounting's kinds. */
  token?: AsyncOperation;
  completion: Completion;
  /** For a read: where the bytes go. */
  read?: { into: Uint8Array };
  /** For a write: the bytes the completion reports (the main thread only says whether they went). */
  bytes?: number;
  /** Set by the main thread's answer (for writes, transmit, vector send). */
  done?: { bytes: number; error: number };
}

let nextOpId = 1;

export class RequestContext {
  readonly accountant: RequestAccountant;
  /** HttpExtensionProc has returned (PENDING or otherwise). */
  returned = false;
  /** Set when HttpExtensionProc returns: the thread's milliseconds on the request until then. */
  threadMs: number | undefined;
  /** HSE_STATUS from DONE_WITH_SESSION when it arrives (possibly before PENDING is returned). */
  doneStatus: number | undefined;
  finished = false;
  /** The request is over for the client, but the extension never called DONE_WITH_SESSION. */
  timedOut = false;
  readonly variables: ServerVariables;
  completion: Completion | undefined;
  outstanding: Outstanding | undefined;
  endFlags = 0;
  /** HSE_REQ_CLOSE_CONNECTION was called: later completions report ERROR_NETNAME_DELETED. */
  closedByExtension = false;
  /** HSE_REQ_SEND_URL: the gateway serves this URL instead of a response from us. */
  private sendUrlTarget: string | undefined;
  /** Called once the outstanding operation is over (the request is waiting to finish behind it). */
  private whenIdle: (() => void) | undefined;
  /** HSE_REQ_GET_EXEC_URL_STATUS: how the last child request ended. */
  execStatus: { status: number; subStatus: number; win32Error: number } | undefined;

  private headState: HeadState = 'none';
  private heldHead: ResponseHeadFrame | undefined;
  private rawParser: RawHeadParser | undefined;
  /** Body the bridge itself owes the client (an error page, or held raw output) at the end. */
  private pendingBody: Buffer | undefined;
  /** The extension's own head was invalid: the 502 stands and further writes fail. */
  private headRejected = false;
  /**
   * Response frames held back, as IIS 7 and later hold an ISAPI extension's output
   * (Microsoft KB 946086): until the response ends, the app's responseBufferLimit is
   * reached, or the extension asks for every write to go out (HSE_REQ_SET_FLUSH_FLAG).
   * One hand-over per response instead of one per write is also what makes a small
   * response cheap: every hand-over wakes the main thread.
   */
  private readonly held: Buffer[] = [];
  private heldBytes = 0;
  /** HSE_REQ_SET_FLUSH_FLAG with TRUE: each write goes out at once, as IIS 6 sent them. */
  private flushEachWrite = false;

  private readonly body: Uint8Array[] = [];
  private bodyOffset = 0;
  private bodyEnded: boolean;

  constructor(
    readonly key: number,
    readonly streamId: number,
    readonly connId: number,
    readonly info: RequestInfo,
    readonly app: AppSettings,
    readonly ecb: EcbMemory,
    readonly shared: Int32Array,
    variables: ServerVariables,
    bodyComplete: boolean,
    private readonly host: ContextHost,
  ) {
    this.variables = variables;
    this.bodyEnded = bodyComplete;
    this.accountant = new RequestAccountant({ app: app.name, metrics: host.liveMetrics });
  }

  /** Non-zero once the client or gateway went away: the Win32 error to report on sync calls. */
  get aborted(): number {
    return Atomics.load(this.shared, RequestSlot.ABORTED);
  }

  /** The error an async completion reports when the connection is gone (Microsoft's PFN_HSE_IO_COMPLETION). */
  private get asyncAbortError(): number {
    return this.closedByExtension ? WIN32_ERROR.NETNAME_DELETED : WIN32_ERROR.OPERATION_ABORTED;
  }

  get headSent(): boolean {
    return this.headState === 'sent';
  }

  /** A write now becomes one RESPONSE_BODY frame of its own bytes (no raw head to look for, nothing refused). */
  get framesWritesWhole(): boolean {
    return this.headState !== 'none' && !this.headRejected;
  }

  /** True when the client asked for a persistent connection (HSE_REQ_IS_KEEP_CONN). */
  get clientKeepAlive(): boolean {
    let connection = '';
    for (const [name, value] of this.info.headers) if (name.toLowerCase() === 'connection') connection += ',' + value.toLowerCase();
    if (this.info.httpVersion === '1.0') return /(^|,)\s*keep-alive\s*(,|$)/.test(connection);
    return !/(^|,)\s*close\s*(,|$)/.test(connection);
  }

  // -------------------------------------------------------------------------
  // Request body

  pushBody(chunk: Uint8Array): void {
    this.body.push(chunk);
    this.serveAsyncRead();
  }

  endBody(): void {
    this.bodyEnded = true;
    this.serveAsyncRead();
  }

  /** Copies queued body bytes into `into`; returns how many. */
  private takeBody(into: Uint8Array): number {
    let copied = 0;
    while (copied < into.length && this.body.length > 0) {
      const head = this.body[0]!;
      const n = Math.min(into.length - copied, head.length - this.bodyOffset);
      into.set(head.subarray(this.bodyOffset, this.bodyOffset + n), copied);
      copied += n;
      this.bodyOffset += n;
      if (this.bodyOffset === head.length) {
        this.body.shift();
        this.bodyOffset = 0;
        this.host.inputArena?.releaseView(head);
      }
    }
    if (copied > 0) {
      Atomics.sub(this.shared, RequestSlot.INPUT_PENDING, copied);
      Atomics.notify(this.shared, RequestSlot.INPUT_PENDING);
    }
    return copied;
  }

  /** ReadClient: blocks until bytes arrive; 0 bytes means the body is over. */
  readBody(into: Uint8Array): number | CallFailure {
    this.host.waitUntil(() => this.body.length > 0 || this.bodyEnded || this.aborted !== 0);
    if (this.body.length === 0 && this.aborted) return new CallFailure(this.aborted);
    const copied = this.takeBody(into);
    this.accountant.read('sync', copied);
    return copied;
  }

  /** HSE_REQ_ASYNC_READ_CLIENT: returns at once; the completion gets the byte count (0 at the end). */
  readBodyAsync(into: Uint8Array): CallFailure | undefined {
    const op = this.beginAsync('read');
    if (op instanceof CallFailure) return op;
    op.read = { into };
    this.serveAsyncRead();
    return undefined;
  }

  /** The client went away: a pending async read completes with the abort error now. */
  clientAborted(): void {
    this.serveAsyncRead();
  }

  /** Runs `fn` once no asynchronous operation is outstanding (at once if none is). */
  afterOutstanding(fn: () => void): void {
    if (!this.outstanding) fn();
    else this.whenIdle = fn;
  }

  private serveAsyncRead(): void {
    const op = this.outstanding;
    if (!op?.read) return;
    if (this.body.length > 0) {
      const n = this.takeBody(op.read.into);
      this.accountant.read('async', n);
      this.completeOutstanding(n, 0);
    } else if (this.bodyEnded) {
      this.accountant.read('async', 0);
      this.completeOutstanding(0, 0);
    } else if (this.aborted || this.closedByExtension) {
      this.completeOutstanding(0, this.asyncAbortError);
    }
  }

  // -------------------------------------------------------------------------
  // Asynchronous operations

  /** Starts the request's one async operation, or refuses a second one. */
  beginAsync(kind: AsyncOpKind | 'exec_url', completion = this.completion): Outstanding | CallFailure {
    if (!completion) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
    if (this.outstanding) {
      this.accountant.rejectSecondOutstanding();
      this.host.log('warn', 'a second asynchronous operation while one is outstanding was refused', {
        requestId: this.info.requestId,
        app: this.app.name,
        kind,
        outstanding: this.outstanding.kind,
      });
      return new CallFailure(WIN32_ERROR.BUSY);
    }
    const op: Outstanding = { id: nextOpId++, kind, completion };
    if (kind !== 'exec_url') op.token = this.accountant.beginAsync(kind);
    this.outstanding = op;
    return op;
  }

  /** The main thread has sent (or failed to send) operation `id`'s bytes. */
  ioDone(id: number, bytes: number, error: number): void {
    const op = this.outstanding;
    if (!op || op.id !== id) return;
    const sent = op.kind === 'write' ? (error ? 0 : op.bytes ?? bytes) : bytes;
    if (op.kind === 'write') this.accountant.write('async', sent);
    else if (op.kind === 'transmit_file') this.accountant.transmitFile(sent);
    else if (op.kind === 'vector_send') this.accountant.vectorSend(sent);
    this.completeOutstanding(sent, error ? this.asyncAbortError : 0);
  }

  /** Blocks a synchronous operation (sync TransmitFile / VectorSend) until the main thread is done. */
  waitForOperation(op: Outstanding): { bytes: number; error: number } {
    this.host.waitUntil(() => op.done !== undefined);
    return op.done!;
  }

  private completeOutstanding(bytes: number, error: number): void {
    const op = this.outstanding;
    if (!op) return;
    this.outstanding = undefined;
    if (op.token) this.accountant.completeAsync(op.token, error);
    const idle = this.whenIdle;
    this.whenIdle = undefined;
    if (op.completion.fn === 0n) {
      op.done = { bytes, error }; // A synchronous caller is waiting for this.
      idle?.();
      return;
    }
    // After DONE_WITH_SESSION the ECB is no longer the extension's: no completion then.
    if (this.finished || this.doneStatus !== undefined) {
      idle?.();
      return;
    }
    this.host.complete(this, op.completion, bytes, error);
  }

  // -------------------------------------------------------------------------
  // Requests served by the gateway on the extension's behalf

  /** HSE_REQ_SEND_URL: nothing may have been sent; the gateway answers with `url` instead. */
  sendUrl(url: string): CallFailure | undefined {
    if (this.headState !== 'none' || this.rawParser || this.sendUrlTarget) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
    this.sendUrlTarget = url;
    this.headRejected = true; // Nothing of ours may follow.
    return undefined;
  }

  /** HSE_REQ_EXEC_URL: the gateway runs the child request; its output goes to the client; the completion follows. */
  execUrl(frame: Buffer, childSendsHead: boolean): CallFailure | undefined {
    if (this.rawParser) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
    const op = this.beginAsync('exec_url');
    if (op instanceof CallFailure) return op;
    const parts = this.headState === 'held' ? this.takeHeadFrames() : [];
    // Without HSE_EXEC_URL_NO_HEADERS the child's status and headers are the response's.
    if (this.headState === 'none' && childSendsHead) this.headState = 'sent';
    parts.push(frame);
    this.hold(parts);
    this.flush();
    return undefined;
  }

  /** EXEC_URL_DONE from the gateway. */
  execDone(status: number, subStatus: number, win32Error: number): void {
    this.execStatus = { status, subStatus, win32Error };
    if (this.outstanding?.kind === 'exec_url') this.completeOutstanding(0, win32Error);
  }

  // -------------------------------------------------------------------------
  // Response head

  /** SEND_RESPONSE_HEADER(_EX), SEND_URL_REDIRECT_RESP: the head is held until body or end. */
  setHead(parsed: ParsedHead, keepConn = true): CallFailure | undefined {
    if (this.headState !== 'none') return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
    this.holdHead(parsed, keepConn);
    if (parsed.body.length > 0) return this.sendBody(parsed.body);
    return undefined;
  }

  private holdHead(parsed: ParsedHead, keepConn: boolean): void {
    const { head } = parsed;
    let flags = keepConn ? 0 : HeadFlags.CLOSE;
    if (head.chunked) flags |= HeadFlags.EXTENSION_CHUNKED;
    this.heldHead = { statusCode: head.statusCode, reason: head.reason, headers: head.headers, flags };
    this.headState = 'held';
  }

  // -------------------------------------------------------------------------
  // Response body

  /**
   * Synchronous WriteClient. The bytes join the held response (see `held`); once
   * handed over, the call blocks while more than the output window is still on its
   * way to the gateway.
   */
  write(data: Buffer): CallFailure | undefined {
    if (this.aborted) return new CallFailure(WIN32_ERROR.NETNAME_DELETED);
    if (this.headRejected) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
    this.accountant.write('sync', data.length);
    return this.sendBody(data);
  }

  /**
   * WriteClient with HSE_IO_ASYNC: handed over at once, with whatever is held before
   * it, so that the completion can report when the bytes have gone.
   */
  writeAsync(data: Buffer): CallFailure | undefined {
    if (this.headRejected) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
    const op = this.beginAsync('write');
    if (op instanceof CallFailure) return op;
    op.bytes = data.length;
    if (this.aborted) {
      this.completeLater(op, 0, this.asyncAbortError);
      return undefined;
    }
    const parts = this.bodyParts(data);
    if (parts === undefined) {
      // Still collecting a raw head: nothing to send yet, the bytes are taken.
      this.completeLater(op, data.length, 0);
      return undefined;
    }
    this.hold(parts);
    this.flush(false, op.id);
    return undefined;
  }

  /** Completes an operation on the next turn of the event loop, never inside the call that started it. */
  private completeLater(op: Outstanding, bytes: number, error: number): void {
    setImmediate(() => {
      if (op.kind === 'write') this.accountant.write('async', bytes);
      if (this.outstanding === op) this.completeOutstanding(bytes, error);
    });
  }

  /** Bytes produced outside WriteClient (TransmitFile head/tail, vector elements): raw-head rules still apply. */
  private sendBody(data: Buffer): CallFailure | undefined {
    const parts = this.bodyParts(data);
    if (parts === undefined) return this.headRejected ? new CallFailure(WIN32_ERROR.INVALID_PARAMETER) : undefined;
    this.hold(parts);
    if (this.flushEachWrite || this.heldBytes >= this.app.responseBufferLimit) this.flush();
    return this.waitForWindow();
  }

  private hold(parts: Buffer[]): void {
    for (const part of parts) {
      this.held.push(part);
      this.heldBytes += part.length;
    }
  }

  /** Hands the held frames to the main thread (with `end` / `opId` for the message, even when nothing is held). */
  private flush(end = false, opId?: number): void {
    if (this.held.length === 0 && !end && opId === undefined) return;
    const parts = this.held.splice(0);
    this.heldBytes = 0;
    this.host.post(this, parts, end, opId);
  }

  /** HSE_REQ_SET_FLUSH_FLAG: TRUE sends every later write at once (and what is held now); FALSE holds output again. */
  setFlushEachWrite(on: boolean): void {
    this.flushEachWrite = on;
    if (on) this.flush();
  }

  /** Blocks while too much output is still in flight to the gateway. */
  private waitForWindow(): CallFailure | undefined {
    const window = this.host.outputWindow;
    this.host.waitUntil(() => Atomics.load(this.shared, RequestSlot.OUTPUT_PENDING) <= window || this.aborted !== 0);
    if (this.aborted) return new CallFailure(WIN32_ERROR.NETNAME_DELETED);
    return undefined;
  }

  /**
   * The frames that put `data` on the wire: the held head first, if any. Returns
   * undefined while the bytes are being collected as a possible raw head.
   */
  bodyParts(data: Buffer): Buffer[] | undefined {
    if (this.headState === 'none') {
      // No head yet: IIS looks for one the extension writes itself at the start of its output.
      this.rawParser ??= new RawHeadParser();
      const step = this.rawParser.push(data, this.ecb.httpStatusCode);
      if (step.kind === 'need-more') return undefined;
      this.rawParser = undefined;
      const body = this.applyRawStep(step);
      if (body === undefined) return undefined;
      data = body;
    }
    const parts: Buffer[] = [];
    this.flushHeadInto(parts);
    if (data.length > 0) parts.push(...this.bodyFrame(data));
    return parts;
  }

  /**
   * A RESPONSE_BODY frame for `data`. WriteClient data is read into a buffer with room
   * for the header in front (ecb-callbacks.ts readBytes): the header goes there and
   * the frame leaves without another copy, which a 64 KiB write would otherwise cost.
   */
  private bodyFrame(data: Buffer): Buffer[] {
    const arena = this.host.outputArena;
    if (arena && arena.slotOf(data) >= 0) {
      const frame = arena.frame(data);
      writeFrameHeader(frame, 0, FrameType.RESPONSE_BODY, 0, this.streamId, data.length);
      return [frame];
    }
    if (data.byteOffset !== FRAME_HEADER_SIZE || data.buffer.byteLength !== FRAME_HEADER_SIZE + data.length) {
      return [encodeFrameHeader(FrameType.RESPONSE_BODY, this.streamId, data.length), data];
    }
    const frame = Buffer.from(data.buffer, 0, data.buffer.byteLength);
    writeFrameHeader(frame, 0, FrameType.RESPONSE_BODY, 0, this.streamId, data.length);
    return [frame];
  }

  /** A decided raw head: holds it (or a default one); returns the body that followed it. */
  private applyRawStep(step: Exclude<RawHeadStep, { kind: 'need-more' }>): Buffer | undefined {
    if (step.kind === 'error') {
      this.host.log('warn', 'extension wrote an invalid response head', {
        requestId: this.info.requestId,
        app: this.app.name,
        code: step.error.code,
        error: step.error.message,
      });
      this.holdErrorHead(502, 'Bad Gateway', `The ISAPI extension wrote an invalid response head (${step.error.code}).`);
      this.headRejected = true;
      return undefined;
    }
    this.holdHead(step.kind === 'head' ? step : this.defaultHead(), true);
    return step.body;
  }

  /** Frames for the head, if it is still held, so that what follows goes after it. */
  takeHeadFrames(): Buffer[] {
    const parts: Buffer[] = [];
    if (this.headState === 'none' && this.rawParser) {
      const pending = this.rawParser.flush();
      this.rawParser = undefined;
      this.holdHead(this.defaultHead(), true);
      this.flushHeadInto(parts);
      if (pending && pending.length > 0) parts.push(encodeFrameHeader(FrameType.RESPONSE_BODY, this.streamId, pending.length), pending);
      return parts;
    }
    if (this.headState === 'none') this.holdHead(this.defaultHead(), true);
    this.flushHeadInto(parts);
    return parts;
  }

  /** Transmit-file and vector segments go out in order behind anything already written. */
  sendSegments(segments: OutputSegment[], op: Outstanding): void {
    this.flush();
    this.host.postSegments(this, segments, op.id);
  }

  private flushHeadInto(parts: Buffer[]): void {
    if (this.headState === 'held' && this.heldHead) {
      parts.push(encodeResponseHead(this.streamId, this.heldHead));
      this.headState = 'sent';
      this.heldHead = undefined;
    }
  }

  private defaultHead(): ParsedHead {
    return { kind: 'head', head: defaultResponseHead(this.ecb.httpStatusCode || 200), body: Buffer.alloc(0) };
  }

  /** A head (with its small body) for a response the bridge has to answer for the extension. */
  holdErrorHead(status: number, reason: string, text: string): void {
    const body = Buffer.from(`${status} ${reason}: ${text}\r\n`, 'latin1');
    this.holdHead(
      {
        kind: 'head',
        head: {
          statusCode: status,
          reason,
          headers: [
            ['Content-Type', 'text/plain'],
            ['Content-Length', String(body.length)],
          ],
          chunked: false,
          contentLength: body.length,
        },
        body,
      },
      false,
    );
    this.pendingBody = body;
  }

  // -------------------------------------------------------------------------
  // End of request

  /**
   * Sends whatever is still held and the RESPONSE_END frame. An ERROR status
   * before any output becomes a 500, as IIS answers.
   */
  finish(hseStatus: number): void {
    if (this.finished) return;
    this.finished = true;
    // Body the extension never read: its slots go back.
    for (const chunk of this.body.splice(0)) this.host.inputArena?.releaseView(chunk);
    const parts: Buffer[] = [];
    if (this.headState === 'none' && this.rawParser) {
      // Output held back while it could still be a head: decide now.
      const step = this.rawParser.finish(this.ecb.httpStatusCode || 200);
      this.rawParser = undefined;
      if (step.kind === 'error') {
        this.holdErrorHead(502, 'Bad Gateway', `The ISAPI extension wrote an invalid response head (${step.error.code}).`);
      } else {
        this.holdHead(step.kind === 'head' ? step : this.defaultHead(), true);
        if (step.body.length > 0) this.pendingBody = step.body;
      }
    }
    if (this.sendUrlTarget !== undefined && this.headState === 'none') {
      parts.push(encodeSendUrl(this.streamId, this.sendUrlTarget));
    } else if (this.headState === 'none') {
      if (hseStatus === HSE_STATUS.ERROR || this.timedOut) {
        this.holdErrorHead(500, 'Internal Server Error', this.timedOut ? 'the ISAPI extension never completed the request.' : 'the ISAPI extension failed the request.');
      } else {
        const head = this.defaultHead();
        head.head.headers.push(['Content-Length', '0']);
        this.holdHead(head, true);
      }
    }
    this.flushHeadInto(parts);
    if (this.pendingBody) {
      parts.push(encodeFrameHeader(FrameType.RESPONSE_BODY, this.streamId, this.pendingBody.length), this.pendingBody);
      this.pendingBody = undefined;
    }
    const accounting = this.accountant.current();
    parts.push(
      encodeResponseEnd(this.streamId, {
        hseStatus,
        loggedStatus: this.ecb.httpStatusCode,
        logData: this.ecb.logData,
        accounting,
        flags: this.endFlags,
      }),
    );
    this.hold(parts);
    this.flush(true);
  }

  requestClose(abortive: boolean): void {
    this.endFlags |= abortive ? EndFlags.ABORTIVE : EndFlags.CLOSE;
  }
}
