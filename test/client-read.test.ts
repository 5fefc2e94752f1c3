/**
 * The client's read path: every read of the Unix socket lands in one reused buffer (net.connect's
 * `onread`), so a decoded message and a frame split across reads must not keep views of it.
 * FrameDecoder.pushTransient with a buffer scribbled over after every call (frames split at every
 * byte, several frames in one read, binary values inside), then the real socket transport against
 * a fake daemon (a frame larger than the read buffer, binary data checked after later reads, bad
 * frames cutting the connection with one clear reason).
 */
import { expect } from 'chai';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CLIENT_READ_BUFFER_BYTES, LockError, MxfsClient } from '../src/client/client';
import { encodeFrame, FrameDecoder, FrameError } from '../src/wire/frame';

/** Feeds `pieces` through one reused buffer, scribbled over after each call, as the socket does. */
function feedReused(d: FrameDecoder, pieces: Buffer[], out: unknown[]): void {
  const reused = Buffer.alloc(Math.max(...pieces.map((p) => p.length)));
  for (const p of pieces) {
    p.copy(reused);
    d.pushTransient(reused.subarray(0, p.length), (v) => out.push(v));
    reused.fill(0xee);
  }
}

describe('FrameDecoder.pushTransient (bytes valid only during the call)', () => {
  const msgs = [
    { type: 'reply', id: 1, ok: true, grant: { mode: 5, token: 9, lvb: Buffer.from('0123456789abcdef'), lvbValid: true } },
    { type: 'hb', ack: 3 },
    { type: 'reply', id: 2, ok: true, data: { blob: Buffer.alloc(300, 0x5a), text: 'x'.repeat(40) } },
  ];
  const all = Buffer.concat(msgs.map((m) => encodeFrame(m, 1 << 20)));

  it('decodes frames split at every byte boundary, keeping partial frames and binary values intact', () => {
    for (let cut = 1; cut < all.length; cut++) {
      const d = new FrameDecoder(1 << 20);
      const out: unknown[] = [];
      feedReused(d, [all.subarray(0, cut), all.subarray(cut)], out);
      expect(out, `cut at ${cut}`).to.deep.equal(msgs);
      expect(d.pending).to.equal(0);
    }
  });

  it('decodes every frame of one read, and frames delivered a byte at a time', () => {
    const d = new FrameDecoder(1 << 20);
    const out: unknown[] = [];
    feedReused(d, [Buffer.concat([all, all])], out);
    expect(out).to.deep.equal([...msgs, ...msgs]);
    const bytes: Buffer[] = [];
    for (let i = 0; i < all.length; i++) bytes.push(all.subarray(i, i + 1));
    const one: unknown[] = [];
    feedReused(new FrameDecoder(1 << 20), bytes, one);
    expect(one).to.deep.equal(msgs);
  });

  it('refuses a zero-length, oversized or undecodable frame with FrameError, after the whole frames before it', () => {
    const good = encodeFrame({ type: 'hb', ack: 1 }, 100);
    for (const [bad, re] of [[Buffer.from([0, 0, 0, 0]), /zero-length/], [Buffer.from([0, 0, 0, 101]), /exceeds the limit of 100/], [Buffer.from([0, 0, 0, 1, 0x81]), /undecodable/]] as const) {
      const out: unknown[] = [];
      expect(() => new FrameDecoder(100).pushTransient(Buffer.concat([good, bad]), (v) => out.push(v))).to.throw(FrameError, re);
      expect(out).to.deep.equal([{ type: 'hb', ack: 1 }]);
    }
  });
});

/** A fake mxfsd on a Unix socket: answers hello, then lets the test write what it likes. */
async function fakeDaemon(): Promise<{ path: string; conn: Promise<net.Socket>; requests: Array<{ type: string; id: number }>; close(): void }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxfs-client-read-'));
  const p = path.join(dir, 'mxfsd.sock');
  const requests: Array<{ type: string; id: number }> = [];
  let gotConn!: (s: net.Socket) => void;
  const conn = new Promise<net.Socket>((r) => { gotConn = r; });
  const srv = net.createServer((s) => {
    const dec = new FrameDecoder(1 << 20);
    s.on('data', (chunk) => {
      for (const m of dec.push(chunk) as Array<{ type: string; id: number }>) {
        requests.push(m);
        if (m.type === 'hello') {
          s.write(encodeFrame({ type: 'reply', id: m.id, ok: true, data: { node: 1, nodeName: 'n1', version: 1, session: 1, keepaliveMs: 60000, lostAfterMs: 600000, lvbSize: 32, maxFrameBytes: 1 << 24 } }, 1 << 20));
          gotConn(s);
        }
      }
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => srv.listen(p, r));
  return { path: p, conn, requests, close: () => { srv.close(); fs.rmSync(dir, { recursive: true, force: true }); } };
}

const until = async (cond: () => boolean) => { while (!cond()) await new Promise((r) => setImmediate(r)); };
const statusIds = (reqs: Array<{ type: string; id: number }>) => reqs.filter((r) => r.type === 'status').map((r) => r.id);

describe('client socket transport (reads into one reused buffer)', () => {
  it('a reply larger than the read buffer, the frames after it in the same write and in later writes, all intact', async () => {
    const fd = await fakeDaemon();
    const c = await MxfsClient.connect(fd.path);
    try {
      const s = await fd.conn;
      const big = Buffer.alloc(3 * CLIENT_READ_BUFFER_BYTES + 123);
      for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
      const replies = [c.status(), c.status(), c.status()];
      await until(() => statusIds(fd.requests).length === 3);
      const [a, b, d] = statusIds(fd.requests);
      // The big frame and a small one in one write; the third frame split into two later writes.
      s.write(Buffer.concat([encodeFrame({ type: 'reply', id: a, ok: true, data: { blob: big } }, 1 << 20), encodeFrame({ type: 'reply', id: b, ok: true, data: { blob: Buffer.alloc(1000, 0xab) } }, 1 << 20)]));
      const third = encodeFrame({ type: 'reply', id: d, ok: true, data: { blob: Buffer.alloc(2000, 0xcd) } }, 1 << 20);
      await replies[1];
      s.write(third.subarray(0, 999));
      await new Promise((r) => setImmediate(r));
      s.write(third.subarray(999));
      const [ra, rb, rd] = await Promise.all(replies);
      expect(Buffer.compare(ra.blob, big)).to.equal(0);
      // Checked after the later reads wrote over the read buffer: the values are copies.
      expect(rb.blob.equals(Buffer.alloc(1000, 0xab))).to.equal(true);
      expect(rd.blob.equals(Buffer.alloc(2000, 0xcd))).to.equal(true);
      // A frame that arrives whole in one read, then another read: the first's binary value is a copy.
      const answer = async (fill: number) => {
        const r = c.status();
        const n = statusIds(fd.requests).length;
        await until(() => statusIds(fd.requests).length === n + 1);
        s.write(encodeFrame({ type: 'reply', id: statusIds(fd.requests)[n], ok: true, data: { blob: Buffer.alloc(1000, fill) } }, 1 << 20));
        return (await r).blob as Buffer;
      };
      const first = await answer(0x11);
      await answer(0x22);
      expect(first.equals(Buffer.alloc(1000, 0x11))).to.equal(true);
    } finally {
      await c.close();
      fd.close();
    }
  });

  for (const [what, bytes, reason] of [
    ['a zero-length frame', Buffer.from([0, 0, 0, 0]), /^connection to mxfsd closed: bad data from mxfsd: zero-length frame$/],
    ['an undecodable frame', Buffer.from([0, 0, 0, 1, 0x81]), /^connection to mxfsd closed: bad data from mxfsd: undecodable frame/],
    ['a message of an unknown type', encodeFrame({ type: 'nonsense', id: 1 }, 100), /^connection to mxfsd closed: bad data from mxfsd: .*unknown message type/],
    ['a grant without its lvb', encodeFrame({ type: 'reply', id: 2, ok: true, grant: { mode: 5, token: 1, lvbValid: false } }, 100), /^connection to mxfsd closed: bad data from mxfsd: .*grant lvb missing/],
  ] as const) {
    it(`${what} from the daemon: the client is lost with one clear reason and its request fails LOST`, async () => {
      const fd = await fakeDaemon();
      const c = await MxfsClient.connect(fd.path);
      try {
        const s = await fd.conn;
        const lost: string[] = [];
        c.on('lost', (r: string) => lost.push(r));
        const pending = c.status();
        await until(() => statusIds(fd.requests).length === 1);
        s.write(bytes);
        const err = await pending.then(() => undefined, (e: unknown) => e);
        expect(err).to.be.instanceOf(LockError);
        expect((err as LockError).code).to.equal('LOST');
        expect(lost).to.have.length(1);
        expect(lost[0]).to.match(reason);
        expect(c.alive).to.equal(false);
      } finally {
        await c.close();
        fd.close();
      }
    });
  }
});
