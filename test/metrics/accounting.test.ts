import {
  APPEND_LOG_MAX_LENGTH,
  InvalidAccountingError,
  RequestAccountant,
  buildAccessLogEntry,
  createBridgeMetrics,
  createGatewayMetrics,
  createMetricsRegistry,
  emptyAccounting,
  formatAccessLogLine,
  recordAccounting,
  validateAccounting,
  type RequestAccounting,
} from '../../metrics';
import type { Registry } from 'prom-client';

/** Value of one series from the registry's JSON (undefined when the series does not exist). */
async function valueOf(registry: Registry, sample: string, labels: Record<string, string>): Promise<number | undefined> {
  for (const family of await registry.getMetricsAsJSON()) {
    for (const v of family.values as Array<{ value: number; labels: Record<string, unknown>; metricName?: string }>) {
      const name = v.metricName ?? family.name;
      if (name !== sample) continue;
      const keys = Object.keys(v.labels);
      if (keys.length === Object.keys(labels).length && keys.every((k) => String(v.labels[k]) === labels[k])) return v.value;
    }
  }
  return undefined;
}

function knownAccounting(): RequestAccounting {
  const acc = emptyAccounting();
  acc.syncWrites = 3;
  acc.syncWriteBytes = 1500;
  acc.asyncWrites = 7;
  acc.asyncWriteBytes = 70_000;
  acc.syncReads = 2;
  acc.syncReadBytes = 200;
  acc.asyncReads = 5;
  acc.asyncReadBytes = 5000;
  acc.transmitFileBytes = 1_048_576;
  acc.vectorSendBytes = 333;
  acc.maxOutstanding = 1;
  acc.rejectedSecondOutstanding = 2;
  acc.completionErrors = { '64': 2, '995': 1, '4242': 4, '31337': 1 };
  acc.ops.write = { count: 7, totalOutstandingSeconds: 0.7, maxOutstandingSeconds: 0.25 };
  acc.ops.read = { count: 5, totalOutstandingSeconds: 0.05, maxOutstandingSeconds: 0.02 };
  acc.ops.transmit_file = { count: 1, totalOutstandingSeconds: 1.5, maxOutstandingSeconds: 1.5 };
  acc.ssfCalls = {
    SEND_RESPONSE_HEADER_EX: { ok: 1, error: 0, unsupported: 0 },
    TRANSMIT_FILE: { ok: 1, error: 1, unsupported: 0 },
    GET_TRACE_INFO: { ok: 0, error: 0, unsupported: 3 },
    HSE_REQ_BOGUS: { ok: 0, error: 0, unsupported: 2 },
  };
  acc.appendLog = 'user=42&cart=7';
  return acc;
}

describe('recordAccounting', () => {
  it('adds exactly the reported values to the gateway counters', async () => {
    const registry = createMetricsRegistry();
    const m = createGatewayMetrics(registry, { processMetrics: false });
    const acc = knownAccounting();
    recordAccounting(m, { app: 'shop' }, acc);
    recordAccounting(m, { app: 'shop' }, acc); // twice: counters double exactly
    const app = 'shop';
    const expectations: Array<[string, Record<string, string>, number]> = [
      ['isapi_extension_write_client_calls_total', { app, mode: 'sync' }, 6],
      ['isapi_extension_write_client_calls_total', { app, mode: 'async' }, 14],
      ['isapi_extension_write_client_bytes_total', { app, mode: 'sync' }, 3000],
      ['isapi_extension_write_client_bytes_total', { app, mode: 'async' }, 140_000],
      ['isapi_extension_read_client_calls_total', { app, mode: 'sync' }, 4],
      ['isapi_extension_read_client_calls_total', { app, mode: 'async' }, 10],
      ['isapi_extension_read_client_bytes_total', { app, mode: 'sync' }, 400],
      ['isapi_extension_read_client_bytes_total', { app, mode: 'async' }, 10_000],
      ['isapi_extension_transmit_file_bytes_total', { app }, 2_097_152],
      ['isapi_extension_vector_send_bytes_total', { app }, 666],
      ['isapi_extension_async_second_outstanding_rejected_total', { app }, 4],
      ['isapi_extension_async_operations_total', { app, kind: 'write' }, 14],
      ['isapi_extension_async_operations_total', { app, kind: 'read' }, 10],
      ['isapi_extension_async_operations_total', { app, kind: 'transmit_file' }, 2],
      ['isapi_extension_async_operations_total', { app, kind: 'vector_send' }, 0],
      ['isapi_extension_async_completion_errors_total', { app, code: 'ERROR_NETNAME_DELETED' }, 4],
      ['isapi_extension_async_completion_errors_total', { app, code: 'ERROR_OPERATION_ABORTED' }, 2],
      ['isapi_extension_async_completion_errors_total', { app, code: 'other' }, 10],
      ['isapi_extension_server_support_function_calls_total', { app, request: 'SEND_RESPONSE_HEADER_EX', result: 'ok' }, 2],
      ['isapi_extension_server_support_function_calls_total', { app, request: 'TRANSMIT_FILE', result: 'ok' }, 2],
      ['isapi_extension_server_support_function_calls_total', { app, request: 'TRANSMIT_FILE', result: 'error' }, 2],
      ['isapi_extension_server_support_function_calls_total', { app, request: 'GET_TRACE_INFO', result: 'unsupported' }, 6],
      ['isapi_extension_server_support_function_calls_total', { app, request: 'UNKNOWN', result: 'unsupported' }, 4],
    ];
    for (const [name, labels, expected] of expectations) {
      expect({ name, labels, value: await valueOf(registry, name, labels) }).toEqual({ name, labels, value: expected });
    }
    // Zero SSF results create no series.
    expect(
      await valueOf(registry, 'isapi_extension_server_support_function_calls_total', {
        app,
        request: 'SEND_RESPONSE_HEADER_EX',
        result: 'error',
      }),
    ).toBeUndefined();
  });

  it('keeps counting after a scrape, and each app in its own series', async () => {
    const registry = createMetricsRegistry();
    const m = createGatewayMetrics(registry, { processMetrics: false });
    const acc = knownAccounting();
    recordAccounting(m, { app: 'shop' }, acc);
    expect(await valueOf(registry, 'isapi_extension_write_client_bytes_total', { app: 'shop', mode: 'async' })).toBe(70_000);
    recordAccounting(m, { app: 'shop' }, acc);
    recordAccounting(m, { app: 'cart' }, acc);
    expect(await valueOf(registry, 'isapi_extension_write_client_bytes_total', { app: 'shop', mode: 'async' })).toBe(140_000);
    expect(await valueOf(registry, 'isapi_extension_write_client_bytes_total', { app: 'cart', mode: 'async' })).toBe(70_000);
    expect(await valueOf(registry, 'isapi_extension_async_operations_total', { app: 'cart', kind: 'vector_send' })).toBe(0);
  });

  it('records nothing when the accounting is invalid', async () => {
    const registry = createMetricsRegistry();
    const m = createGatewayMetrics(registry, { processMetrics: false });
    const bad = knownAccounting();
    bad.ops.read.count = -1;
    expect(() => recordAccounting(m, { app: 'a' }, bad)).toThrow(InvalidAccountingError);
    expect(await valueOf(registry, 'isapi_extension_write_client_calls_total', { app: 'a', mode: 'sync' })).toBeUndefined();
  });
});

describe('validateAccounting', () => {
  it('accepts emptyAccounting and a JSON round trip of a full record', () => {
    expect(() => validateAccounting(emptyAccounting())).not.toThrow();
    expect(() => validateAccounting(JSON.parse(JSON.stringify(knownAccounting())))).not.toThrow();
  });

  it.each<[string, (a: Record<string, unknown>) => void]>([
    ['negative bytes', (a) => (a.syncWriteBytes = -5)],
    ['fractional count', (a) => (a.asyncWrites = 1.5)],
    ['NaN', (a) => (a.transmitFileBytes = Number.NaN)],
    ['string count', (a) => (a.syncReads = '3')],
    ['missing field', (a) => delete a.vectorSendBytes],
    ['unknown op kind', (a) => ((a.ops as Record<string, unknown>).exec_url = { count: 1, totalOutstandingSeconds: 0, maxOutstandingSeconds: 0 })],
    ['missing op kind', (a) => delete (a.ops as Record<string, unknown>).read],
    ['infinite seconds', (a) => ((a.ops as Record<string, { totalOutstandingSeconds: number }>).write!.totalOutstandingSeconds = Infinity)],
    ['non-numeric error code key', (a) => (a.completionErrors = { abc: 1 })],
    ['ssf result missing', (a) => (a.ssfCalls = { IO_COMPLETION: { ok: 1, error: 0 } })],
    ['appendLog not a string', (a) => (a.appendLog = 5)],
  ])('rejects %s with ERR_METRICS_INVALID_ACCOUNTING', (_what, mutate) => {
    const acc = JSON.parse(JSON.stringify(knownAccounting())) as Record<string, unknown>;
    mutate(acc);
    let caught: unknown;
    try {
      validateAccounting(acc);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidAccountingError);
    expect((caught as InvalidAccountingError).code).toBe('ERR_METRICS_INVALID_ACCOUNTING');
  });

  it('rejects non-objects', () => {
    expect(() => validateAccounting(null)).toThrow(InvalidAccountingError);
    expect(() => validateAccounting([])).toThrow(InvalidAccountingError);
  });
});

describe('RequestAccountant', () => {
  it('fills the accounting and keeps the live bridge metrics in step', async () => {
    const registry = createMetricsRegistry();
    const metrics = createBridgeMetrics(registry, { processMetrics: false });
    let now = 100;
    const a = new RequestAccountant({ app: 'hello', metrics, now: () => now });
    a.write('sync', 10);
    a.write('async', 20);
    a.read('sync', 5);
    a.read('async', 7);
    a.transmitFile(1000);
    a.vectorSend(50);
    a.ssf('HSE_REQ_IO_COMPLETION', 'ok');
    a.ssf('IO_COMPLETION', 'ok');
    a.ssf('HSE_REQ_WHATEVER', 'unsupported');
    const w = a.beginAsync('write');
    const r = a.beginAsync('read');
    expect(a.outstanding).toBe(2);
    expect(await valueOf(registry, 'isapi_extension_async_operations_outstanding', { app: 'hello', kind: 'write' })).toBe(1);
    now += 0.5;
    expect(a.completeAsync(w, 64)).toBeCloseTo(0.5);
    expect(a.completeAsync(w)).toBeUndefined(); // second completion ignored
    now += 0.25;
    expect(a.completeAsync(r)).toBeCloseTo(0.75);
    a.rejectSecondOutstanding();
    a.appendLog('a=1');
    a.appendLog('&b=2');

    const acc = a.snapshot();
    expect(() => validateAccounting(acc)).not.toThrow();
    expect(acc).toMatchObject({
      syncWrites: 1,
      syncWriteBytes: 10,
      asyncWrites: 1,
      asyncWriteBytes: 20,
      syncReads: 1,
      syncReadBytes: 5,
      asyncReads: 1,
      asyncReadBytes: 7,
      transmitFileBytes: 1000,
      vectorSendBytes: 50,
      maxOutstanding: 2,
      rejectedSecondOutstanding: 1,
      completionErrors: { '64': 1 },
      ssfCalls: { IO_COMPLETION: { ok: 2, error: 0, unsupported: 0 }, UNKNOWN: { ok: 0, error: 0, unsupported: 1 } },
      appendLog: 'a=1&b=2',
    });
    expect(acc.ops.write.count).toBe(1);
    expect(acc.ops.write.maxOutstandingSeconds).toBeCloseTo(0.5);
    expect(acc.ops.read.totalOutstandingSeconds).toBeCloseTo(0.75);
    expect(a.outstanding).toBe(0);
    expect(await valueOf(registry, 'isapi_extension_async_operations_outstanding', { app: 'hello', kind: 'write' })).toBe(0);
    expect(await valueOf(registry, 'isapi_extension_async_outstanding_seconds_count', { app: 'hello', kind: 'read' })).toBe(1);
    expect(await valueOf(registry, 'isapi_extension_async_outstanding_seconds_sum', { app: 'hello', kind: 'read' })).toBeCloseTo(0.75);
    // snapshot is a copy
    acc.syncWrites = 99;
    expect(a.snapshot().syncWrites).toBe(1);
  });

  it('caps the appended log', () => {
    const a = new RequestAccountant({ app: 'x' });
    a.appendLog('x'.repeat(APPEND_LOG_MAX_LENGTH - 2));
    a.appendLog('abcdef');
    expect(a.snapshot().appendLog).toBe(`${'x'.repeat(APPEND_LOG_MAX_LENGTH - 2)}ab`);
  });
});

describe('access log line', () => {
  it('carries the request and its accounting as one JSON object', () => {
    const line = formatAccessLogLine({
      requestId: 'req-1',
      app: 'shop',
      method: 'POST',
      path: '/scripts/shop.dll/cart',
      status: 200,
      bytesIn: 123,
      bytesOut: 456,
      durationSeconds: 0.0123456,
      accounting: knownAccounting(),
      time: new Date('2024-01-02T03:04:05.678Z'),
    });
    expect(line).not.toContain('\n');
    expect(JSON.parse(line)).toEqual({
      time: '2024-01-02T03:04:05.678Z',
      requestId: 'req-1',
      app: 'shop',
      method: 'POST',
      path: '/scripts/shop.dll/cart',
      status: 200,
      bytesIn: 123,
      bytesOut: 456,
      durationMs: 12.346,
      syncWrites: 3,
      syncWriteBytes: 1500,
      asyncWrites: 7,
      asyncWriteBytes: 70_000,
      asyncReadBytes: 5000,
      transmitFileBytes: 1_048_576,
      maxOutstanding: 1,
      longestPendingMs: 1500,
      appendLog: 'user=42&cart=7',
      rejectedSecondOutstanding: 2,
      completionErrors: { '64': 2, '995': 1, '4242': 4, '31337': 1 },
    });
  });

  it('writes what IIS logs beside the status only when there is something to say', () => {
    const base = { requestId: 'r', app: 'a', method: 'GET', path: '/x.dll', status: 200, bytesIn: 0, bytesOut: 0, durationSeconds: 0 };
    const quiet = JSON.parse(formatAccessLogLine({ ...base, accounting: emptyAccounting(), query: '', logData: '' })) as Record<string, unknown>;
    for (const key of ['query', 'ecbStatus', 'logData', 'rejectedSecondOutstanding', 'completionErrors', 'error']) expect(quiet).not.toHaveProperty(key);
    const told = JSON.parse(
      formatAccessLogLine({ ...base, query: `a=1&${'q'.repeat(5000)}`, ecbStatus: 418, logData: 'teapot', error: 'client closed the connection' }),
    ) as Record<string, unknown>;
    expect(told).toMatchObject({ ecbStatus: 418, logData: 'teapot', error: 'client closed the connection' });
    expect(told.query).toHaveLength(2048);
  });

  it('has the same keys without accounting and caps request-derived strings', () => {
    const withAcc = buildAccessLogEntry({
      requestId: 'r', app: 'a', method: 'GET', path: '/', status: 200, bytesIn: 0, bytesOut: 0, durationSeconds: 0,
      accounting: emptyAccounting(),
    });
    const without = buildAccessLogEntry({
      requestId: 'r', app: 'a', method: 'X'.repeat(100), path: `/${'p'.repeat(10_000)}`, status: 0, bytesIn: 0, bytesOut: 0,
      durationSeconds: -1,
    });
    expect(Object.keys(without)).toEqual(Object.keys(withAcc));
    expect(without.path.length).toBe(2048);
    expect(without.method.length).toBe(32);
    expect(without.durationMs).toBe(0);
    expect(without.appendLog).toBe('');
  });
});
