/**
 * HTTP upstreams (a real IIS host, or a new service) through http-proxy-3.
 *
 * http-proxy-3 opens the upstream request and pipes the body; everything around it
 * is ours: target choice (upstream-balancer), health (upstream-health), header rules
 * (upstream-headers), our own timers (its proxyTimeout destroys the request with no
 * distinct error, so a timeout would look like a reset and get 502 instead of 504),
 * retries of idempotent requests that never reached an upstream, and writing the
 * response head ourselves (selfHandleResponse) so hop-by-hop headers never reach
 * the client.
 */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { createProxyServer, type ProxyServer, type ServerOptions } from 'http-proxy-3';
import type { Logger } from '../bridge/log';
import { Balancer, type Target } from './upstream-balancer';
import type { UpstreamConfig } from './upstream-config';
import {
  BodyTooLargeError,
  CONNECT_ERROR_CODES,
  NoHealthyTargetError,
  STALE_SOCKET_CODES,
  UpstreamTimeoutError,
  errorCode,
  statusForError,
  type TimeoutPhase,
} from './upstream-errors';
import { TrustedProxies, applyForwarded, responseHeaders, stripHopByHop } from './upstream-headers';
import { HealthChecker } from './upstream-health';
import { tapRequestBody } from './body-tap';

/** RFC 9110 §9.2.2. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export interface ProxyContext {
  requestId: string;
  /**
   * The client this request is on behalf of, when the peer is this gateway itself
   * replaying a request (shadow): forwarded headers then describe that client.
   */
  clientAddress?: string;
}

/** One finished proxied request, for the access log and metrics. */
export interface UpstreamResult {
  upstream: string;
  /** host:port of the last target tried. */
  target?: string;
  /** Status sent to the client; 0 when the response was cut off. */
  status: number;
  attempts: number;
  bytesOut: number;
  error?: string;
  errorCode?: string;
}

/** One attempt (per upstream observation) — what the metrics colleague records per target. */
export interface AttemptObservation {
  upstream: string;
  target: string;
  durationSeconds: number;
  status?: number;
  error?: Error;
  retried: boolean;
}

export interface UpstreamHooks {
  /** Called once per attempt against a target. */
  onAttempt?(obs: AttemptObservation): void;
}

/**
 * Keep-alive agents whose idle sockets close before the upstream's own keep-alive
 * timeout would (Agent's `timeout` option would also fire on slow active requests).
 */
function keepAliveAgent<T extends typeof http.Agent | typeof https.Agent>(Base: T, idleMs: number, options: https.AgentOptions): InstanceType<T> {
  class IdleLimitedAgent extends (Base as typeof http.Agent) {
    override keepSocketAlive(socket: net.Socket): boolean {
      const keep = (super.keepSocketAlive(socket) as boolean | undefined) !== false;
      // Node may already have lowered it from the upstream's Keep-Alive: timeout=N hint.
      socket.setTimeout(socket.timeout ? Math.min(socket.timeout, idleMs) : idleMs);
      return keep;
    }
    override reuseSocket(socket: net.Socket, req: http.ClientRequest): void {
      socket.setTimeout(0);
      super.reuseSocket(socket, req);
    }
  }
  return new IdleLimitedAgent({ ...options, keepAlive: true }) as InstanceType<T>;
}

interface Attempt {
  target: Target;
  started: number;
  proxyReq?: http.ClientRequest;
  connected: boolean;
  reused: boolean;
  gotResponse: boolean;
  done: boolean;
  timers: NodeJS.Timeout[];
  connect?: NodeJS.Timeout;
  idle?: NodeJS.Timeout;
}

export class Upstream {
  readonly name: string;
  readonly balancer: Balancer;
  private readonly proxy: ProxyServer;
  private readonly agent: http.Agent;
  private readonly health: HealthChecker | undefined;
  private readonly exchanges = new WeakMap<http.IncomingMessage, ProxyExchange>();

  constructor(
    readonly config: UpstreamConfig,
    readonly logger: Logger,
    readonly trusted: TrustedProxies,
    readonly hooks: UpstreamHooks = {},
  ) {
    this.name = config.name;
    this.balancer = new Balancer(config.name, config.targets, config.balance, config.passive, logger);
    const https_ = config.targets.some((t) => t.startsWith('https:'));
    const agentOptions = { maxSockets: config.maxSockets, ca: config.ca };
    this.agent = https_ ? keepAliveAgent(https.Agent, config.keepAliveTimeoutMs, agentOptions) : keepAliveAgent(http.Agent, config.keepAliveTimeoutMs, agentOptions);
    this.proxy = createProxyServer({ xfwd: false, ws: true, selfHandleResponse: true });
    // Without an 'error' listener http-proxy-3 rethrows and would take the gateway down.
    this.proxy.on('error', (err: Error, req: http.IncomingMessage, res: http.ServerResponse | net.Socket) => {
      this.logger.warn('upstream error outside a request', { upstream: this.name, error: err.message, url: req.url });
      if (!(res instanceof http.ServerResponse)) res.destroy();
      else if (!res.headersSent) res.destroy();
    });
    this.proxy.on('proxyReq', (proxyReq: http.ClientRequest, req: http.IncomingMessage) => this.exchanges.get(req)?.onProxyReq(proxyReq));
    this.proxy.on('proxyRes', (proxyRes: http.IncomingMessage, req: http.IncomingMessage) => this.exchanges.get(req)?.onProxyRes(proxyRes));
    this.health = config.healthCheck ? new HealthChecker(this.balancer, config.healthCheck, config.ca) : undefined;
  }

  start(): void {
    this.health?.start();
  }

  /** Each target and whether it takes traffic now (not ejected, health checks passing), for metrics. */
  targetHealth(): Array<[target: string, healthy: boolean]> {
    const now = Date.now();
    return this.balancer.targets.map((t) => [t.label, t.available(now)]);
  }

  /** For /readyz: at least one target can take traffic. */
  isHealthy(): boolean {
    const now = Date.now();
    return this.balancer.targets.some((t) => t.available(now));
  }

  /** Proxies one request; `done` runs once when it is over, whatever happened. */
  handle(req: http.IncomingMessage, res: http.ServerResponse, ctx: ProxyContext, done: (r: UpstreamResult) => void): void {
    const ex = new ProxyExchange(this, req, res, ctx, done);
    this.exchanges.set(req, ex);
    ex.start();
  }

  /** One http-proxy-3 request against `target`; its errors go to `onError`, never to the 'error' event. */
  dispatch(req: http.IncomingMessage, res: http.ServerResponse, target: Target, onError: (err: Error) => void): void {
    this.proxy.web(req, res, this.proxyOptions(target, false), (err: Error) => onError(err));
  }

  /** Options for one http-proxy-3 call against `target`. */
  private proxyOptions(target: Target, ws: boolean): ServerOptions {
    return {
      target: target.url.href,
      agent: ws ? false : this.agent,
      ca: this.config.ca,
      xfwd: false,
      changeOrigin: false,
      selfHandleResponse: true,
      secure: true,
    };
  }

  /**
   * Outgoing request headers: hop-by-hop removed, forwarded headers, Host rule, request id.
   * `incoming` is the client's own header set (each attempt starts from it again).
   */
  outgoingHeaders(req: http.IncomingMessage, incoming: http.IncomingHttpHeaders, target: Target, ctx: ProxyContext): http.IncomingHttpHeaders {
    const out = stripHopByHop(incoming);
    // We answered any Expect: 100-continue ourselves; forwarding it would stall http-proxy-3's proxyReq event.
    delete out.expect;
    const socket = req.socket as net.Socket & { encrypted?: boolean };
    const address = ctx.clientAddress ?? socket.remoteAddress ?? '';
    applyForwarded(out, { address, proto: socket.encrypted ? 'https' : 'http', host: incoming.host, trusted: this.trusted.has(address) });
    if (this.config.hostHeader) out.host = this.config.hostHeader;
    else if (!this.config.preserveHost || !out.host) out.host = target.url.host;
    out['x-request-id'] = ctx.requestId;
    // The body keeps its framing: Node re-chunks when told the body is chunked.
    if (incoming['transfer-encoding'] !== undefined && incoming['content-length'] === undefined) out['transfer-encoding'] = 'chunked';
    return out as http.IncomingHttpHeaders;
  }

  /** WebSocket (and other Upgrade) requests: handshake and raw bytes both ways. */
  upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer, ctx: ProxyContext): void {
    const target = this.balancer.pick();
    if (!target) {
      rejectUpgrade(socket, 503, ctx.requestId, new NoHealthyTargetError(this.name).message);
      return;
    }
    const headers = this.outgoingHeaders(req, req.headers, target, ctx);
    headers.connection = 'Upgrade';
    if (req.headers.upgrade) headers.upgrade = req.headers.upgrade;
    req.headers = headers;
    // Until the upstream's handshake answer reaches the client; after that the tunnel has no timeout.
    const timer = this.config.timeouts.headersMs
      ? setTimeout(() => {
          if (socket.bytesWritten > 0) return;
          this.logger.warn('upstream upgrade timed out', { upstream: this.name, target: target.label, requestId: ctx.requestId });
          rejectUpgrade(socket, 504, ctx.requestId, new UpstreamTimeoutError('headers', this.config.timeouts.headersMs).message);
        }, this.config.timeouts.headersMs)
      : undefined;
    socket.once('close', () => clearTimeout(timer));
    this.proxy.ws(req, socket, head, this.proxyOptions(target, true), (err: Error) => {
      clearTimeout(timer);
      this.balancer.failed(target, err.message);
      this.logger.warn('upstream upgrade failed', { upstream: this.name, target: target.label, error: err.message, requestId: ctx.requestId });
      rejectUpgrade(socket, 502, ctx.requestId, err.message);
    });
  }

  close(): void {
    this.health?.stop();
    this.proxy.close();
    this.agent.destroy();
  }
}

function rejectUpgrade(socket: net.Socket, status: number, requestId: string, message: string): void {
  if (socket.writable && socket.bytesWritten === 0) {
    const body = `${status} ${http.STATUS_CODES[status]}: ${message}\r\nrequest id: ${requestId}\r\n`;
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `X-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
    );
  } else {
    socket.destroy();
  }
}

/** One client request through an upstream, across its attempts. */
class ProxyExchange {
  private readonly tried = new Set<Target>();
  private current: Attempt | undefined;
  private attempts = 0;
  private finished = false;
  private clientGone = false;
  private bytesOut = 0;
  private totalTimer: NodeJS.Timeout | undefined;
  private readonly method: string;
  private readonly hasBody: boolean;
  /** The client's headers; req.headers is replaced by each attempt's outgoing set. */
  private readonly incoming: http.IncomingHttpHeaders;

  constructor(
    private readonly up: Upstream,
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly ctx: ProxyContext,
    private readonly done: (r: UpstreamResult) => void,
  ) {
    this.method = (req.method ?? 'GET').toUpperCase();
    this.incoming = req.headers;
    const cl = req.headers['content-length'];
    this.hasBody = req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
  }

  start(): void {
    const { config } = this.up;
    this.res.once('close', () => {
      if (!this.res.writableFinished) {
        this.clientGone = true;
        // http-proxy-3 destroys the upstream request; settle here in case no error follows.
        if (this.current && !this.current.done) this.settle(this.current, new Error('client closed the connection'));
      }
    });
    const limit = config.maxRequestBodyBytes;
    if (limit !== undefined) {
      const declared = Number(this.req.headers['content-length'] ?? 0);
      if (declared > limit) {
        this.res.shouldKeepAlive = false;
        this.respondError(new BodyTooLargeError(limit));
        return;
      }
      let seen = 0;
      tapRequestBody(this.req, {
        chunk: (data) => {
          seen += data.length;
          if (seen <= limit) return true;
          if (this.current && !this.current.done) this.fail(this.current, new BodyTooLargeError(limit));
          return false;
        },
      });
    }
    if (config.timeouts.totalMs > 0) {
      this.totalTimer = setTimeout(() => {
        const err = new UpstreamTimeoutError('total', config.timeouts.totalMs);
        if (this.current && !this.current.done) this.fail(this.current, err);
        else if (!this.finished) this.respondError(err);
      }, config.timeouts.totalMs);
    }
    this.attempt();
  }

  private attempt(): void {
    const target = this.up.balancer.pick(this.tried);
    if (!target) {
      this.respondError(new NoHealthyTargetError(this.up.name));
      return;
    }
    this.tried.add(target);
    this.attempts++;
    target.inFlight++;
    const a: Attempt = { target, started: Date.now(), connected: false, reused: false, gotResponse: false, done: false, timers: [] };
    this.current = a;
    this.req.headers = this.up.outgoingHeaders(this.req, this.incoming, target, this.ctx);
    this.up.dispatch(this.req, this.res, target, (err) => this.settle(a, err));
  }

  onProxyReq(proxyReq: http.ClientRequest): void {
    const a = this.current;
    if (!a || a.done) {
      proxyReq.destroy();
      return;
    }
    a.proxyReq = proxyReq;
    a.reused = proxyReq.reusedSocket;
    const { timeouts } = this.up.config;
    const socket = proxyReq.socket!;
    const sent = (): void => {
      a.connected = true;
      if (timeouts.headersMs > 0) a.timers.push(setTimeout(() => this.fail(a, new UpstreamTimeoutError('headers', timeouts.headersMs)), timeouts.headersMs));
      if (timeouts.idleMs > 0) {
        a.idle = setTimeout(() => {
          // Backpressure from a slow client pauses the upstream too: that silence is not the upstream's.
          if (a.gotResponse && this.res.writableNeedDrain) a.idle!.refresh();
          else this.fail(a, new UpstreamTimeoutError('idle', timeouts.idleMs));
        }, timeouts.idleMs);
        a.timers.push(a.idle);
      }
    };
    if (socket.connecting) {
      if (timeouts.connectMs > 0) {
        a.connect = setTimeout(() => this.fail(a, new UpstreamTimeoutError('connect', timeouts.connectMs)), timeouts.connectMs);
        a.timers.push(a.connect);
      }
      socket.once('connect', () => {
        clearTimeout(a.connect);
        if (!a.done) sent();
      });
    } else {
      sent();
    }
  }

  onProxyRes(proxyRes: http.IncomingMessage): void {
    const a = this.current;
    if (!a || a.done) {
      proxyRes.resume();
      return;
    }
    a.gotResponse = true;
    // Only the idle timer (and the total one) matter from here.
    for (const t of a.timers) if (t !== a.idle) clearTimeout(t);
    a.idle?.refresh();
    this.up.balancer.succeeded(a.target);
    const status = proxyRes.statusCode ?? 502;
    try {
      this.res.writeHead(status, proxyRes.statusMessage || undefined, responseHeaders(proxyRes));
    } catch (err) {
      proxyRes.resume();
      this.fail(a, new Error(`upstream sent an invalid response head: ${(err as Error).message}`));
      return;
    }
    proxyRes.on('data', (chunk: Buffer) => {
      this.bytesOut += chunk.length;
      a.idle?.refresh();
    });
    proxyRes.on('error', () => {
      /* reported through 'aborted'/'close' below */
    });
    proxyRes.once('end', () => {
      if (a.done) return;
      this.endAttempt(a, status);
      this.finish({ status });
    });
    proxyRes.once('close', () => {
      if (!proxyRes.complete && !a.done) this.settle(a, Object.assign(new Error('upstream closed the connection mid-response'), { code: 'ECONNRESET' }));
    });
    proxyRes.pipe(this.res);
  }

  /** Our own decision to abandon the attempt (timer, body limit). */
  private fail(a: Attempt, err: Error): void {
    if (a.done) return;
    this.settle(a, err);
    a.proxyReq?.destroy();
  }

  private endAttempt(a: Attempt, status: number | undefined, err?: Error, retried = false): void {
    a.done = true;
    for (const t of a.timers) clearTimeout(t);
    a.target.inFlight--;
    this.up.hooks.onAttempt?.({
      upstream: this.up.name,
      target: a.target.label,
      durationSeconds: (Date.now() - a.started) / 1000,
      status,
      error: err,
      retried,
    });
  }

  /** An attempt ended with an error: retry, answer 5xx, or cut the response. */
  private settle(a: Attempt, err: Error): void {
    if (a.done) return;
    const clientCaused = this.clientGone || err instanceof BodyTooLargeError;
    if (!clientCaused) this.up.balancer.failed(a.target, err.message);
    const retry = !clientCaused && this.retriable(a, err);
    this.endAttempt(a, undefined, err, retry);
    if (retry) {
      this.up.logger.info('retrying upstream request', { upstream: this.up.name, target: a.target.label, error: err.message, requestId: this.ctx.requestId });
      this.attempt();
      return;
    }
    if (!clientCaused) {
      this.up.logger.warn('upstream request failed', {
        upstream: this.up.name,
        target: a.target.label,
        error: err.message,
        code: errorCode(err),
        requestId: this.ctx.requestId,
      });
    }
    if (this.res.headersSent || this.clientGone) {
      if (!this.res.destroyed) this.res.destroy();
      this.finish({ status: 0, error: err.message, errorCode: errorCode(err) });
      return;
    }
    if (err instanceof BodyTooLargeError) this.res.shouldKeepAlive = false;
    this.respondError(err);
  }

  /** Only requests that certainly did not reach an upstream, and can be sent again. */
  private retriable(a: Attempt, err: Error): boolean {
    if (!IDEMPOTENT.has(this.method) || this.hasBody || a.gotResponse) return false;
    if (this.attempts > this.up.config.retries) return false;
    if (err instanceof UpstreamTimeoutError && err.phase !== 'connect') return false;
    const code = errorCode(err);
    return CONNECT_ERROR_CODES.has(code) || (!a.connected && err instanceof UpstreamTimeoutError) || (a.reused && STALE_SOCKET_CODES.has(code));
  }

  private respondError(err: Error): void {
    const status = statusForError(err);
    if (!this.res.headersSent && !this.clientGone) {
      const body = `${status} ${http.STATUS_CODES[status]}: upstream ${this.up.name}: ${err.message}\r\nrequest id: ${this.ctx.requestId}\r\n`;
      this.res.writeHead(status, {
        'Content-Type': 'text/plain; charset=utf-8',
        'Content-Length': Buffer.byteLength(body),
        'X-Request-Id': this.ctx.requestId,
      });
      this.res.end(body);
    }
    this.finish({ status, error: err.message, errorCode: errorCode(err) });
  }

  private finish(r: { status: number; error?: string; errorCode?: string }): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.totalTimer);
    this.done({
      upstream: this.up.name,
      target: this.current?.target.label,
      attempts: this.attempts,
      bytesOut: this.bytesOut,
      ...r,
    });
  }
}

export type { TimeoutPhase };

/** Creates an upstream with the gateway-wide settings it needs, health checks running. */
export function startUpstream(config: UpstreamConfig, gateway: { trustedProxies: readonly string[] }, logger: Logger, hooks?: UpstreamHooks): Upstream {
  const upstream = new Upstream(config, logger, new TrustedProxies(gateway.trustedProxies), hooks);
  upstream.start();
  return upstream;
}
