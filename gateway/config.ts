/**
 * The gateway's configuration: a YAML or JSON file, or the quick `--app` flags.
 * Every mistake is reported as ConfigError naming the file, the field path
 * (e.g. `apps[2].library`) and what was expected, before anything starts.
 */
import fs from 'node:fs';
import path from 'node:path';
import tlsModule from 'node:tls';
import YAML from 'yaml';
import { readBackendRef, readShadow, readTrustedProxies, readUpstream, type BackendRef, type ShadowConfig, type UpstreamConfig } from './upstream-config';

export type { BackendRef, ShadowConfig, UpstreamConfig } from './upstream-config';

export interface ServerConfig {
  host: string;
  port: number;
}

export interface BridgeConfig {
  name: string;
  /** local: the gateway starts and supervises the bridge process; remote: it connects to `address`. */
  mode: 'local' | 'remote';
  /** Transport address: where a local bridge listens, or where a remote one is reached. */
  address?: string;
  workers: number;
  /** Shared secret for TCP transports, read from secretFile. */
  secret?: string;
  /** Remote tcp:// bridge: connect with TLS, verifying the bridge against `ca` (PEM contents, read from the files). */
  tls?: BridgeTlsConfig;
  /** Most connections (= concurrent requests) the gateway opens to this bridge; more wait. */
  maxConnections: number;
  /**
   * How a local bridge runs: `native` (this node, .so/.dylib, or .dll on Windows) or
   * `wine` (Windows node.exe under Wine hosting .dll files on Linux; see gateway/wine-bridge.ts).
   * Default: $ISAPI_BRIDGE_RUNTIME, else `wine` on a non-Windows host when every library
   * of the bridge is a .dll, else `native`.
   */
  runtime?: BridgeRuntimeKind;
  /** Local bridge: how many bridge processes serve it (requests go to the least busy). */
  processes: number;
  /** Local bridge on Linux: run its threads under SCHED_BATCH (bridge/sched-batch.ts; default true). */
  schedBatch: boolean;
  /** Local bridge: extension threads running at once before a fast app's requests wait for one (bridge/thread-pool.ts; default: its CPUs). */
  runningThreads?: number;
  /** Local bridge: replace a process (with drain) after it was given this many requests. */
  recycleAfterRequests?: number;
  /** Local bridge: replace a process (with drain) whose resident memory exceeds this. */
  recycleAboveRssBytes?: number;
  /** How often resident memory is checked for recycleAboveRssBytes. */
  memoryCheckIntervalMs?: number;
}

export type BridgeRuntimeKind = 'native' | 'wine';

/** `bridges.<name>.tls`: PEM contents read from the configured files. */
export interface BridgeTlsConfig {
  ca: string;
  /** Client certificate and key, for a bridge started with --tls-require-client-cert. */
  cert?: string;
  key?: string;
  /** Name the bridge certificate must carry, when it is not the address's host. */
  servername?: string;
}

export interface AppConfig {
  name: string;
  /** URL path of the extension, IIS style: /scripts/hello.dll. */
  mount: string;
  host?: string;
  library: string;
  bridge: string;
  physicalPath?: string;
  readAhead?: number;
  /** Response bytes an extension's output is held back up to (IIS's responseBufferLimit; 0: none). */
  responseBufferLimit?: number;
  maxConcurrency?: number;
  /** Requests that may wait for a bridge thread; more get 503 with Retry-After. Unlimited when absent. */
  maxQueue?: number;
  /** A PENDING request that never calls DONE_WITH_SESSION is ended after this many ms (bridge default 5 min). */
  pendingTimeoutMs?: number;
  /** For extensions whose HttpExtensionProc waits for their own threads' callbacks (see bridge/request-info.ts). */
  relayCallbacks: boolean;
  /** /readyz fails while this app's extension is not loaded (default true). */
  required: boolean;
}

/** Request-size limits and slow-client timeouts of the HTTP front door. */
export interface LimitsConfig {
  /** Bytes of request headers (names, values); larger heads get 431. */
  maxHeaderBytes: number;
  /** Bytes of the request target (path and query); longer get 414. */
  maxUrlBytes: number;
  /** Time a client has to send the whole request head (slowloris); then 408. */
  headersTimeoutMs: number;
  /** Time a client has to send the whole request, body included; then 408. */
  requestTimeoutMs: number;
}

export interface RouteConfig {
  prefix: string;
  host?: string;
  /** What answers the client: an HTTP upstream or an ISAPI app (whose mount contains the prefix). */
  primary: BackendRef;
  /** Where requests are also replayed, for comparison only. */
  shadow?: ShadowConfig;
}

export interface GatewayConfig {
  /** The file it came from, or "<command line>". */
  source: string;
  server: ServerConfig;
  admin?: ServerConfig;
  bridges: BridgeConfig[];
  apps: AppConfig[];
  upstreams: UpstreamConfig[];
  routes: RouteConfig[];
  /** Clients whose X-Forwarded-* / Forwarded headers are extended; from anyone else they are replaced. */
  trustedProxies: string[];
  /** Physical directory URLs outside any app map to (MAP_URL_TO_PATH, PATH_TRANSLATED). */
  siteRoot: string;
  limits: LimitsConfig;
  /** How long SIGTERM/SIGINT (and a recycled or reloaded bridge) wait for in-flight requests. */
  shutdownTimeoutMs: number;
}

export const DEFAULT_LIMITS: LimitsConfig = { maxHeaderBytes: 16384, maxUrlBytes: 8192, headersTimeoutMs: 60000, requestTimeoutMs: 300000 };
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 15000;

export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG';
  constructor(
    readonly file: string,
    readonly field: string,
    readonly expected: string,
    got?: unknown,
  ) {
    super(`${file}: ${field}: expected ${expected}${got === undefined ? '' : `, got ${describe(got)}`}`);
    this.name = 'ConfigError';
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  return JSON.stringify(v);
}

type Obj = Record<string, unknown>;

/** Field readers that know where they are, so errors can say so. */
class Reader {
  constructor(
    readonly file: string,
    readonly at: string,
    readonly value: Obj,
  ) {}

  private field(name: string): string {
    return this.at ? `${this.at}.${name}` : name;
  }

  allowOnly(names: string[]): void {
    for (const key of Object.keys(this.value)) {
      if (!names.includes(key)) throw new ConfigError(this.file, this.field(key), `one of the known fields (${names.join(', ')})`, key);
    }
  }

  string(name: string, required: true): string;
  string(name: string, required?: false): string | undefined;
  string(name: string, required = false): string | undefined {
    const v = this.value[name];
    if (v === undefined || v === null) {
      if (required) throw new ConfigError(this.file, this.field(name), 'a string (required)');
      return undefined;
    }
    if (typeof v !== 'string' || v.length === 0) throw new ConfigError(this.file, this.field(name), 'a non-empty string', v);
    return v;
  }

  int(name: string, min: number, max: number, fallback?: number): number | undefined {
    const v = this.value[name];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new ConfigError(this.file, this.field(name), `an integer from ${min} to ${max}`, v);
    }
    return v;
  }

  object(name: string): Reader | undefined {
    const v = this.value[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(this.file, this.field(name), 'an object', v);
    return new Reader(this.file, this.field(name), v as Obj);
  }

  list(name: string): Reader[] {
    const v = this.value[name];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw new ConfigError(this.file, this.field(name), 'a list', v);
    return v.map((item, i) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        throw new ConfigError(this.file, `${this.field(name)}[${i}]`, 'an object', item);
      }
      return new Reader(this.file, `${this.field(name)}[${i}]`, item as Obj);
    });
  }

  map(name: string): Array<[string, Reader]> {
    const r = this.object(name);
    if (!r) return [];
    return Object.entries(r.value).map(([key, item]) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        throw new ConfigError(this.file, `${r.at}.${key}`, 'an object', item);
      }
      return [key, new Reader(this.file, `${r.at}.${key}`, item as Obj)];
    });
  }

  strings(name: string): string[] {
    const v = this.value[name];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || !s)) {
      throw new ConfigError(this.file, this.field(name), 'a list of non-empty strings', v);
    }
    return v as string[];
  }

  fail(name: string, expected: string, got?: unknown): never {
    throw new ConfigError(this.file, this.field(name), expected, got);
  }
}

export const DEFAULT_BRIDGE = 'default';
/** A local bridge's threads run under SCHED_BATCH unless `schedBatch: false` (bridge/sched-batch.ts). */
const DEFAULT_SCHED_BATCH = true;

function readLimits(r: Reader | undefined): LimitsConfig {
  if (!r) return { ...DEFAULT_LIMITS };
  r.allowOnly(['maxHeaderBytes', 'maxUrlBytes', 'headersTimeoutMs', 'requestTimeoutMs']);
  const limits = {
    maxHeaderBytes: r.int('maxHeaderBytes', 1024, 1 << 20, DEFAULT_LIMITS.maxHeaderBytes)!,
    maxUrlBytes: r.int('maxUrlBytes', 256, 1 << 20, DEFAULT_LIMITS.maxUrlBytes)!,
    headersTimeoutMs: r.int('headersTimeoutMs', 100, 3600000, DEFAULT_LIMITS.headersTimeoutMs)!,
    requestTimeoutMs: r.int('requestTimeoutMs', 0, 86400000, DEFAULT_LIMITS.requestTimeoutMs)!,
  };
  if (limits.requestTimeoutMs !== 0 && limits.requestTimeoutMs < limits.headersTimeoutMs) {
    r.fail('requestTimeoutMs', `0 (none) or at least headersTimeoutMs (${limits.headersTimeoutMs})`, limits.requestTimeoutMs);
  }
  return limits;
}

function readServer(r: Reader | undefined, defaults: ServerConfig): ServerConfig {
  if (!r) return defaults;
  r.allowOnly(['host', 'port']);
  return { host: r.string('host') ?? defaults.host, port: r.int('port', 0, 65535, defaults.port)! };
}

function mountPath(r: Reader, name: string): string {
  const mount = r.string(name, true);
  if (!mount.startsWith('/') || mount.includes('?') || mount.includes('#') || mount.length > 1 && mount.endsWith('/')) {
    r.fail(name, 'a URL path starting with "/" without query or trailing slash, like /scripts/hello.dll', mount);
  }
  return mount;
}

function readBoolean(r: Reader, name: string, fallback: boolean): boolean {
  const v = r.value[name];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') r.fail(name, 'true or false', v);
  return v;
}

function readPemFile(r: Reader, name: string, baseDir: string, marker: RegExp, what: string): string | undefined {
  const rel = r.string(name);
  if (rel === undefined) return undefined;
  const file = path.resolve(baseDir, rel);
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    r.fail(name, `a readable file holding ${what}`, `${file} (${(err as NodeJS.ErrnoException).code})`);
  }
  if (!marker.test(text)) r.fail(name, `a file holding ${what}`, file);
  return text;
}

/** `bridges.<name>.tls`: the CA the bridge certificate is verified against, and an optional client certificate. */
function readBridgeTls(r: Reader, baseDir: string): BridgeTlsConfig {
  r.allowOnly(['ca', 'cert', 'key', 'servername']);
  if (r.value.ca === undefined || r.value.ca === null) r.fail('ca', 'a PEM file with the CA that signs the bridge certificate (required: the bridge is always verified)');
  const ca = readPemFile(r, 'ca', baseDir, /-----BEGIN CERTIFICATE-----/, 'PEM CA certificates')!;
  const cert = readPemFile(r, 'cert', baseDir, /-----BEGIN CERTIFICATE-----/, 'a PEM client certificate');
  const key = readPemFile(r, 'key', baseDir, /-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'a PEM private key');
  if (cert !== undefined && key === undefined) r.fail('key', 'the private key of tls.cert (a client certificate needs both)');
  if (key !== undefined && cert === undefined) r.fail('cert', 'the client certificate of tls.key (a client certificate needs both)');
  try {
    tlsModule.createSecureContext({ ca, cert, key });
  } catch (err) {
    r.fail(cert !== undefined ? 'key' : 'ca', 'PEM material Node can use', (err as Error).message);
  }
  const servername = r.string('servername');
  return { ca, ...(cert !== undefined ? { cert, key } : {}), ...(servername ? { servername } : {}) };
}

/** Parses and validates a configuration object. `baseDir` resolves relative library paths. */
export function parseConfig(raw: unknown, source: string, baseDir: string): GatewayConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(source, '(top level)', 'an object', raw);
  const r = new Reader(source, '', raw as Obj);
  r.allowOnly(['server', 'admin', 'bridges', 'apps', 'upstreams', 'routes', 'siteRoot', 'limits', 'shutdownTimeoutMs', 'trustedProxies']);
  const server = readServer(r.object('server'), { host: '127.0.0.1', port: 8080 });
  const adminReader = r.object('admin');
  const admin = adminReader ? readServer(adminReader, { host: server.host, port: 9100 }) : undefined;

  const bridges: BridgeConfig[] = r.map('bridges').map(([name, b]) => {
    b.allowOnly(['mode', 'listen', 'address', 'workers', 'secretFile', 'maxConnections', 'processes', 'recycleAfterRequests', 'recycleAboveRssBytes', 'memoryCheckIntervalMs', 'runtime', 'tls', 'schedBatch', 'runningThreads']);
    const mode = b.string('mode') ?? 'local';
    if (mode !== 'local' && mode !== 'remote') b.fail('mode', '"local" or "remote"', mode);
    const address = mode === 'local' ? b.string('listen') : b.string('address', true);
    if (address && !/^(unix:.+|pipe:.+|tcp:\/\/.+:\d+)$/.test(address)) {
      b.fail(mode === 'local' ? 'listen' : 'address', 'unix:/path.sock, pipe:name or tcp://host:port', address);
    }
    const secretFile = b.string('secretFile');
    let secret: string | undefined;
    if (secretFile) {
      const file = path.resolve(baseDir, secretFile);
      try {
        secret = fs.readFileSync(file, 'utf8').trim();
      } catch (err) {
        b.fail('secretFile', 'a readable file holding the shared secret', `${file} (${(err as NodeJS.ErrnoException).code})`);
      }
      if (!secret) b.fail('secretFile', 'a file with a non-empty secret', file);
    }
    const runtime = b.string('runtime');
    if (runtime !== undefined && runtime !== 'native' && runtime !== 'wine') b.fail('runtime', '"native" or "wine"', runtime);
    if (runtime === 'wine' && mode !== 'local') b.fail('runtime', '"native" for a remote bridge (runtime only says how a local bridge is started)', runtime);
    if (runtime === 'wine' && address?.startsWith('unix:')) b.fail('listen', 'tcp://127.0.0.1:port for a Wine bridge (Windows node cannot use a Unix socket)', address);
    if (address?.startsWith('tcp://') && !secret && runtime !== 'wine') b.fail('secretFile', 'a shared secret file: TCP bridges must authenticate the gateway');
    const tlsReader = b.object('tls');
    if (tlsReader && !(mode === 'remote' && address?.startsWith('tcp://'))) {
      b.fail('tls', 'no value: TLS is for a remote bridge reached over tcp://', b.value.tls);
    }
    const tls = tlsReader ? readBridgeTls(tlsReader, baseDir) : undefined;
    const processes = b.int('processes', 1, 64, 1)!;
    if (mode === 'local' && processes > 1 && address?.startsWith('tcp://')) {
      b.fail('processes', '1 with a fixed tcp:// listen address (several processes need unix: or pipe: addresses, or no listen)', processes);
    }
    if (mode === 'remote') {
      for (const f of ['processes', 'recycleAfterRequests', 'recycleAboveRssBytes', 'memoryCheckIntervalMs', 'schedBatch', 'runningThreads']) {
        if (b.value[f] !== undefined) b.fail(f, 'no value: a remote bridge is not started by the gateway', b.value[f]);
      }
    }
    const recycleAfterRequests = b.int('recycleAfterRequests', 1, Number.MAX_SAFE_INTEGER);
    const recycleAboveRssBytes = b.int('recycleAboveRssBytes', 16 * 1024 * 1024, Number.MAX_SAFE_INTEGER);
    const memoryCheckIntervalMs = b.int('memoryCheckIntervalMs', 100, 3600000);
    const runningThreads = b.int('runningThreads', 1, 256);
    return {
      ...(runtime ? { runtime: runtime as BridgeRuntimeKind } : {}),
      processes,
      schedBatch: readBoolean(b, 'schedBatch', DEFAULT_SCHED_BATCH),
      ...(runningThreads !== undefined ? { runningThreads } : {}),
      ...(recycleAfterRequests !== undefined ? { recycleAfterRequests } : {}),
      ...(recycleAboveRssBytes !== undefined ? { recycleAboveRssBytes } : {}),
      ...(memoryCheckIntervalMs !== undefined ? { memoryCheckIntervalMs } : {}),
      name,
      mode: mode as BridgeConfig['mode'],
      address,
      workers: b.int('workers', 1, 256, 4)!,
      secret,
      ...(tls ? { tls } : {}),
      maxConnections: b.int('maxConnections', 1, 100000, 4096)!,
    };
  });

  const apps: AppConfig[] = r.list('apps').map((a, i) => {
    a.allowOnly(['name', 'mount', 'host', 'library', 'bridge', 'physicalPath', 'readAhead', 'responseBufferLimit', 'maxConcurrency', 'maxQueue', 'pendingTimeoutMs', 'relayCallbacks', 'required']);
    const mount = mountPath(a, 'mount');
    const library = a.string('library', true);
    const bridge = a.string('bridge') ?? DEFAULT_BRIDGE;
    const physicalPath = a.string('physicalPath');
    const app: AppConfig = {
      name: a.string('name') ?? (path.posix.basename(mount) || `app${i}`),
      mount,
      host: a.string('host')?.toLowerCase(),
      library: path.resolve(baseDir, library),
      bridge,
      physicalPath: physicalPath ? path.resolve(baseDir, physicalPath) : undefined,
      readAhead: a.int('readAhead', 0, 0x7fffffff),
      responseBufferLimit: a.int('responseBufferLimit', 0, 0x7fffffff),
      maxConcurrency: a.int('maxConcurrency', 1, 100000),
      maxQueue: a.int('maxQueue', 0, 1000000),
      pendingTimeoutMs: a.int('pendingTimeoutMs', 0, 2 ** 31 - 1),
      relayCallbacks: readBoolean(a, 'relayCallbacks', false),
      required: readBoolean(a, 'required', true),
    };
    return app;
  });
  const names = new Set<string>();
  apps.forEach((app, i) => {
    if (names.has(app.name)) throw new ConfigError(source, `apps[${i}].name`, 'a name no other app uses', app.name);
    names.add(app.name);
  });
  // Apps that name no declared bridge use an implicit local one, so small configs stay small.
  for (const [i, app] of apps.entries()) {
    if (!bridges.some((b) => b.name === app.bridge)) {
      if (app.bridge !== DEFAULT_BRIDGE) throw new ConfigError(source, `apps[${i}].bridge`, `one of the bridges defined under "bridges"`, app.bridge);
      bridges.push({ name: DEFAULT_BRIDGE, mode: 'local', workers: 4, maxConnections: 4096, processes: 1, schedBatch: DEFAULT_SCHED_BATCH });
    }
  }

  resolveBridgeRuntimes(bridges, apps, source);

  const upstreams: UpstreamConfig[] = r.map('upstreams').map(([name, u]) => readUpstream(name, u, baseDir));

  const upstreamNames = upstreams.map((u) => u.name);
  const appNames = apps.map((a) => a.name);
  const routes: RouteConfig[] = r.list('routes').map((rt) => {
    rt.allowOnly(['prefix', 'host', 'upstream', 'app', 'shadow']);
    const prefix = rt.string('prefix', true);
    if (!prefix.startsWith('/')) rt.fail('prefix', 'a URL path prefix starting with "/"', prefix);
    const primary = readBackendRef(rt, upstreamNames, appNames, 'route');
    const shadowReader = rt.object('shadow');
    const shadow = shadowReader ? readShadow(shadowReader, upstreamNames, appNames, baseDir) : undefined;
    // An app only serves URLs under its mount (SCRIPT_NAME/PATH_INFO come from it).
    for (const [ref, field] of [[primary, 'app'], [shadow?.backend, 'shadow.app']] as const) {
      if (ref?.kind !== 'app') continue;
      const mount = apps.find((a) => a.name === ref.name)!.mount.toLowerCase();
      const p = prefix.toLowerCase();
      if (!(p === mount || p.startsWith(mount + '/'))) rt.fail(field, `an app whose mount contains the route prefix ${prefix}`, `${ref.name} (mounted at ${mount})`);
    }
    return { prefix, host: rt.string('host')?.toLowerCase(), primary, shadow };
  });
  const trustedProxies = readTrustedProxies(r);

  if (apps.length === 0 && routes.length === 0) {
    throw new ConfigError(source, 'apps', 'at least one app (or a route to an upstream)');
  }
  const siteRoot = path.resolve(baseDir, r.string('siteRoot') ?? '.');
  const limits = readLimits(r.object('limits'));
  const shutdownTimeoutMs = r.int('shutdownTimeoutMs', 0, 3600000, DEFAULT_SHUTDOWN_TIMEOUT_MS)!;
  return { source, server, admin, bridges, apps, upstreams, routes, trustedProxies, siteRoot, limits, shutdownTimeoutMs };
}

/**
 * Fills in `runtime` for local bridges that do not name one: $ISAPI_BRIDGE_RUNTIME,
 * else Wine on a non-Windows host when all of the bridge's libraries are .dll files.
 */
export function resolveBridgeRuntimes(bridges: BridgeConfig[], apps: AppConfig[], source = '<environment>', platform = process.platform): void {
  const fromEnv = process.env.ISAPI_BRIDGE_RUNTIME;
  if (fromEnv !== undefined && fromEnv !== '' && fromEnv !== 'native' && fromEnv !== 'wine') {
    throw new ConfigError(source, 'ISAPI_BRIDGE_RUNTIME', '"native" or "wine"', fromEnv);
  }
  for (const b of bridges) {
    if (b.mode !== 'local' || b.runtime) continue;
    const libs = apps.filter((a) => a.bridge === b.name).map((a) => a.library);
    if (fromEnv) b.runtime = fromEnv as BridgeRuntimeKind;
    else b.runtime = platform !== 'win32' && libs.length > 0 && libs.every((l) => /\.dll$/i.test(l)) ? 'wine' : 'native';
  }
}

export function loadConfigFile(file: string): GatewayConfig {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = fs.readFileSync(abs, 'utf8');
  } catch (err) {
    throw new ConfigError(abs, '(file)', 'a readable YAML or JSON file', (err as NodeJS.ErrnoException).code);
  }
  let raw: unknown;
  if (abs.endsWith('.json')) {
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(abs, '(syntax)', 'valid JSON', (err as Error).message);
    }
  } else {
    const doc = YAML.parseDocument(text, { prettyErrors: true });
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      const where = e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '(syntax)';
      throw new ConfigError(abs, where, 'valid YAML', e.message.split('\n')[0]);
    }
    raw = doc.toJS();
  }
  return parseConfig(raw, abs, path.dirname(abs));
}

/** `--app /scripts/hello.dll=./hello.so` flags, as a config. */
export function configFromFlags(apps: string[], host: string, port: number, cwd = process.cwd()): GatewayConfig {
  const raw = {
    server: { host, port },
    apps: apps.map((spec) => {
      const eq = spec.indexOf('=');
      if (eq <= 0 || eq === spec.length - 1) {
        throw new ConfigError('<command line>', '--app', '<url-path>=<library>, e.g. /scripts/hello.dll=./hello.so', spec);
      }
      return { mount: spec.slice(0, eq), library: spec.slice(eq + 1) };
    }),
  };
  return parseConfig(raw, '<command line>', cwd);
}
