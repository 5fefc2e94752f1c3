/**
 * Benchmark: heap per held lock in the lock engine, in-process (no socket, no RSS noise).
 * A standalone Daemon (test config) and one in-process client take N EX locks on distinct
 * names (N resource actors); the V8 heap after full GCs, before and after, divided by N —
 * the client's handles included, which a real client keeps in its own process. Then the locks
 * are released and the resources evicted: the heap must come back.
 *
 * Usage: node --expose-gc dist/bench/heap-per-lock.js [--locks 50000]
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { writeHeapSnapshot } from 'node:v8';
import { Daemon } from '../src/daemon/daemon';
import { Mode } from '../src/dlm/modes';
import { quietLogger, testConfig, tmpDir, waitFor } from '../test/support/daemon-proc';

const gc = (globalThis as { gc?: () => void }).gc;
const heap = (): number => { gc!(); gc!(); return process.memoryUsage().heapUsed; };
const mib = (b: number) => (b / 1048576).toFixed(1);

async function main(): Promise<void> {
  if (!gc) throw new Error('run it with node --expose-gc');
  const { values } = parseArgs({ options: { locks: { type: 'string', default: '50000' }, snapshot: { type: 'string' } } });
  const n = Number(values.locks);
  if (!Number.isInteger(n) || n < 1) throw new Error('--locks must be a positive integer');
  // Long client timeouts: a full collection of a few hundred MB on a loaded machine can keep the
  // event loop longer than the default 1.5 s, and the in-process client would then give up its
  // locks in the middle of the count. What is measured here is memory, not liveness.
  const timing = { leaseTimeoutMs: 600000, renewIntervalMs: 1000, clientTimeoutMs: 300000, clientKeepaliveMs: 1000 };
  const d = new Daemon({ config: testConfig(tmpDir(), { locking: { idleEvictMs: 500, maxLocksPerClient: n + 10 }, timing }), log: quietLogger(), faultInjection: false });
  await d.start();
  // This bench collects itself, and times the first collection after the release: the daemon's
  // own idle collection (src/daemon/reclaim.ts) would take it first.
  d.reclaimer?.stop();
  const c = await d.connectLocal('heap');
  const warm = await c.lock('warm', Mode.EX);
  await warm.unlock();
  const h0 = heap();
  if (values.snapshot) writeHeapSnapshot(path.join(values.snapshot, 'before.heapsnapshot'));
  const hs = [];
  for (let i = 0; i < n; i += 1000) hs.push(...await Promise.all(Array.from({ length: Math.min(1000, n - i) }, (_, k) => c.lock(`heap-${i + k}`, Mode.EX))));
  const h1 = heap();
  if (values.snapshot) writeHeapSnapshot(path.join(values.snapshot, 'held.heapsnapshot'));
  for (let i = 0; i < hs.length; i += 1000) await Promise.all(hs.slice(i, i + 1000).map((h) => h.unlock()));
  hs.length = 0;
  await waitFor(async () => ((await c.status()) as { resources: number }).resources <= 1, 120000, 'eviction');
  // What one full collection costs once everything is released (what V8 must do, on its own or
  // asked, to give the memory back): mostly garbage, so it is short.
  const before = process.memoryUsage().heapUsed;
  const t = performance.now();
  gc!();
  const gcMs = performance.now() - t;
  const h2 = heap();
  console.log(`${n} locks held: heap +${((h1 - h0) / n).toFixed(0)} B per lock (${mib(h1 - h0)} MiB); after release and eviction ${mib(h2 - h0)} MiB above the start  (node ${process.version})`);
  console.log(`  the first full collection after the release: ${mib(before - h0)} -> ${mib(process.memoryUsage().heapUsed - h0)} MiB above the start in ${gcMs.toFixed(0)} ms`);
  await c.close();
  await d.stop();
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
