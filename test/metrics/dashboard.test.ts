/**
 * The Grafana dashboard: committed JSON is what metrics/dashboard/generate.ts builds,
 * every query names only defined metrics, and every query parses (promtool check rules).
 * Set UPDATE_DASHBOARD=1 to rewrite the committed JSON.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALL_METRICS, PROCESS_METRIC_NAMES } from '../../metrics';
import { buildDashboard, dashboardText } from '../../metrics/dashboard/generate';
import { metricInLabelValuesQuery, metricNamesInExpr, substituteGrafanaVariables } from './promql';
import { PROMTOOL, requireTool, runTool } from './tools';

const DASHBOARD_FILE = join(__dirname, '..', '..', 'metrics', 'dashboard', 'isapi-gateway.json');

interface Target {
  expr: string;
  legendFormat?: string;
  format?: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
}
interface Variable {
  name: string;
  type: string;
  query: string | { query: string };
  allValue?: string;
  includeAll?: boolean;
  multi?: boolean;
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
}

if (process.env.UPDATE_DASHBOARD === '1') writeFileSync(DASHBOARD_FILE, dashboardText());
const committed = readFileSync(DASHBOARD_FILE, 'utf8');
const dashboard = JSON.parse(committed) as Dashboard;
const targets = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, ...t })));

/** Metric names a query may select: defined names, histogram series names, process metrics. */
function isKnownMetric(name: string): boolean {
  if ((PROCESS_METRIC_NAMES as readonly string[]).includes(name)) return true;
  return ALL_METRICS.some(
    (d) => d.name === name || (d.type === 'histogram' && ['_bucket', '_sum', '_count'].some((s) => d.name + s === name)),
  );
}

describe('PromQL metric-name extraction', () => {
  it.each([
    ['sum by (app) (rate(foo_total{a="b{c}", d=~"$x"}[5m]))', ['foo_total']],
    ['histogram_quantile(0.99, sum by (le, app) (rate(h_bucket[$__rate_interval])))', ['h_bucket']],
    ['a / on(instance) group_left(x) b or on() vector(0)', ['a', 'b']],
    ['max_over_time(x[1h:5m]) offset 5m > 1e3', ['x']],
    ['sum(rate(x{job="and or"}[1m])) by (job) unless y', ['x', 'y']],
    ['label_replace(up, "a", "$1", "b", "(.*)")', ['up']],
  ])('%s', (expr, names) => {
    expect(metricNamesInExpr(expr).sort()).toEqual([...names].sort());
  });
});

describe('Grafana dashboard', () => {
  it('is the generated dashboard (run with UPDATE_DASHBOARD=1 to refresh)', () => {
    expect(committed).toBe(dashboardText());
    expect(dashboard).toEqual(JSON.parse(JSON.stringify(buildDashboard())));
  });

  it('has datasource, namespace, instance and app variables', () => {
    const vars = new Map(dashboard.templating.list.map((v) => [v.name, v]));
    expect(vars.get('datasource')?.type).toBe('datasource');
    expect(vars.get('datasource')?.query).toBe('prometheus');
    for (const name of ['namespace', 'instance', 'app']) {
      const v = vars.get(name);
      expect(v?.type).toBe('query');
      expect(v?.includeAll).toBe(true);
      expect(v?.allValue).toBe('.*');
      const q = typeof v?.query === 'string' ? v.query : (v?.query.query ?? '');
      const metric = metricInLabelValuesQuery(q);
      expect(metric !== undefined && isKnownMetric(metric)).toBe(true);
    }
  });

  it('uses the datasource variable everywhere and has unique ids and no overlapping panels', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      if (p.type === 'row') continue;
      expect(p.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
      for (const t of p.targets ?? []) expect(t.datasource?.uid).toBe('${datasource}');
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
    }
    const cells = new Set<string>();
    for (const p of dashboard.panels) {
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          const cell = `${x},${y}`;
          expect(cells.has(cell) ? `overlap at ${cell} (${p.title})` : 'ok').toBe('ok');
          cells.add(cell);
        }
      }
    }
  });

  it('covers RED, latency quantiles, async I/O, TransmitFile, bridges and upstreams', () => {
    const exprs = targets.map((t) => t.expr).join('\n');
    expect(exprs).toMatch(/histogram_quantile\(0\.99, sum by \(app, le\) \(rate\(isapi_http_request_duration_seconds_bucket/);
    expect(exprs).toContain('isapi_extension_async_operations_outstanding');
    expect(exprs).toContain('isapi_extension_write_client_bytes_total');
    expect(exprs).toContain('isapi_extension_transmit_file_bytes_total');
    expect(exprs).toContain('isapi_bridge_up');
    expect(exprs).toContain('isapi_bridge_restarts_total');
    expect(exprs).toContain('isapi_upstream_target_healthy');
    const heatmap = dashboard.panels.find((p) => p.type === 'heatmap');
    expect(heatmap?.targets?.[0]?.format).toBe('heatmap');
    expect(heatmap?.targets?.[0]?.expr).toMatch(/sum by \(le\) \(rate\(isapi_extension_async_outstanding_seconds_bucket/);
    for (const t of targets.filter((x) => x.expr.includes('isapi_http_'))) expect(t.expr).toContain('app=~"$app"');
  });

  it.each(targets.map((t) => [`${t.panel}: ${t.expr}`, t] as const))('%s names only defined metrics', (_name, t) => {
    const names = metricNamesInExpr(t.expr);
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) expect({ name, known: isKnownMetric(name) }).toEqual({ name, known: true });
    expect(t.expr).toContain('namespace=~"$namespace"');
    expect(t.expr).toContain('instance=~"$instance"');
  });

  it('parses every query with promtool check rules', async () => {
    const promtool = requireTool(PROMTOOL);
    const dir = mkdtempSync(join(tmpdir(), 'isapi-dash-'));
    try {
      const rules = targets.map((t, i) => ({
        record: `dashboard:query_${i}`,
        expr: substituteGrafanaVariables(t.expr, { interval: '1m' }),
      }));
      const file = join(dir, 'rules.yml');
      writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }, null, 2));
      const r = await runTool(promtool, ['check', 'rules', file]);
      expect(r.code === 0 ? 'ok' : `${promtool} check rules: ${r.stdout}${r.stderr}`).toBe('ok');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
