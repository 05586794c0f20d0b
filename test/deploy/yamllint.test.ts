/**
 * yamllint (Debian package `yamllint`) over the plain YAML this area owns,
 * with the repository's .yamllint. Helm templates are not YAML until
 * rendered; chart.test.ts renders and validates them instead.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './support';

const TARGETS = [
  '.yamllint',
  'charts/isapi-gateway/Chart.yaml',
  'charts/isapi-gateway/values.yaml',
  'charts/isapi-gateway/ci',
  'docker/compose.yaml',
  'docker/compose',
  'docker/prometheus',
  'docker/grafana',
  '.github/workflows',
];

test('yamllint passes (strict: warnings fail too)', () => {
  const version = spawnSync('yamllint', ['--version'], { encoding: 'utf8' });
  if (version.error) {
    throw new Error('yamllint is not installed: apt-get install yamllint (Debian package; .ci/run installs it)');
  }
  const r = spawnSync('yamllint', ['--strict', '--format', 'parsable', '-c', path.join(ROOT, '.yamllint'), ...TARGETS], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  expect(r.stdout + r.stderr).toBe('');
  expect(r.status).toBe(0);
});

test('yamllint is live: it flags a broken file', () => {
  const r = spawnSync('yamllint', ['-c', path.join(ROOT, '.yamllint'), '-'], {
    cwd: ROOT,
    encoding: 'utf8',
    input: '---\nkey: value\nkey: again\n',
  });
  expect(r.stdout).toContain('duplication of key "key"');
  expect(r.status).not.toBe(0);
});
