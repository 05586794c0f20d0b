/**
 * Builds the Grafana dashboard metrics/dashboard/isapi-gateway.json from code, so panel
 * layout stays regular and every query names metrics through METRIC_DEFINITIONS.
 * Regenerate with `UPDATE_DASHBOARD=1 npx jest test/metrics/dashboard.test.ts` (or, after
 * a build, `node dist/metrics/dashboard/generate.js metrics/dashboard/isapi-gateway.json`);
 * test/metrics/dashboard.test.ts fails when the committed JSON is stale.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { METRIC_DEFINITIONS as M } from '../definitions';

export const DASHBOARD_UID = 'isapi-gateway';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface DashboardTarget {
  readonly expr: string;
  readonly legendFormat: string;
  readonly format?: 'time_series' | 'heatmap';
}

interface PanelSpec {
  readonly title: string;
  readonly description: string;
  readonly type: 'timeseries' | 'heatmap' | 'stat';
  readonly unit: string;
  readonly targets: readonly DashboardTarget[];
  readonly width?: number;
  readonly stack?: boolean;
}

interface RowSpec {
  readonly title: string;
  readonly panels: readonly PanelSpec[];
}

const DS = { type: 'prometheus', uid: '${datasource}' } as const;
const RATE = '$__rate_interval';

/** Label matchers for the template variables; `app` only where the metric has an app label. */
function sel(extra: readonly string[] = [], withApp = false): string {
  const matchers = ['namespace=~"$namespace"', 'instance=~"$instance"'];
  if (withApp) matchers.push('app=~"$app"');
  return `{${[...matchers, ...extra].join(', ')}}`;
}
const app = (extra: readonly string[] = []): string => sel(extra, true);
const rate = (metric: string, selector: string): string => `rate(${metric}${selector}[${RATE}])`;
const quantile = (q: number, histogram: string, by: string, selector: string): string =>
  `histogram_quantile(${q}, sum by (${by}, le) (${rate(`${histogram}_bucket`, selector)}))`;
/** Sparse error counters: show 0 instead of "no data" while nothing has failed. */
const orZero = (expr: string): string => `${expr} or on() vector(0)`;

const ROWS: readonly RowSpec[] = [
  {
    title: 'Requests (RED)',
    panels: [
      {
        title: 'Request rate by app',
        description: 'Completed client requests per second.',
        type: 'timeseries',
        unit: 'reqps',
        targets: [{ expr: `sum by (app) (${rate(M.httpRequests.name, app())})`, legendFormat: '{{app}}' }],
      },
      {
        title: 'Error ratio (5xx) by app',
        description: 'Share of requests answered with a 5xx status.',
        type: 'timeseries',
        unit: 'percentunit',
        targets: [
          {
            expr:
              `(sum by (app) (${rate(M.httpRequests.name, app(['status_class="5xx"']))})` +
              ` or 0 * sum by (app) (${rate(M.httpRequests.name, app())}))` +
              ` / sum by (app) (${rate(M.httpRequests.name, app())})`,
            legendFormat: '{{app}}',
          },
        ],
      },
      {
        title: 'Latency quantiles',
        description: 'From isapi_http_request_duration_seconds: p50, p90 and p99 per app.',
        type: 'timeseries',
        unit: 's',
        targets: [0.5, 0.9, 0.99].map((q) => ({
          expr: quantile(q, M.httpRequestDuration.name, 'app', app()),
          legendFormat: `p${Math.round(q * 100)} {{app}}`,
        })),
      },
      {
        title: 'Responses by status class',
        description: 'Requests per second by status class.',
        type: 'timeseries',
        unit: 'reqps',
        stack: true,
        targets: [{ expr: `sum by (status_class) (${rate(M.httpRequests.name, app())})`, legendFormat: '{{status_class}}' }],
      },
      {
        title: 'Requests in flight',
        description: 'Requests received and not yet completed.',
        type: 'timeseries',
        unit: 'short',
        targets: [{ expr: `sum by (app) (${M.httpRequestsInFlight.name}${app()})`, legendFormat: '{{app}}' }],
      },
      {
        title: 'Body throughput',
        description: 'Request and response body bytes per second.',
        type: 'timeseries',
        unit: 'Bps',
        targets: [
          { expr: `sum by (app) (${rate(M.httpRequestBytes.name, app())})`, legendFormat: 'in {{app}}' },
          { expr: `sum by (app) (${rate(M.httpResponseBytes.name, app())})`, legendFormat: 'out {{app}}' },
        ],
      },
    ],
  },
  {
    title: 'ISAPI I/O',
    panels: [
      {
        title: 'WriteClient bytes: sync vs async',
        description: 'Bytes written with WriteClient, by mode.',
        type: 'timeseries',
        unit: 'Bps',
        stack: true,
        targets: [{ expr: `sum by (mode) (${rate(M.writeClientBytes.name, app())})`, legendFormat: '{{mode}}' }],
      },
      {
        title: 'WriteClient calls: sync vs async',
        description: 'WriteClient calls per second, by mode.',
        type: 'timeseries',
        unit: 'ops',
        stack: true,
        targets: [{ expr: `sum by (mode) (${rate(M.writeClientCalls.name, app())})`, legendFormat: '{{mode}}' }],
      },
      {
        title: 'ReadClient bytes: sync vs async',
        description: 'Request body bytes read by extensions, by mode.',
        type: 'timeseries',
        unit: 'Bps',
        stack: true,
        targets: [{ expr: `sum by (mode) (${rate(M.readClientBytes.name, app())})`, legendFormat: '{{mode}}' }],
      },
      {
        title: 'Async operations outstanding',
        description: 'Async ECB operations issued and not completed, by kind (live, from the bridges).',
        type: 'timeseries',
        unit: 'short',
        targets: [
          { expr: `sum by (kind) (${M.asyncOperationsOutstanding.name}${app()})`, legendFormat: '{{kind}}' },
        ],
      },
      {
        title: 'Async pending time',
        description: 'Distribution of the time from issuing an async operation to its completion routine.',
        type: 'heatmap',
        unit: 's',
        targets: [
          {
            expr: `sum by (le) (${rate(`${M.asyncOutstandingDuration.name}_bucket`, app())})`,
            legendFormat: '{{le}}',
            format: 'heatmap',
          },
        ],
      },
      {
        title: 'Async pending time p99 by kind',
        description: '99th percentile of the async outstanding time, by kind.',
        type: 'timeseries',
        unit: 's',
        targets: [{ expr: quantile(0.99, M.asyncOutstandingDuration.name, 'kind', app()), legendFormat: '{{kind}}' }],
      },
      {
        title: 'Async completions by kind',
        description: 'Completed async operations per second, by kind.',
        type: 'timeseries',
        unit: 'ops',
        targets: [{ expr: `sum by (kind) (${rate(M.asyncOperations.name, app())})`, legendFormat: '{{kind}}' }],
      },
      {
        title: 'Completion errors and rejected second operations',
        description: 'Async completions with a Win32 error, by code; async calls refused while another was outstanding.',
        type: 'timeseries',
        unit: 'ops',
        targets: [
          {
            expr: orZero(`sum by (code) (${rate(M.asyncCompletionErrors.name, app())})`),
            legendFormat: '{{code}}',
          },
          {
            expr: orZero(`sum(${rate(M.asyncSecondOutstandingRejected.name, app())})`),
            legendFormat: 'rejected second outstanding',
          },
        ],
      },
    ],
  },
  {
    title: 'TransmitFile and ServerSupportFunction',
    panels: [
      {
        title: 'TransmitFile throughput',
        description: 'Bytes per second sent with HSE_REQ_TRANSMIT_FILE and HSE_REQ_VECTOR_SEND.',
        type: 'timeseries',
        unit: 'Bps',
        targets: [
          { expr: `sum by (app) (${rate(M.transmitFileBytes.name, app())})`, legendFormat: 'transmit_file {{app}}' },
          { expr: `sum by (app) (${rate(M.vectorSendBytes.name, app())})`, legendFormat: 'vector_send {{app}}' },
        ],
      },
      {
        title: 'ServerSupportFunction calls',
        description: 'SSF calls per second by request name and result.',
        type: 'timeseries',
        unit: 'ops',
        targets: [
          { expr: `sum by (request, result) (${rate(M.ssfCalls.name, app())})`, legendFormat: '{{request}} {{result}}' },
        ],
      },
      {
        title: 'Unsupported SSF calls',
        description: 'ServerSupportFunction requests the bridge does not implement.',
        type: 'timeseries',
        unit: 'ops',
        targets: [
          {
            expr: orZero(`sum by (request) (${rate(M.ssfCalls.name, app(['result="unsupported"']))})`),
            legendFormat: '{{request}}',
          },
        ],
      },
      {
        title: 'Extension load failures',
        description: 'Failed extension loads per interval, by app and stage.',
        type: 'timeseries',
        unit: 'short',
        targets: [
          {
            expr: orZero(`sum by (app, stage) (increase(${M.extensionLoadFailures.name}${app()}[${RATE}]))`),
            legendFormat: '{{app}} {{stage}}',
          },
        ],
      },
    ],
  },
  {
    title: 'Bridges',
    panels: [
      {
        title: 'Bridge up',
        description: '1 while the bridge process runs and accepts requests.',
        type: 'stat',
        unit: 'short',
        targets: [{ expr: `max by (bridge) (${M.bridgeUp.name}${sel()})`, legendFormat: '{{bridge}}' }],
      },
      {
        title: 'Bridge restarts',
        description: 'Bridge process restarts per interval, by reason.',
        type: 'timeseries',
        unit: 'short',
        targets: [
          {
            expr: orZero(`sum by (bridge, reason) (increase(${M.bridgeRestarts.name}${sel()}[${RATE}]))`),
            legendFormat: '{{bridge}} {{reason}}',
          },
        ],
      },
      {
        title: 'Pipe connections in use',
        description: 'Gateway-to-bridge connections carrying a request.',
        type: 'timeseries',
        unit: 'short',
        targets: [{ expr: `sum by (bridge) (${M.bridgeConnectionsInUse.name}${sel()})`, legendFormat: '{{bridge}}' }],
      },
      {
        title: 'Spool bytes held for client writes',
        description:
          "Response bytes the gateway writes to clients straight from each bridge's spool (Unix-socket bridges on Linux). It follows slow clients; if it stays up with no traffic, a write's memory was never given back.",
        type: 'timeseries',
        unit: 'bytes',
        targets: [{ expr: `sum by (bridge) (${M.bridgeSpoolHeldBytes.name}${sel()})`, legendFormat: '{{bridge}}' }],
      },
      {
        title: 'Pipe connection wait p99',
        description: '99th percentile of the wait for a free gateway-to-bridge connection.',
        type: 'timeseries',
        unit: 's',
        targets: [{ expr: quantile(0.99, M.bridgeConnectionWait.name, 'bridge', sel()), legendFormat: '{{bridge}}' }],
      },
      {
        title: 'Process memory (RSS)',
        description: 'Resident memory of the gateway and of each bridge process.',
        type: 'timeseries',
        unit: 'bytes',
        targets: [
          {
            expr: `max by (component, bridge) (process_resident_memory_bytes${sel()})`,
            legendFormat: '{{component}} {{bridge}}',
          },
        ],
      },
      {
        title: 'Process CPU',
        description: 'CPU seconds per second of the gateway and of each bridge process.',
        type: 'timeseries',
        unit: 'percentunit',
        targets: [
          {
            expr: `sum by (component, bridge) (${rate('process_cpu_seconds_total', sel())})`,
            legendFormat: '{{component}} {{bridge}}',
          },
        ],
      },
      {
        title: 'Event loop lag p99',
        description: 'Node.js event loop delay (p99) per process.',
        type: 'timeseries',
        unit: 's',
        targets: [
          {
            expr: `max by (component, bridge) (nodejs_eventloop_lag_p99_seconds${sel()})`,
            legendFormat: '{{component}} {{bridge}}',
          },
        ],
      },
      {
        title: 'Bridge metrics scrape errors',
        description: 'Bridges left out of a gateway scrape (timeout, failure, invalid snapshot).',
        type: 'timeseries',
        unit: 'short',
        targets: [
          {
            expr: orZero(`sum by (bridge) (increase(${M.bridgeScrapeErrors.name}${sel()}[${RATE}]))`),
            legendFormat: '{{bridge}}',
          },
        ],
      },
    ],
  },
  {
    title: 'HTTP upstreams',
    panels: [
      {
        title: 'Upstream target health',
        description: '1 while the target passes health checks.',
        type: 'timeseries',
        unit: 'short',
        targets: [
          {
            expr: `min by (upstream, target) (${M.upstreamTargetHealthy.name}${sel()})`,
            legendFormat: '{{upstream}} {{target}}',
          },
        ],
      },
      {
        title: 'Upstream responses by status class',
        description: 'Responses per second from upstream targets.',
        type: 'timeseries',
        unit: 'reqps',
        targets: [
          {
            expr: `sum by (upstream, status_class) (${rate(M.upstreamRequests.name, sel())})`,
            legendFormat: '{{upstream}} {{status_class}}',
          },
        ],
      },
      {
        title: 'Upstream errors by kind',
        description: 'Failed upstream requests per second: connect, timeout, reset, 5xx, other.',
        type: 'timeseries',
        unit: 'reqps',
        targets: [
          {
            expr: orZero(`sum by (upstream, error_kind) (${rate(M.upstreamErrors.name, sel())})`),
            legendFormat: '{{upstream}} {{error_kind}}',
          },
        ],
      },
      {
        title: 'Upstream retries',
        description: 'Retried upstream requests per second.',
        type: 'timeseries',
        unit: 'reqps',
        targets: [
          { expr: orZero(`sum by (upstream) (${rate(M.upstreamRetries.name, sel())})`), legendFormat: '{{upstream}}' },
        ],
      },
      {
        title: 'Upstream latency p99',
        description: '99th percentile of upstream request time.',
        type: 'timeseries',
        unit: 's',
        targets: [
          { expr: quantile(0.99, M.upstreamRequestDuration.name, 'upstream', sel()), legendFormat: '{{upstream}}' },
        ],
      },
    ],
  },
];

function panelJson(spec: PanelSpec, id: number, gridPos: { x: number; y: number; w: number; h: number }): Json {
  const targets: Json[] = spec.targets.map((t, i) => ({
    datasource: { ...DS },
    refId: String.fromCharCode(65 + i),
    expr: t.expr,
    legendFormat: t.legendFormat,
    range: true,
    instant: false,
    ...(t.format === 'heatmap' ? { format: 'heatmap' } : {}),
  }));
  const base = {
    id,
    type: spec.type,
    title: spec.title,
    description: spec.description,
    datasource: { ...DS },
    gridPos,
    targets,
  };
  switch (spec.type) {
    case 'heatmap':
      return {
        ...base,
        fieldConfig: { defaults: { unit: spec.unit }, overrides: [] },
        options: {
          calculate: false,
          cellGap: 1,
          color: { mode: 'scheme', scheme: 'Oranges', steps: 64 },
          yAxis: { unit: spec.unit },
          tooltip: { show: true, yHistogram: true },
          legend: { show: true },
        },
      };
    case 'stat':
      return {
        ...base,
        fieldConfig: {
          defaults: {
            unit: spec.unit,
            mappings: [
              { type: 'value', options: { '0': { text: 'down', color: 'red' }, '1': { text: 'up', color: 'green' } } },
            ],
            thresholds: {
              mode: 'absolute',
              steps: [
                { color: 'red', value: null },
                { color: 'green', value: 1 },
              ],
            },
          },
          overrides: [],
        },
        options: {
          reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
          colorMode: 'background',
          graphMode: 'none',
          textMode: 'value_and_name',
        },
      };
    case 'timeseries':
      return {
        ...base,
        fieldConfig: {
          defaults: {
            unit: spec.unit,
            custom: { drawStyle: 'line', fillOpacity: spec.stack ? 30 : 10, stacking: { mode: spec.stack ? 'normal' : 'none' } },
          },
          overrides: [],
        },
        options: { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi', sort: 'desc' } },
      };
  }
}

function queryVariable(name: string, label: string, query: string): Json {
  return {
    name,
    label,
    type: 'query',
    datasource: { ...DS },
    query: { query, refId: `${name}-variable` },
    definition: query,
    refresh: 2,
    includeAll: true,
    allValue: '.*',
    multi: true,
    current: { selected: true, text: ['All'], value: ['$__all'] },
    sort: 1,
    hide: 0,
    regex: '',
    options: [],
  };
}

export function buildDashboard(): Json {
  const panels: Json[] = [];
  let id = 1;
  let y = 0;
  for (const row of ROWS) {
    panels.push({ id: id++, type: 'row', title: row.title, collapsed: false, gridPos: { x: 0, y, w: 24, h: 1 }, panels: [] });
    y += 1;
    let x = 0;
    for (const spec of row.panels) {
      const w = spec.width ?? 8;
      if (x + w > 24) {
        x = 0;
        y += 8;
      }
      panels.push(panelJson(spec, id++, { x, y, w, h: 8 }));
      x += w;
    }
    y += 8;
  }
  const requests = M.httpRequests.name;
  return {
    uid: DASHBOARD_UID,
    title: 'ISAPI Gateway',
    description: 'RED per app, ISAPI async I/O, TransmitFile, bridges and HTTP upstreams of isapi-gateway.',
    tags: ['isapi-gateway', 'prometheus'],
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: 'now-1h', to: 'now' },
    timezone: 'browser',
    annotations: { list: [] },
    links: [],
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Data source',
          type: 'datasource',
          query: 'prometheus',
          current: {},
          hide: 0,
          refresh: 1,
          regex: '',
          options: [],
        },
        queryVariable('namespace', 'Namespace', `label_values(${requests}, namespace)`),
        queryVariable('instance', 'Instance', `label_values(${requests}{namespace=~"$namespace"}, instance)`),
        queryVariable(
          'app',
          'App',
          `label_values(${requests}{namespace=~"$namespace", instance=~"$instance"}, app)`,
        ),
      ],
    },
    panels,
  };
}

/** Every PromQL expression of the dashboard's panels, in panel order. */
export function dashboardTargets(): DashboardTarget[] {
  return ROWS.flatMap((row) => row.panels.flatMap((p) => [...p.targets]));
}

export function dashboardText(): string {
  return `${JSON.stringify(buildDashboard(), null, 2)}\n`;
}

if (require.main === module) {
  const out = process.argv[2] ?? join('metrics', 'dashboard', 'isapi-gateway.json');
  writeFileSync(out, dashboardText());
  process.stdout.write(`wrote ${out}\n`);
}
