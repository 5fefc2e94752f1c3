/**
 * WorkerTracer: how the cluster worker thread (cluster-worker-main.ts) records every message
 * of its actors (Membership, PeerLink, the Lease actors, the rendezvous) and every peer-link
 * frame into the node's trace. The recorder lives on the lock engine's thread (its ring, its
 * file); this tracer is the worker's ActorSystem.tracer and frame tracer, and makes each event
 * there, when it happens, with what only the worker knows:
 *
 *  - its causal context: the event whose message the running worker actor handles (set by the
 *    actor layer around every handler, as on the main thread), or the main thread's event that
 *    handed the worker what it is sending (a TraceContext with the send), so a renewal timer's
 *    tick, the renew frames it sends, a renewAck received, the membership's `peerMessage` and
 *    the `lease.acked` it causes form one chain;
 *  - its Lamport clock: the worker keeps one, moved past every stamp it receives (frames in)
 *    and past the main thread's clock on every send handed over, so an event's clock is above
 *    that of everything that happened before it on any thread of any node;
 *  - its trace id: the cause's, a received frame's stamp, or a new chain numbered by the
 *    worker (`N.wK`, event.ts) — so a frame out carries its stamp (trace id and the lc of its
 *    frame-out event) before the main thread has recorded anything.
 *
 * Each event is appended to a batch (worker-events.ts: a flat array, interned strings, no
 * object per event) that the worker puts in the pipe to the main thread ahead of the next
 * thing it reports there, or after a short delay when it reports nothing (cluster-worker-main.ts),
 * so tracing adds no crossing of its own to a lock message's path; there
 * TraceRecorder.forwardedBatch records each event with the worker's time and clock and turns
 * its cause into the main thread's seq.
 *
 * Present only when the node traces ([trace] enabled): otherwise the worker's actor system
 * has no tracer (every hook is one `undefined` check) and nothing crosses.
 */
import { ORIGIN, extractFields, isSelfTraffic, nodePath, peerBodyFields, peerLinkPath } from './fields';
import { TRACE_ID_NODE_SHIFT, WORKER_TRACE_BASE, type TraceFields, type TraceStamp } from './event';
import type { ActorTracer, FrameTracer, TraceContext } from './recorder';
import type { Clock } from '../util/clock';
import { TevBatch, TevKind, TevWriter } from './worker-events';

/** An ask's message -> its event number, for the receiver's handler (as the recorder's tag; never encoded; a send's travels beside it). */
const EVENT_OF: unique symbol = Symbol('mxfs.trace.workerEvent');
type Tagged = { [EVENT_OF]?: number };

/** Trace ids of the newest events, by event number modulo this (a handler's cause is recent). */
const TRACE_WINDOW = 4096;

export class WorkerTracer implements ActorTracer, FrameTracer {
  /** The worker event being handled (> 0), a main-thread event (< 0: -seq), or none (0). */
  cur = 0;
  curActor: string | undefined;
  /** The trace id of the main-thread event in `cur` (< 0). */
  private mainTrace = 0;
  private w = 0;
  private lc = 0;
  private traces = 0;
  private readonly labels = new Map<string, string>();
  private readonly traceW = new Float64Array(TRACE_WINDOW);
  private readonly traceOf = new Float64Array(TRACE_WINDOW);
  private readonly out = new TevWriter();
  /** Reused for every event's fields (the writer copies them into the batch). */
  private readonly f: TraceFields = {};

  /**
   * `pending(n)`: called after each event with the number of events now waiting in the batch
   * (the caller takes it with take(): ahead of what it sends next, or when it has waited long
   * enough, or is large).
   */
  constructor(private readonly node: number, private readonly clock: Clock, private readonly pending: (n: number) => void) {}

  /** The events made since the last take(), in order (undefined: none). */
  take(): TevBatch | undefined { return this.out.take(); }

  named(name: string, kind: string, fields: Record<string, unknown>): string {
    const path = [kind, ...Object.values(fields).map(String)].join('/');
    this.labels.set(name, path);
    return path;
  }

  label(name: string): unknown { return this.labels.get(name); }

  forget(name: string): void { this.labels.delete(name); }

  onSend(toName: string, msg: { type: string }, kind: 'send' | 'ask', label?: unknown): number {
    const f = extractFields(msg as Record<string, unknown>, this.f);
    if (f.sub !== undefined && isSelfTraffic(f.sub)) return 0;
    const w = this.event(kind, this.curActor ?? ORIGIN[msg.type] ?? 'ext', (label as string | undefined) ?? this.labels.get(toName) ?? toName, msg.type, f);
    if (kind === 'ask') (msg as Tagged)[EVENT_OF] = w;
    return w;
  }

  enter(msg: object, actor: string, sent: number): void {
    this.cur = sent !== 0 ? sent : (msg as Tagged)[EVENT_OF] ?? 0;
    this.curActor = actor;
  }

  frameOut(peer: number, body: { type: string }, epoch: number): TraceStamp | undefined {
    const f = frameFields(peer, body, epoch, this.f);
    if (!f) return undefined;
    const w = this.event('frame-out', peerLinkPath(peer), nodePath(peer), body.type, f);
    return [this.traceOf[w % TRACE_WINDOW]!, this.lc];
  }

  frameIn(peer: number, body: { type: string; msg?: { tr?: TraceStamp } }, epoch: number, tr?: TraceStamp): [number, string | undefined] | undefined {
    const f = frameFields(peer, body, epoch, this.f);
    if (!f) return undefined;
    const stamp = tr ?? (body.type === 'dlm' ? body.msg?.tr : undefined);
    const to = peerLinkPath(peer);
    const saved: [number, string | undefined] = [this.cur, this.curActor];
    this.cur = this.event('frame-in', nodePath(peer), to, body.type, f, stamp && { node: peer, stamp });
    this.curActor = to;
    return saved;
  }

  restore(saved: [number, string | undefined] | undefined): void {
    if (!saved) return;
    this.cur = saved[0];
    this.curActor = saved[1];
  }

  hold(): unknown { return [this.cur, this.curActor, this.mainTrace]; }

  within(held: unknown, fn: () => void): void {
    const saved = this.hold();
    [this.cur, this.curActor, this.mainTrace] = held as [number, string | undefined, number];
    try { fn(); } finally { [this.cur, this.curActor, this.mainTrace] = saved as [number, string | undefined, number]; }
  }

  /** Runs `fn` (the worker taking a send from the main thread) in the main thread's context `ctx`. */
  fromMain(ctx: TraceContext, fn: () => void): void {
    const [seq, trace, lc, actor] = ctx;
    if (lc > this.lc) this.lc = lc;
    this.within([seq > 0 ? -seq : 0, actor ?? undefined, trace], fn);
  }

  /** One event: numbered, clocked, in its chain, and into the batch. Returns its number. */
  private event(kind: TevKind, from: string, to: string, type: string, f: TraceFields, src?: { node: number; stamp: TraceStamp }): number {
    const w = ++this.w;
    if (src && src.stamp[1] > this.lc) this.lc = src.stamp[1];
    const lc = ++this.lc;
    const cur = this.cur;
    let trace: number;
    if (src) trace = src.stamp[0];
    else if (cur < 0) trace = this.mainTrace;
    else if (cur > 0 && this.traceW[cur % TRACE_WINDOW] === cur) trace = this.traceOf[cur % TRACE_WINDOW]!;
    else trace = this.node * TRACE_ID_NODE_SHIFT + WORKER_TRACE_BASE + ++this.traces;
    this.traceW[w % TRACE_WINDOW] = w;
    this.traceOf[w % TRACE_WINDOW] = trace;
    this.out.add(kind, from, to, type, f, w, lc, this.clock.now(), trace, cur, src ? src.node : 0, src ? src.stamp[1] : 0);
    this.pending(this.out.count);
    return w;
  }
}

/** A frame's trace fields, into `f` (emptied first); undefined: trace traffic (not recorded). */
function frameFields(peer: number, body: unknown, epoch: number, f: TraceFields): TraceFields | undefined {
  f.sub = f.ls = f.res = f.lock = f.req = f.info = undefined;
  f.mode = f.token = f.epoch = undefined;
  f.epoch = epoch;
  f.peer = peer;
  peerBodyFields(body, f);
  return f.sub !== undefined && isSelfTraffic(f.sub) ? undefined : f;
}
