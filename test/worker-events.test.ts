/**
 * The cluster worker's trace events in their compact form (src/trace/worker-events.ts): what
 * the worker writes into batches is what the recorder reads back, field for field, across
 * batches and past the interned-string table's bound; a batch read out of order or cut short
 * fails loudly instead of giving wrong strings; and a WorkerTracer's batches, read by the
 * recorder, give the events with their causes as the main thread's seqs.
 */
import { expect } from 'chai';
import { encodePayload, decodePayload } from '../src/wire/frame';
import { validateTraceEvent, type TraceFields } from '../src/trace/event';
import { ForwardedEvent, TEV_INTERNED, TEV_KINDS, TevBatch, tevEvents, TevReader, TevWriter } from '../src/trace/worker-events';
import { TraceRecorder } from '../src/trace/recorder';
import { WorkerTracer } from '../src/trace/worker-tracer';
import { ManualClock } from '../src/util/clock';

/** A small seeded generator (xorshift32): the same events on every run. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 2 ** 32; };
}

/** Random events with every optional field set or not, strings from a small set (interned) and unique ones. */
function events(n: number, seed: number): ForwardedEvent[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const paths = ['peer-link/2', 'node/2', 'membership/1', 'lease/3', 'dlm-channel', 'timer', 'lease/self'];
  const types = ['sendMany', 'dlm', 'renew', 'renewAck', 'lease.renewed', 'peerMessage', 'tick'];
  const out: ForwardedEvent[] = [];
  for (let w = 1; w <= n; w++) {
    const f: TraceFields = {};
    if (r() < 0.5) f.sub = pick(['request', 'lock.granted', 'renew', 'dlm.ev']);
    if (r() < 0.5) f.ls = pick(['default', 'vol']);
    if (r() < 0.5) f.res = `r${Math.floor(r() * 1e6)}`;
    if (r() < 0.5) f.lock = `1:${w}/3`;
    if (r() < 0.3) f.req = String(w);
    if (r() < 0.3) f.info = `inc ${w.toString(16)}, expires ${w * 7}`;
    if (r() < 0.5) f.mode = Math.floor(r() * 6);
    if (r() < 0.3) f.token = 2 ** 33 + w;
    if (r() < 0.5) f.epoch = Math.floor(r() * 9);
    if (r() < 0.5) f.peer = 1 + Math.floor(r() * 3);
    const e: ForwardedEvent = { kind: pick(TEV_KINDS), from: pick(paths), to: pick(paths), type: pick(types), f, w, lc: 100 + w, mono: 1234.5 + w / 7, trace: 2 ** 40 + 2 ** 39 + w };
    const c = r();
    if (c < 0.3) e.cw = Math.max(1, w - 1 - Math.floor(r() * 5)); else if (c < 0.5) e.cm = 1 + Math.floor(r() * 1000);
    if (r() < 0.3) { e.srcNode = 1 + Math.floor(r() * 3); e.srcLc = Math.floor(r() * 1e6); }
    out.push(e);
  }
  return out;
}

function write(wr: TevWriter, e: ForwardedEvent): void {
  wr.add(e.kind, e.from, e.to, e.type, e.f, e.w, e.lc, e.mono, e.trace, e.cw ?? (e.cm !== undefined ? -e.cm : 0), e.srcNode ?? 0, e.srcLc ?? 0);
}

describe('worker trace events, compact (worker-events.ts)', () => {
  it('round trip: every event, field for field, across batches and the pipe\'s encoding', () => {
    const evs = events(3000, 7);
    const wr = new TevWriter(), rd = new TevReader();
    const got: ForwardedEvent[] = [];
    let batches = 0;
    for (let i = 0; i < evs.length; i++) {
      write(wr, evs[i]!);
      if (i % 37 === 36 || i === evs.length - 1) {
        const b = wr.take()!;
        batches++;
        got.push(...tevEvents(rd, (decodePayload(encodePayload(['tev', b])) as [string, TevBatch])[1]));
      }
    }
    expect(wr.take()).to.equal(undefined);
    expect(batches).to.be.greaterThan(80);
    expect(got).to.deep.equal(evs);
  });

  it('interns the strings that repeat: a batch of known paths and types carries their numbers, not the strings', () => {
    const wr = new TevWriter();
    const e = events(1, 3)[0]!;
    write(wr, e);
    const first = JSON.stringify(wr.take());
    write(wr, { ...e, w: 2 });
    const again = wr.take()!;
    expect(first).to.include(JSON.stringify(e.from));
    expect(again.filter((v) => v === e.from || v === e.to || v === e.type)).to.deep.equal([]);
    expect(encodePayload(again).length).to.be.lessThan(encodePayload(JSON.parse(first)).length);
  });

  it('past TEV_INTERNED distinct strings both ends stop interning alike: every string still comes back right', () => {
    const wr = new TevWriter(), rd = new TevReader();
    const evs: ForwardedEvent[] = [];
    for (let w = 1; w <= TEV_INTERNED + 500; w++) evs.push({ kind: 'send', from: `session/${w}`, to: w % 2 ? 'peer-link/2' : `resource/default/r${w}`, type: 'sendMany', f: { sub: `s${w % 10}` }, w, lc: w, mono: w, trace: 5 });
    // ...and all of them again: each string by its number if it got one, as itself if not.
    const n = evs.length;
    for (let k = 0; k < n; k++) evs.push({ ...evs[k]!, w: n + k + 1 });
    const got: ForwardedEvent[] = [];
    for (let i = 0; i < evs.length; i += 100) {
      for (const e of evs.slice(i, i + 100)) write(wr, e);
      got.push(...tevEvents(rd, wr.take()!));
    }
    expect(got).to.deep.equal(evs);
  });

  it('a batch read without the ones before it (or cut short, or of an unknown kind) is refused, not misread', () => {
    const wr = new TevWriter();
    const evs = events(20, 11);
    for (const e of evs.slice(0, 10)) write(wr, e);
    const b1 = wr.take()!;
    for (const e of evs.slice(10)) write(wr, e);
    const b2 = wr.take()!;
    expect(() => tevEvents(new TevReader(), b2)).to.throw(/string \d+ not defined/);
    expect(() => tevEvents(new TevReader(), b1.slice(0, b1.length - 1))).to.throw(/truncated|expected/);
    const bad = [...b1];
    bad[1] = 9;
    expect(() => tevEvents(new TevReader(), bad)).to.throw(/no event kind 9/);
  });

  it('a WorkerTracer\'s batches, read by the recorder: the worker\'s events with their causes as seqs of the main thread, in the order made', () => {
    const clock = new ManualClock();
    const lines: string[] = [];
    const rec = new TraceRecorder(1, clock, 1024, { writeLine: (l) => lines.push(l), dropped: 0, close: async () => {} });
    const taken: TevBatch[] = [];
    const pend: number[] = [];
    const wt: WorkerTracer = new WorkerTracer(1, clock, (n) => pend.push(n));
    wt.named('peer-link-9', 'peer-link', { peer: 2 });
    const mainSeq = rec.record('send', 'session/4', 'dlm-channel', 'dlm.send', rec.fresh());
    const body = { type: 'dlm', msg: { t: 'op', epoch: 3, lockspace: 'default', resource: 'r1', op: { type: 'request', lockId: '1:4/1', mode: 5 } } };
    wt.fromMain([mainSeq, 2 ** 40 + 1, 10, 'dlm-channel'], () => {
      const m = { type: 'sendMany', items: [{ body, epoch: 3 }] };
      const sent = wt.onSend('peer-link-9', m, 'send');
      wt.enter(m, 'peer-link/2', sent);
      wt.frameOut(2, body, 3);
    });
    wt.cur = 0; wt.curActor = undefined;
    const saved = wt.frameIn(2, { type: 'renewAck' }, 3, [2 * 2 ** 40 + 5, 50]);
    wt.restore(saved);
    // Nothing crossed yet: the events wait in the batch until taken.
    expect(pend).to.deep.equal([1, 2, 3]);
    expect(rec.stats.recorded).to.equal(1);
    taken.push(wt.take()!);
    expect(wt.take()).to.equal(undefined);
    rec.forwardedBatch(taken[0]!);
    const ev = rec.page(0, {}, 1 << 20).events;
    expect(ev.map((e) => `${e.seq} ${e.kind} ${e.from} -> ${e.to} ${e.type}/${e.sub ?? ''} ${e.res ?? ''} lc ${e.lc} cause ${e.cause ?? '-'} trace ${e.trace}`)).to.deep.equal([
      `1 send session/4 -> dlm-channel dlm.send/  lc 1 cause - trace ${2 ** 40 + 1}`,
      `2 send dlm-channel -> peer-link/2 sendMany/  lc 11 cause 1 trace ${2 ** 40 + 1}`,
      `3 frame-out peer-link/2 -> node/2 dlm/request r1 lc 12 cause 2 trace ${2 ** 40 + 1}`,
      `4 frame-in node/2 -> peer-link/2 renewAck/renewAck  lc 51 cause - trace ${2 * 2 ** 40 + 5}`,
    ]);
    expect(ev[3]).to.include({ srcNode: 2, srcLc: 50, peer: 2, epoch: 3 });
    expect(ev[2]).to.include({ mode: 5, lock: '1:4/1', ls: 'default', epoch: 3, peer: 2 });
    // Each worker event carries the worker's number of it (the merge orders the worker's events by it), the main thread's none;
    // the file's line and a validated copy (a peer's reply, a file read back) keep it.
    expect(ev.map((e) => e.w)).to.deep.equal([undefined, 1, 2, 3]);
    expect(lines.map((l) => JSON.parse(l))).to.deep.equal(ev);
    for (const e of ev) expect(validateTraceEvent(JSON.parse(JSON.stringify(e)))).to.deep.equal(e);
    expect(() => validateTraceEvent({ ...ev[1], w: 0 })).to.throw(/'w'/);
    // What the main thread records next comes after them.
    expect(rec.context()[2]).to.equal(51);
  });
});
