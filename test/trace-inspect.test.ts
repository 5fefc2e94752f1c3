/**
 * The inspection side of tracing, used as an operator uses it, on 3 real mxfsd processes (TCP
 * peer links, [trace] on): `mxfsctl why` and `trace collect` against what they must and must not
 * show, and their command-line edges.
 */
import { expect } from 'chai';
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { MxfsClient } from '../src/client/client';
import type { LockHandle } from '../src/client/api';
import { Mode } from '../src/dlm/modes';
import { resourceOn, TestCluster } from './support/cluster-proc';
import { MXFSCTL, mxfsctl, startDaemon, tmpDir, waitFor } from './support/daemon-proc';

/** A resource node 3 masters: a client of node 1 holds it in EX, one of node 2 waits for PR (the holder has its BAST). */
async function holderAndWaiter(cl: TestCluster, tag: string): Promise<{ res: string; ha: LockHandle; pb: Promise<LockHandle> }> {
  const res = resourceOn(3, [1, 2, 3], tag);
  const a = await cl.client(1), b = await cl.client(2);
  const ha = await a.lock(res, Mode.EX);
  const bast = new Promise<Mode>((r) => ha.once('bast', r));
  const pb = b.lock(res, Mode.PR);
  pb.catch(() => {}); // awaited by the test
  expect(await bast).to.equal(Mode.PR);
  return { res, ha, pb };
}

describe('trace inspection (3 real mxfsd, mxfsctl)', function () {
  this.timeout(120000);
  let cl: TestCluster;
  const ctl = (node: number, args: string[]) => mxfsctl(['--socket', cl.node(node).socket, ...args], { timeoutMs: 30000 });

  before(async () => {
    // A 10 s lease: one view throughout on a loaded machine.
    cl = new TestCluster(3, 10000, (_id, d) => `[trace]\nenabled = true\nfile = ${d}/trace.ndjson\n`);
    await cl.up();
  });
  after(async () => { await cl?.stopAll(); });

  it('why leaves its own inspection out of the recent traffic: asked again and again it still shows the lock exchange, and so does the Mermaid diagram', async () => {
    const { res, ha, pb } = await holderAndWaiter(cl, 'why');
    // Each why asks every node for the resource's queues (an `inspect` through the DlmChannel);
    // the next why must not show those asks.
    for (let i = 0; i < 3; i++) expect((await ctl(2, ['why', res])).code).to.equal(0);
    const w = await ctl(2, ['why', res]);
    expect(w.code, w.stderr).to.equal(0);
    const traffic = w.stdout.slice(w.stdout.indexOf('recent traffic'));
    expect(traffic).to.match(/lock\.bast/);
    expect(traffic).to.match(/request default\/\S+ EX/);
    expect(traffic).to.not.match(/inspect/);
    const mm = await ctl(1, ['trace', 'collect', '--resource', res, '--format', 'mermaid']);
    expect(mm.code, mm.stderr).to.equal(0);
    expect(mm.stdout).to.match(/lock\.bast PR/);
    expect(mm.stdout).to.not.match(/inspect/);
    await ha.unlock();
    await (await pb).unlock();
  });

  it('bad trace and why arguments get one clear error naming the option (usage: exit 2; an output that cannot be written: exit 1), never a daemon refusal or a stack', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['trace', 'dump', '--actor='], 2, /--actor wants 1\.\.128 characters, got 0/],
      [['trace', 'dump', '--actor', 'a'.repeat(129)], 2, /--actor wants 1\.\.128 characters, got 129/],
      [['trace', 'collect', '--type='], 2, /--type wants 1\.\.64 characters, got 0/],
      [['trace', 'tail', '--type', 't'.repeat(65)], 2, /--type wants 1\.\.64 characters, got 65/],
      [['why', ''], 2, /resource name '' must be a non-empty string/],
      [['why', 'r'.repeat(65)], 2, /resource name 'r+\.\.\.' is 65 bytes; the limit is 64/],
      [['trace', 'dump', '--out='], 2, /--out needs a file path/],
      [['trace', 'collect', '--out', '/nonexistent-bbtrace/x.html', '--format', 'html'], 1, /^mxfsctl: cannot write \/nonexistent-bbtrace\/x\.html: ENOENT\n$/],
      [['trace', 'dump', '--out', cl.dir], 1, /^mxfsctl: cannot write .*: EISDIR\n$/],
      [['trace', 'tail', '--interval', '0'], 2, /--interval wants at least 20 ms between polls, got 0/],
    ];
    for (const [args, code, err] of cases) {
      const r = await ctl(1, args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).to.equal(code);
      expect(r.stderr, args.join(' ')).to.match(err);
      expect(r.stderr, args.join(' ')).to.not.match(/\n\s+at |field '/);
    }
    // A duration longer than the epoch is "everything", not a refusal.
    const all = await ctl(1, ['trace', 'dump', '--since', '99999999d', '--format', 'ndjson']);
    expect(all.code, all.stderr).to.equal(0);
    expect(all.stdout).to.match(/^\{"node":1,"seq":1,/m); // the ring's first event (merged order need not start with it)
  });

  it('names with a newline or an escape sequence are printed escaped by trace text and why: no forged line, nothing for the terminal', async () => {
    const res = 'x\n00:00:00.000 n9 #1 lc 1 send forged\u001b[2J';
    const a = await cl.client(1);
    await (await a.lock(res, Mode.EX)).unlock();
    const t = await ctl(1, ['trace', 'collect', '--resource', res]);
    expect(t.code, t.stderr).to.equal(0);
    const lines = t.stdout.trim().split('\n');
    expect(lines.length).to.be.greaterThan(3);
    for (const l of lines) expect(l).to.match(/^\d\d:\d\d:\d\d\.\d{3} n[123] #\d+ .*default\/x\\n00:00:00\.000 n9 #1 lc 1 send forged\\u001b\[2J/);
    const w = await ctl(1, ['why', res]);
    expect(w.code, w.stderr).to.equal(0);
    expect(w.stdout).to.not.match(/[\u0000-\u0009\u000b-\u001f]/);
    expect(w.stdout.split('\n')[0]).to.match(/^default\/x\\n00:00:00\.000 n9 #1 lc 1 send forged\\u001b\[2J: mastered by node \d/);
    for (const l of w.stdout.trim().split('\n').slice(1)) expect(l).to.match(/^ {2}/);
    // Escaped once: the recent traffic's lines name it as the first line does (a doubled
    // backslash would read as a name spelled with one).
    const traffic = w.stdout.split('\n').filter((l) => l.includes('forged'));
    expect(traffic.length).to.be.greaterThan(1);
    for (const l of traffic) expect(l).to.include('x\\n00:00:00.000 n9 #1 lc 1 send forged\\u001b[2J').and.not.include('\\\\');
  });

  it('collect --node with a node that is not in the cluster says so (not "no answer" after the query timeout) and reads the others', async () => {
    const r = await ctl(1, ['trace', 'collect', '--node', '1,9', '--since', '1h', '--format', 'ndjson']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.equal('mxfsctl: node 9 is not in the cluster (neither the node asked nor one of its [peer]s)\n');
    const nodes = new Set(r.stdout.trim().split('\n').map((l) => JSON.parse(l).node));
    expect([...nodes]).to.deep.equal([1]);
    const only = await ctl(1, ['trace', 'collect', '--node', '9,12']);
    expect(only.stderr).to.equal('mxfsctl: nodes 9 12 are not in the cluster (neither the node asked nor one of its [peer]s)\n');
    expect(only.stdout).to.equal('');
  });

  // Last: node 3 is stopped for a while (the view may change meanwhile on a loaded machine).
  it('a stopped node: collect ends after the query timeout with the trace marked partial (stderr and the exported page\'s title); tail says the node does not answer, then that it answers again', async () => {
    const page = path.join(cl.dir, 'partial.html');
    cl.kill(3, 'SIGSTOP');
    let tail: ChildProcess | undefined;
    try {
      const r = await ctl(1, ['trace', 'collect', '--format', 'html', '--out', page]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stderr).to.include('mxfsctl: no answer from node 3: the trace is partial\n');
      expect(fs.readFileSync(page, 'utf8')).to.match(/<title>MXFS trace \(collect, \d+ events; partial: no answer from node 3\)<\/title>/);
      tail = spawn(process.execPath, [MXFSCTL, '--socket', cl.node(1).socket, 'trace', 'tail', '--node', '3', '--since', '1h', '--count', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '', err = '';
      tail.stdout!.on('data', (d) => { out += d; });
      tail.stderr!.on('data', (d) => { err += d; });
      const exited = new Promise<number | null>((res) => tail!.on('exit', (code) => res(code)));
      await waitFor(() => err.includes('mxfsctl: no answer from node 3: its events are not shown until it answers\n'), 60000, 'tail saying node 3 does not answer');
      expect(out).to.equal('');
      cl.kill(3, 'SIGCONT');
      expect(await exited, err).to.equal(0);
      expect(err).to.include('mxfsctl: node 3 answers again\n');
      expect(out).to.match(/^\S+ n3 #\d+ /);
    } finally {
      cl.kill(3, 'SIGCONT');
      tail?.kill();
    }
  });
});

describe('the trace file when it goes away (a real mxfsd)', function () {
  this.timeout(180000);

  it('a trace file removed by hand is started again at the next rotation; a removed directory is let go and written again once it is back; locks are served throughout', async () => {
    const dir = tmpDir('mxfs-trace-gone-');
    const tdir = path.join(dir, 'trace');
    fs.mkdirSync(tdir);
    const file = path.join(tdir, 'trace.ndjson');
    const d = await startDaemon({ dir, extra: { trace: { enabled: 'true', file, file_max_bytes: 65536, file_keep: 1 } } });
    const c = await MxfsClient.connect(d.socket);
    const cycle = async (n: number) => { for (let i = 0; i < n; i++) await (await c.lock(`gone${i % 4}`, Mode.EX)).unlock(); };
    const log = () => fs.readFileSync(path.join(dir, 'mxfsd.log'), 'utf8');
    const traceFds = () => fs.readdirSync(`/proc/${d.proc.pid}/fd`).map((f) => { try { return fs.readlinkSync(`/proc/${d.proc.pid}/fd/${f}`); } catch { return ''; } }).filter((l) => l.startsWith(tdir));
    try {
      await cycle(20);
      await waitFor(() => fs.existsSync(file) && fs.statSync(file).size > 0, 30000, 'the trace file written');
      // Removed by hand: written (unlinked) until the next rotation, which starts a new FILE.
      for (const f of fs.readdirSync(tdir)) fs.rmSync(path.join(tdir, f));
      await waitFor(async () => { await cycle(20); return fs.existsSync(file); }, 60000, 'a new trace file after the rotation');
      expect(log()).to.not.match(/trace file cannot be written/);
      // The directory removed: the next rotation fails, the file is let go (no deleted file held open).
      fs.rmSync(tdir, { recursive: true });
      await waitFor(async () => { await cycle(20); return /trace file cannot be written/.test(log()); }, 60000, 'the failure logged');
      await waitFor(async () => { await cycle(5); return traceFds().length === 0; }, 30000, 'the removed file let go');
      // Back: written again (tried every 5 s while events come).
      fs.mkdirSync(tdir);
      await waitFor(async () => { await cycle(5); return fs.existsSync(file) && fs.statSync(file).size > 0; }, 60000, 'the trace file written again');
      expect(log()).to.match(/trace file written again/);
      const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
      for (const l of lines.slice(0, -1)) expect(JSON.parse(l).node).to.equal(1);
      await cycle(4);
      expect(d.proc.exitCode).to.equal(null);
    } finally {
      await c.close();
      await d.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('why after the master died (3 real mxfsd)', function () {
  this.timeout(180000);
  let cl: TestCluster;

  before(async () => {
    cl = new TestCluster(3, 3000, () => `[trace]\nenabled = true\n`);
    await cl.up();
  });
  after(async () => { await cl?.stopAll(); });

  it('names the new master and epoch, the holder, its BAST and the waiter; a lock adopted by the rebuild is "at least" as old as the recovery, not as young', async () => {
    const { res, ha, pb } = await holderAndWaiter(cl, 'dead');
    const before = JSON.parse((await mxfsctl(['--socket', cl.node(1).socket, '--json', 'why', res])).stdout);
    expect(before.master).to.equal(3);
    await cl.killed(3);
    const epoch = await cl.waitView([1, 2], 60000);
    expect(epoch).to.be.greaterThan(before.epoch);
    let w = '';
    await waitFor(async () => /rebuilt from/.test(w = (await mxfsctl(['--socket', cl.node(1).socket, 'why', res])).stdout), 60000, 'the rebuilt resource in why');
    expect(w).to.match(new RegExp(`^default/${res}: mastered by node [12] in epoch ${epoch} \\(members 1 2; node 1 is running\\)`));
    expect(w).to.match(/\n {2}held by 1:\d+\/1 \(owner 1:\d+.* on node 1\) in EX, token \d+, for at least \d+(\.\d)? m?s \(from before the recovery\)\n/);
    expect(w).to.match(/\n {4}BAST sent \d+(\.\d)? m?s ago: another lock wants PR\n/);
    // The waiter: a record too, or its request sent again after the recovery (then its time counts from that).
    expect(w).to.match(/\n {2}waiting: 2:\d+\/1 .* for PR, for (at least )?\d+(\.\d)? m?s( \(from before the recovery\))?, blocked by 1:\d+\/1 \(EX\)\n/);
    expect(w).to.match(/\n {2}rebuilt from [12] records? by a recovery \d+(\.\d)? m?s ago\n/);
    expect(w).to.match(new RegExp(`\\n {2}last recovery: epoch ${epoch}, `));
    await ha.unlock();
    await (await pb).unlock();
  });
});

describe('trace tail behind a small ring (a real mxfsd)', function () {
  this.timeout(120000);

  it('events overwritten in the ring between two polls are reported on stderr, not skipped in silence', async () => {
    const d = await startDaemon({ extra: { trace: { enabled: 'true', ring_size: 16 } } });
    const c = await MxfsClient.connect(d.socket);
    const tail = spawn(process.execPath, [MXFSCTL, '--socket', d.socket, 'trace', 'tail', '--interval', '500'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    tail.stdout!.on('data', (x) => { out += x; });
    tail.stderr!.on('data', (x) => { err += x; });
    try {
      // Many more than 16 events between two polls.
      await waitFor(async () => {
        for (let i = 0; i < 10; i++) await (await c.lock(`small${i}`, Mode.EX)).unlock();
        return /\d+ events of node 1 were overwritten in its ring before they could be read/.test(err);
      }, 60000, 'tail reporting overwritten events');
      expect(err).to.match(/^mxfsctl: \d+ events of node 1 were overwritten in its ring before they could be read \(raise \[trace\] ring_size or poll more often\)\n/m);
      // The events still in the ring are printed too (stdout and stderr arrive apart: wait for it, and keep the traffic going).
      await waitFor(async () => {
        await (await c.lock('small-more', Mode.EX)).unlock();
        return /^\d\d:\d\d:\d\d\.\d{3} n1 #\d+ /m.test(out);
      }, 60000, 'tail printing events');
    } finally {
      tail.kill();
      await c.close();
      await d.stop();
      fs.rmSync(d.dir, { recursive: true, force: true });
    }
  });
});
