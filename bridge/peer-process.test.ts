import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { peerProcessOf, type PeerLookup } from './peer-process';

const linux = process.platform === 'linux';
const onLinux = linux ? test : test.skip;

/** A real process connected to `server`, and the socket the server accepted for it. */
async function connectedChild(server: net.Server, address: string | number): Promise<{ child: ChildProcess; socket: net.Socket }> {
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const target = JSON.stringify(typeof address === 'number' ? { port: address, host: '127.0.0.1' } : { path: address });
  const child = spawn(process.execPath, ['-e', `require('net').connect(${target}); setInterval(() => {}, 1000);`], { stdio: 'ignore' });
  return { child, socket: await accepted };
}

async function until(check: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

describe('peerProcessOf', () => {
  let dir: string;
  let server: net.Server;
  const children: ChildProcess[] = [];

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peer-'));
    server = net.createServer();
    await new Promise<void>((resolve) => server.listen(path.join(dir, 's.sock'), resolve));
  });
  afterEach(async () => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
    await new Promise((r) => server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const lookup of ['pidfd', 'credentials'] as PeerLookup[]) {
    onLinux(`(${lookup}) says the peer lives while it does, and that it exited once it is killed`, async () => {
      const { child, socket } = await connectedChild(server, server.address() as string);
      children.push(child);
      const peer = peerProcessOf(socket, lookup);
      expect(peer).toBeDefined();
      expect(peer!.exited()).toBe(false);
      // The socket closes before the kernel marks the killed process exited; the pidfd follows soon after.
      child.kill('SIGKILL');
      expect(await until(() => peer!.exited())).toBe(true);
      peer!.close();
      expect(() => peer!.exited()).toThrow(/already closed/);
      peer!.close(); // a second close is harmless
      socket.destroy();
    });
  }

  onLinux('a pidfd names its process, not a pid: the peer of a second connection is told apart', async () => {
    const a = await connectedChild(server, server.address() as string);
    const b = await connectedChild(server, server.address() as string);
    children.push(a.child, b.child);
    const peerA = peerProcessOf(a.socket)!;
    const peerB = peerProcessOf(b.socket)!;
    a.child.kill('SIGKILL');
    expect(await until(() => peerA.exited())).toBe(true);
    expect(peerB.exited()).toBe(false);
    peerA.close();
    peerB.close();
    a.socket.destroy();
    b.socket.destroy();
  });

  onLinux('a TCP peer cannot be watched: undefined, and nothing is left open', async () => {
    const tcp = net.createServer();
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    try {
      const fdsBefore = fs.readdirSync('/proc/self/fd').length;
      const { child, socket } = await connectedChild(tcp, (tcp.address() as net.AddressInfo).port);
      children.push(child);
      expect(peerProcessOf(socket)).toBeUndefined();
      socket.destroy();
      await new Promise((r) => setTimeout(r, 50));
      expect(fs.readdirSync('/proc/self/fd').length).toBeLessThanOrEqual(fdsBefore);
    } finally {
      await new Promise((r) => tcp.close(r));
    }
  });

  test('a socket that is not connected has no peer', () => {
    expect(peerProcessOf(new net.Socket())).toBeUndefined();
  });
});
