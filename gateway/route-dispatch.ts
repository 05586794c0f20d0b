/**
 * Configured routes: their primary (an HTTP upstream or an ISAPI app) answers the
 * client; their shadow, if any, gets a replay. Also serves the shadow replays
 * themselves (marked requests from this gateway) and WebSocket upgrades.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import type { Logger } from '../bridge/log';
import type { AppConfig, RouteConfig } from './config';
import { matchApp, type IsapiMatch, type RouteMatch } from './router';
import { DiffLog, Shadow, type ShadowRouteStats, type ShadowStats } from './shadow';
import { InvalidShadowMarkerError, ShadowMarkerCodec } from './shadow-marker';
import type { Upstream, UpstreamResult } from './upstream';
import type { BackendRef } from './upstream-config';

/** One access-log line for a request answered by an HTTP upstream. */
export interface ProxyAccessLine {
  time: string;
  requestId: string;
  route?: string;
  /** The upstream's name (the access log's `app` column). */
  app: string;
  upstream: string;
  target?: string;
  method: string;
  path: string;
  status: number;
  attempts: number;
  bytesOut: number;
  durationMs: number;
  /** True for a replay of another request to its shadow. */
  shadow?: boolean;
  error?: string;
  errorCode?: string;
}

export interface RouteDispatchDeps {
  logger: Logger;
  upstream(name: string): Upstream | undefined;
  app(name: string): AppConfig | undefined;
  /** Hands a request to the gateway's ISAPI path; `remote` overrides the client address (replays). */
  isapi(req: http.IncomingMessage, res: http.ServerResponse, match: IsapiMatch, remote?: { address: string; port: number }): void;
  selfUrl(): string;
  accessLine(line: ProxyAccessLine): void;
  /** Proxied requests in flight, for draining on shutdown and the in-flight gauge. */
  inFlight(delta: 1 | -1, route: string, upstream: string): void;
}

function routeKey(route: RouteConfig): string {
  return route.host ? `${route.host}${route.prefix}` : route.prefix;
}

function sendError(res: http.ServerResponse, status: number, requestId: string, message: string): void {
  const body = `${status} ${http.STATUS_CODES[status]}: ${message}\r\nrequest id: ${requestId}\r\n`;
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'X-Request-Id': requestId });
  res.end(body);
}

export class RouteDispatcher {
  private readonly marker = new ShadowMarkerCodec();
  private readonly shadows = new Map<string, Shadow>();
  private readonly diffLogs = new Map<string, DiffLog>();
  /** Replays go to this gateway over loopback; a small keep-alive pool keeps that cheap. */
  private readonly replayAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  constructor(private readonly deps: RouteDispatchDeps) {}

  /** A request whose route matched. */
  handle(req: http.IncomingMessage, res: http.ServerResponse, route: RouteConfig): void {
    const requestId = crypto.randomUUID();
    if (route.shadow) this.shadowFor(route).begin(req, res, requestId);
    this.toBackend(req, res, route.primary, requestId, routeKey(route));
  }

  /** Serves a shadow replay this gateway sent itself; false when `req` is not one. */
  handleReplay(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    let marker;
    try {
      marker = this.marker.take(req);
    } catch (err) {
      if (!(err instanceof InvalidShadowMarkerError)) throw err;
      sendError(res, 400, crypto.randomUUID(), err.message);
      return true;
    }
    if (!marker) return false;
    this.toBackend(req, res, marker.backend, marker.requestId || crypto.randomUUID(), undefined, marker.client);
    return true;
  }

  /** WebSocket upgrades on routes whose primary is an HTTP upstream; others are refused. */
  upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer, match: RouteMatch | undefined): void {
    const primary = match?.kind === 'proxy' ? match.route.primary : undefined;
    const upstream = primary?.kind === 'upstream' ? this.deps.upstream(primary.name) : undefined;
    if (!upstream) {
      socket.destroy();
      return;
    }
    socket.on('error', () => socket.destroy());
    upstream.upgrade(req, socket, head, { requestId: crypto.randomUUID() });
  }

  private toBackend(req: http.IncomingMessage, res: http.ServerResponse, backend: BackendRef, requestId: string, route?: string, client?: string): void {
    if (backend.kind === 'app') {
      const app = this.deps.app(backend.name);
      const match = app ? matchApp(app, req.url ?? '/') : undefined;
      if (!match) {
        sendError(res, 404, requestId, `URL is not under app ${backend.name}`);
        return;
      }
      this.deps.isapi(req, res, match, client ? { address: client, port: 0 } : undefined);
      return;
    }
    const upstream = this.deps.upstream(backend.name);
    if (!upstream) {
      // Only while a reload removes it.
      sendError(res, 503, requestId, `upstream ${backend.name} is not configured`);
      return;
    }
    const started = process.hrtime.bigint();
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const routeLabel = route ?? '';
    this.deps.inFlight(1, routeLabel, upstream.name);
    upstream.handle(req, res, { requestId, clientAddress: client }, (r: UpstreamResult) => {
      this.deps.inFlight(-1, routeLabel, upstream.name);
      this.deps.accessLine({
        time: new Date().toISOString(),
        requestId,
        route,
        app: r.upstream,
        upstream: r.upstream,
        target: r.target,
        method,
        path,
        status: r.status,
        attempts: r.attempts,
        bytesOut: r.bytesOut,
        durationMs: Math.round(Number(process.hrtime.bigint() - started) / 1e3) / 1e3,
        shadow: client !== undefined || undefined,
        error: r.error,
        errorCode: r.errorCode,
      });
    });
  }

  private shadowFor(route: RouteConfig): Shadow {
    const key = routeKey(route);
    const existing = this.shadows.get(key);
    if (existing && existing.config === route.shadow) return existing;
    // A reload replaced the route: keep counting where the old one left off.
    const shadow = new Shadow(
      key,
      route.shadow!,
      {
        logger: this.deps.logger,
        marker: this.marker,
        selfUrl: () => this.deps.selfUrl(),
        agent: this.replayAgent,
        diffLog: (file) => this.diffLog(file),
      },
      existing?.stats,
    );
    this.shadows.set(key, shadow);
    return shadow;
  }

  private diffLog(file: string): DiffLog {
    let log = this.diffLogs.get(file);
    if (!log) {
      log = new DiffLog(file, this.deps.logger);
      this.diffLogs.set(file, log);
    }
    return log;
  }

  /** Counters of every shadowed route (live objects: read, do not modify). */
  stats(): ShadowStats {
    return new Map([...this.shadows].map(([k, s]) => [k, s.stats as Readonly<ShadowRouteStats>]));
  }

  async close(): Promise<void> {
    this.replayAgent.destroy();
    await Promise.all([...this.diffLogs.values()].map((l) => l.close()));
  }
}
