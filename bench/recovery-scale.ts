/**
 * Benchmark: what a membership change costs with many locks held. Recovery rebuilds every
 * lock from its holders' records at every view change (docs/dlm-protocol.md, "Recovery"),
 * so its time grows with the number of locks; this measures how fast.
 *
 * Three real mxfsd on loopback; clients on nodes 1 and 2 hold L locks in all (PR on
 * distinct resources, so they are spread over all three masters); then node 3, which holds
 * nothing, is killed with SIGKILL. Reported per L: the lock recovery time the survivors
 * measured (collect records, send them to the new masters, barrier, rebuild: `lastRecoveryMs`
 * in `mxfsctl nodes --json`), the records rebuilt, and the time from the kill until both
 * survivors run the new view (dominated by the lease; status polled). The peer measured in
 * the same run is L = 0.
 *
 * Usage: node dist/bench/recovery-scale.js [--locks 0,1000,10000,50000] [--lease-ms MS]
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Mode } from '../src/dlm/modes';
import type { MxfsClient } from '../src/client/client';
import { TestCluster } from '../test/support/cluster-proc';
import { rssKiB } from '../test/support/daemon-proc';

async function holdMany(c: MxfsClient, prefix: string, n: number): Promise<void> {
  const batch = 500;
  for (let i = 0; i < n; i += batch) {
    const k = Math.min(batch, n - i);
    await Promise.all(Array.from({ length: k }, (_, j) => c.lock(`${prefix}-${i + j}`, Mode.PR)));
  }
}

async function runOnce(locks: number, lease: number) {
  const cl = new TestCluster(3, lease);
  try {
    await cl.up();
    const a = await cl.client(1, 'holder-a'), b = await cl.client(2, 'holder-b');
    const t0 = performance.now();
    await Promise.all([holdMany(a, 'a', Math.ceil(locks / 2)), holdMany(b, 'b', Math.floor(locks / 2))]);
    const acquireMs = performance.now() - t0;
    const before = await Promise.all([1, 2].map(async (id) => (await cl.status(id)).cluster.stats.recoveries as number));
    const rss = process.platform === 'linux' ? rssOf(cl) : [];
    const k = performance.now();
    cl.kill(3);
    // Running again in a view without node 3 (status polled; includes the lease wait).
    await cl.waitView([1, 2], 60000);
    const grantMs = performance.now() - k;
    // The holders' clients must still be connected: a daemon that blocked its event loop
    // longer than client_timeout_ms during recovery made them give up every lock.
    const holdersKept = a.alive && b.alive;
    if (holdersKept) await a.lock('after-the-kill', Mode.EX);
    const sts = await Promise.all([1, 2].map((id) => cl.status(id)));
    sts.forEach((st, i) => { if (st.cluster.stats.recoveries <= before[i]!) throw new Error(`node ${i + 1}: no recovery observed`); });
    return {
      locks, acquireMs, grantMs, rssMb: rss, holdersKept,
      recoveryMs: sts.map((st) => st.cluster.stats.lastRecoveryMs as number),
      rebuilt: sts.map((st) => st.cluster.stats.recordsRebuilt as number),
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
  const { values } = parseArgs({ options: { locks: { type: 'string', default: '0,1000,10000,50000' }, 'lease-ms': { type: 'string', default: '1500' } } });
  const lease = Number(values['lease-ms']);
  const sizes = values.locks!.split(',').map(Number);
  console.log(`# ${new Date().toISOString()}  ${os.cpus().length}x ${os.cpus()[0]?.model}  node ${process.version}  lease ${lease} ms`);
  console.log('| locks held | lock recovery ms (node 1, node 2) | records rebuilt (1, 2) | kill -> running again ms | ratio to 0 locks | mxfsd RSS MB (1, 2, 3) | time to take the locks ms | holders kept their locks |');
  console.log('|---|---|---|---|---|---|---|---|');
  let base: number | undefined;
  for (const n of sizes) {
    const r = await runOnce(n, lease);
    base ??= r.grantMs;
    console.log(`| ${n} | ${r.recoveryMs.join(', ')} | ${r.rebuilt.join(', ')} | ${Math.round(r.grantMs)} | ${(r.grantMs / base).toFixed(2)} | ${r.rssMb.join(', ')} | ${Math.round(r.acquireMs)} | ${r.holdersKept ? 'yes' : 'NO (client timeout)'} |`);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
