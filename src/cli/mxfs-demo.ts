/**
 * mxfs-demo — the README's main job: starts a local 3-node MXFS cluster on 127.0.0.1 (no
 * root, no kernel module) in a temporary directory, runs a small workload against all three
 * nodes and shows a live view of the nodes, their leases and the lock traffic. Ctrl-C (or
 * --seconds) stops everything cleanly.
 *
 * The workload: workers lock a few "inode" resources in PR (read) or EX (write). A writer
 * increments a counter kept in the lock value block and writes it back on unlock; every
 * holder releases early when it gets a blocking callback. The demo checks what it sees: no
 * two holders of one resource in incompatible modes, EX tokens increasing, and the LVB
 * counter never going back.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChildProcess, spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { MxfsClient } from '../client/client';
import { compatible, Mode, modeName } from '../dlm/modes';
import { LockError } from '../dlm/types';
import { pickBasePort, writeClusterConfigs } from '../local-cluster/local-cluster';

const RESOURCES = ['inode-1', 'inode-2', 'inode-3', 'inode-4', 'volume-0'];
const NODES = 3;
const WORKERS = 6; // two per node

const USAGE = 'usage: mxfs-demo [--seconds N] [--plain]   (npm start -- [--seconds N] [--plain]; Ctrl-C stops it)\n';

/** A worker holding a lock; `valid` false once its lock was lost (the daemon told it, or its bound passed). */
interface Holder { worker: number; mode: Mode; valid: () => boolean }

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({ options: { seconds: { type: 'string' }, plain: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (e) {
    process.stderr.write(`mxfs-demo: ${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) { process.stdout.write(USAGE); return; }
  const seconds = values.seconds === undefined ? Infinity : Number(values.seconds);
  if (!(seconds > 0)) { process.stderr.write(`mxfs-demo: --seconds wants a positive number\n${USAGE}`); process.exit(2); }
  const live = process.stdout.isTTY && !values.plain;

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxfs-demo-'));
  const base = await pickBasePort(NODES, process.pid);
  const nodes = writeClusterConfigs(dir, NODES, base, 3000);
  // Each mxfsd in a process group of its own (detached): a Ctrl-C at the terminal, or
  // `timeout -s INT`, signals the demo's whole group, and a daemon that got it too would shut
  // down under workers still running, failing their requests. The demo stops them itself, in
  // order: workers first, then SIGTERM to each daemon.
  let running = true;
  const procs: ChildProcess[] = nodes.map((nd) => {
    const p = spawn(process.execPath, [path.join(__dirname, 'mxfsd.js'), '--config', nd.config], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let err = '';
    p.stderr!.on('data', (d) => { err += d; });
    p.on('exit', (code) => { if (running && code !== 0) process.stderr.write(`mxfs-demo: node ${nd.id} exited ${code}: ${err}\n`); });
    return p;
  });
  // However the demo exits (an error included), the daemons, in groups of their own, go too;
  // until the workers run a signal just exits, `stop` below takes over from then on.
  process.on('exit', () => { for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM'); });
  const abort = () => { fs.rmSync(dir, { recursive: true, force: true }); process.exit(1); };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, abort);
  const t0 = Date.now();
  const ctls: MxfsClient[] = [];
  for (const nd of nodes) {
    for (;;) {
      try { ctls.push(await MxfsClient.connect(nd.socket, { name: 'demo-view' })); break; } catch { await sleep(50); }
      if (Date.now() - t0 > 15000) { process.stderr.write('mxfs-demo: mxfsd did not start\n'); procs.forEach((p) => p.kill('SIGKILL')); process.exit(1); }
    }
  }
  process.stdout.write(`mxfs-demo: started ${NODES} nodes in ${dir}, on free ports 127.0.0.1:${nodes.map((n) => n.port).join(', ')}; waiting for the cluster to form...\n`);
  for (;;) {
    const sts = await Promise.all(ctls.map((c) => c.status()));
    if (sts.every((x) => x.cluster.state === 'running' && x.cluster.members.length === NODES)) break;
    if (Date.now() - t0 > 30000) { process.stderr.write('mxfs-demo: the cluster did not form\n'); procs.forEach((p) => p.kill('SIGKILL')); process.exit(1); }
    await sleep(100);
  }
  const ctl = ctls[0]!;

  const holders = new Map<string, Holder[]>(RESOURCES.map((r) => [r, []]));
  const maxToken = new Map<string, number>();
  const counters = new Map<string, number>();
  const violations: string[] = [];
  /** Workers that stopped on an error while the demo ran (not safety violations: nothing was granted twice). */
  const failures: string[] = [];
  const perWorker = new Array(WORKERS).fill(0);

  const worker = async (w: number) => {
    const c = await MxfsClient.connect(nodes[w % NODES]!.socket, { name: `worker-${w}` });
    while (running) {
      const res = RESOURCES[Math.floor(Math.random() * RESOURCES.length)]!;
      const mode = Math.random() < 0.3 ? Mode.EX : Mode.PR;
      let h;
      try {
        h = await c.lock(res, mode, { timeoutMs: 3000 });
      } catch (e) {
        if (!running) break;
        if (e instanceof LockError && e.code === 'TIMEOUT') continue;
        throw e;
      }
      const hs = holders.get(res)!;
      // Only locks their holders may still use count (a lost lock is not held, as in the simulation's check).
      for (const o of hs) if (o.valid() && !compatible(o.mode, mode)) violations.push(`${res}: worker ${o.worker} ${modeName(o.mode)} and worker ${w} ${modeName(mode)}`);
      const held = h;
      hs.push({ worker: w, mode, valid: () => held.valid });
      const counter = h.grant.lvbValid ? h.grant.lvb.readUInt32BE(0) : 0;
      if (counter < (counters.get(res) ?? 0)) violations.push(`${res}: LVB counter went back to ${counter}`);
      if (mode === Mode.EX) {
        if (h.grant.token <= (maxToken.get(res) ?? 0)) violations.push(`${res}: token ${h.grant.token} not increasing`);
        maxToken.set(res, h.grant.token);
      }
      let bast = false;
      h.once('bast', () => { bast = true; });
      const hold = 20 + Math.random() * 180;
      const until = Date.now() + hold;
      while (!bast && Date.now() < until && running) await sleep(10);
      hs.splice(hs.findIndex((x) => x.worker === w), 1);
      if (mode === Mode.EX) {
        const lvb = Buffer.alloc(4);
        lvb.writeUInt32BE(counter + 1);
        counters.set(res, counter + 1);
        await h.unlock({ lvb });
      } else {
        await h.unlock();
      }
      perWorker[w]++;
    }
    await c.close();
  };
  const workers = Array.from({ length: WORKERS }, (_, i) => worker(i).catch((e) => { if (running) failures.push(`worker ${i} failed: ${e.message}`); }));

  let last = { grants: 0, basts: 0, at: Date.now() };
  const view = async () => {
    const sts = await Promise.all(ctls.map((c) => c.status()));
    const lk = await ctl.locks();
    const now = Date.now();
    const dt = (now - last.at) / 1000;
    const grants = sts.reduce((a, x) => a + x.counters.grants, 0);
    const basts = sts.reduce((a, x) => a + x.counters.basts, 0);
    const gps = Math.round((grants - last.grants) / dt);
    const bps = Math.round((basts - last.basts) / dt);
    last = { grants, basts, at: now };
    const lines = [
      `MXFS demo — ${NODES}-node cluster on 127.0.0.1:${nodes.map((n) => n.port).join(',')}, up ${Math.round((now - t0) / 1000)}s   ${live ? '(Ctrl-C to stop)' : ''}`,
      `lock traffic: grants ${grants} (${gps}/s)  blocking callbacks ${basts} (${bps}/s)`,
      '',
      `${'node'.padEnd(6)} ${'state'.padEnd(11)} ${'epoch'.padStart(5)}  ${'members'.padEnd(8)} ${'clients'.padStart(7)} ${'masters'.padStart(7)}  leases (age of last renewal heard)`,
    ];
    for (const st of sts) {
      const peers = (st.cluster.transport?.peers ?? []).map((p: any) => `${p.id}:${p.state === 'alive' ? `${p.leaseAgeMs}ms` : p.state}`).join(' ');
      lines.push(`${String(st.node.id).padEnd(6)} ${st.cluster.state.padEnd(11)} ${String(st.cluster.epoch).padStart(5)}  ${st.cluster.members.join(',').padEnd(8)} ${String(st.clients).padStart(7)} ${String(st.resources).padStart(7)}  ${peers}`);
    }
    lines.push('', `${'resource'.padEnd(10)} master ${'token'.padStart(14)}  ${'lvb'.padEnd(12)} ${'granted'.padEnd(26)} waiting`);
    for (const r of lk.resources) {
      const who = (l: any) => `${l.client?.replace('worker-', 'w') ?? `n${l.owner.split(':')[0]}`}:${l.mode ?? l.requested}`;
      const lvb = r.lvbValid ? `counter=${parseInt(r.lvb.slice(0, 8), 16)}` : 'invalid';
      lines.push(`${r.resource.padEnd(10)} ${String(r.master).padStart(6)} ${tokenText(r.tokenCounter).padStart(14)}  ${lvb.padEnd(12)} ${r.granted.map(who).join(' ').padEnd(26)} ${r.waiting.map(who).join(' ') || '-'}`);
    }
    lines.push('', `workers (lock+unlock cycles): ${perWorker.map((n, i) => `w${i}@n${(i % NODES) + 1} ${n}`).join('  ')}`);
    lines.push(`safety check: ${violations.length === 0 ? '0 violations' : `${violations.length} VIOLATIONS: ${violations.slice(0, 3).join('; ')}`}`);
    if (failures.length > 0) lines.push(`worker failures: ${failures.slice(0, 3).join('; ')}`);
    if (live) process.stdout.write('\x1b[2J\x1b[H' + lines.join('\n') + '\n\n' + LEGEND + '\n');
    else process.stdout.write(`---- ${new Date().toISOString()}\n${lines.join('\n')}\n\n`);
  };
  if (!live) process.stdout.write(LEGEND + '\n\n');

  const viewTimer = setInterval(() => { view().catch(() => {}); }, live ? 500 : 2000);
  void view().catch(() => {});
  const stop = async () => {
    if (!running) return;
    running = false;
    clearInterval(viewTimer);
    await Promise.race([Promise.all(workers), sleep(4000)]);
    for (const c of ctls) await c.close();
    await Promise.all(procs.map((p) => new Promise((r) => { if (p.exitCode !== null) r(null); else { p.once('exit', r); p.kill('SIGTERM'); } })));
    fs.rmSync(dir, { recursive: true, force: true });
    const total = perWorker.reduce((a, b) => a + b, 0);
    const failed = failures.length === 0 ? '' : `, ${failures.length} worker failures`;
    process.stdout.write(`\nmxfs-demo: stopped. ${total} lock/unlock cycles, ${violations.length} safety violations${failed}.\n${[...violations, ...failures].slice(0, 10).map((v) => `  ${v}\n`).join('')}`);
    process.exit(violations.length === 0 && failures.length === 0 ? 0 : 1);
  };
  // SIGHUP: the terminal closed; the daemons, in groups of their own, would not hear of it.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) { process.off(sig, abort); process.on(sig, () => void stop()); }
  if (seconds !== Infinity) setTimeout(() => void stop(), seconds * 1000);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fencing token as its parts: epoch·2³² + count (the count of PW/EX grants in that epoch). */
function tokenText(t: number): string {
  return `${Math.floor(t / 2 ** 32)}·2³²+${t % 2 ** 32}`;
}

/** What the columns mean, shown under the live view (and once before the --plain output). */
const LEGEND = [
  'How to read this:',
  '  state/epoch/members  each node\'s view: "running" in the same epoch with the same members = one healthy cluster',
  '  leases               age of the last lease renewal each node heard from each peer (a peer is dead after the lease, 3 s here)',
  '  masters              how many lock resources that node is master of (the master decides grants; rendezvous hashing over the members)',
  '  token                the fencing token of the last PW/EX grant, written epoch·2³²+count: it only grows, across masters and epochs,',
  '                       so storage can refuse a write that carries an older token',
  '  lvb                  the lock value block: here a counter every EX holder increments; "invalid" if its last writer died',
  '  w2:PR, n2:EX         holder:mode — w2 is worker 2; n2 is a client of node 2 (a master knows only its own node\'s client names)',
  '                       modes: PR shared read, EX exclusive (also NL CR CW PW); "waiting" lists requests not granted yet',
  '  safety check         the demo\'s own check: never two holders in incompatible modes, EX tokens always growing, the counter never going back',
].join('\n');

main().catch((e) => { process.stderr.write(`mxfs-demo: ${e.stack ?? e}\n`); process.exit(1); });
