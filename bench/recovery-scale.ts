/**
 * Benchmark: what a node's death costs with many locks held (issue 13). Recovery rebuilds every
 * lock from its holders' records at every view change (docs/dlm-protocol.md, "Recovery"), so
 * its work grows with every lock in the cluster, not with the dead node's share; this measures
 * both, per node, so a recovery that only moves the dead node's share can be compared with
 * today's in the same table.
 *
 * Three real mxfsd on loopback; clients on each holder node (default: all three; one per 90 000
 * locks, below max_locks_per_client) hold its part of L locks (PR on distinct resources, so
 * they are spread over all three masters); then node 3 is killed with SIGKILL. Reported per L,
 * for each survivor: the lock recovery time it measured (collect, send, barrier, rebuild:
 * `lastRecoveryMs`), and its recovery work in that view change (differences of the
 * `cluster.stats` counters): records its sessions handed over, records it sent to other
 * masters, resources it rebuilt. Against them, computed from the rendezvous hash over the
 * names: the dead node's share — locks on resources node 3 mastered (what must move: records a
 * survivor must send, resources rebuilt elsewhere) and locks node 3 held on survivors'
 * resources (what must be purged). Also: the time from the kill until both survivors run the
 * new view (the lease, then recovery; status polled), and whether the survivors' clients kept
 * every lock. The peer measured in the same run is L = 0.
 *
 * Usage: node dist/bench/recovery-scale.js [--locks 0,10000,100000] [--lease-ms MS]
 *          [--holders 1,2,3]
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Mode } from '../src/dlm/modes';
import type { MxfsClient } from '../src/client/client';
import { rendezvousOwner } from '../src/cluster/rendezvous';
import { TestCluster } from '../test/support/cluster-proc';
import { rssKiB } from '../test/support/daemon-proc';

const WORK = ['recordsCollected', 'recordsSent', 'recordsReceived', 'resourcesRebuilt', 'recordsRebuilt'] as const;
type Work = Record<(typeof WORK)[number], number>;

const PER_CLIENT = 90000;

async function holdMany(c: MxfsClient, names: string[]): Promise<void> {
  const batch = 500;
  for (let i = 0; i < names.length; i += batch) await Promise.all(names.slice(i, i + batch).map((n) => c.lock(n, Mode.PR)));
}

async function runOnce(locks: number, lease: number, holders: number[]) {
  const cl = new TestCluster(3, lease);
  try {
    await cl.up();
    const names = new Map<number, string[]>();
    holders.forEach((h, i) => {
      const k = Math.floor(locks / holders.length) + (i < locks % holders.length ? 1 : 0);
      names.set(h, Array.from({ length: k }, (_, j) => `n${h}-${j}`));
    });
    // The dead node's share, from the hash (the cluster masters by the same function).
    let movedLocks = 0, purgedLocks = 0;
    const movedResources = new Set<string>();
    for (const [h, list] of names) for (const n of list) {
      const master = rendezvousOwner('default', n, [1, 2, 3]);
      if (master === 3 && h !== 3) { movedLocks++; movedResources.add(n); }
      if (h === 3 && master !== 3) purgedLocks++;
    }
    // A client holds at most max_locks_per_client (100 000 by default): several per node beyond.
    const clients = new Map<number, MxfsClient[]>();
    const parts: Array<[MxfsClient, string[]]> = [];
    for (const h of holders) {
      const list = names.get(h)!;
      const n = Math.max(1, Math.ceil(list.length / PER_CLIENT));
      const cs: MxfsClient[] = [];
      for (let i = 0; i < n; i++) {
        const c = await cl.client(h, `holder-${h}-${i}`);
        if (h === 3) c.on('error', () => { /* its node is killed */ });
        cs.push(c);
        parts.push([c, list.slice(i * PER_CLIENT, (i + 1) * PER_CLIENT)]);
      }
      clients.set(h, cs);
    }
    const t0 = performance.now();
    await Promise.all(parts.map(([c, list]) => holdMany(c, list)));
    const acquireMs = performance.now() - t0;
    const stats = async () => Promise.all([1, 2].map(async (id) => (await cl.status(id)).cluster.stats as Work & { recoveries: number; lastRecoveryMs: number }));
    const before = await stats();
    const rss = process.platform === 'linux' ? rssOf(cl) : [];
    const k = performance.now();
    cl.kill(3);
    // Running again in a view without node 3 (status polled; includes the lease wait).
    // A liveness bound, not a figure: the rebuild grows with the locks (~60 s for 667 000 at load 3-7).
    await cl.waitView([1, 2], 120000 + locks / 2);
    const runningMs = performance.now() - k;
    // The survivors' clients must still be connected: a daemon that blocked its event loop
    // longer than client_timeout_ms during recovery made them give up every lock.
    const survivors = holders.filter((h) => h !== 3).flatMap((h) => clients.get(h)!);
    const holdersKept = survivors.every((c) => c.alive);
    if (holdersKept && survivors[0]) await survivors[0].lock('after-the-kill', Mode.EX);
    const after = await stats();
    after.forEach((st, i) => { if (st.recoveries <= before[i]!.recoveries) throw new Error(`node ${i + 1}: no recovery observed`); });
    const work = after.map((st, i) => Object.fromEntries(WORK.map((w) => [w, (st[w] ?? 0) - (before[i]![w] ?? 0)])) as Work);
    return {
      locks, acquireMs, runningMs, rssMb: rss, holdersKept, work, movedLocks, movedResources: movedResources.size, purgedLocks,
      recoveryMs: after.map((st) => st.lastRecoveryMs),
    };
  } finally {
    await cl.stopAll();
  }
}

/** Resident memory of each mxfsd, MB (from /proc). */
function rssOf(cl: TestCluster): number[] {
  return cl.nodes.map((nd) => {
    try { return Math.round(rssKiB(nd.proc!.pid!) / 1024); } catch { return NaN; }
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    locks: { type: 'string', default: '0,10000,100000' }, 'lease-ms': { type: 'string', default: '10000' }, holders: { type: 'string', default: '1,2,3' },
  } });
  const lease = Number(values['lease-ms']);
  const sizes = values.locks!.split(',').map(Number);
  const holders = values.holders!.split(',').map(Number);
  const load = () => os.loadavg().map((x) => x.toFixed(1)).join(' ');
  console.log(`# ${new Date().toISOString()}  ${os.cpus().length}x ${os.cpus()[0]?.model}  node ${process.version}  lease ${lease} ms  holders on nodes ${holders.join(',')}; node 3 killed`);
  console.log('| locks held | kill -> running again ms (ratio to 0 locks) | lock recovery ms (node 1, 2) | records collected (1, 2) | records sent (1, 2) | resources rebuilt (1, 2) | records rebuilt (1, 2) | dead node\'s share: locks to move / their resources / its locks to purge | rebuilt / share | holders kept their locks | mxfsd RSS MB (1, 2, 3) | time to take the locks ms | load before, after |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  let base: number | undefined;
  for (const n of sizes) {
    const l0 = load();
    const r = await runOnce(n, lease, holders);
    base ??= r.runningMs;
    const col = (f: (w: Work) => number) => r.work.map(f).join(', ');
    const rebuilt = r.work.reduce((a, w) => a + w.resourcesRebuilt, 0);
    const share = r.movedResources > 0 ? (rebuilt / r.movedResources).toFixed(2) : '-';
    console.log(`| ${n} | ${Math.round(r.runningMs)} (${(r.runningMs / base).toFixed(2)}) | ${r.recoveryMs.join(', ')} | ${col((w) => w.recordsCollected)} | ${col((w) => w.recordsSent)} | ${col((w) => w.resourcesRebuilt)} | ${col((w) => w.recordsRebuilt)} | ${r.movedLocks} / ${r.movedResources} / ${r.purgedLocks} | ${share} | ${r.holdersKept ? 'yes' : 'NO (client timeout)'} | ${r.rssMb.join(', ')} | ${Math.round(r.acquireMs)} | ${l0}; ${load()} |`);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
