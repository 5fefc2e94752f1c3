/**
 * The local pair against what any Node daemon would cost: one client takes and releases EX on
 * fresh names (every pair a new resource), through the MXFS client library of this tree,
 * against
 *   - a standalone mxfsd of each build (`--builds ROOT,...`, each a checkout with dist/ built),
 *   - bench/min-lock-server.ts: the same frames, a Map, one write per reply (no actors),
 *   - and, for scale, a plain Node echo (two 64-byte round trips per "pair", raw socket),
 *   - and redis-server (unless --no-redis) through ioredis as bench/peers drives it (SET NX PX,
 *     release by compare-and-delete),
 * in one run, the repetitions rotating the order of the servers. Per server and repetition:
 * pairs/s, the pair's p50, the server's CPU per pair (user and system from /proc/PID/stat; the
 * main thread's from schedstat, ns) and this process's (the client's) CPU per pair, the
 * 1-minute load. Then the median (range) of each figure over the repetitions, and each
 * server's ratios to the first build taken within each repetition, median (range).
 *
 * Usage: node dist/bench/local-ref.js [--builds ROOT,...] [--seconds 3] [--reps 5] [--no-echo] [--no-redis] [--ref-variants LIST]
 *   --ref-variants: also the reference with some of mxfsd's pieces added, e.g.
 *     `validate,defer,retain,validate+defer+retain` (see min-lock-server.ts)
 *   ROOT+evict=MS runs that build with [locking] idle_evict_ms = MS (what keeping idle
 *   resources costs: the default keeps every fresh name's resource for 60 s).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MxfsClient } from '../src/client/client';
import { Mode } from '../src/dlm/modes';
import { pickBasePort, writeClusterConfigs } from '../src/local-cluster/local-cluster';
import { ROOT, tmpDir, waitFor } from '../test/support/daemon-proc';
import { RedisSystem } from './peers/systems';

const now = () => performance.now();

interface Server { label: string; pid: number; socket: string; kind: 'mxfs' | 'echo' | 'redis'; stop(): Promise<void> | void; redis?: RedisSystem }
interface Figure { perSec: number; p50us: number; user: number; sys: number; main: number; rest: number; client: number; load: number }

/** [user, system] CPU ms of a process (USER_HZ 100), its main thread's and its other threads' CPU ns (schedstat). */
function cpu(pid: number): { user: number; sys: number; main: number; rest: number } {
  const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  let main = 0, rest = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    let ns = 0;
    try { ns = Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]); } catch { continue; }
    if (Number(tid) === pid) main = ns; else rest += ns;
  }
  return { user: Number(f[11]) * 10, sys: Number(f[12]) * 10, main, rest };
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2; };
const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const mr = (xs: number[]) => `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;

async function startMxfsd(spec: string, dir: string, i: number): Promise<Server> {
  const [root, evict] = spec.split('+evict=') as [string, string | undefined];
  const [node] = writeClusterConfigs(path.join(dir, `b${i}`), 1, await pickBasePort(1, process.pid + 17 * i), 3000);
  if (evict !== undefined) fs.appendFileSync(node!.config, `\n[locking]\nidle_evict_ms = ${Number(evict)}\n`);
  const proc = spawn(process.execPath, [path.join(root, 'dist', 'src', 'cli', 'mxfsd.js'), '--config', node!.config], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitFor(async () => { try { const c = await MxfsClient.connect(node!.socket); await c.close(); return true; } catch { return false; } }, 30000, 'mxfsd up');
  return { label: `${i}:mxfsd ${path.basename(root)}${evict !== undefined ? ` evict ${evict} ms` : ''}`, pid: proc.pid!, socket: node!.socket, kind: 'mxfs', stop: () => { proc.kill('SIGKILL'); } };
}

async function startRef(dir: string, echo: boolean, variant = ''): Promise<Server> {
  const socket = path.join(dir, echo ? 'echo.sock' : `ref${variant}.sock`);
  const flags = variant ? variant.split('+').map((f) => `--${f}`) : [];
  const proc = spawn(process.execPath, [path.join(ROOT, 'dist', 'bench', 'min-lock-server.js'), socket, ...(echo ? ['--echo'] : flags)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.once('data', () => resolve());
    proc.once('exit', (c) => reject(new Error(`min-lock-server exited ${c}`)));
  });
  return { label: echo ? 'node echo' : `reference (min-lock-server)${variant ? ` + ${variant}` : ''}`, pid: proc.pid!, socket, kind: echo ? 'echo' : 'mxfs', stop: () => { proc.kill('SIGKILL'); } };
}

let nameSeq = 0;

async function measure(s: Server, seconds: number): Promise<Figure> {
  const lat: number[] = [];
  let pairs = 0;
  let run: () => Promise<void>;
  let done: () => Promise<void>;
  if (s.kind === 'redis') {
    const ses = await s.redis!.column().session('local-ref');
    run = async () => { await ses.unlock(await ses.lock(`lr${process.pid}-${nameSeq++}`)); };
    done = () => ses.close();
  } else if (s.kind === 'echo') {
    const sock = net.connect(s.socket);
    await new Promise<void>((r, j) => { sock.once('connect', r); sock.once('error', j); });
    const msg = Buffer.alloc(64, 1);
    let want = 0, got = 0;
    let wake: (() => void) | undefined;
    sock.on('data', (d: Buffer) => { got += d.length; if (got >= want) wake?.(); });
    const rt = () => new Promise<void>((r) => { want += msg.length; wake = r; sock.write(msg); });
    run = async () => { await rt(); await rt(); };
    done = async () => { sock.destroy(); };
  } else {
    const c = await MxfsClient.connect(s.socket, { name: 'bench-local-ref' });
    run = async () => { await (await c.lock(`lr${process.pid}-${nameSeq++}`, Mode.EX)).unlock(); };
    done = () => c.close();
  }
  for (let i = 0; i < 300; i++) await run(); // warm
  const c0 = cpu(s.pid);
  const me0 = process.cpuUsage();
  const t0 = now();
  const end = t0 + seconds * 1000;
  while (now() < end) {
    const t = now();
    await run();
    lat.push(now() - t);
    pairs++;
  }
  const secs = (now() - t0) / 1000;
  const c1 = cpu(s.pid);
  const me = process.cpuUsage(me0);
  await done();
  return {
    perSec: pairs / secs, p50us: median(lat) * 1000,
    user: ((c1.user - c0.user) * 1000) / pairs, sys: ((c1.sys - c0.sys) * 1000) / pairs, main: (c1.main - c0.main) / 1000 / pairs, rest: (c1.rest - c0.rest) / 1000 / pairs,
    client: (me.user + me.system) / pairs, load: os.loadavg()[0]!,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { builds: { type: 'string', default: ROOT }, seconds: { type: 'string', default: '3' }, reps: { type: 'string', default: '5' }, 'no-echo': { type: 'boolean', default: false }, 'no-redis': { type: 'boolean', default: false }, 'ref-variants': { type: 'string' } } });
  const seconds = Number(values.seconds), reps = Number(values.reps);
  const roots = values.builds!.split(',').map((r) => { const [a, b] = r.split('+'); return path.resolve(a!) + (b !== undefined ? `+${b}` : ''); });
  const dir = tmpDir('mxfs-localref-');
  const servers: Server[] = [];
  try {
    for (let i = 0; i < roots.length; i++) servers.push(await startMxfsd(roots[i]!, dir, i));
    servers.push(await startRef(dir, false));
    for (const v of values['ref-variants']?.split(',').filter((x) => x) ?? []) servers.push(await startRef(dir, false, v));
    if (!values['no-echo']) servers.push(await startRef(dir, true));
    if (!values['no-redis']) {
      const redis = new RedisSystem();
      await redis.start();
      servers.push({ label: `Redis ${redis.version}`, pid: redis.pid!, socket: '', kind: 'redis', redis, stop: () => redis.stop() });
    }
    const figs = servers.map(() => [] as Figure[]);
    for (let r = 0; r < reps; r++) {
      for (let k = 0; k < servers.length; k++) {
        const i = (k + r) % servers.length;
        const f = await measure(servers[i]!, seconds);
        figs[i]!.push(f);
        console.error(`rep ${r + 1} ${servers[i]!.label}: ${fmt(f.perSec)} pairs/s, p50 ${fmt(f.p50us)} µs, server user ${fmt(f.user)} + sys ${fmt(f.sys)} µs/pair (main thread ${fmt(f.main)}, other threads ${fmt(f.rest)}), client ${fmt(f.client)} µs/pair, load ${f.load.toFixed(2)}`);
      }
    }
    console.log(`\n# local pair (fresh names, 1 client), ${reps} repetitions of ${seconds} s, median (range); CPU in µs per pair`);
    console.log('| server | pairs/s | p50 (µs) | server user | server sys | server main thread | server other threads | client process | load |');
    console.log('|---|---|---|---|---|---|---|---|---|');
    servers.forEach((s, i) => {
      const f = figs[i]!;
      console.log(`| ${s.label} | ${mr(f.map((x) => x.perSec))} | ${mr(f.map((x) => x.p50us))} | ${mr(f.map((x) => x.user))} | ${mr(f.map((x) => x.sys))} | ${mr(f.map((x) => x.main))} | ${mr(f.map((x) => x.rest))} | ${mr(f.map((x) => x.client))} | ${mr(f.map((x) => x.load))} |`);
    });
    console.log(`\n# ratios to ${servers[0]!.label} within each repetition, median (range)`);
    console.log('| server | pairs/s | p50 | server main thread CPU per pair | server user CPU per pair |');
    console.log('|---|---|---|---|---|');
    servers.forEach((s, i) => {
      const ratio = (g: (x: Figure) => number) => mr(figs[i]!.map((x, r) => g(x) / g(figs[0]![r]!)));
      console.log(`| ${s.label} | ${ratio((x) => x.perSec)} | ${ratio((x) => x.p50us)} | ${ratio((x) => x.main)} | ${ratio((x) => x.user)} |`);
    });
  } finally {
    for (const s of servers) await s.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) main().catch((e) => { console.error(e instanceof Error ? e.stack : e); process.exit(1); });
