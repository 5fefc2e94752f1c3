/**
 * Where a standalone mxfsd spends its CPU under one client's lock+unlock pairs: starts the
 * daemon under `node --cpu-prof`, drives it for `--seconds` from this process, stops it
 * (SIGTERM: the profile is written at exit) and prints the functions with the largest share
 * of samples, by self time and by total (inclusive) time, plus the pairs/s seen.
 *
 * Usage: node dist/bench/daemon-profile.js [--seconds S] [--names N] [--top K] [--keep DIR]  [--clients C] [--trace] [--interval US]
 *   --names: how many distinct names the pairs rotate over (a new name spawns a resource)
 *   --clients: C clients (own connections) at once; with --names 1, the contended one-name
 *     workload of bench/peers (every client loops lock EX + unlock on the same name)
 *   --keep:  leave the .cpuprofile in DIR (open it in Chrome DevTools) instead of deleting it
 *   --trace: the daemon runs with `[trace]` on (ring only), to see what recording costs
 *   --interval: the profiler's sampling interval in µs (node's default 1000)
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MxfsClient } from '../src/client/client';
import { Mode } from '../src/dlm/modes';
import { pickBasePort, writeClusterConfigs } from '../src/local-cluster/local-cluster';
import { MXFSD, tmpDir, waitFor } from '../test/support/daemon-proc';

export interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
export interface Profile { nodes: ProfileNode[]; samples: number[] }

/** Share of samples per function (self, and inclusive of callees), largest first. */
export function summarize(p: Profile): { self: Array<[string, number]>; total: Array<[string, number]> } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${n.callFrame.lineNumber + 1}`;
  const hits = new Map<number, number>();
  for (const s of p.samples) hits.set(s, (hits.get(s) ?? 0) + 1);
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  for (const [id, count] of hits) {
    const leaf = label(byId.get(id)!);
    self.set(leaf, (self.get(leaf) ?? 0) + count);
    const seen = new Set<string>();
    for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) {
      const k = label(byId.get(x)!);
      if (!seen.has(k)) { seen.add(k); total.set(k, (total.get(k) ?? 0) + count); }
    }
  }
  const share = (m: Map<string, number>) => [...m].map(([k, v]): [string, number] => [k, v / p.samples.length]).sort((a, b) => b[1] - a[1]);
  return { self: share(self), total: share(total) };
}

/** User + system CPU time of a process so far (ms), from /proc (Linux). */
export function procCpuMs(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

/**
 * Context switches of a process so far, summed over its threads (/proc, Linux): voluntary (it
 * slept: each is a wake-up later) and involuntary (preempted); and the main thread's voluntary.
 */
export function procSwitches(pid: number): { vol: number; invol: number; mainVol: number } {
  let vol = 0, invol = 0, mainVol = 0;
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    let f: string;
    try { f = fs.readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8'); } catch { continue; } // the thread ended
    const v = Number(/^voluntary_ctxt_switches:\s*(\d+)/m.exec(f)?.[1] ?? 0);
    vol += v;
    if (t === String(pid)) mainVol = v;
    invol += Number(/^nonvoluntary_ctxt_switches:\s*(\d+)/m.exec(f)?.[1] ?? 0);
  }
  return { vol, invol, mainVol };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '8' }, names: { type: 'string', default: '50000' }, top: { type: 'string', default: '25' }, keep: { type: 'string' }, clients: { type: 'string', default: '1' }, trace: { type: 'boolean', default: false }, interval: { type: 'string', default: '1000' } } });
  const seconds = Number(values.seconds);
  const names = Number(values.names);
  const top = Number(values.top);
  const clients = Number(values.clients);
  if (!(seconds > 0) || !(names >= 1) || !(top >= 1) || !(clients >= 1)) throw new Error('daemon-profile: --seconds, --names, --top and --clients must be positive numbers');
  const dir = tmpDir('mxfs-profile-');
  const profDir = values.keep ?? path.join(dir, 'prof');
  fs.mkdirSync(profDir, { recursive: true });
  const [node] = writeClusterConfigs(path.join(dir, 'cluster'), 1, await pickBasePort(1, process.pid), 3000);
  if (values.trace) fs.appendFileSync(node!.config, '\n[trace]\nenabled = true\n');
  const daemon = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profDir}`, `--cpu-prof-interval=${Number(values.interval)}`, MXFSD, '--config', node!.config], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((r) => daemon.once('exit', () => r()));
  try {
    let c: MxfsClient | undefined;
    await waitFor(async () => { try { c = await MxfsClient.connect(node!.socket); return true; } catch { return false; } }, 30000, 'mxfsd up');
    const cs = [c!];
    while (cs.length < clients) cs.push(await MxfsClient.connect(node!.socket));
    let pairs = 0;
    const cpu0 = procCpuMs(daemon.pid!);
    const me0 = process.cpuUsage();
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    await Promise.all(cs.map(async (cl) => { while (performance.now() < end) { await (await cl.lock(`p${pairs % names}`, Mode.EX)).unlock(); pairs++; } }));
    const rate = pairs / ((performance.now() - t0) / 1000);
    const cpuPerPair = ((procCpuMs(daemon.pid!) - cpu0) * 1000) / pairs;
    const me = process.cpuUsage(me0);
    const clientPerPair = (me.user + me.system) / pairs;
    for (const cl of cs) await cl.close();
    daemon.kill('SIGTERM');
    await exited;
    const file = fs.readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(profDir, f))[0];
    if (!file) throw new Error(`daemon-profile: mxfsd wrote no profile into ${profDir}`);
    const s = summarize(JSON.parse(fs.readFileSync(file, 'utf8')) as Profile);
    console.log(`# ${clients} client(s), lock(EX)+unlock over ${names} names, ${seconds} s: ${Math.round(rate)} pairs/s, mxfsd CPU ${cpuPerPair.toFixed(1)} µs per pair (profiler on), the clients' process ${clientPerPair.toFixed(1)} µs; profile ${values.keep ? file : '(deleted)'}`);
    for (const [title, rows] of [['self', s.self], ['total (inclusive)', s.total]] as const) {
      console.log(`\n## share of mxfsd's samples, ${title}`);
      for (const [k, v] of rows.slice(0, top)) console.log(`${(100 * v).toFixed(1).padStart(5)} %  ${k}`);
    }
  } finally {
    if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
    fs.rmSync(values.keep ? path.join(dir, 'cluster') : dir, { recursive: true, force: true });
  }
}

if (require.main === module) main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
