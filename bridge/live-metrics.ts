/**
 * The bridge's own metrics: the live async-operation gauge and outstanding-time
 * histogram (everything else is counted by the gateway from each request's
 * accounting), plus Node's process metrics.
 *
 * Extension threads cannot touch the main thread's prom-client registry, so each
 * thread records into a StatsRelay, which sends batches to the main thread a few
 * times a second; a scrape may lag the truth by that much.
 */
import type { LiveAsyncMetrics } from '../metrics/accountant';
import type { AsyncOpKind } from '../metrics/labels';
import { createBridgeMetrics, createMetricsRegistry, type BridgeMetrics } from '../metrics/registry';

/** A batch from one extension thread: gauge deltas and histogram observations. */
export interface StatsBatch {
  outstanding: Array<[app: string, kind: AsyncOpKind, delta: number]>;
  observed: Array<[app: string, kind: AsyncOpKind, seconds: number]>;
}

const FLUSH_MS = 250;

export class StatsRelay implements LiveAsyncMetrics {
  private batch: StatsBatch = { outstanding: [], observed: [] };
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly send: (batch: StatsBatch) => void) {}

  readonly asyncOperationsOutstanding = {
    inc: (labels: { app: string; kind: AsyncOpKind }): void => this.add(['outstanding', [labels.app, labels.kind, 1]]),
    dec: (labels: { app: string; kind: AsyncOpKind }): void => this.add(['outstanding', [labels.app, labels.kind, -1]]),
  };

  readonly asyncOutstandingDuration = {
    observe: (labels: { app: string; kind: AsyncOpKind }, seconds: number): void => this.add(['observed', [labels.app, labels.kind, seconds]]),
  };

  private add(entry: ['outstanding' | 'observed', [string, AsyncOpKind, number]]): void {
    this.batch[entry[0]].push(entry[1]);
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  flush(): void {
    this.timer = undefined;
    const batch = this.batch;
    if (batch.outstanding.length === 0 && batch.observed.length === 0) return;
    this.batch = { outstanding: [], observed: [] };
    this.send(batch);
  }
}

export class BridgeTelemetry {
  readonly registry = createMetricsRegistry();
  readonly metrics: BridgeMetrics = createBridgeMetrics(this.registry);

  apply(batch: StatsBatch): void {
    for (const [app, kind, delta] of batch.outstanding) this.metrics.asyncOperationsOutstanding.inc({ app, kind }, delta);
    for (const [app, kind, seconds] of batch.observed) this.metrics.asyncOutstandingDuration.observe({ app, kind }, seconds);
  }

  /** prom-client JSON, which the gateway merges into its scrape with a `bridge` label. */
  async snapshot(): Promise<string> {
    return JSON.stringify(await this.registry.getMetricsAsJSON());
  }
}
