/**
 * Load clients of `npm run bench` for the workloads wrk cannot measure, run as
 * a separate process (pinned like wrk). Each prints one JSON line on stdout.
 *
 *   node dist/bench/clients.js download URL [--expect N]
 *       GET, reads the body as fast as possible: bytes, seconds, MB/s.
 *   node dist/bench/clients.js upload URL --bytes N [--chunk K]
 *       POST N bytes (Content-Length) in K-byte writes, honouring backpressure;
 *       MB/s from the first byte sent to the end of the response.
 *   node dist/bench/clients.js slow URL --rate BYTES_PER_S [--expect N]
 *       GET, reads at most `rate` bytes per second (pauses the socket), so the
 *       server side has to hold back; prints the achieved rate.
 *
 * MB is 10^6 bytes throughout.
 */
import http from 'node:http';

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1]!;
  if (fallback === undefined) throw new Error(`missing --${name}`);
  return fallback;
}

const agent = new http.Agent({ keepAlive: false });

function report(o: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(o) + '\n');
}

function download(url: string, expect: number): void {
  const t0 = process.hrtime.bigint();
  let bytes = 0;
  let ttfb = 0;
  const req = http.get(url, { agent }, (res) => {
    ttfb = Number(process.hrtime.bigint() - t0) / 1e9;
    res.on('data', (c: Buffer) => (bytes += c.length));
    res.on('end', () => {
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      report({ ok: res.statusCode === 200 && (expect < 0 || bytes === expect), status: res.statusCode, bytes, seconds: s, ttfb, mbps: bytes / s / 1e6 });
    });
    res.on('error', (e) => report({ ok: false, error: e.message, bytes }));
  });
  req.on('error', (e) => report({ ok: false, error: e.message, bytes }));
}

function upload(url: string, total: number, chunk: number): void {
  const block = Buffer.alloc(chunk, 0x61);
  const t0 = process.hrtime.bigint();
  const req = http.request(url, { method: 'POST', agent, headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': total } }, (res) => {
    let body = '';
    res.setEncoding('latin1');
    res.on('data', (c: string) => (body += c));
    res.on('end', () => {
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      const counted = Number(body.trim());
      report({ ok: res.statusCode === 200 && counted === total, status: res.statusCode, bytes: total, counted, seconds: s, mbps: total / s / 1e6 });
    });
  });
  req.on('error', (e) => report({ ok: false, error: e.message }));
  let sent = 0;
  const pump = (): void => {
    while (sent < total) {
      const n = Math.min(chunk, total - sent);
      sent += n;
      if (!req.write(n === chunk ? block : block.subarray(0, n))) {
        req.once('drain', pump);
        return;
      }
    }
    req.end();
  };
  pump();
}

function slow(url: string, rate: number, expect: number): void {
  const t0 = process.hrtime.bigint();
  let bytes = 0;
  const req = http.get(url, { agent }, (res) => {
    res.on('data', (c: Buffer) => {
      bytes += c.length;
      const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
      const ahead = bytes / rate - elapsed;
      if (ahead > 0.005) {
        res.pause();
        setTimeout(() => res.resume(), Math.ceil(ahead * 1000));
      }
    });
    res.on('end', () => {
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      report({ ok: res.statusCode === 200 && (expect < 0 || bytes === expect), status: res.statusCode, bytes, seconds: s, mbps: bytes / s / 1e6 });
    });
    res.on('error', (e) => report({ ok: false, error: e.message, bytes }));
  });
  req.on('error', (e) => report({ ok: false, error: e.message, bytes }));
}

const [mode, url] = [process.argv[2], process.argv[3]];
if (!url) {
  process.stderr.write('usage: clients.js download|upload|slow URL [options]\n');
  process.exit(2);
}
if (mode === 'download') download(url, Number(arg('expect', '-1')));
else if (mode === 'upload') upload(url, Number(arg('bytes')), Number(arg('chunk', '65536')));
else if (mode === 'slow') slow(url, Number(arg('rate')), Number(arg('expect', '-1')));
else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}
