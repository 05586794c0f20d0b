import { execFileSync } from 'node:child_process';
import path from 'node:path';

/**
 * Objects from one literal that all survive: V8 decides to pretenure the site, and
 * `--trace-pretenuring-statistics` prints "=> tenure". Run in a separate Node
 * process with and without the bridge's flags module (the build's copy, as the
 * bridge process loads it; npm test builds first). `--predictable` makes V8's GC
 * schedule deterministic: without it, a concurrent marking cycle that lands in the
 * burst now and then resets the sites' feedback, and a plain process made no
 * decision in about 1 run of 20 (it failed CI once that way).
 */
function tenureDecisions(withBridgeFlags: boolean): number {
  const flags = path.join(__dirname, '..', 'dist', 'bridge', 'gc-flags.js');
  const script = [
    withBridgeFlags ? `require(${JSON.stringify(flags)});` : '',
    'const keep = [];',
    'function make(i) { return { i, list: [i, i + 1] }; }',
    'for (let r = 0; r < 3e6; r++) keep.push(make(r));',
  ].join('\n');
  const out = execFileSync(process.execPath, ['--predictable', '--trace-pretenuring-statistics', '-e', script], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return out.split('\n').filter((line) => line.includes('=> tenure')).length;
}

describe('bridge V8 flags', () => {
  test('the bridge process never pretenures an allocation site (a plain Node process does, on the same code)', () => {
    expect(tenureDecisions(false)).toBeGreaterThan(0);
    expect(tenureDecisions(true)).toBe(0);
  });
});
