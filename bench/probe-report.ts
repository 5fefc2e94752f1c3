/**
 * Where one client's lock+unlock pairs spend their time, step by step, from the timestamp
 * probes (src/util/probe.ts) of the client and every daemon thread: docs/benchmarks.md,
 * "Where a remote pair's time goes".
 *
 * Usage:
 *   mkdir DIR && MXFS_PROBE=DIR node dist/bench/remote-pair.js --only remote --reps 1 --seconds 3
 *   node dist/bench/probe-report.js DIR
 *
 * Merges the probe files into one timeline (CLOCK_MONOTONIC, shared by every process), cuts
 * it into pairs at the client's probes (c.start ... c.end: one client, one request at a time,
 * so everything between belongs to that pair, bar the channel's timers and acks), takes the
 * pairs whose sequence of steps is the most common one and prints, per step, the median
 * (quartiles) of the time since the step before. Threads are named C (client), N1m/N1w (the
 * first daemon to appear after the client: main thread, cluster worker), N2m/N2w, ...; daemons
 * are numbered in the order of their process ids, which is their start order in the bench.
 * Then the steps the other pairs had in addition (per 100 pairs): timers, standalone acks.
 */
import fs from 'node:fs';
import path from 'node:path';

interface Ev { t: bigint; who: string; label: string }

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
function quartiles(v: number[]): [number, number] {
  const s = [...v].sort((a, b) => a - b);
  return [s[Math.floor(s.length / 4)]!, s[Math.floor((3 * s.length) / 4)]!];
}

function main(): void {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: probe-report DIR');
  const evs: Ev[] = [];
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.txt'))) {
    for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      const [t, who, label] = line.split(' ');
      if (t && who && label) evs.push({ t: BigInt(t), who, label });
    }
  }
  evs.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
  const client = evs.find((e) => e.label === 'c.start')?.who.split('.')[0];
  if (!client) throw new Error(`${dir}: no client probes (c.start)`);
  const daemons = [...new Set(evs.map((e) => e.who.split('.')[0]!))].filter((p) => p !== client).sort((a, b) => Number(a) - Number(b));
  const name = (who: string) => {
    const [pid, thread] = who.split('.');
    if (pid === client) return 'C';
    return `N${daemons.indexOf(pid!) + 1}${thread === '0' ? 'm' : 'w'}`;
  };
  const pairs: Ev[][] = [];
  let cur: Ev[] | undefined;
  for (const e of evs) {
    if (e.label === 'c.start') cur = [e];
    else if (cur) {
      cur.push(e);
      if (e.label === 'c.end') { pairs.push(cur); cur = undefined; }
    }
  }
  const sigOf = (p: Ev[]) => p.map((e) => `${name(e.who)}:${e.label}`);
  const counts = new Map<string, number>();
  for (const p of pairs) { const k = sigOf(p).join(' '); counts.set(k, (counts.get(k) ?? 0) + 1); }
  const [common, n] = [...counts].sort((a, b) => b[1] - a[1])[0] ?? ['', 0];
  const sel = pairs.filter((p) => sigOf(p).join(' ') === common);
  const steps = common.split(' ');
  const us = (a: bigint, b: bigint) => Number(b - a) / 1000;
  console.log(`${pairs.length} pairs; the most common sequence of steps in ${n} of them; pair p50 ${median(sel.map((p) => us(p[0]!.t, p[p.length - 1]!.t))).toFixed(0)} µs`);
  console.log('step | thread:probe | µs since the step before, median (quartiles)');
  steps.forEach((s, i) => {
    const d = sel.map((p) => (i === 0 ? 0 : us(p[i - 1]!.t, p[i]!.t)));
    const [q1, q3] = quartiles(d);
    console.log(`${String(i).padStart(3)} | ${s.padEnd(28)} | ${median(d).toFixed(1).padStart(6)} (${q1.toFixed(1)}–${q3.toFixed(1)})`);
  });
  const base = new Map<string, number>();
  for (const s of steps) base.set(s, (base.get(s) ?? 0) + 1);
  const extra = new Map<string, number>();
  for (const p of pairs) {
    const c = new Map<string, number>();
    for (const s of sigOf(p)) c.set(s, (c.get(s) ?? 0) + 1);
    for (const [k, v] of c) if (v > (base.get(k) ?? 0)) extra.set(k, (extra.get(k) ?? 0) + v - (base.get(k) ?? 0));
  }
  console.log('\nsteps other pairs had in addition, per 100 pairs:');
  for (const [k, v] of [...extra].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`${((100 * v) / pairs.length).toFixed(1).padStart(6)}  ${k}`);
}

main();
