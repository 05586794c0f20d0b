/**
 * The response spool: one memory file (memfd) holding every extension thread's output
 * arena (slot-arena.ts), mapped into each thread that uses it.
 *
 * A 64 KiB WriteClient is copied once, into its arena slot. On a Unix-socket gateway
 * connection that accepted the spool (bridge/PROTOCOL.md, item 8), the bridge then
 * sends a 24-byte RESPONSE_SPOOL frame naming the bytes' place in this file, and the
 * gateway reads them from `/proc/<pid>/fd/<fd>` itself. The body then crosses no
 * socket between the two processes: the kernel copies into and out of the Unix socket
 * were the larger part of a streamed response's cost (bench/RESULTS.md, session 9).
 *
 * Linux only (memfd_create, mmap through koffi). Elsewhere, or if any step fails, the
 * arenas are SharedArrayBuffers and every body goes in RESPONSE_BODY frames as before.
 */
import fs from 'node:fs';
import koffi from 'koffi';

/** A thread's part of the spool file, as it crosses to the thread in WorkerInit. */
export interface SpoolRegion {
  readonly fd: number;
  /** Where the region starts in the file: a multiple of REGION_ALIGN, as mmap requires. */
  readonly offset: number;
  readonly length: number;
}

/** The spool file as the bridge offers it to a gateway (SPOOL_OFFER). */
export interface SpoolFile {
  readonly fd: number;
  readonly size: number;
  /** st_dev and st_ino in decimal: the gateway checks that what it opened is this file. */
  readonly dev: string;
  readonly ino: string;
}

/** mmap offsets must be page-aligned; 64 KiB covers every page size Linux uses. */
const REGION_ALIGN = 64 * 1024;
const MFD_CLOEXEC = 0x1;
const MFD_ALLOW_SEALING = 0x2;
const F_ADD_SEALS = 1033;
const F_GET_SEALS = 1034;
const F_SEAL_SEAL = 0x1;
const F_SEAL_SHRINK = 0x2;
const F_SEAL_GROW = 0x4;
const PROT_READ = 0x1;
const PROT_WRITE = 0x2;
const MAP_SHARED = 0x1;
const MAP_FAILED = 0xffffffffffffffffn;

interface Libc {
  memfdCreate(name: string, flags: number): number;
  mmap(addr: null, length: number, prot: number, flags: number, fd: number, offset: number): unknown;
  munmap(addr: unknown, length: number): number;
  fcntl(fd: number, cmd: number, ...args: unknown[]): number;
}

let libc: Libc | undefined;

/** libc, bound on first use in each thread (koffi functions belong to the thread that made them). */
function boundLibc(): Libc {
  if (libc) return libc;
  const lib = koffi.load('libc.so.6');
  libc = {
    memfdCreate: lib.func('int memfd_create(const char *name, unsigned int flags)') as Libc['memfdCreate'],
    mmap: lib.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)') as Libc['mmap'],
    munmap: lib.func('int munmap(void *addr, size_t length)') as Libc['munmap'],
    fcntl: lib.func('int fcntl(int fd, int cmd, ...)') as Libc['fcntl'],
  };
  return libc;
}

/** Why the spool could not be made; the bridge then uses SharedArrayBuffer arenas. */
export class SpoolUnavailableError extends Error {
  readonly code = 'ERR_SPOOL_UNAVAILABLE';
}

/** Bytes a region of `length` takes in the file, so that the next one starts aligned. */
function alignedLength(length: number): number {
  return Math.ceil(length / REGION_ALIGN) * REGION_ALIGN;
}

/**
 * A spool file with `count` regions of `length` bytes each. Its pages cost memory only
 * once written, like a SharedArrayBuffer's. It is never closed: its regions stay
 * mapped for the life of the process.
 */
export function createSpool(count: number, length: number): { file: SpoolFile; regions: SpoolRegion[] } {
  if (process.platform !== 'linux') throw new SpoolUnavailableError(`no memory files on ${process.platform}`);
  let fd: number;
  try {
    fd = boundLibc().memfdCreate('isapi-spool', MFD_CLOEXEC | MFD_ALLOW_SEALING);
  } catch (err) {
    throw new SpoolUnavailableError(`memfd_create is not available: ${(err as Error).message}`);
  }
  if (fd < 0) throw new SpoolUnavailableError(`memfd_create failed (errno ${koffi.errno()})`);
  const stride = alignedLength(length);
  const size = stride * count;
  try {
    fs.ftruncateSync(fd, size);
    // Sealed at this size: a file that shrank under the gateway's mapping would kill it with SIGBUS.
    if (boundLibc().fcntl(fd, F_ADD_SEALS, 'int', F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) !== 0) {
      throw new Error(`sealing failed (errno ${koffi.errno()})`);
    }
    const stat = fs.fstatSync(fd, { bigint: true });
    const regions = Array.from({ length: count }, (_, i) => ({ fd, offset: i * stride, length }));
    return { file: { fd, size, dev: String(stat.dev), ino: String(stat.ino) }, regions };
  } catch (err) {
    fs.closeSync(fd);
    throw new SpoolUnavailableError(`could not size the spool file: ${(err as Error).message}`);
  }
}

/** True if nobody can ever make file `fd` smaller (a sealed memfd): only such a file is safe to map from another process. */
export function cannotShrink(fd: number): boolean {
  if (process.platform !== 'linux') return false;
  const seals = boundLibc().fcntl(fd, F_GET_SEALS);
  return seals >= 0 && (seals & F_SEAL_SHRINK) !== 0 && (seals & F_SEAL_SEAL) !== 0;
}

/** Bytes of a file mapped into this process, shared with every other mapping of them. */
export interface Mapping {
  readonly bytes: ArrayBuffer;
  /** Unmaps them: `bytes` and every view of it must never be touched again. */
  unmap(): void;
}

/** Maps `length` bytes of file `fd` from `offset` (a multiple of the page size). */
export function mapFile(fd: number, offset: number, length: number, access: 'read' | 'read-write'): Mapping {
  const prot = access === 'read' ? PROT_READ : PROT_READ | PROT_WRITE;
  const at = boundLibc().mmap(null, length, prot, MAP_SHARED, fd, offset);
  if (at === null || koffi.address(at) === MAP_FAILED) {
    throw new SpoolUnavailableError(`mmap of the spool file failed (errno ${koffi.errno()})`);
  }
  return { bytes: koffi.view(at, length), unmap: () => void boundLibc().munmap(at, length) };
}

/** A thread's region, mapped for the life of the process. */
export function mapRegion(region: SpoolRegion): ArrayBuffer {
  return mapFile(region.fd, region.offset, region.length, 'read-write').bytes;
}
