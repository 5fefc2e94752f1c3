/**
 * VolumeCore (the pure state machine of a volume on one node) and the volume record: scripted
 * runs of each path, and a property test that drives the machine with random, interleaved,
 * late and stale results and checks it never leaves its state table or its invariants.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import { decodeRecordLvb, encodeRecordLvb, isNewer, RecordStore, validateRecord, VolumeRecord } from '../src/volumes/record';
import { RETRY_BASE_MS, RETRY_MAX_MS, STATE_TABLE, VOLUME_STATES, VolumeCore, VolumeEffect, VolumeInput } from '../src/volumes/volume-core';

const spec = { name: 'data', device: '/dev/x', mountpoint: '/mnt/x' };

function core(o: { failover?: 'auto' | 'manual'; afterClear?: 'unmounted' | 'standby' } = {}): VolumeCore {
  return new VolumeCore({ spec, node: 2, failover: o.failover ?? 'auto', afterClear: o.afterClear ?? 'unmounted', fenceBoundMs: () => 500, wallNow: () => 1_700_000_000_000 }, 0);
}

/** Feed inputs; return every effect, failing on an invariant violation. */
class Run {
  t = 0;
  effects: VolumeEffect[] = [];
  constructor(readonly c: VolumeCore) {}
  in(m: VolumeInput): VolumeEffect[] {
    this.t += 10;
    const ev = this.c.input(m, this.t);
    const bad = ev.filter((e) => e.do === 'violation');
    expect(bad, JSON.stringify(bad)).to.deep.equal([]);
    this.effects.push(...ev);
    return ev;
  }
  last<K extends VolumeEffect['do']>(kind: K): Extract<VolumeEffect, { do: K }> {
    const e = [...this.effects].reverse().find((x) => x.do === kind);
    if (!e) throw new Error(`no ${kind} effect`);
    return e as Extract<VolumeEffect, { do: K }>;
  }
  replies(): Array<Extract<VolumeEffect, { do: 'reply' }>> { return this.effects.filter((e): e is Extract<VolumeEffect, { do: 'reply' }> => e.do === 'reply'); }
}

const rec = (over: Partial<VolumeRecord>): VolumeRecord => ({
  volume: 'data', generation: 4, version: 1, owner: 1, state: 'mounted', token: 77, fenceBoundMs: 800, since: 1, ...over,
});

describe('volume record', () => {
  it('travels in 32 bytes of LVB and back', () => {
    const r = rec({ token: 2 ** 40 + 5, lastRecovery: { by: 3, of: 1, fromGeneration: 2, ofGeneration: 3, at: 5, ms: 9 } });
    const b = encodeRecordLvb(r);
    expect(b.length).to.equal(32);
    const d = decodeRecordLvb('data', b, true)!;
    expect(d).to.include({ generation: 4, version: 1, owner: 1, state: 'mounted', token: 2 ** 40 + 5, fenceBoundMs: 800 });
    expect(d.lastRecovery).to.include({ by: 3, of: 1, ofGeneration: 3 });
    expect(decodeRecordLvb('data', b, false), 'an invalid LVB carries nothing').to.equal(undefined);
    expect(decodeRecordLvb('data', Buffer.alloc(32), true), 'a zeroed LVB carries nothing').to.equal(undefined);
  });

  it('orders by generation, then version; the store keeps only newer records, durably', () => {
    expect(isNewer(rec({ generation: 5, version: 0 }), rec({ generation: 4, version: 9 }))).to.equal(true);
    expect(isNewer(rec({ version: 2 }), rec({ version: 1 }))).to.equal(true);
    expect(isNewer(rec({}), rec({}))).to.equal(false);
    // Two claims of one generation (an abandoned one still travelling, and the live one): the later grant's token wins.
    expect(isNewer(rec({ owner: 3, token: 90, version: 0 }), rec({ owner: 1, token: 77, version: 5 }))).to.equal(true);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxfs-rec-'));
    const st = RecordStore.open(dir);
    expect(st.put(rec({ generation: 3 }))).to.equal(true);
    expect(st.put(rec({ generation: 2 }))).to.equal(false);
    expect(RecordStore.open(dir).get('data')!.generation, 'survives a restart').to.equal(3);
    fs.writeFileSync(path.join(dir, 'volumes', 'data.json'), '{oops');
    expect(() => RecordStore.open(dir).get('data')).to.throw(/unreadable.*restore it/);
  });

  it('refuses malformed records with the field named', () => {
    expect(() => validateRecord({ ...rec({}), state: 'weird' })).to.throw(/'state'/);
    expect(() => validateRecord({ ...rec({}), generation: -1 })).to.throw(/'generation'/);
    expect(() => validateRecord({ ...rec({}), lastRecovery: { by: 1 } })).to.throw(/'of'/);
  });
});

describe('VolumeCore', () => {
  it('has a closed state table', () => {
    for (const s of VOLUME_STATES) for (const n of STATE_TABLE[s].next) expect(VOLUME_STATES).to.include(n);
  });

  it('first mount: lock, read, claim generation 1 on a majority, mount, finalize; umount stores clean, then releases', () => {
    const r = new Run(core());
    r.in({ type: 'mount', req: 1, wait: true });
    const lock = r.last('lock');
    expect(lock.noqueue).to.equal(false);
    r.in({ type: 'granted', op: lock.op, token: 9 });
    r.in({ type: 'read', op: r.last('read').op });
    const claim = r.last('store');
    expect(claim.record).to.include({ generation: 1, version: 0, owner: 2, state: 'mounting', token: 9, fenceBoundMs: 500 });
    r.in({ type: 'done', op: claim.op });
    const mount = r.last('driver');
    expect(mount.call).to.equal('mount');
    expect(mount.ctx).to.include({ generation: 1, token: 9 });
    expect(mount.ctx.recovery).to.equal(undefined);
    r.in({ type: 'done', op: mount.op });
    const fin = r.last('store');
    expect(fin.record).to.include({ generation: 1, version: 1, state: 'mounted' });
    expect(r.c.state).to.equal('mounted');
    r.in({ type: 'done', op: fin.op });
    expect(r.replies()).to.deep.equal([{ do: 'reply', req: 1, ok: true, message: 'volume data mounted on node 2, generation 1' }]);
    r.in({ type: 'umount', req: 2 });
    r.in({ type: 'done', op: r.last('driver').op });
    const clean = r.last('store');
    expect(clean.record).to.include({ state: 'clean', version: 2 });
    r.in({ type: 'done', op: clean.op });
    const unlock = r.last('unlock');
    expect(decodeRecordLvb('data', unlock.lvb, true)!.state, 'the clean record goes into the LVB on release').to.equal('clean');
    r.in({ type: 'done', op: unlock.op });
    expect(r.c.state).to.equal('unmounted');
    expect(r.replies().pop()).to.include({ req: 2, ok: true });
  });

  it('takeover from an owner that went away: proof first, then generation +1 with the recovery range, recover step, lastRecovery', () => {
    const r = new Run(core());
    r.in({ type: 'standby', req: 1 });
    r.in({ type: 'granted', op: r.last('lock').op, token: 20 });
    r.in({ type: 'read', op: r.last('read').op, record: rec({ generation: 6, owner: 3, state: 'recovering', recovering: { of: 1, fromGeneration: 4, ofGeneration: 5 } }) });
    expect(r.c.state).to.equal('recovering');
    const prove = r.last('prove');
    expect(prove).to.include({ owner: 3, generation: 6, fenceBoundMs: 800 });
    r.in({ type: 'proven', op: prove.op, how: 'test' });
    const claim = r.last('store');
    expect(claim.record).to.include({ generation: 7, state: 'recovering' });
    expect(claim.record.recovering).to.deep.equal({ of: 3, fromGeneration: 4, ofGeneration: 6 });
    r.in({ type: 'done', op: claim.op });
    r.in({ type: 'done', op: r.last('driver').op });
    expect(r.last('driver').call).to.equal('afterRecovery');
    r.in({ type: 'done', op: r.last('driver').op });
    const fin = r.last('store');
    expect(fin.record.state).to.equal('mounted');
    expect(fin.record.recovering).to.equal(undefined);
    expect(fin.record.lastRecovery).to.include({ by: 2, of: 3, fromGeneration: 4, ofGeneration: 6 });
  });

  it('blocked: a failed step is retried with doubling backoff up to the cap; mount requests fail fast meanwhile', () => {
    const r = new Run(core());
    r.in({ type: 'mount', req: 1, wait: true });
    r.in({ type: 'granted', op: r.last('lock').op, token: 1 });
    r.in({ type: 'failed', op: r.last('read').op, code: 'NO_MAJORITY', message: 'no majority' });
    expect(r.c.state).to.equal('blocked');
    expect(r.replies()[0]).to.include({ req: 1, ok: false, code: 'BLOCKED' });
    const delays = [];
    for (let i = 0; i < 8; i++) {
      const t = r.last('timer');
      delays.push(t.ms);
      r.in({ type: 'retry', op: t.op });
      r.in({ type: 'failed', op: r.last('read').op, code: 'NO_MAJORITY', message: 'still none' });
    }
    expect(delays).to.deep.equal([1, 2, 4, 8, 16, 30, 30, 30].map((x) => Math.min(RETRY_MAX_MS, x * RETRY_BASE_MS)));
    r.in({ type: 'mount', req: 2, wait: true });
    expect(r.replies().pop()).to.include({ req: 2, ok: false, code: 'BLOCKED' });
    r.in({ type: 'retry', op: r.last('timer').op });
    r.in({ type: 'read', op: r.last('read').op });
    expect(r.c.state).to.equal('mounting');
  });

  it('losing the lock while something may be mounted fences; a rejoin clears it; a mount before anything was issued just ends', () => {
    const r = new Run(core());
    r.in({ type: 'mount', req: 1, wait: true });
    r.in({ type: 'granted', op: r.last('lock').op, token: 1 });
    r.in({ type: 'read', op: r.last('read').op });
    r.in({ type: 'lost', reason: 'quorum lost' });
    expect(r.c.state, 'nothing mounted yet: no fence').to.equal('unmounted');
    expect(r.effects.some((e) => e.do === 'fence')).to.equal(false);
    expect(r.replies()[0]).to.include({ ok: false, code: 'LOST' });

    r.in({ type: 'mount', req: 2, wait: true });
    r.in({ type: 'granted', op: r.last('lock').op, token: 2 });
    r.in({ type: 'read', op: r.last('read').op });
    r.in({ type: 'done', op: r.last('store').op });
    const mount = r.last('driver');
    r.in({ type: 'lost', reason: 'quorum lost' }); // while the mount runs
    expect(r.c.state).to.equal('fenced');
    const fence = r.last('fence');
    r.in({ type: 'done', op: mount.op }); // the mount returned after the fence was issued: stale
    expect(r.c.state).to.equal('fenced');
    r.in({ type: 'rejoined' }); // arrives while the fence still runs: remembered
    r.in({ type: 'fenceDone', op: fence.op, report: { fenced: true, cause: 'quorum lost', durationMs: 5 } });
    expect(r.last('driver').call).to.equal('clearFence');
    r.in({ type: 'done', op: r.last('driver').op });
    expect(r.c.state).to.equal('unmounted');
  });

  it('a standby that loses its lock while taking over is queued again: on the rejoin, or after RETRY_BASE_MS if the node stayed quorate; once its fence is cleared if the mount was issued', () => {
    // Before the mount: the recovery is dropped, the standby request stands.
    const r = new Run(core());
    r.in({ type: 'standby', req: 1 });
    r.in({ type: 'granted', op: r.last('lock').op, token: 20 });
    r.in({ type: 'read', op: r.last('read').op, record: rec({ owner: 1 }) });
    expect(r.c.state).to.equal('recovering');
    r.in({ type: 'lost', reason: 'quorum lost' });
    expect(r.c.state).to.equal('unmounted');
    expect(r.c.view(r.t).reason).to.match(/queued again/);
    const locks = r.effects.filter((e) => e.do === 'lock').length;
    const stale = r.last('timer');
    r.in({ type: 'rejoined' });
    expect(r.c.state, 'the dead owner still needs a recoverer').to.equal('standby');
    expect(r.effects.filter((e) => e.do === 'lock').length).to.equal(locks + 1);
    r.in({ type: 'retry', op: stale.op }); // the retry timer of that loss, after the rejoin: stale
    expect(r.effects.filter((e) => e.do === 'lock').length).to.equal(locks + 1);

    // Lost while the node stays quorate (its own session timed out): no rejoin comes; the retry timer queues it.
    r.in({ type: 'granted', op: r.last('lock').op, token: 20 });
    r.in({ type: 'read', op: r.last('read').op, record: rec({ owner: 1 }) });
    r.in({ type: 'lost', reason: 'ownership lock lost: no answer from mxfsd within 1200 ms' });
    expect(r.c.state).to.equal('unmounted');
    const t = r.last('timer');
    expect(t.ms).to.equal(RETRY_BASE_MS);
    r.in({ type: 'retry', op: t.op });
    expect(r.c.state).to.equal('standby');
    // And a queued standby whose request is lost that way, too.
    r.in({ type: 'lost', reason: 'ownership lock lost: no answer from mxfsd within 1200 ms' });
    expect(r.c.state).to.equal('unmounted');
    r.in({ type: 'retry', op: r.last('timer').op });
    expect(r.c.state).to.equal('standby');

    // After the mount was issued: fenced, and once the fence is cleared, a standby again.
    r.in({ type: 'granted', op: r.last('lock').op, token: 21 });
    r.in({ type: 'read', op: r.last('read').op, record: rec({ owner: 1 }) });
    r.in({ type: 'proven', op: r.last('prove').op, how: 'test' });
    r.in({ type: 'done', op: r.last('store').op });
    expect(r.last('driver').call).to.equal('mount');
    r.in({ type: 'lost', reason: 'quorum lost' });
    expect(r.c.state).to.equal('fenced');
    r.in({ type: 'fenceDone', op: r.last('fence').op, report: { fenced: true, cause: 'quorum lost', durationMs: 5 } });
    r.in({ type: 'rejoined' });
    r.in({ type: 'done', op: r.last('driver').op });
    expect(r.c.state).to.equal('standby');

    // A takeover that completed is done: losing the mounted volume later ends in unmounted (start = none).
    r.in({ type: 'granted', op: r.last('lock').op, token: 22 });
    r.in({ type: 'read', op: r.last('read').op, record: rec({ owner: 1 }) });
    r.in({ type: 'proven', op: r.last('prove').op, how: 'test' });
    r.in({ type: 'done', op: r.last('store').op });
    r.in({ type: 'done', op: r.last('driver').op });
    r.in({ type: 'done', op: r.last('driver').op });
    expect(r.c.state).to.equal('mounted');
    r.in({ type: 'lost', reason: 'quorum lost' });
    r.in({ type: 'fenceDone', op: r.last('fence').op, report: { fenced: true, cause: 'quorum lost', durationMs: 5 } });
    r.in({ type: 'rejoined' });
    r.in({ type: 'done', op: r.last('driver').op });
    expect(r.c.state).to.equal('unmounted');
    r.in({ type: 'rejoined' });
    expect(r.c.state).to.equal('unmounted');

    // The operator's umount ends a takeover for good.
    const u = new Run(core());
    u.in({ type: 'standby', req: 1 });
    u.in({ type: 'granted', op: u.last('lock').op, token: 30 });
    u.in({ type: 'failed', op: u.last('read').op, code: 'NO_MAJORITY', message: 'no majority' });
    expect(u.c.state).to.equal('blocked');
    u.in({ type: 'umount', req: 2 });
    u.in({ type: 'lost', reason: 'quorum lost' }); // while the release runs
    u.in({ type: 'rejoined' });
    expect(u.c.state).to.equal('unmounted');
  });

  it('a standby whose queued request fails with LOST (its session timed out while the node stayed quorate: no rejoin comes) asks again with backoff', () => {
    const r = new Run(core());
    r.in({ type: 'standby', req: 1 });
    r.in({ type: 'lockFailed', op: r.last('lock').op, code: 'LOST', message: 'volume data: ownership request failed (LOST): no answer from mxfsd within 1800 ms' });
    expect(r.c.state).to.equal('unmounted');
    const t1 = r.last('timer');
    expect(t1.ms).to.equal(RETRY_BASE_MS);
    r.in({ type: 'retry', op: t1.op });
    expect(r.c.state, 'queued again without a rejoin').to.equal('standby');
    // Still failing (no quorum: the request fails at once): the wait doubles, up to the cap.
    r.in({ type: 'lockFailed', op: r.last('lock').op, code: 'LOST', message: 'no quorum' });
    expect(r.last('timer').ms).to.equal(2 * RETRY_BASE_MS);
    for (let i = 0; i < 12; i++) {
      r.in({ type: 'retry', op: r.last('timer').op });
      r.in({ type: 'lockFailed', op: r.last('lock').op, code: 'LOST', message: 'no quorum' });
    }
    expect(r.last('timer').ms).to.equal(RETRY_MAX_MS);
    // A rejoin queues it at once; a grant resets the backoff.
    r.in({ type: 'rejoined' });
    expect(r.c.state).to.equal('standby');
    r.in({ type: 'granted', op: r.last('lock').op, token: 5 });
    r.in({ type: 'read', op: r.last('read').op, record: rec({ state: 'clean' }) });
    r.in({ type: 'lost', reason: 'ownership lock lost: no answer from mxfsd within 1800 ms' });
    expect(r.last('timer').ms).to.equal(RETRY_BASE_MS);
    // The operator's umount withdraws it: a cancelled request is not queued again.
    const c = new Run(core());
    c.in({ type: 'standby', req: 1 });
    c.in({ type: 'lockFailed', op: c.last('lock').op, code: 'CANCELLED', message: 'cancelled' });
    expect(c.effects.some((e) => e.do === 'timer')).to.equal(false);
  });

  it('failover = manual: a standby that finds a dead owner steps back; the operator mount recovers', () => {
    const r = new Run(core({ failover: 'manual' }));
    r.in({ type: 'standby', req: 1 });
    r.in({ type: 'granted', op: r.last('lock').op, token: 3 });
    r.in({ type: 'read', op: r.last('read').op, record: rec({}) });
    const unlock = r.last('unlock');
    r.in({ type: 'done', op: unlock.op });
    expect(r.c.state).to.equal('unmounted');
    expect(r.c.view(r.t).reason).to.match(/failover = manual/);
    r.in({ type: 'mount', req: 2, wait: true });
    r.in({ type: 'granted', op: r.last('lock').op, token: 4 });
    r.in({ type: 'read', op: r.last('read').op, record: rec({}) });
    expect(r.c.state).to.equal('recovering');
  });

  it('an umount whose outcome is unknown (umount_cmd past its timeout) is blocked, owned and possibly mounted, not mounted; a retry finishes it', () => {
    /** A first mount, every step succeeding, then an operator's umount (req 2). */
    const mountedThenUmount = (): Run => {
      const x = new Run(core());
      x.in({ type: 'mount', req: 1, wait: true });
      x.in({ type: 'granted', op: x.last('lock').op, token: 9 });
      x.in({ type: 'read', op: x.last('read').op });
      for (const step of ['store', 'driver', 'store'] as const) x.in({ type: 'done', op: x.last(step).op });
      expect(x.c.state).to.equal('mounted');
      x.in({ type: 'umount', req: 2 });
      return x;
    };
    const r = mountedThenUmount();
    r.in({ type: 'failed', op: r.last('driver').op, code: 'UMOUNT_FAILED', message: 'umount_cmd did not finish within 1000 ms', inDoubt: true });
    expect([r.c.state, r.c.step, r.c.holding, r.c.mountIssued]).to.deep.equal(['blocked', 'umount', true, true]);
    expect(r.replies().filter((x) => x.req === 2)).to.deep.equal([{ do: 'reply', req: 2, ok: false, code: 'UMOUNT_FAILED',
      message: "umount_cmd did not finish within 1000 ms; the volume may still be mounted here: blocked, the umount is retried ('mxfsctl volumes data' shows when it is done)" }]);
    r.in({ type: 'retry', op: r.last('timer').op });
    expect(r.last('driver').call).to.equal('umount');
    r.in({ type: 'done', op: r.last('driver').op });
    expect(r.c.state).to.equal('unmounting');
    r.in({ type: 'done', op: r.last('store').op });
    r.in({ type: 'done', op: r.last('unlock').op });
    expect([r.c.state, r.c.holding, r.c.mountIssued]).to.deep.equal(['unmounted', false, false]);
    // An umount that exited with a status (nothing unmounted) still goes back to mounted.
    const b = mountedThenUmount();
    b.in({ type: 'failed', op: b.last('driver').op, code: 'UMOUNT_FAILED', message: 'umount_cmd exited with status 32: target is busy' });
    expect(b.c.state).to.equal('mounted');
  });

  it('never leaves its state table or invariants, whatever order results, stale results and commands arrive in', () => {
    const inputs = fc.array(fc.record({ kind: fc.nat(20), pick: fc.nat(), ok: fc.oneof(fc.constant(true), fc.constant(true), fc.constant(false)), stale: fc.nat(9) }), { maxLength: 80 });
    fc.assert(fc.property(inputs, fc.boolean(), (steps, manual) => {
      const c = core({ failover: manual ? 'manual' : 'auto', afterClear: manual ? 'unmounted' : 'standby' });
      let t = 0;
      let req = 1;
      const open: VolumeEffect[] = [];
      const feed = (m: VolumeInput) => {
        t += 5;
        const ev = c.input(m, t);
        const bad = ev.filter((e) => e.do === 'violation');
        if (bad.length) throw new Error(`${JSON.stringify(bad)} after ${JSON.stringify(m)}`);
        for (const e of ev) if ('op' in e && e.op !== 0) open.push(e);
        if (STATE_TABLE[c.state].holding === false && c.holding) throw new Error(`holding in ${c.state}`);
      };
      for (const s of steps) {
        // Mostly the newest outstanding effects (the machine's current step), sometimes an older one.
        const idx = open.length ? open.length - 1 - (s.pick % Math.min(open.length, s.stale < 7 ? 1 : 4)) : -1;
        const e = idx >= 0 ? open[idx] : undefined;
        if (e && s.kind > 5) open.splice(idx, 1);
        const op = e && 'op' in e ? (s.stale === 0 ? e.op - 1 : e.op) : 0;
        void s.pick;
        switch (s.kind) {
          case 0: feed({ type: 'mount', req: req++, wait: s.ok }); break;
          case 1: feed({ type: 'standby', req: req++ }); break;
          case 2: feed({ type: 'umount', req: req++ }); break;
          case 3: feed({ type: 'lost', reason: 'x' }); break;
          case 4: feed({ type: 'rejoined' }); break;
          case 5: feed(s.ok ? { type: 'externallyUnmounted' } : { type: 'withdraw', req: 1 + (s.pick % req) }); break;
          default:
            if (!e) break;
            if (e.do === 'lock') feed(s.ok ? { type: 'granted', op, token: t } : { type: 'lockFailed', op, code: 'NOTQUEUED', message: 'no' });
            else if (e.do === 'read') feed(s.ok ? { type: 'read', op, ...(s.stale > 4 ? { record: rec({ owner: 3, state: s.stale > 6 ? 'clean' : 'mounted' }) } : {}) } : { type: 'failed', op, code: 'NO_MAJORITY', message: 'x' });
            else if (e.do === 'prove') feed(s.ok ? { type: 'proven', op, how: 'x' } : { type: 'failed', op, code: 'UNPROVEN', message: 'x' });
            else if (e.do === 'fence') feed({ type: 'fenceDone', op, report: { fenced: s.ok, cause: 'x', durationMs: 1 } });
            else if (e.do === 'timer') feed({ type: 'retry', op });
            else feed(s.ok ? { type: 'done', op } : { type: 'failed', op, code: s.stale > 5 ? 'UMOUNT_FAILED' : 'MOUNT_FAILED', message: 'x', ...(s.stale > 7 ? { inDoubt: true } : {}) });
        }
      }
    }), { numRuns: 3000 });
  });
});
