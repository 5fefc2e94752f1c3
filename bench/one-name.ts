/**
 * The contended one-name workload of bench/peers (N clients, each looping lock EX + unlock on
 * the same name) across builds, with Redis beside them, many short repetitions: issue 13's
 * "16 clients on one name" row alone, with the CPU each pair cost. Every build (a checkout
 * with a built dist/) runs its own 3-node cluster for the whole run; each repetition runs the
 * workload once against every column, rotating their order. Per column: pairs/s, wait for the
 * grant p99, fewest/most pairs of a client, CPU per pair of the MXFS nodes (node 1, and node 2
 * with --master 2; all threads, /proc) and of this process (the clients), and how often each
 * slept per pair (voluntary context switches: every one is a wake-up later). Per build: the
 * median of its per-repetition ratios to the first build and to Redis (each ratio taken within
 * one repetition, so a change of the machine's state between repetitions cancels).
 *
 * Usage: node dist/bench/one-name.js --builds ROOT,ROOT,... [--seconds 2] [--reps 9]
 *        [--clients 16] [--master 1|2] [--no-redis]
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from '../test/support/daemon-proc';
import type { Column } from './peers/systems';
import { RedisSystem } from './peers/systems';
import { oneName } from './peers/workloads';
import { procCpuMs, procSwitches } from './daemon-profile';

interface Side { label: string; col: Column; pids: number[]; stop(): Promise<void>; w: { oneName: typeof oneName } }
interface Rep { perSec: number; waitP99ms: number; fair: number; serverCpuUs: number; clientCpuUs: number; serverWakes: number; serverMainWakes: number; clientWakes: number; clientMainWakes: number }

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    builds: { type: 'string', default: ROOT }, seconds: { type: 'string', default: '2' }, reps: { type: 'string', default: '9' },
    clients: { type: 'string', default: '16' }, master: { type: 'string', default: '1' }, 'no-redis': { type: 'boolean', default: false },
  } });
  const seconds = Number(values.seconds), reps = Number(values.reps), clients = Number(values.clients), master = Number(values.master);
  if (!(seconds > 0) || !(reps >= 1) || !(clients >= 1) || !(master === 1 || master === 2)) throw new Error('one-name: bad --seconds, --reps, --clients or --master');
  const sides: Side[] = [];
  const red = values['no-redis'] ? undefined : new RedisSystem();
  try {
    for (const [i, root] of values.builds!.split(',').map((r) => path.resolve(r)).entries()) {
      const sys = require(path.join(root, 'dist', 'bench', 'peers', 'systems')) as typeof import('./peers/systems');
      const w = require(path.join(root, 'dist', 'bench', 'peers', 'workloads')) as typeof import('./peers/workloads');
      const m = new sys.MxfsSystem(3000);
      await m.start();
      const label = `${i}:${path.basename(root)}`;
      const pids = (master === 1 ? [1] : [1, 2]).map((n) => m.cluster.node(n).proc!.pid!);
      sides.push({ label, col: m.column(master, label), pids, stop: () => m.stop(), w });
    }
    if (red) {
      await red.start();
      const pid = (red as unknown as { proc: { pid: number } }).proc.pid;
      sides.push({ label: 'Redis', col: red.column(), pids: [pid], stop: () => red.stop(), w: { oneName } });
    }
    const res = new Map<string, Rep[]>(sides.map((s) => [s.label, []]));
    const loads: number[] = [];
    for (let r = 0; r < reps; r++) {
      for (let i = 0; i < sides.length; i++) {
        const s = sides[(i + r) % sides.length]!;
        const cpu0 = s.pids.reduce((a, p) => a + procCpuMs(p), 0);
        const sw0 = s.pids.map((p) => procSwitches(p)), me0sw = procSwitches(process.pid);
        const me0 = process.cpuUsage();
        const hot = await s.w.oneName(s.col, clients, seconds, `r${r}hot${i}`);
        const me = process.cpuUsage(me0);
        const cpu = s.pids.reduce((a, p) => a + procCpuMs(p), 0) - cpu0;
        const sw = s.pids.map((p, k) => { const x = procSwitches(p); return { vol: x.vol - sw0[k]!.vol, mainVol: x.mainVol - sw0[k]!.mainVol }; });
        const serverWakes = sw.reduce((a, x) => a + x.vol, 0) / hot.pairs, serverMainWakes = sw.reduce((a, x) => a + x.mainVol, 0) / hot.pairs;
        const me1sw = procSwitches(process.pid);
        const clientWakes = (me1sw.vol - me0sw.vol) / hot.pairs, clientMainWakes = (me1sw.mainVol - me0sw.mainVol) / hot.pairs;
        res.get(s.label)!.push({ perSec: hot.perSec, waitP99ms: hot.waitP99us / 1000, fair: hot.minMaxRatio, serverCpuUs: (cpu * 1000) / hot.pairs, clientCpuUs: (me.user + me.system) / hot.pairs, serverWakes, serverMainWakes, clientWakes, clientMainWakes });
        loads.push(os.loadavg()[0]!);
        process.stderr.write(`rep ${r + 1} ${s.label}: ${Math.round(hot.perSec)} pairs/s, wait p99 ${(hot.waitP99us / 1000).toFixed(2)} ms, fair ${hot.minMaxRatio.toFixed(2)}, server CPU ${((cpu * 1000) / hot.pairs).toFixed(1)} µs/pair, sleeps per pair server ${serverWakes.toFixed(2)} (main thread ${serverMainWakes.toFixed(2)}) clients ${clientWakes.toFixed(2)} (main thread ${clientMainWakes.toFixed(2)}), load ${loads[loads.length - 1]!.toFixed(1)}\n`);
      }
    }
    const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
    const fmt = (v: number) => (Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US').replace(/,/g, ' ') : v.toFixed(2));
    const cell = (v: number[]) => `${fmt(med(v))} (${fmt(Math.min(...v))}–${fmt(Math.max(...v))})`;
    console.log(`# ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${os.cpus().length}× ${os.cpus()[0]?.model.trim()}, Node ${process.version}; ${clients} clients on one name, MXFS master on node ${master} (clients on node 1); ${seconds} s per figure, ${reps} repetitions rotating the columns, median (range); load 1 min ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}\n`);
    const keys: Array<[keyof Rep, string]> = [['perSec', 'pairs/s'], ['waitP99ms', 'wait for the grant p99 (ms)'], ['fair', 'fewest/most pairs of a client'], ['serverCpuUs', `server CPU per pair (µs${master === 2 ? ', nodes 1+2' : ''})`], ['clientCpuUs', 'clients\' process CPU per pair (µs)'], ['serverWakes', `server sleeps per pair (voluntary context switches, all threads${master === 2 ? ', nodes 1+2' : ''})`], ['serverMainWakes', 'server main thread sleeps per pair'], ['clientWakes', 'clients\' process sleeps per pair (all threads)'], ['clientMainWakes', 'clients\' main thread sleeps per pair']];
    console.log(`| figure | ${sides.map((s) => s.label).join(' | ')} |`);
    console.log(`|---|${sides.map(() => '---').join('|')}|`);
    for (const [k, title] of keys) console.log(`| ${title} | ${sides.map((s) => cell(res.get(s.label)!.map((x) => x[k]))).join(' | ')} |`);
    // Ratios within each repetition, then their median (range).
    const builds = sides.filter((s) => s.label !== 'Redis');
    const refs = [builds[0]!, ...(red ? [sides[sides.length - 1]!] : [])];
    console.log(`\n| per-repetition ratio, median (range) | ${builds.flatMap((b) => refs.filter((x) => x !== b).map((x) => `${b.label} / ${x.label}`)).join(' | ')} |`);
    console.log(`|---|${builds.flatMap((b) => refs.filter((x) => x !== b).map(() => '---')).join('|')}|`);
    for (const [k, title] of keys) {
      console.log(`| ${title} | ${builds.flatMap((b) => refs.filter((x) => x !== b).map((x) => {
        const a = res.get(b.label)!, c = res.get(x.label)!;
        return cell(a.map((v, i) => v[k] / c[i]![k]));
      })).join(' | ')} |`);
    }
  } finally {
    await Promise.allSettled(sides.map((s) => s.stop()).concat(red ? [red.stop()] : []));
  }
}

main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
