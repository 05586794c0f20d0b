/**
 * The four ECB callbacks as koffi sees them: native pointers in, calls on the
 * request's RequestContext, Win32 error codes out. The native shim
 * (bridge/native/isapi_shim.c) is what the extension actually calls; it adds the
 * `err` out-parameter and sets the caller thread's last error from it.
 */
import koffi from 'koffi';
import { HSE_EXEC_URL, HSE_IO, HSE_REQ, HSE_STATUS, WIN32_ERROR, hseRequestName } from './abi/constants';
import { CUSTOM_ERROR, EXEC_UNICODE_URL_INFO, EXEC_URL_INFO, HSE_URL_MAPEX_INFO, UNICODE_URL_MAPEX, RESPONSE_VECTOR, SEND_HEADER_EX, TF_INFO, VECTOR_ELEMENT, sizeOf } from './abi/structs';
import { fileRef, fileSource, type FileRef } from './file-reader';
import { CallFailure, type RequestContext } from './request-context';
import { parseSendResponseHeader, redirectHead, type ParsedHead } from './response-head';
import type { SlotArena } from './slot-arena';
import { mapUrlToPath, mapUrlToPathEx } from './server-variables';
import { assemble, type OutputSegment } from './thread-messages';
import { FRAME_HEADER_SIZE, encodeExecUrl } from './wire';

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
  /** Characters of a NUL-terminated UTF-16 (WCHAR) string. */
  wcsnlen(ptr: bigint, max: number): number;
  /** memcpy between extension memory and a JS buffer, either way round. */
  copy(dst: bigint | Uint8Array, src: bigint | Uint8Array, n: number): void;
}

/** Reused for strings read out of extension memory (one thread, one call at a time). */
let scratch = Buffer.allocUnsafeSlow(4096);

/** `length` bytes of extension memory as a latin1 string (every byte kept). */
function readString(shim: Shim, ptr: bigint, length: number): string {
  if (length === 0) return '';
  if (scratch.length < length) scratch = Buffer.allocUnsafeSlow(Math.max(length, scratch.length * 2));
  shim.copy(scratch, ptr, length);
  return scratch.toString('latin1', 0, length);
}

/**
 * `n` bytes of extension memory in a buffer of our own, `headroom` bytes into its
 * ArrayBuffer: WriteClient data is read with room for its RESPONSE_BODY frame header,
 * so the frame is completed in place (RequestContext.bodyFrame) instead of copied again.
 */
export function readBytes(shim: Shim, ptr: bigint, n: number, headroom = 0): Buffer {
  const out = Buffer.allocUnsafeSlow(headroom + n).subarray(headroom);
  shim.copy(out, ptr, n);
  return out;
}

/** Reads a NUL-terminated WCHAR string of an extension (the UNICODE_ requests). */
export function readWideString(shim: Shim, ptr: Ptr, max = 1 << 15): string | null {
  if (!ptr) return null;
  const n = shim.wcsnlen(ptr, max);
  return n === 0 ? '' : Buffer.from(koffi.view(ptr, n * 2)).toString('utf16le');
}

/** Reads a NUL-terminated string of an extension as raw bytes (latin1 keeps every byte). */
export function readCString(shim: Shim, ptr: Ptr, max = 1 << 20): string | null {
  if (!ptr) return null;
  return readString(shim, ptr, shim.strnlen(ptr, max));
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
  unhealthy(ctx: RequestContext, reason: string): void;
}

/** Requests that only make sense inside IIS itself (tokens, SSPI, certificates, IIS configuration). */
const NOT_SUPPORTED: readonly number[] = [
  HSE_REQ.GET_SSPI_INFO,
  HSE_REQ.REFRESH_ISAPI_ACL,
  HSE_REQ.GET_IMPERSONATION_TOKEN,
  HSE_REQ.GET_CERT_INFO_EX,
  HSE_REQ.GET_ANONYMOUS_TOKEN,
  HSE_REQ.GET_UNICODE_ANONYMOUS_TOKEN,
  HSE_REQ.GET_CACHE_INVALIDATION_CALLBACK,
  HSE_REQ.GET_TRACE_INFO,
  HSE_REQ.GET_TRACE_INFO_EX,
  HSE_REQ.RAISE_TRACE_EVENT,
  HSE_REQ.GET_CONFIG_OBJECT,
  HSE_REQ.GET_WORKER_PROCESS_SETTINGS,
  HSE_REQ.GET_PROTOCOL_MANAGER_CUSTOM_INTERFACE_CALLBACK,
  HSE_REQ.GET_CHANNEL_BINDING_TOKEN,
];

/** A file HANDLE from an extension (a HANDLE on Windows, elsewhere a file descriptor cast to one) and its size. */
function fileOf(handle: bigint): { file: FileRef; size: number } | undefined {
  const file = fileRef(handle);
  const size = file === undefined ? undefined : fileSource(file).size();
  return file === undefined || size === undefined ? undefined : { file, size };
}

/** The marker completion for a synchronous TransmitFile / VectorSend: the caller waits instead. */
const SYNC = { fn: 0n, context: 0n };

type SsfHandler = (ctx: RequestContext, buf: Ptr, size: Ptr, type: Ptr) => CallFailure | undefined;

export class EcbCallbacks {
  private readonly registered: bigint[] = [];
  private readonly ssf = new Map<number, SsfHandler>();

  constructor(
    private readonly shim: Shim,
    private readonly arena: SlotArena | undefined,
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
    this.shim.copy(buf, value, value.length);
    return 1;
  };

  private readonly writeClient = (conn: number, buf: Ptr, bytes: Ptr, flags: number, err: Ptr): number => {
    const ctx = this.hooks.lookup(conn);
    if (!ctx || !bytes) return this.fail(err, WIN32_ERROR.INVALID_PARAMETER);
    // HSE_IO_NODELAY needs nothing: client sockets already have Nagle off.
    const n = readDword(bytes);
    if (n > 0 && !buf) return this.fail(err, WIN32_ERROR.INVALID_PARAMETER);
    // One copy out of extension memory: the buffer is the extension's again when we return (async too, as in IIS).
    const slot = n > 0 && ctx.framesWritesWhole ? this.arena?.take(n) : undefined;
    if (slot) this.shim.copy(slot, buf!, n);
    const data = slot ?? (n === 0 ? Buffer.alloc(0) : readBytes(this.shim, buf!, n, FRAME_HEADER_SIZE));
    let failure: CallFailure | undefined;
    try {
      failure = flags & HSE_IO.ASYNC ? ctx.writeAsync(data) : ctx.write(data);
    } finally {
      if (slot) this.arena!.releaseUnframed(slot);
    }
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
    const name = hseRequestName(req);
    if (NOT_SUPPORTED.includes(req)) {
      ctx.accountant.ssf(name, 'unsupported');
      return this.fail(err, WIN32_ERROR.NOT_SUPPORTED);
    }
    const handler = this.ssf.get(req);
    if (!handler) {
      ctx.accountant.ssf(name, 'unsupported');
      this.hooks.unsupported(ctx, req);
      return this.fail(err, WIN32_ERROR.INVALID_PARAMETER);
    }
    // DONE_WITH_SESSION ends the request, and with it the accounting: count it first.
    if (req === HSE_REQ.DONE_WITH_SESSION) ctx.accountant.ssf(name, 'ok');
    const failure = handler(ctx, buf, size, type);
    if (req !== HSE_REQ.DONE_WITH_SESSION) ctx.accountant.ssf(name, failure ? 'error' : 'ok');
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
      const info = readBytes(shim, buf, sizeOf.HSE_SEND_HEADER_EX_INFO);
      const statusPtr = info.readBigUInt64LE(SEND_HEADER_EX.pszStatus);
      const headerPtr = info.readBigUInt64LE(SEND_HEADER_EX.pszHeader);
      const cchStatus = info.readUInt32LE(SEND_HEADER_EX.cchStatus);
      const cchHeader = info.readUInt32LE(SEND_HEADER_EX.cchHeader);
      const keepConn = info.readInt32LE(SEND_HEADER_EX.fKeepConn) !== 0;
      // cch* count characters; some extensions include the NUL, others pass 0 and rely on it.
      const status = statusPtr ? (cchStatus ? stripNul(readString(shim, statusPtr, cchStatus)) : readCString(shim, statusPtr)) : null;
      const header = headerPtr ? (cchHeader ? stripNul(readString(shim, headerPtr, cchHeader)) : readCString(shim, headerPtr)) : null;
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
      ctx.accountant.appendLog(text);
      return undefined;
    });

    this.installAsync();
    this.installConnection();
  }

  /** HSE_REQ_IO_COMPLETION, ASYNC_READ_CLIENT, TRANSMIT_FILE, VECTOR_SEND, CANCEL_IO. */
  private installAsync(): void {
    const shim = this.shim;
    this.ssf.set(HSE_REQ.IO_COMPLETION, (ctx, buf, _size, type) => {
      // A NULL function means "never call one" (Microsoft's HSE_REQ_IO_COMPLETION).
      ctx.completion = buf ? { fn: buf, context: type ?? 0n } : undefined;
      return undefined;
    });

    this.ssf.set(HSE_REQ.ASYNC_READ_CLIENT, (ctx, buf, size, type) => {
      if (!buf || !size || !type || !(readDword(type) & HSE_IO.ASYNC)) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      const want = readDword(size);
      if (want === 0) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      return ctx.readBodyAsync(new Uint8Array(koffi.view(buf, want)));
    });

    this.ssf.set(HSE_REQ.CANCEL_IO, (ctx) => {
      if (ctx.outstanding?.kind === 'read') ctx.ioDone(ctx.outstanding.id, 0, WIN32_ERROR.OPERATION_ABORTED);
      return undefined;
    });

    this.ssf.set(HSE_REQ.TRANSMIT_FILE, (ctx, buf) => {
      if (!buf) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      const tf = Buffer.from(koffi.view(buf, sizeOf.HSE_TF_INFO));
      const flags = tf.readUInt32LE(TF_INFO.dwFlags);
      const pfn = tf.readBigUInt64LE(TF_INFO.pfnHseIO);
      // pfnHseIO overrides the registered completion for this one operation (ms524981).
      const completion = pfn ? { fn: pfn, context: tf.readBigUInt64LE(TF_INFO.pContext) } : ctx.completion;
      const isAsync = (flags & HSE_IO.ASYNC) !== 0;
      if (isAsync && !completion) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      const handle = fileOf(tf.readBigUInt64LE(TF_INFO.hFile));
      if (!handle) return new CallFailure(WIN32_ERROR.INVALID_HANDLE);
      const { file, size } = handle;
      const offset = tf.readUInt32LE(TF_INFO.Offset);
      if (offset > size) return new CallFailure(WIN32_ERROR.WSAEINVAL);
      const toWrite = tf.readUInt32LE(TF_INFO.BytesToWrite);
      const length = toWrite === 0 ? size - offset : Math.min(toWrite, size - offset);

      const headPtr = tf.readBigUInt64LE(TF_INFO.pHead);
      const headLength = tf.readUInt32LE(TF_INFO.HeadLength);
      const tailPtr = tf.readBigUInt64LE(TF_INFO.pTail);
      const tailLength = tf.readUInt32LE(TF_INFO.TailLength);
      let prefix: Buffer = Buffer.alloc(0);
      if (flags & HSE_IO.SEND_HEADERS) {
        // pHead is then the header block and pszStatusCode the status (ms524981).
        const status = readCString(shim, tf.readBigUInt64LE(TF_INFO.pszStatusCode));
        const block = headPtr ? (headLength ? readString(shim, headPtr, headLength) : readCString(shim, headPtr)) : null;
        const parsed = parseSendResponseHeader(status, block, ctx.ecb.httpStatusCode);
        if (parsed.kind === 'error') return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
        const failure = ctx.setHead({ ...parsed, body: Buffer.alloc(0) });
        if (failure) return failure;
        prefix = parsed.body;
      } else if (headPtr && headLength) {
        prefix = Buffer.from(new Uint8Array(koffi.view(headPtr, headLength)));
      }
      const tail = tailPtr && tailLength ? Buffer.from(new Uint8Array(koffi.view(tailPtr, tailLength))) : Buffer.alloc(0);
      if (flags & HSE_IO.DISCONNECT_AFTER_SEND) ctx.requestClose(false);

      const op = ctx.beginAsync('transmit_file', isAsync ? completion : SYNC);
      if (op instanceof CallFailure) return op;
      const segments: OutputSegment[] = [];
      pushFrames(segments, ctx, prefix);
      segments.push({ kind: 'file', file, offset, length });
      pushFrames(segments, ctx, tail);
      ctx.sendSegments(segments, op);
      if (isAsync) return undefined;
      const result = ctx.waitForOperation(op);
      return result.error ? new CallFailure(result.error) : undefined;
    });

    this.ssf.set(HSE_REQ.VECTOR_SEND, (ctx, buf) => {
      if (!buf) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      const rv = Buffer.from(koffi.view(buf, sizeOf.HSE_RESPONSE_VECTOR));
      const flags = rv.readUInt32LE(RESPONSE_VECTOR.dwFlags);
      const isAsync = (flags & HSE_IO.ASYNC) !== 0;
      if (isAsync && !ctx.completion) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      // CACHE_RESPONSE is only valid on the final send (ms525729).
      if (flags & HSE_IO.CACHE_RESPONSE && !(flags & HSE_IO.FINAL_SEND)) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      const statusPtr = rv.readBigUInt64LE(RESPONSE_VECTOR.pszStatus);
      const headersPtr = rv.readBigUInt64LE(RESPONSE_VECTOR.pszHeaders);
      const sendHeaders = (flags & HSE_IO.SEND_HEADERS) !== 0;
      // pszStatus/pszHeaders are given exactly when HSE_IO_SEND_HEADERS is set.
      if (sendHeaders !== Boolean(statusPtr || headersPtr) && !(sendHeaders && statusPtr)) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      const count = rv.readUInt32LE(RESPONSE_VECTOR.nElementCount);
      const array = rv.readBigUInt64LE(RESPONSE_VECTOR.lpElementArray);
      if (count > 0 && !array) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);

      // Validate every element before sending anything.
      const elements = count === 0 ? Buffer.alloc(0) : Buffer.from(koffi.view(array!, count * sizeOf.HSE_VECTOR_ELEMENT));
      const plan: Array<{ memory: Buffer } | { file: FileRef; offset: number; length: number }> = [];
      for (let i = 0; i < count; i++) {
        const at = i * sizeOf.HSE_VECTOR_ELEMENT;
        const type = elements.readUInt32LE(at + VECTOR_ELEMENT.ElementType);
        const context = elements.readBigUInt64LE(at + VECTOR_ELEMENT.pvContext);
        const offset = Number(elements.readBigUInt64LE(at + VECTOR_ELEMENT.cbOffset));
        const length = Number(elements.readBigUInt64LE(at + VECTOR_ELEMENT.cbSize));
        if (type === 0) {
          // Memory: cbSize 0 is invalid (ms525207).
          if (!context || length === 0) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
          plan.push({ memory: Buffer.from(new Uint8Array(koffi.view(context + BigInt(offset), length))) });
        } else if (type === 1) {
          const handle = fileOf(context);
          if (!handle) return new CallFailure(WIN32_ERROR.INVALID_HANDLE);
          const { file, size } = handle;
          if (offset > size) return new CallFailure(WIN32_ERROR.WSAEINVAL);
          plan.push({ file, offset, length: length === 0 ? size - offset : Math.min(length, size - offset) });
        } else {
          return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
        }
      }
      if (sendHeaders) {
        const parsed = parseSendResponseHeader(readCString(shim, statusPtr), readCString(shim, headersPtr), ctx.ecb.httpStatusCode);
        if (parsed.kind === 'error') return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
        const failure = ctx.setHead({ ...parsed, body: Buffer.alloc(0) });
        if (failure) return failure;
        if (parsed.body.length > 0) plan.unshift({ memory: parsed.body });
      }
      const op = ctx.beginAsync('vector_send', isAsync ? ctx.completion : SYNC);
      if (op instanceof CallFailure) return op;
      const segments: OutputSegment[] = [];
      for (const item of plan) {
        if ('memory' in item) pushFrames(segments, ctx, item.memory);
        else segments.push({ kind: 'file', ...item });
      }
      if (segments.length === 0) pushFrames(segments, ctx, Buffer.alloc(0));
      ctx.sendSegments(segments, op);
      if (isAsync) return undefined;
      const result = ctx.waitForOperation(op);
      return result.error ? new CallFailure(result.error) : undefined;
    });
  }

  /** Connection state, custom errors, URL mapping, health. */
  private installConnection(): void {
    const shim = this.shim;
    this.ssf.set(HSE_REQ.IS_CONNECTED, (ctx, buf) => {
      if (!buf) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      koffi.encode(buf, 'int32_t', ctx.aborted || ctx.closedByExtension ? 0 : 1);
      return undefined;
    });

    this.ssf.set(HSE_REQ.CLOSE_CONNECTION, (ctx) => {
      // Meant to end a pending async read: it completes with ERROR_NETNAME_DELETED (ms524613).
      ctx.closedByExtension = true;
      ctx.requestClose(false);
      if (ctx.outstanding?.kind === 'read') ctx.ioDone(ctx.outstanding.id, 0, WIN32_ERROR.NETNAME_DELETED);
      return undefined;
    });

    this.ssf.set(HSE_REQ.ABORTIVE_CLOSE, (ctx) => {
      ctx.requestClose(true);
      return undefined;
    });

    // lpvBuffer is the BOOL itself, not a pointer to one (KB 946086).
    this.ssf.set(HSE_REQ.SET_FLUSH_FLAG, (ctx, flag) => {
      ctx.setFlushEachWrite(flag !== null && flag !== 0n);
      return undefined;
    });

    this.ssf.set(HSE_REQ.IS_IN_PROCESS, (_ctx, buf) => {
      if (!buf) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      writeDword(buf, 0); // HSE_APP_FLAG_IN_PROCESS: the extension runs inside its host process.
      return undefined;
    });

    this.ssf.set(HSE_REQ.REPORT_UNHEALTHY, (ctx, buf) => {
      this.hooks.unhealthy(ctx, readCString(shim, buf, 4096) ?? '');
      return undefined;
    });

    this.ssf.set(HSE_REQ.SEND_CUSTOM_ERROR, (ctx, buf) => {
      if (!buf) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      const info = Buffer.from(koffi.view(buf, sizeOf.HSE_CUSTOM_ERROR_INFO));
      const status = readCString(shim, info.readBigUInt64LE(CUSTOM_ERROR.pszStatus));
      const subError = info.readUInt16LE(CUSTOM_ERROR.uHttpSubError);
      const isAsync = info.readInt32LE(CUSTOM_ERROR.fAsync) !== 0;
      if (!status || ctx.headSent) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      if (isAsync && !ctx.completion) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      const parsed = parseSendResponseHeader(status, null, ctx.ecb.httpStatusCode);
      if (parsed.kind === 'error') return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      const code = parsed.head.statusCode;
      const body = Buffer.from(
        `<html><head><title>${code}.${subError} - ${parsed.head.reason}</title></head>` +
          `<body><h1>${code}.${subError} - ${parsed.head.reason}</h1></body></html>\r\n`,
        'latin1',
      );
      const head: ParsedHead = {
        kind: 'head',
        head: { ...parsed.head, headers: [['Content-Type', 'text/html'], ['Content-Length', String(body.length)]], contentLength: body.length },
        body,
      };
      if (!isAsync) return ctx.setHead(head);
      const op = ctx.beginAsync('write');
      if (op instanceof CallFailure) return op;
      const segments: OutputSegment[] = [];
      const failure = ctx.setHead({ ...head, body: Buffer.alloc(0) });
      if (failure) return failure;
      pushFrames(segments, ctx, body);
      ctx.sendSegments(segments, op);
      return undefined;
    });

    this.ssf.set(HSE_REQ.SEND_URL, (ctx, buf) => {
      const url = readCString(shim, buf, 1 << 16);
      if (!url || !url.startsWith('/')) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      return ctx.sendUrl(url);
    });

    this.ssf.set(HSE_REQ.EXEC_URL, (ctx, buf) => {
      // Always asynchronous: the completion reports the child's end (HSE_REQ_EXEC_URL).
      if (!ctx.completion) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      const info = buf ? Buffer.from(koffi.view(buf, sizeOf.HSE_EXEC_URL_INFO)) : undefined;
      const ptr = (field: keyof typeof EXEC_URL_INFO): bigint => (info ? info.readBigUInt64LE(EXEC_URL_INFO[field]) : 0n);
      const flags = info ? info.readUInt32LE(EXEC_URL_INFO.dwExecUrlFlags) : 0;
      const entity = readEntity(ptr('pEntity'));
      const frame = encodeExecUrl(ctx.streamId, {
        url: readCString(shim, ptr('pszUrl'), 1 << 16) ?? '',
        method: readCString(shim, ptr('pszMethod'), 64) ?? '',
        headers: readCString(shim, ptr('pszChildHeaders'), 1 << 16) ?? '',
        flags,
        entity,
      });
      return ctx.execUrl(frame, !(flags & HSE_EXEC_URL.NO_HEADERS));
    });

    // The same child request, with the URL as a WCHAR string (HSE_EXEC_UNICODE_URL_INFO has EXEC_URL_INFO's layout).
    this.ssf.set(HSE_REQ.EXEC_UNICODE_URL, (ctx, buf) => {
      if (!ctx.completion || !buf) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      const info = Buffer.from(koffi.view(buf, sizeOf.HSE_EXEC_UNICODE_URL_INFO));
      const url = readWideString(shim, info.readBigUInt64LE(EXEC_UNICODE_URL_INFO.pszUrl)) ?? '';
      const flags = info.readUInt32LE(EXEC_UNICODE_URL_INFO.dwExecUrlFlags);
      const frame = encodeExecUrl(ctx.streamId, {
        // The gateway routes bytes: a Unicode URL travels percent-encoded as UTF-8, as a browser would send it.
        url: url ? encodeURI(url) : '',
        method: readCString(shim, info.readBigUInt64LE(EXEC_UNICODE_URL_INFO.pszMethod), 64) ?? '',
        headers: readCString(shim, info.readBigUInt64LE(EXEC_UNICODE_URL_INFO.pszChildHeaders), 1 << 16) ?? '',
        flags,
        entity: readEntity(info.readBigUInt64LE(EXEC_UNICODE_URL_INFO.pEntity)),
      });
      return ctx.execUrl(frame, !(flags & HSE_EXEC_URL.NO_HEADERS));
    });

    // lpvBuffer holds the URL on input and the physical path on output, both WCHAR; sizes in bytes.
    this.ssf.set(HSE_REQ.MAP_UNICODE_URL_TO_PATH, (ctx, buf, size) => {
      if (!buf || !size) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      const capacity = readDword(size);
      const url = readWideString(shim, buf, Math.max(1, capacity >>> 1)) ?? '';
      const path = Buffer.from(mapUrlToPath(url, ctx.app, ctx.variables.identity) + '\0', 'utf16le');
      writeDword(size, path.length);
      if (capacity < path.length) return new CallFailure(WIN32_ERROR.INSUFFICIENT_BUFFER);
      new Uint8Array(koffi.view(buf, path.length)).set(path);
      return undefined;
    });

    // HSE_UNICODE_URL_MAPEX_INFO: WCHAR lpszPath[MAX_PATH], then dwFlags, cchMatchingPath, cchMatchingURL.
    this.ssf.set(HSE_REQ.MAP_UNICODE_URL_TO_PATH_EX, (ctx, buf, _size, type) => {
      if (!buf || !type) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      const url = readWideString(shim, buf) ?? '';
      const mapping = mapUrlToPathEx(url, ctx.app, ctx.variables.identity);
      const path = Buffer.from(mapping.path, 'utf16le');
      if (path.length + 2 > UNICODE_URL_MAPEX.dwFlags) return new CallFailure(WIN32_ERROR.INSUFFICIENT_BUFFER);
      const out = Buffer.alloc(sizeOf.HSE_UNICODE_URL_MAPEX_INFO);
      out.set(path, UNICODE_URL_MAPEX.lpszPath);
      out.writeUInt32LE(mapping.flags, UNICODE_URL_MAPEX.dwFlags);
      out.writeUInt32LE(mapping.cchMatchingPath, UNICODE_URL_MAPEX.cchMatchingPath);
      out.writeUInt32LE(mapping.cchMatchingURL, UNICODE_URL_MAPEX.cchMatchingURL);
      new Uint8Array(koffi.view(type, out.length)).set(out);
      return undefined;
    });

    // Canonicalises the URL in place: %XX decoded, "\\" as "/", "." and ".." resolved; climbing above "/" fails.
    this.ssf.set(HSE_REQ.NORMALIZE_URL, (_ctx, buf) => {
      const url = readCString(shim, buf, 1 << 16);
      if (url === null) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      const normal = normalizeUrl(url);
      if (normal === undefined) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      const bytes = Buffer.from(normal + '\0', 'latin1');
      // Normalising never lengthens a URL, so it fits where the original was.
      new Uint8Array(koffi.view(buf!, bytes.length)).set(bytes);
      return undefined;
    });

    this.ssf.set(HSE_REQ.GET_EXEC_URL_STATUS, (ctx, buf) => {
      if (!buf || !ctx.execStatus) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      const out = Buffer.alloc(sizeOf.HSE_EXEC_URL_STATUS);
      out.writeUInt16LE(ctx.execStatus.status, 0);
      out.writeUInt16LE(ctx.execStatus.subStatus, 2);
      out.writeUInt32LE(ctx.execStatus.win32Error, 4);
      new Uint8Array(koffi.view(buf, out.length)).set(out);
      return undefined;
    });

    this.ssf.set(HSE_REQ.MAP_URL_TO_PATH_EX, (ctx, buf, _size, type) => {
      if (!buf || !type) return new CallFailure(WIN32_ERROR.INVALID_PARAMETER);
      const url = readCString(shim, buf, 1 << 16) ?? '';
      const mapping = mapUrlToPathEx(url, ctx.app, ctx.variables.identity);
      const path = ctx.variables.textBytes(mapping.path);
      const max = koffi.sizeof('char') * 260;
      if (path.length + 1 > max) return new CallFailure(WIN32_ERROR.INSUFFICIENT_BUFFER);
      const out = Buffer.alloc(sizeOf.HSE_URL_MAPEX_INFO);
      out.set(path, 0);
      out.writeUInt32LE(mapping.flags, koffi.offsetof(HSE_URL_MAPEX_INFO, 'dwFlags'));
      out.writeUInt32LE(mapping.cchMatchingPath, koffi.offsetof(HSE_URL_MAPEX_INFO, 'cchMatchingPath'));
      out.writeUInt32LE(mapping.cchMatchingURL, koffi.offsetof(HSE_URL_MAPEX_INFO, 'cchMatchingURL'));
      new Uint8Array(koffi.view(type, out.length)).set(out);
      return undefined;
    });
  }

}

/** HSE_EXEC_URL_ENTITY_INFO { DWORD cbAvailable; LPVOID lpbData; }: the child's request body. */
function readEntity(ptr: bigint): Buffer {
  if (!ptr) return Buffer.alloc(0);
  const e = Buffer.from(koffi.view(ptr, 16));
  const n = e.readUInt32LE(0);
  const data = e.readBigUInt64LE(8);
  return n > 0 && data ? Buffer.from(new Uint8Array(koffi.view(data, n))) : Buffer.alloc(0);
}

/** HSE_REQ_NORMALIZE_URL: the canonical form of a URL path, or undefined if it climbs above the root. */
export function normalizeUrl(url: string): string | undefined {
  const q = url.indexOf('?');
  const pathPart = (q < 0 ? url : url.slice(0, q)).replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  const out: string[] = [];
  for (const seg of pathPart.replace(/\\/g, '/').split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0) return undefined;
      out.pop();
    } else out.push(seg);
  }
  const trailing = /[/\\]$/.test(pathPart) && out.length > 0 ? '/' : '';
  return '/' + out.join('/') + trailing + (q < 0 ? '' : url.slice(q));
}

/** Appends `data` (with the held head in front of it, if any) as ready-made frames. */
function pushFrames(segments: OutputSegment[], ctx: RequestContext, data: Buffer): void {
  const parts = ctx.bodyParts(data) ?? [];
  parts.push(...ctx.takeHeadFrames());
  if (parts.length === 0) return;
  segments.push({ kind: 'frames', bytes: assemble(parts), payloadBytes: data.length });
}

function stripNul(s: string): string {
  const i = s.indexOf('\0');
  return i < 0 ? s : s.slice(0, i);
}
