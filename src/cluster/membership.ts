/**
 * Membership: leases, quorum and epoch agreement (docs/cluster-protocol.md, "Leases",
 * "Quorum", "Epochs").
 *
 * MembershipCore is the pure, clock-free state machine (every call takes `now`), so its rules
 * are unit-testable and run identically under simulated time. The Membership actor wraps it
 * with the timers and the transport.
 *
 * Owns: per-peer lease state (last heard, last acknowledged renewal, incarnation), the
 * committed view {epoch, members, incarnations}, the highest epoch promised to a proposer,
 * the proposal in flight.
 * Takes: 'tick' (renewal round), 'evaluate' (a deadline passed), 'peerMessage' (renew,
 * renewAck, propose, accept, reject, commit, and ping for diagnostics), 'linkUp'/'linkDown',
 * 'mute' (the host's main thread stopped answering: go silent, see MembershipCore.mute),
 * 'leaseExpired' (a peer's Lease actor saw its expiry pass: evaluate), 'status', 'stop'.
 * A node that sees a member stamp an older epoch forwards its committed view to it (a commit
 * lost with a dropped link), and renews to everyone right after installing a view, so the
 * acknowledgements that make up quorum arrive within a round trip rather than a renew interval.
 * Sends: renew/renewAck/propose/accept/reject/commit/pong to peers; MembershipEvents
 * ('quorum', 'view', 'peerDead', 'peerAlive', 'peerRestarted') to the handler given at spawn;
 * every new quorum deadline (moved, or lost) to onLease; and, after taking them itself, every
 * renewal heard and acknowledgement to the peer's Lease actor and every new deadline to the own
 * one (lease.ts: lease.renewed, lease.acked, lease.deadline), which only record and time the
 * expiries: the quorum arithmetic below never waits for them.
 *
 * Liveness is the lease, never the TCP connection: a peer is dead when nothing was heard from
 * it for lease + deadMargin; this node keeps quorum only while renewals it sent within the
 * last lease - fenceMargin were acknowledged by enough nodes that count it as a member.
 */
import type { ActorDef, ActorSystem, Ref } from '../actors/actor';
import type { Clock, TimerHandle } from '../util/clock';
import type { LeaseTimes } from './options';
import { canonicalMembers, MAX_EPOCH, PeerBody, PeerMessage } from './peer-protocol';
import { WindowedMax } from '../util/windowed-max';
import { LeaseExpiredMsg, Leases, spawnLeases } from './lease';

// ------------------------------------------------------------------------------------------
// Quorum rule

/**
 * Majority of the configured nodes; with an even count, exactly half is a quorum when it
 * includes the tiebreaker (two nodes: the tiebreaker alone keeps quorum, the other cannot).
 */
export function isQuorum(present: Iterable<number>, allNodes: readonly number[], tiebreaker?: number): boolean {
  const set = new Set([...present].filter((id) => allNodes.includes(id)));
  const n = allNodes.length;
  if (2 * set.size > n) return true;
  return 2 * set.size === n && tiebreaker !== undefined && set.has(tiebreaker);
}

// ------------------------------------------------------------------------------------------
// Core

export interface MembershipConfig {
  selfId: number;
  /** Every configured node id, this node included. */
  nodeIds: readonly number[];
  tiebreaker?: number;
  times: LeaseTimes;
  /**
   * This daemon run's incarnation (random, 1..2^32-1, new at every start). A node id that
   * comes back with another incarnation restarted: its previous run, and every lock it held,
   * is gone, so it re-enters the cluster through a new view even if no lease expired.
   */
  incarnation: number;
  /**
   * A proposal not committed within this long, plus the largest round trip recently observed
   * to one of its members (their renewAcks), is abandoned (default 2 renew intervals): a slow
   * but live member's accept can still arrive.
   */
  proposalTimeoutMs?: number;
  /**
   * Durable memory of the highest epoch this node promised, so that after a restart (even of
   * the whole cluster) epochs, and the fencing tokens built on them, continue upwards.
   * save() must be durable when it returns; it is called before any accept, proposal or
   * commit based on that epoch leaves this node.
   */
  epochStore?: { load(): number; save(epoch: number): void };
}

/** A committed membership: members ascending, incs[i] the incarnation of members[i]. */
export interface View { epoch: number; members: number[]; incs: number[] }

export type MembershipEvent =
  | { type: 'quorum'; has: true; epoch: number; members: number[]; until: number }
  | { type: 'quorum'; has: false; reason: string }
  /** A new view: `left` and `restarted` nodes lost every lock they held (the lock engine purges them). */
  | { type: 'view'; epoch: number; members: number[]; incs: number[]; previous: View; joined: number[]; left: number[]; restarted: number[] }
  | { type: 'peerDead'; node: number; silentMs: number }
  | { type: 'peerAlive'; node: number }
  | { type: 'peerRestarted'; node: number; oldInc: number; newInc: number }
  /** This node starts (or stops) yielding to node `below`, which it cannot hear while others can. */
  | { type: 'yield'; active: boolean; below: number };

export interface Outgoing { to: number; body: PeerBody }
export interface Step { out: Outgoing[]; events: MembershipEvent[]; rejected?: string }

interface PeerLease {
  /** Local time anything was last heard on the lease protocol (renew or renewAck). */
  lastHeard?: number;
  /** Own-clock send time of the newest renewal this peer acknowledged as a member. */
  ackedSentAt?: number;
  alive: boolean;
  /** The peer's incarnation, from its renew/renewAck. */
  inc?: number;
  /** Highest epoch seen in this peer's headers. */
  epoch: number;
  /** The uncommitted proposal epoch the peer last reported having accepted (0: none). */
  pending: number;
  /** When this node last forwarded its committed view to the peer (a lost commit). */
  lastForward?: number;
  /** The peer's last report of whom it hears (renew.hears), and when it arrived. */
  hears?: number[];
  hearsAt?: number;
  /** Round trips of the last RTT_SAMPLES renewals it acknowledged (ack arrival - own send time), newest last. */
  rtts: number[];
}

/** Round-trip samples kept per peer: the proposal timeout follows the largest of them. */
const RTT_SAMPLES = 8;

/**
 * Non-transitive partitions (A-B and B-C up, A-C down): every node keeps a majority, the
 * coordinator's proposals fail because member rosters differ, and lock traffic between A and
 * C hangs while membership looks healthy. Rule: a node that has not heard a LOWER-id node
 * for deadAfterMs, while a peer it does hear reports hearing that node within the last
 * 1.5 renew intervals, yields: it goes silent (no renewals, no answers) and self-fences, so
 * the others declare it dead and commit a view without it. It stays silent while the
 * condition lasts; when it hears that node again it renews and rejoins through a new view.
 * The condition must hold for 2 renew intervals first: after a real crash of the lower
 * node, every peer's reports stop naming it well before that (see docs/cluster-protocol.md).
 */
interface Yield { below: number; since: number; active: boolean }

interface Roster { members: number[]; incs: number[] }
interface Proposal extends Roster { epoch: number; accepted: Set<number>; startedAt: number }

export interface MembershipSnapshot {
  selfId: number;
  incarnation: number;
  view: View;
  inQuorum: boolean;
  /** Local clock ms until which this node may act (grant) as a quorum member; -Infinity if not. */
  quorumUntil: number;
  live: number[];
  promised: number;
  proposing?: View;
  /** The lower-id node this node yields to (silent, fenced), if it does. */
  yieldingTo?: number;
  /** Why the host muted this node (silent, fenced), if it did. */
  muted?: string;
  peers: Array<{ id: number; alive: boolean; inc?: number; lastHeardAgoMs?: number; ackAgeMs?: number; epoch: number }>;
  /** Lease renewals (see MembershipCore.renewals): the proof's age each time it was renewed. */
  renewals: RenewalStats;
}

export interface RenewalStats {
  count: number;
  /** Age of the lease proof at the last renewal, and the largest over the last minute / ever. */
  lastGapMs?: number;
  maxGapMs?: number;
  maxGapEverMs?: number;
  /** Times this node lost quorum. */
  quorumLosses: number;
  /** Per-second largest gap, oldest first: how long ago the second began, and the gap. */
  recent: Array<{ agoMs: number; maxGapMs: number }>;
}

export class MembershipCore {
  private peers = new Map<number, PeerLease>();
  private view: View = { epoch: 0, members: [], incs: [] };
  /** Highest epoch accepted (promised) or committed: never accept a proposal at or below it. */
  private promised = 0;
  /** The accepted, not yet committed proposal (the ack 'member' flag honours it too). */
  private acceptedRoster?: Roster;
  private maxSeenEpoch = 0;
  private proposal?: Proposal;
  private noProposeBefore = 0;
  private lastQuorum = false;
  private startedAt?: number;
  private yieldState?: Yield;
  /** Set by the host (see mute): silent and without quorum while set. */
  private muteReason?: string;
  readonly stats = { staleRejected: 0, proposals: 0, commits: 0, forwardedCommits: 0, yields: 0, quorumLosses: 0 };
  /**
   * Renewal gaps: each time an acknowledgement moves this node's quorum deadline forward, how
   * old the proof it replaces was (now - send time of the renewal that held quorum until
   * then). The node fences when that age reaches fenceAfterMs; bench/event-loop.ts wants the
   * largest below half the lease under load.
   */
  readonly renewals = new WindowedMax(1000, 120);
  private lastRenewalGap?: number;

  constructor(readonly cfg: MembershipConfig) {
    this.promised = cfg.epochStore?.load() ?? 0;
    for (const id of cfg.nodeIds) if (id !== cfg.selfId) this.peers.set(id, { alive: false, epoch: 0, pending: 0, rtts: [] });
  }

  /** Raise the promised epoch, durably first (epochStore). */
  private promise(epoch: number): void {
    if (epoch > this.promised) this.cfg.epochStore?.save(epoch);
    this.promised = Math.max(this.promised, epoch);
  }

  get epoch(): number { return this.view.epoch; }
  get committed(): View { return { epoch: this.view.epoch, members: [...this.view.members], incs: [...this.view.incs] }; }

  private get t(): LeaseTimes { return this.cfg.times; }

  /** Renewal round: a renew to every peer, then re-evaluate. */
  tick(now: number): Step {
    this.startedAt ??= now;
    const out: Outgoing[] = [];
    if (!this.silent) for (const id of this.peers.keys()) out.push({ to: id, body: this.renew(now) });
    const r = this.evaluate(now);
    return { out: [...out, ...r.out], events: r.events };
  }

  renew(now: number): PeerBody {
    const pending = this.acceptedRoster ? this.promised : 0;
    const fresh = this.t.renewMs * 1.5;
    const hears = [...this.peers.entries()].filter(([, p]) => p.lastHeard !== undefined && now - p.lastHeard < fresh).map(([id]) => id).sort((a, b) => a - b);
    return { type: 'renew', sentAt: now, inc: this.cfg.incarnation, pending, hears };
  }

  /** True while this node yields to a lower-id node it cannot hear (see Yield), or is muted: it sends nothing. */
  get silent(): boolean { return this.yieldState?.active === true || this.muteReason !== undefined; }

  /**
   * The host mutes this node when the lease can no longer vouch for it: the cluster layer
   * runs in its own thread (cluster-worker.ts) and the lock engine's thread stopped
   * answering. Muted, it sends nothing (no renewals, no answers) and holds no quorum, like a
   * yielding node, so the others declare it dead and take over its resources; unmuted, it
   * renews again and rejoins through a new view. `reason` undefined: unmute.
   */
  mute(now: number, reason: string | undefined): Step {
    this.muteReason = reason;
    return this.evaluate(now);
  }

  /** The lower-id node this node cannot hear while a peer it hears does, if any. */
  private unreachableBelow(now: number): number | undefined {
    if (this.startedAt === undefined || now - this.startedAt < this.t.deadAfterMs) return undefined;
    const fresh = this.t.renewMs * 1.5;
    for (const [y, py] of this.peers) {
      if (y > this.cfg.selfId || this.heardRecently(py, now)) continue;
      for (const [z, pz] of this.peers) {
        if (z === y || !this.heardRecently(pz, now) || pz.hearsAt === undefined || now - pz.hearsAt >= fresh) continue;
        if (pz.hears?.includes(y)) return y;
      }
    }
    return undefined;
  }

  /** Enter or leave the yielding state; returns an event when it changes. */
  private updateYield(now: number): MembershipEvent | undefined {
    const y = this.unreachableBelow(now);
    const cur = this.yieldState;
    if (y === undefined) {
      this.yieldState = undefined;
      return cur?.active ? { type: 'yield', active: false, below: cur.below } : undefined;
    }
    if (!cur || cur.below !== y) { this.yieldState = { below: y, since: now, active: false }; return undefined; }
    if (!cur.active && now - cur.since >= 2 * this.t.renewMs) {
      cur.active = true;
      this.stats.yields++;
      this.proposal = undefined;
      return { type: 'yield', active: true, below: y };
    }
    return undefined;
  }

  /** Live ids (this node, and every peer heard within lease + deadMargin) with their incarnations. */
  liveRoster(now: number): Roster {
    const m = new Map<number, number>([[this.cfg.selfId, this.cfg.incarnation]]);
    for (const [id, p] of this.peers) if (this.heardRecently(p, now) && p.inc !== undefined) m.set(id, p.inc);
    const members = canonicalMembers(m.keys());
    return { members, incs: members.map((id) => m.get(id)!) };
  }

  live(now: number): number[] { return this.liveRoster(now).members; }

  private heardRecently(p: PeerLease, now: number): boolean {
    return p.lastHeard !== undefined && now - p.lastHeard < this.t.deadAfterMs;
  }

  /**
   * The local time until which this node holds quorum: the latest t such that this node plus
   * the peers whose acknowledged renewals are still fresh at t form a quorum.
   */
  quorumUntil(): number {
    if (this.view.epoch === 0 || !inRoster(this.view, this.cfg.selfId, this.cfg.incarnation) || this.silent) return -Infinity;
    const expiry = [...this.peers.entries()]
      .filter(([, p]) => p.ackedSentAt !== undefined)
      .map(([id, p]) => ({ id, until: p.ackedSentAt! + this.t.fenceAfterMs }))
      .sort((a, b) => b.until - a.until);
    const chosen = [this.cfg.selfId];
    if (isQuorum(chosen, this.cfg.nodeIds, this.cfg.tiebreaker)) return Infinity;
    let best = -Infinity;
    for (const e of expiry) {
      chosen.push(e.id);
      if (isQuorum(chosen, this.cfg.nodeIds, this.cfg.tiebreaker)) { best = e.until; break; }
    }
    // Even count + tiebreaker: half the nodes including the tiebreaker also do.
    const tb = this.cfg.tiebreaker;
    const half = this.cfg.nodeIds.length / 2;
    if (tb !== undefined && tb !== this.cfg.selfId && Number.isInteger(half)) {
      const tbe = expiry.find((e) => e.id === tb);
      const others = expiry.filter((e) => e.id !== tb).slice(0, Math.max(0, half - 2));
      if (tbe && others.length === half - 2) best = Math.max(best, Math.min(tbe.until, ...others.map((o) => o.until)));
    }
    return best;
  }

  hasQuorum(now: number): boolean { return now < this.quorumUntil(); }

  /**
   * For epoch-bound messages (lock traffic): only the receiver's committed epoch is valid.
   * Returns undefined when the message may be processed, else the reason it is rejected.
   */
  checkBound(msg: PeerMessage): string | undefined {
    const e = msg.hdr.epoch;
    if (e === this.view.epoch && e > 0) return undefined;
    this.stats.staleRejected++;
    if (e < this.view.epoch) return `stale epoch ${e} from node ${msg.hdr.from}: current epoch is ${this.view.epoch}`;
    if (this.view.epoch === 0) return `epoch-bound '${msg.body.type}' from node ${msg.hdr.from} before any view was committed`;
    return `epoch ${e} from node ${msg.hdr.from} is ahead of this node's epoch ${this.view.epoch}`;
  }

  /**
   * The earliest local time at which evaluate() could change something. peerExpiry false:
   * leave out the peers' lease expiries (the Lease actors' timers make the membership
   * evaluate at those: lease.ts).
   */
  nextDeadline(now: number, peerExpiry = true): number {
    let d = Infinity;
    const q = this.quorumUntil();
    if (q > now && Number.isFinite(q)) d = Math.min(d, q);
    if (peerExpiry) for (const p of this.peers.values()) if (p.alive && p.lastHeard !== undefined) d = Math.min(d, p.lastHeard + this.t.deadAfterMs);
    if (this.proposal) d = Math.min(d, this.proposal.startedAt + this.proposalTimeout(this.proposal));
    if (this.yieldState && !this.yieldState.active) d = Math.min(d, this.yieldState.since + 2 * this.t.renewMs);
    if (this.noProposeBefore > now) d = Math.min(d, this.noProposeBefore);
    return d;
  }

  /**
   * How long a proposal to `r` waits for its accepts: the configured timeout on top of the
   * largest round trip observed over the last RTT_SAMPLES renewals of its members. A fixed
   * timeout below a live member's round trip abandons every proposal before that member's
   * accept can come back, and the next one (a higher epoch) has the same fate: no view is
   * ever committed while the slow member stays live (its late renewals keep it so).
   */
  proposalTimeout(r: Roster): number {
    const base = this.cfg.proposalTimeoutMs ?? 2 * this.t.renewMs;
    let rtt = 0;
    for (const id of r.members) for (const x of this.peers.get(id)?.rtts ?? []) rtt = Math.max(rtt, x);
    // At most a lease: a member that answers slower than that is declared dead anyway, and a
    // thawed node's held renewals (acked late, once) must not stall the next proposals for longer.
    return base + Math.min(rtt, this.t.leaseMs);
  }

  receive(now: number, from: number, msg: PeerMessage): Step {
    const p = this.peers.get(from);
    if (!p) return { out: [], events: [], rejected: `message from unconfigured node ${from}` };
    p.epoch = Math.max(p.epoch, msg.hdr.epoch);
    this.maxSeenEpoch = Math.max(this.maxSeenEpoch, msg.hdr.epoch);
    const b = msg.body;
    const out: Outgoing[] = [];
    const events: MembershipEvent[] = [];
    let rejected: string | undefined;
    if (b.type === 'renew' || b.type === 'renewAck') {
      p.lastHeard = now;
      if (p.inc !== b.inc) {
        if (p.inc !== undefined) {
          // A new run of that node: the old one is gone, and so is whatever it acknowledged.
          events.push({ type: 'peerRestarted', node: from, oldInc: p.inc, newInc: b.inc });
          p.ackedSentAt = undefined;
          p.epoch = msg.hdr.epoch;
        }
        p.inc = b.inc;
      }
      // A member still stamping an older epoch missed our commit (its link dropped with the
      // commit in flight): a committed view is a fact any member may hand on.
      if (msg.hdr.epoch < this.view.epoch && inRoster(this.view, from, b.inc)
        && (p.lastForward === undefined || now - p.lastForward >= this.t.renewMs / 2)) {
        p.lastForward = now;
        this.stats.forwardedCommits++;
        out.push({ to: from, body: { type: 'commit', epoch: this.view.epoch, members: this.view.members, incs: this.view.incs } });
      }
    }
    switch (b.type) {
      case 'renew':
        p.pending = b.pending;
        if (b.hears) { p.hears = b.hears; p.hearsAt = now; }
        this.maxSeenEpoch = Math.max(this.maxSeenEpoch, b.pending); // a new proposal must top it
        out.push({ to: from, body: { type: 'renewAck', sentAt: b.sentAt, member: this.counts(from), inc: this.cfg.incarnation } });
        break;
      case 'renewAck': {
        if (b.sentAt > now) { rejected = `renewAck from node ${from} echoes a time in the future`; break; }
        p.rtts.push(now - b.sentAt);
        if (p.rtts.length > RTT_SAMPLES) p.rtts.shift();
        const before = this.quorumUntil();
        if (b.member) p.ackedSentAt = Math.max(p.ackedSentAt ?? -Infinity, b.sentAt);
        else p.ackedSentAt = undefined; // that node no longer vouches for this one
        const after = this.quorumUntil();
        if (after > before && Number.isFinite(before) && Number.isFinite(after)) {
          this.lastRenewalGap = now - (before - this.t.fenceAfterMs);
          this.renewals.add(now, this.lastRenewalGap);
        }
        break;
      }
      case 'propose': {
        const live = this.liveRoster(now);
        const floor = Math.max(this.promised, this.view.epoch);
        if (b.epoch <= floor) {
          rejected = `stale proposal epoch ${b.epoch} from node ${from}: already at ${floor}`;
          this.stats.staleRejected++;
          out.push({ to: from, body: { type: 'reject', epoch: b.epoch, reason: rejected, live: live.members, committedEpoch: floor } });
        } else if (!sameRoster(b, live)) {
          rejected = `proposal ${b.epoch} from node ${from} has members ${showRoster(b)}, this node sees ${showRoster(live)}`;
          out.push({ to: from, body: { type: 'reject', epoch: b.epoch, reason: rejected, live: live.members, committedEpoch: this.view.epoch } });
        } else {
          this.promise(b.epoch);
          this.acceptedRoster = { members: b.members, incs: b.incs };
          // Our own proposal, if any, can no longer win.
          if (this.proposal && this.proposal.epoch <= b.epoch) this.proposal = undefined;
          out.push({ to: from, body: { type: 'accept', epoch: b.epoch } });
        }
        break;
      }
      case 'accept': {
        const pr = this.proposal;
        if (!pr || pr.epoch !== b.epoch) { rejected = `accept for epoch ${b.epoch} that is not being proposed`; break; }
        pr.accepted.add(from);
        break;
      }
      case 'reject':
        this.maxSeenEpoch = Math.max(this.maxSeenEpoch, b.committedEpoch);
        if (this.proposal && this.proposal.epoch === b.epoch) {
          this.proposal = undefined;
          this.noProposeBefore = now + this.t.renewMs / 2;
        }
        break;
      case 'commit': {
        if (b.epoch === this.view.epoch && sameRoster(b, this.view)) break; // a forwarded duplicate
        if (b.epoch <= this.view.epoch) {
          this.stats.staleRejected++;
          rejected = `stale commit epoch ${b.epoch} from node ${from}: current epoch is ${this.view.epoch}`;
          break;
        }
        const r = this.install({ epoch: b.epoch, members: b.members, incs: b.incs }, now);
        return { out: [...out, ...r.out], events: [...events, ...r.events] };
      }
      case 'ping': {
        const why = this.checkBound(msg);
        if (why) { rejected = why; break; }
        out.push({ to: from, body: { type: 'pong', token: b.token } });
        break;
      }
      default:
        break;
    }
    const r = this.evaluate(now);
    // A yielding node answers nothing (its peers must find it silent).
    return { out: this.silent ? [] : [...out, ...r.out], events: [...events, ...r.events], rejected };
  }

  /** Whether a renew from `id` (its current incarnation) is acknowledged as coming from a member. */
  private counts(id: number): boolean {
    const inc = this.peers.get(id)?.inc;
    if (this.view.epoch === 0 || inc === undefined || !inRoster(this.view, id, inc)) return false;
    return this.acceptedRoster === undefined || inRoster(this.acceptedRoster, id, inc);
  }

  private install(v: View, now: number): Step {
    const previous = this.view;
    // Durable first: if the state_dir cannot be written, the view is not installed at all (a
    // half-installed one would count renewals for a view the lock engine never heard of).
    this.promise(Math.max(this.promised, v.epoch));
    this.view = { epoch: v.epoch, members: [...v.members], incs: [...v.incs] };
    this.acceptedRoster = undefined;
    if (this.proposal && this.proposal.epoch <= v.epoch) this.proposal = undefined;
    this.stats.commits++;
    const incOf = (r: View, id: number) => r.incs[r.members.indexOf(id)];
    const ev: MembershipEvent = {
      type: 'view', epoch: v.epoch, members: [...v.members], incs: [...v.incs], previous,
      joined: v.members.filter((id) => !previous.members.includes(id)),
      left: previous.members.filter((id) => !v.members.includes(id)),
      restarted: v.members.filter((id) => previous.members.includes(id) && incOf(previous, id) !== incOf(v, id)),
    };
    const r = this.evaluate(now);
    return { out: r.out, events: [ev, ...r.events] };
  }

  /** Re-derive liveness, quorum and whether to propose; report what changed. */
  evaluate(now: number): Step {
    const out: Outgoing[] = [];
    const events: MembershipEvent[] = [];
    for (const [id, p] of this.peers) {
      const alive = this.heardRecently(p, now);
      if (alive !== p.alive) {
        p.alive = alive;
        events.push(alive ? { type: 'peerAlive', node: id } : { type: 'peerDead', node: id, silentMs: Math.round(now - (p.lastHeard ?? now)) });
      }
    }
    const y = this.updateYield(now);
    if (y) events.push(y);
    // Proposals: the lowest-id live node coordinates.
    const live = this.liveRoster(now);
    const pr = this.proposal;
    if (pr && (now - pr.startedAt >= this.proposalTimeout(pr) || !sameRoster(pr, live))) this.proposal = undefined;
    const cur = this.proposal;
    if (cur && cur.members.every((id) => id === this.cfg.selfId || cur.accepted.has(id))) {
      const v: View = { epoch: cur.epoch, members: cur.members, incs: cur.incs };
      for (const id of v.members) if (id !== this.cfg.selfId) out.push({ to: id, body: { type: 'commit', epoch: v.epoch, members: v.members, incs: v.incs } });
      const r = this.install(v, now);
      return { out: [...out, ...r.out], events: [...events, ...r.events] };
    }
    const next = Math.max(this.view.epoch, this.promised, this.maxSeenEpoch) + 1;
    if (!cur && !this.silent && live.members[0] === this.cfg.selfId && now >= this.noProposeBefore
      && (this.view.epoch === 0 || !sameRoster(live, this.view) || this.behind(live.members) || this.dangling(live.members))
      && isQuorum(live.members, this.cfg.nodeIds, this.cfg.tiebreaker)
      && next <= MAX_EPOCH) { // beyond: no fencing token left for a new epoch (docs/limits.md)
      const epoch = next;
      this.promise(epoch);
      this.proposal = { epoch, ...live, accepted: new Set(), startedAt: now };
      this.stats.proposals++;
      for (const id of live.members) if (id !== this.cfg.selfId) out.push({ to: id, body: { type: 'propose', epoch, members: live.members, incs: live.incs } });
      if (live.members.length === 1) {
        const r = this.evaluate(now); // a cluster of one (or a lone tiebreaker) commits at once
        return { out: [...out, ...r.out], events: [...events, ...r.events] };
      }
    }
    const until = this.quorumUntil();
    const has = now < until;
    if (has !== this.lastQuorum) {
      this.lastQuorum = has;
      if (!has) this.stats.quorumLosses++;
      events.push(has
        ? { type: 'quorum', has: true, epoch: this.view.epoch, members: [...this.view.members], until }
        : { type: 'quorum', has: false, reason: this.noQuorumReason(now) });
    }
    return { out, events };
  }

  /** A live peer stamps a newer epoch than ours: a view was committed without us. */
  private behind(live: number[]): boolean {
    return live.some((id) => (this.peers.get(id)?.epoch ?? 0) > this.view.epoch);
  }

  /** A live peer holds an accepted proposal that was never committed (its coordinator gave up). */
  private dangling(live: number[]): boolean {
    return live.some((id) => (this.peers.get(id)?.pending ?? 0) > this.view.epoch);
  }

  private noQuorumReason(now: number): string {
    if (this.view.epoch === 0) return 'no membership view committed yet';
    if (this.muteReason !== undefined) return `muted: ${this.muteReason}`;
    if (this.silent) return `yielding: node ${this.yieldState!.below} cannot be heard here while other nodes hear it (non-transitive partition); this node steps out`;
    if (!inRoster(this.view, this.cfg.selfId, this.cfg.incarnation)) return `this node is not a member of epoch ${this.view.epoch}`;
    const fresh = [...this.peers.entries()].filter(([, p]) => p.ackedSentAt !== undefined && now < p.ackedSentAt + this.t.fenceAfterMs).map(([id]) => id);
    return `only [${canonicalMembers([this.cfg.selfId, ...fresh])}] of ${this.cfg.nodeIds.length} nodes acknowledged this node's lease within ${this.t.fenceAfterMs} ms`;
  }

  /** The incarnation of `id` if a renewal of it was heard within `withinMs` (undefined otherwise). */
  heardIncarnation(id: number, now: number, withinMs: number): number | undefined {
    const p = this.peers.get(id);
    return p?.lastHeard !== undefined && now - p.lastHeard < withinMs ? p.inc : undefined;
  }

  snapshot(now: number): MembershipSnapshot {
    const q = this.quorumUntil();
    return {
      selfId: this.cfg.selfId, incarnation: this.cfg.incarnation, view: this.committed, inQuorum: now < q, quorumUntil: q,
      live: this.live(now), promised: this.promised,
      proposing: this.proposal ? { epoch: this.proposal.epoch, members: [...this.proposal.members], incs: [...this.proposal.incs] } : undefined,
      yieldingTo: this.yieldState?.active ? this.yieldState.below : undefined,
      muted: this.muteReason,
      peers: [...this.peers.entries()].map(([id, p]) => ({
        id, alive: p.alive, inc: p.inc, epoch: p.epoch,
        lastHeardAgoMs: p.lastHeard === undefined ? undefined : now - p.lastHeard,
        ackAgeMs: p.ackedSentAt === undefined ? undefined : now - p.ackedSentAt,
      })),
      renewals: {
        count: this.renewals.count, lastGapMs: this.lastRenewalGap, maxGapMs: this.renewals.max(now, 60000),
        maxGapEverMs: this.renewals.maxEver, quorumLosses: this.stats.quorumLosses,
        recent: this.renewals.buckets().map((x) => ({ agoMs: now - x.start, maxGapMs: x.max })),
      },
    };
  }
}

function inRoster(r: Roster, id: number, inc: number): boolean {
  const i = r.members.indexOf(id);
  return i >= 0 && r.incs[i] === inc;
}

function sameRoster(a: Roster, b: Roster): boolean {
  return a.members.length === b.members.length && a.members.every((id, i) => b.members[i] === id && b.incs[i] === a.incs[i]);
}

function showRoster(r: Roster): string {
  return `[${r.members.map((id, i) => `${id}#${r.incs[i].toString(16)}`).join(',')}]`;
}

// ------------------------------------------------------------------------------------------
// Actor

export type MembershipMsg =
  | { type: 'start' }
  | { type: 'tick' }
  | { type: 'evaluate' }
  | { type: 'peerMessage'; from: number; msg: PeerMessage }
  | { type: 'linkUp'; peer: number }
  | { type: 'linkDown'; peer: number; reason: string }
  | { type: 'mute'; reason?: string }
  /** A peer's Lease actor saw its expiry pass with nothing heard (lease.ts): evaluate now. */
  | LeaseExpiredMsg
  | { type: 'status'; replyTo: Ref<MembershipSnapshot> }
  | { type: 'stop' };

/**
 * The lease-renewal hook: "a renewal round went out" and "lease renewed, quorum until T".
 * Whatever runs the membership (this actor today) reports every renewal round it sends and
 * every acknowledgement that extends this node's quorum deadline, so that a watchdog fed
 * from here stops being fed exactly when lease renewal stops (src/daemon/service.ts).
 */
export interface RenewalReport {
  /** 'round': renewals were just sent (or, while yielding, skipped); 'confirmed': an ack extended the deadline. */
  kind: 'round' | 'confirmed';
  /** Local clock ms until which this node holds quorum (-Infinity: it does not). */
  quorumUntil: number;
}

export interface MembershipActorOptions {
  core: MembershipCore;
  clock: Clock;
  /** Sends one message to a peer (PeerTransport.send). */
  send(to: number, body: PeerBody): void;
  onEvent(ev: MembershipEvent): void;
  onRenewal?(r: RenewalReport): void;
  /** Called with every message the core rejected (stale epoch, ...), for logs and tests. */
  onRejected?(from: number, msg: PeerMessage, reason: string): void;
  /**
   * Called with the new quorum deadline (local clock ms; -Infinity: no quorum, Infinity:
   * quorum alone) each time it changes: a renewal moved it, or it was lost.
   */
  onLease?(until: number): void;
  /**
   * The node's Lease actors (lease.ts), set by spawnMembership: every renewal heard, every
   * acknowledged renewal and every move of the quorum deadline is told to them, and the peers'
   * expiries come from their timers (leaseExpired). Absent: the membership times the expiries.
   */
  leases?: Leases;
}

interface ActorState { tickTimer?: TimerHandle; evalTimer?: TimerHandle; evalAt: number; stopped: boolean; lease: number }

export function membershipDef(o: MembershipActorOptions): ActorDef<ActorState, MembershipMsg> {
  const core = o.core;
  const apply = (s: ActorState, step: Step, self: Ref<MembershipMsg>, sys: ActorSystem, log: import('bunyan')) => {
    for (const m of step.out) o.send(m.to, m.body);
    if (step.events.some((e) => e.type === 'view') && !core.silent) {
      const now = o.clock.now();
      for (const id of core.cfg.nodeIds) if (id !== core.cfg.selfId) o.send(id, core.renew(now));
    }
    for (const ev of step.events) {
      if (ev.type === 'quorum' && !ev.has) log.warn({ event: ev }, `quorum lost: ${ev.reason}`);
      else if (ev.type === 'yield') {
        if (ev.active) log.warn({ event: ev }, `node ${ev.below} cannot be heard here but other nodes hear it (non-transitive partition): this node (higher id) yields, goes silent and self-fences`);
        else log.warn({ event: ev }, `yield to node ${ev.below} over: renewing again`);
      }
      else if (ev.type === 'peerDead') log.warn({ event: ev }, `node ${ev.node} is dead: nothing heard for ${ev.silentMs} ms`);
      else log.info({ event: ev }, `membership: ${ev.type}`);
      o.onEvent(ev);
    }
    // One evaluation timer at the next deadline (quorum expiry must be reported on time).
    const now = o.clock.now();
    const at = core.nextDeadline(now, !o.leases);
    if (!s.stopped && Number.isFinite(at) && at !== s.evalAt) {
      o.clock.clearTimer(s.evalTimer);
      s.evalAt = at;
      s.evalTimer = o.clock.setTimer(() => sys.send(self, { type: 'evaluate' }), Math.max(0, at - now));
    }
  };
  const scheduleTick = (s: ActorState, self: Ref<MembershipMsg>, sys: ActorSystem) => {
    s.tickTimer = o.clock.setTimer(() => sys.send(self, { type: 'tick' }), core.cfg.times.renewMs);
  };
  return {
    init: () => ({ evalAt: NaN, stopped: false, lease: -Infinity }),
    handle(s, msg, ctx) {
      if (s.stopped) return s;
      handleOne(s, msg, ctx);
      const until = core.quorumUntil();
      if (until !== s.lease && !s.stopped) {
        s.lease = until;
        o.onLease?.(until);
        // After the deadline is in place (shared memory, canGrant): the own lease records it.
        if (o.leases) ctx.system.send(o.leases.own, { type: 'lease.deadline', node: core.cfg.selfId, until, epoch: core.epoch });
      }
      return s;
    },
    onCrash: () => 'resume',
  };

  function handleOne(s: ActorState, msg: MembershipMsg, ctx: import('../actors/actor').ActorCtx<MembershipMsg>): ActorState {
    const now = o.clock.now();
    switch (msg.type) {
      case 'start':
      case 'tick':
        apply(s, core.tick(now), ctx.self, ctx.system, ctx.log);
        scheduleTick(s, ctx.self, ctx.system);
        o.onRenewal?.({ kind: 'round', quorumUntil: core.quorumUntil() });
        return s;
      case 'evaluate':
        s.evalAt = NaN;
        apply(s, core.evaluate(now), ctx.self, ctx.system, ctx.log);
        return s;
      case 'peerMessage': {
        const before = core.quorumUntil();
        const step = core.receive(now, msg.from, msg.msg);
        if (step.rejected) {
          ctx.log.warn({ from: msg.from, msgType: msg.msg.body.type, epoch: msg.msg.hdr.epoch }, `rejected: ${step.rejected}`);
          o.onRejected?.(msg.from, msg.msg, step.rejected);
        }
        apply(s, step, ctx.self, ctx.system, ctx.log);
        const after = core.quorumUntil();
        if (after > before) o.onRenewal?.({ kind: 'confirmed', quorumUntil: after });
        if (o.leases) tellLease(o.leases, msg.from, msg.msg, step, now, ctx.system);
        return s;
      }
      case 'leaseExpired':
        s.evalAt = NaN; // the timer of apply() may be re-armed for the same instant
        apply(s, core.evaluate(now), ctx.self, ctx.system, ctx.log);
        return s;
      case 'linkUp':
        // Renew at once: a (re)joining node is seen within one message, not one interval.
        if (!core.silent) o.send(msg.peer, core.renew(now));
        return s;
      case 'linkDown':
        return s; // liveness is the lease; a dropped link only means renewals stop arriving
      case 'mute': {
        const was = core.silent;
        apply(s, core.mute(now, msg.reason), ctx.self, ctx.system, ctx.log);
        if (msg.reason !== undefined) ctx.log.warn(`muted, no renewals and no quorum: ${msg.reason}`);
        else if (was && !core.silent) {
          ctx.log.warn('unmuted: renewing again');
          for (const id of core.cfg.nodeIds) if (id !== core.cfg.selfId) o.send(id, core.renew(now));
        }
        return s;
      }
      case 'status':
        ctx.system.reply(msg.replyTo, core.snapshot(now));
        return s;
      case 'stop':
        s.stopped = true;
        o.clock.clearTimer(s.tickTimer);
        o.clock.clearTimer(s.evalTimer);
        if (o.leases) for (const ref of [...o.leases.peers.values(), o.leases.own]) ctx.system.send(ref, { type: 'lease.stop' });
        return s;
    }
  }
}

/**
 * A lease fact the core just took (in this turn, before anything else), for the peer's Lease
 * actor: the renewal heard (its time is this turn's, as the core stamped it) and, for a
 * renewAck the core accepted, the acknowledgement. Only told: nothing comes back into the
 * quorum arithmetic (lease.ts, "Safety").
 */
function tellLease(leases: Leases, from: number, msg: PeerMessage, step: Step, now: number, system: ActorSystem): void {
  const b = msg.body;
  if (b.type !== 'renew' && b.type !== 'renewAck') return;
  const ref = leases.peers.get(from);
  if (!ref) return;
  const t = (b as { inc: number }).inc;
  const epoch = msg.hdr.epoch;
  system.send(ref, { type: 'lease.renewed', peer: from, inc: t, at: now, expires: now + leases.times.deadAfterMs, epoch });
  if (b.type === 'renewAck' && !step.rejected) {
    system.send(ref, { type: 'lease.acked', peer: from, inc: t, sentAt: b.sentAt, member: b.member, until: b.member ? b.sentAt + leases.times.fenceAfterMs : -Infinity, epoch });
  }
}

/** The Membership actor and the node's Lease actors (lease.ts), which it tells and which wake it. */
export function spawnMembership(system: ActorSystem, o: MembershipActorOptions): { membership: Ref<MembershipMsg>; leases: Leases } {
  const opts: MembershipActorOptions = { ...o };
  const ref = system.spawn(undefined, 'membership', membershipDef(opts), { node: o.core.cfg.selfId });
  const cfg = o.core.cfg;
  opts.leases = spawnLeases(system, {
    selfId: cfg.selfId, peers: cfg.nodeIds.filter((id) => id !== cfg.selfId), times: cfg.times, clock: o.clock,
    onExpired: (ctx, m) => ctx.system.send(ref, m),
  });
  return { membership: ref, leases: opts.leases };
}
