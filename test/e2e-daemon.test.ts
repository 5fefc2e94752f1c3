/**
 * End to end: real mxfsd processes, the client library and raw sockets over the real Unix
 * socket. Bad frames, dead and silent clients, a silent daemon, clean shutdown, SIGHUP.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { MxfsClient } from '../src/client/client';
import { Mode } from '../src/dlm/modes';
import { DaemonProc, ROOT, run, sleep, startDaemon, tmpDir, unreadBytes, waitFor, MXFSD } from './support/daemon-proc';
import { encodeFrame } from '../src/wire/frame';
import { rawClient as raw } from './support/raw-client';

const { EX, PR } = Mode;

/**
 * Script text for a child process: once the file argv[2] exists, it prints 'blocked' and blocks
 * its event loop inside a timer callback until the file argv[3] exists (a pause whose end is
 * deterministic: the reads waiting in its socket are handled before its watchdog's next beat).
 */
const PAUSE_IN_TIMER = `const poll = setInterval(() => {
          if (!fs.existsSync(process.argv[2])) return;
          clearInterval(poll);
          process.stdout.write('blocked\\n');
          while (!fs.existsSync(process.argv[3])) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
        }, 10);`;

describe('mxfsd end to end', function () {
  this.timeout(30000);
  let d: DaemonProc;
  afterEach(async () => { await d?.stop('SIGKILL'); });

  it('serves locks to separate client processes; a killed holder (kill -9) releases its lock', async () => {
    d = await startDaemon();
    const holderScript = `
      const { MxfsClient } = require(${JSON.stringify(path.join(ROOT, 'dist/src/client/client.js'))});
      MxfsClient.connect(process.argv[1]).then(async (c) => { await c.lock('shared', 5); process.stdout.write('held\\n'); setInterval(() => {}, 1000); });`;
    const holder = spawn(process.execPath, ['-e', holderScript, d.socket], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((r) => holder.stdout!.once('data', () => r()));
    const c = await MxfsClient.connect(d.socket);
    const p = c.lock('shared', EX);
    await sleep(100);
    const locks = await c.locks({ resource: 'shared' });
    expect(locks.resources[0].granted).to.have.length(1);
    expect(locks.resources[0].waiting).to.have.length(1);
    holder.kill('SIGKILL');
    const h = await p;
    expect(h.grant.mode).to.equal(EX);
    await c.close();
  });

  it('garbage, oversized and envelope-less frames cut that client off; the daemon and other clients go on', async () => {
    d = await startDaemon();
    const good = await MxfsClient.connect(d.socket);
    const held = await good.lock('keep', EX);
    const bad1 = await raw(d.socket);
    bad1.s.write(Buffer.from([0, 0, 0, 5, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1])); // 0xc1 is never valid msgpack
    const bad2 = await raw(d.socket);
    bad2.s.write(Buffer.from([0x7f, 0xff, 0xff, 0xff])); // 2 GiB length
    const bad3 = await raw(d.socket);
    bad3.send({ type: 'hello', id: 1, version: 1, client: 'x' });
    bad3.send({ type: 'lock', lockId: 1, lockspace: 'default', resource: 'y', mode: 5 }); // no request id: nobody to answer
    const bad4 = await raw(d.socket);
    bad4.send({ type: 'lock', id: 1, lockId: 1, lockspace: 'default', resource: 'keep', mode: 5 }); // no hello
    await waitFor(() => bad1.isClosed() && bad2.isClosed() && bad3.isClosed() && bad4.isClosed(), 20000, 'bad clients cut off');
    expect(bad1.msgs.find((m) => m.type === 'lost').reason).to.match(/undecodable/);
    expect(bad2.msgs.find((m) => m.type === 'lost').reason).to.match(/exceeds the limit/);
    expect(bad3.msgs.find((m) => m.type === 'lost').reason).to.match(/field 'id' must be an integer/);
    expect(bad4.msgs.find((m) => m.type === 'reply').message).to.match(/first request must be hello/);
    // The good client still holds its lock and the daemon still grants.
    expect(held.valid).to.equal(true);
    const other = await MxfsClient.connect(d.socket);
    const h2 = await other.lock('new', PR);
    expect(h2.grant.mode).to.equal(PR);
    expect(d.proc.exitCode).to.equal(null);
    await other.close();
    await good.close();
  });

  it('a client that dies mid-frame (truncated frame) loses its locks to waiters', async () => {
    d = await startDaemon();
    const r = await raw(d.socket);
    r.send({ type: 'hello', id: 1, version: 1, client: 'trunc' });
    r.send({ type: 'lock', id: 2, lockId: 1, lockspace: 'default', resource: 't', mode: 5 });
    await waitFor(() => r.msgs.some((m) => m.type === 'reply' && m.id === 2 && m.ok), 20000, 'raw grant');
    const c = await MxfsClient.connect(d.socket);
    const p = c.lock('t', EX);
    r.s.write(Buffer.from([0, 0, 0, 50, 1, 2, 3]));
    r.s.destroy();
    expect((await p).grant.mode).to.equal(EX);
    await c.close();
  });

  it('a silent client is cut off after client_timeout_ms and its lock goes to the waiter', async () => {
    d = await startDaemon();
    const r = await raw(d.socket);
    r.send({ type: 'hello', id: 1, version: 1, client: 'silent' });
    // The daemon last hears the silent client when this lock request arrives, after t0.
    const t0 = Date.now();
    r.send({ type: 'lock', id: 2, lockId: 1, lockspace: 'default', resource: 's', mode: 5 });
    await waitFor(() => r.msgs.some((m) => m.type === 'reply' && m.id === 2 && m.ok), 20000, 'raw grant');
    const c = await MxfsClient.connect(d.socket);
    const h = await c.lock('s', EX);
    // Purged client_timeout_ms + keepalive = 1700 ms after it was last heard, never before
    // (how much later depends on the machine's load).
    expect(Date.now() - t0).to.be.at.least(1700 - 10); // - 10: two processes, clocks read to the ms
    await waitFor(() => r.isClosed(), 20000, 'silent client disconnected');
    await h.unlock();
    await c.close();
  });

  it('a client declares every lock lost when its daemon goes silent (SIGSTOP), before the lease could expire', async () => {
    d = await startDaemon();
    const c = await MxfsClient.connect(d.socket);
    const h = await c.lock('z', EX);
    const lost = new Promise<string>((r) => h.once('lost', r));
    d.proc.kill('SIGSTOP');
    expect(await lost).to.match(/no answer from mxfsd within 1500 ms/);
    d.proc.kill('SIGCONT');
    // The bound the client applies is below the lease (config rule), and LockHandle.valid
    // re-checks it at every use, so this does not depend on when the timer ran.
    expect(c.hello.lostAfterMs).to.be.below(3000); // lease_timeout_ms in the test config
    expect(h.valid).to.equal(false);
    let err: any;
    try { await h.convert(PR); } catch (e) { err = e; }
    expect(err?.code).to.equal('LOST');
  });

  it('a waiter paused while its grant is sent, purged, its lock granted to another: when it resumes its lock() fails LOST, never resolves', async () => {
    d = await startDaemon();
    const h = await MxfsClient.connect(d.socket, { name: 'H' });
    const hl = await h.lock('paused-grant', EX);
    const block = path.join(d.dir, 'block'), go = path.join(d.dir, 'go');
    // The waiter's pause is its event loop blocked in a timer callback (as by a long GC or a
    // starved CPU; a SIGSTOP leaves the order of timers and reads on resume to chance): when
    // it ends, the reads waiting in its socket are handled before its watchdog's next beat.
    const waiterScript = `
      const fs = require('node:fs');
      const { MxfsClient } = require(${JSON.stringify(path.join(ROOT, 'dist/src/client/client.js'))});
      MxfsClient.connect(process.argv[1], { name: 'paused' }).then(async (c) => {
        ${PAUSE_IN_TIMER}
        const r = await c.lock('paused-grant', 5).then(() => 'RESOLVED', (e) => 'REJECTED ' + e.code);
        process.stdout.write(r + '\\n');
        process.exit(0);
      });`;
    const w = spawn(process.execPath, ['-e', waiterScript, d.socket, block, go], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    w.stdout!.on('data', (x) => { out += x; });
    const exited = new Promise((r) => w.once('exit', r));
    const entry = async () => (await h.locks({ resource: 'paused-grant' })).resources[0];
    await waitFor(async () => (await entry()).waiting.length === 1, 20000, 'the waiter queued');
    fs.writeFileSync(block, '');
    await waitFor(() => out === 'blocked\n', 20000, 'the waiter blocked');
    await hl.unlock();
    // The grant is sent to the paused waiter (it sits in its socket), then the daemon purges
    // it as silent and a third client gets the lock.
    await waitFor(async () => (await entry())?.granted[0]?.client === 'paused', 20000, 'the grant sent to the paused waiter');
    const d3 = await MxfsClient.connect(d.socket, { name: 'D' });
    const dl = await d3.lock('paused-grant', EX);
    fs.writeFileSync(go, '');
    await exited;
    expect(out).to.equal('blocked\nREJECTED LOST\n');
    expect(dl.valid).to.equal(true);
    await d3.close();
    await h.close();
  });

  it('a holder paused while a BAST is sent to it, purged, its lock granted to the waiter: when it resumes it sees lost, never bast', async () => {
    d = await startDaemon();
    const block = path.join(d.dir, 'block'), go = path.join(d.dir, 'go');
    // The pause as in the test above: the event loop blocked in a timer callback, so the BAST
    // waiting in the socket is read before the watchdog's next beat.
    const holderScript = `
      const fs = require('node:fs');
      const { MxfsClient } = require(${JSON.stringify(path.join(ROOT, 'dist/src/client/client.js'))});
      MxfsClient.connect(process.argv[1], { name: 'paused' }).then(async (c) => {
        const h = await c.lock('paused-bast', 5);
        h.on('bast', () => process.stdout.write('BAST\\n'));
        h.on('lost', () => { process.stdout.write('LOST\\n'); setTimeout(() => process.exit(0), 50); });
        process.stdout.write('held\\n');
        ${PAUSE_IN_TIMER}
      });`;
    const hp = spawn(process.execPath, ['-e', holderScript, d.socket, block, go], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    hp.stdout!.on('data', (x) => { out += x; });
    const exited = new Promise((r) => hp.once('exit', r));
    await waitFor(() => out === 'held\n', 20000, 'the holder holds');
    fs.writeFileSync(block, '');
    await waitFor(() => out === 'held\nblocked\n', 20000, 'the holder blocked');
    const w = await MxfsClient.connect(d.socket, { name: 'W' });
    const wl = w.lock('paused-bast', EX);
    const entry = async () => (await w.locks({ resource: 'paused-bast' })).resources[0];
    // The BAST is sent while the paused holder still holds the lock (it sits in its socket);
    // then the daemon purges the holder and grants the waiter.
    await waitFor(async () => { const g = (await entry())?.granted[0]; return g?.client === 'paused' && g.bast !== undefined; }, 20000, 'the BAST sent to the paused holder');
    const held = await wl;
    fs.writeFileSync(go, '');
    await exited;
    expect(out).to.equal('held\nblocked\nLOST\n');
    expect(held.valid).to.equal(true);
    await w.close();
  });

  /** A fresh daemon (in `d`) and two clients of it. */
  const daemonAndTwoClients = async () => {
    d = await startDaemon();
    return [await MxfsClient.connect(d.socket), await MxfsClient.connect(d.socket)];
  };

  it('lock() and convert() with a signal aborted before the call fail CANCELLED without reaching the daemon; the lock keeps its mode', async () => {
    const [a, b] = await daemonAndTwoClients();
    const ha = await a.lock('ab', PR);
    const hb = await b.lock('ab', PR);
    const signal = AbortSignal.abort();
    let settled = false;
    const conv = hb.convert(EX, { signal }).then(() => 'granted', (e) => e.code).finally(() => { settled = true; });
    const req = b.lock('ab2', EX, { signal }).then(() => 'granted', (e) => e.code);
    // A round trip on the same connection: anything convert() sent would be queued by now.
    const q = (await b.locks({ resource: 'ab' })).resources[0];
    expect(settled, 'convert() with an aborted signal is still pending').to.equal(true);
    expect(await conv).to.equal('CANCELLED');
    expect(await req).to.equal('CANCELLED');
    expect(q.converting).to.have.length(0);
    expect(q.granted.map((g: any) => g.mode)).to.deep.equal(['PR', 'PR']);
    expect(hb.grant.mode).to.equal(PR);
    expect(hb.valid).to.equal(true);
    expect((await b.locks({ resource: 'ab2' })).resources).to.have.length(0);
    await ha.unlock();
    await hb.unlock();
    await a.close();
    await b.close();
  });

  it('two concurrent unlock()s of one handle: the second fails BUSY locally (and a convert() meanwhile), the first releases it', async () => {
    const [a, b] = await daemonAndTwoClients();
    for (const slow of [false, true]) {
      // slow: an LVB written from EX, so the daemon answers only once the master has it.
      const h = await a.lock('twice', EX);
      const first = h.unlock(slow ? { lvb: Buffer.from('v') } : {});
      const second = h.unlock().then(() => 'ok', (e) => `${e.code}: ${e.message}`);
      const conv = h.convert(PR).then(() => 'ok', (e) => e.code);
      expect(await second).to.equal('BUSY: lock default/twice is already being unlocked (an unlock() is waiting for its reply)');
      expect(await conv).to.equal('BUSY');
      await first;
      expect(h.released).to.equal(true);
      expect(await h.unlock().then(() => 'ok', (e) => e.code), 'an unlock after the release').to.equal('NOTFOUND');
      const hb = await b.lock('twice', EX, { noqueue: true });
      await hb.unlock();
    }
    // An unlock refused (here before sending) leaves the handle held and unlockable again.
    const h = await a.lock('again', PR);
    const bad = await h.unlock({ lvb: Buffer.alloc(64) }).then(() => 'ok', (e) => e.code);
    expect(bad).to.equal('INVALID');
    await h.unlock();
    expect(h.released).to.equal(true);
    await a.close();
    await b.close();
  });

  it('an LVB given to unlock() or convert() of a lock held below PW fails INVALID without sending; the lock and the LVB are unchanged', async () => {
    const [a, b] = await daemonAndTwoClients();
    const w = await a.lock('lvb-pr', EX);
    await w.unlock({ lvb: Buffer.from('v1') });
    for (const mode of [Mode.NL, Mode.CR, Mode.CW, PR]) {
      const h = await a.lock('lvb-pr', mode);
      const msg = new RegExp(`^lvb given, but lock default/lvb-pr is held in ${Mode[mode]}: a value block is written only from PW or EX$`);
      const u = await h.unlock({ lvb: Buffer.from('v2') }).then(() => undefined, (e) => e);
      expect(u?.code, Mode[mode]).to.equal('INVALID');
      expect(u?.message).to.match(msg);
      const c = await h.convert(EX, { lvb: Buffer.from('v2') }).then(() => undefined, (e) => e);
      expect(c?.code, Mode[mode]).to.equal('INVALID');
      expect(c?.message).to.match(msg);
      // Nothing reached the daemon: still held in its mode, no conversion.
      const q = (await b.locks({ resource: 'lvb-pr' })).resources[0];
      expect(q.granted.map((g: any) => g.mode)).to.deep.equal([Mode[mode]]);
      expect(q.converting).to.have.length(0);
      expect(h.valid).to.equal(true);
      await h.unlock();
    }
    const r = await b.lock('lvb-pr', EX);
    expect(r.grant.lvb.subarray(0, 2).toString()).to.equal('v1');
    // From PW or EX the value block is written, by a down-conversion or an unlock.
    await r.convert(PR, { lvb: Buffer.from('v3') });
    await r.unlock();
    expect((await a.lock('lvb-pr', PR)).grant.lvb.subarray(0, 2).toString()).to.equal('v3');
    await a.close();
    await b.close();
  });

  it('request ids wrap around after 2^32-1 requests, skipping one still in flight: the connection and its locks stay', async () => {
    const [a, b] = await daemonAndTwoClients();
    const ha = await a.lock('wrap', EX);
    const held = await b.lock('wrap-held', EX);
    const waiting = b.lock('wrap', EX);
    await waitFor(async () => (await a.locks({ resource: 'wrap' })).resources[0].waiting.length === 1, 10000, 'b waiting');
    const waitingId = Math.max(...(b as any).pending.keys());
    // A long-lived client near the end of the id range (2^32 requests take hours at full speed).
    (b as any).nextReq = 2 ** 32 - 2;
    for (let i = 0; i < waitingId + 2; i++) await b.status(); // ids 2^32-2, 2^32-1, then 1, 2, ... past the waiting one
    expect(held.valid).to.equal(true);
    await ha.unlock();
    const hw = await waiting;
    expect(hw.grant.mode).to.equal(EX);
    await hw.unlock();
    await held.unlock();
    await a.close();
    await b.close();
  });

  it('a BAST read together with the grant reaches the bast listener the holder adds once lock() resolves; the waiter gets the lock', async () => {
    // client_timeout_ms far above what the test takes: the holder's pause stays within the bound.
    d = await startDaemon({ extra: { timing: { client_timeout_ms: 20000, lease_timeout_ms: 60000 } } });
    const script = `
      const { MxfsClient } = require(${JSON.stringify(path.join(ROOT, 'dist/src/client/client.js'))});
      MxfsClient.connect(process.argv[1]).then(async (c) => {
        const h = await c.lock('together', ${PR});
        h.on('bast', (m) => { process.stdout.write('BAST ' + m + '\\n'); h.unlock().then(() => c.close()); });
      });`;
    const first = await MxfsClient.connect(d.socket);
    const h1 = await first.lock('together', EX);
    const child = spawn(process.execPath, ['-e', script, d.socket], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (x) => { out += x; });
    const queue = async () => (await first.locks({ resource: 'together' })).resources[0];
    await waitFor(async () => (await queue()).waiting.length === 1, 10000, 'the child waiting');
    child.kill('SIGSTOP');
    const third = await MxfsClient.connect(d.socket);
    let p3: Promise<any> | undefined;
    try {
      const grantLen = encodeFrame({ type: 'reply', id: 2, ok: true, grant: { mode: PR, token: 1, lvb: Buffer.alloc(32), lvbValid: false } }, 1 << 16).length;
      const bastLen = encodeFrame({ type: 'bast', lockId: 1, mode: EX }, 1 << 16).length;
      await h1.unlock();
      await waitFor(async () => (await unreadBytes(child.pid!)) >= grantLen, 10000, 'the grant in the child\'s socket');
      const before = await unreadBytes(child.pid!);
      p3 = third.lock('together', EX);
      await waitFor(async () => (await unreadBytes(child.pid!)) >= before + bastLen, 10000, 'the BAST in the child\'s socket');
    } finally {
      child.kill('SIGCONT');
    }
    const h3 = await p3!;           // the child heard the BAST and let go
    expect(out).to.match(new RegExp(`BAST ${EX}`));
    await h3.unlock();
    await third.close();
    await first.close();
    child.kill('SIGKILL');
  });

  it('SIGTERM: clean shutdown tells clients their locks are lost, removes the socket, exits 0', async () => {
    d = await startDaemon();
    const c = await MxfsClient.connect(d.socket);
    const h = await c.lock('q', EX);
    const lost = new Promise<string>((r) => h.once('lost', r));
    expect(await d.stop('SIGTERM')).to.equal(0);
    expect(await lost).to.match(/shutting down|closed/);
    expect(fs.existsSync(d.socket)).to.equal(false);
  });

  it('SIGHUP reopens the log file (logrotate)', async () => {
    d = await startDaemon();
    const log = path.join(d.dir, 'mxfsd.log');
    await waitFor(() => fs.existsSync(log) && fs.statSync(log).size > 0, 30000, 'log file');
    fs.renameSync(log, log + '.1');
    d.proc.kill('SIGHUP');
    // A liveness wait, not a timing check: the bound only has to end a run that is stuck.
    await waitFor(() => fs.existsSync(log) && /reopened/.test(fs.readFileSync(log, 'utf8')), 30000, 'reopened log');
    expect(d.proc.exitCode, 'the daemon is still running after the SIGHUP').to.equal(null);
  });

  it('fencing tokens keep increasing across a restart (kill -9 and start again), and a corrupt state file stops mxfsd', async () => {
    d = await startDaemon();
    const c = await MxfsClient.connect(d.socket);
    const t1 = (await c.lock('restart', EX)).grant.token;
    await d.stop('SIGKILL');
    d = await startDaemon({ dir: d.dir });
    const c2 = await MxfsClient.connect(d.socket);
    const t2 = (await c2.lock('restart', EX)).grant.token;
    expect(t2).to.be.greaterThan(t1);
    await c2.close();
    await d.stop('SIGTERM');
    fs.writeFileSync(path.join(d.dir, 'state', 'state.json'), '{"generation": "x"');
    const r = await run(process.execPath, [MXFSD, '--config', d.config]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/state file .*state\.json is unreadable/);
  });

  it('two daemons as the same node: the second refuses to start (exit 1, one line) while the first lives, and starts once it died', async () => {
    d = await startDaemon();
    // Same node id and state_dir, another socket and port.
    const twin = path.join(d.dir, 'twin.conf');
    fs.writeFileSync(twin, fs.readFileSync(d.config, 'utf8').replace(/socket = .*/, `socket = ${path.join(d.dir, 'twin.sock')}`) + '\n');
    const second = await run(process.execPath, [MXFSD, '--config', twin]);
    expect(second.code).to.equal(1);
    expect(second.stderr).to.equal(`mxfsd: cannot start: state_dir ${path.join(d.dir, 'state')} is in use by another mxfsd (pid ${d.proc.pid}); two daemons must not run as the same node\n`);
    expect(fs.existsSync(path.join(d.dir, 'twin.sock'))).to.equal(false);
    // kill -9 leaves no stale lock behind: the kernel released it with the process.
    await d.stop('SIGKILL');
    d = await startDaemon({ dir: d.dir });
    const c = await MxfsClient.connect(d.socket);
    expect((await c.lock('after', EX)).grant.mode).to.equal(EX);
    await c.close();
  });

  it('refuses to start on a socket a live daemon holds (exit 1), and on a bad config (exit 2, file:line key)', async () => {
    d = await startDaemon();
    // Same socket, another state_dir (another node): the socket is refused.
    const other = path.join(d.dir, 'other.conf');
    fs.writeFileSync(other, fs.readFileSync(d.config, 'utf8').replace(/state_dir = .*/, `state_dir = ${path.join(d.dir, 'state2')}`));
    const second = await run(process.execPath, [MXFSD, '--config', other]);
    expect(second.code).to.equal(1);
    expect(second.stderr).to.match(/^mxfsd: cannot start: socket .*mxfsd\.sock is in use by another mxfsd \(pid \d+\)/);
    expect(second.stderr.trim().split('\n')).to.have.length(1);
    const dir = tmpDir();
    const bad = path.join(dir, 'bad.conf');
    fs.writeFileSync(bad, `[node]\nid = 1\nsocket = ${dir}/s.sock\n\n[timing]\nlease_timout_ms = 5000\n`);
    const r = await run(process.execPath, [MXFSD, '--config', bad]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include(`${bad}:6`);
    expect(r.stderr).to.include('lease_timout_ms');
    expect(r.stderr).to.not.match(/\n\s+at /); // no stack trace
    const u = await run(process.execPath, [MXFSD, '--bogus']);
    expect(u.code).to.equal(2);
    expect(u.stderr).to.match(/usage: mxfsd/);
  });
});
