/**
 * docker/compose.yaml and the Prometheus/Grafana files it mounts, checked
 * statically (no Docker engine where the tests run): pinned images, files
 * that exist, and the gateway, bridge, Prometheus and Grafana agreeing on
 * sockets, ports and paths.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ROOT } from './support';

const DOCKER = path.join(ROOT, 'docker');
const load = (rel: string): any => parseYaml(fs.readFileSync(path.join(DOCKER, rel), 'utf8')); // eslint-disable-line @typescript-eslint/no-explicit-any

const compose = load('compose.yaml');
const services: Record<string, any> = compose.services; // eslint-disable-line @typescript-eslint/no-explicit-any
const gatewayConfig = load('compose/gateway.yaml');
const bridgeConfig = JSON.parse(fs.readFileSync(path.join(DOCKER, 'compose', 'bridge.json'), 'utf8'));

function bindMounts(service: { volumes?: string[] }): Array<{ host: string; target: string }> {
  return (service.volumes ?? [])
    .map((v) => v.split(':'))
    .filter(([host]) => host.startsWith('.') || host.startsWith('/'))
    .map(([host, target]) => ({ host, target }));
}

test('has the evaluation stack: gateway, bridge, Prometheus, Grafana', () => {
  expect(Object.keys(services).sort()).toEqual(['bridge', 'gateway', 'grafana', 'prometheus']);
});

test('third-party images are pinned to explicit versions; ours are built from the repo Dockerfiles', () => {
  for (const [name, svc] of Object.entries(services)) {
    if (svc.build) {
      expect(fs.existsSync(path.resolve(DOCKER, svc.build.context, svc.build.dockerfile))).toBe(true);
      expect(path.resolve(DOCKER, svc.build.context)).toBe(ROOT);
      continue;
    }
    expect({ name, image: svc.image }).toEqual({ name, image: expect.stringMatching(/:v?\d+\.\d+\.\d+$/) });
  }
});

test('every bind-mounted file or directory exists', () => {
  const missing: string[] = [];
  for (const svc of Object.values(services)) {
    for (const { host } of bindMounts(svc)) if (!fs.existsSync(path.resolve(DOCKER, host))) missing.push(host);
  }
  expect(missing).toEqual([]);
});

test('ports are published on loopback only', () => {
  for (const svc of Object.values(services)) {
    for (const p of svc.ports ?? []) expect(String(p)).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
  }
});

test('gateway and bridge meet on the same unix socket in a shared volume', () => {
  const address: string = gatewayConfig.bridges.default.address;
  expect(address).toMatch(/^unix:\//);
  const socket = address.slice('unix:'.length);
  const listen = services.bridge.command[services.bridge.command.indexOf('--listen') + 1];
  expect(listen).toBe(address);
  expect(services.bridge.environment.ISAPI_HEALTHCHECK).toBe(address);
  for (const name of ['gateway', 'bridge']) {
    const shared = (services[name].volumes as string[]).find((v) => v.startsWith('bridge-socket:'));
    expect(shared && socket.startsWith(`${shared.split(':')[1]}/`)).toBe(true);
  }
  expect(services.gateway.depends_on.bridge.condition).toBe('service_healthy');
});

test('the configs the containers read are mounted where their commands look', () => {
  const gwConfig = services.gateway.command[services.gateway.command.indexOf('--config') + 1];
  expect(bindMounts(services.gateway).map((m) => m.target)).toContain(gwConfig);
  const brConfig = services.bridge.command[services.bridge.command.indexOf('--config') + 1];
  expect(bindMounts(services.bridge).map((m) => m.target)).toContain(brConfig);
});

test('the gateway and the bridge list the same sample apps', () => {
  const pick = (a: { name: string; mount: string; library: string }): string => `${a.name} ${a.mount} ${a.library}`;
  expect(bridgeConfig.apps.map(pick)).toEqual(gatewayConfig.apps.map(pick));
  for (const app of gatewayConfig.apps) expect(app.library).toMatch(/^\/opt\/isapi\/samples\/\w+\.so$/);
  // Sample sources exist for every library the bridge image is expected to ship.
  for (const app of gatewayConfig.apps) expect(fs.existsSync(path.join(ROOT, 'samples', `${app.name}.c`))).toBe(true);
});

test('Prometheus scrapes the gateway admin port by service name', () => {
  const prom = load('prometheus/prometheus.yml');
  const job = prom.scrape_configs.find((j: { job_name: string }) => j.job_name === 'isapi-gateway');
  expect(job.metrics_path).toBe('/metrics');
  expect(job.static_configs[0].targets).toEqual([`gateway:${gatewayConfig.admin.port}`]);
});

test('Grafana provisions the Prometheus data source and loads dashboards from the mounted metrics/dashboard', () => {
  const ds = load('grafana/provisioning/datasources/prometheus.yaml');
  expect(ds.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
  const provider = load('grafana/provisioning/dashboards/isapi-gateway.yaml').providers[0];
  const mount = bindMounts(services.grafana).find((m) => m.host === '../metrics/dashboard');
  expect(mount?.target).toBe(provider.options.path);
  expect(bindMounts(services.grafana).find((m) => m.host === './grafana/provisioning')?.target).toBe('/etc/grafana/provisioning');
});
