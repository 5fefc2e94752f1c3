/**
 * The client library's safety bound: a lock is valid only until lostAfterMs after the SEND
 * time of the last message the daemon answered. A late reply, or heartbeat acks that sat in
 * a buffer while the process was paused, must not extend it (the daemon may already have
 * purged the client's locks). Fake transport, manual clock.
 */
import { expect } from 'chai';
import { ClientTransport, MxfsClient } from '../src/client/client';
import { Mode } from '../src/dlm/modes';
import { ClientRequest, DaemonMessage } from '../src/wire/client-protocol';
import { ManualClock } from '../src/util/clock';

const T = 1000;

function fakeDaemon(clock: ManualClock) {
  const sent: ClientRequest[] = [];
  const t: ClientTransport = {
    send(req) {
      sent.push(req);
      if (req.type === 'hello') {
        queueMicrotask(() => t.onMessage?.({ type: 'reply', id: req.id, ok: true, data: { node: 1, nodeName: 'n', version: 1, session: 1, keepaliveMs: 200, lostAfterMs: T, lvbSize: 8, maxFrameBytes: 65536 } }));
      }
    },
    close() {},
  };
  const reply = (m: DaemonMessage) => t.onMessage?.(m);
  return { t, sent, reply, clock };
}

const flush = () => new Promise((r) => setImmediate(r));

/** A client holding a PR lock granted at t=0 by the fake daemon. */
async function grantedPR() {
  const clock = new ManualClock();
  const d = fakeDaemon(clock);
  const c = await MxfsClient.start(d.t, { clock });
  const p = c.lock('r', Mode.PR);
  await flush();
  const req = d.sent.find((x) => x.type === 'lock') as Extract<ClientRequest, { type: 'lock' }>;
  d.reply({ type: 'reply', id: req.id, ok: true, grant: { mode: Mode.PR, token: 0, lvb: Buffer.alloc(8), lvbValid: false } });
  return { clock, d, h: await p };
}

describe('client liveness bound', () => {
  it('a grant reply arriving late counts from the request\'s send time', async () => {
    const clock = new ManualClock();
    const d = fakeDaemon(clock);
    const c = await MxfsClient.start(d.t, { clock });
    const p = c.lock('r', Mode.EX);
    await flush();
    const req = d.sent.find((x) => x.type === 'lock') as Extract<ClientRequest, { type: 'lock' }>;
    clock.now = () => 900;                    // the reply arrives 900 ms after the request left
    d.reply({ type: 'reply', id: req.id, ok: true, grant: { mode: Mode.EX, token: 1, lvb: Buffer.alloc(8), lvbValid: false } });
    const h = await p;
    expect(h.valid).to.equal(true);
    clock.now = () => 1000;                   // T after the SEND time: no longer valid
    expect(h.valid).to.equal(false);
  });

  it('a grant read after the bound (it sat in the socket while the process was paused) fails the request LOST, never resolves it', async () => {
    const clock = new ManualClock();
    const d = fakeDaemon(clock);
    const c = await MxfsClient.start(d.t, { clock });
    let lost = '';
    c.on('lost', (why: string) => { lost = why; });
    const p = c.lock('r', Mode.EX).then(() => 'resolved', (e) => e.code);
    await flush();
    const req = d.sent.find((x) => x.type === 'lock') as Extract<ClientRequest, { type: 'lock' }>;
    // Paused before the watchdog's next beat; on resume the grant is read first.
    clock.now = () => T + 500;
    d.reply({ type: 'reply', id: req.id, ok: true, grant: { mode: Mode.EX, token: 1, lvb: Buffer.alloc(8), lvbValid: false } });
    expect(await p).to.equal('LOST');
    expect(lost).to.match(/no answer from mxfsd within 1000 ms/);
  });

  it('a BAST read after the bound emits lost on the handle, never bast; one read within it emits bast', async () => {
    const { clock, d, h } = await grantedPR();
    const events: string[] = [];
    h.on('bast', (m: Mode) => events.push(`bast ${m}`));
    h.on('lost', () => events.push('lost'));
    clock.now = () => T - 1;                  // within the bound: the daemon still counts it held
    d.reply({ type: 'bast', lockId: 1, mode: Mode.EX });
    expect(events).to.deep.equal([`bast ${Mode.EX}`]);
    clock.now = () => T + 500;                // paused past the bound; on resume the BAST is read first
    d.reply({ type: 'bast', lockId: 1, mode: Mode.EX });
    expect(events).to.deep.equal([`bast ${Mode.EX}`, 'lost']);
    expect(h.released).to.equal(true);
  });

  it('convert() past the bound rejects LOST (a promise, never a synchronous throw) and the handle is lost', async () => {
    const { clock, h } = await grantedPR();
    let lost = '';
    h.on('lost', (why: string) => { lost = why; });
    clock.now = () => T + 500;                // paused past the bound; the watchdog has not run yet
    let p: Promise<unknown> | undefined;
    expect(() => { p = h.convert(Mode.EX); }).not.to.throw();
    expect(await p!.then(() => 'resolved', (e) => e.code)).to.equal('LOST');
    expect(lost).to.match(/no answer from mxfsd within 1000 ms/);
    expect(h.released).to.equal(true);
  });

  it('heartbeat acks buffered during a pause do not extend validity; fresh acks do', async () => {
    const { clock, d, h } = await grantedPR();
    clock.advance(200);                       // the watchdog sends hb #1 at t=200
    const hb1 = d.sent.filter((x) => x.type === 'hb').at(-1) as Extract<ClientRequest, { type: 'hb' }>;
    expect(hb1).to.not.equal(undefined);
    // The process is paused here; when it resumes at t=1500 the ack of hb #1 is read.
    clock.now = () => 1500;
    d.reply({ type: 'hb', ack: hb1.seq });
    expect(h.valid).to.equal(false);          // 1500 - 200 >= T
    let lost = false;
    h.once('lost', () => { lost = true; });
    let err: any;
    try { await h.convert(Mode.NL); } catch (e) { err = e; }
    expect(err?.code).to.equal('LOST');
    expect(lost).to.equal(true);
  });

  it('a client whose heartbeats are answered stays valid', async () => {
    const { clock, d, h } = await grantedPR();
    for (let i = 0; i < 20; i++) {
      clock.advance(200);
      const hb = d.sent.filter((x) => x.type === 'hb').at(-1) as Extract<ClientRequest, { type: 'hb' }>;
      d.reply({ type: 'hb', ack: hb.seq });
    }
    expect(h.valid).to.equal(true);
  });
});

/**
 * A grant and a 'lost' read in the same chunk (the daemon shut down, lost quorum or lost the
 * resource just after granting): both are handled before the awaiting lock()/convert()
 * resumes, so the caller must be told LOST; a handle it never had the chance to listen on
 * ('lost' was emitted before it got it) would look held.
 */
/** A client whose lock('r', mode) is sent, not answered; `grant` is the reply granting it. */
async function pendingLock(mode: Mode = Mode.EX) {
  const clock = new ManualClock();
  const d = fakeDaemon(clock);
  const c = await MxfsClient.start(d.t, { clock });
  const p = c.lock('r', mode).then((h) => h, (e) => e);
  await flush();
  const req = d.sent.find((x) => x.type === 'lock') as Extract<ClientRequest, { type: 'lock' }>;
  const grant = { type: 'reply', id: req.id, ok: true, grant: { mode, token: 7, lvb: Buffer.alloc(8), lvbValid: false } } as const;
  return { d, c, p, req, grant };
}

describe('client: a lock lost as its grant is read', () => {

  it('lock(): a grant followed in the same read by the session\'s lost rejects LOST, never resolves with a handle', async () => {
    const { d, p, grant } = await pendingLock();
    d.reply(grant);
    d.reply({ type: 'lost', reason: 'mxfsd on node 1 shutting down' });
    const r = await p;
    expect(r).to.be.instanceOf(Error);
    expect(r.code).to.equal('LOST');
    expect(r.message).to.match(/shutting down/);
  });

  it('lock(): a grant followed in the same read by that lock\'s lost rejects LOST', async () => {
    const { d, p, grant, req } = await pendingLock();
    d.reply(grant);
    d.reply({ type: 'lost', lockId: req.lockId, reason: 'resource default/r failed' });
    const r = await p;
    expect(r.code).to.equal('LOST');
    expect(r.message).to.match(/failed/);
  });

  it('lock(): close() after the grant is read but before lock() resumes rejects SHUTDOWN', async () => {
    const { d, c, p, grant } = await pendingLock();
    d.reply(grant);
    void c.close();
    expect((await p).code).to.equal('SHUTDOWN');
  });

  it('convert(): a grant followed in the same read by the lock\'s lost rejects LOST; the handle is lost, its grant unchanged', async () => {
    const { d, h } = await grantedPR();
    const events: string[] = [];
    h.on('lost', () => events.push('lost'));
    const p = h.convert(Mode.EX).then(() => 'resolved', (e) => e.code);
    await flush();
    const req = d.sent.find((x) => x.type === 'convert') as Extract<ClientRequest, { type: 'convert' }>;
    d.reply({ type: 'reply', id: req.id, ok: true, grant: { mode: Mode.EX, token: 9, lvb: Buffer.alloc(8), lvbValid: false } });
    d.reply({ type: 'lost', lockId: req.lockId, reason: 'resource default/r failed' });
    expect(await p).to.equal('LOST');
    expect(events).to.deep.equal(['lost']);
    expect(h.released).to.equal(true);
    expect(h.grant.mode).to.equal(Mode.PR);
  });

  it('convert() failed LOST by the daemon: the handle is lost when the caller sees the rejection, before the lock\'s lost is read', async () => {
    const { d, h } = await grantedPR();
    const events: string[] = [];
    h.on('lost', (why: string) => events.push(`lost ${why}`));
    const p = h.convert(Mode.EX).then(() => 'resolved', (e) => ({ code: e.code, valid: h.valid, released: h.released, events: [...events] }));
    await flush();
    const req = d.sent.find((x) => x.type === 'convert') as Extract<ClientRequest, { type: 'convert' }>;
    d.reply({ type: 'reply', id: req.id, ok: false, code: 'LOST', message: 'resource default/r failed' });
    expect(await p).to.deep.equal({ code: 'LOST', valid: false, released: true, events: ['lost resource default/r failed'] });
    d.reply({ type: 'lost', lockId: req.lockId, reason: 'resource default/r failed' }); // read later: nothing more
    expect(events).to.have.length(1);
  });
});

/**
 * Events that come before anyone listens: the daemon sends a BAST once per grant and a loss
 * once, so a handle keeps them for the first listener added later (on the next tick).
 */
describe('client: a BAST or a loss before the handle has listeners', () => {
  it('a BAST read together with the grant reaches a bast listener added once lock() resolved', async () => {
    const { d, p, req, grant } = await pendingLock(Mode.PR);
    d.reply(grant);
    d.reply({ type: 'bast', lockId: req.lockId, mode: Mode.EX });
    const h = await p;
    const heard: Mode[] = [];
    h.on('bast', (m: Mode) => heard.push(m));
    await flush();
    expect(heard).to.deep.equal([Mode.EX]);
    const later: Mode[] = [];
    h.on('bast', (m: Mode) => later.push(m)); // heard already: a listener added now gets nothing
    await flush();
    expect(later).to.deep.equal([]);
  });

  it('an unheard BAST is dropped by a new grant (convert); one heard is never repeated', async () => {
    const { d, h } = await grantedPR();
    d.reply({ type: 'bast', lockId: 1, mode: Mode.EX });
    const p = h.convert(Mode.NL);
    await flush();
    const req = d.sent.find((x) => x.type === 'convert') as Extract<ClientRequest, { type: 'convert' }>;
    d.reply({ type: 'reply', id: req.id, ok: true, grant: { mode: Mode.NL, token: 0, lvb: Buffer.alloc(8), lvbValid: false } });
    await p;
    const heard: Mode[] = [];
    h.on('bast', (m: Mode) => heard.push(m));
    await flush();
    expect(heard).to.deep.equal([]);
  });

  it('a loss before anyone listened (the handle passed on first) reaches a lost listener added later', async () => {
    const { d, h } = await grantedPR();
    d.reply({ type: 'lost', lockId: 1, reason: 'resource default/r failed' });
    await flush(); // the consumer's hop (an actor message) before it listens
    const heard: string[] = [];
    h.once('lost', (why: string) => heard.push(why));
    await flush();
    expect(heard).to.deep.equal(['resource default/r failed']);
  });
});
