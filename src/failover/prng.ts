/**
 * A small seeded PRNG (xorshift128+ over 32-bit halves, seeded through splitmix-style
 * mixing), so a randomized run is reproduced exactly by its seed.
 */
export class Prng {
  private s0: number; private s1: number; private s2: number; private s3: number;

  constructor(readonly seed: number) {
    let x = seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next(); this.s1 = next(); this.s2 = next(); this.s3 = next() | 1;
  }

  /** Uniform in [0, 1). */
  next(): number {
    // xoshiro128** step
    const r = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0; this.s3 ^= this.s1; this.s1 ^= this.s2; this.s0 ^= this.s3;
    this.s2 ^= t; this.s3 = rotl(this.s3, 11);
    this.s0 >>>= 0; this.s1 >>>= 0; this.s2 >>>= 0; this.s3 >>>= 0;
    return r / 4294967296;
  }

  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)); }

  pick<T>(xs: readonly T[]): T {
    if (!xs.length) throw new Error('Prng.pick: empty list');
    return xs[Math.floor(this.next() * xs.length)]!;
  }

  /** Pick a key of a weight table. */
  weighted<K extends string>(w: Partial<Record<K, number>>): K {
    const entries = Object.entries(w) as Array<[K, number]>;
    const total = entries.reduce((a, [, v]) => a + v, 0);
    let x = this.next() * total;
    for (const [k, v] of entries) { if ((x -= v) < 0) return k; }
    return entries[entries.length - 1]![0];
  }
}

function rotl(x: number, k: number): number { return ((x << k) | (x >>> (32 - k))) >>> 0; }

/** A fresh seed when none was given (printed by the runner so the run can be repeated). */
export function randomSeed(): number { return (Math.random() * 0x7fffffff) >>> 0; }
