/**
 * A bridge process the gateway starts and supervises: spawned with the apps of
 * its config, watched, restarted with backoff if it dies (an extension that
 * crashes takes only its own bridge down, never the gateway).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../bridge/log';
import type { BridgeAppConfig } from '../bridge/main';
import { parseTransportAddress } from '../bridge/transport';

export interface LocalBridgeOptions {
  name: string;
  /** Transport address to listen on; a private Unix socket (or named pipe on Windows) by default. */
  address?: string;
  apps: BridgeAppConfig[];
  workers: number;
  /** Written to the bridge's config file: see bridge/sched-batch.ts. */
  schedBatch: boolean;
  /** Written to the bridge's config file: see bridge/thread-pool.ts. */
  runningThreads?: number;
  siteRoot: string;
  secret?: string;
  logger: Logger;
  /** Node executable and bridge entry point (tests and the Wine mode override them). */
  command?: { file: string; args: string[] };
  readyTimeoutMs?: number;
  /** Log label, e.g. "default#2" for the second process of a pool; the bridge name by default. */
  label?: string;
}

/** A bridge that stayed up this long is healthy again: its next crash restarts it at once. */
const STABLE_UPTIME_MS = 10000;
const MAX_RESTART_DELAY_MS = 10000;

/** Restart delay after `crashes` consecutive crashes: the first restarts at once, a crash loop backs off. */
export function restartDelay(crashes: number): number {
  if (crashes <= 1) return 0;
  return Math.min(MAX_RESTART_DELAY_MS, 100 * 2 ** (crashes - 2));
}

export function defaultBridgeAddress(name: string): string {
  if (process.platform === 'win32') return `pipe:isapi-gateway-${process.pid}-${name}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'isapi-gateway-'));
  fs.chmodSync(dir, 0o700);
  return `unix:${path.join(dir, `${name}.sock`)}`;
}

export class LocalBridge extends EventEmitter {
  readonly address: string;
  private child: ChildProcess | undefined;
  private stopping = false;
  private restarts = 0;
  /** Crashes since the bridge last stayed up for STABLE_UPTIME_MS. */
  private crashes = 0;
  private upSince = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly label: string;
  private configFile: string;
  up = false;

  constructor(private readonly opts: LocalBridgeOptions) {
    super();
    this.address = opts.address ?? defaultBridgeAddress(opts.name);
    this.label = opts.label ?? opts.name;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'isapi-bridge-config-'));
    this.configFile = path.join(dir, `${opts.name}.json`);
    fs.writeFileSync(this.configFile, JSON.stringify({ apps: opts.apps, threads: opts.workers, runningThreads: opts.runningThreads, siteRoot: opts.siteRoot, schedBatch: opts.schedBatch }), { mode: 0o600 });
    if (opts.secret) fs.writeFileSync(this.configFile + '.secret', opts.secret, { mode: 0o600 });
  }

  get restartCount(): number {
    return this.restarts;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    this.spawnChild();
    await this.waitReady();
  }

  private spawnChild(): void {
    const entry = this.opts.command ?? { file: process.execPath, args: [path.join(__dirname, '..', 'bridge', 'cli.js')] };
    const args = [...entry.args, '--listen', this.address, '--config', this.configFile];
    if (this.opts.secret) args.push('--secret-file', this.configFile + '.secret');
    const child = spawn(entry.file, args, {
      stdio: ['pipe', 'inherit', 'inherit'],
      env: { ...process.env, ISAPI_BRIDGE_SUPERVISED: '1' },
    });
    this.child = child;
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.up = false;
      this.emit('down');
      this.emit('exit', code, signal);
      if (this.stopping) return;
      this.restarts++;
      this.crashes = this.upSince > 0 && Date.now() - this.upSince >= STABLE_UPTIME_MS ? 1 : this.crashes + 1;
      this.upSince = 0;
      const delay = restartDelay(this.crashes);
      this.opts.logger.error('bridge process exited; restarting', {
        bridge: this.label,
        pid: child.pid,
        code: code ?? -1,
        signal: signal ?? '',
        crashes: this.crashes,
        inMs: delay,
      });
      this.restartTimer = setTimeout(() => {
        this.restartTimer = undefined;
        if (this.stopping) return;
        this.spawnChild();
        this.waitReady().then(
          () => this.opts.logger.info('bridge process restarted', { bridge: this.label, pid: this.child?.pid }),
          // A bridge that exits during start-up is restarted by its exit handler; one that hangs is killed.
          (err: Error) => {
            this.opts.logger.error('bridge restart failed', { bridge: this.label, error: err.message });
            if (this.child && this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
          },
        );
      }, delay);
    });
  }

  /** Ready once the bridge accepts connections on its address. */
  private async waitReady(): Promise<void> {
    const target = parseTransportAddress(this.address);
    const deadline = Date.now() + (this.opts.readyTimeoutMs ?? 15000);
    const child = this.child;
    while (Date.now() < deadline) {
      if (!child || child.exitCode !== null || child.signalCode !== null) throw new Error(`bridge ${this.opts.name} exited during start-up`);
      const ok = await new Promise<boolean>((resolve) => {
        const socket =
          target.kind === 'tcp' ? net.connect({ host: target.host, port: target.port }) : net.connect({ path: target.path });
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
      if (ok) {
        this.up = true;
        this.upSince = Date.now();
        this.emit('up');
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`bridge ${this.opts.name} did not start listening on ${this.address} in time`);
  }

  /**
   * Graceful stop: `requestShutdown` (the SHUTDOWN frame: the bridge drains, calls
   * TerminateExtension and exits 0; works under Wine, where SIGTERM kills node at
   * once), else SIGTERM; SIGKILL once the deadline has passed.
   */
  async stop(deadlineMs = 15000, requestShutdown?: () => Promise<void>): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const timer = setTimeout(() => {
      this.opts.logger.warn('bridge did not stop in time; killing it', { bridge: this.label, pid: child.pid });
      child.kill('SIGKILL');
    }, deadlineMs);
    let asked = false;
    if (requestShutdown && this.up) {
      try {
        await requestShutdown();
        asked = true;
      } catch (err) {
        this.opts.logger.warn('SHUTDOWN could not be sent; using SIGTERM', { bridge: this.label, error: (err as Error).message });
      }
    }
    if (!asked && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    clearTimeout(timer);
  }
}
