import fs from 'node:fs';
import { createSpool, mapRegion } from '../bridge/spool';
import { SpoolFiles } from './spool-mapping';

const linux = process.platform === 'linux' ? describe : describe.skip;

/** Lines of /proc/self/maps that map this spool file. */
function mappingsOf(ino: string): number {
  return fs
    .readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((line) => line.split(/\s+/)[4] === ino).length;
}

linux('SpoolFiles and ConnectionSpool, against a real spool file of this process', () => {
  const { file, regions } = createSpool([256 * 1024, 256 * 1024]);
  const offer = { pid: process.pid, ...file };
  const region = new Uint8Array(mapRegion(regions[1]!));
  const at = regions[1]!.offset;
  const openFds = (): number => fs.readdirSync('/proc/self/fd').length;
  const noFrees = (): void => {
    throw new Error('no SPOOL_FREE expected');
  };
  const nextTick = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));

  test('hands out a piece as a view of the file, not a copy', () => {
    region.set(Buffer.from('spooled bytes'), 100);
    const spool = new SpoolFiles().attach(offer, noFrees)!;
    expect(spool).toBeDefined();
    expect(spool.size).toBe(file.size);
    const a = spool.take({ offset: at + 100, length: 13 });
    expect(a.bytes.toString()).toBe('spooled bytes');
    // The bridge writing the slot again shows through: that is why a piece is freed only after its write.
    region.set(Buffer.from('SPOOLED'), 100);
    expect(a.bytes.toString()).toBe('SPOOLED bytes');
    spool.detach();
  });

  test('frees pieces by offset, once each, in one SPOOL_FREE per turn; a piece held twice is a protocol error', async () => {
    const frees: number[][] = [];
    const files = new SpoolFiles();
    const spool = files.attach(offer, (offsets) => frees.push(offsets))!;
    const a = spool.take({ offset: at, length: 64 });
    const b = spool.take({ offset: at + 65536, length: 100 });
    const c = spool.take({ offset: at + 131072, length: 1000 });
    expect(files.heldBytes).toBe(1164);
    expect(() => spool.take({ offset: at + 65536, length: 64 })).toThrow(expect.objectContaining({ code: 'ERR_WIRE_BAD_VALUE', message: expect.stringContaining(`${at + 65536}`) }));
    c.release();
    a.release();
    a.release(); // a second release of one piece changes nothing
    expect(files.heldBytes).toBe(100);
    expect(frees).toEqual([]);
    await nextTick();
    expect(frees).toEqual([[at + 131072, at]]);
    b.release();
    expect(files.heldBytes).toBe(0);
    await nextTick();
    expect(frees).toEqual([[at + 131072, at], [at + 65536]]);
    // Freed, the offset may come again.
    spool.take({ offset: at, length: 64 }).release();
    await nextTick();
    expect(frees).toHaveLength(3);
    spool.detach();
  });

  test('after the connection closed, a release frees nothing (the bridge keeps those slots)', async () => {
    const frees: number[][] = [];
    const files = new SpoolFiles();
    const spool = files.attach(offer, (offsets) => frees.push(offsets))!;
    const other = files.attach(offer, noFrees)!;
    other.take({ offset: at + 4096, length: 10 });
    const a = spool.take({ offset: at, length: 64 });
    const b = spool.take({ offset: at + 64, length: 64 });
    a.release();
    spool.detach();
    expect(files.heldBytes).toBe(10); // what the other connection holds
    b.release();
    await nextTick();
    expect(frees).toEqual([]);
    expect(files.heldBytes).toBe(10);
    other.detach();
    expect(files.heldBytes).toBe(0);
    expect(a.bytes.length).toBe(64); // the mapping outlives the connection while a view holds it
  });

  test('connections of one bridge share one mapping, and keep no descriptor open', () => {
    const files = new SpoolFiles();
    const fds = openFds();
    const maps = mappingsOf(file.ino);
    const spools = [files.attach(offer, noFrees)!, files.attach(offer, noFrees)!, files.attach(offer, noFrees)!];
    expect(files.mappedCount).toBe(1);
    expect(openFds()).toBe(fds);
    expect(mappingsOf(file.ino)).toBe(maps + 1);
    spools[0]!.detach();
    spools[0]!.detach(); // a second detach of one connection changes nothing
    spools[1]!.detach();
    expect(files.mappedCount).toBe(1);
    spools[2]!.detach();
    expect(files.mappedCount).toBe(0);
  });

  test('an offer that failed once is not tried again, and is reported once with its reason', () => {
    const declined: string[] = [];
    const files = new SpoolFiles((o, reason) => declined.push(`${o.pid}: ${reason}`));
    const bad = { ...offer, ino: String(BigInt(file.ino) + 1n) };
    expect([files.attach(bad, noFrees), files.attach(bad, noFrees), files.attach(bad, noFrees)]).toEqual([undefined, undefined, undefined]);
    expect(declined).toEqual([`${process.pid}: /proc/${process.pid}/fd/${file.fd} is not the file the bridge named`]);
    const ok = files.attach(offer, noFrees)!;
    expect(ok).toBeDefined();
    ok.detach();
  });

  test.each([
    ['another file behind the descriptor', { ...offer, ino: String(BigInt(file.ino) + 1n) }, 'is not the file the bridge named'],
    ['a process that does not exist', { ...offer, pid: 0x7ffffff0 }, 'ENOENT'],
    ['a descriptor that is not open', { ...offer, fd: 100000 }, 'ENOENT'],
    ['a file smaller than offered', { ...offer, size: file.size + 1 }, `not the ${file.size + 1} offered`],
  ])('declines %s, leaving nothing open or mapped', (_label, bad, reason) => {
    const reasons: string[] = [];
    const files = new SpoolFiles((_o, why) => reasons.push(why));
    const fds = openFds();
    const maps = mappingsOf(file.ino);
    expect(files.attach(bad, noFrees)).toBeUndefined();
    expect(files.mappedCount).toBe(0);
    expect(openFds()).toBe(fds);
    expect(mappingsOf(file.ino)).toBe(maps);
    expect(reasons).toEqual([expect.stringContaining(reason)]);
  });
});
