import fs from 'node:fs';
import path from 'node:path';

/**
 * Where the native build (`npm run build:native`) put `file`: build/native/ of the
 * project, seen from dist/<dir>/ (the programs) or from <dir>/ (the tests, which run
 * the TypeScript sources). Undefined if it was not built.
 */
export function findNativeArtefact(file: string): string | undefined {
  for (const base of [path.join(__dirname, '..', '..'), path.join(__dirname, '..')]) {
    const candidate = path.join(base, 'build', 'native', file);
    if (fs.existsSync(candidate)) return candidate;
  }
  return undefined;
}
