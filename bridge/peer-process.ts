/**
 * The process at the other end of a Unix socket, as a pidfd: the bridge asks it
 * whether the gateway that held spool pieces (spool.ts) has exited, because only
 * then can no write of that gateway's still read them (retired-slots.ts).
 *
 * A pidfd names one process for good: unlike a pid it is never reused, and it works
 * when the peer lives in a PID namespace the bridge cannot see. The kernel hands it
 * out for the socket's peer (SO_PEERPIDFD, Linux 6.5); older kernels give the peer's
 * pid (SO_PEERCRED), which is turned into a pidfd at once (pidfd_open, Linux 5.3)
 * while the peer is known to be alive: it has just sent us a frame. Linux only.
 */
import fs from 'node:fs';
import type net from 'node:net';
import { libc } from './libc';

/** The peer process, or the fact that it has exited. */
export interface PeerProcess {
  /** True once the process has exited; asks the kernel each time, without blocking. */
  exited(): boolean;
  /** Lets go of the pidfd. */
  close(): void;
}

/** How to get the pidfd; 'pidfd' falls back to 'credentials' where the kernel lacks SO_PEERPIDFD. */
export type PeerLookup = 'pidfd' | 'credentials';

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const SO_PEERPIDFD = 77;
/** The same number on every architecture: syscalls added since 5.1 share one table. */
const SYS_PIDFD_OPEN = 434;
const POLLIN = 0x1;
/** struct ucred: pid, uid, gid. */
const UCRED_BYTES = 12;
/** struct pollfd: int fd, short events, short revents. */
const POLLFD_BYTES = 8;

/** The descriptor under a connected net.Socket; Node keeps it on the (undocumented) handle. */
function socketFd(socket: net.Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

function getsockopt(fd: number, name: number, bytes: number): Buffer | undefined {
  const value = Buffer.alloc(bytes);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(bytes);
  return libc().getsockopt(fd, SOL_SOCKET, name, value, length) === 0 ? value : undefined;
}

function pidfdOfPeer(fd: number, lookup: PeerLookup): number | undefined {
  if (lookup === 'pidfd') {
    const value = getsockopt(fd, SO_PEERPIDFD, 4);
    if (value) return value.readInt32LE(0);
  }
  const cred = getsockopt(fd, SO_PEERCRED, UCRED_BYTES);
  // 0: the peer is in a PID namespace this process cannot see.
  const pid = cred?.readInt32LE(0) ?? 0;
  if (pid <= 0) return undefined;
  const pidfd = Number(libc().syscall(SYS_PIDFD_OPEN, 'long', pid, 'unsigned int', 0));
  return pidfd >= 0 ? pidfd : undefined;
}

/**
 * The process at the other end of a Unix socket, or undefined where it cannot be
 * known (not Linux, not a Unix socket, a kernel before 5.3, an unseen PID namespace
 * without SO_PEERPIDFD).
 */
export function peerProcessOf(socket: net.Socket, lookup: PeerLookup = 'pidfd'): PeerProcess | undefined {
  if (process.platform !== 'linux') return undefined;
  const fd = socketFd(socket);
  if (fd === undefined) return undefined;
  let pidfd: number | undefined;
  try {
    pidfd = pidfdOfPeer(fd, lookup);
  } catch {
    return undefined; // No libc to bind (another C library): the bridge keeps such slots, as before.
  }
  if (pidfd === undefined) return undefined;
  const fds = Buffer.alloc(POLLFD_BYTES);
  fds.writeInt32LE(pidfd, 0);
  fds.writeInt16LE(POLLIN, 4);
  let open = true;
  return {
    exited() {
      if (!open) throw new Error('peer process: pidfd already closed');
      fds.writeInt16LE(0, 6);
      // A pidfd polls readable once its process has exited.
      return libc().poll(fds, 1, 0) === 1 && (fds.readInt16LE(6) & POLLIN) !== 0;
    },
    close() {
      if (!open) return;
      open = false;
      fs.closeSync(pidfd);
    },
  };
}
