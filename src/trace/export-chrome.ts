/**
 * Chrome Trace Event JSON (opens in Perfetto and chrome://tracing) from a merged timeline.
 *
 * Tracks: one process per node ("node N"), one thread per actor of that node that receives
 * messages (resource/default/r1, session/4, router, node/3 for what goes to node 3...). Each
 * event is a short complete slice ('X') on the receiver's track, named after the message, its
 * fields in args. A lock message from one node to another (dlm-out -> dlm-in), and a peer frame
 * that carried a stamp (frame-out -> frame-in: leases, membership, lock traffic), is a flow
 * arrow (v1 flow events 's' -> 'f', bound to the enclosing slices, category 'dlm' or 'frame')
 * from the sending slice to the receiving one.
 *
 * Time: each node's monotonic clock, aligned to wall time by that node's first event, so
 * a node's own events keep their sub-millisecond order (wall time has only milliseconds).
 */
import { traceIdText, TraceEvent } from './event';
import { eventLabel } from './export-text';

export interface ChromeTraceEvent {
  name: string;
  ph: 'X' | 's' | 'f' | 'M';
  pid: number;
  tid: number;
  ts?: number;
  dur?: number;
  cat?: string;
  id?: string;
  bp?: 'e';
  args?: Record<string, unknown>;
}

export interface ChromeTrace { traceEvents: ChromeTraceEvent[]; displayTimeUnit: 'ms'; otherData: Record<string, unknown> }

/** Slice length (µs): long enough to click, short enough not to overlap the next message. */
const SLICE_US = 2;

export function toChromeTrace(timeline: readonly TraceEvent[], meta: Record<string, unknown> = {}): ChromeTrace {
  const out: ChromeTraceEvent[] = [];
  const offset = new Map<number, number>();
  const tids = new Map<string, number>();
  const lastTs = new Map<string, number>();
  const sends = new Map<string, { pid: number; tid: number; ts: number }>();
  for (const e of timeline) if (!offset.has(e.node)) offset.set(e.node, e.wall - e.mono);
  for (const node of [...offset.keys()].sort((a, b) => a - b)) {
    out.push({ name: 'process_name', ph: 'M', pid: node, tid: 0, args: { name: `node ${node}` } });
    out.push({ name: 'process_sort_index', ph: 'M', pid: node, tid: 0, args: { sort_index: node } });
  }
  const track = (node: number, actor: string): number => {
    const k = `${node}|${actor}`;
    let t = tids.get(k);
    if (t === undefined) {
      t = tids.size + 1;
      tids.set(k, t);
      out.push({ name: 'thread_name', ph: 'M', pid: node, tid: t, args: { name: actor } });
    }
    return t;
  };
  const slices: Array<{ e: TraceEvent; pid: number; tid: number; ts: number }> = [];
  for (const e of timeline) {
    const tid = track(e.node, e.to);
    const k = `${e.node}|${tid}`;
    // Strictly increasing per track, so slices never overlap (and flows bind to the right one).
    let ts = Math.round((e.mono + offset.get(e.node)!) * 1000);
    const prev = lastTs.get(k);
    if (prev !== undefined && ts < prev + SLICE_US) ts = prev + SLICE_US;
    lastTs.set(k, ts);
    slices.push({ e, pid: e.node, tid, ts });
    if (e.kind === 'dlm-out' || e.kind === 'frame-out') sends.set(`${e.kind === 'dlm-out' ? 'dlm' : 'frame'}:${e.node}:${e.lc}`, { pid: e.node, tid, ts });
  }
  let flows = 0;
  for (const { e, pid, tid, ts } of slices) {
    const args: Record<string, unknown> = { from: e.from, to: e.to, kind: e.kind, seq: e.seq, lc: e.lc, trace: traceIdText(e.trace) };
    for (const k of ['sub', 'ls', 'res', 'mode', 'token', 'epoch', 'lock', 'req', 'peer', 'info', 'cause', 'w', 'srcNode', 'srcLc'] as const) {
      if (e[k] !== undefined) args[k] = e[k];
    }
    out.push({ name: eventLabel(e), ph: 'X', cat: e.kind, pid, tid, ts, dur: SLICE_US - 1, args });
    if ((e.kind === 'dlm-in' || e.kind === 'frame-in') && e.srcNode !== undefined) {
      const cat = e.kind === 'dlm-in' ? 'dlm' : 'frame';
      const id = `${cat}:${e.srcNode}:${e.srcLc}`;
      const s = sends.get(id);
      if (s) {
        out.push({ name: e.type, ph: 's', cat, id, pid: s.pid, tid: s.tid, ts: s.ts });
        out.push({ name: e.type, ph: 'f', bp: 'e', cat, id, pid, tid, ts });
        flows++;
      }
    }
  }
  return { traceEvents: out, displayTimeUnit: 'ms', otherData: { source: 'mxfs trace', events: timeline.length, flows, ...meta } };
}
