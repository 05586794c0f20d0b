/**
 * A bounded load loop for supervision tests: `concurrency` real HTTP clients
 * issuing requests back to back until `durationMs` has passed, recording when
 * each request started and ended and how it went.
 */
import http from 'node:http';
import { request } from '../harness';

export interface Outcome {
  start: number;
  end: number;
  /** HTTP status, or 0 when the request failed without a response (connection reset). */
  status: number;
  body: string;
}

export async function loadFor(
  url: string | (() => string),
  durationMs: number,
  concurrency: number,
  onTick?: (elapsedMs: number) => void,
): Promise<Outcome[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const outcomes: Outcome[] = [];
  const until = Date.now() + durationMs;
  const worker = async (): Promise<void> => {
    while (Date.now() < until) {
      const start = Date.now();
      onTick?.(start);
      try {
        const r = await request(typeof url === 'string' ? url : url(), { agent });
        outcomes.push({ start, end: Date.now(), status: r.status, body: r.body.toString() });
      } catch (err) {
        outcomes.push({ start, end: Date.now(), status: 0, body: (err as Error).message });
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    agent.destroy();
  }
  return outcomes;
}

/** Polls until `pred` holds (bounded). */
export async function eventually(pred: () => boolean | Promise<boolean>, timeoutMs = 10000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > until) throw new Error(`${what} did not hold within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
