/**
 * ResponseWriter's TransmitFile ranges on a Unix-socket bridge: offered to the
 * gateway as RESPONSE_FILE, and sent as RESPONSE_BODY frames when the gateway
 * declines. A real socket pair and a real file; the test plays the gateway.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { WIN32_ERROR } from './abi/constants';
import { ResponseWriter } from './response-writer';
import { FileDoneResult, FrameDecoder, FrameType, decodeFileDone, decodeResponseFile, encodeFileDone, type FileDoneResultCode, type Frame } from './wire';

const STREAM = 7;
let dir: string;
let file: string;
let fd: number;
const content = Buffer.from(Array.from({ length: 300_000 }, (_, i) => 97 + (i % 26)));

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'writer-test-'));
  file = path.join(dir, 'data.bin');
  fs.writeFileSync(file, content);
  fd = fs.openSync(file, 'r');
});

afterAll(() => {
  fs.closeSync(fd);
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Pair {
  bridgeSide: net.Socket;
  frames: Frame[];
  onFrame: (fn: (frame: Frame) => void) => void;
  close: () => void;
}

/** A connected socket pair over a Unix socket: the writer's side, and the frames the "gateway" side receives. */
async function socketPair(): Promise<Pair> {
  const sock = path.join(dir, `s-${Math.random().toString(36).slice(2)}.sock`);
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(sock, r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const gatewaySide = net.connect(sock);
  const bridgeSide = await accepted;
  const frames: Frame[] = [];
  const listeners: Array<(frame: Frame) => void> = [];
  const decoder = new FrameDecoder({ wholeBodies: true });
  gatewaySide.on('data', (chunk: Buffer) =>
    decoder.push(chunk, (frame) => {
      const copy = { ...frame, payload: Buffer.from(frame.payload) };
      frames.push(copy);
      for (const l of listeners) l(copy);
    }),
  );
  return {
    bridgeSide,
    frames,
    onFrame: (fn) => listeners.push(fn),
    close: () => {
      gatewaySide.destroy();
      bridgeSide.destroy();
      server.close();
    },
  };
}

/** Runs one TransmitFile range through a writer whose "gateway" answers RESPONSE_FILE with `result`. */
async function transmit(result: FileDoneResultCode, sentByGateway = 0): Promise<{ pair: Pair; done: { bytes: number; error: number } }> {
  const pair = await socketPair();
  let resolveDone!: (d: { bytes: number; error: number }) => void;
  const finished = new Promise<{ bytes: number; error: number }>((r) => (resolveDone = r));
  const writer = new ResponseWriter(
    pair.bridgeSide,
    STREAM,
    { ioDone: (_op, bytes, error) => resolveDone({ bytes, error }), ended: () => undefined },
    { offerFiles: true },
  );
  pair.onFrame((frame) => {
    if (frame.type !== FrameType.RESPONSE_FILE) return;
    const offer = decodeResponseFile(frame.payload);
    expect(offer).toMatchObject({ pid: process.pid, fd, offset: 1000, length: 250_000, ino: String(fs.statSync(file, { bigint: true }).ino) });
    // The answer arrives as the bridge's GatewayConnection would pass it on.
    setImmediate(() => writer.fileDone({ result, bytes: sentByGateway, win32Error: result === FileDoneResult.READ_FAILED ? WIN32_ERROR.READ_FAULT : 0 }));
  });
  writer.segments([{ kind: 'file', file: fd, offset: 1000, length: 250_000 }], 1);
  const done = await finished;
  await new Promise((r) => setTimeout(r, 50)); // Let the last frames arrive.
  return { pair, done };
}

function bodyOf(frames: Frame[]): Buffer {
  return Buffer.concat(frames.filter((f) => f.type === FrameType.RESPONSE_BODY && f.streamId === STREAM).map((f) => f.payload));
}

test('a range the gateway declines goes out as RESPONSE_BODY frames, byte for byte', async () => {
  const { pair, done } = await transmit(FileDoneResult.DECLINED);
  expect(pair.frames[0]!.type).toBe(FrameType.RESPONSE_FILE);
  expect(bodyOf(pair.frames).equals(content.subarray(1000, 251_000))).toBe(true);
  expect(done).toEqual({ bytes: 250_000, error: 0 });
  pair.close();
});

test('a range the gateway sent itself costs no body frames; the operation counts its bytes', async () => {
  const { pair, done } = await transmit(FileDoneResult.SENT, 250_000);
  expect(pair.frames.map((f) => f.type)).toEqual([FrameType.RESPONSE_FILE]);
  expect(done).toEqual({ bytes: 250_000, error: 0 });
  pair.close();
});

test('a client that left mid-range fails the operation with the bytes that went', async () => {
  const { pair, done } = await transmit(FileDoneResult.CLIENT_GONE, 65_536);
  expect(done).toEqual({ bytes: 65_536, error: WIN32_ERROR.NETNAME_DELETED });
  pair.close();
});

test('a read failure on the gateway fails the operation with its Win32 error', async () => {
  const { pair, done } = await transmit(FileDoneResult.READ_FAILED, 0);
  expect(done).toEqual({ bytes: 0, error: WIN32_ERROR.READ_FAULT });
  pair.close();
});

test('FILE_DONE frames round-trip and unknown results are refused', () => {
  const frame = encodeFileDone(STREAM, { result: FileDoneResult.SENT, bytes: 2 ** 40, win32Error: 0 });
  const frames: Frame[] = [];
  new FrameDecoder({ wholeBodies: true }).push(frame, (f) => frames.push(f));
  expect(frames[0]!.type).toBe(FrameType.FILE_DONE);
  const bad = Buffer.from(frame);
  bad.writeUInt32LE(9, 12); // the result field
  const decoded: Frame[] = [];
  new FrameDecoder({ wholeBodies: true }).push(bad, (f) => decoded.push(f));
  expect(() => decodeFileDone(decoded[0]!.payload)).toThrow(/FILE_DONE result 9/);
});
