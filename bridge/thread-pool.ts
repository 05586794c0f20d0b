/**
 * The bridge's pool of extension threads and its scheduler: like an IIS thread
 * pool, a fixed number of threads run HttpExtensionProc; each app may occupy at
 * most `maxConcurrency` of them, and requests beyond that wait in a FIFO queue
 * per app. A thread is busy from dispatch until HttpExtensionProc returns
 * (a PENDING request no longer holds a thread).
 *
 * When every thread is busy, requests whose whole body is already at hand may be
 * handed to a busy thread in advance, so a thread that finishes goes straight on to
 * its next request without a round trip through this thread, and a batch of them
 * costs one wake-up. A thread holds in advance about PREFETCH_HORIZON_MS of work,
 * judged by each app's recent time per request: many fast requests, but only one of
 * a slow app, so other apps' requests do not queue behind a row of slow ones. Which thread runs a request is still decided
 * first-come, as with IIS's shared completion port: a thread that falls idle takes a
 * request back from the thread it waits on (RequestSlot.START), and a thread that
 * has been inside one call for STUCK_AFTER_MS gives up the requests waiting on it to
 * the next thread that finishes one, so nothing waits behind a slow extension call
 * while other threads keep serving.
 *
 * Like an IIS completion port, whose concurrency value is the number of CPUs, the
 * pool wakes an idle thread for a fast app's request (one under PREFETCH_HORIZON_MS)
 * only while fewer than `runningThreads` threads are running. Past that, the request
 * waits for the running threads: held in advance by one that will reach it within the
 * horizon, or in its queue. Each thread woken for a request or two costs more than
 * the request: on one core, four threads taking turns made the bridge use about a third
 * more CPU per request than one (bench/RESULTS.md, session 8). Slow apps still go to idle
 * threads; a thread stuck in one call does not count as running, and idle threads
 * take over what waits on it or for it.
 */
import { Worker } from 'node:worker_threads';
import os from 'node:os';
import path from 'node:path';
import type { AppSettings } from './request-info';
import type { StatsBatch } from './live-metrics';
import { RequestTable } from './request-table';
import { ARENA_SLOTS, SlotArena, arenaBytes, createArenaMemory } from './slot-arena';
import { createSpool, type SpoolFile, type SpoolRegion } from './spool';
import { RequestSlot, sharedClockMs, type MainToWorker, type BodyPart, type OutputSegment, type WorkerInit, type WorkerToMain, type LogLevel } from './thread-messages';

export interface ThreadPoolOptions {
  threads: number;
  apps: AppSettings[];
  shimPath: string;
  serverSoftware: string;
  siteRoot: string;
  outputWindow: number;
  /** Most requests a busy thread may hold in advance (0: hand requests to idle threads only). */
  maxPrefetch?: number;
  /** Threads running at once before fast requests wait on them rather than wake idle ones (default: the CPUs this process may use). */
  runningThreads?: number;
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
  /**
   * Set by the pool while the request is held in advance: the milliseconds it added
   * to its thread's backlog. A field rather than a WeakMap beside the pool: a
   * WeakMap write costs an ephemeron barrier per request, and minor GCs scan it.
   */
  backlogEstimateMs?: number;
}

/**
 * A piece of an 'out' message as the main thread sends it: its bytes, the output arena
 * slot they are in (-1: none), and where a RESPONSE_BODY frame's payload is in the
 * spool file (-1 when it is not in the spool).
 */
export interface OutPiece {
  readonly bytes: Uint8Array;
  readonly slot: number;
  readonly spoolAt: number;
}

export interface PoolEvents {
  /** `free` must be called for each piece once the gateway has its bytes (it frees the piece's arena slot). */
  out(key: number, pieces: OutPiece[], end: boolean, op: number | undefined, free: (piece: OutPiece) => void): void;
  segments(key: number, segments: OutputSegment[], op: number): void;
  unhealthy(key: number, reason: string): void;
  stats(batch: StatsBatch): void;
  log(level: LogLevel, msg: string, fields?: Record<string, string | number | boolean>): void;
  /** A thread died (an extension threw from native code or the worker crashed). */
  threadExit(slot: number, code: number, keys: number[]): void;
}

/** A busy thread holds in advance about this much work, judged by the apps' recent times per request. */
const PREFETCH_HORIZON_MS = 1;
/** ... and never more requests than this. */
export const DEFAULT_MAX_PREFETCH = 32;
/** A thread inside one request for this long gives the requests waiting on it to threads that finish theirs. */
const STUCK_AFTER_MS = 2;
/** Weight of the newest request in an app's time per request. */
const PACE_WEIGHT = 0.25;
/** Body bytes in flight to a thread are bounded by the input window (1 MiB by default): 2 MiB of slots. */
const INPUT_SLOTS = 32;

export class ExtensionThreadHandle {
  busyWith: Dispatchable | undefined;
  /** Requests handed to this thread in advance, in the order it will start them. */
  readonly waiting: Dispatchable[] = [];
  /** Requests per app this thread is busy with or holds in advance (maxConcurrency counts threads). */
  readonly holds = new Map<string, number>();
  /** Expected milliseconds of the requests waiting on this thread (the backlogEstimateMs of each). */
  backlogMs = 0;
  readonly signal: Int32Array;
  /** WorkerInit.callClock: when the thread entered its current HttpExtensionProc call, 0 outside one. */
  private readonly callSince: Float64Array;

  constructor(
    readonly slot: number,
    readonly worker: Worker,
    signal: SharedArrayBuffer,
    callClock: SharedArrayBuffer,
    /** WriteClient frames from this thread. */
    readonly output: SlotArena,
    /** Request body bytes to this thread. */
    readonly input: SlotArena,
  ) {
    this.signal = new Int32Array(signal);
    this.callSince = new Float64Array(callClock);
  }

  /** Inside one HttpExtensionProc call for STUCK_AFTER_MS or more, by the thread's own account (`now`: sharedClockMs()). */
  stuck(now: number): boolean {
    const since = this.callSince[0]!;
    return since !== 0 && now - since >= STUCK_AFTER_MS;
  }

  /** Busy and not stuck: what counts against runningThreads. */
  running(now: number): boolean {
    return this.busyWith !== undefined && !this.stuck(now);
  }

  /** An 'out' message's parts as pieces to send. */
  resolve(parts: readonly BodyPart[]): OutPiece[] {
    return parts.map((p): OutPiece => {
      if (p instanceof Uint8Array) return { bytes: p, slot: -1, spoolAt: -1 };
      return { bytes: this.output.view(p), slot: p.slot, spoolAt: this.output.spoolOffset(p) };
    });
  }

  /** The gateway has the piece's bytes: its arena slot (if any) is free again. */
  readonly free = (piece: OutPiece): void => {
    if (piece.slot >= 0) this.output.release(piece.slot);
  };

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
  /** Threads each app is busy on or holds requests on in advance. */
  private readonly occupied = new Map<string, number>();
  /** Requests of each app held in advance by busy threads: still waiting, as far as maxQueue goes. */
  private readonly heldInAdvance = new Map<string, number>();
  private readonly limits = new Map<string, number>();
  /** The thread that owns each request handed out (held in advance, running or PENDING), by request key. */
  private readonly pendingKeys = new RequestTable<ExtensionThreadHandle>();
  private rr = 0;
  private stopped = false;
  private readonly appNames: string[];
  private readonly maxPrefetch: number;
  private readonly runningThreads: number;
  /** Armed while requests wait on or for running threads: idle threads take them over if those get stuck. */
  private stuckCheck: NodeJS.Timeout | undefined;
  /** Each app's recent milliseconds per request on a thread (unknown until one has finished). */
  private readonly pace = new Map<string, number>();

  constructor(
    private readonly options: ThreadPoolOptions,
    private readonly events: PoolEvents,
  ) {
    this.appNames = options.apps.map((a) => a.name);
    this.maxPrefetch = Math.max(0, options.maxPrefetch ?? DEFAULT_MAX_PREFETCH);
    this.runningThreads = Math.max(1, options.runningThreads ?? os.availableParallelism());
    for (const app of options.apps) {
      this.queues.set(app.name, []);
      this.occupied.set(app.name, 0);
      this.heldInAdvance.set(app.name, 0);
      this.limits.set(app.name, Math.max(1, app.maxConcurrency));
    }
  }

  /**
   * Resolves as soon as one extension thread is ready: a bridge restarted after a crash
   * serves again without waiting for its whole pool (the others join as they come up).
   */
  async start(): Promise<void> {
    this.createSpool();
    const ready: Promise<void>[] = [];
    for (let i = 0; i < this.options.threads; i++) ready.push(this.spawn(i + 1));
    await Promise.any(ready).catch(() => Promise.all(ready));
    for (const [i, p] of ready.entries()) {
      p.catch((err: Error) => this.events.log('error', 'extension thread failed to start', { thread: i + 1, error: err.message }));
    }
  }

  private spoolFile: SpoolFile | undefined;
  private spoolRegions: SpoolRegion[] = [];

  /** The arenas' memory file (outputs, then inputs), if this platform has one (spool.ts); made by start(). */
  get spool(): SpoolFile | undefined {
    return this.spoolFile;
  }

  private createSpool(): void {
    try {
      const threads = this.options.threads;
      const { file, regions } = createSpool([
        ...Array<number>(threads).fill(arenaBytes(ARENA_SLOTS)),
        ...Array<number>(threads).fill(arenaBytes(INPUT_SLOTS)),
      ]);
      this.spoolFile = file;
      this.spoolRegions = regions;
    } catch (err) {
      this.events.log('debug', 'no response spool: bodies go in frames', { error: (err as Error).message });
    }
  }

  private spawn(slot: number): Promise<void> {
    const signal = new SharedArrayBuffer(4);
    const callClock = new SharedArrayBuffer(Float64Array.BYTES_PER_ELEMENT);
    const outputArena = createArenaMemory(ARENA_SLOTS, this.spoolRegions[slot - 1]);
    const inputArena = createArenaMemory(INPUT_SLOTS, this.spoolRegions[this.options.threads + slot - 1]);
    const init: WorkerInit = {
      slot,
      apps: this.options.apps,
      shimPath: this.options.shimPath,
      signal,
      callClock,
      serverSoftware: this.options.serverSoftware,
      siteRoot: this.options.siteRoot,
      outputWindow: this.options.outputWindow,
      outputArena,
      inputArena,
    };
    const worker = new Worker(path.join(__dirname, 'worker.js'), { workerData: init, stdout: false, stderr: false });
    const handle = new ExtensionThreadHandle(slot, worker, signal, callClock, new SlotArena(outputArena), new SlotArena(inputArena));
    this.threads.push(handle);
    return new Promise((resolve, reject) => {
      let ready = false;
      worker.on('message', (msg: WorkerToMain) => {
        switch (msg.t) {
          case 'out': {
            this.events.out(msg.key, handle.resolve(msg.bytes), msg.end, msg.op, handle.free);
            if (msg.end) this.finished(handle, msg.key, msg.threadMs);
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
            this.returned(handle, msg.key, msg.pending, msg.threadMs);
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
        const keys = this.removeThread(handle);
        if (!ready) reject(new Error(`extension thread ${slot} exited with code ${code} before it was ready`));
        else if (!this.stopped) this.events.threadExit(slot, code, keys);
      });
    });
  }

  /** Forgets a thread that exited; returns the keys of the requests it owned. */
  private removeThread(handle: ExtensionThreadHandle): number[] {
    const i = this.threads.indexOf(handle);
    if (i >= 0) this.threads.splice(i, 1);
    const j = this.idle.indexOf(handle);
    if (j >= 0) this.idle.splice(j, 1);
    // Its requests fail with it (threadExit); the apps no longer occupy it.
    for (const req of handle.waiting) this.heldInAdvance.set(req.appName, this.heldInAdvance.get(req.appName)! - 1);
    for (const app of handle.holds.keys()) this.occupied.set(app, this.occupied.get(app)! - 1);
    handle.holds.clear();
    handle.waiting.length = 0;
    handle.backlogMs = 0;
    handle.busyWith = undefined;
    const owned = this.ownedBy(handle);
    for (const key of owned) this.pendingKeys.delete(key);
    return owned;
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
    return true;
  }

  /** Requests of the app not started yet: in its queue, or held in advance by a busy thread. */
  queued(appName: string): number {
    return (this.queues.get(appName)?.length ?? 0) + (this.heldInAdvance.get(appName) ?? 0);
  }

  threadFor(key: number): ExtensionThreadHandle | undefined {
    return this.pendingKeys.get(key);
  }

  /** The requests a thread owns, so that its crash fails exactly those. */
  private ownedBy(thread: ExtensionThreadHandle): number[] {
    return this.pendingKeys.keys().filter((key) => this.pendingKeys.get(key) === thread);
  }

  private schedule(): void {
    while (this.toRunningThread() || this.toIdleThread() || this.inAdvance());
  }

  /** Busy threads, other than `except`, not stuck in one call (`now`: sharedClockMs()). */
  private running(now: number, except?: ExtensionThreadHandle): number {
    let n = 0;
    for (const t of this.threads) if (t !== except && t.running(now)) n++;
    return n;
  }

  /**
   * While `runningThreads` threads are running, hands one queued request of a fast app to
   * the running thread with the least work waiting, if that stays within the horizon,
   * rather than waking an idle thread.
   */
  private toRunningThread(): boolean {
    if (this.maxPrefetch === 0 || this.idle.length === 0) return false;
    const now = sharedClockMs();
    const running = this.threads.filter((t) => t.running(now));
    if (running.length < this.runningThreads) return false;
    return this.handInAdvance(running.sort((a, b) => a.backlogMs - b.backlogMs), 'within-horizon');
  }

  /** Hands one queued request in advance to the first of the busy `candidates` that may take one in `mode`. */
  private handInAdvance(candidates: ExtensionThreadHandle[], mode: 'in-advance' | 'within-horizon'): boolean {
    for (const thread of candidates) {
      const req = this.pick(thread, mode);
      if (!req) continue;
      this.assign(thread, req, true);
      return true;
    }
    return false;
  }

  private armStuckCheck(): void {
    if (this.stuckCheck || this.stopped || this.threads.length < 2) return;
    this.stuckCheck = setTimeout(() => this.takeOverFromStuck(), STUCK_AFTER_MS + 1);
    this.stuckCheck.unref();
  }

  /** Idle threads take over the requests waiting on threads stuck in one call. */
  private takeOverFromStuck(): void {
    this.stuckCheck = undefined;
    const now = sharedClockMs();
    for (const stuck of this.threads) {
      if (!stuck.stuck(now)) continue;
      while (this.idle.length > 0 && this.takeBack(stuck, this.idle[this.idle.length - 1]!)) this.idle.pop();
    }
    this.schedule();
    // Again while anything waits for a thread: an idle thread may only turn up later.
    if (this.threads.some((t) => t.waiting.length > 0) || this.appNames.some((app) => this.queues.get(app)!.length > 0)) this.armStuckCheck();
  }

  /** Starts one queued request on an idle thread, if any idle thread may take one. */
  private toIdleThread(): boolean {
    if (this.idle.length === 0) return false;
    // With runningThreads running, a fast app's requests wait for them (toRunningThread).
    const mode = this.running(sharedClockMs()) >= this.runningThreads ? 'now-unless-fast' : 'now';
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const thread = this.idle[i]!;
      const req = this.pick(thread, mode);
      if (!req) continue;
      this.idle.splice(i, 1);
      this.assign(thread, req, false);
      return true;
    }
    // What waits for the running threads goes to the idle ones should those get stuck.
    if (mode === 'now-unless-fast') this.armStuckCheck();
    return false;
  }

  /** Hands one queued request in advance to the busy thread with the least work waiting that may take it. */
  private inAdvance(): boolean {
    if (this.maxPrefetch === 0) return false;
    const candidates = this.threads.filter((t) => t.busyWith && t.waiting.length < this.maxPrefetch).sort((a, b) => a.backlogMs - b.backlogMs);
    return this.handInAdvance(candidates, 'in-advance');
  }

  /**
   * maxConcurrency counts threads: a thread that already holds one of the app's
   * requests may take more (they run one after another there); another thread only
   * while the app occupies fewer threads than its limit.
   */
  private mayTake(thread: ExtensionThreadHandle, appName: string): boolean {
    return thread.holds.has(appName) || this.occupied.get(appName)! < this.limits.get(appName)!;
  }

  /**
   * Whether busy `thread` may hold one more request of `appName` in advance: always a
   * first one, more while the work waiting on it stays within PREFETCH_HORIZON_MS.
   */
  private fitsInAdvance(thread: ExtensionThreadHandle, appName: string): boolean {
    if (thread.waiting.length >= this.maxPrefetch) return false;
    if (thread.waiting.length === 0) return true;
    return this.fitsWithinHorizon(thread, appName);
  }

  /** An app known to take less than the horizon per request. */
  private isFast(appName: string): boolean {
    const pace = this.pace.get(appName);
    return pace !== undefined && pace <= PREFETCH_HORIZON_MS;
  }

  /** Whether one more request of `appName`, at its known pace, keeps the work waiting on `thread` within PREFETCH_HORIZON_MS. */
  private fitsWithinHorizon(thread: ExtensionThreadHandle, appName: string): boolean {
    if (thread.waiting.length >= this.maxPrefetch) return false;
    const pace = this.pace.get(appName);
    return pace !== undefined && thread.backlogMs + pace <= PREFETCH_HORIZON_MS;
  }

  /**
   * The next request for `thread` by round robin over the apps it may take: to run
   * `now` (an idle thread; `now-unless-fast`: only of apps slower than the horizon),
   * `in-advance` (a busy one, PREFETCH_HORIZON_MS or a first one) or `within-horizon`
   * (a running one, only what it will reach within the horizon).
   */
  private pick(thread: ExtensionThreadHandle, mode: 'now' | 'now-unless-fast' | 'in-advance' | 'within-horizon'): Dispatchable | undefined {
    const apps = this.appNames;
    for (let n = 0; n < apps.length; n++) {
      const app = apps[(this.rr + n) % apps.length]!;
      const queue = this.queues.get(app)!;
      if (queue.length === 0 || !this.mayTake(thread, app)) continue;
      if (mode === 'now-unless-fast' && this.isFast(app)) continue;
      // In advance only what needs nothing more than its run message (FIFO per app is kept).
      if ((mode === 'in-advance' || mode === 'within-horizon') && !queue[0]!.selfContained) continue;
      if (mode === 'in-advance' && !this.fitsInAdvance(thread, app)) continue;
      if (mode === 'within-horizon' && !this.fitsWithinHorizon(thread, app)) continue;
      this.rr = (this.rr + n + 1) % apps.length;
      return queue.shift();
    }
    return undefined;
  }

  private hold(thread: ExtensionThreadHandle, appName: string): void {
    const n = thread.holds.get(appName) ?? 0;
    if (n === 0) this.occupied.set(appName, this.occupied.get(appName)! + 1);
    thread.holds.set(appName, n + 1);
  }

  private letGo(thread: ExtensionThreadHandle, appName: string): void {
    const n = thread.holds.get(appName);
    if (n === undefined) return;
    if (n > 1) {
      thread.holds.set(appName, n - 1);
      return;
    }
    thread.holds.delete(appName);
    this.occupied.set(appName, this.occupied.get(appName)! - 1);
  }

  private assign(thread: ExtensionThreadHandle, req: Dispatchable, inAdvance: boolean): void {
    Atomics.store(req.slots, RequestSlot.START, thread.slot);
    this.handTo(thread, req, inAdvance);
  }

  /** Makes `thread` the owner of `req` and sends it the run message. */
  private handTo(thread: ExtensionThreadHandle, req: Dispatchable, inAdvance: boolean): void {
    req.thread = thread;
    this.pendingKeys.set(req.key, thread);
    this.hold(thread, req.appName);
    if (inAdvance) {
      thread.waiting.push(req);
      this.heldInAdvance.set(req.appName, this.heldInAdvance.get(req.appName)! + 1);
      // An app not timed yet counts as a whole horizon: nothing more is held behind it.
      const estimate = this.pace.get(req.appName) ?? PREFETCH_HORIZON_MS;
      req.backlogEstimateMs = estimate;
      thread.backlogMs += estimate;
      // Kept, not transferred: it may have to be sent again to another thread.
      thread.send(req.runMessage());
      // Should this thread get stuck in its current call, an idle one takes the request over.
      this.armStuckCheck();
    } else {
      thread.busyWith = req;
      thread.send(req.runMessage(), req.transfer());
    }
  }

  /** A request held in advance is no longer waiting on `thread`: it started there, or it leaves. */
  private dropWaiting(thread: ExtensionThreadHandle, req: Dispatchable): void {
    const i = thread.waiting.indexOf(req);
    if (i < 0) return;
    thread.waiting.splice(i, 1);
    this.leftWaiting(thread, req);
    this.letGo(thread, req.appName);
  }

  /** Bookkeeping for a request no longer held in advance by `thread`. */
  private leftWaiting(thread: ExtensionThreadHandle, req: Dispatchable): void {
    this.heldInAdvance.set(req.appName, this.heldInAdvance.get(req.appName)! - 1);
    thread.backlogMs = thread.waiting.length === 0 ? 0 : thread.backlogMs - (req.backlogEstimateMs ?? 0);
  }

  /** Takes a request held in advance off its thread (it was taken back or cancelled). */
  private unassign(thread: ExtensionThreadHandle, req: Dispatchable): void {
    this.dropWaiting(thread, req);
    this.pendingKeys.delete(req.key);
  }

  /**
   * Moves the oldest request held in advance by `from` to `to`, if `from` has not
   * started it yet and the app's limit allows: `to` runs it as its current request
   * when it is idle, after its own otherwise.
   */
  private takeBack(from: ExtensionThreadHandle, to: ExtensionThreadHandle): boolean {
    const req = from.waiting[0];
    if (!req) return false;
    const app = req.appName;
    // Leaving `from` frees a thread for the app only if it was the app's last request there.
    if (!to.holds.has(app) && from.holds.get(app)! > 1 && this.occupied.get(app)! >= this.limits.get(app)!) return false;
    if (to.busyWith && !this.fitsInAdvance(to, app)) return false;
    if (Atomics.compareExchange(req.slots, RequestSlot.START, from.slot, to.slot) !== from.slot) return false;
    this.unassign(from, req);
    this.handTo(to, req, to.busyWith !== undefined);
    return true;
  }

  /** `thread` has nothing to do: take over the oldest request waiting on a busy thread, if it is not started yet. */
  private reclaimFor(thread: ExtensionThreadHandle): boolean {
    for (const other of this.threads) {
      if (other !== thread && this.takeBack(other, thread)) return true;
    }
    return false;
  }

  /** `thread` just finished a request: it takes what waits on threads stuck in one call. */
  private relieveStuck(thread: ExtensionThreadHandle, now: number): void {
    if (!thread.busyWith) return;
    for (const other of this.threads) {
      if (other === thread || !other.busyWith || !other.stuck(now)) continue;
      while (this.takeBack(other, thread));
    }
  }

  /**
   * `threadMs`: the thread's own time on the request. Every end and every PENDING
   * return comes after HttpExtensionProc returned, so it is there.
   */
  private release(thread: ExtensionThreadHandle, threadMs: number | undefined): void {
    const req = thread.busyWith;
    if (!req) return;
    const now = sharedClockMs();
    if (threadMs !== undefined) {
      const pace = this.pace.get(req.appName);
      this.pace.set(req.appName, pace === undefined ? threadMs : pace + PACE_WEIGHT * (threadMs - pace));
    }
    thread.busyWith = undefined;
    this.letGo(thread, req.appName);
    const alive = this.threads.includes(thread);
    // The thread goes on to its next request by itself.
    const next = thread.waiting.shift();
    if (next) {
      this.leftWaiting(thread, next);
      thread.busyWith = next;
    } else if (alive && !(this.running(now, thread) < this.runningThreads && this.reclaimFor(thread))) {
      // With `runningThreads` threads running, the work held in advance stays where it is.
      this.idle.push(thread);
    }
    if (alive) this.relieveStuck(thread, now);
    this.schedule();
  }

  /** A request handed in advance that started and returned or ended while the pool still counted it as waiting. */
  private settleWaiting(thread: ExtensionThreadHandle, key: number): void {
    const req = thread.waiting.find((r) => r.key === key);
    if (!req) return;
    // A PENDING one stays owned by the thread: its completions are routed there.
    this.dropWaiting(thread, req);
    this.schedule();
  }

  private returned(thread: ExtensionThreadHandle, key: number, pending: boolean, threadMs: number): void {
    if (!pending) return;
    if (thread.busyWith?.key === key) this.release(thread, threadMs);
    else this.settleWaiting(thread, key);
  }

  private finished(thread: ExtensionThreadHandle, key: number, threadMs: number | undefined): void {
    this.pendingKeys.delete(key);
    if (thread.busyWith?.key === key) this.release(thread, threadMs);
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
    clearTimeout(this.stuckCheck);
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }
}
