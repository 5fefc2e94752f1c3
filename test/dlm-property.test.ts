/**
 * Property test: random operation sequences against ResourceCore, checked after every step
 * by a small reference model of what must hold:
 *  - safety: no two incompatible granted modes, ever;
 *  - maximality: nothing grantable is left waiting (no lost wake-ups);
 *  - no starvation: queues are served FIFO (a later request never overtakes an earlier
 *    waiting one of the same queue; new requests never overtake a pending conversion);
 *  - every holder that blocks a waiter has had a blocking callback since its last grant;
 *  - tokens strictly increase with each PW/EX grant and never go back;
 *  - every request ends exactly once (granted / not-queued / cancelled / timed out /
 *    deadlock), and after the final drain nothing is left open.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { compatible, isWriteMode, Mode } from '../src/dlm/modes';
import { ResourceCore, ResourceEvent } from '../src/dlm/resource';
import { LockError } from '../src/dlm/types';

type Op =
  | { k: 'request'; lock: number; owner: number; mode: Mode; noqueue: boolean }
  | { k: 'convert'; lock: number; mode: Mode; noqueue: boolean; lvb: boolean }
  | { k: 'unlock'; lock: number; lvb: boolean }
  | { k: 'cancel'; lock: number }
  | { k: 'expire'; lock: number }
  | { k: 'purge'; owner: number };

const modeArb = fc.integer({ min: 0, max: 5 }) as fc.Arbitrary<Mode>;
const lockArb = fc.integer({ min: 0, max: 7 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant('request' as const), lock: lockArb, owner: fc.integer({ min: 0, max: 3 }), mode: modeArb, noqueue: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('convert' as const), lock: lockArb, mode: modeArb, noqueue: fc.boolean(), lvb: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('unlock' as const), lock: lockArb, lvb: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('cancel' as const), lock: lockArb }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('expire' as const), lock: lockArb }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('purge' as const), owner: fc.integer({ min: 0, max: 3 }) }) },
);

class Model {
  /** Open requests: lock id -> queue arrival number (for FIFO checks). */
  open = new Map<string, { seq: number; conversion: boolean }>();
  seq = 0;
  maxToken = 0;
  ended = 0;
  owners = new Map<string, string>();
  /** Locks told (BAST) since their last grant. */
  basted = new Set<string>();

  observe(core: ResourceCore, ev: ResourceEvent[], issued?: { lockId: string; conversion: boolean }): void {
    let openedNow = false;
    for (const e of ev) {
      if (e.type === 'bast') this.basted.add(e.lockId);
      if (e.type === 'granted' || e.type === 'released') this.basted.delete(e.lockId);
      if (e.type === 'queued') {
        expect(this.open.has(e.lockId), `queued twice: ${e.lockId}`).to.equal(false);
        this.open.set(e.lockId, { seq: this.seq++, conversion: e.conversion });
        openedNow = true;
      } else if (e.type === 'granted' || e.type === 'failed') {
        const o = this.open.get(e.lockId);
        const immediate = issued && issued.lockId === e.lockId && !openedNow && !o;
        expect(o !== undefined || immediate, `ended but never open: ${e.lockId}`).to.equal(true);
        if (o && e.type === 'granted') {
          // FIFO: nothing that queued earlier in the same queue may still wait.
          for (const [id, other] of this.open) {
            if (id !== e.lockId && other.conversion === o.conversion && other.seq < o.seq) {
              expect.fail(`${e.lockId} overtook ${id}`);
            }
            if (id !== e.lockId && other.conversion && !o.conversion) expect.fail(`new request ${e.lockId} overtook conversion ${id}`);
          }
        }
        this.open.delete(e.lockId);
        this.ended++;
        if (e.type === 'granted') {
          const t = e.grant.token;
          if (isWriteMode(e.grant.mode)) expect(t, 'write grant token').to.be.greaterThan(this.maxToken);
          else expect(t, 'token never goes back').to.be.at.least(this.maxToken);
          this.maxToken = Math.max(this.maxToken, t);
        }
      }
    }
    this.checkInvariants(core);
  }

  checkInvariants(core: ResourceCore): void {
    const v = core.view();
    const g = v.granted;
    for (let i = 0; i < g.length; i++) {
      for (let j = i + 1; j < g.length; j++) {
        expect(compatible(g[i]!.grMode!, g[j]!.grMode!), `incompatible grants ${g[i]!.lockId} ${g[j]!.lockId}`).to.equal(true);
      }
    }
    const grantable = (id: string, m: Mode) => g.every((x) => x.lockId === id || compatible(x.grMode!, m));
    const ch = v.converting[0];
    if (ch) expect(grantable(ch.lockId, ch.rqMode!), `conversion ${ch.lockId} left waiting although grantable`).to.equal(false);
    const wh = v.waiting[0];
    if (wh && !ch) expect(grantable(wh.lockId, wh.rqMode!), `request ${wh.lockId} left waiting although grantable`).to.equal(false);
    // Every holder that blocks a pending request has been told since its last grant.
    for (const h of g) {
      for (const q of [...v.converting, ...v.waiting]) {
        if (q.lockId !== h.lockId && !compatible(h.grMode!, q.rqMode!)) {
          expect(this.basted.has(h.lockId), `${h.lockId} blocks ${q.lockId} but was not told`).to.equal(true);
        }
      }
    }
    // Every pending lock in the core is open in the model and vice versa.
    const pending = new Set([...v.converting, ...v.waiting].map((x) => x.lockId));
    expect([...pending].sort()).to.deep.equal([...this.open.keys()].sort());
  }
}

function apply(core: ResourceCore, m: Model, op: Op): void {
  let ev: ResourceEvent[] = [];
  const id = 'lock' in op ? `L${op.lock}` : '';
  try {
    switch (op.k) {
      case 'request': ev = core.request(id, `o${op.owner}`, op.mode, { noqueue: op.noqueue }); m.owners.set(id, `o${op.owner}`); break;
      case 'convert': ev = core.convert(id, op.mode, { noqueue: op.noqueue, lvb: op.lvb ? Buffer.from([op.lock]) : undefined }); break;
      case 'unlock': ev = core.unlock(id, op.lvb ? Buffer.from([op.lock]) : undefined); break;
      case 'cancel': ev = core.cancel(id); break;
      case 'expire': ev = core.expire(id); break;
      case 'purge':
        ev = core.purgeOwner(`o${op.owner}`);
        for (const [lid, ow] of m.owners) if (ow === `o${op.owner}` && m.open.has(lid)) { m.open.delete(lid); m.ended++; }
        break;
    }
  } catch (e) {
    expect(e).to.be.instanceOf(LockError);
    m.checkInvariants(core);
    return;
  }
  m.observe(core, ev, id ? { lockId: id, conversion: op.k === 'convert' } : undefined);
}

describe('ResourceCore property: random operation sequences', () => {
  it('never grants incompatible locks, never starves, tokens increase, every request ends once', () => {
    fc.assert(fc.property(fc.array(opArb, { minLength: 1, maxLength: 120 }), (ops) => {
      const core = new ResourceCore(8);
      const m = new Model();
      for (const op of ops) apply(core, m, op);
      // Drain: release every granted lock, oldest first; all that waits must end.
      for (let guard = 0; guard < 100 && !core.isIdle(); guard++) {
        const v = core.view();
        const target = v.granted[0] ?? v.converting[0] ?? v.waiting[0];
        apply(core, m, { k: 'unlock', lock: Number(target!.lockId.slice(1)), lvb: false });
      }
      expect(core.isIdle()).to.equal(true);
      expect(m.open.size).to.equal(0);
    }), { numRuns: 2000 });
  });
});
