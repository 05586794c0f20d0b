/**
 * An extension thread: the bridge's equivalent of an IIS worker thread.
 *
 * It calls HttpExtensionProc synchronously, so the extension's callbacks made on
 * this thread run here directly (koffi's fast path, no hop to another thread).
 * A synchronous WriteClient or ReadClient that must wait blocks this thread with
 * Atomics.wait, pulling messages from the main thread with receiveMessageOnPort
 * meanwhile - exactly the blocking semantics an ISAPI extension expects.
 *
 * Callbacks an extension makes from its own threads are relayed by koffi to this
 * thread's event loop; they run when this thread is not inside another
 * HttpExtensionProc. Extensions that hand work to their own threads return
 * HSE_STATUS_PENDING (as Microsoft documents), which frees this thread at once.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import koffi from 'koffi';
import { HSE_STATUS, hseRequestName } from './abi/constants';
import { EcbCallbacks, type Shim } from './ecb-callbacks';
import { EcbMemory } from './ecb-memory';
import { bindHttpExtensionProc, type HttpExtensionProc } from './extension';
import { RequestContext, type Completion, type ContextHost } from './request-context';
import type { AppSettings } from './request-info';
import { StatsRelay } from './live-metrics';
import { RequestTable } from './request-table';
import { SlotArena } from './slot-arena';
import { ServerVariables } from './server-variables';
import { RequestSlot, STARTED, packFrames, sharedClockMs, transferList, type BodyPart, type MainToWorker, type OutputSegment, type WorkerInit, type WorkerToMain } from './thread-messages';
import { decodeRequest } from './wire';

type RunMessage = Extract<MainToWorker, { t: 'run' }>;

class ExtensionThread implements ContextHost {
  readonly outputWindow: number;
  readonly outputArena: SlotArena;
  readonly inputArena: SlotArena;
  private readonly port = parentPort!;
  readonly liveMetrics = new StatsRelay((batch) => this.send({ t: 'stats', batch }));
  private readonly signal: Int32Array;
  /** WorkerInit.callClock. */
  private readonly callSince: Float64Array;
  private readonly apps = new Map<string, { settings: AppSettings; proc: HttpExtensionProc }>();
  /**
   * A ConnID is this thread's slot times this, plus the request's key: the shim reads the
   * owning thread from the bits above (isapi_shim.c, SHIM_OWNER_SHIFT, 40).
   */
  private readonly ownerUnit: number;
  /** Running and PENDING requests by key; a ConnID's low bits, below ownerUnit, are its request's key. */
  private readonly byKey = new RequestTable<RequestContext>();
  private readonly deferred: RunMessage[] = [];
  /** Body messages for a request whose run is deferred: kept until it starts, in order. */
  private readonly beforeRun = new Map<number, MainToWorker[]>();
  /** Completion routines waiting for this thread to be outside extension code. */
  private readonly completions: Array<() => void> = [];
  private completionsScheduled = false;
  private readonly callCompletion: (fn: bigint, ecb: bigint, context: bigint, cbIO: number, error: number) => void;
  private readonly shim: Shim;
  private readonly callbacks: EcbCallbacks;
  private nested = 0;
  /** An HttpExtensionProc of a relayCallbacks app is running on a koffi pool thread: this thread's request is taken. */
  private procElsewhere = false;

  constructor(private readonly init: WorkerInit) {
    this.signal = new Int32Array(init.signal);
    this.callSince = new Float64Array(init.callClock);
    this.outputWindow = init.outputWindow;
    this.outputArena = new SlotArena(init.outputArena);
    this.inputArena = new SlotArena(init.inputArena);
    const lib = koffi.load(init.shimPath);
    const entry = lib.func('void *shim_entry(int which)') as (which: number) => bigint;
    const strnlen = lib.func('size_t shim_strnlen(void *s, size_t max)') as (p: bigint, max: number) => number | bigint;
    const copy = lib.func('void shim_copy(void *dst, void *src, size_t n)') as Shim['copy'];
    const wcsnlen = lib.func('size_t shim_wcsnlen(void *s, size_t max)') as (p: bigint, max: number) => number | bigint;
    const register = lib.func('int shim_register(uint32_t owner, void *gsv, void *wc, void *rc, void *ssf)') as (
      ...args: [number, bigint, bigint, bigint, bigint]
    ) => number;
    this.callCompletion = lib.func('void shim_complete(void *fn, void *ecb, void *ctx, uint32_t cbIO, uint32_t err)') as typeof this.callCompletion;
    this.ownerUnit = 2 ** (lib.func('uint32_t shim_owner_shift(void)') as () => number)();
    this.shim = {
      entries: [entry(0), entry(1), entry(2), entry(3)],
      strnlen: (p, max) => Number(strnlen(p, max)),
      wcsnlen: (p, max) => Number(wcsnlen(p, max)),
      copy,
    };
    this.callbacks = new EcbCallbacks(this.shim, this.outputArena, {
      lookup: (conn) => {
        const ctx = this.byKey.get(conn % this.ownerUnit);
        return ctx?.connId === conn ? ctx : undefined;
      },
      done: (ctx, status) => this.onDone(ctx, status),
      unhealthy: (ctx, reason) => {
        this.log('warn', 'extension reported itself unhealthy (HSE_REQ_REPORT_UNHEALTHY)', { app: ctx.app.name, reason });
        this.send({ t: 'unhealthy', key: ctx.key, reason });
      },
      internalError: (callback, error) =>
        this.log('error', 'bridge error inside an ECB callback', { callback, error: error.stack ?? error.message }),
      unsupported: (ctx, code) =>
        this.log('warn', 'unsupported ServerSupportFunction request', {
          requestId: ctx.info.requestId,
          app: ctx.app.name,
          code,
          name: hseRequestName(code),
        }),
    });
    const [gsv, wc, rc, ssf] = this.callbacks.register();
    if (!register(init.slot, gsv, wc, rc, ssf)) throw new Error(`shim refused owner slot ${init.slot}`);
    for (const app of init.apps) this.apps.set(app.name, { settings: app, proc: bindHttpExtensionProc(app.library) });
    this.port.on('message', (msg: MainToWorker) => this.handle(msg, false));
    this.send({ t: 'ready', slot: init.slot });
  }

  post(ctx: RequestContext, parts: Buffer[], end: boolean, op?: number): void {
    const bytes = packFrames(parts, this.outputArena);
    let size = 0;
    for (const b of bytes) size += b.length;
    Atomics.add(ctx.shared, RequestSlot.OUTPUT_PENDING, size);
    const msg: Extract<WorkerToMain, { t: 'out' }> = { t: 'out', key: ctx.key, bytes, end };
    if (op !== undefined) msg.op = op;
    if (end && ctx.threadMs !== undefined) msg.threadMs = ctx.threadMs;
    this.port.postMessage(msg, transferList(bytes));
  }

  postSegments(ctx: RequestContext, segments: OutputSegment[], op: number): void {
    const transfer: ArrayBuffer[] = [];
    for (const seg of segments) if (seg.kind === 'frames') transfer.push(seg.bytes.buffer as ArrayBuffer);
    this.port.postMessage({ t: 'segments', key: ctx.key, segments, op } satisfies WorkerToMain, transfer);
  }

  /**
   * IIS calls completions on its own threads, never inside another call of the
   * extension: queue it for this thread's event loop.
   */
  complete(ctx: RequestContext, completion: Completion, cbIO: number, error: number): void {
    this.completions.push(() => {
      if (ctx.finished) return;
      this.nested++;
      try {
        this.callCompletion(completion.fn, ctx.ecb.address, completion.context, cbIO, error);
      } catch (err) {
        this.log('error', 'I/O completion routine failed', { requestId: ctx.info.requestId, error: String(err) });
      } finally {
        this.nested--;
      }
      this.afterExtensionCall();
    });
    this.scheduleCompletions();
  }

  private scheduleCompletions(): void {
    if (this.completionsScheduled || this.completions.length === 0) return;
    this.completionsScheduled = true;
    setImmediate(() => {
      this.completionsScheduled = false;
      while (this.completions.length > 0 && this.nested === 0) this.completions.shift()!();
      this.scheduleCompletions();
    });
  }

  /** Work that waited for this thread to leave extension code. */
  private afterExtensionCall(): void {
    if (this.nested > 0) return;
    if (this.deferred.length > 0 && this.free) setImmediate(() => this.runDeferred());
    this.scheduleCompletions();
  }

  waitUntil(ready: () => boolean): void {
    this.nested++;
    try {
      while (!ready()) {
        const seen = Atomics.load(this.signal, 0);
        this.drain();
        if (ready()) break;
        // The timeout only bounds a missed wake-up; every change is followed by a notify.
        Atomics.wait(this.signal, 0, seen, 1000);
      }
    } finally {
      this.nested--;
    }
  }

  log(level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, string | number | boolean>): void {
    this.send({ t: 'log', level, msg, fields });
  }

  private send(msg: WorkerToMain): void {
    this.port.postMessage(msg);
  }

  private drain(): void {
    for (let m = receiveMessageOnPort(this.port); m; m = receiveMessageOnPort(this.port)) {
      this.handle(m.message as MainToWorker, true);
    }
  }

  private handle(msg: MainToWorker, nested: boolean): void {
    switch (msg.t) {
      case 'run':
        // A run handed in advance (thread-pool.ts) waits for the request before it to return,
        // and for those deferred before it: the pool moves waiting requests to other threads
        // on the assumption that this thread runs its own in the order they were handed over.
        if (nested || this.nested > 0 || this.procElsewhere || this.deferred.length > 0) {
          this.deferred.push(msg);
          if (this.deferred.length === 1) setImmediate(() => this.runDeferred());
        } else {
          this.run(msg);
        }
        return;
      case 'body':
      case 'bodyEnd': {
        const ctx = this.byKey.get(msg.key);
        if (!ctx) {
          // Its run message is still waiting for this thread: keep the body for it.
          if (this.deferred.some((d) => d.key === msg.key)) this.beforeRun.set(msg.key, [...(this.beforeRun.get(msg.key) ?? []), msg]);
          // Otherwise the request is over: nobody will read these bytes.
          else if (msg.t === 'body') this.releaseSlots(msg.parts);
          return;
        }
        if (msg.t === 'body') for (const part of msg.parts) ctx.pushBody(part instanceof Uint8Array ? part : this.inputArena.view(part));
        else ctx.endBody();
        return;
      }
      case 'ioDone':
        this.byKey.get(msg.key)?.ioDone(msg.op, msg.bytes, msg.error);
        return;
      case 'execDone':
        this.byKey.get(msg.key)?.execDone(msg.status, msg.subStatus, msg.win32Error);
        return;
      case 'abort':
        // The main thread already set RequestSlot.ABORTED; blocked waits observe it, a pending async read ends now.
        this.byKey.get(msg.key)?.clientAborted();
        return;
    }
  }

  /**
   * One queued request per turn of the event loop: callbacks relayed from
   * extensions' own threads (PENDING requests finishing) get their turn between.
   */
  private runDeferred(): void {
    if (this.deferred.length > 0 && this.free) this.run(this.deferred.shift()!);
    if (this.deferred.length > 0 && this.free) setImmediate(() => this.runDeferred());
  }

  /** Body parts that will never be read: their input slots go back to the main thread. */
  private releaseSlots(parts: readonly BodyPart[]): void {
    for (const part of parts) if (!(part instanceof Uint8Array)) this.inputArena.release(part.slot);
  }

  private get free(): boolean {
    return this.nested === 0 && !this.procElsewhere;
  }

  private run(msg: RunMessage): void {
    const startedAt = performance.now();
    const shared = new Int32Array(msg.shared);
    // Handed to this thread in advance and taken back for another, or cancelled: not ours to run.
    if (Atomics.compareExchange(shared, RequestSlot.START, this.init.slot, STARTED) !== this.init.slot) {
      for (const early of this.beforeRun.get(msg.key) ?? []) if (early.t === 'body') this.releaseSlots(early.parts);
      this.beforeRun.delete(msg.key);
      return;
    }
    const request = Buffer.from(msg.request.buffer, msg.request.byteOffset, msg.request.byteLength);
    const info = decodeRequest(request);
    const app = this.apps.get(info.appName);
    if (!app) {
      this.log('error', 'request for an app this thread does not host', { app: info.appName });
      return;
    }
    // Keys stay below 2^40 for as long as a bridge runs (over three years at 10 000 requests a second).
    const connId = this.init.slot * this.ownerUnit + msg.key;
    const variables = new ServerVariables(info, app.settings, {
      serverSoftware: this.init.serverSoftware,
      siteRoot: this.init.siteRoot,
      pathSeparator: process.platform === 'win32' ? '\\' : '/',
    });
    const ecb = new EcbMemory({
      connId,
      method: info.method,
      queryString: info.queryString,
      pathInfo: info.pathInfo,
      pathTranslated: variables.textBytes(variables.pathTranslated),
      contentType: variables.contentType,
      totalBytes: info.contentLength < 0 || info.contentLength >= 0xffffffff ? 0xffffffff : info.contentLength,
      preload: msg.preload,
      entries: this.shim.entries,
    });
    const ctx = new RequestContext(msg.key, msg.streamId, connId, info, app.settings, ecb, shared, variables, msg.bodyComplete, this);
    this.byKey.set(msg.key, ctx);
    for (const early of this.beforeRun.get(msg.key) ?? []) this.handle(early, true);
    this.beforeRun.delete(msg.key);

    if (app.settings.relayCallbacks) {
      // This thread stays free to serve callbacks, from any thread, while the call runs elsewhere.
      this.procElsewhere = true;
      this.callSince[0] = sharedClockMs();
      app.proc.async(ecb.address, (err, status) => {
        this.callSince[0] = 0;
        this.procElsewhere = false;
        if (err) this.log('error', 'HttpExtensionProc threw', { requestId: info.requestId, app: app.settings.name, error: String(err) });
        this.afterHttpExtensionProc(ctx, err ? HSE_STATUS.ERROR : status, startedAt);
      });
      return;
    }
    let status: number;
    this.nested++;
    this.callSince[0] = sharedClockMs();
    try {
      status = app.proc(ecb.address);
    } catch (err) {
      this.log('error', 'HttpExtensionProc threw', { requestId: info.requestId, app: app.settings.name, error: String(err) });
      status = HSE_STATUS.ERROR;
    } finally {
      this.callSince[0] = 0;
      this.nested--;
    }
    this.afterHttpExtensionProc(ctx, status, startedAt);
  }

  private afterHttpExtensionProc(ctx: RequestContext, status: number, startedAt: number): void {
    ctx.returned = true;
    ctx.threadMs = performance.now() - startedAt;

    if (status === HSE_STATUS.PENDING) {
      this.send({ t: 'returned', key: ctx.key, pending: true, threadMs: ctx.threadMs });
      // DONE_WITH_SESSION may have come first (IIS allows it); finish now if so.
      if (ctx.doneStatus !== undefined) this.finishRequest(ctx, ctx.doneStatus);
      else this.armPendingTimeout(ctx);
    } else {
      this.finishRequest(ctx, status);
    }
    this.afterExtensionCall();
  }

  /** A PENDING request whose extension never calls DONE_WITH_SESSION must not live forever. */
  private armPendingTimeout(ctx: RequestContext): void {
    const ms = ctx.app.pendingTimeoutMs;
    if (!ms) return;
    const timer = setTimeout(() => {
      if (ctx.finished) return;
      this.log('error', 'extension never called HSE_REQ_DONE_WITH_SESSION; request ended', {
        requestId: ctx.info.requestId,
        app: ctx.app.name,
        pendingTimeoutMs: ms,
      });
      ctx.timedOut = true;
      ctx.finish(HSE_STATUS.ERROR);
      this.byKey.delete(ctx.key);
      // The ECB stays allocated: the extension may still hold its pointer. Its callbacks now fail with 87.
    }, ms);
    timer.unref();
  }

  private onDone(ctx: RequestContext, status: number): void {
    if (ctx.doneStatus !== undefined || ctx.finished) return;
    ctx.doneStatus = status;
    // Before HttpExtensionProc has returned PENDING, finishing waits for that return.
    if (ctx.returned) this.finishRequest(ctx, status, true);
  }

  private finishRequest(ctx: RequestContext, status: number, insideExtensionCall = false): void {
    if (ctx.outstanding) {
      // An operation is still on its way: the ECB must outlive it. Finish once it is done.
      ctx.doneStatus ??= status;
      ctx.afterOutstanding(() => this.finishRequest(ctx, status, false));
      return;
    }
    ctx.finish(status);
    this.byKey.delete(ctx.key);
    // DONE_WITH_SESSION is still on the extension's stack; free the ECB once that call has returned.
    if (insideExtensionCall) setImmediate(() => ctx.ecb.free());
    else ctx.ecb.free();
  }
}

try {
  new ExtensionThread(workerData as WorkerInit);
} catch (err) {
  parentPort!.postMessage({ t: 'fatal', msg: (err as Error).message } satisfies WorkerToMain);
}
