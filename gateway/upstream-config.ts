/**
 * Configuration of HTTP upstreams, route primaries and shadows. gateway/config.ts
 * owns the file format and the errors; this module reads the upstream and shadow
 * sub-objects through the same field reader, so mistakes name file and field alike.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** The part of config.ts's field reader this module needs (it fails with ConfigError). */
export interface FieldReader {
  readonly at: string;
  readonly value: Record<string, unknown>;
  allowOnly(names: string[]): void;
  string(name: string, required: true): string;
  string(name: string, required?: false): string | undefined;
  int(name: string, min: number, max: number, fallback?: number): number | undefined;
  object(name: string): FieldReader | undefined;
  strings(name: string): string[];
  fail(name: string, expected: string, got?: unknown): never;
}

export type BalanceStrategy = 'round-robin' | 'least-in-flight';

/** Milliseconds; 0 turns a timeout off. */
export interface UpstreamTimeouts {
  /** TCP (and TLS) connection establishment. */
  connectMs: number;
  /** From sending the request until the response head arrives. */
  headersMs: number;
  /** Longest silence from the upstream once the request is sent. */
  idleMs: number;
  /** The whole exchange, retries included, until the last response byte. */
  totalMs: number;
}

export interface HealthCheckConfig {
  path: string;
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive passing checks that bring an unhealthy target back. */
  healthyThreshold: number;
  /** Consecutive failing checks that take a target out. */
  unhealthyThreshold: number;
}

export interface PassiveEjectionConfig {
  /** Consecutive failed requests (connect errors, resets, timeouts) that eject a target; 0 = never. */
  failures: number;
  /** How long an ejected target gets no traffic before it is tried again. */
  ejectMs: number;
}

export interface UpstreamConfig {
  name: string;
  targets: string[];
  balance: BalanceStrategy;
  timeouts: UpstreamTimeouts;
  /** Extra attempts for idempotent, bodiless requests that never reached an upstream. */
  retries: number;
  /** Idle keep-alive sockets are closed after this; keep it below the upstream's own keep-alive timeout. */
  keepAliveTimeoutMs: number;
  maxSockets: number;
  healthCheck?: HealthCheckConfig;
  passive: PassiveEjectionConfig;
  /** Send the client's Host header (true) or the target's host:port (false). */
  preserveHost: boolean;
  /** A fixed Host header for the upstream; wins over preserveHost. */
  hostHeader?: string;
  /** Larger request bodies get 413; undefined = no limit. */
  maxRequestBodyBytes?: number;
  /** PEM CA bundle that signs https targets (read from caFile). */
  ca?: string;
}

/** One side of a route: an HTTP upstream or an ISAPI app, by name. */
export type BackendRef = { kind: 'upstream'; name: string } | { kind: 'app'; name: string };

export interface ShadowConfig {
  backend: BackendRef;
  /** Fraction of eligible requests replayed, 0..1. */
  sampleRate: number;
  /** Requests with larger bodies are not replayed (counted as skipped). */
  maxBodyBytes: number;
  /** Replays in flight at once; more are dropped (counted), which bounds memory. */
  maxConcurrent: number;
  /** Only these methods are replayed: replaying writes against a shadow that shares data is rarely wanted. */
  methods: string[];
  /** Response headers compared besides status and body hash (lower case). */
  compareHeaders: string[];
  /** JSONL file for mismatches and errors (absolute). */
  diffLog?: string;
  /** Also log matching exchanges to diffLog. */
  logMatches: boolean;
  timeoutMs: number;
}

export const UPSTREAM_DEFAULTS = {
  balance: 'round-robin' as BalanceStrategy,
  timeouts: { connectMs: 5000, headersMs: 60000, idleMs: 60000, totalMs: 0 } satisfies UpstreamTimeouts,
  retries: 1,
  keepAliveTimeoutMs: 4000,
  maxSockets: 256,
  passive: { failures: 5, ejectMs: 30000 } satisfies PassiveEjectionConfig,
  health: { path: '/', intervalMs: 5000, timeoutMs: 2000, healthyThreshold: 2, unhealthyThreshold: 3 },
};

export const SHADOW_DEFAULTS = {
  sampleRate: 1,
  maxBodyBytes: 1024 * 1024,
  maxConcurrent: 32,
  methods: ['GET', 'HEAD', 'OPTIONS'],
  compareHeaders: ['content-type'],
  timeoutMs: 30000,
};

const DAY_MS = 86_400_000;

function boolean(r: FieldReader, name: string, fallback: boolean): boolean {
  const v = r.value[name];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') r.fail(name, 'true or false', v);
  return v;
}

function fraction(r: FieldReader, name: string, fallback: number): number {
  const v = r.value[name];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) r.fail(name, 'a number from 0 to 1', v);
  return v;
}

function readTimeouts(r: FieldReader | undefined): UpstreamTimeouts {
  const d = UPSTREAM_DEFAULTS.timeouts;
  if (!r) return { ...d };
  r.allowOnly(['connectMs', 'headersMs', 'idleMs', 'totalMs']);
  return {
    connectMs: r.int('connectMs', 0, DAY_MS, d.connectMs)!,
    headersMs: r.int('headersMs', 0, DAY_MS, d.headersMs)!,
    idleMs: r.int('idleMs', 0, DAY_MS, d.idleMs)!,
    totalMs: r.int('totalMs', 0, DAY_MS, d.totalMs)!,
  };
}

function readHealth(r: FieldReader | undefined): HealthCheckConfig | undefined {
  if (!r) return undefined;
  const d = UPSTREAM_DEFAULTS.health;
  r.allowOnly(['path', 'intervalMs', 'timeoutMs', 'healthyThreshold', 'unhealthyThreshold']);
  const p = r.string('path') ?? d.path;
  if (!p.startsWith('/')) r.fail('path', 'a URL path starting with "/"', p);
  return {
    path: p,
    intervalMs: r.int('intervalMs', 50, DAY_MS, d.intervalMs)!,
    timeoutMs: r.int('timeoutMs', 10, DAY_MS, d.timeoutMs)!,
    healthyThreshold: r.int('healthyThreshold', 1, 100, d.healthyThreshold)!,
    unhealthyThreshold: r.int('unhealthyThreshold', 1, 100, d.unhealthyThreshold)!,
  };
}

/** Reads `upstreams.<name>`. Relative caFile paths resolve against baseDir. */
export function readUpstream(name: string, u: FieldReader, baseDir: string): UpstreamConfig {
  u.allowOnly([
    'targets',
    'balance',
    'timeouts',
    'retries',
    'keepAliveTimeoutMs',
    'maxSockets',
    'healthCheck',
    'passive',
    'preserveHost',
    'hostHeader',
    'maxRequestBodyBytes',
    'caFile',
  ]);
  const targets = u.strings('targets');
  if (targets.length === 0) u.fail('targets', 'at least one URL like http://iis-1:80');
  targets.forEach((t, i) => {
    let url: URL | undefined;
    try {
      url = new URL(t);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) u.fail(`targets[${i}]`, 'an http:// or https:// URL', t);
  });
  const balance = u.string('balance') ?? UPSTREAM_DEFAULTS.balance;
  if (balance !== 'round-robin' && balance !== 'least-in-flight') u.fail('balance', '"round-robin" or "least-in-flight"', balance);
  const passiveReader = u.object('passive');
  passiveReader?.allowOnly(['failures', 'ejectMs']);
  const hostHeader = u.string('hostHeader');
  if (hostHeader !== undefined && /[\s\r\n]/.test(hostHeader)) u.fail('hostHeader', 'a host[:port] without whitespace', hostHeader);
  const caFile = u.string('caFile');
  let ca: string | undefined;
  if (caFile) {
    const file = path.resolve(baseDir, caFile);
    try {
      ca = fs.readFileSync(file, 'utf8');
    } catch (err) {
      u.fail('caFile', 'a readable PEM file', `${file} (${(err as NodeJS.ErrnoException).code})`);
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) u.fail('caFile', 'a PEM file with at least one certificate', file);
  }
  return {
    name,
    targets,
    balance: balance as BalanceStrategy,
    timeouts: readTimeouts(u.object('timeouts')),
    retries: u.int('retries', 0, 10, UPSTREAM_DEFAULTS.retries)!,
    keepAliveTimeoutMs: u.int('keepAliveTimeoutMs', 100, DAY_MS, UPSTREAM_DEFAULTS.keepAliveTimeoutMs)!,
    maxSockets: u.int('maxSockets', 1, 100000, UPSTREAM_DEFAULTS.maxSockets)!,
    healthCheck: readHealth(u.object('healthCheck')),
    passive: {
      failures: passiveReader?.int('failures', 0, 1000, UPSTREAM_DEFAULTS.passive.failures) ?? UPSTREAM_DEFAULTS.passive.failures,
      ejectMs: passiveReader?.int('ejectMs', 10, DAY_MS, UPSTREAM_DEFAULTS.passive.ejectMs) ?? UPSTREAM_DEFAULTS.passive.ejectMs,
    },
    preserveHost: boolean(u, 'preserveHost', true),
    hostHeader,
    maxRequestBodyBytes: u.int('maxRequestBodyBytes', 0, Number.MAX_SAFE_INTEGER),
    ca,
  };
}

/** Reads a route's primary (`upstream:` or `app:`), checking the name exists. */
export function readBackendRef(r: FieldReader, upstreams: readonly string[], apps: readonly string[], what: string): BackendRef {
  const upstream = r.string('upstream');
  const app = r.string('app');
  if (upstream && app) r.fail('app', `either "upstream" or "app" for the ${what}, not both`, app);
  if (upstream) {
    if (!upstreams.includes(upstream)) r.fail('upstream', 'one of the upstreams defined under "upstreams"', upstream);
    return { kind: 'upstream', name: upstream };
  }
  if (app) {
    if (!apps.includes(app)) r.fail('app', 'the name of one of the apps defined under "apps"', app);
    return { kind: 'app', name: app };
  }
  return r.fail('upstream', `an upstream (or "app") name for the ${what}`);
}

/** Reads `routes[i].shadow`. */
export function readShadow(r: FieldReader, upstreams: readonly string[], apps: readonly string[], baseDir: string): ShadowConfig {
  r.allowOnly(['upstream', 'app', 'sampleRate', 'maxBodyBytes', 'maxConcurrent', 'methods', 'compareHeaders', 'diffLog', 'logMatches', 'timeoutMs']);
  const d = SHADOW_DEFAULTS;
  const methods = r.strings('methods');
  methods.forEach((m, i) => {
    if (!/^[A-Za-z]+$/.test(m)) r.fail(`methods[${i}]`, 'an HTTP method name like GET', m);
  });
  const compareHeaders = r.strings('compareHeaders');
  compareHeaders.forEach((h, i) => {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(h)) r.fail(`compareHeaders[${i}]`, 'a header name', h);
  });
  const diffLog = r.string('diffLog');
  if (diffLog && !fs.existsSync(path.dirname(path.resolve(baseDir, diffLog)))) {
    r.fail('diffLog', 'a file path in an existing directory', path.resolve(baseDir, diffLog));
  }
  return {
    backend: readBackendRef(r, upstreams, apps, 'shadow'),
    sampleRate: fraction(r, 'sampleRate', d.sampleRate),
    maxBodyBytes: r.int('maxBodyBytes', 0, 1024 * 1024 * 1024, d.maxBodyBytes)!,
    maxConcurrent: r.int('maxConcurrent', 1, 100000, d.maxConcurrent)!,
    methods: r.value.methods === undefined ? [...d.methods] : methods.map((m) => m.toUpperCase()),
    compareHeaders: r.value.compareHeaders === undefined ? [...d.compareHeaders] : compareHeaders.map((h) => h.toLowerCase()),
    diffLog: diffLog ? path.resolve(baseDir, diffLog) : undefined,
    logMatches: boolean(r, 'logMatches', false),
    timeoutMs: r.int('timeoutMs', 1, DAY_MS, d.timeoutMs)!,
  };
}

/** Reads the top-level `trustedProxies`: addresses or CIDR blocks whose forwarded headers are kept. */
export function readTrustedProxies(r: FieldReader): string[] {
  const list = r.strings('trustedProxies');
  list.forEach((entry, i) => {
    const [addr, bits, extra] = entry.split('/');
    const family = net.isIP(addr ?? '');
    const max = family === 6 ? 128 : 32;
    const okBits = bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= max);
    if (!family || !okBits || extra !== undefined) r.fail(`trustedProxies[${i}]`, 'an IP address or CIDR block like 10.0.0.0/8', entry);
  });
  return list;
}
