/**
 * mxfs-demo — the README's main job: starts a local mxfsd (no root, no kernel module) in a
 * temporary directory, runs a small workload against it and shows a live view of the lock
 * traffic. Ctrl-C (or --seconds) stops everything cleanly.
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
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { MxfsClient } from '../client/client';
import { compatible, Mode, modeName } from '../dlm/modes';
import { LockError } from '../dlm/types';

const RESOURCES = ['inode-1', 'inode-2', 'inode-3', 'volume-0'];
const WORKERS = 6;

interface Holder { worker: number; mode: Mode }

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string' }, plain: { type: 'boolean' } } });
  const seconds = values.seconds === undefined ? Infinity : Number(values.seconds);
  if (!(seconds > 0)) { process.stderr.write('mxfs-demo: --seconds wants a positive number\n'); process.exit(2); }
  const live = process.stdout.isTTY && !values.plain;

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxfs-demo-'));
  const socket = path.join(dir, 'mxfsd.sock');
  const conf = path.join(dir, 'mxfs.conf');
  fs.writeFileSync(conf, `[node]\nid = 1\nname = demo1\nsocket = ${socket}\nkernel = off\n\n[locking]\nidle_evict_ms = 2000\n\n[logging]\nfile = ${path.join(dir, 'mxfsd.log')}\nstderr = false\n`);
  const daemon = spawn(process.execPath, [path.join(__dirname, 'mxfsd.js'), '--config', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let daemonErr = '';
  daemon.stderr!.on('data', (d) => { daemonErr += d; });
  const t0 = Date.now();
  let ctl: MxfsClient | undefined;
  while (!ctl) {
    if (daemon.exitCode !== null) { process.stderr.write(`mxfs-demo: mxfsd exited: ${daemonErr}\n`); process.exit(1); }
    try { ctl = await MxfsClient.connect(socket, { name: 'demo-view' }); } catch { await sleep(50); }
    if (Date.now() - t0 > 10000) { process.stderr.write('mxfs-demo: mxfsd did not start\n'); process.exit(1); }
  }

  const holders = new Map<string, Holder[]>(RESOURCES.map((r) => [r, []]));
  const maxToken = new Map<string, number>();
  const counters = new Map<string, number>();
  const violations: string[] = [];
  const perWorker = new Array(WORKERS).fill(0);
  let running = true;

  const worker = async (w: number) => {
    const c = await MxfsClient.connect(socket, { name: `worker-${w}` });
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
      for (const o of hs) if (!compatible(o.mode, mode)) violations.push(`${res}: worker ${o.worker} ${modeName(o.mode)} and worker ${w} ${modeName(mode)}`);
      hs.push({ worker: w, mode });
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
  const workers = Array.from({ length: WORKERS }, (_, i) => worker(i).catch((e) => { if (running) violations.push(`worker ${i} failed: ${e.message}`); }));

  let last = { grants: 0, basts: 0, at: Date.now() };
  const view = async () => {
    const st = await ctl!.status();
    const lk = await ctl!.locks();
    const now = Date.now();
    const dt = (now - last.at) / 1000;
    const gps = Math.round((st.counters.grants - last.grants) / dt);
    const bps = Math.round((st.counters.basts - last.basts) / dt);
    last = { grants: st.counters.grants, basts: st.counters.basts, at: now };
    const lines = [
      `MXFS demo — node ${st.node.id} (${st.node.name}), mxfsd pid ${st.pid}, up ${Math.round(st.uptimeMs / 1000)}s   ${live ? '(Ctrl-C to stop)' : ''}`,
      `grants ${st.counters.grants} (${gps}/s)  basts ${st.counters.basts} (${bps}/s)  evictions ${st.counters.evictions}  clients ${st.clients}  resources ${st.resources}  locks ${st.locks}`,
      '',
      `${'resource'.padEnd(10)} ${'token'.padStart(6)}  ${'lvb'.padEnd(14)} ${'granted'.padEnd(28)} ${'converting'.padEnd(12)} waiting`,
    ];
    for (const r of lk.resources) {
      const who = (l: any) => `${l.client?.replace('worker-', 'w') ?? l.owner}:${l.mode ?? l.requested}`;
      const lvb = r.lvbValid ? `counter=${parseInt(r.lvb.slice(0, 8), 16)}` : 'invalid';
      lines.push(`${r.resource.padEnd(10)} ${String(r.tokenCounter).padStart(6)}  ${lvb.padEnd(14)} ${r.granted.map(who).join(' ').padEnd(28)} ${(r.converting.map(who).join(' ') || '-').padEnd(12)} ${r.waiting.map((l: any) => `${l.client?.replace('worker-', 'w')}:${l.requested}`).join(' ') || '-'}`);
    }
    lines.push('', `workers (lock+unlock cycles): ${perWorker.map((n, i) => `w${i} ${n}`).join('  ')}`);
    lines.push(`safety check: ${violations.length === 0 ? '0 violations' : `${violations.length} VIOLATIONS: ${violations.slice(0, 3).join('; ')}`}`);
    if (live) process.stdout.write('\x1b[2J\x1b[H' + lines.join('\n') + '\n');
    else process.stdout.write(lines.slice(0, 2).join('\n') + `\n  ${lines[lines.length - 1]}\n`);
  };

  const viewTimer = setInterval(() => { view().catch(() => {}); }, live ? 500 : 2000);
  const stop = async () => {
    if (!running) return;
    running = false;
    clearInterval(viewTimer);
    await Promise.race([Promise.all(workers), sleep(4000)]);
    await ctl!.close();
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
    const total = perWorker.reduce((a, b) => a + b, 0);
    process.stdout.write(`\nmxfs-demo: stopped. ${total} lock/unlock cycles, ${violations.length} safety violations.\n`);
    process.exit(violations.length === 0 ? 0 : 1);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  if (seconds !== Infinity) setTimeout(() => void stop(), seconds * 1000);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

main().catch((e) => { process.stderr.write(`mxfs-demo: ${e.stack ?? e}\n`); process.exit(1); });
