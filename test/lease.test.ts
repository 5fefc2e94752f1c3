/**
 * The Lease actors (src/cluster/lease.ts): the pure cores (renewal, expiry, incarnation,
 * acknowledgement, this node's own deadline), the actors under a ManualClock, that safety does
 * not wait for their mailboxes, and the trace of a killed peer in the whole-cluster simulation
 * (renewals, then the expiry, then the membership change, in causal order).
 */
import { expect } from 'chai';
import bunyan from 'bunyan';
import { ActorSystem } from '../src/actors/actor';
import { ManualClock } from '../src/util/clock';
import { LeaseCore, LeaseExpiredMsg, OwnLeaseCore, OwnLeaseMsg, PeerLeaseMsg, PeerLeaseSnapshot, spawnLeases } from '../src/cluster/lease';
import { leaseTimes } from '../src/cluster/options';
import { TraceRecorder } from '../src/trace/recorder';
import { SimLockCluster } from './support/sim-cluster';
import type { Config } from '../src/config/config';
import type { TraceEvent } from '../src/trace/event';
import { WorkerTracer } from '../src/trace/worker-tracer';
import { ForwardedEvent, TevReader, tevEvents } from '../src/trace/worker-events';
import { MembershipCore, membershipDef, MembershipEvent, MembershipMsg } from '../src/cluster/membership';
import type { PeerMessage } from '../src/cluster/peer-protocol';

const T = leaseTimes({ leaseTimeoutMs: 10000, renewIntervalMs: 2000 }); // fenceAfter 9000, deadAfter 11000
const quiet = () => bunyan.createLogger({ name: 'lease-test', streams: [{ level: 'fatal', stream: process.stderr }] });
const turns = async (n = 10) => { for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r)); };

describe('leases', () => {
  describe('LeaseCore (a peer\'s lease)', () => {
    it('a renewal sets the expiry to the time it was heard + deadAfter; an older one does not move it back', () => {
      const l = new LeaseCore(2, T);
      expect(l.expiresAt).to.equal(-Infinity);
      expect(l.expire(1e9)).to.equal(false); // never heard: nothing expires
      l.renewed(100, 7);
      expect(l.expiresAt).to.equal(100 + T.deadAfterMs);
      l.renewed(50, 7); // handled late, heard earlier
      expect(l.expiresAt).to.equal(100 + T.deadAfterMs);
      l.renewed(300, 7);
      expect(l.expiresAt).to.equal(300 + T.deadAfterMs);
      expect(l.counts.renewals).to.equal(3);
    });

    it('expires exactly at the expiry, once; a renewal after it makes it live again', () => {
      const l = new LeaseCore(2, T);
      l.renewed(0, 7);
      expect(l.expire(T.deadAfterMs - 1)).to.equal(false);
      expect(l.expired).to.equal(false);
      expect(l.expire(T.deadAfterMs)).to.equal(true);
      expect(l.expire(T.deadAfterMs + 5)).to.equal(false); // once
      expect(l.expired).to.equal(true);
      l.renewed(T.deadAfterMs + 10, 7);
      expect(l.expired).to.equal(false);
      expect(l.expire(T.deadAfterMs + 11)).to.equal(false);
      expect(l.counts.expiries).to.equal(1);
    });

    it('an acknowledged renewal vouches until its send time + fenceAfter; member:false withdraws it; a new incarnation drops it', () => {
      const l = new LeaseCore(3, T);
      l.renewed(0, 7);
      l.acked(40, true);
      expect(l.vouchesUntil).to.equal(40 + T.fenceAfterMs);
      l.acked(20, true); // an older ack arriving late does not move it back
      expect(l.vouchesUntil).to.equal(40 + T.fenceAfterMs);
      l.acked(60, false);
      expect(l.vouchesUntil).to.equal(-Infinity);
      l.acked(80, true);
      expect(l.renewed(100, 7)).to.deep.equal({});
      expect(l.renewed(200, 9)).to.deep.equal({ restarted: { oldInc: 7, newInc: 9 } });
      expect(l.inc).to.equal(9);
      expect(l.vouchesUntil).to.equal(-Infinity);
      expect(l.counts.restarts).to.equal(1);
    });
  });

  describe('OwnLeaseCore (this node\'s deadline)', () => {
    it('takes every move of the deadline; lapses at it, once; an infinite or lost deadline never lapses', () => {
      const o = new OwnLeaseCore();
      expect(o.lapse(1e9)).to.equal(false);
      expect(o.deadline(9000)).to.equal(true);
      expect(o.deadline(9000)).to.equal(false);
      expect(o.lapse(8999)).to.equal(false);
      expect(o.lapse(9000)).to.equal(true);
      expect(o.lapse(9001)).to.equal(false);
      expect(o.deadline(Infinity)).to.equal(true);
      expect(o.lapse(1e12)).to.equal(false);
      expect(o.deadline(-Infinity)).to.equal(true);
      expect(o.lapse(1e12)).to.equal(false);
      expect(o.counts).to.deep.equal({ moves: 3, lapses: 1 });
    });
  });

  describe('the actors', () => {
    function setup() {
      const clock = new ManualClock();
      const sys = new ActorSystem(quiet());
      sys.tracer = new TraceRecorder(1, clock, 4096);
      const expired: Array<LeaseExpiredMsg & { at: number }> = [];
      const leases = spawnLeases(sys, { selfId: 1, peers: [2, 3], times: T, clock, onExpired: (_ctx, m) => expired.push({ ...m, at: clock.now() }) });
      const events = () => sys.recorder!.page(0, {}, 1 << 22).events;
      return { clock, sys, leases, expired, events };
    }
    const renew = (peer: number, at: number, inc = peer): PeerLeaseMsg => ({ type: 'lease.renewed', peer, inc, at, expires: at + T.deadAfterMs, epoch: 1 });

    it('a peer\'s lease expires on its own timer at the time heard + deadAfter (not when its mailbox got the renewal), unless renewed', async () => {
      const { clock, sys, leases, expired, events } = setup();
      sys.send(leases.peers.get(2)!, renew(2, 0));
      sys.send(leases.peers.get(3)!, renew(3, 0));
      await turns();
      clock.advance(500);
      // Heard at 500, but its mailbox takes it only at 2000: the expiry is from 500.
      const late = renew(2, 500);
      clock.advance(1500);
      sys.send(leases.peers.get(2)!, late);
      await turns();
      clock.advance(T.deadAfterMs - 2000 - 1); // t = deadAfter - 1
      await turns();
      expect(expired).to.deep.equal([]);
      clock.advance(1); // t = deadAfter: node 3's lease expires; node 2's was renewed at 500
      await turns();
      expect(expired).to.deep.equal([{ type: 'leaseExpired', peer: 3, expires: T.deadAfterMs, at: T.deadAfterMs }]);
      clock.advance(499);
      await turns();
      expect(expired.length).to.equal(1);
      clock.advance(1); // t = 500 + deadAfter
      await turns();
      expect(expired.map((e) => [e.peer, e.at])).to.deep.equal([[3, T.deadAfterMs], [2, 500 + T.deadAfterMs]]);
      // The trace: each renewal and each expiry is a lease.* event of lease/<peer>, with the peer, its incarnation and expiry.
      const ev = events().filter((e) => e.type.startsWith('lease.'));
      expect(ev.map((e) => `${e.type} ${e.from}->${e.to} ${e.peer} ${e.info}`)).to.deep.equal([
        `lease.renewed ext->lease/2 2 inc 2, expires ${T.deadAfterMs}`,
        `lease.renewed ext->lease/3 3 inc 3, expires ${T.deadAfterMs}`,
        `lease.renewed ext->lease/2 2 inc 2, expires ${500 + T.deadAfterMs}`,
        `lease.expire timer->lease/3 3 expires ${T.deadAfterMs}`,
        `lease.expire timer->lease/2 2 expires ${500 + T.deadAfterMs}`,
      ]);
    });

    it('an incarnation change is a restart: the old acknowledgement no longer counts', async () => {
      const { sys, leases } = setup();
      const ref = leases.peers.get(2)!;
      sys.send(ref, renew(2, 0, 7));
      sys.send(ref, { type: 'lease.acked', peer: 2, inc: 7, sentAt: 0, member: true, until: T.fenceAfterMs, epoch: 1 });
      sys.send(ref, renew(2, 100, 8));
      const snap = await sys.ask<PeerLeaseMsg, PeerLeaseSnapshot>(ref, (replyTo) => ({ type: 'lease.status', replyTo }), 1000);
      expect(snap).to.include({ peer: 2, inc: 8, lastHeard: 100, expiresAt: 100 + T.deadAfterMs, vouchesUntil: -Infinity, restarts: 1 });
    });

    it('this node\'s own lease records each deadline and its lapse', async () => {
      const { clock, sys, leases, events } = setup();
      sys.send(leases.own, { type: 'lease.deadline', node: 1, until: 9000, epoch: 2 });
      await turns();
      clock.advance(8000);
      sys.send(leases.own, { type: 'lease.deadline', node: 1, until: 9500, epoch: 2 });
      await turns();
      clock.advance(1000); // 9000: the old deadline's timer was replaced
      await turns();
      clock.advance(500);
      await turns();
      const ev = events().filter((e) => e.to === 'lease/self');
      expect(ev.map((e) => `${e.type} ${e.from} ${e.epoch ?? ''} ${e.info}`)).to.deep.equal([
        'lease.deadline ext 2 self-fence at 9000',
        'lease.deadline ext 2 self-fence at 9500',
        'lease.lapse timer  self-fence deadline 9500 passed',
      ]);
    });

    it('in the cluster worker (WorkerTracer) each lease message is forwarded with its paths, fields, clock and cause, and recorded with its cause on the main thread', async () => {
      const clock = new ManualClock();
      const sys = new ActorSystem(quiet());
      const main = new TraceRecorder(1, clock, 4096);
      const got: ForwardedEvent[] = [];
      const reader = new TevReader();
      // The worker's events cross to the main thread's recorder in batches (here: each one at once; in mxfsd through the pipe, in order).
      const wt: WorkerTracer = new WorkerTracer(1, clock, () => { const b = wt.take()!; main.forwardedBatch(b); got.push(...tevEvents(reader, b)); });
      sys.tracer = wt;
      const membership = sys.spawn(undefined, 'membership', { init: () => 0, handle: (s: number) => s }, { node: 1 });
      const leases = spawnLeases(sys, { selfId: 1, peers: [3], times: T, clock, onExpired: (ctx, m) => ctx.system.send(membership, m) });
      // The main thread hands the worker a send in its context (seq 7 of trace 1.3, its clock at 40).
      const mainSeq = main.record('send', 'dlm-channel', 'x', 'dlm.send', main.fresh());
      wt.fromMain([mainSeq, 1 * 2 ** 40 + 3, 40, 'dlm-channel'], () => sys.send(leases.peers.get(3)!, renew(3, 10, 0x1f)));
      await turns();
      clock.advance(T.deadAfterMs + 10);
      await turns();
      expect(got.map((x) => `${x.kind} ${x.from} -> ${x.to} ${x.type} ${x.f.info ?? ''}`)).to.deep.equal([
        `send dlm-channel -> lease/3 lease.renewed inc 1f, expires ${10 + T.deadAfterMs}`,
        `send timer -> lease/3 lease.expire expires ${10 + T.deadAfterMs}`,
        `send lease/3 -> membership/1 leaseExpired expired ${10 + T.deadAfterMs}`,
      ]);
      // The worker's Lamport clock moved past the main thread's, and grows by one per event.
      expect(got.map((x) => x.lc)).to.deep.equal([41, 42, 43]);
      expect(got[0]).to.include({ cm: mainSeq, trace: 2 ** 40 + 3 });
      expect(got[2]!.cw).to.equal(got[1]!.w); // leaseExpired was sent while lease/3 handled its lease.expire
      // On the main thread: the causes are its seqs, the expiry's chain is one the worker started (1.wK).
      const ev = main.page(0, {}, 1 << 22).events;
      const expire = ev.find((e) => e.type === 'lease.expire')!, expiredEv = ev.find((e) => e.type === 'leaseExpired')!;
      expect(ev.find((e) => e.type === 'lease.renewed')).to.include({ cause: mainSeq, lc: 41, trace: 2 ** 40 + 3 });
      expect(expiredEv).to.include({ cause: expire.seq, trace: expire.trace, lc: 43 });
      expect(expire.trace).to.be.at.least(2 ** 40 + 2 ** 39);
      // What the main thread records next comes after them.
      expect(ev[ev.length - 1]!.lc).to.be.lessThan(main.context()[2] + 1);
      sys.shutdown();
    });
  });

  describe('with the membership', () => {
    /**
     * One Membership actor with its Lease actors on a ManualClock; peers 2 and 3 renew once
     * (t=0), a view is committed, peer 2 acknowledges a renewal sent at 50 (at t=100), then
     * nothing more is heard. `stuck`: the Lease actors take nothing (stopped at once: the worst
     * mailbox delay). Returns when the quorum deadline moved (onLease) and when each peer was
     * judged dead.
     */
    async function run(stuck: boolean) {
      const clock = new ManualClock();
      const sys = new ActorSystem(quiet());
      const core = new MembershipCore({ selfId: 1, nodeIds: [1, 2, 3], times: T, incarnation: 1 });
      const sent: Array<{ to: number; body: PeerMessage['body'] }> = [];
      const dead: Array<[number, number]> = [];
      const deadlines: Array<[number, number]> = [];
      const quorum: Array<[number, boolean]> = [];
      const leases = spawnLeases(sys, { selfId: 1, peers: [2, 3], times: T, clock, onExpired: (ctx, m) => ctx.system.send(ref, m) });
      if (stuck) for (const l of [...leases.peers.values(), leases.own]) sys.send(l, { type: 'lease.stop' });
      const ref = sys.spawn(undefined, 'membership', membershipDef({
        core, clock, leases, send: (to, body) => sent.push({ to, body }),
        onEvent: (e: MembershipEvent) => {
          if (e.type === 'peerDead') dead.push([e.node, clock.now()]);
          if (e.type === 'quorum') quorum.push([clock.now(), e.has]);
        },
        onLease: (until) => deadlines.push([clock.now(), until]),
      }), { node: 1 });
      const pm = (from: number, epoch: number, body: PeerMessage['body']) => sys.send<MembershipMsg>(ref, { type: 'peerMessage', from, msg: { hdr: { from, to: 1, epoch, seq: 0 }, body } });
      sys.send(ref, { type: 'start' });
      pm(2, 0, { type: 'renew', sentAt: 0, inc: 2, pending: 0 });
      pm(3, 0, { type: 'renew', sentAt: 0, inc: 3, pending: 0 });
      await turns();
      const ep = (sent.filter((o) => o.body.type === 'propose').pop()!.body as { epoch: number }).epoch;
      pm(2, 0, { type: 'accept', epoch: ep });
      pm(3, 0, { type: 'accept', epoch: ep });
      await turns();
      expect(core.epoch).to.equal(ep);
      clock.advance(100);
      pm(2, ep, { type: 'renewAck', sentAt: 50, member: true, inc: 2 });
      await turns();
      for (let t = 100; t < 14000; t += 10) { clock.advance(10); await turns(3); }
      return { dead, deadlines, quorum };
    }

    it('the quorum deadline never waits for a Lease actor: it moves and lapses in the membership\'s turn even when the Lease actors take nothing', async () => {
      for (const stuck of [false, true]) {
        const { deadlines, quorum } = await run(stuck);
        // Published (shared memory in mxfsd, read by canGrant at the call) in the turn of the ack ...
        expect(deadlines, `stuck ${stuck}`).to.deep.equal([[100, 50 + T.fenceAfterMs]]);
        // ... and quorum is lost exactly at ack send time + fenceAfter.
        expect(quorum, `stuck ${stuck}`).to.deep.equal([[100, true], [50 + T.fenceAfterMs, false]]);
      }
    });

    it('a peer is judged dead at its lease expiry through its Lease actor; with the Lease actors stuck, late (next renewal round), never early', async () => {
      const ok = await run(false);
      expect(ok.dead).to.deep.equal([[3, T.deadAfterMs], [2, 100 + T.deadAfterMs]]);
      const stuck = await run(true);
      expect(stuck.dead.map(([n]) => n).sort()).to.deep.equal([2, 3]);
      for (const [node, at] of stuck.dead) {
        const due = (node === 3 ? 0 : 100) + T.deadAfterMs;
        expect(at, `node ${node}`).to.be.at.least(due);
        expect(at, `node ${node}`).to.be.at.most(due + T.renewMs);
      }
    });
  });

  describe('in the whole-cluster simulation', function () {
    this.timeout(120000);

    class TracedSim extends SimLockCluster {
      override config(id: number): Config {
        const c = super.config(id);
        c.trace = { ...c.trace, enabled: true, ringSize: 1 << 17 };
        return c;
      }
    }

    it('a killed peer: its renewals, then its lease expiring, then the membership without it, in causal order; the own deadline follows', async () => {
      const c = new TracedSim(5);
      try {
        for (const id of [1, 2, 3]) await c.start(id);
        await c.waitFormed(60000, 'formation');
        const epoch = c.daemons.get(1)!.router.epoch;
        await c.run(2000);
        const killedAt = c.clock.now();
        c.crash(3);
        for (let t = 0; c.daemons.get(1)!.router.epoch === epoch || c.daemons.get(1)!.router.state !== 'running'; t += 5) {
          if (t > 30000) throw new Error('no view without node 3');
          await c.run(5);
        }
        const all = c.daemons.get(1)!.tracing.recorder!.page(0, {}, 1 << 26, 1 << 20).events;
        const bySeq = new Map(all.map((e) => [e.seq, e]));
        const lease3 = all.filter((e) => e.to === 'lease/3' || e.from === 'lease/3');
        const renewals = lease3.filter((e) => e.type === 'lease.renewed');
        expect(renewals.length).to.be.greaterThan(3);
        expect(renewals.every((e) => e.peer === 3 && e.from === 'membership/1' && /^inc [0-9a-f]+, expires \d+$/.test(e.info ?? ''))).to.equal(true);
        // Each renewal's expiry is its time + deadAfter (the sim's lease is 3000 ms: deadAfter 3300).
        const dead = leaseTimes({ leaseTimeoutMs: 3000, renewIntervalMs: 500 }).deadAfterMs;
        for (const r of renewals) expect(Number(/expires (\d+)/.exec(r.info!)![1])).to.equal(Math.round(r.mono + dead));
        const lastRenewal = renewals[renewals.length - 1]!;
        expect(lastRenewal.mono).to.be.at.most(killedAt);
        const acks = lease3.filter((e) => e.type === 'lease.acked');
        expect(acks.length).to.be.greaterThan(0);
        // The expiry: the lease's own timer at the last renewal + deadAfter, after every renewal.
        const expire = lease3.find((e) => e.type === 'lease.expire' && e.seq > lastRenewal.seq);
        expect(expire, JSON.stringify(lease3.slice(-5))).to.not.equal(undefined);
        expect(expire!.from).to.equal('timer');
        expect(expire!.mono).to.equal(lastRenewal.mono + dead);
        // ... which tells the membership (caused by the expiry) ...
        const told = all.find((e) => e.type === 'leaseExpired' && e.cause === expire!.seq);
        expect(told, 'leaseExpired caused by lease.expire').to.not.equal(undefined);
        expect(told).to.include({ from: 'lease/3', to: 'membership/1', peer: 3 });
        // ... and then the membership changes: a new view without node 3 starts the recovery.
        const view = all.find((e) => e.type === 'recovery.collect' && (e.epoch ?? 0) > epoch);
        expect(view, 'the recovery of the view without node 3').to.not.equal(undefined);
        expect(view!.info).to.match(/members 1 2\b/);
        expect(view!.info).to.not.match(/\b3\b/);
        expect(lastRenewal.seq).to.be.lessThan(expire!.seq);
        expect(expire!.seq).to.be.lessThan(told!.seq);
        expect(told!.seq).to.be.lessThan(view!.seq);
        expect(lastRenewal.lc).to.be.lessThan(expire!.lc);
        expect(told!.lc).to.be.lessThan(view!.lc);
        // Nothing of node 3's lease renewed it between the kill and the expiry.
        expect(lease3.filter((e) => e.type === 'lease.renewed' && e.mono > killedAt)).to.deep.equal([]);
        // The own deadline: recorded as it moved, from the membership, with the epoch.
        const own = all.filter((e) => e.to === 'lease/self' && e.type === 'lease.deadline');
        expect(own.length).to.be.greaterThan(3);
        expect(own.every((e) => e.from === 'membership/1' && /^self-fence at /.test(e.info ?? ''))).to.equal(true);
        expect(bySeq.size).to.equal(all.length);
      } finally {
        await c.stop();
      }
    });
  });
});
