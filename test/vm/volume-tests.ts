/**
 * Kernel volume tests, in the one-VM harness (vm-tests.sh runs this after the channel tests,
 * with the module loaded as `insmod mxfs.ko volumes=vol0=/dev/vda ...`). The second virtio
 * disk (/dev/vda) holds a 64 MiB XFS made on the host, then 32 MiB the device benchmark and
 * the raw-device writer use. The stand-in daemon (volume-daemon.ts: the kernel bridge + the
 * KernelVolumeDriver) is forked and driven over IPC; writers and the benchmark are separate
 * processes (volume-io.ts). Every check prints "MXFS-TEST PASS|FAIL <name>: <detail>" and
 * the numbers "MXFS-PERF ...".
 *
 * How each check was seen to fail with its mechanism removed (a module built without it, the
 * volume tests run against it; see docs/kernel.md "Guarantees and the tests that prove them"):
 *   boot-claim           the claim without FMODE_EXCL: the raw mount succeeded
 *   gate-closed, gate-wait-*   mxfs_vol_open without the gate check: the write opens succeeded
 *                        at once (no mount-wanted, no EINTR, no ENOLCK)
 *   gate-wait-interrupt  a killable instead of an interruptible wait: SIGUSR2 did not end it
 *   fence-* (checksums)  mxfs_vol_bio_start without the gate/lease check: the raw-device
 *                        writer never saw EIO and the disk changed after the fence
 *   fence-lease-expiry(-idle), fence-daemon-stopped   the lease hrtimer never started: no
 *                        fence while the daemon was silent or stopped (only its late renewal
 *                        after SIGCONT fenced: the "while stopped" condition catches that)
 *   fence-daemon-kill    the daemon detach without mxfs_lease_lost: cause lease-expired later
 *   fence-lease-lost     the LEASE_LOST handler without the fence: the gate stayed open
 *   XFS shutdown         mxfs_xfs_shutdown doing nothing: touch right after an idle fence, and
 *                        after the immediate fences (lease-lost, daemon-kill), succeeded.
 *                        (Under write load XFS shuts itself down on the refused log writes.)
 *   fence-fallback-log, fence-fallback-restart (`volume-tests.js fallback ...`, below)
 *                        mxfs_fence_missed returning at once (test/vm/mutations.sh run
 *                        no-fallback): no "writes still in flight" line; the restart test's VM
 *                        survived, and once it resumed the device the held write was on the disk.
 */
import { execFile, fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AlignedBuffer, DirectFile, diskChecksum, O_DIRECT, O_RDONLY } from './direct-io';

const DIR = __dirname;
const T = '/sys/kernel/debug/mxfs';
const P = '/sys/module/mxfs/parameters';
const VOL = 'vol0';
const RAW = '/dev/vda';
const DEV = `/dev/mxfs/${VOL}`;
const MP = `/mnt/${VOL}`;
const DISK_MIB = 96;
const AREA_OFF_MIB = 64;  // beyond the XFS: the raw-device writer and the benchmark
const AREA_MIB = 32;
const LEASE_MS = 3000;    // renewed every 300 ms by the stand-in daemon while it runs
const RENEW_MS = 300;

let passes = 0;
let fails = 0;
const pass = (name: string, detail: string) => { passes++; console.log(`MXFS-TEST PASS ${name}: ${detail}`); };
const fail = (name: string, detail: string) => { fails++; console.log(`MXFS-TEST FAIL ${name}: ${detail}`); };
const check = (name: string, ok: boolean, detail: string) => (ok ? pass(name, detail) : fail(name, detail));
const perf = (line: string) => console.log(`MXFS-PERF ${line}`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const nowNs = () => process.hrtime.bigint();

interface Sh { code: number; stdout: string; stderr: string }
function sh(cmd: string): Promise<Sh> {
  return new Promise((resolve) => {
    execFile('sh', ['-c', cmd], { encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await sleep(50);
  }
  console.log(`vm-volume: gave up waiting for ${what} after ${ms} ms`);
  return false;
}

const debugfsVolumes = () => readFileSync(`${T}/volumes`, 'utf8');
const volumeLine = (vol = VOL): string => debugfsVolumes().split('\n').find((l) => l.startsWith(`volume=${vol} `)) ?? '';
const gateOf = (vol = VOL): string => / gate=(\w+)/.exec(volumeLine(vol))?.[1] ?? 'none';
const statusCounter = (name: string): number => Number(new RegExp(`^${name}=(\\d+)`, 'm').exec(readFileSync(`${T}/status`, 'utf8'))?.[1] ?? -1);
const param = (name: string): number => Number(readFileSync(`${P}/${name}`, 'utf8').trim());
const mounted = (): boolean => readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === MP);

// ---- the stand-in daemon ----

type DaemonEvent = { type: string; volume?: string; report?: { cause: string; fenced: boolean; durationMs: number; detail?: string }; [k: string]: unknown };

class Daemon {
  readonly child: ChildProcess;
  readonly events: DaemonEvent[] = [];
  private seq = 0;
  private waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error & { code?: string }): void }>();
  exited = false;

  constructor() {
    this.child = fork(join(DIR, 'volume-daemon.js'), [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    this.child.stderr!.on('data', (d: Buffer) => { for (const l of d.toString().split('\n')) if (/"level":[456]0/.test(l)) console.log(`daemon: ${l.slice(0, 300)}`); });
    this.child.on('message', (m: { id?: number; ok?: boolean; result?: unknown; error?: string; code?: string; event?: DaemonEvent }) => {
      if (m.event) {
        this.events.push(m.event);
        return;
      }
      if (m.id === undefined) return;
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.ok) w?.resolve(m.result);
      else w?.reject(Object.assign(new Error(m.error), { code: m.code }));
    });
    this.child.on('exit', () => {
      this.exited = true;
      for (const w of this.waiting.values()) w.reject(new Error('daemon exited'));
      this.waiting.clear();
    });
  }

  call<R = unknown>(op: string, args: Record<string, unknown> = {}, timeoutMs = 60_000): Promise<R> {
    const id = ++this.seq;
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => { this.waiting.delete(id); reject(new Error(`${op}: no answer in ${timeoutMs} ms`)); }, timeoutMs);
      this.waiting.set(id, {
        resolve: (v) => { clearTimeout(timer); resolve(v as R); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.child.send({ id, op, args });
    });
  }

  async event(pred: (e: DaemonEvent) => boolean, ms: number): Promise<DaemonEvent | undefined> {
    let found: DaemonEvent | undefined;
    await waitFor('a daemon event', () => {
      const i = this.events.findIndex(pred);
      if (i >= 0) found = this.events.splice(i, 1)[0];
      return found !== undefined;
    }, ms);
    return found;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.exited) return;
    this.child.kill(signal);
    await waitFor('the daemon to exit', () => this.exited, 20_000);
  }
}

async function startDaemon(): Promise<Daemon> {
  const d = new Daemon();
  const ok = await d.event((e) => e.type === 'attached', 60_000);
  if (!ok) throw new Error('the stand-in daemon never attached to the module');
  return d;
}

// ---- I/O processes ----

class Proc {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  exited = false;
  constructor(args: string[]) {
    this.child = spawn(process.execPath, [join(DIR, 'volume-io.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) { this.lines.push(buf.slice(0, i)); buf = buf.slice(i + 1); }
    });
    this.child.stderr!.on('data', (d: Buffer) => console.log(`io ${args[0]}: ${d.toString().trim().slice(0, 300)}`));
    this.child.on('exit', () => { this.exited = true; });
  }
  line(prefix: string): string | undefined { return this.lines.find((l) => l.startsWith(prefix)); }
  async waitLine(prefix: string, ms: number): Promise<string | undefined> {
    await waitFor(`"${prefix}"`, () => this.line(prefix) !== undefined || this.exited, ms);
    return this.line(prefix);
  }
  async done(ms = 30_000): Promise<void> { await waitFor('a process to exit', () => this.exited, ms); }
}

async function runIo(args: string[], prefix: string, ms = 120_000): Promise<string> {
  const p = new Proc(args);
  const l = await p.waitLine(prefix, ms);
  await p.done();
  return l ?? `(no ${prefix} line)`;
}

/** The whole disk as it is, read here (no process to start) with O_DIRECT. */
async function checksum(): Promise<string> {
  return diskChecksum(RAW, DISK_MIB);
}

/** Writers: an application appending O_DSYNC records to a file on the XFS, and a raw
 *  O_DIRECT writer on the stacked device beyond the filesystem (the gate alone stops it). */
async function startWriters(): Promise<{ file: Proc; dev: Proc }> {
  const file = new Proc(['writer-file', `${MP}/load.dat`]);
  const dev = new Proc(['writer-device', DEV, String(AREA_OFF_MIB), String(AREA_MIB)]);
  await file.waitLine('WRITER ready', 60_000);
  await dev.waitLine('WRITER ready', 60_000);
  await sleep(500); // writing for a while
  return { file, dev };
}

async function stopWriters(w: { file: Proc; dev: Proc }): Promise<void> {
  for (const p of [w.file, w.dev]) { p.child.kill('SIGTERM'); await p.done(); }
}

const firstError = (p: Proc) => /first-error (\S+) ns=(\d+)/.exec(p.line('WRITER first-error') ?? '');
const doneLine = (p: Proc) => p.line('WRITER done') ?? '(no summary)';

interface FenceInfo { cause: string; drained: boolean; durationUs: number; shutdown: string; inflight: number }
async function lastFence(d: Daemon, volume = VOL): Promise<FenceInfo | undefined> {
  const s = await d.call<{ volumes: Array<{ fences: FenceInfo[] }> }>('kernelStatus', { volume });
  const f = s.volumes[0]!.fences;
  return f[f.length - 1];
}

let generation = 0;
async function mountVolume(d: Daemon): Promise<void> {
  generation++;
  await d.call('lease', { ms: LEASE_MS, renewEveryMs: RENEW_MS });
  await d.call('mount', { generation });
}

/**
 * A fence with writers running, then: the writers' first errors are EIO, XFS is shut down
 * (touch fails), the fence record says how it went, and the disk does not change after
 * the fence (checksum right after it = checksum after the writers kept trying and the
 * shut-down XFS was unmounted).
 */
async function fenceUnderLoad(name: string, d: () => Daemon, trigger: () => Promise<string | void>, expectCause: string,
  expectEvent: boolean): Promise<void> {
  d().events.length = 0; // events of earlier steps
  const w = await startWriters();
  const fences0 = Number(/fences=(\d+)/.exec(debugfsVolumes())?.[1] ?? 0);
  const t0 = nowNs();
  const triggerProblem = await trigger(); // a string: what went wrong in the trigger itself
  const fenced = await waitFor('the fence', () => new RegExp(`volume=vol0 .*fences=${fences0 + 1}`).test(debugfsVolumes()) && gateOf() === 'fenced', 30_000);
  const tFenced = nowNs();
  const sumAfterFence = await checksum();
  const touch = await sh(`touch ${MP}/after-fence`);
  await sleep(1000); // the writers keep knocking
  await stopWriters(w);
  const ev = expectEvent ? await d().event((e) => e.type === 'fenced', 15_000) : undefined;
  const f = await lastFence(d());
  let cleared = '';
  try {
    await d().call('clearFence');
    cleared = `cleared, gate ${gateOf()}`;
  } catch (e) {
    cleared = `clearFence failed: ${(e as Error).message}`;
  }
  const sumLater = await checksum();
  const fe = firstError(w.file);
  const de = firstError(w.dev);
  const detail = `${triggerProblem ? `${triggerProblem}; ` : ''}fenced=${fenced} after ${Number(tFenced - t0) / 1e6} ms; record ${JSON.stringify(f)}; ` +
    `file writer first error ${fe?.[1] ?? 'none'} (${doneLine(w.file)}); device writer first error ${de?.[1] ?? 'none'} (${doneLine(w.dev)}); ` +
    `touch after fence rc=${touch.code} ${touch.stderr.trim()}; event ${ev ? JSON.stringify(ev.report) : 'none'}; ` +
    `disk ${sumAfterFence.slice(0, 12)} -> ${sumLater.slice(0, 12)}; ${cleared}`;
  check(name, !triggerProblem && fenced && f?.cause === expectCause && f.drained && f.shutdown === 'XFS shut down' &&
    fe?.[1] === 'EIO' && de?.[1] === 'EIO' && touch.code !== 0 && /Input\/output error/.test(touch.stderr) &&
    (!expectEvent || (ev?.report?.cause === expectCause && ev.report.fenced)) &&
    sumAfterFence === sumLater && sumAfterFence.length === 40 && gateOf() === 'closed' && !mounted(), detail);
  if (f) perf(`fence ${expectCause} under write load: ${f.inflight} writes in flight, trigger -> drained + XFS shut down ${(f.durationUs / 1000).toFixed(2)} ms`);
}

async function main(): Promise<void> {
  mkdirSync(MP, { recursive: true });
  mkdirSync('/mnt/raw', { recursive: true });
  const bound = param('timer_slack_ms') + param('drain_timeout_ms');

  // 1. Claimed at load (volumes=vol0=/dev/vda): the stacked device exists, the raw disk
  //    cannot be mounted.
  const raw = await sh(`mount -t xfs ${RAW} /mnt/raw`);
  const isBlock = existsSync(DEV) && statSync(DEV).isBlockDevice();
  check('boot-claim', isBlock && gateOf() === 'closed' && raw.code !== 0 && /busy/i.test(raw.stderr) && !readFileSync('/proc/mounts', 'utf8').includes('/mnt/raw'),
    `${DEV} block=${isBlock}, gate ${gateOf()}; mount ${RAW}: rc=${raw.code} ${raw.stderr.trim()}`);

  // 2. The daemon adopts the boot-time registration and reads the fence bound.
  let d = await startDaemon();
  const att = await d.call<{ fenceBoundMs: number }>('attach', { device: RAW, mountpoint: MP }).catch((e: Error) => ({ error: e.message, fenceBoundMs: -1 }));
  const missing = await d.call('attach', { volume: 'vol1', device: '/dev/nonexistent' }).then(() => 'ok', (e: { code?: string }) => e.code);
  const long = await d.call('attach', { volume: 'v'.repeat(27), device: RAW }).then(() => 'ok', (e: { code?: string; message: string }) => `${e.code} ${e.message}`);
  const twice = await d.call('attach', { volume: 'vol9', device: RAW }).then(() => 'ok', (e: { code?: string; message: string }) => `${e.code} ${e.message}`);
  check('daemon-attach', att.fenceBoundMs === bound && missing === 'DEVICE_MISSING' && /^DRIVER .*1-26 bytes/.test(long) && /^DRIVER .*another volume/.test(twice),
    `adopted vol0, fence bound ${att.fenceBoundMs} ms (module: ${bound}); missing device -> ${missing}; 27-byte name -> ${long}; same disk again -> ${twice}`);

  // 3. Gate closed: write opens refused (ENOLCK), reads allowed, a direct mount fails and
  //    does not fall back to read-only.
  const wopen = await runIo(['open-write', DEV], 'OPEN');
  const rsum = await runIo(['checksum', DEV, '1'], 'CHECKSUM');
  const dmount = await sh(`mount -t xfs ${DEV} ${MP}`);
  check('gate-closed', /^OPEN err ENOLCK/.test(wopen) && /^CHECKSUM [0-9a-f]{40}$/.test(rsum) && dmount.code !== 0 && !mounted(),
    `write open: ${wopen}; read: ${rsum.slice(0, 22)}; mount ${DEV}: rc=${dmount.code} ${dmount.stderr.trim()}`);

  // 4. No kernel lease, no gate: the driver's mount fails and says why.
  const nolease = await d.call('mount', { generation: ++generation }).then(() => 'mounted', (e: { code?: string; message: string }) => `${e.code} ${e.message}`);
  check('gate-needs-lease', /^MOUNT_FAILED .*kernel lease/.test(nolease) && gateOf() === 'closed', nolease);

  // 5. Gate-wait mode: a write open asks the daemon and waits; a signal ends the wait; a
  //    grant lets it through; its last close releases the volume (the daemon gives it back).
  await d.call('lease', { ms: LEASE_MS, renewEveryMs: RENEW_MS });
  await sh(`echo 30000 > ${P}/open_wait_ms`);
  await d.call('policy', { mountWanted: 'hold' });
  const intr0 = statusCounter('interrupted');
  const waiter = new Proc(['open-write', DEV]);
  const wanted = await d.event((e) => e.type === 'mount-wanted', 30_000);
  const tSig = nowNs();
  waiter.child.kill('SIGUSR2');
  const wres = await waiter.waitLine('OPEN', 30_000);
  const sigMs = Number(nowNs() - tSig) / 1e6;
  check('gate-wait-interrupt', wanted !== undefined && /^OPEN err EINTR/.test(wres ?? '') && statusCounter('interrupted') === intr0 + 1,
    `mount-wanted event ${wanted ? 'seen' : 'missing'}; after SIGUSR2: ${wres} (${sigMs.toFixed(0)} ms after the signal, wait bound 30000 ms); interrupted ${intr0}->${statusCounter('interrupted')}`);
  await d.call('policy', { mountWanted: 'grant' });
  const granted = await runIo(['open-write', DEV, '300'], 'OPEN');
  const released = await d.event((e) => e.type === 'released', 30_000);
  const givenBack = await d.event((e) => e.type === 'given-back', 30_000);
  check('gate-wait-grant', /^OPEN ok/.test(granted) && released !== undefined && givenBack !== undefined && gateOf() === 'closed',
    `${granted}; released event ${released ? 'seen' : 'missing'}, given back ${givenBack ? 'yes' : 'no'}, gate ${gateOf()}`);
  await d.call('policy', { mountWanted: 'deny' });
  const denied = await runIo(['open-write', DEV], 'OPEN');
  check('gate-wait-deny', /^OPEN err ENOLCK/.test(denied), denied);
  await sh(`echo 0 > ${P}/open_wait_ms`);

  // 6. Owned: the gate opens with the generation, mount(8) works, files are written.
  await mountVolume(d);
  const wr = await sh(`echo hello > ${MP}/hello && sync && cat ${MP}/hello`);
  const st = await d.call<{ gate: string; mounted: boolean; detail: string }>('status');
  check('mount-write', mounted() && wr.stdout.trim() === 'hello' && st.gate === 'open' && st.mounted,
    `mounted=${mounted()}, read back '${wr.stdout.trim()}', status ${st.gate} mounted=${st.mounted}: ${st.detail}`);

  // 7. The stacked device's cost against the raw disk: same region beyond the XFS, one
  //    process, the devices interleaved op by op (ratios, not absolute numbers: TCG).
  const b = new Proc(['bench', RAW, DEV, String(AREA_OFF_MIB), String(AREA_MIB), '3']);
  await b.waitLine('BENCH done', 300_000);
  for (const l of b.lines.filter((x) => x.startsWith('BENCH ') && x !== 'BENCH done')) perf(`device ${l.slice(6)}`);
  await b.done();

  // 8. The kernel lease runs out (the daemon stops renewing, as when its node loses the
  //    cluster lease without a word): fenced by the kernel timer.
  await fenceUnderLoad('fence-lease-expiry', () => d, async () => { await d.call('stopRenew'); }, 'lease-expired', true);

  // 8b. An idle volume (mounted, nothing writing): the fence itself shuts XFS down, so the
  //     next application call fails at once (XFS would not notice the refused writes before
  //     its next log write). Then the writer-visible latency under load: deadline -> EIO.
  await mountVolume(d);
  await d.call('stopRenew');
  const idleOk = await waitFor('the idle fence', () => gateOf() === 'fenced', LEASE_MS + bound + 10_000);
  const idleTouch = await sh(`touch ${MP}/after-idle-fence`);
  await d.event((e) => e.type === 'fenced', 10_000);
  const idle = await lastFence(d);
  if (idle) perf(`fence lease-expired idle: trigger -> drained + XFS shut down ${(idle.durationUs / 1000).toFixed(2)} ms`);
  await d.call('clearFence');
  await mountVolume(d);
  const dw = new Proc(['writer-device', DEV, String(AREA_OFF_MIB), String(AREA_MIB)]);
  await dw.waitLine('WRITER ready', 60_000);
  await sleep(300);
  await d.call('stopRenew');
  const ks = await d.call<{ lease: { deadlineNs: string | null } }>('kernelStatus', {});
  await waitFor('the fence', () => gateOf() === 'fenced', LEASE_MS + bound + 10_000);
  await dw.waitLine('WRITER first-error', 10_000);
  dw.child.kill('SIGTERM');
  await dw.done();
  const fe = firstError(dw);
  if (fe && ks.lease.deadlineNs) perf(`fence lease-expired under write load: lease deadline -> the writer's first EIO ${(Number(BigInt(fe[2]!) - BigInt(ks.lease.deadlineNs)) / 1e6).toFixed(2)} ms`);
  check('fence-lease-expiry-idle', idleOk && idle?.cause === 'lease-expired' && idle.drained && idle.shutdown === 'XFS shut down' &&
    idleTouch.code !== 0 && /Input\/output error/.test(idleTouch.stderr) && fe?.[1] === 'EIO',
    `idle fence ${JSON.stringify(idle)}; touch right after it: rc=${idleTouch.code} ${idleTouch.stderr.trim()}; device writer ${fe?.[1] ?? 'no error'}`);
  await d.event((e) => e.type === 'fenced', 10_000);
  await d.call('clearFence');

  // 9. LEASE_LOST from the daemon (quorum lost): fenced at once.
  await mountVolume(d);
  await fenceUnderLoad('fence-lease-lost', () => d, async () => { await d.call('lease', { ms: null }); }, 'lease-lost', true);

  // 10. kill -9 of the daemon: its netlink socket is released, the kernel fences at once.
  //     A new daemon adopts the fenced volume and clears it.
  await mountVolume(d);
  const killed = d;
  await fenceUnderLoad('fence-daemon-kill', () => d, async () => {
    await killed.stop('SIGKILL');
    d = await startDaemon();
    await d.call('attach', { device: RAW, mountpoint: MP });
  }, 'daemon-lost', false);

  // 11. The daemon stopped (SIGSTOP) past its lease: the kernel timer fences; when it runs
  //     again it hears of the fence.
  await mountVolume(d);
  const stopped = d;
  await fenceUnderLoad('fence-daemon-stopped', () => d, async () => {
    stopped.child.kill('SIGSTOP');
    // The kernel's own timer must do it: a renewal after SIGCONT would fence too (too late).
    const whileStopped = await waitFor('the fence while the daemon is stopped', () => gateOf() === 'fenced', LEASE_MS + bound + 10_000);
    stopped.child.kill('SIGCONT');
    return whileStopped ? undefined : 'not fenced while the daemon was stopped';
  }, 'lease-expired', true);

  // 12. Cleared and unmounted, the volume is usable again; the files written before the
  //     first fence are there (fsync'd), the daemon's umount closes the gate.
  await mountVolume(d);
  const again = await sh(`cat ${MP}/hello && ls ${MP} | wc -l`);
  await d.call('umount');
  check('clear-reopen', again.code === 0 && again.stdout.startsWith('hello') && gateOf() === 'closed' && !mounted(),
    `after the fences: read '${again.stdout.split('\n')[0]}', ${again.stdout.split('\n')[1]} files; umounted, gate ${gateOf()}`);

  // 13. Unregistered, the disk is no longer claimed: the raw disk mounts (and holds what
  //     was written through the stacked device).
  const busy = await d.call('unregister').then(() => 'ok', (e: { code?: string }) => e.code);
  const rawMount = await sh(`mount -t xfs ${RAW} /mnt/raw && cat /mnt/raw/hello && umount /mnt/raw`);
  check('unregister', busy === 'ok' && !existsSync(DEV) && rawMount.code === 0 && rawMount.stdout.trim() === 'hello' && !debugfsVolumes().includes('volume=vol0'),
    `unregister ${busy}; ${DEV} ${existsSync(DEV) ? 'still there' : 'gone'}; raw mount rc=${rawMount.code} read '${rawMount.stdout.trim()}' ${rawMount.stderr.trim()}`);

  await d.stop();
  console.log('---- /sys/kernel/debug/mxfs/volumes');
  console.log(debugfsVolumes().trim());
  console.log(`MXFS-VOLUME-TESTS passes=${passes} fails=${fails}`);
}

// ---- fence_fallback: a write held below the gate past the drain bound ----
//
// `volume-tests.js fallback log|restart DM_NAME DM_DEV` (vm-tests.sh): the module is loaded with
// `volumes=fb=DM_DEV drain_timeout_ms=1000 fence_fallback=log|restart`, DM_DEV being a
// device-mapper linear target over /dev/vda. `dmsetup suspend` makes device-mapper hold every
// new bio (queued until `dmsetup resume`), so a write issued through /dev/mxfs/fb after it
// passes the gate and stays in flight: the fence that comes next cannot drain it.
const FB = 'fb';
const FB_DEV = `/dev/mxfs/${FB}`;
const HELD_OFF = 80 << 20; // in the raw area beyond the XFS

/** Whether the 4 KiB block at `off` holds `text` (an O_DIRECT read: the disk, not a cache). */
function blockHas(path: string, off: number, text: string): boolean {
  const f = DirectFile.open(path, O_RDONLY | O_DIRECT);
  const buf = new AlignedBuffer(4096);
  try {
    f.read(buf, off);
    return Buffer.from(buf.bytes).includes(text);
  } finally {
    f.close();
    buf.free();
  }
}

const inflightWrites = (vol: string): number => Number(/ inflight_writes=(\d+)/.exec(volumeLine(vol))?.[1] ?? -1);
const onceOutcome = (p: Proc): string | undefined => p.lines.find((l) => /^ONCE (ok|err)/.test(l));

/** Daemon up, gate of fb open, the device suspended and one raw write held in flight below the
 *  gate; with `mountpoint`, XFS is mounted there and its log write is held too (touch of a file
 *  made and synced before, then sync: a transaction that needs no read, and the log force). */
async function holdWrite(dm: string, dmDev: string, mountpoint: string | undefined, marker: string):
  Promise<{ d: Daemon; w: Proc; app?: Promise<Sh>; problem?: string }> {
  const d = await startDaemon();
  await d.call('attach', { volume: FB, device: dmDev, ...(mountpoint ? { mountpoint } : {}) });
  await d.call('lease', { ms: LEASE_MS, renewEveryMs: RENEW_MS });
  await d.call('mount', { volume: FB, generation: 1 });
  if (mountpoint) await sh(`touch ${mountpoint}/held && sync`);
  const susp = await sh(`dmsetup suspend --nolockfs ${dm}`);
  const w = new Proc(['write-once', FB_DEV, String(HELD_OFF), marker]);
  await w.waitLine('ONCE issuing', 60_000);
  const app = mountpoint ? sh(`touch ${mountpoint}/held && sync`) : undefined;
  const want = app ? 2 : 1;
  const held = await waitFor('the held writes under the gate', () => inflightWrites(FB) >= want, 15_000);
  const problem = susp.code !== 0 ? `dmsetup suspend failed: ${susp.stderr.trim()}`
    : gateOf(FB) !== 'open' ? `gate ${gateOf(FB)}, not open`
    : !held ? `fewer than ${want} writes in flight: ${volumeLine(FB).trim()} (${onceOutcome(w) ?? 'raw writer still waiting'})` : undefined;
  return { d, w, ...(app ? { app } : {}), ...(problem ? { problem } : {}) };
}

/**
 * fence_fallback=log: LEASE_LOST fences the volume while writes are held (a raw one, and a
 * log write of the XFS mounted on it: the fence's XFS shutdown must not wait for it). The fence waits its whole bound, records drained=0, logs "writes still in flight ...
 * fence_fallback=log" and the node goes on; then the device is resumed and the held write
 * lands on the disk after the fence: the late write the fallback exists to stop.
 */
async function fallbackLog(dm: string, dmDev: string): Promise<void> {
  const drainMs = param('drain_timeout_ms');
  const bound = param('timer_slack_ms') + drainMs;
  const fallback = readFileSync(`${P}/fence_fallback`, 'utf8').trim();
  const marker = `MXFS-HELD-${randomBytes(6).toString('hex')}`;
  mkdirSync('/mnt/fb', { recursive: true });
  const { d, w, app, problem } = await holdWrite(dm, dmDev, '/mnt/fb', marker);
  const heldAtFence = volumeLine(FB).trim();
  const t0 = nowNs();
  await d.call('lease', { ms: null }); // LEASE_LOST: every open gate is fenced now
  const fenced = await waitFor('the fence', () => gateOf(FB) === 'fenced', bound + 30_000);
  const fencedMs = Number(nowNs() - t0) / 1e6;
  const f = await lastFence(d, FB);
  const kmsg = (await sh('dmesg')).stdout.split('\n').find((l) => l.includes(`mxfs: volume ${FB}: `) && l.includes('writes still in flight'));
  const stillHeld = onceOutcome(w);
  const resumed = await sh(`dmsetup resume ${dm}`);
  await waitFor('the held write to complete', () => onceOutcome(w) !== undefined, 30_000);
  await w.done();
  const appDone = await app;
  const landed = blockHas(dmDev, HELD_OFF, marker);
  const cleared = await d.call('clearFence', { volume: FB }).then(() => `cleared, gate ${gateOf(FB)}`, (e: Error) => `clearFence failed: ${e.message}`);
  const unreg = await d.call('unregister', { volume: FB }).then(() => 'unregistered', (e: Error) => `unregister failed: ${e.message}`);
  await d.stop();
  check('fence-fallback-log', !problem && fallback === 'log' && fenced && stillHeld === undefined && f !== undefined && !f.drained &&
    f.inflight >= 2 && f.shutdown === 'XFS shut down' && f.durationUs >= drainMs * 1000 && kmsg !== undefined && /fence_fallback=log/.test(kmsg) && resumed.code === 0 && landed,
    `${problem ? `${problem}; ` : ''}fence_fallback=${fallback}, bound ${bound} ms; held: ${heldAtFence}; ` +
    `fenced=${fenced} ${fencedMs.toFixed(0)} ms after LEASE_LOST with the raw write ` +
    `still held (${stillHeld ?? 'no outcome yet'}); record ${JSON.stringify(f)}; kernel: ${kmsg?.trim() ?? '(no "writes still in flight" line)'}; ` +
    `after dmsetup resume: the held write ${onceOutcome(w) ?? 'never completed'}, on the disk: ${landed}; touch + sync on the XFS: rc=${appDone?.code} ${appDone?.stderr.trim() ?? ''}; ${cleared}; ${unreg}`);
  if (f) perf(`fence drain missed (fence_fallback=log): trigger -> bound missed + XFS shut down ${(f.durationUs / 1000).toFixed(1)} ms (bound ${bound} ms)`);
}

/**
 * fence_fallback=restart: kill -9 of the daemon fences the volume (no filesystem on it) while
 * the write is held; the module must restart the machine when the bound is missed. QEMU runs
 * with -no-reboot, so the restart ends it: run-vm-tests.sh checks the console's "restarting
 * the machine" line, that this program never printed "survived", and that the held write is
 * not in the disk image. If the machine is still running `resume_after_ms` after the trigger,
 * the device is resumed (a storage path that recovers) and the held write lands: this program
 * says so and fails.
 */
async function fallbackRestart(dm: string, dmDev: string): Promise<void> {
  const bound = param('timer_slack_ms') + param('drain_timeout_ms');
  const fallback = readFileSync(`${P}/fence_fallback`, 'utf8').trim();
  const marker = `MXFS-HELD-${randomBytes(6).toString('hex')}`;
  const { d, w, problem } = await holdWrite(dm, dmDev, undefined, marker);
  if (problem || fallback !== 'restart') {
    console.log(`MXFS-FALLBACK not armed: ${problem ?? `fence_fallback=${fallback}`}`);
    return;
  }
  const resumeAfterMs = bound + 5000;
  console.log(`MXFS-FALLBACK armed marker=${marker} offset=${HELD_OFF} bound_ms=${bound} resume_after_ms=${resumeAfterMs} ${volumeLine(FB)}`);
  // The trigger's time in the kernel log's clock (the console prints both lines' timestamps).
  writeFileSync('/dev/kmsg', '<2>mxfs-test: fence trigger: kill -9 of the daemon\n');
  await d.stop('SIGKILL');
  await sleep(resumeAfterMs);
  const state = volumeLine(FB);
  await sh(`dmsetup resume ${dm}`);
  await waitFor('the held write to complete', () => onceOutcome(w) !== undefined, 30_000);
  const landed = blockHas(dmDev, HELD_OFF, marker);
  console.log(`MXFS-FALLBACK survived ${resumeAfterMs} ms after the trigger: ${state.trim()}; after dmsetup resume the held write ${onceOutcome(w) ?? 'never completed'}, on the disk: ${landed}`);
}

const mode = process.argv[2];
let run: Promise<void>;
if (mode === 'fallback') {
  const [kind, dm, dmDev] = process.argv.slice(3);
  run = (kind === 'restart' ? fallbackRestart : fallbackLog)(dm!, dmDev!).then(() => console.log(`MXFS-FALLBACK-TESTS passes=${passes} fails=${fails}`));
} else {
  run = main();
}
run.then(
  () => process.exit(fails ? 1 : 0),
  (err: Error) => { fail(mode === 'fallback' ? `fence-fallback-${process.argv[3]}` : 'volume-tests', `aborted: ${err.stack ?? err.message}`); console.log(`MXFS-VOLUME-TESTS passes=${passes} fails=${fails}`); process.exit(1); },
);
