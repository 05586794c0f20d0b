/**
 * The real gateway's /metrics: a live gateway with its bridge serving the C
 * samples and an HTTP upstream, scraped by promtool, by a strict OpenMetrics
 * parser and by a real Prometheus that evaluates every dashboard query.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { dashboardTargets } from '../../metrics/dashboard/generate';
import { RunningGateway, request, sample, startGateway, tempDir, writeConfig, sleep } from '../harness';
import { PrometheusHarness } from './prometheus-harness';
import { substituteGrafanaVariables } from './promql';
import { promtoolCheckMetrics, pythonOpenMetricsParse } from './validators';

jest.setTimeout(120_000);

let gw: RunningGateway;
let upstream: http.Server;
let file: string;

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    const fail = (req.url ?? '').includes('fail');
    res.writeHead(fail ? 503 : 200, { 'Content-Type': 'text/plain' });
    res.end(fail ? 'down\n' : 'from iis\n');
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const up = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  file = path.join(tempDir(), 'file.bin');
  fs.writeFileSync(file, Buffer.alloc(100000, 7));
  gw = await startGateway([
    '--config',
    writeConfig({
      apps: ['hello', 'stream', 'asyncwrite', 'transmitfile', 'asyncread', 'status'].map((name) => ({
        name,
        mount: `/scripts/${name}.dll`,
        library: sample(name),
      })),
      upstreams: { iis: { targets: [up], healthCheck: { path: '/health', intervalMs: 500 } } },
      routes: [{ prefix: '/iis/', upstream: 'iis' }],
    }),
  ]);
});

afterAll(async () => {
  await gw?.stop();
  await new Promise((resolve) => upstream?.close(resolve));
});

async function scrape(accept?: string): Promise<string> {
  return (await request(`${gw.url}/metrics`, { headers: accept ? { Accept: accept } : {} })).body.toString();
}

/** Value of one series in a text exposition (exact label set, in any order), 0 when absent. */
function value(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && line !== name && !line.startsWith(name + ' ')) continue;
    const m = /^([^{ ]+)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v) && Object.keys(got).length === Object.keys(labels).length) return Number(m[3]);
  }
  return 0;
}

function sumByName(text: string, name: string, where: Record<string, string>): number {
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^([^{ ]+)\{(.*)\} (\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...m[2]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(where).every(([k, v]) => got[k] === v)) total += Number(m[3]);
  }
  return total;
}

test('after a known request mix, the counters equal exactly what was sent', async () => {
  const before = await scrape();
  for (let i = 0; i < 3; i++) expect((await request(`${gw.url}/scripts/asyncwrite.dll?count=3&size=5`)).body.toString()).toBe('AAAAABBBBBCCCCC');
  await sleep(600); // The bridge's live async metrics arrive in batches (250 ms).
  const after = await scrape();
  const delta = (name: string, labels: Record<string, string>): number => value(after, name, labels) - value(before, name, labels);
  const app = { app: 'asyncwrite' };
  expect(delta('isapi_http_requests_total', { route: '/scripts/asyncwrite.dll', ...app, method: 'GET', status_class: '2xx' })).toBe(3);
  expect(delta('isapi_http_response_bytes_total', { route: '/scripts/asyncwrite.dll', ...app, method: 'GET', status_class: '2xx' })).toBe(45);
  expect(delta('isapi_extension_write_client_calls_total', { ...app, mode: 'async' })).toBe(9);
  expect(delta('isapi_extension_write_client_bytes_total', { ...app, mode: 'async' })).toBe(45);
  expect(delta('isapi_extension_write_client_calls_total', { ...app, mode: 'sync' })).toBe(0);
  expect(delta('isapi_extension_async_operations_total', { ...app, kind: 'write' })).toBe(9);
  expect(delta('isapi_extension_server_support_function_calls_total', { ...app, request: 'IO_COMPLETION', result: 'ok' })).toBe(3);
  expect(delta('isapi_extension_server_support_function_calls_total', { ...app, request: 'DONE_WITH_SESSION', result: 'ok' })).toBe(3);
  // The bridge's own histogram of outstanding time, merged under its process label.
  const histBefore = sumByName(before, 'isapi_extension_async_outstanding_seconds_count', { ...app, kind: 'write' });
  const histAfter = sumByName(after, 'isapi_extension_async_outstanding_seconds_count', { ...app, kind: 'write' });
  expect(histAfter - histBefore).toBe(9);
  expect(sumByName(after, 'isapi_extension_async_operations_outstanding', { ...app, kind: 'write' })).toBe(0);
});

test('the scrape passes promtool (text) and a strict OpenMetrics parser', async () => {
  await request(`${gw.url}/scripts/hello.dll`);
  await request(`${gw.url}/iis/page`);
  const text = await scrape();
  expect(text).toContain('bridge="default#0.0"');
  const verdict = await promtoolCheckMetrics(text);
  expect(verdict.report).toBe(verdict.ok ? verdict.report : 'promtool accepts the scrape');
  expect(verdict.ok).toBe(true);
  const om = await scrape('application/openmetrics-text; version=1.0.0');
  expect(om.trimEnd().endsWith('# EOF')).toBe(true);
  const parsed = await pythonOpenMetricsParse(om);
  expect(parsed.ok).toBe(true);
  expect(parsed.families).toBeGreaterThan(20);
});

test('10 000 requests with random paths, queries and methods add no series', async () => {
  // Warm-up: the label values that traffic can legitimately create exist once.
  for (const method of ['GET', 'PROPFIND']) await request(`${gw.url}/scripts/hello.dll/x`, { method });
  await request(`${gw.url}/nothing-here`);
  const count = (t: string): number => t.split('\n').filter((l) => l && !l.startsWith('#') && !/^(process_|nodejs_)/.test(l)).length;
  const before = count(await scrape());
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const rnd = (): string => Math.random().toString(36).slice(2);
  for (let batch = 0; batch < 100; batch++) {
    await Promise.all(
      Array.from({ length: 100 }, (_, i) => {
        const n = batch * 100 + i;
        const url = n % 3 === 0 ? `/${rnd()}/${rnd()}` : `/scripts/hello.dll/${rnd()}?${rnd()}=${rnd()}`;
        return request(`${gw.url}${url}`, { method: n % 7 === 0 ? `X${rnd().slice(0, 5).toUpperCase()}` : 'GET', agent });
      }),
    );
  }
  agent.destroy();
  expect(count(await scrape())).toBe(before);
});

describe('a real Prometheus scraping the gateway', () => {
  let prom: PrometheusHarness | undefined;
  let traffic = true;
  let loop: Promise<void> | undefined;

  beforeAll(async () => {
    // Steady traffic of every kind the dashboard shows, bounded by the test's lifetime.
    loop = (async () => {
      for (let i = 0; traffic && i < 2000; i++) {
        await Promise.all([
          request(`${gw.url}/scripts/hello.dll`),
          request(`${gw.url}/scripts/stream.dll?bytes=20000`),
          request(`${gw.url}/scripts/asyncwrite.dll?count=2&size=1000`),
          request(`${gw.url}/scripts/transmitfile.dll?path=${file}&async=1`),
          request(`${gw.url}/scripts/asyncread.dll`, { method: 'POST', body: Buffer.alloc(60000, 1) }),
          request(`${gw.url}/scripts/status.dll?mode=status&code=404`),
          request(`${gw.url}/iis/page${i % 5 === 0 ? '-fail' : ''}`),
        ]).catch(() => undefined);
        await sleep(50);
      }
    })();
    const address = new URL(gw.url).host;
    prom = await PrometheusHarness.start({ targets: [{ job: 'isapi-gateway', address, labels: { namespace: 'isapi-live' } }] });
    await prom.waitForScrapes(4, 60_000);
  });

  afterAll(async () => {
    traffic = false;
    await loop;
    await prom?.stop();
  });

  test('the target is up and every dashboard query returns data', async () => {
    const targets = await prom!.targets();
    expect(targets.map((t) => [t.health, t.lastError])).toEqual([['up', '']]);
    const exprs = dashboardTargets().map((t) => substituteGrafanaVariables(t.expr, { values: { namespace: 'isapi-live' }, interval: '15s' }));
    const results = await prom!.evaluate(exprs);
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results.length).toBe(exprs.length);
  });
});
