/**
 * mxfsd as an operator starts it: --version, --check-config, the default config path, every
 * start-up failure as one line on stderr (no stack trace), the cluster key file's mode, the
 * client socket's mode and group from the moment it exists; mxfsctl keygen.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { loadClusterKey } from '../src/cluster/auth';
import { VERSION } from '../src/daemon/daemon';
import { configText, MXFSD, mxfsctl, ROOT, run, startDaemon, tmpDir, waitFor } from './support/daemon-proc';

const mxfsd = (args: string[], env: NodeJS.ProcessEnv = {}) => run(process.execPath, [MXFSD, ...args], { env: { ...process.env, ...env } });

/** The one-line contract: exactly one line on stderr, no stack trace, no JSON. */
function oneLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '');
  expect(lines, stderr).to.have.length(1);
  expect(lines[0]).to.not.match(/^\{|\s+at \S+ \(/);
  return lines[0]!;
}

/** A two-node cluster config (node 1) with its key file; the peer need not run. */
function clusterConf(dir: string, keyMode = 0o600, key = 'k'.repeat(64) + '\n'): string {
  const keyFile = path.join(dir, 'cluster.key');
  if (key) { fs.writeFileSync(keyFile, key); fs.chmodSync(keyFile, keyMode); }
  const conf = path.join(dir, 'mxfs.conf');
  fs.writeFileSync(conf, configText(dir, { logging: { stderr: 'true' } }) + `\n[cluster]\nkey_file = ${keyFile}\ntiebreaker = 1\n\n[peer]\nid = 2\naddress = 127.0.0.1\nport = 1\n`);
  return conf;
}

describe('mxfsd command line and start-up', function () {
  this.timeout(30000);

  it('--version and --help', async () => {
    const v = await mxfsd(['--version']);
    expect(v.code).to.equal(0);
    expect(v.stdout).to.equal(`mxfsd ${VERSION}\n`);
    const h = await mxfsd(['--help']);
    expect(h.stdout).to.contain('--check-config').and.contain('/etc/mxfs/mxfs.conf');
  });

  it('without --config it reads /etc/mxfs/mxfs.conf, and says so when that is missing', async function () {
    if (fs.existsSync('/etc/mxfs/mxfs.conf')) this.skip(); // a configured host: nothing to show
    const r = await mxfsd([]);
    expect(r.code).to.equal(2);
    expect(oneLine(r.stderr)).to.equal('mxfsd: config error: /etc/mxfs/mxfs.conf: cannot read config file: no such file (ENOENT) (the default; give another with --config FILE)');
  });

  it('--check-config: ok on a good config (exit 0), one line and exit 2 on a bad one, a loose key or a missing one', async () => {
    const dir = tmpDir();
    const conf = clusterConf(dir);
    const ok = await mxfsd(['--config', conf, '--check-config']);
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stdout).to.equal(`${conf}: ok (node 1 'node1', 2-node cluster 'mxfs', 0 volumes, socket ${path.join(dir, 'mxfsd.sock')})\n`);
    expect(fs.existsSync(path.join(dir, 'mxfsd.sock')), 'nothing started').to.equal(false);
    fs.chmodSync(path.join(dir, 'cluster.key'), 0o640);
    const loose = await mxfsd(['--config', conf, '--check-config']);
    expect(loose.code).to.equal(2);
    expect(oneLine(loose.stderr)).to.contain(`is accessible by group or others (mode 0640): run 'chmod 600 ${path.join(dir, 'cluster.key')}'`);
    const bad = path.join(dir, 'bad.conf');
    fs.writeFileSync(bad, '[node]\nid = 1\n[timing]\nlease_timeout_ms = 10s\n');
    const b = await mxfsd(['--config', bad, '--check-config']);
    expect(b.code).to.equal(2);
    expect(oneLine(b.stderr)).to.match(new RegExp(`^mxfsd: config error: ${bad}:4: \\[timing\\] lease_timeout_ms: `));
    const g = path.join(dir, 'group.conf');
    fs.writeFileSync(g, `[node]\nid = 1\nsocket = ${dir}/g.sock\nsocket_group = no-such-group-mxfs\n`);
    const gr = await mxfsd(['--config', g, '--check-config']);
    expect(gr.code).to.equal(2);
    expect(oneLine(gr.stderr)).to.contain(`[node] socket_group: unknown group 'no-such-group-mxfs'`);
  });

  it('start-up failures are one line and exit 1: missing key file, loose key file, busy cluster port, busy socket, unwritable state_dir', async () => {
    const dir = tmpDir();
    const noKey = clusterConf(dir, 0o600, '');
    const r1 = await mxfsd(['--config', noKey]);
    expect(r1.code).to.equal(1);
    expect(oneLine(r1.stderr)).to.equal(`mxfsd: cannot start: cluster key file ${path.join(dir, 'cluster.key')} does not exist: create it on one node with 'mxfsctl keygen --out ${path.join(dir, 'cluster.key')}' and copy it to every node (mode 0600)`);
    // The log file gets the whole story, as a fatal record.
    const rec = fs.readFileSync(path.join(dir, 'mxfsd.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).find((x) => x.msg === 'cannot start');
    expect(rec.level).to.equal(60);

    const dir2 = tmpDir();
    const loose = await mxfsd(['--config', clusterConf(dir2, 0o644)]);
    expect(loose.code).to.equal(1);
    expect(oneLine(loose.stderr)).to.match(/^mxfsd: cannot start: cluster key file .* is accessible by group or others \(mode 0644\): run 'chmod 600 /);

    // Busy cluster port: something already listens on [node] port.
    const net = await import('node:net');
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    const dir3 = tmpDir();
    const conf3 = clusterConf(dir3);
    fs.appendFileSync(conf3, '');
    fs.writeFileSync(conf3, fs.readFileSync(conf3, 'utf8').replace('[node]\n', `[node]\naddress = 127.0.0.1\nport = ${port}\n`));
    const busy = await mxfsd(['--config', conf3]);
    blocker.close();
    expect(busy.code).to.equal(1);
    expect(oneLine(busy.stderr)).to.equal(`mxfsd: cannot start: cluster port 127.0.0.1:${port} is already in use (another mxfsd, or another program: see 'ss -ltnp')`);

    // Busy socket: a live daemon answers on it (another state_dir, so only the socket collides).
    const d = await startDaemon({ extra: { logging: { stderr: 'true' } } });
    try {
      const dir4 = tmpDir();
      const conf4 = path.join(dir4, 'mxfs.conf');
      fs.writeFileSync(conf4, configText(dir4, { node: { socket: d.socket }, logging: { stderr: 'true' } }));
      const r = await mxfsd(['--config', conf4]);
      expect(r.code).to.equal(1);
      expect(oneLine(r.stderr)).to.equal(`mxfsd: cannot start: socket ${d.socket} is in use by another mxfsd (pid ${d.proc.pid}); two daemons must not run as the same node`);
    } finally {
      await d.stop('SIGKILL');
    }

    const dir5 = tmpDir();
    fs.writeFileSync(path.join(dir5, 'file'), '');
    const conf5 = path.join(dir5, 'mxfs.conf');
    fs.writeFileSync(conf5, configText(dir5, { node: { state_dir: path.join(dir5, 'file', 'state') }, logging: { stderr: 'true' } }));
    const r5 = await mxfsd(['--config', conf5]);
    expect(r5.code).to.equal(1);
    expect(oneLine(r5.stderr)).to.match(/^mxfsd: cannot start: cannot create state_dir .*file\/state/);
  });

  it('creates the client socket with socket_mode (and socket_group) from the start, leaving nothing behind', async function () {
    const asRoot = process.getuid?.() === 0;
    const d = await startDaemon({ extra: { node: { socket_mode: '0600', ...(asRoot ? { socket_group: 'daemon' } : {}) } } });
    try {
      const st = fs.statSync(d.socket);
      expect(st.isSocket()).to.equal(true);
      expect((st.mode & 0o777).toString(8)).to.equal('600');
      if (asRoot) expect(st.gid).to.equal(1); // Debian's 'daemon' group, resolved through getgrnam
      // The private bind directory goes right after the link that made the socket reachable.
      await waitFor(() => fs.readdirSync(d.dir).every((f) => !f.startsWith('.mxfsd-')), 20000, 'the private bind directory to go');
      const r = await mxfsctl(['--socket', d.socket, 'status']);
      expect(r.code).to.equal(0);
    } finally {
      await d.stop('SIGTERM');
    }
    expect(fs.existsSync(d.socket), 'removed at shutdown').to.equal(false);
  });
});

describe('mxfsctl keygen', () => {
  it('prints a key, or writes a new file with mode 0600 (never replacing one) that mxfsd accepts', async () => {
    const dir = tmpDir();
    const p = await mxfsctl(['keygen']);
    expect(p.code).to.equal(0);
    expect(p.stdout).to.match(/^[0-9a-f]{64}\n$/);
    const file = path.join(dir, 'cluster.key');
    const w = await mxfsctl(['keygen', '--out', file], { env: { } });
    expect(w.code, w.stderr).to.equal(0);
    expect((fs.statSync(file).mode & 0o777).toString(8)).to.equal('600');
    expect(loadClusterKey(file)).to.have.length(64);
    const before = fs.readFileSync(file, 'utf8');
    const again = await mxfsctl(['keygen', '--out', file]);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.contain('already exists');
    expect(fs.readFileSync(file, 'utf8')).to.equal(before);
    const u = await mxfsctl(['keygen', '--lockspace', 'x']);
    expect(u.code).to.equal(2);
  });
});

describe('the CLIs writing to a closed pipe (`mxfsctl ... | head`)', () => {
  // The read end is closed before the tool writes (it is still starting up): its first write
  // fails EPIPE. It must end quietly with exit 0, not die of an unhandled 'error' event with a
  // stack trace. Were the close late, the write would just go into the pipe and the run would
  // say nothing either way; it can never fail falsely.
  const closedPipe = (script: string, args: string[]) => new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const p = spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'cli', script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout!.destroy();
    let stderr = '';
    p.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
    p.on('close', (code) => resolve({ code, stderr }));
  });

  for (const [script, args] of [['mxfsctl.js', ['--help']], ['mxfs-cluster.js', ['--help']], ['mxfs-failover.js', ['--help']]] as const) {
    it(`${script.replace('.js', '')} ${args.join(' ')}: exit 0, nothing on stderr`, async () => {
      const r = await closedPipe(script, [...args]);
      expect(r.stderr).to.equal('');
      expect(r.code).to.equal(0);
    });
  }
});

describe('an empty --config or --socket', () => {
  it('is a usage error naming the option (exit 2), not a file called "" or a silent fallback to the default socket', async () => {
    const d = await mxfsd(['--config', '']);
    expect(d.code).to.equal(2);
    expect(d.stderr.split('\n')[0]).to.equal('mxfsd: --config needs a file path (it was empty)');
    for (const opt of ['--config', '--socket']) {
      const c = await mxfsctl([opt, '', 'status']);
      expect(c.code, c.stderr).to.equal(2);
      expect(c.stderr.split('\n')[0]).to.match(new RegExp(`^mxfsctl: ${opt} needs a`));
    }
  });
});
