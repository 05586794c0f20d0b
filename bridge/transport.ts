/**
 * Where a bridge listens and a gateway connects: one address syntax for the
 * three transports of the one wire protocol.
 *   unix:/run/isapi/bridge.sock   Unix domain socket (mode 0600), Linux/macOS
 *   pipe:isapi-bridge             Windows named pipe \\.\pipe\isapi-bridge
 *   tcp://127.0.0.1:9000          TCP, for a bridge on another host (shared secret required),
 *                                 optionally inside TLS (TransportTlsServer / TransportTlsClient)
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';

export type TransportAddress =
  | { kind: 'unix'; path: string }
  | { kind: 'pipe'; name: string; path: string }
  | { kind: 'tcp'; host: string; port: number };

export class TransportAddressError extends Error {
  readonly code = 'ERR_TRANSPORT_ADDRESS';
  constructor(address: string, expected: string) {
    super(`invalid transport address ${JSON.stringify(address)}: expected ${expected}`);
    this.name = 'TransportAddressError';
  }
}

const EXPECTED = 'unix:/path/to.sock, pipe:name or tcp://host:port';

export function parseTransportAddress(address: string): TransportAddress {
  if (address.startsWith('unix:')) {
    const p = address.slice(5);
    if (!p) throw new TransportAddressError(address, EXPECTED);
    return { kind: 'unix', path: path.resolve(p) };
  }
  if (address.startsWith('pipe:')) {
    const name = address.slice(5).replace(/^\\\\\.\\pipe\\/, '');
    if (!name || /[\\/]/.test(name)) throw new TransportAddressError(address, EXPECTED);
    return { kind: 'pipe', name, path: `\\\\.\\pipe\\${name}` };
  }
  if (address.startsWith('tcp://')) {
    const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})$/.exec(address);
    const port = m ? Number(m[2]) : NaN;
    if (!m || !(port >= 0 && port < 65536)) throw new TransportAddressError(address, EXPECTED);
    return { kind: 'tcp', host: m[1]!.replace(/^\[|\]$/g, ''), port };
  }
  throw new TransportAddressError(address, EXPECTED);
}

export function formatTransportAddress(a: TransportAddress): string {
  switch (a.kind) {
    case 'unix':
      return `unix:${a.path}`;
    case 'pipe':
      return `pipe:${a.name}`;
    case 'tcp':
      return `tcp://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
  }
}

/** Bridge side of TLS on tcp://: PEM contents, not file names. */
export interface TransportTlsServer {
  cert: string | Buffer;
  key: string | Buffer;
  /** CA that signs gateway client certificates (mutual TLS). */
  ca?: string | Buffer;
  /** Refuse a gateway without a client certificate signed by `ca`. */
  requireClientCert?: boolean;
  /** A gateway's TLS handshake failed (wrong CA, no client certificate, plain TCP...). */
  onClientError?: (err: Error & { code?: string }, remote: string) => void;
}

/** Gateway side of TLS on tcp://: the bridge certificate is always verified against `ca`. */
export interface TransportTlsClient {
  ca: string | Buffer;
  /** Client certificate and key for a bridge that requires one (mutual TLS). */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Name the bridge certificate must carry; default the address's host (IP addresses are checked as IP SANs). */
  servername?: string;
}

/**
 * Reads into buffers of the caller's instead of a new one per read (net.Socket's
 * `onread`): `next` gives the buffer for each read, `data` gets what was read. Not
 * available with TLS, whose socket reads for itself.
 */
export interface TransportReader {
  next(): Uint8Array;
  data(bytesRead: number, buffer: Uint8Array): void;
}

/** With `tls` (tcp:// only) the socket is a TLSSocket: wait for 'secureConnect' rather than 'connect'. */
export function connectTransport(a: TransportAddress, tlsOptions?: TransportTlsClient, reader?: TransportReader): net.Socket {
  if (tlsOptions && a.kind !== 'tcp') throw new Error(`TLS needs a tcp:// address, not ${formatTransportAddress(a)}`);
  const onread =
    reader && !tlsOptions
      ? {
          buffer: () => reader.next(),
          callback: (n: number, buf: Uint8Array): boolean => {
            reader.data(n, buf);
            return true; // Back-pressure stays socket.pause(), as with 'data' events.
          },
        }
      : undefined;
  switch (a.kind) {
    case 'unix':
    case 'pipe':
      return net.connect({ path: a.path, ...(onread ? { onread } : {}) });
    case 'tcp': {
      const socket = tlsOptions
        ? tls.connect({
            host: a.host,
            port: a.port,
            ca: tlsOptions.ca,
            cert: tlsOptions.cert,
            key: tlsOptions.key,
            // SNI must not be an IP address; the identity check still covers IP SANs.
            servername: tlsOptions.servername ?? (net.isIP(a.host) ? undefined : a.host),
            rejectUnauthorized: true,
            minVersion: 'TLSv1.2',
          })
        : net.connect({ host: a.host, port: a.port, ...(onread ? { onread } : {}) });
      socket.setNoDelay(true);
      return socket;
    }
  }
}

/**
 * Listens with the socket file created 0600 from the start (umask around
 * listen), so no other local user can connect even for an instant.
 *
 * With `tlsOptions` (tcp:// only) a tls.Server listens instead and hands each
 * connection whose TLS handshake succeeded to `server` as a 'connection', so
 * the owner of `server` sees TLSSockets and nothing else changes; closing
 * `server` closes the TLS listener too.
 */
export function listenTransport(server: net.Server, a: TransportAddress, tlsOptions?: TransportTlsServer): Promise<TransportAddress> {
  if (tlsOptions) {
    if (a.kind !== 'tcp') return Promise.reject(new Error(`TLS needs a tcp:// listen address, not ${formatTransportAddress(a)}`));
    const { onClientError, requireClientCert, ...material } = tlsOptions;
    const tlsServer = tls.createServer(
      {
        ...material,
        requestCert: requireClientCert === true,
        rejectUnauthorized: requireClientCert === true,
        minVersion: 'TLSv1.2',
      },
      (socket) => server.emit('connection', socket),
    );
    tlsServer.on('tlsClientError', (err: Error & { code?: string }, socket: tls.TLSSocket) => {
      onClientError?.(err, `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`);
    });
    server.once('close', () => tlsServer.close());
    return listenTransport(tlsServer, a);
  }
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      const bound = server.address();
      if (a.kind === 'tcp' && bound && typeof bound === 'object') resolve({ kind: 'tcp', host: a.host, port: bound.port });
      else resolve(a);
    };
    switch (a.kind) {
      case 'unix': {
        fs.mkdirSync(path.dirname(a.path), { recursive: true, mode: 0o700 });
        removeStaleSocket(a.path);
        const previous = process.umask(0o177);
        try {
          server.listen(a.path, done);
        } finally {
          process.umask(previous);
        }
        return;
      }
      case 'pipe':
        server.listen(a.path, done);
        return;
      case 'tcp':
        server.listen(a.port, a.host, done);
        return;
    }
  });
}

/** A free TCP port on 127.0.0.1, closed again before returning (to hand to a process that will listen on it). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const port = (probe.address() as net.AddressInfo).port;
      probe.close(() => resolve(port));
    });
  });
}

function removeStaleSocket(file: string): void {
  try {
    if (fs.lstatSync(file).isSocket()) fs.unlinkSync(file);
  } catch {
    // Nothing there: the normal case.
  }
}
