/**
 * `npm run bench`: isapi-gateway side by side with the proxies its users would
 * pick instead, in one run, on loopback, driven by one load generator.
 *
 * Contenders (hello workload):
 *   isapi          ISAPI hello sample through gateway + bridge (Unix socket), access log off
 *   isapi+log      the same with the per-request JSON access log on (note only, 50 connections)
 *   isapi-4threads the gateway's default of 4 extension threads, when BENCH_WORKERS differs (note only)
 *   gateway+instant the real gateway in front of a stand-in bridge that answers hello at once
 *                  (bench/instant-bridge.ts; note only): the gateway's share of the isapi row
 *   floor          the design floor without ISAPI: node:http -> Unix socket -> worker thread
 *                  and back (bench/floor.ts; note only, 50 connections)
 *   proxy3         http-proxy-3 with a keep-alive agent -> Node peer
 *   proxy3-noagent http-proxy-3 without an agent (Connection: close upstream; note only, 50 connections)
 *   nginx-1        nginx, worker_processes 1, upstream keepalive -> Node peer
 *   nginx-auto     nginx, worker_processes auto, upstream keepalive -> Node peer
 *   node           the Node peer direct (the ceiling)
 *
 * Workloads: hello at BENCH_CONNECTIONS (keep-alive, wrk + Lua for percentiles);
 * a WriteClient stream; TransmitFile of a file; an upload read by ReadClient;
 * many concurrent PENDING requests; a slow client reading a large response
 * (RSS growth of gateway and bridge). Prints a markdown table and PASS/MISS per
 * target, and writes bench/results/latest.json (and a timestamped copy).
 *
 * Environment (all optional):
 *   BENCH_DURATION=5        seconds per wrk run (plus BENCH_WARMUP=1 s of warm-up)
 *   BENCH_CONNECTIONS=1,50,256
 *   BENCH_ROUNDS=3          at 50 connections the contenders take turns this many times and
 *                           each row is the median round: the machine's speed drifts by
 *                           ±20 % within minutes, which one run per contender cannot show;
 *                           the hello ratios are the median of the rounds' ratios
 *   BENCH_TRANSFER_ROUNDS=3 the same for the stream, TransmitFile and upload transfers
 *   BENCH_ONLY=hello,stream,transmitfile,upload,pending,slow
 *   BENCH_PIN=split|none    split (default): load generator on the last CPU, every
 *                           server process on the others; none: no taskset
 *   BENCH_WORKERS=N         gateway --workers (extension threads); default: the CPUs the servers get
 *   BENCH_STREAM_BYTES=1073741824  BENCH_STREAM_CHUNK=65536
 *   BENCH_TF_BYTES=1073741824      BENCH_TF_QUERY='path={path}'  (transmitfile sample query)
 *   BENCH_UPLOAD_BYTES=104857600
 *   BENCH_PENDING_CONNECTIONS=2000 BENCH_PENDING_QUERY='count=4&size=4096' (asyncwrite sample query)
 *   BENCH_SLOW_BYTES=1073741824    BENCH_SLOW_RATE=10000000 (bytes/s; 1 GiB at 10 MB/s takes ~110 s)
 *   BENCH_PROFILE=DIR       run gateway and bridge with --cpu-prof into DIR, then a flame graph
 *                           (.svg, and .folded stacks) beside each profile (bench/flame.ts)
 *   BENCH_OUT=bench/results
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { freeLoopbackPort } from '../bridge/transport';
import { writeFlameGraphs } from './flame';

const ROOT = path.resolve(__dirname, '..', '..');
const DIST = path.join(ROOT, 'dist');
const SAMPLES = path.join(ROOT, 'build', 'samples');
const MiB = 1024 * 1024;

const env = (name: string, fallback: string): string => process.env[name] ?? fallback;
const num = (name: string, fallback: number): number => Number(env(name, String(fallback)));

const CFG = {
  duration: num('BENCH_DURATION', 5),
  warmup: num('BENCH_WARMUP', 1),
  connections: env('BENCH_CONNECTIONS', '1,50,256').split(',').map(Number),
  rounds: Math.max(1, num('BENCH_ROUNDS', 3)),
  transferRounds: Math.max(1, num('BENCH_TRANSFER_ROUNDS', 3)),
  only: new Set(env('BENCH_ONLY', 'hello,stream,transmitfile,upload,pending,slow').split(',')),
  pin: env('BENCH_PIN', 'split'),
  /** Extension threads; default: as many as the CPUs the servers get (see SERVER_CPU_COUNT). */
  workers: num('BENCH_WORKERS', 0),
  streamBytes: num('BENCH_STREAM_BYTES', 1024 * MiB),
  streamChunk: num('BENCH_STREAM_CHUNK', 65536),
  tfBytes: num('BENCH_TF_BYTES', 1024 * MiB),
  tfQuery: env('BENCH_TF_QUERY', 'path={path}'),
  uploadBytes: num('BENCH_UPLOAD_BYTES', 100 * MiB),
  pendingConnections: num('BENCH_PENDING_CONNECTIONS', 2000),
  pendingQuery: env('BENCH_PENDING_QUERY', 'count=4&size=4096'),
  slowBytes: num('BENCH_SLOW_BYTES', 1024 * MiB),
  slowRate: num('BENCH_SLOW_RATE', 10_000_000),
  profileDir: process.env.BENCH_PROFILE ? path.resolve(process.env.BENCH_PROFILE) : undefined,
  out: path.resolve(ROOT, env('BENCH_OUT', 'bench/results')),
};

const NCPU = os.cpus().length;
const LOAD_CPU = CFG.pin === 'split' && NCPU > 1 ? String(NCPU - 1) : undefined;
const SERVER_CPUS = CFG.pin === 'split' && NCPU > 1 ? (NCPU - 1 === 1 ? '0' : `0-${NCPU - 2}`) : undefined;
/**
 * CPUs the server processes get. A CPU-bound extension is served best by as many
 * extension threads as there are CPUs, the way nginx-1 runs one worker per core: on one
 * pinned core, 4 threads cost about 1.5x the CPU per request of 1 (bench/RESULTS.md).
 * `isapi-4threads` keeps the gateway's default of 4 as a note.
 */
const SERVER_CPU_COUNT = SERVER_CPUS ? NCPU - 1 : NCPU;
const GATEWAY_DEFAULT_WORKERS = 4;
if (CFG.workers <= 0) CFG.workers = SERVER_CPU_COUNT;

function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

// ---------------------------------------------------------------------------
// Tools

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function aptInstall(pkg: string): boolean {
  log(`installing ${pkg} with apt-get`);
  let r = spawnSync('apt-get', ['install', '-y', '-q', pkg], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 240_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-q'], { stdio: 'ignore', timeout: 240_000 });
    r = spawnSync('apt-get', ['install', '-y', '-q', pkg], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 240_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  return r.status === 0;
}

function nginxBinary(): string | undefined {
  for (const p of ['/usr/sbin/nginx', '/usr/bin/nginx']) if (fs.existsSync(p)) return p;
  if (have('nginx')) return 'nginx';
  return undefined;
}

// ---------------------------------------------------------------------------
// Processes

const children: ChildProcess[] = [];
let tmp = '';

function pinned(cpus: string | undefined, file: string, args: string[]): [string, string[]] {
  return cpus && have('taskset') ? ['taskset', ['-c', cpus, file, ...args]] : [file, args];
}

interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  stdout: string[];
}

function startProc(name: string, file: string, args: string[], opts: { cpus?: string; env?: NodeJS.ProcessEnv; quiet?: boolean } = {}): Proc {
  const [f, a] = pinned(opts.cpus, file, args);
  const child = spawn(f, a, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  children.push(child);
  const proc: Proc = { name, child, pid: child.pid!, stdout: [] };
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    if (proc.stdout.length < 50) proc.stdout.push(d);
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    if (opts.quiet) return;
    for (const line of d.split('\n')) if (line.trim() && !line.includes('"level":"info"')) process.stderr.write(`  [${name}] ${line}\n`);
  });
  return proc;
}

async function stopProc(p: Proc | undefined, signal: NodeJS.Signals = 'SIGTERM', ms = 15000): Promise<void> {
  const bridge = p && bridgesByGateway.get(p);
  if (bridge) {
    bridgesByGateway.delete(p!);
    await stopProc(p, signal, ms);
    return stopProc(bridge, 'SIGTERM', ms);
  }
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      p.child.kill('SIGKILL');
      resolve();
    }, ms);
    p.child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    p.child.kill(signal);
  });
}


function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(3000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function waitHttp(url: string, proc: Proc, ms = 20000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited with ${proc.child.exitCode} during start-up`);
    try {
      const r = await httpGet(url);
      if (r.status === 200) return;
    } catch {
      /* not yet */
    }
    await sleep(100);
  }
  throw new Error(`${proc.name} not answering ${url}`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// /proc sampling: RSS and CPU time of process groups

function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === ppid) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

const TICK = 100; // USER_HZ on Linux
function cpuTicks(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

/** A named set of processes measured together (nginx master + workers count as one). */
interface Group {
  label: string;
  pids: () => number[];
}

class Sampler {
  private timer: NodeJS.Timeout | undefined;
  private readonly peak = new Map<string, number>();
  private readonly start = new Map<string, number>();
  private readonly ticks0 = new Map<string, number>();
  private t0 = 0;

  constructor(private readonly groups: Group[]) {}

  private rss(g: Group): number {
    return g.pids().reduce((s, p) => s + rssKiB(p), 0);
  }

  begin(): void {
    this.t0 = Date.now();
    for (const g of this.groups) {
      const r = this.rss(g);
      this.start.set(g.label, r);
      this.peak.set(g.label, r);
      this.ticks0.set(g.label, g.pids().reduce((s, p) => s + cpuTicks(p), 0));
    }
    this.timer = setInterval(() => {
      for (const g of this.groups) this.peak.set(g.label, Math.max(this.peak.get(g.label)!, this.rss(g)));
    }, 100);
  }

  end(): Record<string, { rssStartMiB: number; rssPeakMiB: number; rssGrowthMiB: number; cpuPct: number }> {
    clearInterval(this.timer);
    const secs = (Date.now() - this.t0) / 1000;
    const out: Record<string, { rssStartMiB: number; rssPeakMiB: number; rssGrowthMiB: number; cpuPct: number }> = {};
    for (const g of this.groups) {
      const peak = Math.max(this.peak.get(g.label)!, this.rss(g));
      const start = this.start.get(g.label)!;
      const ticks = g.pids().reduce((s, p) => s + cpuTicks(p), 0) - this.ticks0.get(g.label)!;
      out[g.label] = {
        rssStartMiB: round(start / 1024, 1),
        rssPeakMiB: round(peak / 1024, 1),
        rssGrowthMiB: round((peak - start) / 1024, 1),
        cpuPct: round((ticks / TICK / secs) * 100, 0),
      };
    }
    return out;
  }
}

/** Other users of a shared machine have been seen killing gateways: say so instead of reporting nonsense. */
function deadNote(groups: Group[]): string {
  const dead = groups.filter((g) => g.pids().length === 0 || g.pids().some((p) => !fs.existsSync(`/proc/${p}`)));
  return dead.length ? `PROCESS GONE during run (${dead.map((g) => g.label).join(', ')})` : '';
}

const round = (v: number, d = 2): number => Math.round(v * 10 ** d) / 10 ** d;

// ---------------------------------------------------------------------------
// Load generators

const WRK_LUA = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
`;

interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  max: number;
  errors: number;
  mbps: number;
  requests: number;
}

let loadTool: 'wrk' | 'autocannon' = 'wrk';

async function runLoad(url: string, connections: number, seconds: number): Promise<LoadResult> {
  if (loadTool === 'wrk') {
    const lua = path.join(tmp, 'report.lua');
    const threads = connections >= 1000 ? Math.min(2, NCPU) : 1;
    const args = ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '--timeout', '10s', '-s', lua, url];
    const p = startProc('wrk', 'wrk', args, { cpus: LOAD_CPU });
    await new Promise((r) => p.child.once('exit', r));
    const line = p.stdout.join('').split('\n').find((l) => l.startsWith('WRKJSON '));
    if (!line) throw new Error(`wrk printed no result: ${p.stdout.join('')}`);
    const j = JSON.parse(line.slice(8)) as Record<string, number>;
    const secs = j.duration_us! / 1e6;
    return {
      rps: j.requests! / secs,
      p50: j.p50_us! / 1000,
      p99: j.p99_us! / 1000,
      max: j.max_us! / 1000,
      errors: j.connect! + j.read! + j.write! + j.status! + j.timeout!,
      mbps: j.bytes! / secs / 1e6,
      requests: j.requests!,
    };
  }
  // Fallback: autocannon from npm (no wrk).
  const p = startProc('autocannon', 'npx', ['--yes', 'autocannon@8', '-j', '-c', String(connections), '-d', String(seconds), url], { cpus: LOAD_CPU, quiet: true });
  await new Promise((r) => p.child.once('exit', r));
  const j = JSON.parse(p.stdout.join('')) as {
    requests: { average: number; total: number };
    latency: { p50: number; p99: number; max: number };
    throughput: { average: number };
    errors: number;
    timeouts: number;
    non2xx: number;
  };
  return {
    rps: j.requests.average,
    p50: j.latency.p50,
    p99: j.latency.p99,
    max: j.latency.max,
    errors: j.errors + j.timeouts + j.non2xx,
    mbps: j.throughput.average / 1e6,
    requests: j.requests.total,
  };
}

async function runClient(args: string[]): Promise<Record<string, number | boolean | string>> {
  const p = startProc('client', process.execPath, [path.join(DIST, 'bench', 'clients.js'), ...args], { cpus: LOAD_CPU });
  await new Promise((r) => p.child.once('exit', r));
  const line = p.stdout.join('').trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Record<string, number | boolean | string>;
  } catch {
    return { ok: false, error: `client printed ${JSON.stringify(line)}` };
  }
}

// ---------------------------------------------------------------------------
// Contenders

interface Contender {
  name: string;
  url: string;
  groups: Group[];
}

const gatewayApps = (): string[] => {
  const apps = ['hello', 'stream', 'sink', 'transmitfile', 'asyncwrite'];
  const out: string[] = [];
  for (const a of apps) if (fs.existsSync(path.join(SAMPLES, `${a}.so`))) out.push('--app', `/scripts/${a}.dll=${path.join(SAMPLES, `${a}.so`)}`);
  return out;
};

const bridgesByGateway = new Map<Proc, Proc>();
let profileSeq = 0;

async function startGateway(label: string, accessLog: boolean, workers = CFG.workers): Promise<{ proc: Proc; url: string; groups: Group[] }> {
  const port = await freeLoopbackPort();
  const nodeArgs: string[] = [];
  const bridgeArgs: string[] = [];
  let bridgeProc: Proc | undefined;
  if (CFG.profileDir) {
    // --cpu-prof is refused in NODE_OPTIONS, so the bridge runs by hand (--bridge) with its own flag;
    // it writes one profile per thread (main + each extension thread).
    const dir = path.join(CFG.profileDir, `${++profileSeq}-${label}`);
    fs.mkdirSync(dir, { recursive: true });
    const sock = path.join(tmp, `bridge-${profileSeq}.sock`);
    bridgeProc = startProc(
      `${label}-bridge`,
      process.execPath,
      ['--cpu-prof', `--cpu-prof-dir=${path.join(dir, 'bridge')}`, path.join(DIST, 'bridge', 'cli.js'), '--listen', `unix:${sock}`, '--workers', String(workers), ...gatewayApps()],
      { cpus: SERVER_CPUS },
    );
    const until = Date.now() + 15000;
    while (!fs.existsSync(sock) && Date.now() < until) await sleep(50);
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${path.join(dir, 'gateway')}`);
    bridgeArgs.push('--bridge', `unix:${sock}`);
  }
  const proc = startProc(
    label,
    process.execPath,
    [...nodeArgs, path.join(DIST, 'gateway', 'cli.js'), '--port', String(port), '--workers', String(workers), '--access-log', String(accessLog), '--log-level', 'warn', ...bridgeArgs, ...gatewayApps()],
    { cpus: SERVER_CPUS },
  );
  if (bridgeProc) bridgesByGateway.set(proc, bridgeProc);
  // Access-log lines go to stdout; drain them so the pipe never blocks the gateway.
  proc.child.stdout!.removeAllListeners('data');
  proc.child.stdout!.resume();
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/scripts/hello.dll`, proc);
  let bridgePid = bridgeProc?.pid ?? 0;
  const bridge = (): number[] => {
    if (!bridgePid || !fs.existsSync(`/proc/${bridgePid}`)) bridgePid = bridgeProc?.pid ?? childrenOf(proc.pid)[0] ?? 0;
    return bridgePid ? [bridgePid] : [];
  };
  return {
    proc,
    url,
    groups: [
      { label: 'front', pids: () => [proc.pid] },
      { label: 'back', pids: bridge },
    ],
  };
}

type FrontAndBack = { procs: Proc[]; url: string; groups: Group[] };

/** A back process on a Unix socket (it prints "listening" when ready) and an HTTP front process talking to it. */
async function startFrontAndBack(
  name: string,
  backArgs: (socket: string) => string[],
  frontArgs: (socket: string, port: number) => string[],
  readyPath: string,
): Promise<FrontAndBack> {
  const socket = path.join(tmp, `${name}.sock`);
  const back = startProc(`${name}-back`, process.execPath, backArgs(socket), { cpus: SERVER_CPUS });
  const until = Date.now() + 15000;
  while (!back.stdout.join('').includes('listening') && Date.now() < until) await sleep(50);
  const port = await freeLoopbackPort();
  const front = startProc(`${name}-front`, process.execPath, frontArgs(socket, port), { cpus: SERVER_CPUS });
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}${readyPath}`, front);
  return {
    procs: [front, back],
    url,
    groups: [
      { label: 'front', pids: () => [front.pid] },
      { label: 'back', pids: () => [back.pid] },
    ],
  };
}

/** The real gateway in front of bench/instant-bridge.ts: what the gateway alone costs per hello request. */
function startGatewayWithInstantBridge(): Promise<FrontAndBack> {
  return startFrontAndBack(
    'instant',
    (socket) => [path.join(DIST, 'bench', 'instant-bridge.js'), '--socket', socket],
    (socket, port) => [
      path.join(DIST, 'gateway', 'cli.js'),
      '--port', String(port),
      '--access-log', 'false',
      '--log-level', 'warn',
      '--bridge', `unix:${socket}`,
      '--app', `/scripts/hello.dll=${path.join(SAMPLES, 'hello.so')}`,
    ],
    '/scripts/hello.dll',
  );
}

/** The design floor (bench/floor.ts): node:http -> Unix socket -> worker thread and back, no ISAPI. */
function startFloor(): Promise<FrontAndBack> {
  return startFrontAndBack(
    'floor',
    (socket) => [path.join(DIST, 'bench', 'floor.js'), 'back', '--socket', socket, '--threads', String(CFG.workers)],
    (socket, port) => [path.join(DIST, 'bench', 'floor.js'), 'front', '--port', String(port), '--socket', socket],
    '/',
  );
}

async function startNginx(workers: string, upstreamPort: number): Promise<{ proc: Proc; url: string; groups: Group[] } | undefined> {
  const bin = nginxBinary();
  if (!bin) return undefined;
  const port = await freeLoopbackPort();
  const dir = fs.mkdtempSync(path.join(tmp, `nginx-${workers}-`));
  const conf = `
worker_processes ${workers};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
daemon off;
${process.getuid?.() === 0 ? 'user root;' : ''}
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  upstream peer { server 127.0.0.1:${upstreamPort}; keepalive 256; }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://peer;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const proc = startProc(`nginx-${workers}`, bin, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')], { cpus: SERVER_CPUS });
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/`, proc);
  return { proc, url, groups: [{ label: 'front', pids: () => [proc.pid, ...childrenOf(proc.pid)] }] };
}

// ---------------------------------------------------------------------------
// Results

interface Row {
  workload: string;
  contender: string;
  connections?: number;
  rps?: number;
  p50ms?: number;
  p99ms?: number;
  maxms?: number;
  errors?: number;
  mbps?: number;
  frontRssMiB?: number;
  backRssMiB?: number;
  frontCpuPct?: number;
  backCpuPct?: number;
  /** Server-side CPU per request (front + back processes), µs: the contention-independent cost. */
  cpuUsPerReq?: number;
  rssGrowthFrontMiB?: number;
  rssGrowthBackMiB?: number;
  note?: string;
}

type GroupStats = ReturnType<Sampler['end']>;

/** A row for a request/response load run (wrk or autocannon) of one contender. */
function loadRow(workload: string, contender: string, connections: number, r: LoadResult, m: GroupStats, note?: string): Row {
  return {
    workload,
    contender,
    connections,
    rps: r.rps,
    p50ms: r.p50,
    p99ms: r.p99,
    maxms: r.max,
    errors: r.errors,
    mbps: r.mbps,
    frontRssMiB: m.front?.rssPeakMiB,
    backRssMiB: m.back?.rssPeakMiB,
    frontCpuPct: m.front?.cpuPct,
    backCpuPct: m.back?.cpuPct,
    cpuUsPerReq: (((m.front?.cpuPct ?? 0) + (m.back?.cpuPct ?? 0)) * 1e4) / r.rps,
    note,
  };
}

interface Target {
  name: string;
  goal: string;
  measured: string;
  verdict: 'PASS' | 'MISS' | 'SKIP';
}

const rows: Row[] = [];
const targets: Target[] = [];
const skipped: string[] = [];

function fmt(v: number | undefined, d = 0): string {
  return v === undefined || Number.isNaN(v) ? '' : v.toFixed(d);
}

function table(): string {
  const head = ['workload', 'contender', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'errors', 'MB/s', 'front RSS MiB', 'back RSS MiB', 'front CPU %', 'back CPU %', 'CPU µs/req', 'note'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    lines.push(
      `| ${[
        r.workload,
        r.contender,
        fmt(r.connections),
        fmt(r.rps),
        fmt(r.p50ms, 2),
        fmt(r.p99ms, 2),
        fmt(r.maxms, 1),
        fmt(r.errors),
        fmt(r.mbps, 1),
        fmt(r.frontRssMiB, 0),
        fmt(r.backRssMiB, 0),
        fmt(r.frontCpuPct),
        fmt(r.backCpuPct),
        fmt(r.cpuUsPerReq),
        r.note ?? '',
      ].join(' | ')} |`,
    );
  }
  return lines.join('\n');
}

function targetTable(): string {
  const lines = ['| target | goal | measured | verdict |', '|---|---|---|---|'];
  for (const t of targets) lines.push(`| ${t.name} | ${t.goal} | ${t.measured} | ${t.verdict} |`);
  return lines.join('\n');
}

function addTarget(name: string, goal: string, measured: string, ok: boolean | undefined): void {
  targets.push({ name, goal, measured, verdict: ok === undefined ? 'SKIP' : ok ? 'PASS' : 'MISS' });
}

// ---------------------------------------------------------------------------
// Workloads

/** Each contender's rounds at 50 connections (the targets'), by contender name, in round order. */
type HelloRounds = Map<string, Row[]>;

async function helloWorkload(contenders: Contender[], notes: Contender[]): Promise<HelloRounds> {
  const rounds: HelloRounds = new Map();
  const helloUrl = (k: Contender): string => (k.name.startsWith('isapi') || k.name.startsWith('gateway') ? `${k.url}/scripts/hello.dll` : `${k.url}/`);
  const measure = async (k: Contender, c: number, warmup = CFG.warmup): Promise<Row> => {
    if (warmup > 0) await runLoad(helloUrl(k), c, warmup);
    const s = new Sampler(k.groups);
    s.begin();
    const r = await runLoad(helloUrl(k), c, CFG.duration);
    const row = loadRow('hello', k.name, c, r, s.end(), deadNote(k.groups));
    log(`hello c=${c} ${k.name}: ${r.rps.toFixed(0)} req/s p99 ${r.p99.toFixed(2)} ms errors ${r.errors}`);
    return row;
  };
  for (const c of CFG.connections) {
    // The targets' connection count: contenders take turns, round after round, and the median round stands.
    const runs = await inRounds(contenders, c === 50 ? CFG.rounds : 1, (k) => measure(k, c));
    for (const r of runs) rows.push(medianRound(r));
    if (c !== 50) continue;
    contenders.forEach((k, i) => rounds.set(k.name, runs[i]!));
    // A note runs only here, on a fresh process: it warms up as long as the contenders ran
    // before their first round here (a run at 1 connection and two warm-ups), or its row
    // would measure V8 compiling the request path (with 4 extension threads, four times).
    for (const k of notes) {
      const row = await measure(k, c, CFG.duration + 2 * CFG.warmup);
      rows.push({ ...row, note: ['note only', row.note].filter(Boolean).join('; ') });
    }
  }
  return rounds;
}

/** Per-round ratios of one contender's req/s to another's, and their median. */
interface PairedRatio {
  median: number;
  each: number[];
}

/**
 * `a`'s req/s over `b`'s, round by round, and the median of those ratios. The two
 * ran back to back in each round, so each ratio compares one phase of the machine
 * with itself; the ratio of the two median rounds may pair a fast phase with a slow one.
 */
function pairedRatio(a: readonly Row[], b: readonly Row[]): PairedRatio {
  const each = a.map((row, i) => row.rps! / b[i]!.rps!);
  return { median: lowerMedian(each, (x) => x), each };
}

/** "1.52x (rounds 1.27x, 1.52x, 1.78x; median rounds 8352 vs 5996 req/s)" */
function describeRatio(r: PairedRatio, a: Row, b: Row): string {
  const rounds = r.each.length > 1 ? `rounds ${r.each.map((x) => `${x.toFixed(2)}x`).join(', ')}; median rounds ` : '';
  return `${r.median.toFixed(2)}x (${rounds}${fmt(a.rps)} vs ${fmt(b.rps)} req/s)`;
}

/**
 * Runs `measure` on every item, item after item, `rounds` times over: items measured in
 * turn share the machine's phases. Returns each item's rows, in the order of `items`.
 */
async function inRounds<T>(items: readonly T[], rounds: number, measure: (item: T) => Promise<Row>): Promise<Row[][]> {
  const runs = items.map((): Row[] => []);
  for (let round = 0; round < rounds; round++) {
    for (const [i, item] of items.entries()) runs[i]!.push(await measure(item));
  }
  return runs;
}

/** The round with the median req/s, noting every round's req/s when there were several. */
function medianRound(runs: Row[]): Row {
  return medianBy(runs, (r) => r.rps ?? 0, (r) => fmt(r.rps), 'req/s');
}

/** The item with the median `value`; of an even count, the lower middle one. */
function lowerMedian<T>(items: readonly T[], value: (item: T) => number): T {
  const sorted = [...items].sort((a, b) => value(a) - value(b));
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** The run with the median `value` (the lower middle of an even count), noting every run's value. */
function medianBy(runs: Row[], value: (r: Row) => number, show: (r: Row) => string, unit: string): Row {
  const median = lowerMedian(runs, value);
  if (runs.length === 1) return median;
  const each = runs.map(show).join(', ');
  return { ...median, note: [`median of ${runs.length} interleaved rounds (${each} ${unit})`, median.note].filter(Boolean).join('; ') };
}

/** One transfer client run against one contender, as a row (not yet added to the table). */
async function measureTransfer(spec: TransferSpec): Promise<Row> {
  const s = new Sampler(spec.groups);
  s.begin();
  const r = await runClient(spec.clientArgs);
  const m = s.end();
  const row: Row = {
    workload: spec.workload,
    contender: spec.contender,
    connections: 1,
    mbps: typeof r.mbps === 'number' ? r.mbps : undefined,
    errors: r.ok === true ? 0 : 1,
    frontRssMiB: m.front?.rssPeakMiB,
    backRssMiB: m.back?.rssPeakMiB,
    frontCpuPct: m.front?.cpuPct,
    backCpuPct: m.back?.cpuPct,
    rssGrowthFrontMiB: m.front?.rssGrowthMiB,
    rssGrowthBackMiB: m.back?.rssGrowthMiB,
    note: [spec.note, r.ok === true ? undefined : `FAILED: ${JSON.stringify(r)}`, deadNote(spec.groups)].filter(Boolean).join('; ') || undefined,
  };
  log(`${spec.workload} ${spec.contender}: ${fmt(row.mbps, 1)} MB/s ${r.ok === true ? '' : JSON.stringify(r)}`);
  return row;
}

interface TransferSpec {
  workload: string;
  contender: string;
  groups: Group[];
  clientArgs: string[];
  note?: string;
}

/** A single transfer run (the slow client): its row goes into the table as measured. */
async function transferWorkload(spec: TransferSpec): Promise<Row> {
  const row = await measureTransfer(spec);
  rows.push(row);
  return row;
}

/**
 * Throughput transfers: the contenders take turns for `rounds` rounds, like hello at 50
 * connections, and each contender's median round goes into the table. One run of a second
 * or two lands wherever the machine's speed happens to be at that moment; a failure in any
 * round counts against the median row. Returns the rows in the order of `specs`.
 */
async function transferRounds(specs: TransferSpec[], rounds = CFG.transferRounds): Promise<Row[]> {
  const runs = await inRounds(specs, rounds, measureTransfer);
  return runs.map((r) => {
    const row = medianBy(r, (x) => x.mbps ?? 0, (x) => fmt(x.mbps, 0), 'MB/s');
    const errors = r.reduce((n, x) => n + (x.errors ?? 0), 0);
    const out = { ...row, errors };
    rows.push(out);
    return out;
  });
}

function machine(): Record<string, string | number> {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'latin1');
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? 'unknown';
  const ver = (cmd: string, args: string[]): string => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return ((r.stdout || '') + (r.stderr || '')).split('\n')[0]?.trim() ?? '';
  };
  return {
    nproc: NCPU,
    cpu: model,
    memGiB: round(os.totalmem() / 1024 ** 3, 1),
    kernel: os.release(),
    node: process.version,
    wrk: have('wrk') ? ver('wrk', ['-v']) : 'absent',
    nginx: nginxBinary() ? ver(nginxBinary()!, ['-v']) : 'absent',
    loadavgAtStart: os.loadavg().map((v) => v.toFixed(2)).join(' '),
    pinning:
      CFG.pin === 'split' && LOAD_CPU
        ? `taskset: load generator on CPU ${LOAD_CPU}, every server process (gateway, bridge, proxies, nginx, Node peer) on CPU ${SERVER_CPUS}`
        : 'none (all processes float over all CPUs)',
  };
}

async function main(): Promise<void> {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'isapi-bench-'));
  fs.writeFileSync(path.join(tmp, 'report.lua'), WRK_LUA);

  if (!have('wrk') && !aptInstall('wrk')) {
    log('wrk unavailable; falling back to autocannon from npm');
    loadTool = 'autocannon';
  }
  if (!nginxBinary() && !aptInstall('nginx-light')) log('nginx-light not installable: nginx contenders skipped');
  if (!fs.existsSync(path.join(SAMPLES, 'sink.so'))) spawnSync('make', ['-s', '-C', path.join(ROOT, 'samples')], { stdio: 'inherit' });

  const info = machine();
  log(`machine: ${JSON.stringify(info)}`);
  const started = new Date();

  // Shared backends: the Node peer (behind the proxies and nginx) and the gateway.
  const peerPort = await freeLoopbackPort();
  const peer = startProc('peer', process.execPath, [path.join(DIST, 'bench', 'servers.js'), 'peer', '--port', String(peerPort)], { cpus: SERVER_CPUS });
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  await waitHttp(`${peerUrl}/`, peer);
  const peerGroup: Group = { label: 'back', pids: () => [peer.pid] };

  const proxyPort = await freeLoopbackPort();
  const proxy = startProc('proxy3', process.execPath, [path.join(DIST, 'bench', 'servers.js'), 'proxy', '--port', String(proxyPort), '--target', peerUrl], { cpus: SERVER_CPUS });
  const proxyUrl = `http://127.0.0.1:${proxyPort}`;
  await waitHttp(`${proxyUrl}/`, proxy);
  const proxyNoAgentPort = await freeLoopbackPort();
  const proxyNoAgent = startProc(
    'proxy3-noagent',
    process.execPath,
    [path.join(DIST, 'bench', 'servers.js'), 'proxy', '--port', String(proxyNoAgentPort), '--target', peerUrl, '--agent', 'false'],
    { cpus: SERVER_CPUS },
  );
  await waitHttp(`http://127.0.0.1:${proxyNoAgentPort}/`, proxyNoAgent);

  const results: Record<string, unknown> = {};

  // ---- hello ---------------------------------------------------------------
  if (CFG.only.has('hello')) {
    const gw = await startGateway('gateway', false);
    const gwLog = await startGateway('gateway+log', true);
    const gw4 = CFG.workers === GATEWAY_DEFAULT_WORKERS ? undefined : await startGateway('gateway-4threads', false, GATEWAY_DEFAULT_WORKERS);
    const nginx1 = await startNginx('1', peerPort);
    const nginxAuto = await startNginx('auto', peerPort);
    if (!nginx1) skipped.push('nginx: not installed (apt-get install nginx-light failed) - nginx contenders and the nginx ratio are skipped');
    const contenders: Contender[] = [
      { name: 'isapi', url: gw.url, groups: gw.groups },
      { name: 'proxy3', url: proxyUrl, groups: [{ label: 'front', pids: () => [proxy.pid] }, peerGroup] },
      ...(nginx1 ? [{ name: 'nginx-1', url: nginx1.url, groups: [...nginx1.groups, peerGroup] }] : []),
      ...(nginxAuto ? [{ name: 'nginx-auto', url: nginxAuto.url, groups: [...nginxAuto.groups, peerGroup] }] : []),
      { name: 'node', url: peerUrl, groups: [{ label: 'front', pids: () => [peer.pid] }] },
    ];
    const floor = await startFloor();
    const instant = await startGatewayWithInstantBridge();
    const notes: Contender[] = [
      { name: 'isapi+log', url: gwLog.url, groups: gwLog.groups },
      ...(gw4 ? [{ name: `isapi-${GATEWAY_DEFAULT_WORKERS}threads`, url: gw4.url, groups: gw4.groups }] : []),
      { name: 'gateway+instant', url: instant.url, groups: instant.groups },
      { name: 'floor', url: floor.url, groups: floor.groups },
      { name: 'proxy3-noagent', url: `http://127.0.0.1:${proxyNoAgentPort}`, groups: [{ label: 'front', pids: () => [proxyNoAgent.pid] }, peerGroup] },
    ];
    const helloRounds = await helloWorkload(contenders, notes);
    await Promise.all([stopProc(gw.proc), stopProc(gwLog.proc), stopProc(gw4?.proc), ...[...floor.procs, ...instant.procs].map((p) => stopProc(p)), stopProc(nginx1?.proc, 'SIGQUIT'), stopProc(nginxAuto?.proc, 'SIGQUIT')]);

    const at = (name: string, c: number): Row | undefined => rows.find((r) => r.workload === 'hello' && r.contender === name && r.connections === c);
    const isapi50 = at('isapi', 50);
    const proxy50 = at('proxy3', 50);
    const nginx50 = [at('nginx-1', 50), at('nginx-auto', 50)].filter((r): r is Row => !!r).sort((a, b) => b.rps! - a.rps!)[0];
    const versus = (other: string): PairedRatio => pairedRatio(helloRounds.get('isapi')!, helloRounds.get(other)!);
    if (isapi50 && proxy50) {
      const ratio = versus('proxy3');
      addTarget('hello: isapi / http-proxy-3 (keep-alive agent), 50 conns', '>= 1.5x', describeRatio(ratio, isapi50, proxy50), ratio.median >= 1.5);
    }
    if (isapi50 && nginx50) {
      const ratio = versus(nginx50.contender);
      addTarget(`hello: isapi / nginx (best: ${nginx50.contender}), 50 conns`, '>= 0.6x', describeRatio(ratio, isapi50, nginx50), ratio.median >= 0.6);
    } else addTarget('hello: isapi / nginx, 50 conns', '>= 0.6x', 'nginx not available', undefined);
    if (isapi50) addTarget('hello: isapi p99 at 50 conns', '< 5 ms', `${isapi50.p99ms!.toFixed(2)} ms`, isapi50.p99ms! < 5);
  }

  // ---- stream (WriteClient) -------------------------------------------------
  if (CFG.only.has('stream')) {
    const gw = await startGateway('gateway', false);
    const q = `bytes=${CFG.streamBytes}&chunk=${CFG.streamChunk}`;
    const [row] = await transferRounds([
      { workload: 'stream', contender: 'isapi', groups: gw.groups, clientArgs: ['download', `${gw.url}/scripts/stream.dll?${q}`, '--expect', String(CFG.streamBytes)], note: `${CFG.streamBytes / MiB} MiB in ${CFG.streamChunk / 1024} KiB WriteClient calls` },
      { workload: 'stream', contender: 'node', groups: [{ label: 'front', pids: () => [peer.pid] }], clientArgs: ['download', `${peerUrl}/stream?${q}`, '--expect', String(CFG.streamBytes)], note: 'reference: Node peer writing the same chunks' },
      { workload: 'stream', contender: 'proxy3', groups: [{ label: 'front', pids: () => [proxy.pid] }, peerGroup], clientArgs: ['download', `${proxyUrl}/stream?${q}`, '--expect', String(CFG.streamBytes)], note: 'reference' },
    ]);
    await stopProc(gw.proc);
    addTarget('WriteClient stream (64 KiB chunks) to the client', '>= 1000 MB/s', `${fmt(row.mbps, 0)} MB/s`, row.errors === 0 && row.mbps! >= 1000);
  }

  // ---- TransmitFile ----------------------------------------------------------
  if (CFG.only.has('transmitfile')) {
    if (!fs.existsSync(path.join(SAMPLES, 'transmitfile.so'))) {
      skipped.push('transmitfile: not yet available (build/samples/transmitfile.so is not built; the async-I/O work adds it)');
      addTarget('TransmitFile 1 GiB file', '>= 1200 MB/s', 'not yet available', undefined);
    } else {
      const file = path.join(tmp, 'transmit.bin');
      const fd = fs.openSync(file, 'w');
      const block = Buffer.alloc(MiB, 0x61);
      for (let i = 0; i < CFG.tfBytes / MiB; i++) fs.writeSync(fd, block);
      fs.closeSync(fd);
      const gw = await startGateway('gateway', false);
      const q = CFG.tfQuery.replace('{path}', encodeURIComponent(file)).replace('{bytes}', String(CFG.tfBytes));
      const [row] = await transferRounds([
        { workload: 'transmitfile', contender: 'isapi', groups: gw.groups, clientArgs: ['download', `${gw.url}/scripts/transmitfile.dll?${q}`, '--expect', String(CFG.tfBytes)], note: `${CFG.tfBytes / MiB} MiB file` },
      ]);
      await stopProc(gw.proc);
      fs.rmSync(file, { force: true });
      addTarget('TransmitFile 1 GiB file', '>= 1200 MB/s', `${fmt(row.mbps, 0)} MB/s`, row.errors === 0 && row.mbps! >= 1200);
    }
  }

  // ---- upload (ReadClient) ---------------------------------------------------
  if (CFG.only.has('upload')) {
    const gw = await startGateway('gateway', false);
    const [row] = await transferRounds([
      { workload: 'upload', contender: 'isapi', groups: gw.groups, clientArgs: ['upload', `${gw.url}/scripts/sink.dll`, '--bytes', String(CFG.uploadBytes)], note: `${CFG.uploadBytes / MiB} MiB, sink sample (ReadClient 64 KiB)` },
      { workload: 'upload', contender: 'node', groups: [{ label: 'front', pids: () => [peer.pid] }], clientArgs: ['upload', `${peerUrl}/sink`, '--bytes', String(CFG.uploadBytes)], note: 'reference: Node peer counting the body' },
      { workload: 'upload', contender: 'proxy3', groups: [{ label: 'front', pids: () => [proxy.pid] }, peerGroup], clientArgs: ['upload', `${proxyUrl}/sink`, '--bytes', String(CFG.uploadBytes)], note: 'reference' },
    ]);
    await stopProc(gw.proc);
    addTarget('upload read with ReadClient', '>= 800 MB/s', `${fmt(row.mbps, 0)} MB/s`, row.errors === 0 && row.mbps! >= 800);
  }

  // ---- PENDING ---------------------------------------------------------------
  if (CFG.only.has('pending')) {
    if (!fs.existsSync(path.join(SAMPLES, 'asyncwrite.so'))) {
      skipped.push(`pending: not yet available (build/samples/asyncwrite.so is not built; the async-I/O work adds it)`);
      addTarget(`${CFG.pendingConnections} concurrent PENDING requests`, 'measure req/s, p99', 'not yet available', undefined);
    } else {
      const gw = await startGateway('gateway', false);
      const url = `${gw.url}/scripts/asyncwrite.dll${CFG.pendingQuery ? `?${CFG.pendingQuery}` : ''}`;
      if (CFG.warmup > 0) await runLoad(url, CFG.pendingConnections, CFG.warmup);
      const s = new Sampler(gw.groups);
      s.begin();
      const r = await runLoad(url, CFG.pendingConnections, CFG.duration);
      const m = s.end();
      rows.push(loadRow('pending', 'isapi', CFG.pendingConnections, r, m, 'asyncwrite sample (HSE_STATUS_PENDING)'));
      await stopProc(gw.proc);
      addTarget(`${CFG.pendingConnections} concurrent PENDING requests`, 'measure req/s, p99 (no errors)', `${fmt(r.rps)} req/s, p99 ${r.p99.toFixed(1)} ms, ${r.errors} errors`, r.errors === 0);
    }
  }

  // ---- slow client -----------------------------------------------------------
  if (CFG.only.has('slow')) {
    const gw = await startGateway('gateway', false);
    // Warm up so the baseline RSS includes a served request, then measure the growth.
    for (let i = 0; i < 20; i++) await httpGet(`${gw.url}/scripts/stream.dll?bytes=1048576`);
    await sleep(300);
    const row = await transferWorkload({
      workload: 'slow-client',
      contender: 'isapi',
      groups: gw.groups,
      clientArgs: ['slow', `${gw.url}/scripts/stream.dll?bytes=${CFG.slowBytes}&chunk=65536`, '--rate', String(CFG.slowRate), '--expect', String(CFG.slowBytes)],
      note: `${CFG.slowBytes / MiB} MiB read at ${CFG.slowRate / 1e6} MB/s; RSS growth gateway ${'{g}'} MiB, bridge ${'{b}'} MiB`,
    });
    row.note = row.note!.replace('{g}', fmt(row.rssGrowthFrontMiB, 1)).replace('{b}', fmt(row.rssGrowthBackMiB, 1));
    await stopProc(gw.proc);
    const g = row.rssGrowthFrontMiB ?? NaN;
    const b = row.rssGrowthBackMiB ?? NaN;
    addTarget(
      `slow client (${CFG.slowBytes / MiB} MiB at ${CFG.slowRate / 1e6} MB/s): RSS growth`,
      '<= 64 MiB each',
      `gateway +${fmt(g, 1)} MiB, bridge +${fmt(b, 1)} MiB`,
      row.errors === 0 && g <= 64 && b <= 64,
    );
  }

  await Promise.all([stopProc(peer), stopProc(proxy), stopProc(proxyNoAgent)]);

  const md = [
    `## isapi-gateway benchmark — ${started.toISOString()}`,
    '',
    `Machine: ${info.nproc} CPUs (${info.cpu}), ${info.memGiB} GiB, Linux ${info.kernel}, Node ${info.node}, ${info.wrk}, ${info.nginx}.`,
    `Load average at start ${info.loadavgAtStart}, at end ${os.loadavg().map((v) => v.toFixed(2)).join(' ')} (anything above ~0.2 means other work shared these CPUs).`,
    `Pinning: ${info.pinning}. Load generator: ${loadTool === 'wrk' ? 'wrk -t1 (Lua report), keep-alive' : 'autocannon'}; transfers: bench/clients.js. ` +
      `${CFG.duration} s per run after ${CFG.warmup} s warm-up. MB = 10^6 bytes. Gateway: --workers ${CFG.workers}, access log off unless "+log".`,
    '',
    table(),
    '',
    targetTable(),
    '',
    ...skipped.map((s) => `- SKIPPED ${s}`),
  ].join('\n');
  process.stdout.write(md + '\n');
  info.loadavgAtEnd = os.loadavg().map((v) => v.toFixed(2)).join(' ');

  Object.assign(results, { started: started.toISOString(), machine: info, config: CFG, loadTool, rows, targets, skipped });
  fs.mkdirSync(CFG.out, { recursive: true });
  const json = JSON.stringify(results, null, 2);
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  fs.writeFileSync(path.join(CFG.out, 'latest.json'), json);
  fs.writeFileSync(path.join(CFG.out, `${stamp}.json`), json);
  fs.writeFileSync(path.join(CFG.out, 'latest.md'), md + '\n');
  log(`results: ${path.relative(ROOT, path.join(CFG.out, 'latest.json'))} (and ${stamp}.json, latest.md)`);
  if (CFG.profileDir) {
    const graphs = writeFlameGraphs(CFG.profileDir);
    log(`flame graphs: ${graphs.length}, an .svg and a .folded beside each .cpuprofile under ${CFG.profileDir}`);
  }
}

function cleanup(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
}

process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});
main().then(
  () => {
    cleanup();
    process.exit(0);
  },
  (err: Error) => {
    log(`failed: ${err.stack ?? err.message}`);
    cleanup();
    process.exit(1);
  },
);
