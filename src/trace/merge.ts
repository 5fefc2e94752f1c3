/**
 * Merging the traces of several nodes into one timeline that respects happens-before.
 *
 * Happens-before between recorded events has two kinds of edges: a node's own order (seq:
 * the order its recorder wrote them, which keeps each thread's order and every hand-over
 * between the lock engine's thread and the cluster worker thread), and a message from one
 * node to another (an event with srcNode/srcLc comes after the sender's event with that lc:
 * its `dlm-out`, or its `frame-out` for a peer frame). The merge is a k-way merge of the nodes'
 * sequences: the next event is, among the nodes' next events whose sending event (if any) is
 * already out, the one with the earliest wall time (then the lowest lc, node). So causes always
 * precede effects, and concurrent events appear in wall-clock order. A sending event that is
 * not among the events (evicted, filtered out, node not read) holds nothing back. Lamport
 * clocks are not unique on a node whose worker thread keeps its own (two concurrent events
 * may share one): a receipt then waits for every sending event with that clock. Should no
 * head be ready (not seen from one node's recordings), the one with the lowest clock goes
 * next. Duplicates (the same node and seq read twice, e.g. from a ring and a file) are dropped.
 */
import type { TraceEvent } from './event';

const isSend = (e: TraceEvent): boolean => e.kind === 'dlm-out' || e.kind === 'frame-out';
const sendKey = (node: number, lc: number): string => `${node}:${lc}`;

export function causalOrder(events: Iterable<TraceEvent>): TraceEvent[] {
  const seen = new Set<string>();
  const byNode = new Map<number, TraceEvent[]>();
  /** Sending events not yet out, by node and lc. */
  const unsent = new Map<string, number>();
  for (const e of events) {
    const k = `${e.node}:${e.seq}`;
    if (seen.has(k)) continue;
    seen.add(k);
    let q = byNode.get(e.node);
    if (!q) byNode.set(e.node, (q = []));
    q.push(e);
    if (isSend(e)) { const s = sendKey(e.node, e.lc); unsent.set(s, (unsent.get(s) ?? 0) + 1); }
  }
  const queues = [...byNode.values()].map((q) => ({ q: q.sort((a, b) => a.seq - b.seq), i: 0 }));
  const ready = (e: TraceEvent): boolean => e.srcNode === undefined || e.srcLc === undefined || !unsent.get(sendKey(e.srcNode, e.srcLc));
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
      if (!b || e.wall < b.wall || (e.wall === b.wall && (e.lc < b.lc || (e.lc === b.lc && e.node < b.node)))) best = x;
    }
    const pick = best ?? lowest;
    if (!pick) break;
    const e = pick.q[pick.i++]!;
    if (isSend(e)) { const s = sendKey(e.node, e.lc); unsent.set(s, unsent.get(s)! - 1); }
    out.push(e);
  }
  return out;
}

/**
 * Checks a merged timeline: each node's events in seq order, and every event received from
 * another node after the event that sent it. Returns the violations (empty: consistent).
 */
export function checkCausality(timeline: readonly TraceEvent[]): string[] {
  const bad: string[] = [];
  const lastSeq = new Map<number, number>();
  const sentAt = new Map<string, number>();
  timeline.forEach((e, i) => {
    const prev = lastSeq.get(e.node);
    if (prev !== undefined && e.seq < prev) bad.push(`node ${e.node}: seq ${e.seq} after ${prev}`);
    lastSeq.set(e.node, e.seq);
    if (isSend(e)) sentAt.set(sendKey(e.node, e.lc), i); // the last one with that clock: a receipt follows them all
  });
  timeline.forEach((e, i) => {
    if (e.srcNode === undefined) return;
    const s = sentAt.get(sendKey(e.srcNode, e.srcLc!));
    if (s !== undefined && s > i) bad.push(`node ${e.node} seq ${e.seq} received before node ${e.srcNode} sent it (lc ${e.srcLc})`);
  });
  return bad;
}
