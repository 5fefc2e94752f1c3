/**
 * The mxfs-cluster CLI with real processes: up --nodes 1 (a standalone node), start/stop/
 * restart of one node, status agreeing with /proc for a node started by hand, and down
 * signalling only processes that are that node's mxfsd (a recycled pid is left alone).
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { LocalCluster, pickBasePort } from '../src/local-cluster/local-cluster';
import { isNodeProcess, mxfsdConfigOf } from '../src/local-cluster/processes';
import { ROOT, run, tmpDir, waitFor } from './support/daemon-proc';

const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'mxfs-cluster.js');
const cli = (args: string[]) => run(process.execPath, [CLI, ...args], { timeoutMs: 60000 });
const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

describe('mxfs-cluster', function () {
  this.timeout(120000);
  const dirs: string[] = [];
  afterEach(async () => { for (const d of dirs.splice(0)) await cli(['down', '--dir', d, '--kill']); });

  it('up --nodes 1 starts a standalone node; status and down name it; logs are named', async () => {
    const dir = tmpDir('mxfs-mc-');
    dirs.push(dir);
    const base = await pickBasePort(1, process.pid + 11);
    const up = await cli(['up', '--nodes', '1', '--dir', dir, '--base-port', String(base)]);
    expect(up.code, up.stderr).to.equal(0);
    expect(up.stdout).to.contain('standalone node up');
    expect(up.stdout).to.match(new RegExp(`node 1: pid \\d+  port 127\\.0\\.0\\.1:${base + 1}  socket ${dir}/node1/mxfsd\\.sock  log ${dir}/node1/mxfsd\\.log`));
    const st = await cli(['status', '--dir', dir, '--json']);
    const rows = JSON.parse(st.stdout);
    expect(rows[0]).to.include({ id: 1, running: true, startedByMxfsCluster: true, log: `${dir}/node1/mxfsd.log` });
    expect(rows[0].cluster.state).to.equal('standalone');
    const down = await cli(['down', '--dir', dir]);
    expect(down.stdout).to.match(/^stopped node 1 \(pid \d+\) in /);
    expect(isNodeProcess(rows[0].pid, rows[0].config), 'stopped (a zombie at most, if nothing reaps it)').to.equal(false);
  });

  it('stop/start/restart one node; a node started by hand counts as running; down stops it too and says so', async () => {
    const dir = tmpDir('mxfs-mc-');
    dirs.push(dir);
    const base = await pickBasePort(3, process.pid + 23);
    const up = await cli(['up', '--nodes', '3', '--dir', dir, '--base-port', String(base), '--lease-ms', '1500']);
    expect(up.code, up.stderr).to.equal(0);
    const stop = await cli(['stop', '2', '--dir', dir, '--kill']);
    expect(stop.stdout).to.match(/^node 2 stopped \(pid \d+, SIGKILL\)/);
    let rows = JSON.parse((await cli(['status', '--dir', dir, '--json'])).stdout);
    expect(rows.map((r: any) => r.running)).to.deep.equal([true, false, true]);

    // By hand, from the same config (a relative path, from the node's directory).
    const hand = spawn(process.execPath, [path.join(ROOT, 'bin', 'mxfsd'), '--config', 'mxfs.conf'], { cwd: path.join(dir, 'node2'), stdio: 'ignore', detached: true });
    hand.unref();
    await waitFor(async () => JSON.parse((await cli(['status', '--dir', dir, '--json'])).stdout)[1].cluster !== null, 20000, 'node 2 answering');
    rows = JSON.parse((await cli(['status', '--dir', dir, '--json'])).stdout);
    expect(rows[1]).to.include({ running: true, pid: hand.pid, startedByMxfsCluster: false });
    const text = await cli(['status', '--dir', dir]);
    expect(text.stdout).to.contain(`node 2: pid ${hand.pid} (started outside mxfs-cluster)`);
    const again = await cli(['start', '2', '--dir', dir]);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.contain(`node 2 is already running (pid ${hand.pid})`);

    const before = rows[2].pid;
    const re = await cli(['restart', '3', '--dir', dir]);
    expect(re.code, re.stderr).to.equal(0);
    expect(re.stdout).to.contain(`node 3 stopped (pid ${before})`).and.contain('node 3 started');
    const after = JSON.parse((await cli(['status', '--dir', dir, '--json'])).stdout)[2];
    expect(after.running).to.equal(true);
    expect(after.pid).to.not.equal(before);

    const down = await cli(['down', '--dir', dir]);
    expect(down.stdout).to.contain(`node 2 (pid ${hand.pid})`).and.contain('node 1 (pid').and.contain(`node 3 (pid ${after.pid})`);
    await waitFor(() => !isNodeProcess(hand.pid!, path.join(dir, 'node2', 'mxfs.conf')), 10000, 'the hand-started node to exit');
  });

  it('down never signals a recorded pid that is no longer that node\'s mxfsd', async () => {
    const dir = tmpDir('mxfs-mc-');
    const base = await pickBasePort(1, process.pid + 37);
    const up = await cli(['up', '--nodes', '1', '--dir', dir, '--base-port', String(base)]);
    expect(up.code, up.stderr).to.equal(0);
    expect((await cli(['down', '--dir', dir])).code).to.equal(0);
    // The pid is "reused" by an unrelated process (even a node process with another config).
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', 'mxfsd', '--config', '/elsewhere/mxfs.conf'], { stdio: 'ignore' });
    try {
      const f = path.join(dir, 'cluster.json');
      const cj = JSON.parse(fs.readFileSync(f, 'utf8'));
      cj.nodes[0].pid = other.pid;
      fs.writeFileSync(f, JSON.stringify(cj));
      const down = await cli(['down', '--dir', dir]);
      expect(down.stdout).to.contain('no node of the cluster');
      expect(alive(other.pid!), 'the other process lives').to.equal(true);
      expect(JSON.parse((await cli(['status', '--dir', dir, '--json'])).stdout)[0].running).to.equal(false);
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('usage errors name what is wrong: an unknown command before a missing --dir, a bad NODE as NODE (exit 2)', async () => {
    for (const [args, msg] of [
      [['frob'], /^mxfs-cluster: unknown command 'frob'\n/],
      [['frob', '--dir', '/nonexistent'], /^mxfs-cluster: unknown command 'frob'\n/],
      [['stop', 'x', '--dir', '/nonexistent'], /^mxfs-cluster: NODE wants an integer 1\.\.1023, got 'x'\n/],
      [['up', '--nodes', '0', '--dir', '/nonexistent'], /^mxfs-cluster: --nodes wants an integer 1\.\.64, got '0'\n/],
    ] as Array<[string[], RegExp]>) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).to.equal(2);
      expect(r.stderr, args.join(' ')).to.match(msg);
    }
  });

  it('a DIR that cannot be a cluster directory, or a damaged cluster.json, is one error naming the path (exit 1), never a hang', async () => {
    // fs.mkdirSync(..., { recursive: true }) loops for ever on a path under /proc (mkdir gives
    // ENOENT there, its parent EEXIST): `up --dir /proc/nope` used to hang.
    const proc = await cli(['up', '--nodes', '1', '--dir', '/proc/mxfs-nope', '--base-port', '40000']);
    expect(proc.code, proc.stderr).to.equal(1);
    expect(proc.stderr.trim().split('\n')).to.have.length(1);
    expect(proc.stderr).to.match(/cannot create directory \/proc\/mxfs-nope: /);
    const dir = tmpDir('mxfs-mc-');
    const file = path.join(dir, 'file');
    fs.writeFileSync(file, 'x');
    const notDir = await cli(['up', '--nodes', '1', '--dir', file, '--base-port', '40000']);
    expect(notDir.code).to.equal(1);
    expect(notDir.stderr.trim()).to.equal(`mxfs-cluster: ${file} exists and is not a directory`);
    for (const text of ['{garbage', '{"nodes": 5}', 'null']) {
      fs.writeFileSync(path.join(dir, 'cluster.json'), text);
      for (const cmd of ['status', 'down']) {
        const r = await cli([cmd, '--dir', dir]);
        expect(r.code, `${cmd} ${text}`).to.equal(1);
        expect(r.stderr.trim().split('\n'), `${cmd} ${text}`).to.have.length(1);
        expect(r.stderr, `${cmd} ${text}`).to.match(new RegExp(`^mxfs-cluster: ${dir}/cluster\\.json is not a cluster file written by mxfs-cluster: `));
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('LocalCluster.create refuses options out of range with a RangeError naming the option, before writing anything', async () => {
    const bad: Array<[object, RegExp]> = [
      [{ nodes: 0 }, /nodes wants an integer 1\.\.64, got 0/], [{ nodes: 2.5 }, /nodes .* got 2\.5/], [{ nodes: NaN }, /nodes .* got NaN/],
      [{ nodes: -1 }, /nodes .* got -1/], [{ nodes: 65 }, /nodes .* got 65/], [{}, /nodes .* got undefined/],
      [{ nodes: 1, basePort: 70000 }, /basePort wants an integer 1024\.\.65000, got 70000/], [{ nodes: 1, leaseMs: 5 }, /leaseMs wants an integer 500\.\.600000, got 5/],
    ];
    for (const [o, why] of bad) {
      const parent = tmpDir('mxfs-mc-'), dir = path.join(parent, 'c');
      const err = await LocalCluster.create(dir, o as any).then(() => undefined, (e) => e);
      const written = fs.existsSync(dir);
      fs.rmSync(parent, { recursive: true, force: true });
      expect(err, JSON.stringify(o)).to.be.instanceOf(RangeError);
      expect(err.message).to.match(why);
      expect(written, 'nothing written').to.equal(false);
    }
  });

  it('recognises mxfsd command lines and their --config forms', () => {
    expect(mxfsdConfigOf(['node', '/usr/bin/mxfsd', '--config', 'a.conf'], '/etc/mxfs')).to.equal('/etc/mxfs/a.conf');
    expect(mxfsdConfigOf(['node', '/x/dist/src/cli/mxfsd.js', '-c', '/c'], '/')).to.equal('/c');
    expect(mxfsdConfigOf(['/usr/bin/node', '/usr/bin/mxfsd', '--config=/d'], '/')).to.equal('/d');
    expect(mxfsdConfigOf(['node', '/usr/bin/mxfsctl', '--config', '/c'], '/')).to.equal(undefined);
    expect(mxfsdConfigOf(['node', '/usr/bin/mxfsd'], '/'), 'the default config is not this node\'s').to.equal(undefined);
  });
});
