#!/usr/bin/env node
/**
 * isapi-bridge: hosts ISAPI extensions for an isapi-gateway. Usually started
 * and supervised by the gateway; run it by hand for a bridge on another host.
 */
// First: V8 flags must be set before the code they are about runs.
import './gc-flags';
import fs from 'node:fs';
import path from 'node:path';
import tlsModule from 'node:tls';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { Logger } from './log';
import { stopOnSignals } from './stop-on-signals';
import { defaultShimPath, startBridge, type BridgeAppConfig, type BridgeOptions } from './main';
import { enterBatchScheduling, type SchedBatchResult } from './sched-batch';

interface BridgeFileConfig {
  apps?: BridgeAppConfig[];
  threads?: number;
  siteRoot?: string;
  /** See --sched-batch. */
  schedBatch?: boolean;
  /** See --running-threads. */
  runningThreads?: number;
}

function parseAppFlag(spec: string): BridgeAppConfig {
  const eq = spec.indexOf('=');
  if (eq <= 0 || eq === spec.length - 1) {
    throw new Error(`--app ${JSON.stringify(spec)}: expected <mount>=<library>, e.g. /scripts/hello.dll=./hello.so`);
  }
  const mount = spec.slice(0, eq);
  const library = spec.slice(eq + 1);
  return { name: path.posix.basename(mount), mount, library };
}

function readPem(flag: string, file: string, marker: RegExp, what: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`--${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!marker.test(text)) throw new Error(`--${flag} ${file}: expected ${what}`);
  return text;
}

/** TLS material for a tcp:// listener, or undefined without --tls-cert/--tls-key. */
function tlsFromFlags(listen: string, cert?: string, key?: string, ca?: string, requireClientCert?: boolean): BridgeOptions['tls'] {
  if (!cert && !key && !ca && !requireClientCert) return undefined;
  if (!listen.startsWith('tcp://')) throw new Error('--tls-* applies to --listen tcp://... only (Unix sockets and named pipes are local)');
  if (!cert || !key) throw new Error('TLS needs both --tls-cert and --tls-key');
  if (requireClientCert && !ca) throw new Error('--tls-require-client-cert needs --tls-ca (the CA that signs gateway certificates)');
  if (ca && !requireClientCert) throw new Error('--tls-ca is only used to verify gateway client certificates: add --tls-require-client-cert');
  const tls: NonNullable<BridgeOptions['tls']> = {
    cert: readPem('tls-cert', cert, /-----BEGIN CERTIFICATE-----/, 'a PEM certificate'),
    key: readPem('tls-key', key, /-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'a PEM private key'),
    ...(ca ? { ca: readPem('tls-ca', ca, /-----BEGIN CERTIFICATE-----/, 'PEM CA certificates'), requireClientCert: true } : {}),
  };
  try {
    tlsModule.createSecureContext(tls);
  } catch (err) {
    throw new Error(`--tls-cert/--tls-key: ${(err as Error).message}`);
  }
  return tls;
}

/** --running-threads (or the config file's runningThreads): a whole number of at least 1. */
function runningThreadsOption(value: number | undefined): Pick<BridgeOptions, 'runningThreads'> {
  if (value === undefined) return {};
  if (!Number.isInteger(value) || value < 1) throw new Error(`--running-threads ${String(value)}: expected a whole number of threads, at least 1`);
  return { runningThreads: value };
}

async function main(): Promise<void> {
  const argv = await yargs(hideBin(process.argv))
    .scriptName('isapi-bridge')
    .usage('$0 --listen <address> (--config <bridge.json> | --app <mount>=<library> ...)')
    .option('listen', {
      type: 'string',
      demandOption: true,
      describe: 'Where gateways connect: unix:/path.sock, pipe:name (\\\\.\\pipe\\name) or tcp://host:port',
    })
    .option('config', { type: 'string', describe: 'JSON file with {"apps": [...], "threads": n}' })
    .option('app', { type: 'string', array: true, describe: 'Mount an extension: <url-path>=<library>' })
    .option('workers', { type: 'number', describe: 'Extension threads, like the IIS worker thread pool', default: 4 })
    .option('running-threads', {
      type: 'number',
      describe: 'Extension threads running at once before a fast app\'s requests wait for one of them instead of waking another (default: the CPUs the bridge may use)',
    })
    .option('secret-file', { type: 'string', describe: 'File holding the shared secret TCP gateways must present' })
    .option('site-root', { type: 'string', describe: 'Physical directory URLs outside any app map to' })
    .option('sched-batch', {
      type: 'boolean',
      describe: 'Run the bridge threads under SCHED_BATCH on Linux (fewer context switches per request); --no-sched-batch keeps the normal policy',
    })
    .option('tls-cert', { type: 'string', describe: 'PEM certificate (chain): tcp:// listens with TLS (needs --tls-key)' })
    .option('tls-key', { type: 'string', describe: 'PEM private key of --tls-cert' })
    .option('tls-ca', { type: 'string', describe: 'PEM CA that signs gateway client certificates (with --tls-require-client-cert)' })
    .option('tls-require-client-cert', { type: 'boolean', describe: 'Mutual TLS: refuse gateways without a client certificate signed by --tls-ca' })
    .strict()
    .help()
    .parse();

  const logger = new Logger('bridge');
  // Apps with relayCallbacks run HttpExtensionProc on libuv's thread pool, which file reads
  // (TransmitFile) share: size it before anything uses it (its default is 4).
  process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, argv.workers + 4));
  let file: BridgeFileConfig = {};
  if (argv.config) {
    try {
      file = JSON.parse(fs.readFileSync(argv.config, 'utf8')) as BridgeFileConfig;
    } catch (err) {
      throw new Error(`${argv.config}: ${(err as Error).message}`);
    }
  }
  const apps = [...(file.apps ?? []), ...(argv.app ?? []).map(parseAppFlag)];
  // Before the extension threads start: they inherit the policy from this thread.
  if (argv['sched-batch'] ?? file.schedBatch ?? true) reportSchedBatch(logger, enterBatchScheduling(defaultShimPath()));
  const secret = argv['secret-file'] ? fs.readFileSync(argv['secret-file'], 'utf8').trim() : undefined;
  if (argv.listen.startsWith('tcp://') && !secret) {
    throw new Error('--listen tcp://... needs --secret-file: a bridge on the network must authenticate its gateway');
  }
  const tls = tlsFromFlags(argv.listen, argv['tls-cert'], argv['tls-key'], argv['tls-ca'], argv['tls-require-client-cert']);
  const bridge = await startBridge({
    listen: argv.listen,
    apps,
    threads: file.threads ?? argv.workers,
    ...runningThreadsOption(argv['running-threads'] ?? file.runningThreads),
    secret,
    ...(tls ? { tls } : {}),
    siteRoot: argv['site-root'] ?? file.siteRoot,
    logger,
    // SHUTDOWN from the supervising gateway: the graceful stop SIGTERM cannot give under Wine.
    onShutdownRequest: () => stopper.stop('SHUTDOWN'),
  });

  const stopper = stopOnSignals(logger, 'stopping', () => bridge.stop());
  // A supervising gateway that dies closes our stdin pipe: do not outlive it.
  if (process.env.ISAPI_BRIDGE_SUPERVISED === '1') process.stdin.on('end', () => stopper.stop('parent-exit')).resume();
}

function reportSchedBatch(logger: Logger, result: SchedBatchResult): void {
  if (result.kind === 'moved') logger.info('bridge threads run under SCHED_BATCH', { threads: result.threads });
  else if (result.kind === 'failed') logger.warn('could not move the bridge threads to SCHED_BATCH; the normal policy stays', { errno: result.errno });
}

main().catch((err: Error) => {
  process.stderr.write(`isapi-bridge: ${err.message}\n`);
  process.exit(2);
});
