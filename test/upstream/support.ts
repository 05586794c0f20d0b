/**
 * Real HTTP servers on loopback standing in for IIS hosts, and a gateway process
 * (dist/gateway/cli.js) in front of them. The servers are real upstreams: the
 * gateway under test talks to them over TCP exactly as it would to IIS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { startGateway, writeConfig, type RunningGateway } from '../harness';

export interface TestServer {
  url: string;
  port: number;
  server: http.Server | https.Server;
  /** Requests this server has seen (head received). */
  hits: number;
  close(): Promise<void>;
}

export async function startServer(
  handler: http.RequestListener,
  opts: { https?: { key: string; cert: string }; port?: number; keepAliveTimeout?: number } = {},
): Promise<TestServer> {
  const sockets = new Set<net.Socket>();
  const t: TestServer = { url: '', port: 0, server: undefined as unknown as http.Server, hits: 0, close: async () => undefined };
  const counted: http.RequestListener = (req, res) => {
    t.hits++;
    handler(req, res);
  };
  const server = opts.https ? https.createServer({ key: opts.https.key, cert: opts.https.cert }, counted) : http.createServer(counted);
  server.keepAliveTimeout = opts.keepAliveTimeout ?? 30000;
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  t.server = server;
  t.port = (server.address() as net.AddressInfo).port;
  t.url = `${opts.https ? 'https' : 'http'}://127.0.0.1:${t.port}`;
  t.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return t;
}

/** A port nothing listens on (connections are refused). */
export { freeLoopbackPort as freePort } from '../../bridge/transport';

/**
 * A listening socket whose accept queue is full, so new connections hang in SYN_SENT:
 * a real "connect never completes" upstream on loopback. Python's listen(0) never
 * accepts; one filler connection fills the queue.
 */
export async function startBlackhole(): Promise<{ url: string; close(): void }> {
  const proc: ChildProcess = spawn(
    'python3',
    ['-c', 'import socket,sys\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()'],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    proc.once('error', reject);
    proc.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
  });
  const filler = net.connect(port, '127.0.0.1');
  filler.on('error', () => undefined);
  await new Promise((r) => filler.once('connect', r));
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      filler.destroy();
      proc.kill();
    },
  };
}

export async function gatewayWith(config: Record<string, unknown>): Promise<RunningGateway> {
  return startGateway(['--config', writeConfig(config)]);
}

/** A route `/` to an upstream with the given settings. */
export function proxyConfig(upstream: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { upstreams: { iis: upstream }, routes: [{ prefix: '/', upstream: 'iis' }], ...extra };
}
