/** Peer transport over real TCP on 127.0.0.1: the HMAC handshake and its refusals, bad
 *  peers dropped while other links keep working, reconnect after a restart, per-connection
 *  session keys (a frame from one connection is refused on the next). */
import { expect } from 'chai';
import * as net from 'node:net';
import bunyan from 'bunyan';
import { ActorSystem } from '../src/actors/actor';
import { systemClock } from '../src/util/clock';
import { encodeFrame, encodeFrameWithTrailer, FrameDecoder } from '../src/wire/frame';
import { Connection, TcpNetwork } from '../src/cluster/network';
import { PeerTransport, TransportOptions } from '../src/cluster/transport';
import type { ClusterOptions } from '../src/cluster/options';
import { LinkEvent } from '../src/cluster/peer-link';
import { runInitiator } from '../src/cluster/handshake';
import { FRAME_MAC_BYTES, frameMac } from '../src/cluster/auth';
import { encodePeerMessage, PeerMessage, toWire, validatePeerMessage, NONCE_BYTES } from '../src/cluster/peer-protocol';

const KEY = Buffer.from('0123456789abcdef0123456789abcdef');

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<net.Server>((res) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => res(s));
  })));
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function configs(ids: number[], ports: number[], cluster = 'test'): ClusterOptions[] {
  const nodes = ids.map((id, i) => ({ id, name: `n${id}`, address: '127.0.0.1', port: ports[i] }));
  return nodes.map((node) => ({
    node, cluster: { name: cluster }, peers: nodes.filter((p) => p.id !== node.id),
    timing: { leaseTimeoutMs: 10000, renewIntervalMs: 2000 },
  }));
}

interface Harness {
  t: PeerTransport;
  got: PeerMessage[];
  events: LinkEvent[];
  ring: bunyan.RingBuffer;
  system: ActorSystem;
}

/**
 * TcpNetwork whose connections count their writes, say whether a data callback is running,
 * and can report a write as over the high-water mark (`full`: the bytes still go) with the
 * drain callback left to the test (`drains`).
 */
class SpyNetwork extends TcpNetwork {
  writes = 0;
  inData = false;
  full = false;
  drains: Array<() => void> = [];
  private wrap(c: Connection): Connection {
    const spy = this;
    return {
      get id() { return c.id; }, get remoteAddress() { return c.remoteAddress; }, get closed() { return c.closed; },
      write: (b) => { spy.writes++; return c.write(b) && !spy.full; },
      onData: (cb) => c.onData((chunk) => { spy.inData = true; try { cb(chunk); } finally { spy.inData = false; } }),
      onDrain: (cb) => { spy.drains.push(cb); c.onDrain(cb); }, onClose: (cb) => c.onClose(cb), close: () => c.close(), destroy: (r) => c.destroy(r),
    };
  }
  override listen(address: string, port: number, onConnection: (c: Connection) => void) { return super.listen(address, port, (c) => onConnection(this.wrap(c))); }
  override async connect(address: string, port: number, timeoutMs?: number) { return this.wrap(await super.connect(address, port, timeoutMs)); }
}

async function startNode(cfg: ClusterOptions, key = KEY, more: Partial<TransportOptions> = {}): Promise<Harness> {
  const ring = new bunyan.RingBuffer({ limit: 500 });
  const log = bunyan.createLogger({ name: `n${cfg.node.id}`, streams: [{ type: 'raw', stream: ring, level: 'debug' }] });
  const system = new ActorSystem(log);
  const got: PeerMessage[] = [];
  const events: LinkEvent[] = [];
  const t = new PeerTransport({
    config: cfg, key, network: new TcpNetwork(1000), clock: systemClock, system, log,
    backoff: { initialMs: 20, maxMs: 200 }, handshakeTimeoutMs: 2000,
    onMessage: (_from, m) => got.push(m), onLinkEvent: (e) => events.push(e), ...more,
  });
  await t.start();
  return { t, got, events, ring, system };
}

async function until(cond: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const logged = (h: Harness, re: RegExp) => h.ring.records.some((r: { msg: string }) => re.test(r.msg));
const upCount = (h: Harness, peer: number) => h.events.filter((e) => e.type === 'up' && e.peer === peer).length;

async function stopAll(hs: Harness[]) {
  for (const h of hs) { await h.t.stop(); h.system.shutdown(); }
}

describe('cluster transport over TCP (127.0.0.1)', function () {
  this.timeout(15000);

  it('authenticates with the right key and exchanges messages both ways', async () => {
    const ports = await freePorts(2);
    const [c1, c2] = configs([1, 2], ports);
    const t0 = performance.now();
    const [a, b] = [await startNode(c1), await startNode(c2)];
    try {
      await until(() => upCount(a, 2) === 1 && upCount(b, 1) === 1, 3000, 'link up');
      const up = a.events.find((e) => e.type === 'up') as Extract<LinkEvent, { type: 'up' }>;
      console.log(`      handshake: ${up.handshakeMs.toFixed(2)} ms (link up ${(performance.now() - t0).toFixed(1)} ms after start)`);
      expect(up.role).to.equal('initiator');
      expect(await a.t.sendAndWait(2, { type: 'ping', token: 7 })).to.equal('sent');
      b.t.send(1, { type: 'pong', token: 8 });
      await until(() => a.got.length === 1 && b.got.length === 1, 2000, 'messages');
      expect(b.got[0].body).to.deep.equal({ type: 'ping', token: 7 });
      expect(b.got[0].hdr).to.include({ from: 1, to: 2 });
      expect(a.got[0].body).to.deep.equal({ type: 'pong', token: 8 });
    } finally { await stopAll([a, b]); }
  });

  it('a link of bulk traffic only (bulkAtOnce, the lock links): a turn\'s lock frames are written by the flush itself and decoded in the read callback; order kept through a blocked socket', async () => {
    const ports = await freePorts(2);
    const [c1, c2] = configs([1, 2], ports);
    const [na, nb] = [new SpyNetwork(1000), new SpyNetwork(1000)];
    const inData: boolean[] = [];
    const a = await startNode(c1, KEY, { network: na, bulkAtOnce: true });
    const b = await startNode(c2, KEY, { network: nb, bulkAtOnce: true, onMessage: (_f, m) => { inData.push(nb.inData); b.got.push(m); } });
    try {
      await until(() => upCount(a, 2) === 1 && upCount(b, 1) === 1, 3000, 'link up');
      const dlm = (seq: number, pad = 0) => ({ type: 'dlm' as const, inc: 7, n: 1, seq, msg: { t: 'inspectReply' as const, epoch: 0, id: seq, resources: pad ? ['x'.repeat(pad)] : [] } });
      const before = na.writes;
      a.t.send(2, dlm(0));
      a.t.send(2, dlm(1));
      await Promise.resolve(); // the transport's end-of-turn flush (a microtask)
      expect(na.writes - before, 'both frames written in one write by the flush, before any other turn').to.equal(1);
      await until(() => b.got.length === 2, 2000, 'two frames');
      expect(inData, 'handed on from the read callback').to.deep.equal([true, true]);
      // A write over the high-water mark: the next batch waits in the mailbox; the connection
      // drains before the mailbox's turn; a batch written at once now would overtake it.
      na.full = true;
      a.t.send(2, dlm(2));
      await Promise.resolve();
      na.full = false;
      a.t.send(2, dlm(3));
      await Promise.resolve();
      for (const d of na.drains) d();
      a.t.send(2, dlm(4));
      await Promise.resolve();
      await until(() => b.got.length === 5, 2000, 'five frames');
      expect(b.got.map((m) => (m.body as { seq: number }).seq), 'every frame once, in the order sent').to.deep.equal([0, 1, 2, 3, 4]);
    } finally { await stopAll([a, b]); }
  });

  it('measures the handshake time over 20 connections', async () => {
    const ports = await freePorts(2);
    const [c1, c2] = configs([1, 2], ports);
    const b = await startNode(c2);
    const times: number[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const a = await startNode(c1);
        await until(() => upCount(a, 2) === 1, 3000, 'link up');
        times.push((a.events.find((e) => e.type === 'up') as Extract<LinkEvent, { type: 'up' }>).handshakeMs);
        await stopAll([a]);
      }
      times.sort((x, y) => x - y);
      console.log(`      handshake p50 ${times[10].toFixed(2)} ms, max ${times[19].toFixed(2)} ms (TCP 127.0.0.1, HMAC-SHA256 both ways)`);
    } finally { await stopAll([b]); }
  });

  for (const [what, tweak, code, re] of [
    // The responder proves first, so with a wrong key the dialer is the one that notices.
    ['a wrong key', (c: ClusterOptions) => ({ c, key: Buffer.from('another-key-of-32-bytes-xxxxxxxx') }), 'auth', /refused by node 1: auth: authentication failed/],
    ['a wrong cluster name', (c: ClusterOptions) => ({ c: { ...c, cluster: { name: 'other' } }, key: KEY }), 'cluster', /belongs to cluster 'other'/],
    // Node 2 is configured with peer 3 only; node 1 dials it anyway.
    ['an unknown node id', (c: ClusterOptions) => ({ c, key: KEY }), 'unknown-node', /node id 1 is not a configured peer/],
  ] as const) {
    it(`refuses a peer with ${what}, logs the reason and tells the dialer`, async () => {
      const ports = await freePorts(3);
      const [c1, c2] = configs([1, 2], ports);
      const bad = tweak(c1);
      if (code === 'unknown-node') c2.peers = [{ id: 3, name: 'n3', address: '127.0.0.1', port: ports[2] }];
      const b = await startNode(c2);
      const a = await startNode(bad.c, bad.key);
      try {
        await until(() => (b.t.refusals[code] ?? 0) >= 1, 3000, `refusal ${code}`);
        expect(logged(b, re), `responder log matches ${re}`).to.equal(true);
        expect(upCount(a, 2) + upCount(b, 1)).to.equal(0);
        if (code !== 'auth') await until(() => logged(a, new RegExp(`refused by node 2: ${code}`)), 2000, 'dialer told');
        else await until(() => logged(a, /failed to prove the cluster key/), 2000, 'dialer detects bad proof');
      } finally { await stopAll([a, b]); }
    });
  }

  async function rawHello(port: number, wire: Record<string, unknown>): Promise<PeerMessage> {
    const sock = net.connect(port, '127.0.0.1');
    const dec = new FrameDecoder(1 << 20);
    return new Promise((resolve, reject) => {
      sock.on('connect', () => sock.write(encodeFrame(wire, 1 << 20)));
      sock.on('data', (d) => { const f = dec.push(d); if (f.length) { sock.destroy(); try { resolve(validatePeerMessage(f[0])); } catch (e) { reject(e); } } });
      sock.on('error', reject);
      setTimeout(() => reject(new Error('no answer')), 2000);
    });
  }

  it('refuses a wrong protocol version and a wrong target id with a clear reason', async () => {
    const ports = await freePorts(2);
    const [, c2] = configs([1, 2], ports);
    const b = await startNode(c2);
    try {
      const hello = toWire({ hdr: { from: 1, to: 2, epoch: 0, seq: 0 }, body: { type: 'hello', cluster: 'test', nonce: Buffer.alloc(NONCE_BYTES) } });
      const r1 = await rawHello(ports[1], { ...hello, ver: 2 });
      expect(r1.body).to.include({ type: 'refuse', code: 'version' });
      expect((r1.body as { reason: string }).reason).to.match(/unsupported protocol version 2; this node speaks version 1/);
      const r2 = await rawHello(ports[1], { ...hello, to: 3 });
      expect(r2.body).to.include({ type: 'refuse', code: 'target' });
      await until(() => logged(b, /unsupported protocol version 2/) && logged(b, /addressed to node 3/), 1000, 'logs');
    } finally { await stopAll([b]); }
  });

  it('refuses a dialer that cannot prove the key (responder side check)', async () => {
    const ports = await freePorts(2);
    const [, c2] = configs([1, 2], ports);
    const b = await startNode(c2);
    try {
      const sock = net.connect(ports[1], '127.0.0.1');
      const dec = new FrameDecoder(1 << 20);
      const got: PeerMessage[] = [];
      await new Promise<void>((resolve, reject) => {
        sock.on('connect', () => sock.write(encodePeerMessage({ hdr: { from: 1, to: 2, epoch: 0, seq: 0 }, body: { type: 'hello', cluster: 'test', nonce: Buffer.alloc(NONCE_BYTES, 1) } })));
        sock.on('data', (d) => {
          for (const f of dec.push(d)) {
            const m = validatePeerMessage(f);
            got.push(m);
            if (m.body.type === 'challenge') sock.write(encodePeerMessage({ hdr: { from: 1, to: 2, epoch: 0, seq: 1 }, body: { type: 'auth', proof: Buffer.alloc(32, 7) } }));
          }
        });
        sock.on('close', () => resolve());
        sock.on('error', reject);
      });
      expect(got.map((m) => m.body.type)).to.deep.equal(['challenge', 'refuse']);
      expect(got[1].body).to.deep.include({ code: 'auth', reason: 'authentication failed' });
      expect(logged(b, /node 1 failed to prove the cluster key/)).to.equal(true);
    } finally { await stopAll([b]); }
  });

  it('refuses a dial from the higher node id (the lower id dials)', async () => {
    const ports = await freePorts(2);
    const [c1] = configs([1, 2], ports);
    const a = await startNode(c1);
    try {
      const hello = toWire({ hdr: { from: 2, to: 1, epoch: 0, seq: 0 }, body: { type: 'hello', cluster: 'test', nonce: Buffer.alloc(NONCE_BYTES) } });
      const r = await rawHello(ports[0], hello);
      expect(r.body).to.include({ type: 'refuse', code: 'not-dialer' });
    } finally { await stopAll([a]); }
  });

  it('gives every connection its own session keys: a frame captured on one is refused on the next', async () => {
    const ports = await freePorts(2);
    const [, c2] = configs([1, 2], ports);
    const b = await startNode(c2);
    const dial = async () => {
      const conn = await new TcpNetwork().connect('127.0.0.1', ports[1]);
      const s = await runInitiator(conn, {
        selfId: 1, peerId: 2, cluster: 'test', key: KEY, clock: systemClock, timeoutMs: 2000, maxFrameBytes: 1 << 20,
        log: bunyan.createLogger({ name: 'fake', level: 'fatal' }),
      });
      return { conn, s };
    };
    const ping = (key: Buffer, seq: number, token: number) => encodeFrameWithTrailer(
      toWire({ hdr: { from: 1, to: 2, epoch: 0, seq }, body: { type: 'ping', token } }), 1 << 20, FRAME_MAC_BYTES, (bytes) => frameMac(key, seq, bytes));
    try {
      const first = await dial();
      await until(() => upCount(b, 1) === 1, 2000, 'first connection up');
      const captured = ping(first.s.keys.send, first.s.sendSeq, 1);
      first.conn.write(captured);
      await until(() => b.got.length === 1, 2000, 'delivered on the first connection');
      const second = await dial(); // replaces the first (the lower id redialed)
      await until(() => upCount(b, 1) === 2, 2000, 'second connection up');
      const keys = [first.s.keys.send, first.s.keys.recv, second.s.keys.send, second.s.keys.recv].map((k) => k.toString('hex'));
      expect(new Set(keys).size, 'four distinct keys: two directions x two connections').to.equal(4);
      expect(second.s.sendSeq, 'same position on the new connection').to.equal(first.s.sendSeq);
      second.conn.write(captured); // the same bytes, at the same position, on the other connection
      await until(() => logged(b, /dropping link to node 1: frame MAC mismatch at sequence 2/), 2000, 'replay refused');
      const down = b.events.filter((e) => e.type === 'down').at(-1) as Extract<LinkEvent, { type: 'down' }>;
      expect(down.reason).to.match(/frame MAC mismatch at sequence 2/);
      expect(b.got.length, 'the replayed ping is not delivered').to.equal(1);
      first.conn.destroy(); second.conn.destroy();
    } finally { await stopAll([b]); }
  });
});
