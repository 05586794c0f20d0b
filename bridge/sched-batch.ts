/**
 * The bridge process's CPU scheduling policy. On Linux the bridge moves its threads
 * to SCHED_BATCH: a woken batch thread does not preempt the thread that woke it, so
 * the hand-overs of a request between the socket thread and an extension thread stop
 * costing a context switch each when they share a core (bench/RESULTS.md, session 4).
 * The gateway keeps the normal policy, so it still answers clients first.
 */
import koffi from 'koffi';

export type SchedBatchResult =
  | { kind: 'moved'; threads: number }
  /** The platform has no such policy (Windows, or Windows node under Wine). */
  | { kind: 'unsupported' }
  | { kind: 'failed'; errno: number };

export function enterBatchScheduling(shimPath: string): SchedBatchResult {
  const shim = koffi.load(shimPath);
  const schedBatch = shim.func('int shim_sched_batch(void)') as () => number;
  const n = schedBatch();
  if (n > 0) return { kind: 'moved', threads: n };
  return n === 0 ? { kind: 'unsupported' } : { kind: 'failed', errno: -n };
}
