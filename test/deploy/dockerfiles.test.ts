/**
 * Static checks of docker/*.Dockerfile. No Docker engine runs where the tests
 * do, and hadolint is neither a Debian (bookworm) package nor an npm package
 * that ships its binary, so the Dockerfiles are parsed with dockerfile-ast
 * (the parser behind the VS Code Docker language server) and linted with its
 * companion dockerfile-utils; the project's own rules come on top.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DockerfileParser, type Dockerfile, type Instruction } from 'dockerfile-ast';
import { validate, ValidationSeverity } from 'dockerfile-utils';
import { parse as parseYaml } from 'yaml';
import { ROOT } from './support';

const DOCKER = path.join(ROOT, 'docker');
const FILES = fs
  .readdirSync(DOCKER)
  .filter((f) => f.endsWith('.Dockerfile'))
  .sort();

/**
 * COPY sources that the repository does not hold because a build produces
 * them before `docker build` (the Windows image is assembled from the
 * Windows runner's build output). Anything else must exist in git's tree.
 */
const BUILD_OUTPUTS = ['dist/', 'build/'];

interface Parsed {
  name: string;
  text: string;
  df: Dockerfile;
  windows: boolean;
}

const parsed: Parsed[] = FILES.map((name) => {
  const text = fs.readFileSync(path.join(DOCKER, name), 'utf8');
  return { name, text, df: DockerfileParser.parse(text), windows: name.includes('windows') };
});

function globalArgs(df: Dockerfile): Record<string, string> {
  const args: Record<string, string> = {};
  for (const a of df.getInitialARGs()) {
    const p = a.getProperty();
    if (p) args[p.getName()] = p.getValue() ?? '';
  }
  return args;
}

function substitute(s: string, args: Record<string, string>): string {
  return s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string, b: string) => args[a ?? b] ?? `\${${a ?? b}}`);
}

function stages(df: Dockerfile): Array<{ name: string | undefined; image: string; instructions: Instruction[] }> {
  const froms = df.getFROMs();
  const all = df.getInstructions();
  const args = globalArgs(df);
  return froms.map((from, i) => {
    const start = all.indexOf(from);
    const end = i + 1 < froms.length ? all.indexOf(froms[i + 1]) : all.length;
    return { name: from.getBuildStage() ?? undefined, image: substitute(from.getImage() ?? '', args), instructions: all.slice(start + 1, end) };
  });
}

/** Arguments of an instruction minus its --flags. */
function operands(instr: Instruction): string[] {
  return instr
    .getArguments()
    .map((a) => a.getValue())
    .filter((v) => !v.startsWith('--'));
}

function dockerignore(): string[] {
  return fs
    .readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#') && !l.startsWith('!'));
}

test('there are the four Dockerfiles the chart and CI refer to', () => {
  expect(FILES).toEqual(['bridge-linux.Dockerfile', 'bridge-windows.Dockerfile', 'bridge-wine.Dockerfile', 'gateway.Dockerfile']);
});

describe.each(parsed)('$name', ({ name, text, df, windows }) => {
  test('has no errors or warnings from dockerfile-utils', () => {
    const problems = validate(text)
      .filter((d) => d.severity === ValidationSeverity.ERROR || d.severity === ValidationSeverity.WARNING)
      .map((d) => `${name}:${d.range.start.line + 1}: ${d.message}`);
    expect(problems).toEqual([]);
  });

  test('every base image is pinned to an explicit version (no latest, no bare name)', () => {
    const stageNames = new Set<string>();
    for (const stage of stages(df)) {
      if (stageNames.has(stage.image)) {
        // FROM <earlier stage>
      } else {
        expect(stage.image).not.toContain('${');
        const [ref, digest] = stage.image.split('@');
        const tag = ref.slice(ref.lastIndexOf('/') + 1).split(':')[1];
        expect({ image: stage.image, tag }).toEqual({ image: stage.image, tag: expect.stringMatching(/^\d+\.\d+\.\d+/) });
        expect(tag).not.toMatch(/latest/);
        if (digest !== undefined) expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/);
      }
      if (stage.name) stageNames.add(stage.name);
    }
    expect(stageNames.size).toBeGreaterThanOrEqual(2); // multi-stage
  });

  test('the final stage runs as a non-root user', () => {
    const last = stages(df).at(-1)!;
    const users = last.instructions.filter((i) => i.getKeyword() === 'USER').map((i) => operands(i)[0]);
    expect(users.length).toBeGreaterThan(0);
    const user = users.at(-1)!;
    if (windows) {
      expect(user).toBe('ContainerUser');
    } else {
      // Numeric, so a kubelet can enforce runAsNonRoot without reading /etc/passwd.
      expect(user).toMatch(/^[1-9]\d*(:[1-9]\d*)?$/);
    }
  });

  test('every COPY/ADD from the build context exists in the repository or is a declared build output', () => {
    const ignored = dockerignore();
    const missing: string[] = [];
    for (const instr of df.getInstructions()) {
      const keyword = instr.getKeyword();
      if (keyword !== 'COPY' && keyword !== 'ADD') continue;
      const flags = (instr as unknown as { getFlags(): Array<{ getName(): string }> }).getFlags();
      if (flags.some((f) => f.getName() === 'from')) continue; // from another stage, not the context
      const sources = operands(instr).slice(0, -1);
      expect(sources.length).toBeGreaterThan(0);
      for (const raw of sources) {
        expect(raw).not.toMatch(/^https?:/); // remote ADDs are unpinned downloads
        const src = raw.replace(/\\/g, '/');
        for (const pattern of ignored) {
          expect({ src, excludedBy: src.startsWith(pattern.replace(/\/$/, '')) ? pattern : null }).toEqual({ src, excludedBy: null });
        }
        if (BUILD_OUTPUTS.some((p) => src.startsWith(p))) continue;
        if (!fs.existsSync(path.join(ROOT, src))) missing.push(src);
      }
    }
    expect(missing).toEqual([]);
  });

  test('declares how it is started and checked', () => {
    const keywords = df.getInstructions().map((i) => i.getKeyword());
    expect(keywords).toContain('ENTRYPOINT');
    expect(keywords).toContain('HEALTHCHECK');
    expect(keywords).toContain('EXPOSE');
    if (!windows) {
      // tini as PID 1 forwards SIGTERM so the gateway drains and exits 0.
      const entrypoint = df.getInstructions().filter((i) => i.getKeyword() === 'ENTRYPOINT').at(-1)!;
      expect(entrypoint.getTextContent()).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--"/);
    }
  });

  test('installs only production dependencies into the runtime image', () => {
    const last = stages(df).at(-1)!;
    const runs = last.instructions.filter((i) => i.getKeyword() === 'RUN').map((i) => i.getTextContent());
    expect(runs.join('\n')).not.toMatch(/npm (ci|install)/);
    const npmCi = df
      .getInstructions()
      .filter((i) => i.getKeyword() === 'RUN' && /npm(\.cmd)? ci/.test(i.getTextContent()) && /--omit=dev/.test(i.getTextContent()));
    expect(npmCi.length).toBe(1);
  });

  if (!windows) {
    test('apt-get installs skip recommends and clean their lists in the same layer', () => {
      for (const run of df.getInstructions().filter((i) => i.getKeyword() === 'RUN')) {
        const body = run.getTextContent();
        if (!body.includes('apt-get install')) continue;
        expect(body).toContain('--no-install-recommends');
        expect(body).toContain('rm -rf /var/lib/apt/lists/*');
      }
    });

    test('a C compiler is installed in no stage but the build stage', () => {
      for (const stage of stages(df)) {
        const installsCompiler = stage.instructions.some((i) => i.getKeyword() === 'RUN' && /apt-get install[^&]*\bgcc\b/.test(i.getTextContent()));
        if (installsCompiler) expect(stage.name).toBe('build');
      }
    });
  }
});

test('the linter is live: dockerfile-utils reports a broken Dockerfile', () => {
  expect(validate('FROM node:20.20.2-bookworm-slim\nEXPOSE notaport\nCOPY\n').length).toBeGreaterThan(0);
});

test('all Node versions agree: Linux base images, the Windows zip and CI', () => {
  const versions = new Set<string>();
  for (const { df } of parsed) {
    for (const [key, value] of Object.entries(globalArgs(df))) {
      const m = /^node:(\d+\.\d+\.\d+)-/.exec(value);
      if (key === 'NODE_IMAGE' && m) versions.add(m[1]);
    }
    for (const a of df.getARGs()) {
      const p = a.getProperty();
      if (p?.getName() === 'NODE_VERSION') versions.add(p.getValue() ?? '');
    }
  }
  const ci = parseYaml(fs.readFileSync(path.join(ROOT, '.github', 'workflows', 'ci.yml'), 'utf8'));
  versions.add(String(ci.env.NODE_VERSION));
  expect([...versions]).toEqual([expect.stringMatching(/^20\.\d+\.\d+$/)]);
});

test('the Windows image is pinned to the LTSC 2022 build the chart selects nodes by', () => {
  const win = parsed.find((p) => p.windows)!;
  const image = globalArgs(win.df).WINDOWS_IMAGE;
  expect(image).toMatch(/^mcr\.microsoft\.com\/windows\/servercore:10\.0\.20348\.\d+$/);
  const values = parseYaml(fs.readFileSync(path.join(ROOT, 'charts', 'isapi-gateway', 'values.yaml'), 'utf8'));
  expect(image).toContain(`:${values.windows.build}.`);
  // The Node zip is verified against a pinned SHA-256, not trusted as downloaded.
  const sha = win.df.getARGs().find((a) => a.getProperty()?.getName() === 'NODE_SHA256')?.getProperty()?.getValue();
  expect(sha).toMatch(/^[a-f0-9]{64}$/);
  expect(win.text).toContain('Get-FileHash');
});
