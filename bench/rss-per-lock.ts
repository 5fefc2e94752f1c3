/**
 * Benchmark: resident memory of a real mxfsd process per held lock, and whether it gives the
 * memory back after the locks are released.
 *
 * One standalone mxfsd (its own process, as deployed: no --expose-gc, nothing forced) and one
 * client in this process over the Unix socket, which takes N EX locks on distinct names (N
 * resources), 1000 requests in flight. The daemon's RSS (/proc/PID/status) is read before the
 * fill, while all are held, right after they are all released and the resources evicted, and
 * every 10 s for a while after (`--after-s`, default 60): the issue-13 targets are ≤ 1 KB per
 * held lock and, a minute after the release, an RSS within 20 % of the level before the fill.
 * "Held" is read `--settle-s` (default 30) after the fill, once the daemon has been idle a
 * while: right after the fill its heap still holds the fill's garbage, which V8 collects only
 * when something allocates or its memory reducer runs (docs/benchmarks.md).
 *
 * The daemon's idle collections after the release (src/daemon/reclaim.ts) are printed from its
 * status counters, with how long the last one kept its thread (builds that have them).
 *
 * `--mxfsd PATH` runs another build's daemon (dist/src/cli/mxfsd.js of a baseline worktree)
 * with this same client, for a before/after in one run.
 *
 * Usage: node dist/bench/rss-per-lock.js [--locks 100000] [--settle-s 30] [--after-s 60] [--mxfsd PATH]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { MxfsClient } from '../src/client/client';
import type { LockHandle } from '../src/client/api';
import { Mode } from '../src/dlm/modes';
import { canConnect, configText, MXFSD, rssKiB, tmpDir, waitFor } from '../test/support/daemon-proc';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mib = (kib: number) => (kib / 1024).toFixed(1);

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { locks: { type: 'string', default: '100000' }, 'after-s': { type: 'string', default: '60' }, 'settle-s': { type: 'string', default: '30' }, mxfsd: { type: 'string', default: MXFSD } } });
  const n = Number(values.locks), afterS = Number(values['after-s']), settleS = Number(values['settle-s']);
  if (!Number.isInteger(n) || n < 1) throw new Error('--locks must be a positive integer');
  const dir = tmpDir('mxfs-rss-');
  const config = path.join(dir, 'mxfs.conf');
  // Long client timeouts: on a loaded machine a full collection of a large heap may keep either
  // process from answering for a while; what is measured is memory, not liveness.
  fs.writeFileSync(config, configText(dir, {
    timing: { client_keepalive_ms: 1000, client_timeout_ms: 300000, lease_timeout_ms: 600000, renew_interval_ms: 1000 },
    locking: { max_locks_per_client: n + 10, idle_evict_ms: 1000 },
    logging: { level: 'warn' },
  }));
  const socket = path.join(dir, 'mxfsd.sock');
  const proc = spawn(process.execPath, [values.mxfsd, '--config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await waitFor(async () => (await canConnect(socket)) || proc.exitCode !== null, 20000, 'mxfsd socket');
    const pid = proc.pid!;
    const c = await MxfsClient.connect(socket, { name: 'rss' });
    await (await c.lock('warm', Mode.EX)).unlock();
    await sleep(2000);
    const r0 = rssKiB(pid);
    const t0 = performance.now();
    const hs: LockHandle[] = [];
    for (let i = 0; i < n; i += 1000) {
      hs.push(...await Promise.all(Array.from({ length: Math.min(1000, n - i) }, (_, k) => c.lock(`rss-${i + k}`, Mode.EX))));
    }
    const fillS = (performance.now() - t0) / 1000;
    await sleep(2000);
    const r1fill = rssKiB(pid);
    await sleep(Math.max(0, settleS * 1000 - 2000));
    const r1 = rssKiB(pid);
    const status = await c.status() as { locks?: unknown; resources?: number };
    for (let i = 0; i < hs.length; i += 1000) await Promise.all(hs.slice(i, i + 1000).map((h) => h.unlock()));
    hs.length = 0;
    await waitFor(async () => ((await c.status()) as { resources: number }).resources <= 1, 600000, 'eviction');
    const r2 = rssKiB(pid);
    const later: string[] = [];
    for (let t = 10; t <= afterS; t += 10) { await sleep(10000); later.push(`${t} s ${mib(rssKiB(pid))}`); }
    const r3 = rssKiB(pid);
    const counters = ((await c.status()) as { counters: { idleCollections?: number; idleCollectionMaxMs?: number; mallocTrims?: number } }).counters;
    console.log(`mxfsd ${values.mxfsd === MXFSD ? '(this build)' : values.mxfsd}, ${n} locks held (${status.resources} resources), filled in ${fillS.toFixed(1)} s, load ${os.loadavg()[0]!.toFixed(1)}, node ${process.version}`);
    console.log(`  RSS before ${mib(r0)} MiB; held: 2 s after the fill ${mib(r1fill)} MiB, ${settleS} s after ${mib(r1)} MiB: ${(((r1 - r0) * 1024) / n).toFixed(0)} B per held lock`);
    console.log(`  released and evicted ${mib(r2)} MiB; then ${later.join(', ')} MiB: ${((r3 / r0 - 1) * 100).toFixed(0)} % above before`);
    if (counters.idleCollections !== undefined) console.log(`  idle collections ${counters.idleCollections} (the longest kept the thread ${counters.idleCollectionMaxMs} ms), malloc trims ${counters.mallocTrims}; load now ${os.loadavg()[0]!.toFixed(1)}`);
    await c.close();
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
