/**
 * The frames a client connection is sent in one turn of the event loop, written together: one
 * write system call per connection per turn instead of one per frame.
 *
 * Under contention on one name every handoff sent the new holder two frames, its grant and the
 * BAST its mode owes the next waiter, each with its own write (three writes per lock+unlock pair
 * with the unlocker's reply; `strace -c` on mxfsd, docs/benchmarks.md "16 clients on one name").
 * A write to a Unix socket costs the daemon ~10 µs here and wakes the reader each time.
 *
 * add() keeps the frame; the first frame of a connection in a turn puts the connection on the
 * list that flushAll() writes out from a process.nextTick: after the synchronous work that
 * emitted it (the scheduler's whole turn of actor rounds: src/actors/actor.ts, or an I/O
 * callback), before any further I/O. Connections are written in the order their first frame of
 * the turn was added; a connection's frames in the order they were added. Frames must not be
 * changed once added (encodeFrame's never are: later frames never write over packr's block).
 */

/** Where a batch's bytes go (the connection's socket). */
export interface ReplySink { write(chunk: Buffer): unknown }

export class ReplyBatch {
  private frames: Buffer[] = [];
  /** Bytes added and not yet written (counted with the socket's own queue for backpressure). */
  bytes = 0;

  constructor(private readonly sink: ReplySink) {}

  add(frame: Buffer): void {
    if (this.frames.length === 0) schedule(this);
    this.frames.push(frame);
    this.bytes += frame.length;
  }

  /** Write what was added (now: before ending the connection, so nothing added is lost). */
  flush(): void {
    const f = this.frames;
    if (f.length === 0) return;
    const n = this.bytes;
    this.frames = [];
    this.bytes = 0;
    this.sink.write(f.length === 1 ? f[0]! : Buffer.concat(f, n));
  }
}

let dirty: ReplyBatch[] = [];
let scheduled = false;

function schedule(b: ReplyBatch): void {
  dirty.push(b);
  if (!scheduled) { scheduled = true; process.nextTick(flushAll); }
}

/** Write every connection's frames of this turn (a batch flushed early is simply empty here). */
export function flushAll(): void {
  scheduled = false;
  const list = dirty;
  dirty = [];
  for (let i = 0; i < list.length; i++) list[i]!.flush();
}
