/** DlmChannel: exactly-once, in-order delivery of lock messages over a network that drops,
 *  duplicates, reorders and resets, under simulated time; stream resets when a daemon
 *  restarts; forgetting a peer; piggybacked acks. */
import { expect } from 'chai';
import fc from 'fast-check';
import { ChannelFrame, DlmChannel } from '../src/cluster/dlm-channel';
import type { DlmPeerMsg } from '../src/cluster/dlm-messages';
import { ManualClock } from '../src/util/clock';
import { Prng } from '../src/failover/prng';
import { ActorSystem } from '../src/actors/actor';
import { DlmChannelActor } from '../src/cluster/dlm-channel-actor';
import { TraceRecorder } from '../src/trace/recorder';
import { quietLogger } from './support/daemon-proc';

const mulberry32 = (seed: number) => { const p = new Prng(seed); return () => p.next(); };

interface NetFaults { drop: number; dup: number; jitterMs: number; up: boolean }

/** Nodes 1..k, each a DlmChannel, joined by a simulated lossy network on one ManualClock. */
class SimNet {
  readonly clock = new ManualClock();
  readonly nodes = new Map<number, DlmChannel>();
  readonly got = new Map<string, number[]>(); // "from>to" -> delivered payloads
  readonly faults: NetFaults = { drop: 0, dup: 0, jitterMs: 0, up: true };
  frames = 0;
  standaloneAcks = 0;
  /** Payloads whose frames the receiver's validator refuses (as the peer link would mark them). */
  readonly poisoned = new Set<number>();
  /** refused() calls: [node, to, payload, reason]. */
  readonly refused: Array<[number, number, number, string]> = [];
  /** Drop the next n standalone acks that name a refusal. */
  dropRefusalAcks = 0;
  /** How often each payload went on the wire. */
  readonly wireCount = new Map<number, number>();
  constructor(private readonly rnd: () => number, ids: number[]) {
    for (const id of ids) this.boot(id, 1000 + id);
  }

  boot(id: number, inc: number): DlmChannel {
    this.nodes.get(id)?.stop();
    const ch = new DlmChannel({
      selfInc: inc, clock: this.clock,
      transmit: (to, f) => this.transmit(id, to, f),
      deliver: (from, msg) => {
        const k = `${from}>${id}`;
        this.got.set(k, [...(this.got.get(k) ?? []), (msg as { epoch: number }).epoch]);
      },
      refused: (to, msg, reason) => this.refused.push([id, to, (msg as { epoch: number }).epoch, reason]),
      rtoMs: 50, maxRtoMs: 400, ackDelayMs: 5,
    });
    this.nodes.set(id, ch);
    return ch;
  }

  private transmit(from: number, to: number, f: ChannelFrame): void {
    this.frames++;
    if (f.type === 'dlmAck') this.standaloneAcks++;
    if (f.type === 'dlmAck' && f.refused && this.dropRefusalAcks > 0) { this.dropRefusalAcks--; return; }
    if (f.type === 'dlm' && 'msg' in f) {
      const p = (f.msg as { epoch: number }).epoch;
      this.wireCount.set(p, (this.wireCount.get(p) ?? 0) + 1);
      if (this.poisoned.has(p)) { const { msg: _m, ...rest } = f; f = { ...rest, invalid: `dlm message: payload ${p} refused` }; }
    }
    if (!this.faults.up || this.rnd() < this.faults.drop) return;
    const copies = this.rnd() < this.faults.dup ? 2 : 1;
    const source = this.nodes.get(from);
    for (let i = 0; i < copies; i++) {
      const target = this.nodes.get(to);
      // What a process sent dies with it (its connection is gone), and so does what was on its way to it.
      this.clock.setTimer(() => { if (this.nodes.get(to) === target && this.nodes.get(from) === source) target?.receive(from, f); }, 1 + Math.floor(this.rnd() * this.faults.jitterMs));
    }
  }

  send(from: number, to: number, payload: number): void {
    this.nodes.get(from)!.send(to, { t: 'recDone', epoch: payload } as DlmPeerMsg);
  }

  /** Advance time in small steps, so timers interleave as they would. */
  run(ms: number, step = 1): void { for (let t = 0; t < ms; t += step) this.clock.advance(step); }
}

describe('DlmChannel', () => {
  it('delivers every message exactly once and in order over a network that drops, duplicates, reorders and goes down (property)', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 2 ** 31 }),
      fc.double({ min: 0, max: 0.5, noNaN: true }),
      fc.double({ min: 0, max: 0.3, noNaN: true }),
      fc.integer({ min: 0, max: 30 }),
      fc.array(fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.boolean()), { minLength: 1, maxLength: 80 }),
      (seed, drop, dup, jitterMs, script) => {
        const net = new SimNet(mulberry32(seed), [1, 2, 3]);
        Object.assign(net.faults, { drop, dup, jitterMs });
        const sent = new Map<string, number[]>();
        let payload = 0;
        for (const [from, to0, outage] of script) {
          const to = from === to0 ? (to0 % 3) + 1 : to0;
          const p = ++payload;
          net.send(from, to, p);
          sent.set(`${from}>${to}`, [...(sent.get(`${from}>${to}`) ?? []), p]);
          if (outage) { net.faults.up = false; net.run(20); net.faults.up = true; for (const [id, ch] of net.nodes) for (const peer of [1, 2, 3]) if (peer !== id) ch.linkUp(peer); }
          net.run(3);
        }
        // Heal and let retransmission finish.
        Object.assign(net.faults, { drop: 0, dup: 0 });
        net.run(3000, 10);
        for (const [k, v] of sent) expect(net.got.get(k), k).to.deep.equal(v);
        for (const [k, v] of net.got) expect(sent.get(k), k).to.deep.equal(v);
        for (const ch of net.nodes.values()) expect(ch.stats.unacked).to.equal(0);
      }), { numRuns: 300 });
  });

  it('a receiver that restarted (lost its place) makes the sender start a new stream with what was not acknowledged', () => {
    const net = new SimNet(mulberry32(7), [1, 2]);
    for (let i = 1; i <= 5; i++) net.send(1, 2, i);
    net.run(100);
    expect(net.got.get('1>2')).to.deep.equal([1, 2, 3, 4, 5]);
    // Node 2 restarts; messages 6..8 reach the new process in the middle of stream 1.
    net.boot(2, 9999);
    net.got.delete('1>2');
    for (let i = 6; i <= 8; i++) net.send(1, 2, i);
    net.run(500);
    expect(net.got.get('1>2')).to.deep.equal([6, 7, 8]);
    expect(net.nodes.get(1)!.stats.streamResets).to.equal(1);
    expect(net.nodes.get(1)!.peerStatus(2).out).to.deep.include({ n: 2, acked: 3, next: 3 });
  });

  it('a sender that restarted starts a new stream the receiver joins at sequence 0, even when its first message is lost', () => {
    const net = new SimNet(mulberry32(8), [1, 2]);
    net.send(1, 2, 1);
    net.run(50);
    net.boot(1, 4242);
    net.faults.up = false;
    net.send(1, 2, 2); // lost
    net.faults.up = true;
    net.send(1, 2, 3); // arrives first: the receiver cannot join at seq 1 and says so
    net.run(500);
    expect(net.got.get('1>2')).to.deep.equal([1, 2, 3]);
    expect(net.nodes.get(2)!.peerStatus(1).in).to.deep.equal({ inc: 4242, n: 1, expected: 2 });
  });

  it('forget(peer) discards what was queued for it and the next message starts a new stream', () => {
    const net = new SimNet(mulberry32(9), [1, 2]);
    net.faults.up = false;
    net.send(1, 2, 1);
    net.send(1, 2, 2);
    expect(net.nodes.get(1)!.stats.unacked).to.equal(2);
    net.nodes.get(1)!.forget(2);
    expect(net.nodes.get(1)!.stats.unacked).to.equal(0);
    net.faults.up = true;
    net.send(1, 2, 3);
    net.run(200);
    expect(net.got.get('1>2')).to.deep.equal([3]);
  });

  it('acks ride on the replies: a request/reply exchange sends few standalone acks', () => {
    const net = new SimNet(mulberry32(10), [1, 2]);
    for (let i = 0; i < 200; i++) {
      net.send(1, 2, i);
      net.run(1);
      net.send(2, 1, i);
      net.run(1);
    }
    net.run(100);
    expect(net.got.get('1>2')).to.have.length(200);
    expect(net.got.get('2>1')).to.have.length(200);
    // 400 data frames; without piggybacking there would be ~400 acks.
    expect(net.standaloneAcks).to.be.below(10);
    expect(net.nodes.get(1)!.stats.retransmitted + net.nodes.get(2)!.stats.retransmitted).to.equal(0);
  });

  it('the unacknowledged queue is bounded: at the bound the stream is discarded and counted', () => {
    const clock = new ManualClock();
    const ch = new DlmChannel({ selfInc: 1, clock, transmit: () => {}, deliver: () => {}, maxUnacked: 100 });
    for (let i = 0; i < 250; i++) ch.send(2, { t: 'recDone', epoch: i });
    expect(ch.stats.overflowResets).to.equal(2);
    expect(ch.stats.unacked).to.equal(50);
    ch.stop();
  });

  it('a message the peer refuses costs neither the link nor the stream: the sender hears why, never sends it again, and what follows is delivered', () => {
    const net = new SimNet(mulberry32(7), [1, 2]);
    net.poisoned.add(3);
    net.dropRefusalAcks = 1; // the first ack naming the refusal is lost: later acks name it again
    for (let p = 1; p <= 6; p++) net.send(1, 2, p);
    net.run(500);
    expect(net.got.get('1>2')).to.deep.equal([1, 2, 4, 5, 6]);
    expect(net.refused).to.have.length(1);
    expect(net.refused[0]!.slice(0, 3)).to.deep.equal([1, 2, 3]);
    expect(net.refused[0]![3]).to.match(/node 2 refused it: dlm message: payload 3 refused/);
    const a = net.nodes.get(1)!.stats, b = net.nodes.get(2)!.stats;
    expect([a.refusedByPeer, b.refusedFromPeer, a.unacked]).to.deep.equal([1, 1, 0]);
    // Sent again only by a go-back before the ack came (the lost ack), never after it.
    const before = net.wireCount.get(3)!;
    for (let p = 7; p <= 9; p++) net.send(1, 2, p);
    net.run(500);
    expect(net.wireCount.get(3)).to.equal(before);
    expect(net.got.get('1>2')).to.deep.equal([1, 2, 4, 5, 6, 7, 8, 9]);
    expect(net.refused).to.have.length(1);
  });

  it('a message the peer\'s validator would refuse is never sent: refused at the origin', () => {
    const net = new SimNet(mulberry32(8), [1, 2]);
    net.send(1, 2, 1);
    net.nodes.get(1)!.send(2, { t: 'op', epoch: 1, lockspace: 'default', resource: 'r', op: { type: 'unlock', lockId: '1:1/1', lvb: Buffer.alloc(2000) } } as DlmPeerMsg);
    net.send(1, 2, 2);
    net.run(300);
    expect(net.got.get('1>2')).to.deep.equal([1, 2]);
    expect(net.refused.map((r) => [r[0], r[1]])).to.deep.equal([[1, 2]]);
    expect(net.refused[0]![3]).to.match(/field 'lvb' must be binary of at most 1024 bytes/);
    expect(net.nodes.get(1)!.stats).to.include({ refusedAtOrigin: 1, sent: 2 });
  });
});

describe('DlmChannelActor (the channel on the actor layer, traced)', () => {
  it('sends, frames received, acks and retransmission timers are messages of its mailbox: the trace shows each, in order; a turn\'s sends are one batch; a send after a forget is kept', async () => {
    const clock = new ManualClock();
    const log = quietLogger();
    const made: Array<{ sys: ActorSystem; rec: TraceRecorder; ch: DlmChannelActor }> = [];
    const got: number[] = [];
    let dropNextData = 2;
    const node = (id: number) => made[id - 1]!;
    for (const id of [1, 2]) {
      const sys = new ActorSystem(log);
      const rec = new TraceRecorder(id, clock, 1000);
      sys.tracer = rec;
      const ch = new DlmChannelActor(sys, {
        selfInc: 100 + id, clock,
        transmit: (to, f) => {
          if (f.type === 'dlm' && dropNextData > 0) { dropNextData--; return; }
          node(to).ch.receive(id, f);
        },
        deliver: (_from, m) => got.push(m.epoch),
      });
      made.push({ sys, rec, ch });
    }
    const turn = () => new Promise((r) => setImmediate(r));
    const settle = async () => { for (let i = 0; i < 20; i++) await turn(); };
    const a = node(1).ch;
    a.send(2, { t: 'recDone', epoch: 1 }); // both frames are lost
    a.send(2, { t: 'recDone', epoch: 2 }); // same turn: the same batch
    await settle();
    expect(got).to.deep.equal([]);
    clock.advance(250); // the retransmission timeout
    await settle();
    clock.advance(50); // the delayed ack
    await settle();
    expect(got).to.deep.equal([1, 2]);
    a.send(2, { t: 'recDone', epoch: 3 });
    a.forget(2);
    a.send(2, { t: 'recDone', epoch: 4 }); // after the forget: a new stream, delivered
    await settle();
    clock.advance(300);
    await settle();
    expect(got.slice(2)).to.include(4);
    const ev1 = node(1).rec.page(0, {}, 1 << 20).events.filter((e) => e.to.startsWith('dlm-channel'));
    const ev2 = node(2).rec.page(0, {}, 1 << 20).events.filter((e) => e.to.startsWith('dlm-channel'));
    const t1 = ev1.map((e) => `${e.type}${e.info ? `:${e.info}` : ''}`);
    expect(t1.slice(0, 2)).to.deep.equal(['dlm.send', 'dlm.timer:retransmit']); // one event for the batch of two
    expect(ev1[0]).to.include({ peer: 2, sub: 'dlm.recDone', epoch: 1 });
    expect(t1).to.include('dlm.receive'); // node 2's ack
    expect(ev1.find((e) => e.type === 'dlm.receive')!.sub).to.equal('dlmAck');
    expect(t1.slice(t1.indexOf('dlm.receive'))).to.include.members(['dlm.send', 'dlm.forget']);
    expect(ev2.map((e) => e.type)).to.include.members(['dlm.receive', 'dlm.timer']);
    expect(ev2.find((e) => e.type === 'dlm.timer')!.info).to.equal('ack');
    for (const m of made) { m.ch.stop(); m.sys.shutdown(); }
  });
});
