/**
 * Benchmark: does load on a node delay its lease renewals? Three real mxfsd on loopback at a
 * short lease (default 1.5 s, renewals every 300 ms, client timeout 900 ms). In each phase,
 * bystander clients on every node hold EX locks on resources spread over all masters; at
 * the end of the phase they must still hold them. Per node and phase it reports, from the
 * daemons' own per-second figures (`mxfsctl nodes --json`: eventLoop, transport.lease):
 *   - event-loop delay p99 (largest per-second p99) and max, on the main thread;
 *   - renewal gap max: the age of the lease proof each time it was renewed (the node fences
 *     when it reaches lease - lease/10; target: below half the lease);
 *   - whether the node lost quorum or changed epoch (it must not, except where a node is
 *     killed on purpose).
 * The peer measured in the same run is the idle phase (same cluster, no abuse).
 *
 * Phases:
 *   idle       nothing but the bystanders, 5 s
 *   abuse      at once, each in its own process: a client flooding `locks` requests (node 1),
 *              one pipelining 100 000 lock requests then disconnecting (node 2), one sending
 *              oversized and invalid fields (node 1), one never reading its replies (node 3)
 *   recovery   clients on nodes 1 and 2 (each in its own process: bench/holder-child.ts) hold
 *              100 000 locks; node 3 is killed (recovery of
 *              100 000 records on the survivors); then restarted (recovery on all three)
 *   purge      a client on node 1 holding 100 000 locks disconnects
 *   evict      the same at idle_evict_ms 1000: the purge, then the eviction of the 100 000
 *              idle resources from their lockspaces (the masters: spread over the nodes)
 *
 * The setup of a phase (taking 100 000 locks, the bystanders) is not measured; if it fails
 * (a client times out on a loaded machine) the phase is run again on a fresh cluster, up to
 * three times, and the table says so.
 *
 * --cluster-thread main runs the daemons' cluster layer on their main thread
 * (MXFS_CLUSTER_THREAD=main) instead of its worker thread: the comparison.
 *
 * Usage: node dist/bench/event-loop.js [--lease-ms MS] [--locks N] [--phases idle,abuse,recovery,purge,evict]
 *        [--abuse-seconds S] [--cluster-thread worker|main]
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Mode } from '../src/dlm/modes';
import type { LockHandle } from '../src/client/api';
import type { MxfsClient } from '../src/client/client';
import { abuseInChild } from '../src/failover/abuse-child';
import type { AbuseResult } from '../src/failover/abuse';
import { resourceOn, TestCluster } from '../test/support/cluster-proc';
import { startHolder } from './holder-child';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Bystander { node: number; client: MxfsClient; handles: LockHandle[]; lost: number }

interface PhaseRow { phase: string; node: number; loopP99: number; loopMax: number; gapMax: number | null; quorumLost: number; epochChanged: boolean; note?: string }

/** Each node's status, with the figures we select per phase. */
async function snapshot(cl: TestCluster, ids: number[]): Promise<Map<number, any>> {
  const m = new Map<number, any>();
  for (const id of ids) {
    for (let i = 0; i < 100; i++) {
      const st = await cl.status(id);
      if (st) { m.set(id, st); break; }
      await sleep(200);
    }
  }
  return m;
}

function phaseFigures(phase: string, start: number, end: number, before: Map<number, any>, after: Map<number, any>): PhaseRow[] {
  const rows: PhaseRow[] = [];
  const inPhase = (b: { at: number }) => b.at > start && b.at - 1000 < end;
  for (const [id, st] of after) {
    const loop = (st.eventLoop?.recent ?? []).filter(inPhase);
    const lease = st.cluster?.transport?.lease;
    const gaps = (lease?.recent ?? []).filter(inPhase).map((b: any) => b.maxGapMs as number);
    const b = before.get(id);
    rows.push({
      phase, node: id,
      loopP99: Math.max(0, ...loop.map((x: any) => x.p99Ms)),
      loopMax: Math.max(0, ...loop.map((x: any) => x.maxMs)),
      gapMax: gaps.length ? Math.max(...gaps) : null,
      quorumLost: (lease?.quorumLosses ?? 0) - (b?.cluster?.transport?.lease?.quorumLosses ?? 0),
      epochChanged: b !== undefined && b.cluster.epoch !== st.cluster.epoch,
    });
  }
  return rows;
}

async function bystanders(cl: TestCluster, ids: number[], tag: string): Promise<Bystander[]> {
  const out: Bystander[] = [];
  for (const id of ids) {
    const client = await cl.client(id, `bystander-${tag}@${id}`);
    const b: Bystander = { node: id, client, handles: [], lost: 0 };
    // One EX lock on a resource each member masters: local and remote holders.
    for (const m of ids) {
      const h = await client.lock(resourceOn(m, ids, `by-${tag}-${id}-`), Mode.EX);
      h.on('lost', () => { b.lost++; });
      b.handles.push(h);
    }
    out.push(b);
  }
  return out;
}

async function release(bs: Bystander[]): Promise<string> {
  const lost = bs.filter((b) => b.lost > 0 || !b.client.alive || b.handles.some((h) => !h.valid));
  for (const b of bs) await b.client.close();
  return lost.length ? `LOST on node ${lost.map((b) => b.node).join(',')}` : 'kept';
}


async function waitUntil(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) { if (await cond()) return true; await sleep(100); }
  return false;
}

async function measured(cl: TestCluster, phase: string, ids: number[], started: () => void, run: () => Promise<string | void>): Promise<PhaseRow[]> {
  started();
  const before = await snapshot(cl, ids);
  const start = Date.now();
  const note = await run();
  await sleep(2000); // the seconds after the work count too
  const end = Date.now();
  const after = await snapshot(cl, ids.filter((id) => cl.node(id).proc?.exitCode === null));
  const rows = phaseFigures(phase, start, end, before, after);
  if (note) for (const r of rows) r.note = note;
  return rows;
}

function abuseSummary(rs: AbuseResult[]): string {
  return rs.map((r) => `${r.kind}: sent ${r.sent}, ok ${r.ok}, errors ${JSON.stringify(r.errors)}, unanswered ${r.unanswered}${r.cutOff ? `, cut off (${r.cutOff.slice(0, 80)})` : ''}`).join('; ');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    'lease-ms': { type: 'string', default: '1500' }, locks: { type: 'string', default: '100000' },
    phases: { type: 'string', default: 'idle,abuse,recovery,purge,evict' }, 'abuse-seconds': { type: 'string', default: '20' },
    'cluster-thread': { type: 'string', default: 'worker' },
  } });
  if (values['cluster-thread'] === 'main') process.env.MXFS_CLUSTER_THREAD = 'main';
  else if (values['cluster-thread'] !== 'worker') throw new Error('--cluster-thread is worker or main');
  const lease = Number(values['lease-ms']);
  const locks = Number(values.locks);
  const phases = values.phases!.split(',');
  const abuseMs = Number(values['abuse-seconds']) * 1000;
  const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`# ${new Date().toISOString()}  ${os.cpus().length}x ${os.cpus()[0]?.model}  node ${process.version}  lease ${lease} ms  cluster layer on the ${values['cluster-thread']} thread  load ${load()}`);
  const rows: PhaseRow[] = [];
  const notes: string[] = [];
  const ids = [1, 2, 3];

  /** f on a fresh cluster; a failure before the measured part (measuring still false) retries. */
  const withCluster = async (f: (cl: TestCluster, started: () => void) => Promise<void>, extra?: string) => {
    for (let attempt = 1; ; attempt++) {
      const cl = new TestCluster(3, lease, extra ? () => extra : undefined);
      let measuring = false;
      try {
        await cl.up();
        await f(cl, () => { measuring = true; });
        return;
      } catch (e) {
        if (measuring || attempt >= 3) throw e;
        notes.push(`setup failed (${(e as Error).message}, load ${load()}); phase run again on a fresh cluster`);
      } finally {
        await cl.stopAll();
      }
    }
  };

  /** A phase that fails (its setup three times, or its measured part) is a note; the others still run. */
  const phase = async (name: string, f: (cl: TestCluster, started: () => void) => Promise<void>, extra?: string) => {
    try { await withCluster(f, extra); } catch (e) { notes.push(`${name}: FAILED: ${(e as Error).message} (load ${load()})`); }
  };

  if (phases.includes('idle') || phases.includes('abuse')) {
    await phase('idle/abuse', async (cl, started) => {
      if (phases.includes('idle')) {
        const bs = await bystanders(cl, ids, 'idle');
        rows.push(...await measured(cl, 'idle', ids, started, async () => { await sleep(5000); return `bystanders ${await release(bs)}`; }));
      }
      if (phases.includes('abuse')) {
        const bs = await bystanders(cl, ids, 'abuse');
        const st = await cl.status(1);
        const remote = resourceOn(2, ids, 'abuse-lvb-remote-');
        const local = resourceOn(1, ids, 'abuse-lvb-local-');
        rows.push(...await measured(cl, 'abuse', ids, started, async () => {
          const kids = [
            abuseInChild('flood-inspect', { socket: cl.node(1).socket, count: 20000, durationMs: abuseMs }),
            abuseInChild('pipeline-disconnect', { socket: cl.node(2).socket, count: locks }),
            abuseInChild('bad-fields', { socket: cl.node(1).socket, durationMs: abuseMs, remoteResource: remote, localResource: local, maxFrameBytes: st?.maxFrameBytes ?? 65536 }),
            abuseInChild('never-read', { socket: cl.node(3).socket, durationMs: abuseMs }),
          ];
          const res = await Promise.allSettled(kids.map((k) => k.result));
          for (const k of kids) k.kill();
          notes.push(`abuse: ${abuseSummary(res.filter((r): r is PromiseFulfilledResult<AbuseResult> => r.status === 'fulfilled').map((r) => r.value))}`);
          for (const r of res) if (r.status === 'rejected') notes.push(`abuse: ${(r.reason as Error).message}`);
          return `bystanders ${await release(bs)}`;
        }));
      }
    });
  }

  if (phases.includes('recovery')) {
    await phase('recovery', async (cl, started) => {
      const [a, b] = await Promise.all([startHolder(cl.node(1).socket, 'a', Math.ceil(locks / 2)), startHolder(cl.node(2).socket, 'b', Math.floor(locks / 2))]);
      const kept = async () => { const [x, y] = await Promise.all([a.check(), b.check()]); return x.alive && y.alive && x.lost + y.lost === 0 ? 'kept' : 'LOST'; };
      try {
        const bs = await bystanders(cl, [1, 2], 'rec'); // on the survivors (masters among 1, 2 only after the kill)
        rows.push(...await measured(cl, 'recovery (node 3 killed)', [1, 2], started, async () => {
          cl.kill(3);
          await cl.waitView([1, 2], 120000);
          return `holders ${await kept()} their ${locks} locks; bystanders ${await release(bs)}`;
        }));
        const bs2 = await bystanders(cl, [1, 2], 'join');
        rows.push(...await measured(cl, 'recovery (node 3 rejoins)', ids, started, async () => {
          cl.start(3);
          await cl.waitView(ids, 120000);
          return `holders ${await kept()} their locks; bystanders ${await release(bs2)}`;
        }));
      } finally { await Promise.all([a.close(), b.close()]); }
    });
  }

  /**
   * A holder of `locks` locks on node 1 disconnects; measured until the nodes' `field` (locks:
   * the purge; resources: the purge and the idle eviction) is back to the bystanders' share.
   */
  const releasePhase = (name: string, field: 'locks' | 'resources', done: string, extra?: string) => phase(name, async (cl, started) => {
    const p = await startHolder(cl.node(1).socket, name, locks);
    const bs = await bystanders(cl, ids, name);
    const count = async () => (await Promise.all(ids.map((id) => cl.status(id)))).reduce((s, st) => s + (st?.[field] ?? 0), 0);
    const base = (await count()) - locks;
    rows.push(...await measured(cl, name, ids, started, async () => {
      const t0 = performance.now();
      await p.close();
      const ok = await waitUntil(async () => (await count()) <= base, 120000);
      return `${done} in ${ok ? Math.round(performance.now() - t0) : '>120000'} ms; bystanders ${await release(bs)}`;
    }));
  }, extra);
  if (phases.includes('purge')) await releasePhase('purge', 'locks', 'purged');
  if (phases.includes('evict')) await releasePhase('evict', 'resources', 'purged and evicted', '[locking]\nidle_evict_ms = 1000\n');

  console.log(`| phase | node | loop delay p99 ms | loop delay max ms | renewal gap max ms (target < ${lease / 2}) | quorum lost | epoch changed | notes |`);
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.phase} | ${r.node} | ${r.loopP99} | ${r.loopMax} | ${r.gapMax === null ? "-" : Math.round(r.gapMax)} | ${r.quorumLost} | ${r.epochChanged ? 'yes' : 'no'} | ${r.note ?? ''} |`);
  }
  for (const n of notes) console.log(`\n${n}`);
  console.log(`\nload average at the end: ${load()}`);
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
