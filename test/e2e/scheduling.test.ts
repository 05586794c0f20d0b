/**
 * Which extension thread runs a request when every thread is busy. The bridge may
 * hand a request to a busy thread in advance (bridge/thread-pool.ts), but like IIS's
 * shared completion port the first thread to fall free runs it: nothing waits behind
 * a slow extension call while another thread is idle, and a request given up by its
 * client before any thread started it never reaches the extension.
 */
import http from 'node:http';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BRIDGE_CLI, RunningGateway, request, sample, sleep, startGateway, tempDir, writeConfig } from '../harness';

let gw: RunningGateway;

beforeAll(async () => {
  const config = writeConfig({
    apps: [{ name: 'slow', mount: '/scripts/slow.dll', library: sample('slow') }],
    bridges: { default: { workers: 2 } },
  });
  gw = await startGateway(['--config', config]);
});

afterAll(async () => {
  await gw?.stop();
});

/** Milliseconds from `start` until the request to `base` is answered, with its body. */
async function timedOn(base: string, start: number, path: string): Promise<{ ms: number; body: string }> {
  const r = await request(`${base}${path}`, { agent: false });
  expect(r.status).toBe(200);
  return { ms: Date.now() - start, body: r.body.toString() };
}

/** timedOn the suite's gateway. */
function timed(start: number, path: string): Promise<{ ms: number; body: string }> {
  return timedOn(gw.url, start, path);
}

async function writeClientCalls(): Promise<number> {
  const text = (await request(`${gw.url}/metrics`, { agent: false })).body.toString();
  const line = text.split('\n').find((l) => l.startsWith('isapi_extension_write_client_calls_total{') && l.includes('app="slow"') && l.includes('mode="sync"'));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

test('requests that arrive while both threads are busy run on the first thread to fall free, not behind the slow call', async () => {
  const start = Date.now();
  const long = timed(start, '/scripts/slow.dll?ms=3000');
  const short = timed(start, '/scripts/slow.dll?ms=400');
  await sleep(200);
  // Both threads are busy now: these two are queued or handed in advance, one per thread.
  const quick = [timed(start, '/scripts/slow.dll?ms=0&n=1'), timed(start, '/scripts/slow.dll?ms=0&n=2')];
  const [q1, q2] = await Promise.all(quick);
  // The thread of the 400 ms call is free at about 400 ms; it runs both quick requests.
  expect(q1!.body).toBe('slept 0\n');
  expect(q2!.body).toBe('slept 0\n');
  expect(q1!.ms).toBeLessThan(2000);
  expect(q2!.ms).toBeLessThan(2000);
  const [l, s] = await Promise.all([long, short]);
  expect(s.body).toBe('slept 400\n');
  expect(l.body).toBe('slept 3000\n');
  expect(l.ms).toBeGreaterThanOrEqual(3000);
  expect(Math.max(q1!.ms, q2!.ms)).toBeLessThan(l.ms);
});

test('while one thread is stuck in a long call, the requests handed to it in advance run on the thread that keeps serving', async () => {
  const start = Date.now();
  const long = timed(start, '/scripts/slow.dll?ms=4000');
  await sleep(200);
  // Four clients keep the other thread busy without a pause for 2.5 s, so it never falls idle.
  const latencies: number[] = [];
  const client = async (): Promise<void> => {
    while (Date.now() - start < 2700) {
      const t = Date.now();
      const r = await timed(t, '/scripts/slow.dll?ms=5');
      expect(r.body).toBe('slept 5\n');
      latencies.push(r.ms);
    }
  };
  await Promise.all([client(), client(), client(), client()]);
  const l = await long;
  expect(l.body).toBe('slept 4000\n');
  expect(latencies.length).toBeGreaterThan(20);
  // A request left waiting on the stuck thread would have waited until the load stopped.
  expect(Math.max(...latencies)).toBeLessThan(1500);
});

test('a busy thread holds only one request of a slow app in advance, so another app does not wait behind a row of them', async () => {
  const one = await startGateway([
    '--config',
    writeConfig({
      apps: [
        { name: 'slow', mount: '/scripts/slow.dll', library: sample('slow') },
        { name: 'hello', mount: '/scripts/hello.dll', library: sample('hello') },
      ],
      bridges: { default: { workers: 1 } },
    }),
  ]);
  try {
    // The bridge learns each app's time per request: slow's 200 ms, then many fast hellos.
    expect((await request(`${one.url}/scripts/slow.dll?ms=200`, { agent: false })).status).toBe(200);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
    for (let i = 0; i < 10; i++) {
      await Promise.all(Array.from({ length: 200 }, () => request(`${one.url}/scripts/hello.dll`, { agent })));
    }
    agent.destroy();
    const start = Date.now();
    const row = Array.from({ length: 8 }, (_, n) => request(`${one.url}/scripts/slow.dll?ms=200&n=${n}`, { agent: false }));
    await sleep(50);
    const t0 = Date.now();
    const hello = await request(`${one.url}/scripts/hello.dll`, { agent: false });
    const helloMs = Date.now() - t0;
    expect(hello.status).toBe(200);
    for (const r of await Promise.all(row)) expect(r.body.toString()).toMatch(/^slept 200\n$/);
    // Eight 200 ms calls on the one thread take 1.6 s. The hello takes its turn among
    // them (round robin between apps), after the running one, the one held in advance
    // and at most one more: not after all eight, as a thread paced by the hellos would hold them.
    expect(Date.now() - start).toBeGreaterThanOrEqual(1600);
    expect(helloMs).toBeLessThan(1000);
  } finally {
    await one.stop();
  }
});

test('a request whose client leaves before any thread started it never reaches the extension', async () => {
  const before = await writeClientCalls();
  const busy = [request(`${gw.url}/scripts/slow.dll?ms=1500&n=a`, { agent: false }), request(`${gw.url}/scripts/slow.dll?ms=1500&n=b`, { agent: false })];
  await sleep(200);
  // Both threads are busy: this one waits (in the queue or on a busy thread) and its client gives up.
  const gone = new Promise<string>((resolve) => {
    const req = http.get(`${gw.url}/scripts/slow.dll?ms=0&n=gone`, { agent: false }, () => resolve('answered'));
    req.on('error', () => resolve('closed'));
    setTimeout(() => {
      req.destroy();
      resolve('closed');
    }, 200);
  });
  expect(await gone).toBe('closed');
  for (const r of await Promise.all(busy)) expect(r.body.toString()).toBe('slept 1500\n');
  // Threads are free again and serve as before.
  expect((await request(`${gw.url}/scripts/slow.dll?ms=0&n=after`, { agent: false })).body.toString()).toBe('slept 0\n');
  await sleep(200);
  // Three requests ran (two busy ones and the last); the abandoned one never called WriteClient.
  expect((await writeClientCalls()) - before).toBe(3);
  const abandoned = gw.access.find((l) => l.query === 'ms=0&n=gone');
  expect(abandoned?.error).toBe('client closed the connection');
  expect(abandoned?.syncWrites).toBe(0);
  // It ended when its client left, not once a thread was free.
  expect(Number(abandoned?.durationMs)).toBeLessThan(1000);
});

test('with relayCallbacks (HttpExtensionProc on a pool thread) each extension thread still runs one request at a time', async () => {
  const relay = await startGateway([
    '--config',
    writeConfig({
      apps: [{ name: 'slow', mount: '/scripts/slow.dll', library: sample('slow'), relayCallbacks: true }],
      bridges: { default: { workers: 2 } },
    }),
  ]);
  try {
    const start = Date.now();
    const replies = await Promise.all([1, 2, 3].map((n) => request(`${relay.url}/scripts/slow.dll?ms=500&n=${n}`, { agent: false })));
    for (const r of replies) expect(r.body.toString()).toBe('slept 500\n');
    // Two threads, three 500 ms calls: two rounds, the third call does not start on a busy thread.
    expect(Date.now() - start).toBeGreaterThanOrEqual(1000);
  } finally {
    await relay.stop();
  }
});

/** The OS thread that ran each reply of slow.dll?thread=1, counted. */
function threadCounts(bodies: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const body of bodies) {
    const thread = /^slept \d+\nthread (\d+)\n$/.exec(body)?.[1];
    expect(thread).toBeDefined();
    counts.set(thread!, (counts.get(thread!) ?? 0) + 1);
  }
  return counts;
}

/** Bursts of fast requests, 16 at a time, once the bridge has timed the app; for each burst, the threads that ran it. */
async function fastBursts(url: string): Promise<Array<Map<string, number>>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  try {
    for (let i = 0; i < 5; i++) await Promise.all(Array.from({ length: 100 }, () => request(`${url}/scripts/slow.dll?ms=0`, { agent })));
    const bursts: Array<Map<string, number>> = [];
    for (let i = 0; i < 10; i++) {
      const replies = await Promise.all(Array.from({ length: 100 }, () => request(`${url}/scripts/slow.dll?ms=0&thread=1`, { agent })));
      bursts.push(threadCounts(replies.map((r) => r.body.toString())));
    }
    return bursts;
  } finally {
    agent.destroy();
  }
}

test('fast requests wait for the runningThreads threads already running rather than wake the idle ones; with more running threads allowed they spread', async () => {
  const start = (runningThreads: number): Promise<RunningGateway> =>
    startGateway(['--config', writeConfig({ apps: [{ name: 'slow', mount: '/scripts/slow.dll', library: sample('slow') }], bridges: { default: { workers: 4, runningThreads } } })]);
  const packed = await start(1);
  const spread = await start(4).catch(async (err: unknown) => {
    await packed.stop();
    throw err;
  });
  try {
    const onOne = await fastBursts(packed.url);
    const onFour = await fastBursts(spread.url);
    // In each burst, the share of the thread that ran the most of it; the middle burst's.
    const busiestShare = (bursts: Array<Map<string, number>>): number => {
      const shares = bursts.map((counts) => Math.max(...counts.values()) / 100).sort((a, b) => a - b);
      return shares[Math.floor(shares.length / 2)]!;
    };
    // One running thread takes most of a burst (70-100 % on an idle machine). The others get
    // what waited on it while it seemed stuck (2 ms inside one call, when a loaded machine
    // takes its CPU away), and the running thread can change: the idle thread woken last goes first.
    expect(busiestShare(onOne)).toBeGreaterThan(0.45);
    // Four running threads: no thread waits for another, so each takes about a quarter.
    expect(new Set(onFour.flatMap((counts) => [...counts.keys()])).size).toBe(4);
    expect(busiestShare(onFour)).toBeLessThan(0.4);
  } finally {
    await Promise.all([packed.stop(), spread.stop()]);
  }
});

test('requests of a fast app held by the one running thread move to an idle thread when that thread gets stuck in a long call', async () => {
  const one = await startGateway([
    '--config',
    writeConfig({ apps: [{ name: 'slow', mount: '/scripts/slow.dll', library: sample('slow') }], bridges: { default: { workers: 2, runningThreads: 1 } } }),
  ]);
  try {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    // The bridge learns that the app is fast.
    for (let i = 0; i < 5; i++) await Promise.all(Array.from({ length: 100 }, () => request(`${one.url}/scripts/slow.dll?ms=0`, { agent })));
    agent.destroy();
    for (let round = 0; round < 3; round++) {
      const start = Date.now();
      // Sent together: the quick ones reach the bridge while the long call runs, and the
      // app's pace says they fit behind it.
      const long = timedOn(one.url, start, '/scripts/slow.dll?ms=1500&thread=1');
      const quick = Array.from({ length: 8 }, () => timedOn(one.url, start, '/scripts/slow.dll?ms=0&thread=1'));
      const quickDone = await Promise.all(quick);
      const longDone = await long;
      expect(longDone.body).toMatch(/^slept 1500\nthread \d+\n$/);
      for (const q of quickDone) {
        expect(q.body).toMatch(/^slept 0\nthread \d+\n$/);
        // Left behind the long call, they would have waited 1.5 s.
        expect(q.ms).toBeLessThan(1000);
      }
    }
  } finally {
    await one.stop();
  }
});

test('isapi-bridge --running-threads 0 is refused with a message naming the option', () => {
  const listen = `unix:${path.join(tempDir(), 'b.sock')}`;
  const r = spawnSync(process.execPath, [BRIDGE_CLI, '--listen', listen, '--app', `/scripts/slow.dll=${sample('slow')}`, '--running-threads', '0'], { encoding: 'utf8', timeout: 20000 });
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/--running-threads 0: expected a whole number of threads, at least 1/);
});
