/**
 * TcpClusterPort: the ClusterPort of a real mxfsd — the cluster layer (ClusterNode: peer
 * links over TCP with HMAC authentication, leases, quorum, epoch agreement) seen from the
 * lock engine.
 *
 * Views: a committed membership view becomes a ClusterView; losing quorum becomes the
 * same view with quorate=false (the router self-fences at once); regaining it without a
 * view change becomes quorate=true in the same epoch.
 * Messages: DlmPeerMsg travels as the peer body {type:'dlm'}, whose epoch the router checks
 * itself (it must hold messages of a newer epoch rather than drop them). A DlmChannel
 * numbers, acknowledges and retransmits them, so none is lost or duplicated when a link
 * resets or a message is dropped inside an epoch; a peer that leaves the view is forgotten.
 * A message the peer would refuse is not sent, and one it refused is not sent again: either
 * way the router hears of it (onRefused) and fails what waited for it.
 * Faults (MXFS_FAULT_INJECTION only): the filter in ClusterNode drops or delays traffic,
 * leases included, so a partition here is a partition for the whole protocol.
 *
 * Lock links (mxfsd with lock_port, src/cluster/direct-link.ts): the channel's first
 * transmissions of lock messages go over this thread's own connection to the peer when it may
 * carry them (up, no fault towards the peer, admitLockFrames on this thread's view); acks,
 * retransmissions and the rest go through the cluster layer. What arrives there is handed to
 * the same channel, which makes both paths one exactly-once, in-order stream.
 * Where the cluster layer runs: in mxfsd, a worker thread of its own (`worker` option:
 * ClusterWorker, so lease renewals never wait behind the lock engine); in tests and the
 * whole-cluster simulation, this thread (ClusterNode, under the injected clock and network).
 * Either way, onRenewal() tells listeners on this thread of every renewal round and every
 * acknowledged renewal (with the new quorum deadline), and canGrant()/quorumUntil() are exact
 * at the call.
 */
import type Logger from 'bunyan';
import type { ActorSystem } from '../actors/actor';
import type { Config } from '../config/config';
import { ClusterNode } from '../cluster/cluster-node';
import { loadClusterKey } from '../cluster/auth';
import type { ClusterLayer, ClusterLayerEvents, PeerFaults } from '../cluster/cluster-layer';
import { ClusterWorker } from '../cluster/cluster-worker';
import { randomInt } from 'node:crypto';
import { MAX_INCARNATION } from '../cluster/peer-protocol';
import type { DlmChannel } from '../cluster/dlm-channel';
import { DlmChannelActor } from '../cluster/dlm-channel-actor';
import { admitLockFrames, DirectLinks } from '../cluster/direct-link';
import type { DlmPeerMsg } from '../cluster/dlm-messages';
import type { MembershipEvent, RenewalReport, RenewalStats } from '../cluster/membership';
import { Network, TcpNetwork } from '../cluster/network';
import { ClusterOptions, leaseTimes } from '../cluster/options';
import type { ClusterHandlers, ClusterPort, ClusterView } from '../cluster/port';
import type { Clock } from '../util/clock';
import type { FaultSpec } from '../wire/client-protocol';
import type { NodeState } from './state';
import { MUTATION } from '../util/mutation';
import { probe } from '../util/probe';

export function clusterOptions(c: Config): ClusterOptions {
  return {
    node: { id: c.node.id, name: c.node.name, address: c.node.address, port: c.node.port, lockPort: c.node.lockPort },
    cluster: { name: c.cluster.name, keyFile: c.cluster.keyFile, tiebreaker: c.cluster.tiebreaker },
    peers: c.peers.map((p) => ({ id: p.id, name: p.name, address: p.address, port: p.port, lockPort: p.lockPort })),
    timing: { leaseTimeoutMs: c.timing.leaseTimeoutMs, renewIntervalMs: c.timing.renewIntervalMs, lockLinkPingMs: c.timing.lockLinkPingMs, lockLinkDeadMs: c.timing.lockLinkDeadMs },
    lvbSize: c.locking.lvbSize,
  };
}


export interface TcpClusterPortOptions {
  config: Config; sys: ActorSystem; log: Logger; clock: Clock; state: NodeState;
  /** Simulation: another network (SimNetwork host), the key itself, a fixed incarnation, seeded jitter. */
  sim?: { network: Network; key: Buffer; incarnation: number; random: () => number };
  /**
   * Run the cluster layer in a worker thread (mxfsd). Needs the real clock and network; the
   * log settings are for the worker's own log streams (syslog records come back here).
   */
  worker?: { logLevel?: string; syslogRecord?(rec: Record<string, unknown>): void; onFatal?(err: Error): void };
}

export class TcpClusterPort implements ClusterPort {
  readonly node: ClusterLayer;
  /** The DlmChannel's actor: every lock message, frame, ack and timer of the channel is a message of its mailbox. */
  private readonly channelActor: DlmChannelActor;
  /** The lock engine's own links to the peers (direct-link.ts): mxfsd with lock_port only. */
  private readonly direct?: DirectLinks;
  private h?: ClusterHandlers;
  private v: ClusterView = { epoch: 0, members: [], quorate: false };
  private readonly fault: PeerFaults = { blocked: new Set<number>(), drop: 0, delayMs: 0 };
  /** Fault injection: the lock links that lose every frame (DirectLinks.setBlackhole). */
  private blackhole = new Set<number>();
  private readonly renewalListeners: Array<(r: RenewalReport) => void> = [];
  private readonly peerRenewalListeners: Array<(from: number) => void> = [];

  constructor(private readonly o: TcpClusterPortOptions) {
    const config = clusterOptions(o.config);
    if (o.sim) config.cluster.key = o.sim.key;
    const events: ClusterLayerEvents = {
      onEvent: (ev) => this.onEvent(ev),
      onRenewal: (r) => { for (const l of this.renewalListeners) l(r); },
      onPeerRenewal: (from) => { for (const l of this.peerRenewalListeners) l(from); },
      onDlmFrame: (from, frame) => this.channelActor.receive(from, frame),
      onLinkEvent: (ev) => { if (ev.type === 'up') this.channelActor.linkUp(ev.peer); },
    };
    const promised = MUTATION.noTokenFloor ? 0 : o.state.promisedEpoch;
    if (o.worker) {
      if (o.sim) throw new Error('TcpClusterPort: the worker thread runs on the real clock and network, not in a simulation');
      // Read here, so a missing or loose key file stops mxfsd with its one-line reason.
      if (!config.cluster.key && config.cluster.keyFile) config.cluster.key = loadClusterKey(config.cluster.keyFile);
      this.node = new ClusterWorker({
        ...events, config, incarnation: randomInt(1, MAX_INCARNATION + 1), stateDir: o.state.dir, promisedEpoch: promised,
        logging: o.config.logging, logLevel: o.worker.logLevel, syslogRecord: o.worker.syslogRecord, onFatal: o.worker.onFatal,
        stallMs: o.config.timing.clientTimeoutMs, clock: o.clock, log: o.log.child({ actor: 'cluster' }), faults: this.fault,
        // Tracing: the worker's events are recorded here, by the node's recorder (src/trace/worker-tracer.ts).
        ...(o.config.trace?.enabled ? { trace: { events: (b) => o.sys.recorder?.forwardedBatch(b), context: () => o.sys.recorder?.context(), causedBy: (w, fn) => (o.sys.recorder ? o.sys.recorder.causedByWorker(w, fn) : fn()) } } : {}),
      });
    } else {
      this.node = new ClusterNode({
        ...events,
        epochStore: { load: () => promised, save: (e) => o.state.promise(e) },
        config, network: o.sim?.network ?? new TcpNetwork(), clock: o.clock, system: o.sys, log: o.log.child({ actor: 'cluster' }),
        incarnation: o.sim?.incarnation, random: o.sim?.random,
        tuning: o.sim ? { backoff: { initialMs: 100, maxMs: 1000 }, connectTimeoutMs: 500, handshakeTimeoutMs: 1000 } : undefined,
        faults: this.fault,
      });
    }
    this.channelActor = new DlmChannelActor(o.sys, {
      selfInc: this.node.incarnation, clock: o.clock, log: o.log.child({ actor: 'dlm-channel' }),
      transmit: (to, frame) => { if (!this.direct?.send(to, frame)) this.node.send(to, frame); },
      deliver: (from, msg) => { probe('m.deliver', msg.t); this.h?.onMessage(from, msg); },
      refused: (to, msg, reason) => this.h?.onRefused?.(to, msg, reason),
      maxRtoMs: Math.max(200, Math.min(1000, o.config.timing.renewIntervalMs)),
    });
    if (o.worker && config.node.lockPort !== undefined && config.cluster.key) {
      const self = o.config.node.id;
      this.direct = new DirectLinks({
        config, key: config.cluster.key, network: new TcpNetwork(), clock: o.clock, system: o.sys, log: o.log.child({ actor: 'cluster' }),
        // Lock frames this way only while this node may grant and the peer is in its view (direct-link.ts).
        admit: (peer) => admitLockFrames(this.v, this.node.canGrant(), self, peer),
        deliver: (from, frame) => this.channelActor.receive(from, frame),
        // What was written on it may be lost: resend it now (the worker's way), not after the channel's timeout.
        onDown: (peer) => this.channelActor.linkUp(peer),
      });
      this.direct.setFaults(this.fault);
    }
  }

  get selfId(): number { return this.o.config.node.id; }
  /** The sequencing core (counters and streams, for status and tests). */
  get channel(): DlmChannel { return this.channelActor.channel; }

  async start(): Promise<void> {
    await this.node.start();
    await this.direct?.start();
  }

  view(): ClusterView { return this.v; }
  canGrant(): boolean { return this.node.canGrant(); }
  quorumUntil(): number { return this.node.quorumUntil(); }
  traceSync(): Promise<void> { return this.node instanceof ClusterWorker ? this.node.traceSync() : Promise.resolve(); }
  setHandlers(h: ClusterHandlers): void { this.h = h; }
  onRenewal(listener: (r: RenewalReport) => void): void { this.renewalListeners.push(listener); }
  onPeerRenewal(listener: (from: number) => void): void { this.peerRenewalListeners.push(listener); }

  /** Lock messages are bounded by construction (MAX_DLM_LIST_BYTES): see dlm-messages.ts. */
  send(to: number, msg: DlmPeerMsg): void { probe('m.rsend', msg.t); this.channelActor.send(to, msg); }

  setFault(spec: FaultSpec): void {
    switch (spec.action) {
      case 'partition': this.fault.blocked = new Set(spec.peers); break;
      case 'heal':
        this.fault.blocked = new Set(); this.fault.drop = 0; this.fault.delayMs = 0; this.fault.mute = false;
        this.blackhole = new Set(); this.direct?.setBlackhole(this.blackhole);
        break;
      case 'mute': this.fault.mute = true; break;
      case 'blackhole': this.blackhole = new Set(spec.peers); this.direct?.setBlackhole(this.blackhole); return;
      case 'drop': this.fault.drop = spec.fraction; break;
      case 'delay': this.fault.delayMs = spec.ms; break;
      case 'reset':
        for (const p of this.o.config.peers) { this.node.dropLink(p.id, 'fault injection: link reset'); this.direct?.dropLink(p.id, 'fault injection: link reset'); }
        return;
    }
    this.node.setFaults(this.fault);
    this.direct?.setFaults(this.fault);
  }

  /** Reopen the worker thread's log files (SIGHUP); nothing to do in-thread. */
  reopenLogs(): void { if (this.node instanceof ClusterWorker) this.node.reopenLogs(); }

  async status(): Promise<unknown> {
    const [st, lockLinks] = await Promise.all([this.node.status(), this.direct?.status() ?? []]);
    const now = this.o.clock.now();
    const links = new Map(st.links.map((l) => [l.peer, l]));
    return {
      transport: 'tcp',
      inQuorum: st.inQuorum,
      // Time left before this node's quorum lapses unless a renewal is acknowledged: it
      // counts down between renewals and jumps back up with each acknowledged one.
      quorumExpiresInMs: Number.isFinite(st.quorumUntil) ? Math.max(0, Math.round(st.quorumUntil - now)) : null,
      live: st.live,
      proposing: st.proposing ?? null,
      yieldingTo: st.yieldingTo ?? null,
      lease: leaseFigures(st.renewals, leaseTimes(clusterOptions(this.o.config).timing).fenceAfterMs),
      // The Lease actors (src/cluster/lease.ts): each peer's lease and this node's self-fence deadline (`mxfsctl leases`).
      leases: st.leases ?? null,
      thread: st.thread ?? { isolation: 'none' },
      muted: st.muted ?? null,
      faults: { blocked: [...this.fault.blocked], drop: this.fault.drop, delayMs: this.fault.delayMs, mute: this.fault.mute === true, blackhole: [...this.blackhole] },
      lockMessages: { ...this.channel.stats },
      // The lock engine's own links (direct-link.ts): [] without lock_port; handshakes refused on lock_port, by code.
      lockLinks,
      lockLinkRefusals: this.direct?.refusals ?? {},
      peers: this.o.config.peers.map((p) => {
        const lease = st.peers.find((x) => x.id === p.id);
        const link = links.get(p.id);
        return {
          id: p.id, name: p.name, address: `${p.address}:${p.port}`,
          link: link?.phase ?? 'unknown', state: lease ? (lease.alive ? 'alive' : 'dead') : 'unknown',
          leaseAgeMs: lease?.lastHeardAgoMs === undefined ? null : Math.round(lease.lastHeardAgoMs),
          streams: this.channel.peerStatus(p.id),
        };
      }),
    };
  }

  async stop(): Promise<void> { this.channelActor.stop(); await this.direct?.stop(); await this.node.stop(); }

  private onEvent(ev: MembershipEvent): void {
    switch (ev.type) {
      case 'view':
        this.v = { epoch: ev.epoch, members: [...ev.members], quorate: this.node.canGrant() };
        for (const p of this.o.config.peers) if (!ev.members.includes(p.id)) this.channelActor.forget(p.id);
        break;
      case 'quorum':
        this.v = ev.has ? { epoch: ev.epoch, members: [...ev.members], quorate: true } : { ...this.v, quorate: false };
        break;
      default:
        return;
    }
    this.o.log.info({ epoch: this.v.epoch, members: this.v.members, quorate: this.v.quorate, event: ev.type }, 'cluster view');
    this.h?.onView(this.v);
  }
}

/**
 * The lease renewal figures for status (`mxfsctl nodes`): per-second buckets with wall-clock
 * times, so a benchmark can pick the seconds of one phase.
 */
export function leaseFigures(r: RenewalStats, fenceAfterMs: number): unknown {
  const wall = Date.now();
  return {
    fenceAfterMs, renewals: r.count, lastGapMs: r.lastGapMs ?? null, maxGapMs: r.maxGapMs ?? null, maxGapEverMs: r.maxGapEverMs ?? null,
    quorumLosses: r.quorumLosses,
    recent: r.recent.map((b) => ({ at: Math.round(wall - b.agoMs + 1000), maxGapMs: b.maxGapMs })),
  };
}
