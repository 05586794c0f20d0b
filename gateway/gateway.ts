/**
 * The gateway: one HTTP server in front of ISAPI apps (through bridges) and HTTP
 * upstreams (through http-proxy-3), plus /healthz, /readyz and /metrics.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { Logger } from '../bridge/log';
import type { BridgeAppConfig } from '../bridge/main';
import type { RequestInfo } from '../bridge/request-info';
import { BridgeClient } from './bridge-client';
import type { AppConfig, GatewayConfig } from './config';
import { IsapiExchange, type ExchangeResult } from './isapi-exchange';
import { LocalBridge } from './local-bridge';
import { Router, type RouteMatch } from './router';
import { Upstream } from './upstream';

export interface GatewayOptions {
  config: GatewayConfig;
  logger?: Logger;
  /** Write one JSON access-log line per request on stdout. */
  accessLog?: boolean;
  /** Override how local bridges are launched (tests, the Wine mode). */
  bridgeCommand?: { file: string; args: string[] };
}

interface BridgeRuntime {
  client: BridgeClient;
  local?: LocalBridge;
}

function bridgeApp(app: AppConfig): BridgeAppConfig {
  return {
    name: app.name,
    library: app.library,
    mount: app.mount,
    physicalPath: app.physicalPath,
    readAhead: app.readAhead,
    maxConcurrency: app.maxConcurrency,
  };
}

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
  private readonly router: Router;
  private readonly bridges = new Map<string, BridgeRuntime>();
  private readonly upstreams = new Map<string, Upstream>();
  private readonly sockets = new Set<net.Socket>();
  private inFlight = 0;
  private closing = false;

  private constructor(
    private readonly opts: GatewayOptions,
    bridges: Map<string, BridgeRuntime>,
  ) {
    const config = opts.config;
    this.logger = opts.logger ?? new Logger('gateway');
    this.bridges = bridges;
    this.router = new Router(config.apps, config.routes);
    for (const u of config.upstreams) this.upstreams.set(u.name, new Upstream(u, this.logger));
    this.server = http.createServer({ keepAliveTimeout: 5000 }, (req, res) => this.handle(req, res));
    this.server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('upgrade', (_req: http.IncomingMessage, socket: net.Socket) => socket.destroy());
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
      if (socket.writable) socket.end(`HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      this.logger.debug('client error', { code: err.code ?? '', error: err.message });
    });
    if (config.admin) this.adminServer = http.createServer((req, res) => this.handleAdmin(req, res) || notFound(res));
  }

  static async start(opts: GatewayOptions): Promise<Gateway> {
    const logger = opts.logger ?? new Logger('gateway');
    const config = opts.config;
    const bridges = new Map<string, BridgeRuntime>();
    try {
      for (const b of config.bridges) {
        const apps = config.apps.filter((a) => a.bridge === b.name).map(bridgeApp);
        if (b.mode === 'local') {
          const local = new LocalBridge({
            name: b.name,
            address: b.address,
            apps,
            workers: b.workers,
            siteRoot: config.siteRoot,
            secret: b.secret,
            logger,
            command: opts.bridgeCommand,
          });
          await local.start();
          bridges.set(b.name, {
            local,
            client: new BridgeClient({ name: b.name, address: local.address, secret: b.secret, maxConnections: b.maxConnections, logger }),
          });
        } else {
          bridges.set(b.name, {
            client: new BridgeClient({ name: b.name, address: b.address!, secret: b.secret, maxConnections: b.maxConnections, logger }),
          });
        }
      }
    } catch (err) {
      await Promise.all([...bridges.values()].map((r) => r.local?.stop()));
      throw err;
    }
    const gateway = new Gateway({ ...opts, logger }, bridges);
    for (const [, rt] of bridges) rt.local?.on('down', () => rt.client.closeIdle('bridge restarting'));
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
    if (path === '/readyz') {
      const down = [...this.bridges].filter(([, rt]) => rt.local && !rt.local.up).map(([name]) => name);
      if (this.closing) sendText(res, 503, 'shutting down\n');
      else if (down.length > 0) sendText(res, 503, `bridges not ready: ${down.join(', ')}\n`);
      else sendText(res, 200, 'ready\n');
      return true;
    }
    return false;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '/';
    if (url.startsWith('/healthz') || url.startsWith('/readyz')) {
      if (this.handleAdmin(req, res)) return;
    }
    const match = this.router.match(req.headers.host, url);
    if (!match) {
      notFound(res);
      return;
    }
    if (match.kind === 'proxy') {
      const upstream = this.upstreams.get(match.route.upstream)!;
      upstream.handle(req, res);
      return;
    }
    this.handleIsapi(req, res, match);
  }

  private handleIsapi(req: http.IncomingMessage, res: http.ServerResponse, match: Extract<RouteMatch, { kind: 'isapi' }>): void {
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
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      localAddress: socket.localAddress ?? '',
      localPort: socket.localPort ?? 0,
      secure: 'encrypted' in socket && Boolean((socket as { encrypted?: boolean }).encrypted),
      contentLength: contentLengthOf(req),
    };
    const started = process.hrtime.bigint();
    this.inFlight++;
    const exchange = new IsapiExchange(req, res, info, runtime.client, (result) => {
      this.inFlight--;
      this.accessLog(info, result, started);
    });
    void exchange.start();
  }

  private accessLog(info: RequestInfo, result: ExchangeResult, started: bigint): void {
    if (!this.opts.accessLog) return;
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const entry = {
      time: new Date().toISOString(),
      requestId: info.requestId,
      app: info.appName,
      method: info.method,
      path: info.scriptName + info.pathInfo,
      status: result.status,
      ecbStatus: result.end?.loggedStatus,
      bytesIn: result.bytesIn,
      bytesOut: result.bytesOut,
      durationMs: Math.round(ms * 1000) / 1000,
      logData: result.end?.logData || undefined,
      appendedLog: result.end?.appendedLog || undefined,
      error: result.error,
    };
    process.stdout.write(JSON.stringify(entry) + '\n');
  }

  /** Stops accepting, lets in-flight requests finish (up to the deadline), stops bridges. */
  async close(deadlineMs = 15000): Promise<void> {
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
    for (const rt of this.bridges.values()) rt.client.closeIdle('gateway shutting down');
    await Promise.all([...this.bridges.values()].map((rt) => rt.local?.stop(Math.max(1000, until - Date.now()))));
  }
}

function sendText(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function notFound(res: http.ServerResponse): void {
  sendText(res, 404, '404 Not Found: no application or upstream is mapped to this URL\n');
}
