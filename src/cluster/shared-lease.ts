/**
 * SharedLease: the few numbers the lock engine's thread and the cluster layer's worker
 * thread (cluster-worker.ts) must see at once, without waiting for each other's event loop:
 *
 *   quorumUntil  the worker's membership publishes its quorum deadline here the moment it
 *                changes, so canGrant() on the main thread is exact even while the main
 *                thread has not yet processed the worker's messages;
 *   mainBeat     the main thread writes the time here every beat; a worker that sees it
 *                stale for longer than the stall bound mutes itself (membership.ts), so a
 *                wedged main thread still ends in a fence;
 *   workerBeat   the worker writes the time here every beat (status: a wedged worker).
 *
 * Times are milliseconds of the system clock (systemClock.now(): the same monotonic clock in
 * every thread), stored as microseconds in a BigInt64Array with Atomics; -Infinity/Infinity
 * map to the int64 limits.
 */
const QUORUM_UNTIL = 0;
const MAIN_BEAT = 1;
const WORKER_BEAT = 2;
const SLOTS = 3;
const MIN = -(2n ** 63n);
const MAX = 2n ** 63n - 1n;

function toMicros(ms: number): bigint {
  if (ms === Infinity) return MAX;
  if (ms === -Infinity || Number.isNaN(ms)) return MIN;
  return BigInt(Math.round(ms * 1000));
}

function fromMicros(us: bigint): number {
  if (us === MAX) return Infinity;
  if (us === MIN) return -Infinity;
  return Number(us) / 1000;
}

export class SharedLease {
  readonly buffer: SharedArrayBuffer;
  private readonly a: BigInt64Array;

  constructor(buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(SLOTS * 8);
    this.a = new BigInt64Array(this.buffer);
    if (!buffer) Atomics.store(this.a, QUORUM_UNTIL, MIN);
  }

  get quorumUntil(): number { return fromMicros(Atomics.load(this.a, QUORUM_UNTIL)); }
  set quorumUntil(ms: number) { Atomics.store(this.a, QUORUM_UNTIL, toMicros(ms)); }

  get mainBeat(): number { return fromMicros(Atomics.load(this.a, MAIN_BEAT)); }
  set mainBeat(ms: number) { Atomics.store(this.a, MAIN_BEAT, toMicros(ms)); }

  get workerBeat(): number { return fromMicros(Atomics.load(this.a, WORKER_BEAT)); }
  set workerBeat(ms: number) { Atomics.store(this.a, WORKER_BEAT, toMicros(ms)); }
}
