/**
 * Builds of MXFS against Redis in one run: the before/after of a change in the ratios that
 * `npm run bench:peers` states issue 13's targets in (docs/benchmarks.md). Every build (a
 * checkout with a built dist/) runs its own 3-node cluster, names mastered on the client's
 * node; one redis-server beside them. Each repetition runs bench/peers/workloads.ts's 1-client
 * pairs, N clients on their own names and N clients on one name against every column, rotating
 * the columns' order; prints per figure the median (range) of each column and each build's
 * ratio to Redis, with the 1-minute load average. Appends nothing.
 *
 * Usage: node dist/bench/peers/builds.js --builds ROOT,ROOT,... [--seconds S] [--reps N] [--clients N]
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from '../../test/support/daemon-proc';
import type { Column } from './systems';
import { RedisSystem } from './systems';
import { oneName, ownNames } from './workloads';

interface Side { label: string; col: Column; stop(): Promise<void>; w: { ownNames: typeof ownNames; oneName: typeof oneName } }

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    builds: { type: 'string', default: ROOT }, seconds: { type: 'string', default: '3' }, reps: { type: 'string', default: '3' }, clients: { type: 'string', default: '16' },
  } });
  const seconds = Number(values.seconds), reps = Number(values.reps), clients = Number(values.clients);
  if (!(seconds > 0) || !(reps >= 1) || !(clients >= 1)) throw new Error('peers/builds: --seconds, --reps and --clients must be positive');
  const sides: Side[] = [];
  const red = new RedisSystem();
  try {
    for (const [i, root] of values.builds!.split(',').map((r) => path.resolve(r)).entries()) {
      // Each build's own harness and client library, from its dist/ (this file is in dist/bench/peers/).
      const sys = require(path.join(root, 'dist', 'bench', 'peers', 'systems')) as typeof import('./systems');
      const w = require(path.join(root, 'dist', 'bench', 'peers', 'workloads')) as typeof import('./workloads');
      const m = new sys.MxfsSystem(3000);
      await m.start();
      const label = `${i}:${path.basename(root)}`;
      sides.push({ label, col: m.column(1, label), stop: () => m.stop(), w });
    }
    await red.start();
    sides.push({ label: 'Redis', col: red.column(), stop: () => red.stop(), w: { ownNames, oneName } });
    const res = new Map<string, Map<string, number[]>>();
    const add = (k: string, label: string, v: number) => {
      let m = res.get(k);
      if (!m) res.set(k, (m = new Map()));
      m.set(label, [...(m.get(label) ?? []), v]);
    };
    const loads: number[] = [];
    for (let r = 0; r < reps; r++) {
      for (let i = 0; i < sides.length; i++) {
        const s = sides[(i + r) % sides.length]!;
        const one = await s.w.ownNames(s.col, 1, seconds, `r${r}one`);
        add('1 client, lock+unlock on distinct names (pairs/s)', s.label, one.perSec);
        add('1 client, pair p50 (µs)', s.label, one.p50us);
        add(`${clients} clients on their own names (pairs/s)`, s.label, (await s.w.ownNames(s.col, clients, seconds, `r${r}own`)).perSec);
        const hot = await s.w.oneName(s.col, clients, seconds, `r${r}hot`);
        add(`${clients} clients on one name (pairs/s)`, s.label, hot.perSec);
        add(`${clients} clients on one name, wait for the grant p99 (ms)`, s.label, hot.waitP99us / 1000);
        add(`${clients} clients on one name, fewest/most pairs of a client`, s.label, hot.minMaxRatio);
        loads.push(os.loadavg()[0]!);
        process.stderr.write(`rep ${r + 1} ${s.label}: 1 client ${Math.round(one.perSec)} pairs/s, load ${loads[loads.length - 1]!.toFixed(1)}\n`);
      }
    }
    const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
    const fmt = (v: number) => (Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US').replace(/,/g, ' ') : v.toFixed(2));
    const cell = (v: number[]) => (v.length > 1 ? `${fmt(med(v))} (${fmt(Math.min(...v))}–${fmt(Math.max(...v))})` : fmt(v[0]!));
    const builds = sides.filter((s) => s.label !== 'Redis');
    console.log(`# ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${os.cpus().length}× ${os.cpus()[0]?.model.trim()}, Node ${process.version}; MXFS 3 nodes, master on the client's node; ${seconds} s per figure, ${reps} repetition(s) rotating the columns, median (range); load 1 min ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}\n`);
    console.log(`| figure | ${sides.map((s) => s.label).join(' | ')} | ${builds.map((b) => `${b.label} / Redis`).join(' | ')} |`);
    console.log(`|---|${sides.map(() => '---').join('|')}|${builds.map(() => '---').join('|')}|`);
    for (const [k, by] of res) console.log(`| ${k} | ${sides.map((s) => cell(by.get(s.label)!)).join(' | ')} | ${builds.map((b) => (med(by.get(b.label)!) / med(by.get('Redis')!)).toFixed(2)).join(' | ')} |`);
  } finally {
    await Promise.allSettled(sides.map((s) => s.stop()).concat(red.stop()));
  }
}

main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
