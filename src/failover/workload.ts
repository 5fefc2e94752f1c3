/**
 * The workload: clients that lock, "work" and write to the fenced store, recording every
 * step in the history. Each client talks to one node's socket and reconnects to it when its
 * session dies.
 *
 * Discipline (what a correct application does, and what the checker assumes):
 *   - before every write the client checks `handle.valid`; the moment it is false, or the
 *     handle's 'lost' fired, it stops using the lock and records `lost`;
 *   - every write carries the grant's fencing token.
 * The one deliberate exception is a GC pause (gcPause()): the client is frozen *between*
 * its validity check and its write, like a process stopped by the kernel or a collector,
 * and writes on waking with its old token. Only the store can catch that write.
 *
 * A frozen client is simulated in-process: its transport neither sends nor delivers while
 * frozen (messages wait, as in a socket buffer) and its clock defers timers; on waking the
 * write happens first, then the deferred timers, then the queued messages — the order of a
 * real process resumed by SIGCONT.
 */
import { ClientTransport, MxfsClient, socketTransport } from '../client/client';
import type { LockHandle } from '../client/api';
import { Mode, MODE_NAMES, ModeName } from '../dlm/modes';
import { LockError } from '../dlm/types';
import type { Clock, TimerHandle } from '../util/clock';
import type { DaemonMessage } from '../wire/client-protocol';
import type { History } from './history';
import type { FencedStore } from './store';
import { Prng } from './prng';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface WorkloadOptions {
  /** Resource names to lock. */
  resources: string[];
  /** Relative weights of the modes requested. */
  modes: Partial<Record<ModeName, number>>;
  /** Fraction of PR grants that then convert up to EX. */
  convertFraction?: number;
  /** Time a lock is held, ms (uniform in the range). */
  holdMs?: [number, number];
  /** Pause between a release and the next request, ms. */
  thinkMs?: [number, number];
  /** Wait timeout for lock requests (TIMEOUT = not served). */
  lockTimeoutMs?: number;
}

/** A Clock whose timers are deferred while frozen. */
class FreezableClock implements Clock {
  frozen = false;
  private deferred: Array<{ fn: () => void; cancelled: boolean }> = [];
  now(): number { return performance.now(); }
  setTimer(fn: () => void, ms: number): TimerHandle {
    const h = { fn, cancelled: false, t: undefined as NodeJS.Timeout | undefined };
    h.t = setTimeout(() => { if (h.cancelled) return; if (this.frozen) this.deferred.push(h); else fn(); }, Math.max(0, ms));
    h.t.unref?.();
    return { id: h };
  }
  clearTimer(handle: TimerHandle | undefined): void {
    if (!handle) return;
    const h = handle.id as { cancelled: boolean; t?: NodeJS.Timeout };
    h.cancelled = true;
    clearTimeout(h.t);
  }
  thaw(): void {
    this.frozen = false;
    const d = this.deferred;
    this.deferred = [];
    for (const h of d) if (!h.cancelled) h.fn();
  }
}

/** Wraps the socket transport: records when the daemon was last heard, and can freeze. */
class FreezableTransport implements ClientTransport {
  onMessage?: (msg: DaemonMessage) => void;
  onClose?: (reason: string) => void;
  frozen = false;
  lastHeard = performance.now();
  private queued: Array<() => void> = [];

  constructor(private readonly inner: ClientTransport) {
    inner.onMessage = (m) => this.deliver(() => { this.lastHeard = performance.now(); this.onMessage?.(m); });
    inner.onClose = (r) => this.deliver(() => this.onClose?.(r));
  }
  send(req: Parameters<ClientTransport['send']>[0], release?: boolean): void { if (!this.frozen) this.inner.send(req, release); }
  close(): void { this.inner.close(); }
  private deliver(f: () => void): void { if (this.frozen) this.queued.push(f); else f(); }
  thaw(): void {
    this.frozen = false;
    const q = this.queued;
    this.queued = [];
    for (const f of q) f();
  }
}

export interface Holding { client: string; node: number; resource: string; mode: Mode; token: number; /** performance.now() of the grant */ since: number }

export class WorkloadClient {
  private client?: MxfsClient;
  private transport?: FreezableTransport;
  private clock = new FreezableClock();
  private stopping = false;
  private abort = new AbortController();
  private loop?: Promise<void>;
  private nextLock = 1;
  private pendingPause?: { ms: number; done: () => void };
  holding?: Holding;
  grants = 0;

  constructor(
    readonly name: string,
    readonly node: number,
    private readonly socket: string,
    private readonly opts: WorkloadOptions,
    private readonly history: History,
    private readonly store: FencedStore,
    private readonly rng: Prng,
  ) {}

  start(): void { this.loop = this.run(); }

  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    this.pendingPause?.done();
    await this.loop;
  }

  /** Freeze this client between its next validity check and its write, for ms. Resolves after the write. */
  gcPause(ms: number): Promise<void> {
    return new Promise((resolve) => { this.pendingPause = { ms, done: resolve }; });
  }

  private async connect(): Promise<MxfsClient | undefined> {
    try {
      const inner = await socketTransport(this.socket, 16 * 1024 * 1024, 1000);
      const t = new FreezableTransport(inner);
      this.clock = new FreezableClock();
      const c = await MxfsClient.start(t, { name: this.name, clock: this.clock, connectTimeoutMs: 1000 });
      this.transport = t;
      this.history.add({ type: 'client-up', client: this.name, node: this.node });
      c.on('lost', (reason: string) => {
        if (this.client !== c) return;
        this.client = undefined;
        this.history.add({ type: 'client-gone', client: this.name, node: this.node, reason: `lost: ${reason}` });
      });
      return c;
    } catch {
      return undefined;
    }
  }

  private async closeClient(reason: string): Promise<void> {
    const c = this.client;
    if (!c) return;
    this.client = undefined;
    await c.close();
    this.history.add({ type: 'client-gone', client: this.name, node: this.node, reason });
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      if (!this.client) {
        this.client = await this.connect();
        if (!this.client) { await sleep(150); continue; }
      }
      try {
        await this.cycle(this.client);
      } catch (e) {
        // A lock op failed in a way cycle() did not handle; a dead session is reconnected.
        if (!(e instanceof LockError)) throw e;
      }
      if (this.client && !this.client.alive) await this.closeClient('daemon silent past the keepalive bound');
      const [lo, hi] = this.opts.thinkMs ?? [0, 20];
      await sleep(this.rng.int(lo, hi));
    }
    await this.closeClient('workload stopped');
    this.pendingPause?.done();
  }

  /** One lock → work → unlock cycle. */
  private async cycle(c: MxfsClient): Promise<void> {
    const resource = this.rng.pick(this.opts.resources);
    const mode = Mode[this.rng.weighted(this.opts.modes)] as unknown as Mode;
    const lock = this.nextLock++;
    const base = { client: this.name, node: this.node, resource, lock };
    const op = this.history.opId();
    this.history.add({ type: 'invoke', op, kind: 'lock', ...base, mode: MODE_NAMES[mode] });
    let h: LockHandle;
    try {
      h = await c.lock(resource, mode, { timeoutMs: this.opts.lockTimeoutMs ?? 30000, signal: this.abort.signal });
    } catch (e) {
      const le = e as LockError;
      this.history.add({ type: 'fail', op, kind: 'lock', ...base, code: le.code ?? 'ERROR', message: le.message });
      if (le.code === 'LOST' || le.code === 'SHUTDOWN') await sleep(100);
      return;
    }
    this.grants++;
    this.history.add({ type: 'ok', op, kind: 'lock', ...base, mode: MODE_NAMES[h.grant.mode], token: h.grant.token });
    let ended = false;
    const markLost = (reason: string) => {
      if (ended) return;
      ended = true;
      this.holding = undefined;
      const now = this.history.elapsed();
      const bound = this.transport && c.hello ? this.transport.lastHeard + c.hello.lostAfterMs : undefined;
      const validUntil = bound !== undefined ? now - (performance.now() - bound) : undefined;
      this.history.add({ type: 'lost', ...base, reason, ...(validUntil !== undefined && validUntil < now ? { validUntil: Math.round(validUntil * 10) / 10 } : {}) });
    };
    h.on('lost', (reason: string) => markLost(reason));
    this.holding = { client: this.name, node: this.node, resource, mode: h.grant.mode, token: h.grant.token, since: performance.now() };

    const [lo, hi] = this.opts.holdMs ?? [5, 40];
    const work = async () => {
      const writes = 2;
      for (let i = 0; i < writes && !this.stopping; i++) {
        if (ended || !h.valid) { markLost('handle.valid is false'); return false; }
        if (h.grant.mode === Mode.PW || h.grant.mode === Mode.EX) {
          const p = this.pendingPause;
          if (p) {
            // Frozen between the check above and the write below.
            this.pendingPause = undefined;
            this.transport!.frozen = true;
            this.clock.frozen = true;
            this.history.add({ type: 'fault', action: 'gc-pause', nodes: [this.node], detail: { client: this.name, ms: p.ms, resource, token: h.grant.token } });
            await sleep(p.ms);
            this.store.write({ ...base, token: h.grant.token, zombie: true });
            this.history.add({ type: 'fault', action: 'gc-resume', nodes: [this.node], ends: true, detail: { client: this.name } });
            this.clock.thaw();
            this.transport!.thaw();
            p.done();
          } else {
            this.store.write({ ...base, token: h.grant.token });
          }
        }
        await sleep(this.rng.int(lo, hi) / writes);
      }
      return true;
    };

    if (!(await work())) return;
    if (h.grant.mode === Mode.PR && this.rng.next() < (this.opts.convertFraction ?? 0) && !ended && h.valid && !this.stopping) {
      const cop = this.history.opId();
      this.history.add({ type: 'invoke', op: cop, kind: 'convert', ...base, mode: 'EX' });
      try {
        const g = await h.convert(Mode.EX, { timeoutMs: this.opts.lockTimeoutMs ?? 30000, signal: this.abort.signal });
        this.history.add({ type: 'ok', op: cop, kind: 'convert', ...base, mode: MODE_NAMES[g.mode], token: g.token });
        this.holding = { client: this.name, node: this.node, resource, mode: g.mode, token: g.token, since: performance.now() };
        if (!(await work())) return;
      } catch (e) {
        const le = e as LockError;
        this.history.add({ type: 'fail', op: cop, kind: 'convert', ...base, code: le.code ?? 'ERROR', message: le.message });
      }
    }
    if (ended) return;
    if (!h.valid) { markLost('handle.valid is false'); return; }
    const uop = this.history.opId();
    ended = true;
    this.holding = undefined;
    this.history.add({ type: 'invoke', op: uop, kind: 'unlock', ...base });
    try {
      await h.unlock();
      this.history.add({ type: 'ok', op: uop, kind: 'unlock', ...base });
    } catch (e) {
      const le = e as LockError;
      this.history.add({ type: 'fail', op: uop, kind: 'unlock', ...base, code: le.code ?? 'ERROR', message: le.message });
    }
  }
}
