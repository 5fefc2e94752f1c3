/**
 * A map for the per-lock tables that almost always hold one entry (a resource's locks, the
 * notify refs of their owners): the first entry lives in two fields of this object, a real Map
 * is made only when a second key arrives (and kept from then on). A Map's table is allocated
 * for four entries: ~320 B for one lock, against ~48 B here (bench/heap-per-lock.ts).
 *
 * Iteration order is insertion order, as with a Map, while it holds one entry or has its Map.
 * Deleting while iterating is allowed (as with a Map); adding while iterating is not needed
 * by any user and not supported.
 */
/** The key of an empty single slot (any value of K may be a key, undefined too). */
const NONE: unique symbol = Symbol('SlimMap: empty');

export class SlimMap<K, V> {
  private k: K | typeof NONE = NONE;
  private v: V | undefined = undefined;
  private m: Map<K, V> | undefined = undefined;

  get size(): number { return this.m !== undefined ? this.m.size : this.k === NONE ? 0 : 1; }

  get(key: K): V | undefined {
    if (this.m !== undefined) return this.m.get(key);
    return this.k === key ? this.v : undefined;
  }

  has(key: K): boolean {
    if (this.m !== undefined) return this.m.has(key);
    return this.k !== NONE && this.k === key;
  }

  set(key: K, value: V): this {
    if (this.m !== undefined) { this.m.set(key, value); return this; }
    if (this.k === NONE || this.k === key) { this.k = key; this.v = value; return this; }
    this.m = new Map([[this.k, this.v as V], [key, value]]);
    this.k = NONE;
    this.v = undefined;
    return this;
  }

  delete(key: K): boolean {
    if (this.m !== undefined) return this.m.delete(key);
    if (this.k === NONE || this.k !== key) return false;
    this.k = NONE;
    this.v = undefined;
    return true;
  }

  clear(): void {
    this.m?.clear();
    this.k = NONE;
    this.v = undefined;
  }

  *entries(): IterableIterator<[K, V]> {
    if (this.m !== undefined) { yield* this.m.entries(); return; }
    if (this.k !== NONE) yield [this.k, this.v as V];
  }

  *keys(): IterableIterator<K> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): IterableIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): IterableIterator<[K, V]> { return this.entries(); }
}
