/**
 * NodeMetrics: the optional Prometheus text endpoint of one mxfsd ([metrics] enabled,
 * address (loopback by default), port; docs/tracing.md, "Metrics").
 *
 * Owns: a prom-client Registry of its own (several daemons may share a process in tests), the
 * histograms fed while the node runs (lock request latency as the client sees it, wait time
 * on the master, recovery duration, gaps between lease renewals heard from each peer), and the
 * HTTP listener. Everything else is read when Prometheus scrapes: the lock engine's counters
 * (LockStats), the router (state, epoch, recoveries), the cluster port's status (peers, links,
 * lease ages, the lock-message channel), the trace recorder, the volumes.
 * With [metrics] enabled = false nothing is registered and no hook is installed.
 */
import http from 'node:http';
import type Logger from 'bunyan';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ActorSystem } from '../actors/actor';
import type { SessionMetrics } from '../actors/client-session';
import type { LockStats } from '../actors/messages';
import type { LeaseStatus } from '../cluster/lease';
import type { ClusterPort } from '../cluster/port';
import type { Config } from '../config/config';
import type { LockRouter, RecoveryState } from '../daemon/lock-router';
import type { MemoryReclaimer } from '../daemon/reclaim';
import type { Clock } from '../util/clock';
import type { NodeTrace } from '../trace/node-trace';
import type { VolumeManager } from '../volumes/manager';
import { VOLUME_STATES } from '../volumes/volume-core';

export interface MetricsSources {
  config: Config;
  clock: Clock;
  log: Logger;
  sys: ActorSystem;
  stats: LockStats;
  router: LockRouter;
  port?: ClusterPort;
  trace: NodeTrace;
  sessions(): number;
  volumes(): VolumeManager | undefined;
  /** The idle collections after mass evictions (absent under a simulated clock). */
  reclaimer?: MemoryReclaimer;
}

const ROUTER_STATES: readonly RecoveryState[] = ['standalone', 'joining', 'running', 'recovering', 'no-quorum'];
/** Seconds: from 100 µs (a local grant) to 30 s (a long wait). */
const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** A counter whose value is read from the node's own count when scraped. */
function readCounter(reg: Registry, name: string, help: string, read: () => number): void {
  new Counter({ name, help, registers: [reg], collect() { this.reset(); this.inc(read()); } });
}

function readGauge(reg: Registry, name: string, help: string, read: () => number): void {
  new Gauge({ name, help, registers: [reg], collect() { this.set(read()); } });
}

export class NodeMetrics {
  readonly enabled: boolean;
  readonly registry = new Registry();
  /** Given to every client session (undefined when metrics are off: sessions measure nothing). */
  readonly session?: SessionMetrics;
  private server?: http.Server;
  private recoveryStart?: { epoch: number; at: number };
  private recoveryHist?: Histogram;
  private lostLocks = 0;
  private renewHeard = new Map<number, number>();
  private maxRenewGap = new Map<number, number>();

  constructor(private readonly o: MetricsSources) {
    this.enabled = o.config.metrics?.enabled === true;
    if (!this.enabled) return;
    const reg = this.registry;
    const s = o.stats;
    const requestHist = new Histogram({ name: 'mxfs_lock_request_seconds', help: 'Lock requests and conversions, from the client\'s request to the grant or failure (as a client of this node sees it)', labelNames: ['op', 'outcome'], buckets: LATENCY_BUCKETS, registers: [reg] });
    const waitHist = new Histogram({ name: 'mxfs_lock_wait_seconds', help: 'Time a queued request or conversion waited for its grant on the resources this node masters', labelNames: ['op'], buckets: LATENCY_BUCKETS, registers: [reg] });
    this.session = {
      requestDone: (op, ms, granted) => requestHist.observe({ op, outcome: granted ? 'granted' : 'failed' }, ms / 1000),
      lost: (n) => { this.lostLocks += n; },
    };
    s.observeWait = (ms, conversion) => waitHist.observe({ op: conversion ? 'convert' : 'lock' }, ms / 1000);
    this.recoveryHist = new Histogram({ name: 'mxfs_recovery_seconds', help: 'Lock recoveries (from the new view to granting again)', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60], registers: [reg] });

    readCounter(reg, 'mxfs_lock_grants_total', 'Locks granted by the resources this node masters (conversions included)', () => s.grants);
    readCounter(reg, 'mxfs_lock_conversions_total', 'Conversions granted', () => s.conversions);
    readCounter(reg, 'mxfs_lock_waits_total', 'Requests and conversions that had to queue', () => s.waits);
    readCounter(reg, 'mxfs_lock_denials_total', 'Requests refused at once (NOQUEUE)', () => s.denials);
    readCounter(reg, 'mxfs_lock_deadlocks_total', 'Conversions failed as deadlocks', () => s.deadlocks);
    readCounter(reg, 'mxfs_lock_timeouts_total', 'Requests that timed out waiting', () => s.timeouts);
    readCounter(reg, 'mxfs_lock_basts_total', 'Blocking callbacks sent', () => s.basts);
    readCounter(reg, 'mxfs_lock_lost_total', 'Locks this node\'s clients were told they lost', () => this.lostLocks);
    readCounter(reg, 'mxfs_resource_evictions_total', 'Idle resources evicted', () => s.evictions);
    readCounter(reg, 'mxfs_lock_ops_total', 'Lock operations processed by the resources this node masters', () => s.ops);
    const rc = o.reclaimer;
    if (rc) {
      readCounter(reg, 'mxfs_idle_collections_total', 'Full garbage collections asked for once a mass eviction was over and the daemon idle', () => rc.collections);
      readCounter(reg, 'mxfs_malloc_trims_total', 'malloc_trim calls after an idle collection', () => rc.trims);
      readGauge(reg, 'mxfs_idle_collection_max_ms', 'How long the longest idle collection kept the lock engine\'s thread (ms)', () => rc.maxCollectMs);
    }
    readGauge(reg, 'mxfs_locks', 'Locks on the resources this node masters', () => s.locks);
    readGauge(reg, 'mxfs_resources', 'Active resources this node masters', () => s.resources);
    readGauge(reg, 'mxfs_lock_queue_depth', 'Locks waiting or converting on the resources this node masters', () => s.queued);
    readGauge(reg, 'mxfs_clients', 'Connected client sessions', () => o.sessions());

    const r = o.router;
    readGauge(reg, 'mxfs_epoch', 'Committed membership epoch', () => r.epoch);
    readGauge(reg, 'mxfs_members', 'Members of the committed view', () => r.members.length);
    readCounter(reg, 'mxfs_recoveries_total', 'Lock recoveries started', () => r.stats.recoveries);
    readGauge(reg, 'mxfs_recovery_last_seconds', 'Duration of the last lock recovery', () => (r.stats.lastRecoveryMs ?? 0) / 1000);
    readCounter(reg, 'mxfs_recovery_records_sent_total', 'Lock records this node sent to other masters in recoveries', () => r.stats.recordsSent);
    readCounter(reg, 'mxfs_recovery_resources_rebuilt_total', 'Resources this node rebuilt from records in recoveries', () => r.stats.resourcesRebuilt);
    readCounter(reg, 'mxfs_dlm_stale_dropped_total', 'Lock messages of an older epoch dropped', () => r.stats.staleDropped);
    new Gauge({
      name: 'mxfs_node_state', help: 'The lock router\'s state (1 for the current one)', labelNames: ['state'], registers: [reg],
      collect() { for (const st of ROUTER_STATES) this.set({ state: st }, r.state === st ? 1 : 0); },
    });

    const tr = o.trace;
    readCounter(reg, 'mxfs_trace_events_total', 'Trace events recorded', () => tr.recorder?.stats.recorded ?? 0);
    readCounter(reg, 'mxfs_trace_evicted_total', 'Trace events overwritten in the ring', () => tr.recorder?.stats.evicted ?? 0);
    readCounter(reg, 'mxfs_trace_dropped_total', 'Trace events the file sink could not keep up with', () => tr.recorder?.stats.dropped ?? 0);

    if (o.port) this.clusterMetrics(reg, o.port);
    this.volumeMetrics(reg);
  }

  private clusterMetrics(reg: Registry, port: ClusterPort): void {
    type PeerStatus = { id: number; link?: string; state?: string; leaseAgeMs?: number | null };
    type PortStatus = { peers?: PeerStatus[]; quorumExpiresInMs?: number | null; lockMessages?: { unacked?: number; retransmitted?: number }; leases?: LeaseStatus | null };
    const status = async (): Promise<PortStatus> => {
      try { return (await port.status()) as PortStatus; } catch { return {}; }
    };
    new Gauge({
      name: 'mxfs_peer_up', help: 'Per configured peer: 1 when its lease is alive', labelNames: ['peer'], registers: [reg],
      async collect() { this.reset(); for (const p of (await status()).peers ?? []) this.set({ peer: String(p.id) }, p.state === 'alive' ? 1 : 0); },
    });
    new Gauge({
      name: 'mxfs_peer_link_up', help: 'Per configured peer: 1 when the peer link is connected', labelNames: ['peer'], registers: [reg],
      async collect() { this.reset(); for (const p of (await status()).peers ?? []) this.set({ peer: String(p.id) }, p.link === 'up' ? 1 : 0); },
    });
    new Gauge({
      name: 'mxfs_lease_age_seconds', help: 'Per peer: time since anything was last heard from it', labelNames: ['peer'], registers: [reg],
      async collect() { this.reset(); for (const p of (await status()).peers ?? []) if (typeof p.leaseAgeMs === 'number') this.set({ peer: String(p.id) }, p.leaseAgeMs / 1000); },
    });
    new Gauge({
      name: 'mxfs_quorum_lease_remaining_seconds', help: 'Time left before this node fences itself unless renewals are acknowledged (its own self-fence deadline)', registers: [reg],
      async collect() { const q = (await status()).quorumExpiresInMs; this.set(typeof q === 'number' ? q / 1000 : 0); },
    });
    // The Lease actors (src/cluster/lease.ts), one per peer: when its lease expires, the last gap between its renewals, how long its acknowledgement vouches for this node.
    const leaseGauge = (name: string, help: string, value: (p: LeaseStatus['peers'][number]) => number | null) => new Gauge({
      name, help, labelNames: ['peer'], registers: [reg],
      async collect() { this.reset(); for (const p of (await status()).leases?.peers ?? []) { const v = value(p); if (v !== null) this.set({ peer: String(p.peer) }, v / 1000); } },
    });
    leaseGauge('mxfs_lease_expires_in_seconds', 'Per peer: time until its lease expires (it is judged dead) unless it renews; negative once expired', (p) => p.expiresInMs);
    leaseGauge('mxfs_lease_last_renewal_gap_seconds', 'Per peer: time between the last two renewals heard from it', (p) => p.lastGapMs);
    leaseGauge('mxfs_lease_vouches_remaining_seconds', 'Per peer: how long its last acknowledgement of this node\'s renewal still counts towards this node\'s quorum', (p) => p.vouchesForMs);
    new Gauge({
      name: 'mxfs_dlm_unacked', help: 'Lock messages to peers not yet acknowledged (the channel\'s queue depth)', registers: [reg],
      async collect() { this.set((await status()).lockMessages?.unacked ?? 0); },
    });
    const gaps = new Histogram({ name: 'mxfs_lease_renewal_gap_seconds', help: 'Time between consecutive lease renewals heard from a peer', labelNames: ['peer'], buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30], registers: [reg] });
    const maxGap = this.maxRenewGap;
    new Gauge({
      name: 'mxfs_lease_renewal_gap_max_seconds', help: 'Longest time between consecutive renewals heard from a peer since this node started', labelNames: ['peer'], registers: [reg],
      collect() { for (const [p, ms] of maxGap) this.set({ peer: String(p) }, ms / 1000); },
    });
    // Every renewal heard from a peer (the port reports them; with the cluster layer in its
    // worker thread they cross from there).
    const clock = this.o.clock;
    this.o.port?.onPeerRenewal?.((from) => {
      const now = clock.now();
      const last = this.renewHeard.get(from);
      this.renewHeard.set(from, now);
      if (last === undefined) return;
      gaps.observe({ peer: String(from) }, (now - last) / 1000);
      if (now - last > (maxGap.get(from) ?? 0)) maxGap.set(from, now - last);
    });
  }

  private volumeMetrics(reg: Registry): void {
    const volumes = this.o.volumes;
    new Gauge({
      name: 'mxfs_volume_state', help: 'Per volume: 1 for its state on this node', labelNames: ['volume', 'state'], registers: [reg],
      async collect() {
        this.reset();
        const vm = volumes();
        if (!vm) return;
        for (const v of await vm.localStatus().catch(() => [])) for (const st of VOLUME_STATES) this.set({ volume: v.volume, state: st }, v.state === st ? 1 : 0);
      },
    });
  }

  /** RouterListener.onState: recovery durations. */
  onRouterState(state: RecoveryState, epoch: number): void {
    if (!this.enabled) return;
    const now = this.o.clock.now();
    if (state === 'recovering') this.recoveryStart = { epoch, at: now };
    else if (state === 'running' && this.recoveryStart?.epoch === epoch) {
      this.recoveryHist?.observe((now - this.recoveryStart.at) / 1000);
      this.recoveryStart = undefined;
    }
  }

  /** Starts the HTTP listener (GET /metrics) when [metrics] is enabled. */
  async start(): Promise<void> {
    if (!this.enabled) return;
    const { address, port, maxConnections } = this.o.config.metrics;
    // Renders run on the lock engine's thread (a few ms each). One request per connection at a
    // time: a client pipelining a second request before the first is answered is cut off (a
    // scraper never does; thousands of pipelined GETs would otherwise be rendered one after the
    // other and stall the engine for seconds). And scrapes that arrive during a render share it.
    const answering = new WeakSet<object>();
    const server = http.createServer((req, res) => {
      const sock = req.socket;
      if (sock.destroyed) return;
      if (answering.has(sock)) {
        this.o.log.warn({ remote: sock.remoteAddress }, 'metrics client pipelined requests; closing its connection');
        sock.destroy();
        return;
      }
      answering.add(sock);
      res.on('close', () => answering.delete(sock));
      if (req.method !== 'GET' || (req.url !== '/metrics' && !req.url?.startsWith('/metrics?'))) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('mxfsd serves /metrics only\n');
        return;
      }
      this.render().then(
        (text) => { if (!res.destroyed) res.writeHead(200, { 'content-type': this.registry.contentType }).end(text); },
        (e: Error) => { if (!res.destroyed) res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${e.message}\n`); },
      );
    });
    // Its own bound on connections ([metrics] max_connections): one more is closed at once,
    // unread, so that whoever reaches the port cannot hold the daemon's file descriptors (a
    // scraper needs one or two).
    server.maxConnections = maxConnections;
    let dropped = 0;
    let warnedAt: number | undefined;
    server.on('drop', (d?: { remoteAddress?: string }) => {
      dropped++;
      const now = this.o.clock.now();
      if (warnedAt !== undefined && now - warnedAt < 60_000) return;
      warnedAt = now;
      this.o.log.warn({ remote: d?.remoteAddress, dropped }, `metrics endpoint: a connection beyond [metrics] max_connections (${maxConnections}) closed (${dropped} so far)`);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new Error(`[metrics] cannot listen on ${address}:${port}: ${e.message}`)));
      server.listen(port, address, () => resolve());
    });
    server.on('error', (e) => this.o.log.error({ err: e }, 'metrics endpoint error'));
    this.server = server;
    this.o.log.info({ address, port: this.port }, 'metrics endpoint listening');
  }

  /** The render in progress, shared by every scrape that arrives while it runs. */
  private rendering?: Promise<string>;

  private render(): Promise<string> {
    return this.rendering ??= this.registry.metrics().finally(() => { this.rendering = undefined; });
  }

  /** The bound port (the configured one; useful when 0 was configured in tests). */
  get port(): number | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : undefined;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => { s.close(() => r()); s.closeAllConnections?.(); });
  }
}
