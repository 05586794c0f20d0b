/**
 * A neutral model of metric families, built from prom-client's `getMetricsAsJSON()`
 * output (validated, since bridge snapshots cross a process boundary), and rendered
 * as Prometheus text format 0.0.4 or OpenMetrics 1.0.0.
 */
import { InvalidSnapshotError } from './errors';

export type FamilyType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
export type ExpositionFormat = 'text' | 'openmetrics';

export const CONTENT_TYPES: Readonly<Record<ExpositionFormat, string>> = {
  text: 'text/plain; version=0.0.4; charset=utf-8',
  openmetrics: 'application/openmetrics-text; version=1.0.0; charset=utf-8',
};

export interface Sample {
  /** Full sample name, e.g. `x_bucket` for a bucket of histogram `x`. */
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface MetricFamily {
  /** The name as registered in prom-client (counters include `_total`). */
  readonly name: string;
  readonly help: string;
  readonly type: FamilyType;
  readonly samples: readonly Sample[];
}

/** Upper bounds on one snapshot, so a misbehaving bridge cannot blow up a scrape. */
export const SNAPSHOT_LIMITS = { families: 10_000, samples: 500_000 } as const;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FAMILY_TYPES: ReadonlySet<string> = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** Sample-name suffixes each family type may use. */
export function sampleSuffixes(type: FamilyType): readonly string[] {
  switch (type) {
    case 'histogram':
      return ['_bucket', '_sum', '_count'];
    case 'summary':
      return ['', '_sum', '_count'];
    default:
      return [''];
  }
}

/**
 * Parses and validates prom-client JSON (`await registry.getMetricsAsJSON()`, possibly
 * after a JSON round trip: NaN and ±Inf arrive as null or as strings). Throws
 * InvalidSnapshotError naming `source` on any malformed part.
 */
export function familiesFromJSON(json: unknown, source: string): MetricFamily[] {
  const fail = (detail: string): never => {
    throw new InvalidSnapshotError(source, detail);
  };
  if (!Array.isArray(json)) return fail('not an array of metric families');
  if (json.length > SNAPSHOT_LIMITS.families) return fail(`more than ${SNAPSHOT_LIMITS.families} families`);

  const families: MetricFamily[] = [];
  const seen = new Set<string>();
  let sampleCount = 0;
  for (const raw of json as unknown[]) {
    if (!isRecord(raw)) return fail('family is not an object');
    const { name, help, type, values } = raw;
    if (typeof name !== 'string' || !METRIC_NAME.test(name)) return fail(`bad metric name ${JSON.stringify(name)}`);
    if (seen.has(name)) return fail(`family ${name} appears twice`);
    seen.add(name);
    if (help !== undefined && typeof help !== 'string') return fail(`${name}: help is not a string`);
    if (typeof type !== 'string' || !FAMILY_TYPES.has(type)) return fail(`${name}: unknown type ${String(type)}`);
    if (!Array.isArray(values)) return fail(`${name}: values is not an array`);
    sampleCount += values.length;
    if (sampleCount > SNAPSHOT_LIMITS.samples) return fail(`more than ${SNAPSHOT_LIMITS.samples} samples`);

    const familyType = type as FamilyType;
    const allowed = new Set(sampleSuffixes(familyType).map((suffix) => name + suffix));
    const samples: Sample[] = [];
    for (const v of values as unknown[]) {
      if (!isRecord(v)) return fail(`${name}: sample is not an object`);
      const sampleName: unknown = v.metricName === undefined ? name : v.metricName;
      if (typeof sampleName !== 'string' || !allowed.has(sampleName)) {
        return fail(`${name}: sample name ${String(sampleName)} does not belong to a ${familyType}`);
      }
      const labels = parseLabels(v.labels, `${name}`, fail);
      if (sampleName === `${name}_bucket` && labels.le === undefined) return fail(`${name}: bucket without le`);
      if (familyType === 'summary' && sampleName === name && labels.quantile === undefined) {
        return fail(`${name}: quantile sample without quantile label`);
      }
      samples.push({ name: sampleName, labels, value: parseValue(v.value, name, fail) });
    }
    if (familyType === 'histogram') checkHistogram(name, samples, fail);
    families.push({ name, help: help ?? '', type: familyType, samples });
  }
  return families;
}

function parseLabels(raw: unknown, where: string, fail: (d: string) => never): Record<string, string> {
  if (raw === undefined) return {};
  if (!isRecord(raw)) return fail(`${where}: labels is not an object`);
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!LABEL_NAME.test(key) || key.startsWith('__')) return fail(`${where}: bad label name ${JSON.stringify(key)}`);
    if (typeof value === 'string') labels[key] = value;
    else if (typeof value === 'number') labels[key] = formatNumber(value);
    else return fail(`${where}: label ${key} is not a string or number`);
  }
  return labels;
}

function parseValue(raw: unknown, where: string, fail: (d: string) => never): number {
  if (typeof raw === 'number') return raw;
  if (raw === null || raw === 'NaN') return Number.NaN;
  if (raw === '+Inf' || raw === 'Inf') return Number.POSITIVE_INFINITY;
  if (raw === '-Inf') return Number.NEGATIVE_INFINITY;
  return fail(`${where}: value ${JSON.stringify(raw)} is not a number`);
}

function checkHistogram(name: string, samples: readonly Sample[], fail: (d: string) => never): void {
  const groups = new Map<string, { inf: boolean; sum: boolean; count: boolean }>();
  for (const s of samples) {
    const key = groupKey(s.labels);
    const g = groups.get(key) ?? { inf: false, sum: false, count: false };
    if (s.name === `${name}_bucket` && parseBound(s.labels.le) === Number.POSITIVE_INFINITY) g.inf = true;
    if (s.name === `${name}_sum`) g.sum = true;
    if (s.name === `${name}_count`) g.count = true;
    groups.set(key, g);
  }
  for (const g of groups.values()) {
    if (!g.inf || !g.sum || !g.count) return fail(`${name}: histogram series without +Inf bucket, _sum or _count`);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Labels identifying one series of a histogram or summary (without le / quantile). */
export function groupKey(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels)
    .filter((k) => k !== 'le' && k !== 'quantile')
    .sort()
    .map((k) => `${k}\u0000${labels[k]}`)
    .join('\u0001');
}

/** Identity of one sample within an exposition. */
export function seriesKey(sample: Sample): string {
  const labels = Object.keys(sample.labels)
    .sort()
    .map((k) => `${k}\u0000${sample.labels[k]}`)
    .join('\u0001');
  return `${sample.name}\u0002${labels}`;
}

/** Go-compatible float text: NaN, +Inf, -Inf, otherwise JavaScript's shortest round-trip form. */
export function formatNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Number.POSITIVE_INFINITY) return '+Inf';
  if (n === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(n);
}

/** The OpenMetrics family name and type for a family; counters without `_total` become `unknown`. */
export function openMetricsIdentity(family: Pick<MetricFamily, 'name' | 'type'>): { name: string; type: string } {
  switch (family.type) {
    case 'counter':
      return family.name.endsWith('_total')
        ? { name: family.name.slice(0, -'_total'.length), type: 'counter' }
        : { name: family.name, type: 'unknown' };
    case 'untyped':
      return { name: family.name, type: 'unknown' };
    default:
      return { name: family.name, type: family.type };
  }
}

/** Every name an OpenMetrics family of this identity reserves (a second family must not use any). */
export function openMetricsReservedNames(family: Pick<MetricFamily, 'name' | 'type'>): string[] {
  const om = openMetricsIdentity(family);
  const suffixes: Record<string, readonly string[]> = {
    counter: ['', '_total', '_created'],
    histogram: ['', '_bucket', '_count', '_sum', '_created'],
    summary: ['', '_count', '_sum', '_created'],
  };
  return (suffixes[om.type] ?? ['']).map((s) => om.name + s);
}

export function render(families: readonly MetricFamily[], format: ExpositionFormat): string {
  return format === 'openmetrics' ? renderOpenMetrics(families) : renderText(families);
}

/** Prometheus text format 0.0.4. */
export function renderText(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${escapeHelpText(f.help)}`);
    out.push(`# TYPE ${f.name} ${f.type}`);
    for (const s of orderedSamples(f)) out.push(sampleLine(s));
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/** OpenMetrics 1.0.0, ending with `# EOF`. */
export function renderOpenMetrics(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  for (const f of families) {
    const om = openMetricsIdentity(f);
    out.push(`# TYPE ${om.name} ${om.type}`);
    const unit = unitOf(om.name);
    if (unit !== undefined) out.push(`# UNIT ${om.name} ${unit}`);
    out.push(`# HELP ${om.name} ${escapeLabelValue(f.help)}`);
    for (const s of orderedSamples(f)) out.push(sampleLine(s));
  }
  out.push('# EOF');
  return `${out.join('\n')}\n`;
}

function unitOf(name: string): string | undefined {
  if (name.endsWith('_seconds')) return 'seconds';
  if (name.endsWith('_bytes')) return 'bytes';
  return undefined;
}

/**
 * Samples of one family with every series contiguous (a histogram's buckets in
 * ascending `le`, then _sum and _count), series in order of first appearance.
 */
export function orderedSamples(family: MetricFamily): Sample[] {
  if (family.type !== 'histogram' && family.type !== 'summary') return [...family.samples];
  const groups = new Map<string, Sample[]>();
  for (const s of family.samples) {
    const key = groupKey(s.labels);
    const group = groups.get(key);
    if (group) group.push(s);
    else groups.set(key, [s]);
  }
  const rank = (s: Sample): number => {
    const suffix = s.name.slice(family.name.length);
    return suffix === '_bucket' || suffix === '' ? 0 : suffix === '_sum' ? 1 : 2;
  };
  const bound = (s: Sample): number => parseBound(s.labels.le ?? s.labels.quantile);
  const out: Sample[] = [];
  for (const group of groups.values()) {
    // Array.prototype.sort is stable: equal keys keep their input order.
    out.push(...[...group].sort((a, b) => rank(a) - rank(b) || bound(a) - bound(b)));
  }
  return out;
}

function parseBound(text: string | undefined): number {
  if (text === undefined) return 0;
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  const n = Number(text);
  return Number.isNaN(n) ? 0 : n;
}

function sampleLine(s: Sample): string {
  const keys = Object.keys(s.labels);
  const labels = keys.length === 0 ? '' : `{${keys.map((k) => `${k}="${escapeLabelValue(s.labels[k] ?? '')}"`).join(',')}}`;
  return `${s.name}${labels} ${formatNumber(s.value)}`;
}

function escapeHelpText(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabelValue(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}
