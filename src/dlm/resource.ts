/**
 * ResourceCore: the lock state of one resource, as a pure synchronous state machine.
 *
 * It owns the three queues (granted, converting, waiting), the lock value block and the
 * fencing-token counter. Every operation validates first, then mutates, then returns the
 * events it caused (grants, failures, blocking callbacks) in order; it never does I/O or
 * reads the clock, so the LockResource actor, the property tests and (later) a simulated
 * cluster all drive the same code.
 *
 * Stages of a request (cf. the comment at the top of fs/dlm/lock.c):
 *   request()/convert() -> grantable now? -> grant            -> 'granted'
 *                                         -> NOQUEUE?        -> 'failed' NOTQUEUED
 *                                         -> deadlock?       -> 'failed' DEADLOCK (conversion only)
 *                                         -> queue + BASTs   -> 'queued' (+ 'bast' to blockers)
 *   unlock()/cancel()/expire()/purgeOwner() -> remove -> grantPending() -> grants + BASTs
 *
 * Rules (docs/dlm-protocol.md has the rationale):
 *  - New requests are granted at once only if nothing is converting or waiting and the mode
 *    is compatible with every granted lock; otherwise they queue FIFO (no starvation).
 *  - Down-conversions are granted in place at once. Up-conversions (and the PR<->CW middle
 *    conversions) are granted at once only if nothing else is converting; otherwise they
 *    queue FIFO, ahead of every new request.
 *  - A queued conversion X deadlocks when some conversion ahead of it wants a mode that X's
 *    granted mode blocks (ahead waits for X's grant, X waits for ahead by FIFO). The
 *    conversion that would close the cycle (the later one) fails with DEADLOCK and keeps
 *    its granted mode: deterministic, and the earlier converter proceeds.
 *  - Every granted lock that blocks a queued request gets one BAST per grant with the
 *    highest mode wanted (tracked by highBast, reset whenever the lock is (re)granted).
 *  - Tokens: every grant in PW or EX takes ++counter; other grants carry the counter as is.
 */
import { COMPAT, Mode, compatible, isDownConversion, isWriteMode } from './modes';
import { Grant, LockError, LockErrorCode } from './types';

export type OwnerId = string;

interface Lock {
  readonly id: string;
  readonly owner: OwnerId;
  /** Granted mode, or null while the first request waits. */
  grMode: Mode | null;
  /** Requested mode while waiting or converting, else null. */
  rqMode: Mode | null;
  /** The token of its grant, as an offset from its core's token base (see TokenRange). */
  tok: number;
  /** Highest mode a BAST was sent for since the last grant; -1 = none. */
  highBast: number;
  /**
   * The caller's, never read here: what it passed with the request (the LockResource actor:
   * where the owner's events go), carried on every event about this lock.
   */
  readonly tag: unknown;
  /** The caller's, never read here: set by stamp() (the actor: when the lock was last granted); UNSTAMPED until then. */
  since: number;
}

export type ResourceEvent =
  | { type: 'granted'; lockId: string; owner: OwnerId; tag: unknown; conversion: boolean; grant: Grant }
  | { type: 'failed'; lockId: string; owner: OwnerId; tag: unknown; conversion: boolean; code: LockErrorCode }
  | { type: 'queued'; lockId: string; owner: OwnerId; tag: unknown; conversion: boolean }
  | { type: 'bast'; lockId: string; owner: OwnerId; tag: unknown; mode: Mode }
  | { type: 'released'; lockId: string; owner: OwnerId; tag: unknown };

export interface RequestOpts { noqueue?: boolean }
export interface ConvertOpts { noqueue?: boolean; lvb?: Buffer }

export interface LockView { lockId: string; owner: OwnerId; grMode: Mode | null; rqMode: Mode | null; token: number }
export interface ResourceView {
  tokenCounter: number;
  lvbValid: boolean;
  lvb: Buffer;
  granted: LockView[];
  converting: LockView[];
  waiting: LockView[];
}

/** A lock as a survivor records it, for rebuilding a resource (recovery, restart). */
export interface LockRecordForRebuild { lockId: string; owner: OwnerId; grMode: Mode; token: number; tag?: unknown }

/**
 * The converting and waiting queues of a resource nobody waits on (most of them: a held lock
 * with no contention) are this one shared, frozen empty array; a resource gets its own on the
 * first queued lock (enqueue()). Memory per held lock, bench/heap-per-lock.ts.
 */
const NO_LOCKS: Lock[] = Object.freeze([]) as unknown as Lock[];

/**
 * Fencing tokens are above 2^32 in any running daemon (epoch E's are above E * 2^32): a double,
 * boxed in a 16-byte heap number in every object that holds one. A core keeps its counter and
 * its locks' tokens as offsets from a base shared by every resource of its ceiling (an epoch):
 * small integers, stored in the object itself. A base of ceiling - 2^32 (0 without a ceiling).
 *
 * The offset fields are first set to undefined (see newLock): V8 then keeps them "tagged", so a
 * lock that kept an older epoch's token (a large negative offset, boxed) does not make every
 * other lock's offset field a boxed double as well.
 */
interface TokenRange { readonly ceiling: number; readonly base: number }
const NO_CEILING: TokenRange = { ceiling: Number.MAX_SAFE_INTEGER, base: 0 };
/** The range of the latest ceiling (one per epoch): what every new core of that epoch shares. */
let latestRange: TokenRange = NO_CEILING;
function rangeOf(ceiling: number): TokenRange {
  if (ceiling === Number.MAX_SAFE_INTEGER) return NO_CEILING;
  if (latestRange.ceiling !== ceiling) latestRange = { ceiling, base: Math.max(0, ceiling - 2 ** 32) };
  return latestRange;
}

/** x as a small integer when it is one (a difference of doubles is a heap number even when it is 0). */
const small = (x: number): number => ((x | 0) === x ? x | 0 : x);

/** A lock's `since` before its first stamp() (the smallest small integer, see Lock.since). */
export const UNSTAMPED = -(2 ** 30);

function newLock(id: string, owner: OwnerId, rqMode: Mode | null, tok: number, tag: unknown): Lock {
  const lk: Lock = { id, owner, grMode: null, rqMode, tok: undefined as unknown as number, highBast: -1, tag, since: UNSTAMPED };
  lk.tok = small(tok);
  return lk;
}

export class ResourceCore {
  /**
   * The locks by id: the only one in `one` (its id is its key), a Map from the second on (kept
   * from then on; `one` is then unused). A separate map object cost ~40 B per held lock
   * (bench/heap-per-lock.ts); a Map's table alone is ~320 B. Insertion order, as a Map's.
   */
  private one: Lock | undefined = undefined;
  private many: Map<string, Lock> | undefined = undefined;
  /** Shared NO_LOCKS until the first grant, then an array of its own (made with its lock). */
  private granted: Lock[] = NO_LOCKS;
  private converting: Lock[] = NO_LOCKS;
  private waiting: Lock[] = NO_LOCKS;
  /**
   * grantedCount[m] = number of granted locks whose granted mode is m; made when a second lock
   * is granted (until then the one granted lock is its own count: see modeCount()).
   */
  private grantedCount: number[] | undefined = undefined;
  /** The token counter, as an offset from range.base. */
  private rel: number = undefined as unknown as number; // tagged: see TokenRange
  private readonly range: TokenRange;
  /** The lock value block; undefined while it is all zeros (never written: most resources). */
  private lvbBuf: Buffer | undefined;
  private lvbOk = false;

  /**
   * @param tokenFloor   tokens issued here are all above this
   * @param tokenCeiling no token reaches this: once the counter is one below it, PW/EX
   *   requests are not grantable (they wait; NOQUEUE fails). In a cluster it is the start of
   *   the next epoch's range, so tokens of two epochs can never overlap.
   */
  constructor(readonly lvbSize: number, tokenFloor = 0, tokenCeiling = Number.MAX_SAFE_INTEGER) {
    this.range = rangeOf(tokenCeiling);
    this.rel = small(tokenFloor - this.range.base);
  }

  // ---- the locks by id (one, many) ----
  private get lockCount(): number { return this.many !== undefined ? this.many.size : this.one === undefined ? 0 : 1; }
  private lockGet(id: string): Lock | undefined {
    if (this.many !== undefined) return this.many.get(id);
    return this.one !== undefined && this.one.id === id ? this.one : undefined;
  }
  private lockHas(id: string): boolean { return this.lockGet(id) !== undefined; }
  /** `lk.id` must be `id`. */
  private lockSet(id: string, lk: Lock): void {
    if (this.many !== undefined) this.many.set(id, lk);
    else if (this.one === undefined || this.one.id === id) this.one = lk;
    else { this.many = new Map([[this.one.id, this.one], [id, lk]]); this.one = undefined; }
  }
  private lockDelete(id: string): boolean {
    if (this.many !== undefined) return this.many.delete(id);
    if (this.one === undefined || this.one.id !== id) return false;
    this.one = undefined;
    return true;
  }
  private lockValues(): Iterable<Lock> {
    if (this.many !== undefined) return this.many.values();
    return this.one === undefined ? NO_LOCKS : [this.one];
  }

  get tokenCeiling(): number { return this.range.ceiling; }
  private get counter(): number { return this.range.base + this.rel; }
  private tokenOf(lk: Lock): number { return this.range.base + lk.tok; }

  get tokenCounter(): number { return this.counter; }
  get lvbValid(): boolean { return this.lvbOk; }
  get size(): number { return this.lockCount; }
  isIdle(): boolean { return this.lockCount === 0; }
  has(lockId: string): boolean { return this.lockHas(lockId); }
  ownerOf(lockId: string): OwnerId | undefined { return this.lockGet(lockId)?.owner; }
  tagOf(lockId: string): unknown { return this.lockGet(lockId)?.tag; }

  /** Set a lock's `since` (the caller's value, see Lock.since); nothing if there is no such lock. */
  stamp(lockId: string, since: number): void {
    const lk = this.lockGet(lockId);
    if (lk) lk.since = since;
  }

  /** Every lock's id, tag and since, in the order the locks were made. */
  *tagged(): IterableIterator<[lockId: string, tag: unknown, since: number]> {
    for (const lk of this.lockValues()) yield [lk.id, lk.tag, lk.since];
  }

  // ---- operations ------------------------------------------------------------------

  /** `tag`: the caller's, carried on every event about this lock (see Lock.tag). */
  request(lockId: string, owner: OwnerId, mode: Mode, opts: RequestOpts = {}, tag?: unknown): ResourceEvent[] {
    if (this.lockHas(lockId)) throw new LockError('INVALID', `lock id ${lockId} already in use`);
    const lk = newLock(lockId, owner, mode, 0, tag);
    const ev: ResourceEvent[] = [];
    if (this.converting.length === 0 && this.waiting.length === 0 && this.grantableAgainstGranted(lk, mode)) {
      this.lockSet(lockId, lk);
      this.grant(lk, mode, false, ev);
      this.bastNewHolder(lk, ev);
      return ev;
    }
    if (opts.noqueue) {
      ev.push({ type: 'failed', lockId, owner, tag, conversion: false, code: 'NOTQUEUED' });
      return ev;
    }
    this.lockSet(lockId, lk);
    this.enqueue('waiting', lk);
    ev.push({ type: 'queued', lockId, owner, tag, conversion: false });
    this.bastBlockers(lk, mode, ev);
    return ev;
  }

  convert(lockId: string, mode: Mode, opts: ConvertOpts = {}): ResourceEvent[] {
    const lk = this.get(lockId);
    if (lk.grMode === null || lk.rqMode !== null) throw new LockError('BUSY', `lock ${lockId} has a request in progress`);
    this.checkLvb(opts.lvb);
    const ev: ResourceEvent[] = [];
    if (opts.lvb && isWriteMode(lk.grMode)) this.writeLvb(opts.lvb);
    const from = lk.grMode;
    if (mode === from || isDownConversion(from, mode)) {
      this.setGranted(lk, mode);
      this.grant(lk, mode, true, ev);
      this.grantPending(ev); // a lower mode may unblock others
      this.bastNewHolder(lk, ev);
      return ev;
    }
    lk.rqMode = mode;
    if (this.converting.length === 0 && this.grantableAgainstGranted(lk, mode)) {
      this.grant(lk, mode, true, ev);
      // A middle conversion (CW->PR, PR->CW) can unblock waiters wanting the new mode.
      this.grantPending(ev);
      this.bastNewHolder(lk, ev);
      return ev;
    }
    if (opts.noqueue) {
      lk.rqMode = null;
      ev.push({ type: 'failed', lockId, owner: lk.owner, tag: lk.tag, conversion: true, code: 'NOTQUEUED' });
      return ev;
    }
    for (const ahead of this.converting) {
      if (!compatible(ahead.rqMode!, from)) {
        lk.rqMode = null;
        ev.push({ type: 'failed', lockId, owner: lk.owner, tag: lk.tag, conversion: true, code: 'DEADLOCK' });
        return ev;
      }
    }
    this.enqueue('converting', lk);
    ev.push({ type: 'queued', lockId, owner: lk.owner, tag: lk.tag, conversion: true });
    this.bastBlockers(lk, mode, ev);
    return ev;
  }

  /**
   * Release a lock. A pending conversion is cancelled first; a request that was never
   * granted is cancelled. `lvb` is written back when the lock is held in PW or EX.
   */
  unlock(lockId: string, lvb?: Buffer): ResourceEvent[] {
    const lk = this.get(lockId);
    this.checkLvb(lvb);
    const ev: ResourceEvent[] = [];
    if (lk.rqMode !== null) this.withdraw(lk, 'CANCELLED', ev);
    if (lk.grMode !== null) {
      if (lvb && isWriteMode(lk.grMode)) this.writeLvb(lvb);
      this.removeGranted(lk);
    }
    this.lockDelete(lockId);
    // The id kept since the request (equal to the caller's): the older string (the trace's ring keeps it, src/trace/recorder.ts, adopt).
    ev.push({ type: 'released', lockId: lk.id, owner: lk.owner, tag: lk.tag });
    this.grantPending(ev);
    return ev;
  }

  /** Withdraw a waiting request or a pending conversion (CANCELLED). */
  cancel(lockId: string): ResourceEvent[] {
    return this.endPending(lockId, 'CANCELLED');
  }

  /** The wait timeout of a pending request or conversion expired (TIMEOUT). */
  expire(lockId: string): ResourceEvent[] {
    const lk = this.lockGet(lockId);
    if (!lk || lk.rqMode === null) return []; // already granted or gone: the timer lost the race
    return this.endPending(lockId, 'TIMEOUT');
  }

  /**
   * Drop every lock of an owner that went away (client disconnected, node dead). No events
   * go to that owner. An LVB held in PW/EX by it becomes invalid: it may have been
   * modified under the lock and never written back.
   */
  purgeOwner(owner: OwnerId): ResourceEvent[] {
    const ev: ResourceEvent[] = [];
    let removed = false;
    for (const lk of [...this.lockValues()]) {
      if (lk.owner !== owner) continue;
      removed = true;
      if (lk.rqMode !== null) this.removeFromQueue(lk);
      if (lk.grMode !== null) {
        if (isWriteMode(lk.grMode)) this.lvbOk = false;
        this.removeGranted(lk);
      }
      this.lockDelete(lk.id);
    }
    if (removed) this.grantPending(ev);
    return ev.filter((e) => e.owner !== owner);
  }

  /** Rebuild granted state from the holders' own records (recovery). */
  static rebuild(lvbSize: number, tokenFloor: number, records: LockRecordForRebuild[], lvb?: { data: Buffer; valid: boolean }, tokenCeiling?: number): ResourceCore {
    const core = new ResourceCore(lvbSize, tokenFloor, tokenCeiling);
    core.load(tokenFloor, records, lvb);
    return core;
  }

  /**
   * rebuild() in place, for a subclass that is its own core (the LockResource actor): only on
   * a core that is new (nothing requested yet), whose counter it sets from tokenFloor and the
   * records' tokens.
   */
  protected load(tokenFloor: number, records: LockRecordForRebuild[], lvb?: { data: Buffer; valid: boolean }): void {
    const core = this as ResourceCore;
    if (core.lockCount !== 0) throw new Error('ResourceCore.load: the core is not new');
    const lvbSize = core.lvbSize;
    const maxToken = records.reduce((m, r) => Math.max(m, r.token), tokenFloor);
    core.rel = small(maxToken - core.range.base);
    for (const r of records) {
      if (core.lockHas(r.lockId)) throw new LockError('INVALID', `duplicate lock id ${r.lockId} in rebuild`);
      const lk = newLock(r.lockId, r.owner, null, r.token - core.range.base, r.tag);
      for (const other of core.granted) {
        if (!compatible(other.grMode!, r.grMode)) throw new LockError('INVALID', `rebuild records ${r.lockId} and ${other.id} are incompatible`);
      }
      core.lockSet(lk.id, lk);
      core.setGranted(lk, r.grMode);
    }
    if (lvb) { core.lvbBuf = Buffer.alloc(lvbSize); lvb.data.copy(core.lvbBuf, 0, 0, Math.min(lvbSize, lvb.data.length)); core.lvbOk = lvb.valid; }
  }

  view(): ResourceView {
    const v = (lk: Lock): LockView => ({ lockId: lk.id, owner: lk.owner, grMode: lk.grMode, rqMode: lk.rqMode, token: this.tokenOf(lk) });
    return {
      tokenCounter: this.counter,
      lvbValid: this.lvbOk,
      lvb: this.lvbCopy(),
      granted: this.granted.map(v),
      converting: this.converting.map(v),
      waiting: this.waiting.map(v),
    };
  }

  /** Locks that are pending (waiting or converting), for the timer bookkeeping of the actor. */
  isPending(lockId: string): boolean { return this.lockGet(lockId)?.rqMode != null; }

  // ---- internals -------------------------------------------------------------------

  private get(lockId: string): Lock {
    const lk = this.lockGet(lockId);
    if (!lk) throw new LockError('NOTFOUND', `no lock ${lockId}`);
    return lk;
  }

  private checkLvb(lvb: Buffer | undefined): void {
    if (lvb && lvb.length > this.lvbSize) throw new LockError('INVALID', `LVB of ${lvb.length} bytes exceeds the lock value block size ${this.lvbSize}`);
  }

  private writeLvb(lvb: Buffer): void {
    const buf = (this.lvbBuf ??= Buffer.alloc(this.lvbSize));
    buf.fill(0);
    lvb.copy(buf);
    this.lvbOk = true;
  }

  /** A copy of the lock value block for a grant or a view (the holder may keep it). */
  private lvbCopy(): Buffer {
    // allocUnsafe takes small buffers from Node's shared pool (Buffer.alloc gives each its own
    // ArrayBuffer); every byte is written here.
    const b = Buffer.allocUnsafe(this.lvbSize);
    if (this.lvbBuf === undefined) b.fill(0);
    else this.lvbBuf.copy(b);
    return b;
  }

  private enqueue(q: 'waiting' | 'converting', lk: Lock): void {
    if (this[q] === NO_LOCKS) this[q] = [lk];
    else this[q].push(lk);
  }

  /** Is `mode` compatible with every granted lock other than lk itself (and a token left)? */
  private grantableAgainstGranted(lk: Lock, mode: Mode): boolean {
    if (isWriteMode(mode) && this.counter + 1 >= this.tokenCeiling) return false;
    const row = COMPAT[mode]!;
    for (let g = 0; g < 6; g++) {
      const n = this.modeCount(g) - (lk.grMode === g ? 1 : 0);
      if (n > 0 && !row[g]) return false;
    }
    return true;
  }

  /** How many granted locks have granted mode m. */
  private modeCount(m: number): number {
    if (this.grantedCount !== undefined) return this.grantedCount[m]!;
    return this.granted.length > 0 && this.granted[0]!.grMode === m ? 1 : 0;
  }

  private setGranted(lk: Lock, mode: Mode): void {
    if (lk.grMode === null) {
      if (this.granted === NO_LOCKS) this.granted = [lk];
      else {
        if (this.grantedCount === undefined) { // a second granted lock: count from now on
          this.grantedCount = [0, 0, 0, 0, 0, 0];
          for (const g of this.granted) this.grantedCount[g.grMode!]!++;
        }
        this.granted.push(lk);
      }
    } else if (this.grantedCount !== undefined) this.grantedCount[lk.grMode]!--;
    lk.grMode = mode;
    if (this.grantedCount !== undefined) this.grantedCount[mode]!++;
  }

  private removeGranted(lk: Lock): void {
    if (this.grantedCount !== undefined) this.grantedCount[lk.grMode!]!--;
    const i = this.granted.indexOf(lk);
    if (i >= 0) this.granted.splice(i, 1);
    lk.grMode = null;
  }

  private removeFromQueue(lk: Lock): void {
    const q = lk.grMode === null ? this.waiting : this.converting;
    const i = q.indexOf(lk);
    if (i >= 0) q.splice(i, 1);
    lk.rqMode = null;
  }

  private grant(lk: Lock, mode: Mode, conversion: boolean, ev: ResourceEvent[]): void {
    if (lk.grMode !== mode) this.setGranted(lk, mode);
    lk.rqMode = null;
    lk.highBast = -1;
    if (isWriteMode(mode)) this.rel = small(this.rel + 1); // below tokenCeiling: checked by grantableAgainstGranted
    lk.tok = this.rel;
    ev.push({
      type: 'granted', lockId: lk.id, owner: lk.owner, tag: lk.tag, conversion,
      grant: { mode, token: this.counter, lvb: this.lvbCopy(), lvbValid: this.lvbOk },
    });
  }

  private endPending(lockId: string, code: LockErrorCode): ResourceEvent[] {
    const lk = this.get(lockId);
    if (lk.rqMode === null) throw new LockError('BUSY', `lock ${lockId} has no pending request`);
    const ev: ResourceEvent[] = [];
    this.withdraw(lk, code, ev);
    if (lk.grMode === null) this.lockDelete(lockId);
    this.grantPending(ev);
    return ev;
  }

  private withdraw(lk: Lock, code: LockErrorCode, ev: ResourceEvent[]): void {
    const conversion = lk.grMode !== null;
    this.removeFromQueue(lk);
    ev.push({ type: 'failed', lockId: lk.id, owner: lk.owner, tag: lk.tag, conversion, code });
  }

  /** Grant what the queues allow, conversions first, both FIFO; then BAST the new holders. */
  private grantPending(ev: ResourceEvent[]): void {
    const newly: Lock[] = [];
    while (this.converting.length > 0) {
      const head = this.converting[0]!;
      if (!this.grantableAgainstGranted(head, head.rqMode!)) break;
      this.converting.shift();
      this.grant(head, head.rqMode!, true, ev);
      newly.push(head);
    }
    if (this.converting.length === 0) {
      while (this.waiting.length > 0) {
        const head = this.waiting[0]!;
        if (!this.grantableAgainstGranted(head, head.rqMode!)) break;
        this.waiting.shift();
        this.grant(head, head.rqMode!, false, ev);
        newly.push(head);
      }
    }
    for (const lk of newly) this.bastNewHolder(lk, ev);
  }

  /** A request for `mode` was queued: tell every granted lock that blocks it. */
  private bastBlockers(req: Lock, mode: Mode, ev: ResourceEvent[]): void {
    for (const g of this.granted) {
      if (g !== req && !compatible(g.grMode!, mode)) this.bast(g, mode, ev);
    }
  }

  /** A lock was (re)granted: if its mode blocks any queued request, tell it once. */
  private bastNewHolder(lk: Lock, ev: ResourceEvent[]): void {
    let want = -1;
    for (const q of this.converting) if (q !== lk && !compatible(lk.grMode!, q.rqMode!) && q.rqMode! > want) want = q.rqMode!;
    for (const q of this.waiting) if (!compatible(lk.grMode!, q.rqMode!) && q.rqMode! > want) want = q.rqMode!;
    if (want >= 0) this.bast(lk, want as Mode, ev);
  }

  private bast(g: Lock, mode: Mode, ev: ResourceEvent[]): void {
    if (mode <= g.highBast) return;
    g.highBast = mode;
    ev.push({ type: 'bast', lockId: g.id, owner: g.owner, tag: g.tag, mode });
  }
}

/**
 * An order in which to queue conversions again (recovery re-issues them on the new master, whose
 * queue order is lost) that does not make a deadlock: X may go ahead of Y only if X's requested
 * mode is compatible with Y's granted mode (the check convert() makes, so a deadlock-free queue
 * is one where it never fires). The queue they came from was such an order, and so is any subset
 * of it, so one exists; among the possible ones, the first by `prefer` goes first (default: the
 * smallest lock id; recovery prefers the longest waiting, the old queue's order). If there is
 * none (not from a correct cluster), the first by `prefer` goes first and convert() fails what
 * closes a cycle, as before. Cost: O(n) per conversion over 36 (granted, requested) classes.
 */
export function deadlockFreeOrder<T extends { lockId: string; grMode: Mode | null; rqMode: Mode | null }>(
  conversions: readonly T[], prefer: (a: T, b: T) => number = (a, b) => (a.lockId < b.lockId ? -1 : a.lockId > b.lockId ? 1 : 0),
): T[] {
  const byId = prefer;
  const classes = new Map<number, T[]>();
  const grCount = [0, 0, 0, 0, 0, 0];
  for (const x of [...conversions].sort(byId)) {
    const k = x.grMode! * 6 + x.rqMode!;
    const c = classes.get(k);
    if (c) c.push(x); else classes.set(k, [x]);
    grCount[x.grMode!]!++;
  }
  const heads = new Map<number, number>(); // class -> index of its next lock
  const out: T[] = [];
  while (out.length < conversions.length) {
    let pick: number | undefined, fallback: number | undefined;
    for (const [k, c] of classes) {
      const x = c[heads.get(k) ?? 0];
      if (x === undefined) continue;
      if (fallback === undefined || byId(x, classes.get(fallback)![heads.get(fallback) ?? 0]!) < 0) fallback = k;
      // x can go ahead of every remaining conversion if its mode is compatible with their granted modes
      let ok = true;
      for (let m = 0; m < 6 && ok; m++) if (grCount[m]! - (x.grMode === m ? 1 : 0) > 0 && !compatible(x.rqMode!, m)) ok = false;
      if (ok && (pick === undefined || byId(x, classes.get(pick)![heads.get(pick) ?? 0]!) < 0)) pick = k;
    }
    const k = pick ?? fallback!;
    const i = heads.get(k) ?? 0;
    const x = classes.get(k)![i]!;
    heads.set(k, i + 1);
    grCount[x.grMode!]!--;
    out.push(x);
  }
  return out;
}
