/**
 * The bridge's pool of extension threads and its scheduler: like an IIS thread
 * pool, a fixed number of threads run HttpExtensionProc; each app may occupy at
 * most `maxConcurrency` of them, and requests beyond that wait in a FIFO queue
 * per app. A thread is busy from dispatch until HttpExtensionProc returns
 * (a PENDING request no longer holds a thread).
 */
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import type { AppSettings } from './request-info';
import type { StatsBatch } from './live-metrics';
import type { MainToWorker, OutputSegment, WorkerInit, WorkerToMain, LogLevel } from './thread-messages';

export interface ThreadPoolOptions {
  threads: number;
  apps: AppSettings[];
  shimPath: string;
  serverSoftware: string;
  siteRoot: string;
  outputWindow: number;
}

/** A request waiting for, or running on, an extension thread. */
export interface Dispatchable {
  readonly key: number;
  readonly appName: string;
  /** Builds the run message; called once, when a thread is assigned. */
  runMessage(): Extract<MainToWorker, { t: 'run' }>;
  /** Transfer list for the run message. */
  transfer(): ArrayBuffer[];
  thread?: ExtensionThreadHandle;
}

export interface PoolEvents {
  out(key: number, bytes: Uint8Array, end: boolean, op?: number): void;
  segments(key: number, segments: OutputSegment[], op: number): void;
  unhealthy(key: number, reason: string): void;
  stats(batch: StatsBatch): void;
  log(level: LogLevel, msg: string, fields?: Record<string, string | number | boolean>): void;
  /** A thread died (an extension threw from native code or the worker crashed). */
  threadExit(slot: number, code: number, keys: number[]): void;
}

export class ExtensionThreadHandle {
  busyWith: Dispatchable | undefined;
  /** Requests this thread owns (running or PENDING), so a crash can fail exactly those. */
  readonly owned = new Set<number>();
  readonly signal: Int32Array;

  constructor(
    readonly slot: number,
    readonly worker: Worker,
    signal: SharedArrayBuffer,
  ) {
    this.signal = new Int32Array(signal);
  }

  send(msg: MainToWorker, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(msg, transfer);
    this.wake();
  }

  /** Wakes the thread if it is blocked in a synchronous WriteClient/ReadClient. */
  wake(): void {
    Atomics.add(this.signal, 0, 1);
    Atomics.notify(this.signal, 0);
  }
}

export class ThreadPool {
  private readonly threads: ExtensionThreadHandle[] = [];
  private readonly idle: ExtensionThreadHandle[] = [];
  private readonly queues = new Map<string, Dispatchable[]>();
  private readonly running = new Map<string, number>();
  private readonly limits = new Map<string, number>();
  private readonly pendingKeys = new Map<number, ExtensionThreadHandle>();
  private rr = 0;
  private stopped = false;

  constructor(
    private readonly options: ThreadPoolOptions,
    private readonly events: PoolEvents,
  ) {
    for (const app of options.apps) {
      this.queues.set(app.name, []);
      this.running.set(app.name, 0);
      this.limits.set(app.name, Math.max(1, app.maxConcurrency));
    }
  }

  /**
   * Resolves as soon as one extension thread is ready: a bridge restarted after a crash
   * serves again without waiting for its whole pool (the others join as they come up).
   */
  async start(): Promise<void> {
    const ready: Promise<void>[] = [];
    for (let i = 0; i < this.options.threads; i++) ready.push(this.spawn(i + 1));
    await Promise.any(ready).catch(() => Promise.all(ready));
    for (const [i, p] of ready.entries()) {
      p.catch((err: Error) => this.events.log('error', 'extension thread failed to start', { thread: i + 1, error: err.message }));
    }
  }

  private spawn(slot: number): Promise<void> {
    const signal = new SharedArrayBuffer(4);
    const init: WorkerInit = {
      slot,
      apps: this.options.apps,
      shimPath: this.options.shimPath,
      signal,
      serverSoftware: this.options.serverSoftware,
      siteRoot: this.options.siteRoot,
      outputWindow: this.options.outputWindow,
    };
    const worker = new Worker(path.join(__dirname, 'worker.js'), { workerData: init, stdout: false, stderr: false });
    const handle = new ExtensionThreadHandle(slot, worker, signal);
    this.threads.push(handle);
    return new Promise((resolve, reject) => {
      let ready = false;
      worker.on('message', (msg: WorkerToMain) => {
        switch (msg.t) {
          case 'out':
            this.events.out(msg.key, msg.bytes, msg.end, msg.op);
            if (msg.end) this.finished(handle, msg.key);
            return;
          case 'segments':
            this.events.segments(msg.key, msg.segments, msg.op);
            return;
          case 'unhealthy':
            this.events.unhealthy(msg.key, msg.reason);
            return;
          case 'stats':
            this.events.stats(msg.batch);
            return;
          case 'returned':
            this.returned(handle, msg.key, msg.pending);
            return;
          case 'log':
            this.events.log(msg.level, msg.msg, { thread: slot, ...msg.fields });
            return;
          case 'ready':
            ready = true;
            this.idle.push(handle);
            this.schedule();
            resolve();
            return;
          case 'fatal':
            reject(new Error(`extension thread ${slot} failed to start: ${msg.msg}`));
            return;
        }
      });
      worker.on('error', (err) => {
        this.events.log('error', 'extension thread crashed', { thread: slot, error: err.message });
      });
      worker.on('exit', (code) => {
        const keys = [...handle.owned];
        this.removeThread(handle);
        if (!ready) reject(new Error(`extension thread ${slot} exited with code ${code} before it was ready`));
        else if (!this.stopped) this.events.threadExit(slot, code, keys);
      });
    });
  }

  private removeThread(handle: ExtensionThreadHandle): void {
    const i = this.threads.indexOf(handle);
    if (i >= 0) this.threads.splice(i, 1);
    const j = this.idle.indexOf(handle);
    if (j >= 0) this.idle.splice(j, 1);
  }

  submit(req: Dispatchable): void {
    const queue = this.queues.get(req.appName);
    if (!queue) throw new Error(`no app named ${req.appName}`);
    queue.push(req);
    this.schedule();
  }

  /** Removes a request that has not started yet (its client left while queued). */
  cancel(req: Dispatchable): boolean {
    const queue = this.queues.get(req.appName);
    const i = queue ? queue.indexOf(req) : -1;
    if (i < 0) return false;
    queue!.splice(i, 1);
    return true;
  }

  queued(appName: string): number {
    return this.queues.get(appName)?.length ?? 0;
  }

  threadFor(key: number): ExtensionThreadHandle | undefined {
    return this.pendingKeys.get(key);
  }

  private schedule(): void {
    const apps = [...this.queues.keys()];
    while (this.idle.length > 0) {
      let picked: Dispatchable | undefined;
      for (let n = 0; n < apps.length && !picked; n++) {
        const app = apps[(this.rr + n) % apps.length]!;
        const queue = this.queues.get(app)!;
        if (queue.length > 0 && this.running.get(app)! < this.limits.get(app)!) {
          picked = queue.shift();
          this.rr = (this.rr + n + 1) % apps.length;
        }
      }
      if (!picked) return;
      const thread = this.idle.pop()!;
      thread.busyWith = picked;
      thread.owned.add(picked.key);
      picked.thread = thread;
      this.pendingKeys.set(picked.key, thread);
      this.running.set(picked.appName, this.running.get(picked.appName)! + 1);
      thread.send(picked.runMessage(), picked.transfer());
    }
  }

  private release(thread: ExtensionThreadHandle): void {
    const req = thread.busyWith;
    if (!req) return;
    thread.busyWith = undefined;
    this.running.set(req.appName, this.running.get(req.appName)! - 1);
    if (this.threads.includes(thread)) this.idle.push(thread);
    this.schedule();
  }

  private returned(thread: ExtensionThreadHandle, key: number, pending: boolean): void {
    if (pending && thread.busyWith?.key === key) this.release(thread);
  }

  private finished(thread: ExtensionThreadHandle, key: number): void {
    thread.owned.delete(key);
    this.pendingKeys.delete(key);
    if (thread.busyWith?.key === key) this.release(thread);
  }

  get size(): number {
    return this.threads.length;
  }

  get busy(): number {
    return this.threads.filter((t) => t.busyWith).length;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }
}
