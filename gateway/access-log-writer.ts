/**
 * The gateway's access log on stdout, one JSON line per finished request, written
 * once per turn of the event loop for every request that finished in it. Node
 * writes stdout to a file or a pipe synchronously on Linux, so a write per line
 * was a system call per request (bench/RESULTS.md, session 7). What is still
 * gathered when the process exits is written then; what the turn gathers past
 * FLUSH_BYTES is written at once.
 */
const FLUSH_BYTES = 64 * 1024;

export class AccessLogWriter {
  private pending = '';
  private scheduled = false;
  private exitHooked = false;

  constructor(private readonly out: { write(text: string): unknown }) {}

  write(entry: object): void {
    this.pending += JSON.stringify(entry) + '\n';
    if (this.pending.length >= FLUSH_BYTES) return this.flush();
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
    if (!this.exitHooked) {
      this.exitHooked = true;
      process.once('exit', () => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.pending === '') return;
    const text = this.pending;
    this.pending = '';
    this.out.write(text);
  }
}

/** The one writer for process.stdout, shared by every Gateway in the process. */
export const accessLog = new AccessLogWriter(process.stdout);
