/**
 * Bridge-side helper that fills one request's RequestAccounting and, when given the
 * bridge's metric handles, keeps the live async gauge and outstanding-time histogram
 * in step with it. One instance per request.
 */
import { performance } from 'node:perf_hooks';
import { APPEND_LOG_MAX_LENGTH, emptyAccounting, type RequestAccounting } from './accounting';
import type { AsyncOpKind, IoMode, SsfResult } from './labels';
import { ssfRequestLabel } from './labels';

type AsyncLabels = { app: string; kind: AsyncOpKind };

/** What the accountant updates live: the subset of prom-client's Gauge and Histogram it calls. */
export interface LiveAsyncMetrics {
  readonly asyncOperationsOutstanding: { inc(labels: AsyncLabels): void; dec(labels: AsyncLabels): void };
  readonly asyncOutstandingDuration: { observe(labels: AsyncLabels, seconds: number): void };
}

export interface RequestAccountantOptions {
  /** Configured app name; the `app` label of the live metrics. */
  readonly app: string;
  /** The bridge's metrics (or a relay to them from another thread); when absent only the accounting record is kept. */
  readonly metrics?: LiveAsyncMetrics;
  /** Monotonic clock in seconds (tests inject one). */
  readonly now?: () => number;
}

/** An issued async operation; pass it back to RequestAccountant.completeAsync. */
export interface AsyncOperation {
  readonly kind: AsyncOpKind;
  readonly startedAt: number;
}

const defaultNow = (): number => performance.now() / 1000;

export class RequestAccountant {
  readonly #acc: RequestAccounting = emptyAccounting();
  readonly #app: string;
  readonly #metrics: RequestAccountantOptions['metrics'];
  readonly #now: () => number;
  readonly #pending = new Set<AsyncOperation>();

  constructor(options: RequestAccountantOptions) {
    this.#app = options.app;
    this.#metrics = options.metrics;
    this.#now = options.now ?? defaultNow;
  }

  /** Async operations issued and not yet completed. */
  get outstanding(): number {
    return this.#pending.size;
  }

  /** A WriteClient call (sync) or an async write's completion, with the bytes written. */
  write(mode: IoMode, bytes: number): void {
    if (mode === 'sync') {
      this.#acc.syncWrites += 1;
      this.#acc.syncWriteBytes += bytes;
    } else {
      this.#acc.asyncWrites += 1;
      this.#acc.asyncWriteBytes += bytes;
    }
  }

  /** A ReadClient call (sync) or an async read's completion, with the bytes read. */
  read(mode: IoMode, bytes: number): void {
    if (mode === 'sync') {
      this.#acc.syncReads += 1;
      this.#acc.syncReadBytes += bytes;
    } else {
      this.#acc.asyncReads += 1;
      this.#acc.asyncReadBytes += bytes;
    }
  }

  transmitFile(bytes: number): void {
    this.#acc.transmitFileBytes += bytes;
  }

  vectorSend(bytes: number): void {
    this.#acc.vectorSendBytes += bytes;
  }

  /** An async operation refused because another was still outstanding. */
  rejectSecondOutstanding(): void {
    this.#acc.rejectedSecondOutstanding += 1;
  }

  /** A ServerSupportFunction call; unknown names are recorded as UNKNOWN. */
  ssf(request: string, result: SsfResult): void {
    const name = ssfRequestLabel(request);
    const counts = (this.#acc.ssfCalls[name] ??= { ok: 0, error: 0, unsupported: 0 });
    counts[result] += 1;
  }

  /** HSE_APPEND_LOG_PARAMETER: appends, keeping at most APPEND_LOG_MAX_LENGTH characters. */
  appendLog(text: string): void {
    const room = APPEND_LOG_MAX_LENGTH - this.#acc.appendLog.length;
    if (room > 0) this.#acc.appendLog += text.slice(0, room);
  }

  /** An async operation was issued; returns the token to complete it with. */
  beginAsync(kind: AsyncOpKind): AsyncOperation {
    const op: AsyncOperation = { kind, startedAt: this.#now() };
    this.#pending.add(op);
    this.#acc.maxOutstanding = Math.max(this.#acc.maxOutstanding, this.#pending.size);
    this.#metrics?.asyncOperationsOutstanding.inc({ app: this.#app, kind });
    return op;
  }

  /**
   * The completion routine of `op` is being called with `errorCode` (0 for success).
   * Returns the seconds it was outstanding, or undefined if `op` was already completed.
   */
  completeAsync(op: AsyncOperation, errorCode = 0): number | undefined {
    if (!this.#pending.delete(op)) return undefined;
    const seconds = Math.max(0, this.#now() - op.startedAt);
    const stats = this.#acc.ops[op.kind];
    stats.count += 1;
    stats.totalOutstandingSeconds += seconds;
    stats.maxOutstandingSeconds = Math.max(stats.maxOutstandingSeconds, seconds);
    if (errorCode !== 0) {
      const key = String(errorCode);
      this.#acc.completionErrors[key] = (this.#acc.completionErrors[key] ?? 0) + 1;
    }
    this.#metrics?.asyncOperationsOutstanding.dec({ app: this.#app, kind: op.kind });
    this.#metrics?.asyncOutstandingDuration.observe({ app: this.#app, kind: op.kind }, seconds);
    return seconds;
  }

  /** A copy of the accounting so far. */
  snapshot(): RequestAccounting {
    return structuredClone(this.#acc);
  }

  /** The accounting itself, read-only: for encoding it at once (RESPONSE_END) without a copy. */
  current(): Readonly<RequestAccounting> {
    return this.#acc;
  }
}
