/**
 * Daemon: assembles one mxfsd node — actor system, lock table, client socket server,
 * in-process clients — and answers the inspection queries (status, locks).
 *
 * Owns: the Unix socket listener, the map of live client sessions, the LockTable, the
 * daemon-wide admission count, and the node's exclusive locks (state_dir, socket).
 * Lifecycle: start() listens; stop() tells every client its locks are lost, purges them,
 * closes the socket and stops the actors.
 *
 * A client connection: frames are decoded and validated here. A frame that cannot be decoded,
 * or has no usable type and request id, cuts the connection (there is nobody to answer); a
 * request with a bad field is answered INVALID by its session and the connection stays.
 * Backpressure instead of buffering: the daemon stops reading a client's requests while more
 * than MAX_UNHANDLED of them wait for its session actor, or while its output queue holds more
 * than a quarter of max_client_output_bytes (the client does not read its replies); they then
 * wait in the kernel's socket buffer and the client's writes block. So no client can make the
 * daemon buffer without bound. Inspection answers (status, locks, trace: up to a frame each,
 * and a coalesced run answers many at once) are refused BUSY instead of queued while the
 * output queue is above that quarter, so replies alone never overflow it (max_client_output_
 * bytes >= 2 * max_frame_bytes); a client is cut off only when its output queue exceeds
 * max_client_output_bytes through asynchronous events.
 * Inspection (status, locks) runs through a Coalescer: N identical queries at once cost at
 * most two runs.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type Logger from 'bunyan';
import { ActorSystem, Ref } from '../actors/actor';
import { clientSessionDef, DaemonInfo, SessionMsg } from '../actors/client-session';
import { LockTable } from '../actors/lockspace';
import { LockspaceMsg, newLockStats, ResourceInspection, ResourceList, ResourceMsg } from '../actors/messages';
import type { ResourceView } from '../dlm/resource';
import { modeName } from '../dlm/modes';
import { ClientTransport, MxfsClient } from '../client/client';
import type { Config } from '../config/config';
import { ClientRequest, DaemonMessage, FaultSpec, ProtocolError, RequestError, validateClientRequest } from '../wire/client-protocol';
import { decodeTransientPayload, encodedSize, encodeFrame, encodeReplyFrame, fitList, FrameDecoder, FrameError } from '../wire/frame';
import { invalidUtf8Fields } from '../wire/utf8-fields';
import { readIntoBuffer } from '../util/socket-read';
import { Coalescer } from '../util/coalesce';
import { NodeLock } from './node-lock';
import type { Admission } from '../actors/client-session';
import { SLICE } from '../util/slices';
import { MUTATION } from '../util/mutation';
import { Clock, systemClock } from '../util/clock';
import { LoopMonitor } from '../util/loop-monitor';
import { MemoryReclaimer } from './reclaim';
import type { ClusterPort } from '../cluster/port';
import { EPOCH_TOKEN_SHIFT, LockRouter, RecoveryState } from './lock-router';
import { NodeState } from './state';
import { Purger } from './purger';
import { rendezvousOwner } from '../cluster/rendezvous';
import { resolveGroup } from '../ffi/groups';
import { listenClientSocket } from './client-socket';
import { VERSION } from '../version';
import { VolumeManager } from '../volumes/manager';
import type { VolumeDriver } from '../volumes/driver';
import { VolumeRequestError } from '../actors/client-session';
import { NodeTrace, TraceRequest } from '../trace/node-trace';
import { NodeMetrics } from '../metrics/metrics';
import { INODE_LOCKS_DEFAULT_LIMIT, KernelInodeLocksReport, KernelRequest, listKernelInodeLocks } from './kernel-inode-locks';
import { KernelNotAttached } from '../actors/kernel-bridge';
import { busyFor } from '../util/thread-sched';
import { probe } from '../util/probe';

export { VERSION };

/** Requests decoded for a session and not yet handled by it, beyond which reading pauses. */
const MAX_UNHANDLED = 512;
/** Room kept for the reply envelope ({type, id, ok, data}) around a `locks` answer. */
const REPLY_ENVELOPE_BYTES = 256;

export interface DaemonOptions {
  config: Config;
  log: Logger;
  clock?: Clock;
  /** Lets 'fault' messages crash a resource actor (tests of supervision only). */
  faultInjection?: boolean;
  /** The cluster (absent: a standalone node); a factory gets the daemon's actor system and state. */
  port?: ClusterPort | ((sys: ActorSystem, state: NodeState) => ClusterPort);
  masterOf?: (lockspace: string, resource: string, members: number[]) => number;
  /**
   * Listen on the client socket (default true). The whole-cluster simulation runs daemons
   * with in-process clients only: no real I/O, so a seed replays exactly.
   */
  listen?: boolean;
}

interface SessionInfo {
  ref: Ref<SessionMsg>;
  /** Straight to the client, bypassing the session's mailbox (fence: see LockRouter.tellLost). */
  emit(m: DaemonMessage): void;
  client: string;
  pid?: number;
  /** Set by the connection's first hello (client and pid come from it). */
  named?: boolean;
  transport: 'socket' | 'local';
  since: number;
}

export interface KernelStatusSource {
  status(): unknown;
  /** A daemon->kernel command (the kernel bridge's request()); absent with kernel = off. */
  request?: KernelRequest;
}

export class Daemon implements DaemonInfo {
  readonly sys: ActorSystem;
  readonly table: LockTable;
  readonly router: LockRouter;
  /** Routes the purges of ended sessions, a slice per turn. */
  readonly purger: Purger;
  readonly clock: Clock;
  /** Event-loop delay per second (real time only: absent under a simulated clock). */
  readonly loop?: LoopMonitor;
  /** One full collection and a malloc trim once a mass eviction is over (real time only; reclaim.ts). */
  readonly reclaimer?: MemoryReclaimer;
  private server?: net.Server;
  private sessions = new Map<number, SessionInfo>();
  private ended = new Map<number, () => void>();
  private nextSession = 1;
  private startedAt: number;
  private stopping = false;
  /** Open client socket connections, against [locking] max_clients. */
  private socketConnections = 0;
  readonly port?: ClusterPort;
  /** Durable node state ([node] state_dir): boot generation, promised epoch. */
  readonly state: NodeState;
  kernel?: KernelStatusSource;
  /** Requests in flight over every session ([locking] max_requests). */
  readonly admission: Admission;
  /** Unlocks answered early (client-session.ts, 'unlock') that then failed at the master. */
  releaseFailures = 0;
  /** Inspection queries, coalesced (see the header). */
  readonly inspections = new Coalescer<any>();
  private socketLock?: NodeLock;
  private readonly stateListeners: Array<(state: RecoveryState, epoch: number) => void> = [];
  /** The node's volumes (absent until startVolumes, and when none is configured). */
  volumes?: VolumeManager;
  /** [trace]: the message trace and `mxfsctl trace`/`why` (docs/tracing.md). */
  readonly tracing: NodeTrace;
  /** [metrics]: the Prometheus endpoint (started by start() when enabled). */
  readonly metrics: NodeMetrics;

  constructor(private readonly o: DaemonOptions) {
    this.clock = o.clock ?? systemClock;
    if (this.clock === systemClock) this.loop = new LoopMonitor();
    this.sys = new ActorSystem(o.log);
    this.tracing = new NodeTrace({ config: o.config, clock: this.clock, log: o.log.child({ actor: 'trace' }), sys: this.sys });
    this.table = new LockTable(this.sys, {
      lvbSize: o.config.locking.lvbSize,
      idleEvictMs: o.config.locking.idleEvictMs,
      clock: this.clock,
      stats: newLockStats(),
      faultInjection: o.faultInjection ?? false,
      leaseHeld: () => this.router.leaseHeld(),
    });
    if (this.clock === systemClock) this.reclaimer = new MemoryReclaimer({ stats: this.table.stats });
    this.startedAt = this.clock.now();
    this.admission = { inFlight: 0, max: o.config.locking.maxRequests };
    this.state = NodeState.open(o.config.node.stateDir);
    this.port = typeof o.port === 'function' ? o.port(this.sys, this.state) : o.port;
    this.router = new LockRouter({
      sys: this.sys, table: this.table, selfId: o.config.node.id, port: this.tracing.wrapPort(this.port),
      masterOf: o.masterOf ?? rendezvousOwner,
      session: (id) => this.sessions.get(id)?.ref,
      sessions: () => [...this.sessions.values()].map((x) => x.ref),
      tellLost: (reason) => { for (const s of this.sessions.values()) s.emit({ type: 'lost', reason }); },
      log: o.log.child({ actor: 'router' }), clock: this.clock, queryTimeoutMs: o.config.timing.queryTimeoutMs,
      inspectLocal: (f) => this.localLocks(f),
      onState: (st, epoch) => { for (const l of this.stateListeners) l(st, epoch); },
    });
    this.purger = new Purger((ls, res, msg, epoch) => this.router.route(ls, res, msg, epoch));
    const masterOf = o.masterOf ?? rendezvousOwner;
    this.tracing.attach({ locks: (f) => this.locks(f), router: () => this.router, masterOf });
    this.metrics = new NodeMetrics({ config: o.config, clock: this.clock, sys: this.sys, stats: this.table.stats, router: this.router, port: this.port, trace: this.tracing, sessions: () => this.sessions.size, volumes: () => this.volumes, reclaimer: this.reclaimer, log: o.log.child({ actor: 'metrics' }) });
    this.router.listen({ onState: (state, epoch) => { this.tracing.onRouterState(state, epoch); this.metrics.onRouterState(state, epoch); } });
  }

  /** Called with every change of the lock engine's state (joining, recovering, running, no-quorum). */
  onStateChange(listener: (state: RecoveryState, epoch: number) => void): void { this.stateListeners.push(listener); }

  get config(): Config { return this.o.config; }
  get log(): Logger { return this.o.log; }
  get socketPath(): string { return this.o.config.node.socket; }

  async start(): Promise<void> {
    // A standalone node's tokens count from its boot generation * 2^32, so a restarted
    // node never issues a token below one it issued before. (In a cluster the epoch plays
    // this role, and the membership layer persists it.)
    this.loop?.start();
    this.reclaimer?.start();
    const gen = this.state.nextGeneration();
    if (!this.port) {
      if (gen >= 2 ** 21) throw new Error(`boot generation ${gen} exhausts the token space (2^21 restarts)`);
      this.table.reset(MUTATION.noTokenFloor ? 0 : gen * EPOCH_TOKEN_SHIFT, (gen + 1) * EPOCH_TOKEN_SHIFT);
    }
    if (this.o.listen !== false) await this.listen();
    await this.metrics.start();
    await this.port?.start?.();
    this.log.info({ socket: this.o.listen !== false ? this.socketPath : null, node: this.o.config.node.id }, 'mxfsd listening');
  }

  private async listen(): Promise<void> {
    const p = this.socketPath;
    const node = this.o.config.node;
    const gid = node.socketGroup === undefined ? undefined : resolveGroup(node.socketGroup);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    // Only the holder of the socket's lock may remove a stale socket file and listen: two
    // daemons starting at once on one path cannot both find it stale and both listen.
    this.socketLock = NodeLock.acquire(`${p}.lock`, `socket ${p}`);
    // Paused: accept() sets up the socket's reads into CLIENT_READ_BUFFER before any.
    const server = net.createServer({ pauseOnConnect: true }, (sock) => this.accept(sock));
    await listenClientSocket(server, { path: p, mode: node.socketMode, gid });
    server.on('error', (e) => this.log.error({ err: e }, 'client socket error'));
    this.server = server;
  }

  /**
   * The volumes' side of the node: one Volume actor per [volume]. Called once the kernel
   * support is up (a kernel-mode volume needs its driver).
   */
  async startVolumes(kernelDriver?: () => VolumeDriver): Promise<void> {
    if (this.o.config.volumes.length === 0) return;
    const vm = new VolumeManager({
      config: this.o.config, log: this.log.child({ actor: 'volumes' }), clock: this.clock, sys: this.sys, router: this.router,
      port: this.port, stateDir: this.o.config.node.stateDir, connect: () => this.connectLocal('volumes'),
      ...(kernelDriver ? { kernelDriver } : {}),
    });
    this.volumes = vm;
    await vm.start();
  }

  async volume(req: Extract<ClientRequest, { type: 'volume' }>, gone?: AbortSignal): Promise<unknown> {
    const vm = this.volumes;
    if (!vm) throw new VolumeRequestError('UNKNOWN_VOLUME', `no volume is configured on node ${this.o.config.node.id}${req.volume ? ` (asked for '${req.volume}')` : ''}`);
    if (req.op === 'status') {
      try { return await vm.volumesReport(req.volume); } catch (e) { throw new VolumeRequestError('UNKNOWN_VOLUME', (e as Error).message); }
    }
    const r = await vm.request(req.op, req.volume!, { wait: req.wait, timeoutMs: req.timeoutMs, gone });
    if (!r.ok) throw new VolumeRequestError(r.code, r.message);
    return { message: r.message, volume: req.volume, node: this.o.config.node.id };
  }

  /**
   * Clean shutdown: every client is told its locks are lost; each client's locks are released
   * once it has closed its connection (the client library does so after marking its handles
   * lost) or gone silent for client_timeout_ms + client_keepalive_ms, within
   * shutdown_grace_ms. Locks of a client that did neither in time are not released by this
   * node: the others take them back when its lease runs out, as after a crash.
   */
  async stop(reason = 'mxfsd shutting down'): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.server?.close();
    // Volumes first, while the cluster still runs: unmount and hand over cleanly where possible.
    if (this.volumes) await this.volumes.shutdown(this.o.config.timing.shutdownGraceMs).catch((e: Error) => this.log.error({ err: e }, 'volume shutdown failed'));
    const waits = [...this.sessions.keys()].map((id) => new Promise<void>((r) => this.ended.set(id, r)));
    for (const s of this.sessions.values()) this.sys.send(s.ref, { type: 'lostAll', reason, untilClosed: true });
    await Promise.race([Promise.all(waits).then(() => this.purger.idle()), new Promise((r) => setTimeout(r, this.o.config.timing.shutdownGraceMs).unref())]);
    // Let the purges reach the resources before the actors stop.
    await new Promise((r) => setTimeout(r, 20));
    if (this.server) try { fs.unlinkSync(this.socketPath); } catch { /* already gone */ }
    await this.port?.stop();
    this.loop?.stop();
    this.reclaimer?.stop();
    this.sys.shutdown();
    await this.metrics.stop();
    await this.tracing.close();
    this.releaseNodeLocks();
    this.log.info({ reason }, 'mxfsd stopped');
  }

  /**
   * Give up the state_dir and socket locks. stop() does it; a simulated process crash (an
   * in-process daemon dropped without stop()) must do it too, as the kernel would.
   */
  releaseNodeLocks(): void {
    this.state.close();
    this.socketLock?.release();
  }

  /** An in-process client on its own session (kernel bridge, tests). */
  connectLocal(name: string): Promise<MxfsClient> {
    return MxfsClient.start(this.localTransport(), { name, clock: this.clock });
  }

  /**
   * An in-process transport on a new session: requests go to the session as they are (the
   * caller is trusted code: the kernel bridge, the client library, the simulation's clients),
   * messages come back asynchronously.
   */
  localTransport(): ClientTransport {
    let session: Ref<SessionMsg> | undefined;
    let closed = false;
    const t: ClientTransport = {
      send: (req: ClientRequest) => { if (!closed && session) this.sys.send(session, { type: 'client', req }); },
      close: () => {
        if (closed) return;
        closed = true;
        if (session) this.sys.send(session, { type: 'disconnected', reason: 'local client closed' });
        t.onClose?.('closed by client');
      },
    };
    session = this.openSession('local', (msg) => { if (!closed) queueMicrotask(() => t.onMessage?.(msg)); }, (reason) => {
      if (closed) return;
      closed = true;
      queueMicrotask(() => t.onClose?.(reason));
    });
    return t;
  }

  private openSession(transport: 'socket' | 'local', emit: (m: DaemonMessage) => void, close: (reason: string) => void, handled?: () => void, outputBacklog?: () => string | undefined): Ref<SessionMsg> {
    const id = this.nextSession++;
    const c = this.o.config;
    const info: SessionInfo = { ref: undefined as never, emit, client: '?', transport, since: Date.now() };
    info.ref = this.sys.spawn<any, SessionMsg>(undefined, 'session', clientSessionDef({
      sessionId: id, nodeId: c.node.id, nodeName: c.node.name, clock: this.clock,
      route: (ls, res, msg, epoch) => this.router.route(ls, res, msg, epoch), epoch: this.router.epoch,
      keepaliveMs: c.timing.clientKeepaliveMs, clientTimeoutMs: c.timing.clientTimeoutMs, lvbSize: c.locking.lvbSize,
      maxFrameBytes: c.locking.maxFrameBytes, maxLocks: c.locking.maxLocksPerClient,
      maxInFlight: transport === 'socket' ? c.locking.maxRequestsPerClient : undefined, admission: this.admission, info: this,
      emit, close, handled, outputBacklog, metrics: this.metrics.session,
      releaseFailed: (code, message) => {
        this.releaseFailures++;
        this.log.warn({ session: id, code }, `an unlock already answered failed at the master (${message}); the lock is purged when the session ends`);
      },
      purge: (owner, epoch, targets) => this.purger.add(owner, epoch, targets),
      onEnd: (sid) => {
        const ref = this.sessions.get(sid)?.ref;
        this.sessions.delete(sid);
        if (ref) this.router.sessionEnded(ref);
        this.ended.get(sid)?.();
        this.ended.delete(sid);
      },
    }), { session: id });
    this.sessions.set(id, info);
    this.sys.send(info.ref, { type: 'tick' }); // starts the keepalive timer and the hello deadline
    return info.ref;
  }

  private accept(sock: net.Socket): void {
    const node = this.o.config.node.id;
    if (this.stopping) { this.refuse(sock, `mxfsd on node ${node} is shutting down`); return; }
    // Not net.Server.maxConnections: it closes the connection without a word, and the client
    // could only report a broken pipe.
    const maxClients = this.o.config.locking.maxClients;
    if (this.socketConnections >= maxClients) {
      this.refuse(sock, `mxfsd on node ${node} already has ${this.socketConnections} client connections, its limit ([locking] max_clients); try again once one closes`);
      return;
    }
    this.socketConnections++;
    sock.once('close', () => { this.socketConnections--; });
    const max = this.o.config.locking.maxFrameBytes;
    const maxOutput = this.o.config.locking.maxClientOutputBytes;
    const pauseAt = Math.floor(maxOutput / 4);
    const dec = new FrameDecoder(max);
    let open = true;
    let paused = false;
    let unhandled = 0;
    const log = this.log;
    const mustWait = () => unhandled > MAX_UNHANDLED || sock.writableLength > pauseAt;
    const pauseOrResume = () => {
      if (!open) return;
      const wait = mustWait();
      if (wait && !paused) { paused = true; sock.pause(); } else if (!wait && paused) { paused = false; sock.resume(); }
    };
    const emit = (m: DaemonMessage) => {
      if (!open) return;
      try {
        probe('m.cout');
        sock.write(m.type === 'reply' ? encodeReplyFrame(m, max) : encodeFrame(m, max));
      } catch (e) {
        log.error({ err: e }, 'cannot encode a reply; cutting the client off');
        cut(`internal encoding error`);
        return;
      }
      const queued = sock.writableLength;
      if (queued > maxOutput) cut(`client is not reading (${queued} bytes queued; [locking] max_client_output_bytes is ${maxOutput})`);
      else if (queued > pauseAt && !paused) pauseOrResume();
    };
    // The client reads again: read its requests again.
    sock.on('drain', pauseOrResume);
    const cut = (reason: string) => {
      if (!open) return;
      open = false;
      sock.end();
      sock.destroySoon?.();
      this.clock.setTimer(() => sock.destroy(), 1000);
      this.sys.send(ref, { type: 'disconnected', reason });
    };
    const ref = this.openSession('socket', emit, (reason) => {
      if (!open) return;
      open = false;
      log.debug({ reason }, 'client session ended');
      sock.end();
      this.clock.setTimer(() => sock.destroy(), 1000);
    }, () => { unhandled--; if (paused && unhandled <= MAX_UNHANDLED / 2) pauseOrResume(); },
    () => (sock.writableLength > pauseAt ? `${sock.writableLength} bytes of replies to this connection are not read yet (more than a quarter of [locking] max_client_output_bytes, ${maxOutput}): read them, then ask again` : undefined));
    const sessionId = this.nextSession - 1;
    // One frame's payload, a view valid only during the call (the read buffer is reused):
    // decoded with its binary values copied out, checked while the bytes are there.
    const onBody = (body: Buffer) => {
      const raw = decodeTransientPayload(body);
      let req: ClientRequest;
      try {
        req = validateClientRequest(raw, invalidUtf8Fields(body));
      } catch (e) {
        if (!(e instanceof RequestError)) throw e;
        // One bad request fails alone: its session answers INVALID, the connection stays.
        log.debug({ session: sessionId, id: e.id, type: e.reqType, err: e.message }, 'invalid request refused');
        unhandled++;
        this.sys.send(ref, { type: 'invalid', id: e.id, reqType: e.reqType, message: e.message });
        return;
      }
      if (req.type === 'hello') {
        const s = this.sessions.get(sessionId);
        // The first hello names the session (a second one is a protocol error: it is cut).
        if (s && !s.named) { s.named = true; s.client = req.client; s.pid = req.pid; }
      }
      // Heartbeats are answered here, not behind the requests in the session's mailbox (a
      // client with 50 000 locks collecting its records, a flood of its own requests...),
      // but only while this node holds its lease: a fenced node's clients must give up
      // (LockRouter.leaseHeld; the fence also tells them at once, tellLost).
      const acked = req.type === 'hb' && this.router.leaseHeld();
      if (acked && req.type === 'hb') emit({ type: 'hb', ack: req.seq });
      unhandled++;
      this.sys.send(ref, { type: 'client', req, acked });
    };
    // Each read's bytes (valid only during the call); false stops reading (paused or cut).
    const onRead = (n: number, rbuf: Buffer): boolean => {
      probe('m.cin');
      if (!open) return false;
      try {
        dec.pushRawTransient(rbuf.subarray(0, n), onBody);
        if (mustWait()) pauseOrResume();
      } catch (e) {
        if (!(e instanceof FrameError || e instanceof ProtocolError)) throw e;
        log.warn({ session: sessionId, err: e.message }, 'bad frame from client; cutting it off');
        emit({ type: 'lost', reason: `protocol error: ${e.message}` });
        cut(`protocol error: ${e.message}`);
      }
      return !paused;
    };
    readIntoBuffer(sock, CLIENT_READ_BUFFER, onRead);
    sock.on('error', (e) => log.debug({ session: sessionId, err: e.message }, 'client socket error'));
    sock.on('close', () => {
      if (open && dec.pending > 0) log.warn({ session: sessionId, bytes: dec.pending }, 'client closed mid-frame (truncated frame)');
      if (open) { open = false; this.sys.send(ref, { type: 'disconnected', reason: 'connection closed' }); }
    });
  }

  /** A connection not admitted: told why (`lost`, as a cut-off client is), then closed, unread. */
  private refuse(sock: net.Socket, reason: string): void {
    this.log.debug({ reason }, 'client connection refused');
    sock.on('error', () => {});
    sock.end(encodeFrame({ type: 'lost', reason } satisfies DaemonMessage, this.o.config.locking.maxFrameBytes));
    this.clock.setTimer(() => sock.destroy(), 1000);
  }

  // ---- inspection ---------------------------------------------------------------------

  status(): Promise<unknown> { return this.inspections.run('status', () => this.collectStatus()); }

  private async collectStatus(): Promise<unknown> {
    const c = this.o.config;
    const st = this.table.stats;
    const lockspaces = await Promise.all(this.table.lockspaceNames().map(async (name) => {
      const res = await this.listResources(name, { limit: 0 });
      return { name, resources: res.total };
    }));
    return {
      node: { id: c.node.id, name: c.node.name },
      version: VERSION,
      pid: process.pid,
      uptimeMs: Math.round(this.clock.now() - this.startedAt),
      socket: this.socketPath,
      clients: this.sessions.size,
      lockspaces,
      resources: st.resources,
      locks: st.locks,
      counters: { grants: st.grants, basts: st.basts, evictions: st.evictions, resourceCrashes: st.resourceCrashes, actorCrashes: this.sys.crashes, ...this.reclaimCounters() },
      eventLoop: this.loop?.snapshot() ?? null,
      admission: { requestsInFlight: this.admission.inFlight, maxRequests: this.admission.max, inspectionRuns: this.inspections.runs },
      kernel: this.kernel ? this.kernel.status() : { state: 'disabled' },
      cluster: await this.clusterStatus(),
    };
  }

  /** The idle collections (reclaim.ts): absent under a simulated clock. */
  private reclaimCounters(): { idleCollections?: number; idleCollectionMaxMs?: number; mallocTrims?: number } {
    const r = this.reclaimer;
    return r ? { idleCollections: r.collections, idleCollectionMaxMs: Math.round(r.maxCollectMs), mallocTrims: r.trims } : {};
  }

  async clusterStatus(): Promise<unknown> {
    const r = this.router;
    let transport: unknown = null;
    try {
      transport = this.port ? await this.port.status() : null;
    } catch (e) {
      transport = { error: (e as Error).message };
    }
    return { state: r.state, epoch: r.epoch, members: r.members, recovery: r.recovery ?? null, stats: r.stats, transport };
  }

  trace(req: TraceRequest): Promise<unknown> { return this.tracing.request(req); }

  async fault(spec: FaultSpec): Promise<unknown> {
    if (!this.o.faultInjection) throw new Error('fault injection is disabled (start mxfsd with MXFS_FAULT_INJECTION=1)');
    if (!this.port) throw new Error('fault injection needs a cluster (no [peer] configured)');
    this.log.warn({ spec }, 'fault injected');
    if (spec.action === 'stall') {
      const ranMs = busyFor(spec.ms);
      this.log.warn({ ranMs }, 'fault injected: the stall is over');
      return { node: this.o.config.node.id, spec, ranMs };
    }
    this.port.setFault(spec);
    return { node: this.o.config.node.id, spec };
  }

  /**
   * Every master's view, merged: on a cluster each resource appears once, under its master.
   * The answer is one client frame: resources that do not fit in max_frame_bytes (or in a
   * master's peer reply) are left out and counted in `omitted` (narrow with a filter).
   */
  locks(filter: { lockspace?: string; resource?: string }): Promise<unknown> {
    return this.inspections.run(`locks ${filterKey(filter)}`, () => this.collectLocks(filter));
  }

  private async collectLocks(filter: { lockspace?: string; resource?: string }): Promise<unknown> {
    let head: Record<string, unknown>;
    let resources: unknown[];
    let omitted = 0;
    if (!this.port) {
      const own = await this.localLocks(filter);
      resources = own.resources;
      omitted = own.omitted;
      head = { node: this.o.config.node.id };
    } else {
      const r = await this.router.inspectCluster(filter);
      resources = [];
      for (const [node, list] of Object.entries(r.byNode)) for (const x of list) resources.push({ master: Number(node), ...(x as object) });
      resources.sort((a: any, b: any) => (a.lockspace + '\0' + a.resource < b.lockspace + '\0' + b.resource ? -1 : 1));
      head = { node: this.o.config.node.id, epoch: this.router.epoch, missing: r.missing };
      omitted = r.omitted;
    }
    const room = this.o.config.locking.maxFrameBytes - REPLY_ENVELOPE_BYTES;
    const fit = fitList(resources, (rs) => ({ ...head, resources: rs, omitted: omitted + resources.length }), room);
    return { ...head, resources: fit.items, omitted: omitted + fit.omitted };
  }

  /**
   * The kernel's cached inode locks of a kernel volume on this node (`mxfsctl locks --volume`):
   * counted whole, the first ones in full, as many as fit one client frame (the rest in
   * `omitted`). UNKNOWN_VOLUME for a volume not configured here, DRIVER for a command-driver
   * volume (no inode locks), NO_MODULE when the kernel module is not attached.
   */
  inodeLocks(req: Extract<ClientRequest, { type: 'inodeLocks' }>): Promise<unknown> {
    const limit = req.limit ?? INODE_LOCKS_DEFAULT_LIMIT;
    return this.inspections.run(`inodes ${req.volume} ${limit}`, () => this.collectInodeLocks(req.volume, limit));
  }

  private async collectInodeLocks(volume: string, limit: number): Promise<unknown> {
    const node = this.o.config.node.id;
    const v = this.o.config.volumes.find((x) => x.name === volume);
    if (!v) throw new VolumeRequestError('UNKNOWN_VOLUME', `no volume '${volume}' is configured on node ${node}`);
    if (v.driver !== 'kernel') throw new VolumeRequestError('DRIVER', `volume ${volume} uses driver = ${v.driver}: inode locks exist only with driver = kernel`);
    const request = this.kernel?.request;
    if (!request) throw new VolumeRequestError('NO_MODULE', `kernel support is off on node ${node} ([node] kernel = off)`);
    let report: KernelInodeLocksReport;
    try {
      report = await listKernelInodeLocks((cmd, attrs) => request(cmd, attrs), node, volume, limit);
    } catch (e) {
      throw new VolumeRequestError(e instanceof KernelNotAttached ? 'NO_MODULE' : 'BUSY', `node ${node}: ${(e as Error).message}`);
    }
    const room = this.o.config.locking.maxFrameBytes - REPLY_ENVELOPE_BYTES;
    const fit = fitList(report.locks, (ls) => ({ ...report, locks: ls, omitted: report.total }), room);
    return { ...report, locks: fit.items, omitted: report.omitted + fit.omitted };
  }

  /** The resources this node masters (for local `locks` and for peers' inspection). */
  localLocks(filter: { lockspace?: string; resource?: string }): Promise<{ node: number; resources: unknown[]; omitted: number }> {
    return this.inspections.run(`local ${filterKey(filter)}`, () => this.collectLocalLocks(filter));
  }

  /**
   * The resources this node masters, at most `budget` bytes of them (encoded): bounded work
   * whatever the number of resources. Each lockspace lists at most LIST_LIMIT of its busy
   * resources (idle ones waiting for eviction are skipped; or only `filter.resource`); they
   * are inspected SLICE.inspect at a time (one step per turn) until the budget is full.
   * Busy resources beyond the listing or the budget are counted in `omitted`.
   */
  private async collectLocalLocks(filter: { lockspace?: string; resource?: string }, budget = this.o.config.locking.maxFrameBytes): Promise<{ node: number; resources: unknown[]; omitted: number }> {
    const timeout = this.o.config.timing.queryTimeoutMs;
    const out: unknown[] = [];
    let used = 0;
    let omitted = 0;
    const owners = (owner: string) => {
      const sid = Number(owner.split(':')[1]);
      const s = Number(owner.split(':')[0]) === this.o.config.node.id ? this.sessions.get(sid) : undefined;
      return s ? { owner, client: s.client, pid: s.pid } : { owner };
    };
    for (const ls of this.table.lockspaceNames()) {
      if (filter.lockspace !== undefined && ls !== filter.lockspace) continue;
      const list = await this.listResources(ls, filter.resource === undefined ? { limit: LIST_LIMIT, busyOnly: true } : { resource: filter.resource });
      if (filter.resource === undefined) omitted += list.total - list.idle - list.entries.length; // one resource asked for: no others to omit
      const res = list.entries.sort((a, b) => (a.name < b.name ? -1 : 1));
      for (let i = 0; i < res.length; i += SLICE.inspect) {
        if (used >= budget) { omitted += res.length - i; break; }
        const batch = res.slice(i, i + SLICE.inspect);
        const views = await Promise.all(batch.map((r) => this.sys.ask<ResourceMsg, ResourceInspection>(r.ref, (replyTo) => ({ type: 'inspect', replyTo }), timeout)
          .catch(() => undefined))); // evicted between list and inspect
        batch.forEach((r, k) => {
          const v = views[k];
          if (!v || (v.granted.length + v.converting.length + v.waiting.length === 0 && filter.resource === undefined)) return;
          if (used >= budget) { omitted++; return; }
          const lk = (l: ResourceView['granted'][number]) => ({
            lockId: l.lockId, ...owners(l.owner),
            mode: l.grMode === null ? null : modeName(l.grMode),
            requested: l.rqMode === null ? null : modeName(l.rqMode),
            token: l.token,
            ...(v.sinceMs[l.lockId] !== undefined ? { sinceMs: v.sinceMs[l.lockId] } : {}),
            ...(v.basts[l.lockId] ? { bast: { mode: modeName(v.basts[l.lockId]!.mode), agoMs: v.basts[l.lockId]!.agoMs } } : {}),
          });
          const item = {
            lockspace: ls, resource: r.name, tokenCounter: v.tokenCounter, lvbValid: v.lvbValid, lvb: v.lvb.toString('hex'),
            granted: v.granted.map(lk), converting: v.converting.map(lk), waiting: v.waiting.map(lk),
            ...(v.rebuilt ? { rebuilt: v.rebuilt } : {}),
          };
          used += encodedSize(item);
          if (used > budget) { omitted++; return; }
          out.push(item);
        });
      }
    }
    return { node: this.o.config.node.id, resources: out, omitted };
  }

  private listResources(ls: string, opts: { resource?: string; limit?: number; busyOnly?: boolean } = {}): Promise<ResourceList> {
    return this.sys.ask<LockspaceMsg, ResourceList>(
      this.table.lockspace(ls), (replyTo) => ({ type: 'list', replyTo, ...opts }), this.o.config.timing.queryTimeoutMs);
  }
}

/** Resources listed per lockspace for one inspection (see localLocks). */
const LIST_LIMIT = 4096;

/**
 * The one buffer every client socket is read into (src/util/socket-read.ts): reads are handled
 * one at a time on this thread, and whatever outlives a read (a partial frame, a binary value
 * of a request) is copied out of it.
 */
const CLIENT_READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

function filterKey(f: { lockspace?: string; resource?: string }): string {
  return JSON.stringify([f.lockspace ?? null, f.resource ?? null]);
}
