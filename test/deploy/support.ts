/**
 * Shared helpers for the deployment tests: the real helm binary, rendering,
 * and offline validation of rendered objects against the Kubernetes API
 * schemas shipped in kubernetes-models.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ts from 'typescript';
import { parseAllDocuments } from 'yaml';

export const ROOT = path.resolve(__dirname, '..', '..');
export const CHART = path.join(ROOT, 'charts', 'isapi-gateway');
export const RELEASE = 'isapi';
export const NAMESPACE = 'legacy';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // Rendered manifests are arbitrary JSON; tests narrow them where they look.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  [key: string]: any;
}

/** Fetches (or reuses) the pinned helm; a missing helm is a failure, not a skip. */
export function ensureHelm(): string {
  const result = spawnSync('bash', [path.join(ROOT, 'scripts', 'fetch-helm.sh')], { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`scripts/fetch-helm.sh failed (exit ${result.status}):\n${result.stderr}`);
  }
  const helm = result.stdout.trim().split('\n').pop() ?? '';
  if (!fs.existsSync(helm)) throw new Error(`fetch-helm.sh printed ${helm}, which does not exist`);
  return helm;
}

export interface HelmResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function helm(helmPath: string, args: string[]): HelmResult {
  // HELM_* dirs in a scratch place: no dependency on, or pollution of, ~/.config.
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'helm-home-'));
  try {
    const r = spawnSync(helmPath, args, {
      encoding: 'utf8',
      env: {
        ...process.env,
        HELM_CACHE_HOME: path.join(home, 'cache'),
        HELM_CONFIG_HOME: path.join(home, 'config'),
        HELM_DATA_HOME: path.join(home, 'data'),
      },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
}

export function valuesArgs(valuesFiles: string[], sets: string[] = []): string[] {
  return [...valuesFiles.flatMap((f) => ['-f', f]), ...sets.flatMap((s) => ['--set', s])];
}

/** `helm template`, parsed; throws with helm's own message on failure. */
export function renderChart(helmPath: string, valuesFiles: string[], sets: string[] = [], chart = CHART): K8sObject[] {
  const r = helm(helmPath, ['template', RELEASE, chart, '--namespace', NAMESPACE, ...valuesArgs(valuesFiles, sets)]);
  if (r.status !== 0) throw new Error(`helm template failed:\n${r.stderr}`);
  const docs: K8sObject[] = [];
  for (const doc of parseAllDocuments(r.stdout)) {
    if (doc.errors.length) throw new Error(`rendered YAML does not parse: ${doc.errors[0].message}`);
    const value = doc.toJS() as K8sObject | null;
    if (value) docs.push(value);
  }
  return docs;
}

// ---------------------------------------------------------------------------
// Schema validation

function modelModule(apiVersion: string, kind: string): string {
  if (apiVersion === 'monitoring.coreos.com/v1') {
    return `@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${kind}`;
  }
  // Core objects live under "v1", every other group under "<group>/<version>": the apiVersion itself.
  return `kubernetes-models/${apiVersion}/${kind}`;
}

interface ModelClass {
  new (data: unknown): { validate(): void };
}

function loadModel(apiVersion: string, kind: string): { cls: ModelClass; dts: string } {
  const id = modelModule(apiVersion, kind);
  let file: string;
  try {
    file = require.resolve(id);
  } catch {
    throw new Error(`${apiVersion}/${kind}: no schema in kubernetes-models (${id})`);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const cls = (require(id) as Record<string, ModelClass>)[kind];
  if (!cls) throw new Error(`${id} exports no ${kind}`);
  return { cls, dts: file.replace(/\.js$/, '.d.ts') };
}

/**
 * The OpenAPI schemas compiled into kubernetes-models check types, required
 * fields and formats but, like the API server's OpenAPI, allow unknown
 * fields. A real apply (kubectl's default --validate=strict) rejects those,
 * so the same models' TypeScript declarations are used to find them: a
 * misspelt or misplaced key would otherwise be silently dropped.
 */
class UnknownFieldChecker {
  private program: ts.Program | undefined;
  private roots = new Set<string>();

  check(obj: K8sObject, dts: string): string[] {
    if (!this.roots.has(dts)) {
      this.roots.add(dts);
      this.program = ts.createProgram([...this.roots], { strict: true, noEmit: true, skipLibCheck: true, types: [] }, undefined, this.program);
    }
    const program = this.program!;
    const checker = program.getTypeChecker();
    const source = program.getSourceFile(dts);
    if (!source) throw new Error(`cannot load ${dts}`);
    const moduleSymbol = checker.getSymbolAtLocation(source);
    const iface = moduleSymbol && checker.getExportsOfModule(moduleSymbol).find((s) => s.name === `I${obj.kind}`);
    if (!iface) throw new Error(`${dts} declares no I${obj.kind}`);
    const errors: string[] = [];
    this.walk(checker, obj, checker.getDeclaredTypeOfSymbol(iface), obj.kind, errors);
    return errors;
  }

  private walk(checker: ts.TypeChecker, value: unknown, rawType: ts.Type, at: string, errors: string[]): void {
    if (value === null || typeof value !== 'object') return; // scalars: the JSON schema checks them
    const type = checker.getNonNullableType(rawType);
    if (Array.isArray(value)) {
      const element = type.getNumberIndexType();
      if (element) value.forEach((v, i) => this.walk(checker, v, element, `${at}[${i}]`, errors));
      return;
    }
    const candidates = (type.isUnion() ? type.types : [type]).filter((t) => (t.flags & ts.TypeFlags.Object) !== 0);
    if (candidates.length !== 1) return; // ambiguous or free-form: leave it to the schema
    const shape = candidates[0];
    const index = shape.getStringIndexType();
    for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
      const prop = shape.getProperty(key);
      if (prop) this.walk(checker, child, checker.getTypeOfSymbol(prop), `${at}.${key}`, errors);
      else if (index) this.walk(checker, child, index, `${at}.${key}`, errors);
      else errors.push(`${at}.${key}: unknown field`);
    }
  }
}

const unknownFields = new UnknownFieldChecker();

/** All schema problems of one object, prefixed with kind/name; [] when valid. */
export function validateObject(obj: K8sObject): string[] {
  const where = `${obj.kind}/${obj.metadata?.name}`;
  let model: { cls: ModelClass; dts: string };
  try {
    model = loadModel(obj.apiVersion, obj.kind);
  } catch (err) {
    return [`${where}: ${(err as Error).message}`];
  }
  const problems: string[] = [];
  try {
    new model.cls(obj).validate();
  } catch (err) {
    problems.push(`${where}: ${(err as Error).message}`);
  }
  for (const e of unknownFields.check(obj, model.dts)) problems.push(`${where}: ${e}`);
  return problems;
}

// ---------------------------------------------------------------------------
// Small accessors

export function find(docs: K8sObject[], kind: string, name?: string): K8sObject[] {
  return docs.filter((d) => d.kind === kind && (name === undefined || d.metadata.name === name));
}

export function one(docs: K8sObject[], kind: string, name: string): K8sObject {
  const found = find(docs, kind, name);
  if (found.length !== 1) {
    const have = docs.map((d) => `${d.kind}/${d.metadata.name}`).join(', ');
    throw new Error(`expected one ${kind}/${name}, found ${found.length} among: ${have}`);
  }
  return found[0];
}

export function matches(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/** Copies the chart somewhere disposable (for modes that need extra files in it). */
export function scratchChart(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'isapi-chart-'));
  const copy = path.join(dir, 'isapi-gateway');
  fs.cpSync(CHART, copy, { recursive: true });
  return copy;
}

export function run(cmd: string, args: string[], cwd = ROOT): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8' });
}
