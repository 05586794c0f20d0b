/**
 * Every metric of isapi-gateway, defined once: name, type, help text, label set,
 * bucket layout and the process that emits it. Nothing else in the code base spells
 * a metric name; metrics/registry.ts builds prom-client objects from this table.
 *
 * Naming (see metrics/README.md):
 *  - one namespace, `isapi_`, then a subsystem naming what is measured, not which
 *    process measures it: `http` (client requests at the gateway), `extension`
 *    (what ISAPI extensions do through the ECB), `bridge` (bridge processes and the
 *    gateway↔bridge pipes), `upstream` (routes proxied to real IIS hosts);
 *  - base units in the name (`_seconds`, `_bytes`), counters end in `_total`;
 *  - labels only from configuration or from the enums in metrics/labels.ts.
 *
 * `emitter` says which process owns the metric. Bridge-emitted metrics reach
 * Prometheus through the gateway's /metrics, where metrics/merge.ts adds the `bridge`
 * label; they must not declare that label themselves.
 */
import type { LabelName } from './labels';

export type MetricType = 'counter' | 'gauge' | 'histogram';
export type Emitter = 'gateway' | 'bridge';

export interface MetricDefinition {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly labelNames: readonly LabelName[];
  /** Histogram upper bounds in the metric's base unit (the +Inf bucket is implicit). */
  readonly buckets?: readonly number[];
  readonly emitter: Emitter;
}

/** Latency of whole HTTP exchanges (client requests, upstream requests); legacy apps can be slow. */
export const HTTP_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120] as const;
/** Time an async ECB operation stays outstanding (issue to completion callback). */
export const ASYNC_OUTSTANDING_BUCKETS = [
  0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
] as const;
/** Time a request waits for a free gateway↔bridge pipe connection. */
export const QUEUE_WAIT_BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export const METRIC_DEFINITIONS = {
  // ---- client-facing HTTP, gateway ------------------------------------------------
  httpRequests: {
    name: 'isapi_http_requests_total',
    type: 'counter',
    help: 'HTTP requests completed by the gateway, by route, app (ISAPI app or upstream name), method class and status class.',
    labelNames: ['route', 'app', 'method', 'status_class'],
    emitter: 'gateway',
  },
  httpRequestDuration: {
    name: 'isapi_http_request_duration_seconds',
    type: 'histogram',
    help: 'Time from receiving the request head to sending the last response byte.',
    labelNames: ['route', 'app', 'method', 'status_class'],
    buckets: HTTP_DURATION_BUCKETS,
    emitter: 'gateway',
  },
  httpRequestBytes: {
    name: 'isapi_http_request_bytes_total',
    type: 'counter',
    help: 'Request body bytes received from clients.',
    labelNames: ['route', 'app', 'method'],
    emitter: 'gateway',
  },
  httpResponseBytes: {
    name: 'isapi_http_response_bytes_total',
    type: 'counter',
    help: 'Response body bytes sent to clients.',
    labelNames: ['route', 'app', 'method', 'status_class'],
    emitter: 'gateway',
  },
  httpRequestsInFlight: {
    name: 'isapi_http_requests_in_flight',
    type: 'gauge',
    help: 'HTTP requests received and not yet completed.',
    labelNames: ['route', 'app'],
    emitter: 'gateway',
  },

  // ---- extension behaviour, recorded by the gateway from per-request accounting ----
  writeClientCalls: {
    name: 'isapi_extension_write_client_calls_total',
    type: 'counter',
    help: 'WriteClient calls by mode (sync, or async with HSE_IO_ASYNC).',
    labelNames: ['app', 'mode'],
    emitter: 'gateway',
  },
  writeClientBytes: {
    name: 'isapi_extension_write_client_bytes_total',
    type: 'counter',
    help: 'Bytes written with WriteClient by mode.',
    labelNames: ['app', 'mode'],
    emitter: 'gateway',
  },
  readClientCalls: {
    name: 'isapi_extension_read_client_calls_total',
    type: 'counter',
    help: 'ReadClient calls (sync) and HSE_REQ_ASYNC_READ_CLIENT requests (async).',
    labelNames: ['app', 'mode'],
    emitter: 'gateway',
  },
  readClientBytes: {
    name: 'isapi_extension_read_client_bytes_total',
    type: 'counter',
    help: 'Request body bytes handed to the extension through ReadClient by mode.',
    labelNames: ['app', 'mode'],
    emitter: 'gateway',
  },
  transmitFileBytes: {
    name: 'isapi_extension_transmit_file_bytes_total',
    type: 'counter',
    help: 'Bytes sent with HSE_REQ_TRANSMIT_FILE (file data plus head and tail buffers).',
    labelNames: ['app'],
    emitter: 'gateway',
  },
  vectorSendBytes: {
    name: 'isapi_extension_vector_send_bytes_total',
    type: 'counter',
    help: 'Bytes sent with HSE_REQ_VECTOR_SEND.',
    labelNames: ['app'],
    emitter: 'gateway',
  },
  asyncOperations: {
    name: 'isapi_extension_async_operations_total',
    type: 'counter',
    help: 'Asynchronous ECB operations completed, by kind.',
    labelNames: ['app', 'kind'],
    emitter: 'gateway',
  },
  asyncSecondOutstandingRejected: {
    name: 'isapi_extension_async_second_outstanding_rejected_total',
    type: 'counter',
    help: 'Async operations refused because another async operation of the request was still outstanding.',
    labelNames: ['app'],
    emitter: 'gateway',
  },
  asyncCompletionErrors: {
    name: 'isapi_extension_async_completion_errors_total',
    type: 'counter',
    help: 'Async completions delivered with a non-zero Win32 error code, by code.',
    labelNames: ['app', 'code'],
    emitter: 'gateway',
  },
  ssfCalls: {
    name: 'isapi_extension_server_support_function_calls_total',
    type: 'counter',
    help: 'ServerSupportFunction calls by request name and result (ok, error, unsupported).',
    labelNames: ['app', 'request', 'result'],
    emitter: 'gateway',
  },
  extensionLoadFailures: {
    name: 'isapi_extension_load_failures_total',
    type: 'counter',
    help: 'Failed attempts to load an extension, by the stage that failed.',
    labelNames: ['app', 'stage'],
    emitter: 'gateway',
  },

  // ---- extension behaviour, live in the bridge process ------------------------------
  asyncOperationsOutstanding: {
    name: 'isapi_extension_async_operations_outstanding',
    type: 'gauge',
    help: 'Async ECB operations issued and not yet completed, by kind.',
    labelNames: ['app', 'kind'],
    emitter: 'bridge',
  },
  asyncOutstandingDuration: {
    name: 'isapi_extension_async_outstanding_seconds',
    type: 'histogram',
    help: 'Time from issuing an async ECB operation to calling its completion routine, by kind.',
    labelNames: ['app', 'kind'],
    buckets: ASYNC_OUTSTANDING_BUCKETS,
    emitter: 'bridge',
  },
  spoolSlotsRetired: {
    name: 'isapi_bridge_spool_slots_retired_total',
    type: 'counter',
    help: 'Response spool slots the bridge stopped reusing because the gateway still held them when its connection closed (a gateway write could still read them). They come back when that gateway process has exited (isapi_bridge_spool_slots_reclaimed_total); meanwhile a thread without free slots copies instead.',
    labelNames: [],
    emitter: 'bridge',
  },
  spoolSlotsReclaimed: {
    name: 'isapi_bridge_spool_slots_reclaimed_total',
    type: 'counter',
    help: 'Retired response spool slots the bridge reuses again because the gateway that held them has exited. Retired minus reclaimed is what is out of use now; a gap that stays means a gateway that lives on, or one the bridge cannot watch (another PID namespace on a kernel before 6.5).',
    labelNames: [],
    emitter: 'bridge',
  },

  // ---- bridge processes and pipes, gateway --------------------------------------------
  bridgeUp: {
    name: 'isapi_bridge_up',
    type: 'gauge',
    help: '1 when the bridge process is running and accepting requests, 0 otherwise.',
    labelNames: ['bridge'],
    emitter: 'gateway',
  },
  bridgeRestarts: {
    name: 'isapi_bridge_restarts_total',
    type: 'counter',
    help: 'Bridge process restarts by reason.',
    labelNames: ['bridge', 'reason'],
    emitter: 'gateway',
  },
  bridgeConnectionsInUse: {
    name: 'isapi_bridge_connections_in_use',
    type: 'gauge',
    help: 'Gateway-to-bridge pipe connections currently carrying a request.',
    labelNames: ['bridge'],
    emitter: 'gateway',
  },
  bridgeSpoolHeldBytes: {
    name: 'isapi_bridge_spool_held_bytes',
    type: 'gauge',
    help: "Response bytes the gateway is writing to clients straight from the bridge's spool; the bridge reuses their memory once the writes complete.",
    labelNames: ['bridge'],
    emitter: 'gateway',
  },
  bridgeConnectionWait: {
    name: 'isapi_bridge_connection_wait_seconds',
    type: 'histogram',
    help: 'Time a request waited for a free gateway-to-bridge pipe connection.',
    labelNames: ['bridge'],
    buckets: QUEUE_WAIT_BUCKETS,
    emitter: 'gateway',
  },
  bridgeScrapeErrors: {
    name: 'isapi_bridge_scrape_errors_total',
    type: 'counter',
    help: 'Failed or timed-out requests for a bridge metrics snapshot during a gateway scrape.',
    labelNames: ['bridge'],
    emitter: 'gateway',
  },

  // ---- HTTP upstreams, gateway ----------------------------------------------------------
  upstreamRequests: {
    name: 'isapi_upstream_requests_total',
    type: 'counter',
    help: 'Requests sent to an HTTP upstream target that got a response, by status class.',
    labelNames: ['upstream', 'target', 'status_class'],
    emitter: 'gateway',
  },
  upstreamRequestDuration: {
    name: 'isapi_upstream_request_duration_seconds',
    type: 'histogram',
    help: 'Time from sending a request to an HTTP upstream to receiving the last response byte.',
    labelNames: ['upstream'],
    buckets: HTTP_DURATION_BUCKETS,
    emitter: 'gateway',
  },
  upstreamErrors: {
    name: 'isapi_upstream_errors_total',
    type: 'counter',
    help: 'Failed HTTP upstream requests by kind (connect, timeout, reset, 5xx, other).',
    labelNames: ['upstream', 'target', 'error_kind'],
    emitter: 'gateway',
  },
  upstreamRetries: {
    name: 'isapi_upstream_retries_total',
    type: 'counter',
    help: 'Requests retried on another attempt or target of an HTTP upstream.',
    labelNames: ['upstream'],
    emitter: 'gateway',
  },
  upstreamTargetHealthy: {
    name: 'isapi_upstream_target_healthy',
    type: 'gauge',
    help: '1 when the HTTP upstream target passes health checks, 0 otherwise.',
    labelNames: ['upstream', 'target'],
    emitter: 'gateway',
  },
} as const satisfies Readonly<Record<string, MetricDefinition>>;

export type MetricDefinitions = typeof METRIC_DEFINITIONS;
export type MetricKey = keyof MetricDefinitions;

/** Keys of METRIC_DEFINITIONS owned by `E`. */
export type MetricKeyOf<E extends Emitter> = {
  [K in MetricKey]: MetricDefinitions[K]['emitter'] extends E ? K : never;
}[MetricKey];

/** All definitions as a list, in table order. */
export const ALL_METRICS: readonly (MetricDefinition & { readonly key: MetricKey })[] = (
  Object.keys(METRIC_DEFINITIONS) as MetricKey[]
).map((key) => ({ key, ...METRIC_DEFINITIONS[key] }));

/**
 * Node process metrics from prom-client's collectDefaultMetrics that the dashboard uses.
 * They keep prom-client's standard names (so stock Node.js dashboards work too) and
 * carry a `component` label (gateway or bridge); bridge ones also get `bridge` on merge.
 */
export const PROCESS_METRIC_NAMES = [
  'process_cpu_seconds_total',
  'process_resident_memory_bytes',
  'process_start_time_seconds',
  'nodejs_eventloop_lag_p99_seconds',
  'nodejs_heap_size_used_bytes',
] as const;
