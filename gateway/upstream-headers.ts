/**
 * Header rules at the proxy boundary: hop-by-hop headers (RFC 9110 §7.6.1) are
 * removed in both directions, and X-Forwarded-* / Forwarded (RFC 7239) describe the
 * client. http-proxy-3's own `xfwd` would append to whatever the client sent, which
 * lets any client forge its address; here only trusted proxies may extend the chain.
 */
import type http from 'node:http';
import net from 'node:net';

/** Always hop-by-hop, besides whatever `Connection` lists and every `Proxy-*` header. */
const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'te', 'transfer-encoding', 'upgrade', 'trailer']);

/** Headers that describe the client; replaced (not extended) for untrusted clients. */
const FORWARDING = ['forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip'];

function connectionTokens(value: string | string[] | undefined): Set<string> {
  const out = new Set<string>();
  for (const v of Array.isArray(value) ? value : value ? [value] : []) {
    for (const t of v.split(',')) {
      const token = t.trim().toLowerCase();
      if (token) out.add(token);
    }
  }
  return out;
}

export function isHopByHop(lowerName: string, listed: ReadonlySet<string>): boolean {
  return HOP_BY_HOP.has(lowerName) || lowerName.startsWith('proxy-') || listed.has(lowerName);
}

/** A copy of `headers` without hop-by-hop headers (and those `Connection` names). */
export function stripHopByHop(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const listed = connectionTokens(headers.connection);
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || isHopByHop(name, listed)) continue;
    out[name] = value;
  }
  return out;
}

/** Response headers as raw name/value pairs (original spelling), hop-by-hop removed. */
export function responseHeaders(res: http.IncomingMessage): string[] {
  const listed = connectionTokens(res.headers.connection);
  const out: string[] = [];
  const raw = res.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (!isHopByHop(raw[i]!.toLowerCase(), listed)) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/** Decides whether a peer address may extend forwarded headers. */
export class TrustedProxies {
  private readonly list = new net.BlockList();
  private readonly empty: boolean;

  constructor(entries: readonly string[]) {
    this.empty = entries.length === 0;
    for (const entry of entries) {
      const [addr, bits] = entry.split('/') as [string, string | undefined];
      const type = net.isIPv6(addr) ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.list.addAddress(addr, type);
      else this.list.addSubnet(addr, Number(bits), type);
    }
  }

  has(address: string | undefined): boolean {
    if (this.empty || !address) return false;
    const plain = unmapIPv4(address);
    return this.list.check(plain, net.isIPv6(plain) ? 'ipv6' : 'ipv4');
  }
}

function unmapIPv4(address: string): string {
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/** RFC 7239 §4: a value that is not a token must be a quoted-string. */
function forwardedValue(v: string): string {
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(v) ? v : `"${v.replace(/["\\]/g, '\\$&')}"`;
}

function forwardedNode(address: string): string {
  const plain = unmapIPv4(address);
  return net.isIPv6(plain) ? `"[${plain}]"` : forwardedValue(plain || 'unknown');
}

function first(v: string | string[] | number | undefined): string | undefined {
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(', ') : String(v);
}

export interface ClientFacts {
  /** The peer's address as the gateway sees it. */
  address: string;
  /** http or https: how the client reached the gateway. */
  proto: 'http' | 'https';
  /** The Host the client asked for. */
  host: string | undefined;
  /** Whether the peer is a trusted proxy whose forwarded headers are kept and extended. */
  trusted: boolean;
}

/** Sets X-Forwarded-For/Proto/Host and Forwarded on outgoing headers (lower-case names). */
export function applyForwarded(out: http.OutgoingHttpHeaders, client: ClientFacts): void {
  const prior = client.trusted
    ? { xff: first(out['x-forwarded-for']), proto: first(out['x-forwarded-proto']), host: first(out['x-forwarded-host']), fwd: first(out.forwarded) }
    : {};
  if (!client.trusted) for (const name of FORWARDING) delete out[name];
  const addr = unmapIPv4(client.address);
  out['x-forwarded-for'] = prior.xff ? `${prior.xff}, ${addr}` : addr;
  out['x-forwarded-proto'] = prior.proto ?? client.proto;
  if (prior.host ?? client.host) out['x-forwarded-host'] = prior.host ?? client.host;
  const element = [`for=${forwardedNode(client.address)}`, client.host ? `host=${forwardedValue(client.host)}` : '', `proto=${client.proto}`]
    .filter(Boolean)
    .join(';');
  out.forwarded = prior.fwd ? `${prior.fwd}, ${element}` : element;
}
