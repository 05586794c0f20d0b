import { randomBytes } from 'node:crypto';
import type { RequestInfo } from './request-info';
import { COUNT_FIELDS, emptyAccounting } from '../metrics/accounting';
import {
  EndFlags,
  FRAME_HEADER_SIZE,
  FrameDecoder,
  FrameType,
  WireProtocolError,
  decodeAbort,
  decodeHello,
  decodeRequest,
  decodeResponseEnd,
  decodeResponseHead,
  encodeAbort,
  encodeFrame,
  encodeHello,
  encodeRequest,
  encodeResponseEnd,
  encodeResponseHead,
  peekRequestApp,
  peekRequestContentLength,
  type Frame,
} from './wire';

const info: RequestInfo = {
  requestId: 'r-1',
  appName: 'hello',
  method: 'POST',
  url: '/scripts/hello.dll/a%20b?x=1&y',
  httpVersion: '1.1',
  headers: [
    ['Host', 'example'],
    ['X-Bytes', 'caf\u00e9 \u00ff'],
    ['Set-Cookie', 'a=1'],
    ['Set-Cookie', 'b=2'],
  ],
  scriptName: '/scripts/hello.dll',
  pathInfo: '/a b',
  queryString: 'x=1&y',
  remoteAddress: '::1',
  remotePort: 54321,
  localAddress: '::1',
  localPort: 8080,
  secure: true,
  contentLength: -1,
};

function decodeAll(bufs: Buffer[], decoder = new FrameDecoder()): Frame[] {
  const frames: Frame[] = [];
  for (const b of bufs) decoder.push(b, (f) => frames.push({ ...f, payload: Buffer.from(f.payload) }));
  return frames;
}

describe('round trips', () => {
  test('REQUEST keeps every field and every byte of latin1 headers', () => {
    const [frame] = decodeAll([encodeRequest(7, info)]);
    expect(frame!.type).toBe(FrameType.REQUEST);
    expect(frame!.streamId).toBe(7);
    expect(decodeRequest(frame!.payload)).toEqual(info);
    expect(peekRequestApp(frame!.payload)).toBe('hello');
    expect(peekRequestContentLength(frame!.payload)).toBe(-1);
  });

  test('HELLO, ABORT, RESPONSE_HEAD, RESPONSE_END', () => {
    const accounting = emptyAccounting();
    COUNT_FIELDS.forEach((f, i) => (accounting[f] = i * 1000 + 1));
    accounting.ops.transmit_file = { count: 2, totalOutstandingSeconds: 0.25, maxOutstandingSeconds: 0.125 };
    accounting.completionErrors['995'] = 3;
    accounting.ssfCalls.TRANSMIT_FILE = { ok: 2, error: 1, unsupported: 0 };
    accounting.appendLog = 'al';
    const frames = decodeAll([
      Buffer.concat([
        encodeHello({ version: 1, role: 'gateway', credential: 's3cret' }),
        encodeAbort(3, { code: 995, reason: 'client went away' }),
        encodeResponseHead(3, { statusCode: 404, reason: 'Not Found', headers: [['A', 'b']], flags: 2 }),
        encodeResponseEnd(3, { hseStatus: 1, loggedStatus: 404, logData: 'ld', accounting, flags: EndFlags.CLOSE }),
      ]),
    ]);
    expect(frames.map((f) => f.type)).toEqual([FrameType.HELLO, FrameType.ABORT, FrameType.RESPONSE_HEAD, FrameType.RESPONSE_END]);
    expect(decodeHello(frames[0]!.payload)).toEqual({ version: 1, role: 'gateway', credential: 's3cret' });
    expect(decodeAbort(frames[1]!.payload)).toEqual({ code: 995, reason: 'client went away' });
    expect(decodeResponseHead(frames[2]!.payload, frames[2]!.flags)).toEqual({ statusCode: 404, reason: 'Not Found', headers: [['A', 'b']], flags: 2 });
    expect(decodeResponseEnd(frames[3]!.payload, frames[3]!.flags)).toEqual({ hseStatus: 1, loggedStatus: 404, logData: 'ld', accounting, flags: EndFlags.CLOSE });
  });

  test('frames split at every possible byte boundary decode identically', () => {
    const stream = Buffer.concat([encodeRequest(1, info), encodeFrame(FrameType.REQUEST_BODY, 1, randomBytes(300)), encodeFrame(FrameType.REQUEST_END, 1)]);
    const whole = decodeAll([stream]);
    for (let cut = 1; cut < stream.length; cut++) {
      expect(decodeAll([stream.subarray(0, cut), stream.subarray(cut)])).toEqual(whole);
    }
    expect(decodeAll([...stream].map((b) => Buffer.from([b])))).toEqual(whole);
  });

  test('body payloads inside one chunk are views, not copies', () => {
    const chunk = encodeFrame(FrameType.RESPONSE_BODY, 1, Buffer.alloc(1000, 1));
    new FrameDecoder().push(chunk, (f) => expect(f.payload.buffer).toBe(chunk.buffer));
  });
});

describe('malformed input is a WireProtocolError with a code', () => {
  const header = (type: number, reserved: number, length: number): Buffer => {
    const b = Buffer.alloc(FRAME_HEADER_SIZE);
    b[0] = type;
    b.writeUInt16LE(reserved, 2);
    b.writeUInt32LE(length, 8);
    return b;
  };
  test.each([
    ['an unknown frame type', header(0x7f, 0, 0), 'ERR_WIRE_UNKNOWN_TYPE'],
    ['reserved bits set', header(FrameType.REQUEST_END, 1, 0), 'ERR_WIRE_RESERVED'],
    ['a payload over the limit', header(FrameType.REQUEST_BODY, 0, 2 * 1024 * 1024), 'ERR_WIRE_TOO_LARGE'],
  ])('%s', (_label, bytes, code) => {
    expect(() => decodeAll([bytes])).toThrow(expect.objectContaining({ code }));
  });

  test('a truncated or padded payload', () => {
    const payload = encodeRequest(1, info).subarray(FRAME_HEADER_SIZE);
    expect(() => decodeRequest(payload.subarray(0, payload.length - 3))).toThrow(expect.objectContaining({ code: 'ERR_WIRE_TRUNCATED' }));
    expect(() => decodeRequest(Buffer.concat([payload, Buffer.from([0])]))).toThrow(expect.objectContaining({ code: 'ERR_WIRE_TRAILING' }));
    expect(() => decodeHello(encodeHello({ version: 1, role: 'gateway', credential: '' }).subarray(FRAME_HEADER_SIZE, 14))).toThrow(WireProtocolError);
  });

  test('random and mutated frames never crash or hang the decoder (bounded fuzz)', () => {
    const seeds = [encodeRequest(1, info), encodeResponseHead(1, { statusCode: 200, reason: 'OK', headers: [['a', 'b']], flags: 0 })];
    const decoders = [decodeRequest, (p: Buffer) => decodeResponseHead(p, 0), decodeHello, decodeAbort, decodeResponseEnd];
    for (let i = 0; i < 3000; i++) {
      const base = Buffer.from(seeds[i % seeds.length]!);
      const input = i % 3 === 0 ? randomBytes(1 + (i % 200)) : base;
      for (let m = 0; m < 1 + (i % 5); m++) input[Math.floor(Math.random() * input.length)] = Math.floor(Math.random() * 256);
      try {
        decodeAll([input]);
      } catch (err) {
        expect(err).toBeInstanceOf(WireProtocolError);
      }
      for (const decode of decoders) {
        try {
          decode(input.subarray(FRAME_HEADER_SIZE));
        } catch (err) {
          expect(err).toBeInstanceOf(WireProtocolError);
        }
      }
    }
  });
});
