#!/usr/bin/env node
/**
 * isapi-gateway: serve IIS ISAPI extensions (and proxy to IIS hosts) from Node.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { Logger } from '../bridge/log';
import { stopOnSignals } from '../bridge/stop-on-signals';
import type { LogLevel } from '../bridge/thread-messages';
import { ConfigError, configFromFlags, loadConfigFile, type GatewayConfig } from './config';
import { Gateway } from './gateway';

async function main(): Promise<void> {
  const argv = await yargs(hideBin(process.argv))
    .scriptName('isapi-gateway')
    .usage(
      [
        '$0 [options]',
        '',
        'Serves IIS ISAPI extensions (.dll on Windows, the same source built as .so elsewhere)',
        'through a bridge process, and proxies other URLs to HTTP upstreams such as IIS hosts.',
      ].join('\n'),
    )
    .example('$0 --port 8080 --app /scripts/hello.dll=./hello.so', 'Mount one extension, like a quick IIS virtual directory')
    .example('$0 --config gateway.yaml', 'Apps, bridges, upstreams and routes from a file')
    .option('config', { alias: 'c', type: 'string', describe: 'YAML or JSON configuration file' })
    .option('app', {
      type: 'string',
      array: true,
      describe: 'Mount an extension at a URL path: <url-path>=<library>. PATH_INFO is what follows the path.',
    })
    .option('host', { type: 'string', default: '127.0.0.1', describe: 'Address to listen on (0.0.0.0 for all)' })
    .option('port', { alias: 'p', type: 'number', default: 8080, describe: 'HTTP port' })
    .option('bridge', {
      type: 'string',
      describe: 'Use an already running bridge instead of starting one: unix:/path, pipe:name or tcp://host:port',
    })
    .option('workers', { type: 'number', default: 4, describe: 'Extension threads in the local bridge (like the IIS thread pool)' })
    .option('admin-port', { type: 'number', describe: 'Separate port for /metrics, /healthz and /readyz' })
    .option('access-log', { type: 'boolean', default: true, describe: 'One JSON line per request on stdout' })
    .option('log-level', { choices: ['debug', 'info', 'warn', 'error'] as const, default: 'info' as const })
    .check((a) => {
      if (!a.config && !(a.app && a.app.length > 0)) throw new Error('give --config <file> or at least one --app <url-path>=<library>');
      return true;
    })
    .strict()
    .help()
    .parse();

  const logger = new Logger('gateway', argv['log-level'] as LogLevel);
  /** The configuration file (re-read on SIGHUP) with the command line's overrides applied. */
  const readConfig = (): GatewayConfig => {
    let config: GatewayConfig;
    if (argv.config) {
      config = loadConfigFile(argv.config);
      if (argv.app?.length) config = { ...config, apps: [...config.apps, ...configFromFlags(argv.app, config.server.host, config.server.port).apps] };
    } else {
      config = configFromFlags(argv.app ?? [], argv.host, argv.port);
    }
    if (!argv.config || process.argv.some((a) => a === '--port' || a === '-p' || a.startsWith('--port='))) {
      config.server = { host: argv.host, port: argv.port };
    }
    if (argv['admin-port'] !== undefined) config.admin = { host: config.server.host, port: argv['admin-port'] };
    for (const b of config.bridges) {
      if (argv.bridge) {
        b.mode = 'remote';
        b.address = argv.bridge;
      } else if (!argv.config) {
        b.workers = argv.workers;
      }
    }
    return config;
  };
  const config = readConfig();

  const gateway = await Gateway.start({ config, logger, accessLog: argv['access-log'] });
  const stopper = stopOnSignals(logger, 'draining', () => gateway.close());
  // SIGHUP: re-read the file and apply it without dropping requests; a bad file changes nothing.
  process.on('SIGHUP', () => {
    if (!argv.config || stopper.stopping) {
      logger.warn('SIGHUP ignored', { reason: stopper.stopping ? 'shutting down' : 'no --config file to re-read' });
      return;
    }
    let next: GatewayConfig;
    try {
      next = readConfig();
    } catch (err) {
      logger.error('configuration reload refused; keeping the running configuration', {
        code: (err as ConfigError).code ?? 'ERR_CONFIG',
        error: (err as Error).message,
      });
      return;
    }
    gateway.reload(next).catch((err: Error) =>
      logger.error('configuration reload failed; keeping the running configuration', { error: err.message }),
    );
  });
}

main().catch((err: Error) => {
  if (err instanceof ConfigError) process.stderr.write(`isapi-gateway: configuration error: ${err.message}\n`);
  else process.stderr.write(`isapi-gateway: ${err.message}\n`);
  process.exit(2);
});
