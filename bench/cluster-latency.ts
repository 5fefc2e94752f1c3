/**
 * Benchmark: lock+unlock pairs through a 3-node cluster on loopback, from a client on node 1,
 * on a resource node 1 masters (local) and on one node 2 masters (remote: two peer round
 * trips per pair). The local figure is the peer measured in the same run; the ratio is what a
 * remote master costs. Also: time for a waiter to be granted after kill -9 of the holder's
 * node, against the configured lease.
 *
 * Usage: node dist/bench/cluster-latency.js [--seconds S] [--lease-ms MS]
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Mode } from '../src/dlm/modes';
import { resourceOn, TestCluster } from '../test/support/cluster-proc';

async function pairs(fn: () => Promise<void>, seconds: number) {
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const s = performance.now();
    await fn();
    lat.push(performance.now() - s);
  }
  lat.sort((a, b) => a - b);
  const p = (q: number) => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))]! * 1000;
  return { n: lat.length, perSec: lat.length / seconds, p50: p(0.5), p99: p(0.99) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, 'lease-ms': { type: 'string', default: '1500' } } });
  const seconds = Number(values.seconds);
  const lease = Number(values['lease-ms']);
  const cl = new TestCluster(3, lease);
  try {
    await cl.up();
    const c = await cl.client(1, 'bench');
    const local = resourceOn(1, [1, 2, 3], 'bl');
    const remote = resourceOn(2, [1, 2, 3], 'br');
    const rows: Array<[string, Awaited<ReturnType<typeof pairs>>]> = [];
    rows.push(['local master (node 1)', await pairs(async () => { const h = await c.lock(local, Mode.EX); await h.unlock(); }, seconds)]);
    rows.push(['remote master (node 2)', await pairs(async () => { const h = await c.lock(remote, Mode.EX); await h.unlock(); }, seconds)]);
    // Failover: node 3 holds, node 1 waits, node 3 is killed.
    const victim = resourceOn(2, [1, 2, 3], 'fo');
    await (await cl.client(3)).lock(victim, Mode.EX);
    const waiter = c.lock(victim, Mode.EX);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    cl.kill(3);
    await waiter;
    const failover = Date.now() - t0;
    const base = rows[0]![1];
    console.log(`# ${new Date().toISOString()}  ${os.cpus().length}x ${os.cpus()[0]?.model}  node ${process.version}  ${seconds}s per row, lease ${lease} ms`);
    console.log('| workload | pairs/s | p50 µs | p99 µs | p50 ratio to local |');
    console.log('|---|---|---|---|---|');
    for (const [name, r] of rows) console.log(`| ${name} | ${Math.round(r.perSec)} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${(r.p50 / base.p50).toFixed(2)} |`);
    console.log(`\nkill -9 of the holder's node -> waiter granted after ${failover} ms (lease ${lease} ms, ratio ${(failover / lease).toFixed(2)})`);
  } finally {
    await cl.stopAll();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
