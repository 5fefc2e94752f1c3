/**
 * The daemon's read path: every client socket is read into one shared buffer
 * (src/util/socket-read.ts), so whatever outlives a read — a partial frame, a request's LVB —
 * must be a copy. FrameDecoder.pushRawTransient through a scribbled buffer; readIntoBuffer on an
 * accepted socket of this Node and its fallback; then a real mxfsd: frames split at every byte
 * and written in two writes, many frames in one write, an LVB written by one unlock and read
 * back by later locks after other reads went through the buffer.
 */
import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { MxfsClient } from '../src/client/client';
import { Mode } from '../src/dlm/modes';
import { readIntoBuffer } from '../src/util/socket-read';
import { encodeFrame, FrameDecoder } from '../src/wire/frame';
import { DaemonProc, startDaemon } from './support/daemon-proc';
import { rawClient } from './support/raw-client';

const { EX, PR } = Mode;

describe('FrameDecoder.pushRawTransient (payload views valid only during the call)', () => {
  it('hands out every payload whole, split at every byte boundary, from a buffer scribbled over after each read', () => {
    const msgs = [{ type: 'lock', id: 1, lockId: 1, lockspace: 'default', resource: 'a'.repeat(30), mode: EX }, { type: 'hb', seq: 4 }, { type: 'unlock', id: 2, lockId: 1, lvb: Buffer.alloc(32, 7) }];
    const frames = msgs.map((m) => encodeFrame(m, 1 << 20));
    const all = Buffer.concat(frames);
    const reused = Buffer.alloc(all.length);
    for (let cut = 1; cut < all.length; cut++) {
      const d = new FrameDecoder(1 << 20);
      const got: string[] = [];
      for (const piece of [all.subarray(0, cut), all.subarray(cut)]) {
        piece.copy(reused);
        d.pushRawTransient(reused.subarray(0, piece.length), (body) => got.push(body.toString('hex')));
        reused.fill(0xee);
      }
      expect(got, `cut at ${cut}`).to.deep.equal(frames.map((f) => f.subarray(4).toString('hex')));
      expect(d.pending).to.equal(0);
    }
  });
});

describe('readIntoBuffer', () => {
  it('on this Node, an accepted socket reads into the given buffer; the bytes arrive whole', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxfs-read-into-'));
    const p = path.join(dir, 's.sock');
    const buf = Buffer.alloc(16);
    const seen: Array<{ same: boolean; text: string }> = [];
    let fast: boolean | undefined;
    const srv = net.createServer({ pauseOnConnect: true }, (s) => {
      fast = readIntoBuffer(s, buf, (n, b) => { seen.push({ same: b === buf, text: b.toString('latin1', 0, n) }); return true; });
    });
    await new Promise<void>((r) => srv.listen(p, r));
    try {
      const c = net.connect(p);
      c.write('x'.repeat(40)); // more than the buffer: several reads
      await new Promise<void>((r) => { const t = setInterval(() => { if (seen.map((x) => x.text).join('').length >= 40) { clearInterval(t); r(); } }, 5); });
      c.destroy();
      expect(fast).to.equal(true);
      expect(seen.every((x) => x.same)).to.equal(true);
      expect(seen.map((x) => x.text).join('')).to.equal('x'.repeat(40));
    } finally {
      srv.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('without the socket internals it falls back to data events and passes each chunk the same way', () => {
    const fake = Object.assign(new EventEmitter(), { resumed: false, resume() { this.resumed = true; } });
    const got: string[] = [];
    const fast = readIntoBuffer(fake as unknown as net.Socket, Buffer.alloc(8), (n, b) => { got.push(b.toString('latin1', 0, n)); return true; });
    fake.emit('data', Buffer.from('abc'));
    expect(fast).to.equal(false);
    expect(fake.resumed).to.equal(true);
    expect(got).to.deep.equal(['abc']);
  });
});

describe('mxfsd reads every client socket into one buffer', function () {
  this.timeout(60000);
  let d: DaemonProc;
  afterEach(async () => { await d?.stop('SIGKILL'); });

  it('requests split at every byte boundary, and many in one write, are all answered', async () => {
    d = await startDaemon();
    const r = await rawClient(d.socket);
    r.send({ type: 'hello', id: 1, version: 1, client: 'split' });
    expect((await r.reply(1)).ok).to.equal(true);
    let id = 2;
    const pair = (lockId: number) => {
      const a = id++, b = id++;
      return { ids: [a, b], bytes: Buffer.concat([encodeFrame({ type: 'lock', id: a, lockId, lockspace: 'default', resource: `split.${lockId}`, mode: EX }, 1 << 20), encodeFrame({ type: 'unlock', id: b, lockId }, 1 << 20)]) };
    };
    const len = pair(0).bytes.length + 8;
    for (let cut = 1; cut < len; cut++) {
      const p = pair(cut);
      r.s.write(p.bytes.subarray(0, cut));
      await new Promise((res) => setTimeout(res, 1));
      r.s.write(p.bytes.subarray(cut));
      for (const x of p.ids) expect((await r.reply(x)).ok, `cut ${cut}`).to.equal(true);
    }
    const many = Array.from({ length: 50 }, (_, i) => pair(1000 + i));
    r.s.write(Buffer.concat(many.map((p) => p.bytes)));
    for (const p of many) for (const x of p.ids) expect((await r.reply(x)).ok).to.equal(true);
    expect(r.isClosed()).to.equal(false);
    r.s.destroy();
  });

  it('an LVB written by an unlock is the one later grants read, though more reads went through the buffer before the unlock was handled', async () => {
    d = await startDaemon();
    const r = await rawClient(d.socket);
    const b = await MxfsClient.connect(d.socket);
    try {
      r.send({ type: 'hello', id: 1, version: 1, client: 'lvb' });
      expect((await r.reply(1)).ok).to.equal(true);
      for (let k = 0; k < 5; k++) {
        const lvb = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 11 * k + 1) & 0xff));
        const id = 10 + 10 * k;
        r.send({ type: 'lock', id, lockId: id, lockspace: 'default', resource: 'lvb.res', mode: EX });
        expect((await r.reply(id)).ok).to.equal(true);
        // The unlock, then two frames that are refused alone (names too long) but fill more
        // than the daemon's 64 KiB read buffer: later reads write over the unlock's bytes
        // before its session handles it.
        const junk = (n: number) => encodeFrame({ type: 'locks', id: n, lockspace: 'x'.repeat(60000) }, 1 << 20);
        r.s.write(Buffer.concat([encodeFrame({ type: 'unlock', id: id + 1, lockId: id, lvb }, 1 << 20), junk(id + 2), junk(id + 3)]));
        expect((await r.reply(id + 1)).ok).to.equal(true);
        expect((await r.reply(id + 3)).code).to.equal('INVALID');
        const h = await b.lock('lvb.res', PR);
        expect(h.grant.lvbValid).to.equal(true);
        expect(h.grant.lvb.equals(lvb), `round ${k}`).to.equal(true);
        await h.unlock();
      }
      expect(r.isClosed()).to.equal(false);
    } finally {
      r.s.destroy();
      await b.close();
    }
  });
});
