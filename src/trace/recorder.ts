/**
 * TraceRecorder: one per node (per ActorSystem). Records every message the node's actors
 * send, its peer-link frames, its lock messages to and from other nodes and its messages to
 * the kernel module, into a bounded ring (and, optionally, a TraceSink such as rotating
 * NDJSON files).
 *
 * Owns: the ring (by column), the per-node event sequence, the Lamport clock, the trace-id
 * counter, the actor labels (nact name -> path such as resource/default/r1), and the causal
 * context: the event whose message the running actor handles (`cur`, its seq) and that
 * actor's label (`curActor`). ActorSystem sets both around each handler; the peer-link and port hooks set
 * them around the synchronous delivery of a message that came from another node. A message
 * sent while a context is set joins its trace and names its cause; one sent from outside
 * (a socket, a timer) starts a new trace.
 *
 * Cost: with tracing off there is no recorder at all (every hook is `recorder?.`); with it on,
 * a row in the column ring per message and a symbol-keyed tag on the message (its event's
 * seq), measured in docs/benchmarks.md ("Tracing").
 */
import type { Clock } from '../util/clock';
import { TRACE_ID_NODE_SHIFT, TRACE_KINDS, TraceEvent, TraceFields, TraceKind, TraceStamp } from './event';
import { extractFields, ORIGIN, peerBodyFields, SELF_TRAFFIC } from './fields';
import { matches, TraceFilter } from './filter';
import { encodedSize } from '../wire/frame';
import { TevBatch, TevReader, TevSink } from './worker-events';

export interface TraceSink {
  /** One event as a JSON line (without the newline). */
  writeLine(line: string): void;
  /** Events the sink could not keep up with and dropped. */
  readonly dropped: number;
  close(): Promise<void>;
}

export interface TraceStats {
  /** Events recorded since start. */
  recorded: number;
  /** Events overwritten in the ring before anyone read them out (the ring is a window). */
  evicted: number;
  /** Events lost: dropped by the file sink under back-pressure. */
  dropped: number;
  ringSize: number;
  /** Lowest and highest seq in the ring (0 when empty). */
  first: number;
  last: number;
}

/** One page of a node's ring, after a cursor (dump/collect). */
export interface TracePage {
  node: number;
  events: TraceEvent[];
  /** The seq up to which the ring was read (pass it back as the next cursor). */
  cursor: number;
  /** More matching events may follow the cursor right now. */
  more: boolean;
  /** Events between the caller's cursor and the ring's oldest event that were overwritten. */
  missed: number;
}

interface Label { path: string; ls?: string; res?: string }

/**
 * The message -> its send event link, for the receiver's handler. A symbol-keyed property
 * (only ever set while tracing): never encoded (msgpack and JSON skip symbols), and much
 * cheaper than a WeakMap, whose entries the garbage collector must trace specially.
 */
const SENT_AS: unique symbol = Symbol('mxfs.trace.sentAs');
type Tagged = { [SENT_AS]?: number };

/** Events between two reads of the wall clock (the offset to the node's clock is re-taken then). */
const WALL_RESYNC = 1024;

const KIND_INDEX: Record<string, number> = Object.fromEntries(TRACE_KINDS.map((k, i) => [k, i]));

/**
 * The ring, by column: numbers in typed arrays, strings (mostly shared: actor paths, message
 * types, lock ids already alive elsewhere) in plain arrays. Recording allocates no object per
 * event, so a busy node's ring does not churn the garbage collector.
 */
class Columns {
  readonly seq: Float64Array; readonly lc: Float64Array; readonly wall: Float64Array; readonly mono: Float64Array;
  readonly trace: Float64Array; readonly cause: Float64Array; readonly srcLc: Float64Array; readonly token: Float64Array; readonly w: Float64Array;
  readonly epoch: Float64Array; readonly srcNode: Int32Array; readonly peer: Int32Array; readonly mode: Int8Array; readonly kind: Uint8Array;
  readonly from: Array<string | undefined>; readonly to: Array<string | undefined>; readonly type: Array<string | undefined>;
  readonly sub: Array<string | undefined>; readonly ls: Array<string | undefined>; readonly res: Array<string | undefined>;
  readonly lock: Array<string | undefined>; readonly req: Array<string | undefined>; readonly info: Array<string | undefined>;
  constructor(n: number) {
    const f = () => new Float64Array(n), a = () => new Array<string | undefined>(n).fill(undefined);
    this.seq = f(); this.lc = f(); this.wall = f(); this.mono = f(); this.trace = f(); this.cause = f(); this.srcLc = f(); this.token = f(); this.epoch = f(); this.w = f();
    this.srcNode = new Int32Array(n); this.peer = new Int32Array(n); this.mode = new Int8Array(n); this.kind = new Uint8Array(n);
    this.from = a(); this.to = a(); this.type = a(); this.sub = a(); this.ls = a(); this.res = a(); this.lock = a(); this.req = a(); this.info = a();
  }
}

/**
 * What the actor layer (ActorSystem, src/actors/actor.ts) records its messages with: the node's
 * TraceRecorder, or in the cluster worker thread a WorkerTracer (worker-tracer.ts) that
 * forwards them to the recorder on the lock engine's thread. `cur` and `curActor` are the
 * causal context, saved and restored by the actor layer around every handler.
 */
export interface ActorTracer {
  cur: number;
  curActor: string | undefined;
  /** The node's recorder, when it is this thread's (the lock engine's). */
  readonly recorder?: TraceRecorder;
  named(name: string, kind: string, fields: Record<string, unknown>): string;
  forget(name: string): void;
  onSend(toName: string, msg: { type: string }, kind: 'send' | 'ask'): void;
  enter(msg: object, actor: string): void;
  /** The causal context now (for work deferred to a later turn or microtask)... */
  hold(): unknown;
  /** ...and `fn` run in it. */
  within(held: unknown, fn: () => void): void;
}

/**
 * What a PeerLink records its frames with: the node's TraceRecorder when the link runs on its
 * thread, or in the cluster worker thread a WorkerTracer forwarding them to it.
 */
export interface FrameTracer {
  /** A frame about to be written: recorded; returns the stamp the frame carries (undefined: not recorded, trace traffic). */
  frameOut(peer: number, body: { type: string }, epoch: number): TraceStamp | undefined;
  /** A frame received (`tr`: the stamp it carried), about to be delivered: recorded and made the context; returns what restore() takes. */
  frameIn(peer: number, body: { type: string; msg?: { tr?: TraceStamp } }, epoch: number, tr?: TraceStamp): [number, string | undefined] | undefined;
  restore(saved: [number, string | undefined] | undefined): void;
}

/** What the main thread hands the worker with a send: its context (seq, trace id, Lamport clock, actor), for the causes of the worker's events. */
export type TraceContext = [number, number, number, string | null];

/** Worker event number -> seq here, kept for the newest this many (the causes of later worker events). */
const WORKER_CAUSES = 4096;

export class TraceRecorder implements ActorTracer, FrameTracer {
  private readonly c: Columns;
  private seq = 0;
  private lc = 0;
  private traces = 0;
  private readonly labels = new Map<string, Label>();
  /** Reused for every extraction (no allocation per message). */
  private readonly f: TraceFields = {};
  /** Wall clock minus the node's clock, re-read every WALL_RESYNC events (one clock read per event, not two). */
  private wallOffset = 0;
  private sinceResync = Infinity;
  /** Seq of the event whose message is being handled right now (0: outside any handler). */
  cur = 0;
  /** The actor whose handler is running right now. */
  curActor: string | undefined;
  /** The worker events recorded here: their w and seq, by w modulo WORKER_CAUSES. */
  private readonly workerW = new Float64Array(WORKER_CAUSES);
  private readonly workerSeq = new Float64Array(WORKER_CAUSES);

  get recorder(): TraceRecorder { return this; }

  constructor(readonly node: number, private readonly clock: Clock, readonly ringSize: number, private readonly sink?: TraceSink) {
    this.c = new Columns(ringSize);
  }

  get stats(): TraceStats {
    return { recorded: this.seq, evicted: Math.max(0, this.seq - this.ringSize), dropped: this.sink?.dropped ?? 0, ringSize: this.ringSize, first: this.first, last: this.seq };
  }

  private get first(): number { return this.seq === 0 ? 0 : Math.max(1, this.seq - this.ringSize + 1); }

  /** Ring slot of an event still in the ring, else -1. */
  private slot(seq: number): number {
    if (seq < 1 || seq > this.seq || seq < this.first) return -1;
    return (seq - 1) % this.ringSize;
  }

  // ---- actor layer hooks ------------------------------------------------------------

  /** A new actor: its nact name, kind and the fields it logs with become its path. */
  named(name: string, kind: string, fields: Record<string, unknown>): string {
    const parts = [kind];
    for (const v of Object.values(fields)) parts.push(String(v));
    const l: Label = { path: parts.join('/') };
    if (typeof fields.lockspace === 'string') l.ls = fields.lockspace;
    if (typeof fields.resource === 'string') l.res = fields.resource;
    this.labels.set(name, l);
    return l.path;
  }

  forget(name: string): void { this.labels.delete(name); }

  /** ActorSystem.send/ask: one event, remembered as the context of the message's handler. */
  onSend(toName: string, msg: { type: string }, kind: 'send' | 'ask'): void {
    const to = this.labels.get(toName);
    const f = extractFields(msg as Record<string, unknown>, this.f);
    if (f.sub !== undefined && SELF_TRAFFIC.has(f.sub)) return;
    if (to) { f.ls ??= to.ls; f.res ??= to.res; }
    (msg as Tagged)[SENT_AS] = this.record(kind, this.curActor ?? ORIGIN[msg.type] ?? 'ext', to?.path ?? toName, msg.type, f);
  }

  /** Called by ActorSystem before a handler runs (the caller restores cur/curActor after). */
  enter(msg: object, actor: string): void {
    this.cur = (msg as Tagged)[SENT_AS] ?? 0;
    this.curActor = actor;
  }

  hold(): unknown { return [this.cur, this.curActor]; }

  within(held: unknown, fn: () => void): void {
    const saved: [number, string | undefined] = [this.cur, this.curActor];
    [this.cur, this.curActor] = held as [number, string | undefined];
    try { fn(); } finally { this.restore(saved); }
  }

  // ---- other hooks --------------------------------------------------------------------

  /**
   * An event that is not an actor message (a frame out, a lock message to another node, a
   * message to the kernel). Fields missing from `f` come from the current context. Returns
   * its seq.
   */
  record(kind: TraceKind, from: string, to: string, type: string, f: TraceFields, src?: { node: number; stamp?: TraceStamp }): number {
    const stamp = src?.stamp;
    if (stamp && stamp.lc > this.lc) this.lc = stamp.lc;
    const cs = this.slot(this.cur);
    const trace = stamp ? stamp.id : cs >= 0 ? this.c.trace[cs]! : this.node * TRACE_ID_NODE_SHIFT + ++this.traces;
    return this.put(kind, from, to, type, f, ++this.lc, this.clock.now(), trace, cs >= 0 ? this.cur : 0, cs, stamp ? src!.node : 0, 0, stamp);
  }

  /**
   * Writes one event into the ring (and the sink); fields missing from `f` come from its cause
   * (`cause`, in ring slot `cs`; -1: none) or stamp. `w`: the worker's number of a worker
   * event (0: an event of this thread).
   */
  private put(kind: TraceKind, from: string, to: string, type: string, f: TraceFields, lc: number, mono: number, trace: number, cause: number, cs: number, srcNode: number, w: number, stamp?: { lc: number; ls?: string; res?: string }): number {
    const c = this.c;
    const seq = ++this.seq;
    const i = (seq - 1) % this.ringSize;
    c.seq[i] = seq;
    c.lc[i] = lc;
    if (++this.sinceResync >= WALL_RESYNC) { this.sinceResync = 0; this.wallOffset = Date.now() - this.clock.now(); }
    c.wall[i] = mono + this.wallOffset;
    c.mono[i] = mono;
    c.kind[i] = KIND_INDEX[kind]!;
    c.from[i] = from; c.to[i] = to; c.type[i] = type; c.sub[i] = f.sub;
    c.trace[i] = trace;
    c.cause[i] = cause;
    c.w[i] = w;
    c.srcNode[i] = stamp ? srcNode : 0;
    c.srcLc[i] = stamp ? stamp.lc : 0;
    c.ls[i] = f.ls ?? stamp?.ls ?? (cs >= 0 ? c.ls[cs] : undefined);
    c.res[i] = f.res ?? stamp?.res ?? (cs >= 0 ? c.res[cs] : undefined);
    c.lock[i] = f.lock ?? (cs >= 0 ? c.lock[cs] : undefined);
    c.mode[i] = f.mode ?? -1;
    c.token[i] = f.token ?? -1;
    c.epoch[i] = f.epoch ?? -1;
    c.peer[i] = f.peer ?? 0;
    c.req[i] = f.req;
    c.info[i] = f.info;
    if (this.sink) this.sink.writeLine(this.line(i));
    return seq;
  }

  /** The event in ring slot i, as an object (only what is set). */
  private event(i: number): TraceEvent {
    const c = this.c;
    const e: TraceEvent = {
      node: this.node, seq: c.seq[i]!, lc: c.lc[i]!, wall: c.wall[i]!, mono: c.mono[i]!, kind: TRACE_KINDS[c.kind[i]!]!,
      from: c.from[i]!, to: c.to[i]!, type: c.type[i]!, trace: c.trace[i]!,
    };
    if (c.cause[i]! > 0) e.cause = c.cause[i]!;
    if (c.w[i]! > 0) e.w = c.w[i]!;
    if (c.srcNode[i]! > 0) { e.srcNode = c.srcNode[i]!; e.srcLc = c.srcLc[i]!; }
    if (c.sub[i] !== undefined) e.sub = c.sub[i];
    if (c.ls[i] !== undefined) e.ls = c.ls[i];
    if (c.res[i] !== undefined) e.res = c.res[i];
    if (c.mode[i]! >= 0) e.mode = c.mode[i]!;
    if (c.token[i]! >= 0) e.token = c.token[i]!;
    if (c.epoch[i]! >= 0) e.epoch = c.epoch[i]!;
    if (c.lock[i] !== undefined) e.lock = c.lock[i];
    if (c.req[i] !== undefined) e.req = c.req[i];
    if (c.peer[i]! > 0) e.peer = c.peer[i]!;
    if (c.info[i] !== undefined) e.info = c.info[i];
    return e;
  }

  /** The event in ring slot i as a JSON line, written straight from the columns (the file sink). */
  private line(i: number): string {
    const c = this.c;
    const q = JSON.stringify;
    let l = `{"node":${this.node},"seq":${c.seq[i]},"lc":${c.lc[i]},"wall":${c.wall[i]},"mono":${c.mono[i]},"kind":"${TRACE_KINDS[c.kind[i]!]}","from":${q(c.from[i])},"to":${q(c.to[i])},"type":${q(c.type[i])},"trace":${c.trace[i]}`;
    if (c.cause[i]! > 0) l += `,"cause":${c.cause[i]}`;
    if (c.w[i]! > 0) l += `,"w":${c.w[i]}`;
    if (c.srcNode[i]! > 0) l += `,"srcNode":${c.srcNode[i]},"srcLc":${c.srcLc[i]}`;
    if (c.sub[i] !== undefined) l += `,"sub":${q(c.sub[i])}`;
    if (c.ls[i] !== undefined) l += `,"ls":${q(c.ls[i])}`;
    if (c.res[i] !== undefined) l += `,"res":${q(c.res[i])}`;
    if (c.mode[i]! >= 0) l += `,"mode":${c.mode[i]}`;
    if (c.token[i]! >= 0) l += `,"token":${c.token[i]}`;
    if (c.epoch[i]! >= 0) l += `,"epoch":${c.epoch[i]}`;
    if (c.lock[i] !== undefined) l += `,"lock":${q(c.lock[i])}`;
    if (c.req[i] !== undefined) l += `,"req":${q(c.req[i])}`;
    if (c.peer[i]! > 0) l += `,"peer":${c.peer[i]}`;
    if (c.info[i] !== undefined) l += `,"info":${q(c.info[i])}`;
    return l + '}';
  }

  /** The event with this seq, if still in the ring. */
  get(seq: number): TraceEvent | undefined {
    const i = this.slot(seq);
    return i < 0 ? undefined : this.event(i);
  }

  /**
   * A message from another node is about to be delivered synchronously (to the cluster layer
   * or the lock router): record it, and make it the context of what its delivery sends.
   * Returns the context to restore afterwards (restore()).
   */
  inbound(kind: 'frame-in' | 'dlm-in', from: number, to: string, type: string, f: TraceFields, stamp?: TraceStamp): [number, string | undefined] {
    const saved: [number, string | undefined] = [this.cur, this.curActor];
    this.cur = this.record(kind, `node/${from}`, to, type, f, { node: from, stamp });
    this.curActor = to; // what the delivery sends comes from its receiver (the link, the router)
    return saved;
  }

  /** A peer-link frame about to be written to `peer` (by the running PeerLink actor); returns its stamp. */
  frameOut(peer: number, body: { type: string }, epoch: number): TraceStamp | undefined {
    const f = this.fresh();
    f.epoch = epoch; f.peer = peer;
    peerBodyFields(body, f);
    if (f.sub !== undefined && SELF_TRAFFIC.has(f.sub)) return undefined;
    return this.stampOf(this.record('frame-out', this.curActor ?? 'peer-link', `node/${peer}`, body.type, f), false);
  }

  /**
   * A peer-link frame from `peer`, about to be delivered: recorded, and the context of its
   * delivery (its stamp `tr`, or a lock message's, carries its trace and clock). Undefined:
   * not recorded (trace traffic); restore() takes that too.
   */
  frameIn(peer: number, body: { type: string; msg?: { tr?: TraceStamp } }, epoch: number, tr?: TraceStamp): [number, string | undefined] | undefined {
    const f = this.fresh();
    f.epoch = epoch; f.peer = peer;
    peerBodyFields(body, f);
    if (f.sub !== undefined && SELF_TRAFFIC.has(f.sub)) return undefined;
    return this.inbound('frame-in', peer, this.curActor ?? 'peer-link', body.type, f, tr ?? (body.type === 'dlm' ? body.msg?.tr : undefined));
  }

  /**
   * The events of the cluster worker thread in a batch (worker-events.ts), now that it reached
   * this thread, in the order the worker made them: each with the worker's clock readings and
   * trace id, its cause (a worker event recorded here before, or an event of this thread), and
   * the Lamport clock of this thread moved past it (what this thread records next happened
   * after it).
   */
  forwardedBatch(b: TevBatch): void { this.tev.read(b, this.forwarded); }

  private readonly tev = new TevReader();
  /** Scratch stamp of a forwarded receipt (put() reads only its lc). */
  private readonly srcStamp = { lc: 0 };
  private readonly forwarded: TevSink = (kind, from, to, type, f, w, lc, mono, trace, cw, srcNode, srcLc) => {
    let cause = 0;
    if (cw < 0) cause = -cw;
    else if (cw > 0) {
      const j = cw % WORKER_CAUSES;
      if (this.workerW[j] === cw) cause = this.workerSeq[j]!;
    }
    if (lc > this.lc) this.lc = lc;
    const cs = cause > 0 ? this.slot(cause) : -1;
    let stamp: { lc: number } | undefined;
    if (srcNode > 0) { stamp = this.srcStamp; stamp.lc = srcLc; }
    const seq = this.put(kind, from, to, type, f, lc, mono, trace, cs >= 0 ? cause : 0, cs, srcNode, w, stamp);
    const j = w % WORKER_CAUSES;
    this.workerW[j] = w;
    this.workerSeq[j] = seq;
  };

  /**
   * Runs `fn` (what the cluster worker thread reported: a lock-engine frame, a membership
   * event) in the context of the worker event `w` that caused it, recorded here before.
   */
  causedByWorker(w: number, fn: () => void): void {
    const j = w % WORKER_CAUSES;
    const i = this.workerW[j] === w ? this.slot(this.workerSeq[j]!) : -1;
    if (i < 0) { fn(); return; }
    this.within([this.workerSeq[j]!, this.c.to[i]], fn);
  }

  /** This thread's causal context, for a message it hands the cluster worker thread (TraceContext). */
  context(): TraceContext {
    const cs = this.slot(this.cur);
    return cs >= 0 ? [this.cur, this.c.trace[cs]!, this.lc, this.curActor ?? null] : [0, 0, this.lc, this.curActor ?? null];
  }

  restore(saved: [number, string | undefined] | undefined): void {
    if (!saved) return;
    this.cur = saved[0];
    this.curActor = saved[1];
  }

  /** The scratch fields, emptied (callers fill them, then record()). */
  fresh(): TraceFields { return clearFields(this.f); }

  /** The stamp for a message to another node, from the event (seq) that records its sending. */
  stampOf(seq: number, withResource: boolean): TraceStamp {
    const i = this.slot(seq);
    const s: TraceStamp = { id: this.c.trace[i]!, lc: this.c.lc[i]! };
    const res = this.c.res[i], ls = this.c.ls[i];
    if (withResource && res !== undefined) { s.res = res; if (ls !== undefined) s.ls = ls; }
    return s;
  }

  // ---- reading ------------------------------------------------------------------------

  /**
   * The matching events after `cursor`, oldest first, as many as fit in maxBytes of msgpack
   * (at least one if any matches, provided that one fits).
   */
  page(cursor: number, filter: TraceFilter, maxBytes: number, maxEvents = 5000): TracePage {
    const first = this.first;
    const from = Math.max(cursor + 1, first);
    const missed = cursor > 0 && first > cursor + 1 ? first - cursor - 1 : 0;
    const out: TraceEvent[] = [];
    let bytes = 64;
    let seq = from;
    for (; seq <= this.seq; seq++) {
      const e = this.event((seq - 1) % this.ringSize);
      if (!matches(e, filter)) continue;
      const size = approxSize(e);
      if (out.length > 0 && (bytes + size > maxBytes || out.length >= maxEvents)) break;
      out.push(e);
      bytes += size;
    }
    // The estimate errs high; make sure the page really fits (drop from the end if not).
    while (out.length > 0 && encodedSize({ node: this.node, events: out, cursor: 0, more: true, missed }) > maxBytes) {
      out.pop();
      seq = out.length ? out[out.length - 1]!.seq + 1 : from;
    }
    const scanned = seq - 1;
    return { node: this.node, events: out, cursor: Math.max(cursor, scanned), more: scanned < this.seq, missed };
  }

  async close(): Promise<void> { await this.sink?.close(); }
}

function clearFields(f: TraceFields): TraceFields {
  f.sub = f.ls = f.res = f.lock = f.req = f.info = undefined;
  f.mode = f.token = f.epoch = f.peer = undefined;
  return f;
}

/** Upper estimate of an event's msgpack size (strings as UTF-8 worst case, numbers as 9 bytes). */
function approxSize(e: TraceEvent): number {
  let n = 4;
  for (const k in e) {
    const v = (e as unknown as Record<string, unknown>)[k];
    n += k.length + 2 + (typeof v === 'string' ? v.length * 3 + 5 : 9);
  }
  return n;
}
