/**
 * Leases as actors (issue 12): one Lease actor per peer (`lease/<peer>`) and one for this
 * node's own lease (`lease/self`), in the cluster layer's actor system (the cluster worker
 * thread in mxfsd), so that every renewal, every expiry and this node's self-fence deadline
 * is a typed message of the one actor layer and shows in the trace (`lease.*` events).
 *
 * LeaseCore (a peer's lease) and OwnLeaseCore (this node's) are pure: every call takes the
 * time; the actors wrap them with a timer on the injected Clock.
 *
 * A peer's Lease actor owns: the last time the peer renewed (a renew or renewAck heard), its
 * incarnation, the newest renewal of this node it acknowledged as a member, and the expiry
 * (last heard + deadAfterMs: when the peer is judged dead if nothing more is heard).
 * Takes: `lease.renewed` (from the Membership actor, in the turn it handled the renew or
 * renewAck: `at` is that time), `lease.acked` (this node's renewal sent at `sentAt` was
 * acknowledged), `lease.expire` (its own timer, at the expiry), `lease.stop`.
 * Sends: `leaseExpired` to the Membership actor when its expiry passed with nothing heard:
 * the membership evaluates at once (a peer found dead, then a new view without it).
 *
 * The own Lease actor owns this node's self-fence deadline (the quorum deadline: until when
 * the renewals acknowledged by a quorum vouch for this node). Takes: `lease.deadline` (from
 * the Membership actor, every time the deadline moves or is lost), `lease.lapse` (its timer,
 * at the deadline), `lease.stop`. Sends nothing: it records.
 *
 * Safety (why a mailbox cannot extend a lease; docs/architecture.md, "Leases"):
 * - Nothing that lets this node grant reads a Lease actor. The quorum deadline is computed
 *   by MembershipCore (the quorum arithmetic) from its own record of acknowledged renewals,
 *   updated in the same turn that handles the renewAck, exactly as before the actors; it is
 *   published to shared memory (SharedLease) in that turn, and canGrant() compares it with
 *   the clock at the call. The Lease actors are told afterwards and feed nothing back into
 *   it, so a delay in their mailboxes can neither extend the deadline nor keep a withdrawn
 *   acknowledgement (member: false, a new incarnation) alive.
 * - A peer's death is judged by MembershipCore.evaluate from its own last-heard time (the
 *   same as before). The Lease actor's `lease.expire` is what makes the membership evaluate
 *   at the expiry (the membership no longer sets a timer of its own for it); a late
 *   `lease.expire` (a busy mailbox) only delays that decision, and every renewal round
 *   (renewMs) evaluates anyway. Late is safe here: a peer is judged dead only after
 *   deadAfterMs > fenceAfterMs without a renewal, by which time its own deadline has passed;
 *   never earlier than before, since the judgement still needs now - lastHeard >= deadAfterMs
 *   on the membership's record, which no mailbox delays (the renew is stamped in the turn it
 *   is handled, as before).
 * - The expiry a Lease actor computes is from the time the renewal was heard (`at`, carried
 *   in the message), never from when its mailbox got to the message: a delay does not move
 *   the expiry later.
 * - The own lease's `lease.lapse` only records that the deadline passed; the self-fence is
 *   canGrant() at each grant and the router's own timer on the deadline in shared memory.
 */
import type { ActorDef, ActorSystem, Ref } from '../actors/actor';
import type { Clock, TimerHandle } from '../util/clock';
import type { LeaseTimes } from './options';

// ------------------------------------------------------------------------------------------
// Cores

export interface PeerLeaseSnapshot {
  peer: number;
  inc?: number;
  lastHeard?: number;
  /** Time between the last two renewals heard (undefined: fewer than two). */
  lastGap?: number;
  expiresAt: number;
  ackedSentAt?: number;
  vouchesUntil: number;
  expired: boolean;
  renewals: number;
  expiries: number;
  restarts: number;
}

/** One peer's lease, as this node sees it. Pure: every call takes the time. */
export class LeaseCore {
  lastHeard?: number;
  lastGap?: number;
  inc?: number;
  ackedSentAt?: number;
  /** The expiry passed with nothing heard (until the next renewal). */
  expired = false;
  readonly counts = { renewals: 0, expiries: 0, restarts: 0 };

  constructor(readonly peer: number, private readonly times: Pick<LeaseTimes, 'deadAfterMs' | 'fenceAfterMs'>) {}

  /** When the peer is judged dead if nothing more is heard from it (-Infinity: never heard). */
  get expiresAt(): number { return this.lastHeard === undefined ? -Infinity : this.lastHeard + this.times.deadAfterMs; }

  /** Until when the peer's acknowledgement vouches for this node (-Infinity: it does not). */
  get vouchesUntil(): number { return this.ackedSentAt === undefined ? -Infinity : this.ackedSentAt + this.times.fenceAfterMs; }

  /**
   * The peer renewed (a renew or renewAck heard at `at`, from incarnation `inc`). The expiry
   * never moves back (a message stamped earlier than one already taken). A new incarnation is
   * a new run of that node: whatever the old one acknowledged is gone.
   */
  renewed(at: number, inc: number): { restarted?: { oldInc: number; newInc: number } } {
    this.counts.renewals++;
    let restarted: { oldInc: number; newInc: number } | undefined;
    if (this.inc !== undefined && this.inc !== inc) {
      restarted = { oldInc: this.inc, newInc: inc };
      this.ackedSentAt = undefined;
      this.counts.restarts++;
    }
    this.inc = inc;
    if (this.lastHeard !== undefined && at > this.lastHeard) this.lastGap = at - this.lastHeard;
    if (this.lastHeard === undefined || at > this.lastHeard) this.lastHeard = at;
    this.expired = false;
    return restarted ? { restarted } : {};
  }

  /** The peer acknowledged this node's renewal sent at sentAt; member false: it no longer vouches. */
  acked(sentAt: number, member: boolean): void {
    this.ackedSentAt = member ? Math.max(this.ackedSentAt ?? -Infinity, sentAt) : undefined;
  }

  /** Whether the lease expired at `now` (true once per expiry: the first time it is seen). */
  expire(now: number): boolean {
    if (this.expired || this.lastHeard === undefined || now < this.expiresAt) return false;
    this.expired = true;
    this.counts.expiries++;
    return true;
  }

  snapshot(): PeerLeaseSnapshot {
    return {
      peer: this.peer, inc: this.inc, lastHeard: this.lastHeard, lastGap: this.lastGap, expiresAt: this.expiresAt, ackedSentAt: this.ackedSentAt,
      vouchesUntil: this.vouchesUntil, expired: this.expired, renewals: this.counts.renewals, expiries: this.counts.expiries, restarts: this.counts.restarts,
    };
  }
}

/** This node's own lease: its self-fence deadline. Pure. */
export class OwnLeaseCore {
  /** Local clock ms until which this node holds quorum (-Infinity: not; Infinity: alone). */
  until = -Infinity;
  /** The deadline passed without being moved (until the next one). */
  lapsed = false;
  readonly counts = { moves: 0, lapses: 0 };

  /** The deadline moved (or was lost). Returns whether it changed. */
  deadline(until: number): boolean {
    if (until === this.until) return false;
    this.until = until;
    this.lapsed = false;
    this.counts.moves++;
    return true;
  }

  /** Whether the deadline lapsed at `now` (true once per deadline). */
  lapse(now: number): boolean {
    if (this.lapsed || !Number.isFinite(this.until) || now < this.until) return false;
    this.lapsed = true;
    this.counts.lapses++;
    return true;
  }
}

// ------------------------------------------------------------------------------------------
// Messages

export type PeerLeaseMsg =
  /** The peer renewed: heard at `at` from incarnation `inc`; expires at at + deadAfterMs unless renewed again. */
  | { type: 'lease.renewed'; peer: number; inc: number; at: number; expires: number; epoch: number }
  /** The peer acknowledged this node's renewal sent at `sentAt`; member: it counts this node (vouches until `until`). */
  | { type: 'lease.acked'; peer: number; inc: number; sentAt: number; member: boolean; until: number; epoch: number }
  /** The lease's own timer: its expiry (`expires`) is due. */
  | { type: 'lease.expire'; peer: number; expires: number }
  | { type: 'lease.status'; replyTo: Ref<PeerLeaseSnapshot> }
  | { type: 'lease.stop' };

export type OwnLeaseMsg =
  /** This node's self-fence deadline moved to `until` (-Infinity: no quorum). */
  | { type: 'lease.deadline'; node: number; until: number; epoch: number }
  /** The own lease's timer: the deadline `until` is due. */
  | { type: 'lease.lapse'; node: number; until: number }
  | { type: 'lease.status'; replyTo: Ref<OwnLeaseSnapshot> }
  | { type: 'lease.stop' };

export interface OwnLeaseSnapshot { until: number; lapsed: boolean; moves: number; lapses: number }

/** What a peer's Lease actor sends the Membership actor when the peer's lease expired. */
export interface LeaseExpiredMsg { type: 'leaseExpired'; peer: number; expires: number }

/** Every message type of the Lease actors (trace fields: src/trace/fields.ts). */
export const LEASE_MSG_TYPES = ['lease.renewed', 'lease.acked', 'lease.expire', 'lease.deadline', 'lease.lapse', 'leaseExpired'] as const;

/** A deadline for people: the node's monotonic ms, rounded, or what an infinite one means. */
export function deadlineText(t: number): string {
  return t === Infinity ? 'none (quorum alone)' : t === -Infinity ? 'none (no quorum)' : String(Math.round(t));
}

// ------------------------------------------------------------------------------------------
// Actors

/** A Lease actor's 'lease.stop': it takes nothing more and its timer is cleared. */
function stopped<S extends { stopped: boolean; timer?: TimerHandle }>(s: S, clock: Clock): S {
  s.stopped = true;
  clock.clearTimer(s.timer);
  return s;
}

interface PeerState { core: LeaseCore; timer?: TimerHandle; timerAt: number; stopped: boolean }

export interface PeerLeaseOptions {
  peer: number;
  times: Pick<LeaseTimes, 'deadAfterMs' | 'fenceAfterMs'>;
  clock: Clock;
  /** The peer's lease expired: tell the membership (sends leaseExpired to its actor). */
  onExpired(ctx: { system: ActorSystem }, msg: LeaseExpiredMsg): void;
}

export function peerLeaseDef(o: PeerLeaseOptions): ActorDef<PeerState, PeerLeaseMsg> {
  const arm = (s: PeerState, self: Ref<PeerLeaseMsg>, sys: ActorSystem) => {
    const at = s.core.expiresAt;
    if (s.stopped || at === s.timerAt || !Number.isFinite(at)) return;
    o.clock.clearTimer(s.timer);
    s.timerAt = at;
    s.timer = o.clock.setTimer(() => sys.send(self, { type: 'lease.expire', peer: o.peer, expires: at }), Math.max(0, at - o.clock.now()));
  };
  return {
    init: () => ({ core: new LeaseCore(o.peer, o.times), timerAt: NaN, stopped: false }),
    handle(s, msg, ctx) {
      if (s.stopped && msg.type !== 'lease.status') return s; // a stopped lease still answers status (its last state)
      switch (msg.type) {
        case 'lease.renewed': {
          const r = s.core.renewed(msg.at, msg.inc);
          if (r.restarted) ctx.log.info({ peer: o.peer, ...r.restarted }, `node ${o.peer} restarted: a new incarnation, its lease starts again`);
          arm(s, ctx.self, ctx.system);
          return s;
        }
        case 'lease.acked':
          if (msg.inc === s.core.inc || s.core.inc === undefined) s.core.acked(msg.sentAt, msg.member);
          return s;
        case 'lease.expire':
          s.timerAt = NaN;
          if (s.core.expire(o.clock.now())) o.onExpired(ctx, { type: 'leaseExpired', peer: o.peer, expires: s.core.expiresAt });
          else arm(s, ctx.self, ctx.system); // renewed meanwhile: the new expiry
          return s;
        case 'lease.status':
          ctx.system.reply(msg.replyTo, s.core.snapshot());
          return s;
        case 'lease.stop':
          return stopped(s, o.clock);
      }
    },
    onCrash: () => 'resume',
  };
}

interface OwnState { core: OwnLeaseCore; timer?: TimerHandle; stopped: boolean }

export function ownLeaseDef(o: { clock: Clock }): ActorDef<OwnState, OwnLeaseMsg> {
  return {
    init: () => ({ core: new OwnLeaseCore(), stopped: false }),
    handle(s, msg, ctx) {
      if (s.stopped && msg.type !== 'lease.status') return s;
      switch (msg.type) {
        case 'lease.deadline':
          if (!s.core.deadline(msg.until)) return s;
          o.clock.clearTimer(s.timer);
          s.timer = undefined;
          if (Number.isFinite(msg.until)) {
            const until = msg.until;
            s.timer = o.clock.setTimer(() => ctx.system.send(ctx.self, { type: 'lease.lapse', node: msg.node, until }), Math.max(0, until - o.clock.now()));
          }
          return s;
        case 'lease.lapse':
          // Only recorded: the fence itself is canGrant() at the call and the router's timer.
          if (msg.until === s.core.until && s.core.lapse(o.clock.now())) ctx.log.debug(`own lease lapsed at ${deadlineText(msg.until)}`);
          return s;
        case 'lease.status':
          ctx.system.reply(msg.replyTo, { until: s.core.until, lapsed: s.core.lapsed, ...s.core.counts });
          return s;
        case 'lease.stop':
          return stopped(s, o.clock);
      }
    },
    onCrash: () => 'resume',
  };
}

/** The node's Lease actors: one per peer and its own. */
export interface Leases {
  peers: Map<number, Ref<PeerLeaseMsg>>;
  own: Ref<OwnLeaseMsg>;
  times: Pick<LeaseTimes, 'deadAfterMs' | 'fenceAfterMs'>;
}

export function spawnLeases(system: ActorSystem, o: { selfId: number; peers: readonly number[]; times: LeaseTimes; clock: Clock; onExpired(ctx: { system: ActorSystem }, msg: LeaseExpiredMsg): void }): Leases {
  const peers = new Map<number, Ref<PeerLeaseMsg>>();
  for (const peer of o.peers) {
    peers.set(peer, system.spawn(undefined, 'lease', peerLeaseDef({ peer, times: o.times, clock: o.clock, onExpired: o.onExpired }), { peer }));
  }
  const own = system.spawn(undefined, 'lease', ownLeaseDef({ clock: o.clock }), { peer: 'self' });
  return { peers, own, times: o.times };
}

/** The Lease actors' state for status, metrics and `mxfsctl leases`: times relative to now, ms (null: never / not finite). */
export interface LeaseStatus {
  /** This node's self-fence deadline: in how long it passes (null: none), and why there is none. */
  self: { deadlineInMs: number | null; state: 'valid' | 'lapsed' | 'no quorum' | 'alone'; moves: number; lapses: number };
  peers: Array<{
    peer: number; inc: string | null; lastHeardAgoMs: number | null; lastGapMs: number | null; expiresInMs: number | null;
    vouchesForMs: number | null; expired: boolean; renewals: number; expiries: number; restarts: number;
  }>;
}

/** Asks every Lease actor of the node for its state. */
export async function leaseStatus(system: ActorSystem, leases: Leases, now: () => number, timeoutMs: number): Promise<LeaseStatus> {
  const rel = (t: number | undefined, sign: 1 | -1) => (t === undefined || !Number.isFinite(t) ? null : Math.round(sign * (t - now())));
  const own = await system.ask<OwnLeaseMsg, OwnLeaseSnapshot>(leases.own, (replyTo) => ({ type: 'lease.status', replyTo }), timeoutMs);
  const peers = await Promise.all([...leases.peers.values()].map((ref) => system.ask<PeerLeaseMsg, PeerLeaseSnapshot>(ref, (replyTo) => ({ type: 'lease.status', replyTo }), timeoutMs)));
  return {
    self: {
      deadlineInMs: rel(own.until, 1), moves: own.moves, lapses: own.lapses,
      state: own.until === Infinity ? 'alone' : own.until === -Infinity ? 'no quorum' : own.lapsed ? 'lapsed' : 'valid',
    },
    peers: peers.map((p) => ({
      peer: p.peer, inc: p.inc === undefined ? null : p.inc.toString(16), lastHeardAgoMs: rel(p.lastHeard, -1),
      lastGapMs: p.lastGap === undefined ? null : Math.round(p.lastGap), expiresInMs: rel(p.expiresAt, 1), vouchesForMs: rel(p.vouchesUntil, 1),
      expired: p.expired, renewals: p.renewals, expiries: p.expiries, restarts: p.restarts,
    })),
  };
}
