/**
 * Reusable read buffers for the gateway's bridge connections.
 *
 * By default Node allocates a fresh 64 KiB ArrayBuffer for every socket read. A
 * streamed response therefore left one dead buffer per read for V8 to collect, and
 * that collection cost about as much as the write to the client (bench/RESULTS.md,
 * session 4). Here a connection reads into a buffer from a pool (net.Socket's
 * `onread`). Body bytes go to the client as views of that buffer, with no copy. The
 * buffer goes back to the pool once the read has been handled and every client write
 * that references it has completed, counted per buffer.
 *
 * A connection with no request reads into a small buffer: an idle pooled connection
 * holds 4 KiB, not 256.
 */

/**
 * Read size while a request is using the connection. Four times Node's 64 KiB: a
 * streaming extension's 64 KiB frames then arrive several to a read, and leave for
 * the client in one writev (bench/RESULTS.md, session 5).
 */
export const BUSY_READ_BYTES = 256 * 1024;
/** Read size of an idle connection, enough for a small response's frames. */
export const IDLE_READ_BYTES = 4 * 1024;
/** Free buffers kept per size (at most 4 MiB of them); more are left to the garbage collector. */
const maxFree = (size: number): number => Math.min(64, (4 * 1024 * 1024) / size);

const noop = (): void => undefined;

export class ReadBufferPool {
  private readonly free = new Map<number, Buffer[]>([
    [BUSY_READ_BYTES, []],
    [IDLE_READ_BYTES, []],
  ]);
  /** References to each pooled buffer in use: its socket read, and client writes not yet completed. */
  private readonly refs = new Map<ArrayBuffer, number>();

  /** A buffer for the next read of a socket; the read holds one reference until release(). */
  take(size: number): Buffer {
    const buf = this.free.get(size)?.pop() ?? Buffer.allocUnsafeSlow(size);
    this.refs.set(buf.buffer as ArrayBuffer, 1);
    return buf;
  }

  /**
   * Another reference to the buffer under `view` (a body piece on its way to the client).
   * Returns the function that drops it: call it exactly once, when the write is done.
   * A view of any other memory needs nothing: the returned function does nothing.
   */
  retain(view: Uint8Array): () => void {
    const ab = view.buffer as ArrayBuffer;
    const n = this.refs.get(ab);
    if (n === undefined) return noop;
    this.refs.set(ab, n + 1);
    let dropped = false;
    return () => {
      if (dropped) return;
      dropped = true;
      this.drop(ab);
    };
  }

  /** The read into `buf` has been handled. */
  release(buf: Uint8Array): void {
    this.drop(buf.buffer as ArrayBuffer);
  }

  private drop(ab: ArrayBuffer): void {
    const n = this.refs.get(ab);
    if (n === undefined) return;
    if (n > 1) {
      this.refs.set(ab, n - 1);
      return;
    }
    this.refs.delete(ab);
    const free = this.free.get(ab.byteLength);
    if (free && free.length < maxFree(ab.byteLength)) free.push(Buffer.from(ab, 0, ab.byteLength));
  }
}

/** The gateway's one pool: every bridge connection reads from it, every body write retains from it. */
export const readBuffers = new ReadBufferPool();
