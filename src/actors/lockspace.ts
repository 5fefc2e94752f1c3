/**
 * Lockspace actor: one per named lockspace; the parent of its LockResource actors.
 *
 * Owns: the map resource name -> LockResource ref, and the lockspace's token floor (the
 * highest fencing token of any resource it evicted or lost), so a resource recreated after
 * eviction resumes its tokens above every token it ever issued.
 * Takes: 'route' (forward a ResourceMsg, spawning the resource on first use), 'idle' and
 * 'crashed' from its resources, 'sweep' (its eviction timer), 'list' (inspection).
 * Sends: ResourceMsg to resources.
 *
 * Eviction is race-free because every message to a resource is routed through here: the
 * lockspace counts what it forwarded, a resource reports idle with how many it processed,
 * and a resource is stopped only when both agree and it has stayed idle for idleEvictMs.
 * Idle resources wait in a queue ordered by when they went idle, so a sweep looks only at
 * the ones due (not at every resource), and stops at most SLICE.stop of them per turn: a
 * lockspace of 100 000 resources that all went idle at once cost one 381 ms turn before.
 *
 * Reset (cluster recovery, a standalone start): the LockTable moves to a new generation. From
 * that moment every lockspace and resource actor of the old generation is inert — it handles
 * nothing, grants nothing, tells nobody anything (inspection gets an empty answer) — and the
 * old actors are then stopped a slice at a time in the background. Stopping 100 000 nact
 * actors in one go kept the event loop for seconds (docs/benchmarks.md); being inert is what
 * safety needs, and it is immediate: no old resource can grant after the records are taken.
 */
import type { ActorDef, ActorSystem, Ref } from './actor';
import type { AdoptedResource, LockStats, LockspaceMsg, ResourceMsg } from './messages';
import { LockspaceEntry, ResourceEnv, spawnLockResource } from './lock-resource';
import type { Clock, TimerHandle } from '../util/clock';
import { SLICE } from '../util/slices';
import { MUTATION } from '../util/mutation';

export interface LockspaceOpts {
  name: string;
  lvbSize: number;
  idleEvictMs: number;
  clock: Clock;
  stats: LockStats;
  faultInjection: boolean;
  /** Lowest token of this lockspace's resources (cluster: epoch * 2^32). */
  tokenBase?: number;
  /** No token reaches this (cluster: (epoch + 1) * 2^32). */
  tokenCeiling?: number;
  /** False once the LockTable was reset past this lockspace's generation: the actor is inert. */
  live?: () => boolean;
  /** Whether this node holds its cluster lease now (see lock-resource.ts; absent: always). */
  leaseHeld?: () => boolean;
}

/** What the lockspace keeps of a resource: in the resource's own object (lock-resource.ts). */
type Entry = LockspaceEntry;

interface State {
  resources: Map<string, Entry>;
  /** The idle entries, oldest idleSince first (a Map keeps insertion order). */
  idle: Map<string, Entry>;
  tokenFloor: number;
  sweepTimer?: TimerHandle;
}

export function lockspaceDef(o: LockspaceOpts): ActorDef<State, LockspaceMsg> {
  /** A sweep when the oldest idle entry is due (at once: more were due than one turn stops). */
  const scheduleSweep = (s: State, self: Ref<LockspaceMsg>, sys: ActorSystem, now: number) => {
    if (s.sweepTimer) return;
    const oldest = s.idle.values().next().value as Entry | undefined;
    if (!oldest) return;
    const due = Math.max(0, oldest.idleSince! + o.idleEvictMs - now);
    s.sweepTimer = o.clock.setTimer(() => { s.sweepTimer = undefined; sys.send(self, { type: 'sweep' }); }, due);
  };

  /** What its resources share (made with the first, when this actor's ref is known). */
  let env: ResourceEnv | undefined;

  return {
    init: () => ({ resources: new Map(), idle: new Map(), tokenFloor: o.tokenBase ?? 0 }),

    handle(s, msg, ctx) {
      const sys = ctx.system;
      if (o.live && !o.live()) {
        if (msg.type === 'list') sys.reply(msg.replyTo, { entries: [], total: 0, idle: 0 });
        return s;
      }
      const spawnResource = (name: string, adopt?: LockspaceMsg & { type: 'adopt' }) => {
        env ??= {
          lockspace: o.name, lvbSize: o.lvbSize, tokenCeiling: o.tokenCeiling, parent: ctx.self, clock: o.clock,
          stats: o.stats, faultInjection: o.faultInjection, live: o.live, leaseHeld: o.leaseHeld,
        };
        const e = spawnLockResource(sys, env, name, s.tokenFloor, adopt?.adopt);
        s.resources.set(name, e);
        o.stats.resources++;
        return e;
      };
      switch (msg.type) {
        case 'adopt': {
          if (s.resources.has(msg.resource)) { ctx.log.error({ resource: msg.resource }, 'adopt of a resource that exists; ignored'); break; }
          spawnResource(msg.resource, msg);
          break;
        }
        case 'route': {
          const e = s.resources.get(msg.resource) ?? spawnResource(msg.resource);
          e.forwarded++;
          if (e.idleSince !== undefined) { e.idleSince = undefined; s.idle.delete(msg.resource); }
          sys.send(e.ref, msg.msg);
          break;
        }
        case 'idle': {
          const e = s.resources.get(msg.resource);
          if (e && e.forwarded === msg.processed) {
            const now = o.clock.now();
            // Only an entry with idleSince is in the idle queue: a resource that was busy (the
            // usual case) is not looked up in it, a map as large as the idle resources.
            if (e.idleSince !== undefined) s.idle.delete(msg.resource); // to the back of the queue
            e.idleSince = now;
            e.idleTokens = msg.tokenCounter;
            s.idle.set(msg.resource, e);
            scheduleSweep(s, ctx.self, sys, now);
          }
          break;
        }
        case 'crashed': {
          const e = s.resources.get(msg.resource);
          if (e) {
            s.resources.delete(msg.resource);
            s.idle.delete(msg.resource);
            o.stats.resources--;
            // Never reuse a token the failed resource may have issued.
            s.tokenFloor = Math.max(s.tokenFloor, msg.tokenCounter, e.idleTokens ?? s.tokenFloor);
          }
          break;
        }
        case 'sweep': {
          const now = o.clock.now();
          let budget: number = SLICE.stop;
          for (const [name, e] of s.idle) {
            if (budget === 0 || now - e.idleSince! < o.idleEvictMs) break;
            budget--;
            s.tokenFloor = Math.max(s.tokenFloor, e.idleTokens!);
            s.idle.delete(name);
            s.resources.delete(name);
            sys.stopActor(e.ref);
            o.stats.resources--;
            o.stats.evictions++;
          }
          scheduleSweep(s, ctx.self, sys, now);
          break;
        }
        case 'list': {
          // Bounded: an inspection of a lockspace with 100 000 resources must not copy them all.
          const entries: Array<{ name: string; ref: Ref<ResourceMsg> }> = [];
          let idle = 0;
          if (msg.resource !== undefined) {
            const e = s.resources.get(msg.resource);
            if (e) entries.push({ name: msg.resource, ref: e.ref });
          } else {
            const limit = msg.limit ?? Infinity;
            for (const [name, e] of s.resources) {
              if (msg.busyOnly && e.idleSince !== undefined) { idle++; continue; }
              if (entries.length < limit) entries.push({ name, ref: e.ref });
            }
          }
          sys.reply(msg.replyTo, { entries, total: s.resources.size, idle });
          break;
        }
      }
      return s;
    },

    // A router's state is a map; a bug in one message must not lose it.
    onCrash: () => 'resume',
  };
}

/** Owns the lockspace actors of this daemon, created on first use. */
export class LockTable {
  private spaces = new Map<string, Ref<LockspaceMsg>>();
  private tokenBase = 0;
  private tokenCeiling?: number;
  /** Bumped by reset(): actors of an older generation are inert. */
  private generation = 0;
  /** Old actors still being stopped in the background (see reset). */
  private retiring = 0;

  constructor(
    private readonly sys: ActorSystem,
    private readonly opts: Omit<LockspaceOpts, 'name'>,
  ) {}

  /**
   * Drop every lockspace and resource at once (cluster recovery): from this call on none of
   * their actors handles anything, so none can grant anything afterwards, whatever is in
   * their mailboxes; the actors themselves are stopped in the background, a slice per turn.
   * New resources count tokens from tokenBase.
   */
  reset(tokenBase: number, tokenCeiling?: number): void {
    const old = [...this.spaces.values()];
    if (!MUTATION.keepResourcesAtReset) {
      this.generation++;
      void this.retire(old);
    }
    this.spaces.clear();
    this.tokenBase = Math.max(this.tokenBase, tokenBase);
    this.tokenCeiling = tokenCeiling;
    this.opts.stats.resources = 0;
    this.opts.stats.locks = 0;
    this.opts.stats.queued = 0;
  }

  adopt(lockspace: string, resource: string, adopt: AdoptedResource): void {
    this.sys.send(this.lockspace(lockspace), { type: 'adopt', resource, adopt });
  }

  get stats(): LockStats { return this.opts.stats; }

  /** Lockspace actors of reset generations not yet stopped (status). */
  get retiringLockspaces(): number { return this.retiring; }

  private async retire(refs: Array<Ref<LockspaceMsg>>): Promise<void> {
    this.retiring += refs.length;
    for (const ref of refs) {
      await this.sys.stopGradually(ref, SLICE.stop);
      this.retiring--;
    }
  }

  lockspace(name: string): Ref<LockspaceMsg> {
    let ref = this.spaces.get(name);
    if (!ref) {
      const gen = this.generation;
      const live = () => this.generation === gen;
      ref = this.sys.spawn(undefined, 'lockspace', lockspaceDef({ ...this.opts, name, tokenBase: this.tokenBase, tokenCeiling: this.tokenCeiling, live }), { lockspace: name });
      this.spaces.set(name, ref);
    }
    return ref;
  }

  lockspaceNames(): string[] { return [...this.spaces.keys()].sort(); }

  route(lockspace: string, resource: string, msg: ResourceMsg): void {
    this.sys.send(this.lockspace(lockspace), { type: 'route', resource, msg });
  }
}
