/**
 * MemoryReclaimer: gives the memory of a mass release back to the system once the daemon is
 * idle (issue 13, docs/limits.md "Memory after a mass release").
 *
 * Evicted resources are garbage in V8's old space, and V8 collects when JavaScript allocates:
 * an idle daemon allocates almost nothing, so after a mass release its RSS could stay at the
 * held level for minutes (docs/benchmarks.md, "Heap per held lock"). Every CHECK_MS this looks
 * at the lock engine's counters, and asks for ONE full collection when
 * - at least MIN_EVICTED resources were evicted since the last one it asked for, and at least
 *   as many as are alive now (the heap is mostly garbage: the collection's work, which is
 *   marking what lives, is small against what it frees);
 * - no more than MAX_LIVE resources are alive (bounds the pause: see below);
 * - the daemon was quiet over the last interval: no eviction (the release is over) and at most
 *   QUIET_OPS lock operations. A busy daemon allocates and V8 collects on its own.
 * If the daemon is still quiet at the next check, a second one: only then, with the allocation
 * rate low, does V8 shrink the young generation the fill grew (2 × 16 MiB) and give back the
 * old space's emptied pages (measured: 98 -> 64 MiB RSS at 100 000, docs/benchmarks.md). Not
 * always in that one: in about one run of three V8 gave back only part of its committed heap
 * (62 -> 43.5 MiB, the young generation's 32 MiB still there) and kept it for good, though
 * the next collection took it to 12.5 (2026-12-03, docs/benchmarks.md "The young generation
 * given back"). So while the daemon stays quiet, one more at each check as long as the last
 * gave back at least SHRINK_STEP bytes of committed heap or the young generation is still
 * YOUNG_MAX or more, at most MAX_FOLLOW_UPS after the first; then glibc is asked to return
 * the free memory of its arenas (malloc_trim), where what the collector took from malloc for a
 * large heap stays otherwise.
 *
 * The pause and safety: the collection runs on the lock engine's thread. It cannot cause a
 * grant: grants check the lease at the moment they are made (SharedLease), whatever the
 * thread was doing. It costs liveness only if it outlasts client_timeout_ms (5 s by default:
 * clients give up, and the cluster worker mutes the node). Lease renewals run on the cluster
 * worker's thread, with its own heap, and do not wait for it. MAX_LIVE keeps the marked set
 * small, but freeing the garbage costs too: measured (docs/benchmarks.md, "Fourth round") at
 * 142 ms after 100 000 evictions at load 22, and 2.3 s of wall time in-process after 1 M (the
 * client's garbage included) at load 30 on a 2-core machine.
 *
 * Real time only (the daemon's clock is the system clock): a simulated cluster runs none.
 * Counted in `mxfsctl status` (counters.idleCollections, mallocTrims) and in the metrics.
 */
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import koffi from 'koffi';
import type { LockStats } from '../actors/messages';

export const RECLAIM = {
  CHECK_MS: 5000,
  MIN_EVICTED: 10000,
  MAX_LIVE: 200000,
  QUIET_OPS: 100,
  /** Collections after the first, one per quiet check, while the last gave back SHRINK_STEP or left the young generation at YOUNG_MAX. */
  MAX_FOLLOW_UPS: 4,
  SHRINK_STEP: 4 * 1024 * 1024,
  /** A young generation this large after a collection is the fill's (an idle daemon's is ~1 MiB): collect again. */
  YOUNG_MAX: 8 * 1024 * 1024,
};

export interface ReclaimOptions {
  stats: LockStats;
  /** One full collection (absent: V8's, see fullGc()). */
  collect?: () => void;
  /** Return the free memory of malloc's arenas (absent: glibc's malloc_trim, see trimMalloc()). */
  trim?: () => void;
  /** Monotonic ms, to time the collection (status). */
  now?: () => number;
  /** Bytes of heap V8 has committed, and of it the young generation's (absent: V8's heap statistics). */
  heap?: () => { committed: number; young: number };
}

let gcFn: (() => void) | undefined | null = null;

/**
 * V8's full collection: `gc` of --expose-gc when the process has it, otherwise the flag set
 * at run time and `gc` taken from a new context (the main context's global is left alone).
 * Undefined when V8 refuses.
 */
export function fullGc(): (() => void) | undefined {
  if (gcFn !== null) return gcFn;
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return (gcFn = g);
  try {
    v8.setFlagsFromString('--expose-gc');
    const f = vm.runInNewContext('gc') as unknown;
    gcFn = typeof f === 'function' ? (f as () => void) : undefined;
  } catch {
    gcFn = undefined;
  }
  return gcFn;
}

let trimFn: ((pad: number) => number) | undefined | null = null;

/** glibc's malloc_trim(0); false where there is none (another libc). */
export function trimMalloc(): boolean {
  if (trimFn === null) {
    try { trimFn = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)') as (pad: number) => number; } catch { trimFn = undefined; }
  }
  if (!trimFn) return false;
  trimFn(0);
  return true;
}

export class MemoryReclaimer {
  /** Collections asked for (two to 1 + MAX_FOLLOW_UPS per mass eviction when the daemon stays quiet), malloc trims done, checks that found the daemon busy. */
  collections = 0;
  trims = 0;
  busySkips = 0;
  /** How long the longest collection so far kept the thread (ms), and the last malloc trim. */
  maxCollectMs = 0;
  lastTrimMs = 0;
  private evictedAtCollection: number;
  private lastEvictions: number;
  private lastOps: number;
  /** After a first collection, until the trim: follow-ups due at the quiet checks (see check()), and how many were done. */
  private shrinking = false;
  private followUps = 0;
  private timer?: NodeJS.Timeout;

  constructor(private readonly o: ReclaimOptions) {
    this.evictedAtCollection = o.stats.evictions;
    this.lastEvictions = o.stats.evictions;
    this.lastOps = o.stats.ops;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.check(), RECLAIM.CHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One look (the timer's; tests call it directly). Returns what it did. */
  check(): 'collected' | 'shrunk' | 'busy' | 'nothing' {
    const s = this.o.stats;
    const quiet = s.evictions === this.lastEvictions && s.ops - this.lastOps <= RECLAIM.QUIET_OPS;
    this.lastEvictions = s.evictions;
    this.lastOps = s.ops;
    if (this.shrinking) {
      // A look after the first: still quiet, so V8 sees a low allocation rate now and gives
      // back the young generation the fill grew (16 MiB semi-spaces) and the old space's free
      // pages — sometimes only part of it, so again at the next look while the last one gave
      // back SHRINK_STEP or left a YOUNG_MAX young generation; then malloc's arenas. Busy again: V8 collects on its own, nothing
      // more to do.
      if (!quiet) { this.shrinking = false; this.busySkips++; return 'busy'; }
      const before = this.heap().committed;
      this.collect();
      this.followUps++;
      const after = this.heap();
      const more = before - after.committed >= RECLAIM.SHRINK_STEP || after.young >= RECLAIM.YOUNG_MAX;
      if (more && this.followUps < RECLAIM.MAX_FOLLOW_UPS) return 'collected';
      this.shrinking = false;
      const t = this.now();
      if (this.o.trim) this.o.trim();
      else if (!trimMalloc()) return 'shrunk';
      this.lastTrimMs = this.now() - t;
      this.trims++;
      return 'shrunk';
    }
    const evicted = s.evictions - this.evictedAtCollection;
    if (evicted < RECLAIM.MIN_EVICTED || evicted < s.resources || s.resources > RECLAIM.MAX_LIVE) return 'nothing';
    if (!quiet) { this.busySkips++; return 'busy'; }
    if (!this.collect()) return 'nothing';
    this.evictedAtCollection = s.evictions;
    this.shrinking = true;
    this.followUps = 0;
    return 'collected';
  }

  private now(): number { return this.o.now ? this.o.now() : performance.now(); }

  private heap(): { committed: number; young: number } {
    if (this.o.heap) return this.o.heap();
    const young = v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space')?.physical_space_size ?? 0;
    return { committed: v8.getHeapStatistics().total_heap_size, young };
  }

  /** One full collection, timed; false when there is no way to ask for one. */
  private collect(): boolean {
    const collect = this.o.collect ?? fullGc();
    if (!collect) return false;
    const t = this.now();
    collect();
    this.maxCollectMs = Math.max(this.maxCollectMs, this.now() - t);
    this.collections++;
    return true;
  }
}
