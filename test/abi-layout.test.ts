/**
 * The C header, the koffi layouts and the TypeScript constants must agree.
 * A C program generated from the koffi definitions prints sizeof/offsetof of
 * every struct member and the value of every constant, compiled by the
 * machine's C compiler against bridge/include/isapi.h.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import koffi from 'koffi';
import { HSE_TERM } from '../bridge/abi/constants';
import { abiConstants } from './abi-constants';
import { STRUCTS } from '../bridge/abi/structs';
import { ROOT, tempDir } from './harness';


let printed: Map<string, number>;

beforeAll(() => {
  const lines: string[] = ['#include "isapi.h"', '#include <stdio.h>', '#include <stddef.h>', 'int main(void) {'];
  for (const [name, type] of Object.entries(STRUCTS)) {
    lines.push(`  printf("sizeof ${name} %zu\\n", sizeof(${name}));`);
    for (const member of Object.keys(koffi.type(type).members ?? {})) {
      lines.push(`  printf("offsetof ${name}.${member} %zu\\n", offsetof(${name}, ${member}));`);
    }
  }
  for (const [macro] of abiConstants()) lines.push(`  printf("const ${macro} %lu\\n", (unsigned long)(${macro}));`);
  lines.push('  printf("sizeof DWORD %zu\\n", sizeof(DWORD));', '  return 0;', '}');
  const dir = tempDir();
  const src = path.join(dir, 'layout.c');
  const exe = path.join(dir, 'layout');
  fs.writeFileSync(src, lines.join('\n'));
  execFileSync(process.env.CC ?? 'cc', ['-Wall', '-Werror', '-I', path.join(ROOT, 'bridge', 'include'), '-o', exe, src]);
  printed = new Map(
    execFileSync(exe, { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => {
        const [, key, value] = l.split(' ');
        return [`${l.split(' ')[0]} ${key}`, Number(value)] as [string, number];
      }),
  );
});

test('DWORD is 32 bits and the ECB matches Microsoft\'s x64 layout', () => {
  expect(printed.get('sizeof DWORD')).toBe(4);
  expect(printed.get('sizeof EXTENSION_CONTROL_BLOCK')).toBe(192);
  expect(printed.get('offsetof EXTENSION_CONTROL_BLOCK.ConnID')).toBe(8);
  expect(printed.get('offsetof EXTENSION_CONTROL_BLOCK.lpszLogData')).toBe(20);
  expect(printed.get('offsetof EXTENSION_CONTROL_BLOCK.lpszMethod')).toBe(104);
  expect(printed.get('offsetof EXTENSION_CONTROL_BLOCK.cbTotalBytes')).toBe(136);
  expect(printed.get('offsetof EXTENSION_CONTROL_BLOCK.lpbData')).toBe(144);
  expect(printed.get('offsetof EXTENSION_CONTROL_BLOCK.GetServerVariable')).toBe(160);
  expect(printed.get('offsetof EXTENSION_CONTROL_BLOCK.WriteClient')).toBe(168);
  expect(printed.get('offsetof EXTENSION_CONTROL_BLOCK.ReadClient')).toBe(176);
  expect(printed.get('offsetof EXTENSION_CONTROL_BLOCK.ServerSupportFunction')).toBe(184);
  expect(printed.get('sizeof HSE_VERSION_INFO')).toBe(260);
});

describe.each(Object.entries(STRUCTS))('%s', (name, type) => {
  test('koffi size and every member offset equal the C compiler\'s', () => {
    expect(koffi.sizeof(type)).toBe(printed.get(`sizeof ${name}`));
    const members = Object.keys(koffi.type(type).members ?? {});
    expect(members.length).toBeGreaterThan(1);
    for (const m of members) expect([m, koffi.offsetof(type, m)]).toEqual([m, printed.get(`offsetof ${name}.${m}`)]);
  });
});

test('every TypeScript HSE_* / ERROR_* constant has the same value in the C header', () => {
  const list = abiConstants();
  expect(list.length).toBeGreaterThan(80);
  for (const [macro, value] of list) expect([macro, printed.get(`const ${macro}`)]).toEqual([macro, value]);
  // The values mod_isapi got wrong.
  expect(HSE_TERM.ADVISORY_UNLOAD).toBe(1);
  expect(HSE_TERM.MUST_UNLOAD).toBe(2);
});
