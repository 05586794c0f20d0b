/**
 * The bridge process's gateway-facing side: accepts gateway connections, reads
 * REQUEST/BODY frames, assembles the read-ahead, hands requests to the thread
 * pool and writes the frames extension threads produce back to the right socket.
 *
 * A connection carries one request at a time (like an HTTP/1.1 keep-alive
 * connection), so socket backpressure is per request: a slow client stalls only
 * its own extension call, and nothing in between buffers without bound.
 */
import fs from 'node:fs';
import net from 'node:net';
import { WIN32_ERROR } from './abi/constants';
import type { Logger } from './log';
import type { AppSettings } from './request-info';
import { emptyAccounting } from '../metrics/accounting';
import { RequestTable } from './request-table';
import { ResponseWriter } from './response-writer';
import { REQUEST_SLOTS, RequestSlot, assemble, transferList, type MainToWorker, type OutputSegment } from './thread-messages';
import { ThreadPool, type Dispatchable, type OutPiece } from './thread-pool';
import { listenTransport, type TransportAddress, type TransportTlsServer } from './transport';
import { BridgeHandshake } from './handshake';
import { peerProcessOf, type PeerProcess } from './peer-process';
import { RetiredSlots } from './retired-slots';
import {
  FrameDecoder,
  FrameType,
  PROTOCOL_VERSION,
  WireProtocolError,
  decodeAbort,
  decodeExecUrlDone,
  decodeFileDone,
  decodeHello,
  decodeShutdown,
  decodeSpoolFree,
  decodeStatusRequest,
  encodeAbort,
  encodeFrame,
  encodeFrameHeader,
  encodeHello,
  encodeResponseEnd,
  encodeResponseHead,
  encodeResponseSpool,
  encodeSpoolOffer,
  encodeStatus,
  encodeUnhealthy,
  peekRequestApp,
  peekRequestContentLength,
  FRAME_HEADER_SIZE,
  type Frame,
} from './wire';

export interface BridgeServerOptions {
  apps: AppSettings[];
  /** Apps whose load failed: their requests get 503 naming the reason. */
  failedApps: Map<string, string>;
  pool: ThreadPool;
  logger: Logger;
  /** Shared secret a TCP peer must present in HELLO; undefined on local sockets. */
  secret?: string;
  /** Request body bytes a request may have waiting for the extension before the socket is paused. */
  inputWindow: number;
  /** A gateway sent SHUTDOWN: drain, TerminateExtension and exit (the process owner decides how). */
  onShutdownRequest?: () => void;
  /** Spool slots left taken because their connection closed while the gateway held them (output()). */
  onSpoolSlotsRetired?: (count: number) => void;
  /** Retired spool slots freed again because the gateway that held them has exited (retired-slots.ts). */
  onSpoolSlotsReclaimed?: (count: number) => void;
}

/** Seconds a client is told to wait (Retry-After) when an app's queue is full. */
const QUEUE_FULL_RETRY_AFTER_S = 1;
/** How often gateways that hold retired spool slots are asked whether they have exited. */
const RETIRED_CHECK_MS = 1000;
const EMPTY = Buffer.alloc(0);

class BridgeRequest implements Dispatchable {
  readonly shared = new SharedArrayBuffer(4 * REQUEST_SLOTS);
  readonly slots = new Int32Array(this.shared);
  readonly preload: Buffer[] = [];
  preloadBytes = 0;
  bodyEnded = false;
  dispatched = false;
  finished = false;
  writer?: ResponseWriter;
  /**
   * Body bytes beyond the read-ahead not yet posted to the extension thread: all
   * of them until a thread runs the request, then those of the current event-loop
   * turn (GatewayConnection.flushBody posts them as one message). Counted in
   * RequestSlot.INPUT_PENDING from arrival, so the input window bounds them.
   */
  readonly early: Buffer[] = [];
  earlyBytes = 0;
  bodyFlushScheduled = false;
  bodyEndSent = false;
  /** Called (in a microtask) once a thread has taken the request, to post the body that queued meanwhile. */
  onThread?: () => void;
  private assigned?: Dispatchable['thread'];

  /** Set by the pool right before runMessage(); the run message goes out before onThread runs. */
  get thread(): Dispatchable['thread'] {
    return this.assigned;
  }

  set thread(thread: Dispatchable['thread']) {
    this.assigned = thread;
    if (thread && this.early.length > 0) queueMicrotask(() => this.onThread?.());
  }

  constructor(
    readonly key: number,
    readonly streamId: number,
    readonly appName: string,
    /** The REQUEST payload, in an ArrayBuffer of its own (it is transferred, not copied, to the extension thread). */
    readonly request: Uint8Array,
    readonly readAheadTarget: number,
  ) {}

  get readAheadComplete(): boolean {
    return this.bodyEnded || this.preloadBytes >= this.readAheadTarget;
  }

  get selfContained(): boolean {
    return this.bodyEnded && this.early.length === 0;
  }

  private run: Extract<MainToWorker, { t: 'run' }> | undefined;

  runMessage(): Extract<MainToWorker, { t: 'run' }> {
    if (this.run) return this.run;
    const preload = assemble(this.preload);
    this.preload.length = 0;
    this.run = {
      t: 'run',
      key: this.key,
      streamId: this.streamId,
      request: this.request,
      preload,
      bodyComplete: this.selfContained,
      shared: this.shared,
    };
    return this.run;
  }

  /** Both go to the extension thread without a copy: they have ArrayBuffers of their own. */
  transfer(): ArrayBuffer[] {
    const run = this.runMessage();
    return [run.request.buffer as ArrayBuffer, run.preload.buffer as ArrayBuffer];
  }
}

let nextKey = 1;

/** A RESPONSE_SPOOL piece the gateway holds: `free` makes its slot reusable, `sent` finishes its write (0 or a Win32 error). */
interface SpoolHold {
  readonly free: () => void;
  readonly sent: (error: number) => void;
}

class GatewayConnection {
  private readonly decoder = new FrameDecoder();
  private helloDone = false;
  private readonly handshake: BridgeHandshake;
  private current: BridgeRequest | undefined;
  private pausedForInput = false;
  /** The spool state of this connection: SPOOL_OFFER sent, then SPOOL_ACCEPT received (bridge/PROTOCOL.md, item 8). */
  private spoolOffered = false;
  private spoolAccepted = false;
  /** The RESPONSE_SPOOL pieces the gateway still holds, by offset. */
  private readonly spoolHeld = new Map<number, SpoolHold>();
  /** The gateway process on this connection, once it accepted the spool: retired slots wait for it to exit. */
  private peer: PeerProcess | undefined;

  constructor(
    private readonly socket: net.Socket,
    private readonly server: BridgeServer,
    private readonly opts: BridgeServerOptions,
  ) {
    this.handshake = new BridgeHandshake(opts.secret);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => opts.logger.debug('gateway connection error', { error: err.message }));
    socket.on('close', () => this.onClose());
  }

  private onData(chunk: Buffer): void {
    try {
      this.decoder.push(chunk, (frame) => this.onFrame(frame));
    } catch (err) {
      const code = err instanceof WireProtocolError ? err.code : 'ERR_BRIDGE_INTERNAL';
      this.opts.logger.error('closing gateway connection after a malformed frame', { code, error: (err as Error).message });
      this.socket.destroy();
    }
  }

  private onFrame(frame: Frame): void {
    if (!this.helloDone) {
      if (frame.type !== FrameType.HELLO) throw new WireProtocolError('ERR_WIRE_NO_HELLO', 'first frame must be HELLO');
      const hello = decodeHello(frame.payload);
      if (hello.version !== PROTOCOL_VERSION) {
        throw new WireProtocolError('ERR_WIRE_VERSION', `gateway speaks protocol ${hello.version}, bridge speaks ${PROTOCOL_VERSION}`);
      }
      if (hello.role !== 'gateway') throw new WireProtocolError('ERR_WIRE_BAD_VALUE', 'peer HELLO must have the gateway role');
      const step = this.handshake.onHello(hello.credential);
      this.helloDone = step.done;
      this.socket.write(encodeHello({ version: PROTOCOL_VERSION, role: 'bridge', credential: step.reply ?? '' }));
      return;
    }
    switch (frame.type) {
      case FrameType.REQUEST:
        return this.onRequest(frame);
      case FrameType.REQUEST_BODY:
        if (this.isLate(frame.streamId)) return;
        return this.onBody(frame.payload);
      case FrameType.REQUEST_END:
        if (this.isLate(frame.streamId)) return;
        return this.onBodyEnd();
      case FrameType.ABORT:
        return this.onAbort(decodeAbort(frame.payload).code);
      case FrameType.EXEC_URL_DONE: {
        const done = decodeExecUrlDone(frame.payload);
        const req = this.current;
        if (req && req.streamId === frame.streamId) {
          this.server.pool.threadFor(req.key)?.send({ t: 'execDone', key: req.key, ...done });
        }
        return;
      }
      case FrameType.FILE_DONE: {
        const done = decodeFileDone(frame.payload);
        const writer = this.current?.streamId === frame.streamId ? this.current.writer : undefined;
        if (!writer?.offering) throw new WireProtocolError('ERR_WIRE_UNEXPECTED', 'FILE_DONE without a RESPONSE_FILE');
        writer.fileDone(done);
        return;
      }
      case FrameType.SPOOL_REQUEST: {
        const spool = this.server.offersFiles ? this.server.pool.spool : undefined;
        if (!spool || this.spoolOffered) return;
        this.spoolOffered = true;
        this.socket.write(encodeSpoolOffer({ pid: process.pid, ...spool }));
        return;
      }
      case FrameType.SPOOL_ACCEPT:
        if (!this.spoolOffered) throw new WireProtocolError('ERR_WIRE_UNEXPECTED', 'SPOOL_ACCEPT without a SPOOL_OFFER');
        if (!this.spoolAccepted) this.peer = peerProcessOf(this.socket);
        this.spoolAccepted = true;
        return;
      case FrameType.SPOOL_FREE: {
        for (const offset of decodeSpoolFree(frame.payload)) {
          const hold = this.spoolHeld.get(offset);
          if (!hold) throw new WireProtocolError('ERR_WIRE_BAD_VALUE', `SPOOL_FREE of offset ${offset}, which the gateway does not hold`);
          this.spoolHeld.delete(offset);
          hold.free();
          hold.sent(0);
        }
        return;
      }
      case FrameType.METRICS_REQUEST: {
        const streamId = frame.streamId;
        void this.server.metricsText().then(
          (text) => this.writeOut(encodeFrame(FrameType.METRICS_RESPONSE, streamId, Buffer.from(text, 'utf8'))),
          (err: Error) => this.opts.logger.error('metrics snapshot failed', { error: err.message }),
        );
        return;
      }
      case FrameType.STATUS_REQUEST:
        decodeStatusRequest(frame.payload);
        this.socket.write(encodeStatus(frame.streamId, { inFlight: this.server.inFlight, failedApps: [...this.opts.failedApps] }));
        return;
      case FrameType.SHUTDOWN:
        decodeShutdown(frame.payload);
        this.opts.logger.info('shutdown requested by the gateway; draining', { inFlight: this.server.inFlight });
        this.opts.onShutdownRequest?.();
        return;
      default:
        throw new WireProtocolError('ERR_WIRE_UNEXPECTED', `unexpected frame type 0x${frame.type.toString(16)} from gateway`);
    }
  }

  private onRequest(frame: Frame): void {
    if (this.current) throw new WireProtocolError('ERR_WIRE_BUSY', 'REQUEST while another request is active on this connection');
    const appName = peekRequestApp(frame.payload);
    const failure = this.opts.failedApps.get(appName);
    const app = this.server.app(appName);
    if (!app) {
      this.respondError(frame.streamId, 503, failure ? `ISAPI application ${appName} is unavailable: ${failure}` : `no ISAPI application named ${appName}`);
      // Its body (if any) is discarded as it arrives.
      this.current = undefined;
      this.discarding = frame.streamId;
      return;
    }
    if (app.maxQueue !== undefined && this.server.pool.queued(appName) >= app.maxQueue) {
      // Refused before it costs a thread: the client may retry; its body is discarded as it arrives.
      this.respondError(frame.streamId, 503, `ISAPI application ${appName} is busy: its queue is full`, [
        ['Retry-After', String(QUEUE_FULL_RETRY_AFTER_S)],
      ]);
      this.discarding = frame.streamId;
      return;
    }
    const contentLength = peekRequestContentLength(frame.payload);
    const target = contentLength < 0 ? app.readAhead : Math.min(app.readAhead, contentLength);
    const req = new BridgeRequest(nextKey++, frame.streamId, appName, new Uint8Array(frame.payload), target);
    if (contentLength === 0) req.bodyEnded = true;
    req.onThread = () => this.flushBody(req);
    this.current = req;
    this.server.track(req, this);
    if (req.readAheadComplete) this.dispatch(req);
  }

  private discarding: number | undefined;
  /** The stream id of the last request that finished on this connection. */
  private lastFinished: number | undefined;

  /**
   * Body frames of a request the extension already finished (it did not read the
   * whole upload) may still be on their way: they are ignored, as PROTOCOL.md says.
   */
  private isLate(streamId: number): boolean {
    if (this.current && this.current.streamId === streamId) return false;
    if (this.discarding === streamId) return false;
    return streamId === this.lastFinished;
  }

  private onBody(payload: Buffer): void {
    const req = this.current;
    if (!req) {
      if (this.discarding !== undefined) return;
      throw new WireProtocolError('ERR_WIRE_UNEXPECTED', 'REQUEST_BODY without a request');
    }
    if (req.bodyEnded) throw new WireProtocolError('ERR_WIRE_UNEXPECTED', 'REQUEST_BODY after REQUEST_END');
    let chunk = payload;
    if (!req.dispatched) {
      const room = req.readAheadTarget - req.preloadBytes;
      if (room > 0) {
        // Views, not copies: Node gives every socket read a buffer of its own, and runMessage copies these into the preload.
        const take = chunk.length > room ? chunk.subarray(0, room) : chunk;
        req.preload.push(take);
        req.preloadBytes += take.length;
        chunk = chunk.subarray(take.length);
      }
      this.forwardBody(req, chunk);
      if (req.readAheadComplete) this.dispatch(req);
      return;
    }
    this.forwardBody(req, chunk);
  }

  /**
   * Queues body bytes for the extension thread; they leave as one message per
   * event-loop turn (flushBody), however many frames and socket reads they came
   * in. The input window counts them from here, so the socket pauses while more
   * than `inputWindow` bytes wait for ReadClient, queued or posted.
   */
  private forwardBody(req: BridgeRequest, chunk: Buffer): void {
    if (chunk.length === 0 || req.finished) return;
    req.early.push(chunk);
    req.earlyBytes += chunk.length;
    Atomics.add(req.slots, RequestSlot.INPUT_PENDING, chunk.length);
    if (!req.bodyFlushScheduled) {
      req.bodyFlushScheduled = true;
      setImmediate(() => {
        req.bodyFlushScheduled = false;
        this.flushBody(req);
      });
    }
    if (Atomics.load(req.slots, RequestSlot.INPUT_PENDING) > this.opts.inputWindow && !this.pausedForInput) {
      this.pausedForInput = true;
      this.socket.pause();
      void this.resumeWhenConsumed(req);
    }
  }

  /** Posts the queued body (one copy, one message) and, once the body is over, bodyEnd; waits while no thread has the request. */
  private flushBody(req: BridgeRequest): void {
    if (req.finished) {
      req.early.length = 0;
      req.earlyBytes = 0;
      return;
    }
    const thread = this.server.pool.threadFor(req.key);
    if (!thread) return; // Still queued for a thread: req.onThread flushes once one takes it.
    if (req.earlyBytes > 0) {
      const parts = thread.input.fill(req.early, req.earlyBytes);
      req.early.length = 0;
      req.earlyBytes = 0;
      thread.send({ t: 'body', key: req.key, parts }, transferList(parts));
    }
    if (req.bodyEnded && !req.bodyEndSent) {
      req.bodyEndSent = true;
      thread.send({ t: 'bodyEnd', key: req.key });
    }
  }

  private async resumeWhenConsumed(req: BridgeRequest): Promise<void> {
    const low = this.opts.inputWindow / 2;
    while (!req.finished && !this.socket.destroyed) {
      const pending = Atomics.load(req.slots, RequestSlot.INPUT_PENDING);
      if (pending <= low) break;
      const wait = Atomics.waitAsync(req.slots, RequestSlot.INPUT_PENDING, pending, 1000);
      if (wait.async) await wait.value;
    }
    this.pausedForInput = false;
    if (!this.socket.destroyed) this.socket.resume();
  }

  private onBodyEnd(): void {
    const req = this.current;
    if (!req) {
      if (this.discarding !== undefined) {
        this.discarding = undefined;
        return;
      }
      throw new WireProtocolError('ERR_WIRE_UNEXPECTED', 'REQUEST_END without a request');
    }
    if (req.bodyEnded) return;
    req.bodyEnded = true;
    // The whole body is in memory now: reading on brings only control frames (ABORT, SPOOL_FREE).
    if (this.pausedForInput) this.socket.resume();
    if (!req.dispatched) {
      if (req.readAheadComplete) this.dispatch(req);
      return;
    }
    // Whatever is queued goes now, then bodyEnd: nothing more can come.
    this.flushBody(req);
  }

  private onAbort(code: number): void {
    const req = this.current;
    if (!req) return;
    this.abort(req, code || WIN32_ERROR.OPERATION_ABORTED);
  }

  abort(req: BridgeRequest, code: number): void {
    if (req.finished) return;
    Atomics.store(req.slots, RequestSlot.ABORTED, code);
    // Still collecting its read-ahead, or waiting in its app's queue: it never reached an extension.
    if (!req.dispatched || this.server.pool.cancel(req)) {
      req.finished = true;
      this.server.untrack(req);
      if (this.current === req) this.current = undefined;
      this.lastFinished = req.streamId;
      this.writeOut(encodeAbort(req.streamId, { code, reason: 'the request ended before an extension ran it' }));
      return;
    }
    this.server.pool.threadFor(req.key)?.send({ t: 'abort', key: req.key, code });
  }

  private dispatch(req: BridgeRequest): void {
    req.dispatched = true;
    // Body that arrived beyond the read-ahead goes over once a thread owns the request (req.onThread).
    this.server.pool.submit(req);
  }

  /**
   * Frames from an extension thread for this connection's request, in the order it
   * produced them. Body frames in the spool go as RESPONSE_SPOOL once the gateway
   * accepted it. The thread gets its credit (and an async write its completion) when
   * every piece is done with: written to the socket, or freed by the gateway once its
   * client has the bytes. A piece's arena slot is reused only then (`free`); if the
   * connection closed while the gateway held the piece, only once that gateway process
   * has exited (retired-slots.ts): a client write of the gateway's may still be reading it.
   */
  output(req: BridgeRequest, pieces: OutPiece[], end: boolean, op: number | undefined, free: (piece: OutPiece) => void): void {
    let n = 0;
    for (const p of pieces) n += p.bytes.length;
    let waiting = Math.max(1, pieces.length);
    let failure = 0;
    const pieceDone = (error: number): void => {
      if (error) failure = error;
      if (--waiting > 0) return;
      Atomics.sub(req.slots, RequestSlot.OUTPUT_PENDING, n);
      req.thread?.wake();
      if (op !== undefined) this.server.pool.threadFor(req.key)?.send({ t: 'ioDone', key: req.key, op, bytes: 0, error: failure });
    };
    this.corkForTurn();
    const writer = this.writerFor(req);
    if (pieces.length === 0) writer.out(EMPTY, end, pieceDone);
    const last = pieces.length - 1;
    // While the body still comes, SPOOL_FREE could wait behind body frames the extension
    // has not asked for yet (the input window pauses this socket): such a request's
    // WriteClient would wait for itself.
    const spool = this.spoolAccepted && req.bodyEnded;
    pieces.forEach((p, i) => {
      if (spool && p.spoolAt >= 0) {
        const frame = encodeResponseSpool(req.streamId, { offset: p.spoolAt, length: p.bytes.length - FRAME_HEADER_SIZE });
        writer.out(frame, i === last && end, pieceDone, (sent) => this.spoolHeld.set(p.spoolAt, { free: () => free(p), sent }));
      } else {
        // Taken by the socket, or the socket is gone: either way nothing reads the slot any more.
        writer.out(Buffer.from(p.bytes.buffer, p.bytes.byteOffset, p.bytes.byteLength), i === last && end, (error) => {
          free(p);
          pieceDone(error);
        });
      }
    });
  }

  private corked = false;

  /**
   * Frames that arrive from extension threads in one event-loop turn (a response
   * head + body, then its RESPONSE_END) leave in one write: bench/RESULTS.md
   * measured 10-20 µs of gateway + bridge CPU saved per small request.
   */
  private corkForTurn(): void {
    if (this.corked || this.socket.destroyed) return;
    this.corked = true;
    this.socket.cork();
    setImmediate(() => {
      this.corked = false;
      this.socket.uncork();
    });
  }

  /** TransmitFile / VectorSend segments for this connection's request. */
  segments(req: BridgeRequest, segments: OutputSegment[], op: number): void {
    this.writerFor(req).segments(segments, op);
  }

  private writerFor(req: BridgeRequest): ResponseWriter {
    req.writer ??= new ResponseWriter(this.socket, req.streamId, {
      ioDone: (op, bytes, error) => this.server.pool.threadFor(req.key)?.send({ t: 'ioDone', key: req.key, op, bytes, error }),
      ended: () => {
        this.lastFinished = req.streamId;
        req.finished = true;
        // A socket paused for input resumes now rather than at resumeWhenConsumed's next 1 s timeout.
        Atomics.notify(req.slots, RequestSlot.INPUT_PENDING);
        this.server.untrack(req);
        if (this.current === req) this.current = undefined;
      },
    }, { offerFiles: this.server.offersFiles });
    return req.writer;
  }

  private writeOut(buf: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(buf);
  }

  /** Tells the gateway on this connection that the bridge should be recycled. */
  sendUnhealthy(streamId: number, reason: string): boolean {
    if (!this.helloDone || this.socket.destroyed) return false;
    this.socket.write(encodeUnhealthy(streamId, reason));
    return true;
  }

  /** Ends an idle connection once the bridge has drained (a connection mid-request is left alone). */
  closeIfIdle(): void {
    if (!this.current) this.socket.end();
  }

  private respondError(streamId: number, status: number, message: string, extraHeaders: Array<[string, string]> = []): void {
    const body = Buffer.from(message + '\r\n', 'utf8');
    const head = encodeResponseHead(streamId, {
      statusCode: status,
      reason: status === 503 ? 'Service Unavailable' : 'Error',
      headers: [
        ['Content-Type', 'text/plain; charset=utf-8'],
        ['Content-Length', String(body.length)],
        ...extraHeaders,
      ],
      flags: 0,
    });
    this.writeOut(Buffer.concat([head, encodeFrameHeader(FrameType.RESPONSE_BODY, streamId, body.length), body]));
    this.writeOut(
      encodeResponseEnd(streamId, { hseStatus: 0, loggedStatus: status, logData: '', accounting: emptyAccounting(), flags: 0 }),
    );
  }

  private onClose(): void {
    // Mutual auth: a gateway with the wrong secret sees our proof fail and leaves; say so here too.
    if (!this.helloDone && this.handshake.challenged) {
      this.opts.logger.warn('gateway left during authentication (wrong shared secret?)', { code: 'ERR_WIRE_AUTH' });
    }
    const req = this.current;
    if (req && !req.finished) this.abort(req, WIN32_ERROR.NETNAME_DELETED);
    // Pieces the gateway never freed count as failed writes; their slots stay taken until it has exited.
    const holds = [...this.spoolHeld.values()];
    this.spoolHeld.clear();
    for (const hold of holds) hold.sent(WIN32_ERROR.NETNAME_DELETED);
    this.server.retiredSlots.retire(holds.map((hold) => hold.free), this.peer);
    this.peer = undefined;
    this.server.connectionClosed(this);
  }
}

export class BridgeServer {
  readonly pool: ThreadPool;
  private readonly server: net.Server;
  private readonly apps = new Map<string, AppSettings>();
  private readonly connections = new Set<GatewayConnection>();
  private readonly live = new RequestTable<{ req: BridgeRequest; conn: GatewayConnection }>();
  private metricsSource: () => Promise<string> = () => Promise.resolve('[]');
  /** Spool slots closed connections left taken, until their gateway has exited. */
  readonly retiredSlots: RetiredSlots;

  constructor(opts: BridgeServerOptions) {
    this.pool = opts.pool;
    this.retiredSlots = new RetiredSlots({
      checkEveryMs: RETIRED_CHECK_MS,
      onRetired: opts.onSpoolSlotsRetired,
      onReclaimed: opts.onSpoolSlotsReclaimed,
    });
    for (const app of opts.apps) this.apps.set(app.name, app);
    this.server = net.createServer((socket) => {
      socket.setNoDelay?.(true);
      this.connections.add(new GatewayConnection(socket, this, opts));
    });
  }

  /** The bridge's metrics as prom-client JSON (getMetricsAsJSON), for the gateway to merge into its scrape. */
  setMetricsSource(source: () => Promise<string>): void {
    this.metricsSource = source;
  }

  metricsText(): Promise<string> {
    return this.metricsSource();
  }

  app(name: string): AppSettings | undefined {
    return this.apps.get(name);
  }

  /** TransmitFile ranges go to the gateway as descriptors (RESPONSE_FILE): only a Unix-socket gateway shares this host. */
  offersFiles = false;

  async listen(address: TransportAddress, tls?: TransportTlsServer): Promise<TransportAddress> {
    const bound = await listenTransport(this.server, address, tls);
    if (bound.kind === 'unix') fs.chmodSync(bound.path, 0o600);
    this.offersFiles = bound.kind === 'unix' && process.platform !== 'win32';
    return bound;
  }

  track(req: BridgeRequest, conn: GatewayConnection): void {
    this.live.set(req.key, { req, conn });
  }

  untrack(req: BridgeRequest): void {
    this.live.delete(req.key);
  }

  /** Routes frames from the pool to the socket of the request they belong to. */
  output(key: number, pieces: OutPiece[], end: boolean, op: number | undefined, free: (piece: OutPiece) => void): void {
    const entry = this.live.get(key);
    if (entry) entry.conn.output(entry.req, pieces, end, op, free);
    else pieces.forEach(free);
  }

  segments(key: number, segments: OutputSegment[], op: number): void {
    const entry = this.live.get(key);
    if (entry) entry.conn.segments(entry.req, segments, op);
  }

  /** An extension thread died: its requests cannot finish; fail them so the gateway answers 502. */
  threadDied(keys: number[]): void {
    for (const key of keys) {
      const entry = this.live.get(key);
      if (!entry) continue;
      entry.req.finished = true;
      this.live.delete(key);
    }
  }

  connectionClosed(conn: GatewayConnection): void {
    this.connections.delete(conn);
  }

  get inFlight(): number {
    return this.live.size;
  }

  /**
   * HSE_REQ_REPORT_UNHEALTHY: tells the gateway (on the request's own connection,
   * else on any) so it recycles this bridge with drain. False if no gateway is connected.
   */
  reportUnhealthy(reason: string, key?: number): boolean {
    const entry = key === undefined ? undefined : this.live.get(key);
    if (entry && entry.conn.sendUnhealthy(entry.req.streamId, reason)) return true;
    for (const conn of this.connections) if (conn.sendUnhealthy(0, reason)) return true;
    return false;
  }

  /**
   * Stops accepting; resolves once every live request has finished or the deadline passed.
   * It does not wait for the gateway to close its pooled idle connections (server.close()
   * would): those are ended here once nothing is in flight.
   */
  async drain(deadlineMs: number): Promise<boolean> {
    this.server.close();
    const until = Date.now() + deadlineMs;
    while (this.live.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    for (const conn of this.connections) conn.closeIfIdle();
    return this.live.size === 0;
  }
}
