/** PeerLink robustness: a misbehaving authenticated peer (garbage, oversized, truncated,
 *  out-of-order or duplicate frames) is dropped while the other links keep working;
 *  reconnect after either end restarts; bounded send queue; the address check. */
import { expect } from 'chai';
import * as net from 'node:net';
import bunyan from 'bunyan';
import { ActorSystem } from '../src/actors/actor';
import { ManualClock, systemClock } from '../src/util/clock';
import { Connection, SimNetwork, TcpNetwork } from '../src/cluster/network';
import { PeerTransport } from '../src/cluster/transport';
import { runInitiator } from '../src/cluster/handshake';
import type { ClusterOptions } from '../src/cluster/options';
import type { LinkEvent, SendResult } from '../src/cluster/peer-link';
import { encodePeerMessage, PeerMessage } from '../src/cluster/peer-protocol';
import { encodeFrame } from '../src/wire/frame';

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

    /** Node 1 played by the test: a correct handshake, then whatever the case writes. */
    async function fakeNode1(): Promise<{ conn: Connection; seq: number; send(body: PeerMessage['body'], seq?: number): void }> {
      const conn = await new TcpNetwork().connect('127.0.0.1', ports[1]);
      const s = await runInitiator(conn, {
        selfId: 1, peerId: 2, cluster: 'test', key: KEY, clock: systemClock, timeoutMs: 2000, maxFrameBytes: 4096,
        log: bunyan.createLogger({ name: 'fake', level: 'fatal' }),
      });
      const f: { conn: Connection; seq: number; send(body: PeerMessage["body"], seq?: number): void } = { conn, seq: s.sendSeq, send(body: PeerMessage['body'], seq = f.seq++) { conn.write(encodePeerMessage({ hdr: { from: 1, to: 2, epoch: 0, seq }, body })); } };
      return f;
    }

    const cases: Array<[string, (f: Awaited<ReturnType<typeof fakeNode1>>) => void, RegExp]> = [
      ['an invalid message', (f) => f.conn.write(encodeFrame({ magic: 'MXFS', ver: 1, type: 'renew', from: 1, to: 2, epoch: 0, seq: f.seq, body: { sentAt: 'soon' } }, 4096)), /invalid message: 'renew': field 'sentAt' must be a finite number/],
      ['undecodable bytes', (f) => f.conn.write(Buffer.from([0, 0, 0, 2, 0x92, 0x01])), /undecodable frame/],
      ['an oversized frame', (f) => f.conn.write(Buffer.from('GARBAGE!GARBAGE!')), /exceeds the limit of 4096/],
      ['an out-of-order sequence number', (f) => { f.send({ type: 'ping', token: 1 }, f.seq + 1); }, /sequence gap: got \d+, expected \d+/],
      ['a duplicate sequence number', (f) => { f.send({ type: 'ping', token: 1 }); f.send({ type: 'ping', token: 2 }, f.seq - 1); }, /duplicate or replayed sequence/],
      ['a frame claiming another sender', (f) => f.conn.write(encodePeerMessage({ hdr: { from: 3, to: 2, epoch: 0, seq: f.seq }, body: { type: 'ping', token: 1 } })), /claims 3->2 on the link 1->2/],
      ['a handshake message after the handshake', (f) => f.send({ type: 'welcome' }), /handshake message 'welcome' on an established link/],
      ['a truncated frame and a close', (f) => { f.conn.write(Buffer.from([0, 0, 0, 50, 0x80])); setTimeout(() => f.conn.close(), 20); }, /truncated frame: 5 bytes/],
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
        await until(() => f.conn.closed, 2000, 'connection closed');
        const n = n3.got.length;
        expect(await n2.t.sendAndWait(3, { type: 'ping', token: n })).to.equal('sent');
        await until(() => n3.got.length === n + 1, 2000, '2->3 still delivers');
        n2.got.length = 0;
      });
    }
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
