/**
 * The native memory behind one EXTENSION_CONTROL_BLOCK: the 192-byte struct, the
 * strings it points to and the read-ahead body, in one allocation that lives
 * exactly as long as the request (until HttpExtensionProc returns, or until
 * DONE_WITH_SESSION for a PENDING request).
 */
import koffi from 'koffi';
import { HSE_LOG_BUFFER_LEN, HSE_VERSION } from './abi/constants';
import { ECB, ECB_SIZE } from './abi/structs';

export interface EcbFields {
  connId: number;
  method: string;
  /** Never null: "" when the URL has no query, as IIS passes (mod_isapi passed NULL, crashing PHP). */
  queryString: string;
  pathInfo: string;
  /** Already encoded: a physical path is text in the platform's encoding, not raw request bytes. */
  pathTranslated: Buffer;
  contentType: string;
  /** Content-Length, or 0xFFFFFFFF for a chunked body or one of 4 GiB or more. */
  totalBytes: number;
  preload: Uint8Array;
  /** The four shim entry points, in ECB order. */
  entries: readonly [bigint, bigint, bigint, bigint];
}

/** A native block and a Buffer over it, kept for reuse by later requests on this thread. */
interface Block {
  address: bigint;
  view: Buffer;
  capacity: number;
}

/** Block sizes worth keeping: almost every request fits the first; read-ahead bodies the last. */
const SIZE_CLASSES = [2048, 8192, 65536] as const;
const KEEP_PER_CLASS = 16;
const spare = new Map<number, Block[]>(SIZE_CLASSES.map((c) => [c, []]));

function takeBlock(size: number): Block {
  const cls = SIZE_CLASSES.find((c) => c >= size);
  const reused = cls === undefined ? undefined : spare.get(cls)!.pop();
  if (reused) return reused;
  const capacity = cls ?? size;
  const address = koffi.alloc('uint8_t', capacity) as bigint;
  return { address, view: Buffer.from(koffi.view(address, capacity)), capacity };
}

function giveBack(block: Block): void {
  const list = spare.get(block.capacity);
  if (list && list.length < KEEP_PER_CLASS) list.push(block);
  else koffi.free(block.address);
}

export class EcbMemory {
  readonly address: bigint;
  private readonly view: Buffer;
  private readonly block: Block;
  private freed = false;

  constructor(f: EcbFields) {
    const strings = [f.method, f.queryString, f.pathInfo, f.pathTranslated, f.contentType];
    let size = ECB_SIZE;
    for (const s of strings) size += (typeof s === 'string' ? Buffer.byteLength(s, 'latin1') : s.length) + 1;
    // One NUL after the read-ahead bytes, as IIS leaves there.
    size += f.preload.length + 1;
    this.block = takeBlock(size);
    this.address = this.block.address;
    this.view = this.block.view;
    const v = this.view;
    v.fill(0, 0, ECB_SIZE);
    v.writeUInt32LE(ECB_SIZE, ECB.cbSize);
    v.writeUInt32LE(HSE_VERSION, ECB.dwVersion);
    v.writeBigUInt64LE(BigInt(f.connId), ECB.ConnID);
    v.writeUInt32LE(200, ECB.dwHttpStatusCode);

    let at = ECB_SIZE;
    const place = (s: string | Buffer, field: number): void => {
      v.writeBigUInt64LE(this.address + BigInt(at), field);
      at += typeof s === 'string' ? v.write(s, at, 'latin1') : (v.set(s, at), s.length);
      v[at++] = 0;
    };
    place(f.method, ECB.lpszMethod);
    place(f.queryString, ECB.lpszQueryString);
    place(f.pathInfo, ECB.lpszPathInfo);
    place(f.pathTranslated, ECB.lpszPathTranslated);
    place(f.contentType, ECB.lpszContentType);

    v.writeUInt32LE(f.totalBytes >>> 0, ECB.cbTotalBytes);
    v.writeUInt32LE(f.preload.length, ECB.cbAvailable);
    v.writeBigUInt64LE(this.address + BigInt(at), ECB.lpbData);
    v.set(f.preload, at);
    v[at + f.preload.length] = 0;

    v.writeBigUInt64LE(f.entries[0], ECB.GetServerVariable);
    v.writeBigUInt64LE(f.entries[1], ECB.WriteClient);
    v.writeBigUInt64LE(f.entries[2], ECB.ReadClient);
    v.writeBigUInt64LE(f.entries[3], ECB.ServerSupportFunction);
  }

  /** ECB.dwHttpStatusCode as the extension left it (IIS logs it). */
  get httpStatusCode(): number {
    return this.view.readUInt32LE(ECB.dwHttpStatusCode);
  }

  /** ECB.lpszLogData up to its NUL (it is a fixed 80-byte buffer the extension may fill). */
  get logData(): string {
    const start = ECB.lpszLogData;
    const end = this.view.indexOf(0, start);
    const stop = end < 0 || end > start + HSE_LOG_BUFFER_LEN ? start + HSE_LOG_BUFFER_LEN : end;
    return this.view.toString('latin1', start, stop);
  }

  /** The request is over: the block goes back to this thread's spares (never while an extension may use it). */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    giveBack(this.block);
  }
}
