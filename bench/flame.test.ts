/**
 * Flame graphs from real V8 CPU profiles: a child Node burns CPU in a named function
 * under --cpu-prof, and the folded stacks and SVG must show that function on top.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { foldCpuProfile, foldedText, selfTimes, writeFlameGraphs, type CpuProfile } from './flame';

test('each sample gets the time until the next one; idle time is left out', () => {
  const frame = (functionName: string, lineNumber = 0, url = '') => ({ functionName, url, lineNumber });
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame('(root)'), children: [2, 4] },
      { id: 2, callFrame: frame('outer', 0, 'file:///app/x.js'), children: [3] },
      { id: 3, callFrame: frame('inner;odd', 1, 'file:///app/x.js') },
      { id: 4, callFrame: frame('(idle)') },
    ],
    samples: [3, 3, 4, 2, 2],
    timeDeltas: [5, 10, 20, 30, 40],
  };
  const folded = foldCpuProfile(profile);
  expect([...folded]).toEqual([
    ['outer x.js:1;inner,odd x.js:2', 30],
    ['outer x.js:1', 40],
  ]);
  expect(foldedText(folded)).toBe('outer x.js:1 40\nouter x.js:1;inner,odd x.js:2 30\n');
  expect(selfTimes(folded)).toEqual([
    ['outer x.js:1', 40],
    ['inner,odd x.js:2', 30],
  ]);
});

test('a real profile: the function that burned the CPU is on top, and an SVG and folded stacks are written beside it', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flame-'));
  try {
    const script = 'function burnCpuForTheFlameTest(){let x=0;for(let i=0;i<1e6;i++)x+=i%7;return x}const t=Date.now();while(Date.now()-t<400)burnCpuForTheFlameTest();';
    const run = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, '-e', script], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    const [graph, ...more] = writeFlameGraphs(dir);
    expect(more).toEqual([]);
    const self = selfTimes(graph!.folded);
    const total = self.reduce((s, [, us]) => s + us, 0);
    expect(total).toBeGreaterThan(300_000);
    expect(self[0]![0]).toMatch(/^burnCpuForTheFlameTest /);
    expect(self[0]![1] / total).toBeGreaterThan(0.5);
    const svg = fs.readFileSync(graph!.svg, 'utf8');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toMatch(/<title>burnCpuForTheFlameTest [^<]*: \d+\.\d ms, \d+\.\d\d %<\/title>/);
    const folded = fs.readFileSync(graph!.svg.replace(/\.svg$/, '.folded'), 'utf8');
    expect(folded.split('\n')[0]).toMatch(/burnCpuForTheFlameTest \S+:1 \d+$/);
    expect(folded).not.toContain('(idle)');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
