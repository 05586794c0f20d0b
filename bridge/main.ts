/**
 * Starting and stopping a bridge process: load every configured extension
 * (GetExtensionVersion), start the extension threads, listen for gateways;
 * on shutdown drain in-flight requests, then TerminateExtension.
 */
import path from 'node:path';
import { ExtensionLibrary, ExtensionLoadError } from './extension';
import { Logger } from './log';
import { findNativeArtefact } from './native-path';
import type { AppSettings } from './request-info';
import { BridgeServer } from './server';
import { DEFAULT_SERVER_SOFTWARE } from './server-variables';
import { BridgeTelemetry } from './live-metrics';
import { ThreadPool } from './thread-pool';
import { formatTransportAddress, parseTransportAddress, type TransportAddress, type TransportTlsServer } from './transport';

export const DEFAULT_READ_AHEAD = 49152;
/** IIS's default responseBufferLimit for a handler: 4 MB (4194304 bytes, IIS's Schema.xml). */
export const DEFAULT_RESPONSE_BUFFER_LIMIT = 4194304;

/** How an app is described to a bridge (gateway config or --app). */
export interface BridgeAppConfig {
  name: string;
  library: string;
  /** URL path of the extension, e.g. /scripts/hello.dll; its directory is the virtual directory. */
  mount?: string;
  physicalPath?: string;
  readAhead?: number;
  /** See AppSettings.responseBufferLimit. */
  responseBufferLimit?: number;
  maxConcurrency?: number;
  maxQueue?: number;
  /** End PENDING requests that never call DONE_WITH_SESSION after this many ms (default 5 minutes). */
  pendingTimeoutMs?: number;
  /** See AppSettings.relayCallbacks. */
  relayCallbacks?: boolean;
}

/**
 * 1 MiB, Envoy's default per-connection buffer limit. It bounds what one streaming
 * request holds in the bridge; below it a streaming extension waits for the gateway
 * more often, and each wait is a switch between threads: 256 KiB streamed about
 * 470 MB/s on one core, 1 MiB about 555 (bench/RESULTS.md, session 3).
 */
export const DEFAULT_OUTPUT_WINDOW = 1024 * 1024;

export interface BridgeOptions {
  listen: string;
  apps: BridgeAppConfig[];
  threads?: number;
  /** Threads running at once before a fast app's requests wait for one of them (thread-pool.ts; default: the CPUs this process may use). */
  runningThreads?: number;
  secret?: string;
  /** TLS on a tcp:// listen address (PEM contents); the HMAC HELLO still runs inside it. */
  tls?: Omit<TransportTlsServer, 'onClientError'>;
  siteRoot?: string;
  logger?: Logger;
  /**
   * Response bytes a request may have on their way to the gateway before a synchronous
   * WriteClient waits (default DEFAULT_OUTPUT_WINDOW).
   */
  outputWindow?: number;
  inputWindow?: number;
  shimPath?: string;
  /** Called when a gateway sends SHUTDOWN (the owner drains via stop() and exits). */
  onShutdownRequest?: () => void;
}

export function appSettings(app: BridgeAppConfig): AppSettings {
  const library = path.resolve(app.library);
  const mount = app.mount ?? `/${path.basename(library)}`;
  const dir = path.posix.dirname(mount);
  const virtualPath = dir === '/' ? '/' : dir;
  return {
    name: app.name,
    library,
    physicalPath: path.resolve(app.physicalPath ?? path.dirname(library)),
    virtualPath,
    appMdPath: `/LM/W3SVC/1/ROOT${virtualPath === '/' ? '' : virtualPath}`,
    instanceId: 1,
    readAhead: app.readAhead ?? DEFAULT_READ_AHEAD,
    responseBufferLimit: app.responseBufferLimit ?? DEFAULT_RESPONSE_BUFFER_LIMIT,
    maxConcurrency: app.maxConcurrency ?? 8,
    pendingTimeoutMs: app.pendingTimeoutMs ?? 300000,
    relayCallbacks: app.relayCallbacks ?? false,
    ...(app.maxQueue !== undefined ? { maxQueue: app.maxQueue } : {}),
  };
}

export function defaultShimPath(): string {
  const file = process.platform === 'win32' ? 'isapi_shim.dll' : 'isapi_shim.so';
  const found = findNativeArtefact(file);
  if (found === undefined) throw new Error(`native shim ${file} not found: run "npm run build"`);
  return found;
}

export interface RunningBridge {
  address: TransportAddress;
  server: BridgeServer;
  loaded: Map<string, ExtensionLibrary>;
  failed: Map<string, string>;
  stop(deadlineMs?: number): Promise<void>;
}

export async function startBridge(options: BridgeOptions): Promise<RunningBridge> {
  const logger = options.logger ?? new Logger('bridge');
  const loaded = new Map<string, ExtensionLibrary>();
  const failed = new Map<string, string>();
  const good: AppSettings[] = [];
  for (const app of options.apps) {
    const settings = appSettings(app);
    try {
      const lib = ExtensionLibrary.load(settings.library);
      loaded.set(app.name, lib);
      good.push(settings);
      logger.info('extension loaded', {
        app: app.name,
        file: settings.library,
        description: lib.version.description,
        version: `${lib.version.major}.${lib.version.minor}`,
      });
    } catch (err) {
      const reason = err instanceof ExtensionLoadError ? err.message : `${settings.library}: ${(err as Error).message}`;
      failed.set(app.name, reason);
      logger.error('extension failed to load; its requests will get 503', {
        app: app.name,
        file: settings.library,
        code: err instanceof ExtensionLoadError ? err.code : 'ERR_EXTENSION_LOAD',
        reason,
      });
    }
  }

  const telemetry = new BridgeTelemetry();
  const pool = new ThreadPool(
    {
      threads: Math.max(1, options.threads ?? 4),
      ...(options.runningThreads !== undefined ? { runningThreads: options.runningThreads } : {}),
      apps: good,
      shimPath: options.shimPath ?? defaultShimPath(),
      serverSoftware: DEFAULT_SERVER_SOFTWARE,
      siteRoot: path.resolve(options.siteRoot ?? process.cwd()),
      outputWindow: options.outputWindow ?? DEFAULT_OUTPUT_WINDOW,
    },
    {
      out: (key, pieces, end, op, free) => server.output(key, pieces, end, op, free),
      segments: (key, segments, op) => server.segments(key, segments, op),
      unhealthy: (key, reason) => server.reportUnhealthy(reason, key),
      stats: (batch) => telemetry.apply(batch),
      log: (level, msg, fields) => logger.log(level, msg, fields),
      threadExit: (slot, code, keys) => {
        logger.error('extension thread exited', { thread: slot, code, requests: keys.length });
        server.threadDied(keys);
      },
    },
  );
  const server: BridgeServer = new BridgeServer({
    apps: good,
    failedApps: failed,
    pool,
    logger,
    secret: options.secret,
    inputWindow: options.inputWindow ?? 1024 * 1024,
    onShutdownRequest: options.onShutdownRequest,
    onSpoolSlotsRetired: (count) => telemetry.metrics.spoolSlotsRetired.inc(count),
    onSpoolSlotsReclaimed: (count) => telemetry.metrics.spoolSlotsReclaimed.inc(count),
  });
  server.setMetricsSource(() => telemetry.snapshot());
  if (good.length > 0) await pool.start();
  const tls: TransportTlsServer | undefined = options.tls && {
    ...options.tls,
    onClientError: (err, remote) =>
      logger.warn('TLS handshake with a gateway failed', { remote, code: err.code ?? 'ERR_TLS', error: err.message }),
  };
  const address = await server.listen(parseTransportAddress(options.listen), tls);
  logger.info('bridge listening', {
    address: formatTransportAddress(address),
    apps: good.length,
    failed: failed.size,
    ...(tls ? { tls: tls.requireClientCert ? 'mutual' : 'server' } : {}),
  });

  let stopped = false;
  return {
    address,
    server,
    loaded,
    failed,
    async stop(deadlineMs = 10000): Promise<void> {
      if (stopped) return;
      stopped = true;
      const drained = await server.drain(deadlineMs);
      if (!drained) logger.warn('shutdown deadline passed with requests in flight', { inFlight: server.inFlight });
      await pool.stop();
      // Only now can no ECB be alive: TerminateExtension, but keep the libraries mapped until exit.
      if (drained) {
        for (const [name, lib] of loaded) {
          const ok = lib.terminate();
          logger.info('extension terminated', { app: name, result: ok });
        }
      }
    },
  };
}
