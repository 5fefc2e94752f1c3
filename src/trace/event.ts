/**
 * The trace event: one record per message observed on a node (docs/tracing.md), defined once
 * for the recorder, the wire (dump/collect replies, peer trace queries), the NDJSON files and
 * every export. validateTraceEvent checks one that arrived from elsewhere (a peer, a file).
 *
 * Causality. `lc` is the node's Lamport clock at the event: it grows by one per event, and an
 * event that receives a message from another node (frame-in, dlm-in) first moves it past the
 * sender's stamp (srcLc). So a happens-before b implies a.lc < b.lc, and a timeline sorted by
 * (lc, node, seq) respects happens-before. `trace` is the id of the chain of work the message
 * belongs to (a client request and everything it caused, on every node it reached); `cause`
 * is the seq of the event, on the same node, whose message was being handled when this one
 * was sent. `w` marks an event of the node's cluster worker thread (its number there).
 */
import { ProtocolError, checkName } from '../wire/client-protocol';
import { MAX_LOCKSPACE_NAME, MAX_RESOURCE_NAME } from '../dlm/types';

/**
 * send / ask        a message through ActorSystem.send / ask (actor to actor)
 * frame-out/in      a peer-link frame (leases, membership, lock traffic, acks)
 * dlm-out/in        a lock-engine message to/from another node (after the DlmChannel)
 * kernel-out        a message to the kernel module (kernel-in arrives as an actor message)
 */
export const TRACE_KINDS = ['send', 'ask', 'frame-out', 'frame-in', 'dlm-out', 'dlm-in', 'kernel-out'] as const;
export type TraceKind = (typeof TRACE_KINDS)[number];

/** The key fields a message may carry (every one optional). */
export interface TraceFields {
  /** Inner message type of a wrapper (route -> request, client -> lock, send -> dlm.op). */
  sub?: string;
  ls?: string;
  res?: string;
  /** Lock mode 0..5 (NL CR CW PR PW EX). */
  mode?: number;
  token?: number;
  epoch?: number;
  /**
   * Lock id "node:session/n" (or an owner "node:session", a kernel lock id); while recording,
   * a client's lock number as the number it is (an event read out has its text).
   */
  lock?: string | number;
  /** Request id (client request id, kernel REQ_ID); while recording, a client's as its number. */
  req?: string | number;
  /** The other node of a peer message. */
  peer?: number;
  /** A short reason or error code. */
  info?: string;
}

/** An event as read out of the ring: its ids as text (the recorder formats a number when read). */
export interface TraceEvent extends Omit<TraceFields, 'lock' | 'req'> {
  lock?: string;
  req?: string;
  node: number;
  /** Per node, from 1, one per event (a gap means events were evicted). */
  seq: number;
  lc: number;
  /** Wall clock, ms since the epoch. */
  wall: number;
  /** The node's monotonic clock (its injected Clock), ms. */
  mono: number;
  kind: TraceKind;
  /** Sender: an actor path (resource/default/r1, session/4...) or an origin (client, timer, net, kernel, node/3). */
  from: string;
  to: string;
  type: string;
  trace: number;
  cause?: number;
  /**
   * An event of the cluster worker thread (docs/tracing.md): the worker's number of it, from
   * 1, in the worker's own order. Its seq is given when its batch reaches the lock engine's
   * thread, which can be after that thread recorded events the worker event caused (through
   * another node); a merge orders the two threads of a node separately (merge.ts).
   */
  w?: number;
  /** For an event caused by a message from another node: that node and the sender's lc. */
  srcNode?: number;
  srcLc?: number;
}

/**
 * What a peer frame (PeerMessage.tr) and a DLM peer message (DlmPeerMsg.tr) carry when the
 * sender traces: the sending event's trace id and Lamport clock, and for an `ev` the resource
 * it concerns and its lockspace — `[id, lc]`, `[id, lc, res]` or `[id, lc, res, ls]`. A list,
 * in memory as on the wire: msgpack decodes it with about half the allocation of a map with
 * the same fields, and a received one is used as decoded (docs/benchmarks.md).
 */
export type TraceStamp = [id: number, lc: number, res?: string, ls?: string];

/** Trace ids: the node that started the chain, then its counter (fits a JS safe integer). */
export const TRACE_ID_NODE_SHIFT = 2 ** 40;
/**
 * Chains started in the cluster worker thread (a renewal timer, a frame without a stamp) take
 * their counter from the upper half (printed `N.wK`): the worker numbers its chains itself,
 * so it can stamp them on its frames before the main thread has recorded anything.
 */
export const WORKER_TRACE_BASE = 2 ** 39;
export function traceIdText(id: number): string {
  const k = id % TRACE_ID_NODE_SHIFT;
  return `${Math.floor(id / TRACE_ID_NODE_SHIFT)}.${k >= WORKER_TRACE_BASE ? `w${k - WORKER_TRACE_BASE}` : k}`;
}

/** The inverse of traceIdText (undefined: not a trace id). */
export function parseTraceId(text: string): number | undefined {
  const m = /^(\d+)\.(w?)(\d+)$/.exec(text);
  if (!m) return undefined;
  const k = Number(m[3]) + (m[2] ? WORKER_TRACE_BASE : 0);
  return k < TRACE_ID_NODE_SHIFT ? Number(m[1]) * TRACE_ID_NODE_SHIFT + k : undefined;
}

export const MODE_LETTERS = ['NL', 'CR', 'CW', 'PR', 'PW', 'EX'] as const;
export function modeText(m: number | undefined): string | undefined { return m === undefined ? undefined : MODE_LETTERS[m] ?? String(m); }

/** A copy without the fields that are undefined (for msgpack and JSON output). */
export function compactEvent(e: TraceEvent): TraceEvent {
  const out: Record<string, unknown> = {};
  for (const k in e) { const v = (e as unknown as Record<string, unknown>)[k]; if (v !== undefined) out[k] = v; }
  return out as unknown as TraceEvent;
}

// ---- validation of events from elsewhere ---------------------------------------------

const MAX_LABEL = 512;
type Obj = Record<string, unknown>;
const fail = (w: string): never => { throw new ProtocolError(`trace event: ${w}`); };
const uint = (o: Obj, k: string): number => {
  const v = o[k];
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER ? v : fail(`field '${k}' must be an unsigned integer`);
};
const num = (o: Obj, k: string): number => {
  const v = o[k];
  return typeof v === 'number' && Number.isFinite(v) ? v : fail(`field '${k}' must be a number`);
};
const str = (o: Obj, k: string, max = MAX_LABEL): string => {
  const v = o[k];
  return typeof v === 'string' && v.length <= max ? v : fail(`field '${k}' must be a string of at most ${max} characters`);
};
const opt = <T>(o: Obj, k: string, f: (o: Obj, k: string) => T): T | undefined => (o[k] === undefined || o[k] === null ? undefined : f(o, k));

export function validateTraceEvent(x: unknown): TraceEvent {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) fail('not a map');
  const o = x as Obj;
  const kind = o.kind;
  if (typeof kind !== 'string' || !(TRACE_KINDS as readonly string[]).includes(kind)) fail(`field 'kind' must be one of ${TRACE_KINDS.join(', ')}`);
  const mode = opt(o, 'mode', uint);
  if (mode !== undefined && mode > 5) fail(`field 'mode' must be a lock mode 0..5`);
  const w = opt(o, 'w', uint);
  if (w === 0) fail(`field 'w' must be at least 1`);
  const e: TraceEvent = {
    node: uint(o, 'node'), seq: uint(o, 'seq'), lc: uint(o, 'lc'), wall: num(o, 'wall'), mono: num(o, 'mono'),
    kind: kind as TraceKind, from: str(o, 'from'), to: str(o, 'to'), type: str(o, 'type', 128), trace: uint(o, 'trace'),
    cause: opt(o, 'cause', uint), w, srcNode: opt(o, 'srcNode', uint), srcLc: opt(o, 'srcLc', uint),
    sub: opt(o, 'sub', (p, k) => str(p, k, 128)), ls: opt(o, 'ls', (p, k) => checkName(p[k], k, MAX_LOCKSPACE_NAME)),
    res: opt(o, 'res', (p, k) => checkName(p[k], k, MAX_RESOURCE_NAME)), mode,
    token: opt(o, 'token', uint), epoch: opt(o, 'epoch', uint), lock: opt(o, 'lock', (p, k) => str(p, k, 128)),
    req: opt(o, 'req', (p, k) => str(p, k, 64)), peer: opt(o, 'peer', uint), info: opt(o, 'info', (p, k) => str(p, k, 512)),
  };
  return compactEvent(e);
}

/**
 * Validates the trace stamp of a peer frame or a DLM peer message (TraceStamp) and returns it
 * as decoded (it runs for every stamp a traced node receives: two per lock-link frame).
 */
export function validateTraceStamp(x: unknown): TraceStamp {
  if (!Array.isArray(x) || x.length < 2 || x.length > 4) throw new ProtocolError(`field 'tr' must be a list [id, lc], [id, lc, res] or [id, lc, res, ls]`);
  stampUint(x[0], 'id');
  stampUint(x[1], 'lc');
  if (x.length > 2) checkName(x[2], 'tr.res', MAX_RESOURCE_NAME);
  if (x.length > 3) checkName(x[3], 'tr.ls', MAX_LOCKSPACE_NAME);
  return x as TraceStamp;
}

/** A stamp's unsigned integer field `k` (value v), or the ProtocolError naming it. */
function stampUint(v: unknown, k: 'id' | 'lc'): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER) return v;
  throw new ProtocolError(`field 'tr.${k}' must be an unsigned integer`);
}
