/**
 * ClusterPort: what the lock engine needs from the cluster layer, and nothing more.
 *
 *  - a committed view (epoch, members, quorate), announced on every change;
 *  - sending a DLM message to a member, FIFO per pair of nodes, authenticated;
 *  - receiving DLM messages from members.
 *
 * The real implementation sits on the peer links and the membership/lease protocol; tests
 * and simulations use LocalHub (below), where the test decides the views.
 */
import { DlmPeerMsg, validateDlmMessage } from './dlm-messages';
import { encodeFrame, FrameDecoder } from '../wire/frame';
import { FaultSpec, ProtocolError } from '../wire/client-protocol';
import type { RenewalReport } from './membership';

export interface ClusterView {
  epoch: number;
  /** Committed members, ascending. */
  members: number[];
  /** False: this node cannot see a majority (it must not grant, and has self-fenced). */
  quorate: boolean;
}

export interface ClusterHandlers {
  onMessage(from: number, msg: DlmPeerMsg): void;
  onView(view: ClusterView): void;
  /**
   * A message sent with send() that will never be delivered: the receiver's validator would
   * refuse it (so it was not sent), or the receiver refused it. Whoever waits for its outcome
   * must be told (src/cluster/dlm-channel.ts, "Refusals").
   */
  onRefused?(to: number, msg: DlmPeerMsg, reason: string): void;
}

export interface ClusterPort {
  readonly selfId: number;
  view(): ClusterView;
  /** `msg` must be a new object for each call: a traced port (TracedPort) stamps it in place (`tr`). */
  send(to: number, msg: DlmPeerMsg): void;
  setHandlers(h: ClusterHandlers): void;
  /** Details for `mxfsctl nodes` (lease ages, links...). */
  status(): unknown | Promise<unknown>;
  /** Join the cluster (listen, connect, start leasing); the daemon calls it once. */
  start?(): Promise<void>;
  /**
   * May this node act as a quorum member right now? Evaluated against the clock at the
   * call, not when a timer last fired: a process resumed after a long pause must not grant
   * before the quorum-loss event reaches it.
   */
  canGrant?(): boolean;
  /** Subscribe to lease renewal (every round sent, every ack extending quorum); see RenewalReport. */
  onRenewal?(listener: (r: RenewalReport) => void): void;
  /** Subscribe to the renewals heard from each peer (metrics: the gaps between them). */
  onPeerRenewal?(listener: (from: number) => void): void;
  /**
   * Until when (this node's Clock, ms) this node holds its cluster lease, from what it knows
   * now: the moment it would self-fence without further acknowledged renewals (-Infinity: not
   * now). The volume drivers' kernel lease ends at the same instant; the lock router arms its
   * own timer on it, so it fences on time even if the cluster layer, in its own thread, says
   * nothing (stalled).
   */
  quorumUntil?(): number;
  /**
   * Resolves once every trace event the cluster layer made before the call is in this
   * node's recorder (its worker thread holds them back for a while: src/trace/worker-tracer.ts).
   * Absent: they are recorded as they happen.
   */
  traceSync?(): Promise<void>;
  stop(): Promise<void>;
  /** Test-only fault injection on this node's peer traffic (all of it, leases included). */
  setFault(spec: FaultSpec): void;
}

/**
 * An in-memory cluster for tests and simulation: messages are delivered asynchronously,
 * FIFO per (from, to); a node cut off by partition() or down() neither sends nor receives.
 * The test commits views explicitly.
 */
export class LocalHub {
  private ports = new Map<number, LocalPort>();
  private cut = new Set<number>();
  delivered = 0;
  dropped = 0;

  port(id: number): LocalPort {
    const p = new LocalPort(this, id);
    this.ports.set(id, p);
    return p;
  }

  /** Commit a view on the given nodes (default: its members); nodes outside get quorate=false. */
  commit(epoch: number, members: number[], on: number[] = members): void {
    const sorted = [...members].sort((a, b) => a - b);
    for (const id of on) this.ports.get(id)?.setView({ epoch, members: sorted, quorate: true });
  }

  fence(id: number, epoch: number): void {
    const p = this.ports.get(id);
    if (p) p.setView({ epoch, members: p.view().members, quorate: false });
  }

  /** Stop all traffic to and from a node (crash or partition). */
  isolate(id: number): void { this.cut.add(id); }
  heal(id: number): void { this.cut.delete(id); }
  remove(id: number): void { this.ports.delete(id); this.cut.delete(id); }

  /** @internal */
  deliver(from: number, to: number, msg: DlmPeerMsg): void {
    if (this.cut.has(from) || this.cut.has(to)) { this.dropped++; return; }
    const p = this.ports.get(to);
    if (!p) { this.dropped++; return; }
    p.enqueue(from, msg);
  }
}

export class LocalPort implements ClusterPort {
  private v: ClusterView = { epoch: 0, members: [], quorate: false };
  private h?: ClusterHandlers;
  private inbox: Array<[number, DlmPeerMsg]> = [];
  private scheduled = false;

  constructor(private readonly hub: LocalHub, readonly selfId: number) {}

  view(): ClusterView { return this.v; }
  setHandlers(h: ClusterHandlers): void { this.h = h; }
  status(): unknown { return { transport: 'local-hub' }; }
  setFault(spec: FaultSpec): void {
    if (spec.action === 'partition') { this.hub.isolate(this.selfId); return; }
    if (spec.action === 'heal') this.hub.heal(this.selfId);
  }
  async stop(): Promise<void> { this.hub.remove(this.selfId); }

  /** Messages cross a real encode/decode/validate, as on a peer link; an invalid one is refused. */
  send(to: number, msg: DlmPeerMsg): void {
    const wire = new FrameDecoder(1 << 24).push(encodeFrame(msg, 1 << 24))[0];
    let valid: DlmPeerMsg;
    try {
      valid = validateDlmMessage(wire);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      this.h?.onRefused?.(to, msg, e.message);
      return;
    }
    this.hub.deliver(this.selfId, to, valid);
  }

  /** @internal */
  setView(v: ClusterView): void {
    this.v = v;
    setImmediate(() => this.h?.onView(v));
  }

  /** @internal */
  enqueue(from: number, msg: DlmPeerMsg): void {
    this.inbox.push([from, msg]);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const batch = this.inbox;
      this.inbox = [];
      for (const [f, m] of batch) { this.hub.delivered++; this.h?.onMessage(f, m); }
    });
  }
}
