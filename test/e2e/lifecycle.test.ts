/**
 * Loading, failing to load, and unloading extensions; bad configuration.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { GATEWAY_CLI, LIB_EXT, bridgePath, request, sample, sleep, startGateway, tempDir, writeConfig } from '../harness';

const literal = (s: string): string => s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');

describe('extensions that cannot load', () => {
  test('missing file, missing export and GetExtensionVersion FALSE: 503 naming the reason; other apps serve', async () => {
    const gw = await startGateway([
      '--config',
      writeConfig({
        apps: [
          { name: 'hello', mount: '/scripts/hello.dll', library: sample('hello') },
          { name: 'missing', mount: '/scripts/missing.dll', library: '/nonexistent/dir/missing.so' },
          { name: 'noexport', mount: '/scripts/noexport.dll', library: sample('noexport') },
          { name: 'versionfalse', mount: '/scripts/versionfalse.dll', library: sample('versionfalse') },
        ],
      }),
    ]);
    try {
      const cases: Array<[string, RegExp]> = [
        // The path as the bridge reports it (Z:\\... for the Wine bridge), the library's own extension.
        ['missing', new RegExp(`${literal(bridgePath('/nonexistent/dir/missing.so'))}: file not found`)],
        ['noexport', new RegExp(`noexport${literal(LIB_EXT)}: does not export HttpExtensionProc`)],
        ['versionfalse', new RegExp(`versionfalse${literal(LIB_EXT)}: GetExtensionVersion returned FALSE`)],
      ];
      for (const [name, reason] of cases) {
        const r = await request(`${gw.url}/scripts/${name}.dll`);
        expect(r.status).toBe(503);
        expect(r.body.toString()).toMatch(reason);
        const log = await gw.waitForLog((l) => l.msg === 'extension failed to load; its requests will get 503' && l.app === name);
        expect(String(log.reason)).toMatch(reason);
      }
      expect((await request(`${gw.url}/scripts/hello.dll`)).status).toBe(200);
    } finally {
      await gw.stop();
    }
  });
});

describe('load once, TerminateExtension(HSE_TERM_MUST_UNLOAD) at shutdown after in-flight requests', () => {
  test('lifecycle log: one load, requests served, "terminate 2" after the slow request completes', async () => {
    const dir = tempDir();
    const log = path.join(dir, 'lifecycle.log');
    const gw = await startGateway(
      [
        '--config',
        writeConfig({
          apps: [
            { name: 'lifecycle', mount: '/scripts/lifecycle.dll', library: sample('lifecycle') },
            { name: 'slow', mount: '/scripts/slow.dll', library: sample('slow') },
          ],
        }),
      ],
      { ISAPI_LIFECYCLE_LOG: log },
    );
    for (let i = 0; i < 5; i++) {
      const r = await request(`${gw.url}/scripts/lifecycle.dll`, { agent: false });
      expect(r.body.toString()).toBe('ok\n');
      expect(r.headers['x-lifecycle-loads']).toBe('1');
    }
    // A request in flight when SIGTERM arrives still completes before TerminateExtension.
    const inFlight = request(`${gw.url}/scripts/slow.dll?ms=700`, { agent: false });
    await sleep(150);
    const code = gw.stop('SIGTERM');
    const slow = await inFlight;
    expect(slow.body.toString()).toBe('slept 700\n');
    expect(await code).toBe(0);
    expect(fs.readFileSync(log, 'utf8').trim().split(/\r?\n/)).toEqual(['load', 'terminate 2']); // text mode: CRLF on Windows
  });
});

describe('SIGTERM drain deadline (shutdownTimeoutMs)', () => {
  test('new connections are refused while draining; a request past the deadline is cut; exit 0 in time', async () => {
    const gw = await startGateway([
      '--config',
      writeConfig({ shutdownTimeoutMs: 600, apps: [{ name: 'slow', mount: '/scripts/slow.dll', library: sample('slow') }] }),
    ]);
    const bridges = gw.bridgePids();
    const tooSlow = request(`${gw.url}/scripts/slow.dll?ms=20000`, { agent: false }).then(
      (r) => r.status,
      () => 'cut',
    );
    await sleep(150);
    const started = Date.now();
    const code = gw.stop('SIGTERM');
    await sleep(100);
    await expect(request(`${gw.url}/scripts/slow.dll?ms=1`, { agent: false })).rejects.toThrow(/ECONNREFUSED/);
    expect(await code).toBe(0);
    expect(Date.now() - started).toBeLessThan(4000);
    expect(await tooSlow).not.toBe(200);
    // No bridge process outlives its gateway.
    for (const pid of bridges) expect(() => process.kill(pid, 0)).toThrow();
  });
});

describe('configuration errors', () => {
  function runCli(args: string[]): { status: number | null; stderr: string } {
    const r = spawnSync(process.execPath, [GATEWAY_CLI, ...args], { encoding: 'utf8', timeout: 20000 });
    return { status: r.status, stderr: r.stderr };
  }

  test.each([
    [{ apps: [{ mount: 'scripts/x.dll', library: 'x.so' }] }, /apps\[0\]\.mount: expected a URL path starting with "\/"/],
    [{ apps: [{ mount: '/x.dll' }] }, /apps\[0\]\.library: expected a string \(required\)/],
    [{ apps: [{ mount: '/x.dll', library: 'x.so', readAhead: -1 }] }, /apps\[0\]\.readAhead: expected an integer from 0 to 2147483647, got -1/],
    [{ apps: [{ mount: '/x.dll', library: 'x.so', responseBufferLimit: '4MB' }] }, /apps\[0\]\.responseBufferLimit: expected an integer from 0 to 2147483647, got "4MB"/],
    [{ apps: [{ mount: '/x.dll', library: 'x.so', bridge: 'nope' }] }, /apps\[0\]\.bridge: expected one of the bridges/],
    [{ apps: [], routes: [{ prefix: '/a', upstream: 'iis' }] }, /routes\[0\]\.upstream: expected one of the upstreams/],
    [{ server: { port: 'eighty' }, apps: [] }, /server\.port: expected an integer from 0 to 65535, got "eighty"/],
    [{ apps: [{ mount: '/x.dll', library: 'x.so', colour: 'red' }] }, /apps\[0\]\.colour: expected one of the known fields/],
    [{ bridges: { b: { mode: 'remote', address: 'tcp://h:1' } }, apps: [] }, /bridges\.b\.secretFile: expected a shared secret file/],
    [{ bridges: { b: { workers: 4, runningThreads: 0 } }, apps: [] }, /bridges\.b\.runningThreads: expected an integer from 1 to 256, got 0/],
    [{ bridges: { b: { mode: 'remote', address: 'unix:/tmp/b.sock', runningThreads: 2 } }, apps: [] }, /bridges\.b\.runningThreads: expected no value: a remote bridge is not started by the gateway/],
  ])('%j is refused with a message naming the file and field', (config, message) => {
    const file = writeConfig(config);
    const r = runCli(['--config', file]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toMatch(message);
  });

  test('YAML syntax errors name the line', () => {
    const file = writeConfig('apps:\n  - mount: /x.dll\n    library: [unclosed\n', 'bad.yaml');
    const r = runCli(['--config', file]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml: line \d+, column \d+: expected valid YAML/);
  });

  test('--app without "=" is explained', () => {
    const r = runCli(['--app', '/scripts/hello.dll']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--app: expected <url-path>=<library>/);
  });

  test('--help speaks to an IIS admin', () => {
    const r = spawnSync(process.execPath, [GATEWAY_CLI, '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('ISAPI extensions');
    expect(r.stdout).toContain('--app');
    expect(r.stdout).toContain('PATH_INFO');
  });
});

describe('quick mode', () => {
  test('--app mounts a library directly, like a quick virtual directory', async () => {
    const gw = await startGateway(['--app', `/scripts/hello.dll=${sample('hello')}`, '--app', `/echo.dll=${sample('echo')}`]);
    try {
      expect((await request(`${gw.url}/scripts/hello.dll`)).body.toString()).toBe('Hello from ISAPI!\n');
      expect((await request(`${gw.url}/echo.dll/p`, { method: 'POST', body: 'x' })).headers['x-echo-pathinfo']).toBe('/p');
    } finally {
      await gw.stop();
    }
  });
});

describe('extensions whose HttpExtensionProc waits for their own threads', () => {
  test('with relayCallbacks the other thread\'s callbacks are served while HttpExtensionProc waits', async () => {
    const gw = await startGateway([
      '--config',
      writeConfig({
        apps: [
          { name: 'waitthread', mount: '/scripts/waitthread.dll', library: sample('waitthread'), relayCallbacks: true },
          { name: 'direct', mount: '/scripts/direct.dll', library: sample('waitthread') },
        ],
      }),
    ]);
    try {
      for (let i = 0; i < 10; i++) {
        const r = await request(`${gw.url}/scripts/waitthread.dll`);
        expect(r.status).toBe(200);
        expect(r.body.toString()).toBe('answered by another thread\n');
      }
      // The fast default serves those callbacks only after HttpExtensionProc returns: the extension gives up.
      const r = await request(`${gw.url}/scripts/direct.dll?wait=800`);
      expect(r.status).toBe(500);
      const line = await gw.waitForAccess((l) => l.app === 'direct');
      expect(line.logData).toBe('waitthread: gave up after 800 ms');
      // Nothing is stuck afterwards.
      expect((await request(`${gw.url}/scripts/waitthread.dll`)).status).toBe(200);
    } finally {
      await gw.stop();
    }
  });
});
