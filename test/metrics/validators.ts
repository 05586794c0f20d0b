/**
 * External validators for expositions: promtool (text format lint and an OpenMetrics
 * import) and the strict OpenMetrics parser of Debian's python3-prometheus-client.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROMTOOL, PYTHON3, requireTool, runTool } from './tools';

export interface Verdict {
  readonly ok: boolean;
  /** Tool path and its complaints, for assertion messages. */
  readonly report: string;
}

/** `promtool check metrics` (parse + lint) on a Prometheus text exposition. */
export async function promtoolCheckMetrics(body: string): Promise<Verdict> {
  const promtool = requireTool(PROMTOOL);
  const r = await runTool(promtool, ['check', 'metrics'], body);
  const complaints = `${r.stdout}${r.stderr}`.trim();
  return { ok: r.code === 0 && complaints === '', report: `${promtool} check metrics exited ${r.code}: ${complaints}` };
}

const PY_PARSE = `
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
try:
    families = list(text_string_to_metric_families(sys.stdin.read()))
except Exception as e:
    print(type(e).__name__ + ': ' + str(e))
    sys.exit(1)
print(len(families))
`;

/** The strict OpenMetrics 1.0 parser of prometheus_client (python3-prometheus-client). */
export async function pythonOpenMetricsParse(body: string): Promise<Verdict & { families: number }> {
  const python = requireTool(PYTHON3);
  const r = await runTool(python, ['-c', PY_PARSE], body);
  if (r.code !== 0 && /No module named/.test(r.stderr)) {
    throw new Error(`${python} lacks prometheus_client. Install it with: apt-get install -y ${PYTHON3.debianPackage}`);
  }
  return {
    ok: r.code === 0,
    families: r.code === 0 ? Number(r.stdout.trim()) : 0,
    report: `${python} openmetrics parser exited ${r.code}: ${r.stdout}${r.stderr}`.trim(),
  };
}

/**
 * Imports an OpenMetrics exposition with `promtool tsdb create-blocks-from openmetrics`
 * (Prometheus's own OpenMetrics parser). Backfill needs timestamps, so one is appended
 * to every sample line; nothing else changes.
 */
export async function promtoolImportOpenMetrics(body: string): Promise<Verdict> {
  const promtool = requireTool(PROMTOOL);
  const dir = mkdtempSync(join(tmpdir(), 'isapi-om-'));
  try {
    const stamped = body
      .split('\n')
      .map((line) => (line === '' || line.startsWith('#') ? line : `${line} 1700000000`))
      .join('\n');
    writeFileSync(join(dir, 'in.om'), stamped);
    const r = await runTool(promtool, ['tsdb', 'create-blocks-from', 'openmetrics', join(dir, 'in.om'), join(dir, 'out')]);
    return { ok: r.code === 0, report: `${promtool} tsdb create-blocks-from openmetrics exited ${r.code}: ${r.stderr}`.trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Structural checks of our own: one HELP/TYPE per family, unique series, samples under their family. */
export function structuralProblems(body: string, format: 'text' | 'openmetrics'): string[] {
  const problems: string[] = [];
  const meta = new Set<string>();
  const series = new Set<string>();
  let family = '';
  let type = '';
  const lines = body.split('\n');
  if (format === 'openmetrics') {
    if (lines.at(-1) !== '' || lines.at(-2) !== '# EOF') problems.push('does not end with "# EOF\\n"');
  } else if (!body.endsWith('\n')) problems.push('does not end with a newline');
  for (const line of lines) {
    if (line === '' || line === '# EOF') continue;
    const m = /^# (HELP|TYPE|UNIT) (\S+)(?: (.*))?$/.exec(line);
    if (m) {
      const key = `${m[1]} ${m[2]}`;
      if (meta.has(key)) problems.push(`duplicate ${key}`);
      meta.add(key);
      if (m[1] === 'TYPE') {
        family = m[2] ?? '';
        type = m[3] ?? '';
      }
      continue;
    }
    if (line.startsWith('#')) continue;
    const id = line.slice(0, line.lastIndexOf(' '));
    if (series.has(id)) problems.push(`duplicate series ${id}`);
    series.add(id);
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0] ?? '';
    const suffixes: Record<string, string[]> = {
      counter: format === 'openmetrics' ? ['_total'] : [''],
      histogram: ['_bucket', '_sum', '_count'],
      summary: ['', '_sum', '_count'],
    };
    if (!(suffixes[type] ?? ['']).some((s) => family + s === name)) problems.push(`sample ${name} outside its family ${family}`);
  }
  return problems;
}
