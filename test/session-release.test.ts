/**
 * The early unlock reply of a client session (src/actors/client-session.ts, 'unlock'), with the
 * session actor alone: its routed operations are recorded, the master's events are delivered
 * by the test when it chooses, so a release can stay in flight for as long as a case needs
 * (no wall clock: the session runs on a ManualClock, the test waits for actor turns only).
 *
 * Each hazard of answering before the master confirms has a case here: reuse of the lock id
 * while its release travels, a recovery in between, a release that fails at the master, the
 * session's end with releases in flight, and the bound on releases in flight.
 */
import { expect } from 'chai';
import { ActorSystem, Ref } from '../src/actors/actor';
import { clientSessionDef, SessionMsg } from '../src/actors/client-session';
import type { LockEvent, ResourceMsg } from '../src/actors/messages';
import type { LockRecord } from '../src/cluster/dlm-messages';
import { Mode } from '../src/dlm/modes';
import { ManualClock } from '../src/util/clock';
import { CLIENT_PROTOCOL_VERSION, DaemonMessage } from '../src/wire/client-protocol';
import { quietLogger } from './support/daemon-proc';

const { PR, EX } = Mode;

/** Lets the actors run: a few turns of the event loop (no timer involved). */
async function turns(n = 10) { for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r)); }

interface Harness {
  ref: Ref<SessionMsg>;
  routed: Array<{ resource: string; msg: ResourceMsg; epoch: number }>;
  emitted: DaemonMessage[];
  purged: Array<[string, string]>;
  admission: { inFlight: number; max: number };
  failures: string[];
  ended: boolean;
  /** Sends a client request; resolves after the session handled it. */
  req(r: Record<string, unknown>): Promise<void>;
  /** Delivers an event from the master. */
  ev(e: LockEvent): Promise<void>;
  replyTo(id: number): Extract<DaemonMessage, { type: 'reply' }> | undefined;
  /** A granted lock: lock request, then the master's grant. */
  grantedLock(lockId: number, resource: string, mode: Mode, reqId: number): Promise<void>;
  collect(epoch: number): Promise<LockRecord[]>;
}

describe('client session: unlock answered before the master confirms', function () {
  let sys: ActorSystem;
  beforeEach(() => { sys = new ActorSystem(quietLogger()); });

  function session(opts: { maxInFlight?: number; maxLocks?: number } = {}): Harness {
    const h: Harness = {
      routed: [], emitted: [], purged: [], admission: { inFlight: 0, max: 1000 }, failures: [], ended: false,
    } as unknown as Harness;
    const clock = new ManualClock();
    h.ref = sys.spawn<any, SessionMsg>(undefined, 'session', clientSessionDef({
      sessionId: 7, nodeId: 1, nodeName: 'n1', epoch: 1, clock,
      route: (_ls, resource, msg, epoch) => h.routed.push({ resource, msg, epoch }),
      keepaliveMs: 1000, clientTimeoutMs: 5000, lvbSize: 32, maxFrameBytes: 65536,
      maxLocks: opts.maxLocks ?? 100, maxInFlight: opts.maxInFlight, admission: h.admission,
      info: {} as never, emit: (m) => h.emitted.push(m), close: () => {},
      purge: (_owner, _epoch, targets) => h.purged.push(...targets),
      releaseFailed: (code, message) => h.failures.push(`${code}: ${message}`),
      onEnd: () => { h.ended = true; },
    }));
    h.req = async (r) => { sys.send(h.ref, { type: 'client', req: r as never }); await turns(); };
    h.ev = async (e) => { sys.send(h.ref, e as SessionMsg); await turns(); };
    h.replyTo = (id) => h.emitted.find((m): m is Extract<DaemonMessage, { type: 'reply' }> => m.type === 'reply' && m.id === id);
    h.grantedLock = async (lockId, resource, mode, reqId) => {
      await h.req({ type: 'lock', id: reqId, lockId, lockspace: 'ls', resource, mode });
      await h.ev({ type: 'lock.granted', lockId: `1:7/${lockId}`, conversion: false, grant: { mode, token: 5, lvb: Buffer.alloc(0), lvbValid: false } });
      expect(h.replyTo(reqId)?.ok, `lock ${lockId} granted`).to.equal(true);
    };
    h.collect = (epoch) => sys.ask<SessionMsg, LockRecord[]>(h.ref, (replyTo) => ({ type: 'collect', epoch, replyTo }), 10000);
    return h;
  }
  /** A session whose client said hello (request id 1). */
  async function opened(maxInFlight: number): Promise<Harness> {
    const h = session({ maxInFlight });
    await h.req({ type: 'hello', id: 1, version: CLIENT_PROTOCOL_VERSION, client: 't' });
    return h;
  }
  const released = (lockId: number): LockEvent => ({ type: 'lock.released', lockId: `1:7/${lockId}` });
  const codeOf = (h: Harness, id: number) => { const r = h.replyTo(id); return r === undefined ? undefined : r.ok ? 'ok' : r.code; };
  const opsOn = (h: Harness, type: string) => h.routed.filter((r) => r.msg.type === type);

  it('answers the unlock of a granted lock at once; the release counts as in flight until the master confirms', async () => {
    const h = await opened(8);
    await h.grantedLock(1, 'r', EX, 2);
    await h.req({ type: 'unlock', id: 3, lockId: 1 });
    expect(h.replyTo(3)?.ok, 'answered before any lock.released').to.equal(true);
    expect(opsOn(h, 'unlock').map((r) => r.resource)).to.deep.equal(['r']);
    expect(h.admission.inFlight).to.equal(1);
    await h.ev(released(1));
    expect(h.admission.inFlight).to.equal(0);
  });

  it('keeps today\'s path (the reply waits for the master) for an LVB write in PW/EX and for a lock with a request in progress', async () => {
    const h = await opened(8);
    await h.grantedLock(1, 'r1', EX, 2);
    await h.req({ type: 'unlock', id: 3, lockId: 1, lvb: Buffer.from('v') });
    expect(h.replyTo(3), 'an EX unlock writing the LVB waits').to.equal(undefined);
    await h.ev(released(1));
    expect(h.replyTo(3)?.ok).to.equal(true);
    // A PR holder's LVB is not written: answered at once.
    await h.grantedLock(2, 'r2', PR, 4);
    await h.req({ type: 'unlock', id: 5, lockId: 2, lvb: Buffer.from('v') });
    expect(h.replyTo(5)?.ok).to.equal(true);
    // A conversion in progress: the unlock cancels it at the master, the reply waits.
    await h.grantedLock(3, 'r3', PR, 6);
    await h.req({ type: 'convert', id: 7, lockId: 3, mode: EX });
    await h.req({ type: 'unlock', id: 8, lockId: 3 });
    expect(h.replyTo(8), 'an unlock of a converting lock waits').to.equal(undefined);
  });

  it('a lock request reusing the lock id waits until the release is over: a late event of the old lock never reaches the new one', async () => {
    const h = await opened(8);
    await h.grantedLock(1, 'r', EX, 2);
    await h.req({ type: 'unlock', id: 3, lockId: 1 });
    expect(h.replyTo(3)?.ok).to.equal(true);
    await h.req({ type: 'lock', id: 4, lockId: 1, lockspace: 'ls', resource: 'r', mode: PR });
    expect(opsOn(h, 'request').length, 'not routed while the old release travels').to.equal(1);
    // A second request with that id is refused: the id is taken.
    await h.req({ type: 'lock', id: 5, lockId: 1, lockspace: 'ls', resource: 'r', mode: PR });
    expect(h.replyTo(5)?.ok).to.equal(false);
    // Late events of the old lock: a BAST (nothing reaches the client), then its release.
    await h.ev({ type: 'lock.bast', lockId: '1:7/1', mode: EX });
    expect(h.emitted.filter((m) => m.type === 'bast')).to.deep.equal([]);
    await h.ev(released(1));
    expect(opsOn(h, 'request').length, 'routed once the release is over').to.equal(2);
    await h.ev({ type: 'lock.granted', lockId: '1:7/1', conversion: false, grant: { mode: PR, token: 9, lvb: Buffer.alloc(0), lvbValid: false } });
    expect(h.replyTo(4)?.ok, 'the new lock is granted').to.equal(true);
    expect(h.admission.inFlight).to.equal(0);
  });

  it('a lock request parked behind a release can be cancelled or unlocked like any pending request', async () => {
    const h = await opened(8);
    await h.grantedLock(1, 'r', EX, 2);
    await h.req({ type: 'unlock', id: 3, lockId: 1 });
    await h.req({ type: 'lock', id: 4, lockId: 1, lockspace: 'ls', resource: 'r', mode: PR });
    await h.req({ type: 'convert', id: 5, lockId: 1, mode: EX });
    expect(codeOf(h, 5)).to.equal('BUSY');
    await h.req({ type: 'cancel', id: 6, lockId: 1 });
    expect([codeOf(h, 4), codeOf(h, 6)]).to.deep.equal(['CANCELLED', 'ok']);
    await h.req({ type: 'lock', id: 7, lockId: 1, lockspace: 'ls', resource: 'r', mode: PR });
    await h.req({ type: 'unlock', id: 8, lockId: 1 });
    expect([codeOf(h, 7), codeOf(h, 8)]).to.deep.equal(['CANCELLED', 'ok']);
    await h.ev(released(1));
    expect(opsOn(h, 'request').length, 'nothing started after the release').to.equal(1);
    expect(h.admission.inFlight).to.equal(0);
  });

  it('a recovery while a release travels: the lock is not in the records, the release is over, a request parked on its id goes out in the new epoch', async () => {
    const h = await opened(8);
    await h.grantedLock(1, 'r', EX, 2);
    await h.grantedLock(2, 'r', PR, 3);
    await h.req({ type: 'unlock', id: 4, lockId: 1 });
    await h.req({ type: 'lock', id: 5, lockId: 1, lockspace: 'ls', resource: 'r2', mode: EX }); // parked
    const records = await h.collect(2);
    expect(records.map((x) => x.lockId), 'only the lock still held').to.deep.equal(['1:7/2']);
    await turns();
    expect(h.admission.inFlight, 'the release of epoch 1 is over; the parked request counts').to.equal(1);
    const req = opsOn(h, 'request').find((r) => r.resource === 'r2');
    expect(req?.epoch, 'the parked request goes out in the new epoch').to.equal(2);
    // No event of epoch 1 reaches a session after its records for epoch 2 (LockRouter: the
    // resources and RemoteOwners of epoch 1 are stopped, older 'ev' messages dropped).
    expect(h.emitted.filter((m) => m.type === 'lost')).to.deep.equal([]);
  });

  it('a lock.lost for a released lock ends its release without telling the client anything', async () => {
    const h = await opened(8);
    await h.grantedLock(1, 'r', EX, 2);
    await h.req({ type: 'unlock', id: 3, lockId: 1 });
    await h.ev({ type: 'lock.lost', lockId: '1:7/1', reason: 'resource failed' });
    expect(h.emitted.filter((m) => m.type === 'lost')).to.deep.equal([]);
    expect(h.admission.inFlight).to.equal(0);
  });

  it('a release that fails at the master: counted, no crash, its resource purged when the session ends', async () => {
    const h = await opened(8);
    await h.grantedLock(1, 'r', EX, 2);
    await h.req({ type: 'unlock', id: 3, lockId: 1 });
    await h.ev({ type: 'lock.opError', lockId: '1:7/1', op: 'unlock', code: 'INVALID', message: 'refused' });
    expect(h.failures).to.deep.equal(['INVALID: refused']);
    expect(h.admission.inFlight).to.equal(0);
    await h.req({ type: 'lock', id: 4, lockId: 1, lockspace: 'ls', resource: 'other', mode: PR }); // the id is free again
    expect(opsOn(h, 'request').length).to.equal(2);
    sys.send(h.ref, { type: 'disconnected', reason: 'bye' });
    await turns();
    expect(h.ended).to.equal(true);
    expect(h.purged.map((t) => t[1]).sort()).to.deep.equal(['other', 'r']);
  });

  it('the session ends with releases in flight: their resources are purged, nothing stays counted', async () => {
    const h = await opened(8);
    await h.grantedLock(1, 'r', EX, 2);
    await h.req({ type: 'unlock', id: 3, lockId: 1 });
    expect(h.admission.inFlight).to.equal(1);
    sys.send(h.ref, { type: 'disconnected', reason: 'bye' });
    await turns();
    expect(h.purged).to.deep.equal([['ls', 'r']]);
    expect(h.admission.inFlight).to.equal(0);
  });

  it('at most max_requests_per_client releases in flight: beyond, the unlock waits for its master', async () => {
    const h = await opened(2);
    for (const i of [1, 2, 3]) await h.grantedLock(i, `r${i}`, EX, 10 + i);
    for (const i of [1, 2, 3]) await h.req({ type: 'unlock', id: 20 + i, lockId: i });
    expect([1, 2, 3].map((i) => h.replyTo(20 + i)?.ok)).to.deep.equal([true, true, undefined]);
    expect(h.admission.inFlight, 'two releases and one unlock in flight').to.equal(3);
    await h.ev(released(3));
    expect(h.replyTo(23)?.ok).to.equal(true);
    await h.ev(released(1));
    await h.ev(released(2));
    expect(h.admission.inFlight).to.equal(0);
  });
});
