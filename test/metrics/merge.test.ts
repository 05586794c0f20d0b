import {
  CONTENT_TYPES,
  InvalidSnapshotError,
  MetricsMergeError,
  familiesFromJSON,
  mergeExposition,
  mergeMetrics,
  negotiate,
  renderOpenMetrics,
  renderText,
} from '../../metrics';
import { bridgeSnapshots, createWorld, gatewayJson, observeEveryMetric, simulateTraffic } from './fixtures';

/** HELP/TYPE lines of an exposition, keyed by "kind name". */
function metadataCounts(body: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of body.split('\n')) {
    const m = /^# (HELP|TYPE|UNIT) (\S+)/.exec(line);
    if (m) counts.set(`${m[1]} ${m[2]}`, (counts.get(`${m[1]} ${m[2]}`) ?? 0) + 1);
  }
  return counts;
}

describe('negotiate', () => {
  it.each([
    [undefined, 'text'],
    ['', 'text'],
    ['*/*', 'text'],
    ['text/plain', 'text'],
    ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'text'],
    // Prometheus 2.x default scrape Accept header
    [
      'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1',
      'openmetrics',
    ],
    ['application/openmetrics-text', 'openmetrics'],
    ['application/openmetrics-text; version=1.0.0; charset=utf-8', 'openmetrics'],
    ['application/openmetrics-text;version=0.0.1', 'text'],
    ['application/openmetrics-text;q=0', 'text'],
    ['application/openmetrics-text;q=0.4,text/plain;q=0.5', 'text'],
    ['text/plain;version=0.0.4;q=0.5,application/openmetrics-text;version=1.0.0;q=0.5', 'openmetrics'],
    ['APPLICATION/OPENMETRICS-TEXT', 'openmetrics'],
    ['application/openmetrics-text;q=abc', 'text'],
  ] as const)('%p -> %s', (accept, format) => {
    const n = negotiate(accept);
    expect(n.format).toBe(format);
    expect(n.contentType).toBe(CONTENT_TYPES[format]);
  });

  it('accepts header arrays', () => {
    expect(negotiate(['text/plain;q=0.1', 'application/openmetrics-text']).format).toBe('openmetrics');
  });
});

describe('familiesFromJSON', () => {
  it.each<[string, unknown]>([
    ['not an array', { name: 'x' }],
    ['bad name', [{ name: '1x', help: '', type: 'gauge', values: [] }]],
    ['bad type', [{ name: 'x', help: '', type: 'weird', values: [] }]],
    ['foreign sample name', [{ name: 'x', help: '', type: 'gauge', values: [{ value: 1, labels: {}, metricName: 'y' }] }]],
    ['reserved label', [{ name: 'x', help: '', type: 'gauge', values: [{ value: 1, labels: { __name__: 'z' } }] }]],
    ['bad label value', [{ name: 'x', help: '', type: 'gauge', values: [{ value: 1, labels: { a: {} } }] }]],
    ['bad value', [{ name: 'x', help: '', type: 'gauge', values: [{ value: 'one', labels: {} }] }]],
    ['duplicate family', [{ name: 'x', help: '', type: 'gauge', values: [] }, { name: 'x', help: '', type: 'gauge', values: [] }]],
    [
      'histogram without +Inf',
      [
        {
          name: 'h',
          help: '',
          type: 'histogram',
          values: [
            { value: 1, labels: { le: 1 }, metricName: 'h_bucket' },
            { value: 1, labels: {}, metricName: 'h_sum' },
            { value: 1, labels: {}, metricName: 'h_count' },
          ],
        },
      ],
    ],
  ])('rejects %s', (_what, json) => {
    expect(() => familiesFromJSON(json, 'test')).toThrow(InvalidSnapshotError);
  });

  it('accepts NaN / Inf after a JSON round trip (null) and as strings', () => {
    const [f] = familiesFromJSON(
      [{ name: 'g', help: 'h', type: 'gauge', values: [{ value: null, labels: { a: '1' } }, { value: '+Inf', labels: { a: '2' } }] }],
      'test',
    );
    expect(Number.isNaN(f?.samples[0]?.value)).toBe(true);
    expect(f?.samples[1]?.value).toBe(Infinity);
    expect(renderText(f ? [f] : [])).toContain('g{a="2"} +Inf');
  });
});

describe('rendering', () => {
  const families = familiesFromJSON(
    [
      { name: 'c_total', help: 'a "quoted" \\ help\nline', type: 'counter', values: [{ value: 3, labels: { path: 'a"b\\c\nd' } }] },
      { name: 'plain', help: 'counter without _total', type: 'counter', values: [{ value: 1, labels: {} }] },
      { name: 'up_seconds', help: 'g', type: 'gauge', values: [{ value: 0.5, labels: {} }] },
      {
        name: 's',
        help: 'summary',
        type: 'summary',
        values: [
          { value: 0.1, labels: { quantile: 0.5 } },
          { value: 0.3, labels: { quantile: 0.99 } },
          { value: 1.2, labels: {}, metricName: 's_sum' },
          { value: 4, labels: {}, metricName: 's_count' },
        ],
      },
    ],
    'test',
  );

  it('renders text format with escaped help and label values', () => {
    const text = renderText(families);
    expect(text).toContain('# HELP c_total a "quoted" \\\\ help\\nline');
    expect(text).toContain('c_total{path="a\\"b\\\\c\\nd"} 3');
    expect(text).toContain('# TYPE plain counter');
    expect(text).toContain('s{quantile="0.99"} 0.3');
    expect(text.endsWith('\n')).toBe(true);
  });

  it('renders OpenMetrics with counter family names, units and # EOF', () => {
    const om = renderOpenMetrics(families);
    expect(om).toContain('# TYPE c counter\n');
    expect(om).toContain('# HELP c a \\"quoted\\" \\\\ help\\nline');
    expect(om).toContain('c_total{path="a\\"b\\\\c\\nd"} 3');
    expect(om).toContain('# TYPE plain unknown');
    expect(om).toContain('# TYPE up_seconds gauge\n# UNIT up_seconds seconds');
    expect(om.endsWith('# EOF\n')).toBe(true);
  });
});

describe('mergeMetrics', () => {
  it('labels bridge series, keeps one HELP/TYPE per family and preserves histograms', async () => {
    const world = createWorld(['b1', 'b2']);
    observeEveryMetric(world.gateway, 'gateway');
    for (const b of world.bridges) observeEveryMetric(b.metrics, 'bridge');
    simulateTraffic(world, 1);
    const bridges = await bridgeSnapshots(world);
    const { families, rejected } = mergeMetrics(await gatewayJson(world), bridges);
    expect(rejected).toEqual([]);

    // Bridge-only family: every series carries bridge=b1 or b2; the values are the bridge's own, not sums.
    const outstanding = families.find((f) => f.name === 'isapi_extension_async_outstanding_seconds');
    expect(outstanding?.type).toBe('histogram');
    const bridgesSeen = new Set(outstanding?.samples.map((s) => s.labels.bridge));
    expect(bridgesSeen).toEqual(new Set(['b1', 'b2']));
    const b1Json = (bridges[0]?.metrics as Array<{ name: string; values: unknown[] }>).find(
      (f) => f.name === 'isapi_extension_async_outstanding_seconds',
    );
    expect(outstanding?.samples.filter((s) => s.labels.bridge === 'b1').length).toBe(b1Json?.values.length);

    // Shared family (process metrics): gateway series without bridge label, one per bridge with it.
    const cpu = families.find((f) => f.name === 'process_cpu_seconds_total');
    const cpuLabels = cpu?.samples.map((s) => `${s.labels.component}/${s.labels.bridge ?? '-'}`);
    expect(new Set(cpuLabels)).toEqual(new Set(['gateway/-', 'bridge/b1', 'bridge/b2']));

    // Gateway-only families untouched.
    const up = families.find((f) => f.name === 'isapi_bridge_up');
    expect(up?.samples.every((s) => !('exported_bridge' in s.labels))).toBe(true);

    for (const format of ['text', 'openmetrics'] as const) {
      const { body } = mergeExposition(await gatewayJson(world), bridges, format);
      for (const [key, count] of metadataCounts(body)) expect({ key, count }).toEqual({ key, count: 1 });
      // every series line unique
      const lines = body.split('\n').filter((l) => l && !l.startsWith('#'));
      const ids = lines.map((l) => l.slice(0, l.lastIndexOf(' ')));
      expect(new Set(ids).size).toBe(ids.length);
    }
  });

  it('moves a bridge label the snapshot already had to exported_bridge', () => {
    const { families } = mergeMetrics(
      [],
      [{ bridge: 'b1', metrics: [{ name: 'g', help: 'h', type: 'gauge', values: [{ value: 1, labels: { bridge: 'own', a: 'x' } }] }] }],
    );
    expect(families[0]?.samples[0]?.labels).toEqual({ bridge: 'b1', a: 'x', exported_bridge: 'own' });
  });

  it('rejects a conflicting or malformed bridge snapshot whole, keeping the rest', () => {
    const gateway = [{ name: 'shared', help: 'h', type: 'gauge', values: [{ value: 1, labels: {} }] }];
    const good = { bridge: 'good', metrics: [{ name: 'only_bridge', help: 'h', type: 'gauge', values: [{ value: 2, labels: {} }] }] };
    const typeConflict = {
      bridge: 'conflict',
      metrics: [
        { name: 'ok_part', help: 'h', type: 'gauge', values: [{ value: 3, labels: {} }] },
        { name: 'shared', help: 'h', type: 'counter', values: [{ value: 1, labels: {} }] },
      ],
    };
    const nameClash = {
      bridge: 'clash',
      metrics: [{ name: 'only_bridge_bucket', help: 'h', type: 'gauge', values: [{ value: 1, labels: {} }] }, {
        name: 'hist', help: 'h', type: 'gauge', values: [],
      }, { name: 'shared_total', help: 'h', type: 'counter', values: [] }],
    };
    const duplicate = { bridge: 'good', metrics: good.metrics };
    const malformed = { bridge: 'broken', metrics: 'nope' };
    const empty = { bridge: '', metrics: [] };
    const { families, rejected } = mergeMetrics(gateway, [good, typeConflict, nameClash, duplicate, malformed, empty]);
    expect(families.map((f) => f.name)).toEqual(['shared', 'only_bridge']);
    expect(rejected.map((r) => [r.bridge, r.error.code])).toEqual([
      ['conflict', 'ERR_METRICS_MERGE_CONFLICT'],
      ['clash', 'ERR_METRICS_MERGE_CONFLICT'],
      ['good', 'ERR_METRICS_MERGE_CONFLICT'],
      ['broken', 'ERR_METRICS_INVALID_SNAPSHOT'],
      ['', 'ERR_METRICS_MERGE_CONFLICT'],
    ]);
    expect(rejected[0]?.error).toBeInstanceOf(MetricsMergeError);
  });

  it('throws when the gateway output itself is invalid', () => {
    expect(() => mergeMetrics({}, [])).toThrow(InvalidSnapshotError);
  });

  it('keeps histogram series contiguous and buckets ascending even if the input interleaves', () => {
    const { body } = mergeExposition(
      [
        {
          name: 'h_seconds',
          help: 'h',
          type: 'histogram',
          values: [
            { value: 1, labels: { a: '1', le: '+Inf' }, metricName: 'h_seconds_bucket' },
            { value: 2, labels: { a: '2', le: 1 }, metricName: 'h_seconds_bucket' },
            { value: 1, labels: { a: '1', le: 1 }, metricName: 'h_seconds_bucket' },
            { value: 1, labels: { a: '1' }, metricName: 'h_seconds_count' },
            { value: 2, labels: { a: '2', le: '+Inf' }, metricName: 'h_seconds_bucket' },
            { value: 0.5, labels: { a: '1' }, metricName: 'h_seconds_sum' },
            { value: 2, labels: { a: '2' }, metricName: 'h_seconds_count' },
            { value: 0.9, labels: { a: '2' }, metricName: 'h_seconds_sum' },
          ],
        },
      ],
      [],
      'openmetrics',
    );
    expect(body).toBe(
      [
        '# TYPE h_seconds histogram',
        '# UNIT h_seconds seconds',
        '# HELP h_seconds h',
        'h_seconds_bucket{a="1",le="1"} 1',
        'h_seconds_bucket{a="1",le="+Inf"} 1',
        'h_seconds_sum{a="1"} 0.5',
        'h_seconds_count{a="1"} 1',
        'h_seconds_bucket{a="2",le="1"} 2',
        'h_seconds_bucket{a="2",le="+Inf"} 2',
        'h_seconds_sum{a="2"} 0.9',
        'h_seconds_count{a="2"} 2',
        '# EOF',
        '',
      ].join('\n'),
    );
  });
});
