/**
 * Puts one request's output on its gateway socket in the order the extension
 * produced it: frames from WriteClient, and the segments of TransmitFile /
 * VectorSend, whose file ranges are read here (file-reader.ts: libuv's thread pool) and sent as
 * RESPONSE_BODY frames with socket backpressure, so a 4 GiB file to a slow
 * client keeps memory flat. Tells the extension thread when an asynchronous
 * operation's bytes have gone.
 */
import fs from 'node:fs';
import type net from 'node:net';
import { WIN32_ERROR } from './abi/constants';
import { FileReadError, fileSource, type FileRef } from './file-reader';
import type { OutputSegment } from './thread-messages';
import { FRAME_HEADER_SIZE, FileDoneResult, FrameType, encodeResponseFile, type FileDone } from './wire';

/** File bytes per RESPONSE_BODY frame: large enough for throughput, small next to the socket's buffer. */
const FILE_CHUNK = 256 * 1024;

/** A frame is with the gateway: `error` is 0, or a Win32 code if the connection went away first. */
type Done = (error: number) => void;

type Item =
  | { kind: 'out'; bytes: Buffer; end: boolean; done: Done; spooled?: (sent: Done) => void }
  | { kind: 'segments'; segments: OutputSegment[]; op: number };

export interface WriterEvents {
  /** Operation `op` is done: `bytes` of body went out, or `error` (a Win32 code) if the connection went away. */
  ioDone(op: number, bytes: number, error: number): void;
  /** The RESPONSE_END frame has been handed to the socket. */
  ended(): void;
}

export interface WriterOptions {
  /**
   * Offer file ranges to the gateway (RESPONSE_FILE) instead of reading them here:
   * only on a Unix socket, where the gateway shares this host (POSIX descriptors).
   */
  offerFiles: boolean;
}

export class ResponseWriter {
  private readonly queue: Item[] = [];
  private busy = false;
  private offerFiles: boolean;
  private fileAnswer: ((done: FileDone | Error) => void) | undefined;

  constructor(
    private readonly socket: net.Socket,
    private readonly streamId: number,
    private readonly events: WriterEvents,
    options: WriterOptions = { offerFiles: false },
  ) {
    this.offerFiles = options.offerFiles;
  }

  /** FILE_DONE from the gateway for the range offered last. */
  fileDone(done: FileDone): void {
    const answer = this.fileAnswer;
    this.fileAnswer = undefined;
    answer?.(done);
  }

  /** True while a RESPONSE_FILE is waiting for its FILE_DONE. */
  get offering(): boolean {
    return this.fileAnswer !== undefined;
  }

  /**
   * A frame to send in turn; `done` once the socket has taken it. A RESPONSE_SPOOL frame
   * is done only when the gateway frees its bytes: `spooled` is handed `done` as the
   * frame is written, to finish it then.
   */
  out(bytes: Buffer, end: boolean, done: Done, spooled?: (sent: Done) => void): void {
    this.queue.push({ kind: 'out', bytes, end, done, spooled });
    this.pump();
  }

  segments(segments: OutputSegment[], op: number): void {
    this.queue.push({ kind: 'segments', segments, op });
    this.pump();
  }

  private pump(): void {
    if (this.busy) return;
    while (this.queue.length > 0) {
      const item = this.queue[0]!;
      if (item.kind === 'segments') {
        this.busy = true;
        void this.sendSegments(item).then(() => {
          this.queue.shift();
          this.busy = false;
          this.pump();
        });
        return;
      }
      this.queue.shift();
      this.sendOut(item);
    }
  }

  private sendOut(item: Extract<Item, { kind: 'out' }>): void {
    if (this.socket.destroyed) {
      item.done(WIN32_ERROR.NETNAME_DELETED);
    } else if (item.spooled) {
      this.socket.write(item.bytes);
      item.spooled(item.done);
    } else {
      this.socket.write(item.bytes, (err) => item.done(err || this.socket.destroyed ? WIN32_ERROR.NETNAME_DELETED : 0));
    }
    if (item.end) this.events.ended();
  }

  private async sendSegments(item: Extract<Item, { kind: 'segments' }>): Promise<void> {
    let sent = 0;
    try {
      for (const seg of item.segments) {
        if (this.socket.destroyed) throw new Error('gateway connection closed');
        if (seg.kind === 'frames') {
          await this.write(Buffer.from(seg.bytes.buffer, seg.bytes.byteOffset, seg.bytes.byteLength));
          sent += seg.payloadBytes;
        } else {
          await this.sendFile(seg.file, seg.offset, seg.length, (n) => (sent += n));
        }
      }
      this.events.ioDone(item.op, sent, 0);
    } catch (err) {
      // A file that cannot be read fails the operation with its error; the connection stays usable.
      this.events.ioDone(item.op, sent, err instanceof FileReadError ? err.code : WIN32_ERROR.NETNAME_DELETED);
    }
  }

  /** Sends a file range; `progress` counts the body bytes as they go (also when a later read fails). */
  private async sendFile(file: FileRef, offset: number, length: number, progress: (bytes: number) => void): Promise<void> {
    if (this.offerFiles && typeof file === 'number' && length > 0) {
      const done = await this.offerFile(file, offset, length);
      if (done) {
        progress(done.bytes);
        if (done.result === FileDoneResult.CLIENT_GONE) throw new Error('client closed the connection');
        if (done.result === FileDoneResult.READ_FAILED) throw new FileReadError(done.win32Error);
        return;
      }
      // Declined: this gateway cannot open our descriptors (another PID namespace, no /proc); stop asking.
      this.offerFiles = false;
    }
    const source = fileSource(file);
    try {
      let sent = 0;
      while (sent < length) {
        if (this.socket.destroyed) throw new Error('gateway connection closed');
        const want = Math.min(FILE_CHUNK, length - sent);
        // Header and data in one buffer: one write, and the buffer belongs to the socket afterwards.
        const buf = Buffer.allocUnsafeSlow(FRAME_HEADER_SIZE + want);
        const n = await source.read(buf, FRAME_HEADER_SIZE, want, offset + sent);
        if (n === 0) break; // The file shrank under us: send what there was.
        buf[0] = FrameType.RESPONSE_BODY;
        buf[1] = 0;
        buf.writeUInt16LE(0, 2);
        buf.writeUInt32LE(this.streamId, 4);
        buf.writeUInt32LE(n, 8);
        await this.write(buf.subarray(0, FRAME_HEADER_SIZE + n));
        sent += n;
        progress(n);
      }
    } finally {
      source.close(); // Only what reading allocated: the extension owns the handle.
    }
  }

  /** Offers the range to the gateway; undefined if it declined and the range is still ours to send. */
  private async offerFile(fd: number, offset: number, length: number): Promise<FileDone | undefined> {
    let stat: fs.BigIntStats;
    try {
      stat = fs.fstatSync(fd, { bigint: true });
    } catch {
      return undefined; // Reading will report what is wrong with the handle.
    }
    if (!stat.isFile()) return undefined;
    const answer = new Promise<FileDone | Error>((resolve) => {
      const onClose = (): void => resolve(new Error('gateway connection closed'));
      this.socket.once('close', onClose);
      this.fileAnswer = (done) => {
        this.socket.off('close', onClose);
        resolve(done);
      };
    });
    this.socket.write(encodeResponseFile(this.streamId, { pid: process.pid, fd, dev: String(stat.dev), ino: String(stat.ino), offset, length }));
    const done = await answer;
    if (done instanceof Error) throw done;
    return done.result === FileDoneResult.DECLINED ? undefined : done;
  }

  /** Resolves when the socket can take more (backpressure), rejects if it closes first. */
  private write(buf: Buffer): Promise<void> {
    if (this.socket.write(buf)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onDrain = (): void => {
        this.socket.off('close', onClose);
        resolve();
      };
      const onClose = (): void => {
        this.socket.off('drain', onDrain);
        reject(new Error('gateway connection closed'));
      };
      this.socket.once('drain', onDrain);
      this.socket.once('close', onClose);
    });
  }
}
