/**
 * A table of entries keyed by request number (a positive integer, growing by one
 * per request): one insert and one delete per request, a few dozen entries live
 * at a time, for as long as the bridge runs.
 *
 * Not a Map, on purpose. V8 keeps a Map's entries in a hash table that, with
 * deletes leaving holes, is replaced every few dozen requests here. The replaced
 * table keeps its entries until the next full GC (OrderedHashTable::Rehash in
 * V8's src/objects/ordered-hash-table.cc), and one in the old generation is a root
 * for every minor GC until then. So every request that a replaced table had held
 * survived its scavenges and was promoted: under hello load the bridge's main
 * thread promoted about 2 MB per scavenge, with ~9 ms pauses (bench/RESULTS.md,
 * session 7; gc-flags.ts has the other half of that story). A plain object is no
 * better in the long run: its integer keys become a dictionary, which is replaced
 * when full in the same way.
 *
 * Here the entries live in two arrays that are only replaced when the table
 * grows: open addressing on the key's low bits, linear probing, and deletion by
 * shifting the rest of the run back, which leaves no tombstones. Sequential keys
 * fall in consecutive slots, so probes are short.
 */
const EMPTY = 0;
const INITIAL_CAPACITY = 64;

export class RequestTable<V> {
  private keyAt: number[];
  private valueAt: Array<V | undefined>;
  private mask: number;
  private count = 0;

  constructor(capacity = INITIAL_CAPACITY) {
    const size = 2 ** Math.ceil(Math.log2(Math.max(4, capacity)));
    this.keyAt = new Array<number>(size).fill(EMPTY);
    this.valueAt = new Array<V | undefined>(size).fill(undefined);
    this.mask = size - 1;
  }

  get size(): number {
    return this.count;
  }

  get(key: number): V | undefined {
    const i = this.find(key);
    return i < 0 ? undefined : this.valueAt[i];
  }

  /** Adds or replaces. `key` must be a positive integer. */
  set(key: number, value: V): void {
    if (!(key > 0 && Number.isInteger(key))) throw new RangeError(`request table key must be a positive integer, got ${key}`);
    const found = this.find(key);
    if (found >= 0) {
      this.valueAt[found] = value;
      return;
    }
    // At most half full, so that probe runs stay short.
    if ((this.count + 1) * 2 > this.keyAt.length) this.grow();
    let i = key & this.mask;
    while (this.keyAt[i] !== EMPTY) i = (i + 1) & this.mask;
    this.keyAt[i] = key;
    this.valueAt[i] = value;
    this.count++;
  }

  delete(key: number): boolean {
    let hole = this.find(key);
    if (hole < 0) return false;
    // Backward-shift deletion: entries after the hole move up unless that would
    // put them before their home slot, so every run stays unbroken.
    for (let j = (hole + 1) & this.mask; this.keyAt[j] !== EMPTY; j = (j + 1) & this.mask) {
      const home = this.keyAt[j]! & this.mask;
      const homeBetween = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (homeBetween) continue;
      this.keyAt[hole] = this.keyAt[j]!;
      this.valueAt[hole] = this.valueAt[j];
      hole = j;
    }
    this.keyAt[hole] = EMPTY;
    this.valueAt[hole] = undefined;
    this.count--;
    return true;
  }

  keys(): number[] {
    return this.keyAt.filter((key) => key !== EMPTY);
  }

  private find(key: number): number {
    if (!(key > 0)) return -1; // Not a key this table can hold (an extension can pass any ConnID).
    for (let i = key & this.mask; ; i = (i + 1) & this.mask) {
      const at = this.keyAt[i];
      if (at === key) return i;
      if (at === EMPTY) return -1;
    }
  }

  private grow(): void {
    const keys = this.keyAt;
    const values = this.valueAt;
    const size = keys.length * 2;
    this.keyAt = new Array<number>(size).fill(EMPTY);
    this.valueAt = new Array<V | undefined>(size).fill(undefined);
    this.mask = size - 1;
    this.count = 0;
    keys.forEach((key, i) => {
      if (key !== EMPTY) this.set(key, values[i]!);
    });
  }
}
