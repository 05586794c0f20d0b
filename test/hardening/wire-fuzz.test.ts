/**
 * The bridge's frame decoder, fuzzed live: random and mutated frames sent to a
 * real bridge process over its real socket, for a bounded number of iterations.
 * The bridge must close each bad connection with a logged WireProtocolError code,
 * never crash or hang, and keep serving a real gateway afterwards. Also: the
 * HMAC challenge-response on TCP (a plain shared secret is refused).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BRIDGE_CLI, request, sample, startGateway, tempDir, writeConfig } from '../harness';
import { FrameType, PROTOCOL_VERSION, encodeAbort, encodeFrame, encodeHello, encodeRequest } from '../../bridge/wire';
import type { RequestInfo } from '../../bridge/request-info';

interface Bridge {
  proc: ChildProcess;
  logs: Array<Record<string, unknown>>;
}

async function startBridge(args: string[]): Promise<Bridge> {
  const proc = spawn(process.execPath, [BRIDGE_CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const logs: Array<Record<string, unknown>> = [];
  let buf = '';
  proc.stderr!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      try {
        logs.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      } catch {
        /* not JSON */
      }
      buf = buf.slice(nl + 1);
    }
  });
  const until = Date.now() + 15000;
  while (!logs.some((l) => l.msg === 'bridge listening')) {
    if (Date.now() > until || proc.exitCode !== null) throw new Error(`bridge did not start: ${JSON.stringify(logs)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { proc, logs };
}

async function stopBridge(b: Bridge): Promise<void> {
  if (b.proc.exitCode !== null) return;
  const exited = new Promise((r) => b.proc.once('exit', r));
  b.proc.kill('SIGTERM');
  await exited;
}

/** Sends bytes on a fresh connection; resolves when the bridge closes it or after `waitMs` (then closes it ourselves). */
function sendRaw(connect: () => net.Socket, bytes: Buffer[], waitMs = 150): Promise<'closed-by-bridge' | 'still-open'> {
  return new Promise((resolve) => {
    const s = connect();
    let done = false;
    const finish = (how: 'closed-by-bridge' | 'still-open'): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(how);
    };
    const timer = setTimeout(() => finish('still-open'), waitMs);
    s.on('error', () => undefined);
    s.on('close', () => finish('closed-by-bridge'));
    s.on('connect', () => {
      for (const b of bytes) s.write(b);
    });
  });
}

const info: RequestInfo = {
  requestId: 'fuzz',
  appName: 'echo',
  method: 'POST',
  url: '/scripts/echo.dll/a?b=1',
  httpVersion: '1.1',
  headers: [
    ['Host', 'x'],
    ['Content-Length', '3'],
  ],
  scriptName: '/scripts/echo.dll',
  pathInfo: '/a',
  queryString: 'b=1',
  remoteAddress: '127.0.0.1',
  remotePort: 1,
  localAddress: '127.0.0.1',
  localPort: 2,
  secure: false,
  contentLength: 3,
};

function mutate(frame: Buffer, rand: () => number): Buffer {
  const out = Buffer.from(frame);
  switch (Math.floor(rand() * 5)) {
    case 0: // flip a few bytes anywhere
      for (let i = 0; i < 1 + Math.floor(rand() * 4); i++) out[Math.floor(rand() * out.length)] = Math.floor(rand() * 256);
      return out;
    case 1: // a lying payload length
      out.writeUInt32LE(Math.floor(rand() * 0xffffffff), 8);
      return out;
    case 2: // truncated payload with a consistent header (inner strings run off the end)
      return truncatePayload(out, Math.floor(rand() * (out.length - 12)));
    case 3: // a string length inside the payload blown up
      if (out.length > 40) out.writeUInt32LE(Math.floor(rand() * 0xffffffff), 12 + 17 + Math.floor(rand() * 3) * 4);
      return out;
    default: // reserved bits / unknown type
      out[rand() < 0.5 ? 0 : 2] = Math.floor(rand() * 256);
      return out;
  }
}

function truncatePayload(frame: Buffer, keep: number): Buffer {
  const out = Buffer.from(frame.subarray(0, 12 + keep));
  out.writeUInt32LE(keep, 8);
  return out;
}

describe('live wire fuzzing', () => {
  test('random and mutated frames: connections closed with a logged code, the bridge survives and serves', async () => {
    const dir = tempDir();
    const sock = path.join(dir, 'b.sock');
    const bridge = await startBridge(['--listen', `unix:${sock}`, '--app', `/scripts/echo.dll=${sample('echo')}`, '--app', `/scripts/hello.dll=${sample('hello')}`]);
    try {
      // Seeded, so a failure can be replayed.
      let seed = 0x9e3779b9;
      const rand = (): number => {
        seed ^= seed << 13;
        seed ^= seed >>> 17;
        seed ^= seed << 5;
        return (seed >>> 0) / 0x100000000;
      };
      const hello = encodeHello({ version: PROTOCOL_VERSION, role: 'gateway', credential: '' });
      const valid = [
        encodeRequest(7, info),
        encodeFrame(FrameType.REQUEST_BODY, 7, Buffer.from('abc')),
        encodeFrame(FrameType.REQUEST_END, 7),
        encodeAbort(7, { code: 64, reason: 'x' }),
      ];
      const connect = (): net.Socket => net.connect({ path: sock });
      let closed = 0;
      const iterations = 200;
      for (let i = 0; i < iterations; i++) {
        let frames: Buffer[];
        const kind = i % 3;
        if (kind === 0) frames = [Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 64) }, () => Math.floor(rand() * 256)))]; // noise instead of HELLO
        else if (kind === 1) frames = [mutate(hello, rand)]; // a broken HELLO
        else frames = [hello, ...valid.slice(0, 1 + Math.floor(rand() * 3)).map((f, n) => (n === 0 ? mutate(f, rand) : f))];
        // SHUTDOWN is a legitimate command to an authenticated peer, not a malformed frame: leave it out.
        if (frames.some((f) => f[0] === FrameType.SHUTDOWN)) continue;
        // The wait bounds only inputs the bridge accepts; a refusal closes at once, even on a loaded machine.
        if ((await sendRaw(connect, frames, 300)) === 'closed-by-bridge') closed++;
        expect(bridge.proc.exitCode).toBeNull();
      }
      // Most inputs are malformed and were refused; every refusal is logged with its code.
      expect(closed).toBeGreaterThan(iterations / 2);
      const refusals = bridge.logs.filter((l) => l.msg === 'closing gateway connection after a malformed frame');
      expect(refusals.length).toBeGreaterThan(iterations / 3);
      for (const r of refusals) expect(String(r.code)).toMatch(/^ERR_WIRE_[A-Z_]+$/);
      expect(new Set(refusals.map((r) => r.code)).size).toBeGreaterThanOrEqual(4);

      // Still serving, through a real gateway.
      const gw = await startGateway(['--bridge', `unix:${sock}`, '--app', `/scripts/hello.dll=${sample('hello')}`]);
      try {
        for (let i = 0; i < 5; i++) expect((await request(`${gw.url}/scripts/hello.dll`)).body.toString()).toBe('Hello from ISAPI!\n');
      } finally {
        await gw.stop();
      }
      expect(bridge.proc.exitCode).toBeNull();
    } finally {
      await stopBridge(bridge);
    }
  });
});

describe('TCP authentication: HMAC challenge-response', () => {
  test('the right secret is served, a wrong one and a plain secret are refused with ERR_WIRE_AUTH', async () => {
    const dir = tempDir();
    const secretFile = path.join(dir, 'secret');
    fs.writeFileSync(secretFile, 's3cret-' + crypto.randomBytes(8).toString('hex'));
    const wrongFile = path.join(dir, 'wrong');
    fs.writeFileSync(wrongFile, 'not-the-secret');
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const bridge = await startBridge(['--listen', `tcp://127.0.0.1:${port}`, '--secret-file', secretFile, '--app', `/scripts/hello.dll=${sample('hello')}`]);
    try {
      // The secret itself as the credential (the old scheme) is refused.
      const plain = encodeHello({ version: PROTOCOL_VERSION, role: 'gateway', credential: fs.readFileSync(secretFile, 'utf8') });
      expect(await sendRaw(() => net.connect(port, '127.0.0.1'), [plain], 2000)).toBe('closed-by-bridge');
      expect(bridge.logs.some((l) => l.code === 'ERR_WIRE_AUTH')).toBe(true);

      const gatewayWith = (file: string): string =>
        writeConfig({
          bridges: { remote: { mode: 'remote', address: `tcp://127.0.0.1:${port}`, secretFile: file } },
          apps: [{ name: 'hello.dll', mount: '/scripts/hello.dll', library: sample('hello'), bridge: 'remote' }],
        });
      const good = await startGateway(['--config', gatewayWith(secretFile)]);
      try {
        expect((await request(`${good.url}/scripts/hello.dll`)).status).toBe(200);
      } finally {
        await good.stop();
      }
      const bad = await startGateway(['--config', gatewayWith(wrongFile)]);
      try {
        const r = await request(`${bad.url}/scripts/hello.dll`);
        expect(r.status).toBe(503);
        // Mutual: the bridge proves itself first, so the gateway is the one that notices the mismatch.
        expect(r.body.toString()).toMatch(/bridge presented a wrong proof of the shared secret/);
      } finally {
        await bad.stop();
      }
    } finally {
      await stopBridge(bridge);
    }
  });
});
