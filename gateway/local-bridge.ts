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
  siteRoot: string;
  secret?: string;
  logger: Logger;
  /** Node executable and bridge entry point (tests and the Wine mode override them). */
  command?: { file: string; args: string[] };
  readyTimeoutMs?: number;
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
  private configFile: string;
  up = false;

  constructor(private readonly opts: LocalBridgeOptions) {
    super();
    this.address = opts.address ?? defaultBridgeAddress(opts.name);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'isapi-bridge-config-'));
    this.configFile = path.join(dir, `${opts.name}.json`);
    fs.writeFileSync(this.configFile, JSON.stringify({ apps: opts.apps, threads: opts.workers, siteRoot: opts.siteRoot }), { mode: 0o600 });
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
      this.up = false;
      this.emit('down');
      if (this.stopping) return;
      this.restarts++;
      const delay = Math.min(5000, 100 * 2 ** Math.min(this.restarts - 1, 6));
      this.opts.logger.error('bridge process exited; restarting', { bridge: this.opts.name, code: code ?? -1, signal: signal ?? '', inMs: delay });
      setTimeout(() => {
        if (this.stopping) return;
        this.spawnChild();
        this.waitReady().catch((err: Error) => this.opts.logger.error('bridge restart failed', { bridge: this.opts.name, error: err.message }));
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
        this.emit('up');
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`bridge ${this.opts.name} did not start listening on ${this.address} in time`);
  }

  /** SIGTERM (the bridge drains and calls TerminateExtension), SIGKILL after the deadline. */
  async stop(deadlineMs = 15000): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), deadlineMs);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }
}
