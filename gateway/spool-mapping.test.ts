import fs from 'node:fs';
import { createSpool, mapRegion } from '../bridge/spool';
import { SpoolFiles } from './spool-reader';

const linux = process.platform === 'linux' ? describe : describe.skip;

linux('SpoolFiles and SpoolReader, against a real spool file of this process', () => {
  const { file, regions } = createSpool([256 * 1024, 256 * 1024]);
  const offer = { pid: process.pid, ...file };
  const region = new Uint8Array(mapRegion(regions[1]!));
  const openFds = (): number => fs.readdirSync('/proc/self/fd').length;

  test('reads a piece by its offset in the file, into a pooled buffer', () => {
    region.set(Buffer.from('spooled bytes'), 100);
    const files = new SpoolFiles();
    const reader = files.attach(offer)!;
    expect(reader).toBeDefined();
    expect(reader.size).toBe(file.size);
    const a = reader.read({ offset: regions[1]!.offset + 100, length: 13 });
    const b = reader.read({ offset: regions[1]!.offset + 108, length: 5 });
    expect(a.toString()).toBe('spooled bytes');
    expect(b.toString()).toBe('bytes');
    // Copies, not views of the spool: the bridge may reuse the slot at once.
    region.set(Buffer.from('XXXXXXX'), 100);
    expect(a.toString()).toBe('spooled bytes');
    expect(a.buffer).toBe(b.buffer); // one pooled buffer for the pieces of one socket read
    expect(reader.endTurn()).toBe(2);
    expect(reader.endTurn()).toBe(0);
    reader.detach();
  });

  test('connections of one bridge share one open file; it closes with the last', () => {
    const files = new SpoolFiles();
    const before = openFds();
    const readers = [files.attach(offer)!, files.attach(offer)!, files.attach(offer)!];
    expect(files.openCount).toBe(1);
    expect(openFds()).toBe(before + 1);
    readers[0]!.detach();
    readers[0]!.detach(); // a second detach of one connection changes nothing
    readers[1]!.detach();
    expect(files.openCount).toBe(1);
    readers[2]!.detach();
    expect(files.openCount).toBe(0);
    expect(openFds()).toBe(before);
  });

  test('an offer that failed once is not tried again, and is reported once', () => {
    const declined: number[] = [];
    const files = new SpoolFiles((o) => declined.push(o.pid));
    const bad = { ...offer, ino: String(BigInt(file.ino) + 1n) };
    expect([files.attach(bad), files.attach(bad), files.attach(bad)]).toEqual([undefined, undefined, undefined]);
    expect(declined).toEqual([process.pid]);
    const ok = files.attach(offer)!;
    expect(ok).toBeDefined();
    ok.detach();
  });

  test.each([
    ['another file behind the descriptor', { ...offer, ino: String(BigInt(file.ino) + 1n) }],
    ['a process that does not exist', { ...offer, pid: 0x7ffffff0 }],
    ['a descriptor that is not open', { ...offer, fd: 100000 }],
    ['a file smaller than offered', { ...offer, size: file.size + 1 }],
  ])('declines %s', (_label, bad) => {
    const files = new SpoolFiles();
    const before = openFds();
    expect(files.attach(bad)).toBeUndefined();
    expect(files.openCount).toBe(0);
    expect(openFds()).toBe(before);
  });

  test('a piece the file does not hold is a protocol error', () => {
    const ok = new SpoolFiles().attach(offer)!;
    expect(() => ok.read({ offset: file.size - 10, length: 20 })).toThrow(expect.objectContaining({ code: 'ERR_WIRE_BAD_VALUE' }));
    ok.detach();
  });
});
