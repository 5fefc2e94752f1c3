/**
 * WindowedMax: the largest sample seen in each fixed time bucket over a sliding window, plus
 * the largest ever. Used for figures an operator (and bench/event-loop.ts) wants per period:
 * event-loop delay, lease renewal gaps. Pure: every call takes the caller's `now`, so it runs
 * under simulated time too. Memory is bounded by the bucket count.
 */
export interface Bucket { start: number; max: number; count: number }

export class WindowedMax {
  private ring: Bucket[] = [];
  private allTime = -Infinity;
  private samples = 0;

  constructor(readonly bucketMs = 1000, readonly keep = 120) {}

  add(now: number, value: number): void {
    this.samples++;
    if (value > this.allTime) this.allTime = value;
    const start = now - (now % this.bucketMs);
    let b = this.ring[this.ring.length - 1];
    if (!b || b.start !== start) {
      b = { start, max: value, count: 0 };
      this.ring.push(b);
      if (this.ring.length > this.keep) this.ring.shift();
    }
    b.count++;
    if (value > b.max) b.max = value;
  }

  /** Largest sample in buckets that began within the last windowMs (undefined: none). */
  max(now: number, windowMs: number): number | undefined {
    let m: number | undefined;
    for (const b of this.ring) if (b.start > now - windowMs && (m === undefined || b.max > m)) m = b.max;
    return m;
  }

  get maxEver(): number | undefined { return this.samples === 0 ? undefined : this.allTime; }
  get count(): number { return this.samples; }

  /** The kept buckets, oldest first. */
  buckets(): readonly Bucket[] { return this.ring; }
}
