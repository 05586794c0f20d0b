/**
 * One-line JSON logs on stderr, shared by gateway and bridge processes.
 * Operators ship them with the container runtime; stdout stays free for the
 * access log.
 */
import type { LogLevel } from './thread-messages';

export type LogFields = Record<string, string | number | boolean | undefined>;

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export class Logger {
  constructor(
    private readonly component: string,
    private level: LogLevel = (process.env.ISAPI_LOG_LEVEL as LogLevel | undefined) ?? 'info',
    private readonly sink: (line: string) => void = (line) => process.stderr.write(line),
  ) {}

  setLevel(level: LogLevel): void {
    this.level = level;
  }

  enabled(level: LogLevel): boolean {
    return ORDER[level] >= ORDER[this.level];
  }

  log(level: LogLevel, msg: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    const entry: LogFields = { time: new Date().toISOString(), level, component: this.component, msg, ...fields };
    this.sink(JSON.stringify(entry) + '\n');
  }

  debug(msg: string, fields?: LogFields): void {
    this.log('debug', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.log('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.log('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.log('error', msg, fields);
  }
}
