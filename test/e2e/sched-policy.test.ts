/**
 * The bridge process's scheduling policy on Linux (bridge/sched-batch.ts): its
 * threads, extension threads included, run under SCHED_BATCH unless the bridge's
 * config says `schedBatch: false`; the gateway keeps the normal policy.
 */
import fs from 'node:fs';
import { BRIDGE_MODE, RunningGateway, request, sample, startGateway, writeConfig } from '../harness';

const SCHED_NORMAL = 0;
const SCHED_BATCH = 3;

/** The policy of each thread of `pid` (field 41 of /proc/<pid>/task/<tid>/stat). */
function threadPolicies(pid: number): number[] {
  return fs.readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at field 3.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[41 - 3]);
  });
}

async function withGateway(bridge: Record<string, unknown>, check: (gw: RunningGateway) => Promise<void>): Promise<void> {
  const config = writeConfig({
    apps: [{ name: 'hello', mount: '/scripts/hello.dll', library: sample('hello') }],
    bridges: { default: { workers: 2, ...bridge } },
  });
  const gw = await startGateway(['--config', config]);
  try {
    await check(gw);
  } finally {
    await gw.stop();
  }
}

const linuxNative = BRIDGE_MODE === 'native' && process.platform === 'linux' ? describe : describe.skip;

linuxNative('bridge scheduling policy', () => {
  test('by default every bridge thread runs under SCHED_BATCH, and the gateway under the normal policy', async () => {
    await withGateway({}, async (gw) => {
      // A request has gone through an extension thread: every thread exists by now.
      expect((await request(`${gw.url}/scripts/hello.dll`)).status).toBe(200);
      const [bridgePid] = gw.bridgePids();
      const policies = threadPolicies(bridgePid!);
      expect(policies.length).toBeGreaterThanOrEqual(3); // main + 2 extension threads at least
      expect(new Set(policies)).toEqual(new Set([SCHED_BATCH]));
      expect(new Set(threadPolicies(gw.proc.pid!))).toEqual(new Set([SCHED_NORMAL]));
      await gw.waitForLog((l) => l.msg === 'bridge threads run under SCHED_BATCH' && typeof l.threads === 'number' && l.threads > 0);
    });
  });

  test('schedBatch: false keeps the normal policy', async () => {
    await withGateway({ schedBatch: false }, async (gw) => {
      expect((await request(`${gw.url}/scripts/hello.dll`)).status).toBe(200);
      const [bridgePid] = gw.bridgePids();
      expect(new Set(threadPolicies(bridgePid!))).toEqual(new Set([SCHED_NORMAL]));
    });
  });
});
