/**
 * PeerTransport: the node's listener plus one PeerLink actor per configured peer.
 *
 * Owns: the listening socket, the responder side of every inbound handshake (which peer is
 * it? is it allowed to dial us? does it know the key?), and the map peer id -> PeerLink.
 * Takes (method calls): start, send, sendAndWait, broadcast, dropLink, linkStatus, stop.
 * Sends: 'start'/'send'/'sendMany'/'adopt'/'drop'/'status'/'stop' to the PeerLinks. Delivers
 * every validated message to opts.onMessage and every LinkEvent to opts.onLinkEvent.
 *
 * Liveness first: a PeerLink takes one mailbox message per event-loop turn, so a renewal sent
 * behind 4 000 lock messages (a recovery, a purge, a flood of remote requests) waited 4 000
 * turns — long enough, on a loaded machine, for leases to lapse. Lease and membership
 * messages are written at once (PeerLinkHandle.sendNow: ahead of anything queued); bulk
 * traffic (lock-engine messages: EPOCH_RULE 'receiver' and 'bound') sent in one turn is
 * coalesced into one 'sendMany' per peer (written at once, without the mailbox, on a link that
 * carries nothing else: bulkAtOnce). Order within each class is kept; nothing orders
 * one class against the other (lock messages carry their own epochs).
 */
import type Logger from 'bunyan';
import type { ActorSystem, Ref } from '../actors/actor';
import type { Clock } from '../util/clock';
import { HandshakeError, HandshakeOptions, runResponder } from './handshake';
import type { Connection, Listener, Network } from './network';
import type { ClusterOptions } from './options';
import { LinkEvent, PeerLinkHandle, PeerLinkMsg, PeerLinkStatus, SendResult, spawnPeerLink, BackoffOptions, isDialer } from './peer-link';
import { ClusterSettings, DEFAULT_MAX_PEER_FRAME, isBulkTraffic, PeerBody, PeerMessage } from './peer-protocol';

/** Bulk messages per 'sendMany' at most (one PeerLink turn seals them: a few milliseconds). */
const MAX_SEND_MANY = 256;

export interface TransportOptions {
  config: ClusterOptions;
  /** The cluster secret (loadClusterKey(config.cluster.keyFile) or config.cluster.key). */
  key: Buffer;
  network: Network;
  clock: Clock;
  system: ActorSystem;
  log: Logger;
  random?: () => number;
  handshakeTimeoutMs?: number;
  connectTimeoutMs?: number;
  maxFrameBytes?: number;
  backoff?: BackoffOptions;
  maxQueueBytes?: number;
  maxQueueMessages?: number;
  /** See PeerLinkOptions.idleTimeoutMs (ClusterNode sets it to the lease timeout). */
  idleTimeoutMs?: number;
  /** Unauthenticated inbound connections allowed at once (beyond: dropped unanswered). */
  maxPendingHandshakes?: number;
  /** The epoch stamped on outgoing frames; the membership layer installs its own. */
  epoch?: () => number;
  /** The cluster settings to exchange and compare in the handshake (handshake.ts); ClusterNode's links only. */
  settings?: ClusterSettings;
  /** This run's incarnation, and the check of a dialer's (ResponderOptions.duplicate); ClusterNode's links only. */
  incarnation?: number;
  duplicate?(id: number, inc: number): string | undefined;
  /** Links that carry bulk traffic only (lock links): see PeerLinkOptions.bulkAtOnce. */
  bulkAtOnce?: boolean;
  onMessage(from: number, msg: PeerMessage): void;
  onLinkEvent?(ev: LinkEvent): void;
}

export const TRANSPORT_DEFAULTS = {
  handshakeTimeoutMs: 5000,
  connectTimeoutMs: 3000,
  backoff: { initialMs: 100, maxMs: 5000 },
  maxQueueBytes: 8 << 20,
  maxQueueMessages: 10000,
  maxPendingHandshakes: 64,
};

export class PeerTransport {
  private links = new Map<number, PeerLinkHandle>();
  private listener?: Listener;
  private stopped = false;
  private readonly inbound = new Set<Connection>();
  private epochSource: () => number;
  /** Bulk messages of this turn, per peer (see the header). */
  private bulk = new Map<number, Array<{ body: PeerBody; epoch: number }>>();
  /** When the node traces: the causal context of each peer's first queued bulk message (the cause of its 'sendMany'). */
  private bulkCause = new Map<number, unknown>();
  private bulkFlushQueued = false;
  /** Handshakes refused on the accept side, by code (tests and status). */
  readonly refusals: Record<string, number> = {};

  constructor(private readonly o: TransportOptions) {
    this.epochSource = o.epoch ?? (() => 0);
  }

  get selfId(): number { return this.o.config.node.id; }
  get listenPort(): number | undefined { return this.listener?.port; }
  get peerIds(): number[] { return [...this.links.keys()]; }

  setEpochSource(fn: () => number): void { this.epochSource = fn; }

  async start(): Promise<void> {
    const o = this.o;
    const cfg = o.config;
    const resolve = async (h: string) => (o.network.resolve ? o.network.resolve(h) : h);
    const addresses = new Map<number, string>();
    for (const p of cfg.peers) addresses.set(p.id, await resolve(p.address));
    const hs = {
      selfId: cfg.node.id, cluster: cfg.cluster.name, key: o.key, clock: o.clock,
      timeoutMs: o.handshakeTimeoutMs ?? TRANSPORT_DEFAULTS.handshakeTimeoutMs,
      maxFrameBytes: o.maxFrameBytes ?? DEFAULT_MAX_PEER_FRAME,
      settings: o.settings, incarnation: o.incarnation,
    };
    const log = o.log.child({ component: 'transport', node: cfg.node.id });
    this.listener = await o.network.listen(cfg.node.address, cfg.node.port, (conn) => this.accept(conn, addresses, hs, log));
    for (const p of cfg.peers) {
      const link = spawnPeerLink(o.system, undefined, {
        selfId: cfg.node.id, peer: p, dialAddress: addresses.get(p.id)!, network: o.network, clock: o.clock,
        random: o.random ?? Math.random, handshake: hs,
        backoff: o.backoff ?? TRANSPORT_DEFAULTS.backoff,
        connectTimeoutMs: o.connectTimeoutMs ?? TRANSPORT_DEFAULTS.connectTimeoutMs,
        maxQueueBytes: o.maxQueueBytes ?? TRANSPORT_DEFAULTS.maxQueueBytes,
        maxQueueMessages: o.maxQueueMessages ?? TRANSPORT_DEFAULTS.maxQueueMessages,
        idleTimeoutMs: o.idleTimeoutMs, bulkAtOnce: o.bulkAtOnce,
        epoch: () => this.epochSource(),
        onMessage: (from, msg) => o.onMessage(from, msg),
        onLinkEvent: (ev) => o.onLinkEvent?.(ev),
      });
      this.links.set(p.id, link);
    }
    for (const l of this.links.values()) o.system.send(l.ref, { type: 'start' });
  }

  private accept(conn: Connection, addresses: Map<number, string>, hs: Omit<HandshakeOptions, 'log'>, log: Logger): void {
    if (this.stopped) { conn.destroy(); return; }
    const cap = this.o.maxPendingHandshakes ?? TRANSPORT_DEFAULTS.maxPendingHandshakes;
    if (this.inbound.size >= cap) {
      this.refusals.busy = (this.refusals.busy ?? 0) + 1;
      log.warn({ remote: conn.remoteAddress }, `inbound peer connection dropped: ${cap} handshakes already pending`);
      conn.destroy();
      return;
    }
    this.inbound.add(conn);
    const self = this.selfId;
    runResponder(conn, {
      ...hs, log,
      peerAddress: (id) => addresses.get(id),
      mayDial: (id) => (isDialer(id, self) ? undefined : `node ${id} must not dial node ${self}: the lower node id dials`),
      duplicate: this.o.duplicate,
    }).then(
      (session) => {
        this.inbound.delete(conn);
        const link = this.links.get(session.peerId);
        if (this.stopped || !link) { conn.destroy(); return; }
        this.o.system.send(link.ref, { type: 'adopt', session });
      },
      (e: Error) => {
        this.inbound.delete(conn);
        const code = e instanceof HandshakeError ? e.code : 'protocol';
        this.refusals[code] = (this.refusals[code] ?? 0) + 1;
        log.warn({ remote: conn.remoteAddress, code, connId: conn.id }, `inbound peer connection refused: ${e.message}`);
      },
    );
  }

  /**
   * Fire and forget: the link reports failures as LinkEvents. The frame carries `epoch`,
   * by default the epoch current at this call (not when the link gets to write it), so a
   * message built under one view is never delivered as if it belonged to the next.
   */
  send(peer: number, body: PeerBody, epoch = this.epochSource()): void {
    const link = this.links.get(peer);
    if (!link) return;
    if (!isBulkTraffic(body.type)) {
      link.sendNow(body, epoch); // lease and membership: written now (see the header)
      return;
    }
    let q = this.bulk.get(peer);
    if (!q) {
      this.bulk.set(peer, (q = []));
      if (this.o.system.tracer) this.bulkCause.set(peer, this.o.system.tracer.hold());
    }
    q.push({ body, epoch });
    if (q.length >= MAX_SEND_MANY) this.flushBulk(peer);
    else if (!this.bulkFlushQueued) { this.bulkFlushQueued = true; queueMicrotask(() => this.flushAllBulk()); }
  }

  private flushBulk(peer: number): void {
    const q = this.bulk.get(peer);
    const link = this.links.get(peer);
    this.bulk.delete(peer);
    const t = this.o.system.tracer, held = this.bulkCause.get(peer);
    this.bulkCause.delete(peer);
    if (!q || !link || q.length === 0) return;
    // Sent from a microtask: in the trace, caused by what queued its first message.
    if (t && held !== undefined) t.within(held, () => link.sendMany(q));
    else link.sendMany(q);
  }

  private flushAllBulk(): void {
    this.bulkFlushQueued = false;
    for (const peer of [...this.bulk.keys()]) this.flushBulk(peer);
  }

  /** Send and learn what happened to the message locally ('sent', 'queued', 'down', 'overflow'...). */
  async sendAndWait(peer: number, body: PeerBody, timeoutMs = 1000, epoch = this.epochSource()): Promise<SendResult> {
    const link = this.links.get(peer);
    if (!link) return 'down';
    return this.o.system.ask<PeerLinkMsg, SendResult>(link.ref, (replyTo) => ({ type: 'send', body, epoch, replyTo }), timeoutMs);
  }

  broadcast(body: PeerBody): void {
    for (const id of this.links.keys()) this.send(id, body);
  }

  dropLink(peer: number, reason: string): void {
    const link = this.links.get(peer);
    if (link) this.o.system.send(link.ref, { type: 'drop', reason });
  }

  async linkStatus(timeoutMs = 1000): Promise<PeerLinkStatus[]> {
    return Promise.all([...this.links.values()].map((l) =>
      this.o.system.ask<PeerLinkMsg, PeerLinkStatus>(l.ref, (replyTo) => ({ type: 'status', replyTo }), timeoutMs)));
  }

  async stop(reason = 'shutdown'): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const l of this.links.values()) this.o.system.send(l.ref, { type: 'stop', reason });
    for (const c of this.inbound) c.destroy();
    await this.listener?.close();
  }
}
