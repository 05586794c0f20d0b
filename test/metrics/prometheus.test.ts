/**
 * End to end: a real Prometheus scrapes a tiny Node server that serves the merged
 * gateway + 2 bridges exposition (one job negotiating OpenMetrics, one forced to text),
 * then every dashboard query is evaluated through Prometheus's HTTP API and must
 * return data. Loopback only, bounded in time.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { negotiate, serveMetrics, type BridgeSource } from '../../metrics';
import { dashboardTargets } from '../../metrics/dashboard/generate';
import { createWorld, observeEveryMetric, simulateTraffic, type World } from './fixtures';
import { PrometheusHarness } from './prometheus-harness';
import { substituteGrafanaVariables } from './promql';

jest.setTimeout(90_000);

let world: World;
let server: Server;
let prom: PrometheusHarness | undefined;
const served: string[] = [];

function wantsText(req: IncomingMessage): boolean {
  return new URL(req.url ?? '/', 'http://localhost').searchParams.get('format') === 'text';
}

beforeAll(async () => {
  world = createWorld(['b1', 'b2']);
  observeEveryMetric(world.gateway, 'gateway');
  for (const b of world.bridges) observeEveryMetric(b.metrics, 'bridge');
  const bridges: BridgeSource[] = world.bridges.map((b) => ({
    bridge: b.name,
    snapshot: async () => JSON.parse(JSON.stringify(await b.registry.getMetricsAsJSON())) as unknown,
  }));
  let round = 0;
  server = createServer((req, res) => {
    simulateTraffic(world, round++);
    if (wantsText(req)) req.headers.accept = 'text/plain;version=0.0.4';
    served.push(negotiate(req.headers.accept).contentType);
    void serveMetrics(req, res, { gateway: world.registry, bridges });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  prom = await PrometheusHarness.start({
    targets: [
      { job: 'isapi-openmetrics', address, labels: { namespace: 'isapi-test' } },
      { job: 'isapi-text', address, params: { format: ['text'] }, labels: { namespace: 'isapi-test' } },
    ],
  });
  process.stdout.write(`prometheus: ${prom.binary} at ${prom.url}\n`);
  await prom.waitForScrapes(4, 45_000);
});

afterAll(async () => {
  await prom?.stop();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

describe('a real Prometheus scraping the merged exposition', () => {
  it('scrapes both formats without errors', async () => {
    const targets = await prom!.targets();
    expect(targets.map((t) => [t.labels.job, t.health, t.lastError]).sort()).toEqual([
      ['isapi-openmetrics', 'up', ''],
      ['isapi-text', 'up', ''],
    ]);
    expect(served.some((t) => t.startsWith('application/openmetrics-text'))).toBe(true);
    expect(served.some((t) => t.startsWith('text/plain'))).toBe(true);
  });

  it('stores bridge series under distinct bridge labels, not sums', async () => {
    const r = await prom!.query('count by (bridge) (isapi_extension_async_operations_outstanding{job="isapi-openmetrics"})');
    const bridges = (r.result as Array<{ metric: Record<string, string> }>).map((s) => s.metric.bridge).sort();
    expect(bridges).toEqual(['b1', 'b2']);
    const cpu = await prom!.query('count by (component) (process_cpu_seconds_total{job="isapi-text"})');
    const components = Object.fromEntries(
      (cpu.result as Array<{ metric: Record<string, string>; value: [number, string] }>).map((s) => [s.metric.component, s.value[1]]),
    );
    expect(components).toEqual({ gateway: '1', bridge: '2' });
  });

  it('gives the dashboard variables values', async () => {
    expect(await prom!.labelValues('namespace', 'isapi_http_requests_total')).toEqual(['isapi-test']);
    expect((await prom!.labelValues('app', 'isapi_http_requests_total{namespace=~"isapi-test"}')).length).toBeGreaterThan(0);
  });

  it('returns data for every dashboard query', async () => {
    const exprs = dashboardTargets().map((t) =>
      substituteGrafanaVariables(t.expr, { values: { namespace: 'isapi-test' }, interval: '15s' }),
    );
    const results = await prom!.evaluate(exprs);
    expect(results.filter((r) => !r.ok)).toEqual([]);
    // The fixture's traffic changes every scrape, so quantiles and ratios are real numbers too.
    expect(results.filter((r) => r.finite === 0)).toEqual([]);
    expect(results.length).toBe(exprs.length);
  });
});
