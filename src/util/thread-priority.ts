/**
 * Raise the calling thread's CPU scheduling priority (Linux: setpriority on its thread id).
 * The cluster worker thread does it at start (cluster-worker-main.ts): on a loaded machine the
 * kernel shares the CPU between runnable threads, and a lease renewal that waits behind the
 * lock engine's (or another program's) time slices can miss its deadline even when nothing in
 * the process blocks it — corosync runs its membership thread at real-time priority for the
 * same reason. The worker only uses CPU for the traffic the lock engine gives it, so it
 * cannot starve anything for long. Needs CAP_SYS_NICE (root) to go below the process's nice
 * value; without it the priority stays as it is and the reason is returned.
 */
import os from 'node:os';
import koffi from 'koffi';

let gettid: (() => number) | undefined;

/** Lower this thread's nice value by `boost` (bounded at -20); returns what happened, for the log. */
export function raiseThreadPriority(boost: number): { ok: boolean; text: string } {
  try {
    gettid ??= koffi.load('libc.so.6').func('int gettid()') as () => number;
    const tid = gettid();
    const was = os.getPriority(tid);
    const want = Math.max(-20, was - boost);
    os.setPriority(tid, want);
    return { ok: true, text: `thread ${tid} runs at nice ${want} (the process at ${was})` };
  } catch (e) {
    return { ok: false, text: `thread priority unchanged: ${(e as Error).message}` };
  }
}
