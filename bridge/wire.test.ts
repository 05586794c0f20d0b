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
  decodeResponseSpool,
  decodeSpoolFree,
  decodeSpoolOffer,
  encodeAbort,
  encodeFrame,
  encodeFrameHeader,
  encodeHello,
  encodeRequest,
  encodeResponseEnd,
  encodeResponseHead,
  encodeResponseSpool,
  encodeSpoolFree,
  encodeSpoolOffer,
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

const isBody = (type: number): boolean => type === FrameType.REQUEST_BODY || type === FrameType.RESPONSE_BODY;

/**
 * Decodes `bufs` and joins body pieces back into whole frames, checking the piece
 * contract on the way: only body frames come in pieces, the pieces of one frame
 * are consecutive with the same type, flags and stream id, and only the last one
 * has `partial: false`. Returns frames without the `partial` flag.
 */
function decodeAll(bufs: Buffer[], decoder = new FrameDecoder()): Frame[] {
  const frames: Frame[] = [];
  let open: { frame: Frame; parts: Buffer[] } | undefined;
  for (const b of bufs) {
    decoder.push(b, (f) => {
      // Plain checks, not expect(): this runs for every piece of thousands of splits.
      if (typeof f.partial !== 'boolean') throw new Error('frame without a partial flag');
      if (f.partial && !isBody(f.type)) throw new Error(`a 0x${f.type.toString(16)} frame came in pieces`);
      if (open) {
        if (f.type !== open.frame.type || f.flags !== open.frame.flags || f.streamId !== open.frame.streamId) {
          throw new Error('a piece does not continue the frame before it');
        }
        open.parts.push(Buffer.from(f.payload));
      } else {
        open = { frame: { type: f.type, flags: f.flags, streamId: f.streamId, payload: Buffer.alloc(0) }, parts: [Buffer.from(f.payload)] };
      }
      if (!f.partial) {
        frames.push({ ...open.frame, payload: Buffer.concat(open.parts) });
        open = undefined;
      }
    });
  }
  // A body frame still open at the end is incomplete input (the fuzz test feeds such), not a whole frame.
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

  test('SPOOL_OFFER, RESPONSE_SPOOL, SPOOL_FREE', () => {
    const offer = { pid: 4242, fd: 17, dev: '1', ino: '1027', size: 16 * 1024 * 1024 };
    const [o, piece, free] = decodeAll([encodeSpoolOffer(offer), encodeResponseSpool(5, { offset: 8454208, length: 65536 }), encodeSpoolFree([8454208, 64, 2 ** 33])]);
    expect([o!.type, o!.streamId]).toEqual([FrameType.SPOOL_OFFER, 0]);
    expect(decodeSpoolOffer(o!.payload)).toEqual(offer);
    expect([piece!.type, piece!.streamId, piece!.payload.length]).toEqual([FrameType.RESPONSE_SPOOL, 5, 12]);
    expect(decodeResponseSpool(piece!.payload, offer.size)).toEqual({ offset: 8454208, length: 65536 });
    expect([free!.type, decodeSpoolFree(free!.payload)]).toEqual([FrameType.SPOOL_FREE, [8454208, 64, 2 ** 33]]);
    expect(decodeSpoolFree(encodeSpoolFree([]).subarray(FRAME_HEADER_SIZE))).toEqual([]);
  });

  test('a SPOOL_FREE whose count does not match its offsets is refused', () => {
    const two = encodeSpoolFree([64, 128]).subarray(FRAME_HEADER_SIZE);
    expect(() => decodeSpoolFree(two.subarray(0, 12))).toThrow(expect.objectContaining({ code: 'ERR_WIRE_BAD_VALUE', message: expect.stringContaining('2 pieces has 8 bytes') }));
    expect(() => decodeSpoolFree(Buffer.concat([two, Buffer.alloc(8)]))).toThrow(expect.objectContaining({ code: 'ERR_WIRE_BAD_VALUE' }));
  });

  test('a RESPONSE_SPOOL outside the offered file, or an offer without a size, is refused', () => {
    const at = (offset: number, length: number): Buffer => encodeResponseSpool(1, { offset, length }).subarray(FRAME_HEADER_SIZE);
    expect(() => decodeResponseSpool(at(1000, 25), 1024)).toThrow(expect.objectContaining({ code: 'ERR_WIRE_BAD_VALUE', message: expect.stringContaining('1000+25') }));
    expect(() => decodeResponseSpool(at(-64, 10), 1024)).toThrow(expect.objectContaining({ code: 'ERR_WIRE_BAD_VALUE' }));
    expect(decodeResponseSpool(at(1000, 24), 1024)).toEqual({ offset: 1000, length: 24 });
    const empty = encodeSpoolOffer({ pid: 1, fd: 3, dev: '1', ino: '2', size: 0 }).subarray(FRAME_HEADER_SIZE);
    expect(() => decodeSpoolOffer(empty)).toThrow(expect.objectContaining({ code: 'ERR_WIRE_BAD_VALUE' }));
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
    const stream = Buffer.concat([
      encodeRequest(1, info),
      encodeFrame(FrameType.REQUEST_BODY, 1, randomBytes(300)),
      encodeFrame(FrameType.REQUEST_BODY, 1),
      encodeFrame(FrameType.REQUEST_END, 1),
      encodeResponseHead(1, { statusCode: 200, reason: 'OK', headers: [['A', 'b']], flags: 0 }),
      encodeFrame(FrameType.RESPONSE_BODY, 1, randomBytes(200), 0x5),
      encodeFrame(FrameType.RESPONSE_BODY, 1, randomBytes(1)),
      encodeResponseEnd(1, { hseStatus: 1, loggedStatus: 200, logData: '', accounting: emptyAccounting(), flags: 0 }),
    ]);
    const whole = decodeAll([stream]);
    expect(whole.map((f) => f.type)).toEqual([
      FrameType.REQUEST, FrameType.REQUEST_BODY, FrameType.REQUEST_BODY, FrameType.REQUEST_END,
      FrameType.RESPONSE_HEAD, FrameType.RESPONSE_BODY, FrameType.RESPONSE_BODY, FrameType.RESPONSE_END,
    ]);
    // Every frame's type, flags, stream id and payload bytes, as one string (quicker to compare thousands of times than toEqual).
    const sig = (frames: Frame[]): string => frames.map((f) => `${f.type}/${f.flags}/${f.streamId}/${f.payload.toString('hex')}`).join('|');
    const want = sig(whole);
    // ...and they are the bytes that were encoded.
    let at = 0;
    const encoded: Frame[] = [];
    while (at < stream.length) {
      const length = stream.readUInt32LE(at + 8);
      encoded.push({ type: stream[at] as Frame['type'], flags: stream[at + 1]!, streamId: stream.readUInt32LE(at + 4), payload: stream.subarray(at + FRAME_HEADER_SIZE, at + FRAME_HEADER_SIZE + length) });
      at += FRAME_HEADER_SIZE + length;
    }
    expect(want).toBe(sig(encoded));
    for (const wholeBodies of [false, true]) {
      const split = (parts: Buffer[]): string => sig(decodeAll(parts, new FrameDecoder({ wholeBodies })));
      expect(split([stream])).toBe(want);
      for (let cut = 1; cut < stream.length; cut++) {
        const got = split([stream.subarray(0, cut), stream.subarray(cut)]);
        if (got !== want) expect(`cut at ${cut}: ${got}`).toBe(`cut at ${cut}: ${want}`);
      }
      for (let a = 1; a < stream.length; a += 7) {
        for (let b = a + 1; b < stream.length; b += 13) {
          const got = split([stream.subarray(0, a), stream.subarray(a, b), stream.subarray(b)]);
          if (got !== want) expect(`cuts at ${a}, ${b}: ${got}`).toBe(`cuts at ${a}, ${b}: ${want}`);
        }
      }
      expect(split([...stream].map((b) => Buffer.from([b])))).toBe(want);
    }
  });

  test('body payloads inside one chunk are views, not copies', () => {
    const chunk = encodeFrame(FrameType.RESPONSE_BODY, 1, Buffer.alloc(1000, 1));
    new FrameDecoder().push(chunk, (f) => expect(f.payload.buffer).toBe(chunk.buffer));
  });

  test('a body frame that straddles reads comes out as pieces as it arrives, each a view of its chunk', () => {
    const body = randomBytes(65536);
    const bytes = Buffer.concat([encodeFrame(FrameType.RESPONSE_BODY, 9, body, 0x1), encodeFrame(FrameType.RESPONSE_END, 9)]);
    const chunks = [bytes.subarray(0, 65536), bytes.subarray(65536, 65540), bytes.subarray(65540)].map((c) => Buffer.from(c));
    const decoder = new FrameDecoder();
    const seen: Array<{ frame: Frame; chunk: number }> = [];
    chunks.forEach((c, i) => {
      decoder.push(c, (frame) => seen.push({ frame, chunk: i }));
      if (i < 2) expect(decoder.bufferedBytes).toBe(12 + (i === 0 ? 65536 - 12 : 65536 - 8));
    });
    expect(decoder.bufferedBytes).toBe(0);
    expect(seen.map((s) => [s.frame.type, s.frame.partial, s.frame.payload.length, s.chunk])).toEqual([
      [FrameType.RESPONSE_BODY, true, 65536 - 12, 0],
      [FrameType.RESPONSE_BODY, true, 4, 1],
      [FrameType.RESPONSE_BODY, false, 8, 2],
      [FrameType.RESPONSE_END, false, 0, 2],
    ]);
    seen.forEach((s) => expect(s.frame.payload.buffer).toBe(chunks[s.chunk]!.buffer));
    expect(seen.every((s) => s.frame.streamId === 9 && s.frame.flags === (s.frame.type === FrameType.RESPONSE_BODY ? 1 : 0))).toBe(true);
    expect(Buffer.concat(seen.slice(0, 3).map((s) => s.frame.payload))).toEqual(body);
  });

  test('non-body frames and wholeBodies decoders still deliver whole frames', () => {
    const request = encodeRequest(3, info);
    const frames: Frame[] = [];
    const d = new FrameDecoder();
    d.push(request.subarray(0, 40), (f) => frames.push(f));
    expect(frames).toHaveLength(0);
    expect(d.bufferedBytes).toBe(40);
    d.push(request.subarray(40), (f) => frames.push(f));
    expect(frames).toHaveLength(1);
    expect(frames[0]!.partial).toBe(false);
    const body = encodeFrame(FrameType.REQUEST_BODY, 3, Buffer.alloc(100, 7));
    const whole = new FrameDecoder({ wholeBodies: true });
    const out: Frame[] = [];
    whole.push(body.subarray(0, 50), (f) => out.push(f));
    expect(out).toHaveLength(0);
    whole.push(body.subarray(50), (f) => out.push(f));
    expect(out.map((f) => [f.partial, f.payload.length])).toEqual([[false, 100]]);
  });

  test('a body frame header is checked before any of its payload is passed on', () => {
    const big = Buffer.alloc(FRAME_HEADER_SIZE + 10);
    big[0] = FrameType.RESPONSE_BODY;
    big.writeUInt32LE(2 * 1024 * 1024, 8);
    const seen: Frame[] = [];
    expect(() => new FrameDecoder().push(big, (f) => seen.push(f))).toThrow(expect.objectContaining({ code: 'ERR_WIRE_TOO_LARGE' }));
    const small = Buffer.concat([encodeFrameHeader(FrameType.RESPONSE_BODY, 1, 100), Buffer.alloc(10)]);
    expect(() => new FrameDecoder({ maxPayload: 64 }).push(small, (f) => seen.push(f))).toThrow(expect.objectContaining({ code: 'ERR_WIRE_TOO_LARGE' }));
    expect(seen).toHaveLength(0);
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
