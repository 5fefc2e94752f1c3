/**
 * `npm run bench:peers`: MXFS against Redis and etcd on this machine, side by side, in one run.
 *
 * Starts a 3-node MXFS cluster (this tree's dist/), one redis-server (no persistence) and a
 * 3-member etcd, all on loopback, and runs bench/peers/workloads.ts against each, with
 * `--reps` repetitions that rotate the order of the systems; prints the median and range of
 * every figure with the 1-minute load average seen while it was measured, the ratios the
 * performance targets (docs/benchmarks.md) are stated in, and appends the table to
 * docs/benchmarks.md (not with --quick or --no-append).
 *
 * MXFS has two columns: names mastered on the client's node (node 1) and names mastered by
 * another node (node 2); the clients always talk to node 1.
 *
 * Needs redis-server and etcd from Debian: bash bench/peers/install.sh (root).
 *
 * Usage: node dist/bench/peers/run.js [--seconds S] [--reps N] [--locks N] [--settle-s S]
 *        [--lease-ms MS] [--clients N] [--quick] [--no-append]
 * --quick: tiny figures, one repetition, a 10 s lease (a loaded CI machine must not turn a slow
 *          answer into a failure), nothing appended; exits 1 if any figure could not be taken.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Mode } from '../../src/dlm/modes';
import { ROOT } from '../../test/support/daemon-proc';
import { Column, EtcdSystem, MxfsSystem, RedisSystem } from './systems';
import { echoRoundTrip, memory, oneName, ownNames } from './workloads';

const MARKER = '<!-- bench:peers appends its runs below this line (newest last) -->';

interface Sample { value: number; load: number }
type Row = { label: string; unit: string; cells: Map<string, Sample[]> };

class Table {
  readonly rows = new Map<string, Row>();
  add(key: string, label: string, unit: string, column: string, value: number): void {
    let r = this.rows.get(key);
    if (!r) this.rows.set(key, (r = { label, unit, cells: new Map() }));
    let c = r.cells.get(column);
    if (!c) r.cells.set(column, (c = []));
    c.push({ value, load: os.loadavg()[0]! });
  }
  median(key: string, column: string): number {
    const v = (this.rows.get(key)?.cells.get(column) ?? []).map((s) => s.value).sort((a, b) => a - b);
    return v.length ? v[Math.floor(v.length / 2)]! : NaN;
  }
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return '–';
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US').replace(/,/g, ' ');
  return v.toFixed(Math.abs(v) >= 10 ? 1 : 2);
}

function cell(samples: Sample[] | undefined): string {
  if (!samples?.length) return '';
  const v = samples.map((s) => s.value).sort((a, b) => a - b);
  const med = v[Math.floor(v.length / 2)]!;
  return v.length > 1 ? `${fmt(med)} (${fmt(v[0]!)}–${fmt(v[v.length - 1]!)})` : fmt(med);
}

function render(t: Table, columns: string[]): string {
  const out = [`| figure | ${columns.join(' | ')} | load 1 min |`, `|---|${columns.map(() => '---').join('|')}|---|`];
  for (const r of t.rows.values()) {
    const loads = [...r.cells.values()].flat().map((s) => s.load);
    out.push(`| ${r.label}${r.unit ? ` (${r.unit})` : ''} | ${columns.map((c) => cell(r.cells.get(c))).join(' | ')} | ${fmt(Math.min(...loads))}–${fmt(Math.max(...loads))} |`);
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' }, reps: { type: 'string', default: '3' }, locks: { type: 'string', default: '100000' },
      'settle-s': { type: 'string', default: '60' }, 'lease-ms': { type: 'string', default: '3000' }, clients: { type: 'string', default: '16' },
      quick: { type: 'boolean', default: false }, 'no-append': { type: 'boolean', default: false },
    },
  });
  const quick = values.quick!;
  const num = (k: keyof typeof values, q: number) => {
    const v = quick ? q : Number(values[k]);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`bench:peers: --${k} must be a positive number, got '${values[k]}'`);
    return v;
  };
  const seconds = num('seconds', 0.5);
  const reps = Math.round(num('reps', 1));
  const locks = Math.round(num('locks', 2000));
  const settleS = num('settle-s', 1);
  const leaseMs = num('lease-ms', 10000);
  const clients = Math.round(num('clients', 4));

  const mxfs = new MxfsSystem(leaseMs);
  const redis = new RedisSystem();
  const etcd = new EtcdSystem();
  const t = new Table();
  const say = (s: string) => process.stderr.write(`bench:peers: ${s}\n`);
  /** A figure that could not be measured is reported with why, and the run goes on. */
  const failures: string[] = [];
  const attempt = async (what: string, fn: () => Promise<void>) => {
    try { await fn(); } catch (e) { failures.push(`${what}: ${e instanceof Error ? e.message : String(e)}`); say(`FAILED ${failures[failures.length - 1]}`); }
  };
  try {
    say(`starting MXFS (3 nodes), Redis ${redis.version}, etcd ${etcd.version} (3 members)`);
    await Promise.all([mxfs.start(), redis.start(), etcd.start()]);
    const cols: Column[] = [mxfs.column(1, 'MXFS, master on the client\'s node'), mxfs.column(2, 'MXFS, master on another node'), redis.column(), etcd.column()];
    const [local, remote, red] = cols as [Column, Column, Column, Column];
    for (let rep = 0; rep < reps; rep++) {
      const order = cols.map((_, i) => cols[(i + rep) % cols.length]!);
      for (const col of order) {
        say(`rep ${rep + 1}/${reps}: ${col.label}`);
        const f = `r${rep}`;
        await attempt(`rep ${rep + 1}, ${col.label}, 1 client`, async () => {
          const one = await ownNames(col, 1, seconds, `${f}one`);
          t.add('one', '1 client, lock+unlock on distinct names', 'pairs/s', col.label, one.perSec);
          t.add('one-p50', '1 client, pair p50', 'µs', col.label, one.p50us);
        });
        await attempt(`rep ${rep + 1}, ${col.label}, ${clients} clients on their own names`, async () => {
          const own = await ownNames(col, clients, seconds, `${f}own`);
          t.add('own', `${clients} clients on their own names`, 'pairs/s', col.label, own.perSec);
        });
        await attempt(`rep ${rep + 1}, ${col.label}, ${clients} clients on one name`, async () => {
          const hot = await oneName(col, clients, seconds, `${f}hot`);
          t.add('hot', `${clients} clients on one name`, 'pairs/s', col.label, hot.perSec);
          t.add('hot-wait', `${clients} clients on one name, wait for the grant p99`, 'ms', col.label, hot.waitP99us / 1000);
          t.add('hot-fair', `${clients} clients on one name, fewest/most pairs of a client`, 'ratio', col.label, hot.minMaxRatio);
        });
        if (col === local || col === red) {
          await attempt(`rep ${rep + 1}, ${col.label}, ${locks} held locks`, async () => {
            const m = await memory(col, locks, settleS, `${f}mem`);
            t.add('mem', `${locks} locks held by one client: server RSS per lock`, 'bytes', col.label, m.bytesPerLock);
            t.add('mem-after', `RSS ${settleS} s after releasing them, of the level before`, '%', col.label, (100 * m.rssAfter) / m.rssBefore);
          });
        }
      }
      await attempt(`rep ${rep + 1}, transport floor`, async () => {
        const floorUnix = await echoRoundTrip('unix', quick ? 200 : 5000);
        const floorTcp = await echoRoundTrip('tcp', quick ? 200 : 5000);
        t.add('floor-unix', 'transport floor: Node echo round trip, Unix socket, p50', 'µs', 'transport', floorUnix.p50us);
        t.add('floor-tcp', 'transport floor: Node echo round trip, TCP loopback, p50', 'µs', 'transport', floorTcp.p50us);
      });
      await attempt(`rep ${rep + 1}, kill -9 of a holder's node`, async () => {
        t.add('failover', `kill -9 of the holder's node → a waiter granted (lease ${leaseMs} ms)`, 'ms', local.label, await killHolder(mxfs));
      });
    }
  } finally {
    await Promise.allSettled([mxfs.stop(), redis.stop(), etcd.stop()]);
  }

  const columns = ['MXFS, master on the client\'s node', 'MXFS, master on another node', 'Redis', 'etcd', 'transport'];
  const L = columns[0]!, R = columns[1]!;
  const m = (k: string, c: string) => t.median(k, c);
  const floorLocal = 2 * m('floor-unix', 'transport');
  const floorRemote = floorLocal + 2 * m('floor-tcp', 'transport');
  const targets: Array<[string, number, string, (v: number) => boolean]> = [
    ['1 client, local master / Redis (pairs/s)', m('one', L) / m('one', 'Redis'), '≥ 1.5', (v) => v >= 1.5],
    ['1 client, remote master / Redis (pairs/s)', m('one', R) / m('one', 'Redis'), '≥ 1', (v) => v >= 1],
    [`${clients} clients on own names, local master / Redis`, m('own', L) / m('own', 'Redis'), '≥ 1', (v) => v >= 1],
    [`${clients} clients on one name, local master / Redis`, m('hot', L) / m('hot', 'Redis'), '≥ 2', (v) => v >= 2],
    [`${clients} clients on one name, wait p99 local master / Redis`, m('hot-wait', L) / m('hot-wait', 'Redis'), '≤ 0.1', (v) => v <= 0.1],
    ['every throughput workload, MXFS (worse column) / etcd (lowest)', Math.min(...['one', 'own', 'hot'].map((k) => Math.min(m(k, L), m(k, R)) / m(k, 'etcd'))), '≥ 30', (v) => v >= 30],
    ['local pair p50 / (2 Unix echo round trips)', m('one-p50', L) / floorLocal, '≤ 1.3', (v) => v <= 1.3],
    ['remote pair p50 / (2 Unix + 2 TCP echo round trips)', m('one-p50', R) / floorRemote, '≤ 2', (v) => v <= 2],
    ['bytes per held lock, MXFS', m('mem', L), '≤ 1024', (v) => v <= 1024],
    ['MXFS RSS after release, % of before', m('mem-after', L), '≤ 120', (v) => v <= 120],
  ];
  const cpu = os.cpus();
  const head = `### ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC${quick ? ' (--quick: figures too small to mean anything)' : ''}\n\n` +
    `${cpu.length}× ${cpu[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GB, Node ${process.version}; MXFS ${mxfs.version} (3 nodes, lease ${leaseMs} ms), ` +
    `Redis ${redis.version}, etcd ${etcd.version} (3 members); ${seconds} s per figure, ${reps} repetition(s) rotating the systems' order, median (range); ` +
    `${clients} clients where a row says so; Redis clients retry a refused SET NX after a random 0–2 ms sleep.\n\n`;
  const failed = failures.length ? `\nNot measured (the run went on without them):\n${failures.map((f) => `- ${f}`).join('\n')}\n` : '';
  const body = render(t, columns) + failed + '\n\n| target | measured | wanted | |\n|---|---|---|---|\n' +
    targets.map(([name, v, want, ok]) => `| ${name} | ${fmt(v)} | ${want} | ${Number.isFinite(v) ? (ok(v) ? 'met' : 'not met') : '–'} |`).join('\n') + '\n';
  process.stdout.write(head + body);
  if (!quick && !values['no-append']) appendToDocs(head + body);
  // --quick exists to prove the harness works: any figure it could not take fails it.
  if (quick && failures.length) process.exitCode = 1;
}

/** Node 3 holds a lock mastered by node 2, node 1's client waits for it, node 3 is killed. */
async function killHolder(mxfs: MxfsSystem): Promise<number> {
  const name = mxfs.nameOn(2, `fo${Date.now()}`, 0);
  const holder = await mxfs.cluster.client(3, 'bench-holder');
  await holder.lock(name, Mode.EX);
  const waiter = await mxfs.cluster.client(1, 'bench-waiter');
  const granted = waiter.lock(name, Mode.EX);
  await new Promise((r) => setTimeout(r, 200));
  const t0 = performance.now();
  await mxfs.cluster.killed(3);
  const h = await granted;
  const ms = performance.now() - t0;
  await h.unlock();
  await waiter.close();
  mxfs.cluster.start(3);
  await mxfs.cluster.waitView([1, 2, 3], 60000);
  return ms;
}

function appendToDocs(text: string): void {
  const file = path.join(ROOT, 'docs', 'benchmarks.md');
  const doc = fs.readFileSync(file, 'utf8');
  const at = doc.indexOf(MARKER);
  if (at < 0) throw new Error(`bench:peers: ${file} has no line '${MARKER}'; not appending`);
  const next = doc.indexOf('\n## ', at);
  const cut = next < 0 ? doc.length : next + 1;
  fs.writeFileSync(file, doc.slice(0, cut).replace(/\n*$/, '\n\n') + text + (next < 0 ? '' : '\n' + doc.slice(cut)));
  process.stderr.write(`bench:peers: appended to ${file}\n`);
}

main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
