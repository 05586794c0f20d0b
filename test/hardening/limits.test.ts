/**
 * Front-door limits: URL and header sizes (414/431), slow clients (408),
 * per-app queues (503 + Retry-After from the bridge).
 */
import { request, sample, sleep, startGateway, writeConfig, type RunningGateway } from '../harness';
import { rawExchange } from './raw';

describe('size limits and slow clients', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startGateway([
      '--config',
      writeConfig({
        limits: { maxUrlBytes: 1024, maxHeaderBytes: 4096, headersTimeoutMs: 400, requestTimeoutMs: 1000 },
        apps: [
          { name: 'hello', mount: '/scripts/hello.dll', library: sample('hello') },
          { name: 'echo', mount: '/scripts/echo.dll', library: sample('echo') },
        ],
      }),
    ]);
  });
  afterAll(async () => {
    await gw.stop();
  });

  test('a request target over maxUrlBytes gets 414; at the limit it is served', async () => {
    const base = '/scripts/hello.dll?q=';
    expect((await request(`${gw.url}${base}${'a'.repeat(1024 - base.length)}`)).status).toBe(200);
    expect((await request(`${gw.url}${base}${'a'.repeat(1025 - base.length)}`)).status).toBe(414);
    // Far beyond what the parser buffers: refused inside the parser, still 414.
    const huge = await rawExchange(gw.url, [`GET ${base}${'a'.repeat(64 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`]);
    expect(huge.statusLine).toBe('HTTP/1.1 414 URI Too Long');
  });

  test('headers over maxHeaderBytes get 431', async () => {
    expect((await request(`${gw.url}/scripts/hello.dll`, { headers: { 'X-Big': 'b'.repeat(3000) } })).status).toBe(200);
    const r = await request(`${gw.url}/scripts/hello.dll`, { headers: { 'X-Big': 'b'.repeat(5000) } });
    expect(r.status).toBe(431);
    const huge = await rawExchange(gw.url, [`GET /scripts/hello.dll HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(64 * 1024)}\r\n\r\n`]);
    expect(huge.statusLine).toBe('HTTP/1.1 431 Request Header Fields Too Large');
  });

  test('slowloris: a head trickling in slower than headersTimeoutMs gets 408 and the connection closes', async () => {
    const started = Date.now();
    const chunks = ['GET /scripts/hello.dll HTTP/1.1\r\n', ...Array.from({ length: 20 }, (_, i) => `X-Slow-${i}: 1\r\n`)];
    const r = await rawExchange(gw.url, chunks, { gapMs: 100, waitMs: 4000 });
    expect(r.statusLine).toBe('HTTP/1.1 408 Request Timeout');
    expect(r.closed).toBe(true);
    expect(Date.now() - started).toBeLessThan(2500);
  });

  test('a body trickling in slower than requestTimeoutMs gets 408', async () => {
    const head = 'POST /scripts/echo.dll HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n';
    const r = await rawExchange(gw.url, [head, ...Array.from({ length: 30 }, () => 'x')], { gapMs: 100, waitMs: 5000 });
    // The extension may have started its response already; if not, the client is told why.
    expect(r.closed).toBe(true);
    if (!r.text.startsWith('HTTP/1.1 200')) expect(r.statusLine).toBe('HTTP/1.1 408 Request Timeout');
  });
});

describe('per-app queue limit', () => {
  test('over maxQueue: 503 with Retry-After from the bridge; the queued ones are served', async () => {
    const gw = await startGateway([
      '--config',
      writeConfig({
        apps: [
          { name: 'slow', mount: '/scripts/slow.dll', library: sample('slow'), maxConcurrency: 1, maxQueue: 2 },
          { name: 'hello', mount: '/scripts/hello.dll', library: sample('hello') },
        ],
      }),
    ]);
    try {
      const running = request(`${gw.url}/scripts/slow.dll?ms=800`, { agent: false });
      await sleep(100);
      const queued = [1, 2].map(() => request(`${gw.url}/scripts/slow.dll?ms=10`, { agent: false }));
      await sleep(100);
      const refused = await request(`${gw.url}/scripts/slow.dll?ms=10`, { agent: false });
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBe('1');
      expect(refused.body.toString()).toMatch(/ISAPI application slow is busy: its queue is full/);
      // Other apps are not affected by one app's full queue.
      expect((await request(`${gw.url}/scripts/hello.dll`)).status).toBe(200);
      expect((await running).status).toBe(200);
      for (const q of await Promise.all(queued)) expect(q.status).toBe(200);
      expect((await request(`${gw.url}/scripts/slow.dll?ms=1`)).status).toBe(200);
    } finally {
      await gw.stop();
    }
  });
});
