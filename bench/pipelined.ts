/**
 * One client with many requests in flight, across builds: the case a change to how the daemon
 * writes its replies can hurt (written later, they let the client work less while the daemon
 * goes on). One session (one connection) runs `--window` loops at once, each taking and
 * releasing EX on its own names in turn (distinct names, so nothing waits for a lock), against
 * a 3-node cluster of each build (names mastered on the client's node, as bench/one-name.ts);
 * the repetitions rotate the builds. Per build: pairs/s and the node's CPU per pair (median,
 * range), and the median (range) of its per-repetition ratios to the first build.
 *
 * Usage: node dist/bench/pipelined.js --builds ROOT,ROOT,... [--window 64] [--seconds 2] [--reps 7]
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from '../test/support/daemon-proc';
import type { Column } from './peers/systems';
import { procCpuMs } from './daemon-profile';

interface Side { label: string; col: Column; pid: number; stop(): Promise<void> }
interface Rep { perSec: number; serverCpuUs: number }

async function run(col: Column, window: number, seconds: number, family: string): Promise<number> {
  const s = await col.session(family);
  let pairs = 0;
  try {
    const end = performance.now() + seconds * 1000;
    await Promise.all(Array.from({ length: window }, async (_, w) => {
      for (let i = 0; performance.now() < end; i++) {
        await s.unlock(await s.lock(col.name(`${family}w${w}`, i % 2000)));
        pairs++;
      }
    }));
  } finally {
    await s.close();
  }
  return pairs;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    builds: { type: 'string', default: ROOT }, window: { type: 'string', default: '64' }, seconds: { type: 'string', default: '2' }, reps: { type: 'string', default: '7' },
  } });
  const window = Number(values.window), seconds = Number(values.seconds), reps = Number(values.reps);
  if (!(window >= 1) || !(seconds > 0) || !(reps >= 1)) throw new Error('pipelined: bad --window, --seconds or --reps');
  const sides: Side[] = [];
  try {
    for (const [i, root] of values.builds!.split(',').map((r) => path.resolve(r)).entries()) {
      const sys = require(path.join(root, 'dist', 'bench', 'peers', 'systems')) as typeof import('./peers/systems');
      const m = new sys.MxfsSystem(3000);
      await m.start();
      const label = `${i}:${path.basename(root)}`;
      sides.push({ label, col: m.column(1, label), pid: m.cluster.node(1).proc!.pid!, stop: () => m.stop() });
    }
    const res = new Map<string, Rep[]>(sides.map((s) => [s.label, []]));
    const loads: number[] = [];
    for (let r = 0; r < reps; r++) {
      for (let i = 0; i < sides.length; i++) {
        const s = sides[(i + r) % sides.length]!;
        const cpu0 = procCpuMs(s.pid);
        const pairs = await run(s.col, window, seconds, `r${r}p${i}`);
        const cpu = procCpuMs(s.pid) - cpu0;
        res.get(s.label)!.push({ perSec: pairs / seconds, serverCpuUs: (cpu * 1000) / pairs });
        loads.push(os.loadavg()[0]!);
        process.stderr.write(`rep ${r + 1} ${s.label}: ${Math.round(pairs / seconds)} pairs/s, server CPU ${((cpu * 1000) / pairs).toFixed(1)} µs/pair, load ${loads[loads.length - 1]!.toFixed(1)}\n`);
      }
    }
    const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
    const fmt = (v: number) => (Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US').replace(/,/g, ' ') : v.toFixed(2));
    const cell = (v: number[]) => `${fmt(med(v))} (${fmt(Math.min(...v))}–${fmt(Math.max(...v))})`;
    console.log(`# ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${os.cpus().length}× ${os.cpus()[0]?.model.trim()}, Node ${process.version}; one client, ${window} requests in flight on distinct names, master on the client's node; ${seconds} s per figure, ${reps} repetitions rotating the builds; load 1 min ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}\n`);
    console.log(`| figure | ${sides.map((s) => s.label).join(' | ')} | ${sides.slice(1).map((s) => `${s.label} / ${sides[0]!.label} per repetition`).join(' | ')} |`);
    console.log(`|---|${sides.map(() => '---').join('|')}|${sides.slice(1).map(() => '---').join('|')}|`);
    for (const [k, title] of [['perSec', 'pairs/s'], ['serverCpuUs', 'node 1 CPU per pair (µs)']] as Array<[keyof Rep, string]>) {
      const base = res.get(sides[0]!.label)!;
      console.log(`| ${title} | ${sides.map((s) => cell(res.get(s.label)!.map((x) => x[k]))).join(' | ')} | ${sides.slice(1).map((s) => cell(res.get(s.label)!.map((x, j) => x[k] / base[j]![k]))).join(' | ')} |`);
    }
  } finally {
    await Promise.allSettled(sides.map((s) => s.stop()));
  }
}

main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
