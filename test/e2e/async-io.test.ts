/**
 * Asynchronous ISAPI I/O, end to end with real extensions: HSE_IO_ASYNC writes,
 * PENDING + DONE_WITH_SESSION, ASYNC_READ_CLIENT, TransmitFile, VectorSend,
 * EXEC_URL / SEND_URL and the per-request accounting.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { AccessLine, BRIDGE_MODE, RunningGateway, bridgePath, openFiles, request, rssBytes, sample, startGateway, tempDir, writeConfig } from '../harness';

let gw: RunningGateway;
let dir: string;
let small: string;
let medium: string;
let mediumBytes: Buffer;

beforeAll(async () => {
  dir = tempDir();
  small = path.join(dir, 'small.txt');
  fs.writeFileSync(small, 'abcdefghijklmnopqrstuvwxyz');
  medium = path.join(dir, 'medium.bin');
  mediumBytes = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < mediumBytes.length; i++) mediumBytes[i] = (i * 31 + 7) & 0xff;
  fs.writeFileSync(medium, mediumBytes);
  // The load test gets its own copy of asyncwrite (its own module) with the default pendingTimeoutMs:
  // 1500 ms (for the "never" test) can pass for a busy request on a loaded machine, mostly under Wine.
  const asyncwriteLoad = path.join(dir, path.basename(sample('asyncwrite')).replace('asyncwrite', 'asyncwrite-load'));
  fs.copyFileSync(sample('asyncwrite'), asyncwriteLoad);
  gw = await startGateway([
    '--config',
    writeConfig({
      bridges: { default: { workers: 4 } },
      apps: [
        { name: 'asyncwrite', mount: '/scripts/asyncwrite.dll', library: sample('asyncwrite'), pendingTimeoutMs: 1500 },
        { name: 'asyncwrite-load', mount: '/scripts/asyncwrite-load.dll', library: asyncwriteLoad },
        { name: 'transmitfile', mount: '/scripts/transmitfile.dll', library: sample('transmitfile') },
        { name: 'asyncread', mount: '/scripts/asyncread.dll', library: sample('asyncread') },
        { name: 'vectorsend', mount: '/scripts/vectorsend.dll', library: sample('vectorsend') },
        { name: 'connstate', mount: '/scripts/connstate.dll', library: sample('connstate') },
        { name: 'hello', mount: '/scripts/hello.dll', library: sample('hello') },
      ],
    }),
  ]);
});

afterAll(async () => {
  await gw?.stop();
});

/** A file for the path= parameter of the samples, as the extension opens it (Z:\... under Wine). */
function fileArg(p: string): string {
  return encodeURIComponent(bridgePath(p));
}

/** A request and its access-log line, matched by a unique marker in the query (IIS logs cs-uri-query too). */
async function get(url: string, opts: Parameters<typeof request>[1] = {}): Promise<{ r: Awaited<ReturnType<typeof request>>; log: AccessLine }> {
  const marker = `m${Math.random().toString(36).slice(2)}`;
  const sep = url.includes('?') ? '&' : '?';
  const r = await request(`${gw.url}${url}${sep}marker=${marker}`, opts);
  const log = await gw.waitForAccess((l) => typeof l.query === 'string' && l.query.includes(`marker=${marker}`));
  return { r, log };
}

describe('asynchronous WriteClient', () => {
  test('a chain of async writes, each issued from the previous completion, with exact accounting', async () => {
    const { r, log } = await get('/scripts/asyncwrite.dll?count=3&size=5');
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('AAAAABBBBBCCCCC');
    expect(log.logData).toBe('asyncwrite writes=3 bytes=15 errors=0 lasterr=0');
    expect(log).toMatchObject({ asyncWrites: 3, asyncWriteBytes: 15, syncWrites: 0, syncWriteBytes: 0, maxOutstanding: 1 });
  });

  test('completions run on a bridge thread, never inside WriteClient, and the first write may come from the extension\'s own thread', async () => {
    const { r, log } = await get('/scripts/asyncwrite.dll?count=4&size=100000&thread=1&delay=20');
    expect(r.body.length).toBe(400000);
    expect(r.body.subarray(300000, 300010).toString()).toBe('DDDDDDDDDD');
    const m = /^inline=(\d+) ctid=(\d+)$/.exec(String(log.appendLog));
    expect(m).not.toBeNull();
    expect(m![1]).toBe('0');
    expect(Number(m![2])).toBeGreaterThan(0);
    // Under Wine, GetCurrentThreadId() is a Windows thread id, not a Linux task of the process.
    if (BRIDGE_MODE === 'native') {
      const [bridgePid] = gw.bridgePids();
      // The bridge's main thread has the process id as its thread id: completions are elsewhere.
      expect(Number(m![2])).not.toBe(bridgePid);
      expect(fs.existsSync(`/proc/${bridgePid}/task/${m![2]}`)).toBe(true);
    }
  });

  test('a second async operation while one is outstanding fails with ERROR_BUSY and is counted', async () => {
    const { r, log } = await get('/scripts/asyncwrite.dll?mode=second');
    expect(r.body.toString()).toBe('first\nsecond ret=0 err=170\n');
    expect(log.rejectedSecondOutstanding).toBe(1);
  });

  test('an async write without a registered completion fails with 87', async () => {
    const { r } = await get('/scripts/asyncwrite.dll?mode=nocompletion');
    expect(r.body.toString()).toBe('nocompletion ret=0 err=87\n');
  });

  test('DONE_WITH_SESSION racing the PENDING return', async () => {
    for (let i = 0; i < 20; i++) {
      const r = await request(`${gw.url}/scripts/asyncwrite.dll?mode=done-first`);
      expect(r.body.toString()).toBe('done-first\n');
    }
  });

  test('a PENDING request that never calls DONE_WITH_SESSION is ended after pendingTimeoutMs with a logged error', async () => {
    const started = Date.now();
    const r = await request(`${gw.url}/scripts/asyncwrite.dll?mode=never`, { agent: false });
    expect(r.status).toBe(500);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    await gw.waitForLog((l) => l.msg === "extension never called HSE_REQ_DONE_WITH_SESSION; request ended" && l.app === 'asyncwrite');
  });

  test('a client aborting during async writes: the completion gets ERROR_OPERATION_ABORTED, nothing leaks', async () => {
    await new Promise<void>((resolve) => {
      const req = http.get(`${gw.url}/scripts/asyncwrite.dll?count=2000&size=65536`, { agent: false }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => undefined);
    });
    const line = await gw.waitForAccess((l) => typeof l.logData === 'string' && /errors=1 lasterr=995$/.test(l.logData));
    expect(line.completionErrors).toEqual({ '995': 1 });
    for (let i = 0; i < 5; i++) expect((await request(`${gw.url}/scripts/hello.dll`)).status).toBe(200);
  });

  test('2 000 concurrent PENDING requests complete correctly', async () => {
    const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
    const results = await Promise.all(
      Array.from({ length: 2000 }, (_, i) => request(`${gw.url}/scripts/asyncwrite-load.dll?count=2&size=3&thread=1&i=${i}`, { agent })),
    );
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('AAABBB');
    }
    agent.destroy();
  }, 120000);
});

describe('HSE_REQ_TRANSMIT_FILE', () => {
  test('offset, length, head and tail (synchronous)', async () => {
    const { r, log } = await get(`/scripts/transmitfile.dll?path=${fileArg(small)}&offset=3&length=5&head=HEAD-&tail=-TAIL`);
    expect(r.body.toString()).toBe('HEAD-defgh-TAIL');
    expect(log.logData).toBe('tf ret=1 err=0');
    expect(log.transmitFileBytes).toBe(15);
  });

  test('HSE_IO_SEND_HEADERS: pszStatusCode and pHead as the header block', async () => {
    const r = await request(`${gw.url}/scripts/transmitfile.dll?path=${fileArg(small)}&sendheaders=1&status=201%20Created&tail=!`);
    expect(r.status).toBe(201);
    expect(r.headers['x-tf']).toBe('1');
    expect(r.body.toString()).toBe('abcdefghijklmnopqrstuvwxyz!');
  });

  test('async: the completion gets (ecb, ctx, cbIO = bytes sent, dwError = 0) in that order', async () => {
    const { r, log } = await get(`/scripts/transmitfile.dll?path=${fileArg(small)}&async=1&offset=20`);
    expect(r.body.toString()).toBe('uvwxyz');
    expect(log.logData).toBe('tf cb=6 err=0');
  });

  test('pfnHseIO/pContext in HSE_TF_INFO override the registered completion', async () => {
    const { log } = await get(`/scripts/transmitfile.dll?path=${fileArg(small)}&async=1&override=1`);
    expect(log.logData).toBe('tf cb=26 err=0');
  });

  test('BytesToWrite 0 sends to the end of the file; a multi-megabyte file arrives intact', async () => {
    const r = await request(`${gw.url}/scripts/transmitfile.dll?path=${fileArg(medium)}&async=1`);
    expect(r.body.equals(mediumBytes)).toBe(true);
  });

  test('an Offset past the end of the file fails with WSAEINVAL (10022)', async () => {
    // The sample then returns HSE_STATUS_ERROR after its head: the response is aborted, as IIS does.
    await expect(request(`${gw.url}/scripts/transmitfile.dll?path=${fileArg(small)}&offset=99&marker=past-eof`, { agent: false })).rejects.toThrow();
    const log = await gw.waitForAccess((l) => typeof l.query === 'string' && l.query.includes('marker=past-eof'));
    expect(log.logData).toBe('tf ret=0 err=10022');
  });

  test('HSE_IO_DISCONNECT_AFTER_SEND closes the client connection after the response', async () => {
    const closed = await new Promise<boolean>((resolve, reject) => {
      const s = net.connect(Number(new URL(gw.url).port), '127.0.0.1');
      s.on('connect', () => s.write(`GET /scripts/transmitfile.dll?path=${fileArg(small)}&disconnect=1 HTTP/1.1\r\nHost: x\r\n\r\n`));
      s.on('data', () => undefined);
      s.on('end', () => resolve(true));
      s.on('error', reject);
      setTimeout(() => resolve(false), 5000);
    });
    expect(closed).toBe(true);
  });

  test('1 GiB to a client reading at a throttled rate keeps the bridge and gateway flat', async () => {
    const big = path.join(dir, 'big.bin');
    const size = 1024 * 1024 * 1024;
    fs.writeFileSync(big, '');
    fs.truncateSync(big, size); // Sparse: reading it costs no disk.
    const [bridgePid] = gw.bridgePids();
    const gatewayPid = gw.proc.pid!;
    const before = { bridge: rssBytes(bridgePid!), gateway: rssBytes(gatewayPid) };
    const peak = { ...before };
    let got = 0;
    let gatewayHadFileOpen = false;
    await new Promise<void>((resolve, reject) => {
      http
        .get(`${gw.url}/scripts/transmitfile.dll?path=${fileArg(big)}&async=1`, { agent: false }, (res) => {
          res.pause();
          // Throttled for 2 s (about 16 MiB/s), then full speed.
          const slow = setInterval(() => {
            let c: Buffer | null;
            for (let i = 0; i < 4 && (c = res.read() as Buffer | null); i++) got += c.length;
            peak.bridge = Math.max(peak.bridge, rssBytes(bridgePid!));
            peak.gateway = Math.max(peak.gateway, rssBytes(gatewayPid));
            gatewayHadFileOpen ||= openFiles(gatewayPid).includes(big);
          }, 16);
          setTimeout(() => {
            clearInterval(slow);
            res.on('data', (c: Buffer) => (got += c.length));
            res.on('end', () => resolve());
            res.resume();
          }, 2000);
        })
        .on('error', reject);
    });
    fs.unlinkSync(big);
    expect(got).toBe(size);
    // A Unix-socket bridge hands the range over (RESPONSE_FILE): the gateway reads the file itself.
    // A Wine bridge (TCP, Windows handles) sends it as frames.
    expect(gatewayHadFileOpen).toBe(BRIDGE_MODE === 'native');
    expect(peak.bridge - before.bridge).toBeLessThan(64 * 1024 * 1024);
    expect(peak.gateway - before.gateway).toBeLessThan(64 * 1024 * 1024);
  }, 120000);
});

describe('HSE_REQ_ASYNC_READ_CLIENT', () => {
  function fnv(data: Buffer): string {
    let h = 0x811c9dc5;
    for (const b of data) h = Math.imul(h ^ b, 0x01000193) >>> 0;
    return h.toString(16).padStart(8, '0');
  }

  test.each([
    ['empty', 0, false],
    ['small', 1000, false],
    ['past the read-ahead, first read from the extension thread', 200000, true],
    ['2 MiB', 2 * 1024 * 1024, false],
  ])('uploads (%s) read with async reads: bytes and checksum exact', async (_label, size, thread) => {
    const body = Buffer.alloc(size);
    for (let i = 0; i < size; i++) body[i] = (i * 13) & 0xff;
    const { r, log } = await get(`/scripts/asyncread.dll${thread ? '?thread=1' : ''}`, { method: 'POST', body });
    expect(r.body.toString()).toBe(`bytes=${size} fnv=${fnv(body)}\n`);
    expect(log.asyncReadBytes).toBe(Math.max(0, size - Math.min(size, 49152)));
  });

  test('a chunked upload is read to its end (completion with 0 bytes)', async () => {
    const parts = [Buffer.alloc(70000, 1), Buffer.alloc(3, 2)];
    const r = await request(`${gw.url}/scripts/asyncread.dll`, { method: 'POST', body: parts, headers: { 'Transfer-Encoding': 'chunked' } });
    expect(r.body.toString()).toBe(`bytes=70003 fnv=${fnv(Buffer.concat(parts))}\n`);
  });
});

describe('HSE_REQ_VECTOR_SEND', () => {
  test('memory and file-handle elements, with headers', async () => {
    const r = await request(`${gw.url}/scripts/vectorsend.dll?path=${fileArg(small)}`);
    expect(r.headers['content-type']).toBe('text/plain');
    expect(r.body.toString()).toBe('vector-begin\nabcdefghijklmnopqrstuvwxyzvector-end\n');
  });

  test('async with FINAL_SEND: the completion reports every byte', async () => {
    const { r, log } = await get(`/scripts/vectorsend.dll?path=${fileArg(small)}&async=1&final=1`);
    expect(r.body.length).toBe(50);
    expect(log.logData).toBe('vector cb=50 err=0');
  });
});

describe('other ServerSupportFunction requests', () => {
  test('IS_CONNECTED, SET_FLUSH_FLAG, APPEND_LOG_PARAMETER', async () => {
    expect((await request(`${gw.url}/scripts/connstate.dll?mode=isconnected`)).body.toString()).toBe('connected=1\n');
    expect((await request(`${gw.url}/scripts/connstate.dll?mode=flush`)).body.toString()).toBe('flush-1\nflush-2\nflush-3\n');
    const { log } = await get('/scripts/connstate.dll?mode=applog&text=hello-log');
    expect(log.appendLog).toBe('hello-log');
  });

  test('CLOSE_CONNECTION closes the client connection after the response', async () => {
    const data = await new Promise<string>((resolve, reject) => {
      const s = net.connect(Number(new URL(gw.url).port), '127.0.0.1');
      let text = '';
      s.on('connect', () => s.write('GET /scripts/connstate.dll?mode=close HTTP/1.1\r\nHost: x\r\n\r\n'));
      s.on('data', (d) => (text += d.toString()));
      s.on('end', () => resolve(text));
      s.on('error', reject);
      setTimeout(() => resolve('timeout'), 5000);
    });
    expect(data).toMatch(/\r\n\r\nclosing\n$/);
  });

  test('SEND_CUSTOM_ERROR sends the status and sub-status page', async () => {
    const r = await request(`${gw.url}/scripts/connstate.dll?mode=customerror&status=500%20Server%20Error&sub=13`);
    expect(r.status).toBe(500);
    expect(r.body.toString()).toContain('500.13 - Server Error');
  });

  test('MAP_URL_TO_PATH_EX fills HSE_URL_MAPEX_INFO', async () => {
    const text = (await request(`${gw.url}/scripts/connstate.dll?mode=mapex&url=/scripts/x.txt`)).body.toString();
    expect(text).toContain(`path=${bridgePath(path.join(path.dirname(sample('connstate')), 'x.txt'))}`);
    expect(text).toContain('flags=0x205');
    expect(text).toContain('cchMatchingURL=8');
  });

  test('SEND_URL serves another URL through the gateway instead', async () => {
    const r = await request(`${gw.url}/scripts/connstate.dll?mode=sendurl&url=/scripts/hello.dll`);
    expect(r.body.toString()).toBe('Hello from ISAPI!\n');
  });

  test('EXEC_URL runs a child request whose response reaches the client; GET_EXEC_URL_STATUS reports it', async () => {
    const { r, log } = await get('/scripts/connstate.dll?mode=execurl&url=/scripts/hello.dll');
    expect(r.body.toString()).toBe('Hello from ISAPI!\n');
    expect(log.logData).toBe('exec status=200 sub=0 err=0');
  });

  test('REPORT_UNHEALTHY reaches the gateway', async () => {
    await request(`${gw.url}/scripts/connstate.dll?mode=unhealthy&reason=test-leak`);
    await gw.waitForLog((l) => l.msg === 'bridge reported itself unhealthy' && l.reason === 'test-leak');
  });

  test('requests that only make sense inside IIS fail with ERROR_NOT_SUPPORTED (50)', async () => {
    expect((await request(`${gw.url}/scripts/connstate.dll?mode=unsupported-token`)).body.toString()).toBe('ret=0 err=50\n');
  });
});
