/**
 * Merging the traces of several nodes into one timeline that respects happens-before.
 *
 * Happens-before between recorded events has three kinds of edges:
 * - a thread's own order. A node records the events of its lock engine's (main) thread in seq
 *   order, and those of its cluster worker thread (the events with `w`) in w order. The seq
 *   of a worker event is only given when its batch reaches the main thread, and a message on a
 *   lock link (docs/cluster-protocol.md §4a) can overtake that batch: the main thread may
 *   record an answer to a worker's frame before the frame itself. So the two threads are two
 *   sequences, not one.
 * - a hand-over between the two threads of a node: an event's `cause` names (by seq) the event,
 *   on its node, whose message was being handled when it was made, also across the threads
 *   (a send handed to the worker, a frame the worker handed to the lock engine).
 * - a message from one node to another: an event with srcNode/srcLc comes after the sender's
 *   event with that lc (its `dlm-out`, or its `frame-out` for a peer frame).
 * The merge is a k-way merge of the threads' sequences: the next event is, among the threads'
 * next events whose cause and sending event (if any) are already out, the one with the
 * earliest wall time (then the lowest lc, node, seq). So causes always precede effects, and
 * concurrent events appear in wall-clock order. A cause or sending event that is not among
 * the events (evicted, filtered out, node not read) holds nothing back. Lamport clocks are not
 * unique on a node whose worker thread keeps its own (two concurrent events may share one): a
 * receipt then waits for every sending event with that clock. Should no head be ready (not
 * seen from the recordings), the one with the lowest clock goes next. Duplicates (the same
 * node and seq read twice, e.g. from a ring and a file) are dropped. Events without `w` (all
 * of a node's, in a trace written before it existed) are one sequence in seq order.
 */
import type { TraceEvent } from './event';

const isSend = (e: TraceEvent): boolean => e.kind === 'dlm-out' || e.kind === 'frame-out';
const sendKey = (node: number, lc: number): string => `${node}:${lc}`;
const eventKey = (node: number, seq: number): string => `${node}:${seq}`;
/** The thread an event was made in: its node's main thread, or its worker (w). */
const isWorker = (e: TraceEvent): boolean => e.w !== undefined;

export function causalOrder(events: Iterable<TraceEvent>): TraceEvent[] {
  /** Events not yet out, by node and seq (a cause not among them holds nothing back). */
  const pending = new Set<string>();
  const byThread = new Map<string, TraceEvent[]>();
  /** Sending events not yet out, by node and lc. */
  const unsent = new Map<string, number>();
  for (const e of events) {
    const k = eventKey(e.node, e.seq);
    if (pending.has(k)) continue;
    pending.add(k);
    const t = `${e.node}${isWorker(e) ? 'w' : 'm'}`;
    let q = byThread.get(t);
    if (!q) byThread.set(t, (q = []));
    q.push(e);
    if (isSend(e)) { const s = sendKey(e.node, e.lc); unsent.set(s, (unsent.get(s) ?? 0) + 1); }
  }
  const queues = [...byThread.values()].map((q) => ({ q: q.sort((a, b) => (a.w ?? 0) - (b.w ?? 0) || a.seq - b.seq), i: 0 }));
  const ready = (e: TraceEvent): boolean =>
    (e.cause === undefined || !pending.has(eventKey(e.node, e.cause))) &&
    (e.srcNode === undefined || e.srcLc === undefined || !unsent.get(sendKey(e.srcNode, e.srcLc)));
  const out: TraceEvent[] = [];
  for (;;) {
    let best: { q: TraceEvent[]; i: number } | undefined;
    let lowest: { q: TraceEvent[]; i: number } | undefined;
    for (const x of queues) {
      if (x.i >= x.q.length) continue;
      const e = x.q[x.i]!;
      if (!lowest || e.lc < lowest.q[lowest.i]!.lc) lowest = x;
      if (!ready(e)) continue;
      const b = best?.q[best.i];
      if (!b || e.wall < b.wall || (e.wall === b.wall && (e.lc < b.lc || (e.lc === b.lc && (e.node < b.node || (e.node === b.node && e.seq < b.seq)))))) best = x;
    }
    const pick = best ?? lowest;
    if (!pick) break;
    const e = pick.q[pick.i++]!;
    pending.delete(eventKey(e.node, e.seq));
    if (isSend(e)) { const s = sendKey(e.node, e.lc); unsent.set(s, unsent.get(s)! - 1); }
    out.push(e);
  }
  return out;
}

/**
 * Checks a merged timeline: each thread's events in its order (a node's main thread in seq
 * order, its worker in w order), every event after its cause on the node, and every event
 * received from another node after the event that sent it. Returns the violations (empty:
 * consistent).
 */
export function checkCausality(timeline: readonly TraceEvent[]): string[] {
  const bad: string[] = [];
  const last = new Map<string, number>();
  const sentAt = new Map<string, number>();
  const at = new Map<string, number>();
  timeline.forEach((e, i) => {
    const t = `${e.node}${isWorker(e) ? 'w' : 'm'}`, n = e.w ?? e.seq;
    const prev = last.get(t);
    if (prev !== undefined && n < prev) bad.push(isWorker(e) ? `node ${e.node}: worker event w ${n} after w ${prev}` : `node ${e.node}: seq ${n} after ${prev}`);
    last.set(t, n);
    at.set(eventKey(e.node, e.seq), i);
    if (isSend(e)) sentAt.set(sendKey(e.node, e.lc), i); // the last one with that clock: a receipt follows them all
  });
  timeline.forEach((e, i) => {
    if (e.cause !== undefined) {
      const c = at.get(eventKey(e.node, e.cause));
      if (c !== undefined && c > i) bad.push(`node ${e.node} seq ${e.seq} before its cause seq ${e.cause}`);
    }
    if (e.srcNode === undefined) return;
    const s = sentAt.get(sendKey(e.srcNode, e.srcLc!));
    if (s !== undefined && s > i) bad.push(`node ${e.node} seq ${e.seq} received before node ${e.srcNode} sent it (lc ${e.srcLc})`);
  });
  return bad;
}
