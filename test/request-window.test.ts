/**
 * The request window of the daemon's request socket (src/ffi/request-window.ts), against a fake
 * netlink socket that accounts answers as the kernel does: an answer is queued while the
 * queued bytes stay below the buffer, else refused, and once one was refused every later one is
 * refused until the queue is empty (NETLINK_S_CONGESTED). The kernel answers inside the send.
 */
import { expect } from 'chai';
import { answerTruesizeBound, RequestWindow, windowCapacity } from '../src/ffi/request-window';

interface Answer { key: number; final: boolean; bytes: number }

class FakeNetlinkSocket {
  queue: Answer[] = [];
  rmem = 0;
  congested = false;
  refused = 0;
  constructor(readonly rcvbuf: number) {}
  /** The kernel's answers to request `key`: its replies, then the ack. */
  answer(key: number, replies: number, bytes: number): void {
    for (let i = 0; i <= replies; i++) {
      if (!this.congested && (this.rmem === 0 || this.rmem + bytes < this.rcvbuf)) {
        this.queue.push({ key, final: i === replies, bytes });
        this.rmem += bytes;
      } else {
        this.congested = true;
        this.refused++;
      }
    }
  }
  read(): Answer | undefined {
    const a = this.queue.shift();
    if (a) this.rmem -= a.bytes;
    if (!this.queue.length) this.congested = false;
    return a;
  }
}

interface Req { name: string; replies: number }

/** A window over the fake socket; the daemon reads one answer per `read()`. */
function rig(rcvbuf: number, windowRcvbuf: number, msgBytes: number) {
  const sock = new FakeNetlinkSocket(rcvbuf);
  const sent: string[] = [];
  const lost: string[] = [];
  let seq = 0;
  const w = new RequestWindow<Req>({ rcvbuf: windowRcvbuf, msgBytes }, (r) => {
    seq++;
    sent.push(r.name);
    sock.answer(seq, r.replies, msgBytes);
    return seq;
  }, () => { throw new Error('no send fails here'); });
  const read = (): boolean => {
    const a = sock.read();
    if (!a) return false;
    for (const r of w.answered(a.key, a.final)) lost.push(r.name);
    return true;
  };
  return { sock, sent, lost, w, read };
}

describe('request window (the daemon\'s request socket)', () => {
  const msgBytes = answerTruesizeBound(4096);
  const rcvbuf = 2 * 212992; // net.core.rmem_max's default, doubled by the kernel

  it('holds as many answers as fit the buffer at their largest truesize', () => {
    expect(msgBytes).to.equal(4608);
    expect(windowCapacity({ rcvbuf, msgBytes })).to.equal(92);
    expect(92 * msgBytes).to.be.below(rcvbuf);
    expect(93 * msgBytes).to.be.above(rcvbuf);
    expect(answerTruesizeBound(65536)).to.equal(8704);
  });

  it('4 000 grants and renewals read slowly: no answer refused, every renewal sent at once, the grants in order', () => {
    const r = rig(rcvbuf, rcvbuf, msgBytes);
    for (let i = 0; i < 4000; i++) r.w.submit({ name: `g${i}`, replies: 0 }, 1, 'bulk');
    expect(r.w.stats.queued).to.be.above(3800);
    let renewals = 0;
    let reads = 0;
    while (r.read()) {
      reads++;
      if (reads % 97 === 0) {
        // A lease renewal (LEASE_INFO + ack) while thousands of grants wait: it leaves at once.
        const before = r.sent.length;
        r.w.submit({ name: `renew${renewals++}`, replies: 1 }, 2, 'urgent');
        expect(r.sent.length).to.equal(before + 1);
        expect(r.sent[before]).to.equal(`renew${renewals - 1}`);
      }
    }
    expect(r.sock.refused).to.equal(0);
    expect(r.lost).to.deep.equal([]);
    expect(r.w.stats).to.include({ queued: 0, inFlightMsgs: 0, lost: 0 });
    expect(r.w.stats.inFlightMax).to.be.at.most(92);
    const grants = r.sent.filter((n) => n.startsWith('g'));
    expect(grants).to.have.length(4000);
    expect(grants.every((n, i) => n === `g${i}`)).to.equal(true);
    expect(renewals).to.be.above(40);
  });

  it('without the window (an unbounded one) the same burst has answers refused: the fake socket catches it', () => {
    const r = rig(rcvbuf, Infinity, msgBytes);
    for (let i = 0; i < 4000; i++) r.w.submit({ name: `g${i}`, replies: 0 }, 1, 'bulk');
    while (r.read()) { /* drain */ }
    expect(r.sock.refused).to.be.above(3000);
  });

  it('renewals queued behind a full window go before every queued grant', () => {
    // No reserve: the urgent request must wait for room, but jumps the queue.
    const sock = new FakeNetlinkSocket(rcvbuf);
    const sent: string[] = [];
    let seq = 0;
    const w = new RequestWindow<string>({ rcvbuf: 10 * msgBytes + 1, msgBytes, reserveMsgs: 0 }, (n) => {
      sent.push(n);
      sock.answer(++seq, 0, msgBytes);
      return seq;
    }, () => {});
    for (let i = 0; i < 30; i++) w.submit(`g${i}`, 1, 'bulk');
    expect(sent).to.have.length(10);
    w.submit('renew', 2, 'urgent');
    expect(sent).to.have.length(10);
    w.answered(1, true);                       // one slot: not enough for the renewal's two
    expect(sent).to.have.length(10);
    w.answered(2, true);
    expect(sent.slice(10)).to.deep.equal(['renew']);
    w.answered(3, true);
    expect(sent.slice(11)).to.deep.equal(['g10']);
  });

  it('answers come in send order: an answer of a later request shows the earlier ones were lost', () => {
    const lost: string[] = [];
    let seq = 0;
    const w = new RequestWindow<string>({ rcvbuf, msgBytes }, () => ++seq, () => {});
    for (const n of ['a', 'b', 'c', 'd']) w.submit(n, 2, 'bulk');
    lost.push(...w.answered(1, false));        // a's reply: nothing lost, a still in flight
    expect(lost).to.deep.equal([]);
    expect(w.stats.inFlightMsgs).to.equal(8);
    lost.push(...w.answered(1, true));
    lost.push(...w.answered(4, true));         // d's ack before b's and c's
    expect(lost).to.deep.equal(['b', 'c']);
    expect(w.stats).to.include({ inFlightMsgs: 0, lost: 2 });
    expect(w.answered(2, true)).to.deep.equal([]); // retired already
  });

  it('a request whose answers alone exceed the window is sent alone, and nothing beside it', () => {
    const sent: string[] = [];
    let seq = 0;
    const w = new RequestWindow<string>({ rcvbuf: 10 * msgBytes + 1, msgBytes }, (n) => { sent.push(n); return ++seq; }, () => {});
    w.submit('g1', 1, 'bulk');
    w.submit('status-of-all', Infinity, 'urgent');
    w.submit('g2', 1, 'bulk');
    expect(sent).to.deep.equal(['g1']);
    w.answered(1, true);
    expect(sent).to.deep.equal(['g1', 'status-of-all']);
    w.answered(2, false);                      // its replies: still in flight
    expect(sent).to.have.length(2);
    w.answered(2, true);
    expect(sent).to.deep.equal(['g1', 'status-of-all', 'g2']);
  });

  it('a request that cannot be sent takes no slot and is failed; drain() gives back the rest', () => {
    const failed: string[] = [];
    let seq = 0;
    const w = new RequestWindow<string>({ rcvbuf: 3 * msgBytes + 1, msgBytes, reserveMsgs: 0 }, (n) => {
      if (n === 'bad') throw new Error('nl_send_auto failed');
      return ++seq;
    }, (n) => failed.push(n));
    w.submit('bad', 1, 'bulk');
    for (const n of ['a', 'b', 'c', 'd']) w.submit(n, 1, 'bulk');
    expect(failed).to.deep.equal(['bad']);
    expect(w.stats).to.include({ inFlightMsgs: 3, queued: 1 });
    expect(w.drain()).to.deep.equal(['a', 'b', 'c', 'd']);
    expect(w.stats).to.include({ inFlightMsgs: 0, queued: 0 });
  });
});
