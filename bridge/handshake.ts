/**
 * The HELLO exchange's credentials: mutual challenge-response with HMAC-SHA256
 * over a shared secret, so the secret itself never crosses the network and a
 * recorded handshake cannot be replayed (both sides contribute a fresh nonce).
 *
 * With a secret (TCP):                        Without (Unix socket, named pipe):
 *   gateway -> HELLO "hmac-sha256;n=<Ng>"        gateway -> HELLO ""
 *   bridge  -> HELLO "hmac-sha256;n=<Nb>;p=<Pb>" bridge  -> HELLO ""
 *   gateway -> HELLO "hmac-sha256;p=<Pg>"
 *   bridge  -> HELLO "ok"
 * Pb = HMAC(secret, "bridge\0" Ng "\0" Nb), Pg = HMAC(secret, "gateway\0" Nb "\0" Ng):
 * the role label keeps either proof from being reflected as the other.
 * Proofs are compared with crypto.timingSafeEqual. Byte layout stays in wire.ts;
 * this module only decides what the credential strings say.
 */
import crypto from 'node:crypto';
import { WireProtocolError } from './wire';

export const AUTH_SCHEME = 'hmac-sha256';
const NONCE_BYTES = 32;

function newNonce(): string {
  return crypto.randomBytes(NONCE_BYTES).toString('base64url');
}

function proof(secret: string, role: 'gateway' | 'bridge', a: string, b: string): string {
  return crypto.createHmac('sha256', secret).update(`${role}\0${a}\0${b}`).digest('base64url');
}

/** Constant-time comparison of two proofs (lengths are public: both are HMAC-SHA256 digests). */
export function proofsEqual(expected: string, got: string): boolean {
  const a = Buffer.from(expected, 'latin1');
  const b = Buffer.from(got, 'latin1');
  if (a.length !== b.length) return false;
  return crypto.timingSafeEqual(a, b);
}

function parse(credential: string): Map<string, string> {
  const parts = credential.split(';');
  const fields = new Map<string, string>();
  if (parts[0] !== AUTH_SCHEME) return fields;
  fields.set('scheme', AUTH_SCHEME);
  for (const part of parts.slice(1)) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return fields;
}

function authError(message: string): WireProtocolError {
  return new WireProtocolError('ERR_WIRE_AUTH', message);
}

/** What to do after a HELLO: send `reply` (a credential) if given; the connection is usable once `done`. */
export interface HandshakeStep {
  reply?: string;
  done: boolean;
}

/** The bridge's side: one instance per accepted connection. */
export class BridgeHandshake {
  private gatewayNonce: string | undefined;
  private bridgeNonce: string | undefined;

  constructor(private readonly secret: string | undefined) {}

  /** The bridge has sent its challenge and is waiting for the gateway's proof. */
  get challenged(): boolean {
    return this.bridgeNonce !== undefined;
  }

  onHello(credential: string): HandshakeStep {
    if (this.secret === undefined) return { reply: '', done: true };
    const fields = parse(credential);
    if (this.bridgeNonce === undefined) {
      const ng = fields.get('n');
      if (fields.get('scheme') !== AUTH_SCHEME || !ng || ng.length > 128) {
        throw authError('gateway did not start the hmac-sha256 challenge (a plain shared secret is not accepted)');
      }
      this.gatewayNonce = ng;
      this.bridgeNonce = newNonce();
      const pb = proof(this.secret, 'bridge', ng, this.bridgeNonce);
      return { reply: `${AUTH_SCHEME};n=${this.bridgeNonce};p=${pb}`, done: false };
    }
    const pg = fields.get('p') ?? '';
    if (!proofsEqual(proof(this.secret, 'gateway', this.bridgeNonce, this.gatewayNonce!), pg)) {
      throw authError('gateway presented a wrong proof of the shared secret');
    }
    return { reply: 'ok', done: true };
  }
}

/** The gateway's side: one instance per connection it opens. */
export class GatewayHandshake {
  private readonly gatewayNonce = newNonce();
  private answered = false;

  constructor(private readonly secret: string | undefined) {}

  /** Credential of the first HELLO. */
  first(): string {
    return this.secret === undefined ? '' : `${AUTH_SCHEME};n=${this.gatewayNonce}`;
  }

  onHello(credential: string): HandshakeStep {
    if (this.secret === undefined) return { done: true };
    if (this.answered) {
      if (credential !== 'ok') throw authError('bridge did not confirm the handshake');
      return { done: true };
    }
    const fields = parse(credential);
    const nb = fields.get('n');
    if (fields.get('scheme') !== AUTH_SCHEME || !nb || nb.length > 128) {
      throw authError('bridge did not answer the hmac-sha256 challenge (is it configured with the shared secret?)');
    }
    if (!proofsEqual(proof(this.secret, 'bridge', this.gatewayNonce, nb), fields.get('p') ?? '')) {
      throw authError('bridge presented a wrong proof of the shared secret');
    }
    this.answered = true;
    return { reply: `${AUTH_SCHEME};p=${proof(this.secret, 'gateway', nb, this.gatewayNonce)}`, done: false };
  }
}
