/**
 * Loading an ISAPI extension library the way IIS does: once per process,
 * GetExtensionVersion at load, TerminateExtension(HSE_TERM_MUST_UNLOAD) at the
 * end. The library is never unloaded while requests (ECBs) of it are alive: the
 * bridge only terminates after its in-flight requests have finished, and keeps
 * the handle until the process exits.
 */
import fs from 'node:fs';
import koffi from 'koffi';
import { HSE_TERM } from './abi/constants';
import { VERSION_INFO_SIZE } from './abi/structs';

export type ExtensionLoadErrorCode =
  | 'ERR_EXTENSION_NOT_FOUND'
  | 'ERR_EXTENSION_LOAD'
  | 'ERR_EXTENSION_MISSING_EXPORT'
  | 'ERR_EXTENSION_VERSION_FALSE'
  | 'ERR_EXTENSION_VERSION_THREW';

export class ExtensionLoadError extends Error {
  readonly code: ExtensionLoadErrorCode;
  readonly file: string;
  constructor(code: ExtensionLoadErrorCode, file: string, reason: string) {
    super(`${file}: ${reason}`);
    this.name = 'ExtensionLoadError';
    this.code = code;
    this.file = file;
  }
}

export interface ExtensionVersion {
  major: number;
  minor: number;
  description: string;
}

type LibraryHandle = ReturnType<typeof koffi.load>;

function openLibrary(file: string): LibraryHandle {
  if (!fs.existsSync(file)) {
    throw new ExtensionLoadError('ERR_EXTENSION_NOT_FOUND', file, 'file not found');
  }
  try {
    return koffi.load(file);
  } catch (err) {
    throw new ExtensionLoadError('ERR_EXTENSION_LOAD', file, `cannot be loaded: ${(err as Error).message}`);
  }
}

function requireExport<T>(file: string, bind: () => T, name: string): T {
  try {
    return bind();
  } catch {
    throw new ExtensionLoadError('ERR_EXTENSION_MISSING_EXPORT', file, `does not export ${name} (is it an ISAPI extension?)`);
  }
}

export type HttpExtensionProc = ((ecb: bigint) => number) & {
  /** The same call on a libuv thread-pool thread; the result arrives on this thread's event loop. */
  async(ecb: bigint, done: (err: unknown, status: number) => void): void;
};

/** The process-wide load: resolves the exports and runs GetExtensionVersion. Main thread only. */
export class ExtensionLibrary {
  readonly version: ExtensionVersion;
  private readonly terminateFn: ((flags: number) => number) | undefined;
  private terminated = false;

  private constructor(
    readonly file: string,
    private readonly lib: LibraryHandle,
    version: ExtensionVersion,
    terminate: ((flags: number) => number) | undefined,
  ) {
    this.version = version;
    this.terminateFn = terminate;
  }

  static load(file: string): ExtensionLibrary {
    const lib = openLibrary(file);
    const getVersion = requireExport(file, () => lib.func('int __stdcall GetExtensionVersion(void *pVer)'), 'GetExtensionVersion');
    requireExport(file, () => lib.func('uint32_t __stdcall HttpExtensionProc(void *pECB)'), 'HttpExtensionProc');
    let terminate: ((flags: number) => number) | undefined;
    try {
      terminate = lib.func('int __stdcall TerminateExtension(uint32_t dwFlags)') as (flags: number) => number;
    } catch {
      terminate = undefined; // Optional export, as in IIS.
    }

    const info = koffi.alloc('uint8_t', VERSION_INFO_SIZE) as bigint;
    try {
      new Uint8Array(koffi.view(info, VERSION_INFO_SIZE)).fill(0);
      let ok: number;
      try {
        ok = getVersion(info) as number;
      } catch (err) {
        throw new ExtensionLoadError('ERR_EXTENSION_VERSION_THREW', file, `GetExtensionVersion failed: ${(err as Error).message}`);
      }
      if (!ok) {
        throw new ExtensionLoadError('ERR_EXTENSION_VERSION_FALSE', file, 'GetExtensionVersion returned FALSE');
      }
      const view = Buffer.from(koffi.view(info, VERSION_INFO_SIZE));
      const dword = view.readUInt32LE(0);
      const descEnd = view.indexOf(0, 4);
      const description = view.toString('latin1', 4, descEnd < 0 ? VERSION_INFO_SIZE : descEnd);
      return new ExtensionLibrary(file, lib, { major: dword >>> 16, minor: dword & 0xffff, description }, terminate);
    } finally {
      koffi.free(info);
    }
  }

  /** Calls TerminateExtension(HSE_TERM_MUST_UNLOAD) once; the caller guarantees no live ECB remains. */
  terminate(): boolean {
    if (this.terminated) return true;
    this.terminated = true;
    if (!this.terminateFn) return true;
    return this.terminateFn(HSE_TERM.MUST_UNLOAD) !== 0;
  }

  /** Keeps the handle referenced for the life of the process (never dlclose with live callers). */
  get handle(): LibraryHandle {
    return this.lib;
  }
}

/** Binds HttpExtensionProc in an extension thread; dlopen hands back the already-loaded image. */
export function bindHttpExtensionProc(file: string): HttpExtensionProc {
  const lib = openLibrary(file);
  return requireExport(file, () => lib.func('uint32_t __stdcall HttpExtensionProc(void *pECB)'), 'HttpExtensionProc') as HttpExtensionProc;
}
