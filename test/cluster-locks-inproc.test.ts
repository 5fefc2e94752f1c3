/**
 * The lock engine across nodes, in one process: three or five Daemons joined by a LocalHub
 * (every message is encoded, decoded and validated as on a peer link), views committed by
 * the test. Remote locking, BASTs across nodes, recovery after a holder's or a master's
 * death (tokens keep increasing), stale-epoch rejection, self-fencing without quorum.
 */
import { expect } from 'chai';
import { Daemon } from '../src/daemon/daemon';
import { MxfsClient } from '../src/client/client';
import { LocalHub } from '../src/cluster/port';
import { rendezvousOwner } from '../src/cluster/rendezvous';
import { Mode } from '../src/dlm/modes';
import { LockError } from '../src/dlm/types';
import { quietLogger, sleep, testConfig, tmpDir, waitFor } from './support/daemon-proc';
import { resourceOn } from './support/cluster-proc';

const { PR, EX, NL } = Mode;

const masterOf = rendezvousOwner;


describe('cluster locking (in-process, LocalHub)', function () {
  this.timeout(20000);
  let hub: LocalHub;
  let nodes: Map<number, Daemon>;

  async function boot(ids: number[], timing: { queryTimeoutMs?: number } = {}) {
    hub = new LocalHub();
    nodes = new Map();
    for (const id of ids) {
      const d = new Daemon({ config: testConfig(tmpDir(), { node: { id }, timing }), log: quietLogger(), port: hub.port(id), masterOf });
      await d.start();
      nodes.set(id, d);
    }
    hub.commit(1, ids);
    await waitFor(() => [...nodes.values()].every((d) => d.router.state === 'running'), 20000, 'first recovery');
  }
  const client = (id: number, name = `c${id}`) => nodes.get(id)!.connectLocal(name);
  afterEach(async () => { for (const d of nodes?.values() ?? []) await d.stop(); });

  it('locks a resource mastered on another node; BAST crosses nodes; unlock grants the remote waiter', async () => {
    await boot([1, 2, 3]);
    const res = resourceOn(3, [1, 2, 3]);
    const a = await client(1), b = await client(2);
    const ha = await a.lock(res, EX);
    expect(ha.grant.token).to.be.greaterThan(2 ** 32); // epoch 1 tokens
    const bast = new Promise<Mode>((r) => ha.once('bast', r));
    const pb = b.lock(res, PR);
    expect(await bast).to.equal(PR);
    await ha.convert(PR);
    const hb = await pb;
    expect(hb.grant.mode).to.equal(PR);
    expect(nodes.get(3)!.router.stats.opsReceived).to.be.greaterThan(2);
    const locks: any = await (await client(3)).locks({ resource: res });
    expect(locks.resources[0].granted.map((l: any) => l.owner.split(':')[0]).sort()).to.deep.equal(['1', '2']);
  });

  it('holder node dies: its locks are purged at recovery and the waiter on another node is granted', async () => {
    await boot([1, 2, 3]);
    const res = resourceOn(1, [1, 2, 3]);
    const h3 = await (await client(3)).lock(res, EX);
    const b = await client(2);
    const pb = b.lock(res, EX);
    await sleep(50);
    hub.isolate(3);
    await nodes.get(3)!.stop();
    nodes.delete(3);
    hub.commit(2, [1, 2]);
    const hb = await pb;
    expect(hb.grant.token).to.be.greaterThan(h3.grant.token);
    expect(hb.grant.token).to.be.greaterThan(2 * 2 ** 32);
  });

  it('master node dies: the resource is rebuilt on the new master from the survivors; tokens keep increasing; queues survive', async () => {
    await boot([1, 2, 3]);
    const res = resourceOn(3, [1, 2, 3], 'm');
    const a = await client(1), b = await client(2);
    const ha = await a.lock(res, PR);
    await ha.unlock({});
    const hw = await a.lock(res, EX);
    await hw.unlock({ lvb: Buffer.from('gen-7') });
    const hr = await a.lock(res, PR);                  // PR holder keeps a current LVB copy
    expect(hr.grant.lvb.subarray(0, 5).toString()).to.equal('gen-7');
    const pb = b.lock(res, EX);                          // queued behind the PR
    await sleep(50);
    hub.isolate(3);
    await nodes.get(3)!.stop();
    nodes.delete(3);
    hub.commit(2, [1, 2]);
    await waitFor(() => [...nodes.values()].every((d) => d.router.state === 'running' && d.router.epoch === 2), 20000, 'recovery');
    const newMaster = masterOf('default', res, [1, 2]);
    const view: any = await (await client(newMaster)).locks({ resource: res });
    expect(view.resources[0].granted).to.have.length(1);
    expect(view.resources[0].waiting).to.have.length(1);
    await hr.unlock();
    const hb = await pb;
    expect(hb.grant.token).to.be.greaterThan(hw.grant.token);
    expect(hb.grant.lvbValid).to.equal(true);
    expect(hb.grant.lvb.subarray(0, 5).toString()).to.equal('gen-7');
  });

  it('a node\'s death: each survivor counts the records it collected, sent and received and the resources it rebuilt (today: all of them, not the dead node\'s share)', async () => {
    await boot([1, 2, 3]);
    const a = await client(1), b = await client(2);
    const names = Array.from({ length: 60 }, (_, i) => `w${i}`);
    // Node 1 holds PR on all 60 names, node 2 on the first 30: spread over all three masters.
    for (const n of names) await a.lock(n, PR);
    for (const n of names.slice(0, 30)) await b.lock(n, PR);
    const before = [1, 2].map((id) => ({ ...nodes.get(id)!.router.stats }));
    hub.isolate(3);
    await nodes.get(3)!.stop();
    nodes.delete(3);
    hub.commit(2, [1, 2]);
    await waitFor(() => [...nodes.values()].every((d) => d.router.state === 'running' && d.router.epoch === 2), 20000, 'recovery');
    const work = [1, 2].map((id, i) => {
      const s = nodes.get(id)!.router.stats, p = before[i]!;
      return { collected: s.recordsCollected - p.recordsCollected, sent: s.recordsSent - p.recordsSent, received: s.recordsReceived - p.recordsReceived, resources: s.resourcesRebuilt - p.resourcesRebuilt };
    });
    const held = { 1: names, 2: names.slice(0, 30) } as Record<number, string[]>;
    const to = (from: number, m: number) => held[from]!.filter((n) => masterOf('default', n, [1, 2]) === m).length;
    expect(work[0]).to.deep.equal({ collected: 60, sent: to(1, 2), received: to(2, 1), resources: names.filter((n) => masterOf('default', n, [1, 2]) === 1).length });
    expect(work[1]).to.deep.equal({ collected: 30, sent: to(2, 1), received: to(1, 2), resources: names.filter((n) => masterOf('default', n, [1, 2]) === 2).length });
    // Every resource was rebuilt, though node 3 mastered only some of them (issue 13).
    const deadShare = names.filter((n) => masterOf('default', n, [1, 2, 3]) === 3).length;
    expect(work[0]!.resources + work[1]!.resources).to.equal(60).and.to.be.greaterThan(deadShare);
  });

  it('a message of an older epoch is rejected', async () => {
    await boot([1, 2, 3]);
    const res = resourceOn(2, [1, 2, 3]);
    const before = nodes.get(2)!.router.stats.staleDropped;
    hub.port(99); // a bystander port to inject from
    (hub as any).deliver(1, 2, { t: 'op', epoch: 0, lockspace: 'default', resource: res, op: { type: 'request', lockId: '1:1/1', owner: '1:1', mode: EX, noqueue: false } });
    await sleep(20);
    expect(nodes.get(2)!.router.stats.staleDropped).to.equal(before + 1);
    const locks: any = await (await client(2)).locks({ resource: res });
    expect(locks.resources).to.have.length(0);
  });

  it('a message from a node outside the view is rejected, even in the current epoch', async () => {
    // Under correct membership no non-member holds the current epoch; this check guards
    // against one that does (a membership bug, a stray peer). The mutation check switches it
    // off (MXFS_MUTATION=non-member-drop): the simulated faults cannot reach it.
    await boot([1, 2, 3]);
    hub.commit(2, [1, 2]); // nodes 1, 2: epoch 2 without node 3 (node 3 gets quorate=false)
    await waitFor(() => [1, 2].every((id) => nodes.get(id)!.router.state === 'running' && nodes.get(id)!.router.epoch === 2), 20000, 'epoch 2');
    const res = resourceOn(2, [1, 2]);
    const before = nodes.get(2)!.router.stats.staleDropped;
    (hub as any).deliver(3, 2, { t: 'op', epoch: 2, lockspace: 'default', resource: res, op: { type: 'request', lockId: '3:1/1', owner: '3:1', mode: EX, noqueue: false } });
    await sleep(20);
    expect(nodes.get(2)!.router.stats.staleDropped).to.equal(before + 1);
    const locks: any = await (await client(2)).locks({ resource: res });
    expect(locks.resources).to.have.length(0);
  });

  it('a node without quorum tells its clients every lock is lost and refuses new requests', async () => {
    await boot([1, 2, 3]);
    const c = await client(3);
    const h = await c.lock(resourceOn(1, [1, 2, 3]), EX);
    const lost = new Promise<string>((r) => h.once('lost', r));
    hub.isolate(3);
    hub.fence(3, 1);
    expect(await lost).to.match(/lost quorum/);
    const c2 = await client(3, 'late');
    let err: unknown;
    try { await c2.lock('x', NL); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(LockError);
    expect((err as LockError).code).to.equal('LOST');
    expect(nodes.get(3)!.router.state).to.equal('no-quorum');
  });

  it('quorum blip in the same epoch: the fenced node\'s clients lose their locks, which are then released; locks it masters for others are kept', async () => {
    await boot([1, 2, 3]);
    const onOther = resourceOn(1, [1, 2, 3], 'b');   // held by a node-3 client, mastered on 1
    const onThree = resourceOn(3, [1, 2, 3], 'k');   // held by a node-1 client, mastered on 3
    const c3 = await client(3);
    const h3 = await c3.lock(onOther, EX);
    const h1 = await (await client(1)).lock(onThree, EX);
    const lost = new Promise<string>((r) => h3.once('lost', r));
    hub.fence(3, 1);
    await lost;
    const b = await client(2);
    const waiter = b.lock(onOther, EX);                // blocked until node 3's purge arrives
    await sleep(50);
    hub.commit(1, [1, 2, 3], [3]);                     // quorum back, same epoch
    const hw = await waiter;
    expect(hw.grant.mode).to.equal(EX);
    expect(nodes.get(3)!.router.state).to.equal('running');
    // node 3 kept what it masters: node 1 still holds onThree, a request from 2 must wait
    let err: unknown;
    try { await b.lock(onThree, EX, { noqueue: true }); } catch (e) { err = e; }
    expect((err as LockError).code).to.equal('NOTQUEUED');
    expect(h1.valid).to.equal(true);
  });

  it('a node that rejoins goes through recovery and masters resources again', async () => {
    await boot([1, 2, 3]);
    hub.isolate(3);
    hub.fence(3, 1);
    hub.commit(2, [1, 2]);
    await waitFor(() => nodes.get(1)!.router.epoch === 2 && nodes.get(1)!.router.state === 'running', 20000, 'epoch 2');
    hub.heal(3);
    hub.commit(3, [1, 2, 3]);
    await waitFor(() => [...nodes.values()].every((d) => d.router.state === 'running' && d.router.epoch === 3), 20000, 'epoch 3');
    const res = resourceOn(3, [1, 2, 3], 'j');
    const h = await (await client(1)).lock(res, EX);
    expect(h.grant.token).to.be.greaterThan(3 * 2 ** 32);
    expect(nodes.get(3)!.router.stats.opsReceived).to.be.greaterThan(0);
  });

  it('a client that disconnects while recovery collects its records does not hold the recovery up until the query timeout', async () => {
    // A query timeout far beyond the test's own: waiting for the dead session would fail it.
    await boot([1, 2, 3], { queryTimeoutMs: 10 * 60 * 1000 });
    const gone = await client(1, 'leaving');
    await gone.lock(resourceOn(2, [1, 2, 3], 'leaving'), EX);
    hub.commit(2, [1, 2, 3]);
    // Disconnect after the view is committed but before the router asks the session: the
    // session stops with the 'collect' request still in its mailbox.
    await gone.close();
    await waitFor(() => [...nodes.values()].every((d) => d.router.state === 'running' && d.router.epoch === 2), 15000, 'recovery of epoch 2');
  });

  it('an unlock carrying an LVB that a recovery interrupts is not reported done: LOST; the LVB then reads as invalid, not stale', async () => {
    await boot([1, 2, 3]);
    const res = resourceOn(3, [1, 2, 3], 'lvb-unlock');
    const a = await client(1);
    const w = await a.lock(res, EX);
    await w.unlock({ lvb: Buffer.from('v1') });
    const h = await a.lock(res, EX);
    expect(h.grant.lvb.subarray(0, 2).toString()).to.equal('v1');
    hub.isolate(3); // the unlock never reaches its master
    const sent = nodes.get(1)!.router.stats.opsSent;
    const outcome = h.unlock({ lvb: Buffer.from('v2') }).then(() => 'ok', (e) => `${(e as LockError).code}: ${(e as Error).message}`);
    await waitFor(() => nodes.get(1)!.router.stats.opsSent > sent, 20000, 'unlock sent');
    hub.commit(2, [1, 2]); // node 3 is gone: recovery
    expect(await outcome).to.match(/^LOST: the lock is released, but a cluster recovery \(epoch 2\) interrupted the unlock before its LVB write was confirmed/);
    expect(h.released).to.equal(true);
    const b = await client(2);
    const hb = await b.lock(res, EX);
    expect(hb.grant.lvbValid).to.equal(false); // never 'v1' presented as current
    await hb.unlock();
  });

  it('an unlock is answered before its remote master has the release; a recovery meanwhile does not bring the lock back, and the waiter is granted', async () => {
    await boot([1, 2, 3]);
    const res = resourceOn(3, [1, 2, 3], 'early-unlock');
    const a = await client(1), b = await client(2);
    const h = await a.lock(res, EX);
    const pb = b.lock(res, EX);
    await waitFor(() => nodes.get(3)!.router.stats.opsReceived >= 2, 20000, 'the waiter queued at the master');
    hub.isolate(3); // the release never reaches its master
    await h.unlock(); // answered all the same: the session let go, the master did not hear it
    const d1 = nodes.get(1)!;
    expect(d1.admission.inFlight, 'the release counts as in flight').to.equal(1);
    const locks: any = await nodes.get(3)!.localLocks({ resource: res });
    expect(locks.resources[0].granted.map((l: any) => l.owner.split(':')[0]), 'the master still holds it').to.deep.equal(['1']);
    hub.heal(3);
    hub.commit(2, [1, 2, 3]); // recovery: node 1's records do not include the released lock
    const hb = await pb;
    expect(hb.grant.mode).to.equal(EX);
    expect(d1.admission.inFlight, 'the release of epoch 1 is over').to.equal(0);
    const after: any = await nodes.get(3)!.localLocks({ resource: res });
    expect(after.resources[0].granted.map((l: any) => l.owner.split(':')[0])).to.deep.equal(['2']);
  });

  it('a conversion carrying an LVB that a recovery interrupts writes it when it is re-issued on the new master', async () => {
    await boot([1, 2, 3]);
    const res = resourceOn(3, [1, 2, 3], 'lvb-convert');
    const a = await client(1);
    const h = await a.lock(res, EX);
    hub.isolate(3);
    const sent = nodes.get(1)!.router.stats.opsSent;
    const converted = h.convert(PR, { lvb: Buffer.from('v3') });
    await waitFor(() => nodes.get(1)!.router.stats.opsSent > sent, 20000, 'conversion sent');
    hub.commit(2, [1, 2]);
    const g = await converted;
    expect([g.mode, g.lvbValid, g.lvb.subarray(0, 2).toString()]).to.deep.equal([PR, true, 'v3']);
    const hb = await (await client(2)).lock(res, PR);
    expect([hb.grant.lvbValid, hb.grant.lvb.subarray(0, 2).toString()]).to.deep.equal([true, 'v3']);
  });
});
