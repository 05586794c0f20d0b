/**
 * The processes that serve one configured bridge, and which of them gets the
 * next request.
 *
 * A local bridge runs as `processes` separate bridge processes (multi-core, and a
 * crash takes only one of them down); each request goes to the one with the
 * fewest requests in flight. A process is recycled after `recycleAfterRequests`
 * requests, when it reports itself unhealthy (HSE_REQ_REPORT_UNHEALTHY ->
 * UNHEALTHY frame) or when its resident memory passes `recycleAboveRssBytes`,
 * always with drain: a replacement starts first, new requests go to it, the old
 * process finishes what it has in flight and is then sent SHUTDOWN. No request
 * is lost. A remote bridge is a pool of one member without a process.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../bridge/log';
import type { BridgeAppConfig } from '../bridge/main';
import type { BridgeStatus } from '../bridge/wire';
import type { TransportTlsClient } from '../bridge/transport';
import { BridgeClient, BridgeUnavailableError, type BridgeConnection } from './bridge-client';
import { LocalBridge, type LocalBridgeOptions } from './local-bridge';

/** What an ISAPI exchange needs to reach a bridge. */
export interface ConnectionSource {
  acquire(): Promise<BridgeConnection>;
}

export interface RecyclePolicy {
  /** Recycle a process after it has been given this many requests. */
  afterRequests?: number;
  /** Recycle a process whose VmRSS exceeds this many bytes (checked every memoryCheckIntervalMs). */
  aboveRssBytes?: number;
  memoryCheckIntervalMs?: number;
}

export interface BridgePoolOptions {
  name: string;
  apps: BridgeAppConfig[];
  logger: Logger;
  secret?: string;
  /** Remote tcp:// bridge: TLS towards it (the bridge certificate is verified against `ca`). */
  tls?: TransportTlsClient;
  maxConnections: number;
  /** How long a request may wait for a bridge process to be up (start-up, restart) before 503. */
  waitForBridgeMs?: number;
  /** How long a recycled process may take to finish its in-flight requests. */
  drainTimeoutMs: number;
  /** Remote bridge: connect here, start nothing. */
  remoteAddress?: string;
  /** Local bridge: processes to run and how to start each of them. */
  local?: {
    processes: number;
    recycle: RecyclePolicy;
    /** Address for a process; undefined = a private Unix socket (or named pipe). */
    address: (slot: number, generation: number) => Promise<string | undefined>;
    /** Everything else LocalBridge needs. */
    bridge: Omit<LocalBridgeOptions, 'name' | 'address' | 'apps' | 'logger' | 'secret' | 'label'>;
    /** False when a replacement cannot listen next to the old process (a fixed TCP port): drain first, then start. */
    overlap: boolean;
  };
}

export type RecycleReason = 'requests' | 'unhealthy' | 'memory';

/** Restart and recycle counts of a pool since it started, by the metric's reason label. */
export type RestartCounts = Record<'crash' | 'exit' | 'unhealthy' | 'recycle', number>;

class Member {
  /** Requests handed to this process (for recycleAfterRequests). */
  requests = 0;
  state: 'active' | 'replacing' | 'draining' | 'stopped' = 'active';

  constructor(
    readonly slot: number,
    readonly generation: number,
    readonly client: BridgeClient,
    readonly local: LocalBridge | undefined,
  ) {}

  get label(): string {
    return `${this.client.name}#${this.slot}.${this.generation}`;
  }

  /** Accepting new requests right now. */
  get usable(): boolean {
    return (this.state === 'active' || this.state === 'replacing') && (this.local ? this.local.up : true);
  }
}

/** VmRSS of a process in bytes, or undefined where /proc is not available. */
export function readRssBytes(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export class BridgePool implements ConnectionSource {
  readonly name: string;
  private readonly slots: Member[] = [];
  private readonly retiring = new Set<Member>();
  private readonly upWaiters = new Set<() => void>();
  private memoryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private recycles = 0;
  private readonly restarts: RestartCounts = { crash: 0, exit: 0, unhealthy: 0, recycle: 0 };

  constructor(private readonly opts: BridgePoolOptions) {
    this.name = opts.name;
  }

  get isLocal(): boolean {
    return this.opts.local !== undefined;
  }

  /** Processes replaced with drain so far. */
  get recycleCount(): number {
    return this.recycles;
  }

  /** At least one process accepts requests. */
  get up(): boolean {
    return this.slots.some((m) => m.usable);
  }

  /** Restarts and recycles so far, for isapi_bridge_restarts_total. */
  get restartCounts(): Readonly<RestartCounts> {
    return this.restarts;
  }

  /** Connections carrying a request right now, over all processes. */
  get connectionsInUse(): number {
    return [...this.slots, ...this.retiring].reduce((n, m) => n + m.client.inUse, 0);
  }

  /** Response bytes clients are still being written from the processes' spools (gateway/spool-mapping.ts). */
  get spoolHeldBytes(): number {
    return [...this.slots, ...this.retiring].reduce((n, m) => n + m.client.spoolFiles.heldBytes, 0);
  }

  /** One metrics source per running process, labelled like the pool's logs (`name#slot.generation`). */
  metricSources(): Array<{ bridge: string; snapshot(signal: AbortSignal): Promise<unknown> }> {
    return this.slots
      .filter((m) => m.usable)
      .map((m) => ({ bridge: m.label, snapshot: (signal: AbortSignal) => m.client.metrics(signal) }));
  }

  /** PIDs of the running processes, including those draining. */
  pids(): number[] {
    return [...this.slots, ...this.retiring].flatMap((m) => (m.local?.pid !== undefined ? [m.local.pid] : []));
  }

  /** Requests in flight on this bridge, as the gateway counts them. */
  get load(): number {
    return [...this.slots, ...this.retiring].reduce((n, m) => n + m.client.load, 0);
  }

  async start(): Promise<void> {
    const local = this.opts.local;
    if (!local) {
      this.slots.push(new Member(0, 0, this.client(this.opts.remoteAddress!, 0, 0), undefined));
      return;
    }
    const members = await Promise.allSettled(Array.from({ length: local.processes }, (_, slot) => this.startMember(slot, 0)));
    const failed = members.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    for (const r of members) if (r.status === 'fulfilled') this.slots[r.value.slot] = r.value;
    if (failed) {
      await this.stop(2000);
      throw failed.reason;
    }
    const policy = local.recycle;
    if (policy.aboveRssBytes !== undefined) {
      this.memoryTimer = setInterval(() => this.checkMemory(policy.aboveRssBytes!), policy.memoryCheckIntervalMs ?? 5000);
      this.memoryTimer.unref();
    }
  }

  private client(address: string, slot: number, generation: number): BridgeClient {
    const client = new BridgeClient({
      name: this.opts.name,
      address,
      secret: this.opts.secret,
      ...(this.opts.tls ? { tls: this.opts.tls } : {}),
      maxConnections: this.opts.maxConnections,
      logger: this.opts.logger,
      onUnhealthy: (reason) => {
        const member = this.slots[slot];
        if (member && member.generation === generation) this.recycle(member, 'unhealthy', reason);
      },
    });
    return client;
  }

  private async startMember(slot: number, generation: number): Promise<Member> {
    const local = this.opts.local!;
    const address = await local.address(slot, generation);
    const label = `${this.opts.name}#${slot}.${generation}`;
    const bridge = new LocalBridge({
      ...local.bridge,
      name: local.processes > 1 || generation > 0 ? `${this.opts.name}-${slot}-${generation}` : this.opts.name,
      label,
      address,
      apps: this.opts.apps,
      secret: this.opts.secret,
      logger: this.opts.logger,
    });
    const member = new Member(slot, generation, this.client(bridge.address, slot, generation), bridge);
    // A restart after a crash: idle connections died with the process; waiters retry elsewhere.
    bridge.on('down', () => member.client.closeIdle('bridge process exited'));
    // A signal (segfault, abort, kill) is a crash; an exit code is the process leaving on its own.
    bridge.on('exit', (_code: number | null, signal: NodeJS.Signals | null) => {
      if (!this.stopped && member.state === 'active') this.restarts[signal ? 'crash' : 'exit']++;
    });
    bridge.on('up', () => this.notifyUp());
    try {
      await bridge.start();
    } catch (err) {
      await bridge.stop(1000);
      throw err;
    }
    this.opts.logger.info('bridge process ready', { bridge: label, pid: bridge.pid });
    return member;
  }

  private notifyUp(): void {
    for (const wake of [...this.upWaiters]) wake();
  }

  private waitForUp(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.upWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.upWaiters.add(done);
    });
  }

  /** The usable member with the fewest requests in flight. */
  private pick(): Member | undefined {
    let best: Member | undefined;
    for (const m of this.slots) {
      if (!m?.usable) continue;
      if (!best || m.client.load < best.client.load) best = m;
    }
    return best;
  }

  /**
   * A connection to the least busy process. While no process is up (start-up, a
   * restart after a crash, a recycle without overlap) the request waits for one,
   * up to waitForBridgeMs; a connect that fails (nothing was sent) is retried.
   */
  async acquire(): Promise<BridgeConnection> {
    const deadline = Date.now() + (this.opts.waitForBridgeMs ?? 10000);
    let lastError = 'no bridge process is up';
    for (;;) {
      if (this.stopped) throw new BridgeUnavailableError(this.name, 'the gateway is shutting down');
      const member = this.pick();
      if (member) {
        try {
          const conn = await member.client.acquire();
          member.requests++;
          this.checkRequests(member);
          return conn;
        } catch (err) {
          if (!(err instanceof BridgeUnavailableError)) throw err;
          lastError = err.reason;
        }
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new BridgeUnavailableError(this.name, lastError);
      // Wake on the next 'up', or poll: a process that died may not have been noticed yet.
      await this.waitForUp(Math.min(left, member ? 25 : 250));
    }
  }

  private checkRequests(member: Member): void {
    const limit = this.opts.local?.recycle.afterRequests;
    if (limit !== undefined && member.requests >= limit) this.recycle(member, 'requests', `${member.requests} requests served`);
  }

  private checkMemory(limit: number): void {
    for (const m of this.slots) {
      const pid = m?.state === 'active' ? m.local?.pid : undefined;
      if (pid === undefined || !m!.local!.up) continue;
      const rss = readRssBytes(pid);
      if (rss !== undefined && rss > limit) this.recycle(m!, 'memory', `resident memory ${rss} bytes exceeds ${limit}`);
    }
  }

  /** Replaces a process with drain. Does nothing if it is already being replaced. */
  recycle(member: Member, reason: RecycleReason, detail: string): void {
    if (this.stopped || !this.opts.local || member.state !== 'active' || this.slots[member.slot] !== member) return;
    member.state = 'replacing';
    this.restarts[reason === 'unhealthy' ? 'unhealthy' : 'recycle']++;
    this.opts.logger.info('recycling bridge process', { bridge: member.label, pid: member.local?.pid, reason, detail });
    void this.replace(member, reason);
  }

  private async replace(old: Member, reason: RecycleReason): Promise<void> {
    const local = this.opts.local!;
    if (!local.overlap) {
      // The replacement needs the old one's address: drain it first (requests wait for the new one).
      this.retire(old);
      await this.drainAndStop(old);
    }
    let next: Member;
    try {
      next = await this.startMember(old.slot, old.generation + 1);
    } catch (err) {
      this.opts.logger.error('replacement bridge process failed to start; keeping the old one', {
        bridge: old.label,
        reason,
        error: (err as Error).message,
      });
      if (local.overlap && !this.stopped) old.state = 'active';
      return;
    }
    if (this.stopped) {
      await next.local?.stop(1000, () => next.client.shutdown());
      return;
    }
    this.slots[old.slot] = next;
    this.recycles++;
    this.notifyUp();
    if (local.overlap) {
      this.retire(old);
      await this.drainAndStop(old);
    }
  }

  private retire(member: Member): void {
    member.state = 'draining';
    this.retiring.add(member);
    // Idle connections close now, busy ones when their request ends; waiters go to other processes.
    member.client.retire('bridge process recycled');
  }

  private async drainAndStop(member: Member, deadlineMs = this.opts.drainTimeoutMs): Promise<void> {
    const until = Date.now() + deadlineMs;
    while (member.client.inUse > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const pid = member.local?.pid;
    await member.local?.stop(Math.max(1000, until - Date.now()), () => member.client.shutdown());
    member.state = 'stopped';
    this.retiring.delete(member);
    this.opts.logger.info('bridge process retired', { bridge: member.label, pid });
  }

  /** What the bridge processes say about themselves (failed apps), merged; unreachable ones reported as down. */
  async status(timeoutMs = 2000): Promise<{ up: number; down: number; failedApps: Map<string, string> }> {
    const failedApps = new Map<string, string>();
    let up = 0;
    let down = 0;
    await Promise.all(
      this.slots.map(async (m) => {
        if (!m?.usable) {
          down++;
          return;
        }
        try {
          const s: BridgeStatus = await m.client.status(timeoutMs);
          up++;
          for (const [app, why] of s.failedApps) failedApps.set(app, why);
        } catch {
          down++;
        }
      }),
    );
    return { up, down, failedApps };
  }

  /** Stops every process (SHUTDOWN: drain, TerminateExtension, exit), SIGKILL after the deadline. */
  async stop(deadlineMs: number): Promise<void> {
    this.stopped = true;
    if (this.memoryTimer) clearInterval(this.memoryTimer);
    this.notifyUp();
    const all = [...this.slots.filter(Boolean), ...this.retiring];
    await Promise.all(
      all.map(async (m) => {
        if (!this.retiring.has(m)) this.retire(m);
        await this.drainAndStop(m, deadlineMs);
      }),
    );
  }
}

/**
 * Address of one process of a local bridge with a configured `listen`: slot 0 of
 * the first generation keeps it as written; the others get a suffix so a
 * replacement can listen while the process it replaces drains.
 */
export function memberAddress(listen: string, slot: number, generation: number): string {
  if (slot === 0 && generation === 0) return listen;
  const suffix = `-${slot}-${generation}`;
  if (listen.startsWith('unix:')) {
    const file = listen.slice(5);
    const ext = path.extname(file);
    return `unix:${file.slice(0, file.length - ext.length)}${suffix}${ext}`;
  }
  if (listen.startsWith('pipe:')) return listen + suffix;
  return listen; // tcp: one fixed port (the pool drains before it restarts, see `overlap`)
}
