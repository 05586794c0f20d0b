/**
 * Upstream failures through a real gateway process: each timeout, the retry rule,
 * passive ejection with recovery, and active health checks. Upstreams are loopback
 * Node servers (and, for "connect never completes", a listener whose accept queue
 * is full).
 */
import http from 'node:http';
import type net from 'node:net';
import { request, sleep, type RunningGateway } from '../harness';
import { freePort, gatewayWith, proxyConfig, startBlackhole, startServer, type TestServer } from './support';

/** Reads a response to the end; resolves with what arrived and how it ended. */
function fetchRaw(url: string): Promise<{ status: number; body: string; error?: string }> {
  return new Promise((resolve) => {
    const req = http.request(url, { agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('error', (err) => resolve({ status: res.statusCode!, body, error: err.message }));
      res.on('aborted', () => resolve({ status: res.statusCode!, body, error: 'aborted' }));
    });
    req.on('error', (err) => resolve({ status: 0, body: '', error: err.message }));
    req.end();
  });
}

describe('timeouts', () => {
  let slow: TestServer;
  let hole: Awaited<ReturnType<typeof startBlackhole>>;
  let gw: RunningGateway;
  const parked: http.ServerResponse[] = [];

  beforeAll(async () => {
    hole = await startBlackhole();
    slow = await startServer((req, res) => {
      if (req.url!.endsWith('/no-head')) parked.push(res);
      if (req.url!.endsWith('/stall-body')) {
        res.writeHead(200, { 'Content-Length': '100' });
        res.write('partial');
        parked.push(res);
      }
      if (req.url!.endsWith('/trickle')) {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        let n = 0;
        const t = setInterval(() => {
          if (res.destroyed || ++n > 40) {
            clearInterval(t);
            res.end();
          } else res.write('.');
        }, 50);
      }
    });
    const base = { retries: 0, passive: { failures: 0 } };
    gw = await gatewayWith({
      upstreams: {
        hole: { ...base, targets: [hole.url], timeouts: { connectMs: 300 } },
        headers: { ...base, targets: [slow.url], timeouts: { headersMs: 300, idleMs: 5000 } },
        idle: { ...base, targets: [slow.url], timeouts: { headersMs: 5000, idleMs: 300 } },
        total: { ...base, targets: [slow.url], timeouts: { idleMs: 1000, totalMs: 600 } },
      },
      routes: [
        { prefix: '/hole/', upstream: 'hole' },
        { prefix: '/headers/', upstream: 'headers' },
        { prefix: '/idle/', upstream: 'idle' },
        { prefix: '/total/', upstream: 'total' },
      ],
    });
  });
  afterAll(async () => {
    for (const r of parked) r.destroy();
    hole.close();
    await Promise.all([gw.stop(), slow.close()]);
  });

  test('connect to a host that never accepts: 504 connect timeout', async () => {
    const r = await request(`${gw.url}/hole/x`);
    expect(r.status).toBe(504);
    expect(r.body.toString()).toContain('connect timeout after 300 ms');
    expect(r.body.toString()).toContain(String(r.headers['x-request-id']));
  });

  test('response head too slow: 504 headers timeout', async () => {
    const r = await request(`${gw.url}/headers/no-head`);
    expect(r.status).toBe(504);
    expect(r.body.toString()).toContain('headers timeout after 300 ms');
  });

  test('silence before the head: 504 idle timeout; silence mid-body: the response is cut', async () => {
    const before = await request(`${gw.url}/idle/no-head`);
    expect(before.status).toBe(504);
    expect(before.body.toString()).toContain('idle timeout after 300 ms');

    const mid = await fetchRaw(`${gw.url}/idle/stall-body`);
    expect(mid.status).toBe(200);
    expect(mid.body).toBe('partial');
    expect(mid.error).toBeDefined();
    await gw.waitForAccess((l) => l.path === '/idle/stall-body' && l.errorCode === 'ERR_UPSTREAM_IDLE_TIMEOUT');
  });

  test('total timeout cuts a response that keeps trickling', async () => {
    const r = await fetchRaw(`${gw.url}/total/trickle`);
    expect(r.status).toBe(200);
    expect(r.error).toBeDefined();
    expect(r.body.length).toBeLessThan(40);
    await gw.waitForAccess((l) => l.path === '/total/trickle' && l.errorCode === 'ERR_UPSTREAM_TOTAL_TIMEOUT');
  });
});

describe('retries', () => {
  let up: TestServer;
  let gw: RunningGateway;
  const perSocket = new WeakMap<net.Socket, number>();

  beforeAll(async () => {
    // Serves the first request on each connection; the second one on a connection is
    // met with a reset: a keep-alive socket the upstream dropped under the gateway.
    up = await startServer((req, res) => {
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      if (n >= 2) req.socket.destroy();
      else res.end(`ok ${req.method}`);
    });
    gw = await gatewayWith(proxyConfig({ targets: [up.url], passive: { failures: 0 } }));
  });
  afterAll(async () => Promise.all([gw.stop(), up.close()]));

  test('GET failing on a reused socket is retried on a new one; POST is not', async () => {
    expect((await request(`${gw.url}/a`, { agent: false })).status).toBe(200);
    const hits = up.hits;
    const retried = await request(`${gw.url}/b`, { agent: false });
    expect(retried.status).toBe(200);
    expect(retried.body.toString()).toBe('ok GET');
    expect(up.hits).toBe(hits + 2);
    expect(await gw.waitForAccess((l) => l.path === '/b')).toMatchObject({ status: 200, attempts: 2 });

    // The retry's socket is now idle in the pool with one request served: a POST on it is reset.
    const post = await request(`${gw.url}/c`, { method: 'POST', agent: false });
    expect(post.status).toBe(502);
    expect(await gw.waitForAccess((l) => l.path === '/c')).toMatchObject({ status: 502, attempts: 1 });
    expect(up.hits).toBe(hits + 3);
  });

  test('a refused connection is retried on another target for GET only', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const plain = await startServer((_req, res) => res.end('plain'));
    const gw2 = await gatewayWith(proxyConfig({ targets: [dead, plain.url], passive: { failures: 0 } }));
    try {
      for (let i = 0; i < 4; i++) expect((await request(`${gw2.url}/g${i}`, { agent: false })).status).toBe(200);
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await request(`${gw2.url}/p${i}`, { method: 'POST', agent: false })).status);
      // Round-robin: every other POST lands on the dead target and is not retried.
      expect(statuses.filter((s) => s === 502)).toHaveLength(2);
      expect(statuses.filter((s) => s === 200)).toHaveLength(2);
    } finally {
      await Promise.all([gw2.stop(), plain.close()]);
    }
  });
});

describe('target health', () => {
  test('passive ejection after consecutive failures, recovery after ejectMs', async () => {
    const good = await startServer((_req, res) => res.end('good'));
    const deadPort = await freePort();
    const gw = await gatewayWith(proxyConfig({ targets: [`http://127.0.0.1:${deadPort}`, good.url], passive: { failures: 2, ejectMs: 1500 } }));
    let revived: TestServer | undefined;
    try {
      for (let i = 0; i < 6; i++) expect((await request(`${gw.url}/e${i}`)).status).toBe(200);
      await gw.waitForLog((l) => l.msg === 'upstream target ejected' && l.target === `127.0.0.1:${deadPort}`);
      // Ejected: no attempt goes to the dead target any more.
      for (let i = 0; i < 4; i++) await request(`${gw.url}/after${i}`);
      for (let i = 0; i < 4; i++) expect((await gw.waitForAccess((l) => l.path === `/after${i}`)).attempts).toBe(1);

      revived = await startServer((_req, res) => res.end('revived'), { port: deadPort });
      await sleep(1600);
      const served: string[] = [];
      for (let i = 0; i < 4; i++) served.push((await request(`${gw.url}/r${i}`)).body.toString());
      expect(served).toContain('revived');
    } finally {
      await Promise.all([gw.stop(), good.close(), revived?.close()]);
    }
  });

  test('active checks take a target out and bring it back; none healthy is 503', async () => {
    const status = { a: 200, b: 200 };
    const mk = (name: 'a' | 'b'): Promise<TestServer> =>
      startServer((req, res) => {
        if (req.url === '/health') res.writeHead(status[name]).end();
        else res.end(name);
      });
    const a = await mk('a');
    const b = await mk('b');
    const gw = await gatewayWith(
      proxyConfig({ targets: [a.url, b.url], healthCheck: { path: '/health', intervalMs: 100, timeoutMs: 500, healthyThreshold: 2, unhealthyThreshold: 2 } }),
    );
    const spread = async (): Promise<string[]> => {
      const out: string[] = [];
      for (let i = 0; i < 6; i++) out.push((await request(`${gw.url}/x`)).body.toString());
      return out;
    };
    try {
      expect(new Set(await spread())).toEqual(new Set(['a', 'b']));
      status.a = 503;
      await gw.waitForLog((l) => l.msg === 'upstream target unhealthy' && l.target === `127.0.0.1:${a.port}`);
      expect(await spread()).toEqual(Array(6).fill('b'));

      status.b = 500;
      await gw.waitForLog((l) => l.msg === 'upstream target unhealthy' && l.target === `127.0.0.1:${b.port}`);
      const none = await request(`${gw.url}/x`);
      expect(none.status).toBe(503);
      expect(none.body.toString()).toContain('no healthy target');
      expect(none.body.toString()).toContain(String(none.headers['x-request-id']));

      status.a = 200;
      status.b = 200;
      await gw.waitForLog((l) => l.msg === 'upstream target healthy' && l.target === `127.0.0.1:${a.port}`);
      await gw.waitForLog((l) => l.msg === 'upstream target healthy' && l.target === `127.0.0.1:${b.port}`);
      expect(new Set(await spread())).toEqual(new Set(['a', 'b']));
    } finally {
      await Promise.all([gw.stop(), a.close(), b.close()]);
    }
  });
});
