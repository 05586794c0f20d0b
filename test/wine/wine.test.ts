/**
 * "windows-dll-on-linux" specifics, run by test/wine/run.sh (ISAPI_TEST_BRIDGE=wine);
 * skipped in the native run. The shared e2e suites run in this mode too.
 *  - the ABI: mingw's sizes/offsets (httpext.h from mingw-w64, run under Wine) equal
 *    koffi's, both Linux koffi and the win32 koffi inside Windows node;
 *  - gateway AND bridge as Windows node under Wine, over a real named pipe, with a
 *    Linux HTTP client;
 *  - a standalone Wine bridge on loopback TCP with the shared-secret HELLO;
 *  - supervision: a killed Wine bridge is restarted; .dll apps pick Wine by themselves.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import koffi from 'koffi';
import { abiConstants } from '../abi-constants';
import { STRUCTS } from '../../bridge/abi/structs';
import { freeLoopbackPort, wineEnvironment, winePath } from '../../gateway/wine-bridge';
import { BRIDGE_MODE, GATEWAY_CLI, ROOT, request, sample, sleep, startGateway, tempDir, writeConfig } from '../harness';

const maybe = BRIDGE_MODE === 'wine' ? describe : describe.skip;
const W = wineEnvironment();

function wineEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, WINEPREFIX: W.prefix, WINEDEBUG: '-all', NODE_PATH: winePath(W.nodePath), ...extra };
  delete env.ISAPI_BRIDGE_RUNTIME;
  delete env.ISAPI_BRIDGE_SUPERVISED;
  return env;
}

/** Windows node.exe under Wine, stdout/stderr in files (a Unix pipe would kill it with EBADF). */
class WineNode {
  readonly proc: ChildProcess;
  readonly out: string;
  readonly err: string;
  readonly exited: Promise<number | null>;
  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    const dir = tempDir('isapi-wine-test-');
    this.out = path.join(dir, 'out.log');
    this.err = path.join(dir, 'err.log');
    const o = fs.openSync(this.out, 'w');
    const e = fs.openSync(this.err, 'w');
    this.proc = spawn(W.wine, [W.node, ...args], { stdio: ['ignore', o, e], env: wineEnv(env) });
    fs.closeSync(o);
    fs.closeSync(e);
    this.exited = new Promise((resolve) => this.proc.on('exit', (code) => resolve(code)));
  }
  logs(): Array<Record<string, unknown>> {
    return fs
      .readFileSync(this.err, 'utf8')
      .split(/\r?\n/)
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
  }
  async waitForLog(pred: (l: Record<string, unknown>) => boolean, timeoutMs = 30000): Promise<Record<string, unknown>> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.logs().find(pred);
      if (hit) return hit;
      if (this.proc.exitCode !== null || Date.now() > until) {
        throw new Error(`no matching log line (exit ${this.proc.exitCode}); stderr:\n${fs.readFileSync(this.err, 'utf8')}`);
      }
      await sleep(50);
    }
  }
}

// ---------------------------------------------------------------------------
// ABI: the same generated layout program as test/abi-layout.test.ts, built by mingw.


function parseLines(text: string): Map<string, number> {
  return new Map(
    text
      .trim()
      .split(/\r?\n/)
      .map((l) => {
        const [kind, key, value] = l.split(' ');
        return [`${kind} ${key}`, Number(value)] as [string, number];
      }),
  );
}

maybe('ABI under Wine: mingw-w64 (httpext.h) and koffi agree', () => {
  let mingw: Map<string, number>;
  let winKoffi: Map<string, number>;

  beforeAll(async () => {
    const lines: string[] = ['#include "isapi.h"', '#include <stdio.h>', '#include <stddef.h>', 'int main(void) {'];
    for (const [name, type] of Object.entries(STRUCTS)) {
      lines.push(`  printf("sizeof ${name} %lu\\n", (unsigned long)sizeof(${name}));`);
      for (const member of Object.keys(koffi.type(type).members ?? {})) {
        lines.push(`  printf("offsetof ${name}.${member} %lu\\n", (unsigned long)offsetof(${name}, ${member}));`);
      }
    }
    for (const [macro] of abiConstants()) lines.push(`  printf("const ${macro} %lu\\n", (unsigned long)(${macro}));`);
    lines.push('  printf("sizeof DWORD %lu\\n", (unsigned long)sizeof(DWORD));', '  printf("win32 _WIN32 %d\\n", 1);', '  return 0;', '}');
    const dir = tempDir();
    const src = path.join(dir, 'layout.c');
    const exe = path.join(dir, 'layout.exe');
    fs.writeFileSync(src, lines.join('\n'));
    execFileSync(process.env.MINGW_CC ?? 'x86_64-w64-mingw32-gcc', ['-Wall', '-Werror', '-I', path.join(ROOT, 'bridge', 'include'), '-o', exe, src]);
    mingw = parseLines(execFileSync(W.wine, [exe], { encoding: 'utf8', env: wineEnv() }));

    // koffi's own layouts as the win32 build computes them inside Windows node.
    const script = path.join(dir, 'koffi-layout.js');
    fs.writeFileSync(
      script,
      `const koffi = require('koffi');
       const { STRUCTS } = require(${JSON.stringify(winePath(path.join(ROOT, 'dist', 'bridge', 'abi', 'structs.js')))});
       const out = [];
       for (const [name, type] of Object.entries(STRUCTS)) {
         out.push('sizeof ' + name + ' ' + koffi.sizeof(type));
         for (const m of Object.keys(koffi.type(type).members || {})) out.push('offsetof ' + name + '.' + m + ' ' + koffi.offsetof(type, m));
       }
       out.push('platform ' + process.platform + ' 1');
       require('fs').writeFileSync(process.argv[2], out.join('\\n'));`,
    );
    const result = path.join(dir, 'koffi.txt');
    const node = new WineNode([winePath(script), winePath(result)], { NODE_PATH: winePath(W.nodePath) });
    expect(await node.exited).toBe(0);
    winKoffi = parseLines(fs.readFileSync(result, 'utf8'));
  });

  test('mingw takes the _WIN32 path of isapi.h; DWORD is 32 bits; the ECB is Microsoft\'s x64 layout', () => {
    expect(mingw.get('win32 _WIN32')).toBe(1);
    expect(mingw.get('sizeof DWORD')).toBe(4);
    expect(mingw.get('sizeof EXTENSION_CONTROL_BLOCK')).toBe(192);
    expect(mingw.get('offsetof EXTENSION_CONTROL_BLOCK.ConnID')).toBe(8);
    expect(mingw.get('offsetof EXTENSION_CONTROL_BLOCK.lpszMethod')).toBe(104);
    expect(mingw.get('offsetof EXTENSION_CONTROL_BLOCK.ServerSupportFunction')).toBe(184);
    expect(mingw.get('sizeof HSE_VERSION_INFO')).toBe(260);
    expect(winKoffi.get('platform win32')).toBe(1);
  });

  test.each(Object.keys(STRUCTS))('%s: Linux koffi, win32 koffi and mingw agree on size and every offset', (name) => {
    const type = STRUCTS[name as keyof typeof STRUCTS];
    const keys = [`sizeof ${name}`, ...Object.keys(koffi.type(type).members ?? {}).map((m) => `offsetof ${name}.${m}`)];
    expect(keys.length).toBeGreaterThan(2);
    for (const key of keys) {
      const linux = key.startsWith('sizeof') ? koffi.sizeof(type) : koffi.offsetof(type, key.split('.')[1]!);
      expect([key, mingw.get(key), winKoffi.get(key)]).toEqual([key, linux, linux]);
    }
  });

  test('every HSE_* / ERROR_* constant has the same value in mingw\'s httpext.h / winerror.h', () => {
    const list = abiConstants();
    expect(list.length).toBeGreaterThan(80);
    for (const [macro, value] of list) expect([macro, mingw.get(`const ${macro}`)]).toEqual([macro, value]);
  });
});

// ---------------------------------------------------------------------------

maybe('gateway and bridge both as Windows node under Wine, over a named pipe', () => {
  test('a Linux HTTP client is served through the Windows gateway; the bridge listens on \\\\.\\pipe\\; SHUTDOWN stops it cleanly', async () => {
    const log = path.join(tempDir(), 'lifecycle.log');
    const gw = new WineNode(
      [
        winePath(GATEWAY_CLI),
        '--port',
        '0',
        '--app',
        `/scripts/hello.dll=${winePath(sample('hello'))}`,
        '--app',
        `/scripts/echo.dll=${winePath(sample('echo'))}`,
        '--app',
        `/scripts/lifecycle.dll=${winePath(sample('lifecycle'))}`,
      ],
      { ISAPI_LIFECYCLE_LOG: winePath(log) },
    );
    try {
      const listening = await gw.waitForLog((l) => l.msg === 'gateway listening');
      const bridge = await gw.waitForLog((l) => l.msg === 'bridge listening');
      expect(String(bridge.address)).toMatch(/^pipe:isapi-gateway-\d+-default$/);
      const url = String(listening.url);
      const hello = await request(`${url}/scripts/hello.dll`);
      expect(hello.status).toBe(200);
      expect(hello.body.toString()).toBe('Hello from ISAPI!\n');
      const echo = await request(`${url}/scripts/echo.dll/a/b?x=1`, { method: 'POST', body: 'ping'.repeat(50000) });
      expect(echo.status).toBe(200);
      expect(echo.headers['x-echo-pathinfo']).toBe('/a/b');
      expect(echo.body.length).toBeGreaterThanOrEqual(200000);
      expect((await request(`${url}/scripts/lifecycle.dll`, { agent: false })).body.toString()).toBe('ok\n');
    } finally {
      gw.proc.kill('SIGINT'); // Wine turns it into Ctrl-C; node drains as on SIGINT
    }
    expect(await gw.exited).toBe(0);
    expect(fs.readFileSync(log, 'utf8').trim().split(/\r?\n/)).toEqual(['load', 'terminate 2']);
  });
});

maybe('a standalone Wine bridge on loopback TCP', () => {
  test('the shared-secret HELLO: the right secret serves, a wrong one is refused', async () => {
    const dir = tempDir();
    const secretFile = path.join(dir, 'secret');
    fs.writeFileSync(secretFile, 'correct horse battery staple\n', { mode: 0o600 });
    const port = await freeLoopbackPort();
    const address = `tcp://127.0.0.1:${port}`;
    // The launcher the gateway uses, run by hand (Linux node; it starts node.exe under Wine).
    const launcher = spawn(
      process.execPath,
      [path.join(ROOT, 'dist', 'gateway', 'wine-bridge.js'), '--listen', address, '--secret-file', secretFile, '--app', `/scripts/hello.dll=${sample('hello')}`],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ISAPI_BRIDGE_SUPERVISED: '' } },
    );
    let stderr = '';
    launcher.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => launcher.on('exit', resolve));
    try {
      const until = Date.now() + 30000;
      while (!stderr.includes('"bridge listening"')) {
        if (launcher.exitCode !== null || Date.now() > until) throw new Error(`Wine bridge did not start:\n${stderr}`);
        await sleep(50);
      }
      expect(stderr).toContain(`"address":"${address}"`);
      const app = { name: 'hello.dll', mount: '/scripts/hello.dll', library: sample('hello'), bridge: 'remote' };
      const good = await startGateway(['--config', writeConfig({ bridges: { remote: { mode: 'remote', address, secretFile } }, apps: [app] })]);
      try {
        expect((await request(`${good.url}/scripts/hello.dll`)).body.toString()).toBe('Hello from ISAPI!\n');
        expect(good.bridgePids()).toEqual([]);
      } finally {
        await good.stop();
      }
      const wrongFile = path.join(dir, 'wrong');
      fs.writeFileSync(wrongFile, 'guess');
      const bad = await startGateway(['--config', writeConfig({ bridges: { remote: { mode: 'remote', address, secretFile: wrongFile } }, apps: [app] })]);
      try {
        const r = await request(`${bad.url}/scripts/hello.dll`);
        expect(r.status).toBe(503);
        expect(r.body.toString()).toMatch(/bridge remote is unavailable.*shared secret/);
      } finally {
        await bad.stop();
      }
    } finally {
      launcher.kill('SIGTERM'); // the launcher turns it into SHUTDOWN
    }
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/"msg":"stopping","signal":"SHUTDOWN"/);
  });
});

maybe('the gateway supervising a Wine bridge', () => {
  test('.dll apps on Linux pick the Wine runtime by themselves; a killed Wine bridge is restarted', async () => {
    const gw = await startGateway(['--app', `/scripts/hello.dll=${sample('hello')}`], { ISAPI_BRIDGE_RUNTIME: '' });
    try {
      await gw.waitForLog((l) => l.msg === 'starting bridge under Wine');
      expect((await request(`${gw.url}/scripts/hello.dll`)).status).toBe(200);
      const [pid] = gw.bridgePids();
      expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain('node.exe');
      process.kill(pid!, 'SIGKILL');
      await gw.waitForLog((l) => l.msg === 'bridge process exited; restarting');
      const until = Date.now() + 30000;
      let status = 0;
      while (Date.now() < until) {
        status = (await request(`${gw.url}/scripts/hello.dll`, { agent: false })).status;
        if (status === 200) break;
        await sleep(200);
      }
      expect(status).toBe(200);
      expect(gw.bridgePids()).not.toContain(pid);
    } finally {
      expect(await gw.stop()).toBe(0);
    }
  });
});
