/**
 * An empty Map that refuses writes: one instance shared by many owners in place of a Map each
 * (memory per held lock, bench/heap-per-lock.ts). Reading, iterating and deleting work; a set()
 * throws `why`, so an owner that forgot to make the map its own fails loudly instead of sharing
 * state with every other owner.
 */
export class EmptyMap<K, V> extends Map<K, V> {
  constructor(private readonly why: string) { super(); }
  override set(): this { throw new Error(this.why); }
}
