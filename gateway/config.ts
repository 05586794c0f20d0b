/**
 * The gateway's configuration: a YAML or JSON file, or the quick `--app` flags.
 * Every mistake is reported as ConfigError naming the file, the field path
 * (e.g. `apps[2].library`) and what was expected, before anything starts.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';

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
  /** Most connections (= concurrent requests) the gateway opens to this bridge; more wait. */
  maxConnections: number;
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
  maxConcurrency?: number;
}

export interface UpstreamConfig {
  name: string;
  targets: string[];
}

export interface RouteConfig {
  prefix: string;
  host?: string;
  upstream: string;
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
  /** Physical directory URLs outside any app map to (MAP_URL_TO_PATH, PATH_TRANSLATED). */
  siteRoot: string;
}

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

/** Parses and validates a configuration object. `baseDir` resolves relative library paths. */
export function parseConfig(raw: unknown, source: string, baseDir: string): GatewayConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(source, '(top level)', 'an object', raw);
  const r = new Reader(source, '', raw as Obj);
  r.allowOnly(['server', 'admin', 'bridges', 'apps', 'upstreams', 'routes', 'siteRoot']);
  const server = readServer(r.object('server'), { host: '127.0.0.1', port: 8080 });
  const adminReader = r.object('admin');
  const admin = adminReader ? readServer(adminReader, { host: server.host, port: 9100 }) : undefined;

  const bridges: BridgeConfig[] = r.map('bridges').map(([name, b]) => {
    b.allowOnly(['mode', 'listen', 'address', 'workers', 'secretFile', 'maxConnections']);
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
    if (address?.startsWith('tcp://') && !secret) b.fail('secretFile', 'a shared secret file: TCP bridges must authenticate the gateway');
    return {
      name,
      mode: mode as BridgeConfig['mode'],
      address,
      workers: b.int('workers', 1, 256, 4)!,
      secret,
      maxConnections: b.int('maxConnections', 1, 100000, 4096)!,
    };
  });

  const apps: AppConfig[] = r.list('apps').map((a, i) => {
    a.allowOnly(['name', 'mount', 'host', 'library', 'bridge', 'physicalPath', 'readAhead', 'maxConcurrency']);
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
      maxConcurrency: a.int('maxConcurrency', 1, 100000),
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
      bridges.push({ name: DEFAULT_BRIDGE, mode: 'local', workers: 4, maxConnections: 4096 });
    }
  }

  const upstreams: UpstreamConfig[] = r.map('upstreams').map(([name, u]) => {
    u.allowOnly(['targets']);
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
    return { name, targets };
  });

  const routes: RouteConfig[] = r.list('routes').map((rt) => {
    rt.allowOnly(['prefix', 'host', 'upstream']);
    const prefix = rt.string('prefix', true);
    if (!prefix.startsWith('/')) rt.fail('prefix', 'a URL path prefix starting with "/"', prefix);
    const upstream = rt.string('upstream', true);
    if (!upstreams.some((u) => u.name === upstream)) rt.fail('upstream', 'one of the upstreams defined under "upstreams"', upstream);
    return { prefix, host: rt.string('host')?.toLowerCase(), upstream };
  });

  if (apps.length === 0 && routes.length === 0) {
    throw new ConfigError(source, 'apps', 'at least one app (or a route to an upstream)');
  }
  const siteRoot = path.resolve(baseDir, r.string('siteRoot') ?? '.');
  return { source, server, admin, bridges, apps, upstreams, routes, siteRoot };
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
