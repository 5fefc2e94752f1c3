/**
 * One direction of bulk traffic between the lock engine's thread and the cluster worker
 * thread (cluster-worker.ts): items (sends to peers; events and lock messages from peers)
 * in order, with bounded work per turn on both sides.
 *
 * PipeSender encodes each item (msgpack: Buffers survive) and posts them in batches of at
 * most BATCH_ITEMS items or BATCH_BYTES bytes, one batch per turn of the sender (or sooner
 * when full). PipeReceiver queues what arrives and handles it a slice per turn (at most
 * SLICE_ITEMS items or SLICE_BYTES bytes), yielding in between: Node hands a thread every
 * message queued on its port in one go, and a worker that decoded 100 MB of inspection
 * replies in one turn kept its lease renewals waiting for seconds (measured, issue 15).
 */
import { decodePayload, encodePayload } from '../wire/frame';
import { yieldTurn } from '../util/slices';

export const PIPE = { BATCH_ITEMS: 256, BATCH_BYTES: 256 * 1024, SLICE_ITEMS: 256, SLICE_BYTES: 256 * 1024 };

export class PipeSender<T> {
  private batch: Uint8Array[] = [];
  private bytes = 0;
  private queued = false;

  constructor(private readonly post: (batch: Uint8Array[]) => void) {}

  push(item: T): void {
    const b = encodePayload(item);
    this.batch.push(b);
    this.bytes += b.length;
    if (this.batch.length >= PIPE.BATCH_ITEMS || this.bytes >= PIPE.BATCH_BYTES) this.flush();
    else if (!this.queued) { this.queued = true; queueMicrotask(() => this.flush()); }
  }

  flush(): void {
    this.queued = false;
    if (this.batch.length === 0) return;
    const b = this.batch;
    this.batch = [];
    this.bytes = 0;
    this.post(b);
  }
}

export class PipeReceiver<T> {
  private queue: Uint8Array[] = [];
  private head = 0;
  private draining = false;

  constructor(private readonly handle: (item: T) => void) {}

  /** Items received and not yet handled. */
  get backlog(): number { return this.queue.length - this.head; }

  receive(batch: Uint8Array[]): void {
    for (const b of batch) this.queue.push(b);
    if (!this.draining) void this.drain();
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
