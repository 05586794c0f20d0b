/**
 * The configuration example in README.md is what users copy: it must load.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfigFile } from '../gateway/config';
import { ROOT, tempDir } from './harness';

test('the README configuration example loads, with every field it shows', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('```yaml', readme.indexOf('## Configuration')) + '```yaml'.length;
  const yaml = readme.slice(start, readme.indexOf('```', start));
  // The example's secret and CA files are the user's; stand in real ones.
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'secret'), 's3cret\n');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'ca.pem'), '-days', '1', '-subj', '/CN=iis'], { stdio: 'ignore' });
  const file = path.join(dir, 'gateway.yaml');
  fs.writeFileSync(file, yaml.replace('/etc/isapi-gateway/secret', path.join(dir, 'secret')).replace('./iis-ca.pem', path.join(dir, 'ca.pem')).replace('./bridge-ca.pem', path.join(dir, 'ca.pem')));
  const config = loadConfigFile(file);
  expect(config.apps.map((a) => [a.name, a.mount, a.maxQueue, a.pendingTimeoutMs])).toEqual([['orders', '/scripts/orders.dll', 200, 300000]]);
  expect(config.bridges.map((b) => [b.name, b.mode])).toEqual([
    ['default', 'local'],
    ['remote', 'remote'],
  ]);
  expect(config.routes).toHaveLength(2);
});
