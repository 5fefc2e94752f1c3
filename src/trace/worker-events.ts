/**
 * The cluster worker thread's trace events on their way to the node's recorder on the lock
 * engine's thread (worker-tracer.ts → the thread pipe → recorder.ts), in a compact form.
 *
 * A batch (TevBatch) is one flat array of numbers and strings: the number of its first event
 * (the worker numbers its events 1, 2, 3... and every one is in a batch, in order, so the
 * others follow from it), then each event as a tuple — no object per event, no key names. The
 * strings that repeat (actor paths, message types, lockspaces) are interned: the first time
 * one is written it goes as itself and both ends give it the next number of their table;
 * afterwards the number stands for it. Both tables grow the same way (the pipe keeps the
 * batches in order, every batch is read once, in order) and stop at TEV_INTERNED entries;
 * strings beyond that, and those that rarely repeat (resource, lock id, request, info), go as
 * themselves.
 *
 * One event: kind, from*, to*, type*, lc, mono, trace, cause, srcNode, [srcLc if srcNode > 0],
 * bits, then the fields whose bit is set, in the order of FIELD_BITS (* interned; `cause` > 0
 * is an earlier worker event, < 0 an event of the main thread (-seq), 0 none).
 *
 * Measured in docs/benchmarks.md ("Tracing"): as msgpack maps with their key names, one pipe
 * item each, a remote lock pair cost 1.7× the CPU of an untraced one.
 */
import type { TraceFields } from './event';

export type TevBatch = Array<number | string>;

/** The kinds of event the worker makes. */
export const TEV_KINDS = ['send', 'ask', 'frame-out', 'frame-in'] as const;
export type TevKind = (typeof TEV_KINDS)[number];
const KIND_NUMBER: Record<TevKind, number> = { send: 0, ask: 1, 'frame-out': 2, 'frame-in': 3 };

/** Interned strings at most, on each end. */
export const TEV_INTERNED = 4096;

/** The optional fields, by presence bit, in the order their values follow the bits. */
const FIELD_BITS = { sub: 1, ls: 2, res: 4, lock: 8, req: 16, info: 32, mode: 64, token: 128, epoch: 256, peer: 512 } as const;

/** One decoded event, as TevReader.read hands it on (its arguments, in this order). */
export type TevSink = (kind: TevKind, from: string, to: string, type: string, f: TraceFields, w: number, lc: number, mono: number, trace: number, cause: number, srcNode: number, srcLc: number) => void;

/** The worker's end: appends events to the batch being filled. */
export class TevWriter {
  private b: TevBatch = [];
  private readonly ids = new Map<string, number>();
  /** Events in the batch being filled. */
  count = 0;

  private str(s: string): void {
    const i = this.ids.get(s);
    if (i !== undefined) { this.b.push(i); return; }
    if (this.ids.size < TEV_INTERNED) this.ids.set(s, this.ids.size);
    this.b.push(s);
  }

  /** One event; `w` is its number (one more than the one before: the first of a batch heads it). */
  add(kind: TevKind, from: string, to: string, type: string, f: TraceFields, w: number, lc: number, mono: number, trace: number, cause: number, srcNode: number, srcLc: number): void {
    const b = this.b;
    if (this.count++ === 0) b.push(w);
    b.push(KIND_NUMBER[kind]);
    this.str(from); this.str(to); this.str(type);
    b.push(lc, mono, trace, cause, srcNode);
    if (srcNode > 0) b.push(srcLc);
    let bits = 0;
    if (f.sub !== undefined) bits |= FIELD_BITS.sub;
    if (f.ls !== undefined) bits |= FIELD_BITS.ls;
    if (f.res !== undefined) bits |= FIELD_BITS.res;
    if (f.lock !== undefined) bits |= FIELD_BITS.lock;
    if (f.req !== undefined) bits |= FIELD_BITS.req;
    if (f.info !== undefined) bits |= FIELD_BITS.info;
    if (f.mode !== undefined) bits |= FIELD_BITS.mode;
    if (f.token !== undefined) bits |= FIELD_BITS.token;
    if (f.epoch !== undefined) bits |= FIELD_BITS.epoch;
    if (f.peer !== undefined) bits |= FIELD_BITS.peer;
    b.push(bits);
    if (f.sub !== undefined) this.str(f.sub);
    if (f.ls !== undefined) this.str(f.ls);
    if (f.res !== undefined) b.push(f.res);
    if (f.lock !== undefined) b.push(f.lock);
    if (f.req !== undefined) b.push(f.req);
    if (f.info !== undefined) b.push(f.info);
    if (f.mode !== undefined) b.push(f.mode);
    if (f.token !== undefined) b.push(f.token);
    if (f.epoch !== undefined) b.push(f.epoch);
    if (f.peer !== undefined) b.push(f.peer);
  }

  /** The batch filled so far (undefined: none), and a new one begins. */
  take(): TevBatch | undefined {
    if (this.count === 0) return undefined;
    const b = this.b;
    this.b = [];
    this.count = 0;
    return b;
  }
}

/** The recorder's end: reads the batches, in the order they were taken. */
export class TevReader {
  private readonly table: string[] = [];
  /** Reused for every event (the sink copies what it keeps). */
  private readonly f: TraceFields = {};

  private str(v: number | string | undefined): string {
    if (typeof v === 'number') {
      const s = this.table[v];
      if (s === undefined) throw new Error(`trace event batch: string ${v} not defined`);
      return s;
    }
    if (typeof v !== 'string') throw new Error('trace event batch: a string expected');
    if (this.table.length < TEV_INTERNED) this.table.push(v);
    return v;
  }

  /** Hands every event of `b` to `sink`, in order. Throws on a batch that is not well formed (nothing is skipped silently). */
  read(b: TevBatch, sink: TevSink): void {
    const f = this.f;
    const num = (i: number): number => {
      const v = b[i];
      if (typeof v !== 'number') throw new Error(`trace event batch: a number expected at ${i}`);
      return v;
    };
    let w = num(0);
    let i = 1;
    while (i < b.length) {
      const kind = TEV_KINDS[num(i++)];
      if (kind === undefined) throw new Error(`trace event batch: no event kind ${b[i - 1]}`);
      const from = this.str(b[i++]), to = this.str(b[i++]), type = this.str(b[i++]);
      const lc = num(i++), mono = num(i++), trace = num(i++), cause = num(i++), srcNode = num(i++);
      const srcLc = srcNode > 0 ? num(i++) : 0;
      const bits = num(i++);
      f.sub = bits & FIELD_BITS.sub ? this.str(b[i++]) : undefined;
      f.ls = bits & FIELD_BITS.ls ? this.str(b[i++]) : undefined;
      f.res = bits & FIELD_BITS.res ? String(b[i++]) : undefined;
      f.lock = bits & FIELD_BITS.lock ? String(b[i++]) : undefined;
      f.req = bits & FIELD_BITS.req ? String(b[i++]) : undefined;
      f.info = bits & FIELD_BITS.info ? String(b[i++]) : undefined;
      f.mode = bits & FIELD_BITS.mode ? num(i++) : undefined;
      f.token = bits & FIELD_BITS.token ? num(i++) : undefined;
      f.epoch = bits & FIELD_BITS.epoch ? num(i++) : undefined;
      f.peer = bits & FIELD_BITS.peer ? num(i++) : undefined;
      if (i > b.length) throw new Error('trace event batch: truncated');
      sink(kind, from, to, type, f, w++, lc, mono, trace, cause, srcNode, srcLc);
    }
  }
}

/** A worker event as an object (TevReader.events: for tests and inspection; the recorder reads batches without making any). */
export interface ForwardedEvent {
  kind: TevKind;
  from: string;
  to: string;
  type: string;
  /** Only the fields that are set. */
  f: TraceFields;
  /** The worker's number of this event (from 1). */
  w: number;
  /** Its Lamport clock, taken in the worker when it happened (a frame out carries it as its stamp). */
  lc: number;
  /** The node's monotonic clock when it happened, in the worker. */
  mono: number;
  trace: number;
  /** Its cause: an earlier worker event (its w), or an event of the main thread (its seq). */
  cw?: number;
  cm?: number;
  /** A frame in with a stamp: the sending node and the lc of its frame out. */
  srcNode?: number;
  srcLc?: number;
}

/** The events of a batch as objects, read with `r` (which must read every batch, in order). */
export function tevEvents(r: TevReader, b: TevBatch): ForwardedEvent[] {
  const out: ForwardedEvent[] = [];
  r.read(b, (kind, from, to, type, f, w, lc, mono, trace, cause, srcNode, srcLc) => {
    const fields: TraceFields = {};
    for (const k of Object.keys(f) as Array<keyof TraceFields>) if (f[k] !== undefined) (fields as Record<string, unknown>)[k] = f[k];
    const e: ForwardedEvent = { kind, from, to, type, f: fields, w, lc, mono, trace };
    if (cause > 0) e.cw = cause; else if (cause < 0) e.cm = -cause;
    if (srcNode > 0) { e.srcNode = srcNode; e.srcLc = srcLc; }
    out.push(e);
  });
  return out;
}
