/**
 * kernel-bridge actor: the daemon's side of the channel to the mxfs kernel module.
 *
 * Owns: the KernelChannel (genetlink socket via libnl), the attachment state
 * (disabled | no-module | attached | error), and every DLM lock taken on the kernel's
 * behalf (LockHandles keyed by the kernel's lock id = the REQ_ID of its LOCK_REQ), plus
 * the volume locks taken for VOLUME_MOUNT.
 *
 * Messages in (BridgeMsg):
 *   attach        resolve the family and announce DAEMON_READY (start, retry timer,
 *                 nlctrl NEWFAMILY)
 *   family-gone   the module was unloaded (nlctrl DELFAMILY): release what the kernel held
 *   kernel        a validated message from the module: LOCK_REQ, LOCK_CONVERT, LOCK_CANCEL,
 *                 LOCK_RELEASE (with the LVB to write back), VOLUME_MOUNT, VOLUME_UNMOUNT,
 *                 VOLUME_EVENT, EVENT
 *   lock-done / convert-done / volume-done   a LockClient call finished (sent by its promise)
 *   send-failed   the kernel refused a GRANT or a reply (e.g. -ENOENT: it stopped waiting),
 *                 or its answer was lost
 *   congestion-ended   the channel's queue is empty again after an overrun: the volume
 *                 listener resynchronises (a VOLUME_EVENT may have been lost)
 *   bast / lost   events of a held LockHandle; client-lost: the LockClient lost everything
 *                 (the kernel is told each lock is lost; a new session replaces the old one
 *                 when the bridge was given `reconnect`)
 *   ready-acked   the module accepted DAEMON_READY: attached
 *   health-check / kernel-status   periodic STATUS_REQ while attached; a module that no
 *                 longer lists this daemon's port is re-attached
 *   stop          release everything and close the channel
 * Messages out (to the kernel, through the channel): DAEMON_READY, STATUS_REQ, LOCK_GRANT,
 * LOCK_DENY, BAST, LOCK_LOST, VOLUME_REPLY, and the driver's requests. To the lock service:
 * LockClient.lock / LockHandle.unlock. To the volume listener (the kernel volume driver,
 * when one is set): attached / detached, VOLUME_MOUNT (mountWanted), VOLUME_EVENT.
 *
 * VOLUME_MOUNT without a listener is the old path (the bridge takes EX on the volume in
 * `volumeLockspace` itself; what the debugfs test hook exercises). With a listener (volumes
 * configured), ownership is the Volume actors' and VOLUME_MOUNT goes to the listener.
 *
 * Every attach bumps `gen`; a LockClient result that comes back for an older generation
 * (the module went away meanwhile) is unlocked instead of being reported.
 */
import type Logger from 'bunyan';
import { ActorSystem, type ActorDef, type Ref } from './actor';
import type { Clock, TimerHandle } from '../util/clock';
import type { LockClient, LockHandle } from '../client/api';
import { LockError, type Grant } from '../dlm/types';
import { Mode, modeName } from '../dlm/modes';
import { Errno, LOCK_ERROR_ERRNO, MXFS_LKF, MXFS_LVB_MAX, MXFS_PROTO_VERSION, MxfsAttr, MxfsCmd, MxfsEvent } from '../ffi/mxfs-genl';
import { parseMxfsMessage, type MxfsAttrs, type MxfsMessage } from '../ffi/netlink-msg';
import {
  GenlKernelChannel, isFamilyMissing, type KernelChannel, type KernelChannelFactory,
} from '../ffi/mxfs-channel';
import { AnswerLost, KernelAckError, NetlinkError, RequestTimeout, type RequestWindowStatus } from '../ffi/genl-socket';
import { NLE } from '../ffi/libnl';
import { kernelAttrFields } from '../trace/fields';

export type KernelMode = 'auto' | 'on' | 'off';
export type BridgeState = 'disabled' | 'no-module' | 'attached' | 'error';

export interface BridgeCounters {
  requests: number;        // LOCK_REQ received
  grants: number;
  denies: number;
  releases: number;        // LOCK_RELEASE received
  basts: number;           // BAST sent
  lost: number;            // LOCK_LOST sent
  conversions: number;     // LOCK_CONVERT received
  staleGrants: number;     // grants the kernel no longer waited for (lock given back)
  cancels: number;         // LOCK_CANCEL received for a request still in the DLM
  volumeRequests: number;
  invalidMessages: number; // kernel messages that failed validation
  /** The channel's receive buffer overflowed (ENOBUFS): a burst of kernel messages. The
   *  module retries its unicasts; what it sends once (multicast EVENTs, a VOLUME_EVENT) may be lost. */
  overruns: number;
  /** The request socket's buffer overflowed: answers to requests were lost (cannot happen
   *  while the request window holds; counted to show it). */
  requestOverruns: number;
  /** LOCK_GRANTs whose answer was lost: what the kernel did is unknown (docs/kernel.md). */
  grantAnswersLost: number;
  /** Kernel requests given back because the kernel cancelled them after the DLM granted. */
  cancelledGrants: number;
  /** Resynchronisations of the volume listener after channel overruns. */
  resyncs: number;
  sendErrors: number;
  attaches: number;
  detaches: number;
}

/** The module's own view, from the last STATUS_REQ (health check). */
export interface KernelSideStatus {
  daemonPortid: number;
  pending: number;
  held: number;
  requests: number;
  grants: number;
  denies: number;
  timeouts: number;
  daemonLosses: number;
  rejected: number;
}

export interface BridgeStatus extends BridgeCounters {
  state: BridgeState;
  kernel?: KernelSideStatus;
  detail?: string;
  family?: number;
  portid?: number;
  heldLocks: number;
  pendingRequests: number;
  /** The request socket's window (requests waiting for room, the most in flight, ...). */
  requestWindow?: RequestWindowStatus;
}

/** Volume traffic from the module, for the kernel volume driver. Called inside the actor:
 *  must not throw, and must not wait. */
export interface KernelVolumeListener {
  /** The bridge (re)attached to the module: its state may be new (module reloaded). */
  attached(): void;
  detached(reason: string): void;
  /** VOLUME_MOUNT: a process waits in open() for the volume (gate-wait mode). Answer with
   *  VOLUME_REPLY (REQ_ID = reqId) through request(). */
  mountWanted(volume: string, reqId: bigint, timeoutMs: number | undefined): void;
  /** LOCK_CANCEL for a REQ_ID that is not a lock request: a VOLUME_MOUNT waiter gave up. */
  requestCancelled(reqId: bigint): void;
  /** VOLUME_EVENT: released or fenced. */
  volumeEvent(m: MxfsMessage): void;
  /** The channel overflowed and is drained again: a VOLUME_EVENT may have been lost; read the
   *  module's state and act on what changed. */
  resync?(): void;
}

/** request() while the bridge is not attached to the module. */
export class KernelNotAttached extends Error {
  constructor(readonly state: BridgeState, detail: string | undefined) {
    super(`kernel module not attached (${state}${detail ? `: ${detail}` : ''})`);
    this.name = 'KernelNotAttached';
  }
}

export interface KernelBridge {
  status(): BridgeStatus;
  /**
   * Sends a daemon->kernel command; resolves with the kernel's reply messages (validated)
   * once it acked. Rejects with KernelNotAttached, KernelAckError (errno + extack text) or
   * RequestTimeout. Requests reach the kernel in call order.
   */
  request(cmd: MxfsCmd, attrs: MxfsAttrs, timeoutMs?: number): Promise<MxfsMessage[]>;
  /** Routes VOLUME_MOUNT / VOLUME_EVENT and attach changes to `l` (undefined: back to none). */
  setVolumeListener(l: KernelVolumeListener | undefined): void;
  stop(): Promise<void>;
}

export interface KernelBridgeOptions {
  system: ActorSystem;
  locks: LockClient;
  log: Logger;
  clock: Clock;
  mode: KernelMode;
  nodeId: number;
  /** How often to look for the module while it is absent (ms); default 5000. */
  retryMs?: number;
  /** While attached, how often to ask the module for its status (ms); default 5000. A module
   *  that no longer lists this daemon (reloaded, notification lost) is re-attached. */
  healthMs?: number;
  /** Lockspace of VOLUME_MOUNT locks; default 'mxfs-volumes'. */
  volumeLockspace?: string;
  /** Test seam: how the channel is opened (default: GenlKernelChannel over libnl). */
  channelFactory?: KernelChannelFactory;
  /**
   * Opens a new client session when `locks` loses everything (its node lost quorum, or its
   * keepalive bound ran out): a lost session stays lost, and without a new one every later
   * kernel request would be refused until mxfsd restarts. The bridge closes the sessions it
   * opened when it stops. Absent: the bridge keeps the lost session (requests are denied).
   */
  reconnect?: () => Promise<LockClient>;
}

type BridgeMsg =
  | { type: 'attach'; why: string }
  | { type: 'family-gone' }
  | { type: 'kernel'; msg: MxfsMessage }
  | { type: 'channel-error'; err: Error }
  | { type: 'congestion-ended' }
  | { type: 'lock-done'; gen: number; reqId: bigint; mode: Mode; handle?: LockHandle; err?: unknown }
  | { type: 'convert-done'; gen: number; reqId: bigint; lockId: bigint; mode: Mode; grant?: Grant; err?: unknown }
  | { type: 'volume-done'; gen: number; reqId: bigint; volume: string; mount: boolean; handle?: LockHandle; err?: unknown }
  | { type: 'send-failed'; gen: number; cmd: MxfsCmd; lockId?: bigint; err: unknown }
  | { type: 'ready-acked'; gen: number; why: string }
  | { type: 'health-check' }
  | { type: 'kernel-status'; gen: number; status?: KernelSideStatus; err?: unknown }
  | { type: 'bast'; gen: number; lockId: bigint; mode: Mode }
  | { type: 'lost'; gen: number; lockId: bigint; reason: string }
  | { type: 'client-lost'; reason: string }
  | { type: 'stop'; replyTo: Ref<void> };

interface BridgeActorState {
  channel?: KernelChannel;
  gen: number;
  /** DLM locks held for the kernel, by kernel lock id. */
  held: Map<bigint, LockHandle>;
  volumes: Map<string, LockHandle>;
  /** Kernel requests the DLM is still working on; lock requests can be cancelled. */
  pending: Map<bigint, AbortController | undefined>;
  /** Requests the kernel cancelled: their failure is not reported back. */
  cancelled: Set<bigint>;
  /** Conversions in flight: kernel lock id -> the LOCK_CONVERT's REQ_ID. */
  converting: Map<bigint, bigint>;
  retry?: TimerHandle;
  health?: TimerHandle;
  stopped: boolean;
}

const ERRNO_BY_NAME: Record<string, number> = { ...Errno };

/** Minus the errno the kernel is told for a failed LockClient call. */
export function denyStatus(err: unknown): number {
  if (err instanceof LockError) return -LOCK_ERROR_ERRNO[err.code];
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && ERRNO_BY_NAME[code] !== undefined) return -ERRNO_BY_NAME[code]!;
  return -Errno.EINVAL;
}

/** Reads the STATUS_RESP among the replies to a STATUS_REQ. */
export function parseKernelStatus(replies: Buffer[]): KernelSideStatus {
  for (const r of replies) {
    const m = parseMxfsMessage(r);
    if (m.cmd !== MxfsCmd.STATUS_RESP) continue;
    const n = (a: MxfsAttr) => Number(m.attrs[a] as number | bigint);
    return {
      daemonPortid: n(MxfsAttr.DAEMON_PORTID), pending: n(MxfsAttr.STAT_PENDING), held: n(MxfsAttr.STAT_HELD),
      requests: n(MxfsAttr.STAT_REQUESTS), grants: n(MxfsAttr.STAT_GRANTS), denies: n(MxfsAttr.STAT_DENIES),
      timeouts: n(MxfsAttr.STAT_TIMEOUTS), daemonLosses: n(MxfsAttr.STAT_DAEMON_LOSSES), rejected: n(MxfsAttr.STAT_REJECTED),
    };
  }
  throw new Error('no STATUS_RESP in the reply');
}

export function startKernelBridge(opts: KernelBridgeOptions): KernelBridge {
  const { system, clock, mode, nodeId } = opts;
  /** The session the kernel's locks are taken through (replaced after it lost everything). */
  let locks = opts.locks;
  const opened: LockClient[] = [];
  let stopping = false;
  const log = opts.log.child({ component: 'kernel-bridge' });
  const retryMs = opts.retryMs ?? 5000;
  const healthMs = opts.healthMs ?? 5000;
  const volumeLockspace = opts.volumeLockspace ?? 'mxfs-volumes';
  const counters: BridgeCounters = {
    requests: 0, grants: 0, denies: 0, releases: 0, basts: 0, lost: 0, conversions: 0, staleGrants: 0, cancels: 0,
    volumeRequests: 0, invalidMessages: 0, overruns: 0, requestOverruns: 0, grantAnswersLost: 0, cancelledGrants: 0,
    resyncs: 0, sendErrors: 0, attaches: 0, detaches: 0,
  };
  /** An overrun of the channel was seen and the listener has not resynchronised since. */
  let resyncWanted = false;
  /** The actor's channel, for request(), which does not go through the mailbox. */
  let liveChannel: KernelChannel | undefined;
  /** When an overrun was last logged (they come in bursts: one line per 5 s). */
  let overrunLogged = -Infinity;
  const snap: {
    state: BridgeState; detail?: string; family?: number; portid?: number; held: number; pending: number; kernel?: KernelSideStatus;
  } = {
    state: mode === 'off' ? 'disabled' : 'no-module', held: 0, pending: 0,
  };

  const status = (): BridgeStatus => ({
    state: snap.state,
    ...(snap.detail !== undefined ? { detail: snap.detail } : {}),
    ...(snap.family !== undefined ? { family: snap.family } : {}),
    ...(snap.portid !== undefined ? { portid: snap.portid } : {}),
    ...(snap.kernel !== undefined ? { kernel: { ...snap.kernel } } : {}),
    heldLocks: snap.held, pendingRequests: snap.pending, ...counters,
    ...(liveChannel?.requestWindow ? { requestWindow: liveChannel.requestWindow() } : {}),
  });

  if (mode === 'off') {
    snap.detail = 'kernel = off in the configuration';
    return {
      status,
      request: () => Promise.reject(new KernelNotAttached('disabled', snap.detail)),
      setVolumeListener: () => {},
      stop: async () => {},
    };
  }

  let self: Ref<BridgeMsg>;
  const send = (msg: BridgeMsg) => system.send(self, msg);
  let volumeListener: KernelVolumeListener | undefined;
  /** A listener's failure is logged, never the bridge's crash. */
  const toListener = (what: string, fn: (l: KernelVolumeListener) => void) => {
    if (!volumeListener) return;
    try {
      fn(volumeListener);
    } catch (err) {
      log.error({ err, what }, 'kernel volume listener failed');
    }
  };
  const factory: KernelChannelFactory = opts.channelFactory ?? ((ev) => new GenlKernelChannel(ev));

  const setState = (state: BridgeState, detail?: string) => {
    if (snap.state !== state || snap.detail !== detail) {
      const level = state === 'error' || (state === 'no-module' && mode === 'on') ? 'warn' : 'info';
      log[level]({ state, detail }, state === 'no-module' ? 'kernel bridge: no kernel module' : `kernel bridge: ${state}`);
    }
    snap.state = state;
    snap.detail = detail;
  };

  const sync = (s: BridgeActorState) => {
    snap.held = s.held.size + s.volumes.size;
    snap.pending = s.pending.size;
  };

  const scheduleRetry = (s: BridgeActorState) => {
    clock.clearTimer(s.retry);
    s.retry = clock.setTimer(() => send({ type: 'attach', why: 'retry' }), retryMs);
  };

  /** A message to the kernel in the trace (when tracing), sent by the actor handling now. */
  const traceKernelOut = (cmd: MxfsCmd, attrs: MxfsMessage['attrs']) => {
    const t = system.recorder;
    if (!t) return;
    const f = t.fresh();
    kernelAttrFields(attrs as Record<number, unknown>, f);
    t.record('kernel-out', t.curActor ?? 'kernel-bridge', 'kernel', MxfsCmd[cmd] ?? String(cmd), f);
  };

  /**
   * Sends to the kernel; a refusal comes back to the actor as send-failed. Lock traffic is
   * `bulk` (the driver's requests go first) and has no timeout: the kernel handles a request
   * inside the send, so its answer is in the request socket's buffer already and only waits
   * for the daemon to read it (or it was refused, which the window prevents: AnswerLost).
   */
  const toKernel = (s: BridgeActorState, cmd: MxfsCmd, attrs: MxfsMessage['attrs'], lockId?: bigint) => {
    const gen = s.gen;
    if (!s.channel) return;
    traceKernelOut(cmd, attrs);
    s.channel.send(cmd, attrs, Infinity, 'bulk').catch((err: unknown) => send({ type: 'send-failed', gen, cmd, lockId, err }));
  };

  /** Gives back every DLM lock held for the kernel (it forgot them: unloaded or reloaded). */
  const releaseAll = (s: BridgeActorState, why: string) => {
    const all = [...s.held.values(), ...s.volumes.values()];
    if (all.length) log.warn({ count: all.length, why }, 'releasing the locks held for the kernel');
    for (const h of all) h.unlock().catch((err: unknown) => log.debug({ err }, 'unlock after detach failed'));
    for (const ctl of s.pending.values()) ctl?.abort();
    s.held.clear();
    s.volumes.clear();
    s.pending.clear();
    s.cancelled.clear();
    s.converting.clear();
  };

  const detach = (s: BridgeActorState, detail: string) => {
    if (snap.state === 'attached') counters.detaches++;
    s.gen++;
    clock.clearTimer(s.health);
    s.health = undefined;
    releaseAll(s, detail);
    snap.family = undefined;
    snap.kernel = undefined;
    setState('no-module', detail);
    toListener('detached', (l) => l.detached(detail));
  };

  const onLockReq = (s: BridgeActorState, m: MxfsMessage) => {
    const a = m.attrs;
    const reqId = a[MxfsAttr.REQ_ID] as bigint;
    const mode = a[MxfsAttr.MODE] as Mode;
    const lockspace = a[MxfsAttr.LOCKSPACE] as string;
    const resource = a[MxfsAttr.RESOURCE] as string;
    const flags = (a[MxfsAttr.FLAGS] as number | undefined) ?? 0;
    const timeoutMs = a[MxfsAttr.TIMEOUT_MS] as number | undefined;
    counters.requests++;
    if (s.pending.has(reqId) || s.held.has(reqId)) {
      log.warn({ reqId: String(reqId) }, 'duplicate kernel request id; denied');
      toKernel(s, MxfsCmd.LOCK_DENY, { [MxfsAttr.REQ_ID]: reqId, [MxfsAttr.STATUS]: -Errno.EBUSY });
      return;
    }
    const ctl = new AbortController();
    s.pending.set(reqId, ctl);
    const gen = s.gen;
    log.debug({ reqId: String(reqId), lockspace, resource, mode: modeName(mode) }, 'kernel lock request');
    locks.lock(resource, mode, {
      lockspace,
      noqueue: (flags & MXFS_LKF.NOQUEUE) !== 0,
      signal: ctl.signal,
      ...(timeoutMs ? { timeoutMs } : {}),
    }).then(
      (handle) => send({ type: 'lock-done', gen, reqId, mode, handle }),
      (err: unknown) => send({ type: 'lock-done', gen, reqId, mode, err }),
    );
  };

  const onLockDone = (s: BridgeActorState, msg: Extract<BridgeMsg, { type: 'lock-done' }>) => {
    if (msg.gen !== s.gen || s.stopped) {
      msg.handle?.unlock().catch(() => {});
      return;
    }
    s.pending.delete(msg.reqId);
    const cancelled = s.cancelled.delete(msg.reqId);
    if (cancelled) {
      // The kernel gave the request up before sending LOCK_CANCEL: it will never take this
      // lock (a grant would be refused), so it goes back to the DLM here.
      if (msg.handle) {
        counters.cancelledGrants++;
        msg.handle.unlock().catch((err: unknown) => log.warn({ err, reqId: String(msg.reqId) }, 'unlock of a cancelled grant failed'));
      }
      return;
    }
    if (!msg.handle) {
      counters.denies++;
      toKernel(s, MxfsCmd.LOCK_DENY, { [MxfsAttr.REQ_ID]: msg.reqId, [MxfsAttr.STATUS]: denyStatus(msg.err) });
      return;
    }
    const handle = msg.handle;
    const gen = s.gen;
    const lockId = msg.reqId;
    s.held.set(lockId, handle);
    handle.on('bast', (mode: Mode) => send({ type: 'bast', gen, lockId, mode }));
    handle.on('lost', (reason: string) => send({ type: 'lost', gen, lockId, reason }));
    counters.grants++;
    toKernel(s, MxfsCmd.LOCK_GRANT, grantAttrs(lockId, msg.mode, handle.grant), lockId);
  };

  /**
   * The kernel gave up on a request (its timeout, a killed task): withdraw it from the DLM. The
   * module sends LOCK_CANCEL only once the request no longer waits (a grant of it is refused,
   * -ENOENT), so a lock granted already is given back here: that does not depend on the
   * grant's answer, which may be lost or not read yet (docs/kernel.md).
   */
  const onCancel = (s: BridgeActorState, m: MxfsMessage) => {
    const reqId = m.attrs[MxfsAttr.REQ_ID] as bigint;
    const ctl = s.pending.get(reqId);
    if (!ctl) {
      const h = s.pending.has(reqId) ? undefined : s.held.get(reqId);
      if (h && !s.converting.has(reqId)) {
        s.held.delete(reqId);
        counters.cancelledGrants++;
        log.info({ lockId: String(reqId) }, 'kernel cancelled a request the DLM had granted; releasing it');
        h.unlock().catch((err: unknown) => log.warn({ err, lockId: String(reqId) }, 'unlock of a cancelled grant failed'));
        return;
      }
      if (!s.pending.has(reqId)) toListener('requestCancelled', (l) => l.requestCancelled(reqId));
      return;
    }
    counters.cancels++;
    s.cancelled.add(reqId);
    ctl.abort();
  };

  /** The LVB a kernel message carries, or undefined (the lock's value block is left alone). */
  const lvbOf = (m: MxfsMessage): Buffer | undefined => {
    const v = m.attrs[MxfsAttr.LVB] as Buffer | undefined;
    return v && v.length > 0 ? v : undefined;
  };

  /** The grant's attributes the kernel reads: mode, token, and the LVB when it fits. */
  const grantAttrs = (reqId: bigint, mode: Mode, g: Grant): MxfsMessage['attrs'] => ({
    [MxfsAttr.REQ_ID]: reqId, [MxfsAttr.MODE]: mode, [MxfsAttr.TOKEN]: BigInt(g.token),
    ...(g.lvb.length <= MXFS_LVB_MAX && g.lvb.length > 0 ? { [MxfsAttr.LVB]: g.lvb } : {}),
    [MxfsAttr.LVB_VALID]: g.lvbValid ? 1 : 0,
  });

  const onRelease = (s: BridgeActorState, m: MxfsMessage) => {
    const lockId = m.attrs[MxfsAttr.LOCK_ID] as bigint;
    counters.releases++;
    const h = s.held.get(lockId);
    if (!h) {
      log.warn({ lockId: String(lockId) }, 'kernel released a lock the daemon does not hold');
      return;
    }
    s.held.delete(lockId);
    // A conversion still in flight is cancelled by the unlock; its result is dropped.
    s.pending.get(s.converting.get(lockId) ?? -1n)?.abort();
    const lvb = lvbOf(m);
    h.unlock(lvb ? { lvb } : {}).catch((err: unknown) => {
      // The daemon refused the LVB (longer than its lvb_size): the lock must go all the same,
      // or it stays held by this session, unknown to the kernel, and blocks every other
      // holder. Released without the LVB; the kernel ignores a value block shorter than the
      // record it writes, so it never read one from this daemon anyway.
      if (!(lvb && err instanceof LockError && err.code === 'INVALID')) throw err;
      log.warn({ err, lockId: String(lockId), lvbBytes: lvb.length }, 'the daemon refused the kernel\'s LVB; released without it');
      return h.unlock();
    }).catch((err: unknown) => log.warn({ err, lockId: String(lockId) }, 'unlock failed'));
  };

  /** LOCK_CONVERT: a held lock to another mode (the inode lock cache: PR->EX up, EX->PR down
   *  with the LVB written back); answered like LOCK_REQ, with the conversion's REQ_ID. */
  const onConvert = (s: BridgeActorState, m: MxfsMessage) => {
    const a = m.attrs;
    const reqId = a[MxfsAttr.REQ_ID] as bigint;
    const lockId = a[MxfsAttr.LOCK_ID] as bigint;
    const mode = a[MxfsAttr.MODE] as Mode;
    const flags = (a[MxfsAttr.FLAGS] as number | undefined) ?? 0;
    const timeoutMs = a[MxfsAttr.TIMEOUT_MS] as number | undefined;
    const lvb = lvbOf(m);
    counters.conversions++;
    const h = s.held.get(lockId);
    const deny = (errno: number) => toKernel(s, MxfsCmd.LOCK_DENY, { [MxfsAttr.REQ_ID]: reqId, [MxfsAttr.STATUS]: -errno });
    if (!h) {
      log.warn({ lockId: String(lockId) }, 'kernel converts a lock the daemon does not hold');
      deny(Errno.ENOENT);
      return;
    }
    if (s.pending.has(reqId) || s.converting.has(lockId)) {
      deny(Errno.EBUSY);
      return;
    }
    const ctl = new AbortController();
    s.pending.set(reqId, ctl);
    s.converting.set(lockId, reqId);
    const gen = s.gen;
    h.convert(mode, {
      noqueue: (flags & MXFS_LKF.NOQUEUE) !== 0, signal: ctl.signal, ...(timeoutMs ? { timeoutMs } : {}), ...(lvb ? { lvb } : {}),
    }).then(
      (grant) => send({ type: 'convert-done', gen, reqId, lockId, mode, grant }),
      (err: unknown) => send({ type: 'convert-done', gen, reqId, lockId, mode, err }),
    );
  };

  const onConvertDone = (s: BridgeActorState, msg: Extract<BridgeMsg, { type: 'convert-done' }>) => {
    if (msg.gen !== s.gen || s.stopped) return; // the lock itself is released by detach
    s.pending.delete(msg.reqId);
    if (s.converting.get(msg.lockId) === msg.reqId) s.converting.delete(msg.lockId);
    const cancelled = s.cancelled.delete(msg.reqId);
    // Released meanwhile (the kernel gave it up): nobody waits for an answer.
    if (!s.held.has(msg.lockId) || (cancelled && !msg.grant)) return;
    if (!msg.grant) {
      counters.denies++;
      toKernel(s, MxfsCmd.LOCK_DENY, { [MxfsAttr.REQ_ID]: msg.reqId, [MxfsAttr.STATUS]: denyStatus(msg.err) });
      return;
    }
    counters.grants++;
    toKernel(s, MxfsCmd.LOCK_GRANT, grantAttrs(msg.reqId, msg.mode, msg.grant), msg.lockId);
  };

  const onVolume = (s: BridgeActorState, m: MxfsMessage, mount: boolean) => {
    const reqId = m.attrs[MxfsAttr.REQ_ID] as bigint;
    const volume = m.attrs[MxfsAttr.VOLUME] as string;
    const timeoutMs = m.attrs[MxfsAttr.TIMEOUT_MS] as number | undefined;
    counters.volumeRequests++;
    if (volumeListener) {
      // Volume ownership belongs to the Volume actors: the driver answers.
      if (mount) toListener('mountWanted', (l) => l.mountWanted(volume, reqId, timeoutMs));
      else toKernel(s, MxfsCmd.VOLUME_REPLY, { [MxfsAttr.REQ_ID]: reqId, [MxfsAttr.STATUS]: -Errno.EOPNOTSUPP });
      return;
    }
    const gen = s.gen;
    if (!mount) {
      const h = s.volumes.get(volume);
      s.volumes.delete(volume);
      if (!h) {
        toKernel(s, MxfsCmd.VOLUME_REPLY, { [MxfsAttr.REQ_ID]: reqId, [MxfsAttr.STATUS]: -Errno.ENOENT });
        return;
      }
      h.unlock().then(
        () => send({ type: 'volume-done', gen, reqId, volume, mount }),
        (err: unknown) => send({ type: 'volume-done', gen, reqId, volume, mount, err }),
      );
      return;
    }
    if (s.volumes.has(volume)) {
      toKernel(s, MxfsCmd.VOLUME_REPLY, { [MxfsAttr.REQ_ID]: reqId, [MxfsAttr.STATUS]: -Errno.EBUSY });
      return;
    }
    s.pending.set(reqId, undefined);
    locks.lock(volume, Mode.EX, { lockspace: volumeLockspace, ...(timeoutMs ? { timeoutMs } : {}) }).then(
      (handle) => send({ type: 'volume-done', gen, reqId, volume, mount, handle }),
      (err: unknown) => send({ type: 'volume-done', gen, reqId, volume, mount, err }),
    );
  };

  const onVolumeDone = (s: BridgeActorState, msg: Extract<BridgeMsg, { type: 'volume-done' }>) => {
    if (msg.gen !== s.gen || s.stopped) {
      msg.handle?.unlock().catch(() => {});
      return;
    }
    s.pending.delete(msg.reqId);
    if (msg.mount && msg.handle) {
      s.volumes.set(msg.volume, msg.handle);
      const gen = s.gen;
      msg.handle.on('lost', (reason: string) => {
        log.error({ volume: msg.volume, reason, gen }, 'volume ownership lost');
      });
    }
    const status = msg.err === undefined ? 0 : denyStatus(msg.err);
    toKernel(s, MxfsCmd.VOLUME_REPLY, { [MxfsAttr.REQ_ID]: msg.reqId, [MxfsAttr.STATUS]: status });
  };

  const attach = (s: BridgeActorState, why: string): void => {
    clock.clearTimer(s.retry);
    s.retry = undefined;
    if (s.stopped || snap.state === 'attached') return;
    try {
      if (!s.channel) {
        s.channel = factory({
          onMessage: (msg) => send({ type: 'kernel', msg }),
          onFamily: (ev) => send(ev === 'new' ? { type: 'attach', why: 'module loaded' } : { type: 'family-gone' }),
          onError: (err) => send({ type: 'channel-error', err }),
          onCongestionEnded: () => send({ type: 'congestion-ended' }),
        });
        snap.portid = s.channel.portid;
        liveChannel = s.channel;
      }
      snap.family = s.channel.resolve();
    } catch (e) {
      if (isFamilyMissing(e)) {
        setState('no-module', 'genetlink family "mxfs" not found');
      } else {
        setState('error', (e as Error).message);
      }
      scheduleRetry(s);
      return;
    }
    const gen = ++s.gen;
    const channel = s.channel;
    // Requests from a socket of their own: the kernel's messages go to the channel's port.
    const own = channel.requestPortid !== undefined && channel.requestPortid !== channel.portid
      ? { [MxfsAttr.DAEMON_PORTID]: channel.portid } : {};
    channel.send(MxfsCmd.DAEMON_READY, { [MxfsAttr.NODE_ID]: nodeId, [MxfsAttr.PROTO_VERSION]: MXFS_PROTO_VERSION, ...own }, 5000, 'urgent')
      .then(() => send({ type: 'ready-acked', gen, why }))
      .catch((err: unknown) => send({ type: 'send-failed', gen, cmd: MxfsCmd.DAEMON_READY, err }));
  };

  const scheduleHealth = (s: BridgeActorState) => {
    clock.clearTimer(s.health);
    s.health = clock.setTimer(() => send({ type: 'health-check' }), healthMs);
  };

  const healthCheck = (s: BridgeActorState) => {
    s.health = undefined;
    if (s.stopped || snap.state !== 'attached' || !s.channel) return;
    const gen = s.gen;
    s.channel.send(MxfsCmd.STATUS_REQ, {}, 5000, 'urgent').then(
      (replies) => {
        let status: KernelSideStatus;
        try {
          status = parseKernelStatus(replies);
        } catch (err) {
          send({ type: 'kernel-status', gen, err });
          return;
        }
        send({ type: 'kernel-status', gen, status });
      },
      (err: unknown) => send({ type: 'kernel-status', gen, err }),
    );
  };

  const onKernelStatus = (s: BridgeActorState, msg: Extract<BridgeMsg, { type: 'kernel-status' }>) => {
    if (msg.gen !== s.gen || s.stopped || snap.state !== 'attached') return;
    if (msg.status) {
      snap.kernel = msg.status;
      if (msg.status.daemonPortid !== snap.portid) {
        // The module does not know us any more (reloaded while a notification was lost).
        log.warn({ kernelPortid: msg.status.daemonPortid, portid: snap.portid }, 'kernel module no longer lists this daemon; re-attaching');
        detach(s, 'kernel module forgot this daemon');
        attach(s, 'health check');
        return;
      }
    } else {
      log.warn({ err: msg.err }, 'kernel status request failed');
    }
    scheduleHealth(s);
  };

  const onSendFailed = (s: BridgeActorState, msg: Extract<BridgeMsg, { type: 'send-failed' }>) => {
    if (msg.gen !== s.gen) return;
    const errno = msg.err instanceof KernelAckError ? msg.err.errno : undefined;
    if (msg.cmd === MxfsCmd.DAEMON_READY) {
      setState('error', `DAEMON_READY refused: ${(msg.err as Error).message}`);
      scheduleRetry(s);
      return;
    }
    if (msg.cmd === MxfsCmd.LOCK_GRANT && errno === Errno.ENOENT && msg.lockId !== undefined) {
      // The kernel stopped waiting (timeout, killed task): give the lock back (unless its
      // LOCK_CANCEL did already).
      const h = s.held.get(msg.lockId);
      if (!h) return;
      counters.staleGrants++;
      s.held.delete(msg.lockId);
      log.info({ lockId: String(msg.lockId) }, 'kernel no longer waited for this grant; releasing it');
      h.unlock().catch(() => {});
      return;
    }
    if (msg.cmd === MxfsCmd.LOCK_GRANT && (msg.err instanceof AnswerLost || msg.err instanceof RequestTimeout)) {
      // Taken, or refused because the kernel stopped waiting: then its LOCK_CANCEL (sent once
      // it gave the request up) gives the lock back (onCancel). Kept meanwhile.
      counters.grantAnswersLost++;
      log.warn({ lockId: String(msg.lockId ?? ''), err: (msg.err as Error).message },
        'the kernel\'s answer to a LOCK_GRANT was lost; the lock stays held unless the kernel cancels the request');
      return;
    }
    counters.sendErrors++;
    log.warn({ err: msg.err, cmd: MxfsCmd[msg.cmd] }, 'kernel refused a message');
  };

  const def: ActorDef<BridgeActorState, BridgeMsg> = {
    init: () => ({ gen: 0, held: new Map(), volumes: new Map(), pending: new Map(), cancelled: new Set(), converting: new Map(), stopped: false }),
    handle(s, msg) {
      switch (msg.type) {
        case 'attach':
          attach(s, msg.why);
          break;
        case 'family-gone':
          detach(s, 'kernel module unloaded');
          break;
        case 'kernel': {
          const m = msg.msg;
          if (snap.state !== 'attached' && m.cmd !== MxfsCmd.EVENT) break;
          switch (m.cmd) {
            case MxfsCmd.LOCK_REQ: onLockReq(s, m); break;
            case MxfsCmd.LOCK_RELEASE: onRelease(s, m); break;
            case MxfsCmd.LOCK_CONVERT: onConvert(s, m); break;
            case MxfsCmd.LOCK_CANCEL: onCancel(s, m); break;
            case MxfsCmd.VOLUME_MOUNT: onVolume(s, m, true); break;
            case MxfsCmd.VOLUME_UNMOUNT: onVolume(s, m, false); break;
            case MxfsCmd.VOLUME_EVENT:
              if (volumeListener) toListener('volumeEvent', (l) => l.volumeEvent(m));
              else log.info({ volume: m.attrs[MxfsAttr.VOLUME], event: m.attrs[MxfsAttr.VOLUME_EVENT] }, 'kernel volume event, no volume driver');
              break;
            case MxfsCmd.EVENT: {
              const ev = m.attrs[MxfsAttr.EVENT] as MxfsEvent;
              log.debug({ event: MxfsEvent[ev], lockId: String(m.attrs[MxfsAttr.LOCK_ID] ?? '') }, 'kernel event');
              break;
            }
            default:
              counters.invalidMessages++;
              log.warn({ cmd: MxfsCmd[m.cmd] }, 'unexpected command from the kernel');
          }
          break;
        }
        case 'channel-error': {
          const e = msg.err;
          if (e instanceof NetlinkError && e.code === NLE.NOMEM) {
            const onReq = e.op.endsWith('(req)');
            counters[onReq ? 'requestOverruns' : 'overruns']++;
            if (!onReq) resyncWanted = true;
            if (onReq || clock.now() - overrunLogged >= 5000) {
              overrunLogged = clock.now();
              log.warn({ overruns: counters.overruns, requestOverruns: counters.requestOverruns },
                onReq ? 'kernel request socket overrun: answers were lost, their requests time out'
                  : 'kernel channel overrun (a burst of kernel messages): the module sends again what it must');
            }
            break;
          }
          counters.invalidMessages++;
          log.warn({ err: e }, 'kernel channel error');
          break;
        }
        case 'congestion-ended':
          // Every kernel message read before the overrun ended is handled by now (the mailbox
          // is in order): the listener's status request sees what the lost ones said.
          if (!resyncWanted || snap.state !== 'attached') break;
          resyncWanted = false;
          counters.resyncs++;
          log.warn({ overruns: counters.overruns, resyncs: counters.resyncs },
            'kernel channel overrun over: reading the module\'s volume state (an event may have been lost)');
          toListener('resync', (l) => l.resync?.());
          break;
        case 'lock-done': onLockDone(s, msg); break;
        case 'convert-done': onConvertDone(s, msg); break;
        case 'volume-done': onVolumeDone(s, msg); break;
        case 'send-failed': onSendFailed(s, msg); break;
        case 'ready-acked':
          if (msg.gen === s.gen && !s.stopped) {
            counters.attaches++;
            setState('attached');
            log.info({ family: snap.family, portid: snap.portid, why: msg.why }, 'daemon ready: attached to the kernel module');
            scheduleHealth(s);
            toListener('attached', (l) => l.attached());
          }
          break;
        case 'health-check': healthCheck(s); break;
        case 'kernel-status': onKernelStatus(s, msg); break;
        case 'bast':
          if (msg.gen === s.gen && s.held.has(msg.lockId)) {
            counters.basts++;
            toKernel(s, MxfsCmd.BAST, { [MxfsAttr.LOCK_ID]: msg.lockId, [MxfsAttr.MODE]: msg.mode });
          }
          break;
        case 'lost':
          if (msg.gen === s.gen && s.held.delete(msg.lockId)) {
            counters.lost++;
            log.warn({ lockId: String(msg.lockId), reason: msg.reason }, 'lock held for the kernel was lost');
            toKernel(s, MxfsCmd.LOCK_LOST, { [MxfsAttr.LOCK_ID]: msg.lockId, [MxfsAttr.STATUS]: -Errno.ENOLCK });
          }
          break;
        case 'client-lost': {
          // The whole client session lost its locks (e.g. the daemon lost quorum).
          if (s.held.size || s.volumes.size) log.error({ reason: msg.reason, locks: s.held.size, volumes: s.volumes.size }, 'every lock held for the kernel was lost');
          for (const lockId of s.held.keys()) {
            counters.lost++;
            toKernel(s, MxfsCmd.LOCK_LOST, { [MxfsAttr.LOCK_ID]: lockId, [MxfsAttr.STATUS]: -Errno.ENOLCK });
          }
          s.held.clear();
          s.volumes.clear();
          break;
        }
        case 'stop': {
          s.stopped = true;
          clock.clearTimer(s.retry);
          clock.clearTimer(s.health);
          s.gen++;
          releaseAll(s, 'daemon stopping');
          const ch = s.channel;
          s.channel = undefined;
          liveChannel = undefined;
          const done = () => system.reply(msg.replyTo, undefined);
          if (ch) ch.close().then(done, done);
          else done();
          setState('no-module', 'stopped');
          toListener('detached', (l) => l.detached('stopped'));
          break;
        }
      }
      sync(s);
      return s;
    },
    onCrash: () => 'resume',
  };

  self = system.spawn(undefined, 'kernel-bridge', def);
  const onClientLost = (reason: string) => {
    send({ type: 'client-lost', reason });
    renewSession();
  };
  /** A new session in place of the lost one (retried every retryMs while that fails). */
  const renewSession = () => {
    if (!opts.reconnect || stopping) return;
    opts.reconnect().then((c) => {
      if (stopping) { void c.close(); return; }
      locks.off('lost', onClientLost);
      locks = c;
      opened.push(c);
      c.on('lost', onClientLost);
      log.info('kernel bridge: a new client session for the kernel\'s locks (the last one lost them all)');
    }, (err: unknown) => {
      log.error({ err }, 'kernel bridge: cannot open a new client session; retrying');
      clock.setTimer(renewSession, retryMs);
    });
  };
  locks.on('lost', onClientLost);
  send({ type: 'attach', why: 'start' });

  return {
    status,
    // Straight to the channel, not through the actor's mailbox: a burst of kernel messages
    // queued there (thousands of LOCK_RELEASEs, each a DLM unlock) delayed the kernel lease's
    // renewals until the lease ran out (issue 11). Requests still leave in call order.
    async request(cmd, attrs, timeoutMs = 10_000) {
      const ch = liveChannel;
      if (!ch || snap.state !== 'attached') throw new KernelNotAttached(snap.state, snap.detail);
      // Not an actor message any more, so the trace records it here (it was the 'request' ask).
      traceKernelOut(cmd, attrs);
      // Urgent: the lease's renewals and volume commands go before queued lock traffic.
      const replies = await ch.send(cmd, attrs, timeoutMs, 'urgent');
      try {
        return replies.map((r) => parseMxfsMessage(r));
      } catch (err) {
        counters.invalidMessages++;
        throw err;
      }
    },
    setVolumeListener(l) {
      volumeListener = l;
      if (l && snap.state === 'attached') toListener('attached', (x) => x.attached());
    },
    async stop() {
      stopping = true;
      locks.off('lost', onClientLost);
      await system.ask<BridgeMsg, void>(self, (replyTo) => ({ type: 'stop', replyTo }), 5000).catch(() => {});
      system.stopActor(self);
      await Promise.all(opened.map((c) => c.close().catch(() => {})));
    },
  };
}
