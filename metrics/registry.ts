/**
 * Builds prom-client metric objects from METRIC_DEFINITIONS. The gateway calls
 * createGatewayMetrics once at start-up, each bridge calls createBridgeMetrics; both
 * get back an object of typed handles keyed like the definitions table.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import {
  METRIC_DEFINITIONS,
  type Emitter,
  type MetricDefinition,
  type MetricDefinitions,
  type MetricKey,
  type MetricKeyOf,
} from './definitions';
import { MetricsRegistrationError } from './errors';
import type { Component } from './labels';

type LabelsOf<D> = D extends { readonly labelNames: readonly (infer L extends string)[] } ? L : never;

/** The prom-client handle type for one definition, with its label names as the type parameter. */
export type MetricHandle<D extends MetricDefinition> = D['type'] extends 'counter'
  ? Counter<LabelsOf<D>>
  : D['type'] extends 'gauge'
    ? Gauge<LabelsOf<D>>
    : Histogram<LabelsOf<D>>;

export type MetricHandles<K extends MetricKey> = { readonly [P in K]: MetricHandle<MetricDefinitions[P]> };

/** Handles of every gateway-emitted metric. */
export type GatewayMetrics = MetricHandles<MetricKeyOf<'gateway'>>;
/** Handles of every bridge-emitted metric. */
export type BridgeMetrics = MetricHandles<MetricKeyOf<'bridge'>>;

export interface CreateMetricsOptions {
  /**
   * Also register prom-client's default process metrics (CPU, memory, event loop, GC)
   * labelled with the process's component. Default true; one registry can hold them once.
   */
  readonly processMetrics?: boolean;
}

/** A registry producing Prometheus text format; metrics/merge.ts renders both formats from its JSON. */
export function createMetricsRegistry(): Registry {
  return new Registry();
}

/**
 * prom-client default metrics that are gauges named `_total`, which `promtool check
 * metrics` rejects; `nodejs_active_handles`, `_requests` and `_resources` (by type)
 * carry the same information.
 */
export const DROPPED_DEFAULT_METRICS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
] as const;

/** Registers the default Node process metrics with a `component` label. */
export function collectProcessMetrics(registry: Registry, component: Component): void {
  collectDefaultMetrics({ register: registry, labels: { component } });
  for (const name of DROPPED_DEFAULT_METRICS) registry.removeSingleMetric(name);
}

export function createGatewayMetrics(registry: Registry, options: CreateMetricsOptions = {}): GatewayMetrics {
  const handles = createHandles(registry, 'gateway') as GatewayMetrics;
  if (options.processMetrics ?? true) collectProcessMetrics(registry, 'gateway');
  return handles;
}

export function createBridgeMetrics(registry: Registry, options: CreateMetricsOptions = {}): BridgeMetrics {
  const handles = createHandles(registry, 'bridge') as BridgeMetrics;
  if (options.processMetrics ?? true) collectProcessMetrics(registry, 'bridge');
  return handles;
}

type AnyHandle = Counter<string> | Gauge<string> | Histogram<string>;

function createHandles(registry: Registry, emitter: Emitter): Readonly<Record<string, AnyHandle>> {
  const keys = (Object.keys(METRIC_DEFINITIONS) as MetricKey[]).filter(
    (key) => METRIC_DEFINITIONS[key].emitter === emitter,
  );
  for (const key of keys) {
    const { name } = METRIC_DEFINITIONS[key];
    if (registry.getSingleMetric(name) !== undefined) throw new MetricsRegistrationError(name);
  }
  const handles: Record<string, AnyHandle> = {};
  for (const key of keys) handles[key] = createHandle(registry, METRIC_DEFINITIONS[key]);
  return Object.freeze(handles);
}

function createHandle(registry: Registry, def: MetricDefinition): AnyHandle {
  const common = { name: def.name, help: def.help, labelNames: def.labelNames, registers: [registry] };
  switch (def.type) {
    case 'counter':
      return new Counter(common);
    case 'gauge':
      return new Gauge(common);
    case 'histogram':
      return new Histogram({ ...common, buckets: [...(def.buckets ?? [])] });
  }
}
