/**
 * The contended one-name handoff (issue 13, docs/benchmarks.md "16 clients on one name"):
 * FIFO grants under contention through the actors, the next waiter's grant sent before the
 * unlocker's reply (each owner's own events in their order), and the client connection's
 * frames of one turn leaving in one write (src/daemon/reply-batch.ts).
 */
import { expect } from 'chai';
import { ActorSystem, Ref } from '../src/actors/actor';
import { LockTable } from '../src/actors/lockspace';
import { LockEvent, newLockStats } from '../src/actors/messages';
import { Mode } from '../src/dlm/modes';
import { flushAll, ReplyBatch } from '../src/daemon/reply-batch';
import { FrameDecoder } from '../src/wire/frame';
import { ManualClock } from '../src/util/clock';
import { DaemonProc, quietLogger, startDaemon, waitFor } from './support/daemon-proc';
import { rawClient } from './support/raw-client';

/** Lets the actors run what is queued (a few event-loop turns). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

/** A lock table whose owners are actors that only receive; every lock event sent, in send order. */
function setup(owners: number) {
  const sys = new ActorSystem(quietLogger());
  const table = new LockTable(sys, { lvbSize: 32, idleEvictMs: 60000, clock: new ManualClock(), stats: newLockStats(), faultInjection: false });
  const refs: Array<Ref<LockEvent>> = [];
  const sent: string[] = [];
  for (let i = 0; i < owners; i++) {
    const ref = sys.spawn<null, LockEvent>(undefined, 'owner', { init: () => null, handle: (s) => s });
    refs.push(ref);
  }
  sys.addTap((to, msg) => {
    const i = refs.indexOf(to as Ref<LockEvent>);
    if (i >= 0) sent.push(`${(msg as LockEvent).type} ${(msg as unknown as { lockId: string }).lockId}`);
  });
  const request = (owner: number, lockId: string) =>
    table.route('default', 'hot', { type: 'request', lockId, owner: `o${owner}`, mode: Mode.EX, noqueue: false, notify: refs[owner]! });
  const unlock = (lockId: string) => table.route('default', 'hot', { type: 'unlock', lockId });
  return { sys, sent, request, unlock };
}

describe('contended one-name handoff', () => {
  it('16 owners queued on one name are granted in the order they asked, each unlock handing over to the next', async () => {
    const { sent, request, unlock } = setup(16);
    for (let i = 0; i < 16; i++) request(i, `L${i}`);
    await settle();
    const grants = () => sent.filter((x) => x.startsWith('lock.granted')).map((x) => x.split(' ')[1]);
    expect(grants()).to.deep.equal(['L0']);
    // Two rounds: each owner, once granted, unlocks and asks again (to the back of the queue).
    for (let k = 0; k < 32; k++) {
      const holder = k % 16;
      unlock(`L${holder}${k >= 16 ? 'b' : ''}`);
      if (k < 16) request(holder, `L${holder}b`);
      await settle();
    }
    const want = [...Array.from({ length: 16 }, (_, i) => `L${i}`), ...Array.from({ length: 16 }, (_, i) => `L${i}b`)];
    expect(grants()).to.deep.equal(want);
  });

  it("an unlock's events: the next waiter's grant (and its BAST) before the unlocker's release", async () => {
    const { sent, request, unlock } = setup(3);
    request(0, 'A');
    request(1, 'B');
    request(2, 'C');
    await settle();
    sent.length = 0;
    unlock('A');
    await settle();
    // B is granted while C still waits: B owes C a BAST.
    expect(sent).to.deep.equal(['lock.granted B', 'lock.bast B', 'lock.released A']);
  });

  it("one owner's own events keep their order: its release before its own next grant", async () => {
    const { sent, request, unlock } = setup(2);
    request(0, 'x');
    request(0, 'y'); // the same owner, another lock on the same name: waits behind x
    request(1, 'z');
    await settle();
    sent.length = 0;
    unlock('x');
    await settle();
    expect(sent).to.deep.equal(['lock.released x', 'lock.granted y', 'lock.bast y']);
  });
});

describe('ReplyBatch', () => {
  const sinks = () => {
    const log: string[] = [];
    const sink = (name: string) => ({ write: (b: Buffer) => { log.push(`${name}:${b.toString()}`); } });
    return { log, sink };
  };

  it("a connection's frames of one turn leave in one write, in order; connections in the order of their first frame", async () => {
    const { log, sink } = sinks();
    const a = new ReplyBatch(sink('a')), b = new ReplyBatch(sink('b'));
    b.add(Buffer.from('1'));
    a.add(Buffer.from('2'));
    b.add(Buffer.from('3'));
    expect(log).to.deep.equal([]); // nothing written within the turn
    expect([a.bytes, b.bytes]).to.deep.equal([1, 2]); // counted as backlog until written
    await new Promise((r) => process.nextTick(r));
    expect(log).to.deep.equal(['b:13', 'a:2']);
    expect([a.bytes, b.bytes]).to.deep.equal([0, 0]);
  });

  it('flush() writes at once (before a connection ends) and the turn writes nothing twice', async () => {
    const { log, sink } = sinks();
    const a = new ReplyBatch(sink('a'));
    a.add(Buffer.from('lost'));
    a.flush();
    expect(log).to.deep.equal(['a:lost']);
    a.add(Buffer.from('x'));
    flushAll();
    await new Promise((r) => process.nextTick(r));
    expect(log).to.deep.equal(['a:lost', 'a:x']);
  });
});

describe('client connection writes (mxfsd)', function () {
  this.timeout(30000);
  let d: DaemonProc | undefined;
  afterEach(async () => { await d?.stop(); d = undefined; });

  it("a connection cut for a bad frame still gets its 'lost' frame before the close (the batch is written first)", async () => {
    d = await startDaemon();
    const r = await rawClient(d.socket);
    r.send({ type: 'hello', id: 1, version: 1, client: 'bad-frame' });
    await r.reply(1);
    // A frame header announcing more than any frame may hold: a protocol error, the connection is cut.
    const bad = Buffer.alloc(4);
    bad.writeUInt32BE(0x7fffffff, 0);
    r.s.write(bad);
    await waitFor(() => r.isClosed(), 10000, 'the connection closed');
    const lost = r.msgs.filter((m) => m.type === 'lost').map((m) => m.reason as string);
    expect(lost).to.have.length(1);
    expect(lost[0]).to.match(/protocol error/);
  });

  it('the grant and the BAST of a handoff reach the new holder together, after its lock request was queued', async () => {
    d = await startDaemon();
    const [a, b, c] = [await rawClient(d.socket), await rawClient(d.socket), await rawClient(d.socket)];
    const chunks: Buffer[] = [];
    b.s.on('data', (x: Buffer) => chunks.push(x));
    for (const [i, x] of [a, b, c].entries()) { x.send({ type: 'hello', id: 1, version: 1, client: `h${i}` }); await x.reply(1); }
    a.send({ type: 'lock', id: 2, lockId: 1, lockspace: 'default', resource: 'hot', mode: Mode.EX });
    await a.reply(2);
    b.send({ type: 'lock', id: 2, lockId: 1, lockspace: 'default', resource: 'hot', mode: Mode.EX });
    c.send({ type: 'lock', id: 2, lockId: 1, lockspace: 'default', resource: 'hot', mode: Mode.EX });
    await waitFor(() => a.msgs.some((m) => m.type === 'bast'), 10000, 'the holder told of the waiters');
    chunks.length = 0;
    a.send({ type: 'unlock', id: 3, lockId: 1 });
    expect((await b.reply(2)).grant.mode).to.equal(Mode.EX);
    await waitFor(() => b.msgs.some((m) => m.type === 'bast'), 10000, "the new holder's BAST");
    // One write: both frames in the first chunk B's socket read after the unlock (a stream
    // socket may merge writes, never split a small one).
    expect(new FrameDecoder(1 << 20).push(chunks[0]!).map((m) => (m as { type: string }).type)).to.deep.equal(['reply', 'bast']);
  });
});
