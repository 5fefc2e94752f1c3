/** The typed actor layer: supervision policies, ask timeouts, message taps. */
import { expect } from 'chai';
import * as nact from 'nact';
import { ActorDef, ActorSystem, nactContextIsLazy, nactPatched, QueryTimeout, Ref } from '../src/actors/actor';
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

describe('actor layer', () => {
  let sys: ActorSystem;
  beforeEach(() => { sys = new ActorSystem(quietLogger()); });
  afterEach(() => sys.shutdown());

  const get = (ref: Ref<Msg>) => sys.ask<Msg, number>(ref, (replyTo) => ({ type: 'get', replyTo }), 500);

  it('restart: a crash rebuilds the state with init() and the actor keeps serving', async () => {
    const inits = { n: 0 };
    const a = sys.spawn(undefined, 'counter', counter('restart', inits));
    sys.send(a, { type: 'add', n: 5 });
    expect(await get(a)).to.equal(105);
    sys.send(a, { type: 'boom' });
    expect(await get(a)).to.equal(100);
    expect(inits.n).to.equal(2);
    expect(sys.crashes).to.equal(1);
  });

  it('resume: a crash keeps the state', async () => {
    const a = sys.spawn(undefined, 'counter', counter('resume', { n: 0 }));
    sys.send(a, { type: 'add', n: 5 });
    sys.send(a, { type: 'boom' });
    expect(await get(a)).to.equal(105);
  });

  it('stop: a crashed actor stops; other actors and the system go on', async () => {
    const a = sys.spawn(undefined, 'counter', counter('stop', { n: 0 }));
    const b = sys.spawn(undefined, 'counter', counter('restart', { n: 0 }));
    sys.send(a, { type: 'boom' });
    await sleep(20);
    let err: unknown;
    try { await get(a); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(Error);
    expect(await get(b)).to.equal(100);
  });

  it('ask always times out with QueryTimeout naming the message', async () => {
    const a = sys.spawn(undefined, 'counter', counter('restart', { n: 0 }));
    let err: unknown;
    try { await sys.ask<Msg, number>(a, () => ({ type: 'ignore' }), 50); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(QueryTimeout);
    expect((err as Error).message).to.match(/'ignore'.*50 ms/);
  });

  it('taps see every send and ask', async () => {
    const seen: string[] = [];
    const off = sys.addTap((_to, m, kind) => seen.push(`${kind}:${m.type}`));
    const a = sys.spawn(undefined, 'counter', counter('restart', { n: 0 }));
    sys.send(a, { type: 'add', n: 1 });
    await get(a);
    off();
    sys.send(a, { type: 'add', n: 1 });
    expect(seen).to.deep.equal(['send:add', 'ask:get']);
  });

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

  it('an actor lets go of the last message it handled (nact kept it, with its Immediate, while the actor idled)', async () => {
    const held = new WeakRef({ type: 'add', n: 1 } as const);
    const a = sys.spawn(undefined, 'counter', counter('restart', { n: 0 }));
    sys.send(a, held.deref()!);
    await get(a);
    await sleep(5); // the reply is sent inside the handler; nact finishes the message after it
    const concrete = (require('nact/lib/system-map') as { find(s: string, r: unknown): { immediate?: unknown } }).find((a as any).system.name, a);
    expect(concrete.immediate, 'no Immediate kept after the last message').to.equal(undefined);
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
});
