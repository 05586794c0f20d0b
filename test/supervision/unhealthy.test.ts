/**
 * HSE_REQ_REPORT_UNHEALTHY end to end: the extension reports itself unhealthy,
 * the bridge sends UNHEALTHY, the gateway's pool recycles that process with
 * drain (a replacement first, then the old one finishes and gets SHUTDOWN), and
 * no request of a concurrent load fails.
 */
import { request, sample, sleep, startGateway, writeConfig } from '../harness';
import { eventually, loadFor } from './load';

test('an extension reporting itself unhealthy gets its process recycled with drain under load, no request fails', async () => {
  const gw = await startGateway([
    '--config',
    writeConfig({
      bridges: { default: { processes: 1, workers: 4 } },
      apps: [
        { name: 'hello', mount: '/scripts/hello.dll', library: sample('hello') },
        { name: 'connstate', mount: '/scripts/connstate.dll', library: sample('connstate') },
      ],
    }),
  ]);
  try {
    const initial = gw.bridgePids();
    expect(initial).toHaveLength(1);

    // Bounded load: 6 clients back to back for 3 s; the report goes in while they run.
    const load = loadFor(`${gw.url}/scripts/hello.dll`, 3000, 6);
    await sleep(500);
    const report = await request(`${gw.url}/scripts/connstate.dll?mode=unhealthy&reason=leaking-handles`, { agent: false });
    expect(report.status).toBe(200);
    expect(report.body.toString()).toBe('reported\n');
    const outcomes = await load;

    expect(outcomes.filter((o) => o.status !== 200 || o.body !== 'Hello from ISAPI!\n')).toEqual([]);
    expect(outcomes.length).toBeGreaterThan(100);

    const recycling = await gw.waitForLog((l) => l.msg === 'recycling bridge process');
    expect(recycling).toMatchObject({ reason: 'unhealthy', detail: 'leaking-handles', pid: initial[0] });
    expect(gw.logs().filter((l) => l.msg === 'recycling bridge process')).toHaveLength(1);
    // The old process drained and left through SHUTDOWN, not a kill.
    await gw.waitForLog((l) => l.msg === 'bridge process retired' && l.pid === initial[0]);
    expect(gw.logs().some((l) => l.msg === 'bridge did not stop in time; killing it')).toBe(false);
    await eventually(() => gw.bridgePids().length === 1 && gw.bridgePids()[0] !== initial[0], 5000, 'one new bridge process');

    // The replacement serves, and the restart is counted once with reason="unhealthy".
    expect((await request(`${gw.url}/scripts/hello.dll`)).body.toString()).toBe('Hello from ISAPI!\n');
    const metrics = (await request(`${gw.url}/metrics`)).body.toString();
    expect(metrics).toMatch(/^isapi_bridge_restarts_total\{bridge="default",reason="unhealthy"\} 1$/m);
  } finally {
    await gw.stop();
  }
});
