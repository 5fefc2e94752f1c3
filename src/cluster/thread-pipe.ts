/**
 * One direction of bulk traffic between the lock engine's thread and the cluster worker
 * thread (cluster-worker.ts): items (sends to peers; events and lock messages from peers)
 * in order, with bounded work per turn on both sides.
 *
 * The stream: each item is a u32 (big-endian) length and its msgpack bytes (Buffers survive).
 * PipeSender encodes each item into the batch's own buffer and hands the batch over at the
 * end of the sender's turn (a microtask), or sooner when it holds BATCH_ITEMS items or
 * BATCH_BYTES bytes: an idle pipe passes an item on within the turn that pushed it. The
 * batch goes to a Unix socket pair between the threads (socket-pair.ts) or, where there is
 * none, to a MessagePort with its buffer in the transfer list (moved, not copied).
 *
 * Two costs this avoids (measured, docs/benchmarks.md "Remote pair across builds"): posting
 * the encoder's own output cost a copy of the encoder's whole working buffer per batch (a
 * view shares its ArrayBuffer, which structured clone copies whole: megabytes once the thread
 * had encoded one large message, such as an inspection reply or a recovery batch); and a
 * MessagePort wakes the receiving thread while holding its queue's lock, so the receiver
 * woken on the other CPU often sleeps once more on that lock — two context switches per
 * crossing where a socket costs one.
 *
 * PipeReceiver takes the stream in chunks of any size (an item may span chunks), queues the
 * items and handles them a slice per turn (at most SLICE_ITEMS items or SLICE_BYTES bytes),
 * yielding in between: a thread can be handed megabytes in one turn, and a worker that
 * decoded 100 MB of inspection replies in one turn kept its lease renewals waiting for
 * seconds (measured, issue 15). The first slice that finds the receiver idle is handled at
 * once, in the turn it arrives.
 */
import { decodePayload, encodePayload } from '../wire/frame';
import { yieldTurn } from '../util/slices';

export const PIPE = { BATCH_ITEMS: 256, BATCH_BYTES: 256 * 1024, SLICE_ITEMS: 256, SLICE_BYTES: 256 * 1024 };

/** The smallest buffer a batch starts with (it grows by doubling). */
const MIN_BATCH_BUFFER = 4096;
const LEN = 4;

const readLen = (b: Uint8Array, at: number): number => ((b[at]! << 24) >>> 0) + (b[at + 1]! << 16) + (b[at + 2]! << 8) + b[at + 3]!;

/** Hands a batch on: whole items of the stream, in a buffer of its own that the sender no longer touches (`transfer` may move it). */
export type PipePost = (batch: Uint8Array, transfer: ArrayBuffer[]) => void;

export class PipeSender<T> {
  private buf = new Uint8Array(0);
  private used = 0;
  private items = 0;
  private queued = false;

  constructor(private readonly post: PipePost) {}

  push(item: T): void {
    const b = encodePayload(item);
    const need = this.used + LEN + b.length;
    if (need > this.buf.length) {
      const grown = new Uint8Array(Math.max(MIN_BATCH_BUFFER, 2 * this.buf.length, need));
      grown.set(this.buf.subarray(0, this.used));
      this.buf = grown;
    }
    const at = this.used;
    this.buf[at] = b.length >>> 24;
    this.buf[at + 1] = (b.length >>> 16) & 0xff;
    this.buf[at + 2] = (b.length >>> 8) & 0xff;
    this.buf[at + 3] = b.length & 0xff;
    this.buf.set(b, at + LEN);
    this.used = need;
    this.items++;
    if (this.items >= PIPE.BATCH_ITEMS || this.used >= PIPE.BATCH_BYTES) this.flush();
    else if (!this.queued) { this.queued = true; queueMicrotask(() => this.flush()); }
  }

  flush(): void {
    this.queued = false;
    if (this.items === 0) return;
    const batch = this.buf.subarray(0, this.used);
    this.buf = new Uint8Array(0);
    this.used = 0;
    this.items = 0;
    this.post(batch, [batch.buffer as ArrayBuffer]);
  }
}

export class PipeReceiver<T> {
  private queue: Uint8Array[] = [];
  private head = 0;
  private draining = false;
  /** The start of an item not yet whole: chunks received, and their bytes in all. */
  private partial: Uint8Array[] = [];
  private partialBytes = 0;

  constructor(private readonly handle: (item: T) => void) {}

  /** Items received and not yet handled. */
  get backlog(): number { return this.queue.length - this.head; }

  /** The next piece of the stream (whole batches or any cut of them), in order. */
  receive(chunk: Uint8Array): void {
    let buf = chunk;
    if (this.partialBytes > 0) {
      this.partial.push(chunk);
      this.partialBytes += chunk.length;
      const first = this.partial[0]!;
      const need = first.length >= LEN ? LEN + readLen(first, 0) : LEN;
      if (this.partialBytes < need) return; // still not one whole item (or its length): wait for more
      buf = Buffer.concat(this.partial, this.partialBytes);
      this.partial = [];
      this.partialBytes = 0;
    }
    let at = 0;
    while (buf.length - at >= LEN) {
      const len = readLen(buf, at);
      if (buf.length - at - LEN < len) break;
      this.queue.push(buf.subarray(at + LEN, at + LEN + len));
      at += LEN + len;
    }
    if (at < buf.length) {
      this.partial = [buf.subarray(at)];
      this.partialBytes = buf.length - at;
    }
    if (!this.draining && this.head < this.queue.length) void this.drain();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.head < this.queue.length) {
        let n = 0, bytes = 0;
        while (this.head < this.queue.length && n < PIPE.SLICE_ITEMS && bytes < PIPE.SLICE_BYTES) {
          const b = this.queue[this.head++]!;
          n++;
          bytes += b.length;
          this.handle(decodePayload(Buffer.from(b.buffer, b.byteOffset, b.byteLength)) as T);
        }
        if (this.head > 4096 && this.head * 2 > this.queue.length) { this.queue = this.queue.slice(this.head); this.head = 0; }
        if (this.head < this.queue.length) await yieldTurn();
      }
      this.queue = [];
      this.head = 0;
    } finally {
      this.draining = false;
    }
  }
}
