/**
 * ClusterNode: the cluster layer of one mxfsd, assembled — a PeerTransport (listener + one
 * PeerLink per peer), the Membership actor, and the router between them. This is the surface
 * the lock engine integrates with.
 *
 * Routing of received messages by EPOCH_RULE (peer-protocol.ts):
 *   'liveness' / 'membership' and 'ping' -> the Membership actor;
 *   other 'bound' messages (the lock engine's) -> checked against the committed epoch here,
 *   then onBoundMessage; a stale (or future) epoch goes to onRejected and is never delivered.
 * Sends: whatever callers pass to send(), stamped with the committed epoch.
 *
 * ClusterNode runs in its caller's thread (tests, the whole-cluster simulation). mxfsd runs
 * it in a worker thread of its own behind ClusterWorker (cluster-worker.ts); both implement
 * ClusterLayer (cluster-layer.ts).
 */
import type Logger from 'bunyan';
import type { ActorSystem, Ref } from '../actors/actor';
import type { Clock } from '../util/clock';
import { loadClusterKey } from './auth';
import { MembershipCore, MembershipMsg, MembershipSnapshot, spawnMembership, View } from './membership';
import { leaseStatus, type Leases, type LeaseStatus } from './lease';
import type { Network } from './network';
import { allNodeIds, ClusterOptions, clusterSettings, leaseTimes } from './options';
import type { PeerLinkStatus, SendResult } from './peer-link';
import { EPOCH_RULE, MAX_INCARNATION, PeerBody, PeerMessage } from './peer-protocol';
import { randomInt } from 'node:crypto';
import { PeerTransport, TransportOptions } from './transport';
import { rendezvousOwner } from './rendezvous';
import type { ClusterLayer, ClusterLayerEvents, PeerFaults } from './cluster-layer';

export interface ClusterNodeOptions extends ClusterLayerEvents {
  config: ClusterOptions;
  network: Network;
  clock: Clock;
  system: ActorSystem;
  log: Logger;
  random?: () => number;
  /** This run's incarnation (default: random 1..2^32-1 from crypto). */
  incarnation?: number;
  /** Transport tuning (timeouts, backoff, queue bounds, frame size). */
  tuning?: Partial<Pick<TransportOptions, 'handshakeTimeoutMs' | 'connectTimeoutMs' | 'maxFrameBytes' | 'backoff' | 'maxQueueBytes' | 'maxQueueMessages' | 'maxPendingHandshakes' | 'idleTimeoutMs'>>;
  /**
   * Test-only fault injection (mxfsd with MXFS_FAULT_INJECTION=1), applied to every message
   * in and out, leases included: blocked peers are cut off both ways; a fraction of
   * outgoing messages is dropped; outgoing messages are delayed.
   */
  faults?: PeerFaults;
  /** Durable highest promised epoch (see MembershipConfig.epochStore). */
  epochStore?: { load(): number; save(epoch: number): void };
}

export class ClusterNode implements ClusterLayer {
  readonly core: MembershipCore;
  private faults?: PeerFaults;
  /** Why the node is muted by its host (the watchdog) and by fault injection, if it is. */
  private hostMute?: string;
  private faultMute?: string;
  readonly transport: PeerTransport;
  private membership?: Ref<MembershipMsg>;
  private leases?: Leases;
  private readonly log: Logger;
  /** This daemon run's incarnation. */
  readonly incarnation: number;
  /** Peers whose link is up (the transport's 'up'/'down' events). */
  private readonly linksUp = new Set<number>();

  constructor(private readonly o: ClusterNodeOptions) {
    const cfg = o.config;
    this.log = o.log.child({ node: cfg.node.id });
    this.faults = o.faults;
    const key = cfg.cluster.key ?? (() => {
      if (!cfg.cluster.keyFile) throw new Error('cluster: neither key nor keyFile given');
      return loadClusterKey(cfg.cluster.keyFile);
    })();
    this.incarnation = o.incarnation ?? randomInt(1, MAX_INCARNATION + 1);
    this.core = new MembershipCore({
      selfId: cfg.node.id, nodeIds: allNodeIds(cfg), tiebreaker: cfg.cluster.tiebreaker, times: leaseTimes(cfg.timing),
      incarnation: this.incarnation,
      epochStore: o.epochStore,
    });
    this.transport = new PeerTransport({
      idleTimeoutMs: cfg.timing.leaseTimeoutMs, ...o.tuning, config: cfg, key, network: o.network, clock: o.clock, system: o.system, log: this.log, random: o.random,
      settings: clusterSettings(cfg),
      incarnation: this.incarnation,
      duplicate: (id, inc) => this.duplicate(id, inc),
      epoch: () => this.core.epoch,
      onMessage: (from, msg) => this.route(from, msg),
      onLinkEvent: (ev) => {
        if (ev.type === 'up') this.linksUp.add(ev.peer);
        else if (ev.type === 'down') this.linksUp.delete(ev.peer);
        if (this.membership) {
          if (ev.type === 'up') this.o.system.send(this.membership, { type: 'linkUp', peer: ev.peer });
          else if (ev.type === 'down') this.o.system.send(this.membership, { type: 'linkDown', peer: ev.peer, reason: ev.reason });
        }
        o.onLinkEvent?.(ev);
      },
    });
  }

  /**
   * A proven dialer claims node `id` as incarnation `inc`, while the link to `id` is up and
   * renewals of another incarnation came over it within the last renew interval: that run is
   * alive, so this is a second mxfsd configured as node `id` (on the same address, another
   * port: a copied configuration). Refused, so it cannot displace the live node's link (each
   * replacement looked like a restart of the node). A real restart is not refused: the old
   * run's connection closed when its process ended (or it fell silent first).
   */
  private duplicate(id: number, inc: number): string | undefined {
    if (!this.linksUp.has(id)) return undefined;
    const live = this.core.heardIncarnation(id, this.o.clock.now(), this.o.config.timing.renewIntervalMs);
    if (live === undefined || live === inc) return undefined;
    return `node ${id} is already connected and renewing as incarnation ${live.toString(16)}; this connection claims node ${id} as incarnation ${inc.toString(16)}: is a second mxfsd configured as node ${id}?`;
  }

  get id(): number { return this.o.config.node.id; }
  get epoch(): number { return this.core.epoch; }
  get view(): View { return this.core.committed; }

  /** Local clock ms until which this node may grant as a quorum member (-Infinity: not now). */
  quorumUntil(): number { return this.core.quorumUntil(); }

  /** The check to make right before every grant: evaluated now, not when a timer last fired. */
  canGrant(): boolean { return this.o.clock.now() < this.core.quorumUntil(); }

  async start(): Promise<void> {
    ({ membership: this.membership, leases: this.leases } = spawnMembership(this.o.system, {
      core: this.core, clock: this.o.clock,
      send: (to, body) => this.send(to, body),
      onEvent: (ev) => this.o.onEvent?.(ev),
      onRenewal: (r) => this.o.onRenewal?.(r),
      onRejected: (from, msg, reason) => this.o.onRejected?.(from, msg, reason),
      onLease: (until) => this.o.onLease?.(until),
    }));
    await this.transport.start();
    this.o.system.send(this.membership, { type: 'start' });
  }

  private route(from: number, msg: PeerMessage): void {
    if (this.faults?.blocked.has(from)) return;
    const rule = EPOCH_RULE[msg.body.type];
    if (rule === 'receiver') {
      if (msg.body.type === 'dlm' || msg.body.type === 'dlmAck') this.o.onDlmFrame?.(from, msg.body);
      return;
    }
    if (msg.body.type === 'renew') this.o.onPeerRenewal?.(from);
    if (rule !== 'bound' || msg.body.type === 'ping') {
      if (this.membership) this.o.system.send(this.membership, { type: 'peerMessage', from, msg });
      return;
    }
    const why = this.core.checkBound(msg);
    if (why) {
      this.log.warn({ from, msgType: msg.body.type, epoch: msg.hdr.epoch }, `rejected: ${why}`);
      this.o.onRejected?.(from, msg, why);
      return;
    }
    this.o.onBoundMessage?.(from, msg);
  }

  /** The member that masters (lockspace, name) in the committed view (rendezvous hashing). */
  masterOf(lockspace: string, name: string): number | undefined {
    const m = this.core.committed.members;
    return m.length === 0 ? undefined : rendezvousOwner(lockspace, name, m);
  }

  /** Sends body to a peer, stamped with `epoch` (default: the committed epoch right now). */
  send(to: number, body: PeerBody, epoch?: number): void {
    const f = this.faults;
    if (f) {
      if (f.blocked.has(to) || (f.drop > 0 && Math.random() < f.drop)) return;
      if (f.delayMs > 0) {
        const e = epoch ?? this.core.epoch; // stamped now, as without the delay
        this.o.clock.setTimer(() => this.transport.send(to, body, e), f.delayMs);
        return;
      }
    }
    this.transport.send(to, body, epoch);
  }
  sendAndWait(to: number, body: PeerBody, timeoutMs?: number, epoch?: number): Promise<SendResult> { return this.transport.sendAndWait(to, body, timeoutMs, epoch); }

  dropLink(peer: number, reason: string): void { this.transport.dropLink(peer, reason); }

  /** Replace the injected faults (MXFS_FAULT_INJECTION only); `mute` mutes the node until a fault set without it. */
  setFaults(f: PeerFaults): void {
    this.faults = f;
    const why = f.mute ? 'fault injection: mute' : undefined;
    if (why !== this.faultMute) { this.faultMute = why; this.applyMute(); }
  }

  /**
   * Silence this node (no renewals, no answers, no quorum) or end that: see MembershipCore.mute.
   * A mute by fault injection lasts until it is lifted, whatever the host says meanwhile.
   */
  mute(reason: string | undefined): void {
    this.hostMute = reason;
    this.applyMute();
  }

  private applyMute(): void {
    if (this.membership) this.o.system.send(this.membership, { type: 'mute', reason: this.hostMute ?? this.faultMute });
  }

  async status(timeoutMs = 1000): Promise<MembershipSnapshot & { links: PeerLinkStatus[]; leases?: LeaseStatus }> {
    const snap = this.core.snapshot(this.o.clock.now());
    const [links, leases] = await Promise.all([
      this.transport.linkStatus(timeoutMs),
      // Status without the leases rather than none, should a Lease actor not answer in time.
      this.leases ? leaseStatus(this.o.system, this.leases, () => this.o.clock.now(), timeoutMs).catch(() => undefined) : undefined,
    ]);
    return leases ? { ...snap, links, leases } : { ...snap, links };
  }

  async stop(reason = 'shutdown'): Promise<void> {
    if (this.membership) this.o.system.send(this.membership, { type: 'stop' });
    await this.transport.stop(reason);
  }
}
