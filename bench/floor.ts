/**
 * The design floor of isapi-gateway, as a bench contender ("floor", a note):
 * the same shape of work as gateway + bridge with nothing of ISAPI in it.
 *
 *   node dist/bench/floor.js back  --socket PATH [--threads N]
 *       A process that accepts length-prefixed frames on a Unix socket, hands
 *       each to one of N worker threads with postMessage, and writes back the
 *       worker's answer (the hello sample's body) as a frame.
 *
 *   node dist/bench/floor.js front --port P --socket PATH
 *       A node:http server that sends every request as a frame to the back
 *       process and answers with what comes back: two processes, one socket
 *       hop each way, one worker-thread hop each way, as in our design.
 *
 * Whatever isapi costs above this row is the price of our implementation,
 * not of the architecture.
 */
import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import { Worker, isMainThread, parentPort } from 'node:worker_threads';

const HELLO = Buffer.from('Hello from ISAPI!\n', 'latin1');
const FRAME_HEADER = 8; // u32 payload length, u32 request key

interface Job {
  key: number;
  conn: number;
  head: Uint8Array;
}

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1]!;
  if (fallback === undefined) throw new Error(`missing --${name}`);
  return fallback;
}

function frame(key: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out.writeUInt32LE(key, 4);
  out.set(payload, FRAME_HEADER);
  return out;
}

/** Feeds socket chunks in, calls back once per complete frame. */
function frameReader(onFrame: (key: number, payload: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= FRAME_HEADER) {
      const length = pending.readUInt32LE(0);
      if (pending.length < FRAME_HEADER + length) break;
      onFrame(pending.readUInt32LE(4), pending.subarray(FRAME_HEADER, FRAME_HEADER + length));
      pending = pending.subarray(FRAME_HEADER + length);
    }
  };
}

function back(socketPath: string, threads: number): void {
  const workers: Worker[] = [];
  const conns: net.Socket[] = [];
  let next = 0;
  for (let i = 0; i < threads; i++) {
    const w = new Worker(__filename);
    w.on('message', (job: Job) => conns[job.conn]?.write(frame(job.key, job.head)));
    workers.push(w);
  }
  fs.rmSync(socketPath, { force: true });
  net
    .createServer((socket) => {
      const conn = conns.push(socket) - 1;
      socket.on('data', frameReader((key, head) => workers[next++ % threads]!.postMessage({ key, conn, head } satisfies Job)));
    })
    .listen(socketPath, () => process.stdout.write(`listening ${socketPath}\n`));
}

function front(port: number, socketPath: string): void {
  const waiting = new Map<number, http.ServerResponse>();
  const sockets: net.Socket[] = [];
  let key = 0;
  for (let i = 0; i < 8; i++) {
    const s = net.connect(socketPath);
    s.on('data', frameReader((k) => {
      const res = waiting.get(k);
      waiting.delete(k);
      res?.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': HELLO.length }).end(HELLO);
    }));
    sockets.push(s);
  }
  http
    .createServer({ keepAliveTimeout: 5000 }, (req, res) => {
      const k = ++key >>> 0;
      waiting.set(k, res);
      sockets[k % sockets.length]!.write(frame(k, Buffer.from(`${req.method} ${req.url}`, 'latin1')));
    })
    .listen(port, '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));
}

if (!isMainThread) {
  // The "extension thread": answers at once, like the hello sample.
  parentPort!.on('message', (job: Job) => parentPort!.postMessage({ ...job, head: HELLO } satisfies Job));
} else {
  const mode = process.argv[2];
  if (mode === 'back') back(arg('socket'), Number(arg('threads', '2')));
  else if (mode === 'front') front(Number(arg('port')), arg('socket'));
  else {
    process.stderr.write('usage: floor.js back --socket PATH [--threads N] | front --port P --socket PATH\n');
    process.exit(2);
  }
  process.on('SIGTERM', () => process.exit(0));
}
