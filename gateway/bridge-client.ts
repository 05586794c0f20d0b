/**
 * The gateway's connections to one bridge. Each connection carries one request
 * at a time and goes back to an idle list afterwards, so connections are reused
 * (no connect per request) and backpressure stays per request.
 */
import type net from 'node:net';
import { connectTransport, parseTransportAddress, type TransportAddress, type TransportTlsClient } from '../bridge/transport';
import {
  FrameDecoder,
  FrameType,
  encodeFrame,
  PROTOCOL_VERSION,
  WireProtocolError,
  decodeHello,
  decodeResponseSpool,
  decodeSpoolOffer,
  decodeStatus,
  decodeUnhealthy,
  encodeSpoolFree,
  encodeHello,
  encodeShutdown,
  encodeStatusRequest,
  type BridgeStatus,
  type Frame,
} from '../bridge/wire';
import { GatewayHandshake } from '../bridge/handshake';
import { BUSY_READ_BYTES, IDLE_READ_BYTES, readBuffers } from './read-buffers';
import { SpoolFiles, type ConnectionSpool } from './spool-mapping';
import type { Logger } from '../bridge/log';

export class BridgeUnavailableError extends Error {
  readonly code = 'ERR_BRIDGE_UNAVAILABLE';
  /** Why, without the "bridge X is unavailable" prefix (for wrapping without repeating it). */
  readonly reason: string;
  constructor(bridge: string, reason: string) {
    super(`bridge ${bridge} is unavailable: ${reason}`);
    this.name = 'BridgeUnavailableError';
    this.reason = reason;
  }
}

/** Whoever is using a connection gets its frames and its failure. */
export interface ConnectionUser {
  onFrame(frame: Frame): void;
  /**
   * Response body bytes (RESPONSE_BODY, or RESPONSE_SPOOL's bytes in the bridge's spool).
   * They are the connection's memory, a pooled read buffer or the spool, until
   * `release`: call it exactly once, when the client write that took them is done,
   * or at once if they are not written. Users without bodies leave it out.
   */
  onBody?(streamId: number, bytes: Buffer, release: () => void): void;
  onConnectionLost(reason: string): void;
}

export class BridgeConnection {
  private readonly decoder = new FrameDecoder({ copyRetained: true });
  user: ConnectionUser | undefined;
  closed = false;
  /** Set once the bridge's spool is mapped here (SPOOL_ACCEPT sent). */
  private spool: ConnectionSpool | undefined;

  constructor(
    readonly socket: net.Socket,
    private readonly client: BridgeClient,
    /** False for one-off control connections (STATUS, SHUTDOWN) that do not count against the pool. */
    private readonly pooled = true,
    /** The bridge's spool files, on a connection that may read them (a Unix socket on Linux). */
    private readonly spoolFiles?: SpoolFiles,
  ) {
    if (spoolFiles) this.write(encodeFrame(FrameType.SPOOL_REQUEST, 0));
    socket.on('data', (chunk: Buffer) => {
      try {
        this.decoder.push(chunk, (frame) => {
          if (frame.type === FrameType.UNHEALTHY) client.unhealthy(decodeUnhealthy(frame.payload));
          else if (frame.type === FrameType.SPOOL_OFFER) this.acceptSpool(frame);
          else if (!this.user) throw new WireProtocolError('ERR_WIRE_UNEXPECTED', `frame 0x${frame.type.toString(16)} on an idle connection`);
          else if (frame.type === FrameType.RESPONSE_BODY || frame.type === FrameType.RESPONSE_SPOOL) this.onBody(this.user, frame);
          // The read buffer is reused (read-buffers.ts): only body bytes travel as views.
          else this.user.onFrame({ ...frame, payload: Buffer.from(frame.payload) });
        });
      } catch (err) {
        client.logger.error('closing bridge connection after a malformed frame', {
          bridge: client.name,
          code: (err as WireProtocolError).code ?? 'ERR_GATEWAY_INTERNAL',
          error: (err as Error).message,
        });
        socket.destroy();
      }
    });
    socket.on('error', () => {
      /* 'close' follows and reports it */
    });
    socket.on('close', () => {
      this.closed = true;
      this.spool?.detach();
      if (this.pooled) client.forget(this);
      const user = this.user;
      this.user = undefined;
      user?.onConnectionLost('the bridge closed the connection');
    });
  }

  write(buf: Buffer): boolean {
    return this.closed ? false : this.socket.write(buf);
  }

  /** Maps the offered spool if this gateway can; a bridge that hears nothing keeps sending bodies in frames. */
  private acceptSpool(frame: Frame): void {
    const offer = decodeSpoolOffer(frame.payload);
    if (!this.spoolFiles || this.spool) throw new WireProtocolError('ERR_WIRE_UNEXPECTED', 'SPOOL_OFFER that was not asked for');
    this.spool = this.spoolFiles.attach(offer, (offsets) => this.write(encodeSpoolFree(offsets)));
    if (this.spool) this.write(encodeFrame(FrameType.SPOOL_ACCEPT, 0));
  }

  /** Body bytes to the user: a RESPONSE_BODY's as a view of the read buffer, a RESPONSE_SPOOL's as a view of the spool. */
  private onBody(user: ConnectionUser, frame: Frame): void {
    let bytes = frame.payload;
    let release: () => void;
    if (frame.type === FrameType.RESPONSE_SPOOL) {
      if (!this.spool) throw new WireProtocolError('ERR_WIRE_UNEXPECTED', 'RESPONSE_SPOOL on a connection without a spool');
      ({ bytes, release } = this.spool.take(decodeResponseSpool(frame.payload, this.spool.size)));
    } else {
      release = readBuffers.retain(bytes);
    }
    if (user.onBody) user.onBody(frame.streamId, bytes, release);
    else release();
  }

  /** Whether a request is using the connection (it then reads in larger buffers). */
  get busy(): boolean {
    return this.user !== undefined;
  }

  /** Back to the idle list (or closed, if it cannot be reused). */
  release(): void {
    this.user = undefined;
    this.client.giveBack(this);
  }
}

export interface BridgeClientOptions {
  name: string;
  address: string;
  secret?: string;
  /** tcp:// with TLS: the bridge certificate is verified against `tls.ca`. */
  tls?: TransportTlsClient;
  maxConnections: number;
  maxIdle?: number;
  connectTimeoutMs?: number;
  logger: Logger;
  /** The bridge sent UNHEALTHY (an extension called HSE_REQ_REPORT_UNHEALTHY). */
  onUnhealthy?: (reason: string) => void;
}

export class BridgeClient {
  readonly name: string;
  readonly logger: Logger;
  private address: TransportAddress;
  private readonly idle: BridgeConnection[] = [];
  /** The bridge's response spool, shared by the connections that read it. */
  readonly spoolFiles = new SpoolFiles((offer, reason) =>
    this.logger.info('cannot map the bridge\'s response spool; its bodies stay in frames', { bridge: this.name, pid: offer.pid, reason }),
  );
  private readonly waiters: Array<{ resolve: (c: BridgeConnection) => void; reject: (e: Error) => void }> = [];
  private open = 0;
  private connecting = 0;

  constructor(private readonly opts: BridgeClientOptions) {
    this.name = opts.name;
    this.logger = opts.logger;
    this.address = parseTransportAddress(opts.address);
  }

  /** Connections in use by requests right now. */
  get inUse(): number {
    return this.open - this.idle.length;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** Requests using, opening or waiting for a connection: the bridge's load as the gateway sees it. */
  get load(): number {
    return this.inUse + this.connecting + this.waiters.length;
  }

  unhealthy(reason: string): void {
    this.logger.warn('bridge reported itself unhealthy', { bridge: this.name, reason });
    this.opts.onUnhealthy?.(reason);
  }

  /** Asks the bridge for its STATUS on a connection of its own (never queued behind requests). */
  async status(timeoutMs = 2000): Promise<BridgeStatus> {
    const conn = await this.connect(false);
    try {
      return await new Promise<BridgeStatus>((resolve, reject) => {
        const timer = setTimeout(() => reject(new BridgeUnavailableError(this.name, 'no STATUS answer in time')), timeoutMs);
        conn.user = {
          onFrame: (frame) => {
            if (frame.type !== FrameType.STATUS) return;
            clearTimeout(timer);
            try {
              resolve(decodeStatus(frame.payload));
            } catch (err) {
              reject(err as Error);
            }
          },
          onConnectionLost: (reason) => {
            clearTimeout(timer);
            reject(new BridgeUnavailableError(this.name, reason));
          },
        };
        conn.write(encodeStatusRequest(0));
      });
    } finally {
      conn.user = undefined;
      conn.socket.destroy();
    }
  }

  /** The bridge's metrics (prom-client JSON), on a connection of its own so a scrape never waits behind requests. */
  async metrics(signal: AbortSignal): Promise<unknown> {
    const conn = await this.connect(false);
    try {
      return await new Promise<unknown>((resolve, reject) => {
        const onAbort = (): void => reject(new BridgeUnavailableError(this.name, 'metrics request aborted'));
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
        conn.user = {
          onFrame: (frame) => {
            if (frame.type !== FrameType.METRICS_RESPONSE) return;
            signal.removeEventListener('abort', onAbort);
            try {
              resolve(JSON.parse(frame.payload.toString('utf8')));
            } catch (err) {
              reject(err as Error);
            }
          },
          onConnectionLost: (reason) => {
            signal.removeEventListener('abort', onAbort);
            reject(new BridgeUnavailableError(this.name, reason));
          },
        };
        conn.write(encodeFrame(FrameType.METRICS_REQUEST, 0));
      });
    } finally {
      conn.user = undefined;
      conn.socket.destroy();
    }
  }

  /** Sends SHUTDOWN (drain, TerminateExtension, exit 0) on a connection of its own. */
  async shutdown(): Promise<void> {
    const conn = await this.connect(false);
    await new Promise<void>((resolve) => conn.socket.end(encodeShutdown(), () => resolve()));
  }

  async acquire(): Promise<BridgeConnection> {
    const conn = this.idle.pop();
    if (conn) return conn;
    if (this.open + this.connecting < this.opts.maxConnections) {
      this.connecting++;
      try {
        const c = await this.connect();
        this.open++;
        return c;
      } finally {
        this.connecting--;
      }
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  giveBack(conn: BridgeConnection): void {
    if (conn.closed) return;
    if (this.retired) {
      conn.socket.end();
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter.resolve(conn);
      return;
    }
    if (this.idle.length >= (this.opts.maxIdle ?? 256)) {
      conn.socket.end();
      return;
    }
    this.idle.push(conn);
  }

  forget(conn: BridgeConnection): void {
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    this.open--;
    // A waiter blocked on the limit can now open a fresh connection.
    const waiter = this.waiters.shift();
    if (waiter) this.acquire().then(waiter.resolve, waiter.reject);
  }

  private connect(pooled = true): Promise<BridgeConnection> {
    return new Promise((resolve, reject) => {
      const tls = this.opts.tls;
      let conn: BridgeConnection | undefined;
      const socket: net.Socket = connectTransport(this.address, tls, {
        next: () => readBuffers.take(conn?.busy ? BUSY_READ_BYTES : IDLE_READ_BYTES),
        data: (n, buf) => {
          socket.emit('data', Buffer.from(buf.buffer, buf.byteOffset, n));
          readBuffers.release(buf);
        },
      });
      const decoder = new FrameDecoder({ copyRetained: true });
      const handshake = new GatewayHandshake(this.opts.secret);
      const timer = setTimeout(() => fail('timed out connecting'), this.opts.connectTimeoutMs ?? 5000);
      let failed = false;
      let secured = false;
      const fail = (reason: string): void => {
        if (failed) return;
        failed = true;
        clearTimeout(timer);
        socket.destroy();
        reject(new BridgeUnavailableError(this.name, reason));
      };
      socket.once('error', (err: Error & { code?: string }) => {
        if (!tls || !isTlsError(err)) return fail(err.message);
        // Certificate and protocol problems: name them, they are configuration mistakes to fix.
        const reason = `TLS handshake failed: ${err.message}${err.code ? ` (${err.code})` : ''}`;
        this.logger.warn('TLS handshake with bridge failed', { bridge: this.name, code: err.code ?? 'ERR_TLS', reason });
        fail(reason);
      });
      socket.once('close', () => {
        if (!tls) {
          // A TLS bridge drops a plain HELLO without a word.
          const hint = this.address.kind === 'tcp' && !answered ? ` (if the bridge listens with TLS, set bridges.${this.name}.tls)` : '';
          return fail(`connection closed during handshake${hint}`);
        }
        if (!secured) return fail('connection closed during the TLS handshake');
        if (answered) return fail('connection closed during handshake');
        // TLS 1.3: the bridge checks our client certificate after our side of the handshake is done, and just closes.
        const reason = 'the bridge closed the connection right after the TLS handshake (did it refuse our client certificate?)';
        this.logger.warn('TLS handshake with bridge failed', { bridge: this.name, code: 'ERR_TLS_CLOSED_BY_BRIDGE', reason });
        fail(reason);
      });
      socket.once(tls ? 'secureConnect' : 'connect', () => {
        secured = true;
        socket.write(encodeHello({ version: PROTOCOL_VERSION, role: 'gateway', credential: handshake.first() }));
      });
      /** The bridge sent something: it is past any TLS check of ours. */
      let answered = false;
      const onData = (chunk: Buffer): void => {
        answered = true;
        try {
          decoder.push(chunk, (frame) => {
            if (frame.type !== FrameType.HELLO) throw new WireProtocolError('ERR_WIRE_NO_HELLO', 'bridge did not answer HELLO');
            const hello = decodeHello(frame.payload);
            if (hello.version !== PROTOCOL_VERSION) throw new WireProtocolError('ERR_WIRE_VERSION', `bridge speaks protocol ${hello.version}, gateway speaks ${PROTOCOL_VERSION}`);
            const step = handshake.onHello(hello.credential);
            if (step.reply !== undefined) socket.write(encodeHello({ version: PROTOCOL_VERSION, role: 'gateway', credential: step.reply }));
            if (!step.done) return;
            clearTimeout(timer);
            socket.off('data', onData);
            socket.removeAllListeners('error');
            socket.removeAllListeners('close');
            socket.setNoDelay?.(true);
            // The bridge sends nothing after its final HELLO until asked, so no bytes are left behind here.
            const spoolable = pooled && this.address.kind === 'unix' && process.platform === 'linux';
            conn = new BridgeConnection(socket, this, pooled, spoolable ? this.spoolFiles : undefined);
            resolve(conn);
          });
        } catch (err) {
          fail((err as Error).message);
        }
      };
      socket.on('data', onData);
    });
  }

  private retired = false;

  /** No more requests for this bridge process: idle connections close now, busy ones once their request ends. */
  retire(reason: string): void {
    this.retired = true;
    this.closeIdle(reason);
  }

  /** Closes idle connections and refuses waiters (shutdown or bridge restart). */
  closeIdle(reason: string): void {
    for (const c of this.idle.splice(0)) c.socket.destroy();
    for (const w of this.waiters.splice(0)) w.reject(new BridgeUnavailableError(this.name, reason));
  }
}

/** Errors from TLS itself (certificate verification, alerts, protocol), not from the TCP connection under it. */
function isTlsError(err: Error & { code?: string }): boolean {
  const code = err.code ?? '';
  return (
    code.startsWith('ERR_SSL_') ||
    code.startsWith('ERR_TLS_') ||
    /CERT|SELF_SIGNED|UNABLE_TO_|VERIFY|HOSTNAME|EPROTO/.test(code) ||
    /certificate|ssl|tls|alert/i.test(err.message)
  );
}
