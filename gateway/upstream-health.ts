/**
 * Active health checks: a GET of `path` on every target each interval; a 2xx or 3xx
 * passes. `unhealthyThreshold` consecutive failures take a target out of rotation,
 * `healthyThreshold` consecutive passes bring it back.
 */
import http from 'node:http';
import https from 'node:https';
import type { Balancer, Target } from './upstream-balancer';
import type { HealthCheckConfig } from './upstream-config';

export class HealthChecker {
  private timer: NodeJS.Timeout | undefined;
  private readonly streaks = new Map<Target, { pass: number; fail: number }>();
  private readonly pending = new Set<http.ClientRequest>();

  constructor(
    private readonly balancer: Balancer,
    private readonly config: HealthCheckConfig,
    private readonly ca: string | undefined,
  ) {}

  start(): void {
    const tick = (): void => {
      for (const t of this.balancer.targets) this.check(t);
    };
    tick();
    this.timer = setInterval(tick, this.config.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    for (const req of this.pending) req.destroy();
  }

  private check(t: Target): void {
    const streak = this.streaks.get(t) ?? { pass: 0, fail: 0 };
    this.streaks.set(t, streak);
    let settled = false;
    const verdict = (ok: boolean, detail: string): void => {
      if (settled) return;
      settled = true;
      if (ok) {
        streak.pass++;
        streak.fail = 0;
        if (streak.pass >= this.config.healthyThreshold) this.balancer.setHealthy(t, true, detail);
      } else {
        streak.fail++;
        streak.pass = 0;
        if (streak.fail >= this.config.unhealthyThreshold) this.balancer.setHealthy(t, false, detail);
      }
    };
    const url = new URL(this.config.path, t.url);
    const mod = url.protocol === 'https:' ? https : http;
    // A fresh connection each time (agent: false): the check must prove the target still accepts connections.
    const req = mod.request(url, { method: 'GET', agent: false, ca: this.ca, timeout: this.config.timeoutMs, headers: { 'user-agent': 'isapi-gateway-health' } });
    this.pending.add(req);
    req.on('response', (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      verdict(status >= 200 && status < 400, `GET ${url.pathname} answered ${status}`);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${this.config.timeoutMs} ms`)));
    req.on('error', (err) => verdict(false, `GET ${url.pathname} failed: ${err.message}`));
    req.on('close', () => this.pending.delete(req));
    req.end();
  }
}
