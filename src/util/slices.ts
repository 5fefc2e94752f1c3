/**
 * Bounded work per turn. Loops over lock state that can hold 100 000 entries (a session's
 * purge, a recovery's collection, sending and rebuild, stopping a reset lock table's actors,
 * an inspection) run in slices of a fixed number of items and yield to the event loop
 * between slices, so none keeps the loop for more than a few milliseconds and timers, lease
 * traffic and other clients get their turn in between.
 *
 * Slices are counted in items, not in elapsed time: the whole-cluster simulation must replay
 * the same interleaving for the same seed, whatever the machine's speed. The sizes below were
 * measured (docs/benchmarks.md, "Bounded work per turn") to cost 1–3 ms each on the
 * reference machine.
 */

/** Items per slice, by kind of work (see the header). */
export const SLICE = {
  /** Purges routed for an ended session (each: the router, the DlmChannel or a lockspace mailbox). */
  purge: 1000,
  /** Lock records a session builds for a recovery (the session answers nothing meanwhile). */
  collect: 10000,
  /** Records grouped by master and handed to the DlmChannel. */
  send: 5000,
  /** Recovery messages (REC_BATCH records each) validated, encoded and handed to the links. */
  sendRec: 16,
  /** Messages a DlmChannel puts on the wire per turn (a go-back resends up to its window). */
  transmit: 256,
  /** Resources rebuilt from records (each: rebuild check, an adopt and the pending requests). */
  rebuild: 500,
  /** Actors stopped after a LockTable reset (nact's stop allocates and is GC-heavy). */
  stop: 500,
  /** Resources inspected concurrently per step of an inspection. */
  inspect: 64,
} as const;

/** Give the event loop a turn (timers, I/O, other actors) before going on. */
export function yieldTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * each(x) for every item, perSlice items per turn. Stops early, returning false, if
 * stillWanted() is false after a yield (a newer recovery took over, ...). The items are
 * taken from a copy when `items` is an array the caller may change meanwhile.
 */
export async function inSlices<T>(items: Iterable<T>, perSlice: number, each: (x: T) => void, stillWanted: () => boolean = () => true): Promise<boolean> {
  let n = 0;
  for (const x of items) {
    if (n >= perSlice) {
      n = 0;
      await yieldTurn();
      if (!stillWanted()) return false;
    }
    each(x);
    n++;
  }
  return true;
}
