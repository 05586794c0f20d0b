/**
 * Gateway-side recording helpers: each turns one finished event (a client request, an
 * upstream request, a bridge's per-request accounting) into metric updates, running
 * raw values through the label normalisers first.
 */
import { validateAccounting, type RequestAccounting } from './accounting';
import {
  ASYNC_OP_KINDS,
  type AsyncOpKind,
  SSF_RESULTS,
  errorCodeLabel,
  methodClass,
  ssfRequestLabel,
  statusClass,
  upstreamErrorKind,
} from './labels';
import { addBuffered, bufferedSeries, type BufferedSeries } from './buffered';
import type { GatewayMetrics } from './registry';

export type AccountingMetrics = Pick<
  GatewayMetrics,
  | 'writeClientCalls'
  | 'writeClientBytes'
  | 'readClientCalls'
  | 'readClientBytes'
  | 'transmitFileBytes'
  | 'vectorSendBytes'
  | 'asyncOperations'
  | 'asyncSecondOutstandingRejected'
  | 'asyncCompletionErrors'
  | 'ssfCalls'
>;

export interface AccountingLabels {
  /** Configured app name that served the request. */
  readonly app: string;
}

/** An app's accounting series with fixed labels, looked up once per app. */
interface AppAccountingSeries {
  readonly syncWriteCalls: BufferedSeries;
  readonly asyncWriteCalls: BufferedSeries;
  readonly syncWriteBytes: BufferedSeries;
  readonly asyncWriteBytes: BufferedSeries;
  readonly syncReadCalls: BufferedSeries;
  readonly asyncReadCalls: BufferedSeries;
  readonly syncReadBytes: BufferedSeries;
  readonly asyncReadBytes: BufferedSeries;
  readonly transmitFileBytes: BufferedSeries;
  readonly vectorSendBytes: BufferedSeries;
  readonly rejectedSecondOutstanding: BufferedSeries;
  readonly ops: ReadonlyArray<readonly [AsyncOpKind, BufferedSeries]>;
}

const accountingSeries = new WeakMap<AccountingMetrics, Map<string, AppAccountingSeries>>();

function seriesForApp(metrics: AccountingMetrics, app: string): AppAccountingSeries {
  let byApp = accountingSeries.get(metrics);
  if (!byApp) accountingSeries.set(metrics, (byApp = new Map()));
  let series = byApp.get(app);
  if (series) return series;
  series = {
    syncWriteCalls: bufferedSeries(metrics.writeClientCalls, { app, mode: 'sync' }),
    asyncWriteCalls: bufferedSeries(metrics.writeClientCalls, { app, mode: 'async' }),
    syncWriteBytes: bufferedSeries(metrics.writeClientBytes, { app, mode: 'sync' }),
    asyncWriteBytes: bufferedSeries(metrics.writeClientBytes, { app, mode: 'async' }),
    syncReadCalls: bufferedSeries(metrics.readClientCalls, { app, mode: 'sync' }),
    asyncReadCalls: bufferedSeries(metrics.readClientCalls, { app, mode: 'async' }),
    syncReadBytes: bufferedSeries(metrics.readClientBytes, { app, mode: 'sync' }),
    asyncReadBytes: bufferedSeries(metrics.readClientBytes, { app, mode: 'async' }),
    transmitFileBytes: bufferedSeries(metrics.transmitFileBytes, { app }),
    vectorSendBytes: bufferedSeries(metrics.vectorSendBytes, { app }),
    rejectedSecondOutstanding: bufferedSeries(metrics.asyncSecondOutstandingRejected, { app }),
    ops: ASYNC_OP_KINDS.map((kind) => [kind, bufferedSeries(metrics.asyncOperations, { app, kind })] as const),
  };
  byApp.set(app, series);
  return series;
}

/**
 * Adds one finished request's accounting to the gateway's counters, so that every
 * counter grows by exactly what the bridge reported. The record is validated first
 * (InvalidAccountingError, nothing recorded) because it crossed a process boundary.
 * Series for the fixed enums (mode, kind) are touched even when zero, so rate() works
 * from an app's first request. The counters are buffered (metrics/buffered.ts), and
 * the fixed series of an app are looked up once: this runs for every ISAPI request.
 */
export function recordAccounting(metrics: AccountingMetrics, labels: AccountingLabels, acc: RequestAccounting): void {
  validateAccounting(acc);
  const { app } = labels;
  const s = seriesForApp(metrics, app);

  s.syncWriteCalls.add(acc.syncWrites);
  s.asyncWriteCalls.add(acc.asyncWrites);
  s.syncWriteBytes.add(acc.syncWriteBytes);
  s.asyncWriteBytes.add(acc.asyncWriteBytes);
  s.syncReadCalls.add(acc.syncReads);
  s.asyncReadCalls.add(acc.asyncReads);
  s.syncReadBytes.add(acc.syncReadBytes);
  s.asyncReadBytes.add(acc.asyncReadBytes);
  s.transmitFileBytes.add(acc.transmitFileBytes);
  s.vectorSendBytes.add(acc.vectorSendBytes);
  s.rejectedSecondOutstanding.add(acc.rejectedSecondOutstanding);
  for (const [kind, series] of s.ops) series.add(acc.ops[kind].count);

  for (const [code, count] of Object.entries(acc.completionErrors)) {
    if (count > 0) addBuffered(metrics.asyncCompletionErrors, { app, code: errorCodeLabel(Number(code)) }, count);
  }
  for (const [name, counts] of Object.entries(acc.ssfCalls)) {
    const request = ssfRequestLabel(name);
    for (const result of SSF_RESULTS) {
      if (counts[result] > 0) addBuffered(metrics.ssfCalls, { app, request, result }, counts[result]);
    }
  }
}

export interface HttpRequestObservation {
  readonly route: string;
  /** ISAPI app name, or the upstream name for a proxied route. */
  readonly app: string;
  /** Raw request method; normalised with methodClass. */
  readonly method: string;
  /** Response status sent; 0 when the request ended before a response. */
  readonly status: number;
  readonly durationSeconds: number;
  readonly requestBytes: number;
  readonly responseBytes: number;
}

/**
 * Records one completed client request (count, duration, body bytes). In-flight is the
 * caller's (trackInFlight). Counters are buffered (metrics/buffered.ts); the duration
 * histogram is observed at once.
 */
export function observeHttpRequest(
  metrics: Pick<GatewayMetrics, 'httpRequests' | 'httpRequestDuration' | 'httpRequestBytes' | 'httpResponseBytes'>,
  obs: HttpRequestObservation,
): void {
  const method = methodClass(obs.method);
  const labels = { route: obs.route, app: obs.app, method, status_class: statusClass(obs.status) };
  addBuffered(metrics.httpRequests, labels, 1);
  metrics.httpRequestDuration.observe(labels, Math.max(0, obs.durationSeconds));
  addBuffered(metrics.httpRequestBytes, { route: obs.route, app: obs.app, method }, Math.max(0, obs.requestBytes));
  addBuffered(metrics.httpResponseBytes, labels, Math.max(0, obs.responseBytes));
}

/** Client requests start (delta > 0) or end (delta < 0) on `route` / `app`: the in-flight gauge, buffered. */
export function trackInFlight(metrics: Pick<GatewayMetrics, 'httpRequestsInFlight'>, route: string, app: string, delta: number): void {
  addBuffered(metrics.httpRequestsInFlight, { route, app }, delta);
}

export interface UpstreamRequestObservation {
  readonly upstream: string;
  /** Configured target, e.g. `iis1.internal:80`. */
  readonly target: string;
  readonly durationSeconds: number;
  /** Response status, when a response arrived. */
  readonly status?: number;
  /** The error, when the request failed without a response. */
  readonly error?: unknown;
}

/**
 * Records one attempt against an HTTP upstream target: a response is counted by status
 * class (and as a `5xx` error when it is one); a failure is counted by upstreamErrorKind.
 */
export function observeUpstreamRequest(
  metrics: Pick<GatewayMetrics, 'upstreamRequests' | 'upstreamRequestDuration' | 'upstreamErrors'>,
  obs: UpstreamRequestObservation,
): void {
  const { upstream, target } = obs;
  metrics.upstreamRequestDuration.observe({ upstream }, Math.max(0, obs.durationSeconds));
  if (obs.status !== undefined) {
    metrics.upstreamRequests.inc({ upstream, target, status_class: statusClass(obs.status) });
    if (obs.status >= 500 && obs.status <= 599) metrics.upstreamErrors.inc({ upstream, target, error_kind: '5xx' });
  } else {
    metrics.upstreamErrors.inc({ upstream, target, error_kind: upstreamErrorKind(obs.error) });
  }
}
