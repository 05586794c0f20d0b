/**
 * The four ECB callbacks as koffi sees them: native pointers in, calls on the
 * request's RequestContext, Win32 error codes out. The native shim
 * (bridge/native/isapi_shim.c) is what the extension actually calls; it adds the
 * `err` out-parameter and sets the caller thread's last error from it.
 */
import koffi from 'koffi';
import { HSE_REQ, HSE_STATUS, WIN32_ERROR, hseRequestName } from './abi/constants';
import { SEND_HEADER_EX } from './abi/structs';
import { CallFailure, type RequestContext } from './request-context';
import { parseSendResponseHeader, redirectHead } from './response-head';
import { mapUrlToPath } from './server-variables';

const HostGetServerVariable = koffi.proto(
  'int HostGetServerVariable(uintptr_t conn, void *name, void *buf, void *size, void *err)',
);
const HostWriteClient = koffi.proto('int HostWriteClient(uintptr_t conn, void *buf, void *bytes, uint32_t flags, void *err)');
const HostReadClient = koffi.proto('int HostReadClient(uintptr_t conn, void *buf, void *size, void *err)');
const HostServerSupportFunction = koffi.proto(
  'int HostServerSupportFunction(uintptr_t conn, uint32_t req, void *buf, void *size, void *type, void *err)',
);

type Ptr = bigint | null;

export interface Shim {
  entries: readonly [bigint, bigint, bigint, bigint];
  strnlen(ptr: bigint, max: number): number;
}

/** Reads a NUL-terminated string of an extension as raw bytes (latin1 keeps every byte). */
export function readCString(shim: Shim, ptr: Ptr, max = 1 << 20): string | null {
  if (!ptr) return null;
  const n = shim.strnlen(ptr, max);
  return n === 0 ? '' : Buffer.from(koffi.view(ptr, n)).toString('latin1');
}

function readString(ptr: bigint, length: number): string {
  return length === 0 ? '' : Buffer.from(koffi.view(ptr, length)).toString('latin1');
}

function readDword(ptr: Ptr): number {
  return ptr ? (koffi.decode(ptr, 'uint32_t') as number) : 0;
}

function writeDword(ptr: Ptr, value: number): void {
  if (ptr) koffi.encode(ptr, 'uint32_t', value >>> 0);
}

export interface CallbackHooks {
  lookup(conn: number): RequestContext | undefined;
  /** DONE_WITH_SESSION arrived for a request. */
  done(ctx: RequestContext, status: number): void;
  unsupported(ctx: RequestContext, code: number): void;
  internalError(callback: string, error: Error): void;
}

type SsfHandler = (ctx: RequestContext, buf: Ptr, size: Ptr, type: Ptr) => CallFailure | undefined;

export class EcbCallbacks {
  private readonly registered: bigint[] = [];
  private readonly ssf = new Map<number, SsfHandler>();

  constructor(
    private readonly shim: Shim,
    private readonly hooks: CallbackHooks,
  ) {
    this.installSsf();
  }

  /** Registers the four callbacks with koffi (for this thread) and returns their addresses. */
  register(): [bigint, bigint, bigint, bigint] {
    const regs: [bigint, bigint, bigint, bigint] = [
      koffi.register(this.guard('GetServerVariable', this.getServerVariable), koffi.pointer(HostGetServerVariable)),
      koffi.register(this.guard('WriteClient', this.writeClient), koffi.pointer(HostWriteClient)),
      koffi.register(this.guard('ReadClient', this.readClient), koffi.pointer(HostReadClient)),
      koffi.register(this.guard('ServerSupportFunction', this.serverSupportFunction), koffi.pointer(HostServerSupportFunction)),
    ];
    this.registered.push(...regs);
    return regs;
  }

  unregister(): void {
    for (const r of this.registered.splice(0)) koffi.unregister(r);
  }

  /**
   * A bug of ours must not surface as an exception inside extension code: koffi
   * would return 0 with no error code. Report it and fail the call cleanly.
   */
  private guard<A extends unknown[]>(name: string, fn: (...args: A) => number): (...args: A) => number {
    return (...args: A): number => {
      try {
        return fn(...args);
      } catch (error) {
        this.hooks.internalError(name, error as Error);
        return this.fail(args[args.length - 1] as Ptr, WIN32_ERROR.INVALID_PARAMETER);
      }
    };
  }

  private fail(err: Ptr, code: number): number {
    writeDword(err, code);
    return 0;
  }

  private readonly getServerVariable = (conn: number, name: Ptr, buf: Ptr, size: Ptr, err: Ptr): number => {
    const ctx = this.hooks.lookup(conn);
    if (!ctx || !size) return this.fail(err, WIN32_ERROR.INVALID_PARAMETER);
    const varName = readCString(this.shim, name, 4096);
    if (!varName) return this.fail(err, WIN32_ERROR.INVALID_PARAMETER);
    const value = ctx.variables.lookup(varName);
    if (!value) return this.fail(err, WIN32_ERROR.INVALID_INDEX);
    const capacity = readDword(size);
    // The size reported always counts the terminating NUL, as IIS does (mod_isapi once omitted it).
    writeDword(size, value.length);
    if (!buf || capacity < value.length) return this.fail(err, WIN32_ERROR.INSUFFICIENT_BUFFER);
    new Uint8Array(koffi.view(buf, value.length)).set(value);
    return 1;
  };

  private readonly writeClient = (conn: number, buf: Ptr, bytes: Ptr, flags: number, err: Ptr): number => {
    const ctx = this.hooks.lookup(conn);
    if (!ctx || !bytes) return this.fail(err, WIN32_ERROR.INVALID_PARAMETER);
    void flags; // HSE_IO_SYNC and HSE_IO_NODELAY need nothing more here; async writes land with IO_COMPLETION.
    const n = readDword(bytes);
    if (n > 0 && !buf) return this.fail(err, WIN32_ERROR.INVALID_PARAMETER);
    // One copy out of extension memory; the buffer is the extension's again when we return.
    const data = n === 0 ? Buffer.alloc(0) : Buffer.from(new Uint8Array(koffi.view(buf!, n)));
    const failure = ctx.write(data);
    if (failure) return this.fail(err, failure.error);
    writeDword(bytes, n);
    return 1;
  };

  private readonly readClient = (conn: number, buf: Ptr, size: Ptr, err: Ptr): number => {
    const ctx = this.hooks.lookup(conn);
    if (!ctx || !size) return this.fail(err, WIN32_ERROR.INVALID_PARAMETER);
    const want = readDword(size);
    if (want > 0 && !buf) return this.fail(err, WIN32_ERROR.INVALID_PARAMETER);
    const into = want === 0 ? new Uint8Array(0) : new Uint8Array(koffi.view(buf!, want));
    const result = ctx.readBody(into);
    if (result instanceof CallFailure) {
      writeDword(size, 0);
      return this.fail(err, result.error);
    }
    writeDword(size, result);
    return 1;
  };

  private readonly serverSupportFunction = (conn: number, req: number, buf: Ptr, size: Ptr, type: Ptr, err: Ptr): number => {
    const ctx = this.hooks.lookup(conn);
    if (!ctx) return this.fail(err, WIN32_ERROR.INVALID_PARAMETER);
    ctx.counters.ssfCalls++;
    const handler = this.ssf.get(req);
    if (!handler) {
      ctx.counters.ssfUnsupported++;
      this.hooks.unsupported(ctx, req);
      return this.fail(err, WIN32_ERROR.INVALID_PARAMETER);
    }
    const failure = handler(ctx, buf, size, type);
    if (failure) return this.fail(err, failure.error);
    return 1;
  };

  private installSsf(): void {
    const shim = this.shim;
    this.ssf.set(HSE_REQ.SEND_RESPONSE_HEADER, (ctx, buf, _size, type) => {
      const parsed = parseSendResponseHeader(readCString(shim, buf), readCString(shim, type), ctx.ecb.httpStatusCode);
      if (parsed.kind === 'error') return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      return ctx.setHead(parsed);
    });

    this.ssf.set(HSE_REQ.SEND_RESPONSE_HEADER_EX, (ctx, buf) => {
      if (!buf) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      const info = Buffer.from(koffi.view(buf, 32));
      const statusPtr = info.readBigUInt64LE(SEND_HEADER_EX.pszStatus);
      const headerPtr = info.readBigUInt64LE(SEND_HEADER_EX.pszHeader);
      const cchStatus = info.readUInt32LE(SEND_HEADER_EX.cchStatus);
      const cchHeader = info.readUInt32LE(SEND_HEADER_EX.cchHeader);
      const keepConn = info.readInt32LE(SEND_HEADER_EX.fKeepConn) !== 0;
      // cch* count characters; some extensions include the NUL, others pass 0 and rely on it.
      const status = statusPtr ? (cchStatus ? stripNul(readString(statusPtr, cchStatus)) : readCString(shim, statusPtr)) : null;
      const header = headerPtr ? (cchHeader ? stripNul(readString(headerPtr, cchHeader)) : readCString(shim, headerPtr)) : null;
      const parsed = parseSendResponseHeader(status, header, ctx.ecb.httpStatusCode);
      if (parsed.kind === 'error') return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      return ctx.setHead(parsed, keepConn);
    });

    this.ssf.set(HSE_REQ.SEND_URL_REDIRECT_RESP, (ctx, buf) => {
      const location = readCString(shim, buf);
      if (!location) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      return ctx.setHead(redirectHead(location));
    });

    this.ssf.set(HSE_REQ.DONE_WITH_SESSION, (ctx, buf) => {
      const status = buf ? readDword(buf) : HSE_STATUS.SUCCESS;
      this.hooks.done(ctx, status || HSE_STATUS.SUCCESS);
      return undefined;
    });

    this.ssf.set(HSE_REQ.IS_KEEP_CONN, (ctx, buf) => {
      if (!buf) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      koffi.encode(buf, 'int32_t', ctx.clientKeepAlive ? 1 : 0);
      return undefined;
    });

    this.ssf.set(HSE_REQ.MAP_URL_TO_PATH, (ctx, buf, size) => {
      if (!buf || !size) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      const capacity = readDword(size);
      const url = readCString(shim, buf, capacity || 1 << 16) ?? '';
      const path = Buffer.concat([ctx.variables.textBytes(mapUrlToPath(url, ctx.app, ctx.variables.identity)), Buffer.alloc(1)]);
      writeDword(size, path.length);
      if (capacity < path.length) return new CallFailure(WIN32_ERROR.INSUFFICIENT_BUFFER);
      new Uint8Array(koffi.view(buf, path.length)).set(path);
      return undefined;
    });

    this.ssf.set(HSE_REQ.APPEND_LOG_PARAMETER, (ctx, buf) => {
      const text = readCString(shim, buf, 4096);
      if (text === null) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      ctx.appendedLog += text;
      return undefined;
    });
  }

  static requestName(code: number): string {
    return hseRequestName(code);
  }
}

function stripNul(s: string): string {
  const i = s.indexOf('\0');
  return i < 0 ? s : s.slice(0, i);
}
