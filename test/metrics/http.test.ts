import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  BridgeScrapeError,
  CONTENT_TYPES,
  createGatewayMetrics,
  createMetricsRegistry,
  serveMetrics,
  type BridgeSource,
  type MetricsError,
} from '../../metrics';
import { createWorld, observeEveryMetric } from './fixtures';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(port: number, method: string, accept?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/metrics', method, headers: accept ? { accept } : {} },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe('serveMetrics', () => {
  const world = createWorld(['b1', 'b2'], false);
  observeEveryMetric(world.gateway, 'gateway');
  for (const b of world.bridges) observeEveryMetric(b.metrics, 'bridge');
  const errors: Array<[string, MetricsError]> = [];
  const sources: BridgeSource[] = [
    ...world.bridges.map((b) => ({
      bridge: b.name,
      snapshot: async (): Promise<unknown> => JSON.parse(JSON.stringify(await b.registry.getMetricsAsJSON())) as unknown,
    })),
    { bridge: 'slow', snapshot: (signal: AbortSignal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))) },
    { bridge: 'failing', snapshot: () => Promise.reject(new Error('pipe closed')) },
    { bridge: 'garbage', snapshot: () => Promise.resolve({ not: 'metrics' }) },
  ];
  const server = createServer((req, res) => {
    void serveMetrics(req, res, {
      gateway: world.registry,
      bridges: sources,
      bridgeTimeoutMs: 200,
      onBridgeError: (bridge, error) => {
        errors.push([bridge, error]);
        world.gateway.bridgeScrapeErrors.inc({ bridge });
      },
    });
  });
  let port = 0;

  beforeAll(async () => {
    port = await listen(server);
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });
  beforeEach(() => errors.splice(0));

  it('serves merged text format by default, leaving out failed bridges', async () => {
    const reply = await get(port, 'GET');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe(CONTENT_TYPES.text);
    expect(reply.headers.vary).toBe('Accept');
    expect(reply.body).toContain('isapi_extension_async_operations_outstanding{bridge="b1"');
    expect(reply.body).toContain('isapi_extension_async_operations_outstanding{bridge="b2"');
    expect(reply.body).not.toContain('# EOF');
    expect(errors.map(([b, e]) => [b, e.code])).toEqual([
      ['slow', 'ERR_METRICS_BRIDGE_SCRAPE'],
      ['failing', 'ERR_METRICS_BRIDGE_SCRAPE'],
      ['garbage', 'ERR_METRICS_INVALID_SNAPSHOT'],
    ]);
    expect(errors[0]?.[1]).toBeInstanceOf(BridgeScrapeError);
    // Fetch failures are counted before the gateway registry is read: visible in the same scrape.
    expect(reply.body).toMatch(/isapi_bridge_scrape_errors_total\{bridge="failing"\} [1-9]/);
  });

  it('serves OpenMetrics when Prometheus asks for it', async () => {
    const reply = await get(
      port,
      'GET',
      'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1',
    );
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe(CONTENT_TYPES.openmetrics);
    expect(reply.body.endsWith('# EOF\n')).toBe(true);
    expect(Number(reply.headers['content-length'])).toBe(Buffer.byteLength(reply.body));
  });

  it('answers HEAD without a body and other methods with 405', async () => {
    const head = await get(port, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(Number(head.headers['content-length'])).toBeGreaterThan(0);
    const post = await get(port, 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it('answers 500 when the gateway registry fails', async () => {
    const broken = createServer((req, res) => {
      void serveMetrics(req, res, { gateway: () => Promise.reject(new Error('collector exploded')) });
    });
    const brokenPort = await listen(broken);
    try {
      const reply = await get(brokenPort, 'GET');
      expect(reply.status).toBe(500);
      expect(reply.body).toContain('collector exploded');
    } finally {
      await new Promise((resolve) => broken.close(resolve));
    }
  });

  it('works with a registry that has no bridges', async () => {
    const registry = createMetricsRegistry();
    createGatewayMetrics(registry, { processMetrics: false });
    const solo = createServer((req, res) => void serveMetrics(req, res, { gateway: registry }));
    const soloPort = await listen(solo);
    try {
      const reply = await get(soloPort, 'GET');
      expect(reply.status).toBe(200);
      expect(reply.body).toContain('# TYPE isapi_http_requests_total counter');
    } finally {
      await new Promise((resolve) => solo.close(resolve));
    }
  });
});
