/**
 * HTTP upstreams through a real gateway process: balancing, forwarded and hop-by-hop
 * headers, Host rewriting, the body limit, error responses, WebSocket pass-through
 * and HTTPS targets with a CA file. Loopback Node servers play the IIS hosts.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { request, tempDir, type RunningGateway } from '../harness';
import { freePort, gatewayWith, proxyConfig, startServer, type TestServer } from './support';

/** Answers with the request it got, as JSON, and names itself in X-Served-By. */
function echoServer(name: string): Promise<TestServer> {
  return startServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify({ name, method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(200, { 'Content-Type': 'application/json', 'X-Served-By': name, 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
}

interface Echoed {
  name: string;
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const json = (b: Buffer): Echoed => JSON.parse(b.toString()) as Echoed;

describe('balancing', () => {
  let a: TestServer;
  let b: TestServer;
  const held: Array<{ name: string; res: http.ServerResponse }> = [];
  let gwRR: RunningGateway;
  let gwLIF: RunningGateway;

  beforeAll(async () => {
    // Each server parks /hold requests until the test releases them.
    const handler = (name: string): http.RequestListener => (req, res) => {
      if (req.url === '/hold') held.push({ name, res });
      else res.end(name);
    };
    a = await startServer(handler('a'));
    b = await startServer(handler('b'));
    gwRR = await gatewayWith(proxyConfig({ targets: [a.url, b.url] }));
    gwLIF = await gatewayWith(proxyConfig({ targets: [a.url, b.url], balance: 'least-in-flight' }));
  });
  afterAll(async () => {
    for (const h of held) h.res.end();
    await Promise.all([gwRR.stop(), gwLIF.stop(), a.close(), b.close()]);
  });

  test('round-robin alternates between targets', async () => {
    const served: string[] = [];
    for (let i = 0; i < 8; i++) served.push((await request(`${gwRR.url}/x`)).body.toString());
    expect(served.filter((s) => s === 'a')).toHaveLength(4);
    for (let i = 1; i < served.length; i++) expect(served[i]).not.toBe(served[i - 1]);
  });

  test('least-in-flight sends everything to the target without a pending request', async () => {
    const pending = request(`${gwLIF.url}/hold`);
    for (let i = 0; i < 500 && held.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const busy = held[0]!.name;
    const served: string[] = [];
    for (let i = 0; i < 6; i++) served.push((await request(`${gwLIF.url}/fast`)).body.toString());
    // Round-robin would have sent half of them to the busy target.
    expect(served).toEqual(Array(6).fill(busy === 'a' ? 'b' : 'a'));
    held.shift()!.res.end('released');
    expect((await pending).status).toBe(200);
  });
});

describe('headers', () => {
  let up: TestServer;
  let raw: net.Server;
  let rawPort: number;
  let untrusted: RunningGateway;
  let trusted: RunningGateway;

  beforeAll(async () => {
    up = await echoServer('iis');
    // A raw upstream, to send exactly the hop-by-hop response headers we want to see removed.
    raw = net.createServer((s) => {
      s.once('data', () =>
        s.end(
          'HTTP/1.1 200 OK\r\nConnection: X-Resp-Hop, close\r\nX-Resp-Hop: 1\r\nKeep-Alive: timeout=30\r\n' +
            'Proxy-Authenticate: Basic\r\nUpgrade: foo\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\nok',
        ),
      );
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', () => r()));
    rawPort = (raw.address() as net.AddressInfo).port;
    const routes = [
      { prefix: '/keep/', upstream: 'keep' },
      { prefix: '/target/', upstream: 'target' },
      { prefix: '/fixed/', upstream: 'fixed' },
      { prefix: '/raw/', upstream: 'raw' },
    ];
    const upstreams = {
      keep: { targets: [up.url] },
      target: { targets: [up.url], preserveHost: false },
      fixed: { targets: [up.url], hostHeader: 'legacy.internal' },
      raw: { targets: [`http://127.0.0.1:${rawPort}`] },
    };
    untrusted = await gatewayWith({ upstreams, routes, trustedProxies: ['10.0.0.0/8'] });
    trusted = await gatewayWith({ upstreams, routes, trustedProxies: ['127.0.0.1', '::1'] });
  });
  afterAll(async () => {
    raw.close();
    await Promise.all([untrusted.stop(), trusted.stop(), up.close()]);
  });

  const spoofed = {
    'X-Forwarded-For': '1.2.3.4',
    'X-Forwarded-Proto': 'https',
    'X-Forwarded-Host': 'evil.example',
    Forwarded: 'for=1.2.3.4;proto=https',
  };

  test('forwarded headers from an untrusted client are replaced', async () => {
    const host = new URL(untrusted.url).host;
    const seen = json((await request(`${untrusted.url}/keep/a`, { headers: spoofed })).body).headers;
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen['x-forwarded-host']).toBe(host);
    expect(seen.forwarded).toBe(`for=127.0.0.1;host="${host}";proto=http`);
  });

  test('forwarded headers from a trusted proxy are extended', async () => {
    const host = new URL(trusted.url).host;
    const seen = json((await request(`${trusted.url}/keep/a`, { headers: spoofed })).body).headers;
    expect(seen['x-forwarded-for']).toBe('1.2.3.4, 127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('https');
    expect(seen['x-forwarded-host']).toBe('evil.example');
    expect(seen.forwarded).toBe(`for=1.2.3.4;proto=https, for=127.0.0.1;host="${host}";proto=http`);
  });

  test('hop-by-hop request headers are not forwarded', async () => {
    const seen = json(
      (
        await request(`${untrusted.url}/keep/a`, {
          headers: { Connection: 'keep-alive, X-Secret-Hop', 'X-Secret-Hop': '1', 'Keep-Alive': 'timeout=9', TE: 'trailers', 'Proxy-Authorization': 'Basic eA==', 'X-Other': 'kept' },
        })
      ).body,
    ).headers;
    expect(seen['x-secret-hop']).toBeUndefined();
    expect(seen['keep-alive']).toBeUndefined();
    expect(seen.te).toBeUndefined();
    expect(seen['proxy-authorization']).toBeUndefined();
    expect(seen['x-other']).toBe('kept');
    expect(seen['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('hop-by-hop response headers are not passed to the client', async () => {
    const r = await request(`${untrusted.url}/raw/x`);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('ok');
    expect(r.headers['x-kept']).toBe('yes');
    expect(r.headers['x-resp-hop']).toBeUndefined();
    expect(r.headers['proxy-authenticate']).toBeUndefined();
    expect(r.headers.upgrade).toBeUndefined();
    expect(r.headers['keep-alive']).not.toBe('timeout=30');
  });

  test('Host: preserved, the target, or a fixed name', async () => {
    const ask = async (p: string): Promise<string | undefined> => json((await request(`${untrusted.url}${p}`, { headers: { Host: 'shop.example' } })).body).headers.host;
    expect(await ask('/keep/a')).toBe('shop.example');
    expect(await ask('/target/a')).toBe(`127.0.0.1:${up.port}`);
    expect(await ask('/fixed/a')).toBe('legacy.internal');
  });
});

describe('limits and errors', () => {
  let up: TestServer;
  let gw: RunningGateway;
  let deadPort: number;

  beforeAll(async () => {
    up = await echoServer('iis');
    deadPort = await freePort();
    gw = await gatewayWith({
      upstreams: { iis: { targets: [up.url], maxRequestBodyBytes: 1024 }, dead: { targets: [`http://127.0.0.1:${deadPort}`], retries: 0 } },
      routes: [
        { prefix: '/dead/', upstream: 'dead' },
        { prefix: '/', upstream: 'iis' },
      ],
    });
  });
  afterAll(async () => Promise.all([gw.stop(), up.close()]));

  test('bodies over maxRequestBodyBytes get 413 (declared or streamed), smaller ones pass', async () => {
    const hits = up.hits;
    const declared = await request(`${gw.url}/upload`, { method: 'POST', body: Buffer.alloc(2000, 'x'), agent: false });
    expect(declared.status).toBe(413);
    expect(declared.headers['x-request-id']).toBeTruthy();
    expect(declared.body.toString()).toContain(String(declared.headers['x-request-id']));
    expect(up.hits).toBe(hits);

    const chunked = await request(`${gw.url}/upload`, {
      method: 'POST',
      headers: { 'Transfer-Encoding': 'chunked' },
      body: [Buffer.alloc(1000, 'y'), Buffer.alloc(1000, 'z')],
      agent: false,
    });
    expect(chunked.status).toBe(413);

    const ok = await request(`${gw.url}/upload`, { method: 'POST', body: Buffer.alloc(1000, 'x') });
    expect(ok.status).toBe(200);
    expect(json(ok.body).body).toHaveLength(1000);
  });

  test('an unreachable upstream is a 502 naming the request id', async () => {
    const r = await request(`${gw.url}/dead/x`);
    expect(r.status).toBe(502);
    const id = String(r.headers['x-request-id']);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.body.toString()).toContain(`request id: ${id}`);
    expect(r.body.toString()).toContain('ECONNREFUSED');
    const line = await gw.waitForAccess((l) => l.requestId === id);
    expect(line).toMatchObject({ status: 502, upstream: 'dead', attempts: 1, errorCode: 'ECONNREFUSED' });
  });
});

// ---- WebSocket: a minimal RFC 6455 handshake and frames, enough to prove bytes flow both ways.

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function frame(payload: Buffer, mask: boolean): Buffer {
  const head = Buffer.from([0x81, (mask ? 0x80 : 0) | payload.length]);
  if (!mask) return Buffer.concat([head, payload]);
  const key = crypto.randomBytes(4);
  return Buffer.concat([head, key, payload.map((b, i) => b ^ key[i % 4]!)]);
}

function unframe(data: Buffer): Buffer {
  const masked = (data[1]! & 0x80) !== 0;
  const len = data[1]! & 0x7f;
  if (!masked) return data.subarray(2, 2 + len);
  const key = data.subarray(2, 6);
  return data.subarray(6, 6 + len).map((b, i) => b ^ key[i % 4]!);
}

describe('WebSocket', () => {
  let up: TestServer;
  let gw: RunningGateway;
  let seenForwardedFor: string | undefined;

  beforeAll(async () => {
    up = await startServer((_req, res) => res.end('plain'));
    up.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
      seenForwardedFor = req.headers['x-forwarded-for'] as string | undefined;
      const accept = crypto.createHash('sha1').update(`${req.headers['sec-websocket-key']}${WS_GUID}`).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      socket.on('data', (d: Buffer) => socket.write(frame(Buffer.concat([Buffer.from('echo:'), unframe(d)]), false)));
    });
    gw = await gatewayWith(proxyConfig({ targets: [up.url] }));
  });
  afterAll(async () => Promise.all([gw.stop(), up.close()]));

  test('upgrades pass through and frames are echoed', async () => {
    const key = crypto.randomBytes(16).toString('base64');
    const { res, socket } = await new Promise<{ res: http.IncomingMessage; socket: net.Socket }>((resolve, reject) => {
      const req = http.request(`${gw.url}/chat`, {
        headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': '13' },
        agent: false,
      });
      req.on('upgrade', (r, s) => resolve({ res: r, socket: s }));
      req.on('response', (r) => reject(new Error(`no upgrade: ${r.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
    expect(res.statusCode).toBe(101);
    expect(res.headers['sec-websocket-accept']).toBe(crypto.createHash('sha1').update(`${key}${WS_GUID}`).digest('base64'));
    const reply = new Promise<Buffer>((resolve) => socket.once('data', resolve));
    socket.write(frame(Buffer.from('hello'), true));
    expect(unframe(await reply).toString()).toBe('echo:hello');
    expect(seenForwardedFor).toBe('127.0.0.1');
    socket.destroy();
  });
});

describe('HTTPS upstream', () => {
  let up: TestServer;
  let gw: RunningGateway;

  beforeAll(async () => {
    const dir = tempDir('isapi-tls-');
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
      '-subj', '/CN=iis.test', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ], { stdio: 'ignore' });
    up = await startServer((req, res) => res.end(`tls ${req.url}`), { https: { key: fs.readFileSync(key, 'utf8'), cert: fs.readFileSync(cert, 'utf8') } });
    gw = await gatewayWith({
      upstreams: { withCa: { targets: [up.url], caFile: cert }, withoutCa: { targets: [up.url], retries: 0 } },
      routes: [
        { prefix: '/ca/', upstream: 'withCa' },
        { prefix: '/noca/', upstream: 'withoutCa' },
      ],
    });
  });
  afterAll(async () => Promise.all([gw.stop(), up.close()]));

  test('a self-signed upstream is trusted through caFile, and only then', async () => {
    const ok = await request(`${gw.url}/ca/x`);
    expect(ok.status).toBe(200);
    expect(ok.body.toString()).toBe('tls /ca/x');
    const refused = await request(`${gw.url}/noca/x`);
    expect(refused.status).toBe(502);
    expect(refused.body.toString()).toMatch(/self[- ]signed/i);
  });
});
