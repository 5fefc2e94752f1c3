/** Unit tests of the lock engine core: matrix, queue order, conversions, deadlock, NOQUEUE,
 *  cancel, timeout, LVB rules, tokens, BASTs, purge, rebuild. */
import { expect } from 'chai';
import { COMPAT, compatible, isDownConversion, Mode, MODE_NAMES } from '../src/dlm/modes';
import { ResourceCore, ResourceEvent, UNSTAMPED, deadlockFreeOrder } from '../src/dlm/resource';
import { LockError } from '../src/dlm/types';

const { NL, CR, CW, PR, PW, EX } = Mode;

function only<T extends ResourceEvent['type']>(ev: ResourceEvent[], type: T) {
  return ev.filter((e) => e.type === type) as Extract<ResourceEvent, { type: T }>[];
}
const granted = (ev: ResourceEvent[]) => only(ev, 'granted').map((e) => e.lockId);
const failed = (ev: ResourceEvent[]) => only(ev, 'failed').map((e) => `${e.lockId}:${e.code}`);
const basts = (ev: ResourceEvent[]) => only(ev, 'bast').map((e) => `${e.lockId}:${MODE_NAMES[e.mode]}`);

describe('lock modes', () => {
  it('compatibility matrix is the standard VMS table and symmetric', () => {
    const expected = [
      '111111', '111110', '111000', '110100', '110000', '100000',
    ];
    expect(COMPAT.map((r) => r.map((b) => (b ? '1' : '0')).join(''))).to.deep.equal(expected);
    for (let a = 0; a < 6; a++) for (let b = 0; b < 6; b++) expect(compatible(a, b)).to.equal(compatible(b, a));
  });

  it('PR<->CW are middle conversions, not down-conversions', () => {
    expect(isDownConversion(PR, CW)).to.equal(false);
    expect(isDownConversion(CW, PR)).to.equal(false);
    expect(isDownConversion(EX, PR)).to.equal(true);
    expect(isDownConversion(PR, EX)).to.equal(false);
  });
});

describe('ResourceCore', () => {
  let r: ResourceCore;
  beforeEach(() => { r = new ResourceCore(32); });

  it('grants compatible requests at once and queues incompatible ones', () => {
    expect(granted(r.request('a', 'o1', PR))).to.deep.equal(['a']);
    expect(granted(r.request('b', 'o2', PR))).to.deep.equal(['b']);
    const ev = r.request('c', 'o3', EX);
    expect(granted(ev)).to.deep.equal([]);
    expect(only(ev, 'queued')).to.have.length(1);
    expect(basts(ev)).to.deep.equal(['a:EX', 'b:EX']);
  });

  it('a waiting EX is not starved by a stream of PR requests (FIFO)', () => {
    r.request('a', 'o1', PR);
    r.request('x', 'o2', EX);
    // New PR requests queue behind the waiting EX even though they are compatible with 'a'.
    for (let i = 0; i < 5; i++) expect(granted(r.request(`p${i}`, 'o3', PR))).to.deep.equal([]);
    const ev = r.unlock('a');
    expect(granted(ev)).to.deep.equal(['x']);
    // x now blocks the PRs: it is told once, with the mode they want.
    expect(basts(ev)).to.deep.equal(['x:PR']);
    expect(granted(r.unlock('x'))).to.deep.equal(['p0', 'p1', 'p2', 'p3', 'p4']);
  });

  it('conversions are served before new requests', () => {
    r.request('a', 'o1', PR);
    r.request('b', 'o2', PR);
    r.request('w', 'o3', PW); // waits
    expect(only(r.convert('a', EX), 'queued')).to.have.length(1); // blocked by b
    const ev = r.unlock('b');
    expect(granted(ev)).to.deep.equal(['a']); // the conversion, not the waiting PW
  });

  it('down-conversion is granted in place and may unblock waiters', () => {
    r.request('a', 'o1', EX);
    r.request('b', 'o2', PR);
    const ev = r.convert('a', PR);
    expect(granted(ev)).to.deep.equal(['a', 'b']);
    expect(r.view().granted.map((l) => MODE_NAMES[l.grMode!])).to.deep.equal(['PR', 'PR']);
  });

  it('up-conversion queues while something else is converting', () => {
    r.request('a', 'o1', NL);
    r.request('b', 'o2', PR);
    r.request('c', 'o3', NL);
    expect(only(r.convert('a', EX), 'queued')).to.have.length(1);
    // c's NL->CR would be compatible, but a conversion is ahead of it: FIFO.
    expect(only(r.convert('c', CR), 'queued')).to.have.length(1);
    const ev = r.unlock('b');
    expect(granted(ev)).to.deep.equal(['a']);
    expect(basts(ev)).to.deep.equal(['a:CR']);
    expect(granted(r.convert('a', NL))).to.deep.equal(['a', 'c']);
  });

  it('conversion deadlock: exactly one of two PR->EX converters fails, the later one', () => {
    r.request('a', 'o1', PR);
    r.request('b', 'o2', PR);
    expect(only(r.convert('a', EX), 'queued')).to.have.length(1);
    const ev = r.convert('b', EX);
    expect(failed(ev)).to.deep.equal(['b:DEADLOCK']);
    expect(r.view().granted.find((l) => l.lockId === 'b')!.grMode).to.equal(PR); // keeps its mode
    expect(granted(r.unlock('b'))).to.deep.equal(['a']);
  });

  it('NOQUEUE fails at once with NOTQUEUED and leaves no trace', () => {
    r.request('a', 'o1', EX);
    expect(failed(r.request('b', 'o2', PR, { noqueue: true }))).to.deep.equal(['b:NOTQUEUED']);
    expect(r.has('b')).to.equal(false);
    r.request('c', 'o3', NL);
    expect(failed(r.convert('c', PR, { noqueue: true }))).to.deep.equal(['c:NOTQUEUED']);
    expect(r.view().granted.find((l) => l.lockId === 'c')!.grMode).to.equal(NL);
  });

  it('cancel withdraws a waiting request or a conversion; cancel of a granted lock is BUSY', () => {
    r.request('a', 'o1', EX);
    r.request('c', 'o3', NL);
    r.request('b', 'o2', EX);
    r.convert('c', PR);
    expect(failed(r.cancel('b'))).to.deep.equal(['b:CANCELLED']);
    expect(r.has('b')).to.equal(false);
    expect(failed(r.cancel('c'))).to.deep.equal(['c:CANCELLED']);
    expect(r.view().granted.find((l) => l.lockId === 'c')!.grMode).to.equal(NL);
    expect(() => r.cancel('a')).to.throw(LockError).with.property('code', 'BUSY');
  });

  it('cancelling a blocked head lets those behind it through', () => {
    r.request('a', 'o1', PR);
    r.request('x', 'o2', EX);
    r.request('p', 'o3', PR);
    expect(granted(r.cancel('x'))).to.deep.equal(['p']);
  });

  it('expire ends a pending request with TIMEOUT; a late timer after the grant does nothing', () => {
    r.request('a', 'o1', EX);
    r.request('b', 'o2', EX);
    expect(failed(r.expire('b'))).to.deep.equal(['b:TIMEOUT']);
    r.request('c', 'o3', EX);
    r.unlock('a');
    expect(r.expire('c')).to.deep.equal([]);
  });

  it('unlock of a converting lock cancels the conversion, then releases', () => {
    r.request('a', 'o1', PR);
    r.request('b', 'o2', PR);
    r.convert('a', EX);
    const ev = r.unlock('a');
    expect(ev.map((e) => e.type)).to.deep.equal(['failed', 'released']);
  });

  it('fencing tokens increase strictly with each PW/EX grant and are carried by other grants', () => {
    const t1 = only(r.request('a', 'o1', EX), 'granted')[0]!.grant.token;
    r.unlock('a');
    const t2 = only(r.request('b', 'o1', PW), 'granted')[0]!.grant.token;
    const t3 = only(r.convert('b', EX), 'granted')[0]!.grant.token;
    r.unlock('b');
    const pr = only(r.request('c', 'o1', PR), 'granted')[0]!.grant.token;
    expect([t1, t2, t3]).to.deep.equal([1, 2, 3]);
    expect(pr).to.equal(3);
    expect(new ResourceCore(8, 41).request('z', 'o', EX).find((e) => e.type === 'granted')).to.have.nested.property('grant.token', 42);
  });

  describe('lock value block', () => {
    it('starts invalid, is written back by PW/EX on unlock and on down-conversion, returned with grants', () => {
      const g0 = only(r.request('a', 'o1', EX), 'granted')[0]!.grant;
      expect(g0.lvbValid).to.equal(false);
      expect(g0.lvb).to.have.length(32);
      r.convert('a', PR, { lvb: Buffer.from('hello') });
      const g1 = only(r.request('b', 'o2', PR), 'granted')[0]!.grant;
      expect(g1.lvbValid).to.equal(true);
      expect(g1.lvb.subarray(0, 5).toString()).to.equal('hello');
      expect(g1.lvb[5]).to.equal(0);
    });

    it('is not written by a holder below PW', () => {
      r.request('a', 'o1', EX);
      r.unlock('a', Buffer.from('v1'));
      r.request('b', 'o2', PR);
      r.unlock('b', Buffer.from('xx'));
      const g = only(r.request('c', 'o3', PR), 'granted')[0]!.grant;
      expect(g.lvb.subarray(0, 2).toString()).to.equal('v1');
    });

    it('becomes invalid when a PW/EX holder is purged without writing it', () => {
      r.request('a', 'o1', EX);
      r.unlock('a', Buffer.from('v1'));
      r.request('b', 'o2', PW);
      r.request('w', 'o3', PR);
      const ev = r.purgeOwner('o2');
      const g = only(ev, 'granted')[0]!.grant;
      expect(g.lvbValid).to.equal(false);
      expect(ev.every((e) => e.owner !== 'o2')).to.equal(true);
    });

    it('rejects an LVB larger than the configured size without changing anything', () => {
      r.request('a', 'o1', EX);
      expect(() => r.unlock('a', Buffer.alloc(33))).to.throw(LockError).with.property('code', 'INVALID');
      expect(r.has('a')).to.equal(true);
    });
  });

  it('a holder is told once per grant, again after it is re-granted', () => {
    r.request('a', 'o1', PR);
    expect(basts(r.request('b', 'o2', EX))).to.deep.equal(['a:EX']);
    expect(basts(r.request('c', 'o3', EX))).to.deep.equal([]); // already told
    // down-converting to CR still blocks EX: told again for the new grant
    expect(basts(r.convert('a', CR))).to.deep.equal(['a:EX']);
  });

  it('purgeOwner drops every lock of the owner and grants what it blocked', () => {
    r.request('a', 'o1', EX);
    r.request('a2', 'o1', NL);
    r.request('b', 'o2', EX);
    const ev = r.purgeOwner('o1');
    expect(granted(ev)).to.deep.equal(['b']);
    expect(r.has('a')).to.equal(false);
    expect(r.has('a2')).to.equal(false);
  });

  it('rebuild restores granted locks with tokens resuming above every recorded token', () => {
    const core = ResourceCore.rebuild(32, 5, [
      { lockId: 'a', owner: 'o1', grMode: PR, token: 9 },
      { lockId: 'b', owner: 'o2', grMode: CR, token: 7 },
    ]);
    expect(core.view().granted).to.have.length(2);
    const g = only(core.request('c', 'o3', CW), 'queued');
    expect(g).to.have.length(1);
    expect(granted(core.unlock('a'))).to.deep.equal(['c']);
    expect(() => ResourceCore.rebuild(32, 0, [
      { lockId: 'a', owner: 'o1', grMode: EX, token: 1 },
      { lockId: 'b', owner: 'o2', grMode: PR, token: 1 },
    ])).to.throw(LockError);
    const fresh = ResourceCore.rebuild(32, 5, [{ lockId: 'a', owner: 'o1', grMode: NL, token: 9 }]);
    expect(only(fresh.request('x', 'o2', EX), 'granted')[0]!.grant.token).to.equal(10);
  });

  it('a token ceiling stops PW/EX grants before they reach it; other modes go on', () => {
    const c = new ResourceCore(8, 10, 12);
    expect(only(c.request('a', 'o1', EX), 'granted')[0]!.grant.token).to.equal(11);
    c.unlock('a');
    expect(failed(c.request('b', 'o1', PW, { noqueue: true }))).to.deep.equal(['b:NOTQUEUED']);
    expect(only(c.request('c', 'o1', EX), 'queued')).to.have.length(1);
    expect(only(new ResourceCore(8, 10, 12).request('r', 'o', PR), 'granted')).to.have.length(1);
    expect(c.tokenCounter).to.equal(11);
  });

  it('tokens above 2^32 are exact: epochs as the cluster uses them, a lock kept from an older epoch, two ceilings at once', () => {
    const E = 2 ** 32;
    const c = new ResourceCore(8, 3 * E, 4 * E); // epoch 3
    expect(only(c.request('a', 'o1', EX), 'granted')[0]!.grant.token).to.equal(3 * E + 1);
    c.unlock('a');
    expect(only(c.request('b', 'o1', PR), 'granted')[0]!.grant.token).to.equal(3 * E + 1);
    expect(c.tokenCounter).to.equal(3 * E + 1);
    // Rebuilt in epoch 5 from a holder that kept its epoch-1 token, next to one of epoch 4.
    const r5 = ResourceCore.rebuild(8, 5 * E, [
      { lockId: 'old', owner: 'o1', grMode: CR, token: E + 7 },
      { lockId: 'mid', owner: 'o2', grMode: CR, token: 4 * E + 2 },
    ], undefined, 6 * E);
    expect(r5.view().granted.map((l) => l.token)).to.deep.equal([E + 7, 4 * E + 2]);
    expect(r5.tokenCounter).to.equal(5 * E);
    expect(only(r5.request('w', 'o3', PW), 'granted')[0]!.grant.token).to.equal(5 * E + 1);
    // A core of another ceiling made meanwhile keeps its own base.
    const other = new ResourceCore(8, 9 * E + 4, 10 * E);
    expect(only(other.request('x', 'o1', EX), 'granted')[0]!.grant.token).to.equal(9 * E + 5);
    expect(r5.view().granted.map((l) => l.token)).to.deep.equal([E + 7, 4 * E + 2, 5 * E + 1]);
    expect(c.tokenCeiling).to.equal(4 * E);
    expect(new ResourceCore(8).tokenCeiling).to.equal(Number.MAX_SAFE_INTEGER);
  });

  it('carries the caller\'s tag on every event of a lock and keeps its stamp', () => {
    const t1 = { who: 1 }, t2 = { who: 2 };
    expect(r.request('a', 'o1', PR, {}, t1).map((e) => e.tag)).to.deep.equal([t1]);
    const ev = r.request('b', 'o2', EX, {}, t2); // queued, and a BAST to a
    expect(ev.map((e) => `${e.type}:${e.lockId}:${(e.tag as { who: number }).who}`)).to.deep.equal(['queued:b:2', 'bast:a:1']);
    expect(r.request('n', 'o3', EX, { noqueue: true }, t1).map((e) => [e.type, e.tag])).to.deep.equal([['failed', t1]]);
    r.stamp('a', 123);
    expect([...r.tagged()]).to.deep.equal([['a', t1, 123], ['b', t2, UNSTAMPED]]);
    expect(r.tagOf('b')).to.equal(t2);
    expect(r.unlock('a').map((e) => `${e.type}:${e.lockId}:${(e.tag as { who: number }).who}`)).to.deep.equal(['released:a:1', 'granted:b:2']);
    expect(r.tagOf('a')).to.equal(undefined);
  });

  it('counts granted modes right when the second holder arrives and after holders leave', () => {
    // One granted lock is its own count; the counts start with the second.
    r.request('a', 'o1', PR);
    expect(granted(r.convert('a', PW))).to.deep.equal(['a']); // alone: up-converts at once
    expect(granted(r.convert('a', PR))).to.deep.equal(['a']);
    expect(granted(r.request('b', 'o2', PR))).to.deep.equal(['b']);
    expect(granted(r.request('c', 'o3', CW))).to.deep.equal([]);
    expect(granted(r.unlock('a'))).to.deep.equal([]);
    expect(granted(r.unlock('b'))).to.deep.equal(['c']);
    expect(granted(r.request('d', 'o4', PR))).to.deep.equal([]);
    expect(granted(r.request('e', 'o5', CR))).to.deep.equal([]); // FIFO behind d
    r.unlock('c');
    expect(r.view().granted.map((l) => l.lockId)).to.deep.equal(['d', 'e']);
    expect(granted(r.request('f', 'o6', EX, { noqueue: true }))).to.deep.equal([]);
  });

  it('rejects a duplicate lock id and unknown locks', () => {
    r.request('a', 'o1', NL);
    expect(() => r.request('a', 'o1', NL)).to.throw(LockError).with.property('code', 'INVALID');
    expect(() => r.unlock('zz')).to.throw(LockError).with.property('code', 'NOTFOUND');
    expect(() => r.convert('zz', EX)).to.throw(LockError).with.property('code', 'NOTFOUND');
  });

  it('CW and PR exclude each other; CR coexists with PW', () => {
    r.request('a', 'o1', CW);
    expect(granted(r.request('b', 'o2', PR, { noqueue: true }))).to.deep.equal([]);
    const r2 = new ResourceCore(8);
    r2.request('a', 'o1', PW);
    expect(granted(r2.request('b', 'o2', CR))).to.deep.equal(['b']);
  });
});

describe('deadlockFreeOrder (recovery re-queues conversions)', () => {
  type Conv = { lockId: string; grMode: Mode; rqMode: Mode };
  /** Rebuild the granted state, then re-issue the conversions in `order`: the codes they fail with. */
  function requeue(granted: Array<{ lockId: string; grMode: Mode }>, order: Conv[]): string[] {
    const core = ResourceCore.rebuild(32, 0, granted.map((g) => ({ ...g, owner: g.lockId, token: 0 })));
    const out: string[] = [];
    for (const c of order) out.push(...failed(core.convert(c.lockId, c.rqMode)));
    return out;
  }

  it('keeps an earlier conversion ahead of a later one that a lock-id order would put first', () => {
    // T holds PW; p (CR->PR) queued first, then q (NL->EX): no deadlock. By lock id q would
    // go first and p (whose CR blocks q's EX) would fail DEADLOCK after every recovery.
    const granted = [{ lockId: 't', grMode: PW }, { lockId: 'p', grMode: CR }, { lockId: 'a-q', grMode: NL }];
    const convs: Conv[] = [{ lockId: 'p', grMode: CR, rqMode: PR }, { lockId: 'a-q', grMode: NL, rqMode: EX }];
    expect(requeue(granted, [...convs].sort((a, b) => (a.lockId < b.lockId ? -1 : 1)))).to.deep.equal(['p:DEADLOCK']);
    const order = deadlockFreeOrder(convs);
    expect(order.map((c) => c.lockId)).to.deep.equal(['p', 'a-q']);
    expect(requeue(granted, order)).to.deep.equal([]);
  });

  it('re-queues every deadlock-free converting queue, shuffled, without a DEADLOCK', () => {
    let seed = 12345;
    const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
    for (let run = 0; run < 500; run++) {
      // Build a real queue: a blocker in EX, then holders converting in random order.
      const core = new ResourceCore(32);
      core.request('blk', 'blk', NL);
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) { const id = `l${rnd(1000)}-${i}`; core.request(id, id, rnd(6) as Mode); ids.push(id); }
      const held = core.view().granted.map((g) => g.lockId);
      core.convert('blk', EX, { noqueue: true }); // usually refused; a blocker otherwise
      for (const id of held) if (id !== 'blk' && rnd(2) === 0) core.convert(id, rnd(6) as Mode);
      const v = core.view();
      const convs: Conv[] = v.converting.map((c) => ({ lockId: c.lockId, grMode: c.grMode!, rqMode: c.rqMode! }));
      const granted = v.granted.map((g) => ({ lockId: g.lockId, grMode: g.grMode! }));
      for (let i = convs.length - 1; i > 0; i--) { const j = rnd(i + 1); [convs[i], convs[j]] = [convs[j]!, convs[i]!]; }
      expect(requeue(granted, deadlockFreeOrder(convs)), `run ${run}`).to.deep.equal([]);
    }
  });
});
