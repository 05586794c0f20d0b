/**
 * Shadow mode with a real gateway (the built dist/ code, run in this process so the
 * test can read gateway.shadowStats() as the metrics code will), its real bridge
 * process hosting the C samples, and a loopback Node server standing in for IIS.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { ROOT, request, sample, sleep, tempDir, writeConfig } from '../harness';
import { startServer, type TestServer } from './support';
import type { Gateway as GatewayType } from '../../gateway/gateway';
import type { ShadowRouteStats } from '../../gateway/shadow';

/* The built gateway, exactly what the CLI runs. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Gateway } = require(path.join(ROOT, 'dist/gateway/gateway.js')) as typeof import('../../gateway/gateway');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { loadConfigFile } = require(path.join(ROOT, 'dist/gateway/config.js')) as typeof import('../../gateway/config');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Logger } = require(path.join(ROOT, 'dist/bridge/log.js')) as typeof import('../../bridge/log');

interface DiffLine {
  kind: 'match' | 'mismatch' | 'error';
  route: string;
  url: string;
  differences?: string[];
  primary: { status: number; bodySha256: string; headers: Record<string, string | null> };
  shadowResponse?: { status: number; bodySha256: string; headers: Record<string, string | null> };
}

describe('shadow mode', () => {
  let iis: TestServer;
  let slowShadow: TestServer;
  const parked: http.ServerResponse[] = [];
  let gw: GatewayType;
  let diffLog: string;

  beforeAll(async () => {
    // Answers like the samples do on a real IIS host, except where asked to differ.
    iis = await startServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url!.toLowerCase().startsWith('/scripts/hello.dll')) {
          res.writeHead(200, { 'Content-Type': 'text/plain' }).end('Hello from ISAPI!\n');
          return;
        }
        const body = req.url!.includes('mismatch') ? Buffer.concat([...chunks, Buffer.from('!')]) : Buffer.concat(chunks);
        res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end(body);
      });
    });
    slowShadow = await startServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      parked.push(res);
    });
    diffLog = path.join(tempDir('isapi-shadow-'), 'diff.jsonl');
    const file = writeConfig({
      server: { host: '127.0.0.1', port: 0 },
      apps: [
        { name: 'echo', mount: '/scripts/echo.dll', library: sample('echo') },
        { name: 'hello', mount: '/scripts/hello.dll', library: sample('hello') },
      ],
      upstreams: { iis: { targets: [iis.url] }, slow: { targets: [slowShadow.url] } },
      routes: [
        // IIS primary, bridge shadow.
        { prefix: '/scripts/echo.dll', upstream: 'iis', shadow: { app: 'echo', methods: ['GET', 'POST'], diffLog, logMatches: true } },
        { prefix: '/scripts/hello.dll', upstream: 'iis', shadow: { app: 'hello', sampleRate: 0.5 } },
        // Bridge primary, IIS shadow.
        { prefix: '/scripts/hello.dll/rev', app: 'hello', shadow: { upstream: 'iis', diffLog, logMatches: true } },
        // A shadow that takes its time, behind a cap of two.
        { prefix: '/capped/', upstream: 'iis', shadow: { upstream: 'slow', maxConcurrent: 2, compareHeaders: [] } },
      ],
    });
    gw = await Gateway.start({ config: loadConfigFile(file), logger: new Logger('gateway', 'warn'), accessLog: false });
  });
  afterAll(async () => {
    for (const r of parked) r.destroy();
    await gw?.close(5000);
    await Promise.all([iis.close(), slowShadow.close()]);
  });

  const stats = (route: string): ShadowRouteStats | undefined => gw.shadowStats().get(route);
  async function settle(route: string, done: (s: ShadowRouteStats) => boolean): Promise<ShadowRouteStats> {
    for (let i = 0; i < 500; i++) {
      const s = stats(route);
      if (s && done(s)) return s;
      await sleep(10);
    }
    throw new Error(`shadow stats for ${route} never settled: ${JSON.stringify(stats(route))}`);
  }
  const diffLines = (): DiffLine[] =>
    fs.existsSync(diffLog) ? fs.readFileSync(diffLog, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as DiffLine) : [];

  test('IIS primary, ISAPI shadow: matching and mismatching bodies are compared and logged', async () => {
    const same = await request(`${gw.url}/scripts/echo.dll/same`, { method: 'POST', body: 'hello shadow' });
    expect(same.status).toBe(200);
    expect(same.body.toString()).toBe('hello shadow');
    const differs = await request(`${gw.url}/scripts/echo.dll/x?mismatch=1`, { method: 'POST', body: 'hello shadow' });
    // The client gets the primary's answer, whatever the shadow says.
    expect(differs.body.toString()).toBe('hello shadow!');

    const s = await settle('/scripts/echo.dll', (x) => x.matches + x.mismatches + x.errors >= 2);
    expect(s).toMatchObject({ matches: 1, mismatches: 1, errors: 0, inFlight: 0, shadow: 'app:echo' });
    await sleep(50);
    const lines = diffLines().filter((l) => l.route === '/scripts/echo.dll');
    const match = lines.find((l) => l.url === '/scripts/echo.dll/same')!;
    expect(match.kind).toBe('match');
    expect(match.shadowResponse!.bodySha256).toBe(match.primary.bodySha256);
    expect(match.primary.headers['content-type']).toBe('application/octet-stream');
    const mismatch = lines.find((l) => l.url.includes('mismatch'))!;
    expect(mismatch.kind).toBe('mismatch');
    expect(mismatch.differences).toEqual(['body']);
    expect(mismatch.shadowResponse!.bodySha256).not.toBe(mismatch.primary.bodySha256);
  });

  test('ISAPI primary, IIS shadow', async () => {
    const r = await request(`${gw.url}/scripts/hello.dll/rev`);
    expect(r.body.toString()).toBe('Hello from ISAPI!\n');
    const s = await settle('/scripts/hello.dll/rev', (x) => x.matches + x.mismatches + x.errors >= 1);
    expect(s).toMatchObject({ matches: 1, mismatches: 0, shadow: 'upstream:iis' });
  });

  test('sampleRate replays a fraction; unlisted methods are skipped', async () => {
    for (let i = 0; i < 40; i++) expect((await request(`${gw.url}/scripts/hello.dll`)).status).toBe(200);
    const s = await settle('/scripts/hello.dll', (x) => x.matches + x.mismatches + x.errors + x.sampledOut >= 40 && x.inFlight === 0);
    // Binomial(40, 0.5): outside 6..34 has odds of about one in a million.
    expect(s.sampledOut).toBeGreaterThan(5);
    expect(s.sampledOut).toBeLessThan(35);
    expect(s.matches).toBe(40 - s.sampledOut);

    await request(`${gw.url}/scripts/hello.dll`, { method: 'DELETE' });
    expect(stats('/scripts/hello.dll')!.skipped).toBe(1);
  });

  test('at most maxConcurrent replays run; the rest are dropped, and clients never wait for the shadow', async () => {
    const replies = await Promise.all(Array.from({ length: 6 }, (_, i) => request(`${gw.url}/capped/${i}`, { agent: false })));
    // Every client has its answer while both replays are still parked at the shadow.
    expect(replies.map((r) => r.status)).toEqual(Array(6).fill(200));
    for (let i = 0; i < 500 && parked.length < 2; i++) await sleep(10);
    expect(parked).toHaveLength(2);
    expect(stats('/capped/')).toMatchObject({ requests: 6, dropped: 4, inFlight: 2 });
    for (const r of parked.splice(0)) r.end('');
    const s = await settle('/capped/', (x) => x.inFlight === 0);
    // The primary echoed an empty body with another content type; only status and body are compared here.
    expect(s).toMatchObject({ matches: 2, dropped: 4, errors: 0 });
  });
});
