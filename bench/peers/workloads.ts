/**
 * The peer benchmark's workloads, each written once against bench/peers/systems.ts's Column,
 * so every system runs the same client code: pairs (lock then unlock), by one client on
 * distinct names, by 16 clients on their own names, by 16 clients on one name; memory per
 * held lock; and the transport floor (a raw Node echo round trip over a Unix socket and
 * over TCP to another process), which the per-pair latencies are compared against.
 */
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Column, LockSession } from './systems';

export interface PairStats { pairs: number; perSec: number; p50us: number; p99us: number }
export interface ContendedStats extends PairStats { waitP99us: number; minMaxRatio: number; jain: number }
export interface MemoryStats { locks: number; bytesPerLock: number; rssBefore: number; rssFull: number; rssAfter: number; settleS: number }

const now = () => performance.now();

function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN;
}

async function sessions(col: Column, n: number, tag: string): Promise<LockSession[]> {
  const out: LockSession[] = [];
  for (let i = 0; i < n; i++) out.push(await col.session(`${tag}${i}`));
  return out;
}

/** Each client takes and releases its own names in turn until `seconds` have passed. */
export async function ownNames(col: Column, clients: number, seconds: number, family: string): Promise<PairStats> {
  const perClient = Math.ceil((seconds * 12000) / clients) + 16;
  const names = Array.from({ length: clients }, (_, c) => Array.from({ length: perClient }, (_, i) => col.name(`${family}c${c}`, i)));
  const ss = await sessions(col, clients, family);
  const lat: number[] = [];
  try {
    const end = now() + seconds * 1000;
    await Promise.all(ss.map(async (s, c) => {
      for (let i = 0; now() < end; i++) {
        const t = now();
        await s.unlock(await s.lock(names[c]![i % perClient]!));
        lat.push(now() - t);
      }
    }));
  } finally {
    for (const s of ss) await s.close();
  }
  lat.sort((a, b) => a - b);
  return { pairs: lat.length, perSec: lat.length / seconds, p50us: quantile(lat, 0.5) * 1000, p99us: quantile(lat, 0.99) * 1000 };
}

/** All clients on one name: throughput, wait for the grant (p99) and fairness between clients. */
export async function oneName(col: Column, clients: number, seconds: number, family: string): Promise<ContendedStats> {
  const name = col.name(family, 0);
  const ss = await sessions(col, clients, family);
  const lat: number[] = [];
  const waits: number[] = [];
  const counts = new Array<number>(clients).fill(0);
  try {
    const end = now() + seconds * 1000;
    await Promise.all(ss.map(async (s, c) => {
      while (now() < end) {
        const t = now();
        const h = await s.lock(name);
        waits.push(now() - t);
        await s.unlock(h);
        lat.push(now() - t);
        counts[c]!++;
      }
    }));
  } finally {
    for (const s of ss) await s.close();
  }
  lat.sort((a, b) => a - b);
  waits.sort((a, b) => a - b);
  const sum = counts.reduce((a, b) => a + b, 0);
  const sq = counts.reduce((a, b) => a + b * b, 0);
  return {
    pairs: lat.length, perSec: lat.length / seconds, p50us: quantile(lat, 0.5) * 1000, p99us: quantile(lat, 0.99) * 1000,
    waitP99us: quantile(waits, 0.99) * 1000, minMaxRatio: Math.min(...counts) / Math.max(...counts), jain: sq ? (sum * sum) / (clients * sq) : 0,
  };
}

/**
 * One client takes `locks` distinct names (`window` requests in flight) and holds them:
 * (server RSS full - before) / locks. Then releases them all, waits `settleS` seconds and
 * reads the RSS again (is memory given back?).
 */
export async function memory(col: Column, locks: number, settleS: number, family: string, window = 256): Promise<MemoryStats> {
  const names = Array.from({ length: locks }, (_, i) => col.name(family, i));
  const s = await col.session(family);
  try {
    await new Promise((r) => setTimeout(r, 500));
    const rssBefore = col.serverRss();
    const held: unknown[] = new Array(locks);
    let next = 0;
    await Promise.all(Array.from({ length: window }, async () => {
      while (next < locks) { const i = next++; held[i] = await s.lock(names[i]!); }
    }));
    const rssFull = col.serverRss();
    next = 0;
    await Promise.all(Array.from({ length: window }, async () => {
      while (next < locks) { const i = next++; await s.unlock(held[i]); held[i] = undefined; }
    }));
    await new Promise((r) => setTimeout(r, settleS * 1000));
    return { locks, bytesPerLock: (rssFull - rssBefore) / locks, rssBefore, rssFull, rssAfter: col.serverRss(), settleS };
  } finally {
    await s.close();
  }
}

// ---------------------------------------------------------------------------------------
// The transport floor: an echo server in another Node process, p50 of small round trips.

const ECHO_SERVER = `
const net = require('net');
const srv = net.createServer((s) => { s.setNoDelay(true); s.on('data', (d) => s.write(d)); });
const [kind, where] = process.argv.slice(1);
srv.listen(kind === 'unix' ? where : { port: 0, host: '127.0.0.1' }, () => {
  process.stdout.write(JSON.stringify(kind === 'unix' ? { path: where } : { port: srv.address().port, host: '127.0.0.1' }) + '\\n');
});`;

async function echoServer(kind: 'unix' | 'tcp', dir: string): Promise<{ proc: ChildProcess; addr: net.NetConnectOpts }> {
  const proc = spawn(process.execPath, ['-e', ECHO_SERVER, kind, path.join(dir, 'echo.sock')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => { buf += d.toString(); if (buf.includes('\n')) resolve(buf.trim()); });
    proc.once('exit', () => reject(new Error('echo server exited')));
  });
  return { proc, addr: JSON.parse(line) };
}

/** p50 and p99 (µs) of a 64-byte request echoed back, `count` round trips one at a time. */
export async function echoRoundTrip(kind: 'unix' | 'tcp', count: number): Promise<{ p50us: number; p99us: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxfs-bench-echo-'));
  const { proc, addr } = await echoServer(kind, dir);
  try {
    const sock = net.connect(addr);
    sock.setNoDelay(true);
    await new Promise<void>((r, j) => { sock.once('connect', r); sock.once('error', j); });
    const msg = Buffer.alloc(64, 1);
    const lat: number[] = [];
    let want = 0;
    let got = 0;
    let wake: (() => void) | undefined;
    sock.on('data', (d: Buffer) => { got += d.length; if (got >= want) wake?.(); });
    for (let i = 0; i < count; i++) {
      want += msg.length;
      const t = now();
      await new Promise<void>((r) => { wake = r; sock.write(msg); });
      lat.push(now() - t);
    }
    sock.destroy();
    lat.sort((a, b) => a - b);
    return { p50us: quantile(lat, 0.5) * 1000, p99us: quantile(lat, 0.99) * 1000 };
  } finally {
    proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
