/**
 * Injectable time. Every actor and timer in mxfsd takes a Clock instead of reaching for
 * Date.now/setTimeout, so a whole cluster can later run inside one process under simulated
 * time (deterministic fault simulation).
 */
export interface TimerHandle { readonly id: unknown }

export interface Clock {
  /** Monotonic milliseconds (not wall time). */
  now(): number;
  setTimer(fn: () => void, ms: number): TimerHandle;
  clearTimer(handle: TimerHandle | undefined): void;
}

/**
 * Each thread's performance.now() counts from when that thread started; this offset turns it
 * into milliseconds of the system's monotonic clock (CLOCK_MONOTONIC, what process.hrtime
 * reads), the same in every thread of the process. The cluster layer's worker thread and the
 * main thread compare lease deadlines on it (src/cluster/shared-lease.ts), so the offset must
 * not carry the time a thread was held between its two reads (a loaded machine can hold it
 * for milliseconds: 4 ms was seen at load 27). The hrtime read is bracketed by two
 * performance.now() reads, several times, and the tightest bracket is kept: the offset is
 * then wrong by at most half that bracket (MONOTONIC_OFFSET_ERROR_MS, typically well under a
 * microsecond; test/clock.test.ts checks it against another thread).
 */
export function monotonicOffset(
  perfNow: () => number = () => performance.now(), monoNow: () => number = () => Number(process.hrtime.bigint()) / 1e6,
): { offset: number; error: number } {
  let error = Infinity;
  let offset = 0;
  for (let i = 0; i < 32 && error > 0.001; i++) {
    const before = perfNow();
    const mono = monoNow();
    const after = perfNow();
    if ((after - before) / 2 < error) { error = (after - before) / 2; offset = mono - (before + after) / 2; }
  }
  return { offset, error };
}
const { offset: MONOTONIC_OFFSET, error: OFFSET_ERROR } = monotonicOffset();
/** How far this thread's systemClock.now() may be from CLOCK_MONOTONIC, at most (ms). */
export const MONOTONIC_OFFSET_ERROR_MS = OFFSET_ERROR;

/** The longest delay one Node timer takes: a longer one fires after 1 ms instead. */
export const MAX_NODE_TIMER_MS = 2 ** 31 - 1;

/** The real clock: monotonic milliseconds shared by every thread of the process, Node timers. */
export const systemClock: Clock = {
  now: () => performance.now() + MONOTONIC_OFFSET,
  setTimer(fn, ms) {
    if (!(ms > MAX_NODE_TIMER_MS)) {
      const t = setTimeout(fn, Math.max(0, ms));
      t.unref?.();
      return { id: t };
    }
    // Longer than Node's limit (a kernel request's u32 TIMEOUT_MS can be): a chain of timers,
    // the handle always naming the one pending, so clearTimer still stops it.
    const h: { id: NodeJS.Timeout } = { id: undefined as unknown as NodeJS.Timeout };
    const arm = (left: number) => {
      h.id = setTimeout(() => (left > MAX_NODE_TIMER_MS ? arm(left - MAX_NODE_TIMER_MS) : fn()), Math.min(left, MAX_NODE_TIMER_MS));
      h.id.unref?.();
    };
    arm(ms);
    return h;
  },
  clearTimer(handle) {
    if (handle) clearTimeout(handle.id as NodeJS.Timeout);
  },
};

/**
 * A manual clock for tests and simulation: time moves only when advance() is called, and
 * due timers fire in deadline order (ties in creation order), so runs are reproducible.
 */
export class ManualClock implements Clock {
  private t = 0;
  private seq = 0;
  private timers = new Map<number, { at: number; seq: number; fn: () => void }>();

  now(): number { return this.t; }

  setTimer(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), seq: id, fn });
    return { id };
  }

  clearTimer(handle: TimerHandle | undefined): void {
    if (handle) this.timers.delete(handle.id as number);
  }

  /** Move time forward by ms, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; seq: number; fn: () => void }] | undefined;
      for (const e of this.timers) {
        if (e[1].at <= end && (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[1].seq < next[1].seq))) next = e;
      }
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }

  pendingTimers(): number { return this.timers.size; }
}
