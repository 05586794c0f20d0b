import { RequestTable } from './request-table';

describe('RequestTable', () => {
  test('set, get and delete keep the size in step, and replacing a key does not count it twice', () => {
    const table = new RequestTable<string>();
    table.set(1, 'a');
    table.set(2, 'b');
    table.set(2, 'B');
    expect(table.size).toBe(2);
    expect(table.get(2)).toBe('B');
    expect(table.get(1)).toBe('a');
    expect(table.delete(1)).toBe(true);
    expect(table.delete(1)).toBe(false);
    expect(table.get(1)).toBeUndefined();
    expect(table.size).toBe(1);
  });

  test('keys that collide (same low bits) stay findable through deletes on either side', () => {
    const table = new RequestTable<number>(8);
    // 3, 11, 19 and 27 share a home slot in 8 slots (and in 16 and 32 after growth, for 3 and 19).
    for (const key of [3, 11, 19, 27, 4, 5]) table.set(key, key * 10);
    table.delete(11);
    table.delete(3);
    expect([19, 27, 4, 5].map((k) => table.get(k))).toEqual([190, 270, 40, 50]);
    expect(table.keys().sort((a, b) => a - b)).toEqual([4, 5, 19, 27]);
  });

  test('agrees with a Map over a long run of requests, some of which stay (PENDING) while keys move on', () => {
    const table = new RequestTable<number>();
    const model = new Map<number, number>();
    let seed = 7;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const disagreements: number[] = [];
    for (let key = 1; key <= 60_000; key++) {
      table.set(key, key);
      model.set(key, key);
      // Most requests end soon; about one in a hundred stays for good.
      for (const [live, chance] of [[key - 1 - Math.floor(random() * 60), 0.6], [key - 2000, 0.99]] as const) {
        if (model.has(live) && random() < chance) {
          if (!table.delete(live)) disagreements.push(live);
          model.delete(live);
        }
      }
      if (key % 997 === 0) {
        if (table.size !== model.size) disagreements.push(-key);
        for (const k of model.keys()) if (table.get(k) !== k) disagreements.push(k);
      }
    }
    expect(disagreements).toEqual([]);
    expect(model.size).toBeGreaterThan(300); // the long-lived ones made the table grow and collide
    expect(table.keys().sort((a, b) => a - b)).toEqual([...model.keys()].sort((a, b) => a - b));
    for (const [k, v] of model) if (table.get(k) !== v) disagreements.push(k);
    expect(disagreements).toEqual([]);
  });

  test('keys past 2^32 work (a long-lived bridge); zero and non-keys are never found, and cannot be set', () => {
    const table = new RequestTable<string>();
    const big = 2 ** 40 - 3;
    table.set(big, 'big');
    table.set(big + 64, 'bigger');
    expect(table.get(big)).toBe('big');
    expect(table.get(big + 64)).toBe('bigger');
    expect(table.get(0)).toBeUndefined();
    expect(table.get(-1)).toBeUndefined();
    expect(() => table.set(0, 'x')).toThrow(RangeError);
    expect(() => table.set(1.5, 'x')).toThrow(/positive integer, got 1.5/);
  });
});
