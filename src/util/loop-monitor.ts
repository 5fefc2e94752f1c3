/**
 * LoopMonitor: how late this thread's event loop runs, per second, over the last minutes.
 * Node's monitorEventLoopDelay samples the lateness of a 10 ms timer; every second the
 * histogram is read into a bucket and reset. A turn that keeps the loop for 300 ms shows as
 * a 300 ms sample. Shown in `mxfsctl status`/`nodes --json` (`eventLoop`) and read by
 * bench/event-loop.ts, which picks the buckets of each phase by their wall-clock times.
 *
 * Real time only (perf_hooks); the whole-cluster simulation runs without one.
 */
import { IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

export interface LoopBucket { /** Wall-clock ms when the bucket closed. */ at: number; p50Ms: number; p99Ms: number; maxMs: number }

export interface LoopSnapshot {
  windowMs: number;
  /** Largest per-second p99 / max over the window (the current second included). */
  p99Ms: number;
  maxMs: number;
  maxEverMs: number;
  recent: LoopBucket[];
}

const ms = (ns: number) => Math.round(ns / 1e4) / 100;

export class LoopMonitor {
  private readonly h: IntervalHistogram;
  private ring: LoopBucket[] = [];
  private maxEver = 0;
  private timer?: NodeJS.Timeout;

  constructor(private readonly o: { bucketMs?: number; keep?: number; windowMs?: number } = {}) {
    this.h = monitorEventLoopDelay({ resolution: 10 });
  }

  start(): void {
    if (this.timer) return;
    this.h.enable();
    this.timer = setInterval(() => this.rotate(), this.o.bucketMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.h.disable();
  }

  private current(): LoopBucket | undefined {
    if (this.h.count === 0) return undefined;
    return { at: Date.now(), p50Ms: ms(this.h.percentile(50)), p99Ms: ms(this.h.percentile(99)), maxMs: ms(this.h.max) };
  }

  private rotate(): void {
    const b = this.current();
    this.h.reset();
    if (!b) return;
    this.maxEver = Math.max(this.maxEver, b.maxMs);
    this.ring.push(b);
    if (this.ring.length > (this.o.keep ?? 120)) this.ring.shift();
  }

  snapshot(): LoopSnapshot {
    const windowMs = this.o.windowMs ?? 60000;
    const now = Date.now();
    const cur = this.current();
    const recent = [...this.ring, ...(cur ? [cur] : [])];
    const inWindow = recent.filter((b) => b.at > now - windowMs);
    return {
      windowMs,
      p99Ms: Math.max(0, ...inWindow.map((b) => b.p99Ms)),
      maxMs: Math.max(0, ...inWindow.map((b) => b.maxMs)),
      maxEverMs: Math.max(this.maxEver, cur?.maxMs ?? 0),
      recent,
    };
  }
}
