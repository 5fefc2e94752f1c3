/**
 * Benchmark: lock+unlock pairs per second and pair latency (p50/p99) through mxfsd's Unix
 * socket on one node, with 1 client and 16 concurrent clients, and 1 client while 20 000
 * other resources are active.
 *
 * The peer measured in the same run is a framed echo server on a Unix socket (same framing,
 * its own process like mxfsd, same client process): two echo round trips are the floor for any socket lock service in
 * Node, so `ratio` = mxfsd pair latency / two echo round trips says what the lock engine and
 * its actors add on top of the transport. Ratios are comparable across noisy machines, and so
 * is the last column: the CPU time the server process (mxfsd, or the echo server) used per pair.
 *
 * Usage: node dist/bench/lock-throughput.js [--seconds S]   (needs `npm run build`)
 */
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { ChildProcess, spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { MxfsClient } from '../src/client/client';
import { Mode } from '../src/dlm/modes';
import { encodeFrame, FrameDecoder } from '../src/wire/frame';
import { startDaemon } from '../test/support/daemon-proc';

interface Result { name: string; clients: number; pairs: number; seconds: number; p50: number; p99: number; cpuUs?: number }

/** CPU time (user + system) a process has used, in µs, from /proc (Linux). */
function cpuOf(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * (1e6 / 100); // utime, stime in clock ticks (USER_HZ 100)
}

/**
 * Runs a workload and adds the CPU time the server process used per pair: the wall-clock
 * figures swing with the machine's load, the server's CPU per pair much less.
 */
async function measured(server: number, run: () => Promise<Result>): Promise<Result> {
  const c0 = cpuOf(server);
  const r = await run();
  r.cpuUs = (cpuOf(server) - c0) / r.pairs;
  return r;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

async function runClients(name: string, n: number, seconds: number, one: (i: number) => Promise<() => Promise<void>>): Promise<Result> {
  const ops = await Promise.all(Array.from({ length: n }, (_, i) => one(i)));
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(ops.map(async (op) => {
    while (performance.now() < end) {
      const s = performance.now();
      await op();
      lat.push(performance.now() - s);
    }
  }));
  const took = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { name, clients: n, pairs: lat.length, seconds: took, p50: pct(lat, 0.5) * 1000, p99: pct(lat, 0.99) * 1000 };
}

/**
 * The transport floor: an echo server with the same framing, in its own process (as mxfsd
 * is), so both pay the same cross-process wake-ups.
 */
async function echoServer(sock: string): Promise<ChildProcess> {
  const frame = path.join(__dirname, '..', 'src', 'wire', 'frame.js');
  const script = `
    const net = require('node:net');
    const { FrameDecoder, encodeFrame } = require(${JSON.stringify(frame)});
    net.createServer((s) => {
      const dec = new FrameDecoder(1 << 20);
      s.on('data', (c) => { for (const m of dec.push(c)) s.write(encodeFrame(m, 1 << 20)); });
      s.on('error', () => {});
    }).listen(process.argv[1], () => process.stdout.write('up\\n'));`;
  const p = spawn(process.execPath, ['-e', script, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((r) => p.stdout!.once('data', () => r()));
  return p;
}

async function echoClient(sock: string): Promise<() => Promise<void>> {
  const s = net.createConnection(sock);
  await new Promise((r) => s.once('connect', r));
  s.setNoDelay?.(true);
  const dec = new FrameDecoder(1 << 20);
  let waiter: (() => void) | undefined;
  s.on('data', (c) => { for (const _ of dec.push(c)) { const w = waiter; waiter = undefined; w?.(); } });
  const rtt = () => new Promise<void>((r) => { waiter = r; s.write(encodeFrame({ type: 'lock', id: 1, lockId: 1, lockspace: 'default', resource: 'r', mode: 5 }, 1 << 20)); });
  return async () => { await rtt(); await rtt(); };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' } } });
  const seconds = Number(values.seconds);
  const d = await startDaemon({ extra: { logging: { level: 'warn' } } });
  const echoSock = path.join(d.dir, 'echo.sock');
  const echo = await echoServer(echoSock);
  const results: Result[] = [];
  try {
    for (const n of [1, 16]) {
      results.push(await measured(echo.pid!, () => runClients('echo x2 (floor)', n, seconds, () => echoClient(echoSock))));
      results.push(await measured(d.proc.pid!, () => runClients('mxfsd lock+unlock EX, own resource', n, seconds, async (i) => {
        const c = await MxfsClient.connect(d.socket);
        return async () => { const h = await c.lock(`bench-${i}`, Mode.EX); await h.unlock(); };
      })));
    }
    results.push(await measured(d.proc.pid!, () => runClients('mxfsd lock+unlock EX, one shared resource', 16, seconds, async () => {
      const c = await MxfsClient.connect(d.socket);
      return async () => { const h = await c.lock('bench-shared', Mode.EX); await h.unlock(); };
    })));
    // The same single-client loop while 20 000 other resources are active (held in PR by
    // another client): the cost of a lock operation must not grow with the resource count.
    const holder = await MxfsClient.connect(d.socket);
    for (let i = 0; i < 20000; i += 500) await Promise.all(Array.from({ length: 500 }, (_, j) => holder.lock(`held-${i + j}`, Mode.PR)));
    results.push(await measured(d.proc.pid!, () => runClients('mxfsd lock+unlock EX, own resource, 20 000 other resources held', 1, seconds, async () => {
      const c = await MxfsClient.connect(d.socket);
      return async () => { const h = await c.lock('bench-0', Mode.EX); await h.unlock(); };
    })));
    await holder.close();
  } finally {
    echo.kill();
    await d.stop();
  }
  const floor = new Map(results.filter((r) => r.name.startsWith('echo')).map((r) => [r.clients, r]));
  console.log(`# ${new Date().toISOString()}  ${os.cpus().length}x ${os.cpus()[0]?.model}  node ${process.version}  ${seconds}s per row`);
  console.log('| workload | clients | pairs/s | p50 µs | p99 µs | p50 ratio to floor | server CPU µs per pair |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of results) {
    const f = floor.get(r.clients)!;
    console.log(`| ${r.name} | ${r.clients} | ${Math.round(r.pairs / r.seconds)} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${(r.p50 / f.p50).toFixed(2)} | ${r.cpuUs?.toFixed(0) ?? ''} |`);
  }
  fs.rmSync(d.dir, { recursive: true, force: true });
}

main().catch((e) => { console.error(e); process.exit(1); });
