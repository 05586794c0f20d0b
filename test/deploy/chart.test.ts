/**
 * The Helm chart, rendered by the real helm binary in every documented mode
 * and checked offline against the Kubernetes API schemas.
 */
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { parseConfig } from '../../gateway/config';
import {
  CHART,
  type K8sObject,
  NAMESPACE,
  ROOT,
  ensureHelm,
  find,
  helm,
  matches,
  one,
  renderChart,
  run,
  scratchChart,
  validateObject,
  valuesArgs,
} from './support';

const CI = path.join(CHART, 'ci');
const FULL = 'isapi-isapi-gateway'; // release "isapi" + chart name
const BRIDGE = `${FULL}-bridge`;

/** Each documented mode is a values file under ci/ (chart-testing's convention). */
const MODES: Record<string, string[]> = {
  default: [],
  'mixed-os-tcp': [path.join(CI, 'mixed-os-tcp-values.yaml')],
  'same-pod-windows': [path.join(CI, 'same-pod-windows-values.yaml')],
  'same-pod-linux': [path.join(CI, 'same-pod-linux-values.yaml')],
  'linux-bridge': [path.join(CI, 'linux-bridge-values.yaml')],
  wine: [path.join(CI, 'wine-values.yaml')],
  'same-pod-wine': [path.join(CI, 'same-pod-wine-values.yaml')],
  monitoring: [path.join(CI, 'monitoring-values.yaml')],
  hpa: [path.join(CI, 'hpa-values.yaml')],
  'external-bridge': [path.join(CI, 'external-bridge-values.yaml')],
};

// Fields the API server refuses in a pod whose spec.os.name is windows (the
// PodOS documentation, k8s 1.25+), plus runAsNonRoot: accepted there but with
// a different meaning, so the chart keeps it to Linux pods as well.
const WINDOWS_FORBIDDEN_POD = [
  'appArmorProfile',
  'seLinuxOptions',
  'seccompProfile',
  'fsGroup',
  'fsGroupChangePolicy',
  'sysctls',
  'runAsUser',
  'runAsGroup',
  'runAsNonRoot',
  'supplementalGroups',
  'supplementalGroupsPolicy',
];
const WINDOWS_FORBIDDEN_CONTAINER = [
  'appArmorProfile',
  'seLinuxOptions',
  'seccompProfile',
  'capabilities',
  'readOnlyRootFilesystem',
  'privileged',
  'allowPrivilegeEscalation',
  'procMount',
  'runAsUser',
  'runAsGroup',
  'runAsNonRoot',
];

let helmBin: string;
let scratch: string;
const rendered: Record<string, K8sObject[]> = {};

/** The chart used for a mode: monitoring needs a dashboard inside the chart. */
function chartFor(mode: string): string {
  return mode === 'monitoring' ? scratch : CHART;
}

beforeAll(() => {
  helmBin = ensureHelm();
  // The dashboard is owned by metrics/dashboard/ and copied in by
  // scripts/sync-dashboard.sh; until it exists, a stand-in keeps the
  // monitoring mode renderable in a scratch copy, never in the real chart.
  scratch = scratchChart();
  run('bash', [path.join(ROOT, 'scripts', 'sync-dashboard.sh'), scratch]);
  const dashboards = path.join(scratch, 'dashboards');
  if (!fs.readdirSync(dashboards).some((f) => f.endsWith('.json'))) {
    fs.writeFileSync(
      path.join(dashboards, 'isapi-gateway.json'),
      JSON.stringify({ title: 'isapi-gateway (test stand-in)', uid: 'isapi-gateway', panels: [], schemaVersion: 39 }),
    );
  }
  for (const [mode, files] of Object.entries(MODES)) rendered[mode] = renderChart(helmBin, files, [], chartFor(mode));
});

afterAll(() => {
  if (scratch) fs.rmSync(path.dirname(scratch), { recursive: true, force: true });
});

function podSpecs(docs: K8sObject[]): Array<{ owner: string; spec: K8sObject; labels: Record<string, string> }> {
  return find(docs, 'Deployment').map((d) => ({
    owner: d.metadata.name,
    spec: d.spec.template.spec,
    labels: d.spec.template.metadata.labels,
  }));
}

function helmFails(args: string[]): string {
  const r = helm(helmBin, ['template', 'isapi', CHART, '--namespace', NAMESPACE, ...args]);
  expect(r.status).not.toBe(0);
  return r.stderr;
}

describe('helm lint', () => {
  test.each(Object.keys(MODES))('%s values lint cleanly with --strict', (mode) => {
    const r = helm(helmBin, ['lint', '--strict', chartFor(mode), ...valuesArgs(MODES[mode])]);
    expect(r.stdout + r.stderr).not.toMatch(/\[(ERROR|WARNING)\]/);
    expect(r.status).toBe(0);
  });
});

describe('rendered objects', () => {
  test.each(Object.keys(MODES))('%s: every object validates against its Kubernetes schema, strictly', (mode) => {
    const problems = rendered[mode].flatMap(validateObject);
    expect(problems).toEqual([]);
  });

  test.each(Object.keys(MODES))('%s: object names are unique per kind and DNS-safe', (mode) => {
    const seen = new Set<string>();
    for (const d of rendered[mode]) {
      const key = `${d.kind}/${d.metadata.name}`;
      expect(seen.has(key)).toBe(false);
      seen.add(key);
      expect(d.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
      if (d.kind !== 'ServiceMonitor') expect(d.metadata.namespace).toBe(NAMESPACE);
    }
  });

  test.each(Object.keys(MODES))('%s: Windows pods carry no Linux-only fields and run as ContainerUser', (mode) => {
    for (const { owner, spec } of podSpecs(rendered[mode])) {
      const windows = spec.nodeSelector?.['kubernetes.io/os'] === 'windows';
      expect({ owner, os: spec.os?.name }).toEqual({ owner, os: windows ? 'windows' : 'linux' });
      if (!windows) continue;
      expect(spec.securityContext?.windowsOptions?.runAsUserName).toBe('ContainerUser');
      for (const field of WINDOWS_FORBIDDEN_POD) expect([owner, field, spec.securityContext?.[field]]).toEqual([owner, field, undefined]);
      expect(spec.hostPID ?? false).toBe(false);
      expect(spec.hostIPC ?? false).toBe(false);
      expect(spec.shareProcessNamespace).toBeUndefined();
      expect(spec.tolerations).toEqual(expect.arrayContaining([expect.objectContaining({ key: 'os', value: 'windows' })]));
      expect(spec.nodeSelector['node.kubernetes.io/windows-build']).toBe('10.0.20348');
      for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
        for (const field of WINDOWS_FORBIDDEN_CONTAINER) {
          expect([owner, c.name, field, c.securityContext?.[field]]).toEqual([owner, c.name, field, undefined]);
        }
      }
    }
  });

  test.each(Object.keys(MODES))('%s: Linux pods are non-root, read-only, capability-free, RuntimeDefault seccomp', (mode) => {
    for (const { owner, spec } of podSpecs(rendered[mode])) {
      if (spec.os.name !== 'linux') continue;
      expect(spec.nodeSelector['kubernetes.io/os']).toBe('linux');
      expect(spec.securityContext.runAsNonRoot).toBe(true);
      expect(spec.securityContext.seccompProfile).toEqual({ type: 'RuntimeDefault' });
      expect(spec.securityContext.windowsOptions).toBeUndefined();
      for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
        const sc = c.securityContext;
        expect([owner, c.name, sc?.readOnlyRootFilesystem, sc?.allowPrivilegeEscalation, sc?.capabilities?.drop]).toEqual([
          owner,
          c.name,
          true,
          false,
          ['ALL'],
        ]);
        expect(sc.runAsNonRoot).toBe(true);
        expect(sc.runAsUser).toBeGreaterThan(0);
      }
      for (const c of spec.containers) {
        // A read-only root needs somewhere to write temporary files.
        expect(c.volumeMounts.map((m: { mountPath: string }) => m.mountPath)).toContain('/tmp');
      }
    }
  });

  test.each(Object.keys(MODES))('%s: every pod is single-OS and the gateway probes /healthz and /readyz', (mode) => {
    const gw = one(rendered[mode], 'Deployment', FULL);
    const c = gw.spec.template.spec.containers.find((x: { name: string }) => x.name === 'gateway');
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    expect(c.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(c.resources.requests).toBeDefined();
    expect(c.ports.map((p: { name: string }) => p.name)).toEqual(['http', 'admin']);
  });

  test.each(Object.keys(MODES))('%s: Services select pods that exist and name ports those pods expose', (mode) => {
    const docs = rendered[mode];
    for (const svc of find(docs, 'Service')) {
      const pods = podSpecs(docs).filter((p) => matches(svc.spec.selector, p.labels));
      expect([svc.metadata.name, pods.length]).toEqual([svc.metadata.name, 1]);
      const portNames = pods[0].spec.containers.flatMap((c: { ports?: Array<{ name: string }> }) => (c.ports ?? []).map((p) => p.name));
      for (const p of svc.spec.ports) expect(portNames).toContain(p.targetPort);
    }
  });

  test.each(Object.keys(MODES))('%s: gateway and bridge configs agree with the pods', (mode) => {
    const docs = rendered[mode];
    const cm = one(docs, 'ConfigMap', FULL);
    const config = parseYaml(cm.data['gateway.yaml']);
    const gw = one(docs, 'Deployment', FULL);
    const gwSpec = gw.spec.template.spec;
    const gwContainer = gwSpec.containers.find((c: { name: string }) => c.name === 'gateway');
    const windows = gwSpec.os.name === 'windows';
    const sep = windows ? '\\' : '/';

    expect(config.server.port).toBe(gwContainer.ports[0].containerPort);
    expect(config.admin.port).toBe(gwContainer.ports[1].containerPort);
    // --config points into the directory the ConfigMap is mounted at.
    const configMount = gwContainer.volumeMounts.find((m: { name: string }) => m.name === 'config').mountPath;
    expect(gwContainer.args.slice(0, 2)).toEqual(['--config', `${configMount}${sep}gateway.yaml`]);

    const bridge = config.bridges.default;
    expect(bridge.mode).toBe('remote');
    if (bridge.address.startsWith('tcp://')) {
      // TCP always carries the secret, mounted where the config says.
      const secretMount = gwContainer.volumeMounts.find((m: { name: string }) => m.name === 'transport-secret');
      expect(bridge.secretFile).toBe(`${secretMount.mountPath}${sep}shared-secret`);
    } else {
      expect(bridge.address).toBe('unix:/run/isapi-gateway/bridge.sock');
      expect(bridge.secretFile).toBeUndefined();
    }

    const bridgeDeploy = find(docs, 'Deployment', BRIDGE)[0];
    const bridgeContainer = (bridgeDeploy ?? gw).spec.template.spec.containers.find((c: { name: string }) => c.name === 'bridge');
    if (mode === 'external-bridge') {
      expect(bridgeContainer).toBeUndefined();
      expect(bridge.address).toBe('tcp://legacy-vm.example.internal:9000');
      return;
    }
    const flag = (name: string): string | undefined => {
      const i = bridgeContainer.args.indexOf(name);
      return i < 0 ? undefined : bridgeContainer.args[i + 1];
    };
    const bridgeConfig = JSON.parse(cm.data['bridge.json']);
    expect(bridgeConfig.apps.map((a: { name: string }) => a.name)).toEqual(config.apps.map((a: { name: string }) => a.name));
    expect(bridgeConfig.apps.map((a: { library: string }) => a.library)).toEqual(config.apps.map((a: { library: string }) => a.library));
    if (bridgeDeploy) {
      const svc = one(docs, 'Service', BRIDGE);
      expect(bridge.address).toBe(`tcp://${BRIDGE}.${NAMESPACE}.svc.cluster.local:${svc.spec.ports[0].port}`);
      expect(flag('--listen')).toBe(`tcp://0.0.0.0:${bridgeContainer.ports[0].containerPort}`);
    } else {
      // Same pod: the bridge listens exactly where the gateway connects.
      expect(flag('--listen')).toBe(bridge.address);
    }
    expect(flag('--secret-file') !== undefined).toBe(bridge.address.startsWith('tcp://'));
    expect(flag('--workers')).toBe('8');
  });
});

describe('modes', () => {
  test('default: Linux gateway, Windows bridge Deployment reached over TCP with a generated secret', () => {
    const docs = rendered.default;
    const bridge = one(docs, 'Deployment', BRIDGE);
    expect(bridge.spec.template.spec.os.name).toBe('windows');
    expect(bridge.spec.template.spec.containers[0].image).toBe('ghcr.io/isapi-gateway/isapi-bridge-windows:0.1.0-ltsc2022');
    expect(one(docs, 'Deployment', FULL).spec.template.spec.os.name).toBe('linux');
    const secret = one(docs, 'Secret', `${FULL}-transport`);
    expect(Buffer.from(secret.data['shared-secret'], 'base64').toString()).toMatch(/^[A-Za-z0-9]{48}$/);
    expect(find(docs, 'HorizontalPodAutoscaler')).toEqual([]);
    expect(find(docs, 'ServiceMonitor')).toEqual([]);
    expect(find(docs, 'PodDisruptionBudget').map((p) => p.metadata.name).sort()).toEqual([FULL, BRIDGE]);
  });

  test('mixed-os-tcp: existing Secret and a DLL volume at C:\\isapi; no Secret rendered', () => {
    const docs = rendered['mixed-os-tcp'];
    expect(find(docs, 'Secret')).toEqual([]);
    const spec = one(docs, 'Deployment', BRIDGE).spec.template.spec;
    const secretVolume = spec.volumes.find((v: { name: string }) => v.name === 'transport-secret');
    expect(secretVolume.secret).toMatchObject({ secretName: 'isapi-transport', items: [{ key: 'token', path: 'shared-secret' }] });
    expect(spec.volumes.find((v: { name: string }) => v.name === 'extensions')).toEqual({
      name: 'extensions',
      persistentVolumeClaim: { claimName: 'isapi-dlls' },
    });
    expect(spec.containers[0].volumeMounts).toEqual(
      expect.arrayContaining([{ name: 'extensions', mountPath: 'C:\\isapi', readOnly: true }]),
    );
    const svc = one(docs, 'Service', FULL);
    expect(svc.spec).toMatchObject({ type: 'LoadBalancer', externalTrafficPolicy: 'Local', loadBalancerSourceRanges: ['10.0.0.0/8'] });
    const config = parseYaml(one(docs, 'ConfigMap', FULL).data['gateway.yaml']);
    expect(config.routes).toEqual([{ prefix: '/legacy/', upstream: 'iis' }]);
    expect(config.upstreams).toEqual({ iis: { targets: ['http://iis-1:80'] } });
  });

  test('same-pod-windows: both containers in one Windows pod over loopback TCP, no bridge Deployment', () => {
    const docs = rendered['same-pod-windows'];
    expect(find(docs, 'Deployment').map((d) => d.metadata.name)).toEqual([FULL]);
    expect(find(docs, 'Service', BRIDGE)).toEqual([]);
    expect(find(docs, 'NetworkPolicy')).toEqual([]);
    const spec = one(docs, 'Deployment', FULL).spec.template.spec;
    expect(spec.os.name).toBe('windows');
    expect(spec.containers.map((c: { name: string }) => c.name)).toEqual(['gateway', 'bridge']);
    const [gateway, bridge] = spec.containers;
    expect(gateway.image).toBe('ghcr.io/isapi-gateway/isapi-bridge-windows:0.1.0-ltsc2022');
    expect(gateway.command).toEqual(['C:\\nodejs\\node.exe', 'C:\\app\\dist\\gateway\\cli.js']);
    expect(bridge.args.slice(0, 2)).toEqual(['--listen', 'tcp://127.0.0.1:9000']);
    expect(bridge.ports).toBeUndefined();
  });

  test('same-pod-linux: unix socket on a shared emptyDir, no secret at all', () => {
    const docs = rendered['same-pod-linux'];
    expect(find(docs, 'Secret')).toEqual([]);
    const spec = one(docs, 'Deployment', FULL).spec.template.spec;
    expect(spec.os.name).toBe('linux');
    expect(spec.volumes.find((v: { name: string }) => v.name === 'bridge-socket')).toEqual({ name: 'bridge-socket', emptyDir: {} });
    for (const c of spec.containers) {
      expect(c.volumeMounts).toEqual(expect.arrayContaining([{ name: 'bridge-socket', mountPath: '/run/isapi-gateway' }]));
    }
    expect(spec.containers[1].image).toBe('ghcr.io/isapi-gateway/isapi-bridge:0.1.0');
  });

  test('linux-bridge: Linux bridge pods with .so libraries from a volume at /opt/isapi', () => {
    const spec = one(rendered['linux-bridge'], 'Deployment', BRIDGE).spec.template.spec;
    expect(spec.os.name).toBe('linux');
    expect(spec.tolerations).toBeUndefined();
    expect(spec.containers[0].image).toBe('ghcr.io/isapi-gateway/isapi-bridge:0.1.0');
    expect(spec.containers[0].volumeMounts).toEqual(expect.arrayContaining([{ name: 'extensions', mountPath: '/opt/isapi', readOnly: true }]));
    expect(one(rendered['linux-bridge'], 'Deployment', BRIDGE).spec.replicas).toBe(3);
  });

  test('monitoring: ServiceMonitor scrapes the admin port; dashboard ConfigMap carries the sidecar label', () => {
    const docs = rendered.monitoring;
    const sm = one(docs, 'ServiceMonitor', FULL);
    expect(sm.metadata.labels?.release).toBe('kube-prometheus-stack');
    const metricsSvc = find(docs, 'Service').filter((s) => matches(sm.spec.selector.matchLabels, s.metadata.labels));
    expect(metricsSvc.map((s) => s.metadata.name)).toEqual([`${FULL}-metrics`]);
    expect(metricsSvc[0].spec.ports.map((p: { name: string }) => p.name)).toContain(sm.spec.endpoints[0].port);
    expect(sm.spec.endpoints[0]).toMatchObject({ path: '/metrics', interval: '15s', scrapeTimeout: '10s' });
    expect(sm.spec.namespaceSelector).toEqual({ matchNames: [NAMESPACE] });
    // The public Service never exposes the admin port.
    expect(one(docs, 'Service', FULL).spec.ports.map((p: { name: string }) => p.name)).toEqual(['http']);

    const dash = one(docs, 'ConfigMap', `${FULL}-dashboards`);
    expect(dash.metadata.labels?.grafana_dashboard).toBe('1');
    expect(dash.metadata.annotations?.grafana_folder).toBe('ISAPI');
    const files = Object.keys(dash.data);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(() => JSON.parse(dash.data[f])).not.toThrow();
  });

  test('hpa: autoscaling/v2 on the gateway Deployment, which then leaves replicas alone', () => {
    const docs = rendered.hpa;
    const hpa = one(docs, 'HorizontalPodAutoscaler', FULL);
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: FULL });
    expect(hpa.spec).toMatchObject({ minReplicas: 2, maxReplicas: 6 });
    expect(hpa.spec.metrics.map((m: { resource: { name: string } }) => m.resource.name)).toEqual(['cpu', 'memory']);
    expect(one(docs, 'Deployment', FULL).spec.replicas).toBeUndefined();
    expect(one(docs, 'PodDisruptionBudget', FULL).spec).toMatchObject({ minAvailable: 1 });
    expect(one(docs, 'PodDisruptionBudget', FULL).spec.maxUnavailable).toBeUndefined();
  });

  test('external-bridge: no bridge objects, the gateway still gets the transport secret', () => {
    const docs = rendered['external-bridge'];
    expect(find(docs, 'Deployment').map((d) => d.metadata.name)).toEqual([FULL]);
    expect(find(docs, 'NetworkPolicy')).toEqual([]);
    expect(one(docs, 'ConfigMap', FULL).data['bridge.json']).toBeUndefined();
    const secret = one(docs, 'Secret', `${FULL}-transport`);
    expect(Buffer.from(secret.data['shared-secret'], 'base64').toString()).toBe('not-a-real-secret-ci-only');
  });
});

// ---------------------------------------------------------------------------
// Wine bridge mode: what the Wine engineer specified for docker/bridge-wine.Dockerfile.

const WINE_DOCKERFILE = fs.readFileSync(path.join(ROOT, 'docker', 'bridge-wine.Dockerfile'), 'utf8');
/** WINEPREFIX as the image sets it: where its prefix was built. */
const IMAGE_WINEPREFIX = /\bWINEPREFIX=(\S+)/.exec(WINE_DOCKERFILE)?.[1];
const IMAGE_USER = /^USER (\d+)/m.exec(WINE_DOCKERFILE)?.[1];

/** A Kubernetes memory quantity in MiB (the forms the chart uses). */
function mebibytes(q: string | number): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q));
  if (!m) throw new Error(`unexpected quantity ${q}`);
  const factor: Record<string, number> = { '': 1 / 2 ** 20, Ki: 1 / 1024, Mi: 1, Gi: 1024, Ti: 2 ** 20, k: 1e3 / 2 ** 20, M: 1e6 / 2 ** 20, G: 1e9 / 2 ** 20, T: 1e12 / 2 ** 20 };
  return Number(m[1]) * factor[m[2] ?? ''];
}

type Container = K8sObject;
const named = (list: Container[] | undefined, name: string): Container | undefined => (list ?? []).find((x) => x.name === name);
const envOf = (c: Container): Record<string, string> => Object.fromEntries((c.env ?? []).map((e: { name: string; value: string }) => [e.name, e.value]));

/** The pod hosting the bridge in a mode, and its bridge container. */
function bridgePod(mode: string): { spec: K8sObject; bridge: Container } {
  const docs = rendered[mode];
  const deploy = find(docs, 'Deployment', BRIDGE)[0] ?? one(docs, 'Deployment', FULL);
  const spec = deploy.spec.template.spec;
  return { spec, bridge: named(spec.containers, 'bridge')! };
}

/** The volume behind a container's mount at exactly `mountPath`. */
function volumeAt(spec: K8sObject, c: Container, mountPath: string): K8sObject | undefined {
  const mount = (c.volumeMounts ?? []).find((m: { mountPath: string }) => m.mountPath === mountPath);
  return mount && spec.volumes.find((v: { name: string }) => v.name === mount.name);
}

describe('Wine bridge', () => {
  test('the Dockerfile facts the chart relies on are where the tests read them', () => {
    expect(IMAGE_WINEPREFIX).toBe('/opt/wine/prefix');
    expect(IMAGE_USER).toBe('1000');
    expect(WINE_DOCKERFILE).toContain('EXPOSE 9000');
  });

  test.each(['wine', 'same-pod-wine'])('%s: isapi-bridge-wine on Linux nodes, uid 1000, no Windows fields', (mode) => {
    const { spec, bridge } = bridgePod(mode);
    expect(spec.os).toEqual({ name: 'linux' });
    expect(spec.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(spec.tolerations).toBeUndefined();
    expect(spec.securityContext.windowsOptions).toBeUndefined();
    expect(JSON.stringify(spec)).not.toMatch(/windows|ContainerUser|C:\\\\/i);
    expect(bridge.image).toBe(
      mode === 'wine' ? 'ghcr.io/example/isapi-bridge-wine:0.1.0-wine9' : 'ghcr.io/isapi-gateway/isapi-bridge-wine:0.1.0',
    );
    expect(bridge.securityContext.runAsUser).toBe(Number(IMAGE_USER));
    expect(bridge.securityContext.readOnlyRootFilesystem).toBe(true);
  });

  test('wine: TCP port 9000 behind the bridge Service, with the Linux bridge\u2019s config and secret mounts', () => {
    const { bridge } = bridgePod('wine');
    const linux = bridgePod('linux-bridge').bridge;
    expect(bridge.ports).toEqual([{ name: 'transport', containerPort: 9000, protocol: 'TCP' }]);
    expect(one(rendered.wine, 'Service', BRIDGE).spec.ports).toEqual([{ name: 'transport', port: 9000, targetPort: 'transport', protocol: 'TCP' }]);
    const mountsOf = (c: Container, names: string[]): unknown[] => c.volumeMounts.filter((m: { name: string }) => names.includes(m.name));
    expect(mountsOf(bridge, ['config', 'transport-secret'])).toEqual(mountsOf(linux, ['config', 'transport-secret']));
    expect(mountsOf(bridge, ['config', 'transport-secret'])).toHaveLength(2);
    expect(bridge.args).toEqual(linux.args);
  });

  test('wine: a startup probe allows at least 20 s before liveness applies', () => {
    const { bridge } = bridgePod('wine');
    const p = bridge.startupProbe;
    expect(p.tcpSocket).toEqual({ port: 'transport' });
    expect(p.initialDelaySeconds + p.periodSeconds * p.failureThreshold).toBeGreaterThanOrEqual(20);
    expect(bridge.livenessProbe.tcpSocket).toEqual({ port: 'transport' });
    expect(bridge.readinessProbe.tcpSocket).toEqual({ port: 'transport' });
  });

  test.each(['wine', 'same-pod-wine'])('%s: about 200 MiB more memory than the Linux bridge (idle Wine node.exe ~170 MB)', (mode) => {
    const wine = bridgePod(mode).bridge.resources;
    const linux = bridgePod('linux-bridge').bridge.resources;
    for (const kind of ['requests', 'limits'] as const) {
      const extra = mebibytes(wine[kind].memory) - mebibytes(linux[kind].memory);
      expect([kind, extra >= (170 * 1e6) / 2 ** 20 && extra <= 256]).toEqual([kind, true]);
    }
    expect(wine.requests.cpu).toBe(linux.requests.cpu);
    // The copied prefix lives on node disk: the scheduler should know.
    expect(mebibytes(wine.requests['ephemeral-storage'])).toBeGreaterThanOrEqual(700);
  });

  test.each(['wine', 'same-pod-wine'])('%s: read-only root, /tmp and a copy of the image\u2019s prefix on emptyDirs', (mode) => {
    const { spec, bridge } = bridgePod(mode);
    const env = envOf(bridge);
    expect(volumeAt(spec, bridge, '/tmp')?.emptyDir).toEqual({});
    // WINEPREFIX is a subdirectory of an emptyDir, not its root: the root of an
    // emptyDir belongs to root and Wine refuses a prefix it does not own.
    const prefix = env.WINEPREFIX;
    expect(prefix).toBe('/opt/wine/writable/prefix');
    const stateMount = bridge.volumeMounts.find((m: { mountPath: string }) => prefix.startsWith(`${m.mountPath}/`));
    expect(stateMount).toBeDefined();
    expect(stateMount.readOnly ?? false).toBe(false);
    const stateVolume = spec.volumes.find((v: { name: string }) => v.name === stateMount.name);
    expect(stateVolume.emptyDir).toEqual({ sizeLimit: '2Gi' });
    // The image's own prefix path is not hidden by a mount.
    expect(bridge.volumeMounts.map((m: { mountPath: string }) => m.mountPath)).not.toContain(IMAGE_WINEPREFIX);
    expect(env.HOME).toBe('/tmp');
    expect(env.WINEDEBUG).toBe('-all');

    // The init container fills it from the image, as the same user, before the bridge starts.
    expect(spec.initContainers.map((c: Container) => c.name)).toEqual(['wine-prefix']);
    const init = spec.initContainers[0];
    expect(init.image).toBe(bridge.image);
    expect(init.securityContext).toEqual(bridge.securityContext);
    expect(envOf(init)).toEqual({ IMAGE_WINEPREFIX, WINEPREFIX: prefix });
    expect(init.command).toEqual(['/bin/sh', '-ec', 'rm -rf "$WINEPREFIX" && cp -a "$IMAGE_WINEPREFIX" "$WINEPREFIX"']);
    expect(init.volumeMounts).toEqual([{ name: stateMount.name, mountPath: stateMount.mountPath }]);
  });

  test('wine: the gateway config names the bridge Service as a remote bridge, with the secret', () => {
    const docs = rendered.wine;
    const config = parseYaml(one(docs, 'ConfigMap', FULL).data['gateway.yaml']);
    expect(config.bridges).toEqual({
      default: {
        mode: 'remote',
        address: `tcp://${BRIDGE}.${NAMESPACE}.svc.cluster.local:9000`,
        secretFile: '/etc/isapi-gateway/secret/shared-secret',
      },
    });
    expect(config.apps.map((a: { library: string; bridge: string }) => [a.library, a.bridge])).toEqual([['/opt/isapi/samples/hello.dll', 'default']]);
    const gwSpec = one(docs, 'Deployment', FULL).spec.template.spec;
    expect(gwSpec.initContainers).toBeUndefined();
    expect(named(gwSpec.containers, 'bridge')).toBeUndefined();
    const secret = one(docs, 'Secret', `${FULL}-transport`);
    expect(secret.data['shared-secret']).toBeDefined();
  });

  test('same-pod-wine: Linux gateway + Wine container over loopback TCP with the secret (no unix socket)', () => {
    const docs = rendered['same-pod-wine'];
    expect(find(docs, 'Deployment').map((d) => d.metadata.name)).toEqual([FULL]);
    expect(find(docs, 'Service', BRIDGE)).toEqual([]);
    const spec = one(docs, 'Deployment', FULL).spec.template.spec;
    expect(spec.containers.map((c: Container) => c.name)).toEqual(['gateway', 'bridge']);
    const [gateway, bridge] = spec.containers;
    expect(gateway.image).toBe('ghcr.io/isapi-gateway/isapi-gateway:0.1.0');
    expect(bridge.args.slice(0, 2)).toEqual(['--listen', 'tcp://127.0.0.1:9000']);
    expect(spec.volumes.map((v: { name: string }) => v.name)).not.toContain('bridge-socket');
    const config = parseYaml(one(docs, 'ConfigMap', FULL).data['gateway.yaml']);
    expect(config.bridges).toEqual({
      default: { mode: 'remote', address: 'tcp://127.0.0.1:9000', secretFile: '/etc/isapi-gateway/secret/shared-secret' },
    });
    // runtime: wine is for a bridge the gateway spawns itself (mode local); this one is its own container.
    expect(config.bridges.default.runtime).toBeUndefined();
    expect(envOf(gateway).ISAPI_BRIDGE_RUNTIME).toBeUndefined();
    expect(one(docs, 'Secret', `${FULL}-transport`).data['shared-secret']).toBeDefined();
  });

  test.each(Object.keys(MODES))('%s: the gateway\u2019s own config parser accepts the rendered gateway.yaml', (mode) => {
    const config = parseYaml(one(rendered[mode], 'ConfigMap', FULL).data['gateway.yaml']);
    // The mounted secret file does not exist here: point at a stand-in with the same content shape.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'isapi-chart-config-'));
    try {
      fs.writeFileSync(path.join(dir, 'shared-secret'), 'not-a-real-secret');
      for (const b of Object.values(config.bridges) as Array<{ secretFile?: string }>) if (b.secretFile) b.secretFile = path.join(dir, 'shared-secret');
      fs.writeFileSync(path.join(dir, 'gateway.yaml'), stringifyYaml(config));
      const parsed = parseConfig(config, path.join(dir, 'gateway.yaml'), dir);
      const bridge = parsed.bridges.find((b) => b.name === 'default')!;
      expect(bridge.mode).toBe('remote');
      expect(bridge.runtime).toBeUndefined();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('readOnlyRootFilesystem false: no copy, the image\u2019s own prefix in the writable layer, /tmp still an emptyDir', () => {
    const docs = renderChart(helmBin, MODES.wine, ['bridge.containerSecurityContext.readOnlyRootFilesystem=false']);
    const spec = one(docs, 'Deployment', BRIDGE).spec.template.spec;
    const bridge = named(spec.containers, 'bridge')!;
    expect(spec.initContainers).toBeUndefined();
    expect(spec.volumes.map((v: { name: string }) => v.name)).not.toContain('wine-prefix');
    expect(envOf(bridge).WINEPREFIX).toBeUndefined();
    expect(bridge.securityContext.readOnlyRootFilesystem).toBe(false);
    expect(volumeAt(spec, bridge, '/tmp')?.emptyDir).toEqual({});
    expect(docs.flatMap(validateObject)).toEqual([]);
  });

  test('prefixSizeLimit "" leaves the emptyDir unbounded', () => {
    const spec = one(renderChart(helmBin, MODES.wine, ['bridge.wine.prefixSizeLimit=']), 'Deployment', BRIDGE).spec.template.spec;
    expect(spec.volumes.find((v: { name: string }) => v.name === 'wine-prefix')).toEqual({ name: 'wine-prefix', emptyDir: {} });
  });

  test('a startup budget under 20 s is refused in Wine mode, with the reason', () => {
    const wine = valuesArgs(MODES.wine);
    expect(helmFails([...wine, '--set', 'bridge.startupProbe.failureThreshold=3'])).toContain(
      'bridge.mode=wine: Windows node.exe under Wine needs up to 20 s to start',
    );
    expect(helmFails([...wine, '--set', 'bridge.startupProbe.enabled=false'])).toContain('liveness would apply after 0 s');
    // Without a startup probe, a liveness delay of 20 s or more is enough; without liveness, nothing to protect.
    expect(() => renderChart(helmBin, MODES.wine, ['bridge.startupProbe.enabled=false', 'bridge.livenessProbe.initialDelaySeconds=30'])).not.toThrow();
    expect(() => renderChart(helmBin, MODES.wine, ['bridge.startupProbe.enabled=false', 'bridge.livenessProbe.enabled=false'])).not.toThrow();
    // Native bridges keep whatever they are given.
    expect(() => renderChart(helmBin, MODES['linux-bridge'], ['bridge.startupProbe.failureThreshold=1'])).not.toThrow();
  });
});

describe('NetworkPolicy', () => {
  test.each(['default', 'mixed-os-tcp', 'linux-bridge', 'wine'])('%s: only this release\u2019s gateway pods may reach the bridges', (mode) => {
    const docs = rendered[mode];
    const policies = find(docs, 'NetworkPolicy');
    expect(policies).toHaveLength(1);
    const np = policies[0];
    const gatewayPod = one(docs, 'Deployment', FULL).spec.template;
    const bridgePod = one(docs, 'Deployment', BRIDGE).spec.template;

    expect(matches(np.spec.podSelector.matchLabels, bridgePod.metadata.labels)).toBe(true);
    expect(matches(np.spec.podSelector.matchLabels, gatewayPod.metadata.labels)).toBe(false);
    expect(np.spec.policyTypes).toEqual(['Ingress']);
    expect(np.spec.ingress).toHaveLength(1);
    const [rule] = np.spec.ingress;
    // One peer, selected by pod labels alone: no namespaceSelector or ipBlock
    // that would widen it beyond this namespace's gateway pods.
    expect(rule.from).toHaveLength(1);
    expect(Object.keys(rule.from[0])).toEqual(['podSelector']);
    const peer = rule.from[0].podSelector.matchLabels;
    expect(matches(peer, gatewayPod.metadata.labels)).toBe(true);
    expect(matches(peer, bridgePod.metadata.labels)).toBe(false);
    expect(peer['app.kubernetes.io/instance']).toBe('isapi');
    expect(rule.ports).toEqual([{ port: 'transport', protocol: 'TCP' }]);
    expect(bridgePod.spec.containers[0].ports.map((p: { name: string }) => p.name)).toEqual(['transport']);
  });

  test('networkPolicy.enabled=false renders none', () => {
    expect(find(renderChart(helmBin, [], ['networkPolicy.enabled=false']), 'NetworkPolicy')).toEqual([]);
  });
});

describe('values validation', () => {
  test('values.schema.json is strict: every object in it forbids unknown keys', () => {
    const schema = JSON.parse(fs.readFileSync(path.join(CHART, 'values.schema.json'), 'utf8'));
    const loose: string[] = [];
    const visit = (node: Record<string, unknown>, at: string): void => {
      if (node.type === 'object' && node.properties && node.additionalProperties !== false) loose.push(at);
      for (const [k, v] of Object.entries(node)) if (v && typeof v === 'object') visit(v as Record<string, unknown>, `${at}/${k}`);
    };
    visit(schema, '#');
    // Kubernetes objects passed through verbatim (EnvVar, Volume, VolumeMount):
    // the rendered manifests are validated against their real schemas instead.
    const passThrough = ['#/definitions/envVars/items', '#/definitions/volumes/items', '#/definitions/volumeMounts/items'];
    expect(loose).toEqual(passThrough);
  });

  test('a wrong type is rejected with a message naming the field', () => {
    expect(helmFails(['--set', 'gateway.replicaCount=two'])).toContain('gateway.replicaCount: Invalid type. Expected: integer, given: string');
  });

  test('an unknown key is rejected (a typo does not silently do nothing)', () => {
    expect(helmFails(['--set', 'gateway.replicas=3'])).toContain('Additional property replicas is not allowed');
  });

  test('enums name the allowed values', () => {
    expect(helmFails(['--set', 'bridge.os=macos'])).toMatch(/bridge\.os: bridge\.os must be one of the following: "windows", "linux"/);
    expect(helmFails(['--set', 'bridge.placement=sidecar'])).toMatch(/bridge\.placement must be one of the following/);
  });

  test('a same-pod Linux gateway with a Windows bridge is refused: the two OSes never share a pod', () => {
    const msg = helmFails(['--set', 'bridge.placement=same-pod']);
    expect(msg).toContain('gateway.os=linux and the bridge runs on windows nodes');
    expect(msg).toContain('Kubernetes can never run Linux and Windows containers in the same pod');
  });

  test('a same-pod Windows gateway with a Linux bridge (or Wine) is refused too', () => {
    expect(helmFails(['--set', 'gateway.os=windows', '--set', 'bridge.os=linux', '--set', 'bridge.placement=same-pod'])).toContain(
      'Linux and Windows containers',
    );
    expect(
      helmFails(['--set', 'gateway.os=windows', '--set', 'bridge.os=linux', '--set', 'bridge.mode=wine', '--set', 'bridge.placement=same-pod']),
    ).toContain('Linux and Windows containers');
  });

  test('wine on Windows nodes is refused with the reason', () => {
    expect(helmFails(['--set', 'bridge.mode=wine'])).toContain('bridge.mode=wine runs Windows DLLs under Wine on Linux nodes');
  });

  test('a disabled bridge needs an external tcp:// address', () => {
    expect(helmFails(['--set', 'bridge.enabled=false'])).toContain('bridge.enabled=false needs bridge.external.address');
    expect(helmFails(['--set', 'bridge.enabled=false', '--set', 'bridge.external.address=unix:/x.sock'])).toContain(
      "bridge.external.address: Does not match pattern",
    );
  });

  test('an app routed to an unknown bridge is refused', () => {
    expect(helmFails(['--set', 'apps[0].name=a', '--set', 'apps[0].mount=/a.dll', '--set', 'apps[0].library=a.dll', '--set', 'apps[0].bridge=nope'])).toContain(
      'apps[a].bridge=nope is neither "default" nor a key of extraBridges',
    );
  });

  test('a chart without its dashboard copy refuses metrics.dashboard.enabled and says how to fix it', () => {
    const copy = scratchChart();
    try {
      for (const f of fs.readdirSync(path.join(copy, 'dashboards'))) if (f.endsWith('.json')) fs.rmSync(path.join(copy, 'dashboards', f));
      const r = helm(helmBin, ['template', 'isapi', copy, '--set', 'metrics.dashboard.enabled=true']);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('run scripts/sync-dashboard.sh');
    } finally {
      fs.rmSync(path.dirname(copy), { recursive: true, force: true });
    }
  });
});

describe('NOTES.txt', () => {
  // helm template never prints NOTES, and install needs a cluster; a scratch
  // copy renders it as a template, and --debug prints it although it is not YAML.
  test.each(Object.keys(MODES).filter((m) => m !== 'monitoring'))('%s: renders, with nothing missing', (mode) => {
    const copy = scratchChart();
    try {
      fs.renameSync(path.join(copy, 'templates', 'NOTES.txt'), path.join(copy, 'templates', 'notes.yaml'));
      const r = helm(helmBin, ['template', 'isapi', copy, '--namespace', NAMESPACE, '--show-only', 'templates/notes.yaml', '--debug', ...valuesArgs(MODES[mode])]);
      expect(r.stdout).toContain('is deployed as release "isapi" in namespace "legacy"');
      expect(r.stdout).toContain('/readyz');
      expect(r.stdout).not.toMatch(/<no value>|%!/);
    } finally {
      fs.rmSync(path.dirname(copy), { recursive: true, force: true });
    }
  });
});

describe('dashboard copy', () => {
  test('the chart\u2019s dashboards match metrics/dashboard (scripts/sync-dashboard.sh --check)', () => {
    expect(() => run('bash', [path.join(ROOT, 'scripts', 'sync-dashboard.sh'), '--check'])).not.toThrow();
  });
});
