/**
 * Gateway-side recording helpers: each turns one finished event (a client request, an
 * upstream request, a bridge's per-request accounting) into metric updates, running
 * raw values through the label normalisers first.
 */
import { validateAccounting, type RequestAccounting } from './accounting';
import {
  ASYNC_OP_KINDS,
  type AsyncOpKind,
  type MethodClass,
  SSF_RESULTS,
  type SsfRequestLabel,
  type StatusClass,
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
  /** HSE_REQ_* calls by request label, then result (SSF_RESULTS order); a series exists once its count was non-zero. */
  readonly ssf: Map<SsfRequestLabel, Array<BufferedSeries | undefined>>;
}

/** A Map or WeakMap, as `cached` uses it. */
interface Cache<K, V> {
  get(key: K): V | undefined;
  set(key: K, value: V): unknown;
}

/** The value under `key`, made by `make` and kept the first time it is asked for. */
function cached<K, V>(cache: Cache<K, V>, key: K, make: () => V): V {
  let value = cache.get(key);
  if (value === undefined) cache.set(key, (value = make()));
  return value;
}

const accountingSeries = new WeakMap<AccountingMetrics, Map<string, AppAccountingSeries>>();

function seriesForApp(metrics: AccountingMetrics, app: string): AppAccountingSeries {
  return cached(cached(accountingSeries, metrics, () => new Map()), app, () => ({
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
    ssf: new Map(),
  }));
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

  for (const code in acc.completionErrors) {
    const count = acc.completionErrors[code]!;
    if (count > 0) addBuffered(metrics.asyncCompletionErrors, { app, code: errorCodeLabel(Number(code)) }, count);
  }
  for (const name in acc.ssfCalls) {
    const counts = acc.ssfCalls[name]!;
    const request = ssfRequestLabel(name);
    const byResult = cached(s.ssf, request, () => []);
    SSF_RESULTS.forEach((result, i) => {
      if (counts[result] > 0) (byResult[i] ??= bufferedSeries(metrics.ssfCalls, { app, request, result })).add(counts[result]);
    });
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

type HttpMetrics = Pick<GatewayMetrics, 'httpRequests' | 'httpRequestDuration' | 'httpRequestBytes' | 'httpResponseBytes' | 'httpRequestsInFlight'>;

/** The series of one route and app's requests with one method class and status class. */
interface OutcomeSeries {
  /** The duration histogram's label set, built once (prom-client hashes it on each observe). */
  readonly labels: { route: string; app: string; method: MethodClass; status_class: StatusClass };
  readonly requests: BufferedSeries;
  readonly responseBytes: BufferedSeries;
}

/** The series of one route and app's requests, found by two Map lookups on strings from the configuration. */
interface RouteSeries {
  readonly route: string;
  readonly app: string;
  readonly inFlight: BufferedSeries;
  readonly requestBytes: Map<MethodClass, BufferedSeries>;
  /** By method class, then status class. */
  readonly outcomes: Map<MethodClass, Map<StatusClass, OutcomeSeries>>;
}

/** Keyed by the metrics object, as accountingSeries is: a test's registry gets series of its own. */
const httpSeries = new WeakMap<object, Map<string, Map<string, RouteSeries>>>();

/**
 * Looked up rather than built per request, like an app's accounting series:
 * building label keys for five series was most of what recording a small
 * request cost (bench/RESULTS.md, session 7).
 */
function routeSeries(metrics: Pick<HttpMetrics, 'httpRequestsInFlight'>, route: string, app: string): RouteSeries {
  const byRoute = cached(httpSeries, metrics, () => new Map<string, Map<string, RouteSeries>>());
  return cached(cached(byRoute, route, () => new Map<string, RouteSeries>()), app, () => ({
    route,
    app,
    inFlight: bufferedSeries(metrics.httpRequestsInFlight, { route, app }),
    requestBytes: new Map(),
    outcomes: new Map(),
  }));
}

function outcomeSeries(metrics: HttpMetrics, of: RouteSeries, method: MethodClass, status_class: StatusClass): OutcomeSeries {
  return cached(cached(of.outcomes, method, () => new Map()), status_class, () => {
    const labels = { route: of.route, app: of.app, method, status_class };
    return { labels, requests: bufferedSeries(metrics.httpRequests, labels), responseBytes: bufferedSeries(metrics.httpResponseBytes, labels) };
  });
}

function requestBytesSeries(metrics: HttpMetrics, of: RouteSeries, method: MethodClass): BufferedSeries {
  return cached(of.requestBytes, method, () => bufferedSeries(metrics.httpRequestBytes, { route: of.route, app: of.app, method }));
}

/**
 * Records one completed client request (count, duration, body bytes). In-flight is the
 * caller's (trackInFlight). Counters are buffered (metrics/buffered.ts); the duration
 * histogram is observed at once.
 */
export function observeHttpRequest(metrics: HttpMetrics, obs: HttpRequestObservation): void {
  const method = methodClass(obs.method);
  const of = routeSeries(metrics, obs.route, obs.app);
  const outcome = outcomeSeries(metrics, of, method, statusClass(obs.status));
  outcome.requests.add(1);
  metrics.httpRequestDuration.observe(outcome.labels, Math.max(0, obs.durationSeconds));
  requestBytesSeries(metrics, of, method).add(Math.max(0, obs.requestBytes));
  outcome.responseBytes.add(Math.max(0, obs.responseBytes));
}

/** Client requests start (delta > 0) or end (delta < 0) on `route` / `app`: the in-flight gauge, buffered. */
export function trackInFlight(metrics: Pick<HttpMetrics, 'httpRequestsInFlight'>, route: string, app: string, delta: number): void {
  routeSeries(metrics, route, app).inFlight.add(delta);
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
