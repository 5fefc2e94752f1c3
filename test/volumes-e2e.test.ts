/**
 * Volumes end to end: real mxfsd processes on loopback (3 nodes), command-mode volumes backed
 * by a VolumeStore (src/failover/volume-store.ts): a shared "disk" that refuses writes of an
 * older generation and records every mount, unmount, recovery, fence and write, which the
 * failover checker's volume rules then judge. Each test stages one promise of docs/volumes.md.
 */
import path from 'node:path';
import { execFile } from 'node:child_process';
import { expect } from 'chai';
import { TestCluster } from './support/cluster-proc';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import { configText, freePort, MXFSCTL, MXFSD, ROOT, tmpDir, waitFor } from './support/daemon-proc';
import { sample, scrape } from './support/metrics';
import { History } from '../src/failover/history';
import { storeVolumeConfig, VolumeStore } from '../src/failover/volume-store';
import { check } from '../src/failover/checker';
import { MxfsClient, VolumeRequestFailed } from '../src/client/client';

const CMD = path.join(ROOT, 'dist', 'src', 'failover', 'volume-cmd.js');
const LEASE = 3000;
const FENCE_BOUND = 300;

interface Setup {
  cluster: TestCluster;
  store: VolumeStore;
  history: History;
  down: Set<number>;
  client(id: number): Promise<MxfsClient>;
  report(id: number): Promise<any>;
  kill(id: number): Promise<void>;
}

async function setup(o: { failover?: 'auto' | 'manual'; fenceCheck?: boolean; metricsPorts?: number[] } = {}): Promise<Setup> {
  const history = new History();
  const store = new VolumeStore(history);
  let cluster!: TestCluster;
  const storeDir = path.join(require('node:os').tmpdir(), `mxfs-vstore-${process.pid}-${Date.now()}`);
  const socket = `${storeDir}.sock`;
  require('node:fs').mkdirSync(storeDir, { recursive: true });
  cluster = new TestCluster(3, LEASE, (id) => storeVolumeConfig({
    name: 'data', dir: path.join(storeDir, `mnt${id}`), socket, cmd: CMD, fenceBoundMs: FENCE_BOUND,
    failover: o.failover ?? 'auto', fenceCheck: o.fenceCheck ?? false,
  }) + (o.metricsPorts ? `\n[metrics]\nenabled = true\nport = ${o.metricsPorts[id - 1]}\n` : ''));
  await store.listen(socket);
  const down = new Set<number>();
  // Applications on each node write while it has the volume mounted; a killed node's die with it.
  store.startWriters(['data'], [1, 2, 3], (n) => !down.has(n));
  await cluster.up();
  const clients = new Map<number, MxfsClient>();
  const s: Setup = {
    cluster, store, history, down,
    async client(id) {
      let c = clients.get(id);
      if (!c) { c = await cluster.client(id, `vtest@${id}`); clients.set(id, c); }
      return c;
    },
    async report(id) {
      try {
        return await (await s.client(id)).volume('status', 'data');
      } catch (e) {
        clients.get(id)?.close().catch(() => undefined); // a client lost while its daemon was stopped: connect again
        clients.delete(id);
        throw e;
      }
    },
    async kill(id) {
      down.add(id);
      history.add({ type: 'node-down', node: id, how: 'kill' });
      clients.get(id)?.close().catch(() => undefined);
      clients.delete(id);
      await cluster.killed(id);
    },
  };
  return s;
}

async function teardown(s: Setup | undefined): Promise<void> {
  if (!s) return;
  s.store.close();
  await s.cluster.stopAll();
}

function verdict(s: Setup): ReturnType<typeof check> {
  const r = check(s.history.events, { minTakeoverMs: 0.8 * LEASE });
  const vol = r.violations.filter((v) => v.kind.startsWith('volume'));
  expect(vol, JSON.stringify(vol, null, 1)).to.deep.equal([]);
  return r;
}

/** The node whose volume actor reports `state` (polled through `via`). */
async function nodeIn(s: Setup, via: number, state: string, timeoutMs = 30000): Promise<number> {
  let who = 0;
  await waitFor(async () => {
    const r = await s.report(via).catch(() => undefined);
    const n = r?.volumes[0]?.nodes.find((x: any) => x.state === state);
    if (n) who = n.node;
    return !!n;
  }, timeoutMs, `a node in state ${state}`);
  return who;
}

function mxfsctl(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MXFSCTL, ...args], (e, out, err) => resolve({ code: e ? (e as { code?: number }).code ?? 1 : 0, out, err }));
  });
}

/**
 * One standalone mxfsd with one command-mode volume: `volume` gives its name and commands
 * (the device is a file in dir; `mark` is a file for the commands to show a mount with).
 */
async function oneNode(prefix: string, volume: (dir: string, mark: string) => string): Promise<{ dir: string; mark: string; socket: string; p: ReturnType<typeof spawn>; run: (...a: string[]) => ReturnType<typeof mxfsctl> }> {
  const dir = tmpDir(prefix);
  fs.writeFileSync(path.join(dir, 'dev'), '');
  const mark = path.join(dir, 'mounted');
  const config = path.join(dir, 'mxfs.conf');
  const socket = path.join(dir, 'mxfsd.sock');
  fs.writeFileSync(config, `${configText(dir)}\n[volume]\ndevice = ${path.join(dir, 'dev')}\ndriver = command\n${volume(dir, mark)}`);
  const p = spawn(process.execPath, [MXFSD, '--config', config], { stdio: 'ignore' });
  const run = (...a: string[]) => mxfsctl(['--socket', socket, ...a]);
  try {
    await waitFor(async () => (await run('volumes')).code === 0, 20000, 'mxfsd with volumes');
  } catch (e) {
    p.kill('SIGKILL');
    throw e;
  }
  return { dir, mark, socket, p, run };
}

describe('volumes end to end (3 real mxfsd, command driver over a fenced volume store)', function () {
  this.timeout(120000);
  let s: Setup | undefined;
  afterEach(async () => { await teardown(s); s = undefined; });

  it('one owner at a time: a second mount is refused (--no-wait) or waits, and gets the volume after umount', async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    s = await setup({ metricsPorts: ports });
    const c1 = await s.client(1);
    const c2 = await s.client(2);
    const m1 = await c1.volume('mount', 'data');
    expect(m1.message).to.match(/mounted on node 1, generation 1$/);
    expect(s.store.mountedOn('data', 1)).to.equal(1);
    // The metrics endpoint: the volume's state on each node (1 for its state, 0 for the others).
    const m = await scrape(ports[0]!);
    expect(sample(m, 'mxfs_volume_state', 'volume="data",state="mounted"')).to.equal(1);
    expect(sample(m, 'mxfs_volume_state', 'volume="data",state="standby"')).to.equal(0);
    expect(sample(await scrape(ports[1]!), 'mxfs_volume_state', 'volume="data",state="mounted"')).to.equal(0);

    const refused = await c2.volume('mount', 'data', { wait: false }).then(() => undefined, (e) => e);
    expect(refused).to.be.instanceOf(VolumeRequestFailed);
    expect(refused.code).to.equal('OWNED');
    expect(refused.message).to.match(/owned by node 1 \(node1\), generation 1/);
    const cli = await mxfsctl(['--socket', s.cluster.node(3).socket, 'mount', 'data', '--no-wait']);
    expect(cli.code).to.equal(1);
    expect(cli.err).to.match(/owned by node 1/);

    const waiting = c2.volume('mount', 'data', { wait: true });
    let done = false;
    void waiting.then(() => { done = true; });
    await new Promise((r) => setTimeout(r, 500));
    expect(done, 'node 2 must wait while node 1 owns the volume').to.equal(false);
    expect(s.store.nodesWithMount('data')).to.deep.equal([1]);

    const cliUmount = await mxfsctl(['--socket', s.cluster.node(3).socket, 'umount', 'data']);
    expect(cliUmount.code, 'node 3 is not the owner').to.equal(6);
    expect(cliUmount.err).to.match(/node 3 does not own volume data/);
    await c1.volume('umount', 'data');
    const m2 = await waiting;
    expect(m2.message).to.match(/mounted on node 2, generation 2$/);
    expect(s.store.nodesWithMount('data')).to.deep.equal([2]);
    const rep = await s.report(3);
    expect(rep.volumes[0]).to.include({ owner: 2, generation: 2 });
    expect(rep.volumes[0].lastRecovery).to.equal(null);
    // The asking node's own driver: node 3 (a bystander) has nothing mounted, node 2 has.
    expect(rep.volumes[0].here).to.deep.equal({ gate: 'closed', mounted: false });
    expect((await s.report(2)).volumes[0].here).to.deep.equal({ gate: 'open', mounted: true });
    const mounts = s.history.events.filter((e) => e.type === 'vmount');
    expect(mounts.map((e: any) => [e.node, e.generation, !!e.recovery])).to.deep.equal([[1, 1, false], [2, 2, false]]);
    verdict(s);
  });

  it('kill -9 of the owner: one standby takes over after the fence bound, generation +1, recovered exactly once', async () => {
    s = await setup();
    await (await s.client(1)).volume('mount', 'data');
    await (await s.client(2)).volume('standby', 'data');
    await (await s.client(3)).volume('standby', 'data');
    await waitFor(async () => (await s!.report(1)).volumes[0].standbys.length === 2, 10000, 'two standbys');
    await waitFor(async () => s!.store.accepted > 5, 10000, 'writes by node 1');
    const t0 = Date.now();
    await s.kill(1);
    const owner = await nodeIn(s, 2, 'mounted');
    const took = Date.now() - t0;
    expect([2, 3]).to.include(owner);
    const other = owner === 2 ? 3 : 2;
    const rep = await s.report(other);
    expect(rep.volumes[0]).to.include({ owner, generation: 2 });
    expect(rep.volumes[0].standbys).to.deep.equal([other]);
    expect(rep.volumes[0].lastRecovery).to.include({ by: owner, of: 1, fromGeneration: 1, ofGeneration: 1 });
    await waitFor(async () => s!.history.events.some((e) => e.type === 'vwrite' && e.node === owner && e.accepted), 10000, 'the new owner writes');
    const recov = s.history.events.filter((e) => e.type === 'vrecover');
    expect(recov.map((e: any) => [e.node, e.generation, e.fromGeneration, e.ofGeneration, e.ok])).to.deep.equal([[owner, 2, 1, 1, true]]);
    expect(took, 'no takeover before the dead owner\'s lease ran out').to.be.greaterThan(LEASE);
    verdict(s);
  });

  it('the recovering standby is killed mid-recovery: another standby redoes the recovery and completes it', async () => {
    s = await setup();
    await (await s.client(1)).volume('mount', 'data');
    await (await s.client(2)).volume('standby', 'data');
    await (await s.client(3)).volume('standby', 'data');
    await waitFor(async () => (await s!.report(1)).volumes[0].standbys.length === 2, 10000, 'two standbys');
    s.store.holdRecoversOf('data');
    await s.kill(1);
    let first = 0;
    await waitFor(async () => { first = s!.store.heldRecovers('data')[0] ?? 0; return first !== 0; }, 30000, 'a standby in its recovery step');
    const second = first === 2 ? 3 : 2;
    await s.kill(first);
    s.store.releaseRecovers('data', [first]);
    // Two of three nodes are down: bring the first owner back so that a majority exists again.
    s.cluster.start(1);
    s.down.delete(1);
    const owner = await nodeIn(s, second, 'mounted');
    expect(owner).to.equal(second);
    const mounts = s.history.events.filter((e) => e.type === 'vmount' && e.accepted).map((e: any) => [e.node, e.generation, e.recovery?.fromGeneration, e.recovery?.ofGeneration]);
    expect(mounts).to.deep.equal([[1, 1, undefined, undefined], [first, 2, 1, 1], [second, 3, 1, 2]]);
    const rep = await s.report(second);
    expect(rep.volumes[0].lastRecovery).to.include({ by: second, of: first, fromGeneration: 1, ofGeneration: 2 });
    const done = s.history.events.filter((e) => e.type === 'vrecover' && e.ok);
    expect(done.map((e: any) => e.node)).to.deep.equal([second]);
    verdict(s);
  });

  it('the owner paused past its lease: a standby takes over, the old owner\'s late writes are refused, and it fences itself when it runs again', async () => {
    s = await setup();
    await (await s.client(1)).volume('mount', 'data');
    await (await s.client(2)).volume('standby', 'data');
    await waitFor(async () => (await s!.report(1)).volumes[0].standbys.length === 1, 10000, 'a standby');
    s.history.add({ type: 'node-down', node: 1, how: 'pause' });
    s.cluster.kill(1, 'SIGSTOP'); // the daemon stops; node 1's applications go on writing
    const owner = await nodeIn(s, 2, 'mounted');
    expect(owner).to.equal(2);
    await waitFor(async () => s!.history.events.some((e) => e.type === 'vwrite' && e.node === 1 && !e.accepted), 10000, 'a refused late write of node 1');
    s.cluster.kill(1, 'SIGCONT');
    s.history.add({ type: 'node-down', node: 1, how: 'resume' });
    await waitFor(async () => s!.history.events.some((e) => e.type === 'vfence' && e.node === 1), 30000, 'node 1 runs its fence_cmd');
    await waitFor(async () => ((await s!.report(1).catch(() => undefined))?.volumes[0].nodes.find((n: any) => n.node === 1)?.state === 'unmounted'), 30000, 'node 1 cleared after rejoining');
    expect(s.store.nodesWithMount('data')).to.deep.equal([2]);
    const late = s.history.events.filter((e) => e.type === 'vwrite' && e.node === 1 && e.generation === 1);
    expect(late.filter((e: any) => !e.accepted).length).to.be.greaterThan(0);
    verdict(s);
  });

  it('a failing recover_cmd: the volume shows blocked with its reason and age, mount fails fast, and it recovers on a retry', async () => {
    s = await setup();
    await (await s.client(1)).volume('mount', 'data');
    await (await s.client(2)).volume('standby', 'data');
    await waitFor(async () => (await s!.report(1)).volumes[0].standbys.length === 1, 10000, 'a standby');
    s.store.failNextRecovers('data', 2);
    await s.kill(1);
    await nodeIn(s, 3, 'blocked');
    const rep = await s.report(3);
    expect(rep.volumes[0].blocked[0]).to.include({ node: 2 });
    expect(rep.volumes[0].blocked[0].reason).to.match(/recover_cmd .*journal replay failed/);
    expect(rep.volumes[0].blocked[0].ageMs).to.be.a('number');
    const fast = await mxfsctl(['--socket', s.cluster.node(2).socket, 'mount', 'data']);
    expect(fast.code, fast.err).to.equal(7);
    expect(fast.err).to.match(/blocked at 'recover'.*journal replay failed/);
    await nodeIn(s, 3, 'mounted');
    const tries = s.history.events.filter((e) => e.type === 'vrecover').map((e: any) => e.ok);
    expect(tries).to.deep.equal([false, false, true]);
    verdict(s);
  });

  it('fence_check_cmd: a takeover waits, blocked, until the old owner is confirmed fenced', async () => {
    s = await setup({ fenceCheck: true });
    await (await s.client(1)).volume('mount', 'data');
    await (await s.client(2)).volume('standby', 'data');
    await waitFor(async () => (await s!.report(1)).volumes[0].standbys.length === 1, 10000, 'a standby');
    s.cluster.kill(1, 'SIGSTOP');
    s.history.add({ type: 'node-down', node: 1, how: 'pause' });
    await nodeIn(s, 3, 'blocked');
    const rep = await s.report(3);
    expect(rep.volumes[0].blocked[0].reason).to.match(/fence_check_cmd for node 1 .*still has generation 1 mounted/);
    expect(s.store.nodesWithMount('data')).to.deep.equal([1]);
    s.cluster.kill(1, 'SIGCONT');
    await nodeIn(s, 3, 'mounted');
    expect(s.store.nodesWithMount('data')).to.deep.equal([2]);
    expect(s.history.events.some((e) => e.type === 'vcheck' && !e.ok)).to.equal(true);
    // The proof came either from the check command or, once node 1 ran again and rejoined,
    // from node 1 itself reporting its fence: either way after node 1's fence_cmd.
    const fence = s.history.events.find((e) => e.type === 'vfence' && e.node === 1);
    const takeover = s.history.events.find((e) => e.type === 'vmount' && e.node === 2 && e.accepted)!;
    expect(fence && fence.t < takeover.t, 'node 2 mounted only after node 1 had fenced').to.equal(true);
    verdict(s);
  });

  it('failover = manual: a standby does not recover a dead owner; an operator\'s mount does', async () => {
    s = await setup({ failover: 'manual' });
    await (await s.client(1)).volume('mount', 'data');
    await (await s.client(2)).volume('standby', 'data');
    await waitFor(async () => (await s!.report(1)).volumes[0].standbys.length === 1, 10000, 'a standby');
    await s.kill(1);
    await waitFor(async () => {
      const n = (await s!.report(2)).volumes[0].nodes.find((x: any) => x.node === 2);
      return n.state === 'unmounted' && /failover = manual/.test(n.reason ?? '');
    }, 30000, 'the standby steps back with the reason');
    expect(s.store.generationFloor('data'), 'nobody mounted after node 1 died').to.equal(1);
    const m = await (await s.client(3)).volume('mount', 'data');
    expect(m.message).to.match(/mounted on node 3, generation 2; recovered node 1's generation 1/);
    verdict(s);
  });

  it('the owner\'s mxfsd restarts: the new run fences the old mount first, and a standby takes over on proof from it (or, if the restart is slow, after the dead run\'s lease)', async () => {
    s = await setup();
    await (await s.client(1)).volume('mount', 'data');
    await (await s.client(2)).volume('standby', 'data');
    await waitFor(async () => (await s!.report(1)).volumes[0].standbys.length === 1, 10000, 'a standby');
    const killedAt = s.history.elapsed();
    await s.cluster.killed(1);
    s.cluster.start(1);
    await waitFor(async () => s!.history.events.some((e) => e.type === 'vfence' && e.node === 1), 30000, 'the restarted node fences at start');
    const owner = await nodeIn(s, 3, 'mounted');
    expect(owner).to.equal(2);
    expect(s.store.nodesWithMount('data')).to.deep.equal([2]);
    const fence = s.history.events.find((e) => e.type === 'vfence' && e.node === 1)!;
    const mount2 = s.history.events.find((e) => e.type === 'vmount' && e.node === 2 && e.accepted)!;
    // Proof from the restarted node (its new run fenced the old mount first) — or, when the
    // restart is slower than the dead run's lease and fence bound (a loaded machine), proof by
    // waiting that out: never a takeover before either.
    if (mount2.t < fence.t) expect(mount2.t - killedAt, 'a takeover before node 1 fenced waited out its lease').to.be.greaterThan(LEASE);
    verdict(s);
  });
});

describe('volume errors on one node (real mxfsd, command driver)', function () {
  this.timeout(60000);

  it('unknown volume, device missing, mountpoint missing, a failing mount_cmd: one line each, the right exit code, nothing left owned', async () => {
    const dir = tmpDir('mxfs-volerr-');
    for (const v of ['nodev', 'bad', 'good']) fs.mkdirSync(path.join(dir, `mnt-${v}`));
    for (const v of ['nomnt', 'bad', 'good']) fs.writeFileSync(path.join(dir, `dev-${v}`), '');
    const vol = (name: string, device: string, mountpoint: string, mount: string) =>
      `\n[volume]\nname = ${name}\ndevice = ${device}\nmountpoint = ${mountpoint}\ndriver = command\nmount_cmd = ${mount}\numount_cmd = true\n`;
    const d = { config: path.join(dir, 'mxfs.conf'), socket: path.join(dir, 'mxfsd.sock') };
    fs.writeFileSync(d.config, configText(dir)
      + vol('nodev', path.join(dir, 'no-such-device'), path.join(dir, 'mnt-nodev'), 'true')
      + vol('nomnt', path.join(dir, 'dev-nomnt'), path.join(dir, 'no-such-dir'), 'true')
      + vol('bad', path.join(dir, 'dev-bad'), path.join(dir, 'mnt-bad'), "echo 'mount: /srv: wrong fs type, bad superblock on /dev/x' >&2; exit 32")
      + vol('good', path.join(dir, 'dev-good'), path.join(dir, 'mnt-good'), 'true'));
    const p = spawn(process.execPath, [MXFSD, '--config', d.config], { stdio: 'ignore' });
    try {
      await waitFor(async () => (await mxfsctl(['--socket', d.socket, 'volumes'])).code === 0, 20000, 'mxfsd with volumes');
      const run = (...a: string[]) => mxfsctl(['--socket', d.socket, ...a]);
      const unknown = await run('mount', 'nope');
      expect([unknown.code, unknown.err.trim()]).to.deep.equal([2, "mxfsctl: unknown volume 'nope' (configured: nodev, nomnt, bad, good)"]);
      const nodev = await run('mount', 'nodev');
      expect(nodev.code).to.equal(5);
      expect(nodev.err).to.match(/^mxfsctl: volume nodev: device .*no-such-device does not exist on this node\n$/);
      const nomnt = await run('mount', 'nomnt');
      expect(nomnt.code).to.equal(5);
      expect(nomnt.err).to.match(/^mxfsctl: mountpoint .*no-such-dir does not exist on this node\n$/);
      const bad = await run('mount', 'bad');
      expect(bad.code).to.equal(5);
      expect(bad.err).to.match(/^mxfsctl: mount_cmd exited with status 32: mount: \/srv: wrong fs type, bad superblock on \/dev\/x\n$/);
      const notOwner = await run('umount', 'good');
      expect([notOwner.code, notOwner.err]).to.deep.equal([6, 'mxfsctl: node 1 does not own volume good\n']);
      const rep = JSON.parse((await run('--json', 'volumes')).out);
      const states = Object.fromEntries(rep.volumes.map((v: any) => [v.volume, [v.state, v.owner]]));
      expect(states, 'a failed mount leaves nothing owned').to.deep.equal({ nodev: ['unmounted', null], nomnt: ['unmounted', null], bad: ['unmounted', null], good: ['unmounted', null] });
      const ok = await run('mount', 'good');
      expect([ok.code, ok.out]).to.deep.equal([0, 'volume good mounted on node 1, generation 1\n']);
      const bad2 = await run('mount', 'bad');
      expect(bad2.code, 'a failed mount stored a clean record: the next attempt is generation 2, not a recovery').to.equal(5);
      const locks = JSON.parse((await run('--json', 'locks', '--lockspace', 'mxfs-volumes')).out);
      expect(locks.resources.map((r: any) => r.resource)).to.deep.equal(['good']);
    } finally {
      p.kill('SIGKILL');
    }
  });

  it('a mount_cmd that outlasts command_timeout_ms may have mounted: umount_cmd undoes it before the volume is given back, or the node keeps it blocked', async () => {
    const dir = tmpDir('mxfs-volhang-');
    const vol = (name: string, umount: string) => {
      fs.writeFileSync(path.join(dir, `dev-${name}`), '');
      fs.mkdirSync(path.join(dir, `mnt-${name}`));
      const mark = path.join(dir, `mounted-${name}`);
      // The mount happens, then the command hangs (an XFS log replay longer than the bound).
      return `\n[volume]\nname = ${name}\ndevice = ${path.join(dir, `dev-${name}`)}\nmountpoint = ${path.join(dir, `mnt-${name}`)}\ndriver = command\n`
        + `mount_cmd = touch ${mark}; while [ -f ${dir}/hang ]; do sleep 0.1; done\numount_cmd = ${umount.replace('MARK', mark)}\ncommand_timeout_ms = 1000\n`;
    };
    const d = { config: path.join(dir, 'mxfs.conf'), socket: path.join(dir, 'mxfsd.sock') };
    fs.writeFileSync(d.config, configText(dir)
      + vol('undone', 'rm -f MARK')
      + vol('stuck', `[ -f ${dir}/umount-fails ] && { echo 'umount: target is busy' >&2; exit 32; }; rm -f MARK`));
    fs.writeFileSync(path.join(dir, 'hang'), '');
    fs.writeFileSync(path.join(dir, 'umount-fails'), '');
    const p = spawn(process.execPath, [MXFSD, '--config', d.config], { stdio: 'ignore' });
    try {
      await waitFor(async () => (await mxfsctl(['--socket', d.socket, 'volumes'])).code === 0, 20000, 'mxfsd with volumes');
      const run = (...a: string[]) => mxfsctl(['--socket', d.socket, ...a]);
      const state = async (v: string) => JSON.parse((await run('--json', 'volumes', v)).out).volumes[0].state;
      const undone = await run('mount', 'undone');
      expect(fs.existsSync(path.join(dir, 'mounted-undone')), 'umount_cmd ran before the volume was given back').to.equal(false);
      expect([undone.code, undone.err]).to.deep.equal([5, 'mxfsctl: mount_cmd did not finish within 1000 ms (umount_cmd was run to undo whatever it did)\n']);
      expect(await state('undone')).to.equal('unmounted');

      const stuck = await run('mount', 'stuck');
      expect(await state('stuck'), 'not given back while it may be mounted').to.equal('blocked');
      expect(stuck.code, stuck.err).to.equal(7);
      expect(stuck.err).to.match(/blocked at 'mount': mount_cmd did not finish within 1000 ms; it may have mounted, and umount_cmd exited with status 32: umount: target is busy/);
      const locks = JSON.parse((await run('--json', 'locks', '--lockspace', 'mxfs-volumes')).out);
      expect(locks.resources.map((r: any) => r.resource)).to.deep.equal(['stuck']);
      // Once umount_cmd works the operator's umount unmounts first, then gives the volume up.
      fs.unlinkSync(path.join(dir, 'umount-fails'));
      const given = await run('umount', 'stuck');
      expect([given.code, given.out]).to.deep.equal([0, 'volume stuck unmounted and released by node 1\n']);
      expect(fs.existsSync(path.join(dir, 'mounted-stuck'))).to.equal(false);
      expect(await state('stuck')).to.equal('unmounted');
    } finally {
      fs.rmSync(path.join(dir, 'hang'), { force: true });
      p.kill('SIGKILL');
    }
  });

  it('a umount_cmd that outlasts command_timeout_ms leaves the volume blocked (may still be mounted), not mounted; the umount is retried until done', async () => {
    // The umount hangs while the file 'hang' exists (a umount(8) stuck on a dead device, say).
    const { dir, mark, p, run } = await oneNode('mxfs-volumount-', (dir, mark) => `name = slow\nmount_cmd = touch ${mark}\n`
      + `umount_cmd = while [ -f ${dir}/hang ]; do sleep 0.1; done; rm -f ${mark}\ncommand_timeout_ms = 1000\n`);
    try {
      const report = async () => JSON.parse((await run('--json', 'volumes', 'slow')).out).volumes[0];
      const vol = async () => (await report()).nodes[0];
      expect((await run('mount', 'slow')).code).to.equal(0);
      fs.writeFileSync(path.join(dir, 'hang'), '');
      const um = await run('umount', 'slow');
      expect([um.code, um.err]).to.deep.equal([5, "mxfsctl: umount_cmd did not finish within 1000 ms; the volume may still be mounted here: blocked, the umount is retried ('mxfsctl volumes slow' shows when it is done)\n"]);
      const v = await vol();
      expect(v.state, 'not back to mounted: whether it is mounted is unknown').to.equal('blocked');
      expect(v.step).to.equal('umount');
      const r = await report();
      expect([r.owner, r.ownerState], 'still owned while it may be mounted').to.deep.equal([1, 'blocked']);
      expect(r.blocked[0].reason).to.match(/^umount_cmd did not finish within 1000 ms; the volume may still be mounted here/);
      const m = await run('mount', 'slow');
      expect(m.code, 'a mount meanwhile fails fast').to.equal(7);
      // The umount can finish now: a retry does it and gives the volume back.
      fs.unlinkSync(path.join(dir, 'hang'));
      await waitFor(async () => (await vol()).state === 'unmounted', 60000, 'the retried umount done');
      expect(fs.existsSync(mark)).to.equal(false);
      const locks = JSON.parse((await run('--json', 'locks', '--lockspace', 'mxfs-volumes')).out);
      expect(locks.resources.flatMap((r: any) => r.granted)).to.deep.equal([]);
      expect((await run('mount', 'slow')).code, 'and it mounts again').to.equal(0);
    } finally {
      fs.rmSync(path.join(dir, 'hang'), { force: true });
      p.kill('SIGKILL');
    }
  });

  it('a waiting mxfsctl mount that is killed withdraws its ownership request: the node does not mount once the owner lets go', async () => {
    const { dir, mark, socket, p, run } = await oneNode('mxfs-volkill-', (_dir, mark) => `name = good\nmount_cmd = touch ${mark}\numount_cmd = rm -f ${mark}\n`);
    let holder: ReturnType<typeof spawn> | undefined;
    try {
      const vol = async () => JSON.parse((await run('--json', 'volumes', 'good')).out).volumes[0];
      const ownershipLocks = async () => JSON.parse((await run('--json', 'locks', '--lockspace', 'mxfs-volumes', '--resource', 'good')).out).resources[0];
      // Another holder of the volume's ownership lock (as another node's owner would be).
      const held = path.join(dir, 'held');
      holder = spawn(process.execPath, [MXFSCTL, '--socket', socket, 'lock', '--lockspace', 'mxfs-volumes', 'good', 'EX', '--', 'sh', '-c', `touch ${held}; while [ ! -f ${dir}/release ]; do sleep 0.1; done`], { stdio: 'ignore' });
      await waitFor(async () => fs.existsSync(held), 20000, 'the ownership lock held by another client');
      // Two waiting mounts: killing one leaves the other's wait in place.
      const first = spawn(process.execPath, [MXFSCTL, '--socket', socket, 'mount', 'good'], { stdio: 'ignore' });
      const second = spawn(process.execPath, [MXFSCTL, '--socket', socket, 'mount', 'good'], { stdio: 'ignore' });
      await waitFor(async () => (await vol()).nodes[0].state === 'acquiring' && (await ownershipLocks())?.waiting.length === 1, 20000, 'the mount waiting for the lock');
      const firstGone = new Promise((r) => first.once('exit', r));
      first.kill('SIGKILL');
      await firstGone;
      expect((await vol()).nodes[0].state, 'the other mount still waits').to.equal('acquiring');
      const secondGone = new Promise((r) => second.once('exit', r));
      second.kill('SIGKILL');
      await secondGone;
      // Nobody waits for the mount any more: the ownership request is withdrawn.
      await waitFor(async () => (await vol()).nodes[0].state === 'unmounted', 20000, 'the mount withdrawn');
      expect((await vol()).nodes[0].reason).to.equal('mount of good withdrawn: the client that asked for it went away');
      expect((await ownershipLocks()).waiting).to.deep.equal([]);
      // The owner lets go: nothing mounts here (a mount of this node would take the lock at once).
      fs.writeFileSync(path.join(dir, 'release'), '');
      await new Promise((r) => holder!.once('exit', r));
      // Its release reaches the master after the holder's answer: wait for the holder's lock to go.
      let after: any;
      await waitFor(async () => { after = await ownershipLocks(); return after === undefined || after.granted.every((g: any) => g.client !== 'mxfsctl'); }, 20000, 'the holder\'s lock released');
      expect([after?.granted ?? [], after?.waiting ?? []], 'nobody holds or waits for the ownership lock').to.deep.equal([[], []]);
      expect((await vol()).nodes[0].state).to.equal('unmounted');
      expect(fs.existsSync(mark)).to.equal(false);
      // A mount whose client stays is not affected.
      const ok = await run('mount', 'good');
      expect([ok.code, fs.existsSync(mark)]).to.deep.equal([0, true]);
    } finally {
      fs.writeFileSync(path.join(dir, 'release'), '');
      if (holder && holder.exitCode === null) await new Promise((r) => holder!.once('exit', r));
      p.kill('SIGKILL');
    }
  });

  it('a mount that times out waiting for the lock, or is cancelled by umount, exits 1 (not obtained) with the reason', async () => {
    const dir = tmpDir('mxfs-volwait-');
    fs.writeFileSync(path.join(dir, 'dev'), '');
    const d = { config: path.join(dir, 'mxfs.conf'), socket: path.join(dir, 'mxfsd.sock') };
    fs.writeFileSync(d.config, configText(dir) + `\n[volume]\nname = good\ndevice = ${path.join(dir, 'dev')}\ndriver = command\nmount_cmd = true\numount_cmd = true\n`);
    const p = spawn(process.execPath, [MXFSD, '--config', d.config], { stdio: 'ignore' });
    let holder: ReturnType<typeof spawn> | undefined;
    try {
      await waitFor(async () => (await mxfsctl(['--socket', d.socket, 'volumes'])).code === 0, 20000, 'mxfsd with volumes');
      const run = (...a: string[]) => mxfsctl(['--socket', d.socket, ...a]);
      // Another holder of the volume's ownership lock (as another node's owner would be).
      const held = path.join(dir, 'held');
      holder = spawn(process.execPath, [MXFSCTL, '--socket', d.socket, 'lock', '--lockspace', 'mxfs-volumes', 'good', 'EX', '--', 'sh', '-c', `touch ${held}; while [ ! -f ${dir}/release ]; do sleep 0.1; done`], { stdio: 'ignore' });
      await waitFor(async () => fs.existsSync(held), 20000, 'the ownership lock held by another client');
      const timedOut = await run('mount', 'good', '--timeout', '200');
      expect([timedOut.code, timedOut.err]).to.deep.equal([1, 'mxfsctl: volume good: ownership not obtained within the timeout (another node owns it)\n']);
      const json = await run('--json', 'mount', 'good', '--timeout', '200');
      expect(json.code).to.equal(1);
      expect(JSON.parse(json.out)).to.include({ ok: false, code: 'TIMEOUT' });
      const waiting = run('mount', 'good');
      await waitFor(async () => JSON.parse((await run('--json', 'volumes', 'good')).out).volumes[0].state === 'acquiring', 20000, 'the mount waiting for the lock');
      const cancel = await run('umount', 'good');
      expect([cancel.code, cancel.out]).to.deep.equal([0, 'mount of good cancelled\n']);
      const cancelled = await waiting;
      expect([cancelled.code, cancelled.err]).to.deep.equal([1, 'mxfsctl: mount of good cancelled by umount\n']);
    } finally {
      fs.writeFileSync(path.join(dir, 'release'), '');
      if (holder && holder.exitCode === null) await new Promise((r) => holder!.once('exit', r));
      p.kill('SIGKILL');
    }
  });
});
