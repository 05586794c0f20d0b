/**
 * The file behind an extension's file HANDLE (HSE_TF_INFO.hFile, a file
 * HSE_VECTOR_ELEMENT's pvContext), for TransmitFile and VectorSend: its size
 * (checked on the extension thread when the call is made) and reads of byte
 * ranges (on the bridge's main thread, off its event loop, by response-writer.ts).
 *
 * - POSIX: the HANDLE is a file descriptor cast to one; fs.fstatSync / fs.read.
 * - Windows: a real HANDLE, usually opened with FILE_FLAG_OVERLAPPED as IIS
 *   documents, so every read carries an OVERLAPPED with an explicit offset:
 *   ReadFile then GetOverlappedResult(bWait = TRUE), each as a koffi `.async`
 *   call (libuv's thread pool). koffi hands the async call's last error to its
 *   JS callback, so GetLastError() is read there (ERROR_IO_PENDING, ERROR_HANDLE_EOF).
 *
 * The extension owns the handle: nothing here ever closes it.
 */
import fs from 'node:fs';
import koffi from 'koffi';
import { WIN32_ERROR } from './abi/constants';

/** A file as it crosses threads: a file descriptor (POSIX) or a HANDLE value (Windows). */
export type FileRef = number | bigint;

/** A read failed: `code` is the Win32 error the extension's operation completes with. */
export class FileReadError extends Error {
  constructor(readonly code: number) {
    super(`file read failed (error ${code})`);
  }
}

export interface FileSource {
  /** The file's size in bytes; undefined if the handle is not a readable file. Synchronous. */
  size(): number | undefined;
  /** Reads up to `length` bytes at `position` into `buf` at `at`: the count, 0 at the end of the file. */
  read(buf: Buffer, at: number, length: number, position: number): Promise<number>;
  /** Frees what reading needed (never the extension's handle). Call only with no read in flight. */
  close(): void;
}

const WIN32 = process.platform === 'win32';

/** The FileRef for an extension's HANDLE value, or undefined if it cannot be a file. */
export function fileRef(handle: bigint): FileRef | undefined {
  if (WIN32) {
    const h = BigInt.asUintN(64, handle);
    // NULL and INVALID_HANDLE_VALUE; anything else GetFileSizeEx judges.
    return h === 0n || h === 0xffffffffffffffffn ? undefined : h;
  }
  const fd = Number(BigInt.asIntN(64, handle));
  return fd >= 0 && fd < 2 ** 31 ? fd : undefined;
}

export function fileSource(file: FileRef): FileSource {
  return typeof file === 'bigint' ? new HandleSource(file) : new FdSource(file);
}

class FdSource implements FileSource {
  constructor(private readonly fd: number) {}

  size(): number | undefined {
    try {
      return fs.fstatSync(this.fd).size;
    } catch {
      return undefined;
    }
  }

  read(buf: Buffer, at: number, length: number, position: number): Promise<number> {
    return new Promise((resolve, reject) =>
      fs.read(this.fd, buf, at, length, position, (err, n) =>
        err ? reject(new FileReadError(err.code === 'EBADF' ? WIN32_ERROR.INVALID_HANDLE : WIN32_ERROR.READ_FAULT)) : resolve(n),
      ),
    );
  }

  close(): void {}
}

/**
 * Windows' OVERLAPPED (minwinbase.h), x64: Internal @0, InternalHigh @8, Offset @16,
 * OffsetHigh @20, hEvent @24, size 32 (as mingw's sizeof/offsetof under Wine).
 * Offset/OffsetHigh are a union with a PVOID that is not needed here. Not an ISAPI
 * struct, so it lives here rather than in abi/structs.ts.
 */
export const OVERLAPPED = koffi.struct({
  Internal: 'uint64_t',
  InternalHigh: 'uint64_t',
  Offset: 'uint32_t',
  OffsetHigh: 'uint32_t',
  hEvent: 'void *',
});

type KoffiFunction = ReturnType<ReturnType<typeof koffi.load>['func']>;

interface Kernel32 {
  GetFileSizeEx: KoffiFunction;
  ReadFile: KoffiFunction;
  GetOverlappedResult: KoffiFunction;
  CreateEventW: KoffiFunction;
  CloseHandle: KoffiFunction;
  GetLastError: KoffiFunction;
}

let k32: Kernel32 | undefined;

/** kernel32, bound on first use in each thread (koffi functions belong to the thread that made them). */
function kernel32(): Kernel32 {
  if (k32) return k32;
  const lib = koffi.load('kernel32.dll');
  k32 = {
    GetFileSizeEx: lib.func('int GetFileSizeEx(void *hFile, void *lpFileSize)'),
    ReadFile: lib.func('int ReadFile(void *hFile, void *lpBuffer, uint32_t nNumberOfBytesToRead, void *lpNumberOfBytesRead, void *lpOverlapped)'),
    GetOverlappedResult: lib.func('int GetOverlappedResult(void *hFile, void *lpOverlapped, void *lpNumberOfBytesTransferred, int bWait)'),
    CreateEventW: lib.func('void *CreateEventW(void *lpEventAttributes, int bManualReset, int bInitialState, void *lpName)'),
    CloseHandle: lib.func('int CloseHandle(void *hObject)'),
    GetLastError: lib.func('uint32_t GetLastError()'),
  };
  return k32;
}

type Callback = (err: Error | null, ok: number) => void;

class HandleSource implements FileSource {
  /** Native memory the kernel may write while a read is pending: OVERLAPPED, byte count, data. */
  private overlapped: bigint | null = null;
  private transferred: bigint | null = null;
  private data: bigint | null = null;
  private dataSize = 0;
  private event: bigint | null = null;

  constructor(private readonly handle: bigint) {}

  size(): number | undefined {
    const out = Buffer.alloc(8);
    try {
      if (!kernel32().GetFileSizeEx(this.handle, out)) return undefined;
    } catch {
      return undefined;
    }
    const size = out.readBigInt64LE(0);
    return size >= 0n && size <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(size) : undefined;
  }

  read(buf: Buffer, at: number, length: number, position: number): Promise<number> {
    const k = kernel32();
    if (!this.overlapped) {
      this.overlapped = koffi.alloc(OVERLAPPED, 1) as bigint;
      this.transferred = koffi.alloc('uint32_t', 1) as bigint;
      // A manual-reset event per transfer (ReadFile resets it); NULL would make the wait use the file handle.
      this.event = (k.CreateEventW(null, 1, 0, null) as bigint | null) || null;
    }
    if (this.dataSize < length) {
      if (this.data) koffi.free(this.data);
      this.data = koffi.alloc('uint8_t', length) as bigint;
      this.dataSize = length;
    }
    koffi.encode(this.overlapped, OVERLAPPED, {
      Internal: 0,
      InternalHigh: 0,
      Offset: position % 2 ** 32,
      OffsetHigh: Math.floor(position / 2 ** 32),
      hEvent: this.event,
    });

    return new Promise((resolve, reject) => {
      // Runs in the async call's JS callback, where koffi has restored that call's last error.
      const failure = (): void => {
        const code = k.GetLastError() as number;
        if (code === WIN32_ERROR.HANDLE_EOF) resolve(0);
        else reject(new FileReadError(code || WIN32_ERROR.READ_FAULT));
      };
      const finished: Callback = (err, ok) => {
        if (err) return reject(err);
        if (!ok) return failure();
        const n = koffi.decode(this.transferred, 'uint32_t') as number;
        buf.set(new Uint8Array(koffi.view(this.data, n)), at);
        resolve(n);
      };
      const started: Callback = (err, ok) => {
        if (err) return reject(err);
        if (!ok) {
          const code = k.GetLastError() as number;
          if (code === WIN32_ERROR.HANDLE_EOF) return resolve(0);
          if (code !== WIN32_ERROR.IO_PENDING) return reject(new FileReadError(code || WIN32_ERROR.READ_FAULT));
        }
        // Done or pending: either way the result (and the byte count) comes from GetOverlappedResult.
        k.GetOverlappedResult.async(this.handle, this.overlapped, this.transferred, 1, finished);
      };
      k.ReadFile.async(this.handle, this.data, length, null, this.overlapped, started);
    });
  }

  close(): void {
    if (this.event) kernel32().CloseHandle(this.event);
    for (const p of [this.overlapped, this.transferred, this.data]) if (p) koffi.free(p);
    this.overlapped = this.transferred = this.data = this.event = null;
    this.dataSize = 0;
  }
}
