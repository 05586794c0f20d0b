/**
 * TLS for TCP bridges: a bridge started with --tls-cert/--tls-key listens with
 * TLS, a gateway with `bridges.<name>.tls.ca` verifies it (the HMAC HELLO still
 * runs inside), and every way of getting it wrong ends in a 503 whose reason
 * names the problem: another CA, a plain gateway, a missing client certificate
 * under mutual TLS, a name the certificate does not carry. Certificates are
 * made with openssl in a temp dir for each run.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, parseConfig } from '../../gateway/config';
import { BRIDGE_CLI, request, sample, sleep, startGateway, tempDir, writeConfig, type RunningGateway } from '../harness';

interface Pki {
  dir: string;
  secret: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  otherCa: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): void {
  openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

function makeLeaf(dir: string, name: string, ca: string, ext: string): void {
  fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`]);
}

function makePki(): Pki {
  const dir = tempDir('isapi-tls-');
  makeCa(dir, 'bridge-ca');
  makeCa(dir, 'other-ca');
  makeLeaf(dir, 'isapi-bridge', 'bridge-ca', 'subjectAltName=IP:127.0.0.1,DNS:isapi-bridge\nextendedKeyUsage=serverAuth\n');
  makeLeaf(dir, 'gateway', 'bridge-ca', 'extendedKeyUsage=clientAuth\n');
  const secret = path.join(dir, 'secret');
  fs.writeFileSync(secret, 'correct horse battery staple\n', { mode: 0o600 });
  const f = (n: string): string => path.join(dir, n);
  return {
    dir,
    secret,
    ca: f('bridge-ca.pem'),
    serverCert: f('isapi-bridge.pem'),
    serverKey: f('isapi-bridge.key'),
    clientCert: f('gateway.pem'),
    clientKey: f('gateway.key'),
    otherCa: f('other-ca.pem'),
  };
}

interface StandaloneBridge {
  proc: ChildProcess;
  stderr: string[];
  address: string;
  listening: Record<string, unknown>;
  logs(): Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

function jsonLines(lines: string[]): Array<Record<string, unknown>> {
  return lines.flatMap((l) => (l.startsWith('{') ? [JSON.parse(l) as Record<string, unknown>] : []));
}

async function startBridge(args: string[]): Promise<StandaloneBridge> {
  const proc = spawn(process.execPath, [BRIDGE_CLI, '--listen', 'tcp://127.0.0.1:0', '--app', `/scripts/hello.dll=${sample('hello')}`, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr: string[] = [];
  proc.stderr!.on('data', (d: Buffer) => stderr.push(...d.toString().split('\n').filter(Boolean)));
  const until = Date.now() + 15000;
  for (;;) {
    const line = jsonLines(stderr).find((l) => l.msg === 'bridge listening');
    if (line) {
      return {
        proc,
        stderr,
        address: String(line.address),
        listening: line,
        logs: () => jsonLines(stderr),
        stop: () =>
          new Promise((resolve) => {
            if (proc.exitCode !== null) return resolve();
            proc.once('exit', () => resolve());
            proc.kill('SIGTERM');
          }),
      };
    }
    if (proc.exitCode !== null || Date.now() > until) throw new Error(`bridge did not start:\n${stderr.join('\n')}`);
    await sleep(20);
  }
}

/** Runs the bridge CLI expecting it to refuse to start; returns its stderr. */
async function refusedBridge(args: string[]): Promise<string> {
  const proc = spawn(process.execPath, [BRIDGE_CLI, '--app', `/h.dll=${sample('hello')}`, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve));
  expect(code).toBe(2);
  return err;
}

function remoteGateway(address: string, secretFile: string, tls?: Record<string, string>): Promise<RunningGateway> {
  return startGateway([
    '--config',
    writeConfig({
      bridges: { remote: { mode: 'remote', address, secretFile, ...(tls ? { tls } : {}) } },
      apps: [{ name: 'hello.dll', mount: '/scripts/hello.dll', library: sample('hello'), bridge: 'remote' }],
    }),
  ]);
}

/** One request through a gateway; stops it afterwards. */
async function oneRequest(gwp: Promise<RunningGateway>): Promise<{ status: number; body: string; gw: RunningGateway }> {
  const gw = await gwp;
  try {
    const r = await request(`${gw.url}/scripts/hello.dll`, { agent: false });
    return { status: r.status, body: r.body.toString(), gw };
  } finally {
    await gw.stop();
  }
}

let pki: Pki;
beforeAll(() => {
  pki = makePki();
});

describe('a TLS bridge (server certificate)', () => {
  let bridge: StandaloneBridge;
  beforeAll(async () => {
    bridge = await startBridge(['--secret-file', pki.secret, '--tls-cert', pki.serverCert, '--tls-key', pki.serverKey]);
  });
  afterAll(() => bridge.stop());

  test('it says it listens with TLS; a gateway that trusts its CA is served (HMAC HELLO inside TLS)', async () => {
    expect(bridge.address).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(bridge.listening.tls).toBe('server');
    const r = await oneRequest(remoteGateway(bridge.address, pki.secret, { ca: pki.ca }));
    expect(r.status).toBe(200);
    expect(r.body).toBe('Hello from ISAPI!\n');
    // A servername the certificate carries works too.
    expect((await oneRequest(remoteGateway(bridge.address, pki.secret, { ca: pki.ca, servername: 'isapi-bridge' }))).status).toBe(200);
  });

  test('the wrong shared secret is still refused inside TLS', async () => {
    const wrong = path.join(pki.dir, 'wrong-secret');
    fs.writeFileSync(wrong, 'guess');
    const r = await oneRequest(remoteGateway(bridge.address, wrong, { ca: pki.ca }));
    expect(r.status).toBe(503);
    expect(r.body).toMatch(/bridge remote is unavailable: bridge presented a wrong proof/);
  });

  test('a gateway trusting another CA gets 503, and its log names the certificate problem', async () => {
    const r = await oneRequest(remoteGateway(bridge.address, pki.secret, { ca: pki.otherCa }));
    expect(r.status).toBe(503);
    expect(r.body).toMatch(/bridge remote is unavailable: TLS handshake failed: .*certificate/i);
    const line = r.gw.logs().find((l) => l.msg === 'TLS handshake with bridge failed');
    expect(line).toMatchObject({ bridge: 'remote' });
    expect(String(line!.reason)).toMatch(/certificate/i);
    expect(String(line!.code)).toMatch(/CERT|UNABLE_TO_VERIFY/);
  });

  test('a servername the certificate does not carry gets 503 naming it', async () => {
    const r = await oneRequest(remoteGateway(bridge.address, pki.secret, { ca: pki.ca, servername: 'someone-else' }));
    expect(r.status).toBe(503);
    expect(r.body).toMatch(/TLS handshake failed: .*someone-else.*ERR_TLS_CERT_ALTNAME_INVALID/);
  });

  test('a plain TCP gateway gets 503 and the bridge logs the failed TLS handshake', async () => {
    const r = await oneRequest(remoteGateway(bridge.address, pki.secret));
    expect(r.status).toBe(503);
    expect(r.body).toMatch(/bridge remote is unavailable: .*if the bridge listens with TLS, set bridges\.remote\.tls/);
    expect(r.gw.logs().some((l) => l.msg === 'TLS handshake with bridge failed')).toBe(false);
    const tlsFailed = (): boolean => bridge.logs().some((l) => l.msg === 'TLS handshake with a gateway failed');
    for (let i = 0; i < 100 && !tlsFailed(); i++) await sleep(20);
    expect(tlsFailed()).toBe(true);
    // The bridge is unaffected and still serves a TLS gateway.
    expect((await oneRequest(remoteGateway(bridge.address, pki.secret, { ca: pki.ca }))).status).toBe(200);
  });
});

describe('mutual TLS (--tls-ca + --tls-require-client-cert)', () => {
  let bridge: StandaloneBridge;
  beforeAll(async () => {
    bridge = await startBridge([
      '--secret-file', pki.secret, '--tls-cert', pki.serverCert, '--tls-key', pki.serverKey,
      '--tls-ca', pki.ca, '--tls-require-client-cert',
    ]);
  });
  afterAll(() => bridge.stop());

  test('a gateway without a client certificate is refused with 503; one with a certificate from the CA is served', async () => {
    expect(bridge.listening.tls).toBe('mutual');
    const refused = await oneRequest(remoteGateway(bridge.address, pki.secret, { ca: pki.ca }));
    expect(refused.status).toBe(503);
    expect(refused.body).toMatch(/bridge remote is unavailable: TLS handshake failed: .*certificate/i);
    expect(refused.gw.logs().some((l) => l.msg === 'TLS handshake with bridge failed' && l.bridge === 'remote')).toBe(true);

    const served = await oneRequest(remoteGateway(bridge.address, pki.secret, { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey }));
    expect(served.status).toBe(200);
    expect(served.body).toBe('Hello from ISAPI!\n');
  });

  test('a client certificate from another CA is refused', async () => {
    // other-ca's own (self-signed) certificate: a certificate, but not from the CA the bridge trusts.
    const otherKey = path.join(pki.dir, 'other-ca.key');
    const r = await oneRequest(remoteGateway(bridge.address, pki.secret, { ca: pki.ca, cert: pki.otherCa, key: otherKey }));
    expect(r.status).toBe(503);
    // Under TLS 1.3 the bridge verifies it after the gateway's handshake is done and closes the connection.
    expect(r.body).toMatch(/bridge remote is unavailable: .*(TLS handshake failed|refuse our client certificate)/);
    expect(r.gw.logs().some((l) => l.msg === 'TLS handshake with bridge failed' && l.bridge === 'remote')).toBe(true);
  });
});

describe('TLS configuration mistakes are reported before anything starts', () => {
  const base = (tls: unknown, extra: Record<string, unknown> = {}): unknown => ({
    bridges: { remote: { mode: 'remote', address: 'tcp://10.0.0.5:9000', secretFile: pki.secret, tls, ...extra } },
    apps: [{ name: 'h', mount: '/h.dll', library: '/x/h.so', bridge: 'remote' }],
  });
  const error = (raw: unknown): string => {
    try {
      parseConfig(raw, 'gw.yaml', pki.dir);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error('no ConfigError');
  };

  test('valid: files are read relative to the config, PEM contents kept', () => {
    const config = parseConfig(base({ ca: 'bridge-ca.pem', cert: 'gateway.pem', key: 'gateway.key', servername: 'isapi-bridge' }), 'gw.yaml', pki.dir);
    const tls = config.bridges[0]!.tls!;
    expect(tls.ca).toContain('-----BEGIN CERTIFICATE-----');
    expect(tls.key).toMatch(/PRIVATE KEY/);
    expect(tls.servername).toBe('isapi-bridge');
  });

  test('each mistake names its field', () => {
    expect(error(base({}))).toMatch(/^gw\.yaml: bridges\.remote\.tls\.ca: expected a PEM file with the CA/);
    expect(error(base({ ca: 'missing.pem' }))).toMatch(/bridges\.remote\.tls\.ca: expected a readable file .*ENOENT/);
    expect(error(base({ ca: 'secret' }))).toMatch(/bridges\.remote\.tls\.ca: expected a file holding PEM CA certificates/);
    expect(error(base({ ca: 'bridge-ca.pem', cert: 'gateway.pem' }))).toMatch(/bridges\.remote\.tls\.key: expected the private key/);
    expect(error(base({ ca: 'bridge-ca.pem', key: 'gateway.key' }))).toMatch(/bridges\.remote\.tls\.cert: expected the client certificate/);
    expect(error(base({ ca: 'bridge-ca.pem', cert: 'gateway.pem', key: 'isapi-bridge.key' }))).toMatch(/bridges\.remote\.tls\.key: expected PEM material Node can use, got .*key values mismatch/);
    expect(error(base({ ca: 'bridge-ca.pem', rejectUnauthorized: false }))).toMatch(/bridges\.remote\.tls\.rejectUnauthorized: expected one of the known fields/);
    expect(error(base('bridge-ca.pem'))).toMatch(/bridges\.remote\.tls: expected an object/);
    expect(
      error({ bridges: { default: { mode: 'local', tls: { ca: 'bridge-ca.pem' } } }, apps: [{ name: 'h', mount: '/h.dll', library: '/x/h.so' }] }),
    ).toMatch(/bridges\.default\.tls: expected no value: TLS is for a remote bridge reached over tcp:\/\//);
  });

  test('the bridge refuses incomplete or misplaced TLS flags', async () => {
    expect(await refusedBridge(['--listen', 'tcp://127.0.0.1:0', '--secret-file', pki.secret, '--tls-cert', pki.serverCert])).toMatch(/needs both --tls-cert and --tls-key/);
    expect(await refusedBridge(['--listen', `unix:${path.join(pki.dir, 'b.sock')}`, '--tls-cert', pki.serverCert, '--tls-key', pki.serverKey])).toMatch(/tcp:\/\/\.\.\. only/);
    expect(
      await refusedBridge(['--listen', 'tcp://127.0.0.1:0', '--secret-file', pki.secret, '--tls-cert', pki.serverCert, '--tls-key', pki.serverKey, '--tls-require-client-cert']),
    ).toMatch(/--tls-require-client-cert needs --tls-ca/);
    expect(await refusedBridge(['--listen', 'tcp://127.0.0.1:0', '--secret-file', pki.secret, '--tls-cert', pki.serverCert, '--tls-key', pki.clientKey])).toMatch(
      /--tls-cert\/--tls-key: .*key values mismatch/,
    );
  });
});
