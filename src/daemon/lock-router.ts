/**
 * LockRouter: sends each lock operation to its resource's master, and runs the lock side of
 * cluster recovery. One per daemon, driven by the ClusterPort's views and messages.
 *
 * Routing. The master of lockspace/resource is the rendezvous-hash winner among the
 * committed members. Local: straight to the LockTable. Remote: an 'op' message to the
 * master, whose router hands it to its LockTable with a per-peer RemoteOwner actor as the
 * notify ref; that actor sends every LockEvent back as an 'ev' message, and the owner
 * node's router gives it to the session named in the lock id.
 *
 * Recovery, on every newly committed view (epoch E, members M), on every member:
 *   1. stop granting: every lockspace and resource actor is stopped with its mailbox
 *      (LockTable.reset), the RemoteOwner actors of the old epoch too, so nothing decided
 *      in an older epoch can reach a client any more; operations are held back;
 *   2. the dead node's lease has expired by construction: membership commits a view
 *      without a node only after it has been declared dead, which happens only after its
 *      lease ran out plus a margin, by which time it has fenced itself;
 *   3. every session hands over its own records (granted mode, token, LVB copy, pending
 *      request) and from then on stamps its operations with E; locks of dead nodes are
 *      simply not among the records, which is the purge;
 *   4. each record goes to the resource's master in M ('rec'), then 'recDone' to all;
 *   5. a master that has 'recDone' from every member of M rebuilds its resources from the
 *      records — tokens resume at max(E * 2^32, every recorded token), so a token issued
 *      before, even by a master that died, is never issued again — re-queues the pending
 *      requests (conversions first, each queue longest waiting first: its old FIFO order),
 *      and resumes: waiters the dead node blocked are granted. What a record cannot say is
 *      whether the old master had granted a conversion down whose grant died with it; rebuild()
 *      says how the LVB and conflicting records are read then.
 *   Every view does all of this, also one that only removes a node: every lock in the
 *   cluster is re-sent and rebuilt, not only those whose master died (stats: recordsCollected,
 *   recordsSent, recordsReceived, resourcesRebuilt count the work; docs/partial-recovery.md is
 *   the analysis of keeping the resources whose master survived, not implemented).
 *   A newer view restarts the sequence; a view without quorum stops it in the visible state
 *   'no-quorum' after telling every local client its locks are lost (self-fence).
 *   Steps 3-5 and the replay of held operations are the named phases of the Recovery actor
 *   (src/daemon/recovery.ts): each step, when done, sends the next transition to it, and the
 *   actor runs the next step (onPhase); so the trace records every phase with its epoch, and
 *   what a phase sends (records, recDone, rebuilt locks) names the phase as its cause.
 *
 * Epochs on messages: older than ours — dropped and counted (whatever it said is covered by
 * the records of the recovery that moved us on); newer — held until we commit that epoch.
 *
 * Bounded work per turn (src/util/slices.ts): every step above that touches every lock —
 * messages of the new epoch that arrived early, collecting the records, grouping and sending
 * them, the rebuild, releasing the operations held meanwhile — runs a slice per turn, so a
 * recovery of 100 000 locks never keeps the event loop for more than a few milliseconds.
 * Order is kept: while such a backlog drains, what arrives joins its end (a peer's messages
 * stay in the order it sent them, a session's operations in the order it routed them), and a
 * newer view abandons the slices of the old recovery between two of them. The rebuild runs
 * to its end even if quorum is lost meanwhile (the mastered state is kept frozen, as below);
 * the router only resumes granting once it is complete.
 *
 * Refused messages: a message the peer's validator would refuse is never sent, and one the
 * peer refused is never sent again (the DlmChannel); onRefused fails what waited for it — the
 * session's operation (INVALID), or the locks of a refused recovery record (LOST).
 */
import type Logger from 'bunyan';
import type { ActorSystem, Ref } from '../actors/actor';
import type { SessionMsg } from '../actors/client-session';
import type { LockTable } from '../actors/lockspace';
import type { LockEvent, ResourceMsg } from '../actors/messages';
import { isDownConversion, isWriteMode, Mode } from '../dlm/modes';
import { deadlockFreeOrder, ResourceCore } from '../dlm/resource';
import type { ClusterPort, ClusterView } from '../cluster/port';
import { DlmPeerMsg, LockRecord, MAX_DLM_LIST_BYTES, nodeOf, sessionOf, WireOp } from '../cluster/dlm-messages';
import type { VolPeerMsg } from '../volumes/messages';
import { fitList } from '../wire/frame';
import type { Clock, TimerHandle } from '../util/clock';
import { inSlices, SLICE, yieldTurn } from '../util/slices';
import { MUTATION } from '../util/mutation';
import { RecoveryMsg, RecoveryPhase, RecoveryPhases, spawnRecovery } from './recovery';

export type RecoveryState = 'standalone' | 'joining' | 'running' | 'recovering' | 'no-quorum';

/** Tokens of epoch E start above E * 2^32 (JS safe integers: epochs up to 2^21). */
export const EPOCH_TOKEN_SHIFT = 2 ** 32;

/**
 * Records per 'rec' message. A record is at most ~1.3 KB (64-byte names, a 1024-byte LVB), so
 * a batch stays below MAX_DLM_LIST_BYTES whatever it holds (test: cluster-protocol).
 */
export const REC_BATCH = 256;
/** At most this many messages of a newer epoch are held; beyond, the oldest are dropped. */
export const MAX_FUTURE_MESSAGES = 100000;

export interface RouterOptions {
  sys: ActorSystem;
  table: LockTable;
  selfId: number;
  port?: ClusterPort;
  masterOf(lockspace: string, resource: string, members: number[]): number;
  session(id: number): Ref<SessionMsg> | undefined;
  sessions(): Array<Ref<SessionMsg>>;
  /**
   * Tell every local client at once that its locks are lost (a fence), ahead of whatever waits
   * in the sessions' mailboxes; the sessions then end and purge as usual.
   */
  tellLost?(reason: string): void;
  log: Logger;
  clock: Clock;
  queryTimeoutMs: number;
  /** This node's own view of the resources it masters (bounded; for cluster-wide inspection). */
  inspectLocal(filter: { lockspace?: string; resource?: string }): Promise<{ resources: unknown[]; omitted: number }>;
  /** Told every change of `state` (service readiness, status lines). */
  onState?(state: RecoveryState, epoch: number): void;
}

/** Who else listens to the router: volume messages from peers, and view changes. */
export interface RouterListener {
  onVolumeMessage?(from: number, m: VolPeerMsg): void;
  /** The router's state changed (no-quorum, recovering in a new epoch, running...). */
  onState?(state: RecoveryState, epoch: number, members: readonly number[]): void;
}

export interface RouterStats {
  opsSent: number;
  opsReceived: number;
  eventsSent: number;
  staleDropped: number;
  misrouted: number;
  recoveries: number;
  lastRecoveryMs?: number;
  recordsRebuilt: number;
  /**
   * Recovery work (cumulative; the benchmark takes differences around one view change):
   * records the local sessions handed over, records sent to other masters, records received
   * from other nodes, and resources rebuilt on this node (a resource per group of records).
   */
  recordsCollected: number;
  recordsSent: number;
  recordsReceived: number;
  resourcesRebuilt: number;
  /** Messages refused at the origin or by the peer (see onRefused). */
  refused: number;
  /** Cluster-wide inspections run (each asks every member once; the daemon coalesces queries). */
  inspections: number;
}

interface Recovery {
  epoch: number;
  members: number[];
  done: Set<number>;
  /** By lock id (a resent record replaces the old one). */
  records: Map<string, LockRecord>;
  collected: boolean;
  startedAt: number;
  /** Collection runs: a later run (quorum regained in the same epoch) supersedes an earlier one. */
  runs: number;
  /** What the current run collected for other masters, in batches (phase 'sending'). */
  outgoing: Array<[number, LockRecord[]]>;
}

/**
 * Work held back while the router is not running or while a backlog drains, replayed in
 * order: a local session's operation, or an operation from a peer for a resource mastered
 * here. `cause`/`actor`: the trace context it was held in (0 when not tracing), restored when
 * it is replayed so it stays in its own trace.
 */
type Held =
  | { kind: 'route'; lockspace: string; resource: string; msg: ResourceMsg; cause: number; actor?: string }
  | { kind: 'op'; from: number; m: Extract<DlmPeerMsg, { t: 'op' }>; cause: number; actor?: string };

export class LockRouter {
  private st: RecoveryState;
  epoch = 0;
  members: number[];
  readonly stats: RouterStats = { opsSent: 0, opsReceived: 0, eventsSent: 0, staleDropped: 0, misrouted: 0, recoveries: 0, recordsRebuilt: 0, recordsCollected: 0, recordsSent: 0, recordsReceived: 0, resourcesRebuilt: 0, refused: 0, inspections: 0 };
  private held: Held[] = [];
  /** held is being replayed a slice per turn (see releaseHeld); new work joins its end. */
  private releasing = false;
  private releaseRun = 0;
  /** Messages of the new epoch that arrived early, replayed a slice per turn (see recover). */
  private early: Array<[number, DlmPeerMsg]> = [];
  private replayingEarly = false;
  /** The recovery whose rebuild is running (slices), if any. */
  private rebuilding?: Recovery;
  private future: Array<[number, DlmPeerMsg]> = [];
  private remoteOwners = new Map<number, Ref<LockEvent>>();
  private rec?: Recovery;
  /** Sessions asked for their records in the running recovery: how to stop waiting for each. */
  private collecting = new Map<Ref<SessionMsg>, () => void>();
  /** The named phases of this node's recoveries (read synchronously for status). */
  readonly phases = new RecoveryPhases();
  private readonly recoveryActor: Ref<RecoveryMsg>;
  /** Epoch of the recovery begun and not yet done or abandoned (recover() abandons it). */
  private openRecovery?: number;
  /** Trace: the event of the phase message being worked on, the cause of what the phase sends. */
  private phaseCause = 0;
  private inspections = new Map<number, { replies: Map<number, unknown[]>; omitted: number; expect: number; done: () => void }>();
  private nextInspect = 1;
  private listeners: RouterListener[] = [];

  constructor(private readonly o: RouterOptions) {
    this.members = [o.selfId];
    this.st = o.port ? 'joining' : 'standalone';
    this.recoveryActor = spawnRecovery(o.sys, this.phases, () => o.clock.now(), (m) => this.onPhase(m));
    o.port?.setHandlers({ onMessage: (from, m) => this.onMessage(from, m), onView: (v) => this.onView(v), onRefused: (to, m, why) => this.onRefused(to, m, why) });
  }

  get state(): RecoveryState { return this.st; }
  set state(s: RecoveryState) {
    if (s === this.st) return;
    this.st = s;
    this.o.onState?.(s, this.epoch);
  }

  /** The running recovery (status): its phase, and whom it waits for. */
  get recovery(): { epoch: number; phase: RecoveryPhase; sinceMs: number; collected: boolean; waitingFor: number[]; records: number; rebuilding: boolean } | undefined {
    const p = this.phases;
    if (!p.open) return undefined;
    const r = this.rec ?? this.rebuilding;
    const sinceMs = Math.round(this.o.clock.now() - p.since);
    if (!r) return { epoch: p.epoch, phase: p.phase, sinceMs, collected: true, waitingFor: [], records: 0, rebuilding: false };
    return { epoch: r.epoch, phase: p.phase, sinceMs, collected: r.collected, waitingFor: r.members.filter((m) => !r.done.has(m)), records: r.records.size, rebuilding: r === this.rebuilding };
  }

  /**
   * Whether this node holds its lease right now (standalone: always): while true a client's
   * heartbeat may be answered at once, ahead of its session's mailbox (Daemon.accept).
   */
  leaseHeld(): boolean {
    if (this.state === 'standalone') return true;
    if (this.state !== 'running' && this.state !== 'recovering') return false;
    return MUTATION.skipQuorumCheck || (this.o.port?.canGrant?.() ?? true);
  }

  /** Work waiting to be replayed (status): held operations and early messages. */
  get backlog(): { held: number; early: number } { return { held: this.held.length, early: this.early.length }; }

  /**
   * Fence now if the membership layer's quorum deadline has passed (see canGrant). The
   * membership layer may never announce a loss it did not see (its timer had not fired),
   * so neither would it announce the regain: poll until quorum is back in this epoch.
   */
  private checkQuorum(): void {
    if (this.state !== 'running' && this.state !== 'recovering') return;
    const port = this.o.port;
    if (!port?.canGrant || MUTATION.skipQuorumCheck || port.canGrant()) { this.watchLease(); return; }
    this.fence({ epoch: this.epoch, members: this.members, quorate: false });
    const epoch = this.epoch;
    const poll = () => {
      if (this.state !== 'no-quorum' || this.epoch !== epoch) return;
      const v = port.view();
      if (port.canGrant!() && v.quorate && v.epoch === epoch) { this.unfence(v); return; }
      this.o.clock.setTimer(poll, 100);
    };
    this.o.clock.setTimer(poll, 100);
  }

  /**
   * A timer of this thread at the lease deadline (port.quorumUntil): the router fences when
   * it passes, whatever the cluster layer says or fails to say — with the cluster layer in its
   * own thread, a stalled worker announces nothing. Each renewal moves the deadline; the timer
   * then finds the lease held and waits for the new one.
   */
  private watchLease(): void {
    const until = this.o.port?.quorumUntil?.();
    if (until === undefined || !Number.isFinite(until) || until === this.leaseTimerAt) return;
    if (this.state !== 'running' && this.state !== 'recovering') return;
    this.o.clock.clearTimer(this.leaseTimer);
    this.leaseTimerAt = until;
    this.leaseTimer = this.o.clock.setTimer(() => { this.leaseTimerAt = NaN; this.leaseTimer = undefined; this.checkQuorum(); }, Math.max(0, until - this.o.clock.now()) + 1);
  }

  private leaseTimer?: TimerHandle;
  private leaseTimerAt = NaN;

  listen(l: RouterListener): void { this.listeners.push(l); }

  private notifiedEpoch = 0;

  /** Listeners hear every change of state, and every new epoch (overlapping recoveries too). */
  private setState(s: RecoveryState): void {
    if (this.state === s && this.notifiedEpoch === this.epoch) return;
    this.state = s;
    this.notifiedEpoch = this.epoch;
    if (s === 'running' || s === 'recovering') this.watchLease();
    for (const l of this.listeners) l.onState?.(s, this.epoch, this.members);
  }

  /** A volume message to a member, stamped with this node's epoch (dropped on a standalone node). */
  sendVolume(to: number, m: VolPeerMsg): void {
    if (!this.o.port || to === this.o.selfId) return;
    this.o.port.send(to, { t: 'vol', epoch: this.epoch, m });
  }

  /** A lock operation from a local session, stamped with the session's epoch. */
  route(lockspace: string, resource: string, msg: ResourceMsg, epoch: number): void {
    if (this.state === 'standalone') { this.o.table.route(lockspace, resource, msg); return; }
    if (epoch < this.epoch) { this.stats.staleDropped++; return; } // covered by that session's records
    if (this.releasing) { this.hold({ kind: 'route', lockspace, resource, msg, cause: 0 }); return; } // behind the backlog
    this.routeNow(lockspace, resource, msg);
  }

  /** route() once the epoch is checked and no backlog is ahead. */
  private routeNow(lockspace: string, resource: string, msg: ResourceMsg): void {
    this.checkQuorum();
    if (this.state === 'no-quorum' || this.state === 'joining') {
      if (msg.type === 'request') {
        this.o.sys.send(msg.notify, { type: 'lock.opError', lockId: msg.lockId, op: 'request', code: 'LOST', message: `node ${this.o.selfId} is not in a quorate cluster (${this.state})` });
        return;
      }
      // purge/unlock/cancel of the sessions told their locks are lost: delivered later
      if (this.state === 'no-quorum') this.hold({ kind: 'route', lockspace, resource, msg, cause: 0 });
      return;
    }
    if (this.state === 'recovering') { this.hold({ kind: 'route', lockspace, resource, msg, cause: 0 }); return; }
    const master = this.o.masterOf(lockspace, resource, this.members);
    if (master === this.o.selfId) { this.o.table.route(lockspace, resource, msg); return; }
    const op = toWireOp(msg);
    if (!op) return;
    this.stats.opsSent++;
    this.o.port!.send(master, { t: 'op', epoch: this.epoch, lockspace, resource, op });
  }

  // ---- messages from peers ------------------------------------------------------------

  /**
   * Every member's view of the resources it masters, merged (mxfsctl locks, cluster-wide).
   * Members that do not answer within the query timeout are listed as missing.
   */
  async inspectCluster(filter: { lockspace?: string; resource?: string }): Promise<{ byNode: Record<number, unknown[]>; missing: number[]; omitted: number }> {
    this.stats.inspections++;
    const local = await this.o.inspectLocal(filter);
    const own = local.resources;
    const others = this.o.port ? this.members.filter((m) => m !== this.o.selfId) : [];
    const id = this.nextInspect++;
    const replies = new Map<number, unknown[]>();
    await new Promise<void>((resolve) => {
      if (others.length === 0) { resolve(); return; }
      const t = this.o.clock.setTimer(resolve, this.o.queryTimeoutMs);
      this.inspections.set(id, { replies, omitted: 0, expect: others.length, done: () => { this.o.clock.clearTimer(t); resolve(); } });
      for (const m of others) this.o.port!.send(m, { t: 'inspect', epoch: this.epoch, id, ...filter });
    });
    const omitted = (this.inspections.get(id)?.omitted ?? 0) + local.omitted;
    this.inspections.delete(id);
    const byNode: Record<number, unknown[]> = { [this.o.selfId]: own };
    for (const [n, r] of replies) byNode[n] = r;
    return { byNode, missing: others.filter((m) => !replies.has(m)), omitted };
  }

  private onMessage(from: number, m: DlmPeerMsg): void {
    if (m.t === 'inspect') {
      void this.o.inspectLocal({ lockspace: m.lockspace, resource: m.resource })
        .then((local) => {
          const all = local.resources;
          const fit = fitList(all, (resources) => ({ t: 'inspectReply', epoch: this.epoch, id: m.id, resources, omitted: all.length + local.omitted }), MAX_DLM_LIST_BYTES);
          this.o.port?.send(from, { t: 'inspectReply', epoch: this.epoch, id: m.id, resources: fit.items, omitted: fit.omitted + local.omitted });
        })
        .catch((e: Error) => this.o.log.warn({ from, err: e.message }, 'inspection for a peer failed; it will count this node as missing'));
      return;
    }
    if (m.t === 'inspectReply') {
      const q = this.inspections.get(m.id);
      if (q && !q.replies.has(from)) { q.replies.set(from, m.resources); q.omitted += m.omitted ?? 0; if (q.replies.size >= q.expect) q.done(); }
      return;
    }
    if (this.replayingEarly && m.epoch === this.epoch) { this.early.push([from, m]); return; } // behind the early ones
    if (m.epoch > this.epoch) {
      this.future.push([from, m]);
      if (this.future.length > MAX_FUTURE_MESSAGES) {
        this.future.shift();
        this.stats.staleDropped++;
        this.o.log.warn({ from, epoch: m.epoch, ours: this.epoch }, 'too many messages of a newer epoch held; dropping the oldest');
      }
      return;
    }
    if ((m.epoch < this.epoch && !MUTATION.acceptOlderEpoch) || (!this.members.includes(from) && !MUTATION.acceptNonMember)) {
      this.stats.staleDropped++;
      this.o.log.debug({ from, epoch: m.epoch, ours: this.epoch, kind: m.t }, 'dropped a message of an older epoch or from a non-member');
      return;
    }
    switch (m.t) {
      case 'op':
        if (this.releasing) { this.hold({ kind: 'op', from, m, cause: 0 }); return; } // behind the backlog
        this.onOp(from, m);
        return;
      case 'ev': {
        if (nodeOf(m.ev.lockId) !== this.o.selfId) { this.misrouted(from, `event for foreign lock ${m.ev.lockId}`); return; }
        const s = this.o.session(sessionOf(m.ev.lockId));
        if (s) this.o.sys.send(s, m.ev);
        return;
      }
      case 'rec': {
        const r = this.rec;
        if (!r) return;
        for (const x of m.records) {
          if (nodeOf(x.owner) !== from || nodeOf(x.lockId) !== from) { this.misrouted(from, `record for ${x.lockId} not owned by node ${from}`); continue; }
          if (this.o.masterOf(x.lockspace, x.resource, r.members) !== this.o.selfId) { this.misrouted(from, `record for ${x.resource} sent to a non-master`); continue; }
          r.records.set(x.lockId, x); // a resent record replaces the old one
          this.stats.recordsReceived++;
        }
        return;
      }
      case 'recDone':
        if (this.rec) { this.rec.done.add(from); this.maybeFinish(); }
        return;
      case 'vol':
        for (const l of this.listeners) l.onVolumeMessage?.(from, m.m);
        return;
    }
  }

  /** An operation from a member, for a resource this node masters (epoch and sender checked). */
  private onOp(from: number, m: Extract<DlmPeerMsg, { t: 'op' }>): void {
    this.checkQuorum();
    if (this.state === 'recovering' || this.state === 'no-quorum') { this.hold({ kind: 'op', from, m, cause: 0 }); return; }
    if (this.state !== 'running') return;
    const who = m.op.type === 'purge' ? m.op.owner : m.op.lockId;
    if (nodeOf(who) !== from) { this.misrouted(from, `op for ${who} does not belong to node ${from}`); return; }
    if (this.o.masterOf(m.lockspace, m.resource, this.members) !== this.o.selfId) {
      this.misrouted(from, `op for ${m.lockspace}/${m.resource}, which node ${this.o.selfId} does not master`);
      return;
    }
    this.stats.opsReceived++;
    this.o.table.route(m.lockspace, m.resource, fromWireOp(m.op, this.remoteOwner(from)));
  }

  /** A message that will never be delivered (see the header): fail what waited for it. */
  private onRefused(to: number, m: DlmPeerMsg, reason: string): void {
    this.stats.refused++;
    const notify = (lockId: string, ev: (lockId: string) => LockEvent) => {
      const s = nodeOf(lockId) === this.o.selfId ? this.o.session(sessionOf(lockId)) : undefined;
      if (s) this.o.sys.send(s, ev(lockId));
    };
    switch (m.t) {
      case 'op':
        if (m.op.type === 'purge') break; // a purge carries only a checked owner id: cannot be refused
        {
          const op = m.op.type;
          notify(m.op.lockId, (lockId) => ({ type: 'lock.opError', lockId, op, code: 'INVALID', message: `lock message to node ${to} refused: ${reason}` }));
        }
        return;
      case 'rec':
        // The new master will not rebuild these locks: their holders must stop using them.
        for (const x of m.records) notify(x.lockId, (lockId) => ({ type: 'lock.lost', lockId, reason: `recovery record refused by node ${to}: ${reason}` }));
        return;
      default:
        break;
    }
    this.o.log.error({ to, kind: m.t }, `lock message to node ${to} refused and not delivered: ${reason}`);
  }

  private misrouted(from: number, what: string): void {
    this.stats.misrouted++;
    this.o.log.warn({ from }, `misrouted DLM message dropped: ${what}`);
  }

  // ---- views and recovery -------------------------------------------------------------

  private onView(v: ClusterView): void {
    if (!v.quorate) { if (this.state !== 'joining') this.fence(v); return; }
    if (v.epoch <= this.epoch) {
      if (this.state === 'no-quorum' && v.epoch === this.epoch) this.unfence(v);
      return;
    }
    this.recover(v);
  }

  /**
   * No quorum: stop granting and tell every local client its locks are lost, at once.
   * The mastered state is kept, frozen: if quorum comes back in the same epoch (nobody
   * declared this node dead), the other nodes still hold locks it masters, and the held
   * purges of the ended sessions then release this node's own locks. If a new epoch comes
   * instead, recovery rebuilds everything from the records and this state is dropped.
   */
  private fence(v: ClusterView): void {
    if (this.state === 'no-quorum') return;
    const was = this.state;
    this.setState('no-quorum');
    const reason = `node ${this.o.selfId} lost quorum (epoch ${v.epoch}); every lock is released`;
    this.o.tellLost?.(reason);
    for (const s of this.o.sessions()) this.o.sys.send(s, { type: 'lostAll', reason });
    this.o.log.warn({ epoch: v.epoch, was }, 'lost quorum: self-fenced, every local client told its locks are lost, granting stopped');
  }

  /** Quorum is back in the same epoch: resume, or redo this node's part of the recovery. */
  private unfence(v: ClusterView): void {
    if (this.rec) {
      this.setState('recovering');
      this.startRun(this.rec, 'quorum regained in the same epoch');
      return;
    }
    if (this.rebuilding) { this.setState('recovering'); return; } // the rebuild resumes granting when done
    this.setState('running');
    this.o.log.info({ epoch: v.epoch }, 'quorum regained in the same epoch: granting resumed');
    void this.releaseHeld();
  }

  /** Holds work back (see Held), in the trace context it arrived in. */
  private hold(h: Held): void {
    const t = this.o.sys.recorder;
    if (t) { h.cause = t.cur; h.actor = t.curActor; }
    this.held.push(h);
  }

  /** Replays one held item in the trace context it was held in. */
  private replay(h: Held): void {
    const t = this.o.sys.recorder;
    const cur = t?.cur ?? 0, actor = t?.curActor;
    if (t) { t.cur = h.cause; t.curActor = h.actor; }
    try {
      if (h.kind === 'route') this.routeNow(h.lockspace, h.resource, h.msg);
      else this.onOp(h.from, h.m);
    } finally {
      if (t) { t.cur = cur; t.curActor = actor; }
    }
  }

  /**
   * Replay what was held while not running, a slice per turn. Meanwhile new operations join
   * the end (route, onMessage), so each sender's order is kept. Stops if the router leaves
   * 'running' (quorum lost: the rest stays held; a newer view: recover() drops it). When the
   * backlog is empty after a recovery's rebuild, that recovery is done.
   */
  private async releaseHeld(): Promise<void> {
    const run = ++this.releaseRun;
    this.releasing = true;
    try {
      while (this.held.length > 0 && this.state === 'running' && this.releaseRun === run) {
        const slice = this.held.splice(0, SLICE.purge);
        for (const h of slice) this.replay(h);
        if (this.held.length > 0) await yieldTurn();
      }
    } finally {
      if (this.releaseRun === run) this.releasing = false;
    }
    if (this.releaseRun === run && this.held.length === 0 && this.phases.phase === 'replaying' && this.openRecovery === this.epoch) {
      this.openRecovery = undefined;
      this.phase({ type: 'recovery.done', epoch: this.epoch, note: `records ${this.stats.recordsRebuilt}, ${this.stats.lastRecoveryMs ?? 0} ms` });
    }
  }

  private recover(v: ClusterView): void {
    const E = v.epoch;
    this.epoch = E;
    this.members = [...v.members];
    this.setState('recovering');
    this.stats.recoveries++;
    this.o.table.reset(E * EPOCH_TOKEN_SHIFT, (E + 1) * EPOCH_TOKEN_SHIFT);
    this.stopRemoteOwners();
    this.held = [];
    this.releaseRun++;
    this.releasing = false;
    this.rebuilding = undefined;
    // The view starts the recovery's trace (a view is not a traced message: origin 'view').
    if (this.openRecovery !== undefined) this.o.sys.send(this.recoveryActor, { type: 'recovery.abandon', epoch: this.openRecovery, note: `superseded by epoch ${E}` });
    this.openRecovery = E;
    const r: Recovery = { epoch: E, members: [...v.members], done: new Set(), records: new Map(), collected: false, startedAt: this.o.clock.now(), runs: 0, outgoing: [] };
    this.rec = r;
    this.o.log.info({ epoch: E, members: v.members }, 'recovery: granting stopped, collecting lock records');
    // Messages of this epoch that arrived early go first (a slice per turn), then the rest.
    this.early = this.future.filter(([, m]) => m.epoch === E);
    this.future = this.future.filter(([, m]) => m.epoch > E);
    void this.replayEarly(E);
    this.startRun(r, `members ${v.members.join(' ')}`);
  }

  /**
   * A new collection run of recovery r (phase 'collecting'). The sessions are asked at once,
   * in the turn of the view, as before the phases were messages: their records must be taken
   * before anything else reaches them in the new epoch (the simulation's mutation check of the
   * epoch rule depends on that window being as it was).
   */
  private startRun(r: Recovery, why: string): void {
    const run = ++r.runs;
    this.o.sys.send(this.recoveryActor, { type: 'recovery.collect', epoch: r.epoch, run, note: run > 1 ? `run ${run}: ${why}` : why });
    const t = this.o.sys.recorder;
    if (t) this.phaseCause = t.stats.last; // the event of that transition: the cause of what the collection sends
    this.inPhase(() => { void this.collect(r, run); });
  }

  // ---- the phases (the Recovery actor calls onPhase for each accepted transition) ------

  /** Sends a transition to the Recovery actor, as caused by the phase being worked on. */
  private phase(m: RecoveryMsg): void {
    this.inPhase(() => this.o.sys.send(this.recoveryActor, m));
  }

  /**
   * Runs fn in the trace context of the phase message being worked on: what a phase sends
   * after an await (records, recDone, rebuilt locks, the next transition) names it as cause.
   * Synchronously inside a handler (a peer's recDone, a view) the current context stays.
   */
  private inPhase(fn: () => void): void {
    const t = this.o.sys.recorder;
    if (!t || t.cur !== 0) { fn(); return; }
    const actor = t.curActor;
    t.cur = this.phaseCause;
    t.curActor = 'recovery';
    try { fn(); } finally { t.cur = 0; t.curActor = actor; }
  }

  /** The Recovery actor accepted m: run its phase. Each step checks it is still wanted. */
  private onPhase(m: RecoveryMsg): void {
    const t = this.o.sys.recorder;
    if (t) this.phaseCause = t.cur;
    const r = this.rec;
    switch (m.type) {
      case 'recovery.collect':
        return; // started by startRun() in the view's turn
      case 'recovery.send':
        if (r && r.epoch === m.epoch && r.runs === m.run) void this.sendRecords(r, m.run);
        return;
      case 'recovery.wait':
        if (!r || r.epoch !== m.epoch || r.runs !== m.run || this.state !== 'recovering') return;
        r.done.add(this.o.selfId);
        r.collected = true;
        this.maybeFinish();
        return;
      case 'recovery.rebuild':
        if (this.rebuilding && this.rebuilding.epoch === m.epoch && this.epoch === m.epoch) void this.rebuildAll(this.rebuilding);
        return;
      case 'recovery.replay':
        if (this.epoch !== m.epoch) return;
        if (this.state === 'recovering') {
          this.setState('running');
          this.o.log.info({ epoch: m.epoch, records: this.stats.recordsRebuilt, ms: this.stats.lastRecoveryMs }, 'recovery done: granting resumed');
        }
        // Fenced meanwhile: unfence() resumes and replays. Already resumed by unfence(): this
        // run takes over the replay (same queue, same order) and ends the phase.
        if (this.state === 'running') void this.releaseHeld();
        return;
      case 'recovery.done':
      case 'recovery.abandon':
        return; // recorded: nothing more to do
    }
  }

  /** The early messages of epoch E, in arrival order; later ones of E queue behind them. */
  private async replayEarly(E: number): Promise<void> {
    this.replayingEarly = true;
    try {
      while (this.early.length > 0 && this.epoch === E) {
        const slice = this.early.splice(0, SLICE.purge);
        this.replayingEarly = false; // let these through onMessage
        for (const [f, m] of slice) this.onMessage(f, m);
        this.replayingEarly = true;
        if (this.early.length > 0) await yieldTurn();
      }
    } finally {
      if (this.epoch === E) { this.replayingEarly = false; this.early = []; }
    }
  }

  /**
   * One session's records. A session that ends while asked (its actor stops with the
   * request in its mailbox) never answers; it has no records any more (its locks end with
   * it), so the daemon's sessionEnded() stops the wait at once rather than after the query
   * timeout.
   */
  private collectFrom(s: Ref<SessionMsg>, epoch: number, at: number): Promise<LockRecord[]> {
    return new Promise((resolve, reject) => {
      const gone = () => reject(new Error('session ended'));
      this.collecting.set(s, gone);
      this.o.sys.ask<SessionMsg, LockRecord[]>(s, (replyTo) => ({ type: 'collect', epoch, at, replyTo }), this.o.queryTimeoutMs)
        .then(resolve, reject)
        .finally(() => { if (this.collecting.get(s) === gone) this.collecting.delete(s); });
    });
  }

  /** The daemon tells the router a session ended (see collectFrom). */
  sessionEnded(s: Ref<SessionMsg>): void {
    const gone = this.collecting.get(s);
    this.collecting.delete(s);
    gone?.();
  }

  /** Whether run `run` of recovery r may go on: else a newer view, a lost quorum or a newer run took over. */
  private wanted(r: Recovery, run: number): boolean {
    return this.rec === r && this.state === 'recovering' && r.runs === run;
  }

  /**
   * Phase 'collecting': every session's records, sorted by master a slice per turn: this
   * node's own into r.records, the others' into batches for 'sending'.
   */
  private async collect(r: Recovery, run: number): Promise<void> {
    const wanted = () => this.wanted(r, run);
    const at = this.o.clock.now(); // one instant for every session: their waits compare exactly
    const all = await Promise.allSettled(this.o.sessions().map((s) => this.collectFrom(s, r.epoch, at)));
    if (!wanted()) return;
    const ours = [...r.records.entries()].filter(([, x]) => nodeOf(x.owner) === this.o.selfId).map(([id]) => id);
    for (const id of ours) r.records.delete(id); // collected afresh below
    const byMaster = new Map<number, LockRecord[]>();
    let count = 0;
    for (const res of all) {
      if (res.status !== 'fulfilled') continue; // an ended session: its locks are gone with it
      count += res.value.length;
      const complete = await inSlices(res.value, SLICE.send, (x) => {
        const m = this.o.masterOf(x.lockspace, x.resource, r.members);
        if (m === this.o.selfId) r.records.set(x.lockId, x);
        else {
          let list = byMaster.get(m);
          if (!list) byMaster.set(m, (list = []));
          list.push(x);
        }
      }, wanted);
      if (!complete) return;
      await yieldTurn();
      if (!wanted()) return;
    }
    // In batches: a peer frame is at most 1 MiB, and one message must not hold the links up.
    const batches: Array<[number, LockRecord[]]> = [];
    for (const [m, records] of byMaster) for (let i = 0; i < records.length; i += REC_BATCH) batches.push([m, records.slice(i, i + REC_BATCH)]);
    r.outgoing = batches;
    this.stats.recordsCollected += count;
    this.phase({ type: 'recovery.send', epoch: r.epoch, run, note: `records ${count}, batches ${batches.length}` });
  }

  /**
   * Phase 'sending': SLICE.sendRec batches per turn (each is validated and encoded on the way
   * out), then recDone to every member. recDone to a master follows every record sent to it
   * (one FIFO channel per peer), so a master never rebuilds from an incomplete set.
   */
  private async sendRecords(r: Recovery, run: number): Promise<void> {
    const E = r.epoch;
    const batches = r.outgoing;
    r.outgoing = [];
    const send = ([m, records]: [number, LockRecord[]]) => {
      this.stats.recordsSent += records.length;
      this.inPhase(() => this.o.port!.send(m, { t: 'rec', epoch: E, records }));
    };
    if (!await inSlices(batches, SLICE.sendRec, send, () => this.wanted(r, run))) return;
    if (!this.wanted(r, run)) return;
    this.inPhase(() => { for (const m of r.members) if (m !== this.o.selfId) this.o.port!.send(m, { t: 'recDone', epoch: E }); });
    this.phase({ type: 'recovery.wait', epoch: E, run, note: `waiting for ${r.members.filter((m) => m !== this.o.selfId && !r.done.has(m)).join(' ') || 'nobody'}` });
  }

  /** Every member's records are in: on to 'rebuilding' (from 'waiting' or a peer's recDone). */
  private maybeFinish(): void {
    const r = this.rec;
    if (!r || !r.collected || !r.members.every((m) => r.done.has(m))) return;
    this.rec = undefined;
    this.rebuilding = r;
    this.phase({ type: 'recovery.rebuild', epoch: r.epoch, note: `records ${r.records.size}` });
  }

  /**
   * Phase 'rebuilding': rebuild the resources this node masters, a slice per turn, then on to
   * 'replaying' (granting resumes there). Only a newer view stops it (recover() bumps the
   * epoch); a quorum lost meanwhile leaves the router fenced when it ends (unfence() resumes).
   */
  private async rebuildAll(r: Recovery): Promise<void> {
    const current = () => this.rebuilding === r && this.epoch === r.epoch;
    const groups = new Map<string, LockRecord[]>();
    const grouped = await inSlices(r.records.values(), SLICE.send, (x) => {
      const k = `${x.lockspace}\0${x.resource}`;
      const g = groups.get(k);
      if (g) g.push(x); else groups.set(k, [x]);
    }, current);
    if (!grouped || !current()) return;
    if (!await inSlices(groups.values(), SLICE.rebuild, (records) => this.inPhase(() => this.rebuild(r.epoch, records)), current)) return;
    this.rebuilding = undefined;
    this.stats.recordsRebuilt += r.records.size;
    this.stats.resourcesRebuilt += groups.size;
    this.stats.lastRecoveryMs = Math.round(this.o.clock.now() - r.startedAt);
    this.phase({ type: 'recovery.replay', epoch: r.epoch, note: `resources ${groups.size}, held ${this.held.length}` });
  }

  /** Rebuild one resource on this (new) master from its holders' records. */
  private rebuild(epoch: number, records: LockRecord[]): void {
    const { lockspace, resource } = records[0]!;
    const notifyOf = (x: LockRecord): Ref<LockEvent> | undefined =>
      nodeOf(x.owner) === this.o.selfId ? this.o.session(sessionOf(x.lockId)) as Ref<LockEvent> | undefined : this.remoteOwner(nodeOf(x.owner));
    const live = records.filter((x) => notifyOf(x) !== undefined);
    const granted = live.filter((x) => x.grMode !== null);
    const tokenFloor = MUTATION.noTokenFloor ? epoch * EPOCH_TOKEN_SHIFT : Math.max(epoch * EPOCH_TOKEN_SHIFT, ...live.map((x) => x.token));
    // The LVB survives only where no writer could have changed it since a survivor's
    // grant: a PR or CW holder excludes every PW/EX holder, and a PW/EX holder is the only
    // writer (it writes only by a conversion or an unlock: a pending conversion's LVB is
    // written again below, a pending unlock left no record), so its copy is current — as
    // Linux's DLM takes it from a holder above CR. Not from a holder whose conversion down to
    // NL or CR was pending: the old master may have granted that and then a writer, whose
    // value this copy would hide (the holder had not heard its grant yet).
    const fits = (core: Array<{ lockId: string; owner: string; grMode: Mode; token: number }>): Error | undefined => {
      try { ResourceCore.rebuild(0, tokenFloor, core, undefined, (epoch + 1) * EPOCH_TOKEN_SHIFT); return undefined; } catch (e) { return e as Error; }
    };
    let core = granted.map((x) => ({ lockId: x.lockId, owner: x.owner, grMode: x.grMode!, token: x.token }));
    // A conversion down is granted at once by the master. Records that conflict only because
    // a holder's conversion down was granted by the old master, whose grant died with it (the
    // holder still records its old mode beside the lock that grant let in), describe the old
    // master's state once that conversion is taken as done: so it is (the holder asked to
    // give the higher mode up), and it is granted again below, instead of every lock on the
    // resource being declared lost.
    const settled = new Set<string>();
    let err = fits(core);
    if (err) {
      const done = core.map((c, i) => {
        const x = granted[i]!;
        return x.rqMode !== null && isDownConversion(x.grMode!, x.rqMode) ? { ...c, grMode: x.rqMode } : c;
      });
      if (!fits(done)) {
        granted.forEach((x, i) => { if (done[i]!.grMode !== core[i]!.grMode) settled.add(x.lockId); });
        core = done;
        err = undefined;
      }
    }
    if (err) {
      // Incompatible records cannot come from a correct cluster; refuse them all rather
      // than pick a winner, so nobody goes on holding a lock the master does not know.
      this.o.log.error({ err, lockspace, resource }, 'recovery: incompatible lock records; every lock on the resource is declared lost');
      for (const x of live) this.o.sys.send(notifyOf(x)!, { type: 'lock.lost', lockId: x.lockId, reason: 'recovery found incompatible records' });
      return;
    }
    // (A settled conversion's copy predates what the old master wrote with it: never the keeper.)
    const keeper = granted.find((x) => !settled.has(x.lockId) && x.grMode !== Mode.NL && x.grMode !== Mode.CR && x.rqMode !== Mode.NL && x.rqMode !== Mode.CR && x.lvbValid && x.lvb);
    const lvb = keeper ? { data: keeper.lvb!, valid: true } : undefined;
    if (granted.length > 0) {
      this.o.table.adopt(lockspace, resource, { records: granted.map((x) => ({ ...core.find((c) => c.lockId === x.lockId)!, notify: notifyOf(x)! })), tokenFloor, lvb });
    }
    // Conversions first, then the new requests, each in the order its queue had as far as the
    // records tell: the longest waiting first (a duration each session measured at the
    // collection; by lock id alone node 1's waiters overtook node 2's at every recovery, and
    // '2:10/1' overtook '2:8/1'). The conversions in an order that makes no deadlock besides (a
    // conversion queued behind one that was behind it would fail DEADLOCK though it had none;
    // across nodes the waits compare only to within the gap between their collections). A
    // settled conversion (above) already holds its new mode: re-granted at once, it goes first.
    const longestFirst = (a: LockRecord, b: LockRecord) => (b.waitedMs ?? 0) - (a.waitedMs ?? 0) || (a.lockId < b.lockId ? -1 : a.lockId > b.lockId ? 1 : 0);
    const converting = live.filter((x) => x.rqMode !== null && x.grMode !== null);
    const pending = [
      ...converting.filter((x) => settled.has(x.lockId)),
      ...deadlockFreeOrder(converting.filter((x) => !settled.has(x.lockId)), longestFirst),
      ...live.filter((x) => x.rqMode !== null && x.grMode === null).sort(longestFirst),
    ];
    for (const x of pending) {
      // A conversion keeps the LVB it was asked to write: it is written when re-issued here —
      // unless it goes down to NL or CR, beside which a writer can be granted: the old master
      // may have written it, granted the conversion (its grant lost with the master) and then
      // a writer whose newer value this would overwrite (reproduced: a confirmed 'v3' read back
      // as a valid 'v2'). Its write is in doubt, so it is not made: the LVB stays invalid (no
      // copy is kept beside a PW/EX holder converting down, see keeper), and the holder's grant
      // says so. A settled conversion (above) was written by the old master: it is re-issued
      // to the mode it now holds, only for its grant to reach the holder.
      const inDoubt = x.grMode !== null && isWriteMode(x.grMode) && (x.rqMode === Mode.NL || x.rqMode === Mode.CR);
      const msg: ResourceMsg = x.grMode === null
        ? { type: 'request', lockId: x.lockId, owner: x.owner, mode: x.rqMode!, noqueue: x.noqueue, timeoutMs: x.timeoutMs, notify: notifyOf(x)! }
        : { type: 'convert', lockId: x.lockId, mode: x.rqMode!, noqueue: x.noqueue, timeoutMs: x.timeoutMs, lvb: inDoubt || settled.has(x.lockId) ? undefined : x.rqLvb };
      this.o.table.route(lockspace, resource, msg);
    }
  }

  private remoteOwner(node: number): Ref<LockEvent> {
    let ref = this.remoteOwners.get(node);
    if (!ref) {
      const epoch = this.epoch;
      const port = this.o.port!;
      const stats = this.stats;
      ref = this.o.sys.spawn<null, LockEvent>(undefined, 'remote-owner', {
        init: () => null,
        handle: (s, ev) => { stats.eventsSent++; port.send(node, { t: 'ev', epoch, ev }); return s; },
      }, { node, epoch });
      this.remoteOwners.set(node, ref);
    }
    return ref;
  }

  private stopRemoteOwners(): void {
    for (const ref of this.remoteOwners.values()) this.o.sys.stopActor(ref);
    this.remoteOwners.clear();
  }
}

function toWireOp(msg: ResourceMsg): WireOp | undefined {
  switch (msg.type) {
    case 'request': return { type: 'request', lockId: msg.lockId, owner: msg.owner, mode: msg.mode, noqueue: msg.noqueue, timeoutMs: msg.timeoutMs };
    case 'convert': return { type: 'convert', lockId: msg.lockId, mode: msg.mode, noqueue: msg.noqueue, timeoutMs: msg.timeoutMs, lvb: msg.lvb };
    case 'unlock': return { type: 'unlock', lockId: msg.lockId, lvb: msg.lvb };
    case 'cancel': return { type: 'cancel', lockId: msg.lockId };
    case 'purge': return { type: 'purge', owner: msg.owner };
    default: return undefined;
  }
}

function fromWireOp(op: WireOp, notify: Ref<LockEvent>): ResourceMsg {
  return op.type === 'request' ? { ...op, notify } : op;
}
