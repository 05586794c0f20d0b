/**
 * openBridgeFile takes a bridge's descriptor only when /proc shows the very file the
 * bridge named: a wrong inode (another PID namespace, a reused descriptor number) or
 * something that is not a regular file is declined, and the bridge sends the bytes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openBridgeFile } from './file-range';

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
