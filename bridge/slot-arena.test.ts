import fs from 'node:fs';
import { FRAME_HEADER_SIZE } from './wire';
import { ARENA_SLOTS, SLOT_MIN_PAYLOAD, SLOT_PAYLOAD, SlotArena, arenaBytes, createArenaMemory } from './slot-arena';
import { createSpool } from './spool';

/** Two views of one arena, as the two threads hold them. */
function pair(slots: number): [SlotArena, SlotArena] {
  const memory = createArenaMemory(slots);
  return [new SlotArena(memory), new SlotArena(memory)];
}

describe('SlotArena, output (WriteClient frames)', () => {
  test('take gives the lowest free slot, with room for a frame header in front', () => {
    const [ext] = pair(4);
    const a = ext.take(SLOT_PAYLOAD)!;
    const b = ext.take(SLOT_MIN_PAYLOAD)!;
    expect(ext.slotOf(a)).toBe(0);
    expect(ext.slotOf(b)).toBe(1);
    expect(a.length).toBe(SLOT_PAYLOAD);
    expect(a.byteOffset).toBeGreaterThanOrEqual(FRAME_HEADER_SIZE);
    ext.releaseUnframed(a);
    expect(ext.slotOf(ext.take(SLOT_PAYLOAD)!)).toBe(0);
  });

  test('writes outside the slot sizes, and writes when every slot is in use, get no slot', () => {
    const [ext] = pair(2);
    expect(ext.take(SLOT_MIN_PAYLOAD - 1)).toBeUndefined();
    expect(ext.take(SLOT_PAYLOAD + 1)).toBeUndefined();
    expect(ext.take(SLOT_PAYLOAD)).toBeDefined();
    expect(ext.take(SLOT_PAYLOAD)).toBeDefined();
    expect(ext.take(SLOT_PAYLOAD)).toBeUndefined();
    expect(ext.slotOf(Buffer.alloc(10))).toBe(-1);
  });

  test('a framed slot stays taken until the main thread releases it; an unframed one comes back at once', () => {
    const [ext, main] = pair(2);
    const data = ext.take(SLOT_MIN_PAYLOAD)!;
    data.fill(7);
    const frame = ext.frame(data);
    expect(frame.length).toBe(SLOT_MIN_PAYLOAD + FRAME_HEADER_SIZE);
    expect(frame.byteOffset + FRAME_HEADER_SIZE).toBe(data.byteOffset);
    ext.releaseUnframed(data); // too late: it is a frame now
    const seen = main.view(ext.ref(frame));
    expect(seen.subarray(FRAME_HEADER_SIZE).every((b) => b === 7)).toBe(true);
    expect(ext.slotOf(ext.take(SLOT_MIN_PAYLOAD)!)).toBe(1);
    expect(ext.take(SLOT_MIN_PAYLOAD)).toBeUndefined();
    main.release(ext.ref(frame).slot);
    expect(ext.slotOf(ext.take(SLOT_MIN_PAYLOAD)!)).toBe(0);
  });
});

describe('SlotArena, input (request body)', () => {
  const bytes = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff));

  test('fill copies chunks of any size into slots in order, and the other side reads them back', () => {
    const [main, ext] = pair(8);
    const chunks = [bytes(1000, 1), bytes(SLOT_PAYLOAD * 2 + 5, 2), bytes(3, 3)];
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const parts = main.fill(chunks, total);
    expect(parts.length).toBe(3);
    const got = Buffer.concat(parts.map((p) => (p instanceof Uint8Array ? p : ext.view(p))));
    expect(got.equals(Buffer.concat(chunks))).toBe(true);
  });

  test('what finds no free slot goes as one buffer of its own; released slots are used again', () => {
    const [main, ext] = pair(2);
    const all = bytes(SLOT_PAYLOAD * 3 + 10, 9);
    const parts = main.fill([all], all.length);
    expect(parts.map((p) => (p instanceof Uint8Array ? 'own' : 'slot'))).toEqual(['slot', 'slot', 'own']);
    const own = parts[2] as Uint8Array;
    expect(own.byteOffset).toBe(0);
    expect(own.byteLength).toBe(own.buffer.byteLength);
    const views = parts.map((p) => (p instanceof Uint8Array ? p : ext.view(p)));
    expect(Buffer.concat(views).equals(all)).toBe(true);
    for (const v of views) ext.releaseView(v);
    expect(main.fill([bytes(10, 1)], 10).every((p) => !(p instanceof Uint8Array))).toBe(true);
  });
});

describe('SlotArena in the response spool (Linux)', () => {
  const linux = process.platform === 'linux' ? test : test.skip;

  linux('each thread maps the region; the file holds a framed payload where spoolOffset says', () => {
    const { file, regions } = createSpool([arenaBytes(ARENA_SLOTS), arenaBytes(ARENA_SLOTS)]);
    const memory = createArenaMemory(ARENA_SLOTS, regions[1]);
    // Two SlotArenas map the region twice, as an extension thread and the main thread do.
    const [writer, reader] = [new SlotArena(memory), new SlotArena(memory)];
    writer.take(SLOT_PAYLOAD); // slot 0 stays taken: the frame below is in slot 1
    const data = writer.take(40000)!;
    data.fill(0x5a);
    const ref = writer.ref(writer.frame(data));
    expect(ref.slot).toBe(1);
    expect(reader.view(ref).subarray(FRAME_HEADER_SIZE)).toEqual(Buffer.alloc(40000, 0x5a));

    const at = reader.spoolOffset(ref);
    expect(at).toBe(regions[1]!.offset + ref.start + FRAME_HEADER_SIZE);
    // What the gateway reads: the file through /proc, at that offset.
    const fd = fs.openSync(`/proc/self/fd/${file.fd}`, 'r');
    const got = Buffer.alloc(40002);
    expect(fs.readSync(fd, got, 0, got.length, at - 1)).toBe(got.length);
    fs.closeSync(fd);
    expect(got.subarray(1, 40001)).toEqual(Buffer.alloc(40000, 0x5a));
    expect([got[0], got[40001]]).not.toContain(0x5a);
    // Releasing on one side frees the slot for the other.
    reader.release(ref.slot);
    expect(writer.slotOf(writer.take(SLOT_PAYLOAD)!)).toBe(1);
  });

  linux('request body bytes cross through a mapped region too', () => {
    const { regions } = createSpool([arenaBytes(8)]);
    const memory = createArenaMemory(8, regions[0]);
    const [main, thread] = [new SlotArena(memory), new SlotArena(memory)];
    const body = Buffer.from(Array.from({ length: 100000 }, (_, i) => i % 251));
    const parts = main.fill([body.subarray(0, 30000), body.subarray(30000)], body.length);
    const got = Buffer.concat(parts.map((p) => (p instanceof Uint8Array ? p : thread.view(p))));
    expect(got).toEqual(body);
  });

  test('an arena in a SharedArrayBuffer has no place in the spool', () => {
    const arena = new SlotArena(createArenaMemory(4));
    const ref = arena.ref(arena.frame(arena.take(SLOT_PAYLOAD)!));
    expect(arena.spoolOffset(ref)).toBe(-1);
  });
});
