/**
 * The targets of one upstream and which one gets the next request: round-robin or
 * least-in-flight over the targets that are both healthy (active checks) and not
 * ejected (passive: consecutive failed requests).
 */
import type { Logger } from '../bridge/log';
import type { BalanceStrategy, PassiveEjectionConfig } from './upstream-config';

export class Target {
  readonly url: URL;
  /** `host:port`, the label logs and metrics use. */
  readonly label: string;
  inFlight = 0;
  /** Active health-check verdict; targets start healthy so traffic flows before the first check. */
  healthy = true;
  consecutiveFailures = 0;
  ejectedUntil = 0;

  constructor(href: string) {
    this.url = new URL(href);
    const port = this.url.port || (this.url.protocol === 'https:' ? '443' : '80');
    this.label = `${this.url.hostname}:${port}`;
  }

  available(now: number): boolean {
    return this.healthy && now >= this.ejectedUntil;
  }
}

export class Balancer {
  readonly targets: Target[];
  private cursor = 0;

  constructor(
    private readonly upstream: string,
    hrefs: readonly string[],
    private readonly strategy: BalanceStrategy,
    private readonly passive: PassiveEjectionConfig,
    private readonly logger: Logger,
  ) {
    this.targets = hrefs.map((h) => new Target(h));
  }

  /** The next target, avoiding `exclude` (targets that already failed this request) when another is available. */
  pick(exclude: ReadonlySet<Target> = new Set()): Target | undefined {
    const now = Date.now();
    const candidates = this.targets.filter((t) => t.available(now));
    const fresh = candidates.filter((t) => !exclude.has(t));
    const pool = fresh.length > 0 ? fresh : candidates;
    if (pool.length === 0) return undefined;
    const start = this.cursor++;
    if (this.strategy === 'round-robin') return pool[start % pool.length];
    // Least in flight; ties rotate so equal targets share the load.
    let best: Target | undefined;
    for (let i = 0; i < pool.length; i++) {
      const t = pool[(start + i) % pool.length]!;
      if (!best || t.inFlight < best.inFlight) best = t;
    }
    return best;
  }

  /** A request got a response (any status): the target is reachable. */
  succeeded(t: Target): void {
    t.consecutiveFailures = 0;
  }

  /** A request failed in transport (connect error, reset, timeout). */
  failed(t: Target, reason: string): void {
    t.consecutiveFailures++;
    const limit = this.passive.failures;
    if (limit > 0 && t.consecutiveFailures >= limit && Date.now() >= t.ejectedUntil) {
      t.ejectedUntil = Date.now() + this.passive.ejectMs;
      // After the ejection, one more failure ejects it again; a success clears the count.
      t.consecutiveFailures = limit - 1;
      this.logger.warn('upstream target ejected', { upstream: this.upstream, target: t.label, ejectMs: this.passive.ejectMs, reason });
    }
  }

  setHealthy(t: Target, healthy: boolean, detail: string): void {
    if (t.healthy === healthy) return;
    t.healthy = healthy;
    if (healthy) t.ejectedUntil = 0;
    const fields = { upstream: this.upstream, target: t.label, detail };
    if (healthy) this.logger.info('upstream target healthy', fields);
    else this.logger.warn('upstream target unhealthy', fields);
  }
}
