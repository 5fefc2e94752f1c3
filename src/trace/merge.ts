/**
 * Merging the traces of several nodes into one timeline that respects happens-before.
 *
 * Happens-before between recorded events has two kinds of edges: a node's own order (seq),
 * and a message from one node to another (an event with srcNode/srcLc comes after the
 * sender's event with that lc). The merge is a k-way merge of the nodes' sequences: the next
 * event is, among the nodes' next events whose sender event (if any) is already out, the one
 * with the earliest wall time (then the lowest lc, node). So causes always precede effects,
 * and concurrent events appear in wall-clock order. There is always such an event: the one
 * with the lowest Lamport clock qualifies, because a sender's event has a lower clock than
 * its receipt. Duplicates (the same node and seq read twice, e.g. from a ring and a file) are
 * dropped.
 */
import type { TraceEvent } from './event';

export function causalOrder(events: Iterable<TraceEvent>): TraceEvent[] {
  const seen = new Set<string>();
  const byNode = new Map<number, TraceEvent[]>();
  for (const e of events) {
    const k = `${e.node}:${e.seq}`;
    if (seen.has(k)) continue;
    seen.add(k);
    let q = byNode.get(e.node);
    if (!q) byNode.set(e.node, (q = []));
    q.push(e);
  }
  const queues = [...byNode.values()].map((q) => ({ q: q.sort((a, b) => a.seq - b.seq), i: 0 }));
  const head = new Map<number, { q: TraceEvent[]; i: number }>();
  for (const x of queues) head.set(x.q[0]!.node, x);
  /** The sender's event is out, or not among the events (evicted, node not read). */
  const ready = (e: TraceEvent): boolean => {
    if (e.srcNode === undefined || e.srcLc === undefined) return true;
    const s = head.get(e.srcNode);
    return !s || s.i >= s.q.length || s.q[s.i]!.lc > e.srcLc;
  };
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
    const pick = best ?? lowest; // lowest: only if clocks were inconsistent (never from one recorder)
    if (!pick) break;
    out.push(pick.q[pick.i++]!);
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
    if (e.kind === 'dlm-out') sentAt.set(`${e.node}:${e.lc}`, i);
  });
  timeline.forEach((e, i) => {
    if (e.srcNode === undefined) return;
    const s = sentAt.get(`${e.srcNode}:${e.srcLc}`);
    if (s !== undefined && s > i) bad.push(`node ${e.node} seq ${e.seq} received before node ${e.srcNode} sent it (lc ${e.srcLc})`);
  });
  return bad;
}
