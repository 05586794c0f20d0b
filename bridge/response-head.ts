/**
 * Response heads as an extension produces them, parsed the IIS way. Pure: bytes
 * in, a typed result out; nothing here throws on what an extension sends.
 *
 * Three sources of a head:
 *  - HSE_REQ_SEND_RESPONSE_HEADER: status string in lpvBuffer, header block in
 *    lpdwDataType (ms525533,
 *    learn.microsoft.com/en-us/previous-versions/iis/6.0-sdk/ms525533(v=vs.90));
 *  - HSE_REQ_SEND_RESPONSE_HEADER_EX: the same strings in HSE_SEND_HEADER_EX_INFO
 *    plus fKeepConn (ms526034, ms524709);
 *  - a raw head at the start of the first WriteClient, when neither was called:
 *    `HTTP/1.x NNN Reason` or CGI-style `Status: NNN Reason` plus header lines and
 *    a blank line, what CGI-minded extensions (foxisapi, Perl and Python ISAPI
 *    bridges, the samples/rawheaders.c variants) write. The ISAPI reference only
 *    documents the SSF route ("Before an ISAPI extension delivers any output ... it
 *    must send the client an HTTP response header", ms524895); such extensions
 *    relied on IIS putting their bytes on the wire unchanged, so their own status
 *    line reached the client. A gateway cannot pass bytes through (Node writes the
 *    head), so the head is parsed instead. See {@link RawHeadParser}.
 *
 * Header values stay byte strings (latin1), so whatever bytes the extension sent
 * reach the gateway unchanged, and nothing that would split or smuggle a response
 * (CR, LF, NUL, conflicting framing) gets through.
 */
import { STATUS_CODES } from 'node:http';

/** A response head ready to become a RESPONSE_HEAD frame. */
export interface ResponseHead {
  statusCode: number;
  reason: string;
  /** Header lines in the extension's order and spelling; a `Status:` line is never among them. */
  headers: Array<[string, string]>;
  /** The extension framed its body with `Transfer-Encoding: chunked` itself: pass it through. */
  chunked: boolean;
  /** The extension's Content-Length, when it sent one. */
  contentLength?: number;
  /** HSE_SEND_HEADER_EX_INFO.fKeepConn; absent for the other sources. */
  keepConn?: boolean;
  /** Where the status came from; see {@link resolveStatus}. */
  statusSource?: StatusSource;
}

export type StatusSource = 'explicit' | 'ecb' | 'default';

/** A head plus the body bytes that came in the same buffer, after the blank line. */
export interface ParsedHead {
  kind: 'head';
  head: ResponseHead;
  body: Buffer;
}

export type ResponseHeadErrorCode =
  /** Status not "NNN [reason]" with NNN in 100..999, or a reason with control characters. */
  | 'ERR_ISAPI_INVALID_STATUS'
  /** A header line that is not `token: value`, or a value with CR, LF, NUL or other controls. */
  | 'ERR_ISAPI_INVALID_HEADER'
  /** Content-Length not a decimal number, or several that disagree. */
  | 'ERR_ISAPI_INVALID_CONTENT_LENGTH'
  /** A Transfer-Encoding whose last coding is not chunked, or chunked twice. */
  | 'ERR_ISAPI_UNSUPPORTED_TRANSFER_ENCODING'
  /** Both Transfer-Encoding and Content-Length (RFC 9112 section 6.1 forbids a sender both). */
  | 'ERR_ISAPI_CONFLICTING_FRAMING'
  /** A raw head longer than the parser's cap. */
  | 'ERR_ISAPI_HEAD_TOO_LARGE';

/**
 * Why a head was refused. Returned, never thrown: the caller fails the SSF with
 * ERROR_INVALID_PARAMETER (87) and/or answers 500, as a broken head deserves.
 */
export class ResponseHeadError extends Error {
  readonly code: ResponseHeadErrorCode;

  constructor(code: ResponseHeadErrorCode, message: string) {
    super(message);
    this.name = 'ResponseHeadError';
    this.code = code;
  }
}

export interface HeadParseFailure {
  kind: 'error';
  error: ResponseHeadError;
}

export type HeadParseResult = ParsedHead | HeadParseFailure;

/** An explicit status: the code and the reason phrase as given ("" when none). */
export interface ParsedStatus {
  code: number;
  reason: string;
}

// -----------------------------------------------------------------------------
// Status

/**
 * The reason phrase for `code`: HTTP's standard one, "" for codes without one.
 * 302 is "Object Moved", the phrase IIS itself sends with its redirects.
 */
export function reasonPhrase(code: number): string {
  if (code === 302) return 'Object Moved';
  return STATUS_CODES[code] ?? '';
}

/** Bytes a reason phrase may hold: HTAB, SP, VCHAR, obs-text (RFC 9112 section 4). */
const REASON_CHARS = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Parses a status string such as "200 OK", "404" or, as some extensions pass it,
 * "HTTP/1.1 200 OK" (the leading version is skipped; mod_isapi once misparsed this,
 * httpd PR 29098). Surrounding whitespace, including a trailing CRLF, is ignored.
 * The code must be three digits, 100..999: HTTP's status-code grammar (RFC 9110
 * section 15) and HTTP.SYS's limit. Anything else is refused rather than guessed at.
 */
export function parseStatus(status: string | Buffer): ParsedStatus | ResponseHeadError {
  let text = (typeof status === 'string' ? status : status.toString('latin1')).replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '');
  const version = /^HTTP\/\d+(?:\.\d+)?[ \t]+/i.exec(text);
  if (version) text = text.slice(version[0].length);
  const match = /^(\d{3})(?:[ \t]+([^]*))?$/.exec(text);
  const code = match ? Number(match[1]) : 0;
  if (!match || code < 100) return new ResponseHeadError('ERR_ISAPI_INVALID_STATUS', `invalid status ${JSON.stringify(text)}`);
  const reason = match[2] ?? '';
  if (!REASON_CHARS.test(reason)) {
    return new ResponseHeadError('ERR_ISAPI_INVALID_STATUS', `status reason has control characters: ${JSON.stringify(reason)}`);
  }
  return { code, reason };
}

/**
 * Which status the client gets.
 *
 * 1. An explicit status wins: the status string of SEND_RESPONSE_HEADER(_EX), a raw
 *    `HTTP/1.x` status line, or a raw `Status:` line. It is what the extension asked
 *    to put on the wire; ecb->dwHttpStatusCode is "the status of the current
 *    transaction when the request is completed" (EXTENSION_CONTROL_BLOCK, ms525658),
 *    i.e. what IIS logs, not what it sends.
 * 2. A NULL or empty status string of SEND_RESPONSE_HEADER(_EX) is an explicit
 *    200 OK: "If this buffer is null, a default response of "200 OK" will be sent"
 *    (CHttpServerContext::ServerSupportFunction,
 *    learn.microsoft.com/en-us/previous-versions/visualstudio/visual-studio-6.0/aa294807(v=vs.60);
 *    likewise SF_REQ_SEND_RESPONSE_HEADER, ms525219). mod_isapi uses
 *    dwHttpStatusCode here instead; `nullStatus: 'ecb'` selects that.
 * 3. With no status at all (a raw head without one, a body with no head) the status
 *    is dwHttpStatusCode, which IIS initialises to 200: the only status the extension
 *    expressed. A value outside 100..999 (garbage in the ECB) gives 200 OK.
 *
 * An explicit status without a reason gets the standard phrase.
 */
export function resolveStatus(
  explicit: ParsedStatus | undefined,
  ecbStatusCode: number,
): { statusCode: number; reason: string; statusSource: StatusSource } {
  if (explicit) return { statusCode: explicit.code, reason: explicit.reason || reasonPhrase(explicit.code), statusSource: 'explicit' };
  if (Number.isInteger(ecbStatusCode) && ecbStatusCode >= 100 && ecbStatusCode <= 999) {
    return { statusCode: ecbStatusCode, reason: reasonPhrase(ecbStatusCode), statusSource: ecbStatusCode === 200 ? 'default' : 'ecb' };
  }
  return { statusCode: 200, reason: 'OK', statusSource: 'default' };
}

/** The head of a response whose extension never sent one: status per {@link resolveStatus}, no headers. */
export function defaultResponseHead(ecbStatusCode = 200): ResponseHead {
  return { ...resolveStatus(undefined, ecbStatusCode), headers: [], chunked: false };
}

// -----------------------------------------------------------------------------
// HSE_REQ_SEND_RESPONSE_HEADER / _EX

/**
 * HSE_REQ_SEND_RESPONSE_HEADER and, with `keepConn`, _EX.
 *
 * `status` may be null or empty: 200 OK as IIS documents it, or with `nullStatus`
 * 'ecb' (mod_isapi's rule) `ecbStatusCode`; see {@link resolveStatus}. `header` is the
 * optional header block, "terminate the header string with an extra carriage
 * return and linefeed" (ms525533); bytes after that blank line are the start of the
 * body (IIS and mod_isapi both send them). Strings are C strings: the caller cuts
 * them at the NUL (for _EX: at cch, then at a NUL within it).
 *
 * Accepted although the documentation asks for better, because each has a single
 * reading and none can corrupt the response once it is rebuilt from parsed fields:
 * a block without the final blank line (it ends at the end of the string, no body);
 * bare LF line ends; obs-fold continuation lines (joined with a space, RFC 9112
 * section 5.2); whitespace before the colon (removed, as RFC 9112 section 5.1 tells
 * a proxy to). A leading blank line is an empty header block. A `Status:` line is
 * CGI syntax, not HTTP: it is dropped, because the status argument decides.
 */
export function parseSendResponseHeader(
  status: string | Buffer | null,
  header: string | Buffer | null,
  ecbStatusCode = 200,
  keepConn?: boolean,
  nullStatus: NullStatusRule = 'ok',
): HeadParseResult {
  const fast = fastHeaderBlock(header);
  if (!fast) return parseSendResponseHeaderFull(status, header, ecbStatusCode, keepConn, nullStatus);
  const explicit = explicitStatus(status, nullStatus);
  if (explicit instanceof ResponseHeadError) return { kind: 'error', error: explicit };
  const analysed: AnalysedHeaders | ResponseHeadError = fast.framing
    ? analyseHeaders(fast.headers, 'drop')
    : fast.contentLength === undefined
      ? { headers: fast.headers, chunked: false }
      : { headers: fast.headers, chunked: false, contentLength: fast.contentLength };
  if (analysed instanceof ResponseHeadError) return { kind: 'error', error: analysed };
  const head = buildHead(resolveStatus(explicit, ecbStatusCode), analysed);
  if (keepConn !== undefined) head.keepConn = keepConn;
  return { kind: 'head', head, body: fast.body };
}

/**
 * {@link parseSendResponseHeader} through the byte-at-a-time HeadScanner, for every
 * block: what the fast path falls back to, and the reference its equivalence test
 * (bridge/response-head.test.ts) compares it with.
 */
export function parseSendResponseHeaderFull(
  status: string | Buffer | null,
  header: string | Buffer | null,
  ecbStatusCode = 200,
  keepConn?: boolean,
  nullStatus: NullStatusRule = 'ok',
): HeadParseResult {
  const explicit = explicitStatus(status, nullStatus);
  if (explicit instanceof ResponseHeadError) return { kind: 'error', error: explicit };
  const bytes = header === null ? EMPTY : typeof header === 'string' ? Buffer.from(header, 'latin1') : header;
  const text = bytes.toString('latin1');
  const scanner = new HeadScanner(false);
  const scan = scanner.feed(text, true);
  if (scan.kind === 'invalid') return { kind: 'error', error: scan.error };
  // Not raw and final: the scan either failed (above) or completed.
  const { end } = scan as Extract<ScanResult, { kind: 'complete' }>;
  const analysed = analyseHeaders(scanner.headers, 'drop');
  if (analysed instanceof ResponseHeadError) return { kind: 'error', error: analysed };
  const head = buildHead(resolveStatus(explicit, ecbStatusCode), analysed);
  if (keepConn !== undefined) head.keepConn = keepConn;
  return { kind: 'head', head, body: bytes.subarray(end) };
}

/** The status argument of SEND_RESPONSE_HEADER(_EX): parsed, or the NULL/empty rule. */
function explicitStatus(status: string | Buffer | null, nullStatus: NullStatusRule): ParsedStatus | undefined | ResponseHeadError {
  if (status !== null && status.length > 0) return parseStatus(status);
  return nullStatus === 'ok' ? { code: 200, reason: 'OK' } : undefined;
}

/**
 * The common, well-formed SEND_RESPONSE_HEADER block, recognised without the
 * byte-at-a-time HeadScanner: CRLF lines `token: value` (no whitespace before the
 * colon, no obs-fold, no control characters, no bare CR or LF), ending in a blank
 * line. Anything else (including a block without the blank line) returns
 * undefined and takes the full parser, so both give the same result for every
 * input (bridge/response-head.test.ts checks that over generated blocks).
 * Status lines are dropped and one Content-Length of plain decimal digits is taken
 * as it is; `framing` says there is more to it (Transfer-Encoding, a repeated or
 * unusual Content-Length), and then the lines go through analyseHeaders.
 * Exported for that test (to count how often the fast path is taken), not for callers.
 */
export function fastHeaderBlock(
  header: string | Buffer | null,
): { headers: Array<[string, string]>; framing: boolean; contentLength: number | undefined; body: Buffer } | undefined {
  if (header === null || header.length === 0) return { headers: [], framing: false, contentLength: undefined, body: EMPTY };
  const text = typeof header === 'string' ? header : header.toString('latin1');
  const headers: Array<[string, string]> = [];
  let framing = false;
  let contentLength: number | undefined;
  let at = 0;
  for (;;) {
    const eol = text.indexOf('\r\n', at);
    if (eol < 0) return undefined; // No blank line at the end: the full parser decides.
    if (eol === at) {
      const end = eol + 2;
      let body: Buffer;
      if (typeof header !== 'string') body = header.subarray(end);
      // latin1 is one byte per char, so this is Buffer.from(whole).subarray(end), as the full path returns.
      else body = end === text.length ? EMPTY : Buffer.from(text.slice(end), 'latin1');
      return { headers, framing, contentLength, body };
    }
    let colon = -1;
    for (let i = at; i < eol; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x3a) {
        colon = i;
        break;
      }
      if (c > 0xff || (FAST_CLASS[c]! & 1) === 0) return undefined;
    }
    if (colon <= at) return undefined;
    let vs = colon + 1;
    let ve = eol;
    for (let i = vs; i < ve; i++) {
      const c = text.charCodeAt(i);
      if (c > 0xff || (FAST_CLASS[c]! & 2) === 0) return undefined;
    }
    while (vs < ve && (text.charCodeAt(vs) === 0x20 || text.charCodeAt(vs) === 0x09)) vs++;
    while (ve > vs && (text.charCodeAt(ve - 1) === 0x20 || text.charCodeAt(ve - 1) === 0x09)) ve--;
    const name = text.slice(at, colon);
    const value = text.slice(vs, ve);
    at = eol + 2;
    switch (name.length) {
      case 6: // Status: dropped, as analyseHeaders does with 'drop'.
        if (name.toLowerCase() === 'status') continue;
        break;
      case 14: // One plain decimal Content-Length is taken here; anything else goes through analyseHeaders.
        if (name.toLowerCase() === 'content-length') {
          if (contentLength === undefined && CANONICAL_LENGTH.test(value)) contentLength = Number(value);
          else framing = true;
        }
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') framing = true;
        break;
    }
    headers.push([name, value]);
  }
}

/**
 * What a NULL status string of SEND_RESPONSE_HEADER(_EX) means: 'ok' is IIS's
 * documented "200 OK"; 'ecb' is mod_isapi's ecb->dwHttpStatusCode.
 */
export type NullStatusRule = 'ok' | 'ecb';

/** HSE_SEND_HEADER_EX_INFO as read from native memory (strings already cut at cch / NUL). */
export interface SendHeaderExInfo {
  pszStatus: string | Buffer | null;
  pszHeader: string | Buffer | null;
  fKeepConn: boolean;
}

/** HSE_REQ_SEND_RESPONSE_HEADER_EX: {@link parseSendResponseHeader} plus fKeepConn. */
export function parseSendResponseHeaderEx(info: SendHeaderExInfo, ecbStatusCode = 200, nullStatus: NullStatusRule = 'ok'): HeadParseResult {
  return parseSendResponseHeader(info.pszStatus, info.pszHeader, ecbStatusCode, info.fKeepConn, nullStatus);
}

/**
 * HSE_REQ_SEND_URL_REDIRECT_RESP: "IIS then sends the HTTP status code 302 (URL
 * Redirect)" (ms525014), with the reason phrase IIS uses for its redirects, "302
 * Object Moved" (IResponse::Redirect, ms524530), a Location header and a small HTML
 * body with the link. The location is the
 * extension's string; CR, LF and NUL would split the response, so they are
 * percent-encoded.
 */
export function redirectHead(location: string): ParsedHead {
  const safe = location.replace(/[\r\n\0]/g, (c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase());
  const html = safe.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const body = Buffer.from(
    `<head><title>Document Moved</title></head>\n<body><h1>Object Moved</h1>This document may be found <a HREF="${html}">here</a></body>`,
    'latin1',
  );
  return {
    kind: 'head',
    head: {
      statusCode: 302,
      reason: 'Object Moved',
      headers: [
        ['Location', safe],
        ['Content-Type', 'text/html'],
        ['Content-Length', String(body.length)],
      ],
      chunked: false,
      contentLength: body.length,
      statusSource: 'explicit',
    },
    body,
  };
}

// -----------------------------------------------------------------------------
// Raw heads in WriteClient

/** Default cap of a raw head: far above any sane head, far below a memory problem. */
export const DEFAULT_MAX_RAW_HEAD = 64 * 1024;

/** One step of {@link RawHeadParser}. */
export type RawHeadStep =
  /** The data so far can still be a head; it is buffered, nothing goes to the client yet. */
  | { kind: 'need-more' }
  /** A complete head; `body` is what followed its blank line (possibly empty). */
  | ParsedHead
  /** Not a head: everything buffered, this chunk included, is body under a default head. */
  | { kind: 'not-a-head'; body: Buffer }
  /** A head that cannot be sent (bad status, framing, or longer than the cap). */
  | HeadParseFailure
  /** The parser had already decided; the chunk is plain body. */
  | { kind: 'passthrough'; body: Buffer };

/**
 * Recognises a response head that an extension writes itself at the start of its
 * output (no SEND_RESPONSE_HEADER before the first WriteClient), possibly split
 * over several WriteClient calls.
 *
 * A head is either a status line `HTTP/<d>[.<d>] NNN [reason]` followed by header
 * lines, or header lines alone (CGI style, with an optional `Status: NNN reason`);
 * then a blank line. CRLF and bare LF are both accepted. Bytes after the blank line
 * are body. Without a status the status is ecb->dwHttpStatusCode (see
 * {@link resolveStatus}). With a status line, a `Status:` line is dropped.
 *
 * Output that does not have this shape is body, sent under a default head: the
 * decision falls on the first byte that cannot belong to a head (a `<`, a line
 * without a colon, a control character in a value), so ordinary output, HTML or
 * binary, is recognised at once and never held back. A leading blank line is body
 * too: a head needs at least one line, and text often starts with a newline.
 *
 * Data that has the shape of a head but is refused (an invalid status, conflicting
 * Content-Lengths, both Transfer-Encoding and Content-Length) is an error, not body:
 * sending it as text would put a head the extension meant for the wire into the page.
 *
 * The cap (64 KiB by default) bounds what is held back: a head that has not ended
 * by then is an error if at least one complete head line was seen, and body if the
 * first line alone is that long (one huge token without a newline is text).
 */
export class RawHeadParser {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  /** latin1 text of the first `max` bytes: what the scanner looks at. */
  private text = '';
  private readonly scanner = new HeadScanner(true);
  private decided = false;

  constructor(private readonly maxHeadBytes = DEFAULT_MAX_RAW_HEAD) {}

  /** True once push/finish returned something other than need-more. */
  get done(): boolean {
    return this.decided;
  }

  /** Feeds the bytes of one WriteClient. `ecbStatusCode` is read when the head completes. */
  push(chunk: Buffer, ecbStatusCode = 200): RawHeadStep {
    if (this.decided) return { kind: 'passthrough', body: chunk };
    if (chunk.length === 0) return { kind: 'need-more' };
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const room = this.maxHeadBytes - this.text.length;
    this.text += chunk.subarray(0, Math.max(0, room)).toString('latin1');

    const scan = this.scanner.feed(this.text, false);
    switch (scan.kind) {
      case 'complete':
        return this.completeHead(scan.end, ecbStatusCode);
      case 'invalid':
        // Only a committed head (one with a status line) is invalid; otherwise it is not-a-head.
        return this.fail(scan.error);
      case 'not-a-head':
        return this.notAHead();
      case 'need-more':
        if (this.text.length < this.maxHeadBytes) return { kind: 'need-more' };
        if (!this.scanner.committed && this.scanner.lines === 0) return this.notAHead();
        return this.fail(
          new ResponseHeadError('ERR_ISAPI_HEAD_TOO_LARGE', `response head written by the extension exceeds ${this.maxHeadBytes} bytes`),
        );
    }
  }

  /**
   * The extension finished (or sent its head another way) while data was still held
   * back. A head that began with a status line and whose lines were all valid is
   * completed as if the blank line had come (the response has no body); anything
   * else was never a head and is body. Nothing held: an empty body.
   */
  finish(ecbStatusCode = 200): Exclude<RawHeadStep, { kind: 'need-more' } | { kind: 'passthrough' }> {
    if (this.decided) return { kind: 'not-a-head', body: EMPTY };
    if (this.buffered === 0) {
      this.decided = true;
      return { kind: 'not-a-head', body: EMPTY };
    }
    if (this.scanner.beganWithStatusLine && this.text.length === this.buffered) {
      const scan = this.scanner.feed(this.text, true);
      if (scan.kind === 'invalid') return this.fail(scan.error);
      if (scan.kind !== 'not-a-head') return this.completeHead(this.buffered, ecbStatusCode);
    }
    return this.notAHead();
  }

  /** Hands back whatever is held (as body) and stops; undefined when nothing is. */
  flush(): Buffer | undefined {
    if (this.decided || this.buffered === 0) {
      this.decided = true;
      return undefined;
    }
    const step = this.notAHead();
    return step.body;
  }

  private all(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
  }

  private completeHead(end: number, ecbStatusCode: number): ParsedHead | HeadParseFailure {
    this.decided = true;
    const all = this.all();
    this.chunks.length = 0;
    const explicit = this.scanner.status;
    const analysed = analyseHeaders(this.scanner.headers, explicit ? 'drop' : 'use');
    if (analysed instanceof ResponseHeadError) return { kind: 'error', error: analysed };
    const head = buildHead(resolveStatus(explicit ?? analysed.statusHeader, ecbStatusCode), analysed);
    return { kind: 'head', head, body: all.subarray(end) };
  }

  private notAHead(): { kind: 'not-a-head'; body: Buffer } {
    this.decided = true;
    const body = this.all();
    this.chunks.length = 0;
    return { kind: 'not-a-head', body };
  }

  private fail(error: ResponseHeadError): HeadParseFailure {
    this.decided = true;
    this.chunks.length = 0;
    return { kind: 'error', error };
  }
}

// -----------------------------------------------------------------------------
// Header block scanning (shared)

const EMPTY = Buffer.alloc(0);

/** RFC 9110 section 5.6.2 tchar. */
const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TCHAR_SET = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/** Field-value bytes: HTAB, SP, VCHAR, obs-text. */
const VALUE_CHAR = /[\t\x20-\x7e\x80-\xff]/;
/** A Content-Length the fast path takes as is: String(Number(v)) === v, a safe integer. */
const CANONICAL_LENGTH = /^(?:0|[1-9]\d{0,14})$/;
/** Byte classes for the fast path: 1 = tchar (RFC 9110 section 5.6.2), 2 = field-value byte (HTAB, SP, VCHAR, obs-text). */
const FAST_CLASS = (() => {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) {
    if (c === 0x09 || (c >= 0x20 && c <= 0x7e) || c >= 0x80) t[c] |= 2;
    if (TCHAR_SET.includes(String.fromCharCode(c))) t[c] |= 1;
  }
  return t;
})();

type ScanResult =
  | { kind: 'need-more' }
  | { kind: 'complete'; end: number }
  | { kind: 'invalid'; error: ResponseHeadError }
  /** Raw mode: the data cannot be a head (and nothing committed it to being one). */
  | { kind: 'not-a-head' };

type LineMode = 'start' | 'name' | 'ows' | 'value' | 'status';

/**
 * A byte-at-a-time scanner over a header block, resumable across chunks so a head
 * split over many WriteClient calls costs O(total bytes). `raw` enables a first
 * status line and the "this is not a head after all" outcome; otherwise (the
 * SEND_RESPONSE_HEADER block) every defect is an error.
 */
class HeadScanner {
  /** Complete head lines seen (the status line included). */
  lines = 0;
  /** The status of a valid status line, once one has been seen. */
  status: ParsedStatus | undefined;
  readonly headers: Array<[string, string]> = [];

  private statusLine = false;
  private source = '';
  private position = 0;
  private mode: LineMode = 'start';
  private lineStart = 0;
  private pendingCr = false;

  constructor(private readonly raw: boolean) {}

  /**
   * A raw head is "committed" once a status line has been seen: from then on a
   * defect is an error instead of proof that the output is plain body.
   */
  get committed(): boolean {
    return this.statusLine;
  }

  /** The output began with "HTTP/" (its first line may not have ended yet). */
  get beganWithStatusLine(): boolean {
    return this.statusLine || (this.lines === 0 && this.mode === 'status');
  }

  /**
   * Scans `text` (everything so far: each call passes the previous text plus new
   * bytes) from where the last call stopped. With `final`, the end of `text` is the
   * end of the block.
   */
  feed(text: string, final: boolean): ScanResult {
    this.source = text;
    for (let i = this.position; i < text.length; i++) {
      const ch = text[i]!;
      let result: ScanResult | undefined;
      if (this.pendingCr) {
        this.pendingCr = false;
        result = ch === '\n' ? this.endLine(i - 1, i + 1) : this.invalid(i, 'CR not followed by LF');
      } else if (ch === '\n') {
        result = this.endLine(i, i + 1);
      } else if (ch === '\r') {
        this.pendingCr = true;
      } else {
        result = this.step(ch, i);
      }
      if (result) return result;
    }
    this.position = text.length;
    if (!final) return { kind: 'need-more' };
    // End of input: a last line without its line end still counts.
    if (this.mode === 'start') return { kind: 'complete', end: text.length };
    return this.endLine(this.pendingCr ? text.length - 1 : text.length, text.length) ?? { kind: 'complete', end: text.length };
  }

  private step(ch: string, i: number): ScanResult | undefined {
    switch (this.mode) {
      case 'start':
        if (ch === ' ' || ch === '\t') {
          // obs-fold: continues the previous header's value.
          if (this.headers.length === 0) return this.invalid(i, 'continuation line without a header');
          this.mode = 'value';
          return undefined;
        }
        if (!TCHAR.test(ch)) return this.invalid(i, 'line does not start with a header name');
        this.mode = 'name';
        return undefined;
      case 'name':
        if (TCHAR.test(ch)) return undefined;
        if (ch === ':') {
          this.mode = 'value';
          return undefined;
        }
        if (ch === ' ' || ch === '\t') {
          this.mode = 'ows';
          return undefined;
        }
        if (ch === '/' && this.raw && this.lines === 0 && this.source.slice(this.lineStart, i).toUpperCase() === 'HTTP') {
          this.mode = 'status';
          return undefined;
        }
        return this.invalid(i, 'invalid character in a header name');
      case 'ows':
        if (ch === ' ' || ch === '\t') return undefined;
        if (ch === ':') {
          this.mode = 'value';
          return undefined;
        }
        return this.invalid(i, 'header name without a colon');
      case 'value':
      case 'status':
        return VALUE_CHAR.test(ch) ? undefined : this.invalid(i, 'control character in a header line');
    }
  }

  /** `lineEnd` excludes the line terminator; `next` is where the next line starts. */
  private endLine(lineEnd: number, next: number): ScanResult | undefined {
    const line = this.source.slice(this.lineStart, lineEnd);
    const mode = this.mode;
    this.mode = 'start';
    this.lineStart = next;
    if (mode === 'start') {
      // A blank line ends the head; before any line, a raw "head" is just text.
      if (this.raw && this.lines === 0) return { kind: 'not-a-head' };
      return { kind: 'complete', end: next };
    }
    if (mode === 'name' || mode === 'ows') return this.invalid(lineEnd, 'header line without a colon');
    this.lines++;
    if (mode === 'status') {
      // "HTTP/1.x" is a status line even when what follows is broken (an error, not
      // text); "HTTP/2" only with a status code after it, so "HTTP/2 is great" is text.
      if (!/^HTTP\/\d\.\d(?:[ \t]|$)/i.test(line) && !/^HTTP\/\d+[ \t]+\d{3}(?:[ \t]|$)/i.test(line)) return { kind: 'not-a-head' };
      this.statusLine = true;
      // From here on this is a head; a bad status is an error now, not at the blank line.
      const status = parseStatus(line);
      if (status instanceof ResponseHeadError) return { kind: 'invalid', error: status };
      this.status = status;
      return undefined;
    }
    if (line[0] === ' ' || line[0] === '\t') {
      const last = this.headers[this.headers.length - 1]!;
      last[1] = trimOws(last[1] + ' ' + trimOws(line));
      return undefined;
    }
    const colon = line.indexOf(':');
    this.headers.push([line.slice(0, colon).replace(/[ \t]+$/, ''), trimOws(line.slice(colon + 1))]);
    return undefined;
  }

  private invalid(at: number, why: string): ScanResult {
    if (this.raw && !this.committed) return { kind: 'not-a-head' };
    const line = this.source.slice(this.lineStart, Math.max(at, this.lineStart) + 1);
    return { kind: 'invalid', error: new ResponseHeadError('ERR_ISAPI_INVALID_HEADER', `${why}: ${JSON.stringify(line.slice(0, 80))}`) };
  }
}

function buildHead(status: ReturnType<typeof resolveStatus>, analysed: AnalysedHeaders): ResponseHead {
  const head: ResponseHead = {
    statusCode: status.statusCode,
    reason: status.reason,
    statusSource: status.statusSource,
    headers: analysed.headers,
    chunked: analysed.chunked,
  };
  if (analysed.contentLength !== undefined) head.contentLength = analysed.contentLength;
  return head;
}

function trimOws(s: string): string {
  return s.replace(/^[ \t]+|[ \t]+$/g, '');
}

interface AnalysedHeaders {
  headers: Array<[string, string]>;
  chunked: boolean;
  contentLength?: number;
  statusHeader?: ParsedStatus;
}

/**
 * Pulls the framing and status out of parsed header lines.
 *  - `Status:` is removed; with `statusMode` 'use' its value is the status.
 *  - Content-Length must be decimal; repeats (or "5, 5" lists) must agree and are
 *    collapsed into one line (RFC 9110 section 8.6), a disagreement is an error
 *    (RFC 9112 section 6.3: unrecoverable).
 *  - Transfer-Encoding must end in chunked, once (RFC 9112 section 6.1): the
 *    extension frames its own body and the gateway passes it through.
 *  - Both together are refused: a sender must not send both (RFC 9112 section 6.1),
 *    and a gateway that forwarded both would invite request smuggling downstream.
 */
function analyseHeaders(lines: Array<[string, string]>, statusMode: 'use' | 'drop'): AnalysedHeaders | ResponseHeadError {
  const headers: Array<[string, string]> = [];
  let statusHeader: ParsedStatus | undefined;
  let contentLength: number | undefined;
  const codings: string[] = [];
  let sawTransferEncoding = false;

  for (const [name, value] of lines) {
    const lower = name.toLowerCase();
    if (lower === 'status') {
      if (statusMode === 'drop') continue;
      const parsed = parseStatus(value);
      if (parsed instanceof ResponseHeadError) return parsed;
      if (statusHeader && statusHeader.code !== parsed.code) {
        return new ResponseHeadError('ERR_ISAPI_INVALID_STATUS', `conflicting Status lines: ${statusHeader.code} and ${parsed.code}`);
      }
      statusHeader ??= parsed;
      continue;
    }
    if (lower === 'content-length') {
      for (const part of value.split(',')) {
        const digits = part.trim();
        const n = /^\d+$/.test(digits) ? Number(digits) : NaN;
        if (!Number.isSafeInteger(n)) {
          return new ResponseHeadError('ERR_ISAPI_INVALID_CONTENT_LENGTH', `invalid Content-Length ${JSON.stringify(value)}`);
        }
        if (contentLength !== undefined && contentLength !== n) {
          return new ResponseHeadError('ERR_ISAPI_INVALID_CONTENT_LENGTH', `conflicting Content-Length values ${contentLength} and ${n}`);
        }
        if (contentLength === undefined) headers.push([name, String(n)]);
        contentLength = n;
      }
      continue;
    }
    if (lower === 'transfer-encoding') {
      sawTransferEncoding = true;
      for (const coding of value.split(',')) {
        const c = coding.trim().toLowerCase();
        if (c !== '') codings.push(c);
      }
    }
    headers.push([name, value]);
  }

  let chunked = false;
  if (sawTransferEncoding) {
    const chunkedCount = codings.filter((c) => c === 'chunked').length;
    if (codings[codings.length - 1] !== 'chunked' || chunkedCount !== 1) {
      return new ResponseHeadError(
        'ERR_ISAPI_UNSUPPORTED_TRANSFER_ENCODING',
        `Transfer-Encoding must end with a single chunked, got ${JSON.stringify(codings.join(', '))}`,
      );
    }
    if (contentLength !== undefined) {
      return new ResponseHeadError('ERR_ISAPI_CONFLICTING_FRAMING', 'both Transfer-Encoding and Content-Length in the response head');
    }
    chunked = true;
  }

  const out: AnalysedHeaders = { headers, chunked };
  if (contentLength !== undefined) out.contentLength = contentLength;
  if (statusHeader) out.statusHeader = statusHeader;
  return out;
}
