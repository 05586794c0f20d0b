import {
  DEFAULT_MAX_RAW_HEAD,
  RawHeadParser,
  ResponseHeadError,
  defaultResponseHead,
  fastHeaderBlock,
  parseSendResponseHeader,
  parseSendResponseHeaderEx,
  parseSendResponseHeaderFull,
  parseStatus,
  reasonPhrase,
  redirectHead,
  resolveStatus,
  type HeadParseResult,
  type ParsedHead,
  type RawHeadStep,
  type ResponseHeadErrorCode,
} from './response-head';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

function ok(result: HeadParseResult | RawHeadStep): ParsedHead {
  if (result.kind !== 'head') throw new Error(`expected a head, got ${result.kind}${result.kind === 'error' ? ': ' + result.error.message : ''}`);
  return result;
}

function errorCode(result: HeadParseResult | RawHeadStep): ResponseHeadErrorCode {
  if (result.kind !== 'error') throw new Error(`expected an error, got ${result.kind}`);
  expect(result.error).toBeInstanceOf(ResponseHeadError);
  expect(result.error).toBeInstanceOf(Error);
  return result.error.code;
}

describe('parseStatus', () => {
  it.each([
    ['200 OK', 200, 'OK'],
    ['404 Not Found', 404, 'Not Found'],
    ['404', 404, ''],
    ['  302   Moved  Temporarily \r\n', 302, 'Moved  Temporarily'],
    ['HTTP/1.1 200 OK', 200, 'OK'],
    ['http/1.0 401 Access Denied', 401, 'Access Denied'],
    ['HTTP/2 204', 204, ''],
    ['999 Custom', 999, 'Custom'],
    ['100 Continue', 100, 'Continue'],
    ['200\tTabbed', 200, 'Tabbed'],
    ['200 caf\xe9', 200, 'caf\xe9'],
  ])('parses %j', (text, code, reason) => {
    expect(parseStatus(text)).toEqual({ code, reason });
    expect(parseStatus(b(text))).toEqual({ code, reason });
  });

  it.each(['', 'OK', 'abc', '20 OK', '2000 OK', '099 Low', '200OK', '-200 OK', 'HTTP/1.1', '200 bad\x01reason', '200 split\r\nX: y'])(
    'refuses %j',
    (text) => {
      const result = parseStatus(text);
      expect(result).toBeInstanceOf(ResponseHeadError);
      expect((result as ResponseHeadError).code).toBe('ERR_ISAPI_INVALID_STATUS');
    },
  );
});

describe('reasonPhrase', () => {
  it('gives standard phrases, IIS\'s "Object Moved" for 302, "" for unknown codes', () => {
    expect(reasonPhrase(200)).toBe('OK');
    expect(reasonPhrase(404)).toBe('Not Found');
    expect(reasonPhrase(302)).toBe('Object Moved');
    expect(reasonPhrase(799)).toBe('');
  });
});

describe('resolveStatus', () => {
  it('lets an explicit status win over dwHttpStatusCode', () => {
    expect(resolveStatus({ code: 404, reason: 'Gone Fishing' }, 299)).toEqual({ statusCode: 404, reason: 'Gone Fishing', statusSource: 'explicit' });
  });

  it('fills the standard reason for an explicit status without one', () => {
    expect(resolveStatus({ code: 404, reason: '' }, 200)).toEqual({ statusCode: 404, reason: 'Not Found', statusSource: 'explicit' });
  });

  it('uses dwHttpStatusCode without an explicit status', () => {
    expect(resolveStatus(undefined, 418)).toEqual({ statusCode: 418, reason: "I'm a Teapot", statusSource: 'ecb' });
    expect(resolveStatus(undefined, 200)).toEqual({ statusCode: 200, reason: 'OK', statusSource: 'default' });
  });

  it.each([0, 99, 1000, -1, 200.5, Number.NaN])('falls back to 200 OK for a dwHttpStatusCode of %p', (code) => {
    expect(resolveStatus(undefined, code)).toEqual({ statusCode: 200, reason: 'OK', statusSource: 'default' });
  });

  it('builds the default head of a response without one', () => {
    expect(defaultResponseHead()).toEqual({ statusCode: 200, reason: 'OK', statusSource: 'default', headers: [], chunked: false });
    expect(defaultResponseHead(503).statusCode).toBe(503);
  });
});

describe('parseSendResponseHeader (HSE_REQ_SEND_RESPONSE_HEADER)', () => {
  it('parses a status and a header block', () => {
    const parsed = ok(parseSendResponseHeader('200 OK', 'Content-Type: text/html\r\nX-A: 1\r\n\r\n'));
    expect(parsed.head).toEqual({
      statusCode: 200,
      reason: 'OK',
      statusSource: 'explicit',
      headers: [
        ['Content-Type', 'text/html'],
        ['X-A', '1'],
      ],
      chunked: false,
    });
    expect(parsed.body.length).toBe(0);
    expect(parsed.head.keepConn).toBeUndefined();
  });

  it('takes a NULL or empty status as 200 OK, whatever dwHttpStatusCode says (IIS)', () => {
    expect(ok(parseSendResponseHeader(null, 'Content-Type: text/plain\r\n\r\n')).head).toMatchObject({ statusCode: 200, reason: 'OK' });
    expect(ok(parseSendResponseHeader(null, null, 418)).head).toMatchObject({ statusCode: 200, reason: 'OK', statusSource: 'explicit' });
    expect(ok(parseSendResponseHeader('', null, 404)).head.statusCode).toBe(200);
  });

  it('takes a NULL or empty status as dwHttpStatusCode with the mod_isapi rule', () => {
    expect(ok(parseSendResponseHeader(null, null, 418, undefined, 'ecb')).head).toMatchObject({ statusCode: 418, statusSource: 'ecb' });
    expect(ok(parseSendResponseHeader('', null, 404, undefined, 'ecb')).head).toMatchObject({ statusCode: 404, reason: 'Not Found' });
    expect(ok(parseSendResponseHeader(null, null, 200, undefined, 'ecb')).head).toMatchObject({ statusCode: 200, statusSource: 'default' });
    expect(ok(parseSendResponseHeader('201 Made', null, 404, undefined, 'ecb')).head).toMatchObject({ statusCode: 201, reason: 'Made' });
  });

  it('ignores dwHttpStatusCode when the status string is given', () => {
    expect(ok(parseSendResponseHeader('404 Not Found', null, 299)).head).toMatchObject({ statusCode: 404, reason: 'Not Found' });
  });

  it('accepts a NULL header block and an empty one', () => {
    expect(ok(parseSendResponseHeader('200 OK', null)).head.headers).toEqual([]);
    expect(ok(parseSendResponseHeader('200 OK', '')).head.headers).toEqual([]);
    expect(ok(parseSendResponseHeader('200 OK', '\r\n')).body.length).toBe(0);
  });

  it('treats what follows the first blank line as body, even a second blank line', () => {
    expect(ok(parseSendResponseHeader('200 OK', '\r\n\r\n')).body).toEqual(b('\r\n'));
    const parsed = ok(parseSendResponseHeader('200 OK', 'Content-Type: text/plain\r\n\r\nhello\r\n\r\nworld'));
    expect(parsed.head.headers).toEqual([['Content-Type', 'text/plain']]);
    expect(parsed.body).toEqual(b('hello\r\n\r\nworld'));
  });

  it('accepts a block without the final blank line (no body then)', () => {
    const parsed = ok(parseSendResponseHeader('200 OK', 'Content-Type: text/plain\r\nX-Last: yes'));
    expect(parsed.head.headers).toEqual([
      ['Content-Type', 'text/plain'],
      ['X-Last', 'yes'],
    ]);
    expect(parsed.body.length).toBe(0);
    expect(ok(parseSendResponseHeader('200 OK', 'X-One: 1\r\n')).head.headers).toEqual([['X-One', '1']]);
    expect(ok(parseSendResponseHeader('200 OK', 'X-One: 1\r')).head.headers).toEqual([['X-One', '1']]);
  });

  it('accepts LF-only and mixed line ends', () => {
    const parsed = ok(parseSendResponseHeader('200 OK', 'A: 1\nB: 2\r\n\nbody'));
    expect(parsed.head.headers).toEqual([
      ['A', '1'],
      ['B', '2'],
    ]);
    expect(parsed.body).toEqual(b('body'));
  });

  it('trims optional whitespace, removes it before the colon, and unfolds obs-fold lines', () => {
    const parsed = ok(parseSendResponseHeader('200 OK', 'X-Pad :   v  \r\nX-Fold: first\r\n   second\r\n\tthird\r\nX-Empty:\r\n\r\n'));
    expect(parsed.head.headers).toEqual([
      ['X-Pad', 'v'],
      ['X-Fold', 'first second third'],
      ['X-Empty', ''],
    ]);
  });

  it('keeps header bytes as latin1 and the body binary-safe', () => {
    const header = Buffer.concat([b('X-Name: caf\xe9\r\n\r\n'), Buffer.from([0x00, 0xff, 0x80])]);
    const parsed = ok(parseSendResponseHeader(b('200 OK'), header));
    expect(parsed.head.headers).toEqual([['X-Name', 'caf\xe9']]);
    expect(parsed.body).toEqual(Buffer.from([0x00, 0xff, 0x80]));
  });

  it('drops a Status: line: the status argument decides', () => {
    const parsed = ok(parseSendResponseHeader('201 Created', 'status: 500 Oops\r\nX-A: 1\r\n\r\n'));
    expect(parsed.head.statusCode).toBe(201);
    expect(parsed.head.headers).toEqual([['X-A', '1']]);
  });

  it('takes "HTTP/1.1 200 OK" as a status string', () => {
    expect(ok(parseSendResponseHeader('HTTP/1.1 403 Forbidden', null)).head).toMatchObject({ statusCode: 403, reason: 'Forbidden' });
  });

  it.each([
    ['abc', null, 'ERR_ISAPI_INVALID_STATUS'],
    ['1000 Big', null, 'ERR_ISAPI_INVALID_STATUS'],
    ['200 OK', 'no colon here\r\n\r\n', 'ERR_ISAPI_INVALID_HEADER'],
    ['200 OK', 'Bad Name: x\r\n\r\n', 'ERR_ISAPI_INVALID_HEADER'],
    ['200 OK', ': empty name\r\n\r\n', 'ERR_ISAPI_INVALID_HEADER'],
    ['200 OK', ' X-Leading: continuation first\r\n\r\n', 'ERR_ISAPI_INVALID_HEADER'],
    ['200 OK', 'X-A: split\rX-B: smuggled\r\n\r\n', 'ERR_ISAPI_INVALID_HEADER'],
    ['200 OK', 'X-A: nul\0here\r\n\r\n', 'ERR_ISAPI_INVALID_HEADER'],
    ['200 OK', 'X-A: del\x7f\r\n\r\n', 'ERR_ISAPI_INVALID_HEADER'],
    ['200 OK', 'HTTP/1.1 200 OK\r\n\r\n', 'ERR_ISAPI_INVALID_HEADER'],
    ['200 OK', 'X-Unterminated-Name', 'ERR_ISAPI_INVALID_HEADER'],
    ['200 OK', 'X-Ows   \r\n\r\n', 'ERR_ISAPI_INVALID_HEADER'],
    ['200 OK', 'X-Ows  y: v\r\n\r\n', 'ERR_ISAPI_INVALID_HEADER'],
  ] as const)('refuses status %j with header %j (%s)', (status, header, code) => {
    expect(errorCode(parseSendResponseHeader(status, header))).toBe(code);
  });

  it('never throws on arbitrary bytes', () => {
    for (let seed = 0; seed < 500; seed++) {
      const bytes = Buffer.alloc(40);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (seed * 131 + i * 17 + ((seed * i) % 13)) & 0xff;
      expect(() => parseSendResponseHeader(bytes.subarray(0, seed % 8), bytes)).not.toThrow();
      const kind = parseSendResponseHeader(null, bytes).kind;
      expect(['head', 'error']).toContain(kind);
    }
  });
});

describe('parseSendResponseHeaderEx (HSE_REQ_SEND_RESPONSE_HEADER_EX)', () => {
  it('carries fKeepConn', () => {
    const parsed = ok(parseSendResponseHeaderEx({ pszStatus: '200 OK', pszHeader: 'Content-Length: 5\r\n\r\n', fKeepConn: true }));
    expect(parsed.head).toMatchObject({ statusCode: 200, keepConn: true, contentLength: 5 });
    expect(ok(parseSendResponseHeaderEx({ pszStatus: null, pszHeader: null, fKeepConn: false }, 204)).head).toMatchObject({
      statusCode: 200,
      keepConn: false,
    });
    expect(ok(parseSendResponseHeaderEx({ pszStatus: null, pszHeader: null, fKeepConn: false }, 204, 'ecb')).head.statusCode).toBe(204);
    expect(ok(parseSendResponseHeader('200 OK', null, 200, false)).head.keepConn).toBe(false);
  });

  it('reports errors the same way', () => {
    expect(errorCode(parseSendResponseHeaderEx({ pszStatus: 'x', pszHeader: null, fKeepConn: true }))).toBe('ERR_ISAPI_INVALID_STATUS');
  });
});

describe('parseSendResponseHeader fast path', () => {
  /** Small deterministic PRNG (mulberry32), so a failure reproduces. */
  function rng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const NAMES = ['Content-Type', 'X-A', 'Set-Cookie', 'Status', 'status', 'Content-Length', 'content-length', 'CONTENT-LENGTH',
    'Transfer-Encoding', 'transfer-encoding', 'Cache-Control', 'Statux', 'Content-Lengthx', 'X_y', "!#$%&'*+-.^_`|~", 'a', 'Location'];
  const BAD_NAMES = ['', 'X A', 'X\tA', 'X@A', 'X\u0100', 'Ü', ' X', '\tX', 'X\r', 'X\n'];
  const VALUES = ['text/html', '1', '', ' 42 ', '42', '5, 5', '5, 6', 'x', 'chunked', 'gzip, chunked', 'gzip', 'chunked, chunked',
    '200 OK', '404', 'bad', 'caf\u00e9 \u00ff', '\ta\t', 'a: b', '/x?y=1&z', '-1', '1e3', 'a  b'];
  const BAD_VALUE_BITS = ['\r', '\n', '\0', '\x7f', '\x01', '\u0100', '\r\n ', '\x1b'];
  const STATUSES: Array<string | null> = [null, '', '200 OK', '404', '201 Made', 'HTTP/1.1 302', 'bad', '200 \x01', '099', ' 500 Oops\r\n'];

  function line(r: () => number): string {
    const roll = r();
    const name = roll < 0.04 ? pick(r, BAD_NAMES) : pick(r, NAMES);
    let value = pick(r, VALUES);
    if (r() < 0.05) {
      const at = Math.floor(r() * (value.length + 1));
      value = value.slice(0, at) + pick(r, BAD_VALUE_BITS) + value.slice(at);
    }
    const sep = r() < 0.9 ? ': ' : pick(r, [':', ' : ', '\t:', ':\t', ':  ']);
    return name + sep + value + (r() < 0.02 ? ' ' : '');
  }

  function block(r: () => number): string | null {
    const roll = r();
    if (roll < 0.03) return null;
    if (roll < 0.06) return '';
    const n = Math.floor(r() * 6);
    const eol = () => (r() < 0.95 ? '\r\n' : pick(r, ['\n', '\r', '\r\r\n']));
    let text = '';
    for (let i = 0; i < n; i++) {
      text += line(r) + eol();
      if (r() < 0.03) text += pick(r, [' folded', '\tmore']) + eol(); // obs-fold
    }
    const end = r();
    if (end < 0.85) text += '\r\n';
    else if (end < 0.9) text += '\n';
    // else: no blank line at all
    if (r() < 0.2) text += pick(r, ['hello', '\r\n', 'body\r\n\r\nmore', '\u00ff\u00fe', 'x\u0100y']);
    return text;
  }

  it('returns exactly what the full parser returns, over many generated header blocks (strings and Buffers)', () => {
    const r = rng(20261124);
    let fast = 0;
    let total = 0;
    for (let i = 0; i < 6000; i++) {
      const header = block(r);
      const status = pick(r, STATUSES);
      const ecb = pick(r, [200, 404, 0, 1000]);
      const keepConn = pick(r, [undefined, true, false]);
      const nullStatus = pick(r, ['ok', 'ecb'] as const);
      const forms: Array<string | Buffer | null> = header === null ? [null] : [header, Buffer.from(header, 'latin1')];
      for (const h of forms) {
        total++;
        if (fastHeaderBlock(h)) fast++;
        const got = parseSendResponseHeader(status, h, ecb, keepConn, nullStatus);
        const want = parseSendResponseHeaderFull(status, h, ecb, keepConn, nullStatus);
        try {
          expect(got).toEqual(want);
          if (got.kind === 'head' && want.kind === 'head') {
            expect(Object.keys(got.head)).toEqual(Object.keys(want.head));
            expect(Buffer.isBuffer(got.body)).toBe(true);
          } else if (got.kind === 'error' && want.kind === 'error') {
            expect(got.error.code).toBe(want.error.code);
            expect(got.error.message).toBe(want.error.message);
          }
        } catch (err) {
          throw new Error(`mismatch for status ${JSON.stringify(status)} header ${JSON.stringify(h === null ? null : h.toString())} (${typeof h}): ${(err as Error).message}`);
        }
      }
    }
    // The generator must exercise both paths substantially.
    process.env.DEBUG_FASTPATH && console.log(`fast path ${fast} of ${total}`);
    expect(fast / total).toBeGreaterThan(0.3);
    expect(fast / total).toBeLessThan(0.9);
  });

  it('takes the fast path for the common shapes and falls back for the rest', () => {
    expect(fastHeaderBlock('Content-Type: text/html\r\nX-A: 1\r\n\r\n')).toBeDefined();
    expect(fastHeaderBlock('Content-Length: 5\r\n\r\nhello')).toMatchObject({ framing: false, contentLength: 5, body: b('hello') });
    expect(fastHeaderBlock('Content-Length: 05\r\n\r\n')).toMatchObject({ framing: true }); // analyseHeaders normalises it
    expect(fastHeaderBlock('Transfer-Encoding: chunked\r\n\r\n')).toMatchObject({ framing: true });
    expect(fastHeaderBlock(null)).toBeDefined();
    expect(fastHeaderBlock('A: b\r\n')).toBeUndefined(); // no blank line
    expect(fastHeaderBlock('A: b\n\n')).toBeUndefined(); // bare LF
    expect(fastHeaderBlock('A: b\r\n c\r\n\r\n')).toBeUndefined(); // obs-fold
    expect(fastHeaderBlock('A : b\r\n\r\n')).toBeUndefined(); // whitespace before the colon
    expect(fastHeaderBlock('A: b\x01\r\n\r\n')).toBeUndefined(); // control character
  });
});

describe('framing headers', () => {
  const head = (header: string) => parseSendResponseHeader('200 OK', header);

  it('exposes Content-Length', () => {
    const parsed = ok(head('Content-Type: text/plain\r\nContent-Length: 42\r\n\r\n'));
    expect(parsed.head.contentLength).toBe(42);
    expect(parsed.head.chunked).toBe(false);
    expect(parsed.head.headers).toContainEqual(['Content-Length', '42']);
    expect(ok(head('content-length: 0\r\n\r\n')).head.contentLength).toBe(0);
  });

  it('collapses identical Content-Lengths into one line', () => {
    const parsed = ok(head('Content-Length: 7\r\nX: y\r\ncontent-length:  7 \r\n\r\n'));
    expect(parsed.head.contentLength).toBe(7);
    expect(parsed.head.headers).toEqual([
      ['Content-Length', '7'],
      ['X', 'y'],
    ]);
    const list = ok(head('Content-Length: 7, 7\r\n\r\n'));
    expect(list.head.headers).toEqual([['Content-Length', '7']]);
    expect(ok(head('Content-Length: 007\r\n\r\n')).head.headers).toEqual([['Content-Length', '7']]);
  });

  it.each(['Content-Length: 5\r\nContent-Length: 6\r\n\r\n', 'Content-Length: 5, 6\r\n\r\n', 'Content-Length: -1\r\n\r\n', 'Content-Length: 1e3\r\n\r\n', 'Content-Length:\r\n\r\n', 'Content-Length: 99999999999999999999\r\n\r\n', 'Content-Length: 5,\r\n\r\n'])(
    'refuses %j',
    (header) => {
      expect(errorCode(head(header))).toBe('ERR_ISAPI_INVALID_CONTENT_LENGTH');
    },
  );

  it('detects an extension-supplied Transfer-Encoding: chunked', () => {
    const parsed = ok(head('Transfer-Encoding: chunked\r\n\r\n'));
    expect(parsed.head.chunked).toBe(true);
    expect(parsed.head.contentLength).toBeUndefined();
    expect(parsed.head.headers).toEqual([['Transfer-Encoding', 'chunked']]);
    expect(ok(head('Transfer-Encoding: gzip, Chunked\r\n\r\n')).head.chunked).toBe(true);
    expect(ok(head('Transfer-Encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n')).head.chunked).toBe(true);
  });

  it.each(['Transfer-Encoding: gzip\r\n\r\n', 'Transfer-Encoding: chunked, gzip\r\n\r\n', 'Transfer-Encoding: chunked, chunked\r\n\r\n', 'Transfer-Encoding:\r\n\r\n'])(
    'refuses %j',
    (header) => {
      expect(errorCode(head(header))).toBe('ERR_ISAPI_UNSUPPORTED_TRANSFER_ENCODING');
    },
  );

  it('refuses Transfer-Encoding together with Content-Length', () => {
    expect(errorCode(head('Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n'))).toBe('ERR_ISAPI_CONFLICTING_FRAMING');
  });
});

describe('redirectHead (HSE_REQ_SEND_URL_REDIRECT_RESP)', () => {
  it('answers 302 Object Moved with Location and a small HTML body', () => {
    const parsed = redirectHead('/elsewhere?a=1&b=2');
    expect(parsed.head.statusCode).toBe(302);
    expect(parsed.head.reason).toBe('Object Moved');
    expect(parsed.head.headers[0]).toEqual(['Location', '/elsewhere?a=1&b=2']);
    expect(parsed.head.contentLength).toBe(parsed.body.length);
    expect(parsed.head.headers).toContainEqual(['Content-Length', String(parsed.body.length)]);
    expect(parsed.body.toString('latin1')).toContain('<a HREF="/elsewhere?a=1&#38;b=2">here</a>');
  });

  it('cannot be used to split the response', () => {
    const parsed = redirectHead('/x\r\nSet-Cookie: evil=1\0');
    expect(parsed.head.headers[0]).toEqual(['Location', '/x%0D%0ASet-Cookie: evil=1%00']);
    expect(parsed.body.toString('latin1')).not.toMatch(/[\r\0]/);
  });
});

describe('RawHeadParser', () => {
  const response = 'HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nX-Raw: yes\r\n\r\nraw body\n';

  it('recognises a status-line head in one write', () => {
    const step = ok(new RawHeadParser().push(b(response)));
    expect(step.head).toEqual({
      statusCode: 201,
      reason: 'Created',
      statusSource: 'explicit',
      headers: [
        ['Content-Type', 'text/plain'],
        ['X-Raw', 'yes'],
      ],
      chunked: false,
    });
    expect(step.body).toEqual(b('raw body\n'));
  });

  it('recognises a CGI-style head with Status:, in any case', () => {
    const step = ok(new RawHeadParser().push(b('status: 202 Accepted\r\nContent-Type: text/plain\r\n\r\naccepted\n')));
    expect(step.head).toMatchObject({ statusCode: 202, reason: 'Accepted', statusSource: 'explicit' });
    expect(step.head.headers).toEqual([['Content-Type', 'text/plain']]);
    expect(step.body).toEqual(b('accepted\n'));
  });

  it('uses dwHttpStatusCode for a head without a status', () => {
    const step = ok(new RawHeadParser().push(b('Content-Type: text/plain\r\n\r\nx'), 404));
    expect(step.head).toMatchObject({ statusCode: 404, reason: 'Not Found', statusSource: 'ecb' });
    expect(ok(new RawHeadParser().push(b('Content-Type: text/plain\r\n\r\n'))).head.statusCode).toBe(200);
  });

  it('lets the status line win over a Status: line, which is dropped', () => {
    const step = ok(new RawHeadParser().push(b('HTTP/1.0 200 OK\r\nStatus: 500 No\r\nX: 1\r\n\r\n')));
    expect(step.head.statusCode).toBe(200);
    expect(step.head.headers).toEqual([['X', '1']]);
  });

  it('accepts a status line with no headers and LF-only line ends', () => {
    const step = ok(new RawHeadParser().push(b('HTTP/1.1 204 No Content\n\n')));
    expect(step.head).toMatchObject({ statusCode: 204, headers: [] });
    expect(step.body.length).toBe(0);
    expect(ok(new RawHeadParser().push(b('HTTP/1.1 200\r\n\r\n'))).head.reason).toBe('OK');
  });

  it('passes the extension\'s own chunked framing through', () => {
    const parser = new RawHeadParser();
    const step = ok(parser.push(b('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n')));
    expect(step.head.chunked).toBe(true);
    expect(parser.push(b('5\r\nhello\r\n'))).toEqual({ kind: 'passthrough', body: b('5\r\nhello\r\n') });
  });

  describe('split across writes', () => {
    it('waits for the rest of a head cut in the middle of a header line', () => {
      const parser = new RawHeadParser();
      const cut = response.indexOf('text/plain') + 4;
      const end = response.indexOf('\r\n\r\n') + 4;
      expect(parser.push(b(response.slice(0, cut)))).toEqual({ kind: 'need-more' });
      expect(parser.done).toBe(false);
      const step = ok(parser.push(b(response.slice(cut, end))));
      expect(step.head.headers).toEqual([
        ['Content-Type', 'text/plain'],
        ['X-Raw', 'yes'],
      ]);
      expect(step.body.length).toBe(0);
      expect(parser.done).toBe(true);
      expect(parser.push(b(response.slice(end)))).toEqual({ kind: 'passthrough', body: b('raw body\n') });
    });

    it('gives the same result at every split point, one byte at a time too', () => {
      for (let at = 1; at < response.length; at++) {
        const parser = new RawHeadParser();
        const first = parser.push(b(response.slice(0, at)));
        const step = first.kind === 'need-more' ? parser.push(b(response.slice(at))) : first;
        const parsed = ok(step);
        expect(parsed.head.statusCode).toBe(201);
        // Body bytes before the head completed come back with it; the rest is the caller's.
        const rest = first.kind === 'need-more' ? '' : response.slice(at);
        expect(parsed.body.toString('latin1') + rest).toBe('raw body\n');
      }
      const parser = new RawHeadParser();
      let last: RawHeadStep = { kind: 'need-more' };
      for (const byte of b(response)) {
        last = parser.push(Buffer.from([byte]));
        if (last.kind !== 'need-more') break;
      }
      expect(ok(last).head.statusCode).toBe(201);
    });

    it('handles a CRLF split between writes', () => {
      const parser = new RawHeadParser();
      expect(parser.push(b('X-A: 1\r'))).toEqual({ kind: 'need-more' });
      expect(parser.push(b('\n\r'))).toEqual({ kind: 'need-more' });
      const step = ok(parser.push(b('\nbody')));
      expect(step.head.headers).toEqual([['X-A', '1']]);
      expect(step.body).toEqual(b('body'));
    });

    it('ignores empty writes while waiting', () => {
      const parser = new RawHeadParser();
      expect(parser.push(Buffer.alloc(0))).toEqual({ kind: 'need-more' });
      expect(parser.push(b('HTTP/1.1 200 OK\r\n'))).toEqual({ kind: 'need-more' });
      expect(parser.push(Buffer.alloc(0))).toEqual({ kind: 'need-more' });
      expect(ok(parser.push(b('\r\n'))).head.statusCode).toBe(200);
    });

    it('reads dwHttpStatusCode at the write that completes the head', () => {
      const parser = new RawHeadParser();
      expect(parser.push(b('Content-Type: text/plain\r\n'), 200).kind).toBe('need-more');
      expect(ok(parser.push(b('\r\n'), 410)).head.statusCode).toBe(410);
    });
  });

  describe('output that is not a head', () => {
    it.each([
      ['<html><body>hi</body></html>'],
      ['just a body\n'],
      ['Hello world: this is text\n'],
      ['Note: first line looks like a header\nbut this one does not\n\n'],
      ['\r\nstarts with a blank line'],
      ['\nX-A: 1\n\n'],
      ['HTTP/2 is great\n'],
      ['HTTP/1.1.1 nope\n'],
      ['HTTP/x 200 OK\n'],
      ['%PDF-1.4\n%\xe2\xe3\xcf\xd3\n'],
      ['\x89PNG\r\n\x1a\n'],
      ['X-A: 1\rbare CR'],
      ['X-A: bad\x01value\r\n\r\n'],
      [' leading space\r\n'],
    ])('sends %j as body at once', (text) => {
      const step = new RawHeadParser().push(b(text));
      expect(step).toEqual({ kind: 'not-a-head', body: b(text) });
    });

    it('holds back a well-formed header line until the head ends or proves not to be one', () => {
      const parser = new RawHeadParser();
      expect(parser.push(b('HTTPS: looks like a header\n'))).toEqual({ kind: 'need-more' });
      expect(parser.push(b('and then text\n'))).toEqual({ kind: 'not-a-head', body: b('HTTPS: looks like a header\nand then text\n') });
    });

    it('returns everything held back with the write that decides', () => {
      const parser = new RawHeadParser();
      expect(parser.push(b('Loading'))).toEqual({ kind: 'need-more' });
      expect(parser.push(b('...'))).toEqual({ kind: 'need-more' });
      expect(parser.push(b(' 10%\n'))).toEqual({ kind: 'not-a-head', body: b('Loading... 10%\n') });
      expect(parser.done).toBe(true);
      expect(parser.push(b('more'))).toEqual({ kind: 'passthrough', body: b('more') });
    });
  });

  describe('errors', () => {
    it('refuses a status line with a bad status as soon as the line ends', () => {
      expect(errorCode(new RawHeadParser().push(b('HTTP/1.1 abc\r\n')))).toBe('ERR_ISAPI_INVALID_STATUS');
      expect(errorCode(new RawHeadParser().push(b('HTTP/1.1\r\n')))).toBe('ERR_ISAPI_INVALID_STATUS');
      expect(errorCode(new RawHeadParser().push(b('HTTP/1.1 1000 Big\r\n\r\n')))).toBe('ERR_ISAPI_INVALID_STATUS');
    });

    it('refuses a bad Status: line', () => {
      expect(errorCode(new RawHeadParser().push(b('Status: nope\r\n\r\n')))).toBe('ERR_ISAPI_INVALID_STATUS');
      expect(errorCode(new RawHeadParser().push(b('Status: 200 OK\r\nStatus: 404 No\r\n\r\n')))).toBe('ERR_ISAPI_INVALID_STATUS');
      expect(ok(new RawHeadParser().push(b('Status: 200 OK\r\nStatus: 200 Same\r\n\r\n'))).head.reason).toBe('OK');
    });

    it('refuses a broken line once a status line committed the output to being a head', () => {
      expect(errorCode(new RawHeadParser().push(b('HTTP/1.1 200 OK\r\nno colon\r\n\r\n')))).toBe('ERR_ISAPI_INVALID_HEADER');
      expect(errorCode(new RawHeadParser().push(b('HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n')))).toBe('ERR_ISAPI_INVALID_HEADER');
    });

    it('refuses bad framing in a raw head', () => {
      expect(errorCode(new RawHeadParser().push(b('X-A: 1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n')))).toBe(
        'ERR_ISAPI_INVALID_CONTENT_LENGTH',
      );
      expect(errorCode(new RawHeadParser().push(b('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n')))).toBe(
        'ERR_ISAPI_CONFLICTING_FRAMING',
      );
    });

    it('stops after an error', () => {
      const parser = new RawHeadParser();
      expect(parser.push(b('HTTP/1.1 x\r\n')).kind).toBe('error');
      expect(parser.done).toBe(true);
      expect(parser.flush()).toBeUndefined();
    });
  });

  describe('the cap', () => {
    it('defaults to 64 KiB', () => {
      expect(DEFAULT_MAX_RAW_HEAD).toBe(65536);
    });

    it('accepts a head that ends exactly at the cap, body beyond it', () => {
      const head = 'X-A: ' + 'a'.repeat(100 - 5 - 4) + '\r\n\r\n';
      expect(head.length).toBe(100);
      const step = ok(new RawHeadParser(100).push(b(head + 'body after the cap')));
      expect(step.body).toEqual(b('body after the cap'));
    });

    it('refuses a head that has not ended by the cap', () => {
      const parser = new RawHeadParser(100);
      expect(parser.push(b('X-A: 1\r\n'))).toEqual({ kind: 'need-more' });
      expect(errorCode(parser.push(b('X-B: ' + 'b'.repeat(200))))).toBe('ERR_ISAPI_HEAD_TOO_LARGE');
      const statusLine = new RawHeadParser(100);
      expect(errorCode(statusLine.push(b('HTTP/1.1 200 OK\r\nX: ' + 'x'.repeat(100))))).toBe('ERR_ISAPI_HEAD_TOO_LARGE');
    });

    it('treats a first line that alone exceeds the cap as body', () => {
      const text = 'a'.repeat(150);
      expect(new RawHeadParser(100).push(b(text))).toEqual({ kind: 'not-a-head', body: b(text) });
      const parser = new RawHeadParser(100);
      expect(parser.push(b('x'.repeat(60)))).toEqual({ kind: 'need-more' });
      expect(parser.push(b('y'.repeat(60)))).toEqual({ kind: 'not-a-head', body: b('x'.repeat(60) + 'y'.repeat(60)) });
    });

    it('works at the default size', () => {
      const big = 'X-A: 1\r\nX-Big: ' + 'v'.repeat(DEFAULT_MAX_RAW_HEAD) + '\r\n\r\n';
      expect(errorCode(new RawHeadParser().push(b(big)))).toBe('ERR_ISAPI_HEAD_TOO_LARGE');
      const longFirst = 'X-Big: ' + 'v'.repeat(DEFAULT_MAX_RAW_HEAD) + '\r\n\r\n';
      expect(new RawHeadParser().push(b(longFirst)).kind).toBe('not-a-head');
      const fine = 'X-Big: ' + 'v'.repeat(60000) + '\r\n\r\nbody';
      expect(ok(new RawHeadParser().push(b(fine))).body).toEqual(b('body'));
    });
  });

  describe('finish and flush', () => {
    it('finishes with an empty body when nothing was written', () => {
      expect(new RawHeadParser().finish()).toEqual({ kind: 'not-a-head', body: Buffer.alloc(0) });
      expect(new RawHeadParser().flush()).toBeUndefined();
    });

    it('completes a status-line head whose blank line never came', () => {
      const parser = new RawHeadParser();
      expect(parser.push(b('HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n'))).toEqual({ kind: 'need-more' });
      const step = ok(parser.finish());
      expect(step.head).toMatchObject({ statusCode: 304, headers: [['ETag', '"x"']] });
      expect(step.body.length).toBe(0);
      expect(parser.done).toBe(true);
    });

    it('completes a status-line head whose last line has no line end', () => {
      const parser = new RawHeadParser();
      parser.push(b('HTTP/1.1 200 OK\r\nX-Last: v'));
      expect(ok(parser.finish()).head.headers).toEqual([['X-Last', 'v']]);
      const bareStatus = new RawHeadParser();
      bareStatus.push(b('HTTP/1.1 204'));
      expect(ok(bareStatus.finish()).head.statusCode).toBe(204);
    });

    it('refuses at finish a status line that turns out bad', () => {
      const parser = new RawHeadParser();
      parser.push(b('HTTP/1.1 200 OK\r\nX'));
      expect(errorCode(parser.finish())).toBe('ERR_ISAPI_INVALID_HEADER');
      const badStatus = new RawHeadParser();
      badStatus.push(b('HTTP/1.1 2x'));
      expect(errorCode(badStatus.finish())).toBe('ERR_ISAPI_INVALID_STATUS');
    });

    it('gives back as body a first line that turns out not to be a status line', () => {
      const parser = new RawHeadParser();
      expect(parser.push(b('HTTP/2 is'))).toEqual({ kind: 'need-more' });
      expect(parser.finish()).toEqual({ kind: 'not-a-head', body: b('HTTP/2 is') });
    });

    it('gives held-back header-style text back as body', () => {
      const parser = new RawHeadParser();
      expect(parser.push(b('Content-Type: text/plain\r\n'))).toEqual({ kind: 'need-more' });
      expect(parser.finish()).toEqual({ kind: 'not-a-head', body: b('Content-Type: text/plain\r\n') });
      const word = new RawHeadParser();
      word.push(b('OK'));
      expect(word.finish(500)).toEqual({ kind: 'not-a-head', body: b('OK') });
    });

    it('flush hands back what is held, once', () => {
      const parser = new RawHeadParser();
      parser.push(b('HTTP/1.1 200 OK\r\n'));
      expect(parser.flush()).toEqual(b('HTTP/1.1 200 OK\r\n'));
      expect(parser.flush()).toBeUndefined();
      expect(parser.finish()).toEqual({ kind: 'not-a-head', body: Buffer.alloc(0) });
    });
  });

  it('never throws on arbitrary bytes, whatever the split', () => {
    for (let seed = 0; seed < 300; seed++) {
      const bytes = Buffer.alloc(64);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (seed * 7919 + i * 104729 + ((seed ^ i) * 31)) & 0x7f;
      const parser = new RawHeadParser(48);
      expect(() => {
        for (let at = 0; at < bytes.length; at += 1 + (seed % 9)) parser.push(bytes.subarray(at, at + 1 + (seed % 9)));
        parser.finish();
      }).not.toThrow();
    }
  });
});
