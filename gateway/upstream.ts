/**
 * HTTP upstreams (a real IIS host, or a new service) through http-proxy-3.
 * Each upstream gets keep-alive agents: without one http-proxy-3 sends
 * `Connection: close` and opens a socket per request.
 */
import http from 'node:http';
import https from 'node:https';
import { createProxyServer, type ProxyServer } from 'http-proxy-3';
import type { Logger } from '../bridge/log';
import type { UpstreamConfig } from './config';

export class Upstream {
  readonly name: string;
  private readonly proxy: ProxyServer;
  private readonly targets: URL[];
  private next = 0;
  private readonly httpAgent = new http.Agent({ keepAlive: true, keepAliveMsecs: 1000, maxSockets: 512, timeout: 60000 });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, keepAliveMsecs: 1000, maxSockets: 512, timeout: 60000 });

  constructor(
    config: UpstreamConfig,
    private readonly logger: Logger,
  ) {
    this.name = config.name;
    this.targets = config.targets.map((t) => new URL(t));
    this.proxy = createProxyServer({ xfwd: true, ws: true });
    // Without an 'error' listener http-proxy-3 rethrows and would take the gateway down.
    this.proxy.on('error', (err: Error, _req: unknown, res: unknown) => {
      this.logger.warn('upstream request failed', { upstream: this.name, error: err.message });
      if (res instanceof http.ServerResponse && !res.headersSent) {
        const body = `502 Bad Gateway: upstream ${this.name} failed (${err.message})\r\n`;
        res.writeHead(502, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
      } else if (res instanceof http.ServerResponse) {
        res.destroy();
      }
    });
  }

  private pick(): URL {
    const t = this.targets[this.next % this.targets.length]!;
    this.next++;
    return t;
  }

  handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const target = this.pick();
    this.proxy.web(req, res, {
      target: target.href,
      agent: target.protocol === 'https:' ? this.httpsAgent : this.httpAgent,
    });
  }

  close(): void {
    this.proxy.close();
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
