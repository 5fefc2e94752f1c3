/** PeerLink robustness: a misbehaving authenticated peer (garbage, oversized, truncated,
 *  out-of-order or duplicate frames) and an on-path attacker (frames with a wrong, missing,
 *  replayed or reflected MAC, also when they arrive with the handshake's last message) are
 *  dropped while the other links keep working; reconnect after either end restarts; bounded
 *  send queue; the address check. */
import { expect } from 'chai';
import * as net from 'node:net';
import bunyan from 'bunyan';
import { ActorSystem } from '../src/actors/actor';
import { ManualClock, systemClock } from '../src/util/clock';
import { Connection, SimNetwork, TcpNetwork } from '../src/cluster/network';
import { PeerTransport } from '../src/cluster/transport';
import { EstablishedSession, runInitiator, runResponder } from '../src/cluster/handshake';
import type { ClusterOptions } from '../src/cluster/options';
import type { LinkEvent, SendResult } from '../src/cluster/peer-link';
import { encodePeerMessage, PeerBody, PeerMessage, toWire, validatePeerMessage } from '../src/cluster/peer-protocol';
import { computeProof, frameMac, makeNonce, openFrame, ProofInput, SessionKeys, sessionKeys } from '../src/cluster/auth';
import { decodePayload as decodeMsgpack, encodeFrame, FrameDecoder } from '../src/wire/frame';

const KEY = Buffer.from('0123456789abcdef0123456789abcdef');

/** The msgpack bytes of a wire object (a frame payload without its MAC). */
const msgpackOf = (wire: unknown) => encodeFrame(wire, 1 << 20).subarray(4);
/** bytes + MAC(key, seq, bytes), length-prefixed: a frame as a PeerLink writes it. */
function macFrame(bytes: Buffer, key: Buffer, seq: number): Buffer {
  const payload = Buffer.concat([bytes, frameMac(key, seq, bytes)]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(payload.length, 0);
  return Buffer.concat([len, payload]);
}
const peerWire = (from: number, to: number, seq: number, body: PeerBody) => toWire({ hdr: { from, to, epoch: 0, seq }, body });

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<net.Server>((res) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => res(s));
  })));
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function configs(ids: number[], ports: number[], address = (_id: number) => '127.0.0.1'): ClusterOptions[] {
  const nodes = ids.map((id, i) => ({ id, name: `n${id}`, address: address(id), port: ports[i] }));
  return nodes.map((node) => ({ node: { ...node }, cluster: { name: 'test' }, peers: nodes.filter((p) => p.id !== node.id).map((p) => ({ ...p })), timing: { leaseTimeoutMs: 10000, renewIntervalMs: 2000 } }));
}

interface Harness { t: PeerTransport; got: PeerMessage[]; events: LinkEvent[]; ring: bunyan.RingBuffer; system: ActorSystem }

async function startNode(cfg: ClusterOptions, extra: Partial<ConstructorParameters<typeof PeerTransport>[0]> = {}): Promise<Harness> {
  const ring = new bunyan.RingBuffer({ limit: 1000 });
  const log = bunyan.createLogger({ name: `n${cfg.node.id}`, streams: [{ type: 'raw', stream: ring, level: 'debug' }] });
  const system = new ActorSystem(log);
  const got: PeerMessage[] = [];
  const events: LinkEvent[] = [];
  const t = new PeerTransport({
    config: cfg, key: KEY, network: new TcpNetwork(1000), clock: systemClock, system, log,
    backoff: { initialMs: 20, maxMs: 200 }, maxFrameBytes: 4096,
    onMessage: (_f, m) => got.push(m), onLinkEvent: (e) => events.push(e), ...extra,
  });
  await t.start();
  return { t, got, events, ring, system };
}

/** Node 1 played by the test: dials node 2 on 127.0.0.1:port and runs a correct handshake. */
async function dialAs1(port: number): Promise<{ conn: Connection; s: EstablishedSession }> {
  const conn = await new TcpNetwork().connect('127.0.0.1', port);
  const s = await runInitiator(conn, {
    selfId: 1, peerId: 2, cluster: 'test', key: KEY, clock: systemClock, timeoutMs: 2000, maxFrameBytes: 4096,
    log: bunyan.createLogger({ name: 'fake', level: 'fatal' }),
  });
  return { conn, s };
}

async function until(cond: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
const ups = (h: Harness, peer: number) => h.events.filter((e) => e.type === 'up' && e.peer === peer).length;
const downs = (h: Harness, peer: number) => h.events.filter((e) => e.type === 'down' && e.peer === peer) as Array<Extract<LinkEvent, { type: 'down' }>>;
async function stop(...hs: Harness[]) { for (const h of hs) { await h.t.stop(); h.system.shutdown(); } }

describe('peer links', function () {
  this.timeout(20000);

  describe('a misbehaving authenticated peer is dropped; the other links keep working (TCP)', () => {
    let ports: number[];
    let n2: Harness;
    let n3: Harness;

    before(async () => {
      ports = await freePorts(3);
      const [, c2, c3] = configs([1, 2, 3], ports);
      n2 = await startNode(c2);
      n3 = await startNode(c3);
      await until(() => ups(n2, 3) === 1 && ups(n3, 2) === 1, 3000, 'link 2-3');
    });
    after(async () => { await stop(n2, n3); });

    /**
     * Node 1 played by the test: a correct handshake, then whatever the case writes. `seq` is
     * the header sequence number of the next message (a case may lie in it); `pos` the frame's
     * position in the stream, which node 2 checks the MAC against. frame() builds a frame MAC'd
     * like a PeerLink does unless told otherwise; put() writes one as the next position.
     */
    interface FakeNode {
      conn: Connection; keys: SessionKeys; seq: number; pos: number; written: Buffer[];
      frame(bytes: Buffer, o?: { key?: Buffer; macSeq?: number }): Buffer;
      put(frame: Buffer): void;
      send(body: PeerBody, seq?: number): void;
    }
    async function fakeNode1(): Promise<FakeNode> {
      const { conn, s } = await dialAs1(ports[1]);
      const f: FakeNode = {
        conn, keys: s.keys, seq: s.sendSeq, pos: s.sendSeq, written: [],
        frame: (bytes, o = {}) => macFrame(bytes, o.key ?? s.keys.send, o.macSeq ?? f.pos),
        put: (frame) => { f.written.push(frame); f.pos++; conn.write(frame); },
        send: (body, seq = f.seq++) => f.put(f.frame(msgpackOf(peerWire(1, 2, seq, body)))),
      };
      return f;
    }
    const flip = (buf: Buffer, at: number) => { const b = Buffer.from(buf); b[at] ^= 0x01; return b; };
    const ping = (f: FakeNode, token: number) => msgpackOf(peerWire(1, 2, f.seq, { type: 'ping', token }));
    const MAC_MISMATCH = /frame MAC mismatch at sequence \d+/;
    const FORGED = 666;

    const cases: Array<[string, (f: FakeNode) => void, RegExp]> = [
      ['an invalid message', (f) => f.put(f.frame(msgpackOf({ magic: 'MXFS', ver: 1, type: 'renew', from: 1, to: 2, epoch: 0, seq: f.seq, body: { sentAt: 'soon' } }))), /invalid message: 'renew': field 'sentAt' must be a finite number/],
      ['undecodable bytes', (f) => f.put(f.frame(Buffer.from([0x92, 0x01]))), /undecodable frame/],
      ['an oversized frame', (f) => f.conn.write(Buffer.from('GARBAGE!GARBAGE!')), /exceeds the limit of 4096/],
      ['an out-of-order sequence number', (f) => { f.send({ type: 'ping', token: 1 }, f.seq + 1); }, /sequence gap: got \d+, expected \d+/],
      ['a duplicate sequence number', (f) => { f.send({ type: 'ping', token: 1 }); f.send({ type: 'ping', token: 2 }, f.seq - 1); }, /duplicate or replayed sequence/],
      ['a frame claiming another sender', (f) => f.put(f.frame(msgpackOf(peerWire(3, 2, f.seq, { type: 'ping', token: 1 })))), /claims 3->2 on the link 1->2/],
      ['a handshake message after the handshake', (f) => f.send({ type: 'welcome' }), /handshake message 'welcome' on an established link/],
      ['a truncated frame and a close', (f) => { f.conn.write(Buffer.from([0, 0, 0, 50, 0x80])); setTimeout(() => f.conn.close(), 20); }, /truncated frame: 5 bytes/],
      // An on-path attacker, without the session keys:
      ['a flipped payload byte', (f) => f.put(flip(f.frame(ping(f, FORGED)), 4 + 3)), MAC_MISMATCH],
      ['a flipped MAC byte', (f) => { const fr = f.frame(ping(f, FORGED)); f.put(flip(fr, fr.length - 1)); }, MAC_MISMATCH],
      ['a frame without a MAC', (f) => f.put(encodePeerMessage({ hdr: { from: 1, to: 2, epoch: 0, seq: f.seq }, body: { type: 'ping', token: FORGED } })), MAC_MISMATCH],
      ['a frame too short to carry a MAC', (f) => f.put(Buffer.from([0, 0, 0, 1, 0xc0])), /frame MAC mismatch: a frame of 1 bytes cannot carry its 16-byte MAC/],
      // The earlier 'ping' again, byte for byte: its MAC is for the sequence number it had then.
      ['a replay of an earlier frame', (f) => f.put(f.written[0]), MAC_MISMATCH],
      // Right header sequence number, valid MAC, but computed for another position.
      ['a frame MAC\'d for another sequence number', (f) => f.put(f.frame(ping(f, FORGED), { macSeq: f.pos - 1 })), MAC_MISMATCH],
      ['a frame MAC\'d for another sequence number (2^32 apart)', (f) => f.put(f.frame(ping(f, FORGED), { macSeq: f.pos + 2 ** 32 })), MAC_MISMATCH],
      // A frame node 2 itself sent (the other direction's key), reflected back at it.
      ['a frame MAC\'d with the other direction\'s key', (f) => f.put(f.frame(ping(f, FORGED), { key: f.keys.recv })), MAC_MISMATCH],
    ];
    for (const [what, act, reason] of cases) {
      it(`drops the link on ${what}, logs why, and 2<->3 still works`, async () => {
        const before = downs(n2, 1).length;
        const f = await fakeNode1();
        await until(() => ups(n2, 1) > before, 2000, 'fake link up');
        f.send({ type: 'ping', token: 99 });
        await until(() => n2.got.some((m) => m.hdr.from === 1 && m.body.type === 'ping'), 2000, 'valid message first');
        act(f);
        await until(() => downs(n2, 1).length > before, 2000, 'link dropped');
        expect(downs(n2, 1).at(-1)!.reason).to.match(reason);
        expect(n2.ring.records.some((r: { msg: string }) => reason.test(r.msg))).to.equal(true);
        const pings = (token: number) => n2.got.filter((m) => m.hdr.from === 1 && m.body.type === 'ping' && m.body.token === token).length;
        expect([pings(99), pings(FORGED)], 'the valid ping once, the forged or replayed frame never').to.deep.equal([1, 0]);
        await until(() => f.conn.closed, 2000, 'connection closed');
        const n = n3.got.length;
        expect(await n2.t.sendAndWait(3, { type: 'ping', token: n })).to.equal('sent');
        await until(() => n3.got.length === n + 1, 2000, '2->3 still delivers');
        n2.got.length = 0;
      });
    }

    it("keeps the link on one bad lock message: the 'dlm' frame is delivered marked invalid, and what follows arrives", async () => {
      const before = downs(n2, 1).length;
      const f = await fakeNode1();
      await until(() => ups(n2, 1) > before, 2000, 'fake link up');
      f.send({ type: 'dlm', inc: 5, n: 1, seq: 0, msg: { t: 'op', epoch: 1, lockspace: 'default', resource: 'r', op: { type: 'unlock', lockId: '1:1/1', lvb: Buffer.alloc(2000) } } } as unknown as PeerBody);
      f.send({ type: 'ping', token: 98 });
      await until(() => n2.got.some((m) => m.hdr.from === 1 && m.body.type === 'ping' && m.body.token === 98), 2000, 'the ping after it');
      const bad = n2.got.find((m) => m.hdr.from === 1 && m.body.type === 'dlm')!.body as { invalid?: string; seq: number };
      expect(bad.seq).to.equal(0);
      expect(bad.invalid).to.match(/field 'lvb' must be binary of at most 1024 bytes/);
      expect(downs(n2, 1).length).to.equal(before);
      f.conn.close();
      await until(() => downs(n2, 1).length > before, 2000, 'link closed by the fake node');
      n2.got.length = 0;
    });
  });

  it("MACs every frame it sends, 'bye' included, with its own direction's key and the frame's sequence number", async () => {
    const ports = await freePorts(2);
    const [, c2] = configs([1, 2], ports);
    const n2 = await startNode(c2);
    let stopped = false;
    try {
      const { conn, s } = await dialAs1(ports[1]);
      const frames: Buffer[] = [...s.pending];
      for (const chunk of s.stash) frames.push(...s.decoder.pushRaw(chunk));
      conn.onData((chunk) => frames.push(...s.decoder.pushRaw(chunk)));
      await until(() => ups(n2, 1) === 1, 2000, 'link up');
      expect(await n2.t.sendAndWait(1, { type: 'ping', token: 7 })).to.equal('sent');
      await until(() => frames.length === 1, 2000, 'ping received');
      await stop(n2);
      stopped = true;
      await until(() => frames.length === 2, 2000, 'bye received');
      const opened = frames.map((f, i) => openFrame(s.keys.recv, s.recvSeq + i, f));
      expect(opened.every((b) => b !== undefined), 'valid under the responder->initiator key').to.equal(true);
      expect(opened.map((b) => validatePeerMessage(decodeMsgpack(b!)).body.type)).to.deep.equal(['ping', 'bye']);
      expect(frames.map((f, i) => openFrame(s.keys.send, s.recvSeq + i, f)), 'not under the other direction\'s key').to.deep.equal([undefined, undefined]);
      expect(openFrame(s.keys.recv, s.recvSeq + 1, frames[0]), 'not at another position').to.equal(undefined);
      conn.destroy();
    } finally { if (!stopped) await stop(n2); }
  });

  it('reconnects after the remote end restarts (either end)', async () => {
    const ports = await freePorts(2);
    const [c1, c2] = configs([1, 2], ports);
    const n1 = await startNode(c1);
    let n2 = await startNode(c2);
    try {
      await until(() => ups(n1, 2) === 1, 3000, 'first up');
      await stop(n2);                       // the accepting side goes away
      await until(() => downs(n1, 2).length === 1, 3000, 'down seen');
      await new Promise((r) => setTimeout(r, 150)); // a few failed dials with backoff
      n2 = await startNode(c2);
      await until(() => ups(n1, 2) === 2 && ups(n2, 1) === 1, 3000, 'reconnected by the dialer');
      expect(await n1.t.sendAndWait(2, { type: 'ping', token: 1 })).to.equal('sent');
      await until(() => n2.got.length === 1, 2000, 'delivery after reconnect');
      const st = (await n1.t.linkStatus())[0];
      expect(st.linkDrops).to.equal(1);
      expect(st.phase).to.equal('up');
      // Now the dialing side restarts: the acceptor adopts the new connection.
      await stop(n1);
      const n1b = await startNode(c1);
      await until(() => ups(n1b, 2) === 1 && ups(n2, 1) === 2, 3000, 'accepted the restarted dialer');
      expect(await n2.t.sendAndWait(1, { type: 'pong', token: 2 })).to.equal('sent');
      await until(() => n1b.got.length === 1, 2000, 'delivery to the restarted node');
      await stop(n1b);
    } finally { await stop(n2); }
  });
});

describe('peer links under SimNetwork', () => {
  const log = bunyan.createLogger({ name: 'sim', level: process.env.SIMLOG ? 'debug' : 'fatal' });
  const cfgs = (addr2 = '10.0.0.2', addr1seenBy2 = '10.0.0.1') => {
    const [c1, c2] = configs([1, 2], [7600, 7600], (id) => `10.0.0.${id}`);
    c1.peers[0].address = addr2;
    c2.peers[0].address = addr1seenBy2;
    return [c1, c2];
  };
  async function settle(clock: ManualClock, ms: number) {
    for (let t = 0; t < ms; t += 5) { clock.advance(5); for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r)); }
  }
  function simNode(sim: SimNetwork, clock: ManualClock, cfg: ClusterOptions, events: LinkEvent[], o: Partial<ConstructorParameters<typeof PeerTransport>[0]> = {}) {
    const system = new ActorSystem(log);
    const t = new PeerTransport({
      config: cfg, key: KEY, network: sim.host(cfg.node.id, cfg.node.address), clock, system, log, random: () => 0.5,
      onMessage: () => undefined, onLinkEvent: (e) => events.push(e), ...o,
    });
    return { t, system };
  }

  /**
   * Node 1 played by hand: dials node 2 (10.0.0.2:7600), sends its hello and reads the
   * challenge; returns its 'auth' frame unsent, so a test can write it together with what
   * follows it, in one write (one chunk on arrival).
   */
  async function handDialer(sim: SimNetwork, clock: ManualClock) {
    const connecting = sim.host(1, '10.0.0.1').connect('10.0.0.2', 7600);
    await settle(clock, 10);
    const conn = await connecting;
    const dec = new FrameDecoder(1 << 20);
    const frames: Buffer[] = [];
    conn.onData((chunk) => frames.push(...dec.pushRaw(chunk)));
    const nonceI = makeNonce();
    conn.write(encodePeerMessage({ hdr: { from: 1, to: 2, epoch: 0, seq: 0 }, body: { type: 'hello', cluster: 'test', nonce: nonceI } }));
    await settle(clock, 10);
    const challenge = validatePeerMessage(decodeMsgpack(frames[0])).body;
    if (challenge.type !== 'challenge') throw new Error(`expected a challenge, got '${challenge.type}'`);
    const p: ProofInput = { cluster: 'test', initiatorNonce: nonceI, responderNonce: challenge.nonce, initiatorId: 1, responderId: 2 };
    const auth = encodePeerMessage({ hdr: { from: 1, to: 2, epoch: 0, seq: 1 }, body: { type: 'auth', proof: computeProof(KEY, p, 'initiator') } });
    return { conn, auth, keys: sessionKeys(KEY, p, 'initiator') };
  }
  /** A ping from node 1 at `seq` (2 is the first after the handshake), MAC'd with `key`. */
  const pingAt = (seq: number, key: Buffer, token: number) => macFrame(msgpackOf(peerWire(1, 2, seq, { type: 'ping', token })), key, seq);

  it("hands what arrived with the handshake's last message to the link as raw frames, MAC and all", async () => {
    const clock = new ManualClock();
    const sim = new SimNetwork(clock);
    let session: EstablishedSession | undefined;
    await sim.host(2, '10.0.0.2').listen('10.0.0.2', 7600, (conn) => {
      void runResponder(conn, {
        selfId: 2, cluster: 'test', key: KEY, clock, timeoutMs: 1000, maxFrameBytes: 4096, log,
        peerAddress: (id) => (id === 1 ? '10.0.0.1' : undefined), mayDial: () => undefined,
      }).then((s) => { session = s; });
    });
    const d = await handDialer(sim, clock);
    const extra = [pingAt(2, d.keys.send, 5), pingAt(3, d.keys.recv, 6)]; // the second one is MAC'd with the wrong key
    d.conn.write(Buffer.concat([d.auth, ...extra]));
    await settle(clock, 10);
    expect(session, 'handshake done').to.not.equal(undefined);
    const s = session!;
    expect(s.pending.map((f) => f.toString('hex')), 'undecoded, unchecked payloads').to.deep.equal(extra.map((f) => f.subarray(4).toString('hex')));
    expect([s.keys.recv.equals(d.keys.send), s.keys.send.equals(d.keys.recv)], 'both ends derive the same key per direction').to.deep.equal([true, true]);
    expect(openFrame(s.keys.recv, s.recvSeq, s.pending[0])).to.not.equal(undefined);
    expect(openFrame(s.keys.recv, s.recvSeq + 1, s.pending[1])).to.equal(undefined);
    s.conn.destroy();
  });

  it("takes a responder's frames sent with its welcome past the pre-authentication cap (it proved the key in its challenge)", async () => {
    // A responder whose link has messages waiting sends them right after its welcome: with
    // TCP (or one write) they arrive in the welcome's chunk, well over MAX_PREAUTH_BYTES.
    const clock = new ManualClock();
    const sim = new SimNetwork(clock);
    let hand: { conn: Connection; frames: Buffer[] } | undefined;
    await sim.host(2, '10.0.0.2').listen('10.0.0.2', 7600, (conn) => {
      const dec = new FrameDecoder(1 << 20);
      hand = { conn, frames: [] };
      conn.onData((chunk) => hand!.frames.push(...dec.pushRaw(chunk)));
    });
    const connecting = sim.host(1, '10.0.0.1').connect('10.0.0.2', 7600);
    await settle(clock, 10);
    let session: EstablishedSession | undefined;
    let failure: Error | undefined;
    void runInitiator(await connecting, { selfId: 1, peerId: 2, cluster: 'test', key: KEY, clock, timeoutMs: 1000, maxFrameBytes: 4096, log })
      .then((s) => { session = s; }, (e: Error) => { failure = e; });
    await settle(clock, 10);
    const hello = validatePeerMessage(decodeMsgpack(hand!.frames[0])).body;
    if (hello.type !== 'hello') throw new Error(`expected a hello, got '${hello.type}'`);
    const nonceR = makeNonce();
    const p: ProofInput = { cluster: 'test', initiatorNonce: hello.nonce, responderNonce: nonceR, initiatorId: 1, responderId: 2 };
    hand!.conn.write(encodePeerMessage({ hdr: { from: 2, to: 1, epoch: 0, seq: 0 }, body: { type: 'challenge', nonce: nonceR, proof: computeProof(KEY, p, 'responder') } }));
    await settle(clock, 10);
    const keys = sessionKeys(KEY, p, 'responder');
    const extra = Array.from({ length: 400 }, (_, i) => macFrame(msgpackOf(peerWire(2, 1, 2 + i, { type: 'ping', token: i })), keys.send, 2 + i));
    const burst = Buffer.concat([encodePeerMessage({ hdr: { from: 2, to: 1, epoch: 0, seq: 1 }, body: { type: 'welcome' } }), ...extra]);
    expect(burst.length).to.be.greaterThan(16 * 1024);
    hand!.conn.write(burst);
    await settle(clock, 10);
    expect(failure?.message).to.equal(undefined);
    expect(session?.pending.length, 'every frame after the welcome, raw').to.equal(400);
    session!.conn.destroy();
  });

  for (const [what, good] of [['a valid frame is delivered', true], ['a frame with a wrong MAC drops the link', false]] as const) {
    it(`checks frames that arrived with the handshake's last message: ${what}`, async () => {
      const clock = new ManualClock();
      const sim = new SimNetwork(clock);
      const [, c2] = cfgs();
      const n2 = await startNode(c2, { network: sim.host(2, '10.0.0.2'), clock, random: () => 0.5 });
      const { got, events, ring } = n2;
      const d = await handDialer(sim, clock);
      d.conn.write(Buffer.concat([d.auth, pingAt(2, good ? d.keys.send : d.keys.recv, 5), pingAt(3, d.keys.send, 6)]));
      await settle(clock, 20);
      expect(events.filter((e) => e.type === 'up').length, 'link up').to.equal(1);
      if (good) {
        expect(got.map((m) => m.body)).to.deep.equal([{ type: 'ping', token: 5 }, { type: 'ping', token: 6 }]);
        expect(events.some((e) => e.type === 'down')).to.equal(false);
      } else {
        expect(got, 'nothing delivered').to.deep.equal([]);
        const down = events.find((e) => e.type === 'down') as Extract<LinkEvent, { type: 'down' }>;
        expect(down?.reason).to.match(/frame MAC mismatch at sequence 2/);
        expect(ring.records.some((r: { msg: string }) => /dropping link to node 1: frame MAC mismatch at sequence 2/.test(r.msg))).to.equal(true);
        expect(d.conn.closed, 'connection closed').to.equal(true);
      }
      await stop(n2);
    });
  }

  it('refuses a peer connecting from an address other than its configured one', async () => {
    const clock = new ManualClock();
    const sim = new SimNetwork(clock);
    const [c1, c2] = cfgs('10.0.0.2', '10.0.0.9');
    const e1: LinkEvent[] = [], e2: LinkEvent[] = [];
    const a = simNode(sim, clock, c1, e1), b = simNode(sim, clock, c2, e2);
    await b.t.start(); await a.t.start();
    await settle(clock, 200);
    expect(b.t.refusals.address).to.be.greaterThan(0);
    expect(e1.filter((e) => e.type === 'up')).to.deep.equal([]);
    await a.t.stop(); await b.t.stop(); a.system.shutdown(); b.system.shutdown();
  });

  it('bounded send queue: a peer that stops reading is dropped instead of growing memory', async () => {
    const clock = new ManualClock();
    const sim = new SimNetwork(clock, { highWaterBytes: 4096 });
    const [c1, c2] = cfgs();
    const e1: LinkEvent[] = [], e2: LinkEvent[] = [];
    const a = simNode(sim, clock, c1, e1, { maxQueueMessages: 200, maxQueueBytes: 1 << 20 });
    const b = simNode(sim, clock, c2, e2);
    await b.t.start(); await a.t.start();
    await settle(clock, 50);
    expect(e1.filter((e) => e.type === 'up').length).to.equal(1);
    sim.freeze(2); // node 2 hangs: nothing it is sent is read
    const results: SendResult[] = [];
    for (let i = 0; i < 400; i++) results.push(await a.t.sendAndWait(2, { type: 'ping', token: i }));
    expect(results).to.include('sent');
    expect(results).to.include('queued');
    expect(results).to.include('overflow');
    expect(results.at(-1)).to.equal('down');
    expect(e1.some((e) => e.type === 'backpressure')).to.equal(true);
    const down = e1.find((e) => e.type === 'down') as Extract<LinkEvent, { type: 'down' }>;
    expect(down.reason).to.match(/send queue full \(200 messages, \d+ bytes\): peer not reading/);
    sim.thaw(2);
    await settle(clock, 1000);
    expect(e1.filter((e) => e.type === 'up').length, 'redialed').to.equal(2);
    await a.t.stop(); await b.t.stop(); a.system.shutdown(); b.system.shutdown();
  });
});
