/**
 * The gateway's side of the metrics: its prom-client registry, the per-request
 * observations (RED metrics, and each ISAPI request's I/O accounting), and the
 * /metrics endpoint that merges every bridge's snapshot into one scrape with a
 * `bridge` label per process.
 */
import type http from 'node:http';
import type { RequestAccounting } from '../metrics/accounting';
import { serveMetrics, type BridgeSource } from '../metrics/http';
import { observeHttpRequest, observeUpstreamRequest, recordAccounting, trackInFlight, type UpstreamRequestObservation } from '../metrics/record';
import { createGatewayMetrics, createMetricsRegistry, type GatewayMetrics } from '../metrics/registry';
import type { Logger } from '../bridge/log';

export interface FinishedRequest {
  /** Configured route: the app's mount or the route's prefix. */
  route: string;
  /** ISAPI app name, or the upstream name for a proxied route. */
  app: string;
  method: string;
  status: number;
  durationSeconds: number;
  bytesIn: number;
  bytesOut: number;
  accounting?: RequestAccounting;
}

export class GatewayTelemetry {
  readonly registry = createMetricsRegistry();
  readonly metrics: GatewayMetrics = createGatewayMetrics(this.registry);

  constructor(
    private readonly bridges: () => readonly BridgeSource[],
    private readonly logger: Logger,
  ) {}

  /** Call when a request starts; call the returned function exactly once when it ends. */
  started(route: string, app: string): (done: FinishedRequest) => void {
    trackInFlight(this.metrics, route, app, 1);
    let ended = false;
    return (done) => {
      if (ended) return;
      ended = true;
      trackInFlight(this.metrics, route, app, -1);
      observeHttpRequest(this.metrics, {
        route: done.route,
        app: done.app,
        method: done.method,
        status: done.status,
        durationSeconds: done.durationSeconds,
        requestBytes: done.bytesIn,
        responseBytes: done.bytesOut,
      });
      if (done.accounting) {
        try {
          recordAccounting(this.metrics, { app: done.app }, done.accounting);
        } catch (err) {
          this.logger.warn('request accounting from the bridge was invalid; not recorded', { app: done.app, error: (err as Error).message });
        }
      }
    };
  }

  /** A request that was not tracked from its start (proxied routes count their in-flight requests themselves). */
  finished(done: FinishedRequest): void {
    this.started(done.route, done.app)(done);
  }

  upstream(obs: UpstreamRequestObservation): void {
    observeUpstreamRequest(this.metrics, obs);
  }

  /** Time a request waited for a bridge connection. */
  connectionWait(bridge: string, seconds: number): void {
    this.metrics.bridgeConnectionWait.observe({ bridge }, seconds);
  }

  serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    return serveMetrics(req, res, {
      gateway: this.registry,
      bridges: this.bridges(),
      onBridgeError: (bridge, error) => {
        this.metrics.bridgeScrapeErrors.inc({ bridge });
        this.logger.warn('bridge metrics left out of this scrape', { bridge, error: error.message });
      },
    });
  }
}
