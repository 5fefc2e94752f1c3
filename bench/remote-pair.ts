/**
 * One client's lock+unlock pairs with the master on the client's node and on another node,
 * for two (or more) builds of MXFS side by side in one run: the figure the thread pipe
 * between the lock engine and the cluster worker costs (docs/benchmarks.md, "Remote pair
 * across builds"). Every build runs its own 3-node cluster on loopback for the whole run;
 * the repetitions alternate the builds (rotating their order) so a change in the machine's
 * load hits each build alike. Prints per build and workload the median (range) of pairs/s,
 * p50 and p99, the ratio of each build to the first, the transport floor (TCP and Unix echo
 * round trips), the 1-minute load average, and the CPU time node 1 and node 2 spent per pair
 * (main thread, other threads; of it the system time of both, /proc/PID/stat) with the time their threads were runnable but waiting for a
 * CPU (Linux schedstat) and their context switches: on a shared machine these are the
 * steadier figures. Each build's pairs run through that build's own client library (from its
 * dist/), and the CPU this process (the client's) spent per pair is printed too. A second table
 * gives each build's ratios to the base taken within each repetition, median (range).
 *
 * Usage: node dist/bench/remote-pair.js [--builds ROOT,ROOT,...] [--seconds S] [--reps N]
 *        [--lease-ms MS] [--prof DIR [--prof-interval US]] [--only remote|local] [--inspect N] [--fresh]
 *   --builds: repository roots with a built dist/ (default: this tree). The first is the base.
 *             ROOT+trace runs that build's nodes with [trace] enabled (the cost of tracing lock
 *             messages across nodes, the cluster worker's events included), ring_size 65 536;
 *             ROOT+trace=N with ring_size N (how much of the cost is the ring's footprint).
 *             With ROOT and ROOT+trace both in the run, it also prints the median (range) over
 *             the repetitions of each one's traced / untraced ratio (pairs/s, CPU per pair).
 *   --inspect: before measuring, a client on node 1 holds N names mastered by node 2 and lists
 *             the locks once (mxfsctl locks), then releases them: the large replies that
 *             inspection moves through both nodes' threads (the state after an operator's look).
 *   --fresh:  never reuse a name within a figure (every pair creates its resource and leaves it to
 *             idle eviction, as `bench:peers` does); by default the names wrap around after
 *             ~3 000 per second of the figure, so most pairs find their resource already there.
 *   --prof:   run every daemon under `node --cpu-prof` (profiles of both threads in
 *             DIR/<build>/nodeI/, written when the daemons stop) and print node 1's and node
 *             2's largest self shares per thread. --prof-interval: the sampling interval (µs,
 *             default 1000).
 * With MXFS_PROBE=DIR in the environment the client and the daemons (which inherit it) stamp
 * every step of a pair (src/util/probe.ts); bench/probe-report.ts prints where the time went.
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
import { echoRoundTrip } from './peers/workloads';
import { Profile, summarize } from './daemon-profile';
import { probe } from '../src/util/probe';

const now = () => performance.now();

/** `--prof-interval`: the profiler's sampling interval, µs (node's default is 1000). */
let profIntervalUs = 1000;

interface Build { label: string; root: string; dir: string; nodes: LocalNode[]; procs: ChildProcess[]; client?: MxfsClient; profDir?: string; trace: boolean; ringSize: number; lib: typeof MxfsClient }
interface Pairs { perSec: number; p50us: number; p99us: number; load: number; cpu: CpuPerPair }
/**
 * µs per pair of node 1's and node 2's main thread and other threads (the cluster worker, V8's
 * helpers) on a CPU, all of theirs runnable but waiting for one; their context switches per pair.
 */
interface CpuPerPair { n1main: number; n1rest: number; n2main: number; n2rest: number; waited: number; switches: number; sys: number; client: number }

/** [ns on a CPU, ns waiting for one] of a process's main thread and of its other threads (schedstat). */
function sched(pid: number): { main: number; rest: number; wait: number; switches: number; sys: number } {
  const out = { main: 0, rest: 0, wait: 0, switches: 0, sys: 0 };
  try { // the process's system time (all threads, USER_HZ = 100 ticks a second), in ns
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    out.sys = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[12]) * 1e7;
  } catch { /* gone */ }
  let tids: string[] = [];
  try { tids = fs.readdirSync(`/proc/${pid}/task`); } catch { return out; }
  for (const tid of tids) {
    let f: number[];
    try { f = fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number); } catch { continue; }
    if (Number(tid) === pid) out.main += f[0]!; else out.rest += f[0]!;
    out.wait += f[1]!;
    try {
      const st = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      for (const m of st.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)/gm)) out.switches += Number(m[1]);
    } catch { /* the thread ended */ }
  }
  return out;
}

function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN;
}

async function start(b: Build, leaseMs: number, hint: number): Promise<void> {
  // lock_port only for builds that have the lock engine's own links (older ones refuse the key).
  const lockPorts = fs.existsSync(path.join(b.root, 'dist', 'src', 'cluster', 'direct-link.js'));
  b.nodes = writeClusterConfigs(b.dir, 3, await pickBasePort(3, hint), leaseMs, lockPorts);
  if (b.trace) for (const nd of b.nodes) fs.appendFileSync(nd.config, `\n[trace]\nenabled = true\nring_size = ${b.ringSize}\n`);
  const mxfsd = path.join(b.root, 'dist', 'src', 'cli', 'mxfsd.js');
  for (const nd of b.nodes) {
    const prof = b.profDir ? ['--cpu-prof', `--cpu-prof-dir=${path.join(b.profDir, `node${nd.id}`)}`, `--cpu-prof-interval=${profIntervalUs}`] : [];
    b.procs.push(spawn(process.execPath, [...prof, mxfsd, '--config', nd.config], { stdio: ['ignore', 'ignore', 'inherit'] }));
  }
  await waitFor(async () => {
    const sts = await Promise.all(b.nodes.map(async (nd) => {
      try {
        const c = await MxfsClient.connect(nd.socket, { connectTimeoutMs: 500 });
        try { return (await c.status()) as { cluster: { state: string; members: number[] } }; } finally { await c.close(); }
      } catch { return undefined; }
    }));
    return sts.every((s) => s?.cluster.state === 'running' && s.cluster.members.join() === MEMBERS.join());
  }, 60000, `${b.label}: a 3-node view`);
  b.client = await b.lib.connect(b.nodes[0]!.socket, { name: 'bench-remote-pair' });
}

async function stop(b: Build): Promise<void> {
  await b.client?.close().catch(() => undefined);
  await Promise.all(b.procs.map((p) => new Promise<void>((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) { resolve(); return; }
    p.once('exit', () => resolve());
    p.kill(b.profDir ? 'SIGTERM' : 'SIGKILL'); // SIGTERM: a profiled daemon writes its profile at exit
  })));
}

async function pairs(b: Build, names: string[], seconds: number): Promise<Pairs> {
  const c = b.client!;
  for (const n of names.slice(0, 200)) await (await c.lock(n, Mode.EX)).unlock(); // warm up (and spawn) the first resources
  const pids = [b.procs[0]!.pid!, b.procs[1]!.pid!];
  const before = pids.map(sched);
  const cpu0 = process.cpuUsage();
  const lat: number[] = [];
  const end = now() + seconds * 1000;
  for (let i = 200; now() < end; i++) {
    const t = now();
    probe('c.start');
    const h = await c.lock(names[i % names.length]!, Mode.EX);
    probe('c.locked');
    await h.unlock();
    probe('c.end');
    lat.push(now() - t);
  }
  const cpu1 = process.cpuUsage(cpu0);
  const after = pids.map(sched);
  const per = (x: number) => x / 1000 / lat.length;
  const cpu = {
    n1main: per(after[0]!.main - before[0]!.main), n1rest: per(after[0]!.rest - before[0]!.rest),
    n2main: per(after[1]!.main - before[1]!.main), n2rest: per(after[1]!.rest - before[1]!.rest),
    waited: per(after[0]!.wait - before[0]!.wait + after[1]!.wait - before[1]!.wait),
    switches: (after[0]!.switches - before[0]!.switches + after[1]!.switches - before[1]!.switches) / lat.length,
    client: (cpu1.user + cpu1.system) / lat.length,
    sys: per(after[0]!.sys - before[0]!.sys + after[1]!.sys - before[1]!.sys),
  };
  lat.sort((a, b) => a - b);
  return { perSec: lat.length / seconds, p50us: quantile(lat, 0.5) * 1000, p99us: quantile(lat, 0.99) * 1000, load: os.loadavg()[0]!, cpu };
}

/** Holds `names` (256 requests in flight), lists node 1's locks once, releases them. */
async function inspectOnce(b: Build, names: string[]): Promise<void> {
  const c = await MxfsClient.connect(b.nodes[0]!.socket, { name: 'bench-inspect' });
  try {
    const held: Array<{ unlock(): Promise<void> }> = [];
    let next = 0;
    await Promise.all(Array.from({ length: 256 }, async () => { while (next < names.length) held.push(await c.lock(names[next++]!, Mode.EX)); }));
    const listed = await c.locks();
    console.error(`${b.label}: ${names.length} locks held and listed once (${JSON.stringify(listed).length} bytes of JSON)`);
    next = 0;
    await Promise.all(Array.from({ length: 256 }, async () => { while (next < held.length) await held[next++]!.unlock(); }));
  } finally {
    await c.close();
  }
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return '–';
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US').replace(/,/g, ' ');
  return v.toFixed(Math.abs(v) >= 10 ? 1 : 2);
}
const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const cell = (v: number[]) => (v.length > 1 ? `${fmt(med(v))} (${fmt(Math.min(...v))}–${fmt(Math.max(...v))})` : fmt(v[0]!));

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    builds: { type: 'string', default: ROOT }, seconds: { type: 'string', default: '5' }, reps: { type: 'string', default: '3' },
    'lease-ms': { type: 'string', default: '3000' }, prof: { type: 'string' }, 'prof-interval': { type: 'string', default: '1000' }, only: { type: 'string' }, inspect: { type: 'string', default: '0' },
    fresh: { type: 'boolean', default: false },
  } });
  const seconds = Number(values.seconds);
  profIntervalUs = Number(values['prof-interval']);
  const reps = Number(values.reps);
  const leaseMs = Number(values['lease-ms']);
  if (!(seconds > 0) || !(reps >= 1) || !(leaseMs >= 500)) throw new Error('remote-pair: --seconds, --reps must be positive, --lease-ms at least 500');
  // ROOT+trace[=N]: that build's nodes run with [trace] enabled (ring only, N events).
  const specs = values.builds!.split(',').map((r) => {
    const m = /\+trace(?:=(\d+))?$/.exec(r);
    return { root: path.resolve(m ? r.slice(0, m.index) : r), trace: !!m, ringSize: m?.[1] ? Number(m[1]) : 65536, tag: m ? m[0] : '' };
  });
  const roots = specs.map((s) => s.root);
  for (const r of roots) if (!fs.existsSync(path.join(r, 'dist', 'src', 'cli', 'mxfsd.js'))) throw new Error(`remote-pair: ${r} has no built dist/ (npm run build there)`);
  const work = tmpDir('mxfs-remote-pair-');
  const builds: Build[] = roots.map((root, i) => ({
    label: `${i}:${path.basename(root)}${specs[i]!.tag}`, root, trace: specs[i]!.trace, ringSize: specs[i]!.ringSize, dir: path.join(work, `b${i}`), nodes: [], procs: [],
    profDir: values.prof ? path.join(path.resolve(values.prof), `b${i}`) : undefined,
    // Each build's own client library (its dist/), so a change to the client shows in its column.
    lib: (require(path.join(root, 'dist', 'src', 'client', 'client')) as typeof import('../src/client/client')).MxfsClient,
  }));
  const results = new Map<string, Pairs[]>();
  const floors: Record<'tcp' | 'unix', number[]> = { tcp: [], unix: [] };
  try {
    for (const [i, b] of builds.entries()) await start(b, leaseMs, process.pid + i * 977);
    const inspect = Number(values.inspect);
    if (inspect > 0) for (const b of builds) await inspectOnce(b, namesOn(2, 'inspected', inspect));
    const perRun = Math.ceil(seconds * (values.fresh ? 20000 : 3000)) + 400;
    for (let r = 0; r < reps; r++) {
      floors.tcp.push((await echoRoundTrip('tcp', 5000)).p50us);
      floors.unix.push((await echoRoundTrip('unix', 5000)).p50us);
      for (let k = 0; k < builds.length; k++) {
        const b = builds[(r + k) % builds.length]!;
        for (const [where, master] of ([['remote', 2], ['local', 1]] as const).filter(([w]) => !values.only || values.only === w)) {
          const p = await pairs(b, namesOn(master, `r${r}${where}`, perRun), seconds);
          const key = `${b.label} ${where}`;
          results.set(key, [...(results.get(key) ?? []), p]);
          console.error(`rep ${r + 1} ${key}: ${Math.round(p.perSec)} pairs/s, p50 ${Math.round(p.p50us)} µs, CPU µs/pair ${JSON.stringify(p.cpu, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v) : v))}, load ${p.load.toFixed(2)}`);
        }
      }
    }
  } finally {
    for (const b of builds) await stop(b);
    fs.rmSync(work, { recursive: true, force: true });
  }
  const loads = [...results.values()].flat().map((p) => p.load);
  console.log(`# ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${os.cpus().length}× ${os.cpus()[0]?.model.trim()}, Node ${process.version}; 1 client, lock(EX)+unlock on distinct names${values.fresh ? ' (never reused)' : ''}, ${seconds} s per figure, ${reps} repetition(s) alternating the builds, median (range); load 1 min ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)}`);
  console.log(`# transport floor p50: TCP echo ${cell(floors.tcp)} µs, Unix echo ${cell(floors.unix)} µs`);
  console.log('\n| build | master | pairs/s | × base | p50 (µs) | × base | p99 (µs) | p50 / floor | CPU µs per pair: node 1 main + other threads, node 2 main + other threads | × base | of which system time (nodes 1 and 2) | waiting for a CPU, µs per pair | context switches per pair (nodes 1 and 2) | client process CPU µs per pair | × base |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  const floorRemote = 2 * med(floors.unix) + 2 * med(floors.tcp);
  const floorLocal = 2 * med(floors.unix);
  for (const where of (['remote', 'local'] as const).filter((w) => !values.only || values.only === w)) {
    const base = results.get(`${builds[0]!.label} ${where}`)!;
    for (const b of builds) {
      const x = results.get(`${b.label} ${where}`)!;
      const ps = x.map((p) => p.perSec), p50 = x.map((p) => p.p50us);
      const cpu = (k: keyof CpuPerPair) => med(x.map((p) => p.cpu[k]));
      const total = (ys: Pairs[]) => med(ys.map((p) => p.cpu.n1main + p.cpu.n1rest + p.cpu.n2main + p.cpu.n2rest));
      console.log(`| ${b.label} | ${where} | ${cell(ps)} | ${(med(ps) / med(base.map((p) => p.perSec))).toFixed(2)} | ${cell(p50)} | ${(med(p50) / med(base.map((p) => p.p50us))).toFixed(2)} | ${cell(x.map((p) => p.p99us))} | ${(med(p50) / (where === 'remote' ? floorRemote : floorLocal)).toFixed(2)} | ${fmt(cpu('n1main'))} + ${fmt(cpu('n1rest'))}, ${fmt(cpu('n2main'))} + ${fmt(cpu('n2rest'))} | ${(total(x) / total(base)).toFixed(2)} | ${fmt(cpu('sys'))} | ${fmt(cpu('waited'))} | ${fmt(cpu('switches'))} | ${cell(x.map((p) => p.cpu.client))} | ${(cpu('client') / med(base.map((p) => p.cpu.client))).toFixed(2)} |`);
    }
  }
  // Ratios taken within each repetition (a build against the base's figure of the same
  // repetition, seconds apart): steadier than ratios of medians when the machine switches
  // between fast and slow states during the run.
  console.log('\n| build | master | per repetition × base, median (range): pairs/s | p50 | CPU per pair, nodes 1 and 2, all threads | the client process, CPU per pair | repetitions with less client CPU than the base |');
  console.log('|---|---|---|---|---|---|---|');
  for (const where of (['remote', 'local'] as const).filter((w) => !values.only || values.only === w)) {
    const base = results.get(`${builds[0]!.label} ${where}`)!;
    for (const b of builds.slice(1)) {
      const x = results.get(`${b.label} ${where}`)!;
      const ratio = (f: (p: Pairs) => number) => x.map((p, i) => f(p) / f(base[i]!));
      const daemon = (p: Pairs) => p.cpu.n1main + p.cpu.n1rest + p.cpu.n2main + p.cpu.n2rest;
      const ratioCell = (v: number[]) => `${med(v).toFixed(2)} (${Math.min(...v).toFixed(2)}–${Math.max(...v).toFixed(2)})`;
      const client = ratio((p) => p.cpu.client);
      console.log(`| ${b.label} | ${where} | ${ratioCell(ratio((p) => p.perSec))} | ${ratioCell(ratio((p) => p.p50us))} | ${ratioCell(ratio(daemon))} | ${ratioCell(client)} | ${client.filter((r) => r < 1).length} of ${client.length} |`);
    }
  }
  // Tracing's cost as the median of each repetition's own ratio (traced / untraced of the same
  // build, measured in the same repetition): a change of the machine's state between
  // repetitions falls out of it, unlike the ratio of the medians above.
  for (const t of builds.filter((b) => b.trace)) {
    const u = builds.find((b) => !b.trace && b.root === t.root);
    if (!u) continue;
    for (const where of (['remote', 'local'] as const).filter((w) => !values.only || values.only === w)) {
      const xs = results.get(`${t.label} ${where}`)!, ys = results.get(`${u.label} ${where}`)!;
      const cpu = (p: Pairs) => p.cpu.n1main + p.cpu.n1rest + p.cpu.n2main + p.cpu.n2rest;
      const rps = xs.map((x, r) => x.perSec / ys[r]!.perSec), rcpu = xs.map((x, r) => cpu(x) / cpu(ys[r]!));
      const show = (v: number[]) => `${med(v).toFixed(2)} (${Math.min(...v).toFixed(2)}–${Math.max(...v).toFixed(2)})`;
      console.log(`# ${t.label} / ${u.label}, ${where}, per-repetition ratios: pairs/s ${show(rps)}, CPU per pair ${show(rcpu)}`);
    }
  }
  if (values.prof) {
    for (const b of builds) for (const id of [1, 2]) {
      const dir = path.join(b.profDir!, `node${id}`);
      for (const f of fs.existsSync(dir) ? fs.readdirSync(dir).filter((x) => x.endsWith('.cpuprofile')) : []) {
        const s = summarize(JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Profile);
        console.log(`\n## ${b.label} node ${id}, ${f}: self`);
        for (const [k, v] of s.self.slice(0, 25)) console.log(`${(100 * v).toFixed(1).padStart(5)} %  ${k}`);
        console.log(`## ... inclusive`);
        for (const [k, v] of s.total.slice(0, 40)) console.log(`${(100 * v).toFixed(1).padStart(5)} %  ${k}`);
      }
    }
  }
}

main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
