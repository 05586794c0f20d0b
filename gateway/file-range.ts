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
import { descriptorPath, isNamedFile } from './bridge-descriptor';

/** Bytes read per chunk: as the bridge's own file chunk (response-writer.ts). */
const READ_CHUNK = 256 * 1024;
/** Chunks in flight: one being read while others are on their way to the client. */
const READ_BUFFERS = 4;

/** The bridge's file, opened here, or undefined when it cannot be (the bridge then sends the range itself). */
export async function openBridgeFile(offer: FileOffer): Promise<fsp.FileHandle | undefined> {
  const where = descriptorPath(offer);
  if (where === undefined) return undefined;
  let file: fsp.FileHandle;
  try {
    file = await fsp.open(where, 'r');
  } catch {
    return undefined;
  }
  try {
    if (isNamedFile(await file.stat({ bigint: true }), offer)) return file;
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
export async function streamFileRange(file: fsp.FileHandle, offer: FileOffer, res: http.ServerResponse, sent: (bytes: number) => void): Promise<FileDone> {
  // A few buffers, each read into again once the client socket has taken it: a fresh
  // buffer per read would leave a GiB of garbage behind a 1 GiB TransmitFile.
  const free: Buffer[] = [];
  for (let i = 0; i < READ_BUFFERS; i++) free.push(Buffer.allocUnsafeSlow(READ_CHUNK));
  let wakeWriter: (() => void) | undefined;
  let clientGone = res.destroyed;
  const wake = (): void => {
    const w = wakeWriter;
    wakeWriter = undefined;
    w?.();
  };
  const onClientGone = (): void => {
    clientGone = true;
    wake();
  };
  res.once('close', onClientGone);
  /** Until a buffer is free and the client takes more, or the client is gone. */
  const ready = async (): Promise<void> => {
    while (!clientGone && (free.length === 0 || res.writableNeedDrain)) {
      await new Promise<void>((resolve) => {
        wakeWriter = resolve;
        if (res.writableNeedDrain && res.listeners('drain').indexOf(wake) < 0) res.once('drain', wake);
      });
    }
  };
  let bytes = 0;
  try {
    while (bytes < offer.length) {
      await ready();
      if (clientGone) return { result: FileDoneResult.CLIENT_GONE, bytes, win32Error: 0 };
      const buffer = free.pop()!;
      let n: number;
      try {
        ({ bytesRead: n } = await file.read(buffer, 0, Math.min(READ_CHUNK, offer.length - bytes), offer.offset + bytes));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        return { result: FileDoneResult.READ_FAILED, bytes, win32Error: code === 'EBADF' ? WIN32_ERROR.INVALID_HANDLE : WIN32_ERROR.READ_FAULT };
      }
      if (n === 0) break; // The file is shorter than the range now: what there was has been sent.
      if (clientGone) return { result: FileDoneResult.CLIENT_GONE, bytes, win32Error: 0 };
      bytes += n;
      sent(n);
      res.write(n === buffer.length ? buffer : buffer.subarray(0, n), () => {
        free.push(buffer);
        wake();
      });
    }
    return { result: FileDoneResult.SENT, bytes, win32Error: 0 };
  } finally {
    res.off('close', onClientGone);
    res.off('drain', wake);
    await file.close().catch(() => undefined);
  }
}
