/**
 * One request as its extension thread sees it: the ECB memory, the response
 * head state, the body arriving from the gateway, the I/O accounting, and the
 * frames it sends back. Methods here are the semantics of the ECB callbacks;
 * ecb-callbacks.ts only converts native arguments into calls on this class.
 */
import { HSE_STATUS, WIN32_ERROR } from './abi/constants';
import { EcbMemory } from './ecb-memory';
import type { RequestInfo, AppSettings } from './request-info';
import { RequestSlot } from './thread-messages';
import {
  FrameType,
  HeadFlags,
  emptyCounters,
  encodeFrameHeader,
  encodeResponseEnd,
  encodeResponseHead,
  type AccountingCounters,
  type ResponseHeadFrame,
} from './wire';
import { RawHeadParser, defaultResponseHead, type ParsedHead, type RawHeadStep } from './response-head';
import { ServerVariables } from './server-variables';

/** What the extension thread needs from its host to move bytes and to block. */
export interface ContextHost {
  /** Hands encoded frames to the main thread (ownership of `bytes` moves with it). */
  post(ctx: RequestContext, bytes: Buffer, end: boolean): void;
  /** Blocks this thread until `ready()` is true, serving incoming messages meanwhile. */
  waitUntil(ready: () => boolean): void;
  log(level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, string | number | boolean>): void;
  readonly outputWindow: number;
}

export class CallFailure {
  constructor(readonly error: number) {}
}

type HeadState = 'none' | 'held' | 'sent';

export class RequestContext {
  readonly counters: AccountingCounters = emptyCounters();
  appendedLog = '';
  /** HttpExtensionProc has returned (PENDING or otherwise). */
  returned = false;
  /** HSE_STATUS from DONE_WITH_SESSION when it arrives (possibly before PENDING is returned). */
  doneStatus: number | undefined;
  finished = false;
  readonly variables: ServerVariables;

  private headState: HeadState = 'none';
  private heldHead: ResponseHeadFrame | undefined;
  private rawParser: RawHeadParser | undefined;
  /** Body bytes the client still has to receive under the head's Content-Length, if it had one. */
  private bodyBytesSent = 0;
  private declaredLength = -1;

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
  }

  get aborted(): number {
    return Atomics.load(this.shared, RequestSlot.ABORTED);
  }

  get headSent(): boolean {
    return this.headState === 'sent';
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
  }

  endBody(): void {
    this.bodyEnded = true;
  }

  /** ReadClient: blocks until bytes arrive; 0 bytes means the body is over. */
  readBody(into: Uint8Array): number | CallFailure {
    this.host.waitUntil(() => this.body.length > 0 || this.bodyEnded || this.aborted !== 0);
    if (this.body.length === 0) {
      if (this.aborted) return new CallFailure(this.aborted);
      return 0;
    }
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
      }
    }
    Atomics.sub(this.shared, RequestSlot.INPUT_PENDING, copied);
    Atomics.notify(this.shared, RequestSlot.INPUT_PENDING);
    this.counters.syncReads++;
    this.counters.syncReadBytes += copied;
    return copied;
  }

  // -------------------------------------------------------------------------
  // Response head

  /** SEND_RESPONSE_HEADER(_EX), SEND_URL_REDIRECT_RESP: the head is held until body or end. */
  setHead(parsed: ParsedHead, keepConn = true): CallFailure | undefined {
    if (this.headState !== 'none') return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
    this.holdHead(parsed, keepConn);
    if (parsed.body.length > 0) return this.writeBody(parsed.body, false);
    return undefined;
  }

  private holdHead(parsed: ParsedHead, keepConn: boolean): void {
    const { head } = parsed;
    let flags = keepConn ? 0 : HeadFlags.CLOSE;
    if (head.chunked) flags |= HeadFlags.EXTENSION_CHUNKED;
    this.declaredLength = head.contentLength ?? -1;
    this.heldHead = { statusCode: head.statusCode, reason: head.reason, headers: head.headers, flags };
    this.headState = 'held';
  }

  // -------------------------------------------------------------------------
  // Response body

  /**
   * Synchronous WriteClient. Sends at once (never buffers the response) and
   * blocks while more than the output window is still on its way to the gateway.
   */
  write(data: Buffer): CallFailure | undefined {
    if (this.aborted) return new CallFailure(WIN32_ERROR.NETNAME_DELETED);
    if (this.headRejected) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
    this.counters.syncWrites++;
    this.counters.syncWriteBytes += data.length;
    if (this.headState !== 'none') return this.writeBody(data, false);
    // No head yet: IIS looks for one the extension writes itself at the start of its output.
    this.rawParser ??= new RawHeadParser();
    const step = this.rawParser.push(data, this.ecb.httpStatusCode);
    if (step.kind === 'need-more') return undefined;
    this.rawParser = undefined;
    return this.applyRawStep(step);
  }

  /** A decided raw head: hold it (or a default one) and send what followed it as body. */
  private applyRawStep(step: Exclude<RawHeadStep, { kind: 'need-more' }>): CallFailure | undefined {
    if (step.kind === 'error') {
      this.host.log('warn', 'extension wrote an invalid response head', {
        requestId: this.info.requestId,
        app: this.app.name,
        code: step.error.code,
        error: step.error.message,
      });
      this.holdErrorHead(502, 'Bad Gateway', `The ISAPI extension wrote an invalid response head (${step.error.code}).`);
      this.headRejected = true;
      return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
    }
    if (step.kind === 'head') this.holdHead(step, true);
    else this.holdHead(this.defaultHead(), true);
    return this.writeBody(step.body, false);
  }

  private writeBody(data: Buffer, end: boolean): CallFailure | undefined {
    const parts: Buffer[] = [];
    this.flushHeadInto(parts);
    if (data.length > 0) {
      parts.push(encodeFrameHeader(FrameType.RESPONSE_BODY, this.streamId, data.length), data);
      this.bodyBytesSent += data.length;
    }
    if (parts.length > 0) this.host.post(this, assemble(parts), end);
    const window = this.host.outputWindow;
    this.host.waitUntil(() => Atomics.load(this.shared, RequestSlot.OUTPUT_PENDING) <= window || this.aborted !== 0);
    if (this.aborted) return new CallFailure(WIN32_ERROR.NETNAME_DELETED);
    return undefined;
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
  private holdErrorHead(status: number, reason: string, text: string): void {
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

  /** Body the bridge itself owes the client (an error page, or held raw output) at the end. */
  private pendingBody: Buffer | undefined;
  /** The extension's own head was invalid: the 502 stands and further writes fail. */
  private headRejected = false;

  // -------------------------------------------------------------------------
  // End of request

  /**
   * Sends whatever is still held and the RESPONSE_END frame. An ERROR status
   * before any output becomes a 500, as IIS answers.
   */
  finish(hseStatus: number): void {
    if (this.finished) return;
    this.finished = true;
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
    if (this.headState === 'none') {
      if (hseStatus === HSE_STATUS.ERROR) {
        this.holdErrorHead(500, 'Internal Server Error', 'the ISAPI extension failed the request.');
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
    parts.push(
      encodeResponseEnd(this.streamId, {
        hseStatus,
        loggedStatus: this.ecb.httpStatusCode,
        logData: this.ecb.logData,
        appendedLog: this.appendedLog,
        counters: this.counters,
        detail: '',
      }),
    );
    this.host.post(this, assemble(parts), true);
  }

  /** Whether the response can be considered complete for an HSE_STATUS_ERROR after output. */
  get bodyComplete(): boolean {
    return this.declaredLength >= 0 && this.bodyBytesSent >= this.declaredLength;
  }
}

/**
 * Frames are transferred to the main thread, so they need an ArrayBuffer of
 * their own: Buffer.concat may hand out a slice of Node's shared pool.
 */
export function assemble(parts: Buffer[]): Buffer {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = Buffer.allocUnsafeSlow(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
