/**
 * Pools of bridge processes: balancing by least in-flight, and recycling with
 * drain (after N requests, above a memory limit) without losing a request.
 */
import { request, rssBytes, sample, startGateway, writeConfig } from '../harness';
import { eventually, loadFor } from './load';

describe('a bridge with several processes', () => {
  test('requests are spread over the processes (least in flight)', async () => {
    const gw = await startGateway([
      '--config',
      writeConfig({
        bridges: { default: { processes: 2, workers: 1 } },
        apps: [{ name: 'slow', mount: '/scripts/slow.dll', library: sample('slow'), maxConcurrency: 1 }],
      }),
    ]);
    try {
      expect(gw.bridgePids()).toHaveLength(2);
      // Two processes with one thread each: 4 requests of 400 ms take two rounds if balanced, four if not.
      const started = Date.now();
      const replies = await Promise.all(Array.from({ length: 4 }, () => request(`${gw.url}/scripts/slow.dll?ms=400`, { agent: false })));
      const took = Date.now() - started;
      expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200]);
      expect(took).toBeGreaterThanOrEqual(800);
      expect(took).toBeLessThan(1500);
    } finally {
      await gw.stop();
    }
  });
});

describe('recycling with drain', () => {
  test('recycleAfterRequests under load: processes are replaced and no request fails', async () => {
    const gw = await startGateway([
      '--config',
      writeConfig({
        bridges: { default: { processes: 2, workers: 2, recycleAfterRequests: 40 } },
        apps: [{ name: 'slow', mount: '/scripts/slow.dll', library: sample('slow') }],
      }),
    ]);
    try {
      const initial = gw.bridgePids();
      const outcomes = await loadFor(`${gw.url}/scripts/slow.dll?ms=15`, 2500, 6);
      const failed = outcomes.filter((o) => o.status !== 200);
      expect(failed).toEqual([]);
      expect(outcomes.length).toBeGreaterThan(100);
      await gw.waitForLog((l) => l.msg === 'bridge process retired');
      const recycled = gw.logs().filter((l) => l.msg === 'recycling bridge process');
      expect(recycled.length).toBeGreaterThanOrEqual(2);
      expect(recycled.every((l) => l.reason === 'requests')).toBe(true);
      // Old processes exited cleanly through SHUTDOWN (drain, TerminateExtension), not signals.
      expect(gw.logs().some((l) => l.msg === 'stopping' && l.signal === 'SHUTDOWN')).toBe(true);
      expect(gw.logs().some((l) => l.msg === 'bridge did not stop in time; killing it')).toBe(false);
      await eventually(() => gw.bridgePids().length === 2, 5000, 'two processes after recycling');
      expect(gw.bridgePids().some((p) => initial.includes(p))).toBe(false);
    } finally {
      await gw.stop();
    }
  });

  test('recycleAboveRssBytes: a leaking process is replaced, its in-flight request completes', async () => {
    const limit = 160 * 1024 * 1024;
    const gw = await startGateway([
      '--config',
      writeConfig({
        bridges: { default: { workers: 1, recycleAboveRssBytes: limit, memoryCheckIntervalMs: 100 } },
        apps: [
          { name: 'crash', mount: '/scripts/crash.dll', library: sample('crash') },
          { name: 'slow', mount: '/scripts/slow.dll', library: sample('slow') },
        ],
      }),
    ]);
    try {
      const [pid] = gw.bridgePids();
      expect(rssBytes(pid!)).toBeLessThan(limit - 64 * 1024 * 1024);
      const leak = await request(`${gw.url}/scripts/crash.dll?mode=leak&mb=128`);
      expect(leak.body.toString()).toBe('leaked 128\n');
      // A request in flight on the old process when the recycling starts still completes.
      const inFlight = request(`${gw.url}/scripts/slow.dll?ms=600`, { agent: false });
      const log = await gw.waitForLog((l) => l.msg === 'recycling bridge process', 5000);
      expect(log.reason).toBe('memory');
      expect(log.pid).toBe(pid);
      expect((await inFlight).status).toBe(200);
      await gw.waitForLog((l) => l.msg === 'bridge process retired' && l.pid === pid, 10000);
      await eventually(() => gw.bridgePids().length === 1 && gw.bridgePids()[0] !== pid, 5000, 'replacement only');
      expect((await request(`${gw.url}/scripts/crash.dll?mode=ok`)).status).toBe(200);
      expect(rssBytes(gw.bridgePids()[0]!)).toBeLessThan(limit);
    } finally {
      await gw.stop();
    }
  });
});
