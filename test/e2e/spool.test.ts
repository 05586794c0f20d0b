/**
 * The response spool (bridge/spool.ts, gateway/spool-mapping.ts): on a Unix socket the
 * gateway maps the bridge's memory file and writes large WriteClient bodies to clients
 * straight from it. A Wine bridge (TCP) has none, and the same tests check that its
 * bodies still arrive intact in frames.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { BRIDGE_MODE, RunningGateway, request, sample, sleep, startGateway, streamPattern, writeConfig } from '../harness';

const SPOOL_FILE = /^\/memfd:isapi-spool/;
const expectSpool = BRIDGE_MODE === 'native';

let gw: RunningGateway;

beforeAll(async () => {
  const config = writeConfig({
    apps: [
      { name: 'stream', mount: '/scripts/stream.dll', library: sample('stream') },
      { name: 'hello', mount: '/scripts/hello.dll', library: sample('hello') },
    ],
    bridges: { default: { workers: 2 } },
  });
  gw = await startGateway(['--config', config]);
});

afterAll(async () => {
  await gw?.stop();
});

/** The mappings of bridge spool files in process `pid`, as inode -> number of mappings. */
function spoolMappings(pid: number): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    const [, , , , inode, file] = line.split(/\s+/);
    if (inode && file && SPOOL_FILE.test(file)) found.set(inode, (found.get(inode) ?? 0) + 1);
  }
  return found;
}

/** The spool files the gateway maps: one mapping each, of the bridge's current file (or none without a spool). */
function expectGatewayMapsBridgeSpool(): void {
  const bridge = spoolMappings(gw.bridgePids()[0]!);
  const gateway = spoolMappings(gw.proc.pid!);
  if (!expectSpool) {
    expect(gateway.size).toBe(0);
    return;
  }
  expect(bridge.size).toBe(1);
  const [inode] = bridge.keys();
  expect(gateway.get(inode!)).toBe(1);
}

/** isapi_bridge_spool_held_bytes of the test's bridge, from the gateway's /metrics. */
async function spoolHeldBytes(): Promise<number> {
  const text = (await request(`${gw.url}/metrics`)).body.toString();
  const line = text.split('\n').find((l) => l.startsWith('isapi_bridge_spool_held_bytes{bridge="default"}'));
  if (!line) throw new Error('no isapi_bridge_spool_held_bytes for bridge "default" in /metrics');
  return Number(line.split(' ').pop());
}

/** Waits until the gateway holds nothing of the spool: every client write has given its memory back. */
async function expectNothingHeld(): Promise<void> {
  let held = -1;
  for (let i = 0; i < 100 && held !== 0; i++) {
    held = await spoolHeldBytes();
    if (held !== 0) await sleep(50);
  }
  expect(held).toBe(0);
}

/** Reads `url` slowly for `lagMs`, then fast; the first byte that breaks stream.c's alphabet fails it. */
function readStream(url: string, lagMs: number, onTick: () => void = () => undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let at = 0;
        const check = (c: Buffer): void => {
          if (!c.equals(streamPattern(at, c.length))) reject(new Error(`bytes ${at}..${at + c.length} are not stream.c's alphabet`));
          at += c.length;
        };
        res.pause();
        const slow = setInterval(() => {
          let c: Buffer | null;
          for (let i = 0; i < 2 && (c = res.read() as Buffer | null); i++) check(c);
          onTick();
        }, 10);
        setTimeout(() => {
          clearInterval(slow);
          res.on('data', check);
          res.on('end', () => resolve(at));
          res.on('error', reject);
          res.resume();
        }, lagMs);
      })
      .on('error', reject);
  });
}

describe('response spool', () => {
  test('streamed bodies come through the spool byte for byte; the bridge connections share one mapping', async () => {
    const total = 24 * 1024 * 1024;
    let checked = false;
    const tick = (): void => {
      if (checked) return;
      checked = true;
      expectGatewayMapsBridgeSpool();
    };
    // Lagging clients keep pieces held across many turns: a slot reused too early shows as a wrong byte.
    const streams = Promise.all([0, 1, 2, 3].map((i) => readStream(`${gw.url}/scripts/stream.dll?bytes=${total}&chunk=${40000 + i * 8000}`, 400, tick)));
    await sleep(250);
    const heldWhileLagging = await spoolHeldBytes();
    expect(await streams).toEqual([total, total, total, total]);
    expect(checked).toBe(true);
    if (expectSpool) expect(heldWhileLagging).toBeGreaterThan(0);
    await expectNothingHeld();
  }, 60000);

  test('clients that vanish mid-stream free what they held: later streams are intact and the window still turns', async () => {
    for (let i = 0; i < 12; i++) {
      await new Promise<void>((resolve) => {
        const req = http.get(`${gw.url}/scripts/stream.dll?bytes=${64 * 1024 * 1024}&chunk=65536&flush=1`, { agent: false }, (res) => {
          let seen = 0;
          res.on('data', (c: Buffer) => {
            seen += c.length;
            // Some leave at once, some after a few MiB.
            if (seen > (i % 3) * 2 * 1024 * 1024) {
              req.destroy();
              resolve();
            }
          });
        });
        req.on('error', () => resolve());
      });
    }
    await gw.waitForAccess((l) => l.app === 'stream' && l.error === 'client closed the connection');
    // Every extension thread's window and slots turn over many times here: 64 MiB each on two threads.
    const total = 64 * 1024 * 1024;
    expect(await Promise.all([readStream(`${gw.url}/scripts/stream.dll?bytes=${total}`, 0), readStream(`${gw.url}/scripts/stream.dll?bytes=${total}`, 0)])).toEqual([total, total]);
    expect((await request(`${gw.url}/scripts/hello.dll`)).status).toBe(200);
    await expectNothingHeld();
  }, 60000);

  test('a pipelined response still waiting for its turn ends when the client vanishes, and frees what it held', async () => {
    const { hostname, port } = new URL(gw.url);
    const get = (tag: string): string => `GET /scripts/stream.dll?bytes=${64 * 1024 * 1024}&chunk=65536&tag=${tag} HTTP/1.1\r\nHost: x\r\n\r\n`;
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(Number(port), hostname, () => socket.write(get('first') + get('second')));
      let seen = 0;
      socket.on('data', (c: Buffer) => {
        seen += c.length;
        if (seen < 8 * 1024 * 1024) return;
        // The second response fills its buffer behind the first, and the bridge's window behind it.
        socket.pause();
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 300);
      });
      socket.on('error', reject);
    });
    for (const tag of ['first', 'second']) {
      const line = await gw.waitForAccess((l) => String(l.query).includes(`tag=${tag}`));
      expect(line.error).toBe('client closed the connection');
    }
    // Node never calls back the second response's writes: its 'close' gives their memory back.
    await expectNothingHeld();
    // Both extension threads are free again, and their windows turn.
    const total = 32 * 1024 * 1024;
    expect(await Promise.all([readStream(`${gw.url}/scripts/stream.dll?bytes=${total}`, 0), readStream(`${gw.url}/scripts/stream.dll?bytes=${total}`, 0)])).toEqual([total, total]);
  }, 60000);

  test('a bridge that is killed takes its spool file with it; its successor offers a new one', async () => {
    const [pid] = gw.bridgePids();
    await readStream(`${gw.url}/scripts/stream.dll?bytes=${4 * 1024 * 1024}`, 0);
    expectGatewayMapsBridgeSpool();
    process.kill(pid!, 'SIGKILL');
    await gw.waitForLog((l) => l.msg === 'bridge process restarted' && Number(l.pid) !== pid);
    let last: Error | undefined;
    for (let i = 0; i < 50; i++) {
      try {
        expect(await readStream(`${gw.url}/scripts/stream.dll?bytes=${4 * 1024 * 1024}`, 0)).toBe(4 * 1024 * 1024);
        last = undefined;
        break;
      } catch (err) {
        last = err as Error; // the restart may still be under way
        await sleep(100);
      }
    }
    expect(last).toBeUndefined();
    // The successor's file is mapped (the old one's mapping ends when the garbage collector takes it).
    expectGatewayMapsBridgeSpool();
  }, 60000);
});
