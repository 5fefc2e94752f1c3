/**
 * VolumeCore: the state machine of one volume on one node, as a pure class (like
 * ResourceCore and MembershipCore): it takes an input and the time and returns the effects
 * to carry out. It does no I/O; the Volume actor (./volume.ts) runs the effects and feeds
 * their results back. docs/volumes.md describes the states and the rules.
 *
 * The visible `state` says where the volume stands; `step` says which effect is in flight
 * (or, when blocked, which one failed and is retried). Every effect that takes time carries
 * the op number current when it was issued; a result with another op is stale (the machine
 * moved on) and is ignored — except a lock grant, which the actor gives back. The actor runs
 * driver calls one at a time per volume, so a fence always comes after a mount still running.
 *
 * Invariants (checked after every input; a breach fences the volume rather than go on):
 *   - `holding` (this node's EX lock on the volume's resource) agrees with the state table;
 *   - nothing of ours can be mounted (`mountIssued`) in unmounted, standby or acquiring.
 */
import type { FenceReport, OwnershipContext, VolumeErrorCode, VolumeSpec } from './driver';
import { encodeRecordLvb, newest, RecoveryInfo, VolumeRecord } from './record';

export const VOLUME_STATES = ['unmounted', 'standby', 'acquiring', 'recovering', 'mounting', 'mounted', 'unmounting', 'blocked', 'fenced'] as const;
export type VolumeState = (typeof VOLUME_STATES)[number];

/** The state table: meaning, whether this node holds the ownership lock, the states it may go to next. */
export const STATE_TABLE: Record<VolumeState, { meaning: string; holding: boolean | 'either'; next: readonly VolumeState[] }> = {
  unmounted: { meaning: 'not owned or wanted by this node', holding: false, next: ['acquiring', 'standby', 'fenced'] },
  standby: { meaning: 'queued for ownership: takes over when the owner dies or unmounts', holding: false, next: ['acquiring', 'unmounted'] },
  acquiring: { meaning: 'waiting for the ownership lock, then reading the volume record', holding: 'either', next: ['mounting', 'recovering', 'unmounting', 'unmounted', 'blocked'] },
  recovering: { meaning: 'taking over from an owner that went away: proof it is fenced, then the mount replays its log', holding: true, next: ['mounted', 'blocked', 'unmounting', 'unmounted', 'fenced'] },
  mounting: { meaning: 'mounting; the last owner unmounted cleanly', holding: true, next: ['mounted', 'unmounting', 'unmounted', 'blocked', 'fenced'] },
  mounted: { meaning: 'this node owns and uses the volume', holding: true, next: ['unmounting', 'fenced'] },
  unmounting: { meaning: 'unmounting, then giving ownership back', holding: 'either', next: ['unmounted', 'standby', 'mounted', 'blocked', 'fenced'] },
  blocked: { meaning: 'owner, but a step cannot proceed (reason and age shown); retried with backoff', holding: true, next: ['recovering', 'mounting', 'mounted', 'unmounting', 'unmounted', 'fenced'] },
  fenced: { meaning: 'this node lost its lease or lock while it could write: its writes are stopped', holding: false, next: ['unmounted', 'standby'] },
};

/**
 * Outcomes of volume requests and steps, as mxfsctl sees them (docs/daemon.md maps them to
 * exit codes). NO_MAJORITY: the record could not be read from / stored on a majority of the
 * nodes; UNPROVEN: the old owner is not provably fenced yet.
 */
export const VOLUME_REPLY_CODES = [
  'OWNED', 'TIMEOUT', 'BUSY', 'NOT_OWNER', 'BLOCKED', 'FENCED', 'LOST', 'CANCELLED', 'NO_MAJORITY', 'UNPROVEN', 'UNKNOWN_VOLUME',
  'DEVICE_MISSING', 'MOUNTPOINT_MISSING', 'MOUNT_FAILED', 'UMOUNT_FAILED', 'RECOVER_FAILED', 'FENCE_UNCONFIRMED', 'NO_MODULE', 'DRIVER',
] as const;
export type VolumeReplyCode = (typeof VOLUME_REPLY_CODES)[number];
type AssertCovers<T extends VolumeReplyCode> = T;
export type _DriverCodesCovered = AssertCovers<VolumeErrorCode>;

/** The effect in flight (or, when blocked, the one retried). */
export type Step =
  | 'lock' | 'read' | 'prove' | 'claim' | 'mount' | 'recover' | 'finalize'
  | 'umount' | 'clean' | 'release' | 'fence' | 'clear';

export type VolumeInput =
  | { type: 'mount'; req: number; wait: boolean; timeoutMs?: number }
  /** The client of mount request `req` went away: drop it, and the ownership request with it while that still waits. */
  | { type: 'withdraw'; req: number }
  | { type: 'standby'; req: number }
  | { type: 'umount'; req: number }
  | { type: 'granted'; op: number; token: number; lvbRecord?: VolumeRecord }
  | { type: 'lockFailed'; op: number; code: string; message: string }
  /** The ownership lock is gone (quorum or lock lost), or the driver fenced by itself. */
  | { type: 'lost'; reason: string }
  | { type: 'read'; op: number; record?: VolumeRecord }
  | { type: 'proven'; op: number; how: string }
  | { type: 'done'; op: number }
  /** inDoubt: the driver cannot tell whether the step happened (an umount_cmd past its timeout). */
  | { type: 'failed'; op: number; code: VolumeReplyCode; message: string; inDoubt?: boolean }
  | { type: 'fenceDone'; op: number; report: FenceReport }
  | { type: 'retry'; op: number }
  /** Back in a quorate view after a fence: clear it. */
  | { type: 'rejoined' }
  /** The driver saw the volume unmounted without the daemon asking (kernel: last close). */
  | { type: 'externallyUnmounted' };

export type VolumeEffect =
  | { do: 'lock'; op: number; noqueue: boolean; timeoutMs?: number }
  | { do: 'cancelLock' }
  /** Give the lock back. */
  | { do: 'unlock'; op: number; lvb?: Buffer }
  | { do: 'writeLvb'; lvb: Buffer }
  | { do: 'read'; op: number }
  | { do: 'prove'; op: number; owner: number; generation: number; fenceBoundMs: number }
  | { do: 'store'; op: number; record: VolumeRecord }
  | { do: 'driver'; op: number; call: 'mount' | 'afterRecovery' | 'umount' | 'clearFence'; ctx: OwnershipContext }
  | { do: 'fence'; op: number; cause: string }
  | { do: 'timer'; op: number; ms: number }
  | { do: 'reply'; req: number; ok: true; message: string }
  | { do: 'reply'; req: number; ok: false; code: VolumeReplyCode; message: string }
  | { do: 'transition'; from: VolumeState; to: VolumeState; why: string }
  | { do: 'violation'; what: string };

export interface VolumeCoreOptions {
  spec: VolumeSpec;
  node: number;
  failover: 'auto' | 'manual';
  /** Where the node goes once a fence is cleared: back to standby if the volume follows this node (start = mount|standby). */
  afterClear: 'unmounted' | 'standby';
  fenceBoundMs(): number;
  /** Wall clock, for the record's timestamps (display only). */
  wallNow(): number;
}

export interface VolumeView {
  volume: string;
  state: VolumeState;
  sinceMs: number;
  role: 'operator' | 'standby' | null;
  holding: boolean;
  step: Step | null;
  record: VolumeRecord | null;
  reason: string | null;
  blocked: { reason: string; code: VolumeReplyCode; step: Step; sinceMs: number; retries: number; nextRetryMs: number | null } | null;
  fence: (FenceReport & { agoMs: number }) | null;
  recovery: { of: number; generation: number; fromGeneration: number } | null;
}

export const RETRY_BASE_MS = 1000;
export const RETRY_MAX_MS = 30000;

interface Waiter { req: number; kind: 'mount' | 'umount' }

export class VolumeCore {
  state: VolumeState = 'unmounted';
  since: number;
  role: 'operator' | 'standby' | null = null;
  holding = false;
  /** Something of ours may be mounted: a mount was issued since the grant and not undone. */
  mountIssued = false;
  /** A mount's outcome is unknown and was not undone (driver said UMOUNT_FAILED): mountIssued stays until an umount or fence. */
  private mountInDoubt = false;
  step: Step | null = null;
  /** This node's record while it owns: the last one stored or being stored. */
  rec?: VolumeRecord;
  private op = 0;
  private token = 0;
  private grantedAt = 0;
  private lvbRecord?: VolumeRecord;
  /** The newest record read when ownership was granted. */
  private prev?: VolumeRecord;
  private recovery?: { of: number; generation: number; fromGeneration: number };
  private waiters: Waiter[] = [];
  private reason: string | null = null;
  private blockedInfo?: { reason: string; code: VolumeReplyCode; since: number; retries: number; retryAt: number | null };
  private fenceInfo?: FenceReport & { at: number };
  /** Where to go once the lock is given back. */
  private releaseTo: 'unmounted' | 'standby' = 'unmounted';
  /** A rejoin arrived while the fence was still running: clear once it is done. */
  private rejoinPending = false;
  /**
   * The operator made this node a standby and has not withdrawn it: a standby request lost
   * with the node's quorum is queued again when the node is back in a quorate view.
   */
  private standbyWanted = false;
  /**
   * This node holds the lock as a standby taking over and has not mounted yet. If it loses
   * the lock now (its quorum, or a fence), the standby request is not fulfilled — the volume
   * may be left without an owner — so it counts as wanted again and is queued once the node
   * is back in a quorate view (or its fence is cleared).
   */
  private takingOver = false;
  /** Standby requests queued again in a row without a grant (the backoff of requeueLater). */
  private requeues = 0;

  constructor(private readonly o: VolumeCoreOptions, now: number) { this.since = now; }

  get name(): string { return this.o.spec.name; }

  view(now: number): VolumeView {
    const b = this.blockedInfo;
    return {
      volume: this.name, state: this.state, sinceMs: Math.round(now - this.since), role: this.role, holding: this.holding,
      step: this.step, record: this.rec ?? null, reason: this.reason,
      blocked: b && this.state === 'blocked'
        ? { reason: b.reason, code: b.code, step: this.step!, sinceMs: Math.round(now - b.since), retries: b.retries, nextRetryMs: b.retryAt === null ? null : Math.max(0, Math.round(b.retryAt - now)) }
        : null,
      fence: this.fenceInfo && this.state === 'fenced' ? { ...this.fenceInfo, agoMs: Math.round(now - this.fenceInfo.at) } : null,
      recovery: this.recovery ?? null,
    };
  }

  /** Start-up: this node's previous run of mxfsd owned the volume and may have left it mounted. */
  fenceAtStart(cause: string, now: number): VolumeEffect[] {
    const ev: VolumeEffect[] = [];
    this.mountIssued = true;
    this.startFence(cause, now, ev);
    return ev;
  }

  input(m: VolumeInput, now: number): VolumeEffect[] {
    const ev: VolumeEffect[] = [];
    this.handle(m, now, ev);
    this.checkInvariants(now, ev);
    return ev;
  }

  // ---- helpers --------------------------------------------------------------------------

  private go(to: VolumeState, now: number, ev: VolumeEffect[], why: string): void {
    const from = this.state;
    if (from === to) return;
    if (!STATE_TABLE[from].next.includes(to)) ev.push({ do: 'violation', what: `transition ${from} -> ${to} is not in the state table (${why})` });
    this.state = to;
    this.since = now;
    if (to !== 'blocked') this.blockedInfo = undefined;
    if (to !== 'fenced') this.fenceInfo = undefined;
    if (to === 'mounted' || to === 'standby' || to === 'acquiring') this.reason = null;
    ev.push({ do: 'transition', from, to, why });
  }

  private begin(step: Step): number {
    this.step = step;
    return ++this.op;
  }

  private ctx(): OwnershipContext {
    return { volume: this.o.spec, node: this.o.node, generation: this.rec?.generation ?? 0, token: this.token, ...(this.recovery ? { recovery: this.recovery } : {}) };
  }

  private reply(ev: VolumeEffect[], kind: Waiter['kind'], ok: boolean, message: string, code: VolumeReplyCode = 'BUSY'): void {
    const keep: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.kind !== kind) { keep.push(w); continue; }
      ev.push(ok ? { do: 'reply', req: w.req, ok: true, message } : { do: 'reply', req: w.req, ok: false, code, message });
    }
    this.waiters = keep;
  }

  private failAll(ev: VolumeEffect[], code: VolumeReplyCode, message: string): void {
    for (const w of this.waiters) ev.push({ do: 'reply', req: w.req, ok: false, code, message });
    this.waiters = [];
  }

  private store(step: Step, record: VolumeRecord, ev: VolumeEffect[]): void {
    this.rec = record;
    ev.push({ do: 'store', op: this.begin(step), record });
  }

  private bump(changes: Partial<VolumeRecord>): VolumeRecord {
    const r = this.rec!;
    const next: VolumeRecord = { ...r, ...changes, version: r.version + 1, since: this.o.wallNow() };
    if (next.recovering === undefined) delete next.recovering;
    return next;
  }

  private driver(step: Step, call: 'mount' | 'afterRecovery' | 'umount' | 'clearFence', ev: VolumeEffect[]): void {
    if (call === 'mount') this.mountIssued = true;
    ev.push({ do: 'driver', op: this.begin(step), call, ctx: this.ctx() });
  }

  private block(code: VolumeReplyCode, reason: string, now: number, ev: VolumeEffect[]): void {
    const prev = this.state === 'blocked' ? this.blockedInfo : undefined;
    const retries = prev ? prev.retries + 1 : 0;
    const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(retries, 10));
    const step = this.step!;
    this.reason = reason;
    this.go('blocked', now, ev, `${step}: ${reason}`);
    this.step = step;
    this.blockedInfo = { reason, code, since: prev?.since ?? now, retries, retryAt: now + delay };
    ev.push({ do: 'timer', op: ++this.op, ms: delay });
    // mxfsctl mount fails fast with the reason; the node keeps trying in the background.
    this.reply(ev, 'mount', false, `volume ${this.name} is blocked at '${step}': ${reason} (retried with backoff; 'mxfsctl umount ${this.name}' gives ownership up)`, 'BLOCKED');
  }

  /** Give the lock back (nothing of ours is mounted any more). */
  private release(to: 'unmounted' | 'standby', lvb: Buffer | undefined, now: number, ev: VolumeEffect[], why: string): void {
    this.releaseTo = to;
    this.takingOver = false; // given back on purpose: not a takeover cut short
    this.go('unmounting', now, ev, why);
    ev.push({ do: 'unlock', op: this.begin('release'), ...(lvb ? { lvb } : {}) });
  }

  /** The ownership lock is only asked for, and no longer wanted: the request cancelled, back to unmounted. */
  private dropLockRequest(now: number, ev: VolumeEffect[], why: string): void {
    this.forget();
    this.op++;
    ev.push({ do: 'cancelLock' });
    this.go('unmounted', now, ev, why);
  }

  private forget(): void {
    this.holding = false;
    this.mountIssued = false;
    this.mountInDoubt = false;
    this.step = null;
    this.prev = undefined;
    this.lvbRecord = undefined;
    this.recovery = undefined;
    this.role = null;
    this.takingOver = false;
  }

  private queueStandby(now: number, ev: VolumeEffect[], why: string): void {
    this.role = 'standby';
    this.standbyWanted = true;
    this.go('standby', now, ev, why);
    ev.push({ do: 'lock', op: this.begin('lock'), noqueue: false });
  }

  private startFence(cause: string, now: number, ev: VolumeEffect[]): void {
    const wasMounted = this.mountIssued;
    this.forget();
    this.mountIssued = wasMounted;
    this.reason = `fencing: ${cause}`;
    this.rejoinPending = false;
    this.go('fenced', now, ev, cause);
    this.fenceInfo = { fenced: false, cause, durationMs: 0, at: now };
    ev.push({ do: 'fence', op: this.begin('fence'), cause });
    this.failAll(ev, 'FENCED', `volume ${this.name} was fenced on this node: ${cause}`);
  }

  private checkInvariants(now: number, ev: VolumeEffect[]): void {
    const row = STATE_TABLE[this.state];
    const bad = (row.holding === true && !this.holding) || (row.holding === false && this.holding)
      || (this.mountIssued && (this.state === 'unmounted' || this.state === 'standby' || this.state === 'acquiring'));
    if (!bad) return;
    ev.push({ do: 'violation', what: `state ${this.state} with holding=${this.holding} mountIssued=${this.mountIssued}` });
    if (this.state !== 'fenced') this.startFence('internal invariant broken', now, ev);
  }

  // ---- the machine ------------------------------------------------------------------------

  private handle(m: VolumeInput, now: number, ev: VolumeEffect[]): void {
    switch (m.type) {
      case 'mount': return this.onMount(m, now, ev);
      case 'standby': return this.onStandby(m.req, now, ev);
      case 'umount': return this.onUmount(m.req, now, ev);
      case 'withdraw': return this.onWithdraw(m.req, now, ev);
      case 'granted': return this.onGranted(m, now, ev);
      case 'lockFailed': {
        if (m.op !== this.op || this.step !== 'lock') return;
        const code: VolumeReplyCode = m.code === 'NOTQUEUED' ? 'OWNED' : m.code === 'TIMEOUT' ? 'TIMEOUT' : m.code === 'CANCELLED' ? 'CANCELLED' : 'LOST';
        this.forget();
        this.go('unmounted', now, ev, `ownership not obtained: ${m.message}`);
        this.reason = this.standbyWanted ? `standby request lost (${m.message}); queued again once the node is back in a quorate view` : m.message;
        this.failAll(ev, code, m.message);
        // A standby's queued request lost while the node may stay quorate (its own volume
        // session timed out): no rejoin may come, so ask again after a while as well.
        if (this.standbyWanted && code === 'LOST') this.requeueLater(`standby request lost (${m.message})`, ev);
        return;
      }
      case 'lost': return this.onLost(m.reason, now, ev);
      case 'read':
        if (m.op !== this.op || this.step !== 'read') return;
        return this.decide(newest(m.record, this.lvbRecord), now, ev);
      case 'proven': {
        if (m.op !== this.op || this.step !== 'prove') return;
        const p = this.prev!;
        const r = this.recovery!;
        this.store('claim', {
          volume: this.name, generation: p.generation + 1, version: 0, owner: this.o.node, state: 'recovering', token: this.token,
          fenceBoundMs: this.o.fenceBoundMs(), since: this.o.wallNow(),
          recovering: { of: r.of, fromGeneration: r.fromGeneration, ofGeneration: r.generation },
          ...(p.lastRecovery ? { lastRecovery: p.lastRecovery } : {}),
        }, ev);
        if (this.state === 'blocked') this.go('recovering', now, ev, `old owner fenced (${m.how})`);
        return;
      }
      case 'done': return m.op === this.op ? this.onDone(now, ev) : undefined;
      case 'failed': return m.op === this.op ? this.onFailed(m.code, m.message, now, ev, m.inDoubt ?? false) : undefined;
      case 'fenceDone': {
        if (m.op !== this.op || this.step !== 'fence') return;
        this.step = null;
        this.mountIssued = false;
        this.mountInDoubt = false;
        this.fenceInfo = { ...m.report, at: this.fenceInfo?.at ?? now };
        this.reason = m.report.fenced ? `fenced: ${m.report.cause} (${m.report.durationMs} ms)`
          : `fence incomplete: ${m.report.cause}${m.report.detail ? `; ${m.report.detail}` : ''}`;
        if (this.rejoinPending) { this.rejoinPending = false; this.driver('clear', 'clearFence', ev); }
        return;
      }
      case 'retry':
        if (m.op === this.op && this.state === 'unmounted' && this.standbyWanted) { this.queueStandby(now, ev, 'takeover lost: queued again as a standby'); return; }
        if (m.op !== this.op || !(this.state === 'blocked' || (this.state === 'mounted' && this.step === 'finalize'))) return;
        return this.retry(now, ev);
      case 'rejoined':
        if (this.state === 'unmounted' && this.standbyWanted) { this.queueStandby(now, ev, 'back in a quorate view: queued again as a standby'); return; }
        if (this.state !== 'fenced' || this.step === 'clear') return;
        if (this.step === 'fence') { this.rejoinPending = true; return; }
        this.driver('clear', 'clearFence', ev);
        return;
      case 'externallyUnmounted':
        if (this.state !== 'mounted') return;
        this.mountIssued = false;
        this.go('unmounting', now, ev, 'the volume was unmounted outside mxfsctl');
        this.store('clean', this.bump({ state: 'clean', recovering: undefined }), ev);
        return;
    }
  }

  private onMount(m: Extract<VolumeInput, { type: 'mount' }>, now: number, ev: VolumeEffect[]): void {
    switch (this.state) {
      case 'unmounted':
        this.role = 'operator';
        this.waiters.push({ req: m.req, kind: 'mount' });
        this.go('acquiring', now, ev, 'mount requested');
        ev.push({ do: 'lock', op: this.begin('lock'), noqueue: !m.wait, ...(m.timeoutMs !== undefined ? { timeoutMs: m.timeoutMs } : {}) });
        return;
      case 'standby':
        // Already queued; the operator's mount makes the takeover unconditional (also with failover = manual).
        this.role = 'operator';
        if (!m.wait) { ev.push({ do: 'reply', req: m.req, ok: false, code: 'OWNED', message: `volume ${this.name} is owned by another node; this node stays queued as a standby` }); return; }
        this.waiters.push({ req: m.req, kind: 'mount' });
        return;
      case 'acquiring': case 'recovering': case 'mounting':
        this.role = 'operator';
        this.waiters.push({ req: m.req, kind: 'mount' });
        return;
      case 'mounted':
        ev.push({ do: 'reply', req: m.req, ok: true, message: `volume ${this.name} is already mounted on node ${this.o.node} (generation ${this.rec?.generation})` });
        return;
      case 'unmounting':
        ev.push({ do: 'reply', req: m.req, ok: false, code: 'BUSY', message: `volume ${this.name} is being unmounted on this node; try again when that is done` });
        return;
      case 'blocked':
        ev.push({ do: 'reply', req: m.req, ok: false, code: 'BLOCKED', message: `volume ${this.name} is blocked at '${this.step}': ${this.blockedInfo?.reason}` });
        return;
      case 'fenced':
        ev.push({ do: 'reply', req: m.req, ok: false, code: 'FENCED', message: `volume ${this.name} is fenced on this node (${this.reason}); 'mxfsctl umount ${this.name}' clears it, or the node's rejoin does` });
        return;
    }
  }

  /**
   * A mount's client went away. Its request is dropped (answered CANCELLED, to nobody). If no
   * other mount waits and the ownership lock is still only asked for (acquiring, not granted),
   * that request is cancelled too, as an operator's umount would: nobody wants the volume
   * mounted here any more. Once granted (reading the record, mounting) the mount goes on:
   * stopping it midway would leave more to undo than finishing it.
   * A standby that a mount made unconditional (role operator) is a plain standby again.
   */
  private onWithdraw(req: number, now: number, ev: VolumeEffect[]): void {
    const i = this.waiters.findIndex((w) => w.req === req && w.kind === 'mount');
    if (i < 0) return;
    this.waiters.splice(i, 1);
    const why = `mount of ${this.name} withdrawn: the client that asked for it went away`;
    ev.push({ do: 'reply', req, ok: false, code: 'CANCELLED', message: why });
    if (this.waiters.some((w) => w.kind === 'mount')) return;
    if (this.state === 'standby') { this.role = 'standby'; return; }
    if (this.state !== 'acquiring' || this.holding || this.step !== 'lock') return;
    this.dropLockRequest(now, ev, why);
    this.reason = why;
    this.failAll(ev, 'CANCELLED', why);
  }

  private onStandby(req: number, now: number, ev: VolumeEffect[]): void {
    if (this.state === 'unmounted') {
      this.queueStandby(now, ev, 'standby requested');
      ev.push({ do: 'reply', req, ok: true, message: `node ${this.o.node} is now a standby for ${this.name}` });
    } else if (this.state === 'standby') {
      ev.push({ do: 'reply', req, ok: true, message: `node ${this.o.node} is already a standby for ${this.name}` });
    } else if (this.state === 'fenced') {
      this.standbyWanted = true;
      ev.push({ do: 'reply', req, ok: true, message: `node ${this.o.node} becomes a standby for ${this.name} once its fence is cleared (the node back in a quorate view, or 'mxfsctl umount ${this.name}')` });
    } else {
      ev.push({ do: 'reply', req, ok: false, code: 'BUSY', message: `volume ${this.name} is ${this.state} on this node; only an unmounted node can become a standby` });
    }
  }

  private onUmount(req: number, now: number, ev: VolumeEffect[]): void {
    const busy = () => ev.push({ do: 'reply', req, ok: false, code: 'BUSY', message: `volume ${this.name} is ${this.state} (${this.step} in progress); try again when it is done` });
    if (this.state !== 'recovering' && this.state !== 'mounting') this.takingOver = false; // the operator ends the takeover (those two may answer BUSY and go on)
    switch (this.state) {
      case 'unmounted':
        if (this.standbyWanted) {
          this.standbyWanted = false;
          ev.push({ do: 'reply', req, ok: true, message: `standby for ${this.name} withdrawn` });
          return;
        }
        ev.push({ do: 'reply', req, ok: false, code: 'NOT_OWNER', message: `node ${this.o.node} does not own volume ${this.name}` });
        return;
      case 'standby':
        this.standbyWanted = false;
        this.dropLockRequest(now, ev, 'standby withdrawn');
        ev.push({ do: 'reply', req, ok: true, message: `standby for ${this.name} withdrawn` });
        return;
      case 'acquiring':
        this.failAll(ev, 'CANCELLED', `mount of ${this.name} cancelled by umount`);
        if (!this.holding) {
          this.dropLockRequest(now, ev, 'mount cancelled');
          ev.push({ do: 'reply', req, ok: true, message: `mount of ${this.name} cancelled` });
          return;
        }
        this.waiters.push({ req, kind: 'umount' });
        this.release('unmounted', undefined, now, ev, 'mount cancelled');
        return;
      case 'recovering':
      case 'mounting':
        if (this.step === 'mount' || this.step === 'recover' || this.step === 'finalize') return void busy();
        // Waiting for the proof or a store: give up; the record stays as it was for the next owner.
        this.failAll(ev, 'CANCELLED', `mount of ${this.name} abandoned by umount`);
        this.waiters.push({ req, kind: 'umount' });
        this.release('unmounted', undefined, now, ev, 'abandoned by the operator before mounting');
        return;
      case 'mounted':
        this.waiters.push({ req, kind: 'umount' });
        this.go('unmounting', now, ev, 'umount requested');
        this.driver('umount', 'umount', ev);
        return;
      case 'unmounting':
        this.waiters.push({ req, kind: 'umount' });
        return;
      case 'blocked':
        this.failAll(ev, 'CANCELLED', `ownership of ${this.name} given up by umount`);
        this.waiters.push({ req, kind: 'umount' });
        if (this.mountIssued) {
          this.go('unmounting', now, ev, 'blocked owner gives up: unmounting first');
          this.driver('umount', 'umount', ev);
        } else {
          this.release('unmounted', undefined, now, ev, 'blocked owner gives ownership up; the record stays for the next owner');
        }
        return;
      case 'fenced':
        if (this.step === 'fence' || this.step === 'clear') return void busy();
        this.waiters.push({ req, kind: 'umount' });
        this.driver('clear', 'clearFence', ev);
        return;
    }
  }

  private onGranted(m: Extract<VolumeInput, { type: 'granted' }>, now: number, ev: VolumeEffect[]): void {
    if (m.op !== this.op || this.step !== 'lock') return; // not wanted any more: the actor gives that grant back
    this.holding = true;
    this.requeues = 0;
    this.takingOver = this.role === 'standby';
    this.standbyWanted = false;
    this.token = m.token;
    this.grantedAt = now;
    this.lvbRecord = m.lvbRecord;
    if (this.state === 'standby') this.go('acquiring', now, ev, 'ownership granted to the standby');
    ev.push({ do: 'read', op: this.begin('read') });
  }

  /** The record is read: a clean mount, or a takeover from an owner that went away. */
  private decide(prev: VolumeRecord | undefined, now: number, ev: VolumeEffect[]): void {
    this.prev = prev;
    if (!prev || prev.state === 'clean') {
      this.recovery = undefined;
      this.go('mounting', now, ev, prev ? `last owner node ${prev.owner} unmounted cleanly (generation ${prev.generation})` : 'first mount of this volume');
      this.store('claim', {
        volume: this.name, generation: (prev?.generation ?? 0) + 1, version: 0, owner: this.o.node, state: 'mounting', token: this.token,
        fenceBoundMs: this.o.fenceBoundMs(), since: this.o.wallNow(), ...(prev?.lastRecovery ? { lastRecovery: prev.lastRecovery } : {}),
      }, ev);
      return;
    }
    const fromGeneration = prev.state === 'recovering' && prev.recovering ? prev.recovering.fromGeneration : prev.generation;
    if (this.role === 'standby' && this.o.failover === 'manual') {
      const why = `owner node ${prev.owner} went away without unmounting (generation ${prev.generation}); failover = manual: run 'mxfsctl mount ${this.name}' on the node that should recover it`;
      this.release('unmounted', undefined, now, ev, why);
      this.reason = why;
      return;
    }
    this.recovery = { of: prev.owner, generation: prev.generation, fromGeneration };
    this.go('recovering', now, ev, `owner node ${prev.owner} went away in generation ${prev.generation} without unmounting`);
    ev.push({ do: 'prove', op: this.begin('prove'), owner: prev.owner, generation: prev.generation, fenceBoundMs: prev.fenceBoundMs });
  }

  /** The step in flight finished. */
  private onDone(now: number, ev: VolumeEffect[]): void {
    const step = this.step;
    if (this.state === 'blocked') {
      const to: VolumeState = step === 'release' || step === 'clean' || step === 'umount' ? 'unmounting' : this.recovery ? 'recovering' : 'mounting';
      this.go(to, now, ev, `${step} succeeded on retry`);
    }
    switch (step) {
      case 'claim':
        ev.push({ do: 'writeLvb', lvb: encodeRecordLvb(this.rec!) });
        this.driver('mount', 'mount', ev);
        return;
      case 'mount':
        if (this.recovery) { this.driver('recover', 'afterRecovery', ev); return; }
        return this.finalize(now, ev);
      case 'recover':
        return this.finalize(now, ev);
      case 'finalize':
        this.step = null;
        ev.push({ do: 'writeLvb', lvb: encodeRecordLvb(this.rec!) });
        if (this.state !== 'mounted') this.go('mounted', now, ev, 'volume record stored');
        this.reply(ev, 'mount', true, this.mountedMessage());
        return;
      case 'umount':
        this.mountIssued = false;
        this.mountInDoubt = false;
        if (this.rec?.state === 'recovering' || this.rec?.state === 'mounting') {
          // Gave up before the volume was in use: leave the record unclean, the next owner recovers.
          this.release('unmounted', undefined, now, ev, 'unmounted; the next owner recovers');
          return;
        }
        this.store('clean', this.bump({ state: 'clean', recovering: undefined }), ev);
        return;
      case 'clean':
        this.release(this.releaseTo, encodeRecordLvb(this.rec!), now, ev, 'clean record stored; giving ownership back');
        return;
      case 'release': {
        const to = this.releaseTo;
        const reason = this.reason;
        this.forget();
        this.releaseTo = 'unmounted';
        if (to === 'standby') this.queueStandby(now, ev, 'ownership given back; queued again as a standby');
        else this.go('unmounted', now, ev, 'ownership given back');
        if (reason && to === 'unmounted') this.reason = reason;
        this.reply(ev, 'umount', true, `volume ${this.name} unmounted and released by node ${this.o.node}`);
        this.failAll(ev, 'CANCELLED', reason ?? `volume ${this.name} released`);
        return;
      }
      case 'clear': {
        this.mountIssued = false;
        this.forget();
        if (this.o.afterClear === 'standby' || this.standbyWanted) this.queueStandby(now, ev, 'fence cleared; queued again as a standby');
        else this.go('unmounted', now, ev, 'fence cleared');
        this.reply(ev, 'umount', true, `fence of ${this.name} cleared on node ${this.o.node}`);
        return;
      }
      default:
        return;
    }
  }

  /** After the mount (and the recovery step): the record says mounted. */
  private finalize(now: number, ev: VolumeEffect[]): void {
    const r = this.recovery;
    const lastRecovery: RecoveryInfo | undefined = r
      ? { by: this.o.node, of: r.of, fromGeneration: r.fromGeneration, ofGeneration: r.generation, at: this.o.wallNow(), ms: Math.round(now - this.grantedAt) }
      : this.rec!.lastRecovery;
    this.store('finalize', this.bump({ state: 'mounted', recovering: undefined, ...(lastRecovery ? { lastRecovery } : {}) }), ev);
    this.recovery = undefined;
    this.takingOver = false;
    this.go('mounted', now, ev, r ? `recovered node ${r.of}'s generation ${r.generation}; mounted` : 'mounted');
  }

  private mountedMessage(): string {
    const r = this.rec!;
    const lr = r.lastRecovery;
    const rec = lr && lr.by === this.o.node && lr.ofGeneration + 1 === r.generation
      ? `; recovered node ${lr.of}'s generation ${lr.fromGeneration === lr.ofGeneration ? lr.ofGeneration : `${lr.fromGeneration}..${lr.ofGeneration}`} in ${lr.ms} ms` : '';
    return `volume ${this.name} mounted on node ${this.o.node}, generation ${r.generation}${rec}`;
  }

  private onFailed(code: VolumeReplyCode, message: string, now: number, ev: VolumeEffect[], inDoubt: boolean): void {
    switch (this.step) {
      case 'mount':
        // UMOUNT_FAILED: the driver could not tell whether the mount happened and could not
        // undo it. Until an umount or a fence succeeds the volume may be mounted here: keep the
        // lock and mountIssued (blocked; an operator's umount or a lost lock unmounts or fences first).
        if (code === 'UMOUNT_FAILED') this.mountInDoubt = true;
        if (this.mountInDoubt) return this.block(code, message, now, ev);
        if (!this.recovery && this.state !== 'blocked') {
          // A clean mount failed: nothing of ours is mounted; say clean again and give the volume back.
          this.mountIssued = false;
          this.failAll(ev, code, message);
          this.go('unmounting', now, ev, `mount failed: ${message}`);
          this.store('clean', this.bump({ state: 'clean' }), ev);
          return;
        }
        this.mountIssued = false;
        return this.block(code, message, now, ev);
      case 'finalize': {
        // Mounted, but the record did not reach a majority: keep using the volume, retry in the background.
        const retries = this.blockedInfo ? this.blockedInfo.retries + 1 : 0;
        const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(retries, 10));
        this.blockedInfo = { reason: message, code, since: this.blockedInfo?.since ?? now, retries, retryAt: now + delay };
        this.reason = `mounted; the record is not stored on a majority yet: ${message}`;
        ev.push({ do: 'timer', op: ++this.op, ms: delay });
        return;
      }
      case 'umount':
        if (inDoubt) {
          // Whether it is still mounted is unknown (umount_cmd past its timeout): not back to
          // 'mounted' as if in use, but blocked at 'umount', owned and possibly mounted (as a
          // mount in doubt is), the umount retried with backoff until it succeeds or the node
          // is fenced. The operator's umount is answered now.
          const why = `${message}; the volume may still be mounted here: blocked, the umount is retried`;
          this.reply(ev, 'umount', false, `${why} ('mxfsctl volumes ${this.name}' shows when it is done)`, 'UMOUNT_FAILED');
          return this.block(code, why, now, ev);
        }
        if (this.state === 'unmounting' && this.rec?.state === 'mounted') {
          this.step = null;
          this.go('mounted', now, ev, `umount failed: ${message}`);
          this.reply(ev, 'umount', false, message, 'UMOUNT_FAILED');
          return;
        }
        return this.block(code, message, now, ev);
      case 'clear':
        this.step = null;
        this.reason = `fenced; clearing failed: ${message}`;
        this.reply(ev, 'umount', false, `cannot clear the fence of ${this.name}: ${message}`, 'UMOUNT_FAILED');
        return;
      case 'read': case 'prove': case 'claim': case 'recover': case 'clean': case 'release':
        return this.block(code, message, now, ev);
      default:
        return;
    }
  }

  private retry(now: number, ev: VolumeEffect[]): void {
    this.blockedInfo!.retryAt = null;
    const step = this.step!;
    switch (step) {
      case 'read': ev.push({ do: 'read', op: this.begin('read') }); return;
      case 'prove': {
        const p = this.prev!;
        ev.push({ do: 'prove', op: this.begin('prove'), owner: p.owner, generation: p.generation, fenceBoundMs: p.fenceBoundMs });
        return;
      }
      case 'claim': case 'clean': case 'finalize': ev.push({ do: 'store', op: this.begin(step), record: this.rec! }); return;
      case 'mount': this.driver('mount', 'mount', ev); return;
      case 'recover': this.driver('recover', 'afterRecovery', ev); return;
      case 'umount': this.driver('umount', 'umount', ev); return;
      case 'release': ev.push({ do: 'unlock', op: this.begin('release') }); return;
      default: return;
    }
  }

  private onLost(reason: string, now: number, ev: VolumeEffect[]): void {
    switch (this.state) {
      case 'unmounted':
        return;
      case 'fenced':
        this.holding = false;
        return;
      case 'standby':
        this.forget();
        this.op++;
        this.go('unmounted', now, ev, `standby request lost: ${reason}`);
        this.requeueLater(`standby request lost (${reason})`, ev);
        return;
      default: {
        // A standby's takeover cut short: still wanted (see takingOver).
        const again = this.takingOver;
        if (this.mountIssued || this.state === 'mounted') {
          this.startFence(reason, now, ev);
          if (again) this.standbyWanted = true;
          return;
        }
        // Nothing of ours can be mounted: drop the attempt.
        this.forget();
        this.op++;
        this.go('unmounted', now, ev, `ownership lost before anything was mounted: ${reason}`);
        this.failAll(ev, 'LOST', `ownership of ${this.name} lost: ${reason}`);
        if (!again) { this.reason = `ownership lost: ${reason}`; return; }
        this.standbyWanted = true;
        this.requeueLater(`takeover as a standby lost (${reason})`, ev);
      }
    }
  }

  /**
   * A standby's lock (or its queued request) is gone: queued again on the next rejoin — and
   * after RETRY_BASE_MS, doubling up to RETRY_MAX_MS while the requests keep failing, since the
   * lock can go while the node stays quorate (its own session timed out in a long turn of the
   * lock engine's thread, or the daemon was stopped for longer than client_timeout_ms), and
   * then no rejoin comes. Without quorum the request fails at once and is retried on that
   * backoff; the rejoin queues it at once.
   */
  private requeueLater(what: string, ev: VolumeEffect[]): void {
    // Backoff (1, 2, 4 … 30 s) while the requests keep failing (without quorum they fail at once).
    const ms = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(this.requeues++, 10));
    this.reason = `${what}; queued again in ${ms} ms or once the node is back in a quorate view`;
    ev.push({ do: 'timer', op: this.op, ms });
  }
}
