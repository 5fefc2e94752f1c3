/**
 * Lock state across a master's death, with real mxfsd processes (3 nodes, lease 3000 ms): what
 * a recovery keeps (the LVB from a surviving writer's copy, the waiters' order) and what it ends
 * (a wait whose timeout ran out meanwhile).
 */
import { expect } from 'chai';
import { Mode } from '../src/dlm/modes';
import { LockError, type Grant } from '../src/dlm/types';
import type { LockHandle } from '../src/client/api';
import { resourceOn, TestCluster } from './support/cluster-proc';
import { sleep, waitFor } from './support/daemon-proc';

const { PR, EX } = Mode;
const LEASE = 3000;

describe('recovery end to end: lock state across a master\'s death (real processes)', function () {
  this.timeout(180000);
  let cl: TestCluster;
  afterEach(async () => { await cl?.stopAll(); });

  it('the LVB survives from a surviving EX holder\'s copy; it reads as invalid when the EX holder died with its master', async () => {
    cl = new TestCluster(3, LEASE);
    await cl.up();
    const kept = resourceOn(3, [1, 2, 3], 'lvb-kept');
    const lost = resourceOn(3, [1, 2, 3], 'lvb-lost');
    const a = await cl.client(1), b = await cl.client(2), c = await cl.client(3);
    for (const [res, v] of [[kept, 'gen-1'], [lost, 'gen-7']] as const) await (await a.lock(res, EX)).unlock({ lvb: Buffer.from(v) });
    const h = await a.lock(kept, EX); // a writer on a surviving node
    expect(h.grant.lvb.subarray(0, 5).toString()).to.equal('gen-1');
    const dead = await c.lock(lost, EX); // a writer on the master's node
    expect(dead.grant.lvbValid).to.equal(true);
    const pKept = b.lock(kept, PR), pLost = b.lock(lost, PR);
    await sleep(200);
    await cl.killed(3);
    await cl.waitView([1, 2]);
    expect(h.valid).to.equal(true);
    await h.unlock(); // writes nothing: the value stays gen-1
    const r1 = await pKept;
    expect(r1.grant.lvbValid).to.equal(true);
    expect(r1.grant.lvb.subarray(0, 5).toString()).to.equal('gen-1');
    const r2 = await pLost; // granted once node 3's lease ran out; its writer may have changed what gen-7 describes
    expect(r2.grant.lvbValid).to.equal(false);
    expect(r2.grant.token).to.be.greaterThan(dead.grant.token);
  });

  it('a wait whose timeout ran out before the recovery fails TIMEOUT; it is not re-issued with its whole timeout', async () => {
    cl = new TestCluster(3, LEASE);
    await cl.up();
    const res = resourceOn(3, [1, 2, 3], 'tmo');
    const a = await cl.client(1), b = await cl.client(2);
    const ha = await a.lock(res, EX);
    // 1000 ms is shorter than any recovery after a kill (the survivors first wait out node 3's
    // 3000 ms lease), so the wait has run out when the records are collected.
    const outcome = b.lock(res, EX, { timeoutMs: 1000 }).then(() => 'granted', (e) => (e as LockError).code);
    await sleep(100);
    await cl.killed(3);
    await cl.waitView([1, 2]);
    await ha.unlock();
    expect(await outcome).to.equal('TIMEOUT');
    const hb = await b.lock(res, EX); // the resource is free again for a new request
    expect(hb.grant.token).to.be.greaterThan(ha.grant.token);
  });

  it('waiters keep their FIFO order through their master\'s death, whichever node they are on', async () => {
    cl = new TestCluster(3, LEASE);
    await cl.up();
    const res = resourceOn(3, [1, 2, 3], 'fifo');
    const a = await cl.client(1);
    const ha = await a.lock(res, EX);
    // Six waiters alternating nodes 2 and 1, each queued before the next asks (the master lists
    // it). The two nodes measure their waits at their own collection; a gap of 1 s between
    // requests is far above how far apart the two collections run.
    const order: number[] = [];
    const done: Array<Promise<void>> = [];
    for (let i = 0; i < 6; i++) {
      const c = await cl.client(i % 2 === 0 ? 2 : 1, `w${i}`);
      done.push(c.lock(res, EX).then((h) => { order.push(i); return h.unlock(); }));
      await waitFor(async () => (await a.locks({ resource: res })).resources[0]?.waiting.length === i + 1, 20000, `w${i} queued`);
      await sleep(1000);
    }
    await cl.killed(3);
    await cl.waitView([1, 2]);
    await ha.unlock();
    await Promise.all(done);
    expect(order).to.deep.equal([0, 1, 2, 3, 4, 5]);
  });

  // Node 3 (master) delays what it sends by 2.5 s; W's conversion down to NL reaches it, which
  // grants it and then X's request (xMode); nodes 1 and 3 are cut before W's grant leaves, X's
  // goes through; `meanwhile` runs; node 3 dies. Lease 6000 ms: node 3's renewals are delayed
  // too, and the conversion must reach node 3 well before the cut.
  async function downGrantLost(held: Mode, xMode: Mode, lvb: Buffer | undefined, meanwhile: (hx: LockHandle) => Promise<void>) {
    cl = new TestCluster(3, 6000);
    await cl.up();
    const res = resourceOn(3, [1, 2, 3], 'down');
    const a = await cl.client(1), b = await cl.client(2), f1 = await cl.client(1, 'fault1'), f3 = await cl.client(3, 'fault3');
    await (await a.lock(res, EX)).unlock({ lvb: Buffer.from('v1') });
    const w = await a.lock(res, held);
    const px = b.lock(res, xMode);
    await waitFor(async () => (await b.locks({ resource: res })).resources[0]?.waiting.length === 1, 20000, 'X queued');
    await f3.fault({ action: 'delay', ms: 2500 });
    const pw = w.convert(Mode.NL, lvb ? { lvb } : {}).then((g) => g, (e) => e as Error);
    await sleep(1200);
    await f1.fault({ action: 'partition', peers: [3] });
    await f3.fault({ action: 'partition', peers: [1] });
    const hx = await px; // granted by the old master
    const x = hx.grant.lvb.subarray(0, 2).toString();
    await meanwhile(hx);
    await cl.killed(3);
    await f1.fault({ action: 'heal' });
    await cl.waitView([1, 2]);
    const gw = await pw; // re-issued on the new master
    expect(gw).to.not.be.instanceOf(Error);
    const r = await b.lock(res, PR);
    return { a, res, w, hx, x, gw: gw as Grant, reader: { valid: r.grant.lvbValid, v: r.grant.lvb.subarray(0, 2).toString() } };
  }
  const writeV3 = (hx: LockHandle) => hx.unlock({ lvb: Buffer.from('v3') }); // confirmed by the old master

  it('a conversion EX -> NL writing the LVB, whose grant died with its master, does not bring its value back over a later confirmed write', async () => {
    const { x, reader } = await downGrantLost(EX, EX, Buffer.from('v2'), writeV3);
    expect(x).to.equal('v2'); // the old master wrote W's value before granting X
    expect(reader).to.deep.equal({ valid: false, v: reader.v }); // v3 is the last write; the new master cannot know it
  });

  it('a PR holder converting down to NL, whose grant died with its master, is not taken as the LVB\'s keeper', async () => {
    const { x, reader } = await downGrantLost(PR, EX, undefined, writeV3);
    expect(x).to.equal('v1');
    expect(reader.valid).to.equal(false); // not v1 from W's copy: X wrote v3 since
  });

  it('a conversion EX -> NL whose grant died with its master, beside the PR it let in: both locks are kept, not every lock lost', async () => {
    const lost: string[] = [];
    const { a, res, w, hx, x, gw, reader } = await downGrantLost(EX, PR, Buffer.from('v2'), async (h) => { h.on('lost', (why: string) => lost.push(why)); });
    expect(x).to.equal('v2'); // the old master had W in NL, its value written, when it granted X
    expect(gw.mode).to.equal(Mode.NL);
    const locks = await a.locks({ resource: res });
    expect(locks.resources[0].granted.map((l: { mode: string }) => l.mode).sort()).to.deep.equal(['NL', 'PR', 'PR']);
    expect({ lost, w: w.valid, x: hx.valid }).to.deep.equal({ lost: [], w: true, x: true });
    expect(reader).to.deep.equal({ valid: true, v: 'v2' }); // the LVB W wrote, from X's copy
  });
});
