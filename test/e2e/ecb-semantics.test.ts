/**
 * IIS semantics of the ECB callbacks, observed by real extensions.
 */
import path from 'node:path';
import { RunningGateway, bridgePath, request, sample, startGateway, writeConfig } from '../harness';

let gw: RunningGateway;

beforeAll(async () => {
  gw = await startGateway([
    '--config',
    writeConfig({
      apps: [
        { name: 'servervars', mount: '/scripts/servervars.dll', library: sample('servervars') },
        { name: 'rawheaders', mount: '/scripts/rawheaders.dll', library: sample('rawheaders') },
        { name: 'status', mount: '/scripts/status.dll', library: sample('status') },
        { name: 'threaderr', mount: '/scripts/threaderr.dll', library: sample('threaderr') },
      ],
    }),
  ]);
});

afterAll(async () => {
  await gw?.stop();
});

/** Parses the servervars sample's `NAME=value`, `NAME#size=n`, `NAME!error=e` lines. */
async function variables(names: string[], headers: Record<string, string> = {}, suffix = ''): Promise<Map<string, string>> {
  const r = await request(`${gw.url}/scripts/servervars.dll${suffix}?names=${names.join(',')}`, { headers });
  expect(r.status).toBe(200);
  const out = new Map<string, string>();
  for (const line of r.body.toString('latin1').split('\n')) {
    const m = /^([^=#!]+)([=#!])(.*)$/.exec(line);
    if (!m) continue;
    const [, name, sep, rest] = m;
    out.set(sep === '=' ? name! : `${name}${sep}${rest!.split('=')[0]}`, sep === '=' ? rest! : rest!.split('=')[1]!);
  }
  return out;
}

describe('GetServerVariable', () => {
  test('CGI and IIS variables, with sizes that count the NUL', async () => {
    const port = new URL(gw.url).port;
    const v = await variables(
      ['REQUEST_METHOD', 'SERVER_PORT', 'SERVER_NAME', 'SERVER_PROTOCOL', 'SCRIPT_NAME', 'PATH_INFO', 'URL', 'HTTP_VERSION', 'HTTPS', 'SERVER_PORT_SECURE', 'REMOTE_ADDR', 'LOCAL_ADDR', 'INSTANCE_ID', 'APPL_MD_PATH', 'GATEWAY_INTERFACE', 'CONTENT_LENGTH', 'QUERY_STRING'],
      {},
      '/extra/path',
    );
    expect(v.get('REQUEST_METHOD')).toBe('GET');
    expect(v.get('SERVER_PORT')).toBe(port);
    expect(v.get('SERVER_PORT#size')).toBe(String(port.length + 1));
    expect(v.get('SERVER_NAME')).toBe('127.0.0.1');
    expect(v.get('SERVER_PROTOCOL')).toBe('HTTP/1.1');
    expect(v.get('SCRIPT_NAME')).toBe('/scripts/servervars.dll');
    expect(v.get('PATH_INFO')).toBe('/extra/path');
    expect(v.get('URL')).toBe('/scripts/servervars.dll/extra/path');
    expect(v.get('HTTP_VERSION')).toBe('HTTP/1.1');
    expect(v.get('HTTPS')).toBe('off');
    expect(v.get('SERVER_PORT_SECURE')).toBe('0');
    expect(v.get('REMOTE_ADDR')).toBe('127.0.0.1');
    expect(v.get('LOCAL_ADDR')).toBe('127.0.0.1');
    expect(v.get('INSTANCE_ID')).toBe('1');
    expect(v.get('APPL_MD_PATH')).toBe('/LM/W3SVC/1/ROOT/scripts');
    expect(v.get('GATEWAY_INTERFACE')).toBe('CGI/1.1');
    expect(v.get('CONTENT_LENGTH')).toBe('0');
    expect(v.get('QUERY_STRING')).toMatch(/^names=REQUEST_METHOD,/);
  });

  test('headers by HTTP_<NAME>, HEADER_<Name>, ALL_HTTP and ALL_RAW', async () => {
    const v = await variables(['HTTP_X_CUSTOM_THING', 'HEADER_X-Custom-Thing', 'ALL_HTTP', 'ALL_RAW', 'HTTP_ABSENT'], {
      'X-Custom-Thing': 'v1',
    });
    expect(v.get('HTTP_X_CUSTOM_THING')).toBe('v1');
    expect(v.get('HEADER_X-Custom-Thing')).toBe('v1');
    expect(v.get('ALL_HTTP')).toContain('HTTP_X_CUSTOM_THING:v1\\r\\n');
    expect(v.get('ALL_RAW')).toContain('X-Custom-Thing: v1\\r\\n');
    expect(v.get('HTTP_ABSENT!error')).toBe('1413');
  });

  test('a too-small buffer fails with 122 and the required size; an unknown name with 1413', async () => {
    // The sample first probes every variable with a NULL buffer of size 0: it asserts 122 + size itself
    // and prints "!unexpected" otherwise.
    const r = await request(`${gw.url}/scripts/servervars.dll?names=SERVER_NAME,NO_SUCH_VAR`);
    const text = r.body.toString();
    expect(text).not.toContain('!unexpected');
    expect(text).toContain('SERVER_NAME#size=10');
    expect(text).toContain('NO_SUCH_VAR!error=1413');
  });

  test('error codes reach the calling thread: the HttpExtensionProc thread and the extension\'s own thread', async () => {
    const r = await request(`${gw.url}/scripts/threaderr.dll`);
    expect(r.status).toBe(200);
    const text = r.body.toString();
    for (const who of ['main', 'thread']) {
      expect(text).toContain(`${who}-gsv-small ret=0 err=122 size=10`);
      expect(text).toContain(`${who}-gsv-unknown ret=0 err=1413`);
      expect(text).toContain(`${who}-ssf-unknown ret=0 err=87`);
    }
    expect(text).toContain('thread-distinct=1');
  });
});

describe('response heads written raw with WriteClient', () => {
  test('a status line', async () => {
    const r = await request(`${gw.url}/scripts/rawheaders.dll?mode=statusline`);
    expect(r.status).toBe(201);
    expect(r.statusMessage).toBe('Created');
    expect(r.headers['x-raw']).toBe('yes');
    expect(r.body.toString()).toBe('raw body\n');
  });

  test('a CGI Status: header', async () => {
    const r = await request(`${gw.url}/scripts/rawheaders.dll?mode=status`);
    expect(r.status).toBe(202);
    expect(r.headers.status).toBeUndefined();
    expect(r.body.toString()).toBe('accepted\n');
  });

  test.each([undefined, 5, 17, 40])('a head split across WriteClient calls (cut at %p)', async (at) => {
    const r = await request(`${gw.url}/scripts/rawheaders.dll?mode=split${at ? `&at=${at}` : ''}`);
    expect(r.status).toBe(201);
    expect(r.headers['x-raw']).toBe('yes');
    expect(r.body.toString()).toBe('raw body\n');
  });

  test('output with no head at all is body under a default 200 head', async () => {
    const r = await request(`${gw.url}/scripts/rawheaders.dll?mode=plain`);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('just a body\n');
  });

  test("an extension's own chunked framing reaches the client decoded exactly once", async () => {
    const r = await request(`${gw.url}/scripts/rawheaders.dll?mode=chunked`);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('hello, chunked world\n');
  });
});

describe('status codes and errors', () => {
  test('SEND_RESPONSE_HEADER status string wins', async () => {
    const r = await request(`${gw.url}/scripts/status.dll?mode=status&code=404&reason=Not%20Here`);
    expect(r.status).toBe(404);
    expect(r.statusMessage).toBe('Not Here');
  });

  test('a NULL status is "200 OK" as Microsoft documents; dwHttpStatusCode is what gets logged', async () => {
    const r = await request(`${gw.url}/scripts/status.dll?mode=dwstatus&code=418`);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('dwstatus 418\n');
    const line = await gw.waitForAccess((l) => l.app === 'status' && l.ecbStatus === 418);
    expect(line.status).toBe(200);
  });

  test('an explicit status beats dwHttpStatusCode', async () => {
    const r = await request(`${gw.url}/scripts/status.dll?mode=both&code=409&dw=503`);
    expect(r.status).toBe(409);
  });

  test('HSE_STATUS_ERROR before any output is a 500', async () => {
    const r = await request(`${gw.url}/scripts/status.dll?mode=error`);
    expect(r.status).toBe(500);
  });

  test('HSE_STATUS_ERROR after chunked output aborts the response instead of completing it', async () => {
    await expect(request(`${gw.url}/scripts/status.dll?mode=error-after-output`, { agent: false })).rejects.toThrow();
    expect((await request(`${gw.url}/scripts/status.dll?mode=status&code=200`)).status).toBe(200);
  });

  test('SEND_URL_REDIRECT_RESP is a 302 Object Moved', async () => {
    const r = await request(`${gw.url}/scripts/status.dll?mode=redirect&to=/elsewhere`);
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe('/elsewhere');
  });

  test('an unsupported ServerSupportFunction code fails with 87, and is logged', async () => {
    const r = await request(`${gw.url}/scripts/status.dll?mode=unsupported&code=9999`);
    expect(r.body.toString()).toContain('ssf=0 error=87');
    await gw.waitForLog((l) => l.msg === 'unsupported ServerSupportFunction request' && l.code === 9999);
  });

  test('lpszLogData reaches the access log', async () => {
    await request(`${gw.url}/scripts/status.dll?mode=logdata`);
    const line = await gw.waitForAccess((l) => l.app === 'status' && l.logData === 'status-sample logdata');
    expect(line.status).toBe(200);
  });

  test('HSE_REQ_IS_KEEP_CONN reflects the client connection', async () => {
    const keep = await request(`${gw.url}/scripts/status.dll?mode=keepconn`);
    expect(keep.body.toString()).toContain('keepconn=1');
    const close = await request(`${gw.url}/scripts/status.dll?mode=keepconn`, { headers: { Connection: 'close' }, agent: false });
    expect(close.body.toString()).toContain('keepconn=0');
  });

  test('HSE_REQ_MAP_URL_TO_PATH maps into the app directory, and reports 122 for a small buffer', async () => {
    const r = await request(`${gw.url}/scripts/status.dll?mode=map&url=/scripts/x.txt`);
    expect(r.body.toString()).toContain(`path=${bridgePath(path.join(path.dirname(sample('status')), 'x.txt'))}`);
    const small = await request(`${gw.url}/scripts/status.dll?mode=map&url=/scripts/x.txt&size=4`);
    expect(small.body.toString()).toMatch(/ssf=0 error=122 size=\d+/);
  });
});
