/**
 * TracedPort: the cluster port as the lock router sees it on a node that may trace. It wraps
 * the node's ClusterPort (TcpClusterPort, or LocalPort in tests and simulation):
 *
 *  - out: every lock message to another node is recorded (dlm-out) and carries the stamp of
 *    that event (trace id, Lamport clock; for an `ev`, the resource it concerns; set on the
 *    message itself, not a copy: each send is given its own object), so the
 *    receiver joins the same trace and the merged timeline respects happens-before;
 *  - in: every lock message from another node is recorded (dlm-in, the clock moved past the
 *    stamp) and is the causal context of what the router does with it synchronously;
 *  - trace queries (traceQuery/traceReply) go to the TraceCollector, never to the router, and
 *    are not recorded themselves.
 * Without a recorder it only answers trace queries (saying tracing is off) and passes
 * everything else through untouched.
 */
import type { ClusterHandlers, ClusterPort, ClusterView } from '../cluster/port';
import type { DlmPeerMsg } from '../cluster/dlm-messages';
import type { FaultSpec } from '../wire/client-protocol';
import { dlmFields, nodePath } from './fields';
import type { TraceRecorder } from './recorder';

export interface TraceQueryHandler {
  onQuery(from: number, m: Extract<DlmPeerMsg, { t: 'traceQuery' }>): void;
  onReply(from: number, m: Extract<DlmPeerMsg, { t: 'traceReply' }>): void;
}

export class TracedPort implements ClusterPort {
  canGrant?: () => boolean;
  quorumUntil?: () => number;
  start?: () => Promise<void>;
  traceSync?: () => Promise<void>;
  private queries?: TraceQueryHandler;

  constructor(readonly inner: ClusterPort, private readonly recorder: TraceRecorder | undefined) {
    // Optional capabilities stay optional: the router checks whether the port has them.
    if (inner.canGrant) this.canGrant = () => inner.canGrant!();
    if (inner.quorumUntil) this.quorumUntil = () => inner.quorumUntil!();
    if (inner.start) this.start = () => inner.start!();
    if (inner.traceSync) this.traceSync = () => inner.traceSync!();
  }

  get selfId(): number { return this.inner.selfId; }
  view(): ClusterView { return this.inner.view(); }
  status(): unknown { return this.inner.status(); }
  stop(): Promise<void> { return this.inner.stop(); }
  setFault(spec: FaultSpec): void { this.inner.setFault(spec); }

  /** Where traceQuery/traceReply messages go (the node's TraceCollector). */
  handleQueries(q: TraceQueryHandler): void { this.queries = q; }

  /** Trace traffic itself: not recorded, not stamped. */
  sendUntraced(to: number, msg: DlmPeerMsg): void { this.inner.send(to, msg); }

  send(to: number, msg: DlmPeerMsg): void {
    const r = this.recorder;
    if (!r) { this.inner.send(to, msg); return; }
    const f = r.fresh();
    f.peer = to;
    dlmFields(msg as Record<string, any>, f);
    const seq = r.record('dlm-out', r.curActor ?? 'router', nodePath(to), msg.t, f);
    // Stamped in place, not copied (the router makes a message per send: ClusterPort.send).
    msg.tr = r.stampOf(seq, msg.t === 'ev');
    this.inner.send(to, msg);
  }

  setHandlers(h: ClusterHandlers): void {
    this.inner.setHandlers({
      onView: (v) => h.onView(v),
      onMessage: (from, m) => {
        if (m.t === 'traceQuery') { this.queries?.onQuery(from, m); return; }
        if (m.t === 'traceReply') { this.queries?.onReply(from, m); return; }
        const r = this.recorder;
        if (!r) { h.onMessage(from, m); return; }
        const f = r.fresh();
        f.peer = from;
        dlmFields(m as Record<string, any>, f);
        const saved = r.inbound('dlm-in', from, 'router', m.t, f, m.tr);
        try { h.onMessage(from, m); } finally { r.restore(saved); }
      },
    });
  }
}
