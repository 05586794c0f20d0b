/**
 * The gateway's side of the response spool (bridge/spool.ts; bridge/PROTOCOL.md, item 8).
 * A Unix-socket bridge offers its spool file; the gateway opens it through /proc, checks
 * that it is the file the bridge named (gateway/bridge-descriptor.ts), and copies each
 * RESPONSE_SPOOL's bytes out of it with pread() into a pooled read buffer. From there
 * they go to the client exactly like RESPONSE_BODY bytes read from the socket.
 *
 * The copy is made while the frame is handled, so the bridge may reuse the bytes' slot
 * as soon as it hears SPOOL_FREE, and closing the file never races a client write.
 * pread(), not a mapping: mapping needs koffi, and koffi loaded in the gateway made its
 * garbage collector run twice as many full collections under load, which cost more
 * than the copy saves (bench/RESULTS.md, session 9).
 */
import fs from 'node:fs';
import { WireProtocolError, type SpoolOffer, type SpoolPiece } from '../bridge/wire';
import { descriptorPath, isNamedFile } from './bridge-descriptor';
import { BUSY_READ_BYTES, readBuffers } from './read-buffers';

/** One bridge process's spool file, opened once for all of its connections. */
interface OpenSpool {
  readonly key: string;
  readonly fd: number;
  readonly size: number;
  users: number;
}

/** The spool files of one bridge (BridgeClient), shared by its connections. */
export class SpoolFiles {
  private readonly files = new Map<string, OpenSpool>();
  /** Offers that could not be opened: every connection to that bridge process makes the same one. */
  private readonly declined = new Set<string>();

  /** `onDecline` hears of each bridge process whose spool cannot be read here, once. */
  constructor(private readonly onDecline: (offer: SpoolOffer) => void = () => undefined) {}

  /** A reader of the offered file, or undefined if this gateway cannot open it (another host or PID namespace, no /proc). */
  attach(offer: SpoolOffer): SpoolReader | undefined {
    const key = `${offer.pid}/${offer.fd}/${offer.dev}/${offer.ino}`;
    if (this.declined.has(key)) return undefined;
    let spool = this.files.get(key);
    if (!spool) {
      const fd = openOffered(offer);
      if (fd === undefined) {
        this.declined.add(key);
        this.onDecline(offer);
        return undefined;
      }
      spool = { key, fd, size: offer.size, users: 0 };
      this.files.set(key, spool);
    }
    spool.users++;
    return new SpoolReader(spool, () => this.detach(spool));
  }

  /** Files open right now (for tests and diagnostics). */
  get openCount(): number {
    return this.files.size;
  }

  private detach(spool: OpenSpool): void {
    if (--spool.users > 0) return;
    this.files.delete(spool.key);
    fs.closeSync(spool.fd);
  }
}

/** The offered file, opened, or undefined if it is not the file the bridge named. */
function openOffered(offer: SpoolOffer): number | undefined {
  const where = descriptorPath(offer);
  if (where === undefined) return undefined;
  let fd: number;
  try {
    fd = fs.openSync(where, 'r');
  } catch {
    return undefined;
  }
  try {
    const stat = fs.fstatSync(fd, { bigint: true });
    if (isNamedFile(stat, offer) && stat.size >= BigInt(offer.size)) return fd;
  } catch {
    /* declined below */
  }
  fs.closeSync(fd);
  return undefined;
}

/** One connection's reads from the spool: a pooled buffer per socket read, and the count to free. */
export class SpoolReader {
  private buffer: Buffer | undefined;
  private used = 0;
  private reads = 0;
  private detached = false;

  constructor(
    private readonly spool: OpenSpool,
    private readonly onDetach: () => void,
  ) {}

  get size(): number {
    return this.spool.size;
  }

  /** The piece's bytes, copied out of the spool now: a view of a pooled read buffer (read-buffers.ts). */
  read(piece: SpoolPiece): Buffer {
    this.reads++;
    if (piece.length > BUSY_READ_BYTES) return this.fill(Buffer.allocUnsafeSlow(piece.length), 0, piece);
    if (!this.buffer || this.used + piece.length > this.buffer.length) {
      this.releaseBuffer();
      this.buffer = readBuffers.take(BUSY_READ_BYTES);
    }
    const at = this.used;
    this.used += piece.length;
    return this.fill(this.buffer, at, piece);
  }

  /** The socket read's frames are handled: the number of RESPONSE_SPOOL frames to free (SPOOL_FREE). */
  endTurn(): number {
    this.releaseBuffer();
    const n = this.reads;
    this.reads = 0;
    return n;
  }

  /** The connection is closed: the file closes with its last reader. */
  detach(): void {
    if (this.detached) return;
    this.detached = true;
    this.releaseBuffer();
    this.onDetach();
  }

  private fill(buf: Buffer, at: number, piece: SpoolPiece): Buffer {
    const n = fs.readSync(this.spool.fd, buf, at, piece.length, piece.offset);
    if (n !== piece.length) throw new WireProtocolError('ERR_WIRE_BAD_VALUE', `RESPONSE_SPOOL read ${n} of ${piece.length} bytes at ${piece.offset}`);
    return buf.subarray(at, at + n);
  }

  private releaseBuffer(): void {
    if (this.buffer) readBuffers.release(this.buffer);
    this.buffer = undefined;
    this.used = 0;
  }
}
