/**
 * thread-pipe: the bulk traffic between the lock engine's thread and the cluster worker
 * (PipeSender → bytes → PipeReceiver): order kept whatever cuts the stream into chunks,
 * batches handed over at the end of the pushing turn (or sooner when full) in a buffer of
 * their own, work bounded per turn on the receiving side (other callbacks get turns during a
 * flood), and the socket pair that carries the stream between threads in mxfsd.
 */
import { expect } from 'chai';
import net from 'node:net';
import os from 'node:os';
import { PIPE, PipeReceiver, PipeSender } from '../src/cluster/thread-pipe';
import { encodePayload } from '../src/wire/frame';
import { socketPair } from '../src/util/socket-pair';

type Item = [number, string, Buffer?];

const turn = () => new Promise<void>((r) => setImmediate(r));
const microtasks = () => new Promise<void>((r) => queueMicrotask(r));

/** A deterministic mix of small, middle and large items. */
function items(n: number, seed = 1): Item[] {
  let x = seed;
  const rnd = () => { x = (x * 1103515245 + 12345) & 0x7fffffff; return x; };
  return Array.from({ length: n }, (_, i): Item => {
    const r = rnd() % 100;
    return r < 90 ? [i, 'x'.repeat(r)] : r < 99 ? [i, 'm', Buffer.alloc(2000 + (rnd() % 30000), i & 0xff)] : [i, 'L', Buffer.alloc(300000, 7)];
  });
}

describe('thread-pipe', () => {
  it('keeps order and content whatever cuts the stream into chunks (items across chunk ends, a length cut in two)', async function () {
    this.timeout(20000);
    for (const cut of [1, 3, 7, 4096, 65536]) {
      const sent = items(cut < 100 ? 300 : 3000);
      const batches: Uint8Array[] = [];
      const tx = new PipeSender<Item>((b) => batches.push(b));
      for (const it of sent) tx.push(it);
      tx.flush();
      const stream = Buffer.concat(batches);
      const got: Item[] = [];
      const rx = new PipeReceiver<Item>((it) => got.push(it));
      for (let at = 0; at < stream.length; at += cut) rx.receive(stream.subarray(at, at + cut));
      while (rx.backlog > 0) await turn();
      expect(got.length, `cut ${cut}`).to.equal(sent.length);
      for (let i = 0; i < sent.length; i++) {
        expect(got[i]![0], `cut ${cut} item ${i}`).to.equal(i);
        expect(got[i]![1]).to.equal(sent[i]![1]);
        if (sent[i]![2]) expect(Buffer.compare(got[i]![2]!, sent[i]![2]!)).to.equal(0);
      }
    }
  });

  it('hands a turn\'s items over in one batch at the end of that turn, sooner when the batch is full', async () => {
    const posted: Uint8Array[] = [];
    const tx = new PipeSender<Item>((b) => posted.push(b));
    tx.push([1, 'a']);
    tx.push([2, 'b']);
    expect(posted).to.have.length(0); // still this turn: more may come
    await microtasks();
    expect(posted).to.have.length(1); // the end of the turn: no waiting for the next one
    for (let i = 0; i < PIPE.BATCH_ITEMS; i++) tx.push([i, '']);
    expect(posted).to.have.length(2); // full: handed over at once
    tx.push([0, 'x'.repeat(PIPE.BATCH_BYTES)]);
    expect(posted).to.have.length(3);
  });

  it('posts each batch in a buffer of its own, not the encoder\'s working buffer (which a large message made megabytes long)', () => {
    encodePayload({ big: Buffer.alloc(2 << 20) }); // the encoder's buffer grows to hold this, and stays that size
    let batch: Uint8Array | undefined;
    let transfer: ArrayBuffer[] = [];
    const tx = new PipeSender<Item>((b, t) => { batch = b; transfer = t; });
    tx.push([1, 'small']);
    tx.flush();
    expect(batch!.buffer.byteLength).to.be.at.most(4096);
    expect(transfer).to.have.length(1);
    expect(transfer[0]).to.equal(batch!.buffer);
    const first = batch!.buffer;
    tx.push([2, 'next']);
    tx.flush();
    expect(batch!.buffer).to.not.equal(first); // a transferred buffer is never written again
  });

  it('handles at most a slice per turn, so other callbacks run during a flood', async () => {
    const n = 10 * PIPE.SLICE_ITEMS + 5;
    const batches: Uint8Array[] = [];
    const tx = new PipeSender<Item>((b) => batches.push(b));
    for (let i = 0; i < n; i++) tx.push([i, 'f']);
    tx.flush();
    const handledAt: number[] = [];
    let turns = 0;
    const rx = new PipeReceiver<Item>(() => handledAt.push(turns));
    let ticking = true;
    const tick = () => { turns++; if (ticking) setImmediate(tick); }; // once per turn of the loop
    setImmediate(tick);
    try {
      rx.receive(Buffer.concat(batches));
      expect(handledAt.length).to.equal(PIPE.SLICE_ITEMS); // the first slice at once, in the turn it arrived
      while (rx.backlog > 0) await turn();
    } finally {
      ticking = false;
    }
    expect(handledAt.length).to.equal(n);
    const perTurn = new Map<number, number>();
    for (const t of handledAt) perTurn.set(t, (perTurn.get(t) ?? 0) + 1);
    expect(Math.max(...perTurn.values())).to.be.at.most(PIPE.SLICE_ITEMS);
    expect(turns).to.be.at.least(5); // the timer got turns in between
  });

  it('bounds a slice by bytes too: large items are handled a few per turn', async () => {
    const big = Buffer.alloc(100 * 1024, 1);
    const batches: Uint8Array[] = [];
    const tx = new PipeSender<Item>((b) => batches.push(b));
    for (let i = 0; i < 20; i++) tx.push([i, 'b', big]);
    tx.flush();
    let handled = 0;
    const rx = new PipeReceiver<Item>(() => handled++);
    rx.receive(Buffer.concat(batches));
    expect(handled).to.equal(Math.ceil(PIPE.SLICE_BYTES / (big.length + 10))); // stops at the first item past SLICE_BYTES
    while (rx.backlog > 0) await turn();
    expect(handled).to.equal(20);
  });

  it('carries the stream over a socket pair in order (Linux), while the receiving loop keeps its turns', async function () {
    if (os.platform() !== 'linux') this.skip();
    const pair = socketPair();
    if (!('fds' in pair)) throw new Error(pair.error);
    const a = new net.Socket({ fd: pair.fds[0], readable: true, writable: true });
    const b = new net.Socket({ fd: pair.fds[1], readable: true, writable: true });
    try {
      const sent = items(5000, 7);
      const got: number[] = [];
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 1);
      const rx = new PipeReceiver<Item>((it) => got.push(it[0]));
      b.on('data', (c: Buffer) => rx.receive(c));
      const tx = new PipeSender<Item>((batch) => a.write(batch));
      for (const it of sent) tx.push(it);
      tx.flush();
      const t0 = Date.now();
      while ((got.length < sent.length || rx.backlog > 0) && Date.now() - t0 < 15000) await new Promise((r) => setTimeout(r, 5));
      clearInterval(ticker);
      expect(got).to.deep.equal(sent.map((s) => s[0]));
      expect(ticks).to.be.at.least(1);
    } finally {
      a.destroy();
      b.destroy();
    }
  });
});
