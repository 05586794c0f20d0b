/**
 * The gateway: one HTTP server in front of ISAPI apps (through bridges) and HTTP
 * upstreams (through http-proxy-3), plus /healthz, /readyz and /metrics.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { Logger } from '../bridge/log';
import type { RequestInfo } from '../bridge/request-info';
import { bridgeSignature, startBridgePool } from './bridge-factory';
import type { BridgePool } from './bridge-pool';
import type { GatewayConfig } from './config';
import { checkRequestLimits, clientErrorStatus, parserHeadLimit, reasonPhrase, refusalResponse, timeoutCheckInterval } from './http-limits';
import { buildAccessLogEntry } from '../metrics/access-log';
import { accessLog } from './access-log-writer';
import { trackInFlight } from '../metrics/record';
import { GatewayInternalRequests } from './internal-requests';
import { IsapiExchange, type ExchangeResult } from './isapi-exchange';
import { RouteDispatcher } from './route-dispatch';
import { Router, type RouteMatch } from './router';
import type { ShadowStats } from './shadow';
import { GatewayTelemetry } from './telemetry';
import { startUpstream, type Upstream, type UpstreamHooks } from './upstream';

export interface GatewayOptions {
  config: GatewayConfig;
  logger?: Logger;
  /** Write one JSON access-log line per request on stdout. */
  accessLog?: boolean;
  /** Override how local bridges are launched (tests, the Wine mode). */
  bridgeCommand?: { file: string; args: string[] };
}

/** A configured bridge: its processes (local) or its address (remote), and which one gets a request. */
type BridgeRuntime = BridgePool;

function contentLengthOf(req: http.IncomingMessage): number {
  const cl = req.headers['content-length'];
  if (cl !== undefined) return Number(cl);
  if (req.headers['transfer-encoding'] !== undefined) return -1;
  return 0;
}

export class Gateway {
  readonly logger: Logger;
  private readonly server: http.Server;
  private readonly adminServer: http.Server | undefined;
  private router: Router;
  /** The configuration in force (replaced by reload()). */
  private current: GatewayConfig;
  private readonly signatures = new Map<string, string>();
  /** Bridges a reload replaced, still draining. */
  private readonly draining = new Set<Promise<void>>();
  private reloading: Promise<void> = Promise.resolve();
  private readonly bridges = new Map<string, BridgeRuntime>();
  private readonly upstreams = new Map<string, Upstream>();
  private readonly routes: RouteDispatcher;
  private readonly sockets = new Set<net.Socket>();
  private inFlight = 0;
  /** SEND_URL / EXEC_URL: requests made on an extension's behalf through this gateway's own routing. */
  private readonly internal = new GatewayInternalRequests(
    (req, res) => this.handle(req, res),
    () => this.server.address() as net.AddressInfo,
  );
  private closing = false;
  private readonly telemetry: GatewayTelemetry;
  /** Every upstream attempt, for the upstream metrics. */
  private readonly upstreamHooks: UpstreamHooks = {
    onAttempt: (o) => {
      this.telemetry.upstream({ upstream: o.upstream, target: o.target, durationSeconds: o.durationSeconds, status: o.status, error: o.error });
      if (o.retried) this.telemetry.metrics.upstreamRetries.inc({ upstream: o.upstream });
    },
  };
  /** Restart counts already added to isapi_bridge_restarts_total, per bridge and reason. */
  private readonly restartsSeen = new Map<string, number>();

  private constructor(
    private readonly opts: GatewayOptions,
    bridges: Map<string, BridgeRuntime>,
  ) {
    const config = opts.config;
    this.logger = opts.logger ?? new Logger('gateway');
    this.bridges = bridges;
    this.current = config;
    for (const b of config.bridges) this.signatures.set(b.name, bridgeSignature(b, config));
    this.router = new Router(config.apps, config.routes);
    this.telemetry = new GatewayTelemetry(() => [...this.bridges.values()].flatMap((pool) => pool.metricSources()), this.logger);
    for (const u of config.upstreams) this.upstreams.set(u.name, startUpstream(u, config, this.logger, this.upstreamHooks));
    this.routes = new RouteDispatcher({
      logger: this.logger,
      upstream: (name) => this.upstreams.get(name),
      app: (name) => this.current.apps.find((a) => a.name === name),
      isapi: (req, res, match, remote) => this.handleIsapi(req, res, match, remote),
      selfUrl: () => this.url,
      accessLine: (line) => {
        // Replays to a shadow are the gateway's own traffic, not a client's.
        if (!line.shadow) {
          this.telemetry.finished({
            route: line.route ?? '',
            app: line.app,
            method: line.method,
            status: line.status,
            durationSeconds: line.durationMs / 1000,
            bytesIn: 0,
            bytesOut: line.bytesOut,
          });
        }
        if (this.opts.accessLog) accessLog.write(line);
      },
      inFlight: (delta, route, upstream) => {
        this.inFlight += delta;
        trackInFlight(this.telemetry.metrics, route, upstream, delta);
      },
    });
    const limits = config.limits;
    this.server = http.createServer(
      {
        keepAliveTimeout: 5000,
        maxHeaderSize: parserHeadLimit(limits),
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        connectionsCheckingInterval: timeoutCheckInterval(limits),
      },
      (req, res) => this.handle(req, res),
    );
    this.server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) =>
      this.routes.upgrade(req, socket, head, this.router.match(req.headers.host, req.url ?? '/')),
    );
    this.server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: net.Socket) => {
      // Parser refusals (smuggling attempts, oversized heads) and slow clients: answer, then close.
      const status = clientErrorStatus(err, this.current.limits);
      // Already answered (a refused request): the parser choking on what followed needs no second answer.
      if (refusedSockets.has(socket)) socket.destroy();
      // Destroy once flushed: a request already with an extension must learn that its client is gone.
      else if (socket.writable) socket.end(refusalResponse(status, err.code ?? 'malformed request'), () => socket.destroy());
      else socket.destroy();
      this.logger.debug('client error', { code: err.code ?? '', status, error: err.message });
    });
    if (config.admin) this.adminServer = http.createServer((req, res) => this.handleAdmin(req, res) || notFound(res));
  }

  static async start(opts: GatewayOptions): Promise<Gateway> {
    const logger = opts.logger ?? new Logger('gateway');
    const config = opts.config;
    const bridges = new Map<string, BridgeRuntime>();
    try {
      for (const b of config.bridges) bridges.set(b.name, await startBridgePool(b, config, { logger, bridgeCommand: opts.bridgeCommand }));
    } catch (err) {
      await Promise.all([...bridges.values()].map((pool) => pool.stop(1000)));
      throw err;
    }
    const gateway = new Gateway({ ...opts, logger }, bridges);
    await gateway.listen();
    return gateway;
  }

  private async listen(): Promise<void> {
    const { server, admin } = this.opts.config;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(server.port, server.host, () => resolve());
    });
    if (this.adminServer && admin) {
      await new Promise<void>((resolve, reject) => {
        this.adminServer!.once('error', reject);
        this.adminServer!.listen(admin.port, admin.host, () => resolve());
      });
    }
    this.logger.info('gateway listening', { url: this.url, apps: this.opts.config.apps.length, upstreams: this.upstreams.size });
  }

  get url(): string {
    const a = this.server.address() as net.AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `http://${host}:${a.port}`;
  }

  get adminUrl(): string | undefined {
    const a = this.adminServer?.address() as net.AddressInfo | undefined;
    return a ? `http://${a.address}:${a.port}` : undefined;
  }

  /** Shadow-mode counters per route (matches, mismatches, skipped, dropped, errors), for metrics. */
  shadowStats(): ShadowStats {
    return this.routes.stats();
  }

  bridge(name: string): BridgeRuntime | undefined {
    return this.bridges.get(name);
  }

  /** /healthz, /readyz and /metrics; true when handled. */
  private handleAdmin(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path === '/healthz') {
      sendText(res, 200, 'ok\n');
      return true;
    }
    if (path === '/metrics') {
      this.refreshGauges();
      void this.telemetry.serve(req, res);
      return true;
    }
    if (path === '/readyz') {
      this.readiness().then(
        (problems) => sendText(res, problems.length === 0 ? 200 : 503, problems.length === 0 ? 'ready\n' : `not ready:\n${problems.join('\n')}\n`),
        (err: Error) => sendText(res, 503, `not ready: ${err.message}\n`),
      );
      return true;
    }
    return false;
  }

  /**
   * Why the gateway should not get traffic yet, if anything: shutting down, a bridge with
   * no process up, a required app whose extension failed to load (asked of the bridge with
   * STATUS), an upstream that says it is unhealthy (if it can say: isHealthy()).
   */
  private async readiness(): Promise<string[]> {
    if (this.closing) return ['shutting down'];
    const problems: string[] = [];
    const config = this.current;
    await Promise.all(
      [...this.bridges].map(async ([name, pool]) => {
        const status = await pool.status(1000);
        if (status.up === 0) problems.push(`bridge ${name}: no process is up`);
        for (const app of config.apps) {
          const why = app.bridge === name && app.required ? status.failedApps.get(app.name) : undefined;
          if (why !== undefined) problems.push(`app ${app.name}: ${why}`);
        }
      }),
    );
    for (const [name, upstream] of this.upstreams) {
      const probe = (upstream as { isHealthy?: () => boolean }).isHealthy;
      if (typeof probe === 'function' && !probe.call(upstream)) problems.push(`upstream ${name}: unhealthy`);
    }
    return problems;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    // After a refusal, requests pipelined behind it on the same connection are never served.
    if (refusedSockets.has(req.socket)) {
      req.socket.destroy();
      return;
    }
    const refused = checkRequestLimits(req, this.current.limits);
    if (refused) {
      refusedSockets.add(req.socket);
      res.shouldKeepAlive = false;
      const body = `${refused.status} ${reasonPhrase(refused.status)}: ${refused.reason}\r\n`;
      res.writeHead(refused.status, reasonPhrase(refused.status), {
        'Content-Type': 'text/plain; charset=utf-8',
        'Content-Length': Buffer.byteLength(body),
        Connection: 'close',
      });
      res.end(body, () => req.socket.destroy());
      return;
    }
    const url = req.url ?? '/';
    if (url.startsWith('/healthz') || url.startsWith('/readyz') || url.startsWith('/metrics')) {
      if (this.handleAdmin(req, res)) return;
    }
    if (this.routes.handleReplay(req, res)) return;
    const match = this.router.match(req.headers.host, url);
    if (!match) {
      notFound(res);
      return;
    }
    if (match.kind === 'proxy') {
      this.routes.handle(req, res, match.route);
      return;
    }
    this.handleIsapi(req, res, match);
  }

  private handleIsapi(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    match: Extract<RouteMatch, { kind: 'isapi' }>,
    remote?: { address: string; port: number },
  ): void {
    const runtime = this.bridges.get(match.app.bridge)!;
    const socket = req.socket;
    const headers: Array<[string, string]> = [];
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) headers.push([raw[i]!, raw[i + 1]!]);
    const info: RequestInfo = {
      requestId: crypto.randomUUID(),
      appName: match.app.name,
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      httpVersion: req.httpVersion,
      headers,
      scriptName: match.scriptName,
      pathInfo: match.pathInfo,
      queryString: match.queryString,
      remoteAddress: remote?.address ?? socket.remoteAddress ?? '',
      remotePort: remote?.port ?? socket.remotePort ?? 0,
      localAddress: socket.localAddress ?? '',
      localPort: socket.localPort ?? 0,
      secure: 'encrypted' in socket && Boolean((socket as { encrypted?: boolean }).encrypted),
      contentLength: contentLengthOf(req),
    };
    const started = process.hrtime.bigint();
    this.inFlight++;
    const finished = this.telemetry.started(match.app.mount, match.app.name);
    const telemetry = this.telemetry;
    const bridgeName = match.app.bridge;
    // Time spent waiting for a bridge connection (all are busy, or a process is restarting).
    const source = {
      async acquire() {
        const t0 = process.hrtime.bigint();
        const conn = await runtime.acquire();
        telemetry.connectionWait(bridgeName, Number(process.hrtime.bigint() - t0) / 1e9);
        return conn;
      },
    };
    const exchange = new IsapiExchange(
      req,
      res,
      info,
      source,
      (result) => {
        this.inFlight--;
        const durationSeconds = Number(process.hrtime.bigint() - started) / 1e9;
        finished({
          route: match.app.mount,
          app: match.app.name,
          method: info.method,
          status: result.status,
          durationSeconds,
          bytesIn: result.bytesIn,
          bytesOut: result.bytesOut,
          accounting: result.end?.accounting,
        });
        this.accessLog(info, result, started);
      },
      this.internal,
    );
    void exchange.start();
  }

  /** Gauges and counters whose truth lives in the bridge pools and upstreams, brought up to date for a scrape. */
  private refreshGauges(): void {
    const m = this.telemetry.metrics;
    for (const [name, pool] of this.bridges) {
      m.bridgeUp.set({ bridge: name }, pool.up ? 1 : 0);
      m.bridgeConnectionsInUse.set({ bridge: name }, pool.connectionsInUse);
      m.bridgeSpoolHeldBytes.set({ bridge: name }, pool.spoolHeldBytes);
      for (const [reason, count] of Object.entries(pool.restartCounts)) {
        const key = `${name}\0${reason}`;
        const delta = count - (this.restartsSeen.get(key) ?? 0);
        if (delta > 0) m.bridgeRestarts.inc({ bridge: name, reason: reason as 'crash' }, delta);
        this.restartsSeen.set(key, count);
      }
    }
    for (const [name, upstream] of this.upstreams) {
      for (const [target, healthy] of upstream.targetHealth()) m.upstreamTargetHealthy.set({ upstream: name, target }, healthy ? 1 : 0);
    }
  }

  private accessLog(info: RequestInfo, result: ExchangeResult, started: bigint): void {
    if (!this.opts.accessLog) return;
    const entry = buildAccessLogEntry({
      requestId: info.requestId,
      app: info.appName,
      method: info.method,
      path: info.scriptName + info.pathInfo,
      status: result.status,
      bytesIn: result.bytesIn,
      bytesOut: result.bytesOut,
      durationSeconds: Number(process.hrtime.bigint() - started) / 1e9,
      accounting: result.end?.accounting,
      query: info.queryString,
      ecbStatus: result.end?.loggedStatus,
      logData: result.end?.logData,
      error: result.error,
    });
    accessLog.write(entry);
  }

  /**
   * SIGHUP: applies a new configuration without dropping a request. Bridges whose
   * settings or apps changed get new processes, started before anything switches;
   * then routes, apps and upstreams switch at once, and the replaced bridges drain
   * (in-flight requests finish) and stop in the background. If a new bridge cannot
   * start, nothing changes and the error is thrown. Listen addresses, the admin port
   * and the parser's head-size limit need a restart.
   */
  reload(next: GatewayConfig): Promise<void> {
    const run = this.reloading.then(() => this.applyReload(next));
    this.reloading = run.catch(() => undefined);
    return run;
  }

  private async applyReload(next: GatewayConfig): Promise<void> {
    if (this.closing) return;
    const logger = this.logger;
    const started = new Map<string, BridgePool>();
    try {
      for (const b of next.bridges) {
        if (this.bridges.has(b.name) && this.signatures.get(b.name) === bridgeSignature(b, next)) continue;
        started.set(b.name, await startBridgePool(b, next, { logger, bridgeCommand: this.opts.bridgeCommand }));
      }
    } catch (err) {
      await Promise.all([...started.values()].map((pool) => pool.stop(1000)));
      throw err;
    }
    const retired: BridgePool[] = [];
    for (const [name, pool] of started) {
      const old = this.bridges.get(name);
      if (old) retired.push(old);
      this.bridges.set(name, pool);
    }
    for (const name of [...this.bridges.keys()]) {
      if (next.bridges.some((b) => b.name === name)) continue;
      retired.push(this.bridges.get(name)!);
      this.bridges.delete(name);
    }
    this.signatures.clear();
    for (const b of next.bridges) this.signatures.set(b.name, bridgeSignature(b, next));
    const oldUpstreams = new Map(this.current.upstreams.map((u) => [u.name, JSON.stringify(u)]));
    const closeLater: Upstream[] = [];
    for (const u of next.upstreams) {
      if (oldUpstreams.get(u.name) === JSON.stringify(u) && this.upstreams.has(u.name)) continue;
      const old = this.upstreams.get(u.name);
      if (old) closeLater.push(old);
      this.upstreams.set(u.name, startUpstream(u, next, logger, this.upstreamHooks));
    }
    for (const name of [...this.upstreams.keys()]) {
      if (next.upstreams.some((u) => u.name === name)) continue;
      closeLater.push(this.upstreams.get(name)!);
      this.upstreams.delete(name);
    }
    this.router = new Router(next.apps, next.routes);
    this.server.headersTimeout = next.limits.headersTimeoutMs;
    this.server.requestTimeout = next.limits.requestTimeoutMs;
    const before = this.current;
    this.current = next;
    if (before.server.port !== next.server.port || before.server.host !== next.server.host) {
      logger.warn('server address changes take effect after a restart', { listening: this.url });
    }
    logger.info('configuration reloaded', {
      source: next.source,
      apps: next.apps.length,
      bridgesStarted: started.size,
      bridgesDraining: retired.length,
      upstreamsReplaced: closeLater.length,
    });
    const drain = (async (): Promise<void> => {
      await Promise.all(retired.map((pool) => pool.stop(next.shutdownTimeoutMs)));
      // Proxied requests of a replaced upstream have had the same deadline to finish.
      if (closeLater.length > 0) await new Promise((r) => setTimeout(r, Math.min(next.shutdownTimeoutMs, 30000)).unref());
      for (const u of closeLater) u.close();
    })();
    this.draining.add(drain);
    void drain.finally(() => this.draining.delete(drain));
  }

  /** Stops accepting, lets in-flight requests finish (up to the deadline), stops bridges. */
  async close(deadlineMs = this.current.shutdownTimeoutMs): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const until = Date.now() + deadlineMs;
    while (this.inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    for (const s of this.sockets) s.destroy();
    await closed;
    if (this.adminServer) await new Promise<void>((resolve) => this.adminServer!.close(() => resolve()));
    for (const u of this.upstreams.values()) u.close();
    await this.routes.close();
    // Each bridge process is sent SHUTDOWN: it drains, calls TerminateExtension and exits 0.
    await Promise.all([...this.bridges.values()].map((pool) => pool.stop(Math.max(1000, until - Date.now()))));
    await Promise.all([...this.draining]);
  }
}

/** Client connections that sent a request the gateway refused (framing, size): nothing more is read from them. */
const refusedSockets = new WeakSet<net.Socket>();

function sendText(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function notFound(res: http.ServerResponse): void {
  sendText(res, 404, '404 Not Found: no application or upstream is mapped to this URL\n');
}
