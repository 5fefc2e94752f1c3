/**
 * The checker must catch what it is there to catch: hand-written histories with one
 * violation each, and a property test (fast-check) over histories produced by a correct
 * model (no violation) and then corrupted (the corruption is reported).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { check } from '../src/failover/checker';
import { HistoryEvent, parseNdjson, toNdjson } from '../src/failover/history';
import { FencedStore } from '../src/failover/store';
import { History } from '../src/failover/history';
import { compatible, Mode, MODE_NAMES, ModeName } from '../src/dlm/modes';
import { figures, recoveries } from '../src/failover/report';
import { Prng } from '../src/failover/prng';

/** A tiny history builder: grant/unlock/lost/write with explicit times. */
class H {
  ev: HistoryEvent[] = [];
  private op = 1;
  grant(t: number, client: string, resource: string, lock: number, mode: ModeName, token: number, node = 1): this {
    const op = this.op++;
    this.ev.push({ t: t - 1, type: 'invoke', op, kind: 'lock', client, node, resource, lock, mode });
    this.ev.push({ t, type: 'ok', op, kind: 'lock', client, node, resource, lock, mode, token });
    return this;
  }
  unlock(t: number, client: string, resource: string, lock: number, node = 1): this {
    const op = this.op++;
    this.ev.push({ t, type: 'invoke', op, kind: 'unlock', client, node, resource, lock });
    this.ev.push({ t: t + 1, type: 'ok', op, kind: 'unlock', client, node, resource, lock });
    return this;
  }
  lost(t: number, client: string, resource: string, lock: number, validUntil?: number, node = 1): this {
    this.ev.push({ t, type: 'lost', client, node, resource, lock, reason: 'test', ...(validUntil !== undefined ? { validUntil } : {}) });
    return this;
  }
  write(t: number, client: string, resource: string, lock: number, token: number, accepted: boolean, node = 1): this {
    this.ev.push({ t, type: 'write', client, node, resource, lock, token, accepted, highest: 0 });
    return this;
  }
  push(e: HistoryEvent): this { this.ev.push(e); return this; }
  sorted(): HistoryEvent[] { return [...this.ev].sort((a, b) => a.t - b.t); }
}

const kinds = (ev: HistoryEvent[], o = {}) => check(ev, o).violations.map((v) => v.kind);

describe('failover checker', () => {
  it('accepts a clean serial history and compatible overlaps', () => {
    const h = new H()
      .grant(10, 'a', 'r', 1, 'EX', 1).write(12, 'a', 'r', 1, 1, true).unlock(20, 'a', 'r', 1)
      .grant(25, 'b', 'r', 1, 'PR', 1).grant(26, 'c', 'r', 1, 'PR', 1).grant(27, 'd', 'r', 1, 'CR', 1)
      .unlock(30, 'b', 'r', 1).unlock(31, 'c', 'r', 1).unlock(32, 'd', 'r', 1)
      .grant(40, 'b', 'r', 2, 'PW', 2).grant(41, 'c', 'r', 2, 'CR', 2).unlock(50, 'b', 'r', 2).unlock(51, 'c', 'r', 2);
    expect(kinds(h.sorted())).to.deep.equal([]);
  });

  it('reports two EX holders overlapping', () => {
    const h = new H().grant(10, 'a', 'r', 1, 'EX', 1).grant(15, 'b', 'r', 1, 'EX', 2).unlock(20, 'a', 'r', 1).unlock(25, 'b', 'r', 1);
    const r = check(h.sorted());
    expect(r.violations.map((v) => v.kind)).to.deep.equal(['overlap']);
    expect(r.violations[0]!.text).to.match(/b got EX .* while a held EX/);
  });

  it('reports PR overlapping CW (middle modes are incompatible)', () => {
    const h = new H().grant(10, 'a', 'r', 1, 'PR', 1).grant(11, 'b', 'r', 1, 'CW', 1).unlock(20, 'a', 'r', 1).unlock(21, 'b', 'r', 1);
    expect(kinds(h.sorted())).to.deep.equal(['overlap']);
  });

  it('ends a lost grant at validUntil when the keepalive bound ran out before the notification', () => {
    // a's library bound expired at 30; it was told only at 60; b was granted at 40: no overlap.
    const ok = new H().grant(10, 'a', 'r', 1, 'EX', 1).lost(60, 'a', 'r', 1, 30).grant(40, 'b', 'r', 1, 'EX', 2).unlock(70, 'b', 'r', 1);
    expect(kinds(ok.sorted())).to.deep.equal([]);
    // Without validUntil, a believed it held r until 60: overlap.
    const bad = new H().grant(10, 'a', 'r', 1, 'EX', 1).lost(60, 'a', 'r', 1).grant(40, 'b', 'r', 1, 'EX', 2).unlock(70, 'b', 'r', 1);
    expect(kinds(bad.sorted())).to.deep.equal(['overlap']);
  });

  it('reports an accepted write from a holder whose lock was lost, and counts a rejected one', () => {
    const h = new H().grant(10, 'a', 'r', 1, 'EX', 1).lost(20, 'a', 'r', 1).write(25, 'a', 'r', 1, 1, true);
    expect(kinds(h.sorted())).to.deep.equal(['stale-write']);
    const h2 = new H().grant(10, 'a', 'r', 1, 'EX', 1).lost(20, 'a', 'r', 1).grant(30, 'b', 'r', 1, 'EX', 2).write(31, 'b', 'r', 1, 2, true)
      .write(35, 'a', 'r', 1, 1, false).unlock(40, 'b', 'r', 1);
    const r = check(h2.sorted());
    expect(r.violations).to.deep.equal([]);
    expect(r.rejectedWrites).to.equal(1);
    expect(r.acceptedWrites).to.equal(1);
  });

  it('reports an accepted write after an unlock, and a write without any grant', () => {
    const h = new H().grant(10, 'a', 'r', 1, 'EX', 1).unlock(20, 'a', 'r', 1).write(22, 'a', 'r', 1, 1, true).write(30, 'z', 'r', 9, 5, true);
    expect(kinds(h.sorted())).to.deep.equal(['stale-write', 'write-no-grant']);
  });

  it('reports an accepted write from a node declared dead after the grant', () => {
    const h = new H()
      .push({ t: 1, type: 'view', node: 1, state: 'running', epoch: 1, members: [1, 2, 3] })
      .grant(10, 'a', 'r', 1, 'EX', 5, 3)
      .push({ t: 20, type: 'view', node: 1, state: 'running', epoch: 2, members: [1, 2] })
      .write(25, 'a', 'r', 1, 5, true, 3).lost(26, 'a', 'r', 1, undefined, 3);
    expect(kinds(h.sorted())).to.deep.equal(['dead-node-write']);
  });

  it('reports a leaked lock: no end in the history, a failed unlock, or listed by the cluster at the end', () => {
    expect(kinds(new H().grant(10, 'a', 'r', 1, 'EX', 1).sorted())).to.deep.equal(['leaked']);
    const failed = new H().grant(10, 'a', 'r', 1, 'EX', 1)
      .push({ t: 20, type: 'invoke', op: 99, kind: 'unlock', client: 'a', node: 1, resource: 'r', lock: 1 })
      .push({ t: 21, type: 'fail', op: 99, kind: 'unlock', client: 'a', node: 1, resource: 'r', lock: 1, code: 'INVALID' });
    expect(kinds(failed.sorted())).to.deep.equal(['leaked']);
    const listed = new H().grant(10, 'a', 'r', 1, 'EX', 1).push({ t: 15, type: 'client-gone', client: 'a', node: 1, reason: 'x' })
      .push({ t: 30, type: 'final-locks', node: 1, locks: [{ resource: 'default/r', owner: '1:4', mode: 'EX' }] });
    expect(kinds(listed.sorted())).to.deep.equal(['leaked']);
  });

  it('a client that went away ends its grants', () => {
    const h = new H().grant(10, 'a', 'r', 1, 'EX', 1).push({ t: 15, type: 'client-gone', client: 'a', node: 1, reason: 'x' }).grant(16, 'b', 'r', 1, 'EX', 2).unlock(20, 'b', 'r', 1);
    expect(kinds(h.sorted())).to.deep.equal([]);
  });

  it('reports PW/EX tokens that do not increase', () => {
    const h = new H().grant(10, 'a', 'r', 1, 'EX', 7).unlock(20, 'a', 'r', 1).grant(30, 'b', 'r', 1, 'PW', 7).unlock(40, 'b', 'r', 1)
      .grant(50, 'c', 'r', 1, 'EX', 3).unlock(60, 'c', 'r', 1);
    expect(kinds(h.sorted())).to.deep.equal(['token-order', 'token-order']);
  });

  it('handles conversions: an up-conversion starts a new segment, a down-conversion ends the old one at its invoke', () => {
    const h = new H().grant(10, 'a', 'r', 1, 'PR', 1)
      .push({ t: 20, type: 'invoke', op: 50, kind: 'convert', client: 'a', node: 1, resource: 'r', lock: 1, mode: 'EX' })
      .push({ t: 30, type: 'ok', op: 50, kind: 'convert', client: 'a', node: 1, resource: 'r', lock: 1, mode: 'EX', token: 2 })
      .push({ t: 40, type: 'invoke', op: 51, kind: 'convert', client: 'a', node: 1, resource: 'r', lock: 1, mode: 'NL' })
      .grant(41, 'b', 'r', 1, 'EX', 3)
      .push({ t: 42, type: 'ok', op: 51, kind: 'convert', client: 'a', node: 1, resource: 'r', lock: 1, mode: 'NL', token: 3 })
      .unlock(50, 'b', 'r', 1).unlock(60, 'a', 'r', 1);
    expect(kinds(h.sorted())).to.deep.equal([]);
    // b granted EX while a still converts up from PR (a still holds PR): overlap.
    const bad = new H().grant(10, 'a', 'r', 1, 'PR', 1)
      .push({ t: 20, type: 'invoke', op: 50, kind: 'convert', client: 'a', node: 1, resource: 'r', lock: 1, mode: 'EX' })
      .grant(25, 'b', 'r', 1, 'EX', 2).unlock(27, 'b', 'r', 1)
      .push({ t: 30, type: 'ok', op: 50, kind: 'convert', client: 'a', node: 1, resource: 'r', lock: 1, mode: 'EX', token: 3 })
      .unlock(40, 'a', 'r', 1);
    expect(kinds(bad.sorted())).to.deep.equal(['overlap']);
  });

  it('reports requests not served within the bound after the last fault', () => {
    const base = () => new H().push({ t: 100, type: 'fault', action: 'heal', nodes: [1], ends: true });
    const op = (h: H, t: number, id: number) => h.push({ t, type: 'invoke', op: id, kind: 'lock', client: 'w', node: 1, resource: 'r', lock: id, mode: 'EX' });
    // Invoked before the fault, granted 900 ms after it: fine with a 1000 ms bound.
    const ok = op(base(), 50, 1).push({ t: 1000, type: 'ok', op: 1, kind: 'lock', client: 'w', node: 1, resource: 'r', lock: 1, mode: 'EX', token: 1 }).unlock(1010, 'w', 'r', 1);
    expect(kinds(ok.sorted(), { serveBoundMs: 1000 })).to.deep.equal([]);
    const late = op(base(), 50, 1).push({ t: 1200, type: 'ok', op: 1, kind: 'lock', client: 'w', node: 1, resource: 'r', lock: 1, mode: 'EX', token: 1 }).unlock(1210, 'w', 'r', 1);
    expect(kinds(late.sorted(), { serveBoundMs: 1000 })).to.deep.equal(['not-served']);
    const never = op(base(), 200, 1).push({ t: 5000, type: 'step', text: 'end' });
    expect(kinds(never.sorted(), { serveBoundMs: 1000 })).to.deep.equal(['not-served']);
    const timeout = op(base(), 200, 1).push({ t: 400, type: 'fail', op: 1, kind: 'lock', client: 'w', node: 1, resource: 'r', lock: 1, code: 'TIMEOUT' });
    expect(kinds(timeout.sorted(), { serveBoundMs: 1000 })).to.deep.equal(['not-served']);
    // A waiter whose client went away before the bound is not a violation.
    const gone = op(base(), 200, 1).push({ t: 300, type: 'client-gone', client: 'w', node: 1, reason: 'stopped' }).push({ t: 5000, type: 'step', text: 'end' });
    expect(kinds(gone.sorted(), { serveBoundMs: 1000 })).to.deep.equal([]);
  });

  it('reports a failed scenario assertion and a daemon that exited on its own', () => {
    expect(kinds([{ t: 5, type: 'assert-failed', text: 'no recovery' }])).to.deep.equal(['assert']);
    expect(kinds([{ t: 5, type: 'node-exit', node: 2, code: 70, signal: null, stderr: 'mxfsd: fatal: boom' }])).to.deep.equal(['crash']);
  });

  it('round-trips histories through NDJSON and rejects malformed lines', () => {
    const h = new H().grant(10, 'a', 'r', 1, 'EX', 1).unlock(20, 'a', 'r', 1).sorted();
    expect(parseNdjson(toNdjson(h))).to.deep.equal(h);
    expect(() => parseNdjson('{"t":1,"type":"ok"}\nnot json\n')).to.throw(/line 2/);
  });

  it('the fenced store rejects lower tokens and records every write', () => {
    const hist = new History();
    const s = new FencedStore(hist);
    expect(s.write({ client: 'a', node: 1, resource: 'r', lock: 1, token: 5 })).to.equal(true);
    expect(s.write({ client: 'a', node: 1, resource: 'r', lock: 1, token: 5 })).to.equal(true);
    expect(s.write({ client: 'b', node: 1, resource: 'r', lock: 1, token: 4 })).to.equal(false);
    expect(s.write({ client: 'b', node: 1, resource: 'q', lock: 1, token: 1 })).to.equal(true);
    expect(hist.events.map((e) => (e.type === 'write' ? e.accepted : null))).to.deep.equal([true, true, false, true]);
    expect(s.rejected).to.equal(1);
  });

  it('computes recovery figures from views', () => {
    const ev: HistoryEvent[] = [
      { t: 0, type: 'view', node: 1, state: 'running', epoch: 1, members: [1, 2, 3] },
      { t: 0, type: 'view', node: 2, state: 'running', epoch: 1, members: [1, 2, 3] },
      { t: 100, type: 'fault', action: 'kill', nodes: [3] },
      { t: 2000, type: 'view', node: 1, state: 'recovering', epoch: 2, members: [1, 2] },
      { t: 2100, type: 'view', node: 1, state: 'running', epoch: 2, members: [1, 2] },
      { t: 2150, type: 'view', node: 2, state: 'running', epoch: 2, members: [1, 2] },
      { t: 2160, type: 'invoke', op: 1, kind: 'lock', client: 'a', node: 1, resource: 'r', lock: 1, mode: 'EX' },
      { t: 2180, type: 'ok', op: 1, kind: 'lock', client: 'a', node: 1, resource: 'r', lock: 1, mode: 'EX', token: 1 },
    ];
    const rec = recoveries(ev, 3);
    expect(rec).to.deep.equal([{ t: 100, action: 'kill', nodes: [3], recoveryMs: 2050, firstGrantMs: 30 }]);
    const f = figures(ev, check(ev), { scenario: 's', seed: 1, nodes: 3, leaseMs: 1000 });
    expect(f.grants).to.equal(1);
    expect(f.maxRecoveryMs).to.equal(2050);
  });

  it('the PRNG is reproducible by seed', () => {
    const a = new Prng(42), b = new Prng(42), c = new Prng(43);
    const xs = Array.from({ length: 20 }, () => a.int(0, 1000));
    expect(Array.from({ length: 20 }, () => b.int(0, 1000))).to.deep.equal(xs);
    expect(Array.from({ length: 20 }, () => c.int(0, 1000))).to.not.deep.equal(xs);
  });

  // ---- properties ------------------------------------------------------------------------

  /**
   * A correct lock service, serialized: at each tick a client asks for a mode on a resource
   * and gets it only if compatible with the current holders; holders write (PW/EX) and
   * release. The history it produces must check clean.
   */
  function modelHistory(ops: Array<{ client: number; res: number; mode: number; act: number }>): HistoryEvent[] {
    const h = new H();
    const held = new Map<string, { res: string; mode: Mode; token: number; lock: number }>();
    const counter = new Map<string, number>();
    let t = 10, lock = 1;
    for (const o of ops) {
      const client = `c${o.client}`;
      const res = `r${o.res}`;
      const mine = held.get(client);
      t += 10;
      if (mine) {
        if (o.act % 3 === 0 && (mine.mode === Mode.PW || mine.mode === Mode.EX)) h.write(t, client, mine.res, mine.lock, mine.token, true);
        else if (o.act % 3 === 1) { h.unlock(t, client, mine.res, mine.lock); held.delete(client); }
        else { h.lost(t, client, mine.res, mine.lock); held.delete(client); }
        continue;
      }
      const mode = o.mode as Mode;
      const others = [...held.values()].filter((x) => x.res === res);
      if (!others.every((x) => compatible(x.mode, mode))) continue;
      const c = (counter.get(res) ?? 0) + (mode >= Mode.PW ? 1 : 0);
      counter.set(res, c);
      const l = lock++;
      h.grant(t, client, res, l, MODE_NAMES[mode], c);
      held.set(client, { res, mode, token: c, lock: l });
    }
    for (const [client, x] of held) { t += 10; h.unlock(t, client, x.res, x.lock); }
    return h.sorted();
  }

  const opsArb = fc.array(fc.record({ client: fc.integer({ min: 0, max: 4 }), res: fc.integer({ min: 0, max: 1 }), mode: fc.integer({ min: 0, max: 5 }), act: fc.integer({ min: 0, max: 8 }) }), { minLength: 1, maxLength: 80 });

  it('property: histories of a correct lock service have no violation', () => {
    fc.assert(fc.property(opsArb, (ops) => {
      expect(check(modelHistory(ops)).violations).to.deep.equal([]);
    }), { numRuns: 300 });
  });

  it('property: a grant moved inside an incompatible holder\'s interval is reported as an overlap', () => {
    fc.assert(fc.property(opsArb, fc.nat(), (ops, pick) => {
      const ev = modelHistory(ops);
      const res = check(ev);
      // Candidate pairs: a later grant on the same resource incompatible with an earlier one.
      const pairs: Array<[number, number]> = [];
      const segs = res.segments;
      for (let i = 0; i < segs.length; i++) for (let j = 0; j < segs.length; j++) {
        const a = segs[i]!, b = segs[j]!;
        if (a.resource === b.resource && b.start > a.start && !compatible(a.mode, b.mode) && a.end! - a.start > 2) pairs.push([i, j]);
      }
      fc.pre(pairs.length > 0);
      const [i, j] = pairs[pick % pairs.length]!;
      const a = segs[i]!, b = segs[j]!;
      const when = a.start + 1; // strictly inside a's interval
      const moved = ev.map((e) => (e.type === 'ok' && e.kind === 'lock' && e.client === b.client && e.lock === b.lock ? { ...e, t: when } : e)).sort((x, y) => x.t - y.t);
      expect(check(moved).violations.map((v) => v.kind)).to.include('overlap');
    }), { numRuns: 300 });
  });

  it('property: an accepted write after the lock ended is reported; a rejected one is counted', () => {
    fc.assert(fc.property(opsArb, fc.nat(), fc.boolean(), (ops, pick, accepted) => {
      const ev = modelHistory(ops);
      const segs = check(ev).segments.filter((s) => s.end !== undefined);
      fc.pre(segs.length > 0);
      const s = segs[pick % segs.length]!;
      const w: HistoryEvent = { t: s.end! + 0.5, type: 'write', client: s.client, node: s.node, resource: s.resource, lock: s.lock, token: s.token, accepted, highest: 0 };
      const r = check([...ev, w].sort((x, y) => x.t - y.t));
      if (accepted) expect(r.violations.map((v) => v.kind)).to.include('stale-write');
      else { expect(r.violations).to.deep.equal([]); expect(r.rejectedWrites).to.equal(1); }
    }), { numRuns: 300 });
  });

  it('property: dropping the end of a grant is reported as a leak', () => {
    fc.assert(fc.property(opsArb, fc.nat(), (ops, pick) => {
      const ev = modelHistory(ops);
      const ends = ev.map((e, i) => [e, i] as const).filter(([e]) => (e.type === 'invoke' && e.kind === 'unlock') || e.type === 'lost');
      fc.pre(ends.length > 0);
      const [, idx] = ends[pick % ends.length]!;
      const cut = ev.filter((_, i) => i !== idx);
      expect(check(cut).violations.map((v) => v.kind)).to.include('leaked');
    }), { numRuns: 300 });
  });
});
