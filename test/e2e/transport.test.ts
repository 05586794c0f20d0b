/**
 * The bridge transports: Unix socket (0600), TCP with a shared secret, a gateway
 * attaching to an already running bridge, and malformed frames on the wire.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { BRIDGE_CLI, request, sample, sleep, startGateway, streamPattern, tempDir, writeConfig } from '../harness';
import { encodeHello, PROTOCOL_VERSION } from '../../bridge/wire';

interface StandaloneBridge {
  proc: ChildProcess;
  stderr: string[];
  address: string;
  stop(): Promise<void>;
}

async function startBridge(args: string[]): Promise<StandaloneBridge> {
  const proc = spawn(process.execPath, [BRIDGE_CLI, '--app', `/scripts/hello.dll=${sample('hello')}`, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr: string[] = [];
  proc.stderr!.on('data', (d: Buffer) => stderr.push(...d.toString().split('\n').filter(Boolean)));
  const until = Date.now() + 15000;
  for (;;) {
    const line = stderr.flatMap((l) => (l.startsWith('{') ? [JSON.parse(l) as Record<string, unknown>] : [])).find((l) => l.msg === 'bridge listening');
    if (line) {
      return {
        proc,
        stderr,
        address: String(line.address),
        stop: () =>
          new Promise((resolve) => {
            proc.once('exit', () => resolve());
            proc.kill('SIGTERM');
          }),
      };
    }
    if (proc.exitCode !== null || Date.now() > until) throw new Error(`bridge did not start:\n${stderr.join('\n')}`);
    await sleep(20);
  }
}

describe('Unix socket transport', () => {
  test('the socket is mode 0600; garbage is refused with a logged error and the bridge keeps serving a gateway', async () => {
    const sock = path.join(tempDir(), 'b.sock');
    const bridge = await startBridge(['--listen', `unix:${sock}`]);
    try {
      expect(fs.statSync(sock).mode & 0o777).toBe(0o600);

      // Malformed: a valid HELLO followed by an unknown frame type.
      await new Promise<void>((resolve) => {
        const s = net.connect(sock);
        s.on('connect', () => {
          s.write(encodeHello({ version: PROTOCOL_VERSION, role: 'gateway', credential: '' }));
          s.write(Buffer.from([0x7e, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]));
        });
        s.on('data', () => undefined);
        s.on('close', () => resolve());
        s.on('error', () => undefined);
      });
      await sleep(50);
      const err = bridge.stderr.flatMap((l) => (l.startsWith('{') ? [JSON.parse(l) as Record<string, unknown>] : [])).find((l) => l.code === 'ERR_WIRE_UNKNOWN_TYPE');
      expect(err?.msg).toBe('closing gateway connection after a malformed frame');

      // A frame before HELLO is refused too.
      await new Promise<void>((resolve) => {
        const s = net.connect(sock);
        s.on('connect', () => s.write(Buffer.alloc(12)));
        s.on('close', () => resolve());
        s.on('error', () => undefined);
      });

      const gw = await startGateway(['--app', `/scripts/hello.dll=${sample('hello')}`, '--bridge', `unix:${sock}`]);
      try {
        const r = await request(`${gw.url}/scripts/hello.dll`);
        expect(r.body.toString()).toBe('Hello from ISAPI!\n');
        expect(gw.bridgePids()).toEqual([]); // It used the running bridge, it started none.
      } finally {
        await gw.stop();
      }
    } finally {
      await bridge.stop();
    }
  });
});

describe('a gateway that dies mid-stream', () => {
  test('the bridge serves the next gateway, and frees the spool slots the dead one held once it has exited', async () => {
    const sock = path.join(tempDir(), 'b.sock');
    const bridge = await startBridge(['--listen', `unix:${sock}`, '--app', `/scripts/stream.dll=${sample('stream')}`]);
    const args = ['--app', `/scripts/stream.dll=${sample('stream')}`, '--bridge', `unix:${sock}`];
    try {
      const first = await startGateway(args);
      // A client that reads nothing: once the socket buffers are full, the gateway holds spool pieces for it.
      await new Promise<void>((resolve) => {
        http
          .get(`${first.url}/scripts/stream.dll?bytes=${64 * 1024 * 1024}&chunk=65536`, { agent: false }, (res) => {
            res.pause();
            setTimeout(resolve, 300);
          })
          .on('error', () => undefined);
      });
      first.proc.kill('SIGKILL');
      await first.wait();
      const second = await startGateway(args);
      try {
        const total = 8 * 1024 * 1024;
        const r = await request(`${second.url}/scripts/stream.dll?bytes=${total}&chunk=65536`);
        expect(r.body.equals(streamPattern(0, total))).toBe(true);
        const counter = async (name: string): Promise<number> => {
          const metrics = (await request(`${second.url}/metrics`)).body.toString();
          return Number(metrics.split('\n').find((l) => l.startsWith(`${name}{`))?.split(' ').pop() ?? 0);
        };
        const retired = await counter('isapi_bridge_spool_slots_retired_total');
        expect(retired).toBeGreaterThan(0);
        // The bridge asks once a second whether the first gateway has exited.
        let reclaimed = 0;
        for (let i = 0; i < 50 && reclaimed < retired; i++) {
          reclaimed = await counter('isapi_bridge_spool_slots_reclaimed_total');
          if (reclaimed < retired) await sleep(100);
        }
        expect(reclaimed).toBe(retired);
      } finally {
        await second.stop();
      }
    } finally {
      await bridge.stop();
    }
  });
});

describe('protocol versions', () => {
  test('a gateway and a bridge of different protocol versions refuse each other at HELLO, naming both versions', async () => {
    const sock = path.join(tempDir(), 'b.sock');
    const bridge = await startBridge(['--listen', `unix:${sock}`]);
    // A bridge of the previous version, as far as HELLO goes: it answers with version 2.
    const oldSock = path.join(tempDir(), 'old.sock');
    const old = net.createServer((s) => {
      s.once('data', () => s.write(encodeHello({ version: PROTOCOL_VERSION - 1, role: 'bridge', credential: '' })));
      s.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => old.listen(oldSock, resolve));
    try {
      await new Promise<void>((resolve) => {
        const s = net.connect(sock);
        s.on('connect', () => s.write(encodeHello({ version: PROTOCOL_VERSION - 1, role: 'gateway', credential: '' })));
        s.on('close', () => resolve());
        s.on('error', () => undefined);
      });
      await sleep(50);
      const logged = bridge.stderr.flatMap((l) => (l.startsWith('{') ? [JSON.parse(l) as Record<string, unknown>] : [])).find((l) => l.code === 'ERR_WIRE_VERSION');
      expect(logged?.error).toBe(`gateway speaks protocol ${PROTOCOL_VERSION - 1}, bridge speaks ${PROTOCOL_VERSION}`);

      const gw = await startGateway(['--app', `/scripts/hello.dll=${sample('hello')}`, '--bridge', `unix:${oldSock}`]);
      try {
        const r = await request(`${gw.url}/scripts/hello.dll`);
        expect(r.status).toBe(503);
        expect(r.body.toString()).toContain(`bridge speaks protocol ${PROTOCOL_VERSION - 1}, gateway speaks ${PROTOCOL_VERSION}`);
      } finally {
        await gw.stop();
      }
    } finally {
      old.close();
      await bridge.stop();
    }
  });
});

describe('TCP transport', () => {
  test('a bridge on TCP requires the shared secret; the right one serves, a wrong one is refused', async () => {
    const dir = tempDir();
    const secretFile = path.join(dir, 'secret');
    fs.writeFileSync(secretFile, 'correct horse battery staple\n', { mode: 0o600 });
    const bridge = await startBridge(['--listen', 'tcp://127.0.0.1:0', '--secret-file', secretFile]);
    try {
      expect(bridge.address).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
      const good = await startGateway([
        '--config',
        writeConfig({
          bridges: { remote: { mode: 'remote', address: bridge.address, secretFile } },
          apps: [{ name: 'hello.dll', mount: '/scripts/hello.dll', library: sample('hello'), bridge: 'remote' }],
        }),
      ]);
      try {
        expect((await request(`${good.url}/scripts/hello.dll`)).status).toBe(200);
      } finally {
        await good.stop();
      }

      const wrongFile = path.join(dir, 'wrong');
      fs.writeFileSync(wrongFile, 'guess');
      const bad = await startGateway([
        '--config',
        writeConfig({
          bridges: { remote: { mode: 'remote', address: bridge.address, secretFile: wrongFile } },
          apps: [{ name: 'hello.dll', mount: '/scripts/hello.dll', library: sample('hello'), bridge: 'remote' }],
        }),
      ]);
      try {
        const r = await request(`${bad.url}/scripts/hello.dll`);
        expect(r.status).toBe(503);
        expect(r.body.toString()).toMatch(/bridge remote is unavailable/);
      } finally {
        await bad.stop();
      }
      expect(bridge.stderr.some((l) => l.includes('ERR_WIRE_AUTH'))).toBe(true);
    } finally {
      await bridge.stop();
    }
  });

  test('a TCP bridge refuses to start without a secret', async () => {
    const proc = spawn(process.execPath, [BRIDGE_CLI, '--listen', 'tcp://127.0.0.1:0', '--app', `/h.dll=${sample('hello')}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve));
    expect(code).toBe(2);
    expect(err).toMatch(/needs --secret-file/);
  });
});
