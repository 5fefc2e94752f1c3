/**
 * The typed actor layer over nact that every mxfsd actor uses.
 *
 * - An actor's messages are one discriminated union (`{ type: ... }`); its behaviour is an
 *   ActorDef: init() builds the state, handle() processes one message at a time.
 * - All sends and queries go through ActorSystem.send/ask: the one place that observes every
 *   message (the message taps; with [trace] on, the TraceRecorder, which also sets the causal
 *   context around every handler: src/trace/recorder.ts), and ask() always has a timeout.
 * - Supervision: when handle() throws, the actor's onCrash decides: 'restart' (state rebuilt
 *   by init(); the default), 'resume' (keep the state), or 'stop'. A crash is logged and is
 *   never escalated to the system root, so no actor can take the daemon down.
 */
import * as nact from 'nact';
import type Logger from 'bunyan';
import { yieldTurn } from '../util/slices';
import { EmptyMap } from '../util/empty-map';
import type { FrameTracer, TraceRecorder } from '../trace/recorder';

// Three fixes to nact 7.6.2 (unmaintained since 2022, pinned), applied to its Actor class once
// at load. Loading fails loudly if nact's internals are not what they expect.
// eslint-disable-next-line @typescript-eslint/no-var-requires
type NactPatch = 'createContext' | 'stop' | 'afterMessage';
const nactActor = (require('nact/lib/actor') as { Actor?: { prototype: Record<string, unknown> } }).Actor?.prototype;

function patchNact(method: NactPatch, shape: RegExp, replacement: (original: Function) => Function): void {
  const original = nactActor?.[method];
  if (typeof original !== 'function' || !shape.test(String(original))) {
    throw new Error(`nact internals changed: Actor.prototype.${method} is not the one src/actors/actor.ts patches (see the comment there)`);
  }
  nactActor![method] = Object.assign(replacement(original), { mxfsPatched: true });
}

/**
 * 1. nact builds a context object for every message it delivers, holding a COPY of the
 * actor's child map: `new Map(childReferences)`. A lockspace actor has one child per active
 * resource, so every lock operation cost O(resources): measured 170 µs -> 8564 µs per
 * lock+unlock pair with 20 000 resources active, and a recovery of 20 000 locks blocked the
 * event loop for seconds (leases lapsed, quorum flapped). Here `children` becomes a getter
 * that copies only when read. mxfsd never reads it; nact reads it only when spreading a
 * context on a crash or a stop (one copy each, as before).
 */
patchNact('createContext', /new Map\(this\.childReferences\)/, () => function createContext(this: { parent?: { reference: unknown }; path: unknown; reference: unknown; name: string; childReferences: Map<string, unknown>; log: unknown }, sender: unknown) {
  const actor = this;
  return {
    parent: actor.parent ? actor.parent.reference : undefined,
    path: actor.path,
    self: actor.reference,
    name: actor.name,
    get children() { return new Map(actor.childReferences); },
    sender,
    log: actor.log,
  };
});

/**
 * 2. nact does not stop an actor's children when the actor stops: Actor.stop() hands each
 * child (a concrete actor) to the reference-based stop(), whose lookup needs a reference's
 * `type` and finds nothing. The children stay alive and process what is in their mailboxes.
 * mxfsd relies on stopping a lockspace to stop its resource actors at once (cluster recovery,
 * self-fencing): a resource left running could grant from an old epoch after the records
 * were collected — a double grant, found by the whole-cluster simulation
 * (test/cluster-sim.test.ts). Here stop() first stops every child, depth first, directly.
 */
patchNact('stop', /forEach\(stop\)/, (original) => function stopWithChildren(this: { children: Map<string, { stop(): void }> }) {
  for (const child of [...this.children.values()]) child.stop(); // each removes itself from this.children
  original.call(this);
});

/**
 * 3. nact keeps the Immediate of the last message an actor handled (`this.immediate`, for
 * stop() to cancel one that has not run yet) after it ran, and with it the closure holding
 * that message and its sender: every idle actor pinned its last message. With an actor per
 * held lock that was three Immediates and three Buffers per lock (a heap snapshot,
 * docs/benchmarks.md). afterMessage() — empty in nact, called once a handler's next state is
 * in place and before the next message is taken — lets go of it.
 */
patchNact('afterMessage', /^afterMessage\s*\(\)\s*\{\s*\}$/, () => function afterMessage(this: { immediate?: unknown }) {
  this.immediate = undefined;
});

/**
 * The child maps of an actor that never has children (a lock resource): nact gives every
 * actor two Maps for them, which were a tenth of a held lock's memory. Reading works; a
 * spawn under such an actor fails loudly instead of sharing children with every other one.
 */
const NO_CHILDREN = new EmptyMap<string, unknown>('this actor was spawned as a leaf: it cannot have children');

// eslint-disable-next-line @typescript-eslint/no-var-requires
const nactSystems = require('nact/lib/system-map') as { find(system: string, ref: unknown): { children?: Map<string, { stop(): void }>; childReferences?: Map<string, unknown> } | undefined };

const isPatched = (method: NactPatch) => (nactActor?.[method] as { mxfsPatched?: boolean } | undefined)?.mxfsPatched === true;

/** True once both nact patches above are in place (tests). */
export function nactPatched(): boolean { return isPatched('createContext') && isPatched('stop') && isPatched('afterMessage'); }

/** True once the nact context patch above is in place (tests). */
export function nactContextIsLazy(): boolean { return isPatched('createContext'); }

export type Ref<M> = nact.Ref<M>;
export type AnyMsg = { readonly type: string };

export type CrashDecision = 'restart' | 'resume' | 'stop';

export interface ActorCtx<M> {
  self: Ref<M>;
  name: string;
  log: Logger;
  system: ActorSystem;
}

export interface ActorDef<S, M extends AnyMsg> {
  /** Builds the initial state; called again on 'restart'. */
  init(ctx: ActorCtx<M>): S;
  handle(state: S, msg: M, ctx: ActorCtx<M>): S | Promise<S>;
  /** Decide what happens after handle() threw. `state` is the last state the actor had. */
  onCrash?(err: unknown, msg: M, state: S, ctx: ActorCtx<M>): CrashDecision;
  /** Called once after the actor stopped (not after a restart). */
  afterStop?(state: S, ctx: ActorCtx<M>): void;
  /** The actor never spawns children: nact's two child maps are not allocated for it. */
  leaf?: boolean;
}

/** Observes every message sent through the system (the trace facility hooks in here). */
export type MessageTap = (to: Ref<unknown>, msg: AnyMsg, kind: 'send' | 'ask') => void;

export class QueryTimeout extends Error {
  constructor(readonly target: string, readonly msgType: string, readonly ms: number) {
    super(`query '${msgType}' to ${target} timed out after ${ms} ms`);
    this.name = 'QueryTimeout';
  }
}

export class ActorSystem {
  readonly root: nact.ActorSystemRef;
  private seq = 0;
  private taps: MessageTap[] = [];
  crashes = 0;
  /** The node's trace recorder (docs/tracing.md); undefined when tracing is off. */
  tracer?: TraceRecorder;
  /**
   * Where the peer links of this system record their frames: the recorder itself, or in the
   * cluster worker thread (which has no recorder) a FrameTap forwarding them to it.
   */
  private frameTracer?: FrameTracer;
  get frames(): FrameTracer | undefined { return this.frameTracer ?? this.tracer; }
  set frames(t: FrameTracer | undefined) { this.frameTracer = t; }

  constructor(readonly log: Logger, name?: string) {
    this.root = name ? nact.start({ name } as never) : nact.start();
  }

  addTap(tap: MessageTap): () => void {
    this.taps.push(tap);
    return () => { this.taps = this.taps.filter((t) => t !== tap); };
  }

  spawn<S, M extends AnyMsg>(
    parent: Ref<any> | undefined, kind: string, def: ActorDef<S, M>, logFields: Record<string, unknown> = {},
  ): Ref<M> {
    const name = `${kind}-${++this.seq}`;
    const system = this;
    const path = this.tracer?.named(name, kind, logFields) ?? name;
    // The child logger is made when first used: most actors (a resource per held lock) never log.
    let childLog: Logger | undefined;
    const logOf = () => (childLog ??= system.log.child({ actor: kind, ...logFields }));
    let ctxCache: ActorCtx<M> | undefined;
    const mkCtx = (self: Ref<M>): ActorCtx<M> => (ctxCache ??= { self, name, get log() { return logOf(); }, system });
    // The state the actor had when the message that crashed arrived (nact keeps the last
    // committed state, but our handlers may mutate in place: hand it to onCrash as it is).
    let current: S | undefined;
    let self: Ref<M> | undefined;
    const onCrash = (msg: M | undefined, err: Error | undefined, sctx: nact.SupervisionContext<M, any>) => {
      system.crashes++;
      const ctx = mkCtx(sctx.self as Ref<M>);
      let decision: CrashDecision = 'restart';
      try {
        decision = def.onCrash && msg !== undefined ? def.onCrash(err, msg, current as S, ctx) : 'restart';
      } catch (e) {
        logOf().error({ err: e }, 'onCrash handler threw; stopping actor');
        decision = 'stop';
      }
      logOf().error({ err, msgType: msg?.type, decision }, 'actor crashed');
      if (decision === 'resume') return sctx.resume;
      if (decision === 'stop') return sctx.stop;
      return sctx.reset;
    };
    self = nact.spawn(
      (parent ?? this.root) as any,
      async (state: S, msg: M, nctx: nact.ActorContext<M, any>) => {
        const ctx = mkCtx(nctx.self);
        current = state;
        const t = system.tracer;
        let r: S | Promise<S>;
        if (t === undefined) r = def.handle(state, msg, ctx);
        else {
          // What this handler sends synchronously joins the trace of the message it handles.
          const cur = t.cur, actor = t.curActor;
          t.enter(msg, path);
          try { r = def.handle(state, msg, ctx); } finally { t.cur = cur; t.curActor = actor; }
        }
        const next = await r;
        current = next;
        return next;
      },
      name,
      {
        initialStateFunc: (nctx: nact.ActorContext<M, any>) => (current = def.init(mkCtx(nctx.self))),
        onCrash: onCrash as any,
        afterStop: (state: S) => { system.tracer?.forget(name); def.afterStop?.(state, mkCtx(self!)); },
      },
    ) as Ref<M>;
    if (def.leaf) {
      const actor = nactSystems.find((self as unknown as { system: { name: string } }).system.name, self);
      if (actor) { actor.children = NO_CHILDREN as never; actor.childReferences = NO_CHILDREN; }
    }
    return self;
  }

  send<M extends AnyMsg>(to: Ref<M>, msg: M): void {
    this.tracer?.onSend(refName(to), msg, 'send');
    for (const tap of this.taps) tap(to as Ref<unknown>, msg, 'send');
    nact.dispatch(to, msg);
  }

  /** Ask an actor and wait for its reply; rejects with QueryTimeout after timeoutMs. */
  async ask<M extends AnyMsg, R>(to: Ref<M>, make: (replyTo: Ref<R>) => M, timeoutMs: number): Promise<R> {
    let type = '?';
    try {
      return await nact.query(to, (tmp: Ref<R>) => {
        const msg = make(tmp);
        type = msg.type;
        this.tracer?.onSend(refName(to), msg, 'ask');
        for (const tap of this.taps) tap(to as Ref<unknown>, msg, 'ask');
        return msg;
      }, timeoutMs) as R;
    } catch (e) {
      if (e instanceof Error && e.message === 'Query Timeout') throw new QueryTimeout(refName(to), type, timeoutMs);
      throw e;
    }
  }

  /** Reply to an ask: replyTo is the temporary reference the asker passed in. */
  reply<R>(replyTo: Ref<R>, value: R): void {
    nact.dispatch(replyTo, value);
  }

  stopActor(ref: Ref<any>): void {
    nact.stop(ref);
  }

  /**
   * Stop an actor with many children without keeping the event loop: its children are
   * stopped perSlice at a time (each with its own children), one slice per turn, then the
   * actor itself. The caller makes the actors inert first: they run until stopped.
   */
  async stopGradually(ref: Ref<any>, perSlice: number): Promise<void> {
    const sysName = (ref as unknown as { system: { name: string } }).system.name;
    for (;;) {
      const children = nactSystems.find(sysName, ref)?.children;
      if (!children || children.size === 0) break;
      const batch: Array<{ stop(): void }> = [];
      for (const c of children.values()) { batch.push(c); if (batch.length >= perSlice) break; }
      for (const c of batch) c.stop(); // each removes itself from `children`
      await yieldTurn();
    }
    nact.stop(ref);
  }

  shutdown(): void {
    nact.stop(this.root);
  }
}

export function refName(ref: Ref<unknown>): string {
  return (ref as unknown as { name?: string }).name ?? String((ref as unknown as { path?: unknown }).path ?? '?');
}
