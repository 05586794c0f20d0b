/**
 * How a shadow replay reaches its backend: as a real HTTP request to this gateway on
 * its own listening address, marked with a header that carries a per-process secret
 * token, the backend to use and the original client. The marked request skips route
 * matching (so it is never shadowed again) and goes through the same code as any
 * request: IsapiExchange for an app, Upstream for an HTTP upstream. A wrong token is
 * refused, so clients cannot use the marker to reach backends directly.
 */
import crypto from 'node:crypto';
import type http from 'node:http';
import net from 'node:net';
import type { BackendRef } from './upstream-config';

export const SHADOW_HEADER = 'x-isapi-gateway-shadow';

export interface ShadowMarker {
  backend: BackendRef;
  /** The primary request's id, so both sides correlate in logs. */
  requestId: string;
  /** The original client's address. */
  client: string;
}

export class InvalidShadowMarkerError extends Error {
  readonly code = 'ERR_SHADOW_MARKER';
  constructor(detail: string) {
    super(`invalid ${SHADOW_HEADER} header: ${detail}`);
    this.name = 'InvalidShadowMarkerError';
  }
}

export class ShadowMarkerCodec {
  private readonly token = crypto.randomBytes(16).toString('hex');

  encode(m: ShadowMarker): string {
    return `${this.token}; backend=${m.backend.kind}:${encodeURIComponent(m.backend.name)}; id=${encodeURIComponent(m.requestId)}; client=${m.client}`;
  }

  /**
   * The marker of `req`, removed from its headers so the backend never sees it;
   * undefined when there is none. Throws InvalidShadowMarkerError for a forged or broken one.
   */
  take(req: http.IncomingMessage): ShadowMarker | undefined {
    const value = req.headers[SHADOW_HEADER];
    if (value === undefined) return undefined;
    delete req.headers[SHADOW_HEADER];
    const raw: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      if (req.rawHeaders[i]!.toLowerCase() !== SHADOW_HEADER) raw.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
    }
    req.rawHeaders = raw;
    if (typeof value !== 'string') throw new InvalidShadowMarkerError('repeated');
    const [token, ...params] = value.split(';').map((p) => p.trim());
    const a = Buffer.from(token ?? '');
    const b = Buffer.from(this.token);
    if (a.length !== b.length || !crypto.timingSafeEqual(a, b)) throw new InvalidShadowMarkerError('unknown token');
    const fields = new Map(params.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
    const backend = /^(upstream|app):(.+)$/.exec(fields.get('backend') ?? '');
    const client = fields.get('client') ?? '';
    if (!backend || !net.isIP(client)) throw new InvalidShadowMarkerError('missing backend or client');
    return {
      backend: { kind: backend[1] as BackendRef['kind'], name: decodeURIComponent(backend[2]!) },
      requestId: decodeURIComponent(fields.get('id') ?? ''),
      client,
    };
  }
}
