import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import * as constants from '../../bridge/abi/constants';
import {
  ALL_METRICS,
  BRIDGE_LABEL,
  LABEL_DOMAINS,
  METRIC_DEFINITIONS,
  MetricsRegistrationError,
  PROCESS_METRIC_NAMES,
  SSF_REQUEST_NAMES,
  WIN32_ERROR_LABELS,
  createBridgeMetrics,
  createGatewayMetrics,
  createMetricsRegistry,
} from '../../metrics';

const NAME_RE = /^isapi_(http|extension|bridge|upstream)_[a-z0-9_]+$/;

describe('metric definitions', () => {
  it('has unique names, also after histogram/counter suffixes are expanded', () => {
    const names = ALL_METRICS.map((d) => d.name);
    expect(new Set(names).size).toBe(names.length);
    const series = ALL_METRICS.flatMap((d) =>
      d.type === 'histogram' ? [`${d.name}_bucket`, `${d.name}_sum`, `${d.name}_count`, d.name] : [d.name],
    );
    expect(new Set(series).size).toBe(series.length);
  });

  it.each(ALL_METRICS.map((d) => [d.name, d] as const))('%s follows the naming rules', (_name, def) => {
    expect(def.name).toMatch(NAME_RE);
    expect(def.name).not.toMatch(/__|_$/);
    if (def.type === 'counter') expect(def.name).toMatch(/_total$/);
    else expect(def.name).not.toMatch(/_total$|_count$|_sum$|_bucket$/);
    // Base units only.
    expect(def.name).not.toMatch(/_(milliseconds|ms|microseconds|kilobytes|kb|mb|minutes|hours|percent)(_|$)/);
    if (def.type === 'histogram') expect(def.name).toMatch(/_(seconds|bytes)$/);
    expect(def.help.length).toBeGreaterThan(10);
    expect(def.help).not.toMatch(/\n/);
    // Labels: unique, known, from a bounded domain.
    expect(new Set(def.labelNames).size).toBe(def.labelNames.length);
    for (const label of def.labelNames) expect(Object.keys(LABEL_DOMAINS)).toContain(label);
    expect(def.labelNames).not.toContain('le');
    if (def.emitter === 'bridge') expect(def.labelNames).not.toContain(BRIDGE_LABEL);
    if (def.buckets) {
      expect(def.type).toBe('histogram');
      expect([...def.buckets].sort((a, b) => a - b)).toEqual(def.buckets);
      expect(new Set(def.buckets).size).toBe(def.buckets.length);
      expect(def.buckets.every((b) => Number.isFinite(b) && b > 0)).toBe(true);
    } else {
      expect(def.type).not.toBe('histogram');
    }
  });

  it('is documented: metrics/README.md lists every metric with its labels', () => {
    const readme = readFileSync(join(__dirname, '..', '..', 'metrics', 'README.md'), 'utf8');
    for (const def of ALL_METRICS) {
      const row = readme.split('\n').find((l) => l.startsWith(`| \`${def.name}\` | ${def.type} |`));
      expect({ name: def.name, documented: row !== undefined }).toEqual({ name: def.name, documented: true });
      for (const label of def.labelNames) expect(row).toContain(`\`${label}\``);
    }
  });

  it('keeps the handle key table and ALL_METRICS in step', () => {
    expect(ALL_METRICS.map((d) => d.key)).toEqual(Object.keys(METRIC_DEFINITIONS));
  });

  it('bounds every enum label domain and keeps it free of duplicates', () => {
    for (const [name, domain] of Object.entries(LABEL_DOMAINS)) {
      if (domain.kind !== 'enum') continue;
      expect(domain.values.length).toBeGreaterThan(0);
      expect(domain.values.length).toBeLessThanOrEqual(64);
      expect(new Set(domain.values).size).toBe(domain.values.length);
      expect(name).toMatch(/^[a-z_]+$/);
    }
  });

  it('keeps SSF names equal to HSE_REQ in bridge/abi/constants.ts', () => {
    expect(SSF_REQUEST_NAMES.filter((n) => n !== 'UNKNOWN')).toEqual(Object.keys(constants.HSE_REQ));
  });

  it('gives every Win32 error of bridge/abi/constants.ts (except SUCCESS) its own code label', () => {
    for (const [name, code] of Object.entries(constants.WIN32_ERROR)) {
      if (code === 0) continue;
      const label = (WIN32_ERROR_LABELS as Record<number, string>)[code];
      expect(label).toBeDefined();
      expect(label?.endsWith(name)).toBe(true);
    }
  });
});

describe('metric factories', () => {
  it('register exactly the gateway definitions plus process metrics', async () => {
    const registry = createMetricsRegistry();
    const handles = createGatewayMetrics(registry);
    const gatewayDefs = ALL_METRICS.filter((d) => d.emitter === 'gateway');
    expect(Object.keys(handles).sort()).toEqual(gatewayDefs.map((d) => d.key).sort());
    const json = await registry.getMetricsAsJSON();
    const names = json.map((m) => m.name);
    for (const def of gatewayDefs) expect(names).toContain(def.name);
    for (const name of PROCESS_METRIC_NAMES) expect(names).toContain(name);
    for (const def of ALL_METRICS.filter((d) => d.emitter === 'bridge')) expect(names).not.toContain(def.name);
    const cpu = json.find((m) => m.name === 'process_cpu_seconds_total');
    expect(cpu?.values[0]?.labels).toEqual({ component: 'gateway' });
  });

  it('register exactly the bridge definitions plus process metrics labelled component=bridge', async () => {
    const registry = createMetricsRegistry();
    const handles = createBridgeMetrics(registry);
    expect(Object.keys(handles).sort()).toEqual(
      ALL_METRICS.filter((d) => d.emitter === 'bridge')
        .map((d) => d.key)
        .sort(),
    );
    const json = await registry.getMetricsAsJSON();
    const rss = json.find((m) => m.name === 'process_resident_memory_bytes');
    expect(rss?.values[0]?.labels).toEqual({ component: 'bridge' });
  });

  it('refuses to register twice in one registry with a coded error', () => {
    const registry = new Registry();
    createBridgeMetrics(registry, { processMetrics: false });
    expect(() => createBridgeMetrics(registry, { processMetrics: false })).toThrow(MetricsRegistrationError);
    try {
      createBridgeMetrics(registry, { processMetrics: false });
    } catch (error) {
      expect((error as MetricsRegistrationError).code).toBe('ERR_METRICS_ALREADY_REGISTERED');
    }
  });

  it('passes the declared buckets to prom-client', async () => {
    const registry = createMetricsRegistry();
    const m = createGatewayMetrics(registry, { processMetrics: false });
    m.httpRequestDuration.observe({ route: 'r', app: 'a', method: 'GET', status_class: '2xx' }, 0.3);
    const json = await registry.getMetricsAsJSON();
    const hist = json.find((x) => x.name === METRIC_DEFINITIONS.httpRequestDuration.name);
    const bounds = hist?.values.filter((v) => (v as { metricName?: string }).metricName?.endsWith('_bucket')).map((v) => v.labels.le);
    expect(bounds).toEqual([...METRIC_DEFINITIONS.httpRequestDuration.buckets, '+Inf']);
  });
});
