/**
 * VolumeManager: a node's volumes. Spawns one Volume actor per [volume], and gives them what
 * they need from the node (VolumeServices):
 *
 *  - the ownership lock, through one in-process LockClient ("volumes" session; a new one is
 *    opened when a quorum loss ended the previous one);
 *  - the volume record kept on a majority: `read` asks every member for its durable copy and
 *    returns the newest once a quorum (the membership's rule, tiebreaker included) answered;
 *    `store` writes this node's copy, then every member's, and returns once a quorum has it;
 *  - the fence proof (docs/volumes.md, "The fence-proof rule"): an owner that is a live member
 *    must say it no longer has the volume; an owner outside the view must have left it at
 *    least fenceBound + fenceBound/4 + 50 ms ago on this node's clock (its lease had already
 *    expired when the view without it was committed), then the driver's own check
 *    (fence_check_cmd) must pass;
 *  - the node-wide lease for the drivers (kernel: LEASE_RENEW with the cluster quorum deadline),
 *    and 'rejoined' when the node is back in a quorate view after a fence.
 *
 * It also answers mxfsctl's volume requests and `volumes` (every member's view, merged), and
 * peers' volume messages (get/put/status).
 */
import type Logger from 'bunyan';
import type { ActorSystem, Ref } from '../actors/actor';
import type { LockClient, LockHandle } from '../client/api';
import type { ClusterPort } from '../cluster/port';
import { isQuorum } from '../cluster/membership';
import type { Config, VolumeConfig } from '../config/config';
import type { LockRouter, RecoveryState } from '../daemon/lock-router';
import { Mode } from '../dlm/modes';
import type { Clock, TimerHandle } from '../util/clock';
import { CommandVolumeDriver } from './command-driver';
import { DriverVolumeStatus, VolumeDriver, VolumeError, VolumeSpec } from './driver';
import type { VolPeerMsg, VolumeNodeStatus } from './messages';
import { isNewer, newest, RecordStore, VolumeRecord } from './record';
import { VolumeCore, VolumeInput, VolumeView } from './volume-core';
import { VOLUME_LOCKSPACE, volumeDef, VolumeMsg, VolumeResult, VolumeServices, VolumeStepError } from './volume';

/** How long past a dead owner's fence bound the takeover waits: drift and scheduling (docs/volumes.md). */
export function fenceWaitMs(fenceBoundMs: number): number {
  return fenceBoundMs + Math.ceil(fenceBoundMs / 4) + 50;
}

/**
 * The deadline the drivers' lease runs to (Clock ms), or null when this node may not write.
 *  - standalone (no cluster): a rolling lease, renewed while mxfsd runs;
 *  - in a view (running, recovering): the cluster's quorum deadline, the time until which this
 *    node holds quorum (Q_N of docs/volumes.md). Infinity means this node alone is a quorum
 *    (the tiebreaker of a two-node cluster, a cluster of one): every quorum contains it, so no
 *    other node can ever take a volume from it, and the lease is a rolling one as standalone:
 *    it still ends if mxfsd dies or stops (the kernel lease, renewed no more, expires);
 *  - otherwise (joining, no quorum, quorum deadline passed): none.
 */
export function driverLeaseDeadline(state: RecoveryState, quorumUntil: number | undefined, now: number, leaseMs: number): number | null {
  if (state === 'standalone') return now + leaseMs;
  if ((state !== 'running' && state !== 'recovering') || quorumUntil === undefined) return null;
  if (quorumUntil === Infinity) return now + leaseMs;
  return Number.isFinite(quorumUntil) && quorumUntil > now ? quorumUntil : null;
}

/** A live old owner is asked again this often while it still reports the volume as its own. */
const PROVE_POLL_MS = 200;

export type VolumeOp = 'mount' | 'umount' | 'standby';

export interface VolumeManagerOptions {
  config: Config;
  log: Logger;
  clock: Clock;
  sys: ActorSystem;
  router: LockRouter;
  port?: ClusterPort;
  stateDir: string;
  /** A new in-process lock client (the daemon's connectLocal). */
  connect(): Promise<LockClient>;
  /** The kernel driver, when a volume uses driver = kernel. */
  kernelDriver?(): VolumeDriver;
  /** Wall clock for records (tests may fix it). */
  wallNow?(): number;
}

interface Volume {
  cfg: VolumeConfig;
  spec: VolumeSpec;
  driver: VolumeDriver;
  core: VolumeCore;
  ref: Ref<VolumeMsg>;
  attachError?: string;
}

interface Rpc {
  kind: 'get' | 'put' | 'status';
  msg: VolPeerMsg;
  answered: Map<number, VolPeerMsg>;
  done(): void;
  check(): void;
}

export class VolumeManager {
  readonly store: RecordStore;
  private volumes = new Map<string, Volume>();
  private client?: Promise<LockClient>;
  private pending = new Map<number, (r: VolumeResult) => void>();
  private nextReq = 1;
  private rpcs = new Map<number, Rpc>();
  private nextRpc = 1;
  /** When each node was last seen leaving the view (this node's clock). */
  private leftAt = new Map<number, number>();
  private members: readonly number[] = [];
  private runningSince?: number;
  private leaseTimer?: TimerHandle;
  private lastLease?: number | null;
  private stopped = false;
  private shuttingDown = false;
  private readonly allNodes: number[];
  private readonly wallNow: () => number;

  constructor(private readonly o: VolumeManagerOptions) {
    this.store = RecordStore.open(o.stateDir);
    this.allNodes = [o.config.node.id, ...o.config.peers.map((p) => p.id)].sort((a, b) => a - b);
    this.wallNow = o.wallNow ?? Date.now;
    this.members = o.router.members;
  }

  private get self(): number { return this.o.config.node.id; }

  async start(): Promise<void> {
    let kernel: VolumeDriver | undefined;
    for (const cfg of this.o.config.volumes) {
      const spec: VolumeSpec = { name: cfg.name, device: cfg.device, ...(cfg.mountpoint ? { mountpoint: cfg.mountpoint } : {}), ...(cfg.mountOptions ? { mountOptions: cfg.mountOptions } : {}) };
      let driver: VolumeDriver;
      if (cfg.driver === 'kernel') {
        if (!this.o.kernelDriver) throw new Error(`volume ${cfg.name}: driver = kernel, but this mxfsd has no kernel support`);
        driver = kernel ??= this.o.kernelDriver();
      } else {
        driver = new CommandVolumeDriver(cfg, this.self, this.o.clock);
      }
      const core = new VolumeCore({
        spec, node: this.self, failover: cfg.failover, afterClear: cfg.start === 'none' ? 'unmounted' : 'standby',
        fenceBoundMs: () => driver.fenceBoundMs(), wallNow: this.wallNow,
      }, this.o.clock.now());
      const log = this.o.log.child({ volume: cfg.name });
      const ref = this.o.sys.spawn<any, VolumeMsg>(undefined, 'volume', volumeDef({ core, driver, svc: this.services(), log }), { volume: cfg.name });
      const v: Volume = { cfg, spec, driver, core, ref };
      this.volumes.set(cfg.name, v);
      driver.onEvent((ev) => {
        if (ev.volume !== cfg.name) return;
        if (ev.type === 'released') this.input(v, { type: 'externallyUnmounted' });
        else if (ev.type === 'fenced') this.input(v, { type: 'lost', reason: `the driver fenced the volume: ${ev.report.cause}` });
        else if (ev.type === 'mount-wanted') {
          void this.request('mount', cfg.name, { wait: true }).then((r) => ev.reply(r.ok ? undefined : new VolumeError('DRIVER', r.message)));
        }
      });
      try {
        await driver.attach(spec);
      } catch (e) {
        v.attachError = (e as Error).message;
        log.error({ err: (e as Error).message }, `volume ${cfg.name}: cannot attach: ${(e as Error).message}`);
      }
      // The previous run of mxfsd on this node owned it and did not unmount: fence first.
      const mine = this.store.get(cfg.name);
      if (mine && mine.owner === this.self && mine.state !== 'clean') {
        this.o.sys.send(ref, { type: 'startFence', cause: `mxfsd restarted while this node owned generation ${mine.generation}` });
      }
    }
    this.o.router.listen({
      onVolumeMessage: (from, m) => this.onPeer(from, m),
      onState: (state, _epoch, members) => this.onRouterState(state, members),
    });
    this.onRouterState(this.o.router.state, this.o.router.members);
    this.leaseLoop();
    for (const v of this.volumes.values()) {
      if (v.attachError) continue;
      if (v.cfg.start === 'mount') void this.request('mount', v.cfg.name, { wait: true }).then((r) => { if (!r.ok) this.o.log.warn({ volume: v.cfg.name, code: r.code }, `start = mount: ${r.message}`); });
      else if (v.cfg.start === 'standby') void this.request('standby', v.cfg.name, {});
    }
  }

  /**
   * Clean shutdown of mxfsd: unmount what this node owns and withdraw its standbys, within
   * `graceMs`; whatever is still mounted after that is fenced before the daemon goes.
   */
  async shutdown(graceMs: number): Promise<void> {
    if (this.stopped || this.shuttingDown) return;
    this.shuttingDown = true;
    const views = await this.localStatus();
    const give = views.filter((s) => s.state !== 'unmounted' && s.state !== 'fenced');
    const timeout = new Promise<'timeout'>((r) => this.o.clock.setTimer(() => r('timeout'), graceMs));
    await Promise.race([Promise.all(give.map((s) => this.request('umount', s.volume, {}))), timeout]);
    for (const s of await this.localStatus()) {
      if (s.state === 'unmounted' || s.state === 'standby' || (s.state === 'fenced' && s.fenceDone)) continue;
      const v = this.volumes.get(s.volume)!;
      const report = await v.driver.fence(s.volume, 'mxfsd stopped before the volume could be unmounted');
      this.o.log.warn({ volume: s.volume, state: s.state, report }, `volume ${s.volume} fenced at shutdown`);
    }
    await this.stop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.o.clock.clearTimer(this.leaseTimer);
    for (const r of this.rpcs.values()) r.done();
    const drivers = new Set([...this.volumes.values()].map((v) => v.driver));
    for (const d of drivers) await d.close().catch(() => undefined);
    const c = this.client;
    this.client = undefined;
    if (c) await c.then((x) => x.close()).catch(() => undefined);
  }

  names(): string[] { return [...this.volumes.keys()]; }

  /**
   * An mxfsctl request: resolves with the outcome (never rejects). `gone` (mount only): the
   * asking client went away; a mount still waiting for ownership is then withdrawn.
   */
  request(op: VolumeOp, volume: string, opts: { wait?: boolean; timeoutMs?: number; gone?: AbortSignal }): Promise<VolumeResult> {
    const v = this.volumes.get(volume);
    if (!v) return Promise.resolve({ ok: false, code: 'UNKNOWN_VOLUME', message: unknownVolume(volume, this.names()) });
    if (v.attachError && op !== 'umount') return Promise.resolve({ ok: false, code: 'DEVICE_MISSING', message: `volume ${volume}: ${v.attachError}` });
    const req = this.nextReq++;
    return new Promise((resolve) => {
      const gone = op === 'mount' ? opts.gone : undefined;
      const withdraw = () => this.input(v, { type: 'withdraw', req });
      this.pending.set(req, (r) => { gone?.removeEventListener('abort', withdraw); resolve(r); });
      const input = op === 'mount' ? { type: 'mount' as const, req, wait: opts.wait ?? true, ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) }
        : op === 'umount' ? { type: 'umount' as const, req } : { type: 'standby' as const, req };
      this.input(v, input);
      if (gone?.aborted) withdraw();
      else gone?.addEventListener('abort', withdraw, { once: true });
    }).then(async (r) => {
      const res = r as VolumeResult;
      if (!res.ok && res.code === 'OWNED') return { ...res, message: await this.describeOwner(volume, res.message) };
      return res;
    });
  }

  private input(v: Volume, input: VolumeInput): void {
    this.o.sys.send(v.ref, { type: 'input', input });
  }

  /** "owned by node N (name)" from the records the members keep. */
  private async describeOwner(volume: string, fallback: string): Promise<string> {
    const rec = newest(this.store.get(volume), ...((await this.clusterStatus(volume)).flatMap((s) => (s.record ? [s.record] : []))));
    if (!rec || rec.state === 'clean') return fallback;
    const peer = this.o.config.peers.find((p) => p.id === rec.owner);
    const nodeName = rec.owner === this.self ? this.o.config.node.name : peer?.name;
    return `volume ${volume} is owned by node ${rec.owner}${nodeName ? ` (${nodeName})` : ''}, generation ${rec.generation}`;
  }

  // ---- status ---------------------------------------------------------------------------

  async localStatus(volume?: string): Promise<VolumeNodeStatus[]> {
    const out: VolumeNodeStatus[] = [];
    for (const v of this.volumes.values()) {
      if (volume !== undefined && v.cfg.name !== volume) continue;
      const view = await this.o.sys.ask<VolumeMsg, VolumeView>(v.ref, (replyTo) => ({ type: 'view', replyTo }), this.o.config.timing.queryTimeoutMs)
        .catch(() => v.core.view(this.o.clock.now()));
      out.push({
        volume: v.cfg.name, node: this.self, state: view.state, sinceMs: view.sinceMs, step: view.step, holding: view.holding,
        reason: v.attachError ? `cannot attach: ${v.attachError}` : view.reason,
        fenceDone: view.state === 'fenced' && view.step !== 'fence', fenceOk: view.fence?.fenced ?? false,
        blocked: view.blocked ? { reason: view.blocked.reason, sinceMs: view.blocked.sinceMs, retries: view.blocked.retries } : null,
        record: newest(view.record ?? undefined, this.store.get(v.cfg.name)) ?? null, driver: v.driver.kind, fenceBoundMs: v.driver.fenceBoundMs(),
      });
    }
    return out;
  }

  /** Every member's statuses (this node's included); members that do not answer are left out. */
  async clusterStatus(volume?: string): Promise<VolumeNodeStatus[]> {
    const local = await this.localStatus(volume);
    const others = this.members.filter((m) => m !== this.self);
    if (others.length === 0) return local;
    const answers = await this.rpc('status', { type: 'status', id: 0, volume: volume ?? null }, others, (answered) => answered.size >= others.length);
    const out = [...local];
    for (const a of answers.values()) if (a.type === 'statusReply') out.push(...a.volumes);
    return out;
  }

  /** `mxfsctl volumes`: per volume, the merged picture. */
  async volumesReport(volume?: string): Promise<unknown> {
    if (volume !== undefined && !this.volumes.has(volume)) throw new Error(unknownVolume(volume, this.names()));
    const all = await this.clusterStatus(volume);
    const heard = [...new Set(all.map((s) => s.node))].sort((a, b) => a - b);
    const heres = new Map<string, DriverVolumeStatus>();
    for (const v of this.volumes.values()) if (volume === undefined || v.cfg.name === volume) heres.set(v.cfg.name, await this.driverStatus(v));
    const volumes = [...this.volumes.values()].filter((v) => volume === undefined || v.cfg.name === volume).map((v) => {
      const mine = all.filter((s) => s.volume === v.cfg.name).sort((a, b) => a.node - b.node);
      const record = newest(...mine.map((s) => s.record ?? undefined));
      const owning = mine.filter((s) => ['mounted', 'mounting', 'recovering', 'unmounting', 'blocked'].includes(s.state) && s.holding);
      const local = mine.find((s) => s.node === this.self)!;
      return {
        here: heres.get(v.cfg.name)!,
        volume: v.cfg.name, device: v.cfg.device, mountpoint: v.cfg.mountpoint ?? null, driver: v.driver.kind, failover: v.cfg.failover,
        state: local.state, owner: owning[0]?.node ?? (record && record.state !== 'clean' ? record.owner : null),
        ownerState: owning[0]?.state ?? (record ? (record.state === 'clean' ? 'clean' : `record says ${record.state}`) : 'never mounted'),
        standbys: mine.filter((s) => s.state === 'standby').map((s) => s.node),
        generation: record?.generation ?? 0,
        lastRecovery: record?.lastRecovery ?? null,
        blocked: mine.filter((s) => s.blocked).map((s) => ({ node: s.node, reason: s.blocked!.reason, ageMs: s.blocked!.sinceMs, retries: s.blocked!.retries })),
        fenced: mine.filter((s) => s.state === 'fenced').map((s) => ({ node: s.node, reason: s.reason, done: s.fenceDone, ok: s.fenceOk })),
        nodes: mine.map((s) => ({ node: s.node, state: s.state, sinceMs: s.sinceMs, step: s.step, reason: s.reason, fenceBoundMs: s.fenceBoundMs })),
      };
    });
    return { node: this.self, heard, missing: this.members.filter((m) => !heard.includes(m)), volumes };
  }

  /**
   * This node's driver's own account of a volume (kernel: the gate, the kernel lease's state
   * and age, the fence bound, the module's fence records with cause and duration), read from
   * the driver itself: it needs neither the Volume actor nor quorum, so a fenced or cut-off
   * node still shows it. Bounded by the query timeout.
   */
  private async driverStatus(v: Volume): Promise<DriverVolumeStatus> {
    const ms = this.o.config.timing.queryTimeoutMs;
    let t: TimerHandle | undefined;
    const late = new Promise<DriverVolumeStatus>((resolve) => {
      t = this.o.clock.setTimer(() => resolve({ gate: 'unknown', mounted: false, detail: `the ${v.driver.kind} driver did not answer within ${ms} ms` }), ms);
    });
    const asked = v.driver.status(v.cfg.name).catch((e: unknown): DriverVolumeStatus => ({ gate: 'unknown', mounted: false, detail: (e as Error).message }));
    try {
      return await Promise.race([asked, late]);
    } finally {
      this.o.clock.clearTimer(t);
    }
  }

  // ---- services for the Volume actors -----------------------------------------------------

  private services(): VolumeServices {
    return {
      clock: this.o.clock,
      log: this.o.log,
      lock: (volume, opts) => this.lock(volume, opts),
      read: (volume) => this.read(volume),
      store: (record) => this.write(record),
      prove: (volume, owner, generation, bound) => this.prove(volume, owner, generation, bound),
      reply: (req, result) => { const p = this.pending.get(req); this.pending.delete(req); p?.(result); },
    };
  }

  private async lockClient(): Promise<LockClient> {
    if (!this.client) {
      const c = this.o.connect();
      this.client = c;
      c.then((client) => client.once('lost', () => { if (this.client === c) this.client = undefined; }), () => { if (this.client === c) this.client = undefined; });
    }
    return this.client;
  }

  private async lock(volume: string, opts: { noqueue: boolean; timeoutMs?: number; signal: AbortSignal }): Promise<LockHandle> {
    const c = await this.lockClient();
    return c.lock(volume, Mode.EX, { lockspace: VOLUME_LOCKSPACE, noqueue: opts.noqueue, signal: opts.signal, ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) });
  }

  private quorum(nodes: Iterable<number>): boolean {
    return isQuorum(nodes, this.allNodes, this.o.config.cluster.tiebreaker);
  }

  private async read(volume: string): Promise<VolumeRecord | undefined> {
    const mine = this.store.get(volume);
    const others = this.members.filter((m) => m !== this.self);
    const answers = await this.rpc('get', { type: 'get', id: 0, volume }, others, (a) => this.quorum([this.self, ...a.keys()]));
    if (!this.quorum([this.self, ...answers.keys()])) {
      throw new VolumeStepError('NO_MAJORITY', `the volume record of ${volume} could not be read from a majority of the nodes (answers from ${[this.self, ...answers.keys()].join(', ')} of ${this.allNodes.join(', ')})`);
    }
    let best = mine;
    for (const a of answers.values()) if (a.type === 'record' && a.record && isNewer(a.record, best)) best = a.record;
    return best;
  }

  private async write(record: VolumeRecord): Promise<void> {
    this.store.put(record);
    const others = this.members.filter((m) => m !== this.self);
    const ok = (a: Map<number, VolPeerMsg>) => this.quorum([this.self, ...[...a].filter(([, m]) => m.type === 'stored').map(([n]) => n)]);
    const answers = await this.rpc('put', { type: 'put', id: 0, record }, others, ok);
    if (!ok(answers)) {
      throw new VolumeStepError('NO_MAJORITY', `the volume record of ${record.volume} (generation ${record.generation}) could not be stored on a majority of the nodes (stored on ${[this.self, ...answers.keys()].join(', ')} of ${this.allNodes.join(', ')})`);
    }
  }

  private async prove(volume: string, owner: number, generation: number, fenceBoundMs: number): Promise<string> {
    const v = this.volumes.get(volume)!;
    if (owner === this.self) return `node ${owner} is this node; nothing of generation ${generation} is mounted here`;
    const deadline = this.o.clock.now() + 2 * this.o.config.timing.leaseTimeoutMs + fenceWaitMs(fenceBoundMs);
    for (;;) {
      if (this.stopped) throw new VolumeStepError('UNPROVEN', 'mxfsd is stopping');
      if (this.members.includes(owner)) {
        const st = (await this.rpc('status', { type: 'status', id: 0, volume }, [owner], (a) => a.size >= 1)).get(owner);
        const s = st?.type === 'statusReply' ? st.volumes.find((x) => x.volume === volume) : undefined;
        if (s) {
          if (s.state === 'unmounted' || s.state === 'standby' || (s.state === 'acquiring' && !s.holding)) {
            return `node ${owner} is a live member and reports it has nothing of the volume mounted (${s.state})`;
          }
          if (s.state === 'fenced' && s.fenceDone) {
            if (s.fenceOk) return `node ${owner} is a live member and reports its fence done`;
            throw new VolumeStepError('UNPROVEN', `old owner node ${owner} could not complete its fence: ${s.reason ?? 'no detail'}`);
          }
          if (this.o.clock.now() > deadline) throw new VolumeStepError('UNPROVEN', `old owner node ${owner} still reports the volume as ${s.state}`);
        } else if (this.o.clock.now() > deadline) {
          throw new VolumeStepError('UNPROVEN', `old owner node ${owner} is a member but does not answer about the volume`);
        }
        await this.sleep(PROVE_POLL_MS);
        continue;
      }
      // Not a member: its lease had expired when the view without it was committed; wait out its fence bound.
      const left = this.leftAt.get(owner) ?? this.runningSince ?? this.o.clock.now();
      const readyAt = left + fenceWaitMs(fenceBoundMs);
      const wait = readyAt - this.o.clock.now();
      if (wait > 0) {
        this.o.log.info({ volume, owner, waitMs: Math.round(wait), fenceBoundMs }, `volume ${volume}: waiting out node ${owner}'s fence bound before taking over`);
        await this.sleep(wait);
        continue; // it may have come back meanwhile
      }
      await v.driver.confirmFenced(v.spec, owner, generation);
      return `node ${owner} left the view ${Math.round(this.o.clock.now() - left)} ms ago (fence bound ${fenceBoundMs} ms + margin ${fenceWaitMs(fenceBoundMs) - fenceBoundMs} ms)`;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => this.o.clock.setTimer(r, Math.max(0, ms)));
  }

  // ---- RPCs to members ------------------------------------------------------------------

  /**
   * Send `msg` to `to` and collect answers until `enough` says so or the query timeout
   * passes. A new epoch re-sends to those that have not answered (messages of an older epoch
   * are dropped by their receivers).
   */
  private rpc(kind: Rpc['kind'], msg: VolPeerMsg, to: readonly number[], enough: (a: Map<number, VolPeerMsg>) => boolean): Promise<Map<number, VolPeerMsg>> {
    const answered = new Map<number, VolPeerMsg>();
    if (to.length === 0 || enough(answered)) return Promise.resolve(answered);
    const id = this.nextRpc++;
    const m = { ...msg, id } as VolPeerMsg;
    return new Promise((resolve) => {
      let t: TimerHandle | undefined;
      const rpc: Rpc = {
        kind, msg: m, answered,
        done: () => { this.o.clock.clearTimer(t); this.rpcs.delete(id); resolve(answered); },
        check: () => { if (enough(answered)) rpc.done(); },
      };
      this.rpcs.set(id, rpc);
      t = this.o.clock.setTimer(() => rpc.done(), this.o.config.timing.queryTimeoutMs);
      for (const n of to) this.o.router.sendVolume(n, m);
    });
  }

  private onPeer(from: number, m: VolPeerMsg): void {
    switch (m.type) {
      case 'get':
        this.o.router.sendVolume(from, { type: 'record', id: m.id, volume: m.volume, record: this.store.get(m.volume) ?? null });
        return;
      case 'put': {
        try {
          this.store.put(m.record);
        } catch (e) {
          this.o.log.error({ err: (e as Error).message, volume: m.record.volume }, 'cannot store a volume record');
          return; // no acknowledgement: the writer does not count this node
        }
        const r = this.store.get(m.record.volume)!;
        this.o.router.sendVolume(from, { type: 'stored', id: m.id, volume: m.record.volume, generation: r.generation, version: r.version });
        return;
      }
      case 'status':
        void this.localStatus(m.volume ?? undefined).then((volumes) => this.o.router.sendVolume(from, { type: 'statusReply', id: m.id, volumes }));
        return;
      default: {
        const rpc = this.rpcs.get(m.id);
        if (!rpc || rpc.answered.has(from)) return;
        rpc.answered.set(from, m);
        rpc.check();
      }
    }
  }

  // ---- views, lease ---------------------------------------------------------------------

  private onRouterState(state: RecoveryState, members: readonly number[]): void {
    const now = this.o.clock.now();
    for (const n of this.members) if (!members.includes(n)) this.leftAt.set(n, now);
    this.members = [...members];
    if (state === 'no-quorum') {
      this.runningSince = undefined;
      this.setLease(null, 'quorum lost');
      return;
    }
    if (state === 'running' || state === 'standalone') {
      this.runningSince ??= now;
      for (const v of this.volumes.values()) this.input(v, { type: 'rejoined' });
      // Answers owed by an older epoch were dropped by their receivers: ask again.
      for (const rpc of this.rpcs.values()) {
        for (const n of this.members) if (n !== this.self && !rpc.answered.has(n)) this.o.router.sendVolume(n, rpc.msg);
      }
    }
  }

  /** The lease the drivers enforce: the cluster's quorum deadline, or a rolling one when standalone. */
  private leaseLoop(): void {
    const period = Math.max(50, Math.min(250, Math.floor(this.o.config.timing.renewIntervalMs / 2)));
    const tick = () => {
      if (this.stopped) return;
      const now = this.o.clock.now();
      const state = this.o.router.state;
      const q = this.o.port?.quorumUntil ? this.o.port.quorumUntil() : undefined;
      const deadline = driverLeaseDeadline(state, q, now, this.o.config.timing.leaseTimeoutMs);
      this.setLease(deadline, deadline === null ? `cluster state ${state}` : undefined);
      this.leaseTimer = this.o.clock.setTimer(tick, period);
    };
    tick();
  }

  private setLease(deadline: number | null, reason?: string): void {
    if (deadline === this.lastLease) return;
    if (deadline !== null && this.lastLease !== null && this.lastLease !== undefined && deadline <= this.lastLease) return;
    this.lastLease = deadline;
    const drivers = new Set([...this.volumes.values()].map((v) => v.driver));
    for (const d of drivers) d.setLease(deadline, reason);
  }
}

function unknownVolume(volume: string, known: string[]): string {
  return `unknown volume '${volume}' (configured: ${known.length ? known.join(', ') : 'none'})`;
}
