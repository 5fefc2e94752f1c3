/**
 * Benchmark: volume failover on a 3-node loopback cluster (real mxfsd processes), command-mode
 * volume over the VolumeStore. Node 1 owns `data` and its applications write; nodes 2 and 3
 * are standbys. Then node 1 loses power (kill -9, its applications die with it), or its mxfsd
 * is stopped (SIGSTOP; its applications go on, and are refused by generation once a standby
 * has taken over). Measured: fault → a standby has mounted (log replay) → its first write
 * accepted, against the target lease + fence bound + 1 s (issue "Volumes"; anchors: OCFS2
 * declares a node dead after ~60 s, the original C MXFS's bar was 120 s to detect and 180 s
 * to write again).
 *
 * Usage: node dist/bench/volume-failover.js [--leases 1500,3000,10000] [--runs 2] [--fence-bound-ms 300]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { History } from '../src/failover/history';
import { storeVolumeConfig, VolumeStore } from '../src/failover/volume-store';
import { TestCluster } from '../test/support/cluster-proc';
import { waitFor } from '../test/support/daemon-proc';

const CMD = path.join(__dirname, '..', 'src', 'failover', 'volume-cmd.js');

async function once(leaseMs: number, fenceBoundMs: number, fault: 'kill' | 'pause'): Promise<{ mountedMs: number; writingMs: number }> {
  const history = new History();
  const store = new VolumeStore(history);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxfs-vbench-'));
  const socket = path.join(dir, 'store.sock');
  const cl = new TestCluster(3, leaseMs, (id) => storeVolumeConfig({ name: 'data', dir: path.join(dir, `n${id}`), socket, cmd: CMD, fenceBoundMs }));
  const down = new Set<number>();
  try {
    await store.listen(socket);
    store.startWriters(['data'], [1, 2, 3], (n) => !down.has(n), 10);
    await cl.up();
    await (await cl.client(1)).volume('mount', 'data');
    await (await cl.client(2)).volume('standby', 'data');
    await (await cl.client(3)).volume('standby', 'data');
    await waitFor(async () => store.accepted > 20, 20000, 'writes by node 1');
    await new Promise((r) => setTimeout(r, 500));
    const t0 = history.elapsed();
    if (fault === 'kill') { down.add(1); await cl.killed(1); } else cl.kill(1, 'SIGSTOP');
    let mountedAt = 0;
    let writingAt = 0;
    await waitFor(async () => {
      const m = history.events.find((e) => e.type === 'vmount' && e.accepted && e.node !== 1 && e.t > t0);
      if (m) mountedAt = m.t;
      const w = history.events.find((e) => e.type === 'vwrite' && e.accepted && e.node !== 1 && e.t > t0);
      if (w) writingAt = w.t;
      return mountedAt > 0 && writingAt > 0;
    }, 10 * leaseMs + 20000, 'the takeover');
    if (fault === 'pause') cl.kill(1, 'SIGCONT');
    return { mountedMs: mountedAt - t0, writingMs: writingAt - t0 };
  } finally {
    store.close();
    await cl.stopAll();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { leases: { type: 'string', default: '1500,3000,10000' }, runs: { type: 'string', default: '2' }, 'fence-bound-ms': { type: 'string', default: '300' } } });
  const leases = values.leases!.split(',').map(Number);
  const runs = Number(values.runs);
  const bound = Number(values['fence-bound-ms']);
  console.log(`volume failover, 3 nodes on loopback, command driver, fence bound ${bound} ms; ${new Date().toISOString()}, ${os.cpus().length} cpus, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log('| fault | lease ms | runs | fault → standby mounted, ms (median, range) | fault → first write, ms | target lease + bound + 1 s | writing / target |');
  console.log('|---|---|---|---|---|---|---|');
  for (const fault of ['kill', 'pause'] as const) {
    for (const lease of leases) {
      const rs = [];
      for (let i = 0; i < runs; i++) rs.push(await once(lease, bound, fault));
      const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const m = rs.map((r) => r.mountedMs);
      const w = rs.map((r) => r.writingMs);
      const target = lease + bound + 1000;
      console.log(`| ${fault === 'kill' ? 'kill -9 (power loss)' : 'SIGSTOP of mxfsd'} | ${lease} | ${runs} | ${Math.round(med(m))} (${Math.round(Math.min(...m))}–${Math.round(Math.max(...m))}) | ${Math.round(med(w))} | ${target} | ${(med(w) / target).toFixed(2)} |`);
    }
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
