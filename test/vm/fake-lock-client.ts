/**
 * A small in-process LockClient for the kernel-bridge tests and the VM driver: one node,
 * the real compatibility matrix, FIFO waiters, a blocking callback ('bast') to holders that
 * block a waiter, NOQUEUE, timeouts and cancellation (AbortSignal), conversions that are
 * granted when compatible (else NOTQUEUED), and the LVB written back from PW/EX by unlock and
 * convert. Not the lock engine: just enough to exercise the bridge without the daemon.
 */
import { EventEmitter } from 'node:events';
import { compatible, isWriteMode, Mode } from '../../src/dlm/modes';
import { DEFAULT_LOCKSPACE, LockError, type Grant } from '../../src/dlm/types';
import type { ConvertOptions, LockClient, LockHandle, LockOptions, UnlockOptions } from '../../src/client/api';

interface Waiter { mode: Mode; resolve(h: LockHandle): void; reject(e: Error): void; timer?: NodeJS.Timeout }

class FakeHandle extends EventEmitter implements LockHandle {
  released = false;
  get valid(): boolean { return !this.released; }
  constructor(readonly owner: FakeLockClient, readonly lockspace: string, readonly resource: string, public grant: Grant) {
    super();
  }
  convert(mode: Mode, opts: ConvertOptions = {}): Promise<Grant> {
    if (this.released) return Promise.reject(new LockError('NOTFOUND'));
    this.owner.conversions.push({ resource: this.resource, from: this.grant.mode, to: mode, lvb: opts.lvb });
    if (!this.owner.compatibleWithOthers(this, mode)) return Promise.reject(new LockError('NOTQUEUED'));
    if (opts.lvb && isWriteMode(this.grant.mode)) this.owner.lvbs.set(this.owner.keyOf(this), Buffer.from(opts.lvb));
    this.grant = { ...this.grant, mode, lvb: this.owner.lvbOf(this), lvbValid: this.owner.lvbs.has(this.owner.keyOf(this)) };
    this.owner.release(this, true);
    return Promise.resolve(this.grant);
  }
  async unlock(opts: UnlockOptions = {}): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (opts.lvb && isWriteMode(this.grant.mode)) this.owner.lvbs.set(this.owner.keyOf(this), Buffer.from(opts.lvb));
    this.owner.release(this);
  }
}

export class FakeLockClient extends EventEmitter implements LockClient {
  private held = new Map<string, FakeHandle[]>();
  private waiters = new Map<string, Waiter[]>();
  private tokens = new Map<string, number>();
  /** Value blocks by lockspace + resource, as written back from PW/EX. */
  readonly lvbs = new Map<string, Buffer>();
  readonly conversions: Array<{ resource: string; from: Mode; to: Mode; lvb?: Buffer }> = [];
  calls = 0;

  keyOf(h: FakeHandle): string { return `${h.lockspace}\0${h.resource}`; }
  lvbOf(h: FakeHandle): Buffer { return Buffer.from(this.lvbs.get(this.keyOf(h)) ?? Buffer.alloc(0)); }
  compatibleWithOthers(h: FakeHandle, mode: Mode): boolean {
    return (this.held.get(this.keyOf(h)) ?? []).every((x) => x === h || compatible(x.grant.mode, mode));
  }

  lock(resource: string, mode: Mode, opts: LockOptions = {}): Promise<LockHandle> {
    this.calls++;
    const key = `${opts.lockspace ?? DEFAULT_LOCKSPACE}\0${resource}`;
    return new Promise<LockHandle>((resolve, reject) => {
      const holders = this.held.get(key) ?? [];
      const queue = this.waiters.get(key) ?? [];
      if (queue.length === 0 && holders.every((h) => compatible(h.grant.mode, mode))) {
        resolve(this.grant(key, opts.lockspace ?? DEFAULT_LOCKSPACE, resource, mode));
        return;
      }
      if (opts.noqueue) {
        reject(new LockError('NOTQUEUED'));
        return;
      }
      const w: Waiter = { mode, resolve, reject };
      if (opts.timeoutMs) {
        w.timer = setTimeout(() => {
          const q = this.waiters.get(key) ?? [];
          this.waiters.set(key, q.filter((x) => x !== w));
          reject(new LockError('TIMEOUT'));
        }, opts.timeoutMs);
      }
      opts.signal?.addEventListener('abort', () => {
        const q = this.waiters.get(key) ?? [];
        if (!q.includes(w)) return;
        this.waiters.set(key, q.filter((x) => x !== w));
        clearTimeout(w.timer);
        reject(new LockError('CANCELLED'));
      }, { once: true });
      queue.push(w);
      this.waiters.set(key, queue);
      for (const h of holders) if (!compatible(h.grant.mode, mode)) h.emit('bast', mode);
    });
  }

  /** Every holder of every lock loses it (as when the daemon loses quorum). */
  loseAll(reason: string): void {
    for (const [, hs] of this.held) for (const h of hs) { h.released = true; h.emit('lost', reason); }
    this.held.clear();
  }

  holders(lockspace: string, resource: string): number {
    return (this.held.get(`${lockspace}\0${resource}`) ?? []).length;
  }

  async close(): Promise<void> {
    for (const [, q] of this.waiters) for (const w of q) { clearTimeout(w.timer); w.reject(new LockError('SHUTDOWN')); }
    this.waiters.clear();
  }

  /** h released (or, keep = true, converted in place): grant the waiters that now fit. */
  release(h: FakeHandle, keep = false): void {
    const key = `${h.lockspace}\0${h.resource}`;
    const hs = (this.held.get(key) ?? []).filter((x) => keep || x !== h);
    this.held.set(key, hs);
    const q = this.waiters.get(key) ?? [];
    while (q.length && hs.every((x) => compatible(x.grant.mode, q[0]!.mode))) {
      const w = q.shift()!;
      clearTimeout(w.timer);
      w.resolve(this.grant(key, h.lockspace, h.resource, w.mode));
    }
  }

  private grant(key: string, lockspace: string, resource: string, mode: Mode): FakeHandle {
    let token = this.tokens.get(key) ?? 0;
    if (isWriteMode(mode)) this.tokens.set(key, ++token);
    const lvb = this.lvbs.get(key);
    const h = new FakeHandle(this, lockspace, resource, { mode, token, lvb: Buffer.from(lvb ?? Buffer.alloc(0)), lvbValid: lvb !== undefined });
    const hs = this.held.get(key) ?? [];
    hs.push(h);
    this.held.set(key, hs);
    return h;
  }
}
