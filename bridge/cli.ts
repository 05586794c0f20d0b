#!/usr/bin/env node
/**
 * isapi-bridge: hosts ISAPI extensions for an isapi-gateway. Usually started
 * and supervised by the gateway; run it by hand for a bridge on another host.
 */
import fs from 'node:fs';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { Logger } from './log';
import { startBridge, type BridgeAppConfig } from './main';

interface BridgeFileConfig {
  apps?: BridgeAppConfig[];
  threads?: number;
  siteRoot?: string;
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
    .option('secret-file', { type: 'string', describe: 'File holding the shared secret TCP gateways must present' })
    .option('site-root', { type: 'string', describe: 'Physical directory URLs outside any app map to' })
    .strict()
    .help()
    .parse();

  const logger = new Logger('bridge');
  let file: BridgeFileConfig = {};
  if (argv.config) {
    try {
      file = JSON.parse(fs.readFileSync(argv.config, 'utf8')) as BridgeFileConfig;
    } catch (err) {
      throw new Error(`${argv.config}: ${(err as Error).message}`);
    }
  }
  const apps = [...(file.apps ?? []), ...(argv.app ?? []).map(parseAppFlag)];
  const secret = argv['secret-file'] ? fs.readFileSync(argv['secret-file'], 'utf8').trim() : undefined;
  if (argv.listen.startsWith('tcp://') && !secret) {
    throw new Error('--listen tcp://... needs --secret-file: a bridge on the network must authenticate its gateway');
  }
  const bridge = await startBridge({
    listen: argv.listen,
    apps,
    threads: file.threads ?? argv.workers,
    secret,
    siteRoot: argv['site-root'] ?? file.siteRoot,
    logger,
    // SHUTDOWN from the supervising gateway: the graceful stop SIGTERM cannot give under Wine.
    onShutdownRequest: () => stop('SHUTDOWN'),
  });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    bridge.stop().then(
      () => process.exit(0),
      (err: Error) => {
        logger.error('stop failed', { error: err.message });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // A supervising gateway that dies closes our stdin pipe: do not outlive it.
  if (process.env.ISAPI_BRIDGE_SUPERVISED === '1') process.stdin.on('end', () => stop('parent-exit')).resume();
}

main().catch((err: Error) => {
  process.stderr.write(`isapi-bridge: ${err.message}\n`);
  process.exit(2);
});
