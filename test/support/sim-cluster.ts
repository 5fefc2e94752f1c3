/**
 * The whole stack under simulated time, in one process (test/cluster-sim.test.ts and
 * scripts/mutation-check.ts): three complete Daemons (sessions, lock router, DlmChannel,
 * membership, peer links with the real handshake and frame MACs) on a SimNetwork and one
 * ManualClock, in-process clients locking shared resources, abusive in-process clients, and
 * a seeded schedule of faults:
 *   isolate    one node cut off from the others
 *   cut        one link cut (a non-transitive partition)
 *   lossy      20 % of the writes lost on every link
 *   crash      a node's process dies (its network connections reset, its timers and memory
 *              gone, its clients see the connection drop) and is started again later from
 *              the same state_dir (new incarnation)
 *   crash-all  every node dies at once and all are started again
 *   stall      a node's cluster layer (leases, links: the worker thread in mxfsd) stops while
 *              its lock engine keeps serving its clients — its lease lapses, the others
 *              take over; only the check of the lease at use (canGrant) stops it granting
 * Checked after every step: never two incompatible locks held by clients whose handles are
 * still valid; PW/EX fencing tokens strictly increase per resource (across restarts too).
 * At the end, after the last heal: every client is served again, and once every client has
 * closed, no node holds a lock (nothing leaked, purges included). Abusive clients must get
 * an answer to every request (an error where one is due).
 *
 * A seed fixes the fault schedule, the workload and the abuse; the same seed replays the same
 * run (daemons do no real I/O: `listen: false`).
 */
import bunyan from 'bunyan';
import path from 'node:path';
import { Daemon } from '../../src/daemon/daemon';
import { TcpClusterPort } from '../../src/daemon/cluster-port';
import { SimNetwork } from '../../src/cluster/network';
import type { ClientTransport, MxfsClient } from '../../src/client/client';
import type { LockHandle } from '../../src/client/api';
import { compatible, Mode } from '../../src/dlm/modes';
import { Clock, ManualClock, TimerHandle } from '../../src/util/clock';
import { Prng } from '../../src/failover/prng';
import type { Config } from '../../src/config/config';
import type { ClientRequest, DaemonMessage } from '../../src/wire/client-protocol';
import { CLIENT_PROTOCOL_VERSION } from '../../src/wire/client-protocol';
import { rendezvousOwner } from '../../src/cluster/rendezvous';
import { quietLogger, testConfig, tmpDir } from './daemon-proc';

const KEY = Buffer.from('sim-cluster-key-0123456789abcdef');
export const SIM_LEASE = 3000;
const IDS = [1, 2, 3];
const addr = (id: number) => `10.0.0.${id}`;

export type SimFault = 'isolate' | 'cut' | 'lossy' | 'crash' | 'crash-all' | 'stall';

export interface SimOptions {
  /** Fault kinds to pick from (default: all). */
  faults?: readonly SimFault[];
  /** Number of faults (default 6). */
  faultCount?: number;
  /** Fault length in leases [min, max] (default [2, 4]) and the quiet time after each, in leases (default 4). */
  faultLeases?: [number, number];
  quietLeases?: number;
  workersPerNode?: number;
  resources?: number;
  /**
   * During every fault, links also get this much random latency (0..ms, so messages of
   * different pairs overtake each other) and lose 10 % of their writes: many lock messages
   * are in flight, or waiting to be sent again, when the view changes (default 0: none).
   */
  noiseMs?: number;
  /** Run the abusive clients (default false). */
  abuse?: boolean;
}

/**
 * A clock view a crash can kill (its timers never fire again, new ones are ignored) or a
 * stall can freeze (timers falling due wait, and fire late, in order, at thaw()).
 */
export class ScopedClock implements Clock {
  private alive = true;
  private frozen = false;
  private held: Array<() => void> = [];
  private readonly handles = new Set<TimerHandle>();

  constructor(private readonly base: ManualClock) {}

  now(): number { return this.base.now(); }

  setTimer(fn: () => void, ms: number): TimerHandle {
    if (!this.alive) return { id: -1 };
    const h: TimerHandle = this.base.setTimer(() => {
      this.handles.delete(h);
      if (!this.alive) return;
      if (this.frozen) this.held.push(fn); else fn();
    }, ms);
    this.handles.add(h);
    return h;
  }

  freeze(): void { this.frozen = true; }

  thaw(): void {
    this.frozen = false;
    const late = this.held;
    this.held = [];
    for (const fn of late) if (this.alive) fn();
  }

  clearTimer(h: TimerHandle | undefined): void {
    if (!h) return;
    this.handles.delete(h);
    this.base.clearTimer(h);
  }

  kill(): void {
    this.alive = false;
    this.held = [];
    for (const h of this.handles) this.base.clearTimer(h);
    this.handles.clear();
  }
}

interface Held { client: string; handle: LockHandle; mode: Mode }

export class SimLockCluster {
  readonly clock = new ManualClock();
  readonly sim: SimNetwork;
  readonly daemons = new Map<number, Daemon>();
  readonly rng: Prng;
  readonly resources: string[];
  readonly held: Map<string, Held[]>;
  readonly lastToken = new Map<string, number>();
  readonly violations: string[] = [];
  readonly trace: string[] = [];
  readonly progress = new Map<string, number>();
  readonly stats = { grants: 0, crashes: 0, abusiveRequests: 0, abusiveAnswers: 0 };
  stopped = false;
  private readonly scopes = new Map<number, ScopedClock>();
  /** The cluster layer's own clock per node (see 'stall'). */
  private readonly clusterScopes = new Map<number, ScopedClock>();
  private readonly clients = new Map<number, Set<{ close(): void }>>();
  private readonly starts = new Map<number, number>();
  private readonly dir = tmpDir('mxfs-sim-');

  constructor(readonly seed: number, readonly opts: SimOptions = {}) {
    this.rng = new Prng(seed);
    const r = new Prng(seed ^ 0x5eed);
    this.sim = new SimNetwork(this.clock, { delayMs: 1, random: () => r.next() });
    this.resources = Array.from({ length: opts.resources ?? 3 }, (_, i) => `r${i}`);
    this.held = new Map(this.resources.map((x) => [x, []]));
  }

  get grants(): number { return this.stats.grants; }

  config(id: number): Config {
    const c = testConfig(path.join(this.dir, `n${id}`), {
      node: { id, address: addr(id), port: 7600 },
      timing: { leaseTimeoutMs: SIM_LEASE, renewIntervalMs: 500, clientKeepaliveMs: 200, clientTimeoutMs: 1500, queryTimeoutMs: 2000 },
      locking: { maxLocksPerClient: 100000 },
    });
    c.cluster = { name: 'sim' };
    c.peers = IDS.filter((p) => p !== id).map((p) => ({ id: p, name: `node${p}`, address: addr(p), port: 7600 }));
    return c;
  }

  /** Start node id (again): same state_dir, a new incarnation, fresh memory. */
  async start(id: number): Promise<void> {
    const n = (this.starts.get(id) ?? 0) + 1;
    this.starts.set(id, n);
    const config = this.config(id);
    const clock = new ScopedClock(this.clock);
    const clusterClock = new ScopedClock(this.clock);
    const jitter = new Prng(id * 7919 + n);
    const log = process.env.SIM_DEBUG ? bunyan.createLogger({ name: `n${id}`, streams: [{ level: 'info', path: `/tmp/sim-n${id}.log` }] }) : quietLogger();
    const d = new Daemon({
      config, log, clock, listen: false,
      port: (sys, state) => new TcpClusterPort({
        config, sys, log, clock: clusterClock, state,
        sim: { network: this.sim.host(id, addr(id)), key: KEY, incarnation: 100 * n + id, random: () => jitter.next() },
      }),
    });
    await d.start();
    this.scopes.set(id, clock);
    this.clusterScopes.set(id, clusterClock);
    this.daemons.set(id, d);
    this.clients.set(id, new Set());
    this.trace.push(`${this.clock.now()} start node${id} #${n}`);
  }

  /**
   * kill -9 of node id: connections reset, timers and memory gone (its leftover turns run
   * into a dead network), every client connection of it drops, as the kernel would do.
   */
  crash(id: number): void {
    const d = this.daemons.get(id);
    if (!d) return;
    this.stats.crashes++;
    this.trace.push(`${this.clock.now()} crash node${id}`);
    this.daemons.delete(id);
    this.sim.crash(id);
    this.scopes.get(id)!.kill();
    this.clusterScopes.get(id)!.kill();
    for (const c of this.clients.get(id) ?? []) c.close();
    this.clients.delete(id);
    // The kernel gives up a dead process's flock()s: the restart must find state_dir free.
    d.releaseNodeLocks();
  }

  /** The cluster layer of node id stops (timers and network), its lock engine goes on. */
  stall(id: number): void {
    this.trace.push(`${this.clock.now()} stall node${id}`);
    this.clusterScopes.get(id)?.freeze();
    this.sim.freeze(id);
  }

  /** It runs again: what waited is handled now, late, in order. */
  unstall(id: number): void {
    this.trace.push(`${this.clock.now()} unstall node${id}`);
    this.sim.thaw(id);
    this.clusterScopes.get(id)?.thaw();
  }

  async settle(): Promise<void> { for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r)); }

  async run(ms: number, step = 5): Promise<void> {
    for (let t = 0; t < ms; t += step) { this.clock.advance(step); await this.settle(); this.check(); }
  }

  sleep(ms: number): Promise<void> { return new Promise((r) => this.clock.setTimer(r, ms)); }

  formed(): boolean {
    if (this.daemons.size < IDS.length) return false;
    const rs = IDS.map((id) => this.daemons.get(id)!.router);
    return rs.every((r) => r.state === 'running' && r.epoch === rs[0]!.epoch && r.members.join() === IDS.join());
  }

  async waitFormed(boundMs: number, what: string): Promise<void> {
    for (let t = 0; !this.formed(); t += 5) {
      if (t > boundMs && process.env.SIM_DEBUG) console.log(this.trace.filter((l) => /fault|stall|crash|start|heal/.test(l)).slice(-40).join('\n'));
      if (t > boundMs) throw new Error(`${what} (seed ${this.seed}): ${IDS.map((id) => { const r = this.daemons.get(id)?.router; return `node${id} ${r ? `${r.state} ${r.epoch} [${r.members}]` : 'down'}`; }).join('; ')}`);
      await this.run(5);
    }
  }

  /** Safety, every step: no two incompatible holders both still valid. */
  private seenEpoch = new Map<number, string>();
  check(): void {
    for (const [id, d] of this.daemons) {
      const k = `${d.router.epoch}/${d.router.state}`;
      if (this.seenEpoch.get(id) !== k) { this.seenEpoch.set(id, k); this.trace.push(`${this.clock.now()} node${id} ${k}`); }
    }
    for (const [r, hs] of this.held) {
      const live = hs.filter((h) => h.handle.valid);
      for (let i = 0; i < live.length; i++) for (let j = i + 1; j < live.length; j++) {
        if (compatible(live[i]!.mode, live[j]!.mode)) continue;
        if (process.env.SIM_DEBUG && this.violations.length === 0) console.log(this.trace.slice(-60).join('\n'));
        this.violations.push(`t=${this.clock.now()} ${r}: ${live[i]!.client} (${Mode[live[i]!.mode]}) and ${live[j]!.client} (${Mode[live[j]!.mode]}) both hold valid locks`);
      }
    }
  }

  async connect(id: number, name: string): Promise<MxfsClient | undefined> {
    const d = this.daemons.get(id);
    if (!d) return undefined;
    const c = await d.connectLocal(name);
    this.clients.get(id)?.add(c);
    return c;
  }

  /** One workload client on node `id`: lock, hold, unlock, think; reconnect when cut off or after a crash. */
  async worker(id: number, name: string): Promise<void> {
    let c: MxfsClient | undefined;
    while (!this.stopped) {
      try {
        if (!c || !c.alive) c = await this.connect(id, name);
        if (!c) { await this.sleep(100); continue; }
        const r = this.resources[this.rng.int(0, this.resources.length - 1)]!;
        const mode = this.rng.pick([Mode.EX, Mode.EX, Mode.PW, Mode.PR, Mode.CR]);
        const h = await c.lock(r, mode, { timeoutMs: 4000 });
        this.stats.grants++;
        this.progress.set(name, this.clock.now());
        this.trace.push(`${this.clock.now()} ${name} ${r} ${Mode[mode]} ${h.grant.token}`);
        if (mode >= Mode.PW) {
          if (h.grant.token <= (this.lastToken.get(r) ?? 0)) this.violations.push(`${r}: token ${h.grant.token} after ${this.lastToken.get(r)}`);
          this.lastToken.set(r, h.grant.token);
        }
        const entry: Held = { client: name, handle: h, mode };
        this.held.get(r)!.push(entry);
        this.check();
        await this.sleep(this.rng.int(5, 200));
        this.held.set(r, this.held.get(r)!.filter((x) => x !== entry));
        await h.unlock().catch(() => {});
      } catch {
        await this.sleep(100); // LOST / TIMEDOUT / no quorum / node down: try again later
      }
      await this.sleep(this.rng.int(0, 50));
    }
    await c?.close().catch(() => {});
  }

  // ---- abusive in-process clients --------------------------------------------------------

  /** A raw in-process connection: requests as they are, answers counted. */
  private raw(id: number, name: string, read = true): { t: ClientTransport; request(req: Record<string, unknown>): Promise<DaemonMessage | undefined>; close(): void } | undefined {
    const d = this.daemons.get(id);
    if (!d) return undefined;
    const t = d.localTransport();
    this.clients.get(id)?.add(t);
    let next = 1;
    const waiting = new Map<number, (m: DaemonMessage | undefined) => void>();
    t.onMessage = (m) => { if (read && m.type === 'reply') { waiting.get(m.id)?.(m); waiting.delete(m.id); } };
    t.onClose = () => { for (const w of waiting.values()) w(undefined); waiting.clear(); };
    const request = (req: Record<string, unknown>) => new Promise<DaemonMessage | undefined>((resolve) => {
      const id = next++;
      this.stats.abusiveRequests++;
      if (read) waiting.set(id, (m) => { if (m) this.stats.abusiveAnswers++; resolve(m); });
      else resolve(undefined);
      t.send({ ...req, id } as ClientRequest);
    });
    void request({ type: 'hello', version: CLIENT_PROTOCOL_VERSION, client: name });
    return { t, request, close: () => t.close() };
  }

  /** Every answer to a bad request must be an error with a code and a message. */
  private expectError(what: string, m: DaemonMessage | undefined): void {
    if (m === undefined) return; // the connection dropped (node crash, quorum loss): no answer due
    if (m.type !== 'reply' || m.ok || !m.code || !m.message) this.violations.push(`abuse: ${what} was not refused with a clear error: ${JSON.stringify(m).slice(0, 200)}`);
  }

  private async abuser(kind: 'flood' | 'pipeline' | 'bad-fields' | 'never-read', id: number): Promise<void> {
    let round = 0;
    while (!this.stopped) {
      round++;
      const c = this.raw(id, `abuse-${kind}@${id}`, kind !== 'never-read');
      if (!c) { await this.sleep(500); continue; }
      try {
        switch (kind) {
          case "flood": // inspection requests, 20 at a time
            await Promise.all(Array.from({ length: 20 }, () => c.request({ type: "locks" })));
            break;
          case 'pipeline': { // lock requests on distinct resources, then the client goes away
            const n = 100;
            void Promise.all(Array.from({ length: n }, (_, i) => c.request({ type: 'lock', lockId: i + 1, lockspace: 'default', resource: `p${id}-${round}-${i}`, mode: Mode.EX, noqueue: true })));
            await this.sleep(this.rng.int(1, 100));
            break;
          }
          case 'bad-fields': {
            const members = this.daemons.get(id)?.router.members ?? IDS;
            const remote = members.find((m) => m !== id) ?? id;
            let k = 0;
            const res = (() => { for (;;) { const r = `bf${id}-${round}-${k++}`; if (rendezvousOwner('default', r, members) === remote) return r; } })();
            const g = await c.request({ type: 'lock', lockId: 1, lockspace: 'default', resource: res, mode: Mode.EX, timeoutMs: 2000 });
            if (g?.type === 'reply' && g.ok) {
              this.expectError('a lock id already in use', await c.request({ type: 'lock', lockId: 1, lockspace: 'default', resource: res, mode: Mode.EX }));
              this.expectError('an LVB above lvb_size on convert (remote master)', await c.request({ type: 'convert', lockId: 1, mode: Mode.PR, noqueue: false, lvb: Buffer.alloc(4096, 1) }));
              this.expectError('an LVB above lvb_size on unlock (remote master)', await c.request({ type: 'unlock', lockId: 1, lvb: Buffer.alloc(4096, 1) }));
              await c.request({ type: 'unlock', lockId: 1 });
            }
            this.expectError('an unknown lock id', await c.request({ type: 'unlock', lockId: 999 }));
            this.expectError('a conversion of an unknown lock', await c.request({ type: 'convert', lockId: 998, mode: Mode.EX, noqueue: false }));
            break;
          }
          case 'never-read':
            for (let i = 0; i < 40; i++) void c.request({ type: i % 2 ? 'locks' : 'status' });
            await this.sleep(200);
            break;
        }
      } finally {
        c.close();
      }
      await this.sleep(this.rng.int(100, 600));
    }
  }

  startAbuse(): void {
    void this.abuser('flood', 1);
    void this.abuser('pipeline', 2);
    void this.abuser('bad-fields', 3);
    void this.abuser('never-read', 1);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.run(2000);
    for (const d of this.daemons.values()) await Promise.race([d.stop(), new Promise((r) => setTimeout(r, 3000))]);
  }

  /** Locks still held anywhere (after every client closed: must be none). */
  lockCounts(): Record<number, number> {
    const out: Record<number, number> = {};
    for (const [id, d] of this.daemons) out[id] = d.table.stats.locks;
    return out;
  }
}

/** One seed: form, workload (and abuse), the fault schedule, then the end checks. */
export async function runSeed(seed: number, opts: SimOptions = {}): Promise<SimLockCluster> {
  const c = new SimLockCluster(seed, opts);
  for (const id of IDS) await c.start(id);
  await c.waitFormed(20000, 'cluster did not form');
  const workers = IDS.flatMap((id) => Array.from({ length: opts.workersPerNode ?? 2 }, (_, k) => c.worker(id, `c${id}.${k}`)));
  if (opts.abuse) c.startAbuse();
  await c.run(2000);
  const kinds = opts.faults ?? ['isolate', 'cut', 'lossy', 'crash', 'crash-all', 'stall'];
  const [minL, maxL] = opts.faultLeases ?? [2, 4];
  // Every kind at least once (a seeded order), then random ones.
  const schedule = [...kinds].map((k) => [c.rng.next(), k] as const).sort((x, y) => x[0] - y[0]).map(([, k]) => k);
  while (schedule.length < (opts.faultCount ?? 6)) schedule.push(c.rng.pick([...kinds]));
  for (const kind of schedule.slice(0, opts.faultCount ?? 6)) {
    const a = c.rng.int(1, 3);
    const other = IDS.filter((x) => x !== a)[c.rng.int(0, 1)]!;
    c.trace.push(`${c.clock.now()} fault ${kind} ${a} ${other}`);
    const length = c.rng.int(minL, maxL) * SIM_LEASE;
    if (opts.noiseMs) for (const x of IDS) for (const y of IDS) if (x < y) c.sim.setLink(x, y, { delayMs: 1, jitterMs: opts.noiseMs, dropRate: 0.1 });
    switch (kind) {
      case 'isolate': c.sim.partition([a], IDS.filter((x) => x !== a)); break;
      case 'cut': c.sim.blockOneWay(a, other); c.sim.blockOneWay(other, a); break;
      case 'lossy': for (const x of IDS) for (const y of IDS) if (x < y) c.sim.setLink(x, y, { delayMs: 1, dropRate: 0.2 }); break;
      case 'crash': c.crash(a); break;
      case 'crash-all': for (const id of IDS) c.crash(id); break;
      case 'stall': c.stall(a); break;
    }
    await c.run(kind === 'crash-all' ? SIM_LEASE : length);
    if (kind === 'stall') c.unstall(a);
    c.sim.heal();
    for (const x of IDS) for (const y of IDS) if (x < y) c.sim.setLink(x, y, { delayMs: 1 });
    for (const id of IDS) if (!c.daemons.has(id)) await c.start(id);
    await c.run((opts.quietLeases ?? 4) * SIM_LEASE);
  }
  // After the last heal: the cluster re-forms and every client is served again.
  const healedAt = c.clock.now();
  await c.waitFormed(8 * SIM_LEASE, 'cluster did not re-form after the last heal');
  await c.run(3 * SIM_LEASE);
  const stuck = [...c.progress].filter(([, at]) => at < healedAt).map(([n]) => n);
  c.trace.push(`end grants=${c.grants} stuck=${stuck.join(',')}`);
  if (stuck.length) c.violations.push(`clients not served after the last heal: ${stuck.join(', ')}`);
  c.stopped = true;
  await c.run(4 * SIM_LEASE); // every client closes; the purges run
  const left = Object.entries(c.lockCounts()).filter(([, n]) => n > 0);
  if (left.length) c.violations.push(`locks left after every client closed (leaked): ${left.map(([id, n]) => `node${id}: ${n}`).join(', ')}`);
  await c.stop();
  void workers; // a worker waiting on the simulated clock stays pending once time stops; nothing to await
  return c;
}
