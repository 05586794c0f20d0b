/**
 * Locating and running the external binaries the metrics tests use. A missing tool is a
 * test failure with an install hint, never a silent skip.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface ToolSpec {
  /** Binary name looked up on PATH (or an absolute path). */
  readonly binary: string;
  /** Debian package providing it, for the error message. */
  readonly debianPackage: string;
  /** Environment variable that may name the binary explicitly. */
  readonly envVar?: string;
}

export const PROMTOOL: ToolSpec = { binary: 'promtool', debianPackage: 'prometheus', envVar: 'PROMTOOL' };
export const PROMETHEUS: ToolSpec = { binary: 'prometheus', debianPackage: 'prometheus', envVar: 'PROMETHEUS' };
/** Debian's python3 (not a pyenv shim) with python3-prometheus-client: a strict OpenMetrics parser. */
export const PYTHON3: ToolSpec = { binary: '/usr/bin/python3', debianPackage: 'python3-prometheus-client', envVar: 'DEBIAN_PYTHON3' };

export function findTool(spec: ToolSpec): string | undefined {
  const explicit = spec.envVar ? process.env[spec.envVar] : undefined;
  const candidates = explicit
    ? [explicit]
    : spec.binary.includes('/')
      ? [spec.binary]
      : [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/bin', '/usr/local/bin'].map((dir) =>
          join(dir, spec.binary),
        );
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next candidate
    }
  }
  return undefined;
}

/** The tool's absolute path, or an Error telling how to install it. */
export function requireTool(spec: ToolSpec): string {
  const found = findTool(spec);
  if (found === undefined) {
    throw new Error(
      `${spec.binary} not found (${spec.envVar && process.env[spec.envVar] ? `${spec.envVar}=${process.env[spec.envVar]}` : `PATH=${process.env.PATH ?? ''}`}). ` +
        `Install it with: apt-get update && apt-get install -y ${spec.debianPackage}`,
    );
  }
  return found;
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `binary args` with `stdin`, killing it after `timeoutMs`. */
export function runTool(binary: string, args: readonly string[], stdin = '', timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin);
  });
}
