/**
 * The few libc calls the bridge makes itself through koffi (Linux): the spool's
 * memory file (spool.ts) and the gateway's pidfd (peer-process.ts).
 */
import koffi from 'koffi';

export interface Libc {
  memfdCreate(name: string, flags: number): number;
  mmap(addr: null, length: number, prot: number, flags: number, fd: number, offset: number): unknown;
  fcntl(fd: number, cmd: number, ...args: unknown[]): number;
  getsockopt(fd: number, level: number, name: number, value: Buffer, length: Buffer): number;
  poll(fds: Buffer, count: number, timeoutMs: number): number;
  syscall(nr: number, ...args: unknown[]): number;
}

let bound: Libc | undefined;

/** libc, bound on first use in each thread (koffi functions belong to the thread that made them). */
export function libc(): Libc {
  if (bound) return bound;
  const lib = koffi.load('libc.so.6');
  bound = {
    memfdCreate: lib.func('int memfd_create(const char *name, unsigned int flags)') as Libc['memfdCreate'],
    mmap: lib.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)') as Libc['mmap'],
    fcntl: lib.func('int fcntl(int fd, int cmd, ...)') as Libc['fcntl'],
    getsockopt: lib.func('int getsockopt(int fd, int level, int name, void *value, void *length)') as Libc['getsockopt'],
    poll: lib.func('int poll(void *fds, unsigned long count, int timeout)') as Libc['poll'],
    syscall: lib.func('long syscall(long nr, ...)') as Libc['syscall'],
  };
  return bound;
}
