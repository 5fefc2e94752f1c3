/**
 * LockResource actor: one per active lock resource (lockspace + name).
 *
 * Owns: the resource's lock state (it is a ResourceCore: queues, LVB, fencing-token counter), the wait-timeout
 * timers of its pending requests, and the notify ref of every lock's owner with its grant time
 * (carried by the core's lock itself: its tag and since, src/dlm/resource.ts).
 * Takes: ResourceMsg (request/convert/unlock/cancel/purge routed by its Lockspace; its own
 * timeout timers; inspect).
 * Sends: LockEvent to owners; 'idle' to its Lockspace when it holds nothing (eviction),
 * 'crashed' when a fault stopped it.
 * Crash policy: stop, after telling every owner that its lock on this resource is lost,
 * so no holder goes on believing in a lock nobody tracks any more.
 *
 * No lease, no change: a message that could grant (anything but inspection) is handled only
 * while the node holds its cluster lease (leaseHeld, checked at that moment); otherwise it is
 * parked, with every later one, and handled in order once the lease is back (a recovery makes
 * the actor inert instead, see lockspace.ts). With the cluster layer in its own thread the
 * lease can lapse while the lock engine runs on; a waiter granted by an unlock or a timeout
 * then would be a double grant (the whole-cluster simulation's 'stall' fault).
 */
import type { ActorCtx, ActorDef, ActorSystem, CrashDecision, Ref } from './actor';
import type { AdoptedResource, LockEvent, LockOp, LockStats, LockspaceMsg, ResourceInspection, ResourceMsg } from './messages';
import type { Mode } from '../dlm/modes';
import { OwnerId, ResourceCore, ResourceEvent, UNSTAMPED } from '../dlm/resource';
import { LockError } from '../dlm/types';
import { systemClock, type Clock, type TimerHandle } from '../util/clock';
import { EmptyMap } from '../util/empty-map';

/**
 * What every resource of a lockspace shares: one object per lockspace that its resources
 * point to (a copy per resource was ~280 B of a held lock, bench/heap-per-lock.ts).
 */
export interface ResourceEnv {
  lockspace: string;
  lvbSize: number;
  tokenCeiling?: number;
  parent: Ref<LockspaceMsg>;
  clock: Clock;
  stats: LockStats;
  faultInjection: boolean;
  /** False once the lock table was reset past this resource's generation: inert (see lockspace.ts). */
  live?: () => boolean;
  /** Whether this node holds its cluster lease now (absent: always; see the header). */
  leaseHeld?: () => boolean;
}

/**
 * Grant times are kept on the core's lock (its `since`) as whole ms after T0, this module's
 * start on the system clock: a small integer stored in the lock itself for the daemon's first
 * 12 days (2^30 ms), where the clock's fractional ms were a 12-byte heap number per held lock
 * (bench/heap-per-lock.ts). Later (or under a simulated clock far from T0) the value is a
 * heap number again, and just as exact. Inspection only (`sinceMs`, whole ms anyway).
 */
const T0 = Math.floor(systemClock.now());
const grantStamp = (now: number): number => { const v = Math.floor(now) - T0; return (v | 0) === v ? v | 0 : v; };
const grantTime = (stamp: number): number => stamp + T0;

/** How often a resource with parked messages looks at the lease again. */
const UNPARK_MS = 50;

/**
 * The per-lock maps most resources never use (wait timers, queue times, BASTs: only under
 * contention or with timeouts) start as this one shared empty map and get their own on the
 * first write (own()): three fewer Maps per held lock. A write that bypassed own() would
 * share state between resources, so this map refuses writes.
 */
const UNUSED = new EmptyMap<string, never>('lock-resource: a write to a per-lock map that was never made its own (use own())');
type LazyMap = 'timers' | 'queuedAt' | 'basts';

/** The parked messages of a resource that has none: one shared frozen array (park() replaces it). */
const NONE_PARKED: ResourceMsg[] = Object.freeze([]) as unknown as ResourceMsg[];

/** The part of a resource's state that most never use (LockResource.rare). */
interface Rare {
  /** The wait-timeout timer of each pending lock that has one. */
  timers: Map<string, TimerHandle>;
  /** When each pending lock queued (clock ms): `mxfsctl why`, metrics. */
  queuedAt: Map<string, number>;
  /** The last BAST sent to each holder since its grant. */
  basts: Map<string, { mode: Mode; at: number }>;
  /** Set when rebuilt from records (cluster recovery). */
  rebuilt: { at: number; records: number; tokenFloor: number } | undefined;
  /** Messages waiting for the lease to come back (see the header), in arrival order. */
  parked: ResourceMsg[];
  parkTimer: TimerHandle | undefined;
}

/**
 * What a lockspace keeps about one of its resources (lockspace.ts), in the resource's own
 * object: a separate entry object per resource was ~56 B of every held lock
 * (bench/heap-per-lock.ts). These fields are the lockspace's: the resource actor never reads
 * or writes them (the eviction's race-freedom rests on the two counts being kept apart:
 * `forwarded` by the lockspace, `processed` by the resource).
 */
export interface LockspaceEntry {
  /** The resource actor. */
  ref: Ref<ResourceMsg>;
  /** Messages the lockspace routed to it. */
  forwarded: number;
  /** Set by an idle report that matched `forwarded`; cleared by the next routed message. */
  idleSince: number | undefined;
  /**
   * The resource's token counter at its last idle report (absent before: the lockspace's
   * token floor then, which only rises, covers it). Absent, not a copy of the floor: a token
   * is a double above 2^32, a 16-byte box per resource.
   */
  idleTokens: number | undefined;
}

/** The actor's state: the resource itself (see LockResource). */
type State = LockResource;

const OPS: ReadonlySet<string> = new Set<LockOp>(['request', 'convert', 'unlock', 'cancel']);

/**
 * One resource: its behaviour and its state in one object. A class, not a closure per helper:
 * its methods live once on the prototype; and init() returns the object itself as the actor's
 * state, so a held lock costs this one object here instead of a definition, an options copy,
 * a state and a log-fields object (bench/heap-per-lock.ts). Never restarted (onCrash stops
 * it), so init() runs once.
 */
class LockResource extends ResourceCore implements ActorDef<State, ResourceMsg>, LockspaceEntry {
  /** Routed messages processed, so the Lockspace can tell an idle report is current. */
  processed = 0;
  // The lockspace's bookkeeping (LockspaceEntry): written and read by the lockspace only.
  ref: Ref<ResourceMsg> = undefined as unknown as Ref<ResourceMsg>;
  forwarded = 0;
  idleSince: number | undefined = undefined;
  idleTokens: number | undefined = undefined;
  /** What only contention, timeouts, a recovery or a lapsed lease need: made on first use. */
  private x: Rare | undefined = undefined;

  private get rare(): Rare {
    return (this.x ??= { timers: UNUSED, queuedAt: UNUSED, basts: UNUSED, rebuilt: undefined, parked: NONE_PARKED, parkTimer: undefined });
  }

  get timers(): Map<string, TimerHandle> { return this.x?.timers ?? UNUSED; }
  get queuedAt(): Map<string, number> { return this.x?.queuedAt ?? UNUSED; }
  get basts(): Map<string, { mode: Mode; at: number }> { return this.x?.basts ?? UNUSED; }
  get rebuilt(): Rare['rebuilt'] { return this.x?.rebuilt; }
  set rebuilt(v: Rare['rebuilt']) { this.rare.rebuilt = v; }
  get parked(): ResourceMsg[] { return this.x?.parked ?? NONE_PARKED; }
  set parked(v: ResourceMsg[]) { this.rare.parked = v; }
  get parkTimer(): TimerHandle | undefined { return this.x?.parkTimer; }
  set parkTimer(v: TimerHandle | undefined) { if (v !== undefined || this.x !== undefined) this.rare.parkTimer = v; }

  constructor(protected readonly o: ResourceEnv, readonly name: string, tokenFloor: number) {
    super(o.lvbSize, tokenFloor, o.tokenCeiling);
  }

  /** The resource's lock state: the object itself (one object per resource, not two: bench/heap-per-lock.ts). */
  get core(): ResourceCore { return this; }

  get leaf(): boolean { return true; }

  logFields(): Record<string, unknown> { return { lockspace: this.o.lockspace, resource: this.name }; }

  /** The resource's own map for `k`, made on first use (see UNUSED). */
  private own<K extends LazyMap>(s: State, k: K): Rare[K] {
    const x = s.rare;
    if (x[k] === UNUSED) x[k] = new Map() as Rare[K];
    return x[k];
  }

  private clearTimer(s: State, lockId: string) {
    const t = s.timers.get(lockId);
    if (t) { this.o.clock.clearTimer(t); s.timers.delete(lockId); }
  }

  /** When each lock got where it is, the last BAST, and the counters (why, metrics). */
  private note(s: State, e: ResourceEvent) {
    switch (e.type) {
      case 'queued': this.own(s, 'queuedAt').set(e.lockId, this.o.clock.now()); this.o.stats.waits++; break;
      case 'granted': {
        const now = this.o.clock.now();
        if (s.queuedAt.size > 0) {
          const q = s.queuedAt.get(e.lockId);
          if (q !== undefined) { s.queuedAt.delete(e.lockId); this.o.stats.observeWait?.(now - q, e.conversion); }
        }
        s.core.stamp(e.lockId, grantStamp(now));
        if (s.basts.size > 0) s.basts.delete(e.lockId);
        if (e.conversion) this.o.stats.conversions++;
        break;
      }
      case 'failed':
        if (s.queuedAt.size > 0) s.queuedAt.delete(e.lockId);
        if (e.code === 'NOTQUEUED') this.o.stats.denials++;
        else if (e.code === 'DEADLOCK') this.o.stats.deadlocks++;
        else if (e.code === 'TIMEOUT') this.o.stats.timeouts++;
        break;
      case 'bast': this.own(s, 'basts').set(e.lockId, { mode: e.mode, at: this.o.clock.now() }); break;
      case 'released': this.forgetLock(s, e.lockId); break;
    }
  }

  private forgetLock(s: State, lockId: string) {
    if (s.queuedAt.size > 0) s.queuedAt.delete(lockId);
    if (s.basts.size > 0) s.basts.delete(lockId);
  }

  private inspection(s: State): ResourceInspection {
    const now = this.o.clock.now();
    const sinceMs: Record<string, number> = {};
    for (const [id, , stamp] of s.core.tagged()) if (stamp !== UNSTAMPED) sinceMs[id] = Math.round(now - grantTime(stamp));
    for (const [id, t] of s.queuedAt) sinceMs[id] = Math.round(now - t); // a conversion: since it queued
    const basts: ResourceInspection['basts'] = {};
    for (const [id, b] of s.basts) basts[id] = { mode: b.mode, agoMs: Math.round(now - b.at) };
    const v: ResourceInspection = { ...s.core.view(), sinceMs, basts };
    if (s.rebuilt) v.rebuilt = { agoMs: Math.round(now - s.rebuilt.at), records: s.rebuilt.records, tokenFloor: s.rebuilt.tokenFloor };
    return v;
  }

  /**
   * Sends the events to their owners. `last`: the owner of an unlock, whose events go after
   * everyone else's. Under contention an unlock's events are its own reply and the next
   * waiter's grant (and BAST): the grant is what the next handoff waits for, so it reaches its
   * session, and its connection's write, first. Each owner's own
   * events keep their order (an owner is one session; a remote owner's events, which share
   * the RemoteOwner ref as their tag, are told apart by owner the same way).
   */
  private deliver(s: State, events: ResourceEvent[], sys: ActorSystem, last?: OwnerId) {
    if (last === undefined || events.length < 2) {
      for (const e of events) this.deliverOne(s, e, sys);
      return;
    }
    for (const e of events) if (e.owner !== last) this.deliverOne(s, e, sys);
    for (const e of events) if (e.owner === last) this.deliverOne(s, e, sys);
  }

  private deliverOne(s: State, e: ResourceEvent, sys: ActorSystem) {
    const to = e.tag as Ref<LockEvent> | undefined;
    this.note(s, e);
    if (e.type === 'granted' || e.type === 'failed' || e.type === 'released') this.clearTimer(s, e.lockId);
    if (to) {
      switch (e.type) {
        case 'granted': this.o.stats.grants++; sys.send(to, { type: 'lock.granted', lockId: e.lockId, conversion: e.conversion, grant: e.grant }); break;
        case 'failed': sys.send(to, { type: 'lock.failed', lockId: e.lockId, conversion: e.conversion, code: e.code }); break;
        case 'queued': sys.send(to, { type: 'lock.queued', lockId: e.lockId, conversion: e.conversion }); break;
        case 'bast': this.o.stats.basts++; sys.send(to, { type: 'lock.bast', lockId: e.lockId, mode: e.mode }); break;
        case 'released': sys.send(to, { type: 'lock.released', lockId: e.lockId }); break;
      }
    }
  }

  init(): State { return this; }

  handle(s: State, msg: ResourceMsg, ctx: ActorCtx<ResourceMsg>): State {
    const sys = ctx.system;
    if (this.o.live && !this.o.live()) {
      if (msg.type === 'inspect') sys.reply(msg.replyTo, { ...new ResourceCore(0, 0).view(), sinceMs: {}, basts: {} });
      return s;
    }
    if (msg.type === 'inspect') { sys.reply(msg.replyTo, this.inspection(s)); return s; }
    const leased = !this.o.leaseHeld || this.o.leaseHeld();
    if (msg.type === 'unpark') {
      s.parkTimer = undefined;
      if (!leased) { this.park(s, ctx); return s; }
      const waiting = s.parked;
      s.parked = NONE_PARKED;
      for (const m of waiting) this.handleOne(s, m, ctx);
      return s;
    }
    if (!leased || s.parked.length > 0) {
      if (s.parked === NONE_PARKED) s.parked = [msg];
      else s.parked.push(msg);
      this.park(s, ctx);
      return s;
    }
    this.handleOne(s, msg, ctx);
    return s;
  }

  onCrash(_err: unknown, _msg: ResourceMsg, s: State, ctx: ActorCtx<ResourceMsg>): CrashDecision {
    this.o.stats.resourceCrashes++;
    for (const [lockId, to] of s.core.tagged()) {
      if (to) ctx.system.send(to as Ref<LockEvent>, { type: 'lock.lost', lockId, reason: `resource ${this.o.lockspace}/${this.name} failed` });
    }
    for (const t of s.timers.values()) this.o.clock.clearTimer(t);
    this.o.clock.clearTimer(s.parkTimer);
    this.o.stats.locks -= s.core.size;
    this.o.stats.queued -= s.queuedAt.size;
    ctx.system.send(this.o.parent, { type: 'crashed', resource: this.name, tokenCounter: s.core.tokenCounter });
    return 'stop';
  }

  /** Look at the lease again in UNPARK_MS (one timer while messages are parked). */
  private park(s: State, ctx: ActorCtx<ResourceMsg>): void {
    if (s.parkTimer) return;
    const self = ctx.self, sys = ctx.system;
    s.parkTimer = this.o.clock.setTimer(() => sys.send(self, { type: 'unpark' }), UNPARK_MS);
  }

  /** One lock operation, its timeout or a purge (the lease is held). */
  private handleOne(s: State, msg: ResourceMsg, ctx: ActorCtx<ResourceMsg>): void {
    const sys = ctx.system;
    if (msg.type === 'inspect' || msg.type === 'unpark') return;
    if (msg.type !== 'timeout') s.processed++;
    this.o.stats.ops++;
    const before = s.core.size;
    const queuedBefore = s.queuedAt.size;
    let events: ResourceEvent[] = [];
    let last: OwnerId | undefined;
    try {
      switch (msg.type) {
        case 'request':
          if (s.core.has(msg.lockId)) throw new LockError('INVALID', `lock id ${msg.lockId} already in use`);
          events = s.core.request(msg.lockId, msg.owner, msg.mode, { noqueue: msg.noqueue }, msg.notify);
          break;
        case 'convert': events = s.core.convert(msg.lockId, msg.mode, { noqueue: msg.noqueue, lvb: msg.lvb }); break;
        case 'unlock': last = s.core.ownerOf(msg.lockId); events = s.core.unlock(msg.lockId, msg.lvb); break;
        case 'cancel': events = s.core.cancel(msg.lockId); break;
        case 'timeout': s.timers.delete(msg.lockId); events = s.core.expire(msg.lockId); break;
        case 'purge':
          events = s.core.purgeOwner(msg.owner);
          // What the actor kept about the purged locks (no events come for them).
          for (const id of [...s.timers.keys()]) if (!s.core.has(id)) this.clearTimer(s, id);
          for (const id of [...s.queuedAt.keys(), ...s.basts.keys()]) if (!s.core.has(id)) this.forgetLock(s, id);
          break;
        case 'fault':
          if (this.o.faultInjection) throw new Error('injected fault');
          break;
      }
      if ((msg.type === 'request' || msg.type === 'convert') && msg.timeoutMs !== undefined &&
          events.some((e) => e.type === 'queued' && e.lockId === msg.lockId)) {
        const self = ctx.self, lockId = msg.lockId;
        this.own(s, 'timers').set(lockId, this.o.clock.setTimer(() => sys.send(self, { type: 'timeout', lockId }), msg.timeoutMs));
      }
    } catch (e) {
      if (!(e instanceof LockError)) throw e;
      const lockId = 'lockId' in msg ? msg.lockId : '';
      const to = msg.type === 'request' ? msg.notify : s.core.tagOf(lockId) as Ref<LockEvent> | undefined;
      if (to && OPS.has(msg.type)) sys.send(to, { type: 'lock.opError', lockId, op: msg.type as LockOp, code: e.code, message: e.message });
    }
    this.deliver(s, events, sys, last);
    this.o.stats.locks += s.core.size - before;
    this.o.stats.queued += s.queuedAt.size - queuedBefore;
    if (s.core.isIdle() && s.timers.size === 0 && s.parked.length === 0) {
      sys.send(this.o.parent, { type: 'idle', resource: this.name, processed: s.processed, tokenCounter: s.core.tokenCounter });
    }
  }
}

/** A resource rebuilt from its holders' records (cluster recovery), with the records until init(). */
class RebuiltLockResource extends LockResource {
  constructor(o: ResourceEnv, name: string, private readonly tokenFloor: number, private adopt: AdoptedResource | undefined) {
    super(o, name, tokenFloor);
  }

  override init(): State {
    const a = this.adopt;
    if (!a) return this;
    this.adopt = undefined; // the records are in the core now
    const records = a.records.map((r) => ({ lockId: r.lockId, owner: r.owner, grMode: r.grMode, token: r.token, tag: r.notify }));
    this.load(Math.max(this.tokenFloor, a.tokenFloor), records, a.lvb);
    const core = this.core;
    this.o.stats.locks += core.size;
    const now = this.o.clock.now();
    for (const r of a.records) core.stamp(r.lockId, grantStamp(now));
    this.rebuilt = { at: now, records: a.records.length, tokenFloor: core.tokenCounter };
    return this;
  }
}

/**
 * A resource actor under its lockspace; what the lockspace keeps about it is in the same
 * object (LockspaceEntry). Its log fields are made when first needed (its log, a trace
 * name): most resources never log.
 */
export function spawnLockResource(sys: ActorSystem, env: ResourceEnv, name: string, tokenFloor: number, adopt?: AdoptedResource): LockspaceEntry {
  const r = adopt ? new RebuiltLockResource(env, name, tokenFloor, adopt) : new LockResource(env, name, tokenFloor);
  r.ref = sys.spawn(env.parent, 'resource', r, sys.tracer ? r.logFields() : undefined);
  return r;
}
