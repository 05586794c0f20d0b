import { RequestTable } from './request-table';

describe('RequestTable', () => {
  test('set, get, has and delete keep the size in step, and replacing a key does not count it twice', () => {
    const table = new RequestTable<string>();
    table.set(1, 'a');
    table.set(2, 'b');
    table.set(2, 'B');
    expect(table.size).toBe(2);
    expect(table.get(2)).toBe('B');
    expect(table.has(1)).toBe(true);
    expect(table.delete(1)).toBe(true);
    expect(table.delete(1)).toBe(false);
    expect(table.has(1)).toBe(false);
    expect(table.get(1)).toBeUndefined();
    expect(table.size).toBe(1);
  });

  test('keys and values list what is live after churn, including keys past 2^32 (ConnIDs, long-lived bridges)', () => {
    const table = new RequestTable<number>();
    for (let key = 1; key <= 10_000; key++) {
      table.set(key, key * 10);
      if (key > 3) table.delete(key - 3);
    }
    const big = 2 ** 40 + 7;
    table.set(big, 1);
    expect(table.keys().sort((a, b) => a - b)).toEqual([9998, 9999, 10_000, big]);
    expect(table.values().sort((a, b) => a - b)).toEqual([1, 99_980, 99_990, 100_000]);
    expect(table.get(big)).toBe(1);
    expect(table.size).toBe(4);
  });
});
