/**
 * V8 settings for the bridge process, applied by its entry point before anything
 * else runs (the flags are process-wide: the extension threads get them too).
 *
 * Allocation-site pretenuring is off. V8 watches which object literals survive
 * their first scavenge, and after a burst in which one site's objects all
 * survived, it allocates that site's objects straight into the old generation.
 * When that happened to a site on the request path, after some 250 000 hello
 * requests, each such object held its request's younger objects alive until the
 * next full GC. Every request was promoted again, about 2 MB per scavenge with
 * ~6 ms pauses, and it never stopped. With pretenuring off, that stays at 3 KB for
 * as long as the load runs (bench/RESULTS.md, session 7). Nothing in the bridge
 * builds the large long-lived structures that pretenuring is for.
 */
import v8 from 'node:v8';

const BRIDGE_V8_FLAGS = ['--no-allocation-site-pretenuring'] as const;

for (const flag of BRIDGE_V8_FLAGS) v8.setFlagsFromString(flag);
