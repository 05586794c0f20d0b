/**
 * The upstream, route and shadow schema: defaults, and mistakes reported as
 * ConfigError naming the field and what was expected.
 */
import { ConfigError, parseConfig } from '../../gateway/config';

const base = { upstreams: { iis: { targets: ['http://iis-1:80'] } }, routes: [{ prefix: '/', upstream: 'iis' }] };

function errorOf(raw: unknown): string {
  try {
    parseConfig(raw, 'gw.yaml', '/etc/gw');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

test('defaults for an upstream given only targets', () => {
  const c = parseConfig(base, 'gw.yaml', '/etc/gw');
  expect(c.upstreams[0]).toMatchObject({
    balance: 'round-robin',
    retries: 1,
    preserveHost: true,
    timeouts: { connectMs: 5000, headersMs: 60000, idleMs: 60000, totalMs: 0 },
    passive: { failures: 5, ejectMs: 30000 },
  });
  expect(c.routes[0]!.primary).toEqual({ kind: 'upstream', name: 'iis' });
  expect(c.trustedProxies).toEqual([]);
});

test('shadow settings and their defaults', () => {
  const c = parseConfig(
    {
      apps: [{ name: 'orders', mount: '/scripts/orders.dll', library: 'orders.so' }],
      upstreams: base.upstreams,
      routes: [{ prefix: '/scripts/orders.dll', upstream: 'iis', shadow: { app: 'orders', diffLog: '/tmp/diff.jsonl', sampleRate: 0.25 } }],
    },
    'gw.yaml',
    '/etc/gw',
  );
  expect(c.routes[0]!.shadow).toMatchObject({
    backend: { kind: 'app', name: 'orders' },
    sampleRate: 0.25,
    maxBodyBytes: 1048576,
    maxConcurrent: 32,
    methods: ['GET', 'HEAD', 'OPTIONS'],
    compareHeaders: ['content-type'],
    diffLog: '/tmp/diff.jsonl',
  });
});

test.each([
  [{ ...base, upstreams: { iis: { targets: ['http://x'], balance: 'random' } } }, 'upstreams.iis.balance: expected "round-robin" or "least-in-flight", got "random"'],
  [{ ...base, upstreams: { iis: { targets: ['http://x'], timeouts: { idleMs: -1 } } } }, 'upstreams.iis.timeouts.idleMs: expected an integer from 0 to 86400000, got -1'],
  [{ ...base, upstreams: { iis: { targets: ['http://x'], healthCheck: { path: 'health' } } } }, 'upstreams.iis.healthCheck.path: expected a URL path starting with "/", got "health"'],
  [{ ...base, upstreams: { iis: { targets: ['http://x'], caFile: 'missing.pem' } } }, 'upstreams.iis.caFile: expected a readable PEM file, got "/etc/gw/missing.pem (ENOENT)"'],
  [{ ...base, routes: [{ prefix: '/', upstream: 'nope' }] }, 'routes[0].upstream: expected one of the upstreams defined under "upstreams", got "nope"'],
  [{ ...base, routes: [{ prefix: '/' }] }, 'routes[0].upstream: expected an upstream (or "app") name for the route'],
  [{ ...base, routes: [{ prefix: '/', upstream: 'iis', shadow: { upstream: 'iis', sampleRate: 2 } }] }, 'routes[0].shadow.sampleRate: expected a number from 0 to 1, got 2'],
  [
    { ...base, apps: [{ name: 'a', mount: '/scripts/a.dll', library: 'a.so' }], routes: [{ prefix: '/other/', upstream: 'iis', shadow: { app: 'a' } }] },
    'routes[0].shadow.app: expected an app whose mount contains the route prefix /other/, got "a (mounted at /scripts/a.dll)"',
  ],
  [{ ...base, trustedProxies: ['10.0.0.0/33'] }, 'trustedProxies[0]: expected an IP address or CIDR block like 10.0.0.0/8, got "10.0.0.0/33"'],
])('%#: bad input is named', (raw, message) => {
  expect(errorOf(raw)).toBe(`gw.yaml: ${message}`);
});
