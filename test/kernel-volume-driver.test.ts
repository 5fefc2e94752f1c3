/**
 * KernelVolumeDriver on the host, against a fake module (the gate and lease rules of
 * kernel/mxfs_volume.c and mxfs_lease.c, in a few lines) behind a fake bridge, and a fake
 * host (mount/umount, mountinfo, stat, kmsg). What the real module and XFS do is proven in
 * the VM (test/vm/volume-tests.ts); this checks the driver's side: what it sends, how it
 * maps the kernel's answers to VolumeErrors and DriverEvents, the lease conversion to
 * CLOCK_MONOTONIC, gate-wait replies, adoption and re-attach.
 */
import { expect } from 'chai';
import bunyan from 'bunyan';
import type { BridgeStatus, KernelBridge, KernelVolumeListener } from '../src/actors/kernel-bridge';
import { KernelNotAttached } from '../src/actors/kernel-bridge';
import { KernelAckError } from '../src/ffi/genl-socket';
import { MxfsAttr, MxfsCmd, MxfsFenceCause, MxfsGate, MxfsLeaseState, MxfsShutdown, MxfsVolumeEvent } from '../src/ffi/mxfs-genl';
import type { MxfsAttrs, MxfsMessage } from '../src/ffi/netlink-msg';
import { ManualClock } from '../src/util/clock';
import { VolumeError, type DriverEvent, type OwnershipContext } from '../src/volumes/driver';
import { KernelVolumeDriver, kernelVolumeNameError, MODULE_DEFAULT_FENCE_BOUND_MS } from '../src/volumes/kernel-driver';
import { kernelDev, parseMountInfo, splitDev, type CommandResult, type KernelHost, type MountEntry } from '../src/volumes/kernel-host';

const A = MxfsAttr;
const msg = (cmd: MxfsCmd, attrs: MxfsAttrs): MxfsMessage => ({ cmd, seq: 1, portid: 0, attrs });

interface FakeVol { name: string; dev: number; gate: MxfsGate; generation: number; writers: number; fences: MxfsAttrs[] }

/** The module's volume rules, enough for the driver: errors with extack texts like the real ones. */
class FakeModule {
  vols = new Map<string, FakeVol>();
  lease: { state: MxfsLeaseState; deadline?: bigint } = { state: MxfsLeaseState.NONE };
  sent: Array<{ cmd: MxfsCmd; attrs: MxfsAttrs }> = [];
  /** Fence completions the test releases (the event is sent by the "fence work"). */
  pendingFences: string[] = [];

  leaseInfo(): MxfsMessage {
    return msg(MxfsCmd.LEASE_INFO, {
      [A.LEASE_STATE]: this.lease.state, [A.FENCE_BOUND_MS]: 3100,
      ...(this.lease.state === MxfsLeaseState.VALID ? { [A.LEASE_REMAINING_MS]: 2000 } : {}),
      ...(this.lease.deadline !== undefined ? { [A.LEASE_AGE_MS]: 5, [A.DEADLINE_NS]: this.lease.deadline } : {}),
    });
  }

  info(v: FakeVol): MxfsMessage[] {
    return [
      msg(MxfsCmd.VOLUME_INFO, {
        [A.VOLUME]: v.name, [A.DEV]: v.dev, [A.GATE]: v.gate, [A.GENERATION]: BigInt(v.generation), [A.OPENERS]: v.writers,
        [A.WRITERS]: v.writers, [A.INFLIGHT]: 0, [A.INFLIGHT_WRITES]: 0, [A.REFUSED]: 0n, [A.FENCES]: v.fences.length,
      }),
      ...v.fences.map((f) => msg(MxfsCmd.FENCE_INFO, { [A.VOLUME]: v.name, ...f })),
    ];
  }

  fenceRecord(v: FakeVol, cause: MxfsFenceCause): MxfsAttrs {
    return {
      [A.FENCE_CAUSE]: cause, [A.GENERATION]: BigInt(v.generation), [A.FENCE_TIME_MS]: 1700000000000n,
      [A.FENCE_DURATION_US]: 2500, [A.FENCE_DRAINED]: 1, [A.FENCE_SHUTDOWN]: MxfsShutdown.DONE, [A.FENCE_INFLIGHT]: 2,
    };
  }

  handle(cmd: MxfsCmd, a: MxfsAttrs): MxfsMessage[] {
    this.sent.push({ cmd, attrs: a });
    const name = a[A.VOLUME] as string;
    const v = this.vols.get(name);
    const refuse = (errno: number, text: string) => { throw new KernelAckError(errno, text); };
    switch (cmd) {
      case MxfsCmd.VOLUME_REGISTER: {
        const dev = a[A.DEV] as number;
        if (v) return v.dev === dev ? this.info(v) : refuse(17, 'mxfs: volume registered with another device');
        if ([...this.vols.values()].some((x) => x.dev === dev)) refuse(16, 'mxfs: device registered as another volume');
        const nv: FakeVol = { name, dev, gate: MxfsGate.CLOSED, generation: 0, writers: 0, fences: [] };
        this.vols.set(name, nv);
        return this.info(nv);
      }
      case MxfsCmd.VOLUME_GATE: {
        if (!v) return refuse(2, 'mxfs: no such volume');
        if (v.gate >= MxfsGate.FENCING) refuse(5, 'mxfs: the volume is fenced: unmount it and clear it (VOLUME_CLEAR) first');
        if (a[A.GATE] === MxfsGate.OPEN) {
          if (this.lease.state !== MxfsLeaseState.VALID) refuse(37, 'mxfs: no valid kernel lease (LEASE_RENEW first)');
          v.gate = MxfsGate.OPEN;
          v.generation = Number(a[A.GENERATION]);
        } else {
          if (v.writers) refuse(16, 'mxfs: the volume is open for writing (unmount it first)');
          v.gate = MxfsGate.CLOSED;
        }
        return this.info(v);
      }
      case MxfsCmd.VOLUME_FENCE:
        if (!v) return refuse(2, 'mxfs: no such volume');
        if (v.gate === MxfsGate.OPEN) {
          v.gate = MxfsGate.FENCING;
          this.pendingFences.push(name);
        }
        return this.info(v);
      case MxfsCmd.VOLUME_CLEAR:
        if (!v) return refuse(2, 'mxfs: no such volume');
        if (v.gate === MxfsGate.OPEN) refuse(22, 'mxfs: the volume is not fenced');
        if (v.writers) refuse(16, 'mxfs: the fenced volume is still open for writing (unmount it first)');
        v.gate = MxfsGate.CLOSED;
        return this.info(v);
      case MxfsCmd.LEASE_RENEW:
        this.lease = { state: MxfsLeaseState.VALID, deadline: a[A.DEADLINE_NS] as bigint };
        return [this.leaseInfo()];
      case MxfsCmd.LEASE_LOST:
        this.lease = { ...this.lease, state: MxfsLeaseState.LOST };
        return [this.leaseInfo()];
      case MxfsCmd.VOLUME_STATUS_REQ:
        if (name && !v) refuse(2, 'mxfs: no such volume');
        return [this.leaseInfo(), ...[...this.vols.values()].filter((x) => !name || x === v).flatMap((x) => this.info(x))];
      case MxfsCmd.VOLUME_REPLY:
        return [];
      default:
        return refuse(95, 'not in the fake');
    }
  }
}

class FakeBridge implements KernelBridge {
  attached = true;
  listener: KernelVolumeListener | undefined;
  constructor(readonly module: FakeModule) {}
  status(): BridgeStatus {
    return { state: this.attached ? 'attached' : 'no-module' } as BridgeStatus;
  }
  async request(cmd: MxfsCmd, attrs: MxfsAttrs): Promise<MxfsMessage[]> {
    if (!this.attached) throw new KernelNotAttached('no-module', 'genetlink family "mxfs" not found');
    return this.module.handle(cmd, attrs);
  }
  setVolumeListener(l: KernelVolumeListener | undefined): void {
    this.listener = l;
    if (l && this.attached) l.attached();
  }
  async stop(): Promise<void> {}
  /** The fence work finished: the module's VOLUME_EVENT. */
  finishFence(name: string, cause: MxfsFenceCause): void {
    const v = this.module.vols.get(name)!;
    v.gate = MxfsGate.FENCED;
    const rec = this.module.fenceRecord(v, cause);
    v.fences.push(rec);
    this.listener!.volumeEvent(msg(MxfsCmd.VOLUME_EVENT, { [A.VOLUME]: name, [A.VOLUME_EVENT]: MxfsVolumeEvent.FENCED, ...rec }));
  }
  released(name: string, generation: number): void {
    this.listener!.volumeEvent(msg(MxfsCmd.VOLUME_EVENT, { [A.VOLUME]: name, [A.VOLUME_EVENT]: MxfsVolumeEvent.RELEASED, [A.GENERATION]: BigInt(generation) }));
  }
}

class FakeHost implements KernelHost {
  devices = new Map<string, { major: number; minor: number }>([['/dev/vda', { major: 254, minor: 0 }], ['/dev/mxfs/vol0', { major: 259, minor: 3 }]]);
  dirs = new Set(['/mnt/vol0']);
  mountList: MountEntry[] = [];
  runs: string[][] = [];
  next: CommandResult | undefined;
  /** The next umount unmounts whatever it reports (it was killed after the kernel was done). */
  unmountsAnyway = false;
  kmsg: Array<{ seq: number; message: string }> = [{ seq: 10, message: 'XFS (mxfs!vol0): old news' }];
  /** Kernel log lines the next command adds (what XFS says while mounting). */
  kmsgOnRun: string[] = [];
  async run(argv: string[]): Promise<CommandResult> {
    this.runs.push(argv);
    for (const message of this.kmsgOnRun.splice(0)) this.kmsg.push({ seq: this.kmsgMark() + 1, message });
    const r = this.next ?? { code: 0, stdout: '', stderr: '' };
    this.next = undefined;
    if (r.code === 0 && argv[0] === 'mount') this.mountList.push({ majorMinor: '259:3', mountpoint: argv[argv.length - 1]!, fstype: 'xfs', source: argv[argv.length - 2]! });
    if ((r.code === 0 || this.unmountsAnyway) && argv[0] === 'umount') this.mountList = this.mountList.filter((m) => m.mountpoint !== argv[1]);
    this.unmountsAnyway = false;
    return r;
  }
  mounts(): MountEntry[] { return this.mountList; }
  blockDevice(path: string) {
    if (path === '/dev/sda1') return { kind: 'not-block' as const };
    const d = this.devices.get(path);
    return d ? { kind: 'block' as const, ...d } : { kind: 'missing' as const };
  }
  isDirectory(path: string): boolean { return this.dirs.has(path); }
  kmsgMark(): number { return this.kmsg[this.kmsg.length - 1]?.seq ?? -1; }
  kmsgSince(mark: number) { return this.kmsg.filter((r) => r.seq > mark); }
}

const tick = () => new Promise((r) => setImmediate(r));
async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await tick();
  }
}

describe('KernelVolumeDriver (fake module, fake host)', () => {
  const log = bunyan.createLogger({ name: 'kernel-driver-test', level: 'fatal' });
  const spec = { name: 'vol0', device: '/dev/vda', mountpoint: '/mnt/vol0', mountOptions: 'noatime' };
  let module: FakeModule;
  let bridge: FakeBridge;
  let host: FakeHost;
  let clock: ManualClock;
  let driver: KernelVolumeDriver;
  let events: DriverEvent[];
  const ctx = (generation: number): OwnershipContext => ({ volume: spec, node: 1, generation, token: generation });
  const sentOf = (cmd: MxfsCmd) => module.sent.filter((s) => s.cmd === cmd).map((s) => s.attrs);
  const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string; message: string }) => `${e.code}: ${e.message}`);

  beforeEach(() => {
    module = new FakeModule();
    bridge = new FakeBridge(module);
    host = new FakeHost();
    clock = new ManualClock();
    clock.advance(500);
    driver = new KernelVolumeDriver({ bridge, clock, log, host, monotonicNs: () => 1_000_000_000n });
    events = [];
    driver.onEvent((e) => events.push(e));
  });

  it('kernel volume names: 1-26 bytes of [A-Za-z0-9_.-], not starting with . or -', () => {
    expect(kernelVolumeNameError('v'.repeat(26))).to.equal(undefined);
    expect(kernelVolumeNameError('data_1.x-y')).to.equal(undefined);
    expect(kernelVolumeNameError('v'.repeat(27))).to.match(/1-26 bytes/);
    expect(kernelVolumeNameError('')).to.match(/1-26 bytes/);
    expect(kernelVolumeNameError('a/b')).to.match(/\[A-Za-z0-9_.-\]/);
    expect(kernelVolumeNameError('-x')).to.match(/do not start/);
  });

  it('device numbers: glibc dev_t from stat to the kernel encoding; mountinfo fields', () => {
    expect(splitDev((259n << 8n) | 3n)).to.deep.equal({ major: 259, minor: 3 });
    // glibc's makedev: major bits 0-11 at 8, the rest at 32; minor bits 0-7 at 0, the rest at 12.
    const makedev = (ma: bigint, mi: bigint) => ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
    expect(splitDev(makedev(259n, 0x12345n))).to.deep.equal({ major: 259, minor: 0x12345 });
    expect(splitDev(makedev(0x1234n, 7n))).to.deep.equal({ major: 0x1234, minor: 7 });
    expect(kernelDev(254, 16)).to.equal((254 << 20) | 16);
    expect(() => kernelDev(5000, 0)).to.throw(RangeError);
    const m = parseMountInfo('36 25 259:3 / /mnt/my\\040vol rw,relatime shared:1 - xfs /dev/mxfs/vol0 rw,attr2\n');
    expect(m).to.deep.equal([{ majorMinor: '259:3', mountpoint: '/mnt/my vol', fstype: 'xfs', source: '/dev/mxfs/vol0' }]);
  });

  it('attach: registers the device (kernel dev_t), learns the fence bound; refuses missing devices and no module', async () => {
    await driver.attach(spec);
    expect(sentOf(MxfsCmd.VOLUME_REGISTER)).to.deep.equal([{ [A.VOLUME]: 'vol0', [A.DEV]: (254 << 20) | 0 }]);
    expect(driver.fenceBoundMs()).to.equal(3100);
    expect(await code(driver.attach({ name: 'v2', device: '/dev/nope' }))).to.match(/^DEVICE_MISSING: .*does not exist/);
    expect(await code(driver.attach({ name: 'v2', device: '/dev/sda1' }))).to.match(/^DEVICE_MISSING: .*not a block device/);
    expect(await code(driver.attach({ name: 'v2', device: '/dev/vda' }))).to.match(/^DRIVER: .*device registered as another volume \(errno 16\)/);
    expect(await code(driver.attach({ name: 'v'.repeat(27), device: '/dev/vda' }))).to.match(/^DRIVER: .*1-26 bytes/);
    bridge.attached = false;
    bridge.listener!.detached('kernel module unloaded');
    const noModule = code(driver.attach({ name: 'v3', device: '/dev/mxfs/vol0' }));
    clock.advance(5000);                        // waited for the module that long
    expect(await noModule).to.match(/^NO_MODULE: .*not attached/);
    const fresh = new KernelVolumeDriver({ bridge, clock, log, host });
    expect(fresh.fenceBoundMs()).to.equal(MODULE_DEFAULT_FENCE_BOUND_MS); // the module never reached
    await fresh.close();
  });

  it('attach at daemon start waits for the bridge to attach to the module', async () => {
    bridge.attached = false;
    bridge.listener!.detached('starting');
    const p = driver.attach(spec);
    await tick();
    expect(sentOf(MxfsCmd.VOLUME_REGISTER)).to.deep.equal([]);
    bridge.attached = true;
    bridge.listener!.attached();
    await p;
    expect(sentOf(MxfsCmd.VOLUME_REGISTER)).to.have.length(1);
  });

  it('adopts a volume the module kept fenced (a daemon restart) and reports it', async () => {
    module.vols.set('vol0', { name: 'vol0', dev: 254 << 20, gate: MxfsGate.FENCED, generation: 4, writers: 0, fences: [] });
    module.vols.get('vol0')!.fences.push(module.fenceRecord(module.vols.get('vol0')!, MxfsFenceCause.DAEMON_LOST));
    await driver.attach(spec);
    const st = await driver.status('vol0');
    expect(st.gate).to.equal('fenced');
    expect(st.fences).to.deep.equal([{ cause: 'daemon-lost', at: 1700000000000, durationMs: 2.5, drained: true }]);
    await driver.clearFence('vol0');
    expect((await driver.status('vol0')).gate).to.equal('closed');
  });

  it('setLease: the Clock deadline becomes an absolute CLOCK_MONOTONIC deadline; null is LEASE_LOST; kept until attached', async () => {
    driver.setLease(2500);                      // clock at 500 ms, monotonic at 1 s: 2 s from now
    await tick();
    expect(sentOf(MxfsCmd.LEASE_RENEW)).to.deep.equal([{ [A.DEADLINE_NS]: 3_000_000_000n }]);
    driver.setLease(null, 'quorum lost: ' + 'x'.repeat(100));
    await tick();
    const lost = sentOf(MxfsCmd.LEASE_LOST)[0]![A.REASON] as string;
    expect(Buffer.byteLength(lost)).to.equal(64);
    bridge.attached = false;
    driver.setLease(900);
    expect(sentOf(MxfsCmd.LEASE_RENEW)).to.have.length(1);
    bridge.attached = true;
    bridge.listener!.attached();                // the module (re)attached: the lease goes with it
    await until(() => sentOf(MxfsCmd.LEASE_RENEW).length === 2);
    expect(sentOf(MxfsCmd.LEASE_RENEW)[1]).to.deep.equal({ [A.DEADLINE_NS]: 1_400_000_000n });
  });

  it('mount: opens the gate with the generation, then mount -t xfs -o <options> /dev/mxfs/<v> <mountpoint>', async () => {
    await driver.attach(spec);
    expect(await code(driver.mount(ctx(3)))).to.match(/^MOUNT_FAILED: .*no valid kernel lease/);
    expect(host.runs).to.deep.equal([]);
    driver.setLease(10_000);
    await driver.mount(ctx(3));
    expect(sentOf(MxfsCmd.VOLUME_GATE).pop()).to.deep.equal({ [A.VOLUME]: 'vol0', [A.GATE]: MxfsGate.OPEN, [A.GENERATION]: 3n });
    expect(host.runs).to.deep.equal([['mount', '-t', 'xfs', '-o', 'noatime', '/dev/mxfs/vol0', '/mnt/vol0']]);
    expect((await driver.status('vol0'))).to.include({ gate: 'open', mounted: true, leaseState: 'valid', leaseRemainingMs: 2000, leaseAgeMs: 5, fenceBoundMs: 3100 });
    await driver.mount(ctx(3));                 // mounted already: adopted, not mounted twice
    expect(host.runs).to.have.length(1);
    expect(await code(driver.mount({ ...ctx(4), volume: { ...spec, mountpoint: '/nowhere' } }))).to.match(/^MOUNTPOINT_MISSING/);
  });

  it('a failed mount says what mount(8) and XFS said, and closes the gate again', async () => {
    await driver.attach(spec);
    driver.setLease(10_000);
    host.next = { code: 32, stdout: '', stderr: 'mount: /mnt/vol0: mount(2) system call failed: Structure needs cleaning.\n' };
    host.kmsgOnRun = ['XFS (mxfs!vol0): Metadata corruption detected at xfs_agf_verify', 'usb 1-1: something else',
      'XFS (mxfs!vol0): log mount failed'];
    const err = await code(driver.mount(ctx(5)));
    expect(err).to.match(/^MOUNT_FAILED: mount \/dev\/mxfs\/vol0 on \/mnt\/vol0 failed \(exit 32\): .*Structure needs cleaning/);
    expect(err).to.match(/XFS: XFS \(mxfs!vol0\): Metadata corruption detected at xfs_agf_verify \| XFS \(mxfs!vol0\): log mount failed$/);
    expect(err).to.not.match(/old news|usb/);
    expect(module.vols.get('vol0')!.gate).to.equal(MxfsGate.CLOSED);
    bridge.released('vol0', 5);                 // the failed mount's own close: not news
    expect(events).to.deep.equal([]);
  });

  it('umount: umount(8), then the gate closes; its RELEASED is not news, another one is', async () => {
    await driver.attach(spec);
    driver.setLease(10_000);
    await driver.mount(ctx(6));
    host.next = { code: 32, stdout: '', stderr: 'umount: /mnt/vol0: target is busy.' };
    expect(await code(driver.umount(ctx(6)))).to.match(/^UMOUNT_FAILED: umount \/mnt\/vol0 failed .*target is busy/);
    expect(module.vols.get('vol0')!.gate).to.equal(MxfsGate.OPEN);
    await driver.umount(ctx(6));
    expect(host.runs.pop()).to.deep.equal(['umount', '/mnt/vol0']);
    expect(module.vols.get('vol0')!.gate).to.equal(MxfsGate.CLOSED);
    bridge.released('vol0', 6);
    expect(events).to.deep.equal([]);
    await driver.mount(ctx(7));
    bridge.released('vol0', 7);                 // the administrator unmounted it
    expect(events).to.deep.equal([{ type: 'released', volume: 'vol0' }]);
  });

  it('a umount(8) killed at its time bound is in doubt while the mount is still there, and done if it is gone', async () => {
    await driver.attach(spec);
    driver.setLease(10_000);
    await driver.mount(ctx(6));
    host.next = { code: 1, stdout: '', stderr: 'Command failed: umount /mnt/vol0', timedOut: true };
    const e = await driver.umount(ctx(6)).then(() => undefined, (x: VolumeError) => x);
    expect(e?.code).to.equal('UMOUNT_FAILED');
    expect(e?.message).to.match(/^umount \/mnt\/vol0 did not finish \(killed\)/);
    expect(e?.inDoubt).to.equal(true);
    expect(module.vols.get('vol0')!.gate).to.equal(MxfsGate.OPEN);
    // An exit status with the mount still there: umount's plain answer, not in doubt.
    host.next = { code: 32, stdout: '', stderr: 'umount: /mnt/vol0: target is busy.' };
    expect((await driver.umount(ctx(6)).then(() => undefined, (x: VolumeError) => x))?.inDoubt).to.equal(false);
    // Killed, but the kernel had unmounted it: done, and the gate closes.
    host.next = { code: 1, stdout: '', stderr: 'Command failed: umount /mnt/vol0', timedOut: true };
    host.unmountsAnyway = true;
    await driver.umount(ctx(6));
    expect(host.mountList).to.deep.equal([]);
    expect(module.vols.get('vol0')!.gate).to.equal(MxfsGate.CLOSED);
  });

  it('fence: VOLUME_FENCE, then the report from the module fence record (not also an event)', async () => {
    await driver.attach(spec);
    driver.setLease(10_000);
    expect(await driver.fence('vol0', 'split')).to.deep.include({ fenced: true, durationMs: 0 });  // gate closed
    await driver.mount(ctx(8));
    const report = driver.fence('vol0', 'lost its lock');
    await until(() => module.pendingFences.length === 1);
    expect(sentOf(MxfsCmd.VOLUME_FENCE)[0]).to.deep.equal({ [A.VOLUME]: 'vol0', [A.REASON]: 'lost its lock' });
    bridge.finishFence('vol0', MxfsFenceCause.EXPLICIT);
    expect(await report).to.deep.equal({
      fenced: true, cause: 'lost its lock', durationMs: 2.5, detail: '2 writes in flight at the fence, drained; XFS shut down',
    });
    expect(events).to.deep.equal([]);
    expect((await driver.fence('vol0', 'again')).cause).to.match(/fenced already: explicit/);
    expect(await code(driver.mount(ctx(9)))).to.match(/^MOUNT_FAILED: .*fenced/);
    await driver.clearFence('vol0');
    expect(host.runs.filter((r) => r[0] === 'umount')).to.deep.equal([['umount', '/mnt/vol0']]);
    expect(module.vols.get('vol0')!.gate).to.equal(MxfsGate.CLOSED);
  });

  it('a fence the kernel did on its own (lease expired) is a fenced event with the report', async () => {
    await driver.attach(spec);
    driver.setLease(10_000);
    await driver.mount(ctx(10));
    bridge.finishFence('vol0', MxfsFenceCause.LEASE_EXPIRED);
    expect(events).to.deep.equal([{ type: 'fenced', volume: 'vol0', report: {
      fenced: true, cause: 'lease-expired', durationMs: 2.5, detail: '2 writes in flight at the fence, drained; XFS shut down',
    } }]);
    await driver.umount(ctx(10));               // unmounted and cleared: the gate is closed
    expect(module.vols.get('vol0')!.gate).to.equal(MxfsGate.CLOSED);
  });

  /** Attached, leased and mounted under generation `g`. */
  const mountedAt = async (g: number) => {
    await driver.attach(spec);
    driver.setLease(10_000);
    await driver.mount(ctx(g));
  };
  /** A channel overrun ended: the driver's resync number `n` is done. */
  const resynced = async (n: number) => {
    bridge.listener!.resync!();
    await until(() => driver.resyncs === n);
  };

  it('after a channel overrun, a fence whose VOLUME_EVENT was lost is read from the module and reported once', async () => {
    await mountedAt(10);
    await resynced(1);                           // an overrun that lost nothing
    expect(events).to.deep.equal([]);
    // The kernel fenced the volume (lease expired); its VOLUME_EVENT met the full channel.
    const v = module.vols.get('vol0')!;
    v.gate = MxfsGate.FENCED;
    v.fences.push(module.fenceRecord(v, MxfsFenceCause.LEASE_EXPIRED));
    await resynced(2);
    expect(events).to.deep.equal([{ type: 'fenced', volume: 'vol0', report: {
      fenced: true, cause: 'lease-expired', durationMs: 2.5, detail: '2 writes in flight at the fence, drained; XFS shut down',
    } }]);
    await resynced(3);                           // the same record again: not news
    expect(events).to.have.length(1);
  });

  it('after a channel overrun, a release (last writer closed) whose VOLUME_EVENT was lost is reported; its own close is not', async () => {
    await mountedAt(12);
    module.vols.get('vol0')!.gate = MxfsGate.CLOSED;   // the module closed the gate: RELEASED lost
    await resynced(1);
    expect(events).to.deep.equal([{ type: 'released', volume: 'vol0' }]);
    await resynced(2);
    expect(events).to.have.length(1);
    // A gate this driver closed itself (umount) is no release of anyone's.
    await driver.mount(ctx(13));
    await driver.umount(ctx(13));
    await resynced(3);
    expect(events).to.have.length(1);
  });

  it('a resync asked while one runs runs once more after it', async () => {
    await mountedAt(14);
    const before = sentOf(MxfsCmd.VOLUME_STATUS_REQ).length;
    bridge.listener!.resync!();
    bridge.listener!.resync!();
    await resynced(2);
    await tick();
    expect(sentOf(MxfsCmd.VOLUME_STATUS_REQ).length - before).to.equal(2);
  });

  it('gate-wait: mount-wanted; mount() only opens the gate; reply() answers the kernel waiter', async () => {
    await driver.attach(spec);
    driver.setLease(10_000);
    bridge.listener!.mountWanted('vol0', 77n, 5000);
    expect(events.map((e) => e.type)).to.deep.equal(['mount-wanted']);
    const ev = events.pop() as Extract<DriverEvent, { type: 'mount-wanted' }>;
    await driver.mount(ctx(11));
    expect(host.runs).to.deep.equal([]);         // the waiting process mounts, not the daemon
    expect(module.vols.get('vol0')!.gate).to.equal(MxfsGate.OPEN);
    ev.reply();
    await until(() => sentOf(MxfsCmd.VOLUME_REPLY).length === 1);
    expect(sentOf(MxfsCmd.VOLUME_REPLY)[0]).to.deep.equal({ [A.REQ_ID]: 77n, [A.STATUS]: 0 });
    bridge.listener!.mountWanted('vol0', 78n, 5000);
    (events.pop() as Extract<DriverEvent, { type: 'mount-wanted' }>).reply(new VolumeError('DRIVER', 'no'));
    await until(() => sentOf(MxfsCmd.VOLUME_REPLY).length === 2);
    expect(sentOf(MxfsCmd.VOLUME_REPLY)[1]).to.deep.equal({ [A.REQ_ID]: 78n, [A.STATUS]: -37 });
  });

  it('gate-wait: a waiter that gave up (LOCK_CANCEL) gets no reply, and the granted volume is released', async () => {
    await driver.attach(spec);
    driver.setLease(10_000);
    bridge.listener!.mountWanted('vol0', 90n, 5000);
    const ev = events.pop() as Extract<DriverEvent, { type: 'mount-wanted' }>;
    await driver.mount(ctx(12));
    bridge.listener!.requestCancelled(90n);
    ev.reply();
    await tick();
    expect(sentOf(MxfsCmd.VOLUME_REPLY)).to.deep.equal([]);
    expect(events).to.deep.equal([{ type: 'released', volume: 'vol0' }]);
  });

  it('gate-wait without an event handler, or for an unknown volume: refused at once (-ENOENT)', async () => {
    const lone = new KernelVolumeDriver({ bridge, clock, log, host });
    bridge.listener!.mountWanted('nope', 5n, 1000);
    await until(() => sentOf(MxfsCmd.VOLUME_REPLY).length === 1);
    expect(sentOf(MxfsCmd.VOLUME_REPLY)[0]).to.deep.equal({ [A.REQ_ID]: 5n, [A.STATUS]: -2 });
    await lone.close();
  });

  it('re-registers its volumes when the module is attached again (reloaded)', async () => {
    await driver.attach(spec);
    module.vols.clear();                         // a new module knows nothing
    bridge.listener!.detached('kernel module unloaded');
    bridge.listener!.attached();
    await until(() => module.vols.has('vol0'));
    expect(sentOf(MxfsCmd.VOLUME_REGISTER)).to.have.length(2);
  });

  it('status of an unregistered volume or without the module: unknown, with the reason', async () => {
    expect(await driver.status('ghost')).to.deep.include({ gate: 'unknown', detail: 'not registered with the mxfs module' });
    bridge.attached = false;
    expect((await driver.status('ghost')).detail).to.match(/not attached/);
  });
});
