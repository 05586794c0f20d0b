/**
 * The response spool: one memory file (memfd) holding every extension thread's output
 * and input arenas (slot-arena.ts), mapped into each thread that uses them.
 *
 * A 64 KiB WriteClient is copied once, into its arena slot. On a Unix-socket gateway
 * connection that accepted the spool (bridge/PROTOCOL.md, item 8), the bridge then
 * sends a 24-byte RESPONSE_SPOOL frame naming the bytes' place in this file, and the
 * gateway writes its client straight from its own read-only mapping of
 * `/proc/<pid>/fd/<fd>` (gateway/spool-mapping.ts). The body then crosses no
 * socket between the two processes: the kernel copies into and out of the Unix socket
 * were the larger part of a streamed response's cost (bench/RESULTS.md, sessions 9 and 10).
 *
 * Mapped memory is also cheaper to copy into and out of than a SharedArrayBuffer, for
 * which V8 copies with relaxed atomic moves: 1.6-2.0 against 2.4-2.9 µs per 64 KiB here,
 * on both the request body's and the response's way.
 *
 * Linux only (memfd_create, mmap through koffi). Elsewhere, or if any step fails, the
 * arenas are SharedArrayBuffers and every body goes in RESPONSE_BODY frames as before.
 */
import fs from 'node:fs';
import koffi from 'koffi';
import { libc } from './libc';

/** One arena's part of the spool file, as it crosses to its thread in WorkerInit. */
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
const F_SEAL_SEAL = 0x1;
const F_SEAL_SHRINK = 0x2;
const F_SEAL_GROW = 0x4;
const PROT_READ_WRITE = 0x1 | 0x2;
const MAP_SHARED = 0x1;
const MAP_FAILED = 0xffffffffffffffffn;

/** Why the spool could not be made; the bridge then uses SharedArrayBuffer arenas. */
export class SpoolUnavailableError extends Error {
  readonly code = 'ERR_SPOOL_UNAVAILABLE';
}

/** Bytes a region of `length` takes in the file, so that the next one starts aligned. */
function alignedLength(length: number): number {
  return Math.ceil(length / REGION_ALIGN) * REGION_ALIGN;
}

/**
 * A spool file with one region of each of `lengths`, in that order. Its pages cost
 * memory only once written, like a SharedArrayBuffer's. It is never closed: its regions
 * stay mapped for the life of the process.
 */
export function createSpool(lengths: readonly number[]): { file: SpoolFile; regions: SpoolRegion[] } {
  if (process.platform !== 'linux') throw new SpoolUnavailableError(`no memory files on ${process.platform}`);
  let fd: number;
  try {
    fd = libc().memfdCreate('isapi-spool', MFD_CLOEXEC | MFD_ALLOW_SEALING);
  } catch (err) {
    throw new SpoolUnavailableError(`memfd_create is not available: ${(err as Error).message}`);
  }
  if (fd < 0) throw new SpoolUnavailableError(`memfd_create failed (errno ${koffi.errno()})`);
  const regions: SpoolRegion[] = [];
  let size = 0;
  for (const length of lengths) {
    regions.push({ fd, offset: size, length });
    size += alignedLength(length);
  }
  try {
    fs.ftruncateSync(fd, size);
    // Sealed at its size: a mapping of it can never end up past the end of the file (SIGBUS).
    if (libc().fcntl(fd, F_ADD_SEALS, 'int', F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) !== 0) {
      throw new Error(`sealing failed (errno ${koffi.errno()})`);
    }
    const stat = fs.fstatSync(fd, { bigint: true });
    return { file: { fd, size, dev: String(stat.dev), ino: String(stat.ino) }, regions };
  } catch (err) {
    fs.closeSync(fd);
    throw new SpoolUnavailableError(`could not size and seal the spool file: ${(err as Error).message}`);
  }
}

/** A thread's region, mapped into this process for its life (shared with every other mapping of it). */
export function mapRegion(region: SpoolRegion): ArrayBuffer {
  const at = libc().mmap(null, region.length, PROT_READ_WRITE, MAP_SHARED, region.fd, region.offset);
  if (at === null || koffi.address(at) === MAP_FAILED) {
    throw new SpoolUnavailableError(`mmap of the spool file failed (errno ${koffi.errno()})`);
  }
  return koffi.view(at, region.length);
}
