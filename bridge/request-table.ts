/**
 * A table of entries keyed by a request's number (or its ECB ConnID): one insert
 * and one delete per request, a few dozen entries live at a time.
 *
 * Not a Map or Set, on purpose. V8 keeps a Map's entries in an ordered hash table
 * that, with deletes leaving holes, is replaced every few dozen inserts; the table
 * it replaces keeps its entries and a link to its successor until the next full
 * GC (OrderedHashTable::Rehash in V8's src/objects/ordered-hash-table.cc). Once
 * one such table has been promoted to the old generation, the requests every
 * later table held survive each minor GC and are promoted in turn. Under hello
 * load the bridge's main thread promoted about 2 MB per scavenge that way, with
 * ~9 ms pauses; with this table, 3 KB and ~0.6 ms (bench/RESULTS.md, session 7).
 * An object's integer-keyed elements live in a hash table that reuses deleted
 * entries in place and links to nothing.
 */
export class RequestTable<V> {
  private readonly entries: Record<number, V> = Object.create(null) as Record<number, V>;
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(key: number): V | undefined {
    return this.entries[key];
  }

  has(key: number): boolean {
    return this.entries[key] !== undefined;
  }

  /** Adds or replaces; `value` must not be undefined (that is how an absent key reads). */
  set(key: number, value: V): void {
    if (this.entries[key] === undefined) this.count++;
    this.entries[key] = value;
  }

  delete(key: number): boolean {
    if (this.entries[key] === undefined) return false;
    delete this.entries[key];
    this.count--;
    return true;
  }

  keys(): number[] {
    return Object.keys(this.entries).map(Number);
  }

  values(): V[] {
    return Object.values(this.entries);
  }
}
