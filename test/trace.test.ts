/**
 * The trace facility without processes: the recorder (ring, eviction, pages after a cursor,
 * filters, causal context through actors), the causal merge of several nodes, the exports
 * (Mermaid for a known exchange, Chrome Trace Event structure and flows), the wire
 * validation of trace stamps and trace queries, and the in-process cluster (LocalHub: every
 * message encoded and validated) carrying trace ids across nodes.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { ActorSystem } from '../src/actors/actor';
import { PAGE_SCAN, TraceRecorder } from '../src/trace/recorder';
import { ManualClock } from '../src/util/clock';
import type { TraceEvent } from '../src/trace/event';
import { causalOrder, checkCausality } from '../src/trace/merge';
import { toMermaid } from '../src/trace/export-mermaid';
import { toChromeTrace } from '../src/trace/export-chrome';
import { toHtml } from '../src/trace/export-html';
import { validateDlmMessage } from '../src/cluster/dlm-messages';
import { NdjsonFileSink, readTraceFiles } from '../src/trace/file-sink';
import { parseConfig } from '../src/config/config';
import { validateClientRequest } from '../src/wire/client-protocol';
import { Daemon } from '../src/daemon/daemon';
import { LocalHub } from '../src/cluster/port';
import type { ClusterPort } from '../src/cluster/port';
import type { DlmPeerMsg } from '../src/cluster/dlm-messages';
import { TracedPort } from '../src/trace/traced-port';
import { printable } from '../src/trace/export-text';
import { rendezvousOwner } from '../src/cluster/rendezvous';
import { Mode } from '../src/dlm/modes';
import { quietLogger, sleep, testConfig, tmpDir, waitFor } from './support/daemon-proc';
import { resourceOn } from './support/cluster-proc';

/** A hand-written exchange: node 2 asks node 3 (master) for R, node 3 grants it back. */
function exchange(): TraceEvent[] {
  const base = { wall: 1000, mono: 0, ls: 'default', res: 'R' };
  return [
    { ...base, node: 2, seq: 1, lc: 1, kind: 'send', from: 'client', to: 'session/1', type: 'client', sub: 'lock', mode: 5, trace: 7 },
    { ...base, node: 2, seq: 2, lc: 2, kind: 'dlm-out', from: 'session/1', to: 'node/3', type: 'op', sub: 'request', mode: 5, lock: '2:1/1', trace: 7, cause: 1 },
    { ...base, node: 3, seq: 1, lc: 3, kind: 'dlm-in', from: 'node/2', to: 'router', type: 'op', sub: 'request', mode: 5, lock: '2:1/1', trace: 7, srcNode: 2, srcLc: 2 },
    { ...base, node: 3, seq: 2, lc: 4, kind: 'send', from: 'router', to: 'resource/default/R', type: 'request', mode: 5, lock: '2:1/1', trace: 7, cause: 1 },
    { ...base, node: 3, seq: 3, lc: 5, kind: 'send', from: 'resource/default/R', to: 'remote-owner/2/1', type: 'lock.granted', mode: 5, token: 9, lock: '2:1/1', trace: 7, cause: 2 },
    { ...base, node: 3, seq: 4, lc: 6, kind: 'dlm-out', from: 'remote-owner/2/1', to: 'node/2', type: 'ev', sub: 'lock.granted', mode: 5, token: 9, lock: '2:1/1', trace: 7, cause: 3 },
    { ...base, node: 2, seq: 3, lc: 7, kind: 'dlm-in', from: 'node/3', to: 'router', type: 'ev', sub: 'lock.granted', mode: 5, token: 9, lock: '2:1/1', trace: 7, srcNode: 3, srcLc: 6 },
    { ...base, node: 2, seq: 4, lc: 8, kind: 'send', from: 'router', to: 'session/1', type: 'lock.granted', mode: 5, token: 9, lock: '2:1/1', trace: 7, cause: 3 },
  ] as TraceEvent[];
}

describe('trace', () => {
  describe('recorder', () => {
    it('keeps the last ring_size events, counts the evicted, pages after a cursor and filters', () => {
      const r = new TraceRecorder(4, new ManualClock(), 8);
      for (let i = 0; i < 20; i++) r.record('send', 'a', 'b', i % 2 ? 'odd' : 'even', { res: `r${i % 3}` });
      expect(r.stats).to.include({ recorded: 20, evicted: 12, first: 13, last: 20 });
      const p = r.page(0, {}, 1 << 20);
      expect(p.events.map((e) => e.seq)).to.deep.equal([13, 14, 15, 16, 17, 18, 19, 20]);
      expect(p.more).to.equal(false);
      const q = r.page(10, { type: 'odd' }, 1 << 20);
      expect(q.missed).to.equal(2); // 11 and 12 were overwritten
      expect(q.events.map((e) => e.seq)).to.deep.equal([14, 16, 18, 20]);
      expect(r.page(20, {}, 1 << 20).events).to.deep.equal([]);
      // A page cut by size goes on from its cursor.
      const small = r.page(0, {}, 300);
      expect(small.events.length).to.be.greaterThan(0).and.below(8);
      expect(small.more).to.equal(true);
      const rest = r.page(small.cursor, {}, 1 << 20);
      expect([...small.events, ...rest.events].map((e) => e.seq)).to.deep.equal([13, 14, 15, 16, 17, 18, 19, 20]);
      // --actor: a substring of the sender's or the receiver's path.
      const a = new TraceRecorder(4, new ManualClock(), 8);
      a.record('send', 'timer', 'membership/4', 'tick', {});
      a.record('frame-out', 'peer-link/2', 'node/2', 'renew', {});
      a.record('frame-in', 'node/3', 'peer-link/3', 'renewAck', {});
      expect(a.page(0, { actor: 'peer-link' }, 1 << 20).events.map((e) => e.seq)).to.deep.equal([2, 3]);
      expect(a.page(0, { actor: 'membership/4' }, 1 << 20).events.map((e) => e.seq)).to.deep.equal([1]);
      expect(a.page(0, { actor: 'node/3' }, 1 << 20).events.map((e) => e.seq)).to.deep.equal([3]);
    });

    it('a page looks at PAGE_SCAN events at most: a rare filter over a big ring is read in several short pages, the match at the end found by reading on', () => {
      const r = new TraceRecorder(1, new ManualClock(), 200_000);
      for (let i = 1; i <= 230_000; i++) r.record('send', 'a', 'b', 'x', { res: i === 229_999 ? 'rare' : 'common' });
      const first = r.page(0, { resource: 'rare' }, 1 << 20);
      expect(first.events).to.deep.equal([]);
      expect(first.more).to.equal(true);
      expect(first.cursor).to.equal(30_000 + PAGE_SCAN); // the ring starts at 30001
      const found: number[] = [];
      let cursor = first.cursor, pages = 1;
      for (let more = true; more; pages++) {
        const p = r.page(cursor, { resource: 'rare' }, 1 << 20);
        found.push(...p.events.map((e) => e.seq));
        cursor = p.cursor;
        more = p.more;
      }
      expect(found).to.deep.equal([229_999]);
      expect(cursor).to.equal(230_000);
      expect(pages).to.equal(Math.ceil(200_000 / PAGE_SCAN));
    });

    it('a ring of millions of events takes its size in memory (~150 bytes an event), not a dictionary of gigabytes; rows in every block read back, a cause\'s fields from another block', () => {
      // In a process of its own, its peak memory: 4M events, 36M string slots (288 MB in fast arrays, 600 MB with
      // the typed arrays); as one array of 36M slots, a dictionary first: 2.7 GB at the peak (and 8 s).
      const js = `const { TraceRecorder } = require(${JSON.stringify(require.resolve('../src/trace/recorder'))});
        const { ManualClock } = require(${JSON.stringify(require.resolve('../src/util/clock'))});
        const r = new TraceRecorder(1, new ManualClock(), 4000000);
        r.record('send', 'a', 'b', 'x', { res: 'first' });
        process.stdout.write(JSON.stringify({ res: r.get(1).res, maxRssKiB: process.resourceUsage().maxRSS }));`;
      const out = JSON.parse(execFileSync(process.execPath, ['-e', js], { encoding: 'utf8' }));
      expect(out.res).to.equal('first');
      expect(out.maxRssKiB).to.be.below(1.5 * 1024 * 1024);
      // 200000 rows: blocks of 65536, the last one partial; wrapped twice.
      const r = new TraceRecorder(1, new ManualClock(), 200_000);
      for (let i = 1; i <= 450_000; i++) {
        if (i % 1000 === 1) { r.cur = 0; r.record('send', 'client', 'session/1', 'client', { res: `R${i}`, ls: 'L', lock: `1:1/${i}` }); r.cur = i; } else r.record('send', 'x', 'y', 't', { info: `${i}` });
      }
      expect(r.stats.first).to.equal(250_001);
      for (const seq of [250_001, 262_143, 262_144, 262_145, 327_680, 327_681, 399_999, 400_000, 400_001, 449_999, 450_000]) {
        const e = r.get(seq)!;
        const head = seq - ((seq - 1) % 1000);
        if (seq === head) expect(e.res).to.equal(`R${seq}`);
        else {
          expect(e.info).to.equal(`${seq}`);
          if (head >= 250_001) expect([e.cause, e.res, e.ls, e.lock]).to.deep.equal([head, `R${head}`, 'L', `1:1/${head}`]);
        }
      }
    });

    it('a ring row reads back as recorded, after the ring wrapped: seq and wall (not stored) derived right, a client\'s numeric ids as text, every field', () => {
      const clock = new ManualClock();
      const size = 3000; // not a multiple of the 1024-event wall blocks
      const lines: string[] = []; // what a file sink would write: the same events, field for field
      const r = new TraceRecorder(2, clock, size, { writeLine: (l) => lines.push(l), dropped: 0, close: async () => {} });
      r.named('session-1', 'session', { session: 1 });
      const t0 = Date.now();
      const kinds = ['send', 'ask', 'frame-out', 'frame-in', 'dlm-out', 'dlm-in', 'kernel-out'] as const;
      const expected = new Map<number, Partial<TraceEvent>>();
      for (let i = 0; i < 7000; i++) {
        clock.advance(0.25);
        if (i % 5 === 0) {
          const msg = { type: 'client', req: { type: 'lock', id: 7000 + i, lockId: i, lockspace: 'ls', resource: `r${i}`, mode: 5 } };
          r.onSend('session-1', msg, 'send');
          expected.set(r.stats.last, { kind: 'send', from: 'client', to: 'session/1', type: 'client', sub: 'lock', req: String(7000 + i), lock: String(i), ls: 'ls', res: `r${i}`, mode: 5, mono: clock.now() });
        } else {
          const f = { ls: 'L', res: `x${i}`, lock: `2:1/${i}`, req: `k${i}`, mode: i % 6, token: i, epoch: 3, peer: 1 + (i % 4), info: 'why' };
          const seq = r.record(kinds[i % 7]!, 'a', 'b', 't', f, i % 3 ? undefined : { node: 3, stamp: [99, 5] });
          expected.set(seq, { kind: kinds[i % 7]!, from: 'a', to: 'b', type: 't', ...f, mono: clock.now(), ...(i % 3 ? {} : { srcNode: 3, srcLc: 5, trace: 99 }) });
        }
      }
      const t1 = Date.now();
      expect(r.stats).to.include({ first: 7000 - size + 1, last: 7000 });
      const evs = r.page(0, {}, 1 << 30, 1 << 20).events;
      expect(evs.map((e) => e.seq)).to.deep.equal(Array.from({ length: size }, (_, k) => 7000 - size + 1 + k));
      const offsets = new Map<number, number>();
      for (const e of evs) {
        expect(e).to.include(expected.get(e.seq)!);
        expect(e.node).to.equal(2);
        expect(r.get(e.seq)).to.deep.equal(e);
        // wall = mono + (wall clock - node clock), read at the first event of its 1024-event block
        const off = e.wall - e.mono, block = Math.floor((e.seq - 1) / 1024);
        expect(off).to.be.within(t0 - 1750, t1); // the ManualClock read 0.25..1750 then
        if (offsets.has(block)) expect(off).to.be.closeTo(offsets.get(block)!, 1e-3);
        else offsets.set(block, off);
        expect(JSON.parse(lines[e.seq - 1]!)).to.deep.equal(e);
      }
      expect(offsets.size).to.equal(4); // the ring's 3000 events span blocks 3..6
      expect(typeof evs.find((e) => e.type === 'client')!.req).to.equal('string');
    });

    it('a message sent while an actor handles one joins its trace and names it as cause; a send from outside starts a new trace', async () => {
      const sys = new ActorSystem(quietLogger());
      const r = new TraceRecorder(1, new ManualClock(), 1000);
      sys.tracer = r;
      type M = { type: 'ping'; n: number } | { type: 'pong'; n: number };
      const done: number[] = [];
      const b = sys.spawn<null, M>(undefined, 'b', { init: () => null, handle: (s, m) => { done.push(m.n); return s; } }, { id: 'B' });
      const a = sys.spawn<null, M>(undefined, 'a', { init: () => null, handle: (s, m) => { sys.send(b, { type: 'pong', n: m.n }); return s; } }, { id: 'A' });
      sys.send(a, { type: 'ping', n: 1 });
      sys.send(a, { type: 'ping', n: 2 });
      await waitFor(() => done.length === 2, 20000, 'pongs');
      const evs = r.page(0, {}, 1 << 20).events;
      const pings = evs.filter((e) => e.type === 'ping'), pongs = evs.filter((e) => e.type === 'pong');
      expect(pings.map((e) => [e.from, e.to])).to.deep.equal([['ext', 'a/A'], ['ext', 'a/A']]);
      expect(pings[0]!.trace).to.not.equal(pings[1]!.trace);
      expect(pongs.map((e) => [e.from, e.to])).to.deep.equal([['a/A', 'b/B'], ['a/A', 'b/B']]);
      for (let i = 0; i < 2; i++) {
        expect(pongs[i]!.trace).to.equal(pings[i]!.trace);
        expect(pongs[i]!.cause).to.equal(pings[i]!.seq);
        expect(pongs[i]!.lc).to.be.greaterThan(pings[i]!.lc);
      }
      sys.shutdown();
    });

    it('a send\'s event travels beside the message to its handler: the message is left untouched, and one object sent four times names each send as the cause of what its handling sends', async () => {
      const sys = new ActorSystem(quietLogger());
      const r = new TraceRecorder(1, new ManualClock(), 1000);
      sys.tracer = r;
      type M = { type: 'go' } | { type: 'done' };
      let done = 0;
      const sink = sys.spawn<null, M>(undefined, 'sink', { init: () => null, handle: (s) => { done++; return s; } }, { id: 'S' });
      const host = sys.spawn<null, M>(undefined, 'host', { init: () => null, handle: (s) => s }, { id: 'H' });
      const relay = { init: () => null, handle: (s: null, m: M) => { if (m.type === 'go') sys.send(sink, { type: 'done' }); return s; } };
      const leaf = sys.spawn<null, M>(host, 'leaf', { ...relay, leaf: true }, { id: 'L' }); // the typed layer's own mailbox
      const actor = sys.spawn<null, M>(undefined, 'actor', relay, { id: 'N' }); // nact's
      const msg: M = { type: 'go' };
      for (let i = 0; i < 2; i++) { sys.send(leaf, msg); sys.send(actor, msg); } // all four queued before any is handled
      await waitFor(() => done === 4, 20000, 'done');
      expect(Object.getOwnPropertySymbols(msg)).to.deep.equal([]);
      expect(Object.keys(msg)).to.deep.equal(['type']);
      const evs = r.page(0, {}, 1 << 20).events;
      const gos = evs.filter((e) => e.type === 'go'), dones = evs.filter((e) => e.type === 'done');
      expect(gos.map((e) => e.to)).to.deep.equal(['leaf/L', 'actor/N', 'leaf/L', 'actor/N']);
      const key = (x: [string, number | undefined]) => `${x[0]}#${x[1]}`;
      expect(dones.map((e) => key([e.from, e.cause])).sort()).to.deep.equal(gos.map((g) => key([g.to, g.seq])).sort());
      for (const d of dones) expect(d.trace).to.equal(gos.find((g) => g.seq === d.cause)!.trace);
      sys.shutdown();
    });

    it('a resource named by the events before it reaches its actor reads the same, and only an equal name is replaced by the actor\'s own string', async () => {
      const sys = new ActorSystem(quietLogger());
      const r = new TraceRecorder(1, new ManualClock(), 1000);
      sys.tracer = r;
      type M = { type: 'ask'; lockspace: string; resource: string } | { type: 'pass'; lockspace: string; resource: string } | { type: 'hit' };
      let hits = 0;
      const host = sys.spawn<null, M>(undefined, 'lockspace', { init: () => null, handle: (s) => s }, { lockspace: 'ls' });
      const res = sys.spawn<null, M>(host, 'resource', { init: () => null, handle: (s) => { hits++; return s; }, leaf: true }, { lockspace: 'ls', resource: 'r1' });
      // A session-like actor hands what it was asked to a router-like one, which hits the resource actor.
      const router = sys.spawn<null, M>(undefined, 'router', { init: () => null, handle: (s) => { sys.send(res, { type: 'hit' }); return s; } }, { id: 'R' });
      const session = sys.spawn<null, M>(undefined, 'session', {
        init: () => null, handle: (s, m) => { if (m.type === 'ask') sys.send(router, { type: 'pass', lockspace: m.lockspace, resource: m.resource }); return s; },
      }, { id: 'S' });
      const fresh = (x: string) => Buffer.from(x).toString(); // a new string, as a decoded frame gives
      sys.send(session, { type: 'ask', lockspace: fresh('ls'), resource: fresh('r1') });
      sys.send(session, { type: 'ask', lockspace: fresh('other'), resource: fresh('r2') }); // names another resource, ends at r1
      await waitFor(() => hits === 2, 20000, 'hits');
      const evs = r.page(0, {}, 1 << 20).events;
      const row = (type: string, i: number) => { const e = evs.filter((x) => x.type === type)[i]!; return [e.ls, e.res]; };
      expect([row('ask', 0), row('pass', 0), row('hit', 0)]).to.deep.equal([['ls', 'r1'], ['ls', 'r1'], ['ls', 'r1']]);
      expect([row('ask', 1), row('pass', 1), row('hit', 1)]).to.deep.equal([['other', 'r2'], ['other', 'r2'], ['ls', 'r1']]);
      sys.shutdown();
    });

    it('a lock id answered back reads the same in the events before it, and only an equal id is replaced', async () => {
      const sys = new ActorSystem(quietLogger());
      const r = new TraceRecorder(1, new ManualClock(), 1000);
      sys.tracer = r;
      type M = { type: 'go'; id: string; answer: string } | { type: 'unlock'; lockId: string; answer: string } | { type: 'lock.released'; lockId: string };
      let answers = 0;
      const fresh = (x: string) => Buffer.from(x).toString();
      const session = sys.spawn<null, M>(undefined, 'session', {
        init: () => null,
        handle: (s, m) => {
          if (m.type === 'go') sys.send(resource, { type: 'unlock', lockId: fresh(m.id), answer: m.answer });
          else if (m.type === 'lock.released') answers++;
          return s;
        },
      }, { id: 'S' });
      const resource = sys.spawn<null, M>(undefined, 'resource', {
        init: () => null, handle: (s, m) => { if (m.type === 'unlock') sys.send(session, { type: 'lock.released', lockId: fresh(m.answer) }); return s; },
      }, { id: 'R' });
      sys.send(session, { type: 'go', id: '1:1/7', answer: '1:1/7' });
      sys.send(session, { type: 'go', id: '1:1/8', answer: '1:1/9' });
      await waitFor(() => answers === 2, 20000, 'answers');
      const locks = (type: string) => r.page(0, {}, 1 << 20).events.filter((e) => e.type === type).map((e) => e.lock);
      expect(locks('unlock')).to.deep.equal(['1:1/7', '1:1/8']);
      expect(locks('lock.released')).to.deep.equal(['1:1/7', '1:1/9']);
      sys.shutdown();
    });

    it('the traced port stamps the lock message it is given with its dlm-out event (no copy)', () => {
      const r = new TraceRecorder(1, new ManualClock(), 100);
      const sent: unknown[] = [];
      const inner = { selfId: 1, send: (_to: number, m: unknown) => { sent.push(m); } } as unknown as ClusterPort;
      const msg: DlmPeerMsg = { t: 'recDone', epoch: 2 };
      new TracedPort(inner, r).send(3, msg);
      expect(sent).to.have.length(1);
      expect(sent[0]).to.equal(msg);
      const e = r.get(r.stats.last)!;
      expect(e).to.include({ kind: 'dlm-out', to: 'node/3', type: 'recDone' });
      expect(msg.tr).to.deep.equal([e.trace, e.lc]);
    });

    it('writes rotating NDJSON files: FILE, FILE.1 ... FILE.keep, every line an event', async () => {
      const dir = tmpDir('mxfs-trace-file-');
      const file = path.join(dir, 'trace.ndjson');
      const sink = new NdjsonFileSink({ file, maxBytes: 64 * 1024, keep: 2, flushMs: 1 });
      const r = new TraceRecorder(1, new ManualClock(), 16, sink);
      for (let i = 0; i < 3000; i++) { r.record('send', 'a', 'b', 'x', { info: 'y'.repeat(40) }); if (i % 200 === 0) await sleep(5); }
      await r.close();
      expect(fs.existsSync(`${file}.1`)).to.equal(true);
      expect(fs.existsSync(`${file}.2`)).to.equal(true);
      expect(fs.existsSync(`${file}.3`)).to.equal(false);
      for (const f of [file, `${file}.1`, `${file}.2`]) expect(fs.statSync(f).size).to.be.at.most(64 * 1024);
      const { lines } = readTraceFiles(file);
      const seqs = lines.map((l) => JSON.parse(l).seq as number);
      expect(seqs[seqs.length - 1]).to.equal(3000);
      expect(seqs).to.deep.equal([...seqs].sort((x, y) => x - y)); // oldest file first, in order
      expect(seqs.length).to.be.below(3000); // the oldest went with rotation
      expect(JSON.parse(lines[lines.length - 1]!)).to.deep.equal(r.get(3000)); // a line is the event, field for field
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('a file that opens but cannot be written (a full disk: /dev/full) is told once, however often it is tried again, and not said to be written again', async () => {
      let errors = 0, resumes = 0;
      const sink = new NdjsonFileSink({ file: '/dev/full', maxBytes: 1 << 20, keep: 1, flushMs: 1, retryMs: 0, onError: () => errors++, onResume: () => resumes++ });
      for (let i = 1; i <= 5; i++) {
        sink.writeLine(`{"seq":${i}}`);
        await waitFor(() => sink.dropped === i, 10000, `event ${i} dropped`);
      }
      await sink.close();
      expect([errors, resumes]).to.deep.equal([1, 0]);
    });

    it('a batch larger than file_max_bytes is split at a line: no file passes the limit, no line is lost or cut', async () => {
      const dir = tmpDir('mxfs-trace-file-');
      const file = path.join(dir, 'trace.ndjson');
      // One batch of ~200 KB (under the 256 KB that flushes early; the timer never fires before close).
      const sink = new NdjsonFileSink({ file, maxBytes: 64 * 1024, keep: 3, flushMs: 3_600_000 });
      const n = 2000;
      for (let i = 1; i <= n; i++) sink.writeLine(JSON.stringify({ seq: i, info: 'é'.repeat(40) + 'y'.repeat(10) }));
      await sink.close();
      const files = [file, `${file}.1`, `${file}.2`, `${file}.3`];
      for (const f of files) expect(fs.statSync(f).size, f).to.be.at.most(64 * 1024);
      const { lines } = readTraceFiles(file);
      expect(lines.map((l) => JSON.parse(l).seq)).to.deep.equal(Array.from({ length: n }, (_, i) => i + 1));
      expect(sink.dropped).to.equal(0);
      fs.rmSync(dir, { recursive: true, force: true });
    });
  });

  describe('merge', () => {
    it('orders several nodes causally: effects after causes, each node in seq order, wall time otherwise', () => {
      const evs = exchange();
      // Node 3's clock is ahead (wall): a pure wall-time sort would put its receipt first.
      for (const e of evs) if (e.node === 3) e.wall = 900;
      const shuffled = [evs[5]!, evs[2]!, evs[7]!, evs[0]!, evs[3]!, evs[6]!, evs[1]!, evs[4]!, evs[2]!];
      const t = causalOrder(shuffled);
      expect(t.map((e) => `${e.node}:${e.seq}`)).to.deep.equal(['2:1', '2:2', '3:1', '3:2', '3:3', '3:4', '2:3', '2:4']);
      expect(checkCausality(t)).to.deep.equal([]);
      expect(checkCausality([evs[2]!, evs[1]!])).to.have.length(1);
    });

    it('orders a node\'s worker thread by w, not seq: a worker frame recorded after the answer it caused (a lock link overtook its batch) still comes first', () => {
      const base = { ls: 'default', res: 'R', trace: 9 };
      // Node 2's main thread hands a lock message to its worker (seq 1 -> w 1), the worker sends it to node 3
      // (w 2, lc 11). Node 3's worker receives it, its main thread answers over a lock link; node 2's main thread
      // records the answer (seq 2) and what it causes (seq 3) before the worker's batch arrives (seq 4, 5).
      const evs = [
        { node: 2, seq: 1, lc: 1, wall: 1000, kind: 'dlm-out', from: 'remote-owner/3/1', to: 'node/3', type: 'op', sub: 'request' },
        { node: 2, seq: 2, lc: 14, wall: 1003, kind: 'dlm-in', from: 'node/3', to: 'router', type: 'ev', sub: 'lock.granted', srcNode: 3, srcLc: 13 },
        { node: 2, seq: 3, lc: 15, wall: 1003, kind: 'send', from: 'router', to: 'session/1', type: 'lock.granted', cause: 2 },
        { node: 2, seq: 4, w: 1, lc: 10, wall: 1001, kind: 'send', from: 'dlm-channel', to: 'peer-link/3', type: 'sendMany', cause: 1 },
        { node: 2, seq: 5, w: 2, lc: 11, wall: 1001, kind: 'frame-out', from: 'peer-link/3', to: 'node/3', type: 'dlm', sub: 'request', cause: 4 },
        { node: 3, seq: 1, w: 1, lc: 12, wall: 1002, kind: 'frame-in', from: 'node/2', to: 'peer-link/2', type: 'dlm', sub: 'request', srcNode: 2, srcLc: 11 },
        { node: 3, seq: 2, lc: 13, wall: 1002, kind: 'dlm-out', from: 'remote-owner/2/1', to: 'node/2', type: 'ev', sub: 'lock.granted', cause: 1 },
      ].map((e) => ({ ...base, mono: e.wall, ...e })) as TraceEvent[];
      const t = causalOrder([...evs].reverse());
      expect(t.map((e) => `${e.node}:${e.seq}`)).to.deep.equal(['2:1', '2:4', '2:5', '3:1', '3:2', '2:2', '2:3']);
      expect(checkCausality(t)).to.deep.equal([]);
      // Node 2 in seq order puts its frame after the answer it caused: the old merge's only possible order, a violation.
      expect(checkCausality([evs[0]!, evs[5]!, evs[6]!, evs[1]!, evs[2]!, evs[3]!, evs[4]!])).to.deep.equal(['node 3 seq 1 received before node 2 sent it (lc 11)']);
      // The hand-over from node 2's main thread to its worker waits for its cause, even though the worker's event is older by wall time.
      const early = evs.map((e) => (e.node === 2 && e.w !== undefined ? { ...e, wall: 900 } : e));
      expect(causalOrder(early).map((e) => `${e.node}:${e.seq}`).slice(0, 3)).to.deep.equal(['2:1', '2:4', '2:5']);
      // checkCausality: a worker event out of w order, an effect before its cause on the node.
      expect(checkCausality([evs[0]!, evs[4]!, evs[3]!])).to.deep.equal(['node 2: worker event w 1 after w 2', 'node 2 seq 5 before its cause seq 4']);
      expect(checkCausality([evs[3]!, evs[0]!])).to.deep.equal(['node 2 seq 4 before its cause seq 1']);
    });
  });

  describe('exports', () => {
    it('text: a name\'s control characters are escaped and a backslash doubled, so no two names print alike', () => {
      expect(printable('a\nb')).to.equal('a\\nb');
      expect(printable('a\\nb')).to.equal('a\\\\nb');
      expect(printable('x\u001b[2J')).to.equal('x\\u001b[2J');
      expect(printable('default/r1 ü')).to.equal('default/r1 ü');
    });

    it('Mermaid: a known exchange gives exactly this diagram', () => {
      expect(toMermaid(causalOrder(exchange()), 'R')).to.equal([
        'sequenceDiagram',
        '  participant n2_client as n2 client',
        '  participant n2_session_1 as n2 session/1',
        '  participant n3_router as n3 router',
        '  participant n3_resource_default_R as n3 resource/default/R',
        '  participant n3_remote_owner_2_1 as n3 remote-owner/2/1',
        '  participant n2_router as n2 router',
        '  n2_client->>n2_session_1: client lock EX',
        '  n2_session_1->>n3_router: op request EX 2:1/1',
        '  n3_router->>n3_resource_default_R: request EX 2:1/1',
        '  n3_resource_default_R->>n3_remote_owner_2_1: lock.granted EX token 9 2:1/1',
        '  n3_remote_owner_2_1->>n2_router: ev lock.granted EX token 9 2:1/1',
        '  n2_router->>n2_session_1: lock.granted EX token 9 2:1/1',
        '',
      ].join('\n'));
    });

    it('Mermaid: actors whose paths differ only in characters an id cannot hold stay apart (one resource name in lockspaces a-b and a_b, names in other scripts)', () => {
      const ev = (seq: number, ls: string, res: string) => ({ node: 1, seq, lc: seq, wall: 1000, mono: 0, kind: 'send', from: 'router', to: `resource/${ls}/${res}`, type: 'request', ls, res, trace: 1 }) as TraceEvent;
      const mm = toMermaid([ev(1, 'a-b', 'R'), ev(2, 'a_b', 'R'), ev(3, 'a_b', 'R'), ev(4, 'a.b', 'R')], 'R');
      expect(mm.split('\n')).to.include.members([
        '  participant n1_resource_a_b_R as n1 resource/a-b/R',
        '  participant n1_resource_a_b_R_2 as n1 resource/a_b/R',
        '  participant n1_resource_a_b_R_3 as n1 resource/a.b/R',
        '  n1_router->>n1_resource_a_b_R: request',
        '  n1_router->>n1_resource_a_b_R_2: request',
        '  n1_router->>n1_resource_a_b_R_3: request',
      ]);
      expect(mm.match(/->>n1_resource_a_b_R_2:/g)).to.have.length(2);
      const uni = toMermaid([ev(1, 'default', 'ä'), ev(2, 'default', 'ö')].map((e, i) => ({ ...e, res: 'ä', to: i ? 'resource/default/ö' : 'resource/default/ä' })), 'ä');
      expect(uni).to.match(/participant n1_resource_default__ as/);
      expect(uni).to.match(/participant n1_resource_default___2 as/);
    });

    it('Chrome Trace Event JSON: a process per node, a thread per actor, a flow per message between nodes bound inside slices', () => {
      const ct = JSON.parse(JSON.stringify(toChromeTrace(causalOrder(exchange()))));
      const meta = ct.traceEvents.filter((e: any) => e.ph === 'M');
      expect(meta.filter((e: any) => e.name === 'process_name').map((e: any) => e.args.name)).to.deep.equal(['node 2', 'node 3']);
      const threads = meta.filter((e: any) => e.name === 'thread_name').map((e: any) => `${e.pid} ${e.args.name}`);
      expect(threads).to.include.members(['2 session/1', '2 node/3', '3 router', '3 resource/default/R', '3 remote-owner/2/1', '3 node/2', '2 router']);
      const slices = ct.traceEvents.filter((e: any) => e.ph === 'X');
      expect(slices).to.have.length(8);
      const s = ct.traceEvents.filter((e: any) => e.ph === 's'), f = ct.traceEvents.filter((e: any) => e.ph === 'f');
      expect(s).to.have.length(2);
      expect(f.map((x: any) => x.id).sort()).to.deep.equal(s.map((x: any) => x.id).sort());
      const inside = (x: any) => slices.some((sl: any) => sl.pid === x.pid && sl.tid === x.tid && x.ts >= sl.ts && x.ts <= sl.ts + sl.dur);
      for (const x of [...s, ...f]) expect(inside(x), JSON.stringify(x)).to.equal(true);
      for (const x of f) expect(x.bp).to.equal('e');
      // The flow goes from node 2's send to node 3's receipt.
      const first = s.find((x: any) => x.id === 'dlm:2:2');
      expect(first.pid).to.equal(2);
      expect(f.find((x: any) => x.id === 'dlm:2:2').pid).to.equal(3);
    });

    it('HTML: one self-contained page (no external URL), the events inline', () => {
      const html = toHtml(causalOrder(exchange()), { title: 'x</script><b>' });
      expect(html).to.match(/^<!doctype html>/);
      expect(html).to.not.match(/(src|href)=["']?(https?:)?\/\//);
      expect(html).to.not.include('x</script><b>'); // escaped
      expect(html).to.include('"lock.granted"');
    });
  });

  describe('wire', () => {
    it('a DLM message may carry a trace stamp; a bad one is refused naming the field; an old message without one passes', () => {
      const op = { t: 'op', epoch: 3, lockspace: 'default', resource: 'R', op: { type: 'cancel', lockId: '1:2/3' } };
      expect(validateDlmMessage(op)).to.not.have.property('tr');
      expect(validateDlmMessage({ ...op, tr: [2 ** 40 + 5, 77] }).tr).to.deep.equal([2 ** 40 + 5, 77]);
      expect(validateDlmMessage({ t: 'ev', epoch: 1, ev: { type: 'lock.released', lockId: '1:2/3' }, tr: [1, 2, 'R', 'default'] }).tr).to.deep.equal([1, 2, 'R', 'default']);
      expect(() => validateDlmMessage({ ...op, tr: [-1, 2] })).to.throw(/tr\.id/);
      expect(() => validateDlmMessage({ ...op, tr: [1, 'x'] })).to.throw(/tr\.lc/);
      expect(() => validateDlmMessage({ ...op, tr: { id: 1, lc: 2 } })).to.throw(/'tr'/);
      expect(() => validateDlmMessage({ ...op, tr: [1, 1, ''] })).to.throw(/tr\.res/);
      expect(() => validateDlmMessage({ ...op, tr: [1, 1, 'R', 7] })).to.throw(/tr\.ls/);
    });

    it('trace queries and replies are validated like every other message', () => {
      const q = { t: 'traceQuery', epoch: 1, id: 4, after: 10, filter: { resource: 'R', type: 'lock.' }, maxBytes: 4096 };
      expect(validateDlmMessage(q)).to.deep.equal(q);
      expect(() => validateDlmMessage({ ...q, filter: { since: -5 } })).to.throw(/filter\.since/);
      const ev = exchange()[0]!;
      const reply = { t: 'traceReply', epoch: 1, id: 4, page: { events: [ev], cursor: 1, more: false, missed: 0, enabled: true } };
      expect((validateDlmMessage(reply) as any).page.events[0]).to.deep.equal(ev);
      expect(() => validateDlmMessage({ ...reply, page: { ...reply.page, events: [{ ...ev, kind: 'teleport' }] } })).to.throw(/kind/);
      expect(() => validateDlmMessage({ ...reply, page: { ...reply.page, events: [{ ...ev, mode: 9 }] } })).to.throw(/mode/);
      expect(() => validateClientRequest({ type: 'trace', id: 1, op: 'why' })).to.throw(/resource/);
      expect(() => validateClientRequest({ type: 'trace', id: 1, op: 'collect', nodes: [0] })).to.throw(/nodes/);
      expect(() => validateClientRequest({ type: 'trace', id: 1, op: 'collect', cursors: { abc: 1 } })).to.throw(/cursors/);
      expect(() => validateClientRequest({ type: 'trace', id: 1, op: 'explode' })).to.throw(/op/);
    });

    it('config: [trace] and [metrics] with defaults off; bad values name the key', () => {
      const c = parseConfig('[node]\nid = 1\n', '/x.conf');
      expect(c.trace).to.deep.include({ enabled: false, ringSize: 65536 });
      expect(c.metrics).to.deep.equal({ enabled: false, address: '127.0.0.1', port: 9464, maxConnections: 16 });
      const t = parseConfig('[node]\nid = 1\n[trace]\nenabled = yes\nring_size = 1000\nfile = t.ndjson\n[metrics]\nenabled = true\nport = 9100\n', '/etc/mxfs/x.conf');
      expect(t.trace).to.deep.include({ enabled: true, ringSize: 1000, file: '/etc/mxfs/t.ndjson' });
      expect(t.metrics.port).to.equal(9100);
      expect(() => parseConfig('[node]\nid = 1\n[trace]\nring_size = 3\n', '/x.conf')).to.throw(/x\.conf:4: \[trace\] ring_size: .*out of range/);
      expect(() => parseConfig('[node]\nid = 1\n[metrics]\naddress = not an address\n', '/x.conf')).to.throw(/\[metrics\] address/);
    });
  });

  describe('metrics endpoint', () => {
    it('a port in use stops the daemon at start with one error naming the address', async () => {
      const busy = net.createServer();
      await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
      const port = (busy.address() as net.AddressInfo).port;
      const d = new Daemon({ config: testConfig(tmpDir(), { metrics: { enabled: true, port } }), log: quietLogger() });
      let err: Error | undefined;
      try { await d.start(); } catch (e) { err = e as Error; }
      await d.stop();
      busy.close();
      expect(err?.message).to.match(new RegExp(`^\\[metrics\\] cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
    });

    it('off: nothing listens and sessions measure nothing', async () => {
      const d = new Daemon({ config: testConfig(tmpDir()), log: quietLogger() });
      await d.start();
      expect(d.metrics.enabled).to.equal(false);
      expect(d.metrics.port).to.equal(undefined);
      expect(d.metrics.session).to.equal(undefined);
      expect(d.table.stats.observeWait).to.equal(undefined);
      await d.stop();
    });
  });

  describe('in-process cluster (LocalHub)', function () {
    this.timeout(20000);
    it('a remote lock carries its trace id to the master and back; no recorder, no stamp', async () => {
      const hub = new LocalHub();
      const nodes = new Map<number, Daemon>();
      try {
        for (const id of [1, 2, 3]) {
          const d = new Daemon({ config: testConfig(tmpDir(), { node: { id }, trace: { enabled: id !== 2, ringSize: 4096 } }), log: quietLogger(), port: hub.port(id), masterOf: rendezvousOwner });
          await d.start();
          nodes.set(id, d);
        }
        hub.commit(1, [1, 2, 3]);
        await waitFor(() => [...nodes.values()].every((d) => d.router.state === 'running'), 20000, 'running');
        const res = resourceOn(3, [1, 2, 3], 'inproc');
        const c = await nodes.get(1)!.connectLocal('t');
        const h = await c.lock(res, Mode.EX);
        await h.unlock();
        await c.close();
        const ev = (id: number) => nodes.get(id)!.tracing.recorder!.page(0, { resource: res }, 1 << 22).events;
        const out = ev(1).find((e) => e.kind === 'dlm-out' && e.sub === 'request')!;
        const inn = ev(3).find((e) => e.kind === 'dlm-in' && e.sub === 'request')!;
        expect(inn.trace).to.equal(out.trace);
        expect([inn.srcNode, inn.srcLc]).to.deep.equal([1, out.lc]);
        expect(inn.lc).to.be.greaterThan(out.lc);
        const granted = ev(1).find((e) => e.kind === 'dlm-in' && e.sub === 'lock.granted')!;
        expect(granted.trace).to.equal(out.trace);
        expect(granted.res).to.equal(res); // the ev's stamp names the resource
        expect(checkCausality(causalOrder([...ev(1), ...ev(3)]))).to.deep.equal([]);
        // Node 2 does not trace: its messages carry no stamp, node 3 starts a trace of its own.
        expect(nodes.get(2)!.tracing.recorder).to.equal(undefined);
        const c2 = await nodes.get(2)!.connectLocal('t2');
        await (await c2.lock(res, Mode.PR)).unlock();
        await c2.close();
        const from2 = ev(3).filter((e) => e.kind === 'dlm-in' && e.peer === 2 && e.sub === 'request');
        expect(from2).to.have.length(1);
        expect(from2[0]!.srcNode).to.equal(undefined);
        expect(Math.floor(from2[0]!.trace / 2 ** 40)).to.equal(3);
      } finally {
        for (const d of nodes.values()) await d.stop();
      }
    });

    it('a recovery shows its named phases on every node, each caused by the one before, and the records between nodes in causal order; a newer view abandons an older one', async () => {
      const hub = new LocalHub();
      const nodes = new Map<number, Daemon>();
      const PHASES = ['recovery.collect', 'recovery.send', 'recovery.wait', 'recovery.rebuild', 'recovery.replay', 'recovery.done'];
      try {
        for (const id of [1, 2, 3]) {
          const d = new Daemon({ config: testConfig(tmpDir(), { node: { id }, trace: { enabled: true, ringSize: 8192 } }), log: quietLogger(), port: hub.port(id), masterOf: rendezvousOwner });
          await d.start();
          nodes.set(id, d);
        }
        hub.commit(1, [1, 2, 3]);
        await waitFor(() => [...nodes.values()].every((d) => d.router.state === 'running' && d.router.phases.phase === 'done'), 20000, 'running');
        const res = resourceOn(3, [1, 2, 3], 'recphase');
        const c = await nodes.get(1)!.connectLocal('t');
        const h = await c.lock(res, Mode.EX);
        hub.commit(2, [1, 2, 3]);
        await waitFor(() => [...nodes.values()].every((d) => d.router.epoch === 2 && d.router.phases.phase === 'done'), 20000, 'recovery of epoch 2');
        const all = (id: number) => nodes.get(id)!.tracing.recorder!.page(0, {}, 1 << 24).events;
        for (const id of [1, 2, 3]) {
          const phases = all(id).filter((e) => e.type.startsWith('recovery.') && e.epoch === 2);
          expect(phases.map((e) => e.type), `node ${id}`).to.deep.equal(PHASES);
          expect(phases.every((e) => e.to === 'recovery')).to.equal(true);
          // Each phase is caused by the one before, or (the rebuild) by the last recDone that completed the set.
          for (let i = 1; i < phases.length; i++) {
            const cause = all(id).find((e) => e.seq === phases[i]!.cause)!;
            if (phases[i]!.type === 'recovery.rebuild' && cause.kind === 'dlm-in') expect(cause.type).to.equal('recDone');
            else expect(cause.seq, `${phases[i]!.type} on node ${id}`).to.equal(phases[i - 1]!.seq);
          }
        }
        // Node 1's record of the lock goes to the master (node 3), caused by node 1's 'sending' phase.
        const send1 = all(1).find((e) => e.type === 'recovery.send' && e.epoch === 2)!;
        const recOut = all(1).find((e) => e.kind === 'dlm-out' && e.type === 'rec' && e.epoch === 2)!;
        expect(recOut.cause).to.equal(send1.seq);
        expect(recOut.trace).to.equal(send1.trace);
        const merged = causalOrder([...all(1), ...all(2), ...all(3)]);
        expect(checkCausality(merged)).to.deep.equal([]);
        const at = (pred: (e: TraceEvent) => boolean) => merged.findIndex(pred);
        const recIn = at((e) => e.node === 3 && e.kind === 'dlm-in' && e.type === 'rec' && e.epoch === 2);
        expect(merged[recIn]!.trace).to.equal(recOut.trace);
        expect(at((e) => e.node === 1 && e.seq === send1.seq)).to.be.lessThan(recIn);
        expect(recIn).to.be.lessThan(at((e) => e.node === 3 && e.type === 'recovery.rebuild' && e.epoch === 2));
        // Two views at once: the recovery of epoch 3 is abandoned between two of its steps, epoch 4's completes, the lock is kept.
        hub.commit(3, [1, 2, 3]);
        hub.commit(4, [1, 2, 3]);
        await waitFor(() => [...nodes.values()].every((d) => d.router.epoch === 4 && d.router.phases.phase === 'done'), 20000, 'recovery of epoch 4');
        for (const id of [1, 2, 3]) {
          const p = all(id).filter((e) => e.type.startsWith('recovery.') && (e.epoch ?? 0) >= 3);
          expect(p[0]!.type).to.equal('recovery.collect');
          const ab = p.findIndex((e) => e.type === 'recovery.abandon');
          expect(p[ab]).to.include({ epoch: 3, info: 'superseded by epoch 4' });
          expect(p.slice(ab + 1).map((e) => e.type)).to.deep.equal(PHASES);
          expect(p.slice(ab + 1).every((e) => e.epoch === 4)).to.equal(true);
        }
        expect(h.valid).to.equal(true);
        await h.unlock();
        await c.close();
      } finally {
        for (const d of nodes.values()) await d.stop();
      }
    });
  });
});
