/** End to end: the mxfsctl CLI against a real mxfsd. */
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { MxfsClient } from '../src/client/client';
import { Mode } from '../src/dlm/modes';
import { encodeFrame } from '../src/wire/frame';
import { DaemonProc, MXFSCTL, mxfsctl, run, sleep, startDaemon, unreadBytes as unread, waitFor } from './support/daemon-proc';

describe('mxfsctl', function () {
  this.timeout(30000);
  let d: DaemonProc;
  before(async () => { d = await startDaemon(); });
  after(async () => { await d?.stop('SIGKILL'); });

  it('status prints node, counts and kernel state; --json is machine-readable', async () => {
    const c = await MxfsClient.connect(d.socket);
    await c.lock('st', Mode.PR, { lockspace: 'ls1' });
    const r = await mxfsctl(['--socket', d.socket, 'status']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(/^node 1 \(node1\)/);
    expect(r.stdout).to.match(/lockspaces: .*ls1 \(1 resources\)/);
    expect(r.stdout).to.match(/kernel: disabled/);
    const j = await mxfsctl(['--config', d.config, '--json', 'status']);
    const st = JSON.parse(j.stdout);
    expect(st.node.id).to.equal(1);
    expect(st.locks).to.be.at.least(1);
    await c.close();
  });

  it('locks shows granted, converting and waiting queues with owners and tokens', async () => {
    const a = await MxfsClient.connect(d.socket, { name: 'alpha' });
    const b = await MxfsClient.connect(d.socket, { name: 'beta' });
    const ha = await a.lock('q1', Mode.PR);
    const hb = await b.lock('q1', Mode.PR);
    void ha.convert(Mode.EX);
    void b.lock('q1', Mode.EX).catch(() => {});
    await sleep(100);
    const r = await mxfsctl(['--socket', d.socket, 'locks', '--resource', 'q1']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(/Resource default\/q1 {2}token \d+ {2}lvb INVALID/);
    expect(r.stdout).to.match(/Granted[\s\S]*PR \(converting to EX\)[\s\S]*alpha/);
    expect(r.stdout).to.match(/Conversion\n.*PR -> EX/);
    expect(r.stdout).to.match(/Waiting\n.*-- -> EX {2}owner \S+ \(beta/);
    const j = JSON.parse((await mxfsctl(['--socket', d.socket, '--json', 'locks', '--lockspace', 'default', '--resource', 'q1'])).stdout);
    expect(j.resources[0].granted).to.have.length(2);
    expect(j.resources[0].waiting).to.have.length(1);
    void hb;
    await a.close();
    await b.close();
  });

  it('locks and status print names with their control characters escaped: a newline cannot forge a line, an escape cannot reach the terminal', async () => {
    const a = await MxfsClient.connect(d.socket, { name: 'alpha' });
    await a.lock('q2\nResource default/forged  token 1', Mode.PR, { lockspace: 'ls\u001b[31m' });
    const r = await mxfsctl(['--socket', d.socket, 'locks', '--lockspace', 'ls\u001b[31m']);
    expect(r.code).to.equal(0);
    const lines = r.stdout.split('\n').filter((l) => l.startsWith('Resource '));
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/^Resource ls\\u001b\[31m\/q2\\nResource default\/forged {2}token 1 {2}token \d+ {2}lvb INVALID/);
    const st = await mxfsctl(['--socket', d.socket, 'status']);
    expect(st.stdout).to.include('ls\\u001b[31m (1 resources)');
    expect(st.stdout).to.not.include('\u001b');
    await a.close();
  });

  it('lock runs the command holding the lock, exports MXFS_TOKEN, releases, exits with its status', async () => {
    const out = path.join(d.dir, 'token.txt');
    const r = await mxfsctl(['--socket', d.socket, 'lock', 'job', 'EX', '--', 'sh', '-c', `echo $MXFS_TOKEN $MXFS_MODE > ${out}; exit 7`]);
    expect(r.code).to.equal(7);
    const [token, mode] = fs.readFileSync(out, 'utf8').trim().split(' ');
    expect(Number(token)).to.be.greaterThan(0);
    expect(mode).to.equal('EX');
    const again = await mxfsctl(['--socket', d.socket, 'lock', 'job', 'EX', '--', 'sh', '-c', `echo $MXFS_TOKEN > ${out}`]);
    expect(again.code).to.equal(0);
    expect(Number(fs.readFileSync(out, 'utf8'))).to.equal(Number(token) + 1);
  });

  it('lock --noqueue exits 1 when the lock is held; --timeout exits 1 after the wait', async () => {
    const c = await MxfsClient.connect(d.socket);
    await c.lock('busy', Mode.EX);
    const r = await mxfsctl(['--socket', d.socket, 'lock', '--noqueue', 'busy', 'PR', '--', 'true']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/busy is locked \(not queued\)/);
    const t = await mxfsctl(['--socket', d.socket, 'lock', '--timeout', '200', 'busy', 'PR', '--', 'true']);
    expect(t.code).to.equal(1);
    expect(t.stderr).to.match(/timed out/);
    await c.close();
  });

  it('usage errors print usage and exit 2', async () => {
    for (const args of [[], ['frobnicate'], ['lock', 'r', 'XX', '--', 'true'], ['lock', 'r', 'EX'], ['status', '--noqueue'], ['--bogus', 'status'], ['lock', '--timeout', '1s', 'r', 'EX', '--', 'true']]) {
      const r = await mxfsctl(['--socket', d.socket, ...args]);
      expect(r.code, args.join(' ')).to.equal(2);
      expect(r.stderr, args.join(' ')).to.match(/usage: mxfsctl/);
    }
  });

  it('names the daemon would refuse are usage errors here (exit 2), before any connection', async () => {
    const long = 'r'.repeat(65);
    for (const [args, msg] of [
      [['lock', long, 'EX', '--', 'true'], /resource name 'r{21}\.\.\.' is 65 bytes; the limit is 64/],
      [['lock', '--lockspace', '', 'r', 'EX', '--', 'true'], /lockspace name '' must be a non-empty string/],
      [['locks', '--resource', 'x'.repeat(80)], /resource name 'x{21}\.\.\.' is 80 bytes/],
      // Whole milliseconds, but more than a timer holds: the message says the range.
      [['lock', '--timeout', '3000000000', 'r', 'EX', '--', 'true'], /^mxfsctl: --timeout wants whole milliseconds 0\.\.2147483647, got '3000000000'\n/],
      [['mount', 'v', '--timeout', '3000000000'], /^mxfsctl: --timeout wants whole milliseconds 0\.\.2147483647, got '3000000000'\n/],
      // A negative value given apart gets the same range error as --timeout=-5 (not parseArgs' "ambiguous").
      [['lock', '--timeout', '-5', 'r', 'EX', '--', 'true'], /^mxfsctl: --timeout wants whole milliseconds 0\.\.2147483647, got '-5'\n/],
      [['lock', '-w', '-5', 'r', 'EX', '--', 'true'], /^mxfsctl: --timeout wants whole milliseconds 0\.\.2147483647, got '-5'\n/],
      [['lock', '--timeout=-5', 'r', 'EX', '--', 'true'], /^mxfsctl: --timeout wants whole milliseconds 0\.\.2147483647, got '-5'\n/],
      [['lock', '--grace', '-1', 'r', 'EX', '--', 'true'], /^mxfsctl: --grace wants whole milliseconds 0\.\.2147483647, got '-1'\n/],
      [['mount', 'v', '--timeout', '-5'], /^mxfsctl: --timeout wants whole milliseconds 0\.\.2147483647, got '-5'\n/],
    ] as Array<[string[], RegExp]>) {
      // A socket nobody listens on: a name check that reached the daemon would exit 4.
      const r = await mxfsctl(['--socket', path.join(d.dir, 'nope.sock'), ...args]);
      expect(r.code, args.join(' ')).to.equal(2);
      expect(r.stderr, args.join(' ')).to.match(msg);
    }
    const ok = await mxfsctl(['--socket', d.socket, 'lock', 'r'.repeat(64), 'EX', '--', 'true']);
    expect(ok.code).to.equal(0);
  });

  it('locks --volume: the kernel inode locks of a configured kernel volume only; wrong combinations are usage errors', async () => {
    const r = await mxfsctl(['--socket', d.socket, 'locks', '--volume', 'data']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.match(/no volume 'data' is configured on node 1/);
    for (const [args, msg] of [
      [['locks', '--volume', 'data', '--resource', 'r'], /option --resource does not apply/],
      [['locks', '--volume', 'a/b'], /bad VOLUME 'a\/b'/],
      [['locks', '--volume', 'data', 'x'], /'locks' takes no positional arguments/],
    ] as Array<[string[], RegExp]>) {
      const u = await mxfsctl(['--socket', path.join(d.dir, 'nope.sock'), ...args]);
      expect(u.code, args.join(' ')).to.equal(2);
      expect(u.stderr, args.join(' ')).to.match(msg);
    }
  });

  it('trace tail with tracing off says so (as dump does) instead of waiting in silence', async () => {
    const p = spawn(process.execPath, [MXFSCTL, '--socket', d.socket, 'trace', 'tail', '--count', '1', '--interval', '50'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    p.stderr!.on('data', (x) => { stderr += x; });
    try {
      await waitFor(() => stderr.includes('\n') || p.exitCode !== null, 20000, 'trace tail to say something');
      expect(stderr).to.equal('mxfsctl: tracing is off on every node asked ([trace] enabled = false); nothing will be printed\n');
    } finally {
      p.kill('SIGKILL');
    }
  });

  it('cannot reach the daemon: exit 4 with a message', async () => {
    const r = await mxfsctl(['--socket', path.join(d.dir, 'nope.sock'), 'status']);
    expect(r.code).to.equal(4);
    expect(r.stderr).to.match(/cannot reach mxfsd/);
  });

  it('an argument that is not valid UTF-8 is a usage error, not a lock on U+FFFD or a changed COMMAND', async () => {
    // Node decodes argv as UTF-8, turning a stray byte into U+FFFD: mxfsctl used to lock
    // "\uFFFD" (the same lock for every such name) and run COMMAND with altered arguments.
    // The bytes can only be given through a shell: spawn() takes strings.
    const sh = (args: string) => run('sh', ['-c', `exec "${process.execPath}" "${MXFSCTL}" --socket "${d.socket}" ${args}`]);
    const cases = [
      [`lock "$(printf 'a\\377')" EX -- true`, /argument 4 \('a\\xff'\) is not valid UTF-8/],
      [`lock --lockspace "$(printf '\\300\\200')" r EX -- true`, /argument 5 \('\\xc0\\x80'\) is not valid UTF-8/],
      [`locks --resource "$(printf '\\355\\240\\200')"`, /argument 5 \('\\xed\\xa0\\x80'\) is not valid UTF-8/],
      [`lock r EX -- touch "$(printf '${d.dir}/f\\377')"`, /argument 8 \('.*\/f\\xff'\) is not valid UTF-8/],
    ] as const;
    for (const [args, re] of cases) {
      const r = await sh(args);
      expect(r.code, args).to.equal(2);
      expect(r.stderr.split('\n')[0], args).to.match(re);
      expect(r.stderr).to.not.match(/\n\s+at /);
    }
    expect(fs.readdirSync(d.dir).filter((f) => f.startsWith('f'))).to.deep.equal([]);
    // A real U+FFFD (EF BF BD) is a character like any other.
    const ok = await sh(`lock "$(printf '\\357\\277\\275')" EX -- true`);
    expect(ok.code, ok.stderr).to.equal(0);
  });
});

describe('mxfsctl lock when the lock is lost', function () {
  this.timeout(30000);
  let d: DaemonProc;
  afterEach(async () => { await d?.stop('SIGKILL'); });

  it('daemon goes silent (SIGSTOP): the command gets SIGTERM and mxfsctl exits 3', async () => {
    d = await startDaemon();
    const marker = path.join(d.dir, 'term.txt');
    const p = spawn(process.execPath, [MXFSCTL, '--socket', d.socket, 'lock', 'long', 'EX', '--',
      'sh', '-c', `trap 'echo TERM > ${marker}; exit 143' TERM; echo started; while true; do sleep 0.05; done`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (x) => { err += x; });
    await new Promise<void>((r) => p.stdout!.once('data', () => r()));
    const exit = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
    d.proc.kill('SIGSTOP');
    const code = await exit;
    d.proc.kill('SIGCONT');
    expect(code).to.equal(3);
    expect(err).to.match(/lock on long lost/);
    await waitFor(() => fs.existsSync(marker), 20000, 'TERM marker');
  });

  it('the grant and the daemon\'s lost read together (mxfsd stopped just after granting): the command never runs', async () => {
    // client_timeout_ms far above what the test takes: mxfsctl's pause stays within the bound.
    d = await startDaemon({ extra: { timing: { client_timeout_ms: 20000, lease_timeout_ms: 60000, shutdown_grace_ms: 20000 } } });
    const holder = await MxfsClient.connect(d.socket);
    const h = await holder.lock('handoff', Mode.EX);
    const marker = path.join(d.dir, 'ran.txt');
    const p = spawn(process.execPath, [MXFSCTL, '--socket', d.socket, 'lock', 'handoff', 'EX', '--', 'sh', '-c', `echo RAN > ${marker}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (x) => { err += x; });
    const exit = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
    const queue = async () => (await holder.locks({ resource: 'handoff' })).resources[0];
    await waitFor(async () => (await queue()).waiting.length === 1, 10000, 'mxfsctl waiting');
    p.kill('SIGSTOP');
    try {
      await h.unlock();
      // Sizes of the two frames (heartbeat acks already on their way are smaller than either).
      const grantLen = encodeFrame({ type: 'reply', id: 2, ok: true, grant: { mode: Mode.EX, token: 1, lvb: Buffer.alloc(32), lvbValid: false } }, 1 << 16).length;
      const lostLen = encodeFrame({ type: 'lost', reason: 'mxfsd on node 1 shutting down' }, 1 << 16).length;
      await waitFor(async () => (await unread(p.pid!)) >= grantLen, 10000, 'the grant in mxfsctl\'s socket');
      const before = await unread(p.pid!);
      d.proc.kill('SIGTERM');
      await waitFor(async () => (await unread(p.pid!)) >= before + lostLen, 10000, 'the lost in mxfsctl\'s socket');
    } finally {
      p.kill('SIGCONT');
    }
    expect(await exit).to.equal(4);
    expect(err).to.match(/cannot lock handoff: .*shutting down/);
    expect(fs.existsSync(marker), 'the command ran without the lock').to.equal(false);
  });

  it('daemon dies: a command that ignores SIGTERM gets SIGKILL after the grace period', async () => {
    d = await startDaemon();
    const p = spawn(process.execPath, [MXFSCTL, '--socket', d.socket, 'lock', '--grace', '300', 'long2', 'EX', '--',
      'sh', '-c', `trap '' TERM; echo started; while true; do sleep 0.05; done`], { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((r) => p.stdout!.once('data', () => r()));
    const exit = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
    await d.stop('SIGKILL');
    expect(await exit).to.equal(3);
  });

  /** True while any process of group `pgid` exists. */
  const groupAlive = (pgid: number) => { try { process.kill(-pgid, 0); return true; } catch { return false; } };
  /** True while a process of group `pgid` exists that is not a zombie (its parent may be stopped). */
  const groupRunning = (pgid: number) => fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x)).some((pid) => {
    let stat = '';
    try { stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return false; }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // state ppid pgrp ...
    return Number(f[2]) === pgid && f[0] !== 'Z';
  });
  /** A pipeline that writes on and on: `sh` records its pid, which is the group id (COMMAND's own group). */
  const writer = (dir: string) => ['sh', '-c', `echo $$ > ${dir}/pgid; echo started; while true; do echo line; sleep 0.02; done | cat >> ${dir}/out`];
  const pgidOf = async (dir: string) => {
    await waitFor(() => fs.existsSync(path.join(dir, 'pgid')) && /\d+\n/.test(fs.readFileSync(path.join(dir, 'pgid'), 'utf8')), 20000, 'pgid file');
    return Number(fs.readFileSync(path.join(dir, 'pgid'), 'utf8'));
  };

  it('lock lost: every process of the command (a pipeline) is stopped before mxfsctl exits 3', async () => {
    d = await startDaemon();
    const p = spawn(process.execPath, [MXFSCTL, '--socket', d.socket, 'lock', 'pipe', 'EX', '--', ...writer(d.dir)], { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((r) => p.stdout!.once('data', () => r()));
    const pgid = await pgidOf(d.dir);
    await waitFor(() => fs.existsSync(path.join(d.dir, 'out')) && fs.statSync(path.join(d.dir, 'out')).size > 0, 20000, 'the pipeline writes');
    const exit = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
    d.proc.kill('SIGSTOP');
    const code = await exit;
    d.proc.kill('SIGCONT');
    expect(code).to.equal(3);
    expect(groupAlive(pgid), 'a process of the command outlived mxfsctl').to.equal(false);
    const size = fs.statSync(path.join(d.dir, 'out')).size;
    await sleep(200);
    expect(fs.statSync(path.join(d.dir, 'out')).size).to.equal(size);
  });

  it('mxfsctl killed (kill -9): its watchdog kills the command\'s whole group', async () => {
    d = await startDaemon();
    const p = spawn(process.execPath, [MXFSCTL, '--socket', d.socket, 'lock', 'pipe2', 'EX', '--', ...writer(d.dir)], { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((r) => p.stdout!.once('data', () => r()));
    const pgid = await pgidOf(d.dir);
    expect(groupAlive(pgid)).to.equal(true);
    p.kill('SIGKILL');
    await waitFor(() => !groupAlive(pgid), 10000, 'the command group gone after mxfsctl died');
  });

  it('mxfsctl stopped (SIGSTOP) past client_timeout_ms: its watchdog kills the command, whose lock may be gone', async () => {
    d = await startDaemon();
    const p = spawn(process.execPath, [MXFSCTL, '--socket', d.socket, 'lock', 'pipe3', 'EX', '--', ...writer(d.dir)], { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((r) => p.stdout!.once('data', () => r()));
    const pgid = await pgidOf(d.dir);
    const exit = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
    p.kill('SIGSTOP');
    try {
      // mxfsctl cannot act (nor reap its child: zombies do not count); the watchdog does.
      await waitFor(() => !groupRunning(pgid), 15000, 'the command group killed while mxfsctl is stopped');
    } finally {
      p.kill('SIGCONT');
    }
    expect(await exit).to.not.equal(0);
  });

  it('what the command leaves running in its group is stopped before the lock is released', async () => {
    d = await startDaemon();
    const bg = path.join(d.dir, 'bg');
    const r = await mxfsctl(['--socket', d.socket, 'lock', '--grace', '300', 'leftover', 'EX', '--', 'sh', '-c', `sleep 1000 & echo $! > ${bg}; exit 0`]);
    expect(r.code).to.equal(0);
    const pid = Number(fs.readFileSync(bg, 'utf8'));
    let alive = true;
    try { process.kill(pid, 0); } catch { alive = false; }
    expect(alive, 'the background sleep outlived mxfsctl').to.equal(false);
  });

});
