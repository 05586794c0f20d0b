/**
 * The bridge's pool of extension threads and its scheduler: like an IIS thread
 * pool, a fixed number of threads run HttpExtensionProc; each app may occupy at
 * most `maxConcurrency` of them, and requests beyond that wait in a FIFO queue
 * per app. A thread is busy from dispatch until HttpExtensionProc returns
 * (a PENDING request no longer holds a thread).
 *
 * When every thread is busy, a request whose whole body is already at hand may be
 * handed to a busy thread in advance (`prefetch` per thread), so a thread that
 * finishes goes straight on to its next request without a round trip through this
 * thread: on a loaded bridge that halves the wake-ups per request. Which thread runs
 * it is still decided first-come: a thread that falls idle takes such a request back
 * from the thread it waits on (RequestSlot.START), so nothing waits behind a slow
 * extension call while a thread is free, as with IIS's shared completion port.
 */
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import type { AppSettings } from './request-info';
import type { StatsBatch } from './live-metrics';
import { SlotArena, createArenaMemory } from './slot-arena';
import { RequestSlot, type MainToWorker, type BodyPart, type OutputSegment, type WorkerInit, type WorkerToMain, type LogLevel } from './thread-messages';

export interface ThreadPoolOptions {
  threads: number;
  apps: AppSettings[];
  shimPath: string;
  serverSoftware: string;
  siteRoot: string;
  outputWindow: number;
  /** Requests a busy thread may hold in advance (0: hand requests to idle threads only). */
  prefetch?: number;
}

/** A request waiting for, or running on, an extension thread. */
export interface Dispatchable {
  readonly key: number;
  readonly appName: string;
  /** The request's shared Int32 slots (RequestSlot). */
  readonly slots: Int32Array;
  /** True when nothing but the run message has to reach the thread (the whole body is in it). */
  readonly selfContained: boolean;
  /** The run message; the same each time it is asked for. */
  runMessage(): Extract<MainToWorker, { t: 'run' }>;
  /** Transfer list for the run message; after it has been sent with it, runMessage() must not be sent again. */
  transfer(): ArrayBuffer[];
  thread?: ExtensionThreadHandle;
}

export interface PoolEvents {
  /** `written` must be called once the socket has taken the bytes (it frees their arena slots). */
  out(key: number, parts: Uint8Array[], end: boolean, op: number | undefined, written: () => void): void;
  segments(key: number, segments: OutputSegment[], op: number): void;
  unhealthy(key: number, reason: string): void;
  stats(batch: StatsBatch): void;
  log(level: LogLevel, msg: string, fields?: Record<string, string | number | boolean>): void;
  /** A thread died (an extension threw from native code or the worker crashed). */
  threadExit(slot: number, code: number, keys: number[]): void;
}

const noop = (): void => undefined;
/** Body bytes in flight to a thread are bounded by the input window (1 MiB by default): 2 MiB of slots. */
const INPUT_SLOTS = 32;

export class ExtensionThreadHandle {
  busyWith: Dispatchable | undefined;
  /** Requests handed to this thread in advance, in the order it will start them. */
  readonly waiting: Dispatchable[] = [];
  /** Requests this thread owns (running or PENDING), so a crash can fail exactly those. */
  readonly owned = new Set<number>();
  readonly signal: Int32Array;

  constructor(
    readonly slot: number,
    readonly worker: Worker,
    signal: SharedArrayBuffer,
    /** WriteClient frames from this thread. */
    readonly output: SlotArena,
    /** Request body bytes to this thread. */
    readonly input: SlotArena,
  ) {
    this.signal = new Int32Array(signal);
  }

  /** An 'out' message's parts as bytes, and what frees their arena slots once written. */
  resolve(parts: readonly BodyPart[]): { bytes: Uint8Array[]; written: () => void } {
    const slots: number[] = [];
    const bytes = parts.map((p) => {
      if (p instanceof Uint8Array) return p;
      slots.push(p.slot);
      return this.output.view(p);
    });
    return { bytes, written: slots.length === 0 ? noop : () => slots.forEach((s) => this.output.release(s)) };
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
  private readonly appNames: string[];
  private readonly prefetch: number;

  constructor(
    private readonly options: ThreadPoolOptions,
    private readonly events: PoolEvents,
  ) {
    this.appNames = options.apps.map((a) => a.name);
    this.prefetch = Math.max(0, options.prefetch ?? 1);
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
    const outputArena = createArenaMemory();
    const inputArena = createArenaMemory(INPUT_SLOTS);
    const init: WorkerInit = {
      slot,
      apps: this.options.apps,
      shimPath: this.options.shimPath,
      signal,
      serverSoftware: this.options.serverSoftware,
      siteRoot: this.options.siteRoot,
      outputWindow: this.options.outputWindow,
      outputArena,
      inputArena,
    };
    const worker = new Worker(path.join(__dirname, 'worker.js'), { workerData: init, stdout: false, stderr: false });
    const handle = new ExtensionThreadHandle(slot, worker, signal, new SlotArena(outputArena), new SlotArena(inputArena));
    this.threads.push(handle);
    return new Promise((resolve, reject) => {
      let ready = false;
      worker.on('message', (msg: WorkerToMain) => {
        switch (msg.t) {
          case 'out': {
            const { bytes, written } = handle.resolve(msg.bytes);
            this.events.out(msg.key, bytes, msg.end, msg.op, written);
            if (msg.end) this.finished(handle, msg.key);
            return;
          }
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
    if (i >= 0) {
      queue!.splice(i, 1);
      return true;
    }
    const thread = req.thread;
    if (!thread || !thread.waiting.includes(req)) return false;
    // Handed in advance: it is ours again only if its thread has not claimed it yet.
    if (Atomics.compareExchange(req.slots, RequestSlot.START, thread.slot, 0) !== thread.slot) return false;
    this.unassign(thread, req);
    this.running.set(req.appName, this.running.get(req.appName)! - 1);
    return true;
  }

  queued(appName: string): number {
    return this.queues.get(appName)?.length ?? 0;
  }

  threadFor(key: number): ExtensionThreadHandle | undefined {
    return this.pendingKeys.get(key);
  }

  private schedule(): void {
    for (;;) {
      const idle = this.idle.length > 0;
      const thread = idle ? this.idle[this.idle.length - 1]! : this.threadWithRoom();
      if (!thread) return;
      const picked = this.pick(!idle);
      if (!picked) return;
      if (idle) this.idle.pop();
      this.assign(thread, picked, !idle);
    }
  }

  /** The next request by round robin over the apps under their concurrency limit. */
  private pick(inAdvance: boolean): Dispatchable | undefined {
    const apps = this.appNames;
    for (let n = 0; n < apps.length; n++) {
      const app = apps[(this.rr + n) % apps.length]!;
      const queue = this.queues.get(app)!;
      if (queue.length === 0 || this.running.get(app)! >= this.limits.get(app)!) continue;
      // In advance only what needs nothing more than its run message (FIFO per app is kept).
      if (inAdvance && !queue[0]!.selfContained) continue;
      this.rr = (this.rr + n + 1) % apps.length;
      return queue.shift();
    }
    return undefined;
  }

  /** The busy thread with the fewest requests waiting on it, if it has room for one more. */
  private threadWithRoom(): ExtensionThreadHandle | undefined {
    let best: ExtensionThreadHandle | undefined;
    for (const t of this.threads) {
      if (!t.busyWith || t.waiting.length >= this.prefetch) continue;
      if (!best || t.waiting.length < best.waiting.length) best = t;
    }
    return best;
  }

  private assign(thread: ExtensionThreadHandle, req: Dispatchable, inAdvance: boolean): void {
    this.running.set(req.appName, this.running.get(req.appName)! + 1);
    Atomics.store(req.slots, RequestSlot.START, thread.slot);
    this.handTo(thread, req, inAdvance);
  }

  /** Makes `thread` the owner of `req` and sends it the run message. */
  private handTo(thread: ExtensionThreadHandle, req: Dispatchable, inAdvance: boolean): void {
    thread.owned.add(req.key);
    req.thread = thread;
    this.pendingKeys.set(req.key, thread);
    if (inAdvance) {
      thread.waiting.push(req);
      // Kept, not transferred: it may have to be sent again to another thread.
      thread.send(req.runMessage());
    } else {
      thread.busyWith = req;
      thread.send(req.runMessage(), req.transfer());
    }
  }

  private unassign(thread: ExtensionThreadHandle, req: Dispatchable): void {
    const i = thread.waiting.indexOf(req);
    if (i >= 0) thread.waiting.splice(i, 1);
    thread.owned.delete(req.key);
    this.pendingKeys.delete(req.key);
  }

  /** `thread` has nothing to do: take over the oldest request waiting on a busy thread, if it is not started yet. */
  private reclaimFor(thread: ExtensionThreadHandle): boolean {
    for (const other of this.threads) {
      const req = other.waiting[0];
      if (!req || other === thread) continue;
      if (Atomics.compareExchange(req.slots, RequestSlot.START, other.slot, thread.slot) !== other.slot) continue;
      this.unassign(other, req);
      this.handTo(thread, req, false);
      return true;
    }
    return false;
  }

  private release(thread: ExtensionThreadHandle): void {
    const req = thread.busyWith;
    if (!req) return;
    thread.busyWith = undefined;
    this.running.set(req.appName, this.running.get(req.appName)! - 1);
    // The thread goes on to its next request by itself.
    const next = thread.waiting.shift();
    if (next) thread.busyWith = next;
    else if (this.threads.includes(thread) && !this.reclaimFor(thread)) this.idle.push(thread);
    this.schedule();
  }

  /** A request handed in advance that started and returned or ended while the pool still counted it as waiting. */
  private settleWaiting(thread: ExtensionThreadHandle, key: number): void {
    const req = thread.waiting.find((r) => r.key === key);
    if (!req) return;
    thread.waiting.splice(thread.waiting.indexOf(req), 1);
    this.running.set(req.appName, this.running.get(req.appName)! - 1);
    this.schedule();
  }

  private returned(thread: ExtensionThreadHandle, key: number, pending: boolean): void {
    if (!pending) return;
    if (thread.busyWith?.key === key) this.release(thread);
    else this.settleWaiting(thread, key);
  }

  private finished(thread: ExtensionThreadHandle, key: number): void {
    thread.owned.delete(key);
    this.pendingKeys.delete(key);
    if (thread.busyWith?.key === key) this.release(thread);
    else this.settleWaiting(thread, key);
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
