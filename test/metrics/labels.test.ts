import {
  ERROR_CODE_LABELS,
  METHOD_CLASSES,
  SSF_REQUEST_NAMES,
  STATUS_CLASSES,
  UPSTREAM_ERROR_KINDS,
  errorCodeLabel,
  methodClass,
  ssfRequestLabel,
  statusClass,
  upstreamErrorKind,
} from '../../metrics';

/** Deterministic PRNG so a failure reproduces. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomString(rand: () => number, maxLen: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_-.%?&=ü\u0000"\\\n ';
  const len = Math.floor(rand() * maxLen);
  let out = '';
  for (let i = 0; i < len; i++) out += alphabet[Math.floor(rand() * alphabet.length)];
  return out;
}

describe('label normalisers', () => {
  it('maps methods to a method class', () => {
    expect(methodClass('GET')).toBe('GET');
    expect(methodClass('HEAD')).toBe('HEAD');
    expect(methodClass('POST')).toBe('POST');
    expect(methodClass('PUT')).toBe('PUT');
    expect(methodClass('DELETE')).toBe('DELETE');
    expect(methodClass('PROPFIND')).toBe('OTHER');
    expect(methodClass('get')).toBe('OTHER');
    expect(methodClass('')).toBe('OTHER');
  });

  it('maps status codes to a status class', () => {
    expect(statusClass(100)).toBe('1xx');
    expect(statusClass(204)).toBe('2xx');
    expect(statusClass(304)).toBe('3xx');
    expect(statusClass(404)).toBe('4xx');
    expect(statusClass(599)).toBe('5xx');
    expect(statusClass(0)).toBe('other');
    expect(statusClass(600)).toBe('other');
    expect(statusClass(99)).toBe('other');
    expect(statusClass(200.5)).toBe('other');
    expect(statusClass(Number.NaN)).toBe('other');
  });

  it('maps Win32 error codes to a bounded set', () => {
    expect(errorCodeLabel(64)).toBe('ERROR_NETNAME_DELETED');
    expect(errorCodeLabel(995)).toBe('ERROR_OPERATION_ABORTED');
    expect(errorCodeLabel(10054)).toBe('WSAECONNRESET');
    expect(errorCodeLabel(123456)).toBe('other');
    expect(errorCodeLabel(-1)).toBe('other');
    expect(errorCodeLabel(Number.NaN)).toBe('other');
    expect(errorCodeLabel(0)).toBe('other');
  });

  it('maps SSF names with or without HSE_REQ_ and rejects the rest', () => {
    expect(ssfRequestLabel('HSE_REQ_TRANSMIT_FILE')).toBe('TRANSMIT_FILE');
    expect(ssfRequestLabel('IO_COMPLETION')).toBe('IO_COMPLETION');
    expect(ssfRequestLabel('HSE_REQ_BOGUS')).toBe('UNKNOWN');
    expect(ssfRequestLabel('toString')).toBe('UNKNOWN');
    expect(ssfRequestLabel('__proto__')).toBe('UNKNOWN');
  });

  it('classifies upstream failures', () => {
    const err = (code: string): Error => Object.assign(new Error(code), { code });
    expect(upstreamErrorKind(err('ECONNREFUSED'))).toBe('connect');
    expect(upstreamErrorKind(err('ENOTFOUND'))).toBe('connect');
    expect(upstreamErrorKind(err('ETIMEDOUT'))).toBe('timeout');
    expect(upstreamErrorKind(err('ECONNRESET'))).toBe('reset');
    expect(upstreamErrorKind(err('EPIPE'))).toBe('reset');
    expect(upstreamErrorKind(503)).toBe('5xx');
    expect(upstreamErrorKind(404)).toBe('other');
    expect(upstreamErrorKind(new Error('no code'))).toBe('other');
    expect(upstreamErrorKind(undefined)).toBe('other');
    expect(upstreamErrorKind('ECONNRESET')).toBe('other');
  });

  it('keeps label sets bounded for 10 000 random requests', () => {
    const rand = prng(42);
    const methods = new Set<string>();
    const statuses = new Set<string>();
    const codes = new Set<string>();
    const ssf = new Set<string>();
    const upstream = new Set<string>();
    const knownMethods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PROPFIND', 'MKCOL', 'get'];
    for (let i = 0; i < 10_000; i++) {
      const method = rand() < 0.5 ? (knownMethods[Math.floor(rand() * knownMethods.length)] ?? 'X') : randomString(rand, 20);
      const path = `/${randomString(rand, 200)}`;
      methods.add(methodClass(method));
      methods.add(methodClass(path)); // a path must never become a label value either
      statuses.add(statusClass(Math.floor(rand() * 1000) - 100));
      codes.add(errorCodeLabel(Math.floor(rand() * 20_000) - 10));
      ssf.add(ssfRequestLabel(rand() < 0.3 ? `HSE_REQ_${randomString(rand, 12)}` : randomString(rand, 30)));
      upstream.add(upstreamErrorKind(rand() < 0.5 ? Math.floor(rand() * 700) : { code: randomString(rand, 12) }));
    }
    for (const v of methods) expect(METHOD_CLASSES).toContain(v);
    for (const v of statuses) expect(STATUS_CLASSES).toContain(v);
    for (const v of codes) expect(ERROR_CODE_LABELS).toContain(v);
    for (const v of ssf) expect(SSF_REQUEST_NAMES).toContain(v);
    for (const v of upstream) expect(UPSTREAM_ERROR_KINDS).toContain(v);
    expect(methods.size).toBeLessThanOrEqual(METHOD_CLASSES.length);
    expect(statuses.size).toBe(STATUS_CLASSES.length);
  });
});
