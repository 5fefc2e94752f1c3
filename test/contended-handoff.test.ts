/**
 * The contended one-name handoff (issue 13, docs/benchmarks.md "16 clients on one name"):
 * FIFO grants under contention through the actors, and the next waiter's grant sent before the
 * unlocker's reply (each owner's own events in their order).
 */
import { expect } from 'chai';
import { ActorSystem, Ref } from '../src/actors/actor';
import { LockTable } from '../src/actors/lockspace';
import { LockEvent, newLockStats } from '../src/actors/messages';
import { Mode } from '../src/dlm/modes';
import { ManualClock } from '../src/util/clock';
import { quietLogger } from './support/daemon-proc';

/** Lets the actors run what is queued (a few event-loop turns). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

/** A lock table whose owners are actors that only receive; every lock event sent, in send order. */
function setup(owners: number) {
  const sys = new ActorSystem(quietLogger());
  const table = new LockTable(sys, { lvbSize: 32, idleEvictMs: 60000, clock: new ManualClock(), stats: newLockStats(), faultInjection: false });
  const refs: Array<Ref<LockEvent>> = [];
  const sent: string[] = [];
  for (let i = 0; i < owners; i++) {
    const ref = sys.spawn<null, LockEvent>(undefined, 'owner', { init: () => null, handle: (s) => s });
    refs.push(ref);
  }
  sys.addTap((to, msg) => {
    const i = refs.indexOf(to as Ref<LockEvent>);
    if (i >= 0) sent.push(`${(msg as LockEvent).type} ${(msg as unknown as { lockId: string }).lockId}`);
  });
  const request = (owner: number, lockId: string) =>
    table.route('default', 'hot', { type: 'request', lockId, owner: `o${owner}`, mode: Mode.EX, noqueue: false, notify: refs[owner]! });
  const unlock = (lockId: string) => table.route('default', 'hot', { type: 'unlock', lockId });
  return { sys, sent, request, unlock };
}

describe('contended one-name handoff', () => {
  it('16 owners queued on one name are granted in the order they asked, each unlock handing over to the next', async () => {
    const { sent, request, unlock } = setup(16);
    for (let i = 0; i < 16; i++) request(i, `L${i}`);
    await settle();
    const grants = () => sent.filter((x) => x.startsWith('lock.granted')).map((x) => x.split(' ')[1]);
    expect(grants()).to.deep.equal(['L0']);
    // Two rounds: each owner, once granted, unlocks and asks again (to the back of the queue).
    for (let k = 0; k < 32; k++) {
      const holder = k % 16;
      unlock(`L${holder}${k >= 16 ? 'b' : ''}`);
      if (k < 16) request(holder, `L${holder}b`);
      await settle();
    }
    const want = [...Array.from({ length: 16 }, (_, i) => `L${i}`), ...Array.from({ length: 16 }, (_, i) => `L${i}b`)];
    expect(grants()).to.deep.equal(want);
  });

  it("an unlock's events: the next waiter's grant (and its BAST) before the unlocker's release", async () => {
    const { sent, request, unlock } = setup(3);
    request(0, 'A');
    request(1, 'B');
    request(2, 'C');
    await settle();
    sent.length = 0;
    unlock('A');
    await settle();
    // B is granted while C still waits: B owes C a BAST.
    expect(sent).to.deep.equal(['lock.granted B', 'lock.bast B', 'lock.released A']);
  });

  it("one owner's own events keep their order: its release before its own next grant", async () => {
    const { sent, request, unlock } = setup(2);
    request(0, 'x');
    request(0, 'y'); // the same owner, another lock on the same name: waits behind x
    request(1, 'z');
    await settle();
    sent.length = 0;
    unlock('x');
    await settle();
    expect(sent).to.deep.equal(['lock.released x', 'lock.granted y', 'lock.bast y']);
  });
});
