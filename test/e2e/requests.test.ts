/**
 * The core path, end to end: HTTP client -> gateway -> bridge -> C extension.
 */
import http from 'node:http';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { RunningGateway, request, sample, startGateway, writeConfig, rssBytes, sleep } from '../harness';

let gw: RunningGateway;

beforeAll(async () => {
  const config = writeConfig({
    apps: [
      { name: 'hello', mount: '/scripts/hello.dll', library: sample('hello') },
      { name: 'echo', mount: '/scripts/echo.dll', library: sample('echo') },
      { name: 'stream', mount: '/scripts/stream.dll', library: sample('stream') },
      { name: 'stream-small-buffer', mount: '/scripts/smallbuffer/stream.dll', library: sample('stream'), responseBufferLimit: 20 },
      { name: 'slow', mount: '/scripts/slow.dll', library: sample('slow'), maxConcurrency: 2 },
    ],
    bridges: { default: { workers: 4 } },
  });
  gw = await startGateway(['--config', config]);
});

afterAll(async () => {
  await gw?.stop();
});

describe('methods and keep-alive', () => {
  test('GET hello', async () => {
    const r = await request(`${gw.url}/scripts/hello.dll`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain');
    expect(r.headers['content-length']).toBe('18');
    expect(r.body.toString()).toBe('Hello from ISAPI!\n');
  });

  test('HEAD gets the head of GET without a body', async () => {
    const r = await request(`${gw.url}/scripts/hello.dll`, { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe('18');
    expect(r.body.length).toBe(0);
  });

  test('mount matching is IIS-like: case-insensitive, PATH_INFO after the DLL name, 404 elsewhere', async () => {
    const r = await request(`${gw.url}/Scripts/ECHO.dll/some/where?q`, { method: 'POST', body: 'x' });
    expect(r.headers['x-echo-pathinfo']).toBe('/some/where');
    expect((await request(`${gw.url}/scripts/hello.dllx`)).status).toBe(404);
    expect((await request(`${gw.url}/nothing`)).status).toBe(404);
  });

  test('many requests reuse one keep-alive client connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const ports = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const r = await new Promise<number>((resolve, reject) => {
        const req = http.get(`${gw.url}/scripts/hello.dll`, { agent }, (res) => {
          ports.add(req.socket!.localPort!);
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', reject);
      });
      expect(r).toBe(200);
    }
    expect(ports.size).toBe(1);
    agent.destroy();
  });
});

describe('query strings', () => {
  test.each([
    ['', ''],
    ['?', ''],
    ['?a=1&b=two', 'a=1&b=two'],
    ['?flag', 'flag'],
    ['?a=&b', 'a=&b'],
    ['?x=%20y', 'x=%20y'],
  ])('URL suffix %j gives lpszQueryString %j (never NULL)', async (suffix, expected) => {
    const r = await request(`${gw.url}/scripts/echo.dll${suffix}`, { method: 'POST', body: '' });
    expect(r.headers['x-echo-query']).toBe(expected);
    expect(r.headers['x-echo-null-fields']).toBe('none');
  });
});

describe('request bodies', () => {
  const sizes: Array<[string, number]> = [
    ['0 bytes', 0],
    ['1 byte', 1],
    ['exactly the 49152-byte read-ahead', 49152],
    ['one past the read-ahead', 49153],
    ['1 MiB', 1024 * 1024],
  ];
  test.each(sizes)('POST %s echoes back exactly, with cbTotalBytes and cbAvailable as IIS sets them', async (_label, size) => {
    const body = Buffer.alloc(size);
    for (let i = 0; i < size; i++) body[i] = (i * 7 + 3) & 0xff;
    const r = await request(`${gw.url}/scripts/echo.dll`, { method: 'POST', body, headers: { 'Content-Type': 'application/octet-stream' } });
    expect(r.status).toBe(200);
    expect(Number(r.headers['x-echo-total'])).toBe(size);
    expect(Number(r.headers['x-echo-available'])).toBe(Math.min(size, 49152));
    expect(r.body.equals(body)).toBe(true);
  });

  test('a chunked upload gives cbTotalBytes 0xFFFFFFFF and is read to the end with ReadClient', async () => {
    const parts = [Buffer.alloc(1000, 'a'), Buffer.alloc(70000, 'b'), Buffer.alloc(5, 'c')];
    const r = await request(`${gw.url}/scripts/echo.dll`, {
      method: 'POST',
      body: parts,
      headers: { 'Transfer-Encoding': 'chunked' },
    });
    expect(r.status).toBe(200);
    expect(r.headers['x-echo-total']).toBe(String(0xffffffff));
    expect(Number(r.headers['x-echo-available'])).toBeLessThanOrEqual(49152);
    expect(r.headers['content-length']).toBeUndefined();
    expect(r.headers['transfer-encoding']).toBe('chunked');
    expect(r.body.equals(Buffer.concat(parts))).toBe(true);
  });

  test('an extension that answers without reading a large upload: late body frames are ignored, the connection is reused', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 5; i++) {
      const r = await request(`${gw.url}/scripts/hello.dll`, { method: 'POST', body: Buffer.alloc(3 * 1024 * 1024, 1), agent });
      expect(r.body.toString()).toBe('Hello from ISAPI!\n');
    }
    expect((await request(`${gw.url}/scripts/echo.dll`, { method: 'POST', body: 'after', agent })).body.toString()).toBe('after');
    agent.destroy();
    expect(gw.logs().filter((l) => String(l.code ?? '').startsWith('ERR_WIRE'))).toEqual([]);
  });

  test('an upload the parser refuses mid-body (bad chunk size) ends the extension\'s ReadClient; nothing stays in flight', async () => {
    const status = await new Promise<string>((resolve, reject) => {
      const s = net.connect(Number(new URL(gw.url).port), '127.0.0.1');
      let text = '';
      s.on('connect', () => s.write('POST /scripts/echo.dll?badchunk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZZ\r\n'));
      s.on('data', (d) => (text += d.toString()));
      s.on('close', () => resolve(text.split('\r\n')[0]!));
      s.on('error', reject);
    });
    expect(status).toBe('HTTP/1.1 400 Bad Request');
    const line = await gw.waitForAccess((l) => l.app === 'echo' && l.query === 'badchunk');
    expect(line.error).toBe('client closed the connection');
  });

  test('100 MiB streams through in both directions with the bridge RSS bounded', async () => {
    const total = 100 * 1024 * 1024;
    const [bridgePid] = gw.bridgePids();
    expect(bridgePid).toBeDefined();
    const before = rssBytes(bridgePid!);
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssBytes(bridgePid!));
    }, 20);
    const chunk = Buffer.alloc(64 * 1024, 'z');
    const sent = createHash('sha256');
    const received = createHash('sha256');
    let got = 0;
    await new Promise<void>((resolve, reject) => {
      const req = http.request(
        `${gw.url}/scripts/echo.dll`,
        { method: 'POST', headers: { 'Content-Length': total, 'Content-Type': 'application/octet-stream' }, agent: false },
        (res) => {
          res.on('data', (c: Buffer) => {
            got += c.length;
            received.update(c);
          });
          res.on('end', resolve);
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      let left = total;
      const pump = (): void => {
        while (left > 0) {
          const n = Math.min(left, chunk.length);
          const piece = chunk.subarray(0, n);
          sent.update(piece);
          left -= n;
          if (!req.write(piece)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    clearInterval(sampler);
    expect(got).toBe(total);
    expect(received.digest('hex')).toBe(sent.digest('hex'));
    expect(peak - before).toBeLessThan(64 * 1024 * 1024);
  }, 120000);
});

describe('response streaming and backpressure', () => {
  test('a response without Content-Length is chunked for HTTP/1.1 and streamed', async () => {
    const r = await request(`${gw.url}/scripts/stream.dll?bytes=300000&chunk=10000&nolength=1`);
    expect(r.headers['transfer-encoding']).toBe('chunked');
    expect(r.body.length).toBe(300000);
    expect(r.body.subarray(0, 26).toString()).toBe('abcdefghijklmnopqrstuvwxyz');
  });

  test('an HTTP/1.0 client gets the unframed body and a closed connection', async () => {
    const raw = await new Promise<string>((resolve, reject) => {
      const s = net.connect(Number(new URL(gw.url).port), '127.0.0.1');
      let data = '';
      s.on('data', (d) => (data += d.toString('latin1')));
      s.on('end', () => resolve(data));
      s.on('error', reject);
      s.write('GET /scripts/stream.dll?bytes=100&nolength=1 HTTP/1.0\r\nHost: x\r\n\r\n');
    });
    const [head, body] = raw.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    expect(head).not.toMatch(/transfer-encoding/i);
    expect(body!.length).toBe(100);
  });

  /** When the first body byte of `url` arrived, in ms after the request, and the body. */
  function firstByteAt(url: string): Promise<{ firstAt: number; body: string }> {
    return new Promise((resolve, reject) => {
      const start = Date.now();
      let first = -1;
      let body = '';
      http
        .get(url, { agent: false }, (res) => {
          res.on('data', (d: Buffer) => {
            if (first < 0) first = Date.now() - start;
            body += d.toString('latin1');
          });
          res.on('end', () => resolve({ firstAt: first, body }));
        })
        .on('error', reject);
    });
  }

  test('output is held until the response ends, as IIS 7 and later hold it (KB 946086)', async () => {
    // 5 writes, 300 ms apart: nothing may arrive before the last one, 1200 ms in.
    const { firstAt, body } = await firstByteAt(`${gw.url}/scripts/stream.dll?bytes=50&chunk=10&pause=300`);
    expect(firstAt).toBeGreaterThanOrEqual(1150);
    expect(body).toBe('abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwx');
  });

  test('with HSE_REQ_SET_FLUSH_FLAG each WriteClient reaches the client as it happens', async () => {
    const { firstAt, body } = await firstByteAt(`${gw.url}/scripts/stream.dll?bytes=50&chunk=10&pause=300&flush=1`);
    expect(firstAt).toBeLessThan(1000);
    expect(body.length).toBe(50);
  });

  test('output beyond the app responseBufferLimit goes out without waiting for the end', async () => {
    // responseBufferLimit 20 for this app: every second 10-byte write fills the buffer.
    const { firstAt, body } = await firstByteAt(`${gw.url}/scripts/smallbuffer/stream.dll?bytes=50&chunk=10&pause=300`);
    expect(firstAt).toBeLessThan(1000);
    expect(body.length).toBe(50);
  });

  test('every byte of a long stream arrives intact through a lagging client', async () => {
    // Writes that straddle frames and reads, a client that pauses: client writes queue in
    // the gateway while the bridge connection keeps reading into recycled buffers.
    const total = 24 * 1024 * 1024 + 123;
    let at = 0;
    let bad = -1;
    await new Promise<void>((resolve, reject) => {
      http
        .get(`${gw.url}/scripts/stream.dll?bytes=${total}&chunk=50001`, { agent: false }, (res) => {
          res.pause();
          const slow = setInterval(() => {
            for (let c: Buffer | null, i = 0; i < 3 && (c = res.read() as Buffer | null); i++) check(c);
          }, 5);
          setTimeout(() => {
            clearInterval(slow);
            res.on('data', check);
            res.on('end', () => resolve());
            res.resume();
          }, 800);
        })
        .on('error', reject);
    });
    function check(c: Buffer): void {
      for (let i = 0; i < c.length && bad < 0; i++) if (c[i] !== 97 + ((at + i) % 26)) bad = at + i;
      at += c.length;
    }
    expect(bad).toBe(-1);
    expect(at).toBe(total);
  }, 60000);

  test('a slow reader blocks the extension instead of growing the bridge', async () => {
    const [bridgePid] = gw.bridgePids();
    const before = rssBytes(bridgePid!);
    const total = 256 * 1024 * 1024;
    let peak = before;
    let got = 0;
    await new Promise<void>((resolve, reject) => {
      const req = http.get(`${gw.url}/scripts/stream.dll?bytes=${total}`, { agent: false }, (res) => {
        res.pause();
        // Read slowly for a while, then drain fast.
        const slow = setInterval(() => {
          let c: Buffer | null;
          for (let i = 0; i < 4 && (c = res.read() as Buffer | null); i++) got += c.length;
          peak = Math.max(peak, rssBytes(bridgePid!));
        }, 10);
        setTimeout(() => {
          clearInterval(slow);
          res.on('data', (c: Buffer) => (got += c.length));
          res.on('end', () => resolve());
          res.resume();
        }, 1500);
      });
      req.on('error', reject);
    });
    expect(got).toBe(total);
    expect(peak - before).toBeLessThan(64 * 1024 * 1024);
    const line = await gw.waitForAccess((l) => l.app === 'stream' && l.bytesOut === total);
    expect(line.logData).toMatch(/^stream ok writes=4096 /);
  }, 60000);

  test('a client that disconnects mid-response makes the next WriteClient fail; the gateway keeps serving', async () => {
    await new Promise<void>((resolve) => {
      const req = http.get(`${gw.url}/scripts/stream.dll?bytes=1000000&chunk=1000&pause=20&flush=1`, { agent: false }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => undefined);
    });
    const line = await gw.waitForAccess((l) => l.app === 'stream' && typeof l.logData === 'string' && l.logData.startsWith('stream aborted'));
    expect(line.logData).toMatch(/stream aborted writes=\d+ bytes=\d+ err=64/);
    expect(line.error).toBe('client closed the connection');
    // Nothing is stuck: the bridge connection was returned and more requests work.
    for (let i = 0; i < 5; i++) expect((await request(`${gw.url}/scripts/hello.dll`)).status).toBe(200);
  });
});

describe('concurrency', () => {
  test('a blocking extension does not stall other apps; its own app queues beyond maxConcurrency', async () => {
    const start = Date.now();
    // maxConcurrency 2: four 400 ms calls take two rounds.
    const slow = Promise.all([1, 2, 3, 4].map(() => request(`${gw.url}/scripts/slow.dll?ms=400`, { agent: false })));
    await sleep(50);
    const t0 = Date.now();
    const hello = await request(`${gw.url}/scripts/hello.dll`, { agent: false });
    const helloMs = Date.now() - t0;
    const results = await slow;
    const slowMs = Date.now() - start;
    expect(hello.status).toBe(200);
    expect(helloMs).toBeLessThan(300);
    for (const r of results) expect(r.body.toString()).toBe('slept 400\n');
    expect(slowMs).toBeGreaterThanOrEqual(800);
  });

  test('200 concurrent requests all complete correctly', async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        request(`${gw.url}/scripts/echo.dll?i=${i}`, { method: 'POST', body: `body-${i}`, agent: false }),
      ),
    );
    results.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe(`body-${i}`);
      expect(r.headers['x-echo-query']).toBe(`i=${i}`);
    });
  });
});
