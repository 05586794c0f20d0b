/**
 * Validates expositions with real tools: promtool (Debian package `prometheus`) and the
 * strict OpenMetrics parser of python3-prometheus-client. Fails, with the install
 * command, when a tool is missing.
 */
import { ALL_METRICS, mergeExposition, renderOpenMetrics, renderText, familiesFromJSON } from '../../metrics';
import { bridgeSnapshots, createWorld, gatewayJson, observeEveryMetric, simulateTraffic, type World } from './fixtures';
import { PROMTOOL, PYTHON3, requireTool } from './tools';
import {
  promtoolCheckMetrics,
  promtoolImportOpenMetrics,
  pythonOpenMetricsParse,
  structuralProblems,
} from './validators';

let world: World;

beforeAll(() => {
  world = createWorld(['b1', 'b2']);
  observeEveryMetric(world.gateway, 'gateway');
  for (const b of world.bridges) observeEveryMetric(b.metrics, 'bridge');
  for (let round = 0; round < 3; round++) simulateTraffic(world, round);
});

describe('tools', () => {
  it('finds promtool and Debian python3 with prometheus_client', () => {
    const promtool = requireTool(PROMTOOL);
    const python = requireTool(PYTHON3);
    process.stdout.write(`promtool: ${promtool}\npython3: ${python}\n`);
    expect(promtool).toMatch(/promtool$/);
  });
});

describe('a registry with every metric observed', () => {
  it('contains a sample of every defined metric', async () => {
    const gatewayText = await world.registry.metrics();
    const bridgeText = await world.bridges[0]!.registry.metrics();
    for (const def of ALL_METRICS) {
      const text = def.emitter === 'gateway' ? gatewayText : bridgeText;
      // A sample line: the name, then its labels or (a metric without labels) the value.
      const sample = new RegExp(`^${def.type === 'histogram' ? `${def.name}_count` : def.name}[{ ]`, 'm');
      expect({ name: def.name, present: sample.test(text) }).toEqual({ name: def.name, present: true });
    }
  });

  it('passes promtool check metrics as prom-client renders it (gateway and bridge)', async () => {
    for (const registry of [world.registry, world.bridges[0]!.registry]) {
      const verdict = await promtoolCheckMetrics(await registry.metrics());
      expect(verdict.ok ? 'ok' : verdict.report).toBe('ok');
    }
  });

  it('passes promtool check metrics as metrics/exposition renders it', async () => {
    const families = familiesFromJSON(await gatewayJson(world), 'gateway');
    const body = renderText(families);
    expect(structuralProblems(body, 'text')).toEqual([]);
    const verdict = await promtoolCheckMetrics(body);
    expect(verdict.ok ? 'ok' : verdict.report).toBe('ok');
  });

  it('renders valid OpenMetrics', async () => {
    const body = renderOpenMetrics(familiesFromJSON(await gatewayJson(world), 'gateway'));
    expect(structuralProblems(body, 'openmetrics')).toEqual([]);
    const strict = await pythonOpenMetricsParse(body);
    expect(strict.ok ? 'ok' : strict.report).toBe('ok');
    const imported = await promtoolImportOpenMetrics(body);
    expect(imported.ok ? 'ok' : imported.report).toBe('ok');
  });
});

describe('the merged exposition of the gateway and two bridges', () => {
  it('passes promtool check metrics in text format', async () => {
    const { body, rejected } = mergeExposition(await gatewayJson(world), await bridgeSnapshots(world), 'text');
    expect(rejected).toEqual([]);
    expect(body).toContain('bridge="b1"');
    expect(body).toContain('bridge="b2"');
    expect(structuralProblems(body, 'text')).toEqual([]);
    const verdict = await promtoolCheckMetrics(body);
    expect(verdict.ok ? 'ok' : verdict.report).toBe('ok');
  });

  it('is valid OpenMetrics (strict parser and promtool import)', async () => {
    const { body, rejected } = mergeExposition(await gatewayJson(world), await bridgeSnapshots(world), 'openmetrics');
    expect(rejected).toEqual([]);
    expect(structuralProblems(body, 'openmetrics')).toEqual([]);
    const strict = await pythonOpenMetricsParse(body);
    expect(strict.ok ? 'ok' : strict.report).toBe('ok');
    expect(strict.families).toBeGreaterThanOrEqual(ALL_METRICS.length);
    const imported = await promtoolImportOpenMetrics(body);
    expect(imported.ok ? 'ok' : imported.report).toBe('ok');
  });

  it('is caught by the validators when broken (the checks have teeth)', async () => {
    const { body } = mergeExposition(await gatewayJson(world), await bridgeSnapshots(world), 'openmetrics');
    const noInf = body
      .split('\n')
      .filter((l) => !(l.startsWith('isapi_http_request_duration_seconds_bucket') && l.includes('le="+Inf"')))
      .join('\n');
    expect((await pythonOpenMetricsParse(noInf)).ok).toBe(false);
    const text = mergeExposition(await gatewayJson(world), await bridgeSnapshots(world), 'text').body;
    expect((await promtoolCheckMetrics(text.replace(/^# HELP isapi_bridge_up .*$/m, ''))).ok).toBe(false);
    expect(structuralProblems(`${text}${text}`, 'text')).not.toEqual([]);
  });
});
