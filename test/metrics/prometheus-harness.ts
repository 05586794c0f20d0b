/**
 * Runs a real Prometheus server for a test: free loopback port, temporary config and
 * TSDB directory, scrapes the given loopback targets every second, evaluates PromQL
 * through the HTTP API, and shuts down (SIGTERM, then SIGKILL) removing its files.
 *
 * Reusable against any /metrics endpoint (the gateway's included):
 *
 *   const prom = await PrometheusHarness.start({ targets: [{ job: 'gw', address: '127.0.0.1:8080' }] });
 *   try { await prom.waitForScrapes(3); const r = await prom.query('up'); } finally { await prom.stop(); }
 *
 * Needs the `prometheus` binary (Debian package `prometheus`); start() throws with the
 * install command when it is missing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackPort } from '../../bridge/transport';
import { PROMETHEUS, requireTool } from './tools';

export interface ScrapeTarget {
  readonly job: string;
  /** `host:port`; must be a loopback address. */
  readonly address: string;
  readonly metricsPath?: string;
  /** URL query parameters Prometheus adds to each scrape. */
  readonly params?: Readonly<Record<string, readonly string[]>>;
  /** Extra target labels (e.g. `namespace`, as Kubernetes service discovery would add). */
  readonly labels?: Readonly<Record<string, string>>;
}

export interface PrometheusHarnessOptions {
  readonly targets: readonly ScrapeTarget[];
  readonly scrapeIntervalSeconds?: number;
  /** Path of the prometheus binary; found on PATH by default. */
  readonly binary?: string;
  /** How long to wait for /-/ready. Default 30 s. */
  readonly startTimeoutMs?: number;
}

export interface ActiveTarget {
  readonly labels: Record<string, string>;
  readonly scrapeUrl: string;
  readonly health: 'up' | 'down' | 'unknown';
  readonly lastError: string;
  readonly lastScrape: string;
}

export interface Sample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

export interface QueryResult {
  readonly resultType: string;
  readonly result: Sample[] | [number, string];
}

export interface Evaluation {
  readonly expr: string;
  /** The query succeeded and returned at least one series. */
  readonly ok: boolean;
  readonly series: number;
  /** Series whose (last) value is a finite number, not NaN or ±Inf. */
  readonly finite: number;
  readonly error?: string;
}

interface ApiResponse<T> {
  status: 'success' | 'error';
  data: T;
  errorType?: string;
  error?: string;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\]):\d+$/;


const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class PrometheusHarness {
  readonly url: string;
  readonly binary: string;
  readonly #dir: string;
  readonly #child: ChildProcess;
  #log = '';
  #exited: Promise<number | null>;
  #stopped = false;

  private constructor(url: string, binary: string, dir: string, child: ChildProcess) {
    this.url = url;
    this.binary = binary;
    this.#dir = dir;
    this.#child = child;
    const append = (chunk: Buffer): void => {
      this.#log = (this.#log + chunk.toString('utf8')).slice(-20_000);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    this.#exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  static async start(options: PrometheusHarnessOptions): Promise<PrometheusHarness> {
    for (const t of options.targets) {
      if (!LOOPBACK.test(t.address)) throw new Error(`scrape target ${t.address} is not a loopback address`);
    }
    const binary = options.binary ?? requireTool(PROMETHEUS);
    const interval = `${options.scrapeIntervalSeconds ?? 1}s`;
    const dir = mkdtempSync(join(tmpdir(), 'isapi-prometheus-'));
    const config = {
      global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
      scrape_configs: options.targets.map((t) => ({
        job_name: t.job,
        metrics_path: t.metricsPath ?? '/metrics',
        ...(t.params ? { params: t.params } : {}),
        static_configs: [{ targets: [t.address], labels: { ...(t.labels ?? {}) } }],
      })),
    };
    const configFile = join(dir, 'prometheus.yml');
    writeFileSync(configFile, JSON.stringify(config, null, 2)); // JSON is YAML

    const port = await freeLoopbackPort();
    const child = spawn(
      binary,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=1h',
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const harness = new PrometheusHarness(`http://127.0.0.1:${port}`, binary, dir, child);
    try {
      await harness.#waitReady(options.startTimeoutMs ?? 30_000);
    } catch (error) {
      await harness.stop();
      throw error;
    }
    return harness;
  }

  /** Recent stdout/stderr of the server, for failure messages. */
  get log(): string {
    return this.#log;
  }

  async #waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exitCode: number | null | undefined;
    void this.#exited.then((code) => (exitCode = code));
    while (Date.now() < deadline) {
      if (exitCode !== undefined) throw new Error(`${this.binary} exited with ${exitCode} before it was ready:\n${this.#log}`);
      try {
        const res = await fetch(`${this.url}/-/ready`);
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await delay(100);
    }
    throw new Error(`${this.binary} not ready within ${timeoutMs} ms:\n${this.#log}`);
  }

  async #api<T>(path: string, params: Record<string, string> = {}): Promise<T> {
    const url = new URL(`/api/v1/${path}`, this.url);
    for (const [k, v] of Object.entries(params)) url.searchParams.append(k, v);
    const res = await fetch(url);
    const body = (await res.json()) as ApiResponse<T>;
    if (body.status !== 'success') throw new Error(`${path}: ${body.errorType ?? ''} ${body.error ?? ''}`.trim());
    return body.data;
  }

  async targets(): Promise<ActiveTarget[]> {
    const data = await this.#api<{ activeTargets: ActiveTarget[] }>('targets', { state: 'active' });
    return data.activeTargets;
  }

  /** Instant query at the current time. */
  async query(expr: string): Promise<QueryResult> {
    return this.#api<QueryResult>('query', { query: expr });
  }

  /** Values of `label` on series matching `match` (what Grafana's label_values() shows). */
  async labelValues(label: string, match: string): Promise<string[]> {
    return this.#api<string[]>(`label/${encodeURIComponent(label)}/values`, { 'match[]': match });
  }

  /**
   * Waits until every target has been scraped successfully at least `count` times.
   * Fails early with the target's lastError when a scrape is rejected (for example an
   * exposition Prometheus cannot parse).
   */
  async waitForScrapes(count: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      const targets = await this.targets();
      const down = targets.find((t) => t.health === 'down');
      if (down) throw new Error(`scrape of ${down.scrapeUrl} failed: ${down.lastError}`);
      if (targets.length > 0 && targets.every((t) => t.health === 'up')) {
        const r = await this.query('min(sum_over_time(up[10m]))'); // successful scrapes
        const samples = Array.isArray(r.result) ? (r.result as Sample[]) : [];
        const scrapes = Number(samples[0]?.value[1] ?? 0);
        last = `${scrapes} scrapes`;
        if (scrapes >= count) return;
      } else {
        last = targets.map((t) => `${t.scrapeUrl}: ${t.health}`).join(', ');
      }
      await delay(250);
    }
    throw new Error(`targets not scraped ${count} times within ${timeoutMs} ms (${last})`);
  }

  /** Evaluates each expression; ok when the query succeeds and returns at least one series. */
  async evaluate(exprs: readonly string[]): Promise<Evaluation[]> {
    const out: Evaluation[] = [];
    for (const expr of exprs) {
      try {
        const r = await this.query(expr);
        const values =
          r.resultType === 'vector'
            ? (r.result as Sample[]).map((s) => s.value[1])
            : r.resultType === 'scalar'
              ? [(r.result as [number, string])[1]]
              : [];
        const finite = values.filter((v) => Number.isFinite(Number(v))).length;
        out.push({ expr, ok: values.length > 0, series: values.length, finite });
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        out.push({ expr, ok: false, series: 0, finite: 0, error: message });
      }
    }
    return out;
  }

  /** Stops the server (SIGTERM, SIGKILL after 5 s) and removes its directory. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const killed = await Promise.race([
        this.#exited.then(() => true),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 5000))),
      ]);
      clearTimeout(timer);
      if (!killed) {
        this.#child.kill('SIGKILL');
        await this.#exited;
      }
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
