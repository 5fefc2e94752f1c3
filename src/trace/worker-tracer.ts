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
 * Each event goes to `forward` (a 'tev' item in the pipe to the main thread, in order with
 * everything else the worker reports, batched by the pipe); there TraceRecorder.forwardedEvent
 * records it with the worker's time and clock and turns its cause into the main thread's seq.
 *
 * Present only when the node traces ([trace] enabled): otherwise the worker's actor system
 * has no tracer (every hook is one `undefined` check) and nothing crosses.
 */
import { ORIGIN, extractFields, peerBodyFields, SELF_TRAFFIC } from './fields';
import { TRACE_ID_NODE_SHIFT, WORKER_TRACE_BASE, type TraceFields, type TraceStamp } from './event';
import type { ActorTracer, ForwardedEvent, FrameTracer, TraceContext } from './recorder';
import type { Clock } from '../util/clock';

/** The message -> its event number, for the receiver's handler (as the recorder's tag; never encoded). */
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

  constructor(private readonly node: number, private readonly clock: Clock, private readonly forward: (e: ForwardedEvent) => void) {}

  named(name: string, kind: string, fields: Record<string, unknown>): string {
    const path = [kind, ...Object.values(fields).map(String)].join('/');
    this.labels.set(name, path);
    return path;
  }

  forget(name: string): void { this.labels.delete(name); }

  onSend(toName: string, msg: { type: string }, kind: 'send' | 'ask'): void {
    const f = extractFields(msg as Record<string, unknown>, {});
    if (f.sub !== undefined && SELF_TRAFFIC.has(f.sub)) return;
    (msg as Tagged)[EVENT_OF] = this.event(kind, this.curActor ?? ORIGIN[msg.type] ?? 'ext', this.labels.get(toName) ?? toName, msg.type, f);
  }

  enter(msg: object, actor: string): void {
    this.cur = (msg as Tagged)[EVENT_OF] ?? 0;
    this.curActor = actor;
  }

  frameOut(peer: number, body: { type: string }, epoch: number): TraceStamp | undefined {
    const f = frameFields(peer, body, epoch);
    if (!f) return undefined;
    const w = this.event('frame-out', `peer-link/${peer}`, `node/${peer}`, body.type, f);
    return { id: this.traceOf[w % TRACE_WINDOW]!, lc: this.lc };
  }

  frameIn(peer: number, body: { type: string; msg?: { tr?: TraceStamp } }, epoch: number, tr?: TraceStamp): [number, string | undefined] | undefined {
    const f = frameFields(peer, body, epoch);
    if (!f) return undefined;
    const stamp = tr ?? (body.type === 'dlm' ? body.msg?.tr : undefined);
    const to = `peer-link/${peer}`;
    const saved: [number, string | undefined] = [this.cur, this.curActor];
    this.cur = this.event('frame-in', `node/${peer}`, to, body.type, f, stamp && { node: peer, stamp });
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

  /** One event: numbered, clocked, in its chain, and forwarded. Returns its number. */
  private event(kind: ForwardedEvent['kind'], from: string, to: string, type: string, f: TraceFields, src?: { node: number; stamp: TraceStamp }): number {
    const w = ++this.w;
    if (src && src.stamp.lc > this.lc) this.lc = src.stamp.lc;
    const lc = ++this.lc;
    const cur = this.cur;
    let trace: number;
    if (src) trace = src.stamp.id;
    else if (cur < 0) trace = this.mainTrace;
    else if (cur > 0 && this.traceW[cur % TRACE_WINDOW] === cur) trace = this.traceOf[cur % TRACE_WINDOW]!;
    else trace = this.node * TRACE_ID_NODE_SHIFT + WORKER_TRACE_BASE + ++this.traces;
    this.traceW[w % TRACE_WINDOW] = w;
    this.traceOf[w % TRACE_WINDOW] = trace;
    const e: ForwardedEvent = { kind, from, to, type, f: compact(f), w, lc, mono: this.clock.now(), trace };
    if (cur > 0) e.cw = cur;
    else if (cur < 0) e.cm = -cur;
    if (src) { e.srcNode = src.node; e.srcLc = src.stamp.lc; }
    this.forward(e);
    return w;
  }
}

function compact(f: TraceFields): TraceFields {
  for (const k of Object.keys(f) as Array<keyof TraceFields>) if (f[k] === undefined) delete f[k];
  return f;
}

/** A frame's trace fields; undefined: trace traffic (not recorded). */
function frameFields(peer: number, body: unknown, epoch: number): TraceFields | undefined {
  const f: TraceFields = { epoch, peer };
  peerBodyFields(body, f);
  return f.sub !== undefined && SELF_TRAFFIC.has(f.sub) ? undefined : f;
}
