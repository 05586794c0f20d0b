/**
 * Shadow mode for migrations: the client gets the primary's response, unchanged and
 * undelayed (we only watch what is written), while a copy of the request is replayed
 * to the shadow once the primary is done. Status, selected headers and a sha256 of
 * each body are compared; mismatches are counted and written to a JSONL diff log.
 *
 * Memory is bounded: at most maxConcurrent replays (each holding a body of at most
 * maxBodyBytes) exist at once; more are dropped and counted. Response bodies are
 * hashed as they stream, never kept.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { Logger } from '../bridge/log';
import { tapRequestBody, tapResponse, type ResponseSummary } from './body-tap';
import { SHADOW_HEADER, type ShadowMarkerCodec } from './shadow-marker';
import type { ShadowConfig } from './upstream-config';
import { stripHopByHop } from './upstream-headers';

/** Counters per shadowed route, for metrics. All but inFlight only grow. */
export interface ShadowRouteStats {
  /** The route's prefix (with its host, if any: `host/prefix`). */
  readonly route: string;
  /** `upstream:<name>` or `app:<name>`. */
  readonly shadow: string;
  /** Requests seen on the route. */
  requests: number;
  /** Not replayed because of sampleRate. */
  sampledOut: number;
  /** Not replayed or not compared: method not listed, body over maxBodyBytes, primary response cut off. */
  skipped: number;
  /** Not replayed because maxConcurrent replays were already running. */
  dropped: number;
  matches: number;
  mismatches: number;
  /** The replay failed (connection error, timeout, cut-off response). */
  errors: number;
  /** Diff-log lines lost because the file could not keep up or could not be written. */
  diffLogDropped: number;
  /** Replays holding a slot now (body capture through comparison). */
  inFlight: number;
}

/** Everything the gateway's shadows have counted, by route key. */
export type ShadowStats = ReadonlyMap<string, Readonly<ShadowRouteStats>>;

export interface ShadowDeps {
  logger: Logger;
  marker: ShadowMarkerCodec;
  /** Where this gateway listens: replays go there, marked. */
  selfUrl(): string;
  agent: http.Agent;
  diffLog(file: string): DiffLog;
}

/** Diff-log lines past this much unwritten data are dropped rather than buffered. */
const DIFF_LOG_HIGH_WATER = 4 * 1024 * 1024;

export class DiffLog {
  private readonly stream: fs.WriteStream;
  private failed = false;

  constructor(
    readonly file: string,
    logger: Logger,
  ) {
    this.stream = fs.createWriteStream(file, { flags: 'a' });
    this.stream.on('error', (err) => {
      if (!this.failed) logger.error('shadow diff log not writable', { file, error: err.message });
      this.failed = true;
    });
  }

  /** False when the line was dropped. */
  write(entry: object): boolean {
    if (this.failed || this.stream.writableLength > DIFF_LOG_HIGH_WATER) return false;
    this.stream.write(JSON.stringify(entry) + '\n');
    return true;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.stream.end(() => resolve()));
  }
}

type Side = ResponseSummary;

export class Shadow {
  readonly stats: ShadowRouteStats;
  private readonly log: DiffLog | undefined;

  constructor(
    routeKey: string,
    readonly config: ShadowConfig,
    private readonly deps: ShadowDeps,
    carried?: ShadowRouteStats,
  ) {
    const shadow = `${config.backend.kind}:${config.backend.name}`;
    this.stats = carried
      ? Object.assign(carried, { shadow })
      : { route: routeKey, shadow, requests: 0, sampledOut: 0, skipped: 0, dropped: 0, matches: 0, mismatches: 0, errors: 0, diffLogDropped: 0, inFlight: 0 };
    this.log = config.diffLog ? deps.diffLog(config.diffLog) : undefined;
  }

  /**
   * Called before the primary gets the request: decides whether to replay it and, if
   * so, starts watching the request body and the primary's response.
   */
  begin(req: http.IncomingMessage, res: http.ServerResponse, requestId: string): void {
    const s = this.stats;
    const c = this.config;
    s.requests++;
    const method = (req.method ?? 'GET').toUpperCase();
    if (!c.methods.includes(method) || req.headers.upgrade !== undefined) {
      s.skipped++;
      return;
    }
    if (Math.random() >= c.sampleRate) {
      s.sampledOut++;
      return;
    }
    if (Number(req.headers['content-length'] ?? 0) > c.maxBodyBytes) {
      s.skipped++;
      return;
    }
    if (s.inFlight >= c.maxConcurrent) {
      s.dropped++;
      return;
    }
    s.inFlight++;
    const started = Date.now();
    // Snapshot now: the primary may rewrite req.headers (an upstream does).
    const request = {
      method,
      url: req.url ?? '/',
      headers: stripHopByHop(req.headers),
      client: req.socket.remoteAddress ?? '127.0.0.1',
    };
    delete request.headers.expect;
    const body: Buffer[] = [];
    let bodyBytes = 0;
    let tooLarge = false;
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    let bodyDone = !hasBody;
    let primary: Side | undefined | null = null; // null: not finished yet
    let released = false;
    let guard: NodeJS.Timeout | undefined;
    const release = (): void => {
      if (released) return;
      released = true;
      s.inFlight--;
      clearTimeout(guard);
    };
    const proceed = (): void => {
      if (released || primary === null) return;
      if (!bodyDone) {
        // A primary that answered without reading the whole body: wait a little for it, not forever.
        guard ??= setTimeout(() => {
          if (released) return;
          s.skipped++;
          release();
        }, c.timeoutMs);
        return;
      }
      clearTimeout(guard);
      if (primary === undefined || tooLarge) {
        s.skipped++;
        release();
        return;
      }
      const p = primary;
      this.replay(request, Buffer.concat(body, bodyBytes), requestId).then(
        (shadow) => {
          this.compare(request, requestId, p, shadow);
          release();
        },
        (err: Error) => {
          s.errors++;
          this.record({ kind: 'error', request, requestId, primary: p, error: err.message });
          release();
        },
      );
    };
    if (hasBody) {
      tapRequestBody(req, {
        chunk: (data) => {
          if (tooLarge) return;
          bodyBytes += data.length;
          if (bodyBytes > c.maxBodyBytes) {
            tooLarge = true;
            body.length = 0;
          } else {
            body.push(Buffer.from(data));
          }
        },
        end: () => {
          bodyDone = true;
          proceed();
        },
      });
    }
    tapResponse(res, (summary) => {
      primary = summary ? { ...summary, durationMs: Date.now() - started } : undefined;
      // The client may leave mid-upload; then the body never completes.
      if (summary === undefined) bodyDone = true;
      proceed();
    });
  }

  private replay(request: ReplayRequest, body: Buffer, requestId: string): Promise<Side> {
    const c = this.config;
    const started = Date.now();
    return new Promise<Side>((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = { ...request.headers };
      delete headers['transfer-encoding'];
      if (body.length > 0 || headers['content-length'] !== undefined) headers['content-length'] = String(body.length);
      headers[SHADOW_HEADER] = this.deps.marker.encode({ backend: c.backend, requestId, client: request.client });
      const req = http.request(new URL(request.url, this.deps.selfUrl()), { method: request.method, headers, agent: this.deps.agent, timeout: c.timeoutMs });
      const timer = setTimeout(() => req.destroy(new Error(`shadow timed out after ${c.timeoutMs} ms`)), c.timeoutMs);
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      req.on('response', (res) => {
        const hash = crypto.createHash('sha256');
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          hash.update(chunk);
        });
        res.on('end', () => {
          clearTimeout(timer);
          const headersOut: Record<string, string> = {};
          for (const [n, v] of Object.entries(res.headers)) if (v !== undefined) headersOut[n] = Array.isArray(v) ? v.join(', ') : v;
          resolve({ status: res.statusCode ?? 0, headers: headersOut, bodyBytes: bytes, bodySha256: hash.digest('hex'), durationMs: Date.now() - started });
        });
        res.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
      });
      req.end(body);
    });
  }

  private compare(request: ReplayRequest, requestId: string, primary: Side, shadow: Side): void {
    const differences: string[] = [];
    if (primary.status !== shadow.status) differences.push('status');
    for (const h of this.config.compareHeaders) if (primary.headers[h] !== shadow.headers[h]) differences.push(`header:${h}`);
    if (primary.bodySha256 !== shadow.bodySha256) differences.push('body');
    if (differences.length === 0) {
      this.stats.matches++;
      if (this.config.logMatches) this.record({ kind: 'match', request, requestId, primary, shadow, differences });
    } else {
      this.stats.mismatches++;
      this.record({ kind: 'mismatch', request, requestId, primary, shadow, differences });
    }
  }

  private record(e: { kind: 'match' | 'mismatch' | 'error'; request: ReplayRequest; requestId: string; primary: Side; shadow?: Side; differences?: string[]; error?: string }): void {
    if (!this.log) return;
    const summary = (side: Side): object => ({
      status: side.status,
      headers: Object.fromEntries(this.config.compareHeaders.map((h) => [h, side.headers[h] ?? null])),
      bodyBytes: side.bodyBytes,
      bodySha256: side.bodySha256,
      durationMs: side.durationMs,
    });
    const ok = this.log.write({
      time: new Date().toISOString(),
      kind: e.kind,
      route: this.stats.route,
      shadow: this.stats.shadow,
      requestId: e.requestId,
      method: e.request.method,
      url: e.request.url,
      differences: e.differences,
      primary: summary(e.primary),
      shadowResponse: e.shadow ? summary(e.shadow) : undefined,
      error: e.error,
    });
    if (!ok) this.stats.diffLogDropped++;
  }
}

interface ReplayRequest {
  method: string;
  url: string;
  headers: http.OutgoingHttpHeaders;
  client: string;
}
