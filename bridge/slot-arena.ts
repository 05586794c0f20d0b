/**
 * Shared memory for large body bytes between the bridge's main thread and an extension
 * thread: one arena per direction per extension thread.
 *
 * Without it every large piece is copied into a fresh ArrayBuffer that is transferred
 * to the other thread and becomes garbage there. V8 collects such buffers only when
 * its own heap or its external-memory limit (64 MiB) asks for it, so a slow client's
 * stream left tens of MiB of dead buffers in the bridge (bench/RESULTS.md, session 4).
 * Here the bytes are copied into a fixed slot that the other thread frees as soon as
 * it is done with them.
 *
 * A slot holds up to SLOT_PAYLOAD bytes with FRAME_HEADER_SIZE bytes of room in front.
 * Its state lives in a shared Int32Array, and only these changes happen:
 * - Output (WriteClient data, extension thread to main thread):
 *   FREE -> TAKEN (extension thread, for one WriteClient); TAKEN -> FRAMED (the
 *   RESPONSE_BODY frame is built in place and will be posted, RequestContext.bodyFrame);
 *   TAKEN -> FREE (the write did not become a frame: a failed call); FRAMED -> FREE
 *   (main thread, once the socket has taken the frame).
 * - Input (request body, main thread to extension thread): FREE -> TAKEN (main thread,
 *   fill); TAKEN -> FREE (extension thread, once ReadClient has copied the bytes out or
 *   the request has ended).
 * When every slot is in use the bytes take a fresh buffer as before: nothing waits for a slot.
 */
import { mapRegion, type SpoolRegion } from './spool';
import { assemble, type BodyPart } from './thread-messages';
import { FRAME_HEADER_SIZE } from './wire';

/** Largest WriteClient that goes through a slot: the common 64 KiB write. */
export const SLOT_PAYLOAD = 64 * 1024;
/** Smaller writes are copied together with their neighbours anyway (thread-messages.ts). */
export const SLOT_MIN_PAYLOAD = 16 * 1024;
/** Slot size, header room first; a multiple of 64 keeps every payload cache-line aligned. */
const SLOT_STRIDE = SLOT_PAYLOAD + 64;
/** Where the frame starts in a slot: the payload then starts at a 64-byte boundary. */
const FRAME_START = 64 - FRAME_HEADER_SIZE;
/** 8 MiB a thread: more than one request's response buffer and output window together. */
export const ARENA_SLOTS = 128;
/** An arena's data bytes. */
export const arenaBytes = (slots: number): number => slots * SLOT_STRIDE;

const FREE = 0;
const TAKEN = 1;
const FRAMED = 2;

/**
 * An arena's shared memory, created by the main thread and sent in WorkerInit: its data
 * is a SharedArrayBuffer, or a region of the spool file (spool.ts) that each thread maps.
 */
export interface ArenaMemory {
  readonly data: SharedArrayBuffer | SpoolRegion;
  readonly states: SharedArrayBuffer;
}

/** An arena of `slots` slots; in `region` of the spool file if given (sized with arenaBytes). */
export function createArenaMemory(slots = ARENA_SLOTS, region?: SpoolRegion): ArenaMemory {
  return { data: region ?? new SharedArrayBuffer(arenaBytes(slots)), states: new SharedArrayBuffer(slots * 4) };
}

/** A framed slot as it travels in an 'out' message: the frame's bytes in the arena. */
export interface ArenaRef {
  readonly slot: number;
  readonly start: number;
  readonly length: number;
}

export class SlotArena {
  private readonly states: Int32Array;
  private readonly slots: number;
  /** The data bytes as this thread sees them. */
  private readonly data: ArrayBufferLike;
  /** The region of the spool file the data is, if it is one. */
  private readonly region: SpoolRegion | undefined;

  constructor(memory: ArenaMemory) {
    this.states = new Int32Array(memory.states);
    this.slots = this.states.length;
    if (memory.data instanceof SharedArrayBuffer) {
      this.data = memory.data;
    } else {
      this.region = memory.data;
      this.data = mapRegion(memory.data);
    }
  }

  // The thread that sends -------------------------------------------------

  /**
   * A slot's payload area for `n` bytes (with frame-header room before it), or undefined.
   * The lowest free slot: the pages a thread touches (its RSS) stay as few as its
   * busiest moment needed, not the whole arena.
   */
  take(n: number, min = SLOT_MIN_PAYLOAD): Buffer | undefined {
    if (n < min || n > SLOT_PAYLOAD) return undefined;
    for (let slot = 0; slot < this.slots; slot++) {
      if (Atomics.load(this.states, slot) !== FREE) continue;
      Atomics.store(this.states, slot, TAKEN);
      return Buffer.from(this.data, slot * SLOT_STRIDE + FRAME_START + FRAME_HEADER_SIZE, n);
    }
    return undefined;
  }

  /** The slot `data` (from take) is in, or -1 when it is not arena memory. */
  slotOf(data: Uint8Array): number {
    if (data.buffer !== this.data) return -1;
    return Math.floor(data.byteOffset / SLOT_STRIDE);
  }

  /** The whole frame around `data` (from take), its header room included; the slot now belongs to the frame. */
  frame(data: Buffer): Buffer {
    const slot = this.slotOf(data);
    Atomics.store(this.states, slot, FRAMED);
    return Buffer.from(this.data, data.byteOffset - FRAME_HEADER_SIZE, data.length + FRAME_HEADER_SIZE);
  }

  /** After the WriteClient call: a slot that did not become a frame is free again. */
  releaseUnframed(data: Buffer): void {
    const slot = this.slotOf(data);
    if (slot >= 0) Atomics.compareExchange(this.states, slot, TAKEN, FREE);
  }

  ref(frame: Uint8Array): ArenaRef {
    return { slot: this.slotOf(frame), start: frame.byteOffset, length: frame.length };
  }

  // The thread that receives -----------------------------------------------

  view(ref: ArenaRef): Buffer {
    return Buffer.from(this.data, ref.start, ref.length);
  }

  /** Where the payload of the RESPONSE_BODY frame at `ref` is in the spool file; -1 if the arena is not in it. */
  spoolOffset(ref: ArenaRef): number {
    return this.region ? this.region.offset + ref.start + FRAME_HEADER_SIZE : -1;
  }

  /** The receiving thread is done with the bytes in `slot`. */
  release(slot: number): void {
    Atomics.store(this.states, slot, FREE);
  }

  /** release() for a view from view(); anything else is left alone. */
  releaseView(data: Uint8Array): void {
    const slot = this.slotOf(data);
    if (slot >= 0) this.release(slot);
  }

  // Input: the main thread sends -------------------------------------------

  /**
   * `chunks` (`total` bytes) copied into slots, in order; what finds no free slot goes
   * as one fresh buffer, to be transferred.
   */
  fill(chunks: readonly Uint8Array[], total: number): BodyPart[] {
    const parts: BodyPart[] = [];
    let chunk = 0;
    let offset = 0;
    let left = total;
    while (left > 0) {
      const slot = this.take(Math.min(left, SLOT_PAYLOAD), 1);
      if (!slot) break;
      let at = 0;
      while (at < slot.length) {
        const from = chunks[chunk]!;
        const n = Math.min(slot.length - at, from.length - offset);
        slot.set(from.subarray(offset, offset + n), at);
        at += n;
        offset += n;
        if (offset === from.length) {
          chunk++;
          offset = 0;
        }
      }
      parts.push(this.ref(slot));
      left -= slot.length;
    }
    if (left > 0) parts.push(assemble([chunks[chunk]!.subarray(offset), ...chunks.slice(chunk + 1)]));
    return parts;
  }
}
