import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { AccessLogWriter } from './access-log-writer';

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('AccessLogWriter', () => {
  test('the lines of one event-loop turn leave in one write, in order, one JSON object each', async () => {
    const writes: string[] = [];
    const log = new AccessLogWriter({ write: (text: string) => writes.push(text) });
    log.write({ n: 1 });
    log.write({ n: 2, path: '/a b' });
    log.write({ n: 3 });
    expect(writes).toEqual([]);
    await nextTurn();
    expect(writes).toEqual(['{"n":1}\n{"n":2,"path":"/a b"}\n{"n":3}\n']);
    log.write({ n: 4 });
    await nextTurn();
    expect(writes).toHaveLength(2);
    expect(writes[1]).toBe('{"n":4}\n');
  });

  test('a turn that gathers 64 KiB writes it at once rather than holding more', () => {
    const writes: string[] = [];
    const log = new AccessLogWriter({ write: (text: string) => writes.push(text) });
    const long = 'p'.repeat(1000);
    for (let i = 0; i < 70; i++) log.write({ i, path: long });
    expect(writes).toHaveLength(1);
    // It went out with the line that took it to 64 KiB, not later.
    const lineLength = writes[0]!.indexOf('\n') + 1;
    expect(writes[0]!.length).toBeGreaterThanOrEqual(64 * 1024);
    expect(writes[0]!.length - lineLength).toBeLessThan(64 * 1024);
    log.flush();
    expect(writes.join('').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { i: number }).i)).toEqual(
      Array.from({ length: 70 }, (_, i) => i),
    );
  });

  test('lines still gathered when the process exits are written before it goes', () => {
    // The build's copy: a separate Node process, as the gateway is (npm test builds first).
    const writer = path.join(__dirname, '..', 'dist', 'gateway', 'access-log-writer.js');
    const script = `require(${JSON.stringify(writer)}).accessLog.write({ last: true }); process.exit(3);`;
    let out = '';
    try {
      execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    } catch (err) {
      out = (err as { stdout: string; status: number }).stdout;
      expect((err as { status: number }).status).toBe(3);
    }
    expect(out).toBe('{"last":true}\n');
  });
});
