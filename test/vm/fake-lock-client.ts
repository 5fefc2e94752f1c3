/**
 * A small in-process LockClient for the kernel-bridge tests and the VM driver: one node,
 * the real compatibility matrix, FIFO waiters, a blocking callback ('bast') to holders that
 * block a waiter, NOQUEUE, timeouts and cancellation (AbortSignal). Not the lock engine: just enough to exercise the
 * bridge without the daemon.
 */
import { EventEmitter } from 'node:events';
import { compatible, isWriteMode, Mode } from '../../src/dlm/modes';
import { DEFAULT_LOCKSPACE, LockError, type Grant } from '../../src/dlm/types';
import type { ConvertOptions, LockClient, LockHandle, LockOptions } from '../../src/client/api';

interface Waiter { mode: Mode; resolve(h: LockHandle): void; reject(e: Error): void; timer?: NodeJS.Timeout }

class FakeHandle extends EventEmitter implements LockHandle {
  released = false;
  get valid(): boolean { return !this.released; }
  constructor(readonly owner: FakeLockClient, readonly lockspace: string, readonly resource: string, public grant: Grant) {
    super();
  }
  convert(_mode: Mode, _opts?: ConvertOptions): Promise<Grant> {
    return Promise.reject(new LockError('INVALID', 'convert not supported by the fake'));
  }
  async unlock(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.owner.release(this);
  }
}

export class FakeLockClient extends EventEmitter implements LockClient {
  private held = new Map<string, FakeHandle[]>();
  private waiters = new Map<string, Waiter[]>();
  private tokens = new Map<string, number>();
  calls = 0;

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

  release(h: FakeHandle): void {
    const key = `${h.lockspace}\0${h.resource}`;
    const hs = (this.held.get(key) ?? []).filter((x) => x !== h);
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
    const h = new FakeHandle(this, lockspace, resource, { mode, token, lvb: Buffer.alloc(0), lvbValid: false });
    const hs = this.held.get(key) ?? [];
    hs.push(h);
    this.held.set(key, hs);
    return h;
  }
}
