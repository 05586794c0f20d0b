/**
 * Test harness: real gateway processes (dist/gateway/cli.js) with their real
 * bridge processes and the C samples built by `npm run build`, driven by a real
 * HTTP client. Nothing here imitates the thing under test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..');
/**
 * Which bridge the suite exercises: `native` (Linux node + build/samples/*.so) or, with
 * ISAPI_TEST_BRIDGE=wine, `wine` (Windows node.exe under Wine + build/samples-win/*.dll,
 * test/wine/run.sh). Same tests, same expectations.
 */
export const BRIDGE_MODE: 'native' | 'wine' = process.env.ISAPI_TEST_BRIDGE === 'wine' ? 'wine' : 'native';
/** File extension of the sample libraries in this mode. */
/** Windows DLLs under Wine, and natively on Windows (the CI's windows-latest job). */
const WINDOWS_BUILD = BRIDGE_MODE === 'wine' || process.platform === 'win32';
export const LIB_EXT = WINDOWS_BUILD ? '.dll' : '.so';
export const SAMPLES = path.join(ROOT, 'build', WINDOWS_BUILD ? 'samples-win' : 'samples');
export const GATEWAY_CLI = path.join(ROOT, 'dist', 'gateway', 'cli.js');
export const BRIDGE_CLI = path.join(ROOT, 'dist', 'bridge', 'cli.js');

export function sample(name: string): string {
  const file = path.join(SAMPLES, `${name}${LIB_EXT}`);
  if (!fs.existsSync(file)) throw new Error(`${file} missing: run "npm run build${BRIDGE_MODE === 'wine' ? ' && npm run build:win' : ''}" first`);
  return file;
}

/** A path as the bridge sees and reports it: unchanged natively, Z:\... under Wine. */
export function bridgePath(p: string): string {
  return BRIDGE_MODE === 'wine' ? 'Z:' + path.resolve(p).replace(/\//g, '\\') : p;
}

export function tempDir(prefix = 'isapi-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface AccessLine {
  requestId: string;
  app: string;
  method: string;
  path: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
  logData?: string;
  appendedLog?: string;
  error?: string;
  [key: string]: unknown;
}

export class RunningGateway {
  readonly stderr: string[] = [];
  readonly access: AccessLine[] = [];
  url = '';
  private exited: Promise<number | null>;

  constructor(readonly proc: ChildProcess) {
    this.exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
    let errBuf = '';
    proc.stderr!.on('data', (d: Buffer) => {
      errBuf += d.toString();
      let nl: number;
      while ((nl = errBuf.indexOf('\n')) >= 0) {
        this.stderr.push(errBuf.slice(0, nl));
        errBuf = errBuf.slice(nl + 1);
      }
    });
    let outBuf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      outBuf += d.toString();
      let nl: number;
      while ((nl = outBuf.indexOf('\n')) >= 0) {
        const line = outBuf.slice(0, nl);
        outBuf = outBuf.slice(nl + 1);
        try {
          this.access.push(JSON.parse(line) as AccessLine);
        } catch {
          /* not an access line */
        }
      }
    });
  }

  /** Structured log lines on stderr (gateway and its bridges). */
  logs(): Array<Record<string, unknown>> {
    return this.stderr.flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }

  async waitForLog(pred: (l: Record<string, unknown>) => boolean, timeoutMs = 10000): Promise<Record<string, unknown>> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.logs().find(pred);
      if (hit) return hit;
      if (Date.now() > until) throw new Error(`no matching log line within ${timeoutMs} ms; stderr:\n${this.stderr.join('\n')}`);
      await sleep(20);
    }
  }

  async waitForAccess(pred: (l: AccessLine) => boolean, timeoutMs = 10000): Promise<AccessLine> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.access.find(pred);
      if (hit) return hit;
      if (Date.now() > until) throw new Error(`no matching access line within ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  /** PIDs of the bridge processes this gateway started. */
  bridgePids(): number[] {
    const children = childPids(this.proc.pid!);
    // Under Wine the gateway's child is the launcher (gateway/wine-bridge.ts); the bridge is its child.
    return BRIDGE_MODE === 'wine' ? children.flatMap((pid) => childPids(pid)) : children;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return this.exited;
  }

  wait(): Promise<number | null> {
    return this.exited;
  }
}

export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      /* process ended */
    }
  }
  return out;
}

/** Paths of the files process `pid` has open (Linux /proc). */
export function openFiles(pid: number): string[] {
  const dir = `/proc/${pid}/fd`;
  const out: string[] = [];
  for (const fd of fs.readdirSync(dir)) {
    try {
      out.push(fs.readlinkSync(path.join(dir, fd)));
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

/** Resident set size of a process in bytes (Linux). */
export function rssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

/** Starts `isapi-gateway` with the given arguments on a free port and waits until it listens. */
export async function startGateway(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunningGateway> {
  const proc = spawn(process.execPath, [GATEWAY_CLI, '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...(BRIDGE_MODE === 'wine' ? { ISAPI_BRIDGE_RUNTIME: 'wine' } : {}), ...env },
  });
  const gw = new RunningGateway(proc);
  const line = await Promise.race([
    gw.waitForLog((l) => l.msg === 'gateway listening', 20000),
    gw.wait().then((code) => {
      throw new Error(`gateway exited with ${code} during start-up:\n${gw.stderr.join('\n')}`);
    }),
  ]);
  gw.url = String(line.url);
  return gw;
}

/** Writes a YAML/JSON config into a temp dir and returns its path. */
export function writeConfig(config: unknown, name = 'gateway.json'): string {
  const file = path.join(tempDir(), name);
  fs.writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  return file;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  statusMessage: string;
}

export const keepAliveAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export function request(
  url: string,
  opts: { method?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer | string | Buffer[]; agent?: http.Agent | false } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent ?? keepAliveAgent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: Buffer.concat(chunks),
          statusMessage: res.statusMessage ?? '',
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    if (Array.isArray(opts.body)) {
      for (const b of opts.body) req.write(b);
      req.end();
    } else {
      req.end(opts.body);
    }
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The bytes the stream sample produces: byte i is 'a' + i % 26. */
export function streamPattern(offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = 97 + ((offset + i) % 26);
  return b;
}
