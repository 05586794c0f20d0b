/**
 * The IIS server-variable table behind GetServerVariable, and the URL-to-path
 * mapping of HSE_REQ_MAP_URL_TO_PATH(_EX). Pure: no I/O, no native memory.
 *
 * `ServerVariables.lookup(name)` returns the exact bytes to copy into the
 * extension's buffer, terminating NUL included, so the caller reports
 * `*lpdwSizeofBuffer = value.length` on success and on ERROR_INSUFFICIENT_BUFFER
 * alike ("the DWORD contains the size of bytes transferred into the buffer,
 * including the null-terminating byte": GetServerVariable, ms525335,
 * learn.microsoft.com/en-us/previous-versions/iis/6.0-sdk/ms525335(v=vs.90)).
 * `undefined` means "bad or unsupported variable identifier": ERROR_INVALID_INDEX.
 *
 * Variable names and meanings follow "IIS Server Variables" (ms524602,
 * learn.microsoft.com/en-us/previous-versions/iis/6.0-sdk/ms524602(v=vs.90)) and its
 * IIS 8.5+ successor (learn.microsoft.com/en-us/iis/web-dev-reference/server-variables).
 *
 * Byte encodings. GetServerVariable is an ANSI API. Values that come off the wire
 * (headers, the raw URL, the query string, the method) are already byte strings
 * (Node decodes them as latin1), so they are copied back byte for byte. Values that
 * are text (decoded URL paths, physical paths, names) are encoded with the
 * identity's `ansiEncoding`: UTF-8 by default off Windows (so PATH_TRANSLATED can be
 * opened), and Windows-1252-like latin1 with '?' for unmappable characters on
 * Windows, which is what WideCharToMultiByte gives IIS on a western system.
 * UNICODE_<NAME> variants are UTF-16LE with a two-byte NUL; their size is in bytes.
 */
import { HSE_URL_FLAGS } from './abi/constants';
import type { AppSettings, RequestInfo } from './request-info';

/** What the host tells the bridge about the "web server" it impersonates. */
export interface ServerIdentity {
  /**
   * SERVER_SOFTWARE. IIS sends `Microsoft-IIS/<version>`; extensions that sniff it
   * (e.g. `strncmp(v, "Microsoft-IIS/", 14)`) should keep working, so the default
   * {@link DEFAULT_SERVER_SOFTWARE} starts with that product token.
   */
  serverSoftware: string;
  /** Physical root of the site: MAP_URL_TO_PATH target for URLs outside the app. */
  siteRoot: string;
  /** Separator of physical paths: '\\' on Windows, '/' elsewhere. */
  pathSeparator: '\\' | '/';
  /** SERVER_NAME when the request has no Host header (HTTP/1.0). Defaults to LOCAL_ADDR. */
  serverName?: string;
  /** APP_POOL_ID. Defaults to IIS's "DefaultAppPool". */
  appPoolId?: string;
  /** INSTANCE_NAME (IIS 8.5+). Defaults to IIS's "Default Web Site". */
  siteName?: string;
  /** How text values become ANSI bytes; see the module comment. */
  ansiEncoding?: AnsiEncoding;
}

export type AnsiEncoding = 'utf8' | 'latin1';

/** IIS 10's product token first (for sniffers), then ours (for humans). */
export const DEFAULT_SERVER_SOFTWARE = 'Microsoft-IIS/10.0 isapi-gateway/0.1';

const DEFAULT_APP_POOL_ID = 'DefaultAppPool';
const DEFAULT_SITE_NAME = 'Default Web Site';

/** How a variable's string turns into bytes. */
type Encoding = 'raw' | 'text';

interface VariableDef {
  readonly encoding: Encoding;
  /** Has a UNICODE_ form (IIS 6+). */
  readonly unicode: boolean;
  readonly get: (v: ServerVariables) => string;
}

/**
 * Variables with a UNICODE_ form: the ones IIS derives from Unicode data (URLs,
 * paths, user and pool names). Header-derived variables have none ("this does NOT
 * apply to request headers retrieved via the HEADER_ or HTTP_ prefix": David Wang,
 * "Unicode and ISAPI Filters", learn.microsoft.com/en-us/archive/blogs/david.wang/unicode-and-isapi-filters).
 */
function def(encoding: Encoding, get: (v: ServerVariables) => string, unicode = false): VariableDef {
  return { encoding, unicode, get };
}

const EMPTY = (): string => '';

/**
 * The fixed names. HTTP_URL, HTTP_VERSION and HTTP_METHOD are real variables,
 * so they win over a request header that would map to the same HTTP_ name.
 *
 * Deliberately absent (lookup gives ERROR_INVALID_INDEX): the IIS 10 TLS details
 * CRYPT_*, APP_POOL_CONFIG, MANAGED_PIPELINE_MODE, REQUEST_FLAGS, FORWARDED_URL and
 * SSI_EXEC_DISABLED, which describe IIS internals the gateway does not have.
 */
const VARIABLES: ReadonlyMap<string, VariableDef> = new Map<string, VariableDef>([
  ['ALL_HTTP', def('raw', (v) => v.allHttp)],
  ['ALL_RAW', def('raw', (v) => v.allRaw)],
  ['APPL_MD_PATH', def('text', (v) => v.app.appMdPath, true)],
  ['APPL_PHYSICAL_PATH', def('text', (v) => v.applPhysicalPath, true)],
  ['APP_POOL_ID', def('text', (v) => v.identity.appPoolId ?? DEFAULT_APP_POOL_ID, true)],
  // Anonymous access: IIS reports the authentication variables as empty strings.
  ['AUTH_PASSWORD', def('raw', EMPTY)],
  ['AUTH_TYPE', def('raw', EMPTY)],
  ['AUTH_USER', def('text', EMPTY, true)],
  ['CACHE_URL', def('text', (v) => v.cacheUrl, true)],
  // No client certificates reach the bridge; IIS answers these with empty strings
  // when the client sent none.
  ['CERT_COOKIE', def('raw', EMPTY)],
  ['CERT_FLAGS', def('raw', EMPTY)],
  ['CERT_ISSUER', def('raw', EMPTY)],
  ['CERT_KEYSIZE', def('raw', EMPTY)],
  ['CERT_SECRETKEYSIZE', def('raw', EMPTY)],
  ['CERT_SERIALNUMBER', def('raw', EMPTY)],
  ['CERT_SERVER_ISSUER', def('raw', EMPTY)],
  ['CERT_SERVER_SUBJECT', def('raw', EMPTY)],
  ['CERT_SUBJECT', def('raw', EMPTY)],
  ['CONTENT_LENGTH', def('raw', (v) => v.contentLength)],
  ['CONTENT_TYPE', def('raw', (v) => v.contentType)],
  ['DOCUMENT_ROOT', def('text', (v) => v.identity.siteRoot)],
  ['GATEWAY_INTERFACE', def('raw', () => 'CGI/1.1')],
  // "Returns ON if the request came in through a secure channel": the documented
  // capitals notwithstanding, IIS returns lower case, and ASP pages compare with "off".
  ['HTTPS', def('raw', (v) => (v.info.secure ? 'on' : 'off'))],
  // TLS terminates at the gateway, and RequestInfo carries no cipher or server
  // certificate details yet: known variables with empty values, as IIS gives on http.
  ['HTTPS_KEYSIZE', def('raw', EMPTY)],
  ['HTTPS_SECRETKEYSIZE', def('raw', EMPTY)],
  ['HTTPS_SERVER_ISSUER', def('raw', EMPTY)],
  ['HTTPS_SERVER_SUBJECT', def('raw', EMPTY)],
  ['HTTP_METHOD', def('raw', (v) => v.info.method)],
  ['HTTP_URL', def('raw', (v) => v.info.url)],
  ['HTTP_VERSION', def('raw', (v) => v.serverProtocol)],
  ['INSTANCE_ID', def('raw', (v) => String(v.app.instanceId))],
  ['INSTANCE_META_PATH', def('raw', (v) => `/LM/W3SVC/${v.app.instanceId}`)],
  ['INSTANCE_NAME', def('text', (v) => v.identity.siteName ?? DEFAULT_SITE_NAME)],
  ['LOCAL_ADDR', def('raw', (v) => v.localAddr)],
  ['LOGON_USER', def('text', EMPTY, true)],
  ['PATH_INFO', def('text', (v) => v.info.pathInfo, true)],
  ['PATH_TRANSLATED', def('text', (v) => v.pathTranslated, true)],
  ['QUERY_STRING', def('raw', (v) => v.info.queryString)],
  ['REMOTE_ADDR', def('raw', (v) => v.remoteAddr)],
  // No reverse DNS (IIS's EnableReverseDNS is off by default): "If the server does
  // not have this information, it will set REMOTE_ADDR".
  ['REMOTE_HOST', def('raw', (v) => v.remoteAddr)],
  ['REMOTE_PORT', def('raw', (v) => String(v.info.remotePort))],
  ['REMOTE_USER', def('text', EMPTY, true)],
  ['REQUEST_FILENAME', def('text', (v) => v.app.library)],
  ['REQUEST_METHOD', def('raw', (v) => v.info.method)],
  // The IIS 8.5 table shows a path-only example, but what IIS (and URL Rewrite)
  // actually returns is the request target with its query string.
  ['REQUEST_URI', def('raw', (v) => v.info.url)],
  ['SCRIPT_FILENAME', def('text', (v) => v.app.library)],
  ['SCRIPT_NAME', def('text', (v) => v.info.scriptName, true)],
  ['SCRIPT_TRANSLATED', def('text', (v) => v.scriptTranslated, true)],
  ['SERVER_ADDR', def('raw', (v) => v.localAddr)],
  ['SERVER_NAME', def('raw', (v) => v.serverName)],
  ['SERVER_PORT', def('raw', (v) => String(v.info.localPort))],
  ['SERVER_PORT_SECURE', def('raw', (v) => (v.info.secure ? '1' : '0'))],
  ['SERVER_PROTOCOL', def('raw', (v) => v.serverProtocol)],
  ['SERVER_SOFTWARE', def('raw', (v) => v.identity.serverSoftware)],
  ['UNENCODED_URL', def('raw', (v) => v.info.url)],
  // The literal "REMOTE_USER" that mod_isapi returns here is a bug; IIS gives the
  // unmapped user name, which is empty for anonymous requests.
  ['UNMAPPED_REMOTE_USER', def('text', EMPTY, true)],
  ['URL', def('text', (v) => v.url, true)],
]);

/** Every fixed variable name `lookup` answers (HTTP_*, HEADER_* and UNICODE_* come on top). */
export const SERVER_VARIABLE_NAMES: readonly string[] = [...VARIABLES.keys()];

const HTTP_PREFIX = 'HTTP_';
const HEADER_PREFIX = 'HEADER_';
const UNICODE_PREFIX = 'UNICODE_';

export class ServerVariables {
  constructor(
    readonly info: RequestInfo,
    readonly app: AppSettings,
    readonly identity: ServerIdentity,
  ) {}

  /**
   * The bytes to copy for `name`, terminating NUL included (two NUL bytes for
   * UNICODE_ names), or undefined for an unknown variable or an absent header.
   * Names are case-insensitive, as in IIS.
   */
  lookup(name: string): Buffer | undefined {
    const upper = name.toUpperCase();
    if (upper.startsWith(UNICODE_PREFIX)) {
      const variable = VARIABLES.get(upper.slice(UNICODE_PREFIX.length));
      if (!variable?.unicode) return undefined;
      return Buffer.from(variable.get(this) + '\0', 'utf16le');
    }
    const fixed = VARIABLES.get(upper);
    if (fixed) return withNul(fixed.encoding === 'raw' ? rawBytes(fixed.get(this)) : this.textBytes(fixed.get(this)));
    const header = this.headerValue(upper, name);
    return header === undefined ? undefined : withNul(rawBytes(header));
  }

  /** The value as a string (what `lookup` encodes), for logs and tests. */
  value(name: string): string | undefined {
    const upper = name.toUpperCase();
    const unicode = upper.startsWith(UNICODE_PREFIX);
    const variable = VARIABLES.get(unicode ? upper.slice(UNICODE_PREFIX.length) : upper);
    if (variable) return unicode && !variable.unicode ? undefined : variable.get(this);
    return unicode ? undefined : this.headerValue(upper, name);
  }

  /** A text value (e.g. a mapped path) as the ANSI bytes this identity uses, without NUL. */
  textBytes(text: string): Buffer {
    return encodeAnsiText(text, this.identity);
  }

  // ---------------------------------------------------------------------------
  // Values shared with the ECB (lpszPathTranslated, lpszContentType) and the table.

  /**
   * PATH_TRANSLATED: "The physical path that maps to the virtual path in PATH_INFO"
   * (web-dev-reference/server-variables), i.e. PATH_INFO run through the same
   * mapping as MAP_URL_TO_PATH. With no PATH_INFO this is the site root, as IIS
   * answers (David Wang, "What is PATH_TRANSLATED?",
   * learn.microsoft.com/en-us/archive/blogs/david.wang/what-is-path_translated).
   */
  get pathTranslated(): string {
    return mapUrlToPath(this.info.pathInfo, this.app, this.identity);
  }

  /** CONTENT_TYPE: the request's Content-Type, "" when absent. */
  get contentType(): string {
    return findHeader(this.info.headers, 'content-type') ?? '';
  }

  /**
   * CONTENT_LENGTH: the request's Content-Length, or "0" without one (chunked or
   * bodiless requests), as ASP.NET's IIS worker request fills it
   * (microsoft/referencesource System.Web/HttpRequest.cs, FillInServerVariablesCollection).
   */
  get contentLength(): string {
    return this.info.contentLength >= 0 ? String(this.info.contentLength) : '0';
  }

  /**
   * ALL_HTTP: one `HTTP_<NAME>:<value>` line per header, name upper-cased with
   * dashes turned into underscores, no space after the colon ("for ASP compat don't
   * add space") and CRLF line ends (microsoft/referencesource
   * System.Web/HttpRequest.cs, CombineAllHeaders; the IIS 8.5 table shows
   * `HTTP_ACCEPT_ENCODING:gzip, deflate, br`). Repeated headers are merged into one
   * line the way HTTP_<NAME> returns them.
   */
  get allHttp(): string {
    let out = '';
    for (const [name, value] of mergedHeaders(this.info.headers)) {
      out += `${HTTP_PREFIX}${name.toUpperCase().replace(/-/g, '_')}:${value}\r\n`;
    }
    return out;
  }

  /**
   * ALL_RAW: the headers "in raw form ... as they are sent by the client":
   * `Name: value` CRLF lines in arrival order, repeats kept. (HTTP.SYS rebuilds this
   * from its parsed table, so IIS lists well-known headers first; arrival order is
   * what the client actually sent and no extension should depend on the difference.)
   */
  get allRaw(): string {
    let out = '';
    for (const [name, value] of this.info.headers) out += `${name}: ${value}\r\n`;
    return out;
  }

  /** APPL_PHYSICAL_PATH ends with a separator in IIS ("C:\inetpub\wwwroot\"). */
  get applPhysicalPath(): string {
    const path = this.app.physicalPath;
    return /[\\/]$/.test(path) ? path : path + this.identity.pathSeparator;
  }

  /** URL: "The base portion of the URL without any querystring information" (decoded). */
  get url(): string {
    return this.info.scriptName + this.info.pathInfo;
  }

  /**
   * SCRIPT_TRANSLATED: "The extended-length path to the requested file (prefixed
   * with \\?\)". The requested file of a directly invoked extension is its library.
   */
  get scriptTranslated(): string {
    const library = this.app.library;
    if (this.identity.pathSeparator !== '\\' || library.startsWith('\\\\?\\')) return library;
    if (library.startsWith('\\\\')) return '\\\\?\\UNC\\' + library.slice(2);
    return '\\\\?\\' + library;
  }

  /**
   * CACHE_URL: "the unambiguous name for the current URL", the key HTTP.SYS's
   * kernel cache uses, i.e. the absolute URL: scheme://SERVER_NAME:SERVER_PORT/URL.
   */
  get cacheUrl(): string {
    const scheme = this.info.secure ? 'https' : 'http';
    return `${scheme}://${this.serverName}:${this.info.localPort}${this.url}`;
  }

  /** SERVER_PROTOCOL and HTTP_VERSION: `HTTP/1.1`, `HTTP/1.0`. */
  get serverProtocol(): string {
    return `HTTP/${this.info.httpVersion}`;
  }

  /**
   * SERVER_NAME: "The server's host name, DNS alias, or IP address as it would
   * appear in self-referencing URLs": the Host header without its port, else the
   * configured name, else the local address.
   */
  get serverName(): string {
    const host = findHeader(this.info.headers, 'host')?.trim();
    if (host) return stripPort(host);
    return this.identity.serverName || this.localAddr;
  }

  get localAddr(): string {
    return plainAddress(this.info.localAddress);
  }

  get remoteAddr(): string {
    return plainAddress(this.info.remoteAddress);
  }

  // ---------------------------------------------------------------------------

  /**
   * HTTP_<NAME>: "The server interprets any underscore (_) characters in HeaderName
   * as dashes in the actual header" (ms524602), so HTTP_MY_HEADER finds My-Header
   * and never My_Header. HEADER_<Name> (IIS 6+) looks the name up as spelled, which
   * is the only way to reach a header containing underscores. Both are
   * case-insensitive; an absent header is an unknown variable.
   */
  private headerValue(upper: string, original: string): string | undefined {
    let wanted: string;
    if (upper.startsWith(HTTP_PREFIX)) wanted = upper.slice(HTTP_PREFIX.length).replace(/_/g, '-');
    else if (upper.startsWith(HEADER_PREFIX)) wanted = original.slice(HEADER_PREFIX.length);
    else return undefined;
    if (wanted === '') return undefined;
    return findHeader(this.info.headers, wanted.toLowerCase());
  }
}

/**
 * All values of one header, joined the way a single HTTP_<NAME> reports them:
 * RFC 9110 section 5.3 list joining with ", ", except Cookie, whose repeats (HTTP/2
 * splits it) are joined with "; " (RFC 9113 section 8.2.3; RFC 6265 section 5.4).
 */
function findHeader(headers: ReadonlyArray<readonly [string, string]>, lowerName: string): string | undefined {
  let value: string | undefined;
  const separator = lowerName === 'cookie' ? '; ' : ', ';
  for (const [name, v] of headers) {
    if (name.toLowerCase() !== lowerName) continue;
    value = value === undefined ? v : value + separator + v;
  }
  return value;
}

/** Headers merged per (case-insensitive) name, in order of first appearance. */
function mergedHeaders(headers: ReadonlyArray<readonly [string, string]>): Array<[string, string]> {
  const byName = new Map<string, [string, string]>();
  for (const [name, value] of headers) {
    const key = name.toLowerCase();
    const entry = byName.get(key);
    if (entry) entry[1] += (key === 'cookie' ? '; ' : ', ') + value;
    else byName.set(key, [name, value]);
  }
  return [...byName.values()];
}

function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end < 0 ? host : host.slice(0, end + 1);
  }
  const colon = host.indexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}

/** HTTP.SYS reports IPv4 clients of a dual-stack socket as plain IPv4. */
function plainAddress(address: string): string {
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address) ? address.slice(7) : address;
}

function withNul(bytes: Buffer): Buffer {
  const out = Buffer.allocUnsafe(bytes.length + 1);
  bytes.copy(out);
  out[bytes.length] = 0;
  return out;
}

/** Wire strings are latin1 already: copy them back byte for byte. */
function rawBytes(value: string): Buffer {
  // A char above U+00FF cannot have come off the wire; keep it readable rather than truncate it.
  return /[^\x00-\xff]/.test(value) ? Buffer.from(value, 'utf8') : Buffer.from(value, 'latin1');
}

/** Text as the ANSI bytes of `identity` (see the module comment); no NUL added. */
export function encodeAnsiText(text: string, identity: Pick<ServerIdentity, 'ansiEncoding' | 'pathSeparator'>): Buffer {
  const encoding = identity.ansiEncoding ?? (identity.pathSeparator === '\\' ? 'latin1' : 'utf8');
  if (encoding === 'utf8') return Buffer.from(text, 'utf8');
  // WideCharToMultiByte's default char for what the code page cannot hold.
  return Buffer.from(text.replace(/[^\x00-\xff]/gu, '?'), 'latin1');
}

// -----------------------------------------------------------------------------
// HSE_REQ_MAP_URL_TO_PATH(_EX)

/** What HSE_REQ_MAP_URL_TO_PATH_EX puts in HSE_URL_MAPEX_INFO. */
export interface UrlMapping {
  /** lpszPath: the physical path. */
  path: string;
  /** dwFlags: HSE_URL_FLAGS_* of the virtual directory the URL falls in. */
  flags: number;
  /** cchMatchingPath: length, in ANSI bytes, of the virtual directory's physical path within `path`. */
  cchMatchingPath: number;
  /** cchMatchingURL: length, in bytes, of the virtual directory's URL within the normalised URL. */
  cchMatchingURL: number;
}

/**
 * dwFlags "comes from the AccessPerm property in the metabase node for the URL"
 * (HSE_URL_MAPEX_INFO, ms524968). IIS's internal default for it is
 * AccessRead | AccessScript (AccessFlags, ms525016,
 * learn.microsoft.com/en-us/previous-versions/iis/6.0-sdk/ms525016(v=vs.90)); the
 * extension's own directory also needs AccessExecute, without which IIS refuses to
 * run a DLL invoked by URL.
 */
const SITE_FLAGS = HSE_URL_FLAGS.READ | HSE_URL_FLAGS.SCRIPT;
const APP_FLAGS = HSE_URL_FLAGS.READ | HSE_URL_FLAGS.SCRIPT | HSE_URL_FLAGS.EXECUTE;

/**
 * HSE_REQ_MAP_URL_TO_PATH: "map a logical URL path to a physical path", e.g.
 * "/scripts is mapped to C:\InetPub\scripts, /scripts/oop is mapped to
 * C:\InetPub\scripts\oop" (ms525532,
 * learn.microsoft.com/en-us/previous-versions/iis/6.0-sdk/ms525532(v=vs.90)).
 */
export function mapUrlToPath(url: string, app: AppSettings, server: ServerIdentity): string {
  return mapUrlToPathEx(url, app, server).path;
}

/**
 * HSE_REQ_MAP_URL_TO_PATH_EX (ms524961). URLs under the app's virtual directory
 * map into its physical path, every other URL into the site root.
 *
 * The URL is canonicalised first, as IIS canonicalises request URLs: `\` counts as
 * `/`, `.` segments go, `..` removes the previous segment and can never climb above
 * the root (RFC 3986 section 5.2.4). On Windows a segment made only of dots and
 * spaces is treated as `..` too, because Win32 path normalisation trims trailing
 * dots and spaces (so `.. ` would otherwise climb once the path reaches the file
 * system). The vdir is chosen after canonicalisation, so `/scripts/../x` is a
 * site-root URL. Percent-escapes are not decoded: the input is a path, as PATH_INFO
 * is. A trailing slash is kept as a trailing separator.
 */
export function mapUrlToPathEx(url: string, app: AppSettings, server: ServerIdentity): UrlMapping {
  const windows = server.pathSeparator === '\\';
  const segments = canonicalSegments(url, windows);
  const vdir = canonicalSegments(app.virtualPath, windows);
  const inApp = startsWithSegments(segments, vdir);
  const root = inApp ? app.physicalPath : server.siteRoot;
  const rest = inApp ? segments.slice(vdir.length) : segments;
  const trailing = /[\\/]$/.test(url);

  const base = trimTrailingSeparator(root);
  let path = base;
  if (rest.length > 0) path = joinPath(base, rest.join(server.pathSeparator), server.pathSeparator);
  if (trailing && !/[\\/]$/.test(path)) path += server.pathSeparator;

  const matchedUrl = inApp ? vdir : [];
  return {
    path,
    flags: inApp ? APP_FLAGS : SITE_FLAGS,
    cchMatchingPath: encodeAnsiText(base, server).length,
    cchMatchingURL: matchedUrl.length === 0 ? 0 : Buffer.byteLength('/' + matchedUrl.join('/'), 'utf8'),
  };
}

function canonicalSegments(url: string, windows: boolean): string[] {
  const out: string[] = [];
  for (const segment of url.split(/[\\/]+/)) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..' || (windows && /^[. ]+$/.test(segment))) {
      out.pop();
      continue;
    }
    out.push(segment);
  }
  return out;
}

/** URL matching in IIS is case-insensitive, and only on whole segments. */
function startsWithSegments(segments: string[], prefix: string[]): boolean {
  if (prefix.length > segments.length) return false;
  return prefix.every((p, i) => p.toLowerCase() === segments[i]!.toLowerCase());
}

/** Drops trailing separators, but keeps a root such as "/", "C:\" or "\\". */
function trimTrailingSeparator(path: string): string {
  let end = path.length;
  while (end > 1 && (path[end - 1] === '/' || path[end - 1] === '\\') && !/^[A-Za-z]:$/.test(path.slice(0, end - 1))) {
    end--;
  }
  return path.slice(0, end);
}

function joinPath(base: string, rest: string, sep: string): string {
  return /[\\/]$/.test(base) ? base + rest : base + sep + rest;
}
