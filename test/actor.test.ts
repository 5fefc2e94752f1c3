/** The typed actor layer: supervision policies, ask timeouts, message taps. */
import { expect } from 'chai';
import * as nact from 'nact';
import { ActorDef, ActorSystem, nactContextIsLazy, nactPatched, QueryTimeout, Ref, ROUNDS_PER_TURN } from '../src/actors/actor';
import { quietLogger, sleep } from './support/daemon-proc';

type Msg = { type: 'add'; n: number } | { type: 'boom' } | { type: 'get'; replyTo: Ref<number> } | { type: 'ignore' };

function counter(policy: 'restart' | 'resume' | 'stop', inits: { n: number }): ActorDef<{ total: number }, Msg> {
  return {
    init: () => { inits.n++; return { total: 100 }; },
    handle(s, m, ctx) {
      switch (m.type) {
        case 'add': s.total += m.n; break;
        case 'boom': throw new Error('boom');
        case 'get': ctx.system.reply(m.replyTo, s.total); break;
        case 'ignore': break;
      }
      return s;
    },
    onCrash: () => policy,
  };
}

type FifoMsg = { type: 'work'; n: number; wait?: number } | { type: 'get'; replyTo: Ref<number[]> };

/** An actor whose async handler sleeps now and then: records the most handlers running at once. */
function asyncFifo(leaf: boolean, seen: { running: number; max: number }): ActorDef<number[], FifoMsg> {
  return {
    leaf,
    init: () => [],
    async handle(s, m, ctx) {
      if (m.type === 'get') { ctx.system.reply(m.replyTo, s); return s; }
      seen.running++; seen.max = Math.max(seen.max, seen.running);
      if (m.wait) await sleep(m.wait);
      seen.running--;
      s.push(m.n);
      return s;
    },
  };
}

describe('actor layer', () => {
  let sys: ActorSystem;
  beforeEach(() => { sys = new ActorSystem(quietLogger()); });
  afterEach(() => sys.shutdown());

  const get = (ref: Ref<Msg>) => sys.ask<Msg, number>(ref, (replyTo) => ({ type: 'get', replyTo }), 500);

  for (const leaf of [false, true]) {
    // The same behaviour from a nact actor and from a leaf actor (ActorDef.leaf, under a parent:
    // mxfsd's lock resources), which runs without nact.
    const spawnCounter = (def: ActorDef<{ total: number }, Msg>) =>
      leaf ? sys.spawn(sys.spawn(undefined, 'parent', { init: () => null, handle: (st: null) => st }), 'counter', { ...def, leaf: true })
        : sys.spawn(undefined, 'counter', def);
    describe(leaf ? 'a leaf actor' : 'a nact actor', () => {
      it('restart: a crash rebuilds the state with init() and the actor keeps serving', async () => {
        const inits = { n: 0 };
        const a = spawnCounter(counter('restart', inits));
        sys.send(a, { type: 'add', n: 5 });
        expect(await get(a)).to.equal(105);
        sys.send(a, { type: 'boom' });
        expect(await get(a)).to.equal(100);
        expect(inits.n).to.equal(2);
        expect(sys.crashes).to.equal(1);
      });

      it('resume: a crash keeps the state', async () => {
        const a = spawnCounter(counter('resume', { n: 0 }));
        sys.send(a, { type: 'add', n: 5 });
        sys.send(a, { type: 'boom' });
        expect(await get(a)).to.equal(105);
      });

      it('stop: a crashed actor stops; other actors and the system go on', async () => {
        const a = spawnCounter(counter('stop', { n: 0 }));
        const b = spawnCounter(counter('restart', { n: 0 }));
        sys.send(a, { type: 'boom' });
        await sleep(20);
        let err: unknown;
        try { await get(a); } catch (e) { err = e; }
        expect(err).to.be.instanceOf(Error);
        expect(await get(b)).to.equal(100);
      });

      it('ask always times out with QueryTimeout naming the message', async () => {
        const a = spawnCounter(counter('restart', { n: 0 }));
        let err: unknown;
        try { await sys.ask<Msg, number>(a, () => ({ type: 'ignore' }), 50); } catch (e) { err = e; }
        expect(err).to.be.instanceOf(QueryTimeout);
        expect((err as Error).message).to.match(/'ignore'.*50 ms/);
      });

      it('taps see every send and ask', async () => {
        const seen: string[] = [];
        const off = sys.addTap((_to, m, kind) => seen.push(`${kind}:${m.type}`));
        const a = spawnCounter(counter('restart', { n: 0 }));
        sys.send(a, { type: 'add', n: 1 });
        await get(a);
        off();
        sys.send(a, { type: 'add', n: 1 });
        expect(seen).to.deep.equal(['send:add', 'ask:get']);
      });
    });
  }

  it("nact's per-message context does not copy the actor's child map (a lockspace has one child per resource)", async () => {
    expect(nactContextIsLazy()).to.equal(true);
    // Straight through nact: what the handler gets has `children` as a getter, still correct.
    const root = nact.start();
    try {
      let seen: { lazy: boolean; children: number } | undefined;
      const parent = nact.spawn(root, (state: null, _msg: unknown, ctx: any) => {
        seen = { lazy: typeof Object.getOwnPropertyDescriptor(ctx, 'children')?.get === 'function', children: ctx.children.size };
        return state;
      }, 'parent', { initialStateFunc: () => null });
      for (let i = 0; i < 3; i++) nact.spawn(parent, (st: null) => st, `child-${i}`, { initialStateFunc: () => null });
      nact.dispatch(parent, { type: 'ping' });
      await sleep(20);
      expect(seen).to.deep.equal({ lazy: true, children: 3 });
    } finally {
      nact.stop(root);
    }
  });

  it('stopping an actor stops its children at once, with what is in their mailboxes (nact did not)', async () => {
    expect(nactPatched()).to.equal(true);
    const handled: string[] = [];
    const def = (name: string): ActorDef<null, { type: 'work' }> => ({ init: () => null, handle: (st) => { handled.push(name); return st; } });
    const parent = sys.spawn(undefined, 'parent', def('parent'));
    const child = sys.spawn(parent, 'child', def('child'));
    const grandchild = sys.spawn(child, 'grandchild', def('grandchild'));
    // Messages already queued when the parent stops must never be processed.
    sys.send(child, { type: 'work' });
    sys.send(grandchild, { type: 'work' });
    sys.stopActor(parent);
    sys.send(child, { type: 'work' });
    await sleep(30);
    expect(handled).to.deep.equal([]);
  });

  describe('the scheduler (every actor, nact or leaf)', () => {
    type Hop = { type: 'hop'; left: number; trail: string[] };
    const parentDef: ActorDef<null, { type: 'x' }> = { init: () => null, handle: (st) => st };

    it('a message passed along four actors is handled in the turn it was sent, not a turn per hop', async () => {
      const parent = sys.spawn(undefined, 'parent', parentDef);
      const refs: Array<Ref<Hop>> = [];
      let done: string[] | undefined;
      const def = (name: string, leaf: boolean): ActorDef<null, Hop> => ({
        leaf,
        init: () => null,
        handle(s, m, ctx) {
          const trail = [...m.trail, name];
          if (m.left === 0) done = trail;
          else ctx.system.send(refs[(refs.indexOf(ctx.self) + 1) % refs.length]!, { type: 'hop', left: m.left - 1, trail });
          return s;
        },
      });
      refs.push(sys.spawn(undefined, 'session', def('a', false)), sys.spawn(parent, 'resource', def('b', true)), sys.spawn(undefined, 'lockspace', def('c', false)), sys.spawn(parent, 'resource', def('d', true)));
      let atNextImmediate: string[] | undefined;
      sys.send(refs[0]!, { type: 'hop', left: 3, trail: [] });
      setImmediate(() => { atNextImmediate = done; });
      await sleep(20);
      expect(done).to.deep.equal(['a', 'b', 'c', 'd']);
      expect(atNextImmediate, 'the whole chain ran before an Immediate queued right after the first send').to.deep.equal(['a', 'b', 'c', 'd']);
    });

    for (const leaf of [false, true]) {
      it(`two ${leaf ? 'leaf' : 'nact'} actors sending to each other without end never keep the event loop: at most ${ROUNDS_PER_TURN} rounds per turn`, async () => {
        const parent = sys.spawn(undefined, 'parent', parentDef);
        let handled = 0;
        let stop = false;
        const refs: Array<Ref<Hop>> = [];
        const def: ActorDef<null, Hop> = {
          leaf,
          init: () => null,
          handle(s, m, ctx) {
            handled++;
            if (!stop) ctx.system.send(refs[refs[0] === ctx.self ? 1 : 0]!, m);
            return s;
          },
        };
        for (let i = 0; i < 2; i++) refs.push(leaf ? sys.spawn(parent, 'p', def) : sys.spawn(undefined, 'p', def));
        const perImmediate: number[] = [];
        sys.send(refs[0]!, { type: 'hop', left: 0, trail: [] });
        await new Promise<void>((resolve) => {
          let last = 0;
          const tick = () => {
            perImmediate.push(handled - last);
            last = handled;
            if (perImmediate.length < 20) setImmediate(tick);
            else { stop = true; resolve(); }
          };
          setImmediate(tick);
        });
        expect(perImmediate.slice(1).every((n) => n >= 1), 'the exchange goes on, turn after turn').to.equal(true);
        expect(Math.max(...perImmediate), 'messages handled between two turns of another party').to.be.at.most(ROUNDS_PER_TURN);
      });
    }

    it('a nact actor with an async handler keeps its mailbox until the handler settles, in FIFO order', async () => {
      const seen = { running: 0, max: 0 };
      const a = sys.spawn(undefined, 'async', asyncFifo(false, seen));
      for (let n = 0; n < 30; n++) sys.send(a, { type: 'work', n, wait: n % 10 === 0 ? 3 : undefined });
      expect(await sys.ask<FifoMsg, number[]>(a, (replyTo) => ({ type: 'get', replyTo }), 2000)).to.deep.equal([...Array(30).keys()]);
      expect(seen.max).to.equal(1);
    });
  });

  it('an actor lets go of the last message it handled (nact kept it, with its Immediate, while the actor idled)', async () => {
    const held = new WeakRef({ type: 'add', n: 1 } as const);
    const a = sys.spawn(undefined, 'counter', counter('restart', { n: 0 }));
    sys.send(a, held.deref()!);
    await get(a);
    await sleep(5); // the reply is sent inside the handler; nact finishes the message after it
    const concrete = (require('nact/lib/system-map') as { find(s: string, r: unknown): { immediate?: unknown; mxfsMsg?: unknown } }).find((a as any).system.name, a);
    expect(concrete.immediate, 'no Immediate kept after the last message').to.equal(undefined);
    expect(concrete.mxfsMsg, 'no pending message kept after the last message').to.equal(undefined);
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc) { gc(); expect(held.deref(), 'the message was collected').to.equal(undefined); }
  });

  it('a leaf actor has no child maps of its own, and a spawn under it fails loudly', async () => {
    const leafDef: ActorDef<null, { type: 'work' }> = { init: () => null, handle: (st) => st, leaf: true };
    const a = sys.spawn(undefined, 'leaf', leafDef);
    const b = sys.spawn(undefined, 'leaf', leafDef);
    const find = (r: unknown) => (require('nact/lib/system-map') as { find(s: string, r: unknown): { children: Map<string, unknown> } }).find((r as any).system.name, r);
    expect(find(a).children).to.equal(find(b).children); // one shared, empty map
    expect(find(a).children.size).to.equal(0);
    expect(() => sys.spawn(a, 'child', leafDef)).to.throw(/leaf/);
    sys.stopActor(a);
    sys.send(b, { type: 'work' });
  });

  describe('leaf actors under a parent (no nact actor of their own)', () => {
    type W = { type: 'work'; n: number; wait?: number } | { type: 'get'; replyTo: Ref<number[]> };
    const parentDef: ActorDef<null, { type: 'x' }> = { init: () => null, handle: (st) => st };

    it('handle one message at a time in FIFO order, an async handler holding the mailbox until it settles', async () => {
      const seen = { running: 0, max: 0 };
      const parent = sys.spawn(undefined, 'parent', parentDef);
      const a = sys.spawn(parent, 'leaf', asyncFifo(true, seen));
      for (let n = 0; n < 50; n++) sys.send(a, { type: 'work', n, wait: n % 10 === 0 ? 3 : undefined });
      const got = await sys.ask<FifoMsg, number[]>(a, (replyTo) => ({ type: 'get', replyTo }), 2000);
      expect(got).to.deep.equal([...Array(50).keys()]);
      expect(seen.max).to.equal(1);
    });

    it("stopping the parent stops them at once with what is queued; afterStop runs once; asks to a stopped leaf fail", async () => {
      const handled: number[] = [];
      let stops = 0;
      const def: ActorDef<{ big: number[] }, W> = {
        leaf: true,
        init: () => ({ big: [1, 2, 3] }),
        handle: (s, m) => { if (m.type === 'work') handled.push(m.n); return s; },
        afterStop: (s) => { stops++; expect(s.big).to.deep.equal([1, 2, 3]); },
      };
      const parent = sys.spawn(undefined, 'parent', parentDef);
      const kids = [0, 1, 2].map(() => sys.spawn(parent, 'leaf', def));
      for (const k of kids) sys.send(k, { type: 'work', n: 1 });
      sys.stopActor(parent);
      for (const k of kids) sys.send(k, { type: 'work', n: 2 });
      await sleep(30);
      expect(handled).to.deep.equal([]);
      expect(stops).to.equal(3);
      let err: unknown;
      try { await sys.ask<W, number[]>(kids[0], (replyTo) => ({ type: 'get', replyTo }), 500); } catch (e) { err = e; }
      expect(String(err)).to.match(/stopped/);
    });

    it('stopGradually stops a parent with many leaves, a slice per turn, and each leaf leaves its parent', async () => {
      let stops = 0;
      const def: ActorDef<null, W> = { leaf: true, init: () => null, handle: (s) => s, afterStop: () => { stops++; } };
      const parent = sys.spawn(undefined, 'parent', parentDef);
      for (let i = 0; i < 1000; i++) sys.spawn(parent, 'leaf', def);
      await sys.stopGradually(parent, 100);
      await sleep(20);
      expect(stops).to.equal(1000);
      const find = require('nact/lib/system-map').find;
      expect(find((parent as any).system.name, parent), 'the parent stopped too').to.equal(undefined);
    });

    it('a leaf is its own reference and its handlers\' context; a spawn under it fails loudly', () => {
      let seen: unknown;
      const def: ActorDef<null, W> = { leaf: true, init: (ctx) => { seen = ctx.self; return null; }, handle: (s) => s };
      const parent = sys.spawn(undefined, 'parent', parentDef);
      const a = sys.spawn(parent, 'leaf', def);
      expect(seen).to.equal(a);
      expect(() => sys.spawn(a, 'child', def)).to.throw(/leaf/);
      expect(() => sys.spawn(a, 'child', parentDef)).to.throw(/leaf/);
    });
  });
});
