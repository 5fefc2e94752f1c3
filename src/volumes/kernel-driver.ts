/**
 * KernelVolumeDriver: the VolumeDriver for hosts with the mxfs module (docs/kernel.md,
 * "Kernel volumes").
 *
 * Owns: this node's view of the volumes it registered with the module (name, device,
 * last ownership generation, a pending gate-wait request), the last kernel lease it was
 * told to keep (re-sent when the module is attached again), and the module's fence bound.
 * Takes: the VolumeDriver calls of the Volume actors, and from the kernel bridge (as its
 * KernelVolumeListener) attach/detach, VOLUME_MOUNT (gate-wait mode), VOLUME_EVENT, and a
 * resynchronisation after the channel overflowed (a VOLUME_EVENT may have been lost there: the
 * module's state is read and a fence or release this driver had not seen is acted on as if
 * its event had come).
 * Sends: VOLUME_REGISTER / VOLUME_GATE / VOLUME_FENCE / VOLUME_CLEAR / LEASE_RENEW /
 * LEASE_LOST / VOLUME_STATUS_REQ / VOLUME_REPLY through the bridge; runs mount(8) and
 * umount(8); emits DriverEvents (released, fenced, mount-wanted).
 *
 * The kernel state outlives the daemon: registering a volume the module already has (same
 * device) adopts it, fenced or not, and close() leaves everything registered.
 */
import type Logger from 'bunyan';
import type { KernelBridge, KernelVolumeListener } from '../actors/kernel-bridge';
import { KernelNotAttached } from '../actors/kernel-bridge';
import type { Clock, TimerHandle } from '../util/clock';
import { KernelAckError } from '../ffi/genl-socket';
import {
  Errno, MXFS_NAME_MAX, MxfsAttr, MxfsCmd, MxfsFenceCause, MxfsGate, MxfsLeaseState,
  MxfsShutdown, MxfsVolumeEvent,
} from '../ffi/mxfs-genl';
import type { MxfsAttrs, MxfsMessage } from '../ffi/netlink-msg';
import {
  VolumeError, type DriverEvent, type DriverVolumeStatus, type FenceReport, type OwnershipContext, type VolumeDriver,
  type VolumeErrorCode, type VolumeSpec,
} from './driver';
import { kernelDev, systemHost, type KernelHost } from './kernel-host';
import { kernelVolumeNameError } from './kernel-name';

export { kernelVolumeNameError };

/**
 * The module's fence bound with its default options (timer_slack_ms 100 + drain_timeout_ms
 * 5000), reported only until the module has been reached once: no write can have gone
 * through a module this daemon never reached, so no takeover depends on it.
 */
export const MODULE_DEFAULT_FENCE_BOUND_MS = 5100;

/** Where the module's stacked devices appear ('!' in the disk name becomes '/' in devtmpfs). */
export const KERNEL_DEV_DIR = '/dev/mxfs';

export const FENCE_CAUSE_NAME: Readonly<Record<MxfsFenceCause, string>> = {
  [MxfsFenceCause.NONE]: 'none',
  [MxfsFenceCause.LEASE_EXPIRED]: 'lease-expired',
  [MxfsFenceCause.LEASE_LOST]: 'lease-lost',
  [MxfsFenceCause.DAEMON_LOST]: 'daemon-lost',
  [MxfsFenceCause.EXPLICIT]: 'explicit',
};

const SHUTDOWN_NAME: Readonly<Record<MxfsShutdown, string>> = {
  [MxfsShutdown.NO_FS]: 'no filesystem mounted',
  [MxfsShutdown.DONE]: 'XFS shut down',
  [MxfsShutdown.UNAVAILABLE]: 'XFS shutdown unavailable (xfs_fs_goingdown not found)',
  [MxfsShutdown.NOT_XFS]: 'not XFS: left as it is',
};

/** The driver interface has no 'fencing': writes are refused either way. */
const DRIVER_GATE: Readonly<Record<KernelVolumeInfo['gate'], DriverVolumeStatus['gate']>> = {
  closed: 'closed', open: 'open', fencing: 'fenced', fenced: 'fenced',
};

const LEASE_NAME: Readonly<Record<MxfsLeaseState, string>> = {
  [MxfsLeaseState.NONE]: 'none', [MxfsLeaseState.VALID]: 'valid', [MxfsLeaseState.EXPIRED]: 'expired', [MxfsLeaseState.LOST]: 'lost',
};

/** A recorded fence, as the module keeps it (FENCE_INFO, VOLUME_EVENT). */
export interface KernelFence {
  cause: string;
  generation: number;
  /** Wall clock ms of the trigger (the lease deadline for an expiry). */
  at: number;
  /** Trigger -> drained (or bound missed) and XFS shut down. */
  durationUs: number;
  drained: boolean;
  shutdown: string;
  /** Writes in flight when the fence began. */
  inflight: number;
}

export interface KernelVolumeInfo {
  name: string;
  dev: string;
  gate: 'closed' | 'open' | 'fencing' | 'fenced';
  generation: number;
  openers: number;
  writers: number;
  inflight: number;
  inflightWrites: number;
  refusedWrites: number;
  fenceCount: number;
  fences: KernelFence[];
}

export interface KernelLeaseInfo {
  state: string;
  fenceBoundMs: number;
  remainingMs: number | null;
  /** Since the last LEASE_RENEW (null: never renewed since the module loaded). */
  ageMs: number | null;
  /** The last deadline the module was given (CLOCK_MONOTONIC ns), null if never. */
  deadlineNs: bigint | null;
}

export interface KernelVolumesStatus { lease: KernelLeaseInfo; volumes: KernelVolumeInfo[] }

export interface KernelVolumeDriverOptions {
  bridge: KernelBridge;
  clock: Clock;
  log: Logger;
  /** mount/umount, mountinfo, stat, kmsg (default: this host). */
  host?: KernelHost;
  /** CLOCK_MONOTONIC in ns, what the kernel's ktime_get_ns() reads (default process.hrtime.bigint). */
  monotonicNs?: () => bigint;
  /** Bound of one netlink request (ms); default 10000. */
  requestTimeoutMs?: number;
  /** Extra wait for a fence's completion beyond the module's fence bound (ms); default 5000. */
  fenceGraceMs?: number;
  /** attach() while the bridge is still attaching (daemon start): how long it waits for the
   *  module before NO_MODULE (ms); default 5000. */
  attachWaitMs?: number;
}

interface VolumeEntry {
  spec: VolumeSpec;
  dev: number;
  /** Generation of the last gate open. */
  generation?: number;
  /** Generations this driver ended itself (its umount, a failed mount): their RELEASED is not
   *  news. The last few only: a generation whose gate nobody opened for writing sends none. */
  endedByUs: number[];
  /** A process waits in open() for this volume (gate-wait mode). */
  wanted?: MountWanted;
  /** The generation whose gate this driver opened (mount, or adopted open). */
  openedGen?: number;
  /** The generation whose RELEASED this driver saw. */
  releasedGen?: number;
  /** The newest fence record this driver has acted on or knew of (generation, time). */
  fenceSeen?: { generation: number; at: number };
}

interface MountWanted {
  reqId: bigint;
  /** The kernel still waits (no LOCK_CANCEL, not past its bound). */
  live: boolean;
  until: number;
  /** mount() opened the gate for the waiter instead of running mount(8). */
  gateOnly: boolean;
}

type LeaseWanted = { kind: 'deadline'; deadline: number } | { kind: 'lost'; reason: string } | { kind: 'none' };

/** A string attribute cut to what the kernel accepts (bytes, on a character boundary). */
function cut(s: string, max = MXFS_NAME_MAX): string {
  let out = s;
  while (Buffer.byteLength(out, 'utf8') > max) out = out.slice(0, -1);
  return out;
}

function num(v: unknown): number {
  return typeof v === 'bigint' ? Number(v) : (v as number);
}

function parseFence(m: MxfsMessage): KernelFence {
  const a = m.attrs;
  return {
    cause: FENCE_CAUSE_NAME[a[MxfsAttr.FENCE_CAUSE] as MxfsFenceCause] ?? 'unknown',
    generation: num(a[MxfsAttr.GENERATION]),
    at: num(a[MxfsAttr.FENCE_TIME_MS]),
    durationUs: num(a[MxfsAttr.FENCE_DURATION_US]),
    drained: a[MxfsAttr.FENCE_DRAINED] === 1,
    shutdown: SHUTDOWN_NAME[a[MxfsAttr.FENCE_SHUTDOWN] as MxfsShutdown] ?? 'unknown',
    inflight: num(a[MxfsAttr.FENCE_INFLIGHT]),
  };
}

/** LEASE_INFO, VOLUME_INFO and FENCE_INFO replies to a status (or any volume command). */
export function parseVolumesStatus(replies: MxfsMessage[]): { lease?: KernelLeaseInfo; volumes: KernelVolumeInfo[] } {
  let lease: KernelLeaseInfo | undefined;
  const volumes: KernelVolumeInfo[] = [];
  const gates = ['closed', 'open', 'fencing', 'fenced'] as const;
  for (const m of replies) {
    const a = m.attrs;
    if (m.cmd === MxfsCmd.LEASE_INFO) {
      lease = {
        state: LEASE_NAME[a[MxfsAttr.LEASE_STATE] as MxfsLeaseState] ?? 'unknown',
        fenceBoundMs: num(a[MxfsAttr.FENCE_BOUND_MS]),
        remainingMs: a[MxfsAttr.LEASE_REMAINING_MS] !== undefined ? num(a[MxfsAttr.LEASE_REMAINING_MS]) : null,
        ageMs: a[MxfsAttr.LEASE_AGE_MS] !== undefined ? num(a[MxfsAttr.LEASE_AGE_MS]) : null,
        deadlineNs: a[MxfsAttr.DEADLINE_NS] !== undefined ? (a[MxfsAttr.DEADLINE_NS] as bigint) : null,
      };
    } else if (m.cmd === MxfsCmd.VOLUME_INFO) {
      const dev = num(a[MxfsAttr.DEV]);
      volumes.push({
        name: a[MxfsAttr.VOLUME] as string, dev: `${dev >>> 20}:${dev & 0xfffff}`,
        gate: gates[a[MxfsAttr.GATE] as number] ?? 'closed', generation: num(a[MxfsAttr.GENERATION]),
        openers: num(a[MxfsAttr.OPENERS]), writers: num(a[MxfsAttr.WRITERS]), inflight: num(a[MxfsAttr.INFLIGHT]),
        inflightWrites: num(a[MxfsAttr.INFLIGHT_WRITES]), refusedWrites: num(a[MxfsAttr.REFUSED]),
        fenceCount: num(a[MxfsAttr.FENCES]), fences: [],
      });
    } else if (m.cmd === MxfsCmd.FENCE_INFO) {
      const v = volumes.find((x) => x.name === a[MxfsAttr.VOLUME]);
      v?.fences.push(parseFence(m));
    }
  }
  return { ...(lease ? { lease } : {}), volumes };
}

function endedByUs(e: VolumeEntry, generation: number): void {
  e.endedByUs.push(generation);
  if (e.endedByUs.length > 8) e.endedByUs.shift();
}

function fenceReport(f: KernelFence): FenceReport {
  return {
    fenced: f.drained, cause: f.cause, durationMs: f.durationUs / 1000,
    detail: `${f.inflight} writes in flight at the fence, ${f.drained ? 'drained' : 'NOT drained within the bound'}; ${f.shutdown}`,
  };
}

export class KernelVolumeDriver implements VolumeDriver {
  readonly kind = 'kernel' as const;
  private readonly bridge: KernelBridge;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly host: KernelHost;
  private readonly monotonicNs: () => bigint;
  private readonly requestTimeoutMs: number;
  private readonly fenceGraceMs: number;
  private readonly attachWaitMs: number;
  /** Resolves when the bridge is attached to the module (again: a new promise on detach). */
  private attachedNow!: Promise<void>;
  private markAttached!: () => void;
  private readonly volumes = new Map<string, VolumeEntry>();
  private readonly handlers: Array<(ev: DriverEvent) => void> = [];
  /** fence() calls waiting for their VOLUME_EVENT, by volume. */
  private readonly fenceWaiters = new Map<string, Array<{ done(f: KernelFence): void; timer: TimerHandle }>>();
  private lease: LeaseWanted = { kind: 'none' };
  private bound: number | undefined;
  private closed = false;
  private resyncing = false;
  private resyncAgain = false;
  /** Resynchronisations done (after channel overruns). */
  resyncs = 0;

  constructor(opts: KernelVolumeDriverOptions) {
    this.bridge = opts.bridge;
    this.clock = opts.clock;
    this.log = opts.log.child({ component: 'kernel-volumes' });
    this.host = opts.host ?? systemHost;
    this.monotonicNs = opts.monotonicNs ?? (() => process.hrtime.bigint());
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.fenceGraceMs = opts.fenceGraceMs ?? 5000;
    this.attachWaitMs = opts.attachWaitMs ?? 5000;
    this.resetAttached();
    const listener: KernelVolumeListener = {
      attached: () => { void this.onAttached(); },
      detached: (reason) => this.onDetached(reason),
      mountWanted: (volume, reqId, timeoutMs) => this.onMountWanted(volume, reqId, timeoutMs),
      requestCancelled: (reqId) => this.onRequestCancelled(reqId),
      volumeEvent: (m) => this.onVolumeEvent(m),
      resync: () => this.onResync(),
    };
    this.bridge.setVolumeListener(listener);
  }

  /** The stacked device of a volume. */
  static devicePath(volume: string): string {
    return `${KERNEL_DEV_DIR}/${volume}`;
  }

  /** The module's bound (FENCE_BOUND_MS), refreshed by every attach, status and lease reply. */
  fenceBoundMs(): number {
    return this.bound ?? MODULE_DEFAULT_FENCE_BOUND_MS;
  }

  async attach(v: VolumeSpec): Promise<void> {
    const nameErr = kernelVolumeNameError(v.name);
    if (nameErr) throw new VolumeError('DRIVER', nameErr);
    const found = this.host.blockDevice(v.device);
    if (found.kind === 'missing') throw new VolumeError('DEVICE_MISSING', `volume ${v.name}: device ${v.device} does not exist on this node`);
    if (found.kind === 'not-block') throw new VolumeError('DEVICE_MISSING', `volume ${v.name}: ${v.device} is not a block device`);
    let dev: number;
    try {
      dev = kernelDev(found.major, found.minor);
    } catch (e) {
      throw new VolumeError('DEVICE_MISSING', `volume ${v.name}: ${(e as Error).message}`);
    }
    await this.moduleReady();
    const replies = await this.kernel(v.name, MxfsCmd.VOLUME_REGISTER, { [MxfsAttr.VOLUME]: v.name, [MxfsAttr.DEV]: dev }, {
      [Errno.ENODEV]: 'DEVICE_MISSING', [Errno.ENXIO]: 'DEVICE_MISSING',
    }, `register ${v.device}`);
    const info = parseVolumesStatus(replies).volumes[0];
    const entry: VolumeEntry = { spec: { ...v }, dev, endedByUs: [] };
    if (info && info.gate !== 'closed') entry.generation = info.generation;
    if (info?.gate === 'open') entry.openedGen = info.generation;
    const lastFence = info?.fences[info.fences.length - 1];
    if (lastFence) entry.fenceSeen = { generation: lastFence.generation, at: lastFence.at };
    this.volumes.set(v.name, entry);
    if (info && info.gate !== 'closed') {
      this.log.warn({ volume: v.name, gate: info.gate, generation: info.generation, fences: info.fenceCount },
        'kernel volume adopted in the state the module kept it');
    }
    await this.refreshBound();
  }

  async mount(ctx: OwnershipContext): Promise<void> {
    const e = this.entry(ctx.volume.name);
    const name = e.spec.name;
    const mountpoint = ctx.volume.mountpoint ?? e.spec.mountpoint;
    if (mountpoint && !this.host.isDirectory(mountpoint)) {
      throw new VolumeError('MOUNTPOINT_MISSING', `volume ${name}: mountpoint ${mountpoint} is not a directory`);
    }
    await this.kernel(name, MxfsCmd.VOLUME_GATE, {
      [MxfsAttr.VOLUME]: name, [MxfsAttr.GATE]: MxfsGate.OPEN, [MxfsAttr.GENERATION]: BigInt(ctx.generation),
    }, { [Errno.ENOLCK]: 'MOUNT_FAILED', [Errno.EIO]: 'MOUNT_FAILED', [Errno.ESTALE]: 'MOUNT_FAILED' }, 'open the gate');
    e.generation = ctx.generation;
    e.openedGen = ctx.generation;
    // Gate-wait mode: the process waiting in open() is the one mounting.
    const w = e.wanted;
    if (w?.live && this.clock.now() < w.until) {
      w.gateOnly = true;
      return;
    }
    if (!mountpoint) return;
    const dev = KernelVolumeDriver.devicePath(name);
    if (this.mountpointsOf(name).includes(mountpoint)) return; // mounted already (adopted)
    const mark = this.host.kmsgMark();
    const opts = ctx.volume.mountOptions ?? e.spec.mountOptions;
    const r = await this.host.run(['mount', '-t', 'xfs', ...(opts ? ['-o', opts] : []), dev, mountpoint]);
    if (r.code === 0) {
      this.log.info({ volume: name, generation: ctx.generation, mountpoint, recovery: ctx.recovery }, 'volume mounted');
      return;
    }
    endedByUs(e, ctx.generation);
    const xfs = this.xfsSays(name, mark);
    await this.closeGate(name).catch((err: unknown) => this.log.error({ err, volume: name }, 'closing the gate after a failed mount failed'));
    const words = (r.stderr || r.stdout).trim().replace(/\s+/g, ' ');
    throw new VolumeError('MOUNT_FAILED', `mount ${dev} on ${mountpoint} failed (exit ${r.code}): ${words}${xfs ? `; XFS: ${xfs}` : ''}`);
  }

  async afterRecovery(_ctx: OwnershipContext): Promise<void> {
    // XFS replayed the dead owner's log while mounting: nothing more to do here.
  }

  async umount(ctx: OwnershipContext): Promise<void> {
    const e = this.entry(ctx.volume.name);
    const name = e.spec.name;
    endedByUs(e, ctx.generation);
    if (e.generation !== undefined && e.generation !== ctx.generation) endedByUs(e, e.generation);
    await this.unmountAll(name);
    const info = await this.volumeInfo(name);
    if (info.gate === 'fencing' || info.gate === 'fenced') {
      // Fenced meanwhile: unmounted, so clearing it leaves the gate closed, as asked.
      await this.clear(name);
      return;
    }
    await this.closeGate(name);
    this.log.info({ volume: name, generation: ctx.generation }, 'volume unmounted, gate closed');
  }

  async fence(volume: string, cause: string): Promise<FenceReport> {
    const t0 = this.clock.now();
    // Listening first: a fence of the module's own (lease lost) may end while we look.
    const event = this.waitFence(volume, this.fenceBoundMs() + this.fenceGraceMs);
    event.catch(() => {});
    try {
      const before = await this.volumeInfo(volume);
      const last = before.fences[before.fences.length - 1];
      if (before.gate === 'closed') {
        this.dropFenceWaiters(volume);
        return { fenced: true, cause, durationMs: 0, detail: 'gate closed: no write of this node can reach the disk' };
      }
      if (before.gate === 'fenced') {
        this.dropFenceWaiters(volume);
        if (last) this.noteFence(volume, last);
        return last ? { ...fenceReport(last), cause: `${cause} (fenced already: ${last.cause})` }
          : { fenced: true, cause, durationMs: 0, detail: 'fenced already' };
      }
      if (before.gate === 'open') {
        const now = parseVolumesStatus(await this.kernel(volume, MxfsCmd.VOLUME_FENCE,
          { [MxfsAttr.VOLUME]: volume, [MxfsAttr.REASON]: cut(cause) }, {}, 'fence')).volumes[0];
        if (now?.gate === 'closed') {
          this.dropFenceWaiters(volume);
          return { fenced: true, cause, durationMs: this.clock.now() - t0, detail: 'gate closed (released meanwhile)' };
        }
      }
      const f = await event; // ours, or the one already draining
      this.log.warn({ volume, cause, fence: f }, 'volume fenced');
      return { ...fenceReport(f), cause };
    } catch (err) {
      this.dropFenceWaiters(volume);
      // The event may have been lost: the module's own record says how it went.
      try {
        const after = await this.volumeInfo(volume);
        const last = after.fences[after.fences.length - 1];
        if (after.gate === 'fenced' && last) {
          this.noteFence(volume, last);
          return { ...fenceReport(last), cause };
        }
        if (after.gate === 'closed') return { fenced: true, cause, durationMs: this.clock.now() - t0, detail: 'gate closed' };
      } catch { /* reported below */ }
      return { fenced: false, cause, durationMs: this.clock.now() - t0, detail: (err as Error).message };
    }
  }

  async clearFence(volume: string): Promise<void> {
    this.entry(volume);
    await this.unmountAll(volume);
    await this.clear(volume);
  }

  async confirmFenced(_volume: VolumeSpec, _node: number, _generation: number): Promise<void> {
    // No positive check exists for another node's kernel: the time rule (its lease + its
    // fence bound + drift margin) is the proof, and the Volume actor waits for it.
  }

  setLease(deadline: number | null, reason?: string): void {
    this.lease = deadline === null ? { kind: 'lost', reason: reason ?? 'cluster lease lost' } : { kind: 'deadline', deadline };
    if (this.bridge.status().state === 'attached') void this.sendLease();
  }

  async status(volume: string): Promise<DriverVolumeStatus> {
    let s: KernelVolumesStatus;
    try {
      s = await this.kernelStatus(volume);
    } catch (err) {
      const notRegistered = err instanceof KernelAckError && err.errno === Errno.ENOENT;
      return {
        gate: 'unknown', mounted: this.mountpointsOf(volume).length > 0,
        detail: notRegistered ? 'not registered with the mxfs module' : (err as Error).message,
      };
    }
    const v = s.volumes[0]!;
    const mounted = this.mountpointsOf(volume);
    return {
      gate: DRIVER_GATE[v.gate],
      mounted: mounted.length > 0,
      fences: v.fences.map((f) => ({ cause: f.cause, at: f.at, durationMs: f.durationUs / 1000, drained: f.drained })),
      leaseState: s.lease.state, leaseRemainingMs: s.lease.remainingMs, leaseAgeMs: s.lease.ageMs, fenceBoundMs: s.lease.fenceBoundMs,
      detail: `gate ${v.gate}, generation ${v.generation}, ${v.openers} open (${v.writers} for writing), ` +
        `${v.inflight} bios in flight (${v.inflightWrites} writes), ${v.refusedWrites} writes refused, ${v.fenceCount} fences; ` +
        `kernel lease ${s.lease.state}${s.lease.ageMs !== null ? `, renewed ${s.lease.ageMs} ms ago` : ''}, ` +
        `fence bound ${s.lease.fenceBoundMs} ms${mounted.length ? `; mounted on ${mounted.join(', ')}` : ''}`,
    };
  }

  /** The module's whole view (or one volume's): lease, fence bound, gates, counters, fences. */
  async kernelStatus(volume?: string): Promise<KernelVolumesStatus> {
    const replies = await this.bridge.request(MxfsCmd.VOLUME_STATUS_REQ, volume ? { [MxfsAttr.VOLUME]: volume } : {}, this.requestTimeoutMs);
    const parsed = parseVolumesStatus(replies);
    if (!parsed.lease) throw new Error('no LEASE_INFO in the kernel status reply');
    this.bound = parsed.lease.fenceBoundMs;
    if (volume && !parsed.volumes.length) throw new Error(`no VOLUME_INFO for ${volume}`);
    return { lease: parsed.lease, volumes: parsed.volumes };
  }

  /**
   * Not part of VolumeDriver: removes /dev/mxfs/<volume> and releases the claim on the disk
   * (an administrator taking the disk out of MXFS). Refused while the device is open or a
   * fence drains; the volume is forgotten here too.
   */
  async unregister(volume: string): Promise<void> {
    await this.kernel(volume, MxfsCmd.VOLUME_UNREGISTER, { [MxfsAttr.VOLUME]: volume }, { [Errno.EBUSY]: 'UMOUNT_FAILED' }, 'unregister');
    this.volumes.delete(volume);
    this.log.info({ volume }, 'volume unregistered: the disk is no longer claimed');
  }

  onEvent(handler: (ev: DriverEvent) => void): void {
    this.handlers.push(handler);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.bridge.setVolumeListener(undefined);
    for (const v of [...this.fenceWaiters.keys()]) this.dropFenceWaiters(v);
  }

  // ---- from the bridge ----

  private resetAttached(): void {
    this.attachedNow = new Promise((resolve) => { this.markAttached = resolve; });
  }

  /** At daemon start the bridge is still attaching: wait for it, bounded, before NO_MODULE. */
  private async moduleReady(): Promise<void> {
    if (this.bridge.status().state === 'attached') return;
    let timer: TimerHandle | undefined;
    await Promise.race([
      this.attachedNow,
      new Promise<void>((resolve) => { timer = this.clock.setTimer(resolve, this.attachWaitMs); }),
    ]);
    this.clock.clearTimer(timer);
  }

  private async onAttached(): Promise<void> {
    this.markAttached();
    // The module may be a new one (reloaded): register again what this daemon attached, and
    // hand it the lease. Volumes it kept are adopted (same device).
    for (const e of this.volumes.values()) {
      try {
        await this.bridge.request(MxfsCmd.VOLUME_REGISTER, { [MxfsAttr.VOLUME]: e.spec.name, [MxfsAttr.DEV]: e.dev }, this.requestTimeoutMs);
      } catch (err) {
        this.log.error({ err, volume: e.spec.name }, 'cannot register the volume with the kernel module again');
      }
    }
    if (this.lease.kind !== 'none') await this.sendLease();
    else await this.refreshBound().catch(() => {});
  }

  private onDetached(reason: string): void {
    this.resetAttached();
    for (const e of this.volumes.values()) if (e.wanted) e.wanted.live = false;
    this.log.warn({ reason }, 'kernel volumes: module detached');
  }

  private onMountWanted(volume: string, reqId: bigint, timeoutMs: number | undefined): void {
    const e = this.volumes.get(volume);
    if (!e || !this.handlers.length || this.closed) {
      void this.replyMount(volume, reqId, -Errno.ENOENT);
      return;
    }
    // The kernel waits TIMEOUT_MS + reply_grace_ms at most; past that the waiter is gone.
    const w: MountWanted = { reqId, live: true, until: this.clock.now() + (timeoutMs ?? 30_000) + 5000, gateOnly: false };
    e.wanted = w;
    this.log.info({ volume, timeoutMs }, 'a process waits to open the volume for writing');
    this.emit({
      type: 'mount-wanted', volume,
      reply: (err?: VolumeError) => {
        if (e.wanted !== w) return;
        e.wanted = undefined;
        const live = w.live && this.clock.now() < w.until;
        if (err) {
          if (live) void this.replyMount(volume, reqId, -Errno.ENOLCK);
          return;
        }
        // Granted, but the process stopped waiting (signal, timeout): nobody will use the
        // gate opened for it, so ownership goes back as if it had been released.
        if (!live) {
          if (w.gateOnly) this.emit({ type: 'released', volume });
          return;
        }
        void this.replyMount(volume, reqId, 0).then((gone) => {
          if (gone) this.emit({ type: 'released', volume });
        });
      },
    });
  }

  private onRequestCancelled(reqId: bigint): void {
    for (const e of this.volumes.values()) {
      if (e.wanted?.reqId === reqId) {
        e.wanted.live = false;
        this.log.info({ volume: e.spec.name }, 'the process waiting for the volume gave up');
      }
    }
  }

  private onVolumeEvent(m: MxfsMessage): void {
    const volume = m.attrs[MxfsAttr.VOLUME] as string;
    const generation = num(m.attrs[MxfsAttr.GENERATION]);
    if (m.attrs[MxfsAttr.VOLUME_EVENT] === MxfsVolumeEvent.RELEASED) {
      this.released(volume, generation);
      return;
    }
    this.fenced(volume, parseFence(m));
  }

  private released(volume: string, generation: number): void {
    const e = this.volumes.get(volume);
    if (e) e.releasedGen = generation;
    const mine = e ? e.endedByUs.indexOf(generation) : -1;
    if (mine >= 0) {
      e!.endedByUs.splice(mine, 1);
      return;
    }
    this.log.info({ volume, generation }, 'volume released by its last writer');
    this.emit({ type: 'released', volume });
  }

  /**
   * After an overrun of the channel: the module's state of every volume, and what its lost
   * VOLUME_EVENTs would have said. A fence record newer than the last one this driver knew
   * (gate fenced) is a missed `fenced`; the gate this driver opened found closed under the
   * same generation, with no RELEASED seen and not closed by this driver, is a missed
   * `released`. One at a time; asked again while running, it runs once more after.
   */
  private onResync(): void {
    if (this.resyncing) {
      this.resyncAgain = true;
      return;
    }
    this.resyncing = true;
    void (async () => {
      do {
        this.resyncAgain = false;
        try {
          await this.resyncOnce();
        } catch (err) {
          this.log.warn({ err }, 'kernel volumes: cannot read the module\'s state after a channel overrun');
        }
      } while (this.resyncAgain && !this.closed);
      this.resyncing = false;
    })();
  }

  private async resyncOnce(): Promise<void> {
    if (this.closed || !this.volumes.size) return;
    const s = await this.kernelStatus();
    const missed: string[] = [];
    for (const v of s.volumes) {
      const e = this.volumes.get(v.name);
      if (!e) continue;
      const last = v.fences[v.fences.length - 1];
      if (v.gate === 'fenced' && last && (e.fenceSeen?.generation !== last.generation || e.fenceSeen.at !== last.at)) {
        missed.push(`${v.name}: fenced (${last.cause}, generation ${last.generation})`);
        this.fenced(v.name, last);
      } else if (v.gate === 'closed' && e.openedGen === v.generation && e.releasedGen !== v.generation &&
        !e.endedByUs.includes(v.generation)) {
        missed.push(`${v.name}: released (generation ${v.generation})`);
        this.released(v.name, v.generation);
      }
    }
    this.resyncs++;
    if (missed.length) this.log.warn({ missed }, 'kernel volumes: events lost in a channel overrun, acted on now');
    else this.log.info('kernel volumes: module state read after a channel overrun; no volume event was missed');
  }

  /** A fence record this driver has reported (a resync does not report it again). */
  private noteFence(volume: string, f: KernelFence): void {
    const e = this.volumes.get(volume);
    if (e) e.fenceSeen = { generation: f.generation, at: f.at };
  }

  private fenced(volume: string, f: KernelFence): void {
    this.noteFence(volume, f);
    const waiters = this.fenceWaiters.get(volume);
    this.fenceWaiters.delete(volume);
    if (waiters?.length) {
      for (const w of waiters) w.done(f);
      if (f.cause === FENCE_CAUSE_NAME[MxfsFenceCause.EXPLICIT]) return; // fence() reports it
    }
    this.log.warn({ volume, fence: f }, 'the kernel fenced the volume');
    this.emit({ type: 'fenced', volume, report: fenceReport(f) });
  }

  // ---- helpers ----

  private emit(ev: DriverEvent): void {
    for (const h of this.handlers) {
      try {
        h(ev);
      } catch (err) {
        this.log.error({ err, event: ev.type }, 'volume driver event handler failed');
      }
    }
  }

  private entry(volume: string): VolumeEntry {
    const e = this.volumes.get(volume);
    if (!e) throw new VolumeError('DRIVER', `volume ${volume} is not attached to the kernel driver`);
    return e;
  }

  /** A request to the module; kernel refusals become VolumeErrors (codes by errno, else DRIVER). */
  private async kernel(volume: string, cmd: MxfsCmd, attrs: MxfsAttrs, codes: Partial<Record<number, VolumeErrorCode>>,
    what: string): Promise<MxfsMessage[]> {
    try {
      return await this.bridge.request(cmd, attrs, this.requestTimeoutMs);
    } catch (err) {
      if (err instanceof KernelNotAttached) throw new VolumeError('NO_MODULE', `volume ${volume}: ${err.message}`);
      if (err instanceof KernelAckError) {
        throw new VolumeError(codes[err.errno] ?? 'DRIVER',
          `volume ${volume}: ${what}: ${err.extack ?? `errno ${err.errno}`} (errno ${err.errno})`);
      }
      throw new VolumeError('DRIVER', `volume ${volume}: ${what}: ${(err as Error).message}`);
    }
  }

  private async volumeInfo(volume: string): Promise<KernelVolumeInfo> {
    try {
      return (await this.kernelStatus(volume)).volumes[0]!;
    } catch (err) {
      if (err instanceof KernelNotAttached) throw new VolumeError('NO_MODULE', `volume ${volume}: ${err.message}`);
      throw new VolumeError('DRIVER', `volume ${volume}: status: ${(err as Error).message}`);
    }
  }

  private async closeGate(volume: string): Promise<void> {
    await this.kernel(volume, MxfsCmd.VOLUME_GATE, { [MxfsAttr.VOLUME]: volume, [MxfsAttr.GATE]: MxfsGate.CLOSED },
      { [Errno.EBUSY]: 'UMOUNT_FAILED', [Errno.EIO]: 'UMOUNT_FAILED' }, 'close the gate');
  }

  /** VOLUME_CLEAR, waiting out a fence that is still draining (bounded by the fence bound). */
  private async clear(volume: string): Promise<void> {
    const until = this.clock.now() + (this.bound ?? 0) + this.fenceGraceMs;
    for (;;) {
      try {
        await this.kernel(volume, MxfsCmd.VOLUME_CLEAR, { [MxfsAttr.VOLUME]: volume }, { [Errno.EBUSY]: 'UMOUNT_FAILED' }, 'clear the fence');
        this.log.info({ volume }, 'fence cleared, gate closed');
        return;
      } catch (err) {
        const draining = err instanceof VolumeError && /still draining/.test(err.message);
        if (err instanceof VolumeError && /not fenced/.test(err.message)) return;
        if (!draining || this.clock.now() >= until) throw err;
        await new Promise<void>((resolve) => this.clock.setTimer(resolve, 50));
      }
    }
  }

  private mountpointsOf(volume: string): string[] {
    const dev = this.host.blockDevice(KernelVolumeDriver.devicePath(volume));
    const mm = dev.kind === 'block' ? `${dev.major}:${dev.minor}` : undefined;
    return this.host.mounts()
      .filter((m) => (mm !== undefined && m.majorMinor === mm) || m.source === KernelVolumeDriver.devicePath(volume))
      .map((m) => m.mountpoint);
  }

  /**
   * umount(8) of every mount of the stacked device (innermost last mounted first). A umount
   * that failed but left the mount gone (mountinfo) counts as done. One killed at its time
   * bound, with the mount still there, is in doubt: the unmount may still be under way in the
   * kernel, so the volume is not "mounted" again but held as possibly mounted (VolumeError
   * inDoubt: the volume stays blocked and the umount is retried, docs/volumes.md).
   */
  private async unmountAll(volume: string): Promise<void> {
    for (const mp of this.mountpointsOf(volume).reverse()) {
      const mark = this.host.kmsgMark();
      const r = await this.host.run(['umount', mp]);
      if (r.code === 0 || !this.mountpointsOf(volume).includes(mp)) continue;
      const xfs = this.xfsSays(volume, mark);
      const what = r.timedOut ? 'did not finish (killed)' : `failed (exit ${r.code})`;
      throw new VolumeError('UMOUNT_FAILED', `umount ${mp} ${what}: ${(r.stderr || r.stdout).trim().replace(/\s+/g, ' ')}${xfs ? `; XFS: ${xfs}` : ''}`, r.timedOut === true);
    }
  }

  /** XFS's last words about this volume's device since `mark` (kernel log). */
  private xfsSays(volume: string, mark: number): string {
    const tag = `XFS (mxfs!${volume})`;
    const lines = this.host.kmsgSince(mark).map((r) => r.message).filter((l) => l.includes(tag) || l.includes(`mxfs: volume ${volume}`));
    return lines.slice(-4).join(' | ');
  }

  private async replyMount(volume: string, reqId: bigint, status: number): Promise<boolean> {
    try {
      await this.bridge.request(MxfsCmd.VOLUME_REPLY, { [MxfsAttr.REQ_ID]: reqId, [MxfsAttr.STATUS]: status }, this.requestTimeoutMs);
      return false;
    } catch (err) {
      const gone = err instanceof KernelAckError && err.errno === Errno.ENOENT;
      if (!gone) this.log.warn({ err, volume }, 'VOLUME_REPLY failed');
      return gone;
    }
  }

  private waitFence(volume: string, timeoutMs: number): Promise<KernelFence> {
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimer(() => reject(new Error(`no fence event within ${timeoutMs} ms`)), timeoutMs);
      const list = this.fenceWaiters.get(volume) ?? [];
      list.push({ done: (f) => { this.clock.clearTimer(timer); resolve(f); }, timer });
      this.fenceWaiters.set(volume, list);
    });
  }

  private dropFenceWaiters(volume: string): void {
    for (const w of this.fenceWaiters.get(volume) ?? []) this.clock.clearTimer(w.timer);
    this.fenceWaiters.delete(volume);
  }

  /** Clock ms -> absolute CLOCK_MONOTONIC ns, reading both clocks together. */
  private toMonotonicNs(deadline: number): bigint {
    const nowNs = this.monotonicNs();
    const nowMs = this.clock.now();
    const ns = nowNs + BigInt(Math.round((deadline - nowMs) * 1e6));
    return ns > 0n ? ns : 1n;
  }

  private async sendLease(): Promise<void> {
    const l = this.lease;
    try {
      const replies = l.kind === 'deadline'
        ? await this.bridge.request(MxfsCmd.LEASE_RENEW, { [MxfsAttr.DEADLINE_NS]: this.toMonotonicNs(l.deadline) }, this.requestTimeoutMs)
        : l.kind === 'lost'
          ? await this.bridge.request(MxfsCmd.LEASE_LOST, { [MxfsAttr.REASON]: cut(l.reason) }, this.requestTimeoutMs)
          : [];
      const lease = parseVolumesStatus(replies).lease;
      if (lease) this.bound = lease.fenceBoundMs;
    } catch (err) {
      this.log.error({ err, lease: l.kind }, 'the kernel lease could not be sent to the module');
    }
  }

  private async refreshBound(): Promise<void> {
    await this.kernelStatus().catch((err: unknown) => this.log.warn({ err }, 'kernel volume status failed'));
  }
}
