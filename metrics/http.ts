/**
 * The gateway's /metrics endpoint for Node's http server: collects bridge snapshots
 * (each with a deadline), merges them with the gateway registry and answers in the
 * format the scraper asked for.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { BridgeScrapeError, MetricsError } from './errors';
import { mergeExposition, negotiate, type BridgeSnapshot } from './merge';

export interface BridgeSource {
  /** Configured bridge name (the `bridge` label). */
  readonly bridge: string;
  /** Asks the bridge for `registry.getMetricsAsJSON()` over its pipe; should stop when `signal` aborts. */
  snapshot(signal: AbortSignal): Promise<unknown>;
}

export interface MetricsSources {
  /** The gateway's registry, or a function returning its `getMetricsAsJSON()`. */
  readonly gateway: Registry | (() => Promise<unknown>);
  /** Running bridges to include. */
  readonly bridges?: readonly BridgeSource[];
  /** Deadline for each bridge snapshot; default DEFAULT_BRIDGE_TIMEOUT_MS. */
  readonly bridgeTimeoutMs?: number;
  /**
   * Called for each bridge left out of this scrape (timeout, failure, invalid or
   * conflicting snapshot). Fetch failures are reported before the gateway registry is
   * read, so incrementing isapi_bridge_scrape_errors_total here shows in the same scrape.
   */
  readonly onBridgeError?: (bridge: string, error: MetricsError) => void;
}

export const DEFAULT_BRIDGE_TIMEOUT_MS = 2000;

/**
 * Fetches every bridge's snapshot concurrently. Failed or late bridges are reported
 * through `onError` and left out; the result keeps the order of `sources`.
 */
export async function gatherBridgeSnapshots(
  sources: readonly BridgeSource[],
  timeoutMs: number = DEFAULT_BRIDGE_TIMEOUT_MS,
  onError?: (bridge: string, error: MetricsError) => void,
): Promise<BridgeSnapshot[]> {
  const settled = await Promise.allSettled(sources.map((source) => fetchSnapshot(source, timeoutMs)));
  const snapshots: BridgeSnapshot[] = [];
  settled.forEach((result, i) => {
    const source = sources[i];
    if (source === undefined) return;
    if (result.status === 'fulfilled') snapshots.push(result.value);
    else {
      const error =
        result.reason instanceof MetricsError
          ? result.reason
          : new BridgeScrapeError(source.bridge, describe(result.reason), { cause: result.reason });
      onError?.(source.bridge, error);
    }
  });
  return snapshots;
}

async function fetchSnapshot(source: BridgeSource, timeoutMs: number): Promise<BridgeSnapshot> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new BridgeScrapeError(source.bridge, `no snapshot within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    const metrics = await Promise.race([source.snapshot(controller.signal), deadline]);
    return { bridge: source.bridge, metrics };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Answers one scrape: GET or HEAD only (405 otherwise), body in the negotiated format
 * (Accept header), 500 with a text body if the gateway registry itself fails.
 */
export async function serveMetrics(req: IncomingMessage, res: ServerResponse, sources: MetricsSources): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('method not allowed\n');
    return;
  }
  const { format } = negotiate(req.headers.accept);
  let body: string;
  let contentType: string;
  try {
    const snapshots = await gatherBridgeSnapshots(
      sources.bridges ?? [],
      sources.bridgeTimeoutMs ?? DEFAULT_BRIDGE_TIMEOUT_MS,
      sources.onBridgeError,
    );
    const gateway = typeof sources.gateway === 'function' ? await sources.gateway() : await sources.gateway.getMetricsAsJSON();
    const merged = mergeExposition(gateway, snapshots, format);
    for (const { bridge, error } of merged.rejected) sources.onBridgeError?.(bridge, error);
    body = merged.body;
    contentType = merged.contentType;
  } catch (error) {
    const text = `metrics collection failed: ${describe(error)}\n`;
    res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
    res.end(req.method === 'HEAD' ? undefined : text);
    return;
  }
  res.writeHead(200, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    Vary: 'Accept',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
