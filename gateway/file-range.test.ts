/**
 * openBridgeFile takes a bridge's descriptor only when /proc shows the very file the
 * bridge named: a wrong inode (another PID namespace, a reused descriptor number) or
 * something that is not a regular file is declined, and the bridge sends the bytes.
 * streamFileRange sends the range through a real HTTP response, with the client's
 * backpressure, and reports how it ended.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FileDoneResult, type FileDone } from '../bridge/wire';
import { openBridgeFile, streamFileRange } from './file-range';

const onLinux = process.platform === 'linux' ? test : test.skip;
let dir: string;
let file: string;
let fd: number;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'file-range-'));
  file = path.join(dir, 'data.bin');
  fs.writeFileSync(file, 'abcdef');
  fd = fs.openSync(file, 'r');
});

afterAll(() => {
  fs.closeSync(fd);
  fs.rmSync(dir, { recursive: true, force: true });
});

function offerFor(descriptor: number, ino?: string): Parameters<typeof openBridgeFile>[0] {
  const st = fs.fstatSync(descriptor, { bigint: true });
  return { pid: process.pid, fd: descriptor, dev: String(st.dev), ino: ino ?? String(st.ino), offset: 0, length: 6 };
}

onLinux('the named file is opened through /proc and reads as itself', async () => {
  const handle = await openBridgeFile(offerFor(fd));
  expect(handle).toBeDefined();
  const buf = Buffer.alloc(6);
  await handle!.read(buf, 0, 6, 0);
  await handle!.close();
  expect(buf.toString()).toBe('abcdef');
});

onLinux('another inode behind the same descriptor number is declined', async () => {
  expect(await openBridgeFile(offerFor(fd, '1'))).toBeUndefined();
});

onLinux('a descriptor that is not a regular file is declined', async () => {
  const dirFd = fs.openSync(dir, 'r');
  try {
    expect(await openBridgeFile(offerFor(dirFd))).toBeUndefined();
  } finally {
    fs.closeSync(dirFd);
  }
});

onLinux('a process or descriptor that does not exist is declined', async () => {
  expect(await openBridgeFile({ ...offerFor(fd), pid: 2 ** 31 - 1 })).toBeUndefined();
  expect(await openBridgeFile({ ...offerFor(fd), fd: 999_999 })).toBeUndefined();
});

describe('streamFileRange', () => {
  // Well beyond what loopback socket buffers hold, so the writes meet backpressure.
  const SIZE = 24 * 1024 * 1024 + 777;
  let big: string;
  let content: Buffer;

  beforeAll(() => {
    big = path.join(dir, 'big.bin');
    content = crypto.randomBytes(SIZE);
    fs.writeFileSync(big, content);
  });

  /** Serves one request with streamFileRange and resolves with its FileDone and the file handle. */
  async function serveOnce(
    open: () => Promise<fsp.FileHandle>,
    offset: number,
    length: number,
    client: (url: string) => Promise<unknown>,
  ): Promise<{ done: FileDone; handle: fsp.FileHandle; sentBytes: number; client: unknown }> {
    let handle!: fsp.FileHandle;
    let sentBytes = 0;
    let resolveDone!: (d: FileDone) => void;
    const doneP = new Promise<FileDone>((r) => (resolveDone = r));
    const server = http.createServer(async (_req, res) => {
      handle = await open();
      const done = await streamFileRange(handle, { pid: 0, fd: 0, dev: '0', ino: '0', offset, length }, res, (n) => (sentBytes += n));
      res.end();
      resolveDone(done);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      const [got, done] = await Promise.all([client(url), doneP]);
      return { done, handle, sentBytes, client: got };
    } finally {
      server.closeAllConnections();
      server.close();
    }
  }

  /** Reads the whole response, pausing now and then so the server sees backpressure. */
  function slowRead(url: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      http.get(url, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          if (chunks.length % 16 === 0) {
            res.pause();
            setTimeout(() => res.resume(), 10);
          }
        });
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      }).on('error', reject);
    });
  }

  test('a multi-chunk range arrives byte for byte through a client that pauses; the file is closed', async () => {
    const offset = 12345;
    const length = SIZE - offset - 100;
    const r = await serveOnce(() => fsp.open(big, 'r'), offset, length, slowRead);
    expect(r.done).toEqual({ result: FileDoneResult.SENT, bytes: length, win32Error: 0 });
    expect(r.sentBytes).toBe(length);
    expect((r.client as Buffer).equals(content.subarray(offset, offset + length))).toBe(true);
    expect(r.handle.fd).toBe(-1);
  });

  test('a client that leaves midway: CLIENT_GONE with the bytes sent so far, and the file is closed', async () => {
    // Larger than loopback's socket buffers can hold, so the client's leaving is seen.
    const huge = path.join(dir, 'huge.bin');
    const HUGE = 256 * 1024 * 1024;
    fs.writeFileSync(huge, '');
    fs.truncateSync(huge, HUGE);
    const r = await serveOnce(
      () => fsp.open(huge, 'r'),
      0,
      HUGE,
      (url) =>
        new Promise<void>((resolve) => {
          const req = http.get(url, (res) => {
            res.once('data', () => {
              res.pause();
              setTimeout(() => {
                req.destroy();
                resolve();
              }, 50);
            });
          });
          req.on('error', () => resolve());
        }),
    );
    expect(r.done.result).toBe(FileDoneResult.CLIENT_GONE);
    expect(r.done.bytes).toBeGreaterThan(0);
    expect(r.done.bytes).toBeLessThan(HUGE);
    expect(r.handle.fd).toBe(-1);
  });

  test('a range beyond the end of a file that shrank: what there was is sent', async () => {
    const r = await serveOnce(() => fsp.open(big, 'r'), SIZE - 1000, 5000, slowRead);
    expect(r.done).toEqual({ result: FileDoneResult.SENT, bytes: 1000, win32Error: 0 });
    expect((r.client as Buffer).equals(content.subarray(SIZE - 1000))).toBe(true);
  });

  test('a read error ends it with READ_FAILED and a Win32 error', async () => {
    const r = await serveOnce(() => fsp.open(dir, 'r'), 0, 100, slowRead);
    expect(r.done.result).toBe(FileDoneResult.READ_FAILED);
    expect(r.done.bytes).toBe(0);
    expect(r.done.win32Error).not.toBe(0);
    expect(r.handle.fd).toBe(-1);
  });
});
