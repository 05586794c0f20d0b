/**
 * The gateway's side of the response spool (bridge/spool.ts; bridge/PROTOCOL.md, item 8).
 * A Unix-socket bridge offers its spool file; the gateway opens it through /proc, checks
 * that it is the file the bridge named (gateway/bridge-descriptor.ts), and maps it
 * read-only (gateway/native/spool_map.c). Each RESPONSE_SPOOL's bytes then go to the
 * client as a view of that mapping: the gateway copies nothing.
 *
 * So the bridge must not reuse a piece's slot while a client write still reads it. The
 * gateway frees each piece (SPOOL_FREE, by offset) once the write that took its bytes
 * has completed, or failed, and the bridge reuses the slot only then. A piece released
 * after its connection closed is not freed from here: the bridge keeps such slots taken
 * until this gateway process has exited (bridge/retired-slots.ts), since it cannot know
 * when the gateway's write ends.
 *
 * The mapping is an ArrayBuffer that lives as long as any view of it: a client write
 * keeps its bytes mapped even after the bridge is gone. pread() into a buffer of our
 * own was the version before; the copy cost a third of the gateway's CPU on a stream
 * (bench/RESULTS.md, session 10).
 */
import fs from 'node:fs';
import { findNativeArtefact } from '../bridge/native-path';
import { WireProtocolError, type SpoolOffer, type SpoolPiece } from '../bridge/wire';
import { descriptorPath, isNamedFile } from './bridge-descriptor';

/** The addon built from gateway/native/spool_map.c. */
interface SpoolMapper {
  /** The first `size` bytes of the file open at `fd`, mapped shared and read-only; unmapped when collected. */
  map(fd: number, size: number): ArrayBuffer;
}

const MAPPER_FILE = 'spool_map.node';

/** The addon, or why there is none (it is built by `npm run build:native`, on Linux only). */
function loadMapper(): SpoolMapper | string {
  const file = findNativeArtefact(MAPPER_FILE);
  if (file === undefined) return `${MAPPER_FILE} is not built (npm run build:native)`;
  try {
    return require(file) as SpoolMapper;
  } catch (err) {
    return `${file} does not load: ${(err as Error).message}`;
  }
}

/** One bridge process's spool file, mapped once for all of its connections. */
interface MappedSpool {
  readonly key: string;
  readonly bytes: ArrayBuffer;
  users: number;
}

/** Hears of each bridge process whose spool this gateway cannot map, once, with the reason. */
export type DeclineListener = (offer: SpoolOffer, reason: string) => void;

/** The spool files of one bridge (BridgeClient), shared by its connections. */
export class SpoolFiles {
  private readonly mapped = new Map<string, MappedSpool>();
  /** Offers that could not be mapped: every connection to that bridge process makes the same one. */
  private readonly declined = new Set<string>();
  private mapper: SpoolMapper | string | undefined;
  /** Bytes of pieces handed out and not yet released, over all connections (isapi_bridge_spool_held_bytes). */
  heldBytes = 0;

  constructor(private readonly onDecline: DeclineListener = () => undefined) {}

  /**
   * The connection's view of the offered file, or undefined if this gateway cannot map
   * it (another host or PID namespace, no /proc, no addon). `sendFree` sends SPOOL_FREE.
   */
  attach(offer: SpoolOffer, sendFree: (offsets: number[]) => void): ConnectionSpool | undefined {
    const key = `${offer.pid}/${offer.fd}/${offer.dev}/${offer.ino}`;
    if (this.declined.has(key)) return undefined;
    let spool = this.mapped.get(key);
    if (!spool) {
      const bytes = this.map(offer);
      if (typeof bytes === 'string') {
        this.declined.add(key);
        this.onDecline(offer, bytes);
        return undefined;
      }
      spool = { key, bytes, users: 0 };
      this.mapped.set(key, spool);
    }
    spool.users++;
    return new ConnectionSpool(spool.bytes, sendFree, this, () => this.detach(spool));
  }

  /** Spool files mapped for connections right now (a mapping itself lasts until its last view is collected). */
  get mappedCount(): number {
    return this.mapped.size;
  }

  private detach(spool: MappedSpool): void {
    if (--spool.users === 0) this.mapped.delete(spool.key);
  }

  /** The offered file's bytes, or why they cannot be had. */
  private map(offer: SpoolOffer): ArrayBuffer | string {
    this.mapper ??= loadMapper();
    if (typeof this.mapper === 'string') return this.mapper;
    const where = descriptorPath(offer);
    if (where === undefined) return 'no /proc to open it through';
    let fd: number;
    try {
      fd = fs.openSync(where, 'r');
    } catch (err) {
      return `cannot open ${where}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
    }
    try {
      const stat = fs.fstatSync(fd, { bigint: true });
      if (!isNamedFile(stat, offer)) return `${where} is not the file the bridge named`;
      if (stat.size < BigInt(offer.size)) return `${where} holds ${stat.size} bytes, not the ${offer.size} offered`;
      return this.mapper.map(fd, offer.size);
    } catch (err) {
      return `cannot map ${where}: ${(err as Error).message}`;
    } finally {
      fs.closeSync(fd); // The mapping stays without it.
    }
  }
}

/** A RESPONSE_SPOOL's bytes, and what frees them: call it once, when the client no longer needs them. */
export interface SpoolBytes {
  readonly bytes: Buffer;
  readonly release: () => void;
}

/** Where a connection counts the bytes it holds. */
interface HeldTally {
  heldBytes: number;
}

/** One connection's pieces of the spool: the ones it holds, and the frees to send. */
export class ConnectionSpool {
  /** Pieces handed out and not yet released: offset -> length. */
  private readonly held = new Map<number, number>();
  private toFree: number[] = [];
  private flushQueued = false;
  private detached = false;

  constructor(
    private readonly spool: ArrayBuffer,
    private readonly sendFree: (offsets: number[]) => void,
    private readonly tally: HeldTally,
    private readonly onDetach: () => void,
  ) {}

  get size(): number {
    return this.spool.byteLength;
  }

  /** The piece's bytes as a view of the mapping. */
  take(piece: SpoolPiece): SpoolBytes {
    if (this.held.has(piece.offset)) {
      throw new WireProtocolError('ERR_WIRE_BAD_VALUE', `RESPONSE_SPOOL at offset ${piece.offset}, which the gateway has not freed`);
    }
    this.held.set(piece.offset, piece.length);
    this.tally.heldBytes += piece.length;
    return { bytes: Buffer.from(this.spool, piece.offset, piece.length), release: () => this.release(piece.offset) };
  }

  /** The connection is closed: nothing more is freed (the bridge keeps what was held) or taken. */
  detach(): void {
    if (this.detached) return;
    this.detached = true;
    for (const length of this.held.values()) this.tally.heldBytes -= length;
    this.held.clear();
    this.toFree = [];
    this.onDetach();
  }

  /** Frees go out together: one SPOOL_FREE for the writes that complete in one turn. */
  private release(offset: number): void {
    const length = this.held.get(offset);
    if (length === undefined) return;
    this.held.delete(offset);
    this.tally.heldBytes -= length;
    this.toFree.push(offset);
    if (this.flushQueued) return;
    this.flushQueued = true;
    process.nextTick(() => {
      this.flushQueued = false;
      if (this.toFree.length === 0) return;
      const offsets = this.toFree;
      this.toFree = [];
      this.sendFree(offsets);
    });
  }
}
