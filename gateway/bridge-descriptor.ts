/**
 * A file the bridge offers by its descriptor (RESPONSE_FILE, SPOOL_OFFER: bridge/wire.ts),
 * as the gateway opens it: through /proc/<pid>/fd/<fd>, which works only on the same host
 * and for the same user, and only if what opens is the file the bridge named. In another
 * PID namespace the same pid and fd name another process's file; st_dev and st_ino tell.
 */
import type { BigIntStats } from 'node:fs';
import type { BridgeDescriptor } from '../bridge/wire';

/** Where the bridge's descriptor can be opened, or undefined where /proc has none. */
export function descriptorPath(d: BridgeDescriptor): string | undefined {
  return process.platform === 'linux' ? `/proc/${d.pid}/fd/${d.fd}` : undefined;
}

/** Whether what was opened is the regular file the bridge named. */
export function isNamedFile(stat: BigIntStats, d: BridgeDescriptor): boolean {
  return stat.isFile() && String(stat.dev) === d.dev && String(stat.ino) === d.ino;
}
