/**
 * DirectLinks: a second peer connection per peer pair, owned by the lock engine's (main)
 * thread, that carries DlmChannel frames only (issue 13). Over the cluster worker's links a
 * lock message crosses the thread pipe twice on each node (docs/benchmarks.md, "Where a
 * remote pair's time goes"); over this one it crosses TCP and nothing else. Leases,
 * membership and everything else stay on the worker's links.
 *
 * It is the worker's transport again (PeerTransport: listener, handshake, one PeerLink per
 * peer, MAC on every frame), on the node's `lock_port`, in this thread's actor system, with
 * one difference in the handshake: the cluster name in the proofs and session keys is
 * `<name>/lock`, so a session of one kind of link is never taken for the other.
 *
 * What goes this way (send): only a 'dlm' frame sent for the first time (a sequence number
 * beyond the highest this link took for the stream), and only when the link is up, the node
 * may grant (admit: quorate — so not muted, yielding or fenced — and the peer a member of
 * the committed view) and no fault is injected towards the peer. Everything else — acks,
 * retransmissions, frames while the link is down or refused — goes the existing way (the
 * thread pipe, the worker, its peer link), so the channel's recovery never depends on this
 * link: a frame lost here is sent again there after the channel's timeout or on a gap ack.
 *
 * What is taken (receive): 'dlm' and 'dlmAck' frames from an authenticated peer, checked
 * like the worker checks them (not from a blocked peer) and against this thread's view
 * (admit). A frame refused here is dropped unacknowledged: the sender's channel sends it
 * again, which goes through the worker. 'ping' is answered with 'pong'; any other message on
 * this link drops the link.
 *
 * Idle check (lockLinkTimes): a link that swallows what is written on it without closing (a
 * firewall dropping only lock_port traffic, a peer whose main thread hangs while its worker
 * lives) would cost every new lock message a channel timeout. So a session carries lock
 * frames only once the peer answered on it (a ping is sent as it comes up), and while it
 * carries them: when frames went out and nothing came back for pingAfterMs, a ping goes; when
 * nothing (pong or any frame) comes back within deadAfterMs of a ping, the link is dropped
 * (onDown: the channel resends the worker's way) and the dialer reconnects. Timers come from
 * the injected clock; an idle link (nothing sent) costs nothing.
 *
 * The DlmChannel makes the two paths one stream (sequence numbers, go-back-N, duplicates
 * dropped): a frame may arrive over either or both, it is delivered once, in order.
 *
 * Owns: the lock listener and its PeerLinks; per peer the highest sequence sent this way.
 * Takes (method calls): start, send, setFaults, setBlackhole, status, stop. Sends: frames
 * (and pings, pongs) to the peers; deliver() with frames received; onDown when a link went
 * down or was given up (the caller resends).
 */
import type Logger from 'bunyan';
import type { PeerFaults } from './cluster-layer';
import type { ChannelFrame } from './dlm-channel';
import type { LinkPhase } from './peer-link';
import type { PeerBody } from './peer-protocol';
import { lockLinkTimes } from './options';
import { PeerTransport, TransportOptions } from './transport';
import type { TimerHandle } from '../util/clock';

/** The cluster name in the handshake of a lock link: see the header. */
export const LOCK_LINK_SUFFIX = '/lock';

/** The transport's own options; config.node.lockPort and the peers' lockPort: a peer without one is never reached this way. */
export interface DirectLinkOptions extends Pick<TransportOptions, 'config' | 'key' | 'network' | 'clock' | 'system' | 'log' | 'handshakeTimeoutMs' | 'maxPendingHandshakes' | 'backoff'> {
  /** May lock frames go to and come from `peer` this way now (this node quorate, the peer a member of its view)? */
  admit(peer: number): boolean;
  /** Frames received and admitted, in the order the link delivered them. */
  deliver(from: number, frame: ChannelFrame): void;
  /** The link to `peer` went down: what was written on it may be lost. */
  onDown?(peer: number): void;
}

/**
 * The admission rule of a lock link (DirectLinkOptions.admit): lock frames go to and come from
 * `peer` this way only while this node may grant now (canGrant: quorate with a live lease, so
 * not muted, yielding or fenced) in a quorate view that holds both nodes.
 */
export function admitLockFrames(view: { quorate: boolean; members: readonly number[] }, canGrant: boolean, self: number, peer: number): boolean {
  return view.quorate && canGrant && view.members.includes(peer) && view.members.includes(self);
}

export interface DirectLinkStatus {
  peer: number;
  /** Lock frames may go this way (the link is up, the peer answered on it, and it is not cut off by fault injection). */
  up: boolean;
  /** The PeerLink's phase. */
  phase: LinkPhase | 'none';
  /** Frames sent, received and refused this way; `fallback`: frames the channel sent that went the worker's way instead. */
  sent: number;
  received: number;
  refused: number;
  fallback: number;
  /** Sessions dropped as they came up because the peer is cut off by fault injection. */
  cutOff: number;
  /** Sessions that came up; pings sent (idle check and new sessions); links given up because nothing came back after a ping. */
  sessions: number;
  pings: number;
  silentDrops: number;
}

interface PeerCounts { sent: number; received: number; refused: number; fallback: number; cutOff: number; sessions: number; pings: number; silentDrops: number }

/**
 * The idle check's state of one peer's current session (see the header). `waitingSince`:
 * when the oldest frame sent since the last one received went out; `pingAt`: when the ping
 * now waiting for an answer went out. One timer at most, due at `timerAt`.
 */
interface Liveness { gen: number; answered: boolean; waitingSince?: number; pingAt?: number; timer?: TimerHandle; timerAt: number }

export class DirectLinks {
  private readonly transport?: PeerTransport;
  private readonly up = new Set<number>();
  /** Per peer: the stream (inc, n) and the highest sequence sent this way (a lower one is a retransmission). */
  private readonly sentUpTo = new Map<number, { inc: number; n: number; seq: number }>();
  private readonly counts = new Map<number, PeerCounts>();
  private faults: PeerFaults = { blocked: new Set(), drop: 0, delayMs: 0 };
  /** Fault injection: peers whose lock link loses every frame both ways without closing. */
  private blackhole = new Set<number>();
  /** Per peer with a session: its idle check (see Liveness). */
  private readonly live = new Map<number, Liveness>();
  private sessionGen = 0;
  private pingToken = 0;
  private readonly times: { pingAfterMs: number; deadAfterMs: number };
  private readonly log: Logger;

  constructor(private readonly o: DirectLinkOptions) {
    const cfg = o.config;
    this.log = o.log.child({ component: 'lock-link' });
    this.times = lockLinkTimes(cfg.timing);
    const lockPort = cfg.node.lockPort;
    const peers = cfg.peers.filter((p) => p.lockPort !== undefined).map((p) => ({ id: p.id, name: p.name, address: p.address, port: p.lockPort! }));
    if (lockPort === undefined || peers.length === 0) return;
    for (const p of peers) this.counts.set(p.id, { sent: 0, received: 0, refused: 0, fallback: 0, cutOff: 0, sessions: 0, pings: 0, silentDrops: 0 });
    this.transport = new PeerTransport({
      config: { ...cfg, node: { ...cfg.node, port: lockPort }, peers, cluster: { ...cfg.cluster, name: cfg.cluster.name + LOCK_LINK_SUFFIX } },
      key: o.key, network: o.network, clock: o.clock, system: o.system, log: this.log,
      handshakeTimeoutMs: o.handshakeTimeoutMs, maxPendingHandshakes: o.maxPendingHandshakes, backoff: o.backoff,
      // Lock frames only (pings aside): no lease to keep ahead of them, so no turn between
      // reading a frame and the channel, nor between the channel's send and the write.
      bulkAtOnce: true,
      onMessage: (from, msg) => {
        if (this.blackhole.has(from)) return; // fault injection: lost on the way
        const b = msg.body;
        if (b.type !== 'dlm' && b.type !== 'dlmAck' && b.type !== 'ping' && b.type !== 'pong') {
          this.transport!.dropLink(from, `'${b.type}' on the lock link: it carries lock-engine frames only`);
          return;
        }
        this.heard(from);
        if (b.type === 'ping') { this.write(from, { type: 'pong', token: b.token }); return; }
        if (b.type === 'pong') return;
        const c = this.counts.get(from)!;
        if (this.faults.blocked.has(from) || !o.admit(from)) { c.refused++; return; }
        c.received++;
        o.deliver(from, b);
      },
      onLinkEvent: (ev) => {
        if (ev.type === 'up') {
          this.endSession(ev.peer);
          // A peer cut off by fault injection gets no lock link: each reconnection is dropped at once.
          if (this.faults.blocked.has(ev.peer)) { this.counts.get(ev.peer)!.cutOff++; this.transport!.dropLink(ev.peer, 'fault injection: partition'); return; }
          this.counts.get(ev.peer)!.sessions++;
          // Used for lock frames once the peer answered on it: a ping now, the link given up without an answer.
          const l: Liveness = { gen: ++this.sessionGen, answered: false, timerAt: 0 };
          this.live.set(ev.peer, l);
          this.ping(ev.peer, l);
        } else if (ev.type === 'down') {
          this.endSession(ev.peer);
          if (this.up.delete(ev.peer)) o.onDown?.(ev.peer);
        }
      },
    });
  }

  /** Writes a message on the link (a blackholed one swallows it). */
  private write(to: number, body: PeerBody): void {
    if (this.blackhole.has(to)) return;
    this.transport!.send(to, body, 0);
  }

  /** Something arrived from `peer` on its current session: the link works. */
  private heard(peer: number): void {
    const l = this.live.get(peer);
    if (!l) return;
    l.waitingSince = undefined;
    l.pingAt = undefined;
    if (!l.answered) { l.answered = true; this.up.add(peer); }
  }

  private ping(peer: number, l: Liveness): void {
    l.pingAt = this.o.clock.now();
    this.counts.get(peer)!.pings++;
    this.write(peer, { type: 'ping', token: (this.pingToken = (this.pingToken + 1) >>> 0) });
    this.arm(peer, l, this.times.deadAfterMs);
  }

  /** The session's timer, due in `ms` (an earlier one due is kept). */
  private arm(peer: number, l: Liveness, ms: number): void {
    const at = this.o.clock.now() + ms;
    if (l.timer) {
      if (l.timerAt <= at) return;
      this.o.clock.clearTimer(l.timer);
    }
    l.timerAt = at;
    l.timer = this.o.clock.setTimer(() => this.check(peer, l), ms);
  }

  /** The idle check's timer: ping, give up, or wait on (see the header). */
  private check(peer: number, l: Liveness): void {
    l.timer = undefined;
    if (this.live.get(peer) !== l) return;
    const now = this.o.clock.now();
    if (l.pingAt !== undefined) {
      const left = l.pingAt + this.times.deadAfterMs - now;
      if (left > 0) { this.arm(peer, l, left); return; }
      const why = `nothing received for ${Math.round(now - l.pingAt)} ms after a ping (lock_link_dead_ms ${this.times.deadAfterMs}): lock frames go the cluster worker's way`;
      this.log.warn({ peer }, `giving up the lock link to node ${peer}: ${why}`);
      this.counts.get(peer)!.silentDrops++;
      this.cut(peer, why);
      return;
    }
    if (l.waitingSince === undefined) return;
    const left = l.waitingSince + this.times.pingAfterMs - now;
    if (left > 0) this.arm(peer, l, left);
    else this.ping(peer, l);
  }

  /** Drops the link to `peer` now; what its channel had unacknowledged goes the worker's way (onDown). */
  private cut(peer: number, why: string): void {
    this.endSession(peer);
    this.transport?.dropLink(peer, why);
    if (this.up.delete(peer)) this.o.onDown?.(peer);
  }

  private endSession(peer: number): void {
    const l = this.live.get(peer);
    if (!l) return;
    this.o.clock.clearTimer(l.timer);
    this.live.delete(peer);
  }

  /** Whether any peer is reached this way (lock_port configured here and there). */
  get enabled(): boolean { return this.transport !== undefined; }
  get listenPort(): number | undefined { return this.transport?.listenPort; }

  async start(): Promise<void> { await this.transport?.start(); }

  /**
   * Sends `frame` this way if it may go (see the header) and returns true; false: the caller
   * sends it the worker's way.
   */
  send(to: number, frame: ChannelFrame): boolean {
    const c = this.counts.get(to);
    if (!c || !this.transport) return false;
    const f = this.faults;
    if (frame.type !== 'dlm' || !this.up.has(to) || f.blocked.has(to) || f.drop > 0 || f.delayMs > 0 || !this.o.admit(to)) { c.fallback++; return false; }
    const last = this.sentUpTo.get(to);
    if (last && last.inc === frame.inc && (frame.n < last.n || (frame.n === last.n && frame.seq <= last.seq))) { c.fallback++; return false; }
    this.sentUpTo.set(to, { inc: frame.inc, n: frame.n, seq: frame.seq });
    c.sent++;
    this.write(to, frame);
    const l = this.live.get(to);
    if (l && l.waitingSince === undefined) { l.waitingSince = this.o.clock.now(); if (l.pingAt === undefined) this.arm(to, l, this.times.pingAfterMs); }
    return true;
  }

  /** The injected faults (MXFS_FAULT_INJECTION only): a blocked peer's lock link is cut too. */
  setFaults(f: PeerFaults): void {
    this.faults = f;
    for (const p of f.blocked) if (this.up.has(p)) this.cut(p, 'fault injection: partition');
  }

  /**
   * Fault injection: the lock links to `peers` lose every frame, both ways, and stay open (a
   * firewall dropping lock_port traffic on an established connection). Only the idle check
   * notices. Empty: heal.
   */
  setBlackhole(peers: Set<number>): void { this.blackhole = peers; }

  dropLink(peer: number, reason: string): void { this.transport?.dropLink(peer, reason); }

  async status(timeoutMs = 1000): Promise<DirectLinkStatus[]> {
    if (!this.transport) return [];
    const links = await this.transport.linkStatus(timeoutMs).catch(() => []);
    return [...this.counts.entries()].map(([peer, c]) => ({ peer, up: this.up.has(peer), phase: links.find((l) => l.peer === peer)?.phase ?? 'none', ...c }));
  }

  /** Inbound handshakes refused on the lock port, by code ('busy': over the pending cap). */
  get refusals(): Record<string, number> { return { ...(this.transport?.refusals ?? {}) }; }

  async stop(reason = 'shutdown'): Promise<void> {
    for (const p of [...this.live.keys()]) this.endSession(p);
    await this.transport?.stop(reason);
  }
}
