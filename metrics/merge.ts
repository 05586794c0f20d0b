/**
 * Merges the gateway's own metrics with snapshots from N bridge processes into one
 * exposition. Unlike prom-client's AggregatorRegistry, nothing is summed: every series
 * of a bridge snapshot gets a `bridge="<name>"` label, so each process stays visible.
 *
 * A bridge snapshot is merged whole or not at all: a malformed one, or one that
 * conflicts with what is already merged (same family name with another type, a name
 * that collides with another family's samples, a duplicate series), is left out and
 * reported in `rejected`, and the scrape still succeeds with everything else.
 */
import { MetricsError, MetricsMergeError } from './errors';
import {
  familiesFromJSON,
  openMetricsReservedNames,
  render,
  sampleSuffixes,
  seriesKey,
  CONTENT_TYPES,
  type ExpositionFormat,
  type MetricFamily,
  type Sample,
} from './exposition';
import { BRIDGE_LABEL } from './labels';

export { negotiate, type Negotiated } from './negotiate';

export interface BridgeSnapshot {
  /** Configured bridge name; becomes the value of the `bridge` label. */
  readonly bridge: string;
  /** The bridge's `await registry.getMetricsAsJSON()`, as received (validated here). */
  readonly metrics: unknown;
}

export interface RejectedSnapshot {
  readonly bridge: string;
  readonly error: MetricsError;
}

export interface MergeResult {
  readonly families: readonly MetricFamily[];
  readonly rejected: readonly RejectedSnapshot[];
}

/**
 * @param gateway the gateway registry's `getMetricsAsJSON()` output; invalid input throws.
 * @param bridges snapshots to add, each labelled with its bridge name.
 */
export function mergeMetrics(gateway: unknown, bridges: readonly BridgeSnapshot[]): MergeResult {
  const merger = new FamilyMerger();
  merger.add(familiesFromJSON(gateway, 'gateway'), 'gateway');
  const rejected: RejectedSnapshot[] = [];
  for (const snapshot of bridges) {
    try {
      if (snapshot.bridge === '') throw new MetricsMergeError('bridge ""', 'empty bridge name');
      const families = familiesFromJSON(snapshot.metrics, `bridge ${snapshot.bridge}`).map((f) =>
        withBridgeLabel(f, snapshot.bridge),
      );
      merger.add(families, `bridge ${snapshot.bridge}`);
    } catch (error) {
      if (!(error instanceof MetricsError)) throw error;
      rejected.push({ bridge: snapshot.bridge, error });
    }
  }
  return { families: merger.families(), rejected };
}

export interface MergedExposition {
  readonly body: string;
  readonly contentType: string;
  readonly rejected: readonly RejectedSnapshot[];
}

/** mergeMetrics, then rendering in `format`. */
export function mergeExposition(
  gateway: unknown,
  bridges: readonly BridgeSnapshot[],
  format: ExpositionFormat,
): MergedExposition {
  const { families, rejected } = mergeMetrics(gateway, bridges);
  return { body: render(families, format), contentType: CONTENT_TYPES[format], rejected };
}

/**
 * Puts `bridge` first in every series' labels. A `bridge` label the snapshot already
 * had is kept as `exported_bridge`, as Prometheus does for conflicting target labels.
 */
function withBridgeLabel(family: MetricFamily, bridge: string): MetricFamily {
  const samples = family.samples.map((s): Sample => {
    const { [BRIDGE_LABEL]: own, ...rest } = s.labels;
    const labels: Record<string, string> = { [BRIDGE_LABEL]: bridge, ...rest };
    if (own !== undefined) labels[`exported_${BRIDGE_LABEL}`] = own;
    return { name: s.name, labels, value: s.value };
  });
  return { ...family, samples };
}

interface MutableFamily {
  readonly name: string;
  readonly help: string;
  readonly type: MetricFamily['type'];
  readonly samples: Sample[];
}

class FamilyMerger {
  readonly #families = new Map<string, MutableFamily>();
  /** Sample and OpenMetrics names → the family that owns them. */
  readonly #owners = new Map<string, string>();
  readonly #series = new Set<string>();

  /** Adds all of `families` or, on a conflict, none (throws MetricsMergeError). */
  add(families: readonly MetricFamily[], source: string): void {
    const newSeries = new Set<string>();
    const newOwners = new Map<string, string>();
    for (const f of families) {
      const existing = this.#families.get(f.name);
      if (existing && existing.type !== f.type) {
        throw new MetricsMergeError(source, `${f.name} is a ${f.type} here but a ${existing.type} already`);
      }
      if (!existing) {
        for (const owned of ownedNames(f)) {
          const owner = this.#owners.get(owned) ?? newOwners.get(owned);
          if (owner !== undefined && owner !== f.name) {
            throw new MetricsMergeError(source, `${f.name} collides with ${owner} on the name ${owned}`);
          }
          newOwners.set(owned, f.name);
        }
      }
      for (const s of f.samples) {
        const key = seriesKey(s);
        if (this.#series.has(key) || newSeries.has(key)) {
          throw new MetricsMergeError(source, `duplicate series ${s.name}${JSON.stringify(s.labels)}`);
        }
        newSeries.add(key);
      }
    }
    for (const f of families) {
      const existing = this.#families.get(f.name);
      if (existing) existing.samples.push(...f.samples);
      else this.#families.set(f.name, { name: f.name, help: f.help, type: f.type, samples: [...f.samples] });
    }
    for (const [name, owner] of newOwners) this.#owners.set(name, owner);
    for (const key of newSeries) this.#series.add(key);
  }

  families(): MetricFamily[] {
    return [...this.#families.values()];
  }
}

function ownedNames(f: MetricFamily): string[] {
  return [...sampleSuffixes(f.type).map((s) => f.name + s), ...openMetricsReservedNames(f)];
}
