/**
 * Chooses the exposition format for a scrape from its Accept header. OpenMetrics 1.0.0
 * is served only when asked for by name (Prometheus does); wildcards and browsers get
 * the Prometheus text format.
 */
import { CONTENT_TYPES, type ExpositionFormat } from './exposition';

export interface Negotiated {
  readonly format: ExpositionFormat;
  readonly contentType: string;
}

interface MediaRange {
  readonly type: string;
  readonly params: ReadonlyMap<string, string>;
  readonly q: number;
}

export function negotiate(accept: string | readonly string[] | undefined): Negotiated {
  const header: string = typeof accept === 'string' ? accept : accept === undefined ? '' : accept.join(',');
  let openMetricsQ = 0;
  let textQ = header.trim() === '' ? 1 : 0;
  for (const range of parseAccept(header)) {
    const version = range.params.get('version');
    if (range.type === 'application/openmetrics-text' && (version === undefined || version === '1.0.0')) {
      openMetricsQ = Math.max(openMetricsQ, range.q);
    } else if (
      (range.type === 'text/plain' && (version === undefined || version === '0.0.4')) ||
      range.type === 'text/*' ||
      range.type === '*/*'
    ) {
      textQ = Math.max(textQ, range.q);
    }
  }
  const format: ExpositionFormat = openMetricsQ > 0 && openMetricsQ >= textQ ? 'openmetrics' : 'text';
  return { format, contentType: CONTENT_TYPES[format] };
}

function parseAccept(header: string): MediaRange[] {
  const ranges: MediaRange[] = [];
  for (const part of header.split(',')) {
    const [rawType, ...rawParams] = part.split(';');
    const type = (rawType ?? '').trim().toLowerCase();
    if (type === '') continue;
    const params = new Map<string, string>();
    for (const p of rawParams) {
      const eq = p.indexOf('=');
      if (eq < 0) continue;
      params.set(p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1'));
    }
    const qText = params.get('q');
    const q = qText === undefined ? 1 : Number(qText);
    ranges.push({ type, params, q: Number.isFinite(q) && q >= 0 && q <= 1 ? q : 0 });
  }
  return ranges;
}
