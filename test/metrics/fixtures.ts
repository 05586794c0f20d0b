/**
 * Test worlds for the metrics module: a gateway registry and N bridge registries in
 * one process, with helpers that touch every metric and simulate a round of traffic
 * through the public recording API.
 */
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import {
  ALL_METRICS,
  LABEL_DOMAINS,
  RequestAccountant,
  createBridgeMetrics,
  createGatewayMetrics,
  createMetricsRegistry,
  observeHttpRequest,
  observeUpstreamRequest,
  recordAccounting,
  type BridgeMetrics,
  type BridgeSnapshot,
  type Emitter,
  type GatewayMetrics,
  type LabelName,
} from '../../metrics';

export interface BridgeWorld {
  readonly name: string;
  readonly app: string;
  readonly registry: Registry;
  readonly metrics: BridgeMetrics;
}

export interface World {
  readonly registry: Registry;
  readonly gateway: GatewayMetrics;
  readonly bridges: readonly BridgeWorld[];
}

export function createWorld(bridgeNames: readonly string[] = ['b1', 'b2'], processMetrics = true): World {
  const registry = createMetricsRegistry();
  const gateway = createGatewayMetrics(registry, { processMetrics });
  const bridges = bridgeNames.map((name, i) => {
    const bridgeRegistry = createMetricsRegistry();
    return {
      name,
      app: i === 0 ? 'hello' : `app${i}`,
      registry: bridgeRegistry,
      metrics: createBridgeMetrics(bridgeRegistry, { processMetrics }),
    };
  });
  return { registry, gateway, bridges };
}

/** One label value per label name: a config-like name or the first enum value. */
function sampleLabels(labelNames: readonly LabelName[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const name of labelNames) {
    const domain = LABEL_DOMAINS[name];
    labels[name] = domain.kind === 'config' ? `demo_${name}` : (domain.values[0] ?? 'x');
  }
  return labels;
}

type AnyHandle = Counter<string> | Gauge<string> | Histogram<string>;

/** Gives every metric of `emitter` one observation, through its handle in `handles`. */
export function observeEveryMetric(handles: GatewayMetrics | BridgeMetrics, emitter: Emitter): void {
  const byKey = handles as unknown as Record<string, AnyHandle>;
  for (const def of ALL_METRICS.filter((d) => d.emitter === emitter)) {
    const handle = byKey[def.key];
    if (handle === undefined) throw new Error(`no handle for ${def.key}`);
    const labels = sampleLabels(def.labelNames);
    if (def.type === 'counter') (handle as Counter<string>).inc(labels, 3);
    else if (def.type === 'gauge') (handle as Gauge<string>).set(labels, 2);
    else (handle as Histogram<string>).observe(labels, 0.042);
  }
}

/**
 * One round of plausible traffic: client requests to each bridge's app (with per-request
 * accounting from a RequestAccountant), an upstream route, bridge pool activity.
 * Every call changes counters, so rates over consecutive scrapes are non-zero.
 */
export function simulateTraffic(world: World, round: number): void {
  const g = world.gateway;
  for (const bridge of world.bridges) {
    g.bridgeUp.set({ bridge: bridge.name }, 1);
    g.bridgeConnectionsInUse.set({ bridge: bridge.name }, (round % 3) + 1);
    g.bridgeSpoolHeldBytes.set({ bridge: bridge.name }, (round % 4) * 65536);
    g.bridgeConnectionWait.observe({ bridge: bridge.name }, 0.0007 * ((round % 5) + 1));
    if (round % 4 === 0) g.bridgeRestarts.inc({ bridge: bridge.name, reason: 'crash' });

    for (const [i, method] of ['GET', 'POST', 'PROPFIND'].entries()) {
      let t = 0;
      const accountant = new RequestAccountant({ app: bridge.app, metrics: bridge.metrics, now: () => t });
      accountant.ssf('HSE_REQ_SEND_RESPONSE_HEADER_EX', 'ok');
      accountant.write('sync', 512);
      const op = accountant.beginAsync('write');
      t += 0.003 * (i + 1);
      accountant.completeAsync(op, round % 3 === 0 ? 64 : 0);
      accountant.write('async', 4096);
      const readOp = accountant.beginAsync('read');
      accountant.rejectSecondOutstanding();
      t += 0.001;
      accountant.completeAsync(readOp);
      accountant.read('async', 100);
      accountant.read('sync', 10);
      const tf = accountant.beginAsync('transmit_file');
      t += 0.02;
      accountant.completeAsync(tf);
      accountant.transmitFile(65_536);
      accountant.vectorSend(128);
      accountant.ssf('GET_TRACE_INFO', 'unsupported');
      accountant.appendLog(`round=${round}`);
      const pending = accountant.beginAsync('vector_send'); // stays outstanding: live gauge > 0
      void pending;
      recordAccounting(g, { app: bridge.app }, accountant.snapshot());
      const status = method === 'POST' && round % 2 === 0 ? 500 : method === 'PROPFIND' ? 207 : 200;
      observeHttpRequest(g, {
        route: `${bridge.app}-route`,
        app: bridge.app,
        method,
        status,
        durationSeconds: 0.01 * (i + 1) + 0.001 * round,
        requestBytes: 100,
        responseBytes: 4608,
      });
    }
    g.httpRequestsInFlight.set({ route: `${bridge.app}-route`, app: bridge.app }, round % 2);
    if (round % 3 === 0) {
      bridge.metrics.spoolSlotsRetired.inc(round + 1);
      bridge.metrics.spoolSlotsReclaimed.inc(round);
    }
  }
  if (round % 5 === 0) g.extensionLoadFailures.inc({ app: 'broken', stage: 'missing_export' });

  g.upstreamTargetHealthy.set({ upstream: 'iis', target: 'iis1:80' }, 1);
  g.upstreamTargetHealthy.set({ upstream: 'iis', target: 'iis2:80' }, round % 2);
  observeUpstreamRequest(g, { upstream: 'iis', target: 'iis1:80', status: 200, durationSeconds: 0.05 });
  observeUpstreamRequest(g, { upstream: 'iis', target: 'iis2:80', status: 502, durationSeconds: 0.2 });
  observeUpstreamRequest(g, {
    upstream: 'iis',
    target: 'iis2:80',
    error: Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }),
    durationSeconds: 0.001,
  });
  g.upstreamRetries.inc({ upstream: 'iis' });
  observeHttpRequest(g, {
    route: 'legacy',
    app: 'iis',
    method: 'GET',
    status: 200,
    durationSeconds: 0.06,
    requestBytes: 0,
    responseBytes: 1000,
  });
  g.bridgeScrapeErrors.inc({ bridge: world.bridges[0]?.name ?? 'b1' }, 0);
}

/** Each bridge's registry as the gateway would receive it over the pipe (a JSON round trip). */
export async function bridgeSnapshots(world: World): Promise<BridgeSnapshot[]> {
  return Promise.all(
    world.bridges.map(async (b) => ({
      bridge: b.name,
      metrics: JSON.parse(JSON.stringify(await b.registry.getMetricsAsJSON())) as unknown,
    })),
  );
}

/** The gateway registry's JSON. */
export async function gatewayJson(world: World): Promise<unknown> {
  return world.registry.getMetricsAsJSON();
}
