/**
 * Tracing end to end on 3 real mxfsd processes (TCP peer links, [trace] and [metrics] on):
 * a scripted cross-node exchange (a remote lock, a BAST to its holder on another node, the
 * release, the grant to the waiter) read back with `mxfsctl trace collect` from one node
 * must give the causal chain in order; the Perfetto export has the tracks and the flows; the
 * Mermaid diagram has the exchange's arrows in order; the HTML page renders in headless
 * Chromium and its screenshot shows the timeline; the cluster worker thread's peer-link frames
 * are in the trace; `mxfsctl why` on the waiting lock names
 * the holder and the BAST; `trace tail` prints live events; the metrics endpoint serves the
 * counts of the known workload.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { Mode } from '../src/dlm/modes';
import { LockError } from '../src/dlm/types';
import { traceIdText, type TraceEvent } from '../src/trace/event';
import { checkCausality } from '../src/trace/merge';
import { HTML_COLOURS } from '../src/trace/export-html';
import { resourceOn, TestCluster } from './support/cluster-proc';
import { freePort, MXFSCTL, mxfsctl, run, waitFor } from './support/daemon-proc';
import { countColour, decodePng } from './support/png';
import { readAll } from '../src/cli/mxfsctl-trace';
import { sample, scrape } from './support/metrics';

export function chromiumPath(): string | undefined {
  for (const p of ['/usr/bin/chromium', '/usr/bin/chromium-browser']) if (fs.existsSync(p)) return p;
  return undefined;
}

const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describe('tracing end to end (3 real mxfsd, TCP)', function () {
  this.timeout(120000);
  let cl: TestCluster;
  let ports: number[];
  let res: string;
  let dir: string;
  const ctl = (node: number, args: string[]) => mxfsctl(['--socket', cl.node(node).socket, ...args], { timeoutMs: 30000 });

  before(async () => {
    ports = [await freePort(), await freePort(), await freePort()];
    // A 10 s lease: the chain and the counts below assume one view throughout; with 1.5 s a
    // loaded machine (load 15) changed the view mid-test and the rebuilt resource had
    // forgotten its BAST (a flaky test, not a tracing defect).
    cl = new TestCluster(3, 10000, (id, d) => `[trace]\nenabled = true\nring_size = 200000\nfile = ${d}/trace.ndjson\n\n[metrics]\nenabled = true\nport = ${ports[id - 1]}\n`);
    dir = cl.dir;
    await cl.up();
    // The lock links up before the first lock (until then lock traffic goes the worker's way).
    const up = async (id: number, peer: number) => ((await cl.status(id)).cluster.transport.lockLinks as Array<{ peer: number; up: boolean }>).find((l) => l.peer === peer)?.up === true;
    await waitFor(async () => (await up(1, 3)) && (await up(3, 1)) && (await up(2, 3)) && (await up(3, 2)), 30000, 'lock links to and from node 3 up');
    res = resourceOn(3, [1, 2, 3], 'traced');
  });
  after(async () => { await cl?.stopAll(); });

  it('a remote lock, a BAST across nodes, the release and the grant: one causal chain, read from any node', async () => {
    const a = await cl.client(1), b = await cl.client(2), c = await cl.client(3);
    const ha = await a.lock(res, Mode.EX);
    const bast = new Promise<Mode>((r) => ha.once('bast', r));
    const pb = b.lock(res, Mode.PR);
    expect(await bast).to.equal(Mode.PR);

    // why, while B waits: the holder, its BAST, the waiter, the master and its epoch.
    const w = await ctl(2, ['why', res]);
    expect(w.code, w.stderr).to.equal(0);
    expect(w.stdout).to.match(new RegExp(`^default/${res}: mastered by node 3 in epoch \\d+`));
    expect(w.stdout).to.match(/held by 1:\d+\/1 \(owner 1:\d+.* on node 1\) in EX, token \d+, for \d+/);
    expect(w.stdout).to.match(/BAST sent \d+(\.\d)? m?s ago: another lock wants PR/);
    expect(w.stdout).to.match(/waiting: 2:\d+\/1 .* for PR, for \d+.*blocked by 1:\d+\/1 \(EX\)/);
    expect(w.stdout).to.match(/recent traffic \(\d+ events, every node merged\):\n(.*\n)*.*lock\.bast/);
    // The last recovery this node saw: the one that formed the current view.
    expect(w.stdout).to.match(/\n {2}last recovery: epoch \d+, took \d+ ms, ended .* ago\n/);
    const wj = JSON.parse((await ctl(1, ['--json', 'why', res])).stdout);
    expect(wj.master).to.equal(3);
    expect(wj.entry, JSON.stringify(wj)).to.not.equal(null);
    expect(wj.entry.granted[0].bast.mode).to.equal('PR');
    expect(wj.entry.waiting[0].requested).to.equal('PR');
    expect(wj.entry.waiting[0].sinceMs).to.be.a('number');

    await ha.unlock();
    const hb = await pb;
    // More of a known workload for the metrics: a refused NOQUEUE request on the master's node, a conversion.
    const refused = await c.lock(res, Mode.EX, { noqueue: true }).then(() => 'granted', (e: LockError) => e.code);
    expect(refused).to.equal('NOTQUEUED');
    await hb.convert(Mode.EX);
    await hb.unlock();

    // Traced nodes use lock links (docs/cluster-protocol.md §4a): nodes 1 and 2 sent to the master (node 3)
    // that way and node 3 answered that way, so the merged timeline below has receipts that overtook the
    // worker's record of what caused them on the other thread.
    type Link = { peer: number; sent: number; received: number };
    const link = async (id: number, peer: number) => ((await cl.status(id)).cluster.transport.lockLinks as Link[]).find((l) => l.peer === peer);
    for (const [id, peer] of [[1, 3], [2, 3], [3, 1], [3, 2]] as const) {
      const l = await link(id, peer);
      expect(l, `node ${id}'s lock link to ${peer}`).to.not.equal(undefined);
      expect(l!.sent, `node ${id}'s lock link to ${peer}: sent`).to.be.greaterThan(0);
      expect(l!.received, `node ${id}'s lock link to ${peer}: received`).to.be.greaterThan(0);
    }

    const out = await ctl(1, ['trace', 'collect', '--resource', res, '--format', 'ndjson']);
    expect(out.code, out.stderr).to.equal(0);
    const t: TraceEvent[] = out.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(new Set(t.map((e) => e.node))).to.deep.equal(new Set([1, 2, 3]));
    expect(checkCausality(t)).to.deep.equal([]);
    // The chain, in this order in the merged timeline.
    const chain: Array<[string, (e: TraceEvent) => boolean]> = [
      ['node 2 sends the PR request to the master', (e) => e.node === 2 && e.kind === 'dlm-out' && e.sub === 'request' && e.mode === Mode.PR],
      ['the master receives it', (e) => e.node === 3 && e.kind === 'dlm-in' && e.sub === 'request' && e.mode === Mode.PR],
      ['the resource sends the BAST to node 1\'s holder', (e) => e.node === 3 && e.kind === 'send' && e.type === 'lock.bast' && e.to.startsWith('remote-owner/1/')],
      ['the master sends it to node 1', (e) => e.node === 3 && e.kind === 'dlm-out' && e.sub === 'lock.bast'],
      ['node 1 receives it', (e) => e.node === 1 && e.kind === 'dlm-in' && e.sub === 'lock.bast'],
      ['node 1 hands it to the session', (e) => e.node === 1 && e.kind === 'send' && e.type === 'lock.bast' && e.to.startsWith('session/')],
      ['node 1 sends the unlock', (e) => e.node === 1 && e.kind === 'dlm-out' && e.sub === 'unlock'],
      ['the master receives it', (e) => e.node === 3 && e.kind === 'dlm-in' && e.sub === 'unlock'],
      ['the resource grants node 2\'s waiter', (e) => e.node === 3 && e.kind === 'send' && e.type === 'lock.granted' && e.mode === Mode.PR && e.to.startsWith('remote-owner/2/')],
      ['the master sends the grant to node 2', (e) => e.node === 3 && e.kind === 'dlm-out' && e.sub === 'lock.granted' && e.mode === Mode.PR],
      ['node 2 receives it', (e) => e.node === 2 && e.kind === 'dlm-in' && e.sub === 'lock.granted' && e.mode === Mode.PR],
      ['node 2 hands it to the session', (e) => e.node === 2 && e.kind === 'send' && e.type === 'lock.granted' && e.mode === Mode.PR && e.to.startsWith('session/')],
    ];
    let at = -1;
    const found: TraceEvent[] = [];
    for (const [what, match] of chain) {
      const i = t.findIndex((e, k) => k > at && match(e));
      expect(i, `${what} (after index ${at})`).to.be.greaterThan(at);
      found.push(t[i]!);
      at = i;
    }
    for (let k = 1; k < found.length; k++) expect(found[k]!.lc, `lc of step ${k}`).to.be.greaterThan(found[k - 1]!.lc);
    // Two traces: B's request (on node 2) carries the BAST; A's unlock (on node 1) carries the grant.
    expect(new Set(found.slice(0, 6).map((e) => e.trace)).size).to.equal(1);
    expect(Math.floor(found[0]!.trace / 2 ** 40)).to.equal(2);
    expect(new Set(found.slice(6).map((e) => e.trace)).size).to.equal(1);
    expect(Math.floor(found[6]!.trace / 2 ** 40)).to.equal(1);
    expect([found[1]!.srcNode, found[1]!.srcLc]).to.deep.equal([2, found[0]!.lc]);
    expect(found[4]!.srcLc).to.equal(found[3]!.lc);
    // The request went through node 2's DlmChannel actor: its own event, in the same trace and caused by the same message as the dlm-out.
    const channelTook = t.find((e) => e.node === 2 && e.kind === 'send' && e.type === 'dlm.send' && e.to === 'dlm-channel' && e.sub === 'request' && e.cause === found[0]!.cause);
    expect(channelTook, 'node 2 dlm.send of the request').to.not.equal(undefined);
    expect(channelTook!.trace).to.equal(found[0]!.trace);
    expect(channelTook!.seq).to.be.greaterThan(found[0]!.seq);

    // Perfetto / chrome://tracing: a process per node, the actors' threads, a flow per lock message between nodes.
    const chromeOut = path.join(dir, 'trace.json');
    expect((await ctl(2, ['trace', 'collect', '--resource', res, '--format', 'chrome', '--out', chromeOut])).code).to.equal(0);
    const ct = JSON.parse(fs.readFileSync(chromeOut, 'utf8'));
    const meta = ct.traceEvents.filter((e: any) => e.ph === 'M');
    expect(meta.filter((e: any) => e.name === 'process_name').map((e: any) => e.args.name)).to.deep.equal(['node 1', 'node 2', 'node 3']);
    const threads = meta.filter((e: any) => e.name === 'thread_name').map((e: any) => `${e.pid} ${e.args.name}`);
    expect(threads).to.include.members([`3 resource/default/${res}`, '3 router', '1 router', '2 router']);
    const slices = ct.traceEvents.filter((e: any) => e.ph === 'X');
    expect(slices).to.have.length(t.length);
    const starts = ct.traceEvents.filter((e: any) => e.ph === 's'), ends = ct.traceEvents.filter((e: any) => e.ph === 'f');
    // Each lock message (dlm-out -> dlm-in) and each stamped frame carrying it (frame-out -> frame-in, from the worker threads).
    const crossings = t.filter((e) => (e.kind === 'dlm-in' || e.kind === 'frame-in') && t.some((o) => o.kind === (e.kind === 'dlm-in' ? 'dlm-out' : 'frame-out') && o.node === e.srcNode && o.lc === e.srcLc));
    expect(crossings.filter((e) => e.kind === 'dlm-in').length).to.be.at.least(6);
    expect(crossings.filter((e) => e.kind === 'frame-in').length).to.be.at.least(6);
    expect(starts.filter((x: any) => x.cat === 'frame').length).to.be.at.least(6);
    expect(starts).to.have.length(crossings.length);
    expect(ends.map((x: any) => x.id).sort()).to.deep.equal(starts.map((x: any) => x.id).sort());
    for (const x of [...starts, ...ends]) {
      expect(slices.some((s: any) => s.pid === x.pid && s.tid === x.tid && x.ts >= s.ts && x.ts <= s.ts + s.dur), `flow ${x.ph} ${x.id} bound to a slice`).to.equal(true);
    }
    expect(starts.every((x: any) => ends.find((y: any) => y.id === x.id).pid !== x.pid)).to.equal(true);

    // Mermaid: the exchange's arrows, in order.
    const mm = await ctl(3, ['trace', 'collect', '--resource', res, '--format', 'mermaid']);
    expect(mm.stdout.split('\n')[0]).to.equal('sequenceDiagram');
    const arrows = [
      /^ {2}n2_session_\d+->>n3_router: op request PR 2:\d+\/1$/,
      /^ {2}n3_resource_default_\w+->>n3_remote_owner_1_\d+: lock\.bast PR 1:\d+\/1$/,
      /^ {2}n3_remote_owner_1_\d+->>n1_router: ev lock\.bast PR 1:\d+\/1$/,
      /^ {2}n1_router->>n1_session_\d+: lock\.bast PR 1:\d+\/1$/,
      /^ {2}n1_session_\d+->>n3_router: op unlock 1:\d+\/1$/,
      /^ {2}n3_resource_default_\w+->>n3_remote_owner_2_\d+: lock\.granted PR token \d+ 2:\d+\/1$/,
      /^ {2}n3_remote_owner_2_\d+->>n2_router: ev lock\.granted PR token \d+ 2:\d+\/1$/,
      /^ {2}n2_router->>n2_session_\d+: lock\.granted PR token \d+ 2:\d+\/1$/,
    ];
    const lines = mm.stdout.split('\n');
    let li = -1;
    for (const re of arrows) {
      const k = lines.findIndex((l, j) => j > li && re.test(l));
      expect(k, `${re} after line ${li}:\n${mm.stdout}`).to.be.greaterThan(li);
      li = k;
    }

    // dump: one node's ring only.
    const dump = await ctl(3, ['trace', 'dump', '--resource', res, '--type', 'lock.bast', '--format', 'ndjson']);
    const bastEvents = dump.stdout.trim().split('\n').map((l) => JSON.parse(l) as TraceEvent);
    expect(bastEvents.length).to.be.at.least(2); // the resource's send and the dlm-out, at least
    expect(bastEvents.every((e) => e.node === 3 && (e.type === 'lock.bast' || e.sub === 'lock.bast'))).to.equal(true);
  });

  it('the peer-link frames of the cluster worker thread (leases, their acks, lock traffic) and its Lease actors\' messages are in the node\'s trace', async () => {
    // mxfsd runs its peer links in the cluster worker thread; the recorder is on the main thread.
    const dump = async (node: number, args: string[]) => {
      const r = await ctl(node, ['trace', 'dump', ...args, '--format', 'ndjson']);
      expect(r.code, r.stderr).to.equal(0);
      return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as TraceEvent);
    };
    const renewals = await dump(2, ['--type', 'renew', '--since', '5m']);
    for (const peer of [1, 3]) {
      expect(renewals.some((e) => e.kind === 'frame-out' && e.from === `peer-link/${peer}` && e.to === `node/${peer}` && e.peer === peer), `renew to node ${peer}`).to.equal(true);
      expect(renewals.some((e) => e.kind === 'frame-in' && e.from === `node/${peer}` && e.to === `peer-link/${peer}`), `renew from node ${peer}`).to.equal(true);
    }
    // The worker's Lease actors: every renewal heard and this node's own deadline, forwarded like the frames (lease.ts).
    // A peer acknowledges node 2 as a member ("vouches until") only from its first renewal round
    // after the view formed: wait for it (a renewal round is a third of the lease), do not race it.
    const vouched = (evs: TraceEvent[], peer: number) => evs.some((e) => e.type === 'lease.acked' && e.to === `lease/${peer}` && /vouches until \d+/.test(e.info ?? ''));
    let leases: TraceEvent[] = [];
    await waitFor(async () => { leases = await dump(2, ['--type', 'lease', '--since', '5m']); return vouched(leases, 1) && vouched(leases, 3); }, 30000, 'both peers vouching for node 2 in its trace');
    for (const peer of [1, 3]) {
      const r = leases.filter((e) => e.type === 'lease.renewed' && e.from === 'membership/2' && e.to === `lease/${peer}` && e.peer === peer);
      expect(r.length, `lease.renewed of node ${peer}`).to.be.greaterThan(0);
      // Its expiry is when it was heard (in the worker, before the pipe) + deadAfter (11 s), on the node's monotonic clock:
      // at most the recording time + deadAfter, give or take how far the two threads' readings of that clock differ
      // (one run at load 27 had the worker's 4 ms ahead: src/util/clock.ts takes each thread's offset once, at start).
      const expires = Number(/^inc [0-9a-f]+, expires (\d+)$/.exec(r[0]!.info ?? '')?.[1]);
      expect(expires - r[0]!.mono).to.be.at.most(10000 + 1000 + 100);
    }
    expect(leases.some((e) => e.type === 'lease.deadline' && e.to === 'lease/self' && /^self-fence at \d+$/.test(e.info ?? ''))).to.equal(true);
    const acks = await dump(2, ['--type', 'renewAck', '--since', '5m']);
    expect(acks.some((e) => e.kind === 'frame-in' && typeof e.epoch === 'number' && e.epoch > 0)).to.equal(true);
    // The frame that carried the BAST to node 1, with the master's stamp: the clock moved past it.
    const bast = await dump(1, ['--resource', res]);
    const frame = bast.find((e) => e.kind === 'frame-in' && e.type === 'dlm' && e.sub === 'lock.bast');
    expect(frame, JSON.stringify(bast)).to.not.equal(undefined);
    expect(frame!.srcNode).to.equal(3);
    expect(frame!.lc).to.be.greaterThan(frame!.srcLc!);
    expect(bast.some((e) => e.kind === 'dlm-in' && e.sub === 'lock.bast')).to.equal(true);
    // Handed from the link to the lock engine: the DlmChannel's receipt is caused by the frame-in, in its trace (here the
    // lock link's, on the lock engine's thread; through the worker, the last test).
    const took = bast.find((e) => e.type === 'dlm.receive' && e.cause === frame!.seq);
    expect(took, 'dlm.receive caused by the frame-in').to.not.equal(undefined);
    expect(took!.trace).to.equal(frame!.trace);
  });

  it('the cluster worker\'s actors in the merged trace: a renewal round trip between two nodes is one causal chain (tick, frame, membership, lease, ack)', async () => {
    // Node 1's membership ticks and sends a renew to node 2 (frame-out, in node 1's worker); node 2's link takes the frame
    // (frame-in, after node 1's frame-out: its stamp), hands it to its membership (peerMessage), which tells node 1's Lease
    // actor (lease.renewed) and answers (renewAck frame-out); node 1 takes the ack and tells node 2's Lease actor (lease.acked).
    type Chain = TraceEvent[];
    const find = (t: TraceEvent[]): Chain | undefined => {
      const at = (e: TraceEvent) => t.indexOf(e);
      const byCause = (x: TraceEvent, match: (e: TraceEvent) => boolean) => t.find((e) => e.node === x.node && e.cause === x.seq && match(e));
      for (const out of t.filter((e) => e.node === 1 && e.kind === 'frame-out' && e.type === 'renew' && e.to === 'node/2')) {
        const tick = t.find((e) => e.node === 1 && e.seq === out.cause && e.type === 'tick'); // not a renewal on a link coming up
        const inn = t.find((e) => e.node === 2 && e.kind === 'frame-in' && e.srcNode === 1 && e.srcLc === out.lc);
        if (!tick || !inn) continue;
        const pm = byCause(inn, (e) => e.type === 'peerMessage' && e.to === 'membership/2');
        const renewed = pm && byCause(pm, (e) => e.type === 'lease.renewed' && e.to === 'lease/1');
        const ackOut = pm && byCause(pm, (e) => e.kind === 'frame-out' && e.type === 'renewAck' && e.to === 'node/1');
        const ackIn = ackOut && t.find((e) => e.node === 1 && e.kind === 'frame-in' && e.srcNode === 2 && e.srcLc === ackOut.lc);
        const pm1 = ackIn && byCause(ackIn, (e) => e.type === 'peerMessage' && e.to === 'membership/1');
        const acked = pm1 && byCause(pm1, (e) => e.type === 'lease.acked' && e.to === 'lease/2');
        if (!renewed || !acked) continue;
        // renewed and ackOut are both caused by pm (the membership answers, then tells the Lease actor).
        const chain = [tick, out, inn, pm!, ackOut!, ackIn!, pm1!, acked, renewed];
        if (chain.slice(0, 8).every((e, k) => k === 0 || at(e) > at(chain[k - 1]!)) && at(renewed) > at(pm!)) return chain;
        throw new Error(`the chain is out of order in the merged timeline: ${chain.map((e) => `n${e.node}#${e.seq}@${at(e)}`).join(' ')}`);
      }
      return undefined;
    };
    let t: TraceEvent[] = [];
    let chain: Chain | undefined;
    // A renewal round is a third of the lease (10 s): wait for one to be in every ring, do not race it.
    await waitFor(async () => {
      const r = await ctl(3, ['trace', 'collect', '--since', '20s', '--format', 'ndjson']);
      expect(r.code, r.stderr).to.equal(0);
      t = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as TraceEvent);
      chain = find(t);
      return chain !== undefined;
    }, 30000, 'a renewal round trip from node 1 to node 2 and back in the merged trace');
    expect(checkCausality(t)).to.deep.equal([]);
    const [tick, out, inn, pm, ackOut, ackIn, pm1, acked, renewed] = chain!;
    expect(tick).to.include({ kind: 'send', type: 'tick', to: 'membership/1' });
    expect(out).to.include({ from: 'peer-link/2', sub: 'renew' });
    expect(inn).to.include({ from: 'node/1', to: 'peer-link/1', type: 'renew' });
    expect(pm).to.include({ from: 'peer-link/1', sub: 'renew', peer: 1 });
    expect(renewed).to.include({ from: 'membership/2', peer: 1 });
    expect(ackIn).to.include({ from: 'node/2', to: 'peer-link/2' });
    expect(pm1).to.include({ sub: 'renewAck', peer: 2 });
    expect(acked).to.include({ from: 'membership/1', peer: 2 });
    // One trace, started by node 1's worker (its renewal timer): N.wK; the Lamport clock grows along the chain.
    expect(new Set(chain!.map((e) => e.trace)).size, JSON.stringify(chain)).to.equal(1);
    expect(traceIdText(tick.trace)).to.match(/^1\.w\d+$/);
    for (let k = 1; k < 8; k++) expect(chain![k]!.lc, `lc of step ${k}`).to.be.greaterThan(chain![k - 1]!.lc);
    expect(renewed.lc).to.be.greaterThan(pm.lc);
    // Perfetto: the two frames are flows from node to node.
    const chromeOut = path.join(dir, 'renewals.json');
    expect((await ctl(3, ['trace', 'collect', '--since', '30s', '--actor', 'peer-link', '--format', 'chrome', '--out', chromeOut])).code).to.equal(0);
    const flows = JSON.parse(fs.readFileSync(chromeOut, 'utf8')).traceEvents.filter((e: any) => e.ph === 's' && e.cat === 'frame');
    expect(flows.some((f: any) => f.id === `frame:1:${out.lc}` && f.pid === 1), 'the renew frame is a flow').to.equal(true);
    expect(flows.some((f: any) => f.id === `frame:2:${ackOut.lc}` && f.pid === 2), 'the renewAck frame is a flow').to.equal(true);
  });

  it('the HTML timeline renders in headless Chromium, and the screenshot shows it', async function () {
    const chromium = chromiumPath();
    if (!chromium) {
      if (process.env.CI) throw new Error('chromium is not installed (.ci/run installs Debian chromium)');
      this.skip();
    }
    const page = path.join(dir, 'timeline.html');
    const r = await ctl(1, ['trace', 'collect', '--resource', res, '--format', 'html', '--out', page]);
    expect(r.code, r.stderr).to.equal(0);
    const events = (await ctl(1, ['trace', 'collect', '--resource', res, '--format', 'ndjson'])).stdout.trim().split('\n').length;
    const profile = fs.mkdtempSync(path.join(dir, 'chromium-'));
    const dom = await run(chromium!, [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, '--dump-dom', `file://${page}`], { timeoutMs: 90000 });
    expect(dom.stdout, dom.stderr).to.include('<svg id="timeline"');
    expect((dom.stdout.match(/<g class="msg">/g) ?? []).length).to.equal(events);
    expect((dom.stdout.match(/class="flow"/g) ?? []).length).to.be.at.least(6);
    expect(dom.stdout).to.match(/<span id="summary">\d+ of \d+ events/);
    const shot = path.join(dir, 'timeline.png');
    const profile2 = fs.mkdtempSync(path.join(dir, 'chromium-'));
    const s = await run(chromium!, [...CHROMIUM_FLAGS, `--user-data-dir=${profile2}`, '--window-size=1400,800', '--hide-scrollbars', `--screenshot=${shot}`, `file://${page}`], { timeoutMs: 90000 });
    expect(fs.existsSync(shot), s.stderr).to.equal(true);
    const png = decodePng(fs.readFileSync(shot));
    expect([png.width, png.height]).to.deep.equal([1400, 800]);
    // The header band, the lanes, and the BAST, grant and between-nodes colours are on screen.
    for (const c of [HTML_COLOURS.nodeBand, HTML_COLOURS.lane, HTML_COLOURS.laneAlt, HTML_COLOURS.bast, HTML_COLOURS.grant, HTML_COLOURS.dlm]) {
      expect(countColour(png, c), `pixels of ${c}`).to.be.greaterThan(20);
    }
    if (process.env.MXFS_KEEP_SCREENSHOT) fs.copyFileSync(shot, process.env.MXFS_KEEP_SCREENSHOT);
  });

  it('trace tail prints new events live', async () => {
    // From a moment before the traffic (however long mxfsctl takes to start), not older events.
    const since = new Date().toISOString();
    const p = spawn(process.execPath, [MXFSCTL, '--socket', cl.node(1).socket, 'trace', 'tail', '--resource', res, '--type', 'lock.granted', '--since', since, '--count', '2', '--interval', '50'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    p.stdout!.on('data', (d) => { stdout += d; });
    const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
    const a = await cl.client(1);
    const h = await a.lock(res, Mode.EX);
    await h.unlock();
    expect(await exited, stdout).to.equal(0);
    const lines = stdout.trim().split('\n');
    expect(lines).to.have.length(2);
    for (const l of lines) expect(l).to.match(/lock\.granted .*EX/);
  });

  it('the Lease actors in the metrics endpoint and in `mxfsctl leases`: each peer\'s expiry, last renewal gap, acknowledgement, and this node\'s self-fence deadline', async () => {
    // Lease 10 s: a peer is dead 11 s after it was last heard (deadAfter), an acknowledgement vouches for 9 s (fenceAfter).
    // Two renewals of each peer must have been heard for a gap: wait for them (a renewal round is a third of the lease).
    let m = '';
    await waitFor(async () => {
      m = await scrape(ports[1]!);
      return sample(m, 'mxfs_lease_last_renewal_gap_seconds', 'peer="1"') !== undefined && sample(m, 'mxfs_lease_last_renewal_gap_seconds', 'peer="3"') !== undefined;
    }, 30000, 'a renewal gap of both peers in node 2\'s metrics');
    for (const peer of ['1', '3']) {
      expect(sample(m, 'mxfs_lease_expires_in_seconds', `peer="${peer}"`), `expiry of ${peer}`).to.be.greaterThan(0).and.at.most(11);
      // 0 is possible for one peer: two of its renewals read in the same millisecond after a stall (a loaded machine).
      expect(sample(m, 'mxfs_lease_last_renewal_gap_seconds', `peer="${peer}"`), `gap of ${peer}`).to.be.at.least(0).and.below(11);
      expect(sample(m, 'mxfs_lease_vouches_remaining_seconds', `peer="${peer}"`), `ack of ${peer}`).to.be.greaterThan(0).and.at.most(9);
    }
    // Both peers' last gaps 0 at once would be the gauge not measuring (renewals come a third of the lease apart).
    expect(Math.max(...['1', '3'].map((p) => sample(m, 'mxfs_lease_last_renewal_gap_seconds', `peer="${p}"`)!)), 'the larger gap').to.be.greaterThan(0);
    expect(sample(m, 'mxfs_quorum_lease_remaining_seconds'), 'self-fence deadline').to.be.greaterThan(0).and.at.most(9);
    // The same from mxfsctl: a table, and in JSON the figures.
    const text = await ctl(2, ['leases']);
    expect(text.code, text.stderr).to.equal(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines[0]).to.match(/^node 2 {2}epoch \d+ {2}self-fence in \d+\.\d s unless renewals are acknowledged {2}\(deadline moved \d+ times, lapsed \d+\)$/);
    expect(lines[1]).to.match(/^peer +inc +last heard +last gap +expires in +vouches for +renewals +expiries +restarts$/);
    for (const [row, peer] of [[lines[2], 1], [lines[3], 3]] as const) {
      expect(row).to.match(new RegExp(`^${peer} +[0-9a-f]+ +\\d+\\.\\d s ago +\\d+\\.\\d s +\\d+\\.\\d s +\\d+\\.\\d s +\\d+ +0 +0$`));
    }
    const js = await ctl(2, ['--json', 'leases']);
    const l = JSON.parse(js.stdout).leases;
    expect(l.self.state).to.equal('valid');
    expect(l.self.deadlineInMs).to.be.greaterThan(0).and.at.most(9000);
    expect(l.peers.map((p: any) => p.peer)).to.deep.equal([1, 3]);
    for (const p of l.peers) {
      expect(p.expiresInMs + p.lastHeardAgoMs, `expiry = last heard + 11 s (peer ${p.peer})`).to.be.within(11000 - 1, 11000 + 1);
      expect(p.lastGapMs).to.be.greaterThan(0).and.below(11000);
      expect(p.vouchesForMs).to.be.greaterThan(0).and.at.most(9000);
      expect(p.renewals).to.be.at.least(2);
    }
  });

  it('the metrics endpoint serves the counts of the known workload', async () => {
    await cl.waitView([1, 2, 3]);
    // Node 3 masters the resource: A's EX, B's PR, B's conversion to EX, the tail test's EX grant.
    const m3 = await scrape(ports[2]!);
    expect(sample(m3, 'mxfs_lock_grants_total')).to.equal(4);
    expect(sample(m3, 'mxfs_lock_conversions_total')).to.equal(1);
    expect(sample(m3, 'mxfs_lock_basts_total')).to.equal(1);
    expect(sample(m3, 'mxfs_lock_waits_total')).to.equal(1);
    expect(sample(m3, 'mxfs_lock_denials_total')).to.equal(1);
    expect(sample(m3, 'mxfs_lock_deadlocks_total')).to.equal(0);
    expect(sample(m3, 'mxfs_lock_queue_depth')).to.equal(0);
    expect(sample(m3, 'mxfs_lock_wait_seconds_count', 'op="lock"')).to.equal(1);
    expect(sample(m3, 'mxfs_lock_request_seconds_count', 'op="lock",outcome="failed"')).to.equal(1);
    const epoch = (await cl.status(3)).cluster.epoch;
    expect(sample(m3, 'mxfs_epoch')).to.equal(epoch);
    expect(sample(m3, 'mxfs_node_state', 'state="running"')).to.equal(1);
    expect(sample(m3, 'mxfs_peer_up', 'peer="1"')).to.equal(1);
    expect(sample(m3, 'mxfs_peer_link_up', 'peer="2"')).to.equal(1);
    // Ages and deadlines move with the machine's load: only their presence and range are certain.
    expect(sample(m3, 'mxfs_lease_age_seconds', 'peer="1"')).to.be.within(0, 30);
    expect(sample(m3, 'mxfs_quorum_lease_remaining_seconds')).to.be.within(0, 10);
    expect(sample(m3, 'mxfs_lease_renewal_gap_seconds_count', 'peer="2"')).to.be.greaterThan(0);
    expect(sample(m3, 'mxfs_recoveries_total')).to.be.at.least(1);
    expect(sample(m3, 'mxfs_recovery_seconds_count')).to.be.at.least(1);
    expect(sample(m3, 'mxfs_trace_events_total')).to.be.greaterThan(0);
    expect(sample(m3, 'mxfs_trace_dropped_total')).to.equal(0);
    // What each node's clients saw.
    const m1 = await scrape(ports[0]!), m2 = await scrape(ports[1]!);
    expect(sample(m1, 'mxfs_lock_request_seconds_count', 'op="lock",outcome="granted"')).to.equal(2); // A's EX, the tail test's EX
    expect(sample(m2, 'mxfs_lock_request_seconds_count', 'op="lock",outcome="granted"')).to.equal(1);
    expect(sample(m2, 'mxfs_lock_request_seconds_count', 'op="convert",outcome="granted"')).to.equal(1);
    expect(sample(m1, 'mxfs_lock_grants_total')).to.equal(0); // node 1 masters nothing of this
    // Only /metrics, only on loopback by default.
    const notFound = await new Promise<number>((r) => http.get({ host: '127.0.0.1', port: ports[0]!, path: '/' }, (x) => { x.resume(); r(x.statusCode!); }));
    expect(notFound).to.equal(404);
    const listening = execFileSync('ss', ['-ltnH', `sport = :${ports[0]}`]).toString();
    expect(listening).to.include(`127.0.0.1:${ports[0]}`);
  });
});

// Lock links carry first sends of lock frames on the lock engine's own thread (docs/cluster-protocol.md
// §4a); without them every lock frame crosses the cluster worker, which this checks.
describe('tracing end to end, lock traffic through the cluster worker (3 real mxfsd, no lock links)', function () {
  this.timeout(120000);
  let cl: TestCluster;
  before(async () => {
    cl = new TestCluster(3, 10000, (_id, d) => `[trace]\nenabled = true\nring_size = 200000\nfile = ${d}/trace.ndjson\n`, false);
    await cl.up();
  });
  after(async () => { await cl?.stopAll(); });

  it('the cluster worker\'s events reach the ring ahead of what they caused, and a read sees those made before it', async () => {
    // The worker holds its events back until it reports something else, or for a while
    // (src/trace/worker-tracer.ts). Node 3 masters the resource: the frame that brings it the
    // request is recorded before the lock engine takes the request (dlm.receive names it as its
    // cause), and its last frame to node 1 (the release), after which its worker reports nothing,
    // is in its ring for a dump asked for as soon as the unlock returned (a read syncs first).
    const r = resourceOn(3, [1, 2, 3], 'synced');
    const a = await cl.client(1), m = await cl.client(3);
    await (await a.lock(r, Mode.EX)).unlock();
    for (const id of [1, 3]) expect((await cl.status(id)).cluster.transport.lockLinks, `node ${id}'s lock links`).to.deep.equal([]);
    const { events: mine } = await readAll(m, 'dump', { resource: r }); // one page, asked for at once
    const released = mine.find((e) => e.kind === 'frame-out' && e.sub === 'lock.released' && e.to === 'node/1');
    expect(released, 'the release\'s frame out').to.not.equal(undefined);
    expect(released!.w, 'the release\'s frame out: a worker event').to.be.a('number');
    const { events: t } = await readAll(m, 'dump', {});
    const frameIn = t.find((e) => e.kind === 'frame-in' && e.sub === 'request' && e.res === r && e.from === 'node/1');
    expect(frameIn, 'the request\'s frame in').to.not.equal(undefined);
    expect(frameIn!.w, 'the request\'s frame in: a worker event').to.be.a('number');
    const received = t.find((e) => e.type === 'dlm.receive' && e.cause === frameIn!.seq);
    expect(received, 'a dlm.receive caused by it').to.not.equal(undefined);
    expect(received!.w, 'dlm.receive: an event of the lock engine\'s thread').to.equal(undefined);
    expect(received!.seq).to.be.greaterThan(frameIn!.seq);
  });
});
