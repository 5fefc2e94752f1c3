/**
 * What a remote lock pair allocates and promotes in the daemons, traced and untraced: a
 * load-independent companion to bench/remote-pair.ts (docs/benchmarks.md, "Tracing"). Each
 * build runs its own 3-node cluster on loopback, one client on node 1 locks(EX)+unlocks names
 * mastered by node 2; after --warmup pairs, V8's sampling heap profiler (bench/alloc-sampler.ts,
 * preloaded into every daemon thread) counts every allocation of --pairs pairs, collected or not,
 * and `--trace-gc-nvp` gives the bytes promoted to the old generation in that window.
 *
 * Prints per build and node (main thread; the cluster worker thread apart): KB allocated per
 * pair, bytes promoted per pair, the largest allocating functions; with ROOT and ROOT+trace in
 * the run, the functions whose allocation per pair grew most with tracing.
 *
 * Usage: node dist/bench/trace-alloc.js [--builds ROOT,ROOT+trace,...] [--pairs N] [--warmup N] [--interval BYTES] [--top N]
 *   --builds: repository roots with a built dist/ (default: this tree, untraced and traced);
 *             ROOT+trace runs that build's nodes with [trace] enabled (ring only, 65 536 events).
 */
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MxfsClient } from '../src/client/client';
import { Mode } from '../src/dlm/modes';
import { MEMBERS, namesOn } from './names-on';
import { pickBasePort, writeClusterConfigs, LocalNode } from '../src/local-cluster/local-cluster';
import { ROOT, tmpDir, waitFor } from '../test/support/daemon-proc';

const SAMPLER = path.join(__dirname, 'alloc-sampler.js');

interface HeapNode { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: HeapNode[] }
interface ThreadAlloc { bytes: number; promoted: number; byFn: Map<string, number> }
interface NodeAlloc { main: ThreadAlloc; workers: ThreadAlloc }
interface Result { label: string; root: string; trace: boolean; pairs: number; nodes: NodeAlloc[] }

const emptyThread = (): ThreadAlloc => ({ bytes: 0, promoted: 0, byFn: new Map() });

/** Every node of a sampling heap profile, its allocation added to `into` under "function file:line". */
function walk(n: HeapNode, into: ThreadAlloc): void {
  if (n.selfSize > 0) {
    const f = n.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url ? `${path.basename(f.url)}:${f.lineNumber + 1}` : ''}`.trim();
    into.byFn.set(key, (into.byFn.get(key) ?? 0) + n.selfSize);
    into.bytes += n.selfSize;
  }
  for (const c of n.children) walk(c, into);
}

async function measure(label: string, root: string, trace: boolean, warmup: number, pairs: number, interval: number, hint: number): Promise<Result> {
  const work = tmpDir('mxfs-trace-alloc-');
  const ctl = path.join(work, 'ctl');
  fs.mkdirSync(ctl);
  const lockPorts = fs.existsSync(path.join(root, 'dist', 'src', 'cluster', 'direct-link.js'));
  const nodes: LocalNode[] = writeClusterConfigs(path.join(work, 'c'), 3, await pickBasePort(3, hint), 3000, lockPorts);
  if (trace) for (const nd of nodes) fs.appendFileSync(nd.config, '\n[trace]\nenabled = true\nring_size = 65536\n');
  const mxfsd = path.join(root, 'dist', 'src', 'cli', 'mxfsd.js');
  const procs: ChildProcess[] = [];
  const out = nodes.map(() => ({ stdout: '', stderr: '' }));
  for (const [i, nd] of nodes.entries()) {
    const p = spawn(process.execPath, ['--trace-gc-nvp', '--require', SAMPLER, mxfsd, '--config', nd.config], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MXFS_ALLOC_DIR: ctl, MXFS_ALLOC_INTERVAL: String(interval) },
    });
    p.stdout!.on('data', (d: Buffer) => { out[i]!.stdout += d.toString(); });
    p.stderr!.on('data', (d: Buffer) => { out[i]!.stderr += d.toString(); });
    procs.push(p);
  }
  let client: MxfsClient | undefined;
  try {
    await waitFor(async () => {
      const sts = await Promise.all(nodes.map(async (nd) => {
        try {
          const c = await MxfsClient.connect(nd.socket, { connectTimeoutMs: 500 });
          try { return (await c.status()) as { cluster: { state: string; members: number[] } }; } finally { await c.close(); }
        } catch { return undefined; }
      }));
      return sts.every((s) => s?.cluster.state === 'running' && s.cluster.members.join() === MEMBERS.join());
    }, 60000, `${label}: a 3-node view`);
    const lib = (require(path.join(root, 'dist', 'src', 'client', 'client')) as typeof import('../src/client/client')).MxfsClient;
    client = await lib.connect(nodes[0]!.socket, { name: 'bench-trace-alloc' });
    const names = namesOn(2, 'alloc', warmup + pairs);
    for (let i = 0; i < warmup; i++) await (await client.lock(names[i]!, Mode.EX)).unlock();
    fs.writeFileSync(path.join(ctl, 'start'), '');
    await new Promise((r) => setTimeout(r, 300)); // every thread polls every 50 ms
    for (let i = warmup; i < warmup + pairs; i++) await (await client.lock(names[i]!, Mode.EX)).unlock();
    fs.writeFileSync(path.join(ctl, 'stop'), '');
    const mains = [procs[0]!.pid, procs[1]!.pid].map((pid) => `${pid}-0.done`);
    await waitFor(async () => mains.every((f) => fs.existsSync(path.join(ctl, f))), 30000, `${label}: the heap profiles`);
    await new Promise((r) => setTimeout(r, 500)); // the worker threads' profiles
  } finally {
    await client?.close().catch(() => undefined);
    await Promise.all(procs.map((p) => new Promise<void>((resolve) => {
      if (p.exitCode !== null || p.signalCode !== null) { resolve(); return; }
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    })));
  }
  const result: Result = { label, root, trace, pairs, nodes: [] };
  for (const i of [0, 1]) {
    const pid = procs[i]!.pid!;
    const na: NodeAlloc = { main: emptyThread(), workers: emptyThread() };
    for (const f of fs.readdirSync(ctl).filter((x) => x.startsWith(`${pid}-`) && x.endsWith('.heapprofile'))) {
      const tid = Number(f.slice(String(pid).length + 1, -'.heapprofile'.length));
      walk((JSON.parse(fs.readFileSync(path.join(ctl, f), 'utf8')) as { head: HeapNode }).head, tid === 0 ? na.main : na.workers);
    }
    // Bytes promoted by the GCs in the window, per isolate: the main thread's isolate prints first.
    const windows = [...out[i]!.stderr.matchAll(/^mxfs-alloc window (\d+) (\d+) ([\d.]+) ([\d.]+)$/gm)];
    const mainWin = windows.find((w) => w[2] === '0');
    let mainIsolate: string | undefined;
    for (const m of out[i]!.stdout.matchAll(/^\[\d+:(0x[0-9a-f]+)\]\s+(\d+) ms: .*?promoted=(\d+)/gm)) {
      mainIsolate ??= m[1];
      const t = Number(m[2]);
      const promoted = Number(m[3]);
      if (m[1] === mainIsolate) { if (mainWin && t >= Number(mainWin[3]) && t <= Number(mainWin[4])) na.main.promoted += promoted; }
      else {
        const ww = windows.find((w) => w[2] !== '0');
        if (ww && t >= Number(ww[3]) && t <= Number(ww[4])) na.workers.promoted += promoted;
      }
    }
    result.nodes.push(na);
  }
  fs.rmSync(work, { recursive: true, force: true });
  return result;
}

const kb = (bytes: number, pairs: number) => (bytes / pairs / 1024).toFixed(2);

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    builds: { type: 'string', default: `${ROOT},${ROOT}+trace` }, pairs: { type: 'string', default: '4000' }, warmup: { type: 'string', default: '2000' },
    interval: { type: 'string', default: '2048' }, top: { type: 'string', default: '12' },
  } });
  const pairs = Number(values.pairs), warmup = Number(values.warmup), interval = Number(values.interval), top = Number(values.top);
  if (!(pairs >= 100) || !(warmup >= 0) || !(interval >= 1)) throw new Error('trace-alloc: --pairs at least 100, --warmup ≥ 0, --interval ≥ 1');
  const results: Result[] = [];
  for (const [i, spec] of values.builds!.split(',').entries()) {
    const trace = spec.endsWith('+trace');
    const root = path.resolve(trace ? spec.slice(0, -'+trace'.length) : spec);
    if (!fs.existsSync(path.join(root, 'dist', 'src', 'cli', 'mxfsd.js'))) throw new Error(`trace-alloc: ${root} has no built dist/`);
    const label = `${i}:${path.basename(root)}${trace ? '+trace' : ''}`;
    console.error(`${label}: ${warmup} pairs of warm-up, then ${pairs} sampled`);
    results.push(await measure(label, root, trace, warmup, pairs, interval, process.pid + i * 977));
  }
  console.log(`# ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${os.cpus().length}× ${os.cpus()[0]?.model.trim()}, Node ${process.version}; 1 client on node 1, master node 2, ${pairs} remote lock(EX)+unlock pairs after ${warmup}; sampling every ${interval} bytes, collected objects included; load 1 min ${os.loadavg()[0]!.toFixed(2)}`);
  console.log('\n| build | node 1 main: KB allocated per pair | promoted B/pair | node 1 worker KB/pair | node 2 main KB/pair | promoted B/pair | node 2 worker KB/pair | total KB/pair |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const [a, b] = r.nodes as [NodeAlloc, NodeAlloc];
    const total = a.main.bytes + a.workers.bytes + b.main.bytes + b.workers.bytes;
    console.log(`| ${r.label} | ${kb(a.main.bytes, r.pairs)} | ${Math.round(a.main.promoted / r.pairs)} | ${kb(a.workers.bytes, r.pairs)} | ${kb(b.main.bytes, r.pairs)} | ${Math.round(b.main.promoted / r.pairs)} | ${kb(b.workers.bytes, r.pairs)} | ${kb(total, r.pairs)} |`);
  }
  for (const r of results) for (const [i, n] of r.nodes.entries()) {
    console.log(`\n## ${r.label} node ${i + 1} main thread, largest allocations (KB per pair)`);
    for (const [k, v] of [...n.main.byFn].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`${kb(v, r.pairs).padStart(7)}  ${k}`);
  }
  // Tracing's own allocations: per function, traced minus untraced of the same build.
  for (const t of results.filter((r) => r.trace)) {
    const u = results.find((r) => !r.trace && r.root === t.root);
    if (!u) continue;
    for (const i of [0, 1]) {
      const diff = new Map<string, number>();
      for (const [k, v] of t.nodes[i]!.main.byFn) diff.set(k, v / t.pairs);
      for (const [k, v] of u.nodes[i]!.main.byFn) diff.set(k, (diff.get(k) ?? 0) - v / u.pairs);
      console.log(`\n## ${t.label} − ${u.label}, node ${i + 1} main thread: most added per pair (KB; total ${kb(t.nodes[i]!.main.bytes / t.pairs - u.nodes[i]!.main.bytes / u.pairs, 1)})`);
      for (const [k, v] of [...diff].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`${kb(v, 1).padStart(7)}  ${k}`);
    }
  }
}

main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
