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
import type { ActorTracer, FrameTracer, TraceRecorder } from '../trace/recorder';

// Three fixes to nact 7.6.2 (unmaintained since 2022, pinned), applied to its Actor class once
// at load. Loading fails loudly if nact's internals are not what they expect.
// eslint-disable-next-line @typescript-eslint/no-var-requires
type NactPatch = 'createContext' | 'stop' | 'handleMessage';
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
 * 3. nact gives every message its own setImmediate (handleMessage) and runs the handler as an
 * async function. So every hop between two actors cost a whole turn of the event loop (a
 * poll for I/O, the timers, ~4.5 µs here) plus a microtask, and a client's lock request
 * crosses four actors (session, lockspace, resource, session): four turns per request, a
 * third of the daemon's CPU per lock+unlock pair (docs/benchmarks.md, "One scheduler for
 * every actor"). Here handleMessage hands the actor to the typed layer's scheduler (below),
 * shared with the leaf actors, and a handler that returns a plain state (not a Promise)
 * commits it at once. Semantics kept: one message at a time per actor, in order; a stopped
 * actor's pending message is dropped (nact cleared its Immediate); a throw goes to nact's
 * handleFault; an async handler holds the mailbox until it settles. nact also kept that
 * Immediate (and with it the last message) after it ran: no Immediate, no such pin.
 */
interface NactActorInternals {
  stopped: boolean;
  busy: boolean;
  state: unknown;
  f: (this: unknown, state: unknown, msg: unknown, ctx: unknown) => unknown;
  createContext(sender: unknown): unknown;
  afterMessage(): void;
  processNext(): void;
  handleFault(msg: unknown, sender: unknown, err: unknown): void;
  mxfsMsg?: unknown;
  mxfsSender?: unknown;
  mxfsCtx?: { sender: unknown };
  runOne(): void;
}
patchNact('handleMessage', /this\.immediate = setImmediate\(async/, () => function handleMessage(this: NactActorInternals, message: unknown, sender: unknown) {
  this.busy = true;
  this.mxfsMsg = message;
  this.mxfsSender = sender;
  makeRunnable(this);
});
nactActor!.runOne = function runOne(this: NactActorInternals): void {
  const message = this.mxfsMsg, sender = this.mxfsSender;
  this.mxfsMsg = this.mxfsSender = undefined;
  if (this.stopped) return;
  let next: unknown;
  try {
    // One context per actor, its sender set per message: nact built a new one for every
    // message (parent, path, self, name and log never change).
    const ctx = (this.mxfsCtx ??= this.createContext(sender) as { sender: unknown });
    ctx.sender = sender;
    next = this.f.call(ctx, this.state, message, ctx);
  } catch (e) {
    this.handleFault(message, sender, e);
    return;
  }
  if (next instanceof Promise) {
    next.then((state) => { this.state = state; this.afterMessage(); this.processNext(); }, (e) => this.handleFault(message, sender, e));
  } else {
    this.state = next;
    this.afterMessage();
    this.processNext();
  }
};

/**
 * The child maps of an actor that never has children (a lock resource): nact gives every
 * actor two Maps for them, which were a tenth of a held lock's memory. Reading works; a
 * spawn under such an actor fails loudly instead of sharing children with every other one.
 */
const NO_CHILDREN = new EmptyMap<string, unknown>('this actor was spawned as a leaf: it cannot have children');

// eslint-disable-next-line @typescript-eslint/no-var-requires
const nactSystems = require('nact/lib/system-map') as { find(system: string, ref?: unknown): { children?: Map<string, { stop(): void }>; childReferences?: Map<string, unknown> } | undefined };
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { TemporaryReference } = require('nact/lib/references') as { TemporaryReference: new (systemName: string) => { id: number } };

/** What askLeaf() needs of nact's system object: its temporary references answer reply(). */
interface NactSystem {
  name: string;
  addTempReference(ref: unknown, deferral: { resolve(v: unknown): void }): void;
  removeTempReference(ref: unknown): void;
}

const isPatched = (method: NactPatch) => (nactActor?.[method] as { mxfsPatched?: boolean } | undefined)?.mxfsPatched === true;

/** True once both nact patches above are in place (tests). */
export function nactPatched(): boolean { return isPatched('createContext') && isPatched('stop') && isPatched('handleMessage'); }

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
  /**
   * A leaf spawned without log fields asks here when it first logs (a resource per held lock
   * keeps no log-fields object of its own: bench/heap-per-lock.ts).
   */
  logFields?(): Record<string, unknown>;
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
  /**
   * What records this system's messages (docs/tracing.md): the node's TraceRecorder, or in the
   * cluster worker thread a WorkerTracer forwarding them to it; undefined when tracing is off.
   */
  tracer?: ActorTracer;
  /** The node's trace recorder, when it is on this thread (the lock engine's). */
  get recorder(): TraceRecorder | undefined { return this.tracer?.recorder; }
  /**
   * Where the peer links of this system record their frames: the recorder itself, or in the
   * cluster worker thread its WorkerTracer.
   */
  private frameTracer?: FrameTracer;
  get frames(): FrameTracer | undefined { return this.frameTracer ?? this.recorder; }
  set frames(t: FrameTracer | undefined) { this.frameTracer = t; }

  constructor(readonly log: Logger, name?: string) {
    this.root = name ? nact.start({ name } as never) : nact.start();
  }

  addTap(tap: MessageTap): () => void {
    this.taps.push(tap);
    return () => { this.taps = this.taps.filter((t) => t !== tap); };
  }

  spawn<S, M extends AnyMsg>(
    parent: Ref<any> | undefined, kind: string, def: ActorDef<S, M>, fields?: Record<string, unknown>,
  ): Ref<M> {
    const seq = ++this.seq;
    const system = this;
    if (parent instanceof LeafActor) throw new Error(`spawn ${kind}-${seq}: ${parent.name} was spawned as a leaf: it cannot have children`);
    if (def.leaf && parent !== undefined) {
      const host = nactSystems.find((parent as unknown as { system: { name: string } }).system.name, parent);
      if (!host?.children) throw new Error(`spawn ${kind}-${seq}: its parent has stopped`);
      // While tracing, its name is kept: every send to it looks its label up by name.
      const name = this.tracer ? `${kind}-${seq}` : undefined;
      const path = name !== undefined ? this.tracer!.named(name, kind, fields ?? def.logFields?.() ?? {}) : undefined;
      const label = name !== undefined ? this.tracer!.label(name) : undefined;
      const extra = path !== undefined || fields !== undefined ? { name, path, label, logFields: fields, childLog: undefined } : undefined;
      return new LeafActor<S, M>(siteOf(this, host as LeafHost, kind), seq, def, extra) as unknown as Ref<M>;
    }
    const name = `${kind}-${seq}`;
    const path = this.tracer?.named(name, kind, fields ?? def.logFields?.() ?? {}) ?? name;
    const logFields = fields ?? def.logFields?.() ?? {};
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
      (state: S, msg: M, nctx: nact.ActorContext<M, any>): S | Promise<S> => {
        const ctx = mkCtx(nctx.self);
        current = state;
        const t = system.tracer;
        let r: S | Promise<S>;
        if (t === undefined) r = def.handle(state, msg, ctx);
        else {
          // What this handler sends synchronously joins the trace of the message it handles.
          // The event that sent it came as nact's `sender` (ActorSystem.send).
          const cur = t.cur, actor = t.curActor, sent = (nctx as { sender?: unknown }).sender;
          t.enter(msg, path, typeof sent === 'number' ? sent : 0);
          try { r = def.handle(state, msg, ctx); } finally { t.cur = cur; t.curActor = actor; }
        }
        if (r instanceof Promise) return r.then((next) => (current = next));
        current = r;
        return r;
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
    if (this.tracer !== undefined) {
      const actor = concreteActor(self);
      if (actor !== undefined) actor[TRACE_LABEL] = this.tracer.label(name);
    }
    return self;
  }

  /**
   * While tracing, the event recording the send travels beside the message to its handler
   * (tracer.enter): in a leaf's mailbox, or as nact's `sender` (which no handler here reads),
   * so the message object is left as it is (a property added to it costs an allocation).
   */
  send<M extends AnyMsg>(to: Ref<M>, msg: M): void {
    const t = this.tracer;
    if (to instanceof LeafActor) {
      const sent = t === undefined ? 0 : t.onSend(to.name, msg, 'send', to.traceLabel);
      for (const tap of this.taps) tap(to as Ref<unknown>, msg, 'send');
      to.dispatch(msg, sent);
      return;
    }
    const actor = concreteActor(to);
    const sent = t === undefined ? 0 : t.onSend(refName(to), msg, 'send', actor?.[TRACE_LABEL]);
    for (const tap of this.taps) tap(to as Ref<unknown>, msg, 'send');
    if (actor === undefined) nact.dispatch(to, msg); // a temporary reference, the system
    else if (!actor.stopped) actor.dispatch(msg, sent === 0 ? NOBODY : sent);
  }

  /** Ask an actor and wait for its reply; rejects with QueryTimeout after timeoutMs. */
  async ask<M extends AnyMsg, R>(to: Ref<M>, make: (replyTo: Ref<R>) => M, timeoutMs: number): Promise<R> {
    if (to instanceof LeafActor) return this.askLeaf(to as LeafActor<unknown, M>, make, timeoutMs);
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

  /** ask() of a leaf actor: nact's own query cannot find it; the reply comes the same way. */
  private askLeaf<M extends AnyMsg, R>(to: LeafActor<unknown, M>, make: (replyTo: Ref<R>) => M, timeoutMs: number): Promise<R> {
    if (to.stopped) return Promise.reject(new Error('Actor stopped or never existed. Query can never resolve'));
    const sys = nactSystems.find((this.root as unknown as { system: { name: string } }).system.name) as unknown as NactSystem;
    return new Promise<R>((resolve, reject) => {
      const tmp = new TemporaryReference(sys.name);
      const timer = setTimeout(() => { sys.removeTempReference(tmp); reject(new QueryTimeout(to.name, msg.type, timeoutMs)); }, timeoutMs);
      sys.addTempReference(tmp, { resolve: (v: R) => { clearTimeout(timer); sys.removeTempReference(tmp); resolve(v); } });
      const msg = make(tmp as Ref<R>);
      this.tracer?.onSend(to.name, msg, 'ask');
      for (const tap of this.taps) tap(to as unknown as Ref<unknown>, msg, 'ask');
      to.dispatch(msg);
    });
  }

  stopActor(ref: Ref<any>): void {
    if (ref instanceof LeafActor) ref.stop();
    else nact.stop(ref);
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

/**
 * The nact actor behind a reference, remembered: nact.dispatch() walks the reference's path
 * from the system root on every message (and allocates a sender object). A stopped actor
 * stays stopped and names are never reused (kind-N), so a remembered actor that has stopped
 * drops the message exactly as nact's lookup, which no longer finds it, would.
 */
const concreteActors = new WeakMap<object, ConcreteActor>();
/**
 * While tracing, a nact actor's trace label (ActorTracer.label), kept on nact's actor object
 * so that a send hands it to the tracer instead of the tracer looking it up by name.
 */
const TRACE_LABEL: unique symbol = Symbol('mxfs.traceLabel');
interface ConcreteActor { stopped: boolean; dispatch(msg: unknown, sender: unknown): void; [TRACE_LABEL]?: unknown }
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { Nobody } = require('nact/lib/references') as { Nobody: new () => unknown };
const NOBODY = new Nobody();
function concreteActor(ref: Ref<unknown>): ConcreteActor | undefined {
  const r = ref as unknown as { type?: string; system?: { name: string } };
  if (r.type !== 'actor') return undefined;
  let a = concreteActors.get(r);
  if (a === undefined) {
    a = nactSystems.find(r.system!.name, r) as typeof a;
    if (a === undefined) return { stopped: true, dispatch() {} };
    concreteActors.set(r, a);
  }
  return a;
}

export function refName(ref: Ref<unknown>): string {
  if (ref instanceof LeafActor) return ref.name;
  return (ref as unknown as { name?: string }).name ?? String((ref as unknown as { path?: unknown }).path ?? '?');
}

// ---- leaf actors -----------------------------------------------------------------------

/**
 * The nact actor a leaf is spawned under: its child map, and how a child leaves it. A leaf is
 * in `children` only (what stop() stops), under its number, not in `childReferences` (nact's
 * lookup by name, which nothing does for a leaf): one map entry and no name string per leaf.
 */
interface LeafHost {
  children: Map<string | number, unknown>;
  childStopped(child: { name: string | number }): void;
}

/** What the leaves of one kind spawned under one host share: one object, not three fields each. */
interface LeafSite { readonly system: ActorSystem; readonly host: LeafHost; readonly kind: string }

const leafSites = new WeakMap<LeafHost, LeafSite[]>();

function siteOf(system: ActorSystem, host: LeafHost, kind: string): LeafSite {
  let list = leafSites.get(host);
  if (list === undefined) leafSites.set(host, list = []);
  let site = list.find((x) => x.kind === kind && x.system === system);
  if (site === undefined) list.push(site = { system, host, kind });
  return site;
}

/** The rarely used part of a leaf: its name and path in traces, and its log fields and logger. */
interface LeafExtra { name: string | undefined; path: string | undefined; label?: unknown; logFields: Record<string, unknown> | undefined; childLog: Logger | undefined }

/**
 * The scheduler every actor runs on (nact's through the handleMessage patch above, leaves
 * directly): an actor with a message to handle is queued once; a round takes one message of
 * each queued actor, in the order they were queued, so one actor's flood never delays the
 * others by more than a message each.
 *
 * Rounds run from one setImmediate. What a round's handlers send is handled by the next
 * round in the SAME turn, up to ROUNDS_PER_TURN rounds and as long as fewer than
 * MESSAGES_PER_TURN messages were handled, then the rest waits for the next turn (after
 * I/O and timers). A lock request (session -> lockspace -> resource -> session) is answered
 * in the turn its bytes arrived instead of four turns later. The first round of a turn is
 * whatever was queued, as when nact ran every message queued before the check phase; only
 * the extra rounds are bounded. The bounds are counts, not time: the whole-cluster
 * simulation must replay the same interleaving for the same seed.
 */
export const ROUNDS_PER_TURN = 6;
export const MESSAGES_PER_TURN = 2000;

interface Runnable { runOne(): void }
let runnable: Runnable[] = [];
let turnScheduled = false;
/** Turns and rounds run so far (tests: that rounds chain within a turn). */
export const schedulerStats = { turns: 0, rounds: 0, messages: 0 };

function runTurn(): void {
  turnScheduled = false;
  schedulerStats.turns++;
  let handled = 0;
  for (let r = 0; r < ROUNDS_PER_TURN && runnable.length > 0 && (r === 0 || handled < MESSAGES_PER_TURN); r++) {
    const round = runnable;
    runnable = [];
    schedulerStats.rounds++;
    for (let i = 0; i < round.length; i++) round[i]!.runOne();
    handled += round.length;
  }
  schedulerStats.messages += handled;
  if (runnable.length > 0 && !turnScheduled) { turnScheduled = true; setImmediate(runTurn); }
}

function makeRunnable(a: Runnable): void {
  runnable.push(a);
  if (!turnScheduled) { turnScheduled = true; setImmediate(runTurn); }
}

/**
 * An actor that never has children (ActorDef.leaf: a lock resource, one per held lock),
 * without nact: the same semantics for mxfsd — a FIFO mailbox, one message at a time (an
 * async handler holds the mailbox until it settles), the same supervision decisions, stopped
 * by its parent's stop (it sits in the nact parent's child map), afterStop once, sends to a
 * stopped actor dropped and asks rejected — in one object that is also its own reference and
 * its handlers' context. A nact actor with its reference, path, mailbox queue, contexts and
 * the wrapper's closures cost ~1.9 KB; this costs a few hundred bytes (docs/benchmarks.md).
 */
class LeafActor<S, M extends AnyMsg> implements ActorCtx<M> {
  /** Read by code that treats any ref like nact's (refName, systemMap lookups find nothing). */
  get type(): 'leaf' { return 'leaf'; }
  stopped = false;
  private state: S;
  private busy = false;
  /** Messages in order; a traced leaf's each followed by its trace event (dispatch). */
  private mailbox: Array<M | number> | undefined = undefined;
  private head = 0;

  constructor(
    private readonly site: LeafSite, private readonly seq: number, private readonly def: ActorDef<S, M>,
    /**
     * Its name and its path in traces (only while tracing: otherwise the name is made when
     * asked for), the log fields it was spawned with (absent: asked of def.logFields()), its
     * logger once made.
     */
    private extra: LeafExtra | undefined,
  ) {
    site.host.children.set(seq, this);
    this.state = undefined as S;
    try { this.state = def.init(this); } catch (err) {
      this.log.error({ err }, 'actor init failed; stopping actor');
      this.stop();
    }
  }

  get self(): Ref<M> { return this as unknown as Ref<M>; }
  get system(): ActorSystem { return this.site.system; }
  /** kind-number, unique in the system, like a nact actor's (made when asked: most never are). */
  get name(): string { return this.extra?.name ?? `${this.site.kind}-${this.seq}`; }
  /** Its trace label (ActorTracer.label), when it was spawned while tracing. */
  get traceLabel(): unknown { return this.extra?.label; }
  get log(): Logger {
    const x = (this.extra ??= { name: undefined, path: undefined, label: undefined, logFields: undefined, childLog: undefined });
    return (x.childLog ??= this.system.log.child({ actor: this.site.kind, ...(x.logFields ?? this.def.logFields?.()) }));
  }

  /**
   * `sent`: the trace event of this send (0: none). A leaf spawned while tracing (it has a
   * path) keeps it in its mailbox right after the message; any other leaf keeps none.
   */
  dispatch(msg: M, sent = 0): void {
    if (this.stopped) return;
    const traced = this.extra?.path !== undefined;
    if (this.mailbox === undefined) this.mailbox = traced ? [msg, sent] : [msg];
    else if (traced) this.mailbox.push(msg, sent);
    else this.mailbox.push(msg);
    if (!this.busy) { this.busy = true; makeRunnable(this); }
  }

  /** One message, from runTurn(). */
  runOne(): void {
    const box = this.mailbox;
    if (this.stopped || box === undefined) { this.busy = false; return; }
    const msg = box[this.head++] as M;
    const sent = this.extra?.path !== undefined ? box[this.head++] as number : 0;
    if (this.head === box.length) { this.mailbox = undefined; this.head = 0; }
    else if (this.head >= 1024 && this.head * 2 >= box.length) { box.splice(0, this.head); this.head = 0; }
    let r: S | Promise<S>;
    const t = this.system.tracer;
    try {
      if (t === undefined) r = this.def.handle(this.state, msg, this);
      else {
        const cur = t.cur, actor = t.curActor;
        t.enter(msg, this.extra?.path ?? this.name, sent);
        try { r = this.def.handle(this.state, msg, this); } finally { t.cur = cur; t.curActor = actor; }
      }
    } catch (err) {
      this.crashed(err, msg);
      return;
    }
    if (r instanceof Promise) {
      r.then((next) => { this.state = next; this.next(); }, (err) => this.crashed(err, msg));
    } else {
      this.state = r;
      this.next();
    }
  }

  private next(): void {
    if (!this.stopped && this.mailbox !== undefined) makeRunnable(this);
    else this.busy = false;
  }

  private crashed(err: unknown, msg: M): void {
    this.system.crashes++;
    let decision: CrashDecision = 'restart';
    try {
      decision = this.def.onCrash ? this.def.onCrash(err, msg, this.state, this) : 'restart';
    } catch (e) {
      this.log.error({ err: e }, 'onCrash handler threw; stopping actor');
      decision = 'stop';
    }
    this.log.error({ err, msgType: msg.type, decision }, 'actor crashed');
    if (decision === 'stop') { this.stop(); return; }
    if (decision === 'restart') {
      try { this.state = this.def.init(this); } catch (e) {
        this.log.error({ err: e }, 'actor init failed on restart; stopping actor');
        this.stop();
        return;
      }
    }
    this.next();
  }

  /** Stops at once: what is in the mailbox is dropped; afterStop runs on a later turn. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.mailbox = undefined;
    this.site.host.childStopped({ name: this.seq });
    const state = this.state;
    setImmediate(() => {
      this.system.tracer?.forget(this.name);
      this.def.afterStop?.(state, this);
      this.state = undefined as S; // a ref kept by someone does not keep the state
    });
  }
}
