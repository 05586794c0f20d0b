/**
 * Flame graphs from V8 CPU profiles (`node --cpu-prof`, or `BENCH_PROFILE=DIR npm run bench`,
 * which writes one profile per thread of every gateway and bridge it starts).
 *
 *   node dist/bench/flame.js DIR|FILE.cpuprofile ...
 *
 * Next to each profile it writes `NAME.folded` (one line per stack, `frame;frame;frame µs`,
 * the format Brendan Gregg's flamegraph.pl and speedscope read) and `NAME.svg`, a
 * self-contained flame graph (root at the bottom, width = CPU time, hover for numbers),
 * and it prints the frames with the most self time. Idle time is left out: the graph
 * shows only what the thread spent CPU on.
 */
import fs from 'node:fs';
import path from 'node:path';

/** The parts of V8's `.cpuprofile` JSON this reads. */
export interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }>;
  samples: number[];
  /** Microseconds before each sample. */
  timeDeltas: number[];
}

/** Stack (frames from the outermost, joined by ';') -> microseconds of CPU with that stack on top. */
export type FoldedStacks = Map<string, number>;

const IDLE = '(idle)';
const ROOT = '(root)';

function frameName(frame: CpuProfile['nodes'][number]['callFrame']): string {
  const name = frame.functionName || '(anonymous)';
  // ';' separates frames in the folded format.
  if (!frame.url) return name.replaceAll(';', ',');
  return `${name} ${path.basename(frame.url)}:${frame.lineNumber + 1}`.replaceAll(';', ',');
}

/** Folds a profile: each sample's stack gets the time until the next sample. */
export function foldCpuProfile(profile: CpuProfile): FoldedStacks {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stackOf = new Map<number, string | undefined>();
  const stack = (id: number): string | undefined => {
    if (stackOf.has(id)) return stackOf.get(id);
    const frames: string[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const name = frameName(byId.get(at)!.callFrame);
      if (name !== ROOT) frames.push(name);
    }
    frames.reverse();
    const folded = frames.length === 0 || frames[frames.length - 1] === IDLE ? undefined : frames.join(';');
    stackOf.set(id, folded);
    return folded;
  };
  const folded: FoldedStacks = new Map();
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    const us = timeDeltas[i + 1] ?? 0;
    const key = stack(samples[i]!);
    if (key === undefined || us <= 0) continue;
    folded.set(key, (folded.get(key) ?? 0) + us);
  }
  return folded;
}

/** Folded stacks as text, heaviest first. */
export function foldedText(folded: FoldedStacks): string {
  return [...folded].sort((a, b) => b[1] - a[1]).map(([stack, us]) => `${stack} ${Math.round(us)}`).join('\n') + '\n';
}

/** The frames with the most self time (the top of their stacks), heaviest first. */
export function selfTimes(folded: FoldedStacks): Array<[frame: string, us: number]> {
  const self = new Map<string, number>();
  for (const [stack, us] of folded) {
    const leaf = stack.slice(stack.lastIndexOf(';') + 1);
    self.set(leaf, (self.get(leaf) ?? 0) + us);
  }
  return [...self].sort((a, b) => b[1] - a[1]);
}

interface Frame {
  name: string;
  us: number;
  children: Map<string, Frame>;
}

function toTree(folded: FoldedStacks): Frame {
  const root: Frame = { name: 'all', us: 0, children: new Map() };
  for (const [stack, us] of folded) {
    root.us += us;
    let at = root;
    for (const name of stack.split(';')) {
      let next = at.children.get(name);
      if (!next) at.children.set(name, (next = { name, us: 0, children: new Map() }));
      next.us += us;
      at = next;
    }
  }
  return root;
}

const WIDTH = 1200;
const ROW = 16;
const CHAR = 6.5;

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}

/**
 * Blue for JavaScript files (ours and npm packages), orange for Node's own JavaScript
 * (its internal modules have no `.js` in their names), red for native frames (GC,
 * syscalls, V8 builtins), each shade varied per name so neighbours stand apart.
 */
function colour(name: string): string {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  const v = h % 40;
  if (/ \S+\.js:\d+$/.test(name)) return `rgb(${80 + v},${140 + v},${215 + (v % 40)})`;
  if (/ \S+:\d+$/.test(name)) return `rgb(${215 + (v % 40)},${130 + v},60)`;
  return `rgb(${215 + (v % 40)},${70 + v},${60 + v})`;
}

/** A self-contained SVG flame graph of `folded`. */
export function flameSvg(folded: FoldedStacks, title: string): string {
  const root = toTree(folded);
  const rects: string[] = [];
  let depthMax = 0;
  const total = root.us || 1;
  const draw = (f: Frame, x: number, depth: number): void => {
    const w = (f.us / total) * WIDTH;
    if (w < 0.3) return;
    depthMax = Math.max(depthMax, depth);
    rects.push(
      `<g><title>${escapeXml(f.name)}: ${(f.us / 1000).toFixed(1)} ms, ${((f.us / total) * 100).toFixed(2)} %</title>` +
        `<rect x="${x.toFixed(2)}" y="{Y${depth}}" width="${w.toFixed(2)}" height="${ROW - 1}" fill="${colour(f.name)}"/>` +
        (w > 3 * CHAR ? `<text x="${(x + 3).toFixed(2)}" y="{T${depth}}">${escapeXml(f.name.slice(0, Math.floor((w - 6) / CHAR)))}</text>` : '') +
        '</g>',
    );
    let cx = x;
    for (const c of [...f.children.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      draw(c, cx, depth + 1);
      cx += (c.us / total) * WIDTH;
    }
  };
  draw(root, 0, 0);
  const height = (depthMax + 1) * ROW + 40;
  // Root at the bottom: row `depth` sits depth rows above the last one.
  const body = rects
    .join('\n')
    .replace(/\{Y(\d+)\}/g, (_, d: string) => String(height - 10 - (Number(d) + 1) * ROW))
    .replace(/\{T(\d+)\}/g, (_, d: string) => String(height - 10 - (Number(d) + 1) * ROW + 11));
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="monospace" font-size="10">`,
    `<rect width="100%" height="100%" fill="#fdfdf6"/>`,
    `<text x="4" y="16" font-size="13">${escapeXml(title)}: ${(total / 1000).toFixed(0)} ms of CPU (idle left out)</text>`,
    body,
    '</svg>',
    '',
  ].join('\n');
}

/** Every `.cpuprofile` under `target` (a file or a directory, searched recursively). */
export function findProfiles(target: string): string[] {
  if (!fs.statSync(target).isDirectory()) return [target];
  return fs.readdirSync(target, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(target, e.name);
    if (e.isDirectory()) return findProfiles(p);
    return e.name.endsWith('.cpuprofile') ? [p] : [];
  });
}

/** Writes NAME.folded and NAME.svg beside each profile; returns what it wrote. */
export function writeFlameGraphs(target: string): Array<{ profile: string; svg: string; folded: FoldedStacks }> {
  return findProfiles(target).map((profile) => {
    const folded = foldCpuProfile(JSON.parse(fs.readFileSync(profile, 'utf8')) as CpuProfile);
    const base = profile.replace(/\.cpuprofile$/, '');
    fs.writeFileSync(`${base}.folded`, foldedText(folded));
    fs.writeFileSync(`${base}.svg`, flameSvg(folded, path.relative(target, profile) || path.basename(profile)));
    return { profile, svg: `${base}.svg`, folded };
  });
}

if (require.main === module) {
  const targets = process.argv.slice(2);
  if (targets.length === 0) {
    process.stderr.write('usage: node dist/bench/flame.js DIR|FILE.cpuprofile ...\n');
    process.exit(2);
  }
  for (const target of targets) {
    for (const { svg, folded } of writeFlameGraphs(target)) {
      const self = selfTimes(folded);
      const total = self.reduce((s, [, us]) => s + us, 0) || 1;
      process.stdout.write(`${svg}\n`);
      for (const [frame, us] of self.slice(0, 12)) process.stdout.write(`  ${((us / total) * 100).toFixed(1).padStart(5)} %  ${frame}\n`);
    }
  }
}
