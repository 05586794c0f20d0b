/** Raw HTTP/1.1 bytes to a gateway: what real clients send when they misbehave. */
import net from 'node:net';

export interface RawReply {
  /** Everything the server sent before closing (or before the wait ran out). */
  text: string;
  closed: boolean;
  statusLine: string;
}

/** Sends `chunks` (with `gapMs` between them), collects the reply until the server closes or `waitMs` passes. */
export function rawExchange(url: string, chunks: string[], opts: { gapMs?: number; waitMs?: number } = {}): Promise<RawReply> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let text = '';
    let closed = false;
    const timer = setTimeout(() => finish(), opts.waitMs ?? 3000);
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed, statusLine: text.split('\r\n', 1)[0] ?? '' });
    };
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? undefined : reject(err)));
    socket.on('connect', async () => {
      for (const c of chunks) {
        if (socket.destroyed) return;
        socket.write(c);
        if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
      }
    });
  });
}
