import { HSE_URL_FLAGS } from './abi/constants';
import type { AppSettings, RequestInfo } from './request-info';
import {
  DEFAULT_SERVER_SOFTWARE,
  SERVER_VARIABLE_NAMES,
  ServerVariables,
  encodeAnsiText,
  mapUrlToPath,
  mapUrlToPathEx,
  type ServerIdentity,
} from './server-variables';

function request(overrides: Partial<RequestInfo> = {}): RequestInfo {
  return {
    requestId: 'r1',
    appName: 'hello',
    method: 'GET',
    url: '/scripts/hello.dll/a/b?x=1&y=%20',
    httpVersion: '1.1',
    headers: [
      ['Host', 'www.example.com:8080'],
      ['Accept', '*/*'],
      ['User-Agent', 'jest'],
    ],
    scriptName: '/scripts/hello.dll',
    pathInfo: '/a/b',
    queryString: 'x=1&y=%20',
    remoteAddress: '192.0.2.7',
    remotePort: 50123,
    localAddress: '198.51.100.1',
    localPort: 8080,
    secure: false,
    contentLength: -1,
    ...overrides,
  };
}

const posixApp: AppSettings = {
  name: 'hello',
  library: '/srv/isapi/scripts/hello.so',
  physicalPath: '/srv/isapi/scripts',
  virtualPath: '/scripts',
  appMdPath: '/LM/W3SVC/1/ROOT/scripts',
  instanceId: 1,
  readAhead: 49152,
  maxConcurrency: 4,
};

const posix: ServerIdentity = {
  serverSoftware: DEFAULT_SERVER_SOFTWARE,
  siteRoot: '/srv/www',
  pathSeparator: '/',
};

const winApp: AppSettings = {
  ...posixApp,
  library: 'C:\\inetpub\\scripts\\hello.dll',
  physicalPath: 'C:\\inetpub\\scripts',
};

const windows: ServerIdentity = {
  serverSoftware: DEFAULT_SERVER_SOFTWARE,
  siteRoot: 'C:\\inetpub\\wwwroot',
  pathSeparator: '\\',
};

function vars(info: Partial<RequestInfo> = {}, app: AppSettings = posixApp, id: ServerIdentity = posix): ServerVariables {
  return new ServerVariables(request(info), app, id);
}

/** lookup() decoded back to text, checking the NUL on the way. */
function get(v: ServerVariables, name: string): string | undefined {
  const buf = v.lookup(name);
  if (buf === undefined) return undefined;
  expect(buf[buf.length - 1]).toBe(0);
  return buf.subarray(0, buf.length - 1).toString('latin1');
}

describe('ServerVariables.lookup: buffer contract', () => {
  it('returns the bytes including one terminating NUL (size = length, as IIS reports it)', () => {
    const buf = vars().lookup('REQUEST_METHOD')!;
    expect(buf).toEqual(Buffer.from('GET\0', 'latin1'));
    expect(buf.length).toBe(4);
  });

  it('returns a lone NUL for an empty value (a known variable, not ERROR_INVALID_INDEX)', () => {
    expect(vars().lookup('AUTH_TYPE')).toEqual(Buffer.from([0]));
    expect(vars().lookup('QUERY_STRING')).toEqual(Buffer.from('x=1&y=%20\0'));
    expect(vars({ queryString: '' }).lookup('QUERY_STRING')).toEqual(Buffer.from([0]));
  });

  it('returns undefined for unknown names (the caller answers ERROR_INVALID_INDEX)', () => {
    const v = vars();
    for (const name of ['NOPE', '', 'CRYPT_PROTOCOL', 'APP_POOL_CONFIG', 'HTTP_', 'HEADER_', 'UNICODE_', 'UNICODE_NOPE']) {
      expect(v.lookup(name)).toBeUndefined();
      expect(v.value(name)).toBeUndefined();
    }
  });

  it('is case-insensitive', () => {
    const v = vars();
    expect(get(v, 'request_method')).toBe('GET');
    expect(get(v, 'Server_Port')).toBe('8080');
    expect(get(v, 'http_user_agent')).toBe('jest');
    expect(v.lookup('unicode_url')).toEqual(Buffer.from('/scripts/hello.dll/a/b\0', 'utf16le'));
  });

  it('answers every name in SERVER_VARIABLE_NAMES', () => {
    const v = vars();
    for (const name of SERVER_VARIABLE_NAMES) expect(v.lookup(name)).toBeInstanceOf(Buffer);
  });
});

describe('CGI variables', () => {
  it('fills the CGI/1.1 set', () => {
    const v = vars({ method: 'POST', contentLength: 11, headers: [['Host', 'h'], ['Content-Type', 'text/plain']] });
    expect(get(v, 'GATEWAY_INTERFACE')).toBe('CGI/1.1');
    expect(get(v, 'REQUEST_METHOD')).toBe('POST');
    expect(get(v, 'CONTENT_LENGTH')).toBe('11');
    expect(get(v, 'CONTENT_TYPE')).toBe('text/plain');
    expect(get(v, 'PATH_INFO')).toBe('/a/b');
    expect(get(v, 'SCRIPT_NAME')).toBe('/scripts/hello.dll');
    expect(get(v, 'QUERY_STRING')).toBe('x=1&y=%20');
    expect(get(v, 'REMOTE_ADDR')).toBe('192.0.2.7');
    expect(get(v, 'REMOTE_HOST')).toBe('192.0.2.7');
    expect(get(v, 'REMOTE_PORT')).toBe('50123');
    expect(get(v, 'SERVER_PORT')).toBe('8080');
    expect(get(v, 'SERVER_PROTOCOL')).toBe('HTTP/1.1');
    expect(get(v, 'SERVER_SOFTWARE')).toBe('Microsoft-IIS/10.0 isapi-gateway/0.1');
  });

  it('reports CONTENT_LENGTH 0 without a Content-Length, and an empty CONTENT_TYPE', () => {
    const v = vars({ contentLength: -1, headers: [] });
    expect(get(v, 'CONTENT_LENGTH')).toBe('0');
    expect(get(v, 'CONTENT_TYPE')).toBe('');
    expect(v.contentType).toBe('');
    expect(vars({ contentLength: 0 }).contentLength).toBe('0');
  });

  it('gives HTTP/1.0 as SERVER_PROTOCOL and HTTP_VERSION for a 1.0 request', () => {
    const v = vars({ httpVersion: '1.0' });
    expect(get(v, 'SERVER_PROTOCOL')).toBe('HTTP/1.0');
    expect(get(v, 'HTTP_VERSION')).toBe('HTTP/1.0');
  });

  it('takes SERVER_NAME from Host without the port', () => {
    expect(get(vars(), 'SERVER_NAME')).toBe('www.example.com');
    expect(get(vars({ headers: [['host', 'plain']] }), 'SERVER_NAME')).toBe('plain');
    expect(get(vars({ headers: [['Host', '[2001:db8::1]:8443']] }), 'SERVER_NAME')).toBe('[2001:db8::1]');
    expect(get(vars({ headers: [['Host', '[2001:db8::1']] }), 'SERVER_NAME')).toBe('[2001:db8::1');
  });

  it('falls back to the configured name, then to LOCAL_ADDR, when there is no Host', () => {
    expect(get(vars({ headers: [] }, posixApp, { ...posix, serverName: 'fallback.example' }), 'SERVER_NAME')).toBe('fallback.example');
    expect(get(vars({ headers: [] }), 'SERVER_NAME')).toBe('198.51.100.1');
    expect(get(vars({ headers: [['Host', '   ']] }), 'SERVER_NAME')).toBe('198.51.100.1');
  });

  it('reports IPv4-mapped addresses as plain IPv4 and keeps real IPv6', () => {
    const v = vars({ remoteAddress: '::ffff:10.0.0.5', localAddress: '::FFFF:10.0.0.1' });
    expect(get(v, 'REMOTE_ADDR')).toBe('10.0.0.5');
    expect(get(v, 'LOCAL_ADDR')).toBe('10.0.0.1');
    expect(get(v, 'SERVER_ADDR')).toBe('10.0.0.1');
    expect(get(vars({ remoteAddress: '::1' }), 'REMOTE_ADDR')).toBe('::1');
  });
});

describe('IIS variables', () => {
  it('describes the URL', () => {
    const v = vars();
    expect(get(v, 'URL')).toBe('/scripts/hello.dll/a/b');
    expect(get(v, 'HTTP_URL')).toBe('/scripts/hello.dll/a/b?x=1&y=%20');
    expect(get(v, 'UNENCODED_URL')).toBe('/scripts/hello.dll/a/b?x=1&y=%20');
    expect(get(v, 'REQUEST_URI')).toBe('/scripts/hello.dll/a/b?x=1&y=%20');
    expect(get(v, 'HTTP_METHOD')).toBe('GET');
    expect(get(v, 'HTTP_VERSION')).toBe('HTTP/1.1');
    expect(get(v, 'CACHE_URL')).toBe('http://www.example.com:8080/scripts/hello.dll/a/b');
    expect(get(vars({ secure: true }), 'CACHE_URL')).toBe('https://www.example.com:8080/scripts/hello.dll/a/b');
  });

  it('lets the fixed HTTP_URL/HTTP_METHOD/HTTP_VERSION win over same-named headers', () => {
    const v = vars({ headers: [['Url', 'header'], ['Method', 'header'], ['Version', 'header']] });
    expect(get(v, 'HTTP_URL')).toBe('/scripts/hello.dll/a/b?x=1&y=%20');
    expect(get(v, 'HTTP_METHOD')).toBe('GET');
    expect(get(v, 'HTTP_VERSION')).toBe('HTTP/1.1');
    expect(get(v, 'HEADER_Url')).toBe('header');
  });

  it('reports HTTPS off/on and SERVER_PORT_SECURE 0/1', () => {
    expect(get(vars(), 'HTTPS')).toBe('off');
    expect(get(vars(), 'SERVER_PORT_SECURE')).toBe('0');
    expect(get(vars({ secure: true }), 'HTTPS')).toBe('on');
    expect(get(vars({ secure: true }), 'SERVER_PORT_SECURE')).toBe('1');
  });

  it('answers the HTTPS_* and CERT_* details with empty strings either way', () => {
    for (const secure of [false, true]) {
      const v = vars({ secure });
      for (const name of ['HTTPS_KEYSIZE', 'HTTPS_SECRETKEYSIZE', 'HTTPS_SERVER_ISSUER', 'HTTPS_SERVER_SUBJECT', 'CERT_FLAGS', 'CERT_SUBJECT']) {
        expect(get(v, name)).toBe('');
      }
    }
  });

  it('describes the site and the application', () => {
    const v = vars();
    expect(get(v, 'INSTANCE_ID')).toBe('1');
    expect(get(v, 'INSTANCE_META_PATH')).toBe('/LM/W3SVC/1');
    expect(get(v, 'INSTANCE_NAME')).toBe('Default Web Site');
    expect(get(v, 'APPL_MD_PATH')).toBe('/LM/W3SVC/1/ROOT/scripts');
    expect(get(v, 'APPL_PHYSICAL_PATH')).toBe('/srv/isapi/scripts/');
    expect(get(v, 'APP_POOL_ID')).toBe('DefaultAppPool');
    expect(get(v, 'DOCUMENT_ROOT')).toBe('/srv/www');
    expect(get(v, 'SCRIPT_FILENAME')).toBe('/srv/isapi/scripts/hello.so');
    expect(get(v, 'REQUEST_FILENAME')).toBe('/srv/isapi/scripts/hello.so');
    expect(get(v, 'SCRIPT_TRANSLATED')).toBe('/srv/isapi/scripts/hello.so');
  });

  it('uses the configured pool and site names and instance id', () => {
    const v = vars({}, { ...posixApp, instanceId: 3 }, { ...posix, appPoolId: 'Legacy', siteName: 'Intranet' });
    expect(get(v, 'APP_POOL_ID')).toBe('Legacy');
    expect(get(v, 'INSTANCE_NAME')).toBe('Intranet');
    expect(get(v, 'INSTANCE_ID')).toBe('3');
    expect(get(v, 'INSTANCE_META_PATH')).toBe('/LM/W3SVC/3');
  });

  it('keeps an existing trailing separator on APPL_PHYSICAL_PATH', () => {
    expect(get(vars({}, { ...posixApp, physicalPath: '/srv/isapi/scripts/' }), 'APPL_PHYSICAL_PATH')).toBe('/srv/isapi/scripts/');
    expect(get(vars({}, winApp, windows), 'APPL_PHYSICAL_PATH')).toBe('C:\\inetpub\\scripts\\');
  });

  it('gives the Windows extended-length SCRIPT_TRANSLATED', () => {
    expect(get(vars({}, winApp, windows), 'SCRIPT_TRANSLATED')).toBe('\\\\?\\C:\\inetpub\\scripts\\hello.dll');
    const unc = { ...winApp, library: '\\\\server\\share\\hello.dll' };
    expect(get(vars({}, unc, windows), 'SCRIPT_TRANSLATED')).toBe('\\\\?\\UNC\\server\\share\\hello.dll');
    const already = { ...winApp, library: '\\\\?\\D:\\x.dll' };
    expect(get(vars({}, already, windows), 'SCRIPT_TRANSLATED')).toBe('\\\\?\\D:\\x.dll');
  });

  it('answers the authentication variables with empty strings for anonymous requests', () => {
    const v = vars({ headers: [['Authorization', 'Basic dXNlcjpwYXNz']] });
    for (const name of ['AUTH_TYPE', 'AUTH_USER', 'AUTH_PASSWORD', 'LOGON_USER', 'REMOTE_USER', 'UNMAPPED_REMOTE_USER']) {
      expect(get(v, name)).toBe('');
    }
  });

  it('never returns the literal "REMOTE_USER" for UNMAPPED_REMOTE_USER (the mod_isapi bug)', () => {
    expect(get(vars(), 'UNMAPPED_REMOTE_USER')).not.toBe('REMOTE_USER');
  });
});

describe('PATH_TRANSLATED', () => {
  it('maps PATH_INFO like MAP_URL_TO_PATH (outside the app vdir: the site root)', () => {
    expect(get(vars(), 'PATH_TRANSLATED')).toBe('/srv/www/a/b');
    expect(vars().pathTranslated).toBe('/srv/www/a/b');
  });

  it('maps into the app when PATH_INFO is under the vdir', () => {
    expect(vars({ pathInfo: '/scripts/data.txt' }).pathTranslated).toBe('/srv/isapi/scripts/data.txt');
  });

  it('is the site root when there is no PATH_INFO', () => {
    expect(vars({ pathInfo: '' }).pathTranslated).toBe('/srv/www');
    expect(vars({ pathInfo: '' }, winApp, windows).pathTranslated).toBe('C:\\inetpub\\wwwroot');
  });

  it('uses backslashes on Windows', () => {
    expect(vars({}, winApp, windows).pathTranslated).toBe('C:\\inetpub\\wwwroot\\a\\b');
  });
});

describe('HTTP_<NAME> and HEADER_<Name>', () => {
  const headers: Array<[string, string]> = [
    ['Host', 'h'],
    ['Accept-Encoding', 'gzip'],
    ['X-Multi', 'one'],
    ['My-Request-Header', 'Dash'],
    ['My_Request_Header', 'Underscore'],
    ['x-multi', 'two'],
    ['Cookie', 'a=1'],
    ['Cookie', 'b=2'],
    ['X-Empty', ''],
  ];

  it('finds headers by HTTP_ name, underscores standing for dashes', () => {
    const v = vars({ headers });
    expect(get(v, 'HTTP_ACCEPT_ENCODING')).toBe('gzip');
    expect(get(v, 'HTTP_HOST')).toBe('h');
  });

  it('never reaches an underscore header through HTTP_, only through HEADER_', () => {
    const v = vars({ headers });
    expect(get(v, 'HTTP_MY_REQUEST_HEADER')).toBe('Dash');
    expect(get(v, 'HEADER_My_Request_Header')).toBe('Underscore');
    expect(get(v, 'HEADER_my-request-header')).toBe('Dash');
    expect(get(vars({ headers: [['Only_Underscore', 'u']] }), 'HTTP_ONLY_UNDERSCORE')).toBeUndefined();
  });

  it('joins repeated headers with ", " and Cookie with "; "', () => {
    const v = vars({ headers });
    expect(get(v, 'HTTP_X_MULTI')).toBe('one, two');
    expect(get(v, 'HEADER_X-Multi')).toBe('one, two');
    expect(get(v, 'HTTP_COOKIE')).toBe('a=1; b=2');
  });

  it('returns an empty value for a header sent empty, and undefined for an absent one', () => {
    const v = vars({ headers });
    expect(get(v, 'HTTP_X_EMPTY')).toBe('');
    expect(v.lookup('HTTP_REFERER')).toBeUndefined();
    expect(v.lookup('HEADER_Referer')).toBeUndefined();
  });

  it('copies header bytes back unchanged (latin1 in, same bytes out)', () => {
    const v = vars({ headers: [['X-Bytes', 'caf\xe9 \xff']] });
    expect(v.lookup('HTTP_X_BYTES')).toEqual(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0xff, 0]));
  });

  it('encodes an impossible non-latin1 value as UTF-8 rather than truncating it', () => {
    const v = vars({ headers: [['X-Wide', '\u20ac']] });
    expect(v.lookup('HTTP_X_WIDE')).toEqual(Buffer.from('\u20ac\0', 'utf8'));
  });
});

describe('ALL_HTTP and ALL_RAW', () => {
  const headers: Array<[string, string]> = [
    ['Host', 'h'],
    ['Accept', '*/*'],
    ['X-Custom-Header', 'v'],
    ['accept', 'text/html'],
  ];

  it('formats ALL_HTTP as HTTP_NAME:value CRLF lines, merged per header', () => {
    expect(get(vars({ headers }), 'ALL_HTTP')).toBe('HTTP_HOST:h\r\nHTTP_ACCEPT:*/*, text/html\r\nHTTP_X_CUSTOM_HEADER:v\r\n');
  });

  it('formats ALL_RAW as the headers as received, repeats kept', () => {
    expect(get(vars({ headers }), 'ALL_RAW')).toBe('Host: h\r\nAccept: */*\r\nX-Custom-Header: v\r\naccept: text/html\r\n');
  });

  it('gives empty strings when there are no headers', () => {
    expect(get(vars({ headers: [] }), 'ALL_HTTP')).toBe('');
    expect(get(vars({ headers: [] }), 'ALL_RAW')).toBe('');
  });

  it('merges cookies with "; " in ALL_HTTP too', () => {
    expect(get(vars({ headers: [['Cookie', 'a=1'], ['cookie', 'b=2']] }), 'ALL_HTTP')).toBe('HTTP_COOKIE:a=1; b=2\r\n');
  });
});

describe('UNICODE_ variants', () => {
  it('returns UTF-16LE with a two-byte NUL (size in bytes)', () => {
    const v = vars({ pathInfo: '/\u00e9\u65e5' });
    const buf = v.lookup('UNICODE_PATH_INFO')!;
    expect(buf).toEqual(Buffer.from('/\u00e9\u65e5\0', 'utf16le'));
    expect(buf.length).toBe(8);
    expect(v.value('UNICODE_PATH_INFO')).toBe('/\u00e9\u65e5');
  });

  it('exists for URL, path and user variables', () => {
    const v = vars();
    for (const name of [
      'URL',
      'PATH_INFO',
      'PATH_TRANSLATED',
      'SCRIPT_NAME',
      'SCRIPT_TRANSLATED',
      'APPL_MD_PATH',
      'APPL_PHYSICAL_PATH',
      'APP_POOL_ID',
      'AUTH_USER',
      'LOGON_USER',
      'REMOTE_USER',
      'UNMAPPED_REMOTE_USER',
      'CACHE_URL',
    ]) {
      const buf = v.lookup('UNICODE_' + name)!;
      expect(buf.subarray(buf.length - 2)).toEqual(Buffer.from([0, 0]));
      expect(buf.subarray(0, buf.length - 2).toString('utf16le')).toBe(v.value(name));
    }
  });

  it('does not exist for headers or wire values', () => {
    const v = vars();
    for (const name of ['UNICODE_HTTP_HOST', 'UNICODE_HEADER_Host', 'UNICODE_ALL_HTTP', 'UNICODE_QUERY_STRING', 'UNICODE_SERVER_NAME']) {
      expect(v.lookup(name)).toBeUndefined();
      expect(v.value(name)).toBeUndefined();
    }
  });
});

describe('ANSI encoding of text values', () => {
  it('uses UTF-8 off Windows so PATH_TRANSLATED can be opened', () => {
    const v = vars({ pathInfo: '/caf\u00e9' });
    expect(v.lookup('PATH_INFO')).toEqual(Buffer.from('/caf\u00e9\0', 'utf8'));
    expect(v.lookup('PATH_TRANSLATED')).toEqual(Buffer.from('/srv/www/caf\u00e9\0', 'utf8'));
  });

  it('uses a Windows-1252-like code page on Windows, with ? for what it cannot hold', () => {
    const v = vars({ pathInfo: '/caf\u00e9\u65e5' }, winApp, windows);
    expect(v.lookup('PATH_INFO')).toEqual(Buffer.from([0x2f, 0x63, 0x61, 0x66, 0xe9, 0x3f, 0]));
  });

  it('honours an explicit ansiEncoding', () => {
    expect(encodeAnsiText('\u00e9', { pathSeparator: '/', ansiEncoding: 'latin1' })).toEqual(Buffer.from([0xe9]));
    expect(encodeAnsiText('\u00e9', { pathSeparator: '\\', ansiEncoding: 'utf8' })).toEqual(Buffer.from([0xc3, 0xa9]));
    expect(encodeAnsiText('\u{1f600}', { pathSeparator: '\\' })).toEqual(Buffer.from('?'));
    expect(vars().textBytes('\u00e9')).toEqual(Buffer.from([0xc3, 0xa9]));
  });

  it('exposes the identity it was built with', () => {
    expect(vars().identity).toBe(posix);
  });
});

describe('mapUrlToPath (HSE_REQ_MAP_URL_TO_PATH)', () => {
  it('maps the documented examples', () => {
    expect(mapUrlToPath('/scripts', winApp, windows)).toBe('C:\\inetpub\\scripts');
    expect(mapUrlToPath('/scripts/oop', winApp, windows)).toBe('C:\\inetpub\\scripts\\oop');
  });

  it('maps URLs outside the app into the site root', () => {
    expect(mapUrlToPath('/images/logo.gif', winApp, windows)).toBe('C:\\inetpub\\wwwroot\\images\\logo.gif');
    expect(mapUrlToPath('/images/logo.gif', posixApp, posix)).toBe('/srv/www/images/logo.gif');
  });

  it('matches the vdir case-insensitively and only on whole segments', () => {
    expect(mapUrlToPath('/SCRIPTS/x.txt', winApp, windows)).toBe('C:\\inetpub\\scripts\\x.txt');
    expect(mapUrlToPath('/scriptsX/x.txt', winApp, windows)).toBe('C:\\inetpub\\wwwroot\\scriptsX\\x.txt');
  });

  it('keeps a trailing slash as a trailing separator', () => {
    expect(mapUrlToPath('/scripts/', winApp, windows)).toBe('C:\\inetpub\\scripts\\');
    expect(mapUrlToPath('/', winApp, windows)).toBe('C:\\inetpub\\wwwroot\\');
    expect(mapUrlToPath('/docs/', posixApp, posix)).toBe('/srv/www/docs/');
    expect(mapUrlToPath('', posixApp, posix)).toBe('/srv/www');
  });

  it('never climbs above the root with ..', () => {
    expect(mapUrlToPath('/../../etc/passwd', posixApp, posix)).toBe('/srv/www/etc/passwd');
    expect(mapUrlToPath('/scripts/../../../x', posixApp, posix)).toBe('/srv/www/x');
    expect(mapUrlToPath('/scripts/a/../b', posixApp, posix)).toBe('/srv/isapi/scripts/b');
    expect(mapUrlToPath('/..', posixApp, posix)).toBe('/srv/www');
  });

  it('chooses the vdir after canonicalising, so /scripts/../x is a site URL', () => {
    expect(mapUrlToPath('/scripts/../secret.txt', winApp, windows)).toBe('C:\\inetpub\\wwwroot\\secret.txt');
    expect(mapUrlToPath('/x/../scripts/y', winApp, windows)).toBe('C:\\inetpub\\scripts\\y');
  });

  it('treats backslashes as slashes and drops . and empty segments', () => {
    expect(mapUrlToPath('\\scripts\\..\\..\\windows\\win.ini', winApp, windows)).toBe('C:\\inetpub\\wwwroot\\windows\\win.ini');
    expect(mapUrlToPath('//a/./b//c', posixApp, posix)).toBe('/srv/www/a/b/c');
  });

  it('on Windows treats dot-and-space segments as .. (Win32 trims them)', () => {
    expect(mapUrlToPath('/a/.. /.../b', winApp, windows)).toBe('C:\\inetpub\\wwwroot\\b');
    expect(mapUrlToPath('/.. /.. /x', winApp, windows)).toBe('C:\\inetpub\\wwwroot\\x');
    // On POSIX "..." is an ordinary name.
    expect(mapUrlToPath('/a/.../b', posixApp, posix)).toBe('/srv/www/a/.../b');
  });

  it('leaves percent-escapes alone', () => {
    expect(mapUrlToPath('/a%2f..%2fb', posixApp, posix)).toBe('/srv/www/a%2f..%2fb');
  });

  it('handles roots and physical paths with trailing separators', () => {
    const rootSite: ServerIdentity = { ...windows, siteRoot: 'C:\\' };
    expect(mapUrlToPath('/x', winApp, rootSite)).toBe('C:\\x');
    expect(mapUrlToPath('/', winApp, rootSite)).toBe('C:\\');
    const slashRoot: ServerIdentity = { ...posix, siteRoot: '/' };
    expect(mapUrlToPath('/x/y', posixApp, slashRoot)).toBe('/x/y');
    expect(mapUrlToPath('/', posixApp, slashRoot)).toBe('/');
    const trailing = { ...posixApp, physicalPath: '/srv/isapi/scripts//' };
    expect(mapUrlToPath('/scripts/f', trailing, posix)).toBe('/srv/isapi/scripts/f');
  });

  it('maps everything into the app when it is mounted at /', () => {
    const rootApp = { ...posixApp, virtualPath: '/', physicalPath: '/srv/app' };
    expect(mapUrlToPath('/a/b', rootApp, posix)).toBe('/srv/app/a/b');
    expect(mapUrlToPath('/', rootApp, posix)).toBe('/srv/app/');
    expect(mapUrlToPathEx('/a', { ...rootApp, virtualPath: '' }, posix).path).toBe('/srv/app/a');
  });
});

describe('mapUrlToPathEx (HSE_REQ_MAP_URL_TO_PATH_EX)', () => {
  it('reports the app vdir with READ|SCRIPT|EXECUTE and the matching lengths', () => {
    const m = mapUrlToPathEx('/scripts/sub/file.txt', winApp, windows);
    expect(m.path).toBe('C:\\inetpub\\scripts\\sub\\file.txt');
    expect(m.flags).toBe(HSE_URL_FLAGS.READ | HSE_URL_FLAGS.SCRIPT | HSE_URL_FLAGS.EXECUTE);
    expect(m.flags).toBe(0x205);
    expect(m.cchMatchingPath).toBe('C:\\inetpub\\scripts'.length);
    expect(m.cchMatchingURL).toBe('/scripts'.length);
  });

  it('reports the site root with READ|SCRIPT', () => {
    const m = mapUrlToPathEx('/images/a.gif', winApp, windows);
    expect(m.path).toBe('C:\\inetpub\\wwwroot\\images\\a.gif');
    expect(m.flags).toBe(HSE_URL_FLAGS.READ | HSE_URL_FLAGS.SCRIPT);
    expect(m.cchMatchingPath).toBe('C:\\inetpub\\wwwroot'.length);
    expect(m.cchMatchingURL).toBe(0);
  });

  it('counts the physical prefix in ANSI bytes without its trailing separator', () => {
    const app = { ...posixApp, physicalPath: '/srv/caf\u00e9/' };
    const m = mapUrlToPathEx('/scripts/x', app, posix);
    expect(m.path).toBe('/srv/caf\u00e9/x');
    expect(m.cchMatchingPath).toBe(Buffer.byteLength('/srv/caf\u00e9'));
  });

  it('agrees with mapUrlToPath', () => {
    for (const url of ['/scripts', '/scripts/', '/a/b', '', '/../x']) {
      expect(mapUrlToPathEx(url, winApp, windows).path).toBe(mapUrlToPath(url, winApp, windows));
    }
  });
});
