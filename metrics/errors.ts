/**
 * Errors thrown by the metrics module. Every error carries a stable `code` so callers
 * (gateway, bridge, tests) can branch on it without matching message text.
 */

export type MetricsErrorCode =
  | 'ERR_METRICS_ALREADY_REGISTERED'
  | 'ERR_METRICS_INVALID_SNAPSHOT'
  | 'ERR_METRICS_MERGE_CONFLICT'
  | 'ERR_METRICS_INVALID_ACCOUNTING'
  | 'ERR_METRICS_BRIDGE_SCRAPE';

export class MetricsError extends Error {
  readonly code: MetricsErrorCode;

  constructor(code: MetricsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MetricsError';
    this.code = code;
  }
}

/** A metric of the same name is already registered in the target registry. */
export class MetricsRegistrationError extends MetricsError {
  constructor(metricName: string) {
    super('ERR_METRICS_ALREADY_REGISTERED', `metric ${metricName} is already registered in this registry`);
    this.name = 'MetricsRegistrationError';
  }
}

/** A metrics snapshot (prom-client JSON, usually from a bridge) is malformed. */
export class InvalidSnapshotError extends MetricsError {
  constructor(source: string, detail: string) {
    super('ERR_METRICS_INVALID_SNAPSHOT', `invalid metrics snapshot from ${source}: ${detail}`);
    this.name = 'InvalidSnapshotError';
  }
}

/** A snapshot cannot be merged without producing an invalid exposition. */
export class MetricsMergeError extends MetricsError {
  constructor(source: string, detail: string) {
    super('ERR_METRICS_MERGE_CONFLICT', `cannot merge metrics from ${source}: ${detail}`);
    this.name = 'MetricsMergeError';
  }
}

/** A RequestAccounting record holds a value that cannot be added to counters. */
export class InvalidAccountingError extends MetricsError {
  constructor(field: string, detail: string) {
    super('ERR_METRICS_INVALID_ACCOUNTING', `invalid request accounting field ${field}: ${detail}`);
    this.name = 'InvalidAccountingError';
  }
}

/** Fetching a bridge's metrics snapshot failed or timed out. */
export class BridgeScrapeError extends MetricsError {
  constructor(bridge: string, detail: string, options?: { cause?: unknown }) {
    super('ERR_METRICS_BRIDGE_SCRAPE', `metrics snapshot of bridge ${bridge} failed: ${detail}`, options);
    this.name = 'BridgeScrapeError';
  }
}
