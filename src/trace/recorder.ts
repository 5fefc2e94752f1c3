/**
 * TraceRecorder: one per node (per ActorSystem). Records every message the node's actors
 * send, its peer-link frames, its lock messages to and from other nodes and its messages to
 * the kernel module, into a bounded ring (and, optionally, a TraceSink such as rotating
 * NDJSON files).
 *
 * Owns: the ring, the per-node event sequence, the Lamport clock, the trace-id counter, the
 * actor labels (nact name -> path such as resource/default/r1), and the causal context: the
 * event whose message the running actor handles (`cur`) and that actor's label
 * (`curActor`). ActorSystem sets both around each handler; the peer-link and port hooks set
 * them around the synchronous delivery of a message that came from another node. A message
 * sent while a context is set joins its trace and names its cause; one sent from outside
 * (a socket, a timer) starts a new trace.
 *
 * Cost: with tracing off there is no recorder at all (every hook is `recorder?.`); with it on,
 * one small object per message plus a WeakMap entry (message -> its event), measured in
 * docs/benchmarks.md ("Tracing").
 */
import type { Clock } from '../util/clock';
import { compactEvent, TRACE_ID_NODE_SHIFT, TraceEvent, TraceFields, TraceKind, TraceStamp } from './event';
import { extractFields, ORIGIN, peerBodyFields, SELF_TRAFFIC } from './fields';
import { matches, TraceFilter } from './filter';
import { encodedSize } from '../wire/frame';

export interface TraceSink {
  write(e: TraceEvent): void;
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

export class TraceRecorder {
  private readonly ring: Array<TraceEvent | undefined>;
  private seq = 0;
  private lc = 0;
  private traces = 0;
  private evicted = 0;
  private readonly labels = new Map<string, Label>();
  private readonly byMsg = new WeakMap<object, TraceEvent>();
  /** The event whose message is being handled right now (undefined: outside any handler). */
  cur: TraceEvent | undefined;
  /** The actor whose handler is running right now. */
  curActor: string | undefined;

  constructor(readonly node: number, private readonly clock: Clock, readonly ringSize: number, private readonly sink?: TraceSink) {
    this.ring = new Array(ringSize);
  }

  get stats(): TraceStats {
    return { recorded: this.seq, evicted: this.evicted, dropped: this.sink?.dropped ?? 0, ringSize: this.ringSize, first: this.first, last: this.seq };
  }

  private get first(): number { return this.seq === 0 ? 0 : Math.max(1, this.seq - this.ringSize + 1); }

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
    const f = extractFields(msg as Record<string, unknown>);
    if (f.sub !== undefined && SELF_TRAFFIC.has(f.sub)) return;
    if (to) { f.ls ??= to.ls; f.res ??= to.res; }
    const e = this.record(kind, this.curActor ?? ORIGIN[msg.type] ?? 'ext', to?.path ?? toName, msg.type, f);
    this.byMsg.set(msg, e);
  }

  /** Called by ActorSystem before a handler runs (the caller restores cur/curActor after). */
  enter(msg: object, actor: string): void {
    this.cur = this.byMsg.get(msg);
    this.curActor = actor;
  }

  // ---- other hooks --------------------------------------------------------------------

  /**
   * An event that is not an actor message (a frame out, a lock message to another node, a
   * message to the kernel). Fields missing from `f` come from the current context.
   */
  record(kind: TraceKind, from: string, to: string, type: string, f: TraceFields, src?: { node: number; stamp?: TraceStamp }): TraceEvent {
    const cur = this.cur;
    if (src?.stamp && src.stamp.lc > this.lc) this.lc = src.stamp.lc;
    const e: TraceEvent = {
      node: this.node, seq: ++this.seq, lc: ++this.lc, wall: Date.now(), mono: this.clock.now(),
      kind, from, to, type,
      trace: src?.stamp ? src.stamp.id : cur ? cur.trace : this.node * TRACE_ID_NODE_SHIFT + ++this.traces,
      cause: cur?.seq, srcNode: src?.stamp ? src.node : undefined, srcLc: src?.stamp?.lc,
      sub: f.sub, ls: f.ls ?? src?.stamp?.ls ?? cur?.ls, res: f.res ?? src?.stamp?.res ?? cur?.res,
      mode: f.mode, token: f.token, epoch: f.epoch, lock: f.lock ?? cur?.lock, req: f.req, peer: f.peer, info: f.info,
    };
    const i = (e.seq - 1) % this.ringSize;
    if (this.ring[i] !== undefined) this.evicted++;
    this.ring[i] = e;
    this.sink?.write(e);
    return e;
  }

  /**
   * A message from another node is about to be delivered synchronously (to the cluster layer
   * or the lock router): record it, and make it the context of what its delivery sends.
   * Returns the context to restore afterwards (restore()).
   */
  inbound(kind: 'frame-in' | 'dlm-in', from: number, to: string, type: string, f: TraceFields, stamp?: TraceStamp): [TraceEvent | undefined, string | undefined] {
    const saved: [TraceEvent | undefined, string | undefined] = [this.cur, this.curActor];
    const e = this.record(kind, `node/${from}`, to, type, f, { node: from, stamp });
    this.cur = e;
    this.curActor = to; // what the delivery sends comes from its receiver (the link, the router)
    return saved;
  }

  /** A peer-link frame written to `peer` (by the running PeerLink actor). */
  frameOut(peer: number, body: { type: string }, epoch: number): void {
    const f: TraceFields = { epoch, peer };
    peerBodyFields(body, f);
    if (f.sub !== undefined && SELF_TRAFFIC.has(f.sub)) return;
    this.record('frame-out', this.curActor ?? 'peer-link', `node/${peer}`, body.type, f);
  }

  /**
   * A peer-link frame from `peer`, about to be delivered: recorded, and the context of its
   * delivery (a lock message's stamp carries its trace and clock). Undefined: not recorded
   * (trace traffic); restore() takes that too.
   */
  frameIn(peer: number, body: { type: string; msg?: { tr?: TraceStamp } }, epoch: number): [TraceEvent | undefined, string | undefined] | undefined {
    const f: TraceFields = { epoch, peer };
    peerBodyFields(body, f);
    if (f.sub !== undefined && SELF_TRAFFIC.has(f.sub)) return undefined;
    return this.inbound('frame-in', peer, this.curActor ?? 'peer-link', body.type, f, body.type === 'dlm' ? body.msg?.tr : undefined);
  }

  restore(saved: [TraceEvent | undefined, string | undefined] | undefined): void {
    if (!saved) return;
    this.cur = saved[0];
    this.curActor = saved[1];
  }

  /** The stamp for a message to another node, from the event that records its sending. */
  static stampOf(e: TraceEvent, withResource: boolean): TraceStamp {
    const s: TraceStamp = { id: e.trace, lc: e.lc };
    if (withResource && e.res !== undefined) { s.res = e.res; if (e.ls !== undefined) s.ls = e.ls; }
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
      const e = this.ring[(seq - 1) % this.ringSize]!;
      if (!matches(e, filter)) continue;
      const c = compactEvent(e);
      const size = approxSize(c);
      if (out.length > 0 && (bytes + size > maxBytes || out.length >= maxEvents)) break;
      out.push(c);
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

/** Upper estimate of an event's msgpack size (strings as UTF-8 worst case, numbers as 9 bytes). */
function approxSize(e: TraceEvent): number {
  let n = 4;
  for (const k in e) {
    const v = (e as unknown as Record<string, unknown>)[k];
    n += k.length + 2 + (typeof v === 'string' ? v.length * 3 + 5 : 9);
  }
  return n;
}
