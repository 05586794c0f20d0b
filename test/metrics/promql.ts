/**
 * Just enough PromQL lexing to list the metric names an expression selects, and the
 * Grafana variable substitution used to evaluate dashboard queries outside Grafana.
 */

const KEYWORDS: ReadonlySet<string> = new Set([
  'and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset',
  'inf', 'nan', 'atan2',
]);

/** Metric names selected by a PromQL expression (bare identifiers that are not functions or keywords). */
export function metricNamesInExpr(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // string literals
    .replace(/\{[^{}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, ' ') // grouping label lists
    .replace(/\boffset\s+-?[0-9a-z_$]+/gi, ' ')
    .replace(/@\s*\S+/g, ' ');
  const names = new Set<string>();
  const token = /(\d+(?:\.\d*)?(?:e[+-]?\d+)?|0x[0-9a-f]+)|([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/gi;
  for (let m = token.exec(s); m !== null; m = token.exec(s)) {
    const ident = m[2];
    if (ident === undefined || m[3] !== undefined) continue; // number or function call
    if (KEYWORDS.has(ident.toLowerCase())) continue;
    names.add(ident);
  }
  return [...names];
}

/** The metric named by a Grafana `label_values(metric{...}, label)` variable query. */
export function metricInLabelValuesQuery(query: string): string | undefined {
  return /label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(query)?.[1];
}

export interface GrafanaVariables {
  /** Regex for each `$name` / `${name}` multi-value variable; `.*` is Grafana's All. */
  readonly values?: Readonly<Record<string, string>>;
  /** Substitute for $__rate_interval, $__interval and $__range. */
  readonly interval?: string;
}

/** Replaces Grafana variables in a query the way Grafana would with "All" selected. */
export function substituteGrafanaVariables(expr: string, vars: GrafanaVariables = {}): string {
  const interval = vars.interval ?? '1m';
  return expr
    .replace(/\$(?:\{__rate_interval\}|__rate_interval)/g, interval)
    .replace(/\$(?:\{__interval\}|__interval)/g, interval)
    .replace(/\$(?:\{__range\}|__range)/g, interval)
    .replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (_m, a: string | undefined, b: string | undefined) => {
      const name = a ?? b ?? '';
      return vars.values?.[name] ?? '.*';
    });
}
