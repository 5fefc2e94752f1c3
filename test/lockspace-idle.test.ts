/** The lockspace's idle queue: eviction in the order resources went idle, driven by a manual clock. */
import { expect } from 'chai';
import { ActorSystem } from '../src/actors/actor';
import { LockTable } from '../src/actors/lockspace';
import { newLockStats } from '../src/actors/messages';
import { ManualClock } from '../src/util/clock';
import { quietLogger } from './support/daemon-proc';

/** Lets the actors run what is queued (a few event-loop turns). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

describe('lockspace idle queue', () => {
  it('a resource reported idle again goes to the back of the queue: the one idle longer is evicted first', async () => {
    const clock = new ManualClock();
    const sys = new ActorSystem(quietLogger());
    const stats = newLockStats();
    const table = new LockTable(sys, { lvbSize: 32, idleEvictMs: 1000, clock, stats, faultInjection: false });
    // A cancel of a lock nobody has: each resource is made, handles one message and reports idle.
    table.route('default', 'a', { type: 'cancel', lockId: 'none' });
    table.route('default', 'b', { type: 'cancel', lockId: 'none' });
    await settle();
    expect(stats.resources).to.equal(2);
    clock.advance(500);
    // 'a' says idle once more (nothing forwarded since): idle since 500 now, behind 'b' (0).
    sys.send(table.lockspace('default'), { type: 'idle', resource: 'a', processed: 1, tokenCounter: 0 });
    await settle();
    clock.advance(500); // 'b' is due, 'a' is not
    await settle();
    expect([stats.evictions, stats.resources]).to.deep.equal([1, 1]);
    clock.advance(500); // now 'a' too
    await settle();
    expect([stats.evictions, stats.resources]).to.deep.equal([2, 0]);
  });
});
