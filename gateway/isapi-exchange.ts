/**
 * One HTTP request served by an ISAPI app: the client request goes to the bridge
 * as REQUEST + BODY frames, the extension's frames come back as the client
 * response. Backpressure runs both ways: a slow bridge pauses the client
 * upload, a slow client pauses the bridge connection (and so the extension's
 * synchronous WriteClient).
 */
import type http from 'node:http';
import { HSE_EXEC_URL, HSE_STATUS, WIN32_ERROR } from '../bridge/abi/constants';
import type { RequestInfo } from '../bridge/request-info';
import {
  EndFlags,
  FrameType,
  HeadFlags,
  decodeAbort,
  decodeExecUrl,
  decodeSendUrl,
  encodeExecUrlDone,
  decodeResponseEnd,
  decodeResponseHead,
  encodeAbort,
  encodeFrame,
  encodeFrameHeader,
  encodeRequest,
  type ExecUrlFrame,
  type Frame,
  type ResponseEndFrame,
  FileDoneResult,
  decodeResponseFile,
  encodeFileDone,
  type FileDone,
  type FileOffer,
} from '../bridge/wire';
import type { BridgeConnection, ConnectionUser } from './bridge-client';
import type { ConnectionSource } from './bridge-pool';
import { ChunkedDecoder } from './chunked';
import { openBridgeFile, streamFileRange } from './file-range';

/** What the exchange reports when it is over (access log and metrics). */
export interface ExchangeResult {
  status: number;
  bytesIn: number;
  bytesOut: number;
  end?: ResponseEndFrame;
  /** Why it did not complete normally, if it did not. */
  error?: string;
}

/** Hop-by-hop headers an extension may emit that Node manages itself (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection']);

let nextStreamId = 1;

/** Requests the gateway runs on an extension's behalf. */
export interface InternalRequests {
  /** HSE_REQ_SEND_URL: serve `url` to this client instead, through the gateway's routing. */
  sendUrl(req: http.IncomingMessage, res: http.ServerResponse, url: string): void;
  /** HSE_REQ_EXEC_URL: run a child request through the gateway and hand back its response. */
  exec(spec: ExecUrlFrame, parent: RequestInfo): Promise<http.IncomingMessage>;
}

export class IsapiExchange implements ConnectionUser {
  private readonly streamId = nextStreamId++ >>> 0 || (nextStreamId++ >>> 0);
  private conn: BridgeConnection | undefined;
  private headSent = false;
  private finished = false;
  private clientGone = false;
  private bytesIn = 0;
  private bytesOut = 0;
  private declaredLength = -1;
  private dechunk: ChunkedDecoder | undefined;
  private status = 0;

  constructor(
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly info: RequestInfo,
    private readonly client: ConnectionSource,
    private readonly done: (result: ExchangeResult) => void,
    private readonly internal?: InternalRequests,
  ) {}

  /** Releases of body bytes whose client write has not called back (onBody). */
  private readonly held = new Set<() => void>();
  /** The client's response is full: the bridge connection is paused until it drains. */
  private awaitingDrain = false;

  /** HSE_REQ_SEND_URL target, served once the bridge ends this request. */
  private sendUrlTarget: string | undefined;

  async start(): Promise<void> {
    const closed = (): void => {
      // Finished, every write has called back; destroyed, the socket no longer reads any (and Node may never call back).
      for (const release of this.held) release();
      this.held.clear();
      if (!this.finished) this.onClientGone();
    };
    this.res.on('close', closed);
    // A pipelined request's response waits for its turn without a socket: if the client goes, only the request hears it.
    this.req.on('close', () => {
      if (this.req.socket?.destroyed) closed();
    });
    let conn: BridgeConnection;
    try {
      conn = await this.client.acquire();
    } catch (err) {
      this.failBeforeHead(503, `ISAPI bridge unavailable: ${(err as Error).message}`);
      return;
    }
    if (this.clientGone) {
      conn.release();
      this.complete({ error: 'client closed before dispatch' });
      return;
    }
    this.conn = conn;
    conn.user = this;
    conn.write(encodeRequest(this.streamId, this.info));
    this.forwardBody(conn);
  }

  private forwardBody(conn: BridgeConnection): void {
    if (this.info.contentLength === 0) return; // The bridge knows there is no body.
    const onDrain = (): void => {
      this.req.resume();
    };
    conn.socket.on('drain', onDrain);
    this.req.on('data', (chunk: Buffer) => {
      if (this.finished || this.conn !== conn) return;
      this.bytesIn += chunk.length;
      // Header and chunk leave in one writev; the chunk is not copied.
      conn.socket.cork();
      conn.write(encodeFrameHeader(FrameType.REQUEST_BODY, this.streamId, chunk.length));
      const more = conn.write(chunk);
      conn.socket.uncork();
      if (!more) this.req.pause();
    });
    this.req.on('end', () => {
      conn.socket.off('drain', onDrain);
      if (!this.finished && this.conn === conn) conn.write(encodeFrame(FrameType.REQUEST_END, this.streamId));
    });
    this.req.on('aborted', () => this.onClientGone());
    // A body the parser refuses mid-way (bad chunk framing) ends the upload with an error.
    this.req.on('error', () => this.onClientGone());
  }

  onFrame(frame: Frame): void {
    if (frame.streamId !== this.streamId) return; // A late frame of an earlier request on this connection.
    switch (frame.type) {
      case FrameType.RESPONSE_HEAD:
        return this.onHead(frame);
      case FrameType.RESPONSE_END:
        return this.onEnd(decodeResponseEnd(frame.payload, frame.flags));
      case FrameType.SEND_URL:
        this.sendUrlTarget = decodeSendUrl(frame.payload);
        return;
      case FrameType.EXEC_URL:
        void this.runChild(decodeExecUrl(frame.payload));
        return;
      case FrameType.RESPONSE_FILE:
        void this.sendFileRange(decodeResponseFile(frame.payload));
        return;
      case FrameType.ABORT: {
        const abort = decodeAbort(frame.payload);
        this.releaseConnection();
        if (!this.headSent && !this.clientGone) {
          this.failBeforeHead(502, `ISAPI request aborted by the bridge: ${abort.reason || abort.code}`);
        } else {
          this.destroyResponse(`aborted by bridge: ${abort.reason}`);
          this.complete({ error: this.clientGone ? 'client closed the connection' : `aborted by bridge: ${abort.reason}` });
        }
        return;
      }
      default:
        return;
    }
  }

  /** TransmitFile bytes the bridge lets us read from its descriptor (gateway/file-range.ts); FILE_DONE tells it how it went. */
  private async sendFileRange(offer: FileOffer): Promise<void> {
    const conn = this.conn;
    const reply = (done: FileDone): void => {
      if (conn && this.conn === conn && !conn.socket.destroyed) conn.write(encodeFileDone(this.streamId, done));
    };
    if (this.clientGone) return reply({ result: FileDoneResult.CLIENT_GONE, bytes: 0, win32Error: 0 });
    // Bytes that must pass the extension's own chunked framing stay on the frame path.
    const file = this.headSent && !this.dechunk ? await openBridgeFile(offer) : undefined;
    if (!file) return reply({ result: FileDoneResult.DECLINED, bytes: 0, win32Error: 0 });
    reply(await streamFileRange(file, offer, this.res, (n) => (this.bytesOut += n)));
  }

  /** HSE_REQ_EXEC_URL: the child's response goes to this client; the bridge hears how it ended. */
  private async runChild(spec: ExecUrlFrame): Promise<void> {
    const conn = this.conn;
    const report = (status: number, win32Error: number): void => {
      conn?.write(encodeExecUrlDone(this.streamId, { status, subStatus: 0, win32Error }));
    };
    if (!this.internal) {
      report(501, WIN32_ERROR.NOT_SUPPORTED);
      return;
    }
    try {
      const child = await this.internal.exec(spec, this.info);
      if (!(spec.flags & HSE_EXEC_URL.NO_HEADERS) && !this.headSent && !this.clientGone) {
        const raw: string[] = [];
        for (let i = 0; i < child.rawHeaders.length; i += 2) {
          const lower = child.rawHeaders[i]!.toLowerCase();
          // The parent may write more after the child: the length is no longer the child's.
          if (lower === 'content-length' || HOP_BY_HOP.has(lower)) continue;
          raw.push(child.rawHeaders[i]!, child.rawHeaders[i + 1]!);
        }
        this.res.writeHead(child.statusCode ?? 502, child.statusMessage, raw);
        this.headSent = true;
        this.status = child.statusCode ?? 502;
      }
      for await (const chunk of child as AsyncIterable<Buffer>) {
        if (this.clientGone) continue;
        this.bytesOut += chunk.length;
        if (!this.res.write(chunk)) await new Promise((resolve) => this.res.once('drain', resolve));
      }
      report(child.statusCode ?? 0, 0);
    } catch (err) {
      report(502, WIN32_ERROR.NETNAME_DELETED);
    }
  }

  private onHead(frame: Frame): void {
    const head = decodeResponseHead(frame.payload, frame.flags);
    if (this.headSent) return; // An EXEC_URL child already answered with its own head.
    this.status = head.statusCode;
    if (this.clientGone) return;
    const raw: string[] = [];
    for (const [name, value] of head.headers) {
      const lower = name.toLowerCase();
      if (lower === 'content-length') this.declaredLength = Number(value);
      if (HOP_BY_HOP.has(lower)) continue;
      raw.push(name, value);
    }
    if (head.flags & HeadFlags.EXTENSION_CHUNKED) this.dechunk = new ChunkedDecoder();
    if (head.flags & HeadFlags.CLOSE) this.res.shouldKeepAlive = false;
    try {
      this.res.writeHead(head.statusCode, head.reason || undefined, raw);
      this.headSent = true;
    } catch (err) {
      // An extension's header Node refuses (invalid characters): answer 502 rather than crash.
      this.headSent = false;
      this.failBeforeHead(502, `ISAPI extension sent an invalid response head: ${(err as Error).message}`);
    }
  }

  /**
   * Body bytes as the connection passes them on, written to the client without a
   * copy: views of a socket read (a frame that straddles reads arrives in pieces,
   * bridge/wire.ts FrameDecoder) or of the bridge's spool (gateway/spool-mapping.ts).
   * Node corks the client socket for the tick, so the pieces of one read leave
   * together. `release` lets the memory be reused once the write is done; if the
   * socket is destroyed before Node calls back, the response's 'close' does it.
   */
  onBody(streamId: number, bytes: Buffer, release: () => void): void {
    if (streamId !== this.streamId || this.clientGone || !this.headSent) return release();
    let data = bytes;
    if (this.dechunk) {
      data = this.dechunk.push(bytes);
      if (data.length === 0) return release();
    }
    this.bytesOut += data.length;
    this.held.add(release);
    const written = (): void => {
      if (this.held.delete(release)) release();
    };
    // The rest of the socket read still arrives after the pause: one 'drain' wait is enough.
    if (!this.res.write(data, written) && this.conn && !this.awaitingDrain) {
      const conn = this.conn;
      this.awaitingDrain = true;
      conn.socket.pause();
      this.res.once('drain', () => {
        this.awaitingDrain = false;
        conn.socket.resume();
      });
    }
  }

  private onEnd(end: ResponseEndFrame): void {
    this.releaseConnection();
    if (this.sendUrlTarget !== undefined && !this.clientGone && !this.headSent) {
      const url = this.sendUrlTarget;
      this.complete({ end, error: undefined });
      this.internal?.sendUrl(this.req, this.res, url);
      return;
    }
    if (this.clientGone) {
      // A client that closes after it has the whole response (per Content-Length) lost nothing.
      const whole = this.headSent && this.declaredLength >= 0 && this.bytesOut >= this.declaredLength;
      this.complete({ end, error: whole ? undefined : 'client closed the connection' });
      return;
    }
    const failedMidway =
      end.hseStatus === HSE_STATUS.ERROR && this.headSent && !(this.declaredLength >= 0 && this.bytesOut >= this.declaredLength);
    if (failedMidway) {
      // IIS drops the connection when an extension fails after output: the client must not take a cut-off body as whole.
      this.destroyResponse('extension returned HSE_STATUS_ERROR after output');
      this.complete({ end, error: 'HSE_STATUS_ERROR after output' });
      return;
    }
    if (end.flags & EndFlags.ABORTIVE) {
      // HSE_REQ_ABORTIVE_CLOSE: reset rather than finish.
      this.destroyResponse('extension requested an abortive close');
      this.complete({ end });
      return;
    }
    if (end.hseStatus === HSE_STATUS.ERROR || end.flags & EndFlags.CLOSE) {
      this.res.shouldKeepAlive = false;
      // Headers may be out already: close the connection once the response is complete.
      if (end.flags & EndFlags.CLOSE) this.res.once('finish', () => this.req.socket.end());
    }
    this.res.end();
    this.complete({ end });
  }

  onConnectionLost(reason: string): void {
    this.conn = undefined;
    if (this.finished) return;
    if (!this.headSent && !this.clientGone) this.failBeforeHead(502, `ISAPI bridge connection lost: ${reason}`);
    else {
      this.destroyResponse(reason);
      this.complete({ error: reason });
    }
  }

  private onClientGone(): void {
    if (this.clientGone || this.finished) return;
    this.clientGone = true;
    // The extension learns it at its next WriteClient; the connection is reused once RESPONSE_END arrives.
    this.conn?.write(encodeAbort(this.streamId, { code: WIN32_ERROR.NETNAME_DELETED, reason: 'client disconnected' }));
    this.conn?.socket.resume();
  }

  private releaseConnection(): void {
    const conn = this.conn;
    this.conn = undefined;
    if (conn) {
      conn.socket.resume();
      conn.release();
    }
  }

  private failBeforeHead(status: number, message: string): void {
    this.status = status;
    if (!this.res.headersSent && !this.clientGone) {
      const body = `${status} ${message}\r\nrequest id: ${this.info.requestId}\r\n`;
      this.res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'X-Request-Id': this.info.requestId });
      this.res.end(body);
      this.bytesOut += Buffer.byteLength(body);
    }
    this.complete({ error: message });
  }

  private destroyResponse(reason: string): void {
    if (!this.res.destroyed) this.res.destroy(new Error(reason));
  }

  private complete(extra: Partial<ExchangeResult>): void {
    if (this.finished) return;
    this.finished = true;
    this.done({ status: this.status, bytesIn: this.bytesIn, bytesOut: this.bytesOut, ...extra });
  }
}
