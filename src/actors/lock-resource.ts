/**
 * LockResource actor: one per active lock resource (lockspace + name).
 *
 * Owns: the resource's ResourceCore (queues, LVB, fencing-token counter), the wait-timeout
 * timers of its pending requests, and the notify ref of every lock's owner (with its grant time).
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
import { ResourceCore, ResourceEvent } from '../dlm/resource';
import { LockError } from '../dlm/types';
import type { Clock, TimerHandle } from '../util/clock';
import { EmptyMap } from '../util/empty-map';

export interface LockResourceOpts {
  lockspace: string;
  name: string;
  lvbSize: number;
  tokenFloor: number;
  tokenCeiling?: number;
  parent: Ref<LockspaceMsg>;
  clock: Clock;
  stats: LockStats;
  faultInjection: boolean;
  /** Start from the holders' records instead of empty (cluster recovery). */
  adopt?: AdoptedResource;
  /** False once the lock table was reset past this resource's generation: inert (see lockspace.ts). */
  live?: () => boolean;
  /** Whether this node holds its cluster lease now (absent: always; see the header). */
  leaseHeld?: () => boolean;
}

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

/** What the actor keeps per lock: where its events go, and since when it is held (-1: not held). */
interface Owner { readonly notify: Ref<LockEvent>; grantedAt: number }

interface State {
  core: ResourceCore;
  /** Every lock the core has (and one whose last events are being delivered), by lock id. */
  owners: Map<string, Owner>;
  timers: Map<string, TimerHandle>;
  /** Routed messages processed, so the Lockspace can tell an idle report is current. */
  processed: number;
  /** When each pending lock queued (clock ms): `mxfsctl why`, metrics. */
  queuedAt: Map<string, number>;
  /** The last BAST sent to each holder since its grant. */
  basts: Map<string, { mode: Mode; at: number }>;
  /** Set when rebuilt from records (cluster recovery). */
  rebuilt?: { at: number; records: number; tokenFloor: number };
  /** Messages waiting for the lease to come back (see the header), in arrival order. */
  parked: ResourceMsg[];
  parkTimer?: TimerHandle;
}

/** Every field listed at once: one object shape, its properties in the object itself. */
function newState(core: ResourceCore, owners: Map<string, Owner>, rebuilt: State['rebuilt']): State {
  return { core, owners, timers: UNUSED, processed: 0, queuedAt: UNUSED, basts: UNUSED, rebuilt, parked: [], parkTimer: undefined };
}

const OPS: ReadonlySet<string> = new Set<LockOp>(['request', 'convert', 'unlock', 'cancel']);

/**
 * One resource's behaviour. A class, not a closure per helper: its methods live once on the
 * prototype, so an actor per held lock costs one small object here instead of a dozen
 * closures and their contexts (bench/heap-per-lock.ts).
 */
class LockResourceDef implements ActorDef<State, ResourceMsg> {
  readonly leaf = true;
  constructor(private readonly o: LockResourceOpts) {}

  /** The resource's own map for `k`, made on first use (see UNUSED). */
  private own<K extends LazyMap>(s: State, k: K): State[K] {
    if (s[k] === UNUSED) s[k] = new Map() as State[K];
    return s[k];
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
        const o = s.owners.get(e.lockId);
        if (o) o.grantedAt = now;
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
    const o = s.owners.get(lockId);
    if (o) o.grantedAt = -1;
    if (s.basts.size > 0) s.basts.delete(lockId);
  }

  private inspection(s: State): ResourceInspection {
    const now = this.o.clock.now();
    const sinceMs: Record<string, number> = {};
    for (const [id, o] of s.owners) if (o.grantedAt >= 0) sinceMs[id] = Math.round(now - o.grantedAt);
    for (const [id, t] of s.queuedAt) sinceMs[id] = Math.round(now - t); // a conversion: since it queued
    const basts: ResourceInspection['basts'] = {};
    for (const [id, b] of s.basts) basts[id] = { mode: b.mode, agoMs: Math.round(now - b.at) };
    const v: ResourceInspection = { ...s.core.view(), sinceMs, basts };
    if (s.rebuilt) v.rebuilt = { agoMs: Math.round(now - s.rebuilt.at), records: s.rebuilt.records, tokenFloor: s.rebuilt.tokenFloor };
    return v;
  }

  private deliver(s: State, events: ResourceEvent[], sys: ActorSystem) {
    for (const e of events) {
      const to = s.owners.get(e.lockId)?.notify;
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
      if (!s.core.has(e.lockId)) s.owners.delete(e.lockId);
    }
  }

  init(): State {
    if (!this.o.adopt) return newState(new ResourceCore(this.o.lvbSize, this.o.tokenFloor, this.o.tokenCeiling), new Map(), undefined);
    const a = this.o.adopt;
    const core = ResourceCore.rebuild(this.o.lvbSize, Math.max(this.o.tokenFloor, a.tokenFloor), a.records, a.lvb, this.o.tokenCeiling);
    this.o.stats.locks += core.size;
    const now = this.o.clock.now();
    const owners = new Map(a.records.map((r) => [r.lockId, { notify: r.notify, grantedAt: now }]));
    return newState(core, owners, { at: now, records: a.records.length, tokenFloor: core.tokenCounter });
  }

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
      s.parked = [];
      for (const m of waiting) this.handleOne(s, m, ctx);
      return s;
    }
    if (!leased || s.parked.length > 0) {
      s.parked.push(msg);
      this.park(s, ctx);
      return s;
    }
    this.handleOne(s, msg, ctx);
    return s;
  }

  onCrash(_err: unknown, _msg: ResourceMsg, s: State, ctx: ActorCtx<ResourceMsg>): CrashDecision {
    this.o.stats.resourceCrashes++;
    for (const [lockId, { notify: to }] of s.owners) {
      ctx.system.send(to, { type: 'lock.lost', lockId, reason: `resource ${this.o.lockspace}/${this.o.name} failed` });
    }
    for (const t of s.timers.values()) this.o.clock.clearTimer(t);
    this.o.clock.clearTimer(s.parkTimer);
    this.o.stats.locks -= s.core.size;
    this.o.stats.queued -= s.queuedAt.size;
    ctx.system.send(this.o.parent, { type: 'crashed', resource: this.o.name, tokenCounter: s.core.tokenCounter });
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
    const before = s.core.size;
    const queuedBefore = s.queuedAt.size;
    let events: ResourceEvent[] = [];
    try {
      switch (msg.type) {
        case 'request':
          if (s.core.has(msg.lockId)) throw new LockError('INVALID', `lock id ${msg.lockId} already in use`);
          events = s.core.request(msg.lockId, msg.owner, msg.mode, { noqueue: msg.noqueue });
          if (s.core.has(msg.lockId) || events.length > 0) s.owners.set(msg.lockId, { notify: msg.notify, grantedAt: -1 });
          break;
        case 'convert': events = s.core.convert(msg.lockId, msg.mode, { noqueue: msg.noqueue, lvb: msg.lvb }); break;
        case 'unlock': events = s.core.unlock(msg.lockId, msg.lvb); break;
        case 'cancel': events = s.core.cancel(msg.lockId); break;
        case 'timeout': s.timers.delete(msg.lockId); events = s.core.expire(msg.lockId); break;
        case 'purge':
          events = s.core.purgeOwner(msg.owner);
          for (const id of [...s.owners.keys()]) if (!s.core.has(id)) { this.clearTimer(s, id); this.forgetLock(s, id); s.owners.delete(id); }
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
      const to = msg.type === 'request' ? msg.notify : s.owners.get(lockId)?.notify;
      if (to && OPS.has(msg.type)) sys.send(to, { type: 'lock.opError', lockId, op: msg.type as LockOp, code: e.code, message: e.message });
    }
    this.deliver(s, events, sys);
    this.o.stats.locks += s.core.size - before;
    this.o.stats.queued += s.queuedAt.size - queuedBefore;
    if (s.core.isIdle() && s.timers.size === 0 && s.parked.length === 0) {
      sys.send(this.o.parent, { type: 'idle', resource: this.o.name, processed: s.processed, tokenCounter: s.core.tokenCounter });
    }
  }
}

export function spawnLockResource(sys: ActorSystem, parent: Ref<any>, o: LockResourceOpts): Ref<ResourceMsg> {
  return sys.spawn(parent, 'resource', new LockResourceDef(o), { lockspace: o.lockspace, resource: o.name });
}
