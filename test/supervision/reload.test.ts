/**
 * SIGHUP reload without dropping requests, and /healthz, /readyz.
 */
import fs from 'node:fs';
import { request, sample, sleep, startGateway, writeConfig } from '../harness';

describe('SIGHUP reload', () => {
  test('adds an app and moves a mount; in-flight requests complete; a bad file keeps the running config', async () => {
    const file = writeConfig({
      apps: [
        { name: 'hello', mount: '/scripts/hello.dll', library: sample('hello') },
        { name: 'slow', mount: '/scripts/slow.dll', library: sample('slow') },
      ],
    });
    const gw = await startGateway(['--config', file]);
    try {
      const oldPids = gw.bridgePids();
      expect((await request(`${gw.url}/scripts/hello.dll`)).status).toBe(200);
      expect((await request(`${gw.url}/scripts/echo.dll`)).status).toBe(404);

      const inFlight = request(`${gw.url}/scripts/slow.dll?ms=1200`, { agent: false });
      await sleep(150);
      fs.writeFileSync(
        file,
        JSON.stringify({
          apps: [
            { name: 'hello', mount: '/v2/hello.dll', library: sample('hello') },
            { name: 'slow', mount: '/scripts/slow.dll', library: sample('slow') },
            { name: 'echo', mount: '/scripts/echo.dll', library: sample('echo') },
          ],
        }),
      );
      gw.proc.kill('SIGHUP');
      const reloaded = await gw.waitForLog((l) => l.msg === 'configuration reloaded');
      expect(reloaded.apps).toBe(3);
      expect(reloaded.bridgesStarted).toBe(1);
      expect(reloaded.bridgesDraining).toBe(1);

      expect((await request(`${gw.url}/v2/hello.dll`)).body.toString()).toBe('Hello from ISAPI!\n');
      expect((await request(`${gw.url}/scripts/hello.dll`)).status).toBe(404);
      expect((await request(`${gw.url}/scripts/echo.dll`, { method: 'POST', body: 'hi' })).body.toString()).toBe('hi');
      // The request the old bridge was serving finishes there; then the old bridge stops.
      const slow = await inFlight;
      expect(slow.status).toBe(200);
      expect(slow.body.toString()).toBe('slept 1200\n');
      await gw.waitForLog((l) => l.msg === 'bridge process retired');
      expect(gw.bridgePids().some((p) => oldPids.includes(p))).toBe(false);

      // A broken file: logged with file and field, nothing changes.
      fs.writeFileSync(file, JSON.stringify({ apps: [{ name: 'hello', mount: 'no-slash', library: sample('hello') }] }));
      gw.proc.kill('SIGHUP');
      const refused = await gw.waitForLog((l) => l.msg === 'configuration reload refused; keeping the running configuration');
      expect(String(refused.error)).toContain(file);
      expect(String(refused.error)).toMatch(/apps\[0\]\.mount: expected a URL path/);
      expect((await request(`${gw.url}/v2/hello.dll`)).status).toBe(200);
      expect((await request(`${gw.url}/scripts/echo.dll`, { method: 'POST', body: 'x' })).status).toBe(200);
      expect(gw.logs().filter((l) => l.msg === 'configuration reloaded')).toHaveLength(1);
    } finally {
      expect(await gw.stop()).toBe(0);
    }
  });
});

describe('/healthz and /readyz', () => {
  test('readyz is 503 naming a required app that failed to load, 200 when it is optional; healthz is 200', async () => {
    const apps = (required: boolean): unknown[] => [
      { name: 'hello', mount: '/scripts/hello.dll', library: sample('hello') },
      { name: 'broken', mount: '/scripts/broken.dll', library: sample('versionfalse'), required },
    ];
    const file = writeConfig({ apps: apps(true) });
    const gw = await startGateway(['--config', file]);
    try {
      expect((await request(`${gw.url}/healthz`)).status).toBe(200);
      const notReady = await request(`${gw.url}/readyz`);
      expect(notReady.status).toBe(503);
      expect(notReady.body.toString()).toMatch(/app broken: .*versionfalse\.so: GetExtensionVersion returned FALSE/);
      fs.writeFileSync(file, JSON.stringify({ apps: apps(false) }));
      gw.proc.kill('SIGHUP');
      await gw.waitForLog((l) => l.msg === 'configuration reloaded');
      const ready = await request(`${gw.url}/readyz`);
      expect(ready.body.toString()).toBe('ready\n');
      expect(ready.status).toBe(200);
    } finally {
      await gw.stop();
    }
  });
});
