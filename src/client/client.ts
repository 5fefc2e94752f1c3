/**
 * MxfsClient: the client side of the local protocol, over the Unix socket (connect()) or
 * in-process (the daemon's connectLocal(), used by the kernel bridge and tests).
 *
 * Safety rule: the client's locks are valid only until lostAfterMs (the daemon's
 * client_timeout_ms, which the config keeps below lease_timeout_ms - renew_interval_ms)
 * after the SEND time of the last message the daemon answered (a request or a heartbeat).
 * An answer proves the daemon heard from us at or after that send time, and the daemon
 * purges a silent client only client_timeout_ms + client_keepalive_ms after the last
 * message it heard; so the client always gives up first, and an answer that sat in a
 * buffer while this process was paused cannot extend its locks. LockHandle.valid re-checks
 * the bound at the moment of use.
 *
 * Arguments are checked here before anything is sent (names: UTF-8 text of 1..64 bytes
 * without NUL; LVBs: at most the daemon's lvbSize), so a caller's mistake fails that call
 * with INVALID and never reaches the daemon. The daemon checks everything again.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { ConvertOptions, LockClient, LockHandle, LockOptions, UnlockOptions } from './api';
import { isDownConversion, isWriteMode, Mode, modeName } from '../dlm/modes';
import { DEFAULT_LOCKSPACE, Grant, LOCK_ERROR_CODES, LockError, LockErrorCode, MAX_LOCKSPACE_NAME, MAX_RESOURCE_NAME } from '../dlm/types';
import { CLIENT_PROTOCOL_VERSION, ClientRequest, clientNameProblem, DaemonMessage, FaultSpec, HelloData, nameProblem, validateDaemonMessage, VolumeRequestOp, TraceRequestOp } from '../wire/client-protocol';
import { VOLUME_REPLY_CODES, VolumeReplyCode } from '../volumes/volume-core';

/** A volume request the daemon refused; `code` says why (docs/daemon.md). */
export class VolumeRequestFailed extends Error {
  constructor(readonly code: VolumeReplyCode, message: string) {
    super(message);
    this.name = 'VolumeRequestFailed';
  }
}
import { encodeFrame, FrameDecoder } from '../wire/frame';
import { Clock, systemClock, TimerHandle } from '../util/clock';

/** The largest request id the protocol allows (docs/daemon.md: `id` 0..2^32-1). */
const MAX_REQUEST_ID = 2 ** 32 - 1;

/** How the client reaches its daemon. */
export interface ClientTransport {
  /**
   * May throw a LockError (BUSY: too many bytes not sent yet): that request fails with it,
   * unless `release`: a request that gives something up or keeps the client alive (an unlock,
   * a down-conversion, a cancel, a heartbeat) is queued whatever the socket holds.
   */
  send(req: ClientRequest, release?: boolean): void;
  close(): void;
  /** Set by the client: called with each message from the daemon (already validated). */
  onMessage?: (msg: DaemonMessage) => void;
  /** Set by the client: called once when the connection is gone. */
  onClose?: (reason: string) => void;
}

type Pending = { sentAt: number; resolve: (m: Extract<DaemonMessage, { type: 'reply' }>) => void; reject: (e: Error) => void };

export interface ClientOptions {
  name?: string;
  clock?: Clock;
  /** Upper bound for the hello exchange. */
  connectTimeoutMs?: number;
  /**
   * Bytes of requests the socket may hold unsent (the daemon not reading them) before a new
   * request fails BUSY instead of being queued; unlocks, down-conversions, cancels and heartbeats are always
   * queued. Default DEFAULT_MAX_UNSENT_BYTES.
   */
  maxUnsentBytes?: number;
}

/** Default ClientOptions.maxUnsentBytes: 4 MiB, some 40 000 lock requests. */
export const DEFAULT_MAX_UNSENT_BYTES = 4 * 1024 * 1024;

export class MxfsClient extends EventEmitter implements LockClient {
  private nextReq = 1;
  private nextLock = 1;
  private pending = new Map<number, Pending>();
  private handles = new Map<number, Handle>();
  /** Send time of the latest message the daemon answered (our clock). */
  private lastConfirmed: number;
  private hbSeq = 0;
  private hbSent = new Map<number, number>();
  private timer?: TimerHandle;
  private closed = false;
  private lostReason?: string;
  hello!: HelloData;

  private constructor(private readonly t: ClientTransport, readonly clock: Clock) {
    super();
    this.lastConfirmed = clock.now();
    t.onMessage = (m) => this.onMessage(m);
    t.onClose = (reason) => this.loseAll(`connection to mxfsd closed: ${reason}`);
  }

  /** Connect to mxfsd's Unix socket. */
  static async connect(socketPath: string, opts: ClientOptions = {}): Promise<MxfsClient> {
    const t = await socketTransport(socketPath, 16 * 1024 * 1024, opts.connectTimeoutMs ?? 5000, opts.maxUnsentBytes);
    return MxfsClient.start(t, opts);
  }

  /** Start a client on any transport (the daemon's in-process transport, tests). */
  static async start(t: ClientTransport, opts: ClientOptions = {}): Promise<MxfsClient> {
    const c = new MxfsClient(t, opts.clock ?? systemClock);
    try {
      checkArg('name', clientNameProblem(opts.name ?? 'mxfs-client'));
      const r = await c.request({ type: 'hello', id: 0, version: CLIENT_PROTOCOL_VERSION, client: opts.name ?? 'mxfs-client', pid: process.pid }, opts.connectTimeoutMs ?? 5000);
      c.hello = r.data as HelloData;
    } catch (e) {
      t.close();
      throw e;
    }
    c.watchdog();
    return c;
  }

  /** True while the daemon has answered a message sent within the bound. */
  get alive(): boolean {
    return !this.closed && this.lostReason === undefined && this.clock.now() - this.lastConfirmed < this.hello.lostAfterMs;
  }

  async lock(resource: string, mode: Mode, opts: LockOptions = {}): Promise<LockHandle> {
    const lockspace = opts.lockspace ?? DEFAULT_LOCKSPACE;
    checkArg('lockspace', nameProblem(lockspace, MAX_LOCKSPACE_NAME));
    checkArg('resource', nameProblem(resource, MAX_RESOURCE_NAME));
    const lockId = this.nextLock++;
    const h = new Handle(this, lockId, lockspace, resource);
    this.handles.set(lockId, h);
    const onAbort = () => this.sendCancel(lockId);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (opts.signal?.aborted) throw new LockError('CANCELLED', 'aborted before the request was sent');
      const r = await this.request({ type: 'lock', id: 0, lockId, lockspace, resource, mode, noqueue: opts.noqueue, timeoutMs: opts.timeoutMs });
      h.checkHeld();
      h.grant = toGrant(r.grant!);
      return h;
    } catch (e) {
      this.handles.delete(lockId);
      throw e;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  async status(): Promise<any> { return (await this.request({ type: 'status', id: 0 })).data; }
  async locks(filter: { lockspace?: string; resource?: string } = {}): Promise<any> {
    if (filter.lockspace !== undefined) checkArg('lockspace', nameProblem(filter.lockspace, MAX_LOCKSPACE_NAME));
    if (filter.resource !== undefined) checkArg('resource', nameProblem(filter.resource, MAX_RESOURCE_NAME));
    return (await this.request({ type: 'locks', id: 0, ...filter })).data;
  }

  /**
   * The kernel's cached inode locks of a kernel volume on the daemon's node (docs/kernel.md
   * "Inode locks"): every one counted (by mode and state), the first ones in inode order in
   * full. Rejects with VolumeRequestFailed: UNKNOWN_VOLUME, DRIVER (not driver = kernel),
   * NO_MODULE.
   */
  async inodeLocks(volume: string, opts: { limit?: number } = {}): Promise<any> {
    return (await this.request({ type: 'inodeLocks', id: 0, volume, ...opts })).data;
  }

  /**
   * Volumes (docs/volumes.md): mount (become the owner; wait: false fails at once with OWNED if
   * another node owns it), umount, standby, or status (every node's view, merged). Failures
   * reject with VolumeRequestFailed (its code says why).
   */
  async volume(op: VolumeRequestOp, volume?: string, opts: { wait?: boolean; timeoutMs?: number } = {}): Promise<any> {
    return (await this.request({ type: 'volume', id: 0, op, ...(volume !== undefined ? { volume } : {}), ...opts })).data;
  }

  /** The trace (docs/tracing.md): status, dump, collect (one page per node after its cursor), why. */
  async trace(op: TraceRequestOp, args: Omit<Extract<ClientRequest, { type: 'trace' }>, 'type' | 'id' | 'op'> = {}): Promise<any> {
    return (await this.request({ type: 'trace', id: 0, op, ...args })).data;
  }

  /** Test-only: inject faults into the daemon's peer traffic (needs MXFS_FAULT_INJECTION=1). */
  async fault(spec: FaultSpec): Promise<any> { return (await this.request({ type: 'fault', id: 0, spec })).data; }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clock.clearTimer(this.timer);
    for (const h of this.handles.values()) h.markReleased();
    this.handles.clear();
    this.failPending(new LockError('SHUTDOWN', 'client closed'));
    this.t.close();
  }

  // ---- internals used by Handle -------------------------------------------------------

  /** @internal */
  async convertLock(h: Handle, mode: Mode, opts: ConvertOptions): Promise<Grant> {
    this.checkLvb(opts.lvb, h);
    // An already aborted signal never fires 'abort': the conversion would wait, uncancellable.
    if (opts.signal?.aborted) throw new LockError('CANCELLED', 'aborted before the request was sent');
    const onAbort = () => this.sendCancel(h.lockId);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      // A down-conversion is queued even past maxUnsentBytes, as an unlock is: a BAST handler's
      // way of letting a waiter in must not fail BUSY.
      const release = isDownConversion(h.grant.mode, mode);
      const r = await this.request({ type: 'convert', id: 0, lockId: h.lockId, mode, noqueue: opts.noqueue, timeoutMs: opts.timeoutMs, lvb: opts.lvb }, undefined, release);
      h.checkHeld();
      h.grant = toGrant(r.grant!);
      h.unheardBast = undefined; // a new grant: a waiter still blocked by it is told again
      return h.grant;
    } catch (e) {
      // LOST from the daemon: the lock itself is gone (its 'lost' follows the reply, maybe in a
      // later read). The handle is finished now, before the caller sees the rejection.
      if (e instanceof LockError && e.code === 'LOST') { this.handles.delete(h.lockId); h.markLost(e.message); }
      throw e;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** @internal */
  async unlockLock(h: Handle, opts: UnlockOptions): Promise<void> {
    this.checkLvb(opts.lvb, h);
    h.unlocking = true;
    try {
      await this.request({ type: 'unlock', id: 0, lockId: h.lockId, lvb: opts.lvb }, undefined, true);
    } catch (e) {
      h.unlocking = false;
      // LOST: the lock is gone, but the daemon could not confirm what the unlock asked
      // (e.g. its LVB write, across a cluster recovery). The handle is finished either way.
      if (e instanceof LockError && e.code === 'LOST') { this.handles.delete(h.lockId); h.markLost(e.message); }
      throw e;
    }
    this.handles.delete(h.lockId);
    h.markReleased();
  }

  private checkLvb(lvb: Buffer | undefined, h: Handle): void {
    if (!lvb) return;
    if (lvb.length > this.hello.lvbSize) {
      throw new LockError('INVALID', `lvb is ${lvb.length} bytes; the daemon's lock value block is ${this.hello.lvbSize} bytes`);
    }
    // The DLM writes a value block back only from PW or EX (and ignores it otherwise, as
    // Linux's does): given with a lock held in a lower mode it would be dropped silently.
    if (!isWriteMode(h.grant.mode)) {
      throw new LockError('INVALID', `lvb given, but lock ${h.lockspace}/${h.resource} is held in ${modeName(h.grant.mode)}: a value block is written only from PW or EX`);
    }
  }

  private pastBoundReason(): string {
    return this.lostReason ?? `no answer from mxfsd within ${this.hello.lostAfterMs} ms`;
  }

  /** @internal */
  checkAlive(): void {
    if (!this.alive) {
      this.loseAll(this.pastBoundReason());
      throw new LockError('LOST', this.lostReason ?? 'connection to mxfsd lost');
    }
  }

  private sendCancel(lockId: number): void {
    if (this.closed || this.lostReason) return;
    this.request({ type: 'cancel', id: 0, lockId }, undefined, true).catch(() => { /* the lock request itself reports the outcome */ });
  }

  private request(req: ClientRequest & { id: number }, timeoutMs?: number, release = false): Promise<Extract<DaemonMessage, { type: 'reply' }> & { ok: true }> {
    if (this.closed) return Promise.reject(new LockError('SHUTDOWN', 'client closed'));
    if (this.lostReason) return Promise.reject(new LockError('LOST', this.lostReason));
    const id = this.takeRequestId();
    const sentAt = this.clock.now();
    return new Promise((resolve, reject) => {
      let timer: TimerHandle | undefined;
      if (timeoutMs !== undefined) {
        timer = this.clock.setTimer(() => {
          this.pending.delete(id);
          reject(new LockError('LOST', `mxfsd did not answer within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.pending.set(id, {
        sentAt,
        resolve: (m) => {
          this.clock.clearTimer(timer);
          if (m.ok) resolve(m as any);
          else if (m.code === 'PROTOCOL') reject(new LockError('INVALID', m.message));
          // A volume request's refusal is a VolumeRequestFailed even when its code is also a
          // lock error's name (TIMEOUT, CANCELLED, LOST, BUSY): mxfsctl's exit code depends on it.
          else if ((req.type === 'volume' || req.type === 'inodeLocks') && (VOLUME_REPLY_CODES as readonly string[]).includes(m.code)) reject(new VolumeRequestFailed(m.code as VolumeReplyCode, m.message));
          else if ((LOCK_ERROR_CODES as readonly string[]).includes(m.code)) reject(new LockError(m.code as LockErrorCode, m.message));
          else reject(new VolumeRequestFailed(m.code as VolumeReplyCode, m.message));
        },
        reject: (e) => { this.clock.clearTimer(timer); reject(e); },
      });
      try {
        this.t.send({ ...req, id } as ClientRequest, release);
      } catch (e) {
        // Not sent (the transport's queue is over its bound): this request fails alone.
        this.pending.delete(id);
        this.clock.clearTimer(timer);
        reject(e);
      }
    });
  }

  /**
   * The next request id. The protocol's ids are 0..2^32-1 (a frame with another id has nobody
   * to answer: the daemon cuts the connection), so they wrap around after 2^32-1 requests,
   * skipping any still waiting for its reply (the daemon refuses an id in flight).
   */
  private takeRequestId(): number {
    for (;;) {
      const id = this.nextReq;
      this.nextReq = id >= MAX_REQUEST_ID ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  private confirm(sentAt: number): void {
    if (sentAt > this.lastConfirmed) this.lastConfirmed = sentAt;
  }

  private onMessage(m: DaemonMessage): void {
    switch (m.type) {
      case 'hb': {
        const sentAt = this.hbSent.get(m.ack);
        if (sentAt !== undefined) {
          this.confirm(sentAt);
          for (const k of this.hbSent.keys()) { if (k > m.ack) break; this.hbSent.delete(k); }
        }
        return;
      }
      case 'reply': {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        this.confirm(p.sentAt);
        // A reply read after the bound passed (it sat in the socket while this process was
        // paused): the daemon may have purged this client since, and granted its locks to
        // another, so a grant in it must not resolve lock()/convert() as held.
        if (this.hello !== undefined && !this.alive && !this.closed) {
          const reason = this.pastBoundReason();
          p.reject(new LockError('LOST', reason));
          this.loseAll(reason);
          return;
        }
        p.resolve(m);
        return;
      }
      case 'bast': {
        const h = this.handles.get(m.lockId);
        if (!h) return;
        // A BAST read after the bound passed says nothing about now: the daemon may have
        // purged this client and granted the lock to the waiter since. 'bast' means "you hold
        // a lock someone wants", so the locks are declared lost instead (no 'bast' event).
        if (!this.alive) { this.loseAll(this.pastBoundReason()); return; }
        h.bast(m.mode);
        return;
      }
      case 'lost':
        if (m.lockId === undefined) { this.loseAll(m.reason); return; }
        {
          const h = this.handles.get(m.lockId);
          if (h) { this.handles.delete(m.lockId); h.markLost(m.reason); }
        }
        return;
    }
  }

  private watchdog(): void {
    const period = Math.max(10, Math.min(this.hello.keepaliveMs, Math.floor(this.hello.lostAfterMs / 4)));
    const beat = () => {
      if (this.closed || this.lostReason) return;
      if (!this.alive) {
        this.loseAll(this.pastBoundReason());
        return;
      }
      const seq = ++this.hbSeq;
      this.hbSent.set(seq, this.clock.now());
      if (this.hbSent.size > 1000) this.hbSent.delete(this.hbSent.keys().next().value!);
      this.t.send({ type: 'hb', seq }, true);
      this.timer = this.clock.setTimer(beat, period);
    };
    this.timer = this.clock.setTimer(beat, period);
  }

  private failPending(e: Error): void {
    const p = [...this.pending.values()];
    this.pending.clear();
    for (const x of p) x.reject(e);
  }

  private loseAll(reason: string): void {
    if (this.closed || this.lostReason !== undefined) return;
    this.lostReason = reason;
    this.clock.clearTimer(this.timer);
    const hs = [...this.handles.values()];
    this.handles.clear();
    for (const h of hs) h.markLost(reason);
    this.failPending(new LockError('LOST', reason));
    this.t.close();
    this.emit('lost', reason);
  }
}

class Handle extends EventEmitter implements LockHandle {
  grant!: Grant;
  private done = false;
  lostReason?: string;
  /** The mode of a BAST emitted while nobody listened for 'bast' (since the current grant). */
  unheardBast?: Mode;
  /** An unlock() is waiting for its reply: a second one (or a convert()) fails BUSY here. */
  unlocking = false;

  constructor(private readonly c: MxfsClient, readonly lockId: number, readonly lockspace: string, readonly resource: string) {
    super();
    // An event that came before anyone listened is handed to a listener added later, on the
    // next tick: a BAST read together with the grant (before lock() resumed), or a loss while
    // a consumer passes the handle on before listening (the kernel bridge, volumes). The
    // daemon tells a holder of a waiter only once per grant, and a loss only once.
    this.on('newListener', (event: string | symbol, listener: (...args: any[]) => void) => {
      const still = () => this.listeners(event).includes(listener);
      if (event === 'lost' && this.lostReason !== undefined) {
        const reason = this.lostReason;
        process.nextTick(() => { if (still()) listener.call(this, reason); });
      } else if (event === 'bast' && this.unheardBast !== undefined && !this.done) {
        const mode = this.unheardBast;
        process.nextTick(() => {
          if (this.unheardBast === mode) this.unheardBast = undefined; // heard now (by every listener added this tick)
          if (still() && !this.done) listener.call(this, mode);
        });
      }
    });
  }

  /** A BAST for this lock: emitted, or kept for the first 'bast' listener if there is none. */
  bast(mode: Mode): void {
    if (!this.emit('bast', mode)) this.unheardBast = mode;
  }

  get released(): boolean { return this.done; }

  /** True while the lock is held and the daemon has been heard from within the bound. */
  get valid(): boolean { return !this.done && this.c.alive; }

  convert(mode: Mode, opts: ConvertOptions = {}): Promise<Grant> {
    if (this.done) return Promise.reject(new LockError(this.lostReason ? 'LOST' : 'NOTFOUND', this.lostReason ?? 'lock already released'));
    if (this.unlocking) return Promise.reject(this.busyUnlocking());
    // Past the bound (a paused process, before the watchdog noticed): a rejected promise like
    // every other failure, never a synchronous throw (a bast handler's `void h.convert(...)`
    // or `h.convert(...).catch(...)` would crash the process with it).
    try { this.c.checkAlive(); } catch (e) { return Promise.reject(e); }
    return this.c.convertLock(this, mode, opts);
  }

  unlock(opts: UnlockOptions = {}): Promise<void> {
    if (this.done) return Promise.reject(new LockError(this.lostReason ? 'LOST' : 'NOTFOUND', this.lostReason ?? 'lock already released'));
    // Not joined to the first: like an unlock after the release (NOTFOUND), a second one is the
    // caller's mistake, and its LVB, if any, would not be written.
    if (this.unlocking) return Promise.reject(this.busyUnlocking());
    return this.c.unlockLock(this, opts);
  }

  private busyUnlocking(): LockError {
    return new LockError('BUSY', `lock ${this.lockspace}/${this.resource} is already being unlocked (an unlock() is waiting for its reply)`);
  }

  /**
   * After a grant's reply: the lock may have been lost meanwhile (a 'lost' read in the same
   * chunk as the grant is handled before the awaiting lock()/convert() resumes) or the client
   * closed. lock()'s caller has had no chance to listen for 'lost', and convert()'s would
   * carry on in the new mode: either would believe it holds a lock the daemon has let go.
   */
  checkHeld(): void {
    if (this.done) throw new LockError(this.lostReason !== undefined ? 'LOST' : 'SHUTDOWN', this.lostReason ?? 'client closed');
  }

  markReleased(): void { this.done = true; }

  markLost(reason: string): void {
    if (this.done) return;
    this.done = true;
    this.lostReason = reason;
    this.emit('lost', reason);
  }
}

function checkArg(field: string, problem: string | undefined): void {
  if (problem) throw new LockError('INVALID', `${field} ${problem}`);
}

function toGrant(g: { mode: Mode; token: number; lvb: Buffer; lvbValid: boolean }): Grant {
  return { mode: g.mode, token: g.token, lvb: Buffer.from(g.lvb), lvbValid: g.lvbValid };
}

/**
 * Bytes of the client socket's read buffer: every read lands in this one buffer (net.connect's
 * `onread`), so no buffer is allocated per read and no 'data' event goes through the stream's
 * machinery. A frame larger than this simply spans reads (FrameDecoder keeps a copy of it).
 */
export const CLIENT_READ_BUFFER_BYTES = 64 * 1024;

/**
 * A transport over mxfsd's Unix socket. Requests go to the socket at once; what the kernel
 * does not take stays in the socket's own write queue. While that holds more than
 * maxUnsentBytes (a daemon that stopped reading: SIGSTOP, wedged, or a flood faster than it
 * reads), a new request throws BUSY instead of growing it without bound; one sent as a
 * `release` (an unlock, a down-conversion, a cancel, a heartbeat) is queued regardless (they
 * are bounded by the locks and requests there are).
 */
export function socketTransport(path: string, maxFrameBytes: number, timeoutMs: number, maxUnsentBytes = DEFAULT_MAX_UNSENT_BYTES): Promise<ClientTransport> {
  return new Promise((resolve, reject) => {
    const dec = new FrameDecoder(maxFrameBytes);
    let closed = false;
    const deliver = (raw: unknown) => t.onMessage?.(validateDaemonMessage(raw));
    // Called with the bytes of each read, valid only during the call (the buffer is reused):
    // pushTransient decodes whole frames (copying out binary values) and copies a partial one.
    const onRead = (n: number, buf: Buffer): boolean => {
      if (closed) return false;
      try {
        dec.pushTransient(n === buf.length ? buf : buf.subarray(0, n), deliver);
        return true;
      } catch (e) {
        closed = true;
        sock.destroy();
        t.onClose?.(`bad data from mxfsd: ${(e as Error).message}`);
        return false;
      }
    };
    const sock = net.connect({ path, onread: { buffer: Buffer.allocUnsafe(CLIENT_READ_BUFFER_BYTES), callback: onRead } });
    const t: ClientTransport = {
      send(req, release) {
        if (closed) return;
        const unsent = sock.writableLength;
        if (unsent > maxUnsentBytes && !release) {
          throw new LockError('BUSY', `${unsent} bytes of requests to mxfsd are not sent yet (more than maxUnsentBytes, ${maxUnsentBytes}): mxfsd is not reading them; wait for replies, then retry`);
        }
        sock.write(encodeFrame(req, maxFrameBytes));
      },
      close() { if (!closed) { closed = true; sock.destroy(); t.onClose?.('closed by client'); } },
    };
    const timer = setTimeout(() => { sock.destroy(); reject(new LockError('LOST', `cannot connect to ${path}: timed out`)); }, timeoutMs);
    sock.once('connect', () => { clearTimeout(timer); sock.setNoDelay?.(true); resolve(t); });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (!closed) { closed = true; reject(new LockError('LOST', `cannot connect to mxfsd at ${path}: ${e.code ?? e.message}`)); t.onClose?.(e.message); }
    });
    sock.on('close', () => { if (!closed) { closed = true; t.onClose?.('socket closed'); } });
  });
}

export { LockError };
export type { LockErrorCode };
