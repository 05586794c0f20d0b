/**
 * RESPONSE_FILE (bridge/wire.ts): a Unix-socket bridge hands a TransmitFile range to
 * the gateway instead of reading it into frames. The gateway opens the bridge's own
 * descriptor through /proc/<pid>/fd/<fd>, checks that it is the regular file the
 * bridge named (st_dev, st_ino: another PID namespace would show another process),
 * and streams the range to the client with its backpressure. The bytes then cross
 * no process boundary: bench/RESULTS.md has the before/after.
 */
import fsp from 'node:fs/promises';
import type http from 'node:http';
import { WIN32_ERROR } from '../bridge/abi/constants';
import { FileDoneResult, type FileDone, type FileOffer } from '../bridge/wire';

/** Bytes read per chunk: as the bridge's own file chunk (response-writer.ts). */
const READ_CHUNK = 256 * 1024;

/** The bridge's file, opened here, or undefined when it cannot be (the bridge then sends the range itself). */
export async function openBridgeFile(offer: FileOffer): Promise<fsp.FileHandle | undefined> {
  if (process.platform !== 'linux') return undefined;
  let file: fsp.FileHandle;
  try {
    file = await fsp.open(`/proc/${offer.pid}/fd/${offer.fd}`, 'r');
  } catch {
    return undefined;
  }
  try {
    const stat = await file.stat({ bigint: true });
    if (stat.isFile() && String(stat.dev) === offer.dev && String(stat.ino) === offer.ino) return file;
  } catch {
    /* declined below */
  }
  await file.close().catch(() => undefined);
  return undefined;
}

/**
 * Writes the range to `res`, pausing while the client is slow; closes `file`.
 * Resolves with what happened, for FILE_DONE: the bytes sent, and why it stopped early.
 */
export function streamFileRange(file: fsp.FileHandle, offer: FileOffer, res: http.ServerResponse, sent: (bytes: number) => void): Promise<FileDone> {
  return new Promise((resolve) => {
    let bytes = 0;
    let settled = false;
    const stream = file.createReadStream({ start: offer.offset, end: offer.offset + offer.length - 1, highWaterMark: READ_CHUNK, autoClose: true });
    const finish = (done: FileDone): void => {
      if (settled) return;
      settled = true;
      res.off('close', onClientGone);
      stream.destroy();
      resolve(done);
    };
    const onClientGone = (): void => finish({ result: FileDoneResult.CLIENT_GONE, bytes, win32Error: 0 });
    res.once('close', onClientGone);
    stream.on('data', (chunk: Buffer | string) => {
      const data = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
      bytes += data.length;
      sent(data.length);
      if (!res.write(data)) {
        stream.pause();
        res.once('drain', () => stream.resume());
      }
    });
    stream.on('end', () => finish({ result: FileDoneResult.SENT, bytes, win32Error: 0 }));
    stream.on('error', (err: NodeJS.ErrnoException) =>
      finish({ result: FileDoneResult.READ_FAILED, bytes, win32Error: err.code === 'EBADF' ? WIN32_ERROR.INVALID_HANDLE : WIN32_ERROR.READ_FAULT }),
    );
  });
}
