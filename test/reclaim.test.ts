/**
 * The idle collection after a mass eviction (src/daemon/reclaim.ts): asked for once the
 * eviction is over and the daemon is quiet, never while lock traffic goes on, once per mass
 * eviction and a second time with a malloc trim at the next quiet look. Asserted through the counters of `status` and
 * the reclaimer's answers, never through time: the test drives check() itself (its timer is
 * stopped).
 */
import { expect } from 'chai';
import { Daemon } from '../src/daemon/daemon';
import type { MxfsClient } from '../src/client/client';
import type { LockHandle } from '../src/client/api';
import { Mode } from '../src/dlm/modes';
import { newLockStats } from '../src/actors/messages';
import { fullGc, MemoryReclaimer, RECLAIM, trimMalloc } from '../src/daemon/reclaim';
import { quietLogger, testConfig, tmpDir, waitFor } from './support/daemon-proc';

interface Counters { evictions: number; idleCollections?: number; mallocTrims?: number }

describe('idle collection after a mass eviction', () => {
  const saved = { ...RECLAIM };
  afterEach(() => { Object.assign(RECLAIM, saved); });

  describe('MemoryReclaimer (counters driven by hand)', () => {
    function make() {
      const stats = newLockStats();
      const calls = { collect: 0, trim: 0 };
      const r = new MemoryReclaimer({ stats, collect: () => { calls.collect++; }, trim: () => { calls.trim++; } });
      return { stats, calls, r };
    }

    it('collects after a quiet check that follows the eviction, again with a trim at the next quiet one, then does nothing', () => {
      const { stats, calls, r } = make();
      stats.ops += RECLAIM.MIN_EVICTED * 2;
      stats.evictions += RECLAIM.MIN_EVICTED;
      expect(r.check()).to.equal('busy'); // evictions and ops since the last look: the release is not over
      expect(calls.collect).to.equal(0);
      expect(r.check()).to.equal('collected');
      expect(calls).to.deep.equal({ collect: 1, trim: 0 });
      expect(r.check()).to.equal('shrunk');
      expect(calls).to.deep.equal({ collect: 2, trim: 1 });
      expect(r.check()).to.equal('nothing');
      expect(r.check()).to.equal('nothing');
      expect(calls).to.deep.equal({ collect: 2, trim: 1 });
      expect([r.collections, r.trims, r.busySkips]).to.deep.equal([2, 1, 1]);
    });

    it('collects again at each quiet look while the last collection gave back SHRINK_STEP of committed heap, then trims once', () => {
      // Seen on a real daemon: the second collection took the committed heap from 62 to 43.5 MiB
      // only (the young generation kept), the third to 12.5; the fourth gave nothing back.
      const stats = newLockStats();
      const calls = { collect: 0, trim: 0 };
      const MiB = 1024 * 1024;
      const after = [60 * MiB, 43.5 * MiB, 12.5 * MiB, 13.5 * MiB];
      let committed = 200 * MiB;
      const r = new MemoryReclaimer({ stats, collect: () => { committed = after[calls.collect++]!; }, trim: () => { calls.trim++; }, heap: () => ({ committed, young: 0 }) });
      stats.evictions += RECLAIM.MIN_EVICTED;
      r.check();
      expect(r.check()).to.equal('collected'); // the first: 200 -> 60
      expect(r.check()).to.equal('collected'); // 60 -> 43.5: gave back more than SHRINK_STEP, again
      expect(calls).to.deep.equal({ collect: 2, trim: 0 });
      expect(r.check()).to.equal('collected'); // 43.5 -> 12.5
      expect(r.check()).to.equal('shrunk'); // 12.5 -> 13.5: nothing more to give back; the trim
      expect(calls).to.deep.equal({ collect: 4, trim: 1 });
      expect(r.check()).to.equal('nothing');
      expect([r.collections, r.trims]).to.deep.equal([4, 1]);
    });

    it('collects again while the young generation is still YOUNG_MAX or more, though the committed heap did not shrink', () => {
      // Seen on a real daemon: the second collection gave back little and left the fill's 32 MiB
      // young generation (RSS +54 % of the level before the fill, for good).
      const stats = newLockStats();
      const calls = { collect: 0, trim: 0 };
      const young = [32, 32, 1].map((m) => m * 1024 * 1024);
      const r = new MemoryReclaimer({ stats, collect: () => { calls.collect++; }, trim: () => { calls.trim++; }, heap: () => ({ committed: 50 * 1024 * 1024, young: young[Math.max(0, calls.collect - 1)]! }) });
      stats.evictions += RECLAIM.MIN_EVICTED;
      r.check();
      expect(r.check()).to.equal('collected'); // the first
      expect(r.check()).to.equal('collected'); // the second: the young generation still 32 MiB
      expect(r.check()).to.equal('shrunk'); // the third: 1 MiB; the trim
      expect(calls).to.deep.equal({ collect: 3, trim: 1 });
    });

    it('stops the follow-up collections at MAX_FOLLOW_UPS, and at a busy look (no trim then)', () => {
      const stats = newLockStats();
      const calls = { collect: 0, trim: 0 };
      let committed = 1e12;
      const r = new MemoryReclaimer({ stats, collect: () => { calls.collect++; committed -= 2 * RECLAIM.SHRINK_STEP; }, trim: () => { calls.trim++; }, heap: () => ({ committed, young: 0 }) });
      stats.evictions += RECLAIM.MIN_EVICTED;
      r.check();
      const seen: string[] = [];
      for (let i = 0; i < RECLAIM.MAX_FOLLOW_UPS + 3; i++) seen.push(r.check());
      expect(seen.filter((x) => x === 'collected')).to.have.length(RECLAIM.MAX_FOLLOW_UPS); // the first + MAX_FOLLOW_UPS - 1 follow-ups
      expect(seen[RECLAIM.MAX_FOLLOW_UPS]).to.equal('shrunk');
      expect(calls).to.deep.equal({ collect: 1 + RECLAIM.MAX_FOLLOW_UPS, trim: 1 });

      stats.evictions += RECLAIM.MIN_EVICTED;
      r.check();
      expect(r.check()).to.equal('collected');
      expect(r.check()).to.equal('collected'); // a follow-up
      stats.ops += RECLAIM.QUIET_OPS + 1;
      expect(r.check()).to.equal('busy');
      expect(r.check()).to.equal('nothing');
      expect(calls).to.deep.equal({ collect: 3 + RECLAIM.MAX_FOLLOW_UPS, trim: 1 });
    });

    it('skips the second collection and the trim when the daemon is busy again after the first', () => {
      const { stats, calls, r } = make();
      stats.evictions += RECLAIM.MIN_EVICTED;
      r.check();
      expect(r.check()).to.equal('collected');
      stats.ops += RECLAIM.QUIET_OPS + 1;
      expect(r.check()).to.equal('busy');
      expect(r.check()).to.equal('nothing');
      expect(calls).to.deep.equal({ collect: 1, trim: 0 });
    });

    it('keeps the longest collection\'s duration (status: idleCollectionMaxMs)', () => {
      const stats = newLockStats();
      let t = 0;
      const pauses = [30, 5];
      const r = new MemoryReclaimer({ stats, now: () => t, collect: () => { t += pauses.shift()!; }, trim: () => {} });
      stats.evictions += RECLAIM.MIN_EVICTED;
      r.check();
      expect([r.check(), r.check()]).to.deep.equal(['collected', 'shrunk']);
      expect(r.maxCollectMs).to.equal(30);
    });

    it('does not collect while lock operations go on, and does once they stop', () => {
      const { stats, calls, r } = make();
      stats.evictions += RECLAIM.MIN_EVICTED;
      r.check();
      for (let i = 0; i < 3; i++) {
        stats.ops += RECLAIM.QUIET_OPS + 1;
        expect(r.check()).to.equal('busy');
      }
      expect(calls.collect).to.equal(0);
      stats.ops += RECLAIM.QUIET_OPS; // a trickle is quiet
      expect(r.check()).to.equal('collected');
    });

    it('does not collect for few evictions, when more is alive than was evicted, or with a large live set', () => {
      const { stats, calls, r } = make();
      stats.evictions += RECLAIM.MIN_EVICTED - 1;
      r.check();
      expect(r.check()).to.equal('nothing');
      stats.evictions += 1;
      stats.resources = RECLAIM.MIN_EVICTED + 1;
      r.check();
      expect(r.check()).to.equal('nothing');
      RECLAIM.MAX_LIVE = 100;
      stats.evictions += RECLAIM.MIN_EVICTED * 3;
      stats.resources = 101;
      r.check();
      expect(r.check()).to.equal('nothing');
      expect(calls.collect).to.equal(0);
      stats.resources = 100;
      expect(r.check()).to.equal('collected');
    });

    it('has a real collection and a real malloc trim on this platform', () => {
      expect(fullGc()).to.be.a('function');
      expect(trimMalloc()).to.equal(true);
    });
  });

  describe('in a daemon', () => {
    let d: Daemon | undefined;
    let c: MxfsClient | undefined;
    afterEach(async () => { await c?.close(); await d?.stop(); d = undefined; c = undefined; });

    const counters = async () => ((await d!.status()) as { counters: Counters }).counters;

    async function fillAndRelease(n: number): Promise<void> {
      const hs: LockHandle[] = await Promise.all(Array.from({ length: n }, (_, i) => c!.lock(`reclaim-${i}`, Mode.EX)));
      await Promise.all(hs.map((h) => h.unlock()));
      await waitFor(async () => ((await d!.status()) as { resources: number }).resources === 0, 30000, 'eviction');
    }

    async function boot(): Promise<void> {
      d = new Daemon({ config: testConfig(tmpDir(), { locking: { idleEvictMs: 100 } }), log: quietLogger() });
      await d.start();
      d.reclaimer!.stop(); // the test looks itself
      c = await d.connectLocal('reclaim');
    }

    it('collects at least twice and trims once after a mass eviction on an idle daemon (status counters)', async () => {
      RECLAIM.MIN_EVICTED = 50;
      await boot();
      expect(await counters()).to.include({ idleCollections: 0, mallocTrims: 0 });
      await fillAndRelease(60);
      expect((await counters()).evictions).to.equal(60);
      const r = d!.reclaimer!;
      const seen: string[] = [];
      for (let i = 0; i < RECLAIM.MAX_FOLLOW_UPS + 3; i++) seen.push(r.check());
      // The first, then follow-ups while the real heap (this test process's) shrinks, then the trim.
      const collected = seen.filter((x) => x === 'collected').length;
      expect(collected).to.be.within(1, RECLAIM.MAX_FOLLOW_UPS);
      expect(seen.filter((x) => x === 'shrunk')).to.have.length(1);
      expect(seen.slice(seen.indexOf('shrunk') + 1).every((x) => x === 'nothing'), seen.join(' ')).to.equal(true);
      expect(await counters()).to.include({ idleCollections: collected + 1, mallocTrims: 1 });
    });

    it('does not collect while the daemon takes lock operations', async () => {
      RECLAIM.MIN_EVICTED = 50;
      RECLAIM.QUIET_OPS = 10;
      await boot();
      await fillAndRelease(60);
      const r = d!.reclaimer!;
      r.check();
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 6; i++) await (await c!.lock('busy', Mode.EX)).unlock();
        expect(r.check()).to.equal('busy');
      }
      expect(await counters()).to.include({ idleCollections: 0, mallocTrims: 0 });
      // Quiet again once the last resource is evicted too (a look that sees that eviction is 'busy').
      await waitFor(async () => ((await d!.status()) as { resources: number }).resources === 0, 30000, 'eviction');
      let got = r.check();
      if (got === 'busy') got = r.check();
      expect(got).to.equal('collected');
      expect((await counters()).idleCollections).to.equal(1);
    });
  });
});
