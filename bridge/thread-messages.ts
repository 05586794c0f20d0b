/**
 * Messages between the bridge's main thread (sockets, scheduling) and its
 * extension threads (worker_threads that call HttpExtensionProc).
 *
 * The main thread never parses or builds response frames: extension threads
 * encode whole wire frames and hand over the bytes, so the thread that owns
 * every socket does as little per request as possible.
 */
import type { FileRef } from './file-reader';
import type { StatsBatch } from './live-metrics';
import type { ArenaMemory, ArenaRef, SlotArena } from './slot-arena';
import type { AppSettings } from './request-info';

/** Int32 slots of the per-request SharedArrayBuffer both threads update. */
export const RequestSlot = {
  /** Response bytes handed to the main thread and not yet flushed to the gateway socket. */
  OUTPUT_PENDING: 0,
  /** Request body bytes queued for or posted to the extension thread and not yet read by the extension. */
  INPUT_PENDING: 1,
  /** Non-zero once the client or gateway went away: the Win32 error to report. */
  ABORTED: 2,
  /**
   * Who may start the request: the slot number of the extension thread it was handed
   * to, until that thread claims it (compare-exchange to STARTED). A request handed to
   * a busy thread in advance can be taken back by the main thread the same way, for a
   * thread that fell idle first (thread-pool.ts); the loser of the exchange leaves it.
   */
  START: 3,
} as const;
export const REQUEST_SLOTS = 4;
/** RequestSlot.START once an extension thread has begun the request. */
export const STARTED = -1;

/**
 * Milliseconds on a clock every thread of the process reads alike (each thread's
 * performance.now() counts from that thread's own start).
 */
export function sharedClockMs(): number {
  return performance.timeOrigin + performance.now();
}

export interface WorkerInit {
  /** Owner slot baked into ConnIDs (bits 40..47) so the native shim can route any thread's call. */
  slot: number;
  apps: AppSettings[];
  shimPath: string;
  /** Worker-wide wake-up counter the main thread bumps after every message or flush. */
  signal: SharedArrayBuffer;
  /**
   * One Float64 the thread sets to sharedClockMs() as it calls HttpExtensionProc and to
   * 0 when the call returns: the pool's measure of a thread stuck in one call, which the
   * main thread's own view (when the answers reach it) would overstate whenever its
   * turn or the CPU keeps them waiting.
   */
  callClock: SharedArrayBuffer;
  serverSoftware: string;
  siteRoot: string;
  /** Response bytes a request may have in flight before a synchronous WriteClient blocks. */
  outputWindow: number;
  /** Slots for large WriteClient frames, this thread to the main thread (slot-arena.ts). */
  outputArena: ArenaMemory;
  /** Slots for request body bytes, the main thread to this thread. */
  inputArena: ArenaMemory;
}

/** A piece of body bytes between the threads: bytes of its own (transferred), or a slot in an arena. */
export type BodyPart = Uint8Array | ArenaRef;

export type MainToWorker =
  | {
      t: 'run';
      /** The main thread's key for this request (its connection id). */
      key: number;
      /** Stream id to stamp on response frames. */
      streamId: number;
      /** The REQUEST frame payload, decoded on the extension thread. */
      request: Uint8Array;
      /** Body prefix for lpbData (read-ahead). */
      preload: Uint8Array;
      /** True when the preload is the whole body. */
      bodyComplete: boolean;
      shared: SharedArrayBuffer;
    }
  | { t: 'body'; key: number; parts: BodyPart[] }
  /** Operation `op` (an async write, TransmitFile, VectorSend) has left for the gateway, or failed (error != 0). */
  | { t: 'ioDone'; key: number; op: number; bytes: number; error: number }
  /** The gateway finished an HSE_REQ_EXEC_URL child request. */
  | { t: 'execDone'; key: number; status: number; subStatus: number; win32Error: number }
  | { t: 'bodyEnd'; key: number }
  | { t: 'abort'; key: number; code: number };

export type WorkerToMain =
  /**
   * Encoded frames for the gateway, to be written in this order (see packFrames).
   * `end` marks the request finished (RESPONSE_END included); `op` asks for an
   * ioDone once they have been written. An `end` after HttpExtensionProc returned
   * carries `threadMs`.
   */
  | { t: 'out'; key: number; bytes: BodyPart[]; end: boolean; op?: number; threadMs?: number }
  /** TransmitFile / VectorSend: send these in order, file ranges read by the main thread, then ioDone. */
  | { t: 'segments'; key: number; segments: OutputSegment[]; op: number }
  /** HSE_REQ_REPORT_UNHEALTHY from an extension. */
  | { t: 'unhealthy'; key: number; reason: string }
  /** Live async-operation metrics recorded on this thread since the last batch. */
  | { t: 'stats'; batch: StatsBatch }
  /**
   * HttpExtensionProc returned: the thread is free for the next request of its queue.
   * `threadMs`: the thread's milliseconds on the request, from its run message to the
   * return. The pool paces in-advance hand-overs by it: the main thread's own clock
   * would add however long its turn kept the message waiting.
   */
  | { t: 'returned'; key: number; pending: boolean; threadMs: number }
  | { t: 'log'; level: LogLevel; msg: string; fields?: Record<string, string | number | boolean> }
  | { t: 'ready'; slot: number }
  | { t: 'fatal'; msg: string };

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * Part of a TransmitFile or VectorSend: ready-made frames, or a file range sent as
 * RESPONSE_BODY frames (`file`: a file descriptor, or a Windows HANDLE; see file-reader.ts).
 */
export type OutputSegment =
  | { kind: 'frames'; bytes: Uint8Array; payloadBytes: number }
  | { kind: 'file'; file: FileRef; offset: number; length: number };

/**
 * Below this size a frame is copied together with its neighbours rather than sent
 * as a buffer of its own: one small write instead of several, and fewer buffers
 * to transfer. A 64 KiB WriteClient frame is never copied.
 */
const COALESCE_BELOW = 16 * 1024;

/** True when `b` spans an ArrayBuffer of its own, which can be transferred to another thread. */
function ownsArrayBuffer(b: Uint8Array): boolean {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer;
}

/**
 * Frames ready to hand to the main thread, in order: frames in the arena go as
 * references, large frames that own their ArrayBuffer go as they are (to be
 * transferred), every run of other frames is copied into one buffer.
 */
export function packFrames(parts: readonly Uint8Array[], arena?: SlotArena): BodyPart[] {
  const packed: BodyPart[] = [];
  let run: Uint8Array[] = [];
  const endRun = (): void => {
    if (run.length > 0) packed.push(run.length === 1 && ownsArrayBuffer(run[0]!) ? run[0]! : assemble(run));
    run = [];
  };
  for (const part of parts) {
    if (arena && arena.slotOf(part) >= 0) {
      endRun();
      packed.push(arena.ref(part));
    } else if (part.length >= COALESCE_BELOW && ownsArrayBuffer(part)) {
      endRun();
      packed.push(part);
    } else {
      run.push(part);
    }
  }
  endRun();
  return packed;
}

/** The ArrayBuffers to transfer with a message carrying `parts` (arena references need none). */
export function transferList(parts: readonly BodyPart[]): ArrayBuffer[] {
  const transfer: ArrayBuffer[] = [];
  for (const p of parts) if (p instanceof Uint8Array) transfer.push(p.buffer as ArrayBuffer);
  return transfer;
}

/**
 * The parts concatenated into a buffer with an ArrayBuffer of its own, so it can be
 * transferred to the other thread without a copy: Buffer.concat may hand out a slice
 * of Node's shared pool, which cannot be transferred.
 */
export function assemble(parts: readonly Uint8Array[]): Buffer {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = Buffer.allocUnsafeSlow(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
