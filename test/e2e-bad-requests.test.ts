/**
 * Bad and abusive clients against a real mxfsd process over its real Unix socket: a request
 * with a bad field fails alone (INVALID naming the field; the connection and its locks stay),
 * names that are not UTF-8 are refused instead of aliased, a connection that never says hello
 * is dropped, a flood of pipelined requests is answered (BUSY beyond the bound), and a client
 * that floods without reading cannot make the daemon buffer without bound.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { MxfsClient } from '../src/client/client';
import { Mode } from '../src/dlm/modes';
import { LockError } from '../src/dlm/types';
import { encodeFrame } from '../src/wire/frame';
import { DaemonProc, freePort, mxfsctl, rssKiB, sleep, startDaemon, waitFor } from './support/daemon-proc';
import { rawClient as raw } from './support/raw-client';

const { NL, EX } = Mode;

/**
 * Timing for the tests with a bystander: its lock must survive the abuse, and it is lost only
 * if the daemon cuts or forgets its session or stops answering for 20 s, not because a loaded
 * machine answered a heartbeat late (the mocha process decodes the flood's replies too).
 */
const PATIENT = { client_keepalive_ms: 1000, client_timeout_ms: 20000, lease_timeout_ms: 30000, renew_interval_ms: 500 };

/** A frame whose string 'Q'... placeholder is replaced by raw bytes (same length). */
function patched(m: unknown, placeholder: string, bytes: number[]): Buffer {
  const f = encodeFrame(m, 1 << 20);
  const at = f.indexOf(Buffer.from(placeholder));
  expect(at).to.be.greaterThan(0);
  expect(bytes).to.have.length(placeholder.length);
  Buffer.from(bytes).copy(f, at);
  return f;
}

/** Resolves once the metrics endpoint on `port` accepts connections. */
function metricsListening(port: number): Promise<void> {
  return waitFor(() => new Promise<boolean>((r) => {
    const p = net.createConnection(port, '127.0.0.1');
    p.once('connect', () => { p.destroy(); r(true); });
    p.once('error', () => r(false));
  }), 20000, 'the metrics listener');
}

/** A raw TCP connection to the metrics endpoint that keeps what it reads, once connected. */
function httpConn(port: number): Promise<{ s: net.Socket; got: () => string; closed: () => boolean }> {
  return new Promise((resolve) => {
    const s = net.createConnection(port, '127.0.0.1');
    let got = '';
    let closed = false;
    s.on('data', (c) => { got += c; });
    s.on('close', () => { closed = true; });
    s.on('error', () => {});
    s.once('connect', () => resolve({ s, got: () => got, closed: () => closed }));
  });
}

describe('mxfsd end to end: bad and abusive clients', function () {
  this.timeout(60000);
  let d: DaemonProc;
  afterEach(async () => { await d?.stop('SIGKILL'); });

  it('a request with a bad field fails alone: INVALID naming the field; the connection and its locks stay', async () => {
    d = await startDaemon();
    const r = await raw(d.socket);
    r.send({ type: 'hello', id: 1, version: 1, client: 'clumsy' });
    r.send({ type: 'lock', id: 2, lockId: 1, lockspace: 'default', resource: 'held', mode: EX });
    expect((await r.reply(2)).ok).to.equal(true);
    const lock = { type: 'lock', lockId: 2, lockspace: 'default', resource: 'x', mode: EX };
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...lock, resource: 'y'.repeat(65) }, /field 'resource' is 65 bytes; the limit is 64/],
      [{ ...lock, resource: '' }, /field 'resource' must be a non-empty string/],
      [{ ...lock, resource: 'a\0b' }, /field 'resource' contains a NUL byte/],
      [{ ...lock, lockspace: 7 }, /field 'lockspace' must be a non-empty string/],
      [{ ...lock, mode: 9 }, /field 'mode' must be a lock mode/],
      [{ ...lock, lockId: -1 }, /field 'lockId' must be an integer/],
      [{ ...lock, timeoutMs: 'soon' }, /field 'timeoutMs' must be an integer/],
      [{ type: 'convert', lockId: 1, mode: EX, noqueue: 'yes' }, /field 'noqueue' must be a boolean/],
      [{ type: 'unlock', lockId: 1, lvb: 'text' }, /field 'lvb' must be binary/],
      [{ type: 'unlock', lockId: 1, lvb: Buffer.alloc(33) }, /field 'lvb' is 33 bytes; the lock value block is 32 bytes \(\[locking\] lvb_size\)/],
      [{ type: 'convert', lockId: 1, mode: Mode.PR, lvb: Buffer.alloc(4096) }, /field 'lvb' is 4096 bytes/],
      [{ type: 'locks', resource: 'z'.repeat(100) }, /field 'resource' is 100 bytes/],
      [{ type: 'volumes-please' }, /unknown request type "volumes-please"/],
    ];
    let id = 10;
    for (const [req, re] of cases) {
      const rid = id++;
      r.send({ ...req, id: rid });
      const rep = await r.reply(rid);
      expect(rep, JSON.stringify(req).slice(0, 80)).to.include({ ok: false, code: 'INVALID' });
      expect(rep.message).to.match(re);
    }
    expect(r.isClosed()).to.equal(false);
    expect(r.msgs.filter((m) => m.type === 'lost')).to.deep.equal([]);
    // The lock is still held (the refused unlock and conversion changed nothing) ...
    const other = await MxfsClient.connect(d.socket);
    const q = await other.locks({ resource: 'held' });
    expect(q.resources[0].granted.map((l: any) => [l.client, l.mode])).to.deep.equal([['clumsy', 'EX']]);
    // ... and the same connection goes on working.
    r.send({ type: 'unlock', id: 99, lockId: 1, lvb: Buffer.from('v1') });
    expect((await r.reply(99)).ok).to.equal(true);
    expect((await other.lock('held', EX)).grant.lvb.subarray(0, 2).toString()).to.equal('v1');
    // The client library refuses the same mistakes before sending anything.
    for (const [f, re] of [
      [() => other.lock('y'.repeat(65), EX), /resource is 65 bytes/],
      [() => other.lock('', EX), /resource must be a non-empty string/],
      [() => other.lock('a\0b', EX), /resource contains a NUL byte/],
      [() => other.lock('a\ud800', EX), /resource is not valid Unicode/],
      [() => other.lock('ok', EX, { lockspace: 'l'.repeat(65) }), /lockspace is 65 bytes/],
    ] as Array<[() => Promise<unknown>, RegExp]>) {
      const e = await f().then(() => undefined, (x) => x as LockError);
      expect(e?.code).to.equal('INVALID');
      expect(e?.message).to.match(re);
    }
    const h = await other.lock('lvb-check', EX);
    const e = await h.unlock({ lvb: Buffer.alloc(33) }).then(() => undefined, (x) => x as LockError);
    expect([e?.code, e?.message]).to.deep.equal(['INVALID', "lvb is 33 bytes; the daemon's lock value block is 32 bytes"]);
    expect(h.valid).to.equal(true);
    await other.close();
  });

  it('names are UTF-8: invalid bytes and encoded surrogates are refused, not aliased to U+FFFD', async () => {
    d = await startDaemon();
    const r = await raw(d.socket);
    r.send({ type: 'hello', id: 1, version: 1, client: 'bytes' });
    expect((await r.reply(1)).ok).to.equal(true);
    const badBytes: number[][] = [[0x61, 0xff, 0x61], [0x61, 0xc3, 0x28], [0xed, 0xa0, 0x80], [0xc0, 0x80, 0x61], [0x61, 0x80, 0x61]];
    let id = 10;
    for (const bytes of badBytes) {
      const rid = id++;
      r.s.write(patched({ type: 'lock', id: rid, lockId: rid, lockspace: 'default', resource: 'QQQ', mode: EX }, 'QQQ', bytes));
      const rep = await r.reply(rid);
      expect(rep, bytes.join(',')).to.include({ ok: false, code: 'INVALID', message: "field 'resource' is not valid UTF-8" });
    }
    r.s.write(patched({ type: 'lock', id: 50, lockId: 50, lockspace: 'LLL', resource: 'r', mode: EX }, 'LLL', [0x4c, 0xfe, 0x4c]));
    expect(await r.reply(50)).to.include({ ok: false, code: 'INVALID', message: "field 'lockspace' is not valid UTF-8" });
    // A real U+FFFD (EF BF BD) is a valid name of its own.
    r.s.write(patched({ type: 'lock', id: 60, lockId: 60, lockspace: 'default', resource: 'aQQQ', mode: EX }, 'QQQ', [0xef, 0xbf, 0xbd]));
    expect((await r.reply(60)).ok).to.equal(true);
    const c = await MxfsClient.connect(d.socket);
    const e = await c.lock('a\ufffd', EX, { noqueue: true }).then(() => undefined, (x) => x as LockError);
    expect(e?.code).to.equal('NOTQUEUED');
    expect(r.isClosed()).to.equal(false);
    await c.close();
  });

  it('a second hello is a protocol error: answered PROTOCOL, told lost, cut, its locks released; a bystander keeps its lock', async () => {
    d = await startDaemon({ extra: { timing: PATIENT } });
    const bystander = await MxfsClient.connect(d.socket, { name: 'bystander' });
    const kept = await bystander.lock('kept', EX);
    const r = await raw(d.socket);
    r.send({ type: 'hello', id: 1, version: 1, client: 'twice' });
    expect((await r.reply(1)).ok).to.equal(true);
    r.send({ type: 'lock', id: 2, lockId: 1, lockspace: 'default', resource: 'taken', mode: EX });
    expect((await r.reply(2)).ok).to.equal(true);
    r.send({ type: 'hello', id: 3, version: 1, client: 'someone-else' });
    expect(await r.reply(3)).to.include({ ok: false, code: 'PROTOCOL', message: 'protocol error: hello was already said on this connection' });
    await waitFor(() => r.isClosed(), 20000, 'connection closed after the second hello');
    expect(r.msgs.filter((m) => m.type === 'lost').map((m) => m.reason)).to.deep.equal(['protocol error: hello was already said on this connection']);
    // Its lock is released: another client gets it (it waits only until the purge).
    const h = await bystander.lock('taken', EX, { timeoutMs: 20000 });
    expect(kept.valid).to.equal(true);
    await h.unlock();
    await bystander.close();
  });

  it('a hello whose client name is empty or has control characters is refused INVALID naming the field; a good hello then works', async () => {
    d = await startDaemon();
    const r = await raw(d.socket);
    const cases: Array<[unknown, RegExp]> = [
      ['', /field 'client' must be a non-empty string/],
      ['a\0b', /field 'client' contains a control character/],
      ['evil\nmxfsd: fake log line', /field 'client' contains a control character/],
      ['\x1b[2J', /field 'client' contains a control character/],
      ['a\u0085b', /field 'client' contains a control character/],
      [7, /field 'client' must be a non-empty string/],
    ];
    let id = 1;
    for (const [client, re] of cases) {
      const rid = id++;
      r.send({ type: 'hello', id: rid, version: 1, client });
      const rep = await r.reply(rid);
      expect(rep, JSON.stringify(client)).to.include({ ok: false, code: 'INVALID' });
      expect(rep.message).to.match(re);
    }
    expect(r.isClosed()).to.equal(false);
    // A long name is cut to 128 characters, never inside a surrogate pair.
    r.send({ type: 'hello', id: 50, version: 1, client: `${'n'.repeat(127)}\u{1F512}tail` });
    expect((await r.reply(50)).ok).to.equal(true);
    r.send({ type: 'lock', id: 51, lockId: 1, lockspace: 'default', resource: 'named', mode: EX });
    expect((await r.reply(51)).ok).to.equal(true);
    const c = await MxfsClient.connect(d.socket);
    const q = await c.locks({ resource: 'named' });
    expect(q.resources[0].granted[0].client).to.equal(`${'n'.repeat(127)}\u{1F512}`);
    await c.close();
    // The client library refuses such a name before sending its hello.
    for (const name of ['', 'x\ty']) {
      const e = await MxfsClient.connect(d.socket, { name }).then(() => undefined, (x) => x as LockError);
      expect(e?.code, JSON.stringify(name)).to.equal('INVALID');
      expect(e?.message).to.match(/^name (must be a non-empty string|contains a control character)/);
    }
  });

  it('a connection that never says hello is dropped after client_timeout_ms, even if it sends heartbeats', async () => {
    d = await startDaemon(); // client_timeout_ms 1500
    const silent = await raw(d.socket);
    const beating = await raw(d.socket);
    const beat = setInterval(() => beating.send({ type: 'hb', seq: 1 }), 100);
    try {
      await waitFor(() => silent.isClosed() && beating.isClosed(), 20000, 'connections without hello dropped');
    } finally {
      clearInterval(beat);
    }
    const c = await MxfsClient.connect(d.socket);
    expect((await c.status()).clients).to.equal(1);
    await c.close();
  });

  it('a connection beyond max_clients is told why (naming the key) and closed; the admitted clients keep their locks', async () => {
    d = await startDaemon({ extra: { locking: { max_clients: 2 }, timing: PATIENT } });
    // Admitted once the daemon has seen startDaemon's probe connection close.
    let holder: MxfsClient | undefined;
    await waitFor(async () => { holder = await MxfsClient.connect(d.socket, { name: 'holder' }).catch(() => undefined); return holder !== undefined; }, 20000, 'holder admitted');
    const h = await holder!.lock('kept', EX);
    const idle = await raw(d.socket);
    idle.send({ type: 'hello', id: 1, version: 1, client: 'idle' });
    expect((await idle.reply(1)).ok).to.equal(true);

    const extra = await raw(d.socket);
    await waitFor(() => extra.isClosed(), 20000, 'the third connection closed');
    expect(extra.msgs).to.have.length(1);
    expect(extra.msgs[0].type).to.equal('lost');
    expect(extra.msgs[0].reason).to.match(/already has 2 client connections.*\[locking\] max_clients/);
    const e = await MxfsClient.connect(d.socket).then(() => undefined, (err: LockError) => err);
    expect(e?.message).to.match(/\[locking\] max_clients/);
    const ctl = await mxfsctl(['--socket', d.socket, 'status']);
    expect(ctl.code).to.equal(4);
    expect(ctl.stderr).to.match(/^mxfsctl: cannot reach mxfsd: mxfsd on node 1 already has 2 client connections.*max_clients/);

    // A slot freed is a slot to use; the holder never noticed anything.
    idle.s.destroy();
    let next: MxfsClient | undefined;
    await waitFor(async () => { next = await MxfsClient.connect(d.socket).catch(() => undefined); return next !== undefined; }, 20000, 'a freed slot');
    expect((await next!.status()).clients).to.equal(2);
    expect(h.valid).to.equal(true);
    await next!.close();
    await h.unlock();
    await holder!.close();
  });

  it('a flood of pipelined inspection requests: every one answered (BUSY beyond the bound), no cut, a bystander keeps its lock', async () => {
    d = await startDaemon({ extra: { locking: { max_requests_per_client: 16 }, timing: PATIENT } });
    const bystander = await MxfsClient.connect(d.socket);
    const held = await bystander.lock('bystander', EX);
    let lost = false;
    held.once('lost', () => { lost = true; });
    const r = await raw(d.socket);
    r.send({ type: 'hello', id: 1, version: 1, client: 'flood' });
    await r.reply(1);
    const N = 20000;
    const frames: Buffer[] = [];
    for (let i = 0; i < N; i++) frames.push(encodeFrame({ type: i % 2 ? 'locks' : 'status', id: 100 + i }, 1 << 16));
    r.s.write(Buffer.concat(frames));
    await waitFor(() => r.msgs.filter((m) => m.type === 'reply').length >= N + 1 || r.isClosed(), 50000, 'all replies');
    expect(r.isClosed()).to.equal(false);
    const replies = r.msgs.filter((m) => m.type === 'reply' && m.id >= 100);
    expect(replies).to.have.length(N);
    const busy = replies.filter((m) => !m.ok);
    for (const m of busy) expect(m).to.include({ code: 'BUSY' });
    // Each BUSY names its bound: requests in flight, or (on a slow reader) replies not read yet.
    for (const m of busy) expect(m.message).to.match(/max_requests_per_client|max_client_output_bytes/);
    expect(lost).to.equal(false);
    expect(held.valid).to.equal(true);
    await bystander.close();
  });

  it('a client that floods without reading: the daemon stops reading it instead of buffering; memory stays bounded', async () => {
    d = await startDaemon({ extra: { timing: PATIENT } });
    const bystander = await MxfsClient.connect(d.socket);
    const held = await bystander.lock('bystander', EX);
    let lost = false;
    held.once('lost', () => { lost = true; });
    const rss0 = rssKiB(d.proc.pid!);
    const s = net.createConnection(d.socket);
    await new Promise((res) => s.once('connect', res));
    s.on('error', () => {});
    s.pause(); // never reads a reply
    s.write(encodeFrame({ type: 'hello', id: 1, version: 1, client: 'deaf' }, 1 << 16));
    const frame = encodeFrame({ type: 'locks', id: 2 }, 1 << 16);
    const chunk = Buffer.concat(Array.from({ length: 4096 }, () => frame));
    // Write until the socket pushes back for good: the daemon has stopped reading.
    let written = 0;
    for (let i = 0; i < 2000 && !s.destroyed; i++) {
      if (!s.write(chunk)) {
        const drained = await Promise.race([new Promise((res) => s.once('drain', () => res(true))), sleep(3000).then(() => false)]);
        if (!drained) break;
      }
      written += chunk.length;
    }
    const rss1 = rssKiB(d.proc.pid!);
    if (process.env.MXFS_TEST_VERBOSE) console.log({ written, rss0, rss1 });
    expect(written, 'bytes the daemon accepted before it stopped reading').to.be.below(32 * 1024 * 1024);
    expect(rss1 - rss0, 'daemon memory growth (KiB)').to.be.below(128 * 1024);
    const st = await bystander.status();
    expect(st.admission.requestsInFlight).to.be.at.most(1024);
    expect(lost).to.equal(false);
    expect(held.valid).to.equal(true);
    s.destroy();
    await bystander.close();
  });

  it('the client library bounds what it queues for a daemon that stopped reading: requests beyond maxUnsentBytes fail BUSY, unlocks still go', async () => {
    d = await startDaemon({ extra: { timing: PATIENT } });
    const bound = 256 * 1024;
    const c = await MxfsClient.connect(d.socket, { name: 'flooder', maxUnsentBytes: bound });
    const kept = await c.lock('kept', EX);
    const lowered = await c.lock('lowered', EX);
    d.proc.kill('SIGSTOP');
    const outcomes: Array<Promise<string>> = [];
    let busy: LockError | undefined;
    try {
      // Batches of 1000 until one request is refused; without a bound none ever is.
      for (let i = 0; busy === undefined && i < 400_000; i += 1000) {
        for (let j = i; j < i + 1000; j++) {
          outcomes.push(c.lock(`flood-${j}`, EX, { noqueue: true }).then(
            (h) => h.unlock().then(() => 'granted'),
            (e: LockError) => { if (e.code === 'BUSY' && /not sent yet/.test(e.message)) busy ??= e; return e.code; },
          ));
        }
        await new Promise((r) => setImmediate(r));
      }
      expect(busy?.message).to.match(/^\d+ bytes of requests to mxfsd are not sent yet \(more than maxUnsentBytes, 262144\): mxfsd is not reading them; wait for replies, then retry$/);
      // Only what fits the bound and the kernel's socket buffer was queued (a lock frame is ~90 bytes).
      const refusedAt = outcomes.length;
      expect(refusedAt, 'requests issued before the first refusal').to.be.below(60_000);
      // An unlock is queued all the same (it releases what the client holds), and so is a
      // down-conversion (a BAST handler's way of letting a waiter in).
      const unlocked = kept.unlock();
      const down = lowered.convert(NL);
      d.proc.kill('SIGCONT');
      await unlocked;
      expect((await down).mode).to.equal(NL);
      await lowered.unlock();
      const codes = await Promise.all(outcomes);
      // Every request settled: granted, or refused BUSY (here, or by the daemon's per-connection bound); none lost.
      expect(new Set(codes.filter((x) => x !== 'granted' && x !== 'BUSY'))).to.deep.equal(new Set());
      expect(codes.filter((x) => x === 'granted').length).to.be.greaterThan(0);
      expect(c.alive).to.equal(true);
      // And the connection goes on working.
      await (await c.lock('after', EX)).unlock();
    } finally {
      d.proc.kill('SIGCONT');
    }
    await c.close();
  });

  it('the metrics endpoint has its own connection cap: connections beyond [metrics] max_connections are closed at once, unread', async () => {
    const port = await freePort();
    d = await startDaemon({ extra: { timing: PATIENT, metrics: { enabled: 'true', port, max_connections: 4 } } });
    await metricsListening(port);
    // Twelve connections at once, then a request on each: at most four are served.
    const conns = await Promise.all(Array.from({ length: 12 }, () => httpConn(port)));
    for (const c of conns) c.s.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
    const answered = (got: string) => {
      const at = got.indexOf('\r\n\r\n');
      const len = /content-length: (\d+)/i.exec(got.slice(0, at));
      return at >= 0 && len !== null && Buffer.byteLength(got.slice(at + 4)) >= Number(len[1]);
    };
    await waitFor(() => conns.every((c) => c.closed() || answered(c.got())), 30000, 'every connection answered or closed');
    const served = conns.filter((c) => c.got().startsWith('HTTP/1.1 200'));
    const dropped = conns.filter((c) => c.closed() && c.got() === '');
    expect(served.length, 'served').to.be.within(1, 4);
    expect(dropped.length, 'closed unanswered').to.equal(12 - served.length);
    for (const c of conns) c.s.destroy();
    // Once they are gone, a scraper is served again.
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.status, () => 0)) === 200, 20000, 'a scrape after the others closed');
    expect(fs.readFileSync(path.join(d.dir, 'mxfsd.log'), 'utf8')).to.match(/a connection beyond \[metrics\] max_connections \(4\) closed/);
  });

  it('a metrics client that pipelines requests is cut off: one render per connection at a time, not one per request', async () => {
    // Each render of /metrics runs on the lock engine's thread (~5 ms); a client writing
    // thousands of pipelined GETs without reading used to get them all rendered, one after
    // the other, stalling the engine for seconds (the node muted itself and its clients lost
    // their locks). Now a second request while one is being answered closes the connection.
    const port = await freePort();
    d = await startDaemon({ extra: { timing: PATIENT, metrics: { enabled: 'true', port } } });
    const bystander = await MxfsClient.connect(d.socket, { name: 'bystander' });
    const held = await bystander.lock('kept', EX);
    // The client socket is up before the metrics listener: wait for the listener.
    await metricsListening(port);
    const pipelining = await httpConn(port);
    pipelining.s.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(2000));
    await waitFor(() => pipelining.closed(), 60000, 'the daemon closes the pipelining connection');
    expect(pipelining.got().split('HTTP/1.1 200 OK').length - 1, 'responses rendered for the pipelining client').to.be.at.most(1);
    // A well-behaved scraper (one request at a time, keep-alive) is served as before.
    const scraper = net.createConnection(port, '127.0.0.1');
    let text = '';
    scraper.on('data', (c) => { text += c; });
    await new Promise((r) => scraper.once('connect', r));
    for (let i = 1; i <= 3; i++) {
      scraper.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
      await waitFor(() => text.split('mxfs_clients ').length - 1 >= i, 20000, `scrape ${i}`);
    }
    expect(scraper.destroyed).to.equal(false);
    scraper.destroy();
    expect(held.valid).to.equal(true);
    await held.unlock();
    await bystander.close();
  });

  it('a frame that cuts the connection is logged once: no second warning that the client closed mid-frame', async () => {
    // The daemon's own cut left the rest of the bad read in the decoder, and the close that
    // followed was logged as the client's truncated frame: a false second warning.
    d = await startDaemon();
    const bad = async (frame: Buffer) => {
      const r = await raw(d.socket);
      r.send({ type: 'hello', id: 1, version: 1, client: 'bad' });
      await r.reply(1);
      r.s.write(frame);
      await waitFor(() => r.isClosed(), 20000, 'the daemon cuts the connection');
    };
    await bad(Buffer.from([0, 0, 0, 0, 0, 0, 0, 9, 1, 2]));
    await bad(Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 2, 3]));
    const log = path.join(d.dir, 'mxfsd.log');
    // A third client's bad frame is logged after the first two connections' close events.
    await bad(Buffer.from([0, 0, 0, 0]));
    await waitFor(() => fs.readFileSync(log, 'utf8').split('\n').filter((l) => l.includes('bad frame from client')).length === 3, 20000, 'three cut-offs logged');
    const lines = fs.readFileSync(log, 'utf8').split('\n');
    expect(lines.filter((l) => l.includes('closed mid-frame'))).to.deep.equal([]);
  });
});
