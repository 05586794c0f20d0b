/**
 * From a bridge's configuration to a running BridgePool: which processes to
 * start and how (native or under Wine), on which addresses, with which apps.
 * Used at start-up and again by a config reload for bridges that changed.
 */
import crypto from 'node:crypto';
import type { Logger } from '../bridge/log';
import type { BridgeAppConfig } from '../bridge/main';
import { BridgePool, memberAddress } from './bridge-pool';
import type { AppConfig, BridgeConfig, GatewayConfig } from './config';
import { freeLoopbackPort, wineBridgeLaunch } from './wine-bridge';

export function bridgeApp(app: AppConfig): BridgeAppConfig {
  return {
    name: app.name,
    library: app.library,
    mount: app.mount,
    physicalPath: app.physicalPath,
    readAhead: app.readAhead,
    responseBufferLimit: app.responseBufferLimit,
    maxConcurrency: app.maxConcurrency,
    ...(app.maxQueue !== undefined ? { maxQueue: app.maxQueue } : {}),
    ...(app.relayCallbacks ? { relayCallbacks: true } : {}),
    ...(app.pendingTimeoutMs !== undefined ? { pendingTimeoutMs: app.pendingTimeoutMs } : {}),
  };
}

/**
 * Everything about a bridge that needs new processes when it changes: its own
 * settings and its apps. A reload keeps a bridge whose signature is unchanged.
 */
export function bridgeSignature(b: BridgeConfig, config: GatewayConfig): string {
  const apps = config.apps.filter((a) => a.bridge === b.name).map(bridgeApp);
  return JSON.stringify({ b, apps, siteRoot: config.siteRoot });
}

export interface BridgeFactoryOptions {
  logger: Logger;
  /** Override how local bridges are launched (tests). */
  bridgeCommand?: { file: string; args: string[] };
}

export async function startBridgePool(b: BridgeConfig, config: GatewayConfig, opts: BridgeFactoryOptions): Promise<BridgePool> {
  const { logger } = opts;
  const apps = config.apps.filter((a) => a.bridge === b.name).map(bridgeApp);
  const drainTimeoutMs = config.shutdownTimeoutMs;
  if (b.mode !== 'local') {
    // A remote bridge is not restarted by us: one connect attempt per request, as before, then 503.
    const pool = new BridgePool({
      name: b.name,
      apps,
      logger,
      secret: b.secret,
      ...(b.tls ? { tls: b.tls } : {}),
      maxConnections: b.maxConnections,
      drainTimeoutMs,
      remoteAddress: b.address!,
      waitForBridgeMs: 0,
    });
    await pool.start();
    return pool;
  }
  // Windows DLLs on Linux: Windows node.exe under Wine, on loopback TCP with a fresh secret per start.
  const wine = b.runtime === 'wine' && process.platform !== 'win32';
  const secret = wine ? (b.secret ?? crypto.randomBytes(32).toString('base64url')) : b.secret;
  const fixedTcp = b.address?.startsWith('tcp://') ?? false;
  const address = async (slot: number, generation: number): Promise<string | undefined> => {
    if (b.address) return memberAddress(b.address, slot, generation);
    return wine ? `tcp://127.0.0.1:${await freeLoopbackPort()}` : undefined;
  };
  if (wine) logger.info('starting bridge under Wine', { bridge: b.name, processes: b.processes });
  const pool = new BridgePool({
    name: b.name,
    apps,
    logger,
    secret,
    maxConnections: b.maxConnections,
    drainTimeoutMs,
    local: {
      processes: b.processes,
      recycle: {
        afterRequests: b.recycleAfterRequests,
        aboveRssBytes: b.recycleAboveRssBytes,
        memoryCheckIntervalMs: b.memoryCheckIntervalMs,
      },
      address,
      overlap: !fixedTcp,
      bridge: {
        workers: b.workers,
        schedBatch: b.schedBatch,
        ...(b.runningThreads !== undefined ? { runningThreads: b.runningThreads } : {}),
        siteRoot: config.siteRoot,
        command: wine ? wineBridgeLaunch(drainTimeoutMs) : opts.bridgeCommand,
        ...(wine ? { readyTimeoutMs: 60000 } : {}),
      },
    },
  });
  await pool.start();
  return pool;
}
