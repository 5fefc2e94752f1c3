/**
 * The lock engine's own peer links (src/cluster/direct-link.ts) over real TCP on 127.0.0.1:
 * lock frames cross them; what may not go this way (a retransmission, an ack, a link that is
 * down, a blocked peer, a node that may not grant) is left to the worker's path; what
 * arrives from a peer that may not send (not admitted, blocked) is refused; a party without
 * the key, or a worker-link handshake on the lock port, never gets a session.
 * With real processes: a remote lock goes this way, link resets fall back and every operation
 * completes once, a partition injected by fault injection cuts the lock link too.
 */
import { expect } from 'chai';
import bunyan from 'bunyan';
import { ActorSystem } from '../src/actors/actor';
import { systemClock } from '../src/util/clock';
import { TcpNetwork } from '../src/cluster/network';
import { admitLockFrames, DirectLinks } from '../src/cluster/direct-link';
import type { ChannelFrame } from '../src/cluster/dlm-channel';
import type { ClusterOptions } from '../src/cluster/options';
import { runInitiator } from '../src/cluster/handshake';
import { Mode } from '../src/dlm/modes';
import { resourceOn, TestCluster } from './support/cluster-proc';
import { freePort, waitFor } from './support/daemon-proc';

const KEY = Buffer.from('0123456789abcdef0123456789abcdef');

interface Side { d: DirectLinks; got: Array<[number, ChannelFrame]>; downs: number[]; admit: Set<number>; sys: ActorSystem; ring: bunyan.RingBuffer }

async function side(cfg: ClusterOptions, key = KEY): Promise<Side> {
  const ring = new bunyan.RingBuffer({ limit: 500 });
  const log = bunyan.createLogger({ name: `n${cfg.node.id}`, streams: [{ type: 'raw', stream: ring, level: 'debug' }] });
  const sys = new ActorSystem(log);
  const got: Array<[number, ChannelFrame]> = [];
  const downs: number[] = [];
  const admit = new Set(cfg.peers.map((p) => p.id));
  const d = new DirectLinks({
    config: cfg, key, network: new TcpNetwork(1000), clock: systemClock, system: sys, log,
    admit: (p) => admit.has(p), deliver: (from, f) => got.push([from, f]), onDown: (p) => downs.push(p),
  });
  await d.start();
  return { d, got, downs, admit, sys, ring };
}

const frame = (seq: number, n = 0): ChannelFrame => ({ type: 'dlm', inc: 7, n, seq, msg: { t: 'recDone', epoch: 3 } });

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 20000): Promise<void> {
  const end = Date.now() + ms; // a cap for a hung test, not a figure
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const isUp = async (s: Side, peer: number) => (await s.d.status()).find((x) => x.peer === peer)?.up === true;

describe('lock links: the lock engine\'s own peer connections (in process, TCP)', function () {
  this.timeout(60000);
  let a: Side, b: Side;
  let ports: number[];

  beforeEach(async () => {
    ports = [await freePort(), await freePort(), await freePort(), await freePort()];
    const n1 = { id: 1, name: 'n1', address: '127.0.0.1', port: ports[0]!, lockPort: ports[1]! };
    const n2 = { id: 2, name: 'n2', address: '127.0.0.1', port: ports[2]!, lockPort: ports[3]! };
    const timing = { leaseTimeoutMs: 10000, renewIntervalMs: 2000 };
    a = await side({ node: n1, peers: [n2], cluster: { name: 'test' }, timing });
    b = await side({ node: n2, peers: [n1], cluster: { name: 'test' }, timing });
    await until(async () => (await isUp(a, 2)) && (await isUp(b, 1)), 'lock link up');
  });
  afterEach(async () => {
    for (const s of [a, b]) { await s?.d.stop(); s?.sys.shutdown(); }
  });

  it('carries new lock frames, in order, and leaves retransmissions and acks to the worker\'s path', async () => {
    expect(a.d.send(2, frame(0))).to.equal(true);
    expect(a.d.send(2, frame(1))).to.equal(true);
    expect(a.d.send(2, frame(1)), 'a retransmission').to.equal(false);
    expect(a.d.send(2, frame(0)), 'a go-back').to.equal(false);
    expect(a.d.send(2, { type: 'dlmAck', inc: 7, n: 0, next: 2, rinc: 9, gap: false }), 'an ack').to.equal(false);
    expect(a.d.send(2, frame(0, 1)), 'a new stream starts at 0').to.equal(true);
    await until(() => b.got.length >= 3, 'frames delivered');
    expect(b.got.map(([from, f]) => [from, f.type === 'dlm' ? `${f.n}:${f.seq}` : '?'])).to.deep.equal([[1, '0:0'], [1, '0:1'], [1, '1:0']]);
    const st = (await a.d.status())[0]!;
    expect(st).to.include({ peer: 2, up: true, sent: 3, fallback: 3 });
  });

  it('refuses frames from a peer it does not admit (not a member, or this node may not grant): nothing delivered', async () => {
    b.admit.delete(1);
    expect(a.d.send(2, frame(0))).to.equal(true);
    await until(async () => (await b.d.status())[0]!.refused === 1, 'refusal counted');
    expect(b.got).to.have.length(0);
    // ... and does not send to one: the caller sends it the worker's way.
    expect(b.d.send(1, frame(0))).to.equal(false);
  });

  it('a partition by fault injection cuts the lock link: nothing goes or is taken this way while it lasts', async () => {
    a.d.setFaults({ blocked: new Set([2]), drop: 0, delayMs: 0 });
    expect(a.downs).to.deep.equal([2]);
    expect(await isUp(a, 2)).to.equal(false);
    expect(a.d.send(2, frame(0))).to.equal(false);
    // Node 1 (the lower id) dials again and again meanwhile: each new session is dropped at once.
    await until(async () => (await a.d.status())[0]!.cutOff >= 1, 'a new session dropped');
    expect(await isUp(a, 2)).to.equal(false);
    expect(a.d.send(2, frame(0))).to.equal(false);
    a.d.setFaults({ blocked: new Set(), drop: 0, delayMs: 0 });
    await until(async () => isUp(a, 2), 'link back');
    expect(a.d.send(2, frame(0))).to.equal(true);
    await until(() => b.got.length === 1, 'delivered after healing');
    b.d.setFaults({ blocked: new Set(), drop: 0.5, delayMs: 0 });
    expect(b.d.send(1, frame(0)), 'drop faults go the worker\'s way, where they apply').to.equal(false);
  });

  it('a link that goes down falls back at once: onDown, and sends go the worker\'s way until it is back', async () => {
    b.d.dropLink(1, 'test');
    await until(() => a.downs.includes(2), 'down seen');
    expect(a.d.send(2, frame(0))).to.equal(false);
    await until(async () => isUp(a, 2), 'link back');
    expect(a.d.send(2, frame(1))).to.equal(true);
  });

  it('a party without the key, or a worker-link handshake on the lock port, gets no session', async () => {
    const log = bunyan.createLogger({ name: 'x', streams: [] });
    const hs = { selfId: 1, peerId: 2, key: KEY, clock: systemClock, timeoutMs: 3000, maxFrameBytes: 1 << 20, log };
    const attempt = async (cluster: string, key: Buffer) => {
      const conn = await new TcpNetwork().connect('127.0.0.1', ports[3]!);
      try { await runInitiator(conn, { ...hs, cluster, key }); return 'session'; } catch (e) { return (e as { code?: string }).code; } finally { conn.destroy(); }
    };
    expect(await attempt('test/lock', Buffer.alloc(32, 1)), 'wrong key').to.equal('auth');
    expect(await attempt('test', KEY), 'the worker link\'s cluster name').to.equal('cluster');
    expect(b.got).to.have.length(0);
  });
});

describe('lock links: admission', () => {
  it('only while this node may grant, in a quorate view holding both nodes (a muted, yielding or fenced node has no lease: canGrant false)', () => {
    const v = { quorate: true, members: [1, 2, 3] };
    expect(admitLockFrames(v, true, 1, 2)).to.equal(true);
    expect(admitLockFrames(v, false, 1, 2), 'no lease now (muted, yielding, fenced)').to.equal(false);
    expect(admitLockFrames({ ...v, quorate: false }, true, 1, 2), 'view without quorum').to.equal(false);
    expect(admitLockFrames({ quorate: true, members: [1, 3] }, true, 1, 2), 'peer not a member').to.equal(false);
    expect(admitLockFrames({ quorate: true, members: [2, 3] }, true, 1, 2), 'this node not a member').to.equal(false);
  });
});

describe('lock links in mxfsd (real processes, TCP)', function () {
  this.timeout(240000);
  let cl: TestCluster;
  afterEach(async () => { await cl?.stopAll(); });

  const links = async (id: number, peer: number) => (await cl.status(id)).cluster.transport.lockLinks.find((l: { peer: number }) => l.peer === peer);

  it('a remote lock goes over the lock link; resets fall back and every operation completes once; a partition cuts the lock link', async () => {
    cl = new TestCluster(3, 20000);
    await cl.up();
    await waitFor(async () => (await links(1, 2))?.up && (await links(2, 1))?.up, 30000, 'lock links up');
    const res = resourceOn(2, [1, 2, 3], 'direct');
    const c1 = await cl.client(1);
    const h = await c1.lock(res, Mode.EX);
    await h.unlock();
    // Node 2's figures first: node 1 may send more meanwhile (a status query is a client that leaves: a purge).
    const l21 = await links(2, 1), l12 = await links(1, 2);
    expect(l21.received, 'node 2 took lock frames from node 1 over the lock link').to.be.greaterThan(0);
    expect(l12.sent, 'node 1 sent them that way').to.be.at.least(l21.received);
    expect(l21.refused).to.equal(0);

    // Resets of every link (the lock links included) between operations: each completes once.
    const tokens: number[] = [];
    for (let i = 1; i <= 20; i++) {
      const g = await c1.lock(res, Mode.EX);
      tokens.push(g.grant.token);
      await g.unlock();
      if (i % 4 === 0) await c1.fault({ action: 'reset' });
    }
    expect(tokens).to.have.length(20);
    expect([...tokens].sort((x, y) => x - y)).to.deep.equal(tokens);
    expect(new Set(tokens).size).to.equal(20);

    // A partition between nodes 1 and 2, injected on both: their lock link goes down and stays down.
    const c2 = await cl.client(2);
    await c1.fault({ action: 'partition', peers: [2] });
    await c2.fault({ action: 'partition', peers: [1] });
    await waitFor(async () => !(await links(1, 2))?.up && !(await links(2, 1))?.up, 30000, 'lock link cut');
    const sentBefore = (await links(1, 2)).sent;
    // Node 1 reaches node 3's resources still (its quorum is 1+3), never node 2 this way.
    const g3 = await c1.lock(resourceOn(3, [1, 2, 3], 'other'), Mode.EX);
    await g3.unlock();
    expect((await links(1, 2)).sent).to.equal(sentBefore);
    expect((await links(1, 2)).up).to.equal(false);
    await c1.fault({ action: 'heal' });
    await c2.fault({ action: 'heal' });
  });
});
