/**
 * Benchmark: what tracing costs in lock throughput, same run, as ratios.
 *
 * Standalone mxfsd processes, each with its own client process load (16 clients, lock(EX) +
 * unlock on their own resources in a loop, which keeps the daemon's one thread busy: the
 * worst case for per-message overhead), measured in interleaved rounds so that machine noise
 * hits every configuration alike:
 *   off       [trace] enabled = false (this build)
 *   on        [trace] enabled = true, ring only
 *   on+file   [trace] enabled = true with a file (NDJSON, rotating)
 *   baseline  (--baseline DIR: another built checkout, e.g. the commit before tracing existed
 *             or main, with tracing off)
 *   baseline-on  the --baseline build with [trace] on, ring only (its own cost, same run)
 * Each row: median pairs/s over the rounds, and the daemon's own CPU time per pair (all its
 * threads, from /proc/PID/stat, summed over the rounds), and the user part of it (the system
 * part is mostly the reply's write, whose cost of waking the client grows when the clients
 * wait longer, i.e. when the daemon is slower: docs/benchmarks.md, "Tracing"). On a shared machine the throughput
 * swings with other processes' load; the CPU time per pair does not, and on a dedicated core
 * throughput is its inverse: `cost ratio` = CPU per pair / CPU per pair of `off` (the
 * baseline's rows: of `baseline`), and `median round ratio` the median over the rounds of
 * that ratio within one round (the configurations of a round run seconds apart, so a change
 * in the machine's load between rounds falls out of it). Targets
 * (issue 12): tracing on costs at most 15 % (cost ratio <= 1.15); off costs nothing
 * measurable against the baseline.
 *
 * --together: each round runs every configuration at the same time (each with its own N
 * clients, all in this process), so that a burst of other work on the machine hits them all
 * alike; pairs/s then say little (the configurations share this process and the cores), the
 * CPU per pair ratios are the figures. Without it, the configurations take turns.
 *
 * Usage: node dist/bench/trace-cost.js [--seconds S] [--rounds R] [--clients N] [--baseline DIR] [--configs off,on,file,baseline,baseline-on] [--together]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChildProcess, spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { MxfsClient } from '../src/client/client';
import { Mode } from '../src/dlm/modes';
import { canConnect, configText, tmpDir, waitFor } from '../test/support/daemon-proc';

interface Variant { name: string; mxfsd: string; trace?: Record<string, string | number>; proc?: ChildProcess; socket?: string; dir?: string; rates: number[]; pairs: number; cpuMs: number; userMs: number; perRound: number[] }

/** CPU time (user, system; every thread) the process has used, ms. */
function cpuMs(pid: number): [number, number] {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return [Number(rest[11]) * 1000 / 100, Number(rest[12]) * 1000 / 100]; // utime, stime in USER_HZ (100)
}

async function startVariant(v: Variant): Promise<void> {
  const dir = tmpDir('mxfs-bench-trace-');
  const extra: Record<string, Record<string, string | number>> = { logging: { level: 'warn' } };
  let text = configText(dir, extra);
  if (v.trace) text += `\n[trace]\n${Object.entries(v.trace).map(([k, x]) => `${k} = ${x}`).join('\n')}\n`;
  fs.writeFileSync(path.join(dir, 'mxfs.conf'), text);
  v.dir = dir;
  v.socket = path.join(dir, 'mxfsd.sock');
  v.proc = spawn(process.execPath, [v.mxfsd, '--config', path.join(dir, 'mxfs.conf')], { stdio: 'ignore' });
  await waitFor(() => canConnect(v.socket!), 15000, `${v.name} socket`);
}

/** One round: n clients, each lock+unlock on its own resource for `seconds`; pairs per second. */
async function round(v: Variant, n: number, seconds: number): Promise<number> {
  const clients = await Promise.all(Array.from({ length: n }, () => MxfsClient.connect(v.socket!)));
  let pairs = 0;
  const [user0, sys0] = cpuMs(v.proc!.pid!);
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(clients.map(async (c, i) => {
    while (performance.now() < end) {
      const h = await c.lock(`bench-${i}`, Mode.EX);
      await h.unlock();
      pairs++;
    }
  }));
  const took = (performance.now() - t0) / 1000;
  const [user1, sys1] = cpuMs(v.proc!.pid!);
  const used = user1 - user0 + sys1 - sys0;
  v.cpuMs += used;
  v.userMs += user1 - user0;
  v.pairs += pairs;
  v.perRound.push(used * 1000 / Math.max(1, pairs));
  await Promise.all(clients.map((c) => c.close()));
  return pairs / took;
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, rounds: { type: 'string', default: '5' }, clients: { type: 'string', default: '16' }, baseline: { type: 'string' }, configs: { type: 'string', default: 'off,on,file,baseline' }, together: { type: 'boolean', default: false } } });
  const want = new Set(values.configs!.split(','));
  const seconds = Number(values.seconds), rounds = Number(values.rounds), n = Number(values.clients);
  const here = path.join(__dirname, '..', 'src', 'cli', 'mxfsd.js');
  const variants: Variant[] = [
    { name: 'off', mxfsd: here, rates: [], pairs: 0, cpuMs: 0, userMs: 0, perRound: [] },
    ...(want.has('on') ? [{ name: 'on (ring)', mxfsd: here, trace: { enabled: 'true' }, rates: [], pairs: 0, cpuMs: 0, userMs: 0, perRound: [] }] : []),
    ...(want.has('file') ? [{ name: 'on (ring + file)', mxfsd: here, trace: { enabled: 'true', file: 'trace.ndjson' }, rates: [], pairs: 0, cpuMs: 0, userMs: 0, perRound: [] }] : []),
  ];
  const base = values.baseline ? path.join(path.resolve(values.baseline), 'dist', 'src', 'cli', 'mxfsd.js') : undefined;
  if (base && want.has('baseline')) variants.push({ name: 'baseline', mxfsd: base, rates: [], pairs: 0, cpuMs: 0, userMs: 0, perRound: [] });
  if (base && want.has('baseline-on')) variants.push({ name: 'baseline, on (ring)', mxfsd: base, trace: { enabled: 'true' }, rates: [], pairs: 0, cpuMs: 0, userMs: 0, perRound: [] });
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  try {
    for (const v of variants) await startVariant(v);
    for (let r = 0; r < rounds && values.together; r++) {
      const rates = await Promise.all(variants.map((v) => round(v, n, seconds)));
      rates.forEach((x, k) => variants[k]!.rates.push(x));
    }
    for (let r = 0; r < rounds && !values.together; r++) {
      // Rotate the order each round, so no configuration always runs first or last.
      for (let k = 0; k < variants.length; k++) {
        const v = variants[(r + k) % variants.length]!;
        v.rates.push(await round(v, n, seconds));
      }
    }
  } finally {
    for (const v of variants) { v.proc?.kill('SIGTERM'); }
    await new Promise((r) => setTimeout(r, 300));
    for (const v of variants) if (v.dir) fs.rmSync(v.dir, { recursive: true, force: true });
  }
  const off = variants[0]!;
  const baseOff = variants.find((v) => v.name === 'baseline');
  // A baseline's traced row is compared with the baseline untraced, the rest with this build's off.
  const ref = (v: Variant) => (v.mxfsd === base && baseOff ? baseOff : off);
  const perPair = (v: Variant) => v.cpuMs * 1000 / v.pairs;
  const userPerPair = (v: Variant) => v.userMs * 1000 / v.pairs;
  console.log(`# ${new Date().toISOString()}  ${os.cpus().length}x ${os.cpus()[0]?.model}  node ${process.version}  load ${load} -> ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`# ${n} clients, lock(EX)+unlock on own resources, ${rounds} ${values.together ? 'rounds of' : 'interleaved rounds of'} ${seconds}s per configuration${values.together ? ', all configurations at once' : ''}`);
  console.log('| configuration | pairs/s (median) | min | max | daemon CPU µs per pair | of which user | cost ratio to off | user ratio | median round ratio (min–max) |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const v of variants) {
    const m = median(v.rates);
    const r = ref(v);
    const ratios = v.perRound.map((x, i) => x / r.perRound[i]!);
    console.log(`| ${v.name} | ${Math.round(m)} | ${Math.round(Math.min(...v.rates))} | ${Math.round(Math.max(...v.rates))} | ${perPair(v).toFixed(1)} | ${userPerPair(v).toFixed(1)} | ${(perPair(v) / perPair(r)).toFixed(3)} | ${(userPerPair(v) / userPerPair(r)).toFixed(3)} | ${median(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}) |`);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
