/**
 * The non-ISAPI contenders of `npm run bench`, each a separate process:
 *
 *   node dist/bench/servers.js peer  --port P
 *       The "Node peer": a plain node:http server answering exactly what the
 *       hello sample answers (200, text/plain, "Hello from ISAPI!\n"), plus
 *       /stream?bytes=N&chunk=K (same bytes as samples/stream.c) and /sink
 *       (counts a request body), so streaming and upload have a Node reference.
 *
 *   node dist/bench/servers.js proxy --port P --target http://127.0.0.1:Q [--agent false]
 *       A minimal http-proxy-3 server in front of the peer, as a user would
 *       write it: with a keep-alive agent (the fair setup) or without one
 *       (http-proxy-3's default: `Connection: close`, one socket per request).
 *
 * Both print "listening <port>" on stdout once ready.
 */
import http from 'node:http';
import { createProxyServer } from 'http-proxy-3';

const HELLO = Buffer.from('Hello from ISAPI!\n', 'latin1');

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1]!;
  if (fallback === undefined) throw new Error(`missing --${name}`);
  return fallback;
}

function pattern(size: number): Buffer {
  const b = Buffer.allocUnsafe(size + 26);
  for (let i = 0; i < b.length; i++) b[i] = 97 + (i % 26);
  return b;
}

function peer(port: number): http.Server {
  return http.createServer({ keepAliveTimeout: 5000 }, (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/stream') {
      const total = Number(url.searchParams.get('bytes') ?? 1 << 20);
      const chunk = Number(url.searchParams.get('chunk') ?? 65536);
      const pat = pattern(chunk);
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': total });
      let sent = 0;
      const pump = (): void => {
        while (sent < total) {
          const n = Math.min(chunk, total - sent);
          const start = sent % 26;
          sent += n;
          if (!res.write(pat.subarray(start, start + n))) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
      return;
    }
    if (url.pathname === '/sink') {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => {
        const body = `${n}\n`;
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
        res.end(body);
      });
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': HELLO.length });
    res.end(HELLO);
  }).listen(port, '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));
}

function proxy(port: number, target: string, withAgent: boolean): http.Server {
  const agent = withAgent ? new http.Agent({ keepAlive: true, maxSockets: 1024, keepAliveMsecs: 1000 }) : undefined;
  const p = createProxyServer({ target, agent });
  p.on('error', (err: Error, _req: unknown, res: unknown) => {
    if (res instanceof http.ServerResponse && !res.headersSent) {
      res.writeHead(502);
      res.end(err.message);
    } else if (res instanceof http.ServerResponse) res.destroy();
  });
  return http
    .createServer({ keepAliveTimeout: 5000 }, (req, res) => p.web(req, res))
    .listen(port, '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));
}

const mode = process.argv[2];
const port = Number(arg('port'));
if (mode === 'peer') peer(port);
else if (mode === 'proxy') proxy(port, arg('target'), arg('agent', 'true') !== 'false');
else {
  process.stderr.write('usage: servers.js peer|proxy --port P [--target URL] [--agent false]\n');
  process.exit(2);
}
process.on('SIGTERM', () => process.exit(0));
