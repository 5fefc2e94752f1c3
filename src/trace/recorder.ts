/**
 * TraceRecorder: one per node (per ActorSystem). Records every message the node's actors
 * send, its peer-link frames, its lock messages to and from other nodes and its messages to
 * the kernel module, into a bounded ring (and, optionally, a TraceSink such as rotating
 * NDJSON files).
 *
 * Owns: the ring (a row per event, in typed arrays), the per-node event sequence, the Lamport clock, the trace-id
 * counter, the actor labels (nact name -> path such as resource/default/r1), and the causal
 * context: the event whose message the running actor handles (`cur`, its seq) and that
 * actor's label (`curActor`). ActorSystem sets both around each handler; the peer-link and port hooks set
 * them around the synchronous delivery of a message that came from another node. A message
 * sent while a context is set joins its trace and names its cause; one sent from outside
 * (a socket, a timer) starts a new trace.
 *
 * Cost: with tracing off there is no recorder at all (every hook is `recorder?.`); with it on,
 * a row in the ring per message (its event's seq travels beside the message to its handler),
 * measured in docs/benchmarks.md ("Tracing").
 */
import type { Clock } from '../util/clock';
import { TRACE_ID_NODE_SHIFT, TRACE_KINDS, TraceEvent, TraceFields, TraceKind, TraceStamp } from './event';
import { extractFields, isSelfTraffic, nodePath, ORIGIN, peerBodyFields } from './fields';
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
 * The message -> its send event link of an `ask`, for the receiver's handler. A symbol-keyed
 * property (only ever set while tracing): never encoded (msgpack and JSON skip symbols), and
 * cheaper than a WeakMap. A `send` is not tagged: its event number travels beside the message
 * in the receiver's mailbox (ActorSystem.send), because adding a property to every message
 * allocated its property store (~40 bytes a message: docs/benchmarks.md, "Tracing").
 */
const SENT_AS: unique symbol = Symbol('mxfs.trace.sentAs');
type Tagged = { [SENT_AS]?: number };

/** Events between two reads of the wall clock (the offset to the node's clock is re-taken then). */
const WALL_RESYNC = 1024;

const KIND_INDEX: Record<string, number> = Object.fromEntries(TRACE_KINDS.map((k, i) => [k, i]));

/**
 * The ring, one row per event: its numbers in one Float64Array (NUM slots a row: 64 bytes),
 * its small integers in one Int32Array (INT a row), its strings (mostly shared: actor paths,
 * message types, lock ids already alive elsewhere; a client's request and lock ids kept as the
 * numbers they arrive as, formatted when read) in arrays of 65536 rows (STR slots a row). Recording allocates
 * no object per event, so a busy node's ring does not churn the garbage collector, and an
 * event's writes land in a few adjacent cache lines: ~152 bytes an event, where one array per
 * field (23 of them) spread them over 23 places. An event's seq is not stored (its slot and
 * the newest seq give it), nor its wall clock (its mono plus the offset of its block of
 * WALL_RESYNC events).
 */
const enum N { lc, mono, trace, cause, srcLc, token, w, epoch }
const NUM = 8;
const enum I { srcNode, peer, mode, kind }
const INT = 4;
const enum S { from, to, type, sub, ls, res, lock, req, info }
const STR = 9;
/**
 * The string rows are kept in blocks of 2^SB_SHIFT rows: one array of more than 32M slots (a
 * ring of more than ~3.5M events) is a dictionary in V8, and filling it took minutes and
 * gigabytes (ring_size = 10000000: 80 s and 7 GB before mxfsd answered). The default ring is
 * one block.
 */
const SB_SHIFT = 16;
const SB_MASK = (1 << SB_SHIFT) - 1;
type StrBlock = Array<string | number | undefined>;

/** A stored request or lock id as the text the event shows (a number is formatted now). */
const idOut = (v: string | number | undefined): string | undefined => (typeof v === 'number' ? String(v) : v);

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
  /** What the actor layer keeps with actor `name` (named before) and hands back to onSend(). */
  label(name: string): unknown;
  forget(name: string): void;
  /**
   * A message sent to actor `toName`: recorded; returns its event's number (0: not recorded),
   * which the actor layer hands to enter() with the message. An `ask` is tagged instead (its
   * message goes through nact's query, where nothing can travel beside it). `label`: the
   * receiver's label(), when the caller kept it (saves looking it up by name).
   */
  onSend(toName: string, msg: { type: string }, kind: 'send' | 'ask', label?: unknown): number;
  /** A handler is about to run on `msg`, sent as event `sent` (0: an ask's, or none: its tag is read). */
  enter(msg: object, actor: string, sent: number): void;
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
  /** The ring's numbers (NUM a row) and strings (STR a row), by slot. */
  private readonly num: Float64Array;
  private readonly int: Int32Array;
  /** Wall clock minus the node's clock, per block of WALL_RESYNC seqs (re-read at each block's first event). */
  private readonly wallOff: Float64Array;
  /** The string rows, in blocks of 2^SB_SHIFT rows (row i: block i >>> SB_SHIFT, from (i & SB_MASK) * STR). */
  private readonly str: StrBlock[];
  private seq = 0;
  private lc = 0;
  private traces = 0;
  private readonly labels = new Map<string, Label>();
  /** Reused for every extraction (no allocation per message). */
  private readonly f: TraceFields = {};
  /** Seq of the event whose message is being handled right now (0: outside any handler). */
  cur = 0;
  /** The actor whose handler is running right now. */
  curActor: string | undefined;
  /** The worker events recorded here: their w and seq, by w modulo WORKER_CAUSES. */
  private readonly workerW = new Float64Array(WORKER_CAUSES);
  private readonly workerSeq = new Float64Array(WORKER_CAUSES);

  get recorder(): TraceRecorder { return this; }

  constructor(readonly node: number, private readonly clock: Clock, readonly ringSize: number, private readonly sink?: TraceSink) {
    this.num = new Float64Array(ringSize * NUM);
    this.int = new Int32Array(ringSize * INT);
    this.wallOff = new Float64Array(Math.ceil(ringSize / WALL_RESYNC) + 1);
    this.str = [];
    for (let r = 0; r < ringSize; r += 1 << SB_SHIFT) this.str.push(new Array<string | number | undefined>(Math.min(1 << SB_SHIFT, ringSize - r) * STR).fill(undefined));
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

  label(name: string): unknown { return this.labels.get(name); }

  forget(name: string): void { this.labels.delete(name); }

  /** ActorSystem.send/ask: one event, remembered as the context of the message's handler. */
  onSend(toName: string, msg: { type: string }, kind: 'send' | 'ask', label?: unknown): number {
    const to = (label as Label | undefined) ?? this.labels.get(toName);
    const f = extractFields(msg as Record<string, unknown>, this.f);
    if (f.sub !== undefined && isSelfTraffic(f.sub)) return 0;
    let ls: string | undefined, res: string | undefined;
    if (to !== undefined) {
      ls = to.ls; res = to.res;
      // The receiver's own strings stand for equal ones the message carries (decoded from a
      // client's request: a new string per request, which the ring would keep alive).
      if (ls !== undefined && (f.ls === undefined || f.ls === ls)) f.ls = ls;
      if (res !== undefined && (f.res === undefined || f.res === res)) f.res = res;
    }
    const lock = typeof f.lock === 'string' ? f.lock : undefined;
    if (this.cur !== 0 && (ls !== undefined || res !== undefined || lock !== undefined)) this.adopt(ls, res, lock);
    const seq = this.record(kind, this.curActor ?? ORIGIN[msg.type] ?? 'ext', to?.path ?? toName, msg.type, f);
    if (kind === 'ask') (msg as Tagged)[SENT_AS] = seq;
    return seq;
  }

  /**
   * The events that led to this send (the one being handled, and its cause) keep the
   * receiver's lockspace and resource strings, and this message's lock id, in place of equal
   * copies. A client's request names its resource with a string decoded from its frame,
   * recorded as the session receives it and as the session routes it, before the lockspace
   * hands it to the resource actor, whose name is the long-lived copy; a session writes a lock
   * id anew into each message it sends about the lock (the unlock's), and the resource answers
   * with the one it kept since the request. Kept in the ring, each copy would outlive its
   * message and be copied and promoted by the garbage collector (docs/benchmarks.md,
   * "Tracing": ~1.5 µs per lock+unlock pair for the three).
   */
  private adopt(ls: string | undefined, res: string | undefined, lock: string | undefined): void {
    let seq = this.cur;
    for (let back = 0; back < 2; back++) {
      const i = this.slot(seq);
      if (i < 0) return;
      const str = this.str[i >>> SB_SHIFT]!, t = (i & SB_MASK) * STR;
      if (res !== undefined && str[t + S.res] === res) str[t + S.res] = res;
      if (ls !== undefined && str[t + S.ls] === ls) str[t + S.ls] = ls;
      if (lock !== undefined && str[t + S.lock] === lock) str[t + S.lock] = lock;
      seq = this.num[i * NUM + N.cause]!;
    }
  }

  /** Called by ActorSystem before a handler runs (the caller restores cur/curActor after). */
  enter(msg: object, actor: string, sent: number): void {
    this.cur = sent !== 0 ? sent : (msg as Tagged)[SENT_AS] ?? 0;
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
    if (stamp && stamp[1] > this.lc) this.lc = stamp[1];
    const cs = this.slot(this.cur);
    const trace = stamp ? stamp[0] : cs >= 0 ? this.num[cs * NUM + N.trace]! : this.node * TRACE_ID_NODE_SHIFT + ++this.traces;
    return this.put(kind, from, to, type, f, ++this.lc, this.clock.now(), trace, cs >= 0 ? this.cur : 0, cs, stamp ? src!.node : 0, 0, stamp);
  }

  /**
   * Writes one event into the ring (and the sink); fields missing from `f` come from its cause
   * (`cause`, in ring slot `cs`; -1: none) or stamp. `w`: the worker's number of a worker
   * event (0: an event of this thread).
   */
  private put(kind: TraceKind, from: string, to: string, type: string, f: TraceFields, lc: number, mono: number, trace: number, cause: number, cs: number, srcNode: number, w: number, stamp?: TraceStamp): number {
    const num = this.num, int = this.int;
    const seq = ++this.seq;
    const i = (seq - 1) % this.ringSize;
    const n = i * NUM, k = i * INT, str = this.str[i >>> SB_SHIFT]!, t = (i & SB_MASK) * STR;
    const cstr = cs >= 0 ? this.str[cs >>> SB_SHIFT]! : str, ct = (cs & SB_MASK) * STR;
    if ((seq - 1) % WALL_RESYNC === 0) this.wallOff[this.block(seq)] = Date.now() - this.clock.now();
    num[n + N.lc] = lc;
    num[n + N.mono] = mono;
    num[n + N.trace] = trace;
    num[n + N.cause] = cause;
    num[n + N.srcLc] = stamp ? stamp[1] : 0;
    num[n + N.token] = f.token ?? -1;
    num[n + N.w] = w;
    num[n + N.epoch] = f.epoch ?? -1;
    int[k + I.srcNode] = stamp ? srcNode : 0;
    int[k + I.peer] = f.peer ?? 0;
    int[k + I.mode] = f.mode ?? -1;
    int[k + I.kind] = KIND_INDEX[kind]!;
    str[t + S.from] = from; str[t + S.to] = to; str[t + S.type] = type; str[t + S.sub] = f.sub;
    str[t + S.ls] = f.ls ?? stamp?.[3] ?? (cs >= 0 ? cstr[ct + S.ls] : undefined);
    str[t + S.res] = f.res ?? stamp?.[2] ?? (cs >= 0 ? cstr[ct + S.res] : undefined);
    str[t + S.lock] = f.lock ?? (cs >= 0 ? cstr[ct + S.lock] : undefined);
    str[t + S.req] = f.req;
    str[t + S.info] = f.info;
    if (this.sink) this.sink.writeLine(this.line(i, seq));
    return seq;
  }

  /** String field `f` of ring slot i. */
  private strAt(i: number, f: S): string | number | undefined { return this.str[i >>> SB_SHIFT]![(i & SB_MASK) * STR + f]; }
  /** The wallOff slot of an event's block. */
  private block(seq: number): number { return Math.floor((seq - 1) / WALL_RESYNC) % this.wallOff.length; }

  /** The event seq, in ring slot i, as an object (only what is set). */
  private event(i: number, seq: number): TraceEvent {
    const num = this.num, int = this.int, str = this.str[i >>> SB_SHIFT]!, n = i * NUM, k = i * INT, t = (i & SB_MASK) * STR;
    const mono = num[n + N.mono]!;
    const e: TraceEvent = {
      node: this.node, seq, lc: num[n + N.lc]!, wall: mono + this.wallOff[this.block(seq)]!, mono, kind: TRACE_KINDS[int[k + I.kind]!]!,
      from: str[t + S.from] as string, to: str[t + S.to] as string, type: str[t + S.type] as string, trace: num[n + N.trace]!,
    };
    const cause = num[n + N.cause]!, w = num[n + N.w]!, srcNode = int[k + I.srcNode]!, mode = int[k + I.mode]!, token = num[n + N.token]!, epoch = num[n + N.epoch]!, peer = int[k + I.peer]!;
    const sub = str[t + S.sub] as string | undefined, ls = str[t + S.ls] as string | undefined, res = str[t + S.res] as string | undefined;
    const lock = idOut(str[t + S.lock]), req = idOut(str[t + S.req]), info = str[t + S.info] as string | undefined;
    if (cause > 0) e.cause = cause;
    if (w > 0) e.w = w;
    if (srcNode > 0) { e.srcNode = srcNode; e.srcLc = num[n + N.srcLc]!; }
    if (sub !== undefined) e.sub = sub;
    if (ls !== undefined) e.ls = ls;
    if (res !== undefined) e.res = res;
    if (mode >= 0) e.mode = mode;
    if (token >= 0) e.token = token;
    if (epoch >= 0) e.epoch = epoch;
    if (lock !== undefined) e.lock = lock;
    if (req !== undefined) e.req = req;
    if (peer > 0) e.peer = peer;
    if (info !== undefined) e.info = info;
    return e;
  }

  /** The event in ring slot i as a JSON line, written straight from the ring (the file sink). */
  private line(i: number, seq: number): string {
    const num = this.num, int = this.int, str = this.str[i >>> SB_SHIFT]!, n = i * NUM, k = i * INT, t = (i & SB_MASK) * STR;
    const q = JSON.stringify;
    let l = `{"node":${this.node},"seq":${seq},"lc":${num[n + N.lc]},"wall":${num[n + N.mono]! + this.wallOff[this.block(seq)]!},"mono":${num[n + N.mono]},"kind":"${TRACE_KINDS[int[k + I.kind]!]}","from":${q(str[t + S.from])},"to":${q(str[t + S.to])},"type":${q(str[t + S.type])},"trace":${num[n + N.trace]}`;
    if (num[n + N.cause]! > 0) l += `,"cause":${num[n + N.cause]}`;
    if (num[n + N.w]! > 0) l += `,"w":${num[n + N.w]}`;
    if (int[k + I.srcNode]! > 0) l += `,"srcNode":${int[k + I.srcNode]},"srcLc":${num[n + N.srcLc]}`;
    if (str[t + S.sub] !== undefined) l += `,"sub":${q(str[t + S.sub])}`;
    if (str[t + S.ls] !== undefined) l += `,"ls":${q(str[t + S.ls])}`;
    if (str[t + S.res] !== undefined) l += `,"res":${q(str[t + S.res])}`;
    if (int[k + I.mode]! >= 0) l += `,"mode":${int[k + I.mode]}`;
    if (num[n + N.token]! >= 0) l += `,"token":${num[n + N.token]}`;
    if (num[n + N.epoch]! >= 0) l += `,"epoch":${num[n + N.epoch]}`;
    if (str[t + S.lock] !== undefined) l += `,"lock":${q(idOut(str[t + S.lock]))}`;
    if (str[t + S.req] !== undefined) l += `,"req":${q(idOut(str[t + S.req]))}`;
    if (int[k + I.peer]! > 0) l += `,"peer":${int[k + I.peer]}`;
    if (str[t + S.info] !== undefined) l += `,"info":${q(str[t + S.info])}`;
    return l + '}';
  }

  /** The event with this seq, if still in the ring. */
  get(seq: number): TraceEvent | undefined {
    const i = this.slot(seq);
    return i < 0 ? undefined : this.event(i, seq);
  }

  /**
   * A message from another node is about to be delivered synchronously (to the cluster layer
   * or the lock router): record it, and make it the context of what its delivery sends.
   * Returns the context to restore afterwards (restore()).
   */
  inbound(kind: 'frame-in' | 'dlm-in', from: number, to: string, type: string, f: TraceFields, stamp?: TraceStamp): [number, string | undefined] {
    const saved: [number, string | undefined] = [this.cur, this.curActor];
    this.cur = this.record(kind, nodePath(from), to, type, f, { node: from, stamp });
    this.curActor = to; // what the delivery sends comes from its receiver (the link, the router)
    return saved;
  }

  /** A peer-link frame about to be written to `peer` (by the running PeerLink actor); returns its stamp. */
  frameOut(peer: number, body: { type: string }, epoch: number): TraceStamp | undefined {
    const f = this.fresh();
    f.epoch = epoch; f.peer = peer;
    peerBodyFields(body, f);
    if (f.sub !== undefined && isSelfTraffic(f.sub)) return undefined;
    return this.stampOf(this.record('frame-out', this.curActor ?? 'peer-link', nodePath(peer), body.type, f), false);
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
    if (f.sub !== undefined && isSelfTraffic(f.sub)) return undefined;
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
  private readonly srcStamp: TraceStamp = [0, 0];
  private readonly forwarded: TevSink = (kind, from, to, type, f, w, lc, mono, trace, cw, srcNode, srcLc) => {
    let cause = 0;
    if (cw < 0) cause = -cw;
    else if (cw > 0) {
      const j = cw % WORKER_CAUSES;
      if (this.workerW[j] === cw) cause = this.workerSeq[j]!;
    }
    if (lc > this.lc) this.lc = lc;
    const cs = cause > 0 ? this.slot(cause) : -1;
    let stamp: TraceStamp | undefined;
    if (srcNode > 0) { stamp = this.srcStamp; stamp[1] = srcLc; }
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
    this.within([this.workerSeq[j]!, this.strAt(i, S.to) as string], fn);
  }

  /** This thread's causal context, for a message it hands the cluster worker thread (TraceContext). */
  context(): TraceContext {
    const cs = this.slot(this.cur);
    return cs >= 0 ? [this.cur, this.num[cs * NUM + N.trace]!, this.lc, this.curActor ?? null] : [0, 0, this.lc, this.curActor ?? null];
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
    const id = this.num[i * NUM + N.trace]!, lc = this.num[i * NUM + N.lc]!;
    const res = withResource ? this.strAt(i, S.res) as string | undefined : undefined;
    if (res === undefined) return [id, lc];
    const ls = this.strAt(i, S.ls) as string | undefined;
    return ls === undefined ? [id, lc, res] : [id, lc, res, ls];
  }

  // ---- reading ------------------------------------------------------------------------

  /**
   * The matching events after `cursor`, oldest first, as many as fit in maxBytes of msgpack
   * (at least one if any matches, provided that one fits).
   */
  page(cursor: number, filter: TraceFilter, maxBytes: number, maxEvents = 5000, maxScan = PAGE_SCAN): TracePage {
    const first = this.first;
    const from = Math.max(cursor + 1, first);
    const missed = cursor > 0 && first > cursor + 1 ? first - cursor - 1 : 0;
    const out: TraceEvent[] = [];
    let bytes = 64;
    let seq = from;
    for (; seq <= this.seq && seq - from < maxScan; seq++) {
      const e = this.event((seq - 1) % this.ringSize, seq);
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

/**
 * Events a page looks at, at most: a read of a big ring with a filter that matches little is
 * many short turns of the lock engine's thread (the reader goes on with the cursor), not one
 * long one (a 10M-event ring scanned whole took ~1 s, the lock service stalled meanwhile).
 */
export const PAGE_SCAN = 65536;

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
