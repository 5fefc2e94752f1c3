/**
 * Where a thread's time went, from the Linux scheduler's own accounting
 * (/proc/self/task/<tid>/schedstat: ns on a CPU, ns runnable but waiting for a CPU, slices).
 * The cluster worker's watchdog (cluster-worker-main.ts) reads the main thread's figures, so
 * that a mute for a silent lock engine says whether that thread was busy (a long turn of its
 * own), starved (runnable, but the CPU went to other threads or processes) or neither
 * (blocked: a synchronous call, or a GC pause waiting for V8's helper threads).
 * Elsewhere than Linux, or when the file cannot be read, there are no figures.
 */
import fs from 'node:fs';

export interface SchedTimes { /** ms on a CPU */ runMs: number; /** ms runnable, waiting for a CPU */ waitMs: number }

/** Parses schedstat's "<run ns> <wait ns> <slices>"; undefined if it is not that. */
export function parseSchedstat(text: string): SchedTimes | undefined {
  const f = text.trim().split(/\s+/).map(Number);
  if (f.length < 2 || !Number.isFinite(f[0]) || !Number.isFinite(f[1])) return undefined;
  return { runMs: f[0]! / 1e6, waitMs: f[1]! / 1e6 };
}

/** The thread's totals so far (tid: the main thread's is the process id). */
export function readThreadSched(tid: number): SchedTimes | undefined {
  try {
    return parseSchedstat(fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** How `silentMs` of wall time between two readings split up, for a log line. */
export function describeSilence(before: SchedTimes, after: SchedTimes, silentMs: number): string {
  const run = Math.max(0, after.runMs - before.runMs);
  const wait = Math.max(0, after.waitMs - before.waitMs);
  const other = Math.max(0, silentMs - run - wait);
  const what = wait >= run && wait >= other ? 'starved: runnable, but the CPU went to other threads or processes'
    : run >= other ? 'busy: a long turn of its own'
      : 'blocked: neither running nor runnable (a synchronous call, or a GC pause waiting for its helper threads)';
  return `on a CPU ${Math.round(run)} ms, waiting for a CPU ${Math.round(wait)} ms, neither ${Math.round(other)} ms: ${what}`;
}

/**
 * How many times its bound a silence may last when the silent thread spent it waiting for a
 * CPU. A starved thread is not wedged: the scheduler gives it the CPU back, and muting would
 * trade a few seconds of waiting for a whole recovery (every local lock lost). But a thread
 * starved without end is as useless to the cluster as a wedged one, hence a limit.
 */
export const STARVED_SILENCE_FACTOR = 4;

/**
 * The watchdog's rule for a silent thread: the silence counts against `boundMs` only for the
 * time the thread was not waiting for a CPU (on a CPU: a long turn; neither: blocked), and
 * the whole silence counts against STARVED_SILENCE_FACTOR × boundMs. Without the scheduler's
 * figures (not Linux, unreadable) every ms counts.
 */
export function silenceExceeds(silentMs: number, boundMs: number, before?: SchedTimes, after?: SchedTimes): boolean {
  if (silentMs > STARVED_SILENCE_FACTOR * boundMs) return true;
  const waited = before && after ? Math.max(0, after.waitMs - before.waitMs) : 0;
  return silentMs - waited > boundMs;
}

/**
 * Keeps the calling thread (the main thread: its id is the process's) busy until it has run
 * `ms` on a CPU — measured by the scheduler, so a loaded machine stretches the wall time but
 * not the work; without the figures, `ms` of wall time. Returns the ms it ran. Test faults only.
 */
export function busyFor(ms: number, tid = process.pid): number {
  const start = readThreadSched(tid);
  const t0 = performance.now();
  for (;;) {
    const wall = performance.now() - t0;
    const now = start && wall >= ms ? readThreadSched(tid) : undefined;
    if (!start && wall >= ms) return wall;
    if (start && now && now.runMs - start.runMs >= ms) return now.runMs - start.runMs;
  }
}
