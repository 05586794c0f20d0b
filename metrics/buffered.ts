/**
 * Per-request counter and gauge updates, gathered in a Map per metric and handed to
 * prom-client when the metric is read. prom-client hashes and checks the label set on
 * every inc(); on the gateway's hot path that was about a tenth of a small request's
 * CPU (bench/RESULTS.md, session 4). Here a request costs a Map lookup per update,
 * and every read (a scrape, registry.metrics(), metric.get()) first applies what is
 * pending through the metric's `collect` hook, so what Prometheus sees is exact.
 */
import type { Counter, Gauge, LabelValues } from 'prom-client';

/** One series' updates not yet handed to prom-client. */
class Pending<L extends string> {
  value = 0;
  /** Applied at least once: the series exists, so a zero needs no further apply. */
  applied = false;

  constructor(readonly labels: LabelValues<L>) {}

  /** Adds `value` (>= 0 for a counter, any sign for a gauge); a zero still creates the series at the next read. */
  add(value: number): void {
    this.value += value;
  }
}

/** A series a caller looks up once and updates many times (bufferedSeries). */
export type BufferedSeries = Pick<Pending<string>, 'add'>;

type Updatable<L extends string> = Counter<L> | Gauge<L>;
/** prom-client calls a metric's `collect` (set in its configuration, or later) before every read. */
type WithCollect = { collect?: (this: unknown) => void | Promise<void> };

const buffers = new WeakMap<Updatable<string>, Map<string, Pending<string>>>();

function bufferOf<L extends string>(metric: Updatable<L>): Map<string, Pending<L>> {
  let pending = buffers.get(metric as Updatable<string>) as Map<string, Pending<L>> | undefined;
  if (pending) return pending;
  const map = new Map<string, Pending<L>>();
  pending = map;
  buffers.set(metric as Updatable<string>, map as Map<string, Pending<string>>);
  const hooked = metric as Updatable<L> & WithCollect;
  const ownCollect = hooked.collect;
  hooked.collect = function collect(this: unknown) {
    apply(metric, map);
    return ownCollect?.call(this);
  };
  return map;
}

function apply<L extends string>(metric: Updatable<L>, pending: Map<string, Pending<L>>): void {
  for (const entry of pending.values()) {
    if (entry.value === 0 && entry.applied) continue;
    // Counter.inc and Gauge.inc both add; a gauge's delta may be negative.
    (metric as Gauge<L>).inc(entry.labels, entry.value);
    entry.value = 0;
    entry.applied = true;
  }
}

/** The Map key of a label set: its values in order (callers build a given set the same way). */
function keyOf(labels: Readonly<Record<string, string | number>>): string {
  let key = '';
  for (const name in labels) key += `${labels[name]}\u0001`;
  return key;
}

/**
 * Adds `value` to the series `labels` of a counter (value >= 0) or gauge (any sign).
 * A zero still creates the series, so rate() works from its first request.
 */
export function addBuffered<L extends string>(metric: Updatable<L>, labels: LabelValues<L>, value: number): void {
  bufferedSeries(metric, labels).add(value);
}

/**
 * The buffered series `labels` of a counter or gauge, to keep and update without
 * building its key again (the label set must not change afterwards).
 */
export function bufferedSeries<L extends string>(metric: Updatable<L>, labels: LabelValues<L>): BufferedSeries {
  const pending = bufferOf(metric);
  const key = keyOf(labels as Readonly<Record<string, string | number>>);
  let entry = pending.get(key);
  if (!entry) {
    entry = new Pending(labels);
    pending.set(key, entry);
  }
  return entry;
}
