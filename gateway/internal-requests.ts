/**
 * Requests the gateway makes on an extension's behalf, through its own routing
 * (so the target may be another ISAPI app or an HTTP upstream):
 * HSE_REQ_SEND_URL replaces the response with another URL's; HSE_REQ_EXEC_URL
 * runs a child request whose response the client receives.
 */
import http from 'node:http';
import type net from 'node:net';
import type { RequestInfo } from '../bridge/request-info';
import type { ExecUrlFrame } from '../bridge/wire';
import type { InternalRequests } from './isapi-exchange';

/** More hops than this is a loop between extensions, not a design. */
const MAX_DEPTH = 8;
const DEPTH_HEADER = 'x-isapi-internal-depth';
const sendUrlHops = Symbol('isapi.sendUrlHops');

const NOT_FORWARDED = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'expect', 'upgrade', DEPTH_HEADER]);

export class GatewayInternalRequests implements InternalRequests {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

  constructor(
    private readonly dispatch: (req: http.IncomingMessage, res: http.ServerResponse) => void,
    private readonly server: () => net.AddressInfo,
  ) {}

  sendUrl(req: http.IncomingMessage, res: http.ServerResponse, url: string): void {
    const hops = ((req as unknown as Record<symbol, number>)[sendUrlHops] ?? 0) + 1;
    (req as unknown as Record<symbol, number>)[sendUrlHops] = hops;
    if (hops > MAX_DEPTH) {
      const body = `508 Loop Detected: more than ${MAX_DEPTH} HSE_REQ_SEND_URL redirects\r\n`;
      res.writeHead(508, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    // As IIS: the new URL is fetched with GET and without the original body.
    req.url = url;
    req.method = 'GET';
    const raw: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      if (!NOT_FORWARDED.has(req.rawHeaders[i]!.toLowerCase())) raw.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
    }
    req.rawHeaders = raw;
    delete req.headers['content-length'];
    delete req.headers['transfer-encoding'];
    req.resume(); // Whatever body was left is not the new request's.
    this.dispatch(req, res);
  }

  exec(spec: ExecUrlFrame, parent: RequestInfo): Promise<http.IncomingMessage> {
    const depth = Number(parent.headers.find(([n]) => n.toLowerCase() === DEPTH_HEADER)?.[1] ?? 0) + 1;
    if (depth > MAX_DEPTH) return Promise.reject(new Error(`more than ${MAX_DEPTH} nested HSE_REQ_EXEC_URL requests`));
    // The child sees the parent's headers, then the ones the extension adds (HSE_EXEC_URL_INFO.pszChildHeaders).
    const headers: Array<[string, string]> = parent.headers.filter(([name]) => !NOT_FORWARDED.has(name.toLowerCase()));
    for (const line of spec.headers.split(/\r?\n/)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
    }
    headers.push([DEPTH_HEADER, String(depth)]);
    if (spec.entity.length > 0) headers.push(['Content-Length', String(spec.entity.length)]);
    const flat: string[] = headers.flat();
    const { address, port } = this.server();
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: address === '::' || address === '0.0.0.0' ? '127.0.0.1' : address,
          port,
          method: spec.method || parent.method,
          path: spec.url || parent.url,
          headers: flat,
          agent: this.agent,
        },
        resolve,
      );
      req.on('error', reject);
      req.end(spec.entity.length > 0 ? spec.entity : undefined);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
