/**
 * DlmChannel: exactly-once, in-order delivery of lock-engine messages from this node to
 * each peer, across lost messages and link resets inside one membership epoch.
 *
 * Why: a peer link delivers in order while it is up, but a link that drops and reconnects
 * (or a fault that drops single messages) loses what was in flight. Leases and membership
 * messages are periodic and idempotent, so losing one is harmless; a lost lock request,
 * grant or recovery barrier is not: the requester or the recovery would wait forever. The
 * channel makes the lock engine's traffic reliable end to end, whatever the links do.
 *
 * Streams. What this node sends to one peer is a stream named (inc, n): this daemon run's
 * incarnation and a stream number. Every message gets the next sequence number of the
 * stream (from 0). The sender keeps each message until the receiver acknowledges it.
 *
 * Acknowledgements are cumulative ("the next sequence I expect of stream (inc, n)"). They
 * ride on every data message going the other way; when none goes, a standalone 'dlmAck'
 * follows after ackDelayMs (or at once after ackEvery unacknowledged messages).
 *
 * Receiver. A message with the expected sequence is delivered; an older one (a duplicate
 * from a retransmission) is dropped and acknowledged again; a newer one (something before it
 * was lost) is dropped and answered with an immediate ack marked `gap`, so the sender goes
 * back without waiting for its timer. A receiver joins a stream only at sequence 0, when
 * the stream is new: another incarnation of the sender, or a higher stream number.
 *
 * Sender. Go-back-N: on a gap ack, on a link coming up, or when nothing was acknowledged
 * for rtoMs (doubling up to maxRtoMs while nothing moves), everything unacknowledged is
 * sent again from the oldest, at most `window` messages beyond the acknowledged point.
 * An ack from another incarnation of the receiver than the one that acknowledged before
 * means the receiver restarted and lost its place: the sender starts a new stream (n + 1)
 * and sends everything not yet acknowledged on it from sequence 0. An ack older than what
 * was already acknowledged, from the same incarnation, is late and ignored.
 *
 * Refusals. A message is checked with the receiver's own validator (validateDlmMessage)
 * before it is queued: one that the peer would refuse is never sent; refused() tells the
 * caller, who fails the request. A message the peer refuses all the same (version skew, a
 * bug) does not cost the link: the peer link delivers a 'dlm' frame whose message is invalid
 * as `invalid` (only the envelope — stream, sequence, MAC — is fatal to a link). The
 * receiver takes the sequence number as consumed, logs and counts it, and names it in every
 * ack it sends (`refused`: sequence and reason) until the sender must have seen one (it has
 * sent a message a whole window beyond it; at most MAX_REFUSALS are kept). The sender, when
 * an ack covers a refused message, drops it like any acknowledged one — it is never sent
 * again — counts it and calls refused(), so its request fails instead of waiting.
 *
 * forget(peer): the peer left the committed view. What was queued for it belongs to an
 * older epoch and would be dropped by its lock router anyway, so it is discarded, and the
 * next message starts a new stream. The queue per peer is bounded (maxUnacked); at the
 * bound the stream is discarded the same way, logged as an error and counted, because the
 * peer has stopped acknowledging for far longer than a lease (it would have been declared
 * dead first in any realistic run).
 *
 * Bounded work per turn: at most SLICE.transmit messages go on the wire per turn (pump).
 *
 * All time comes from the injected clock; the channel does no I/O itself (transmit/deliver
 * are callbacks), so it runs the same under simulated time and lossy simulated networks.
 * Its deferred work (retransmission and ack timers, the rest of a pump) is wrapped by `defer`
 * when given: the DlmChannelActor (dlm-channel-actor.ts) makes each a message of its mailbox,
 * so the trace shows it.
 */
import type Logger from 'bunyan';
import type { Clock, TimerHandle } from '../util/clock';
import { DlmPeerMsg, validateDlmMessage } from './dlm-messages';
import { SLICE } from '../util/slices';

/** A message of the acknowledged stream that the receiver refused (see Refusals above). */
export interface Refusal { seq: number; reason: string }

/**
 * A receiver's position in one sender's stream (inc, n): the next sequence it expects.
 * rinc: the receiver's own incarnation, so the sender can tell a receiver that restarted
 * (another rinc) from a late ack (same rinc, an older position). refused: the messages
 * below `next` it refused, recent ones only.
 */
export interface StreamAck { inc: number; n: number; next: number; rinc: number; refused?: Refusal[] }

export type ChannelFrame =
  | { type: 'dlm'; inc: number; n: number; seq: number; ack?: StreamAck; msg: DlmPeerMsg }
  /** Received only: a 'dlm' frame whose message the receiver's validator refused (`invalid` says why). */
  | { type: 'dlm'; inc: number; n: number; seq: number; ack?: StreamAck; invalid: string }
  | { type: 'dlmAck'; inc: number; n: number; next: number; rinc: number; gap: boolean; refused?: Refusal[] };

/** Refusals a receiver keeps per stream to name in its acks; a reason is cut to MAX_REFUSAL_REASON bytes. */
export const MAX_REFUSALS = 256;
export const MAX_REFUSAL_REASON = 200;

export interface DlmChannelOptions {
  /** This daemon run's incarnation (names its streams). */
  selfInc: number;
  clock: Clock;
  log?: Logger;
  /** Hands a frame to the peer link (which may lose it). */
  transmit(to: number, frame: ChannelFrame): void;
  /** Called once per message, in the order the peer sent them. */
  deliver(from: number, msg: DlmPeerMsg): void;
  /** A message that will not be delivered: invalid at the origin, or refused by the peer. */
  refused?(to: number, msg: DlmPeerMsg, reason: string): void;
  /**
   * What runs when deferred work is due, in place of `fire` (which it must call): the channel
   * still decides when (the clock's timer; setImmediate for the rest of a pump).
   */
  defer?(what: ChannelTimer, peer: number, fire: () => void): () => void;
  rtoMs?: number;
  maxRtoMs?: number;
  ackDelayMs?: number;
  ackEvery?: number;
  window?: number;
  maxUnacked?: number;
}

/** The channel's deferred work: a retransmission timeout, a delayed ack, the rest of a pump. */
export type ChannelTimer = 'retransmit' | 'ack' | 'pump';

export const CHANNEL_DEFAULTS = { rtoMs: 200, maxRtoMs: 2000, ackDelayMs: 10, ackEvery: 128, window: 4096, maxUnacked: 1 << 18 };

export interface ChannelStats {
  sent: number;
  delivered: number;
  retransmitted: number;
  duplicates: number;
  outOfOrder: number;
  acksSent: number;
  streamResets: number;
  overflowResets: number;
  /** Messages never sent: the peer's validator would have refused them. */
  refusedAtOrigin: number;
  /** Messages a peer refused (acknowledged as refused; never sent again). */
  refusedByPeer: number;
  /** Messages of a peer that this node refused (their sequence consumed, the link kept). */
  refusedFromPeer: number;
  unacked: number;
}

interface Out {
  n: number;
  /** Sequence of queue[0] (everything below is acknowledged). */
  base: number;
  /** Sequence the next new message gets. */
  next: number;
  /** Next sequence to put on the wire in the current round (base <= sentUpTo <= next). */
  sentUpTo: number;
  queue: DlmPeerMsg[];
  head: number;
  rto: number;
  /** Lazy: not re-armed on every ack; when it fires it looks at lastProgress. */
  timer?: TimerHandle;
  /** Last ack that moved base, or last go-back (the retransmission clock starts there). */
  lastProgress: number;
  lastGoBack: number;
  /** The rest of a pump is due on the next turn. */
  pumpLater?: boolean;
  /** The receiver incarnation that acknowledged on this stream (undefined: none yet). */
  peerInc?: number;
}

interface In {
  inc: number;
  n: number;
  expected: number;
  /** Messages delivered since the last ack we sent. */
  unacked: number;
  /** An ack is owed (something arrived since the last one we sent). */
  owed: boolean;
  /** Lazy: when it fires it sends an ack only if one is still owed. */
  ackTimer?: TimerHandle;
  lastGapAck: number;
  /** Recent refusals, ascending by seq, named in every ack (see Refusals above). */
  refused: Refusal[];
}

export class DlmChannel {
  private readonly out = new Map<number, Out>();
  private readonly in = new Map<number, In>();
  /** Per peer: when we last answered a message of a stream we could not join. */
  private readonly lastJoinAck = new Map<number, number>();
  private nextStream = 1;
  private readonly t: typeof CHANNEL_DEFAULTS;
  private stopped = false;
  private readonly counts: Omit<ChannelStats, 'unacked'> = {
    sent: 0, delivered: 0, retransmitted: 0, duplicates: 0, outOfOrder: 0, acksSent: 0, streamResets: 0, overflowResets: 0,
    refusedAtOrigin: 0, refusedByPeer: 0, refusedFromPeer: 0,
  };

  /** Counters, and the messages waiting for an ack over all peers. */
  get stats(): ChannelStats {
    let unacked = 0;
    for (const s of this.out.values()) unacked += s.next - s.base;
    return { ...this.counts, unacked };
  }

  constructor(private readonly o: DlmChannelOptions) {
    this.t = {
      rtoMs: o.rtoMs ?? CHANNEL_DEFAULTS.rtoMs, maxRtoMs: o.maxRtoMs ?? CHANNEL_DEFAULTS.maxRtoMs,
      ackDelayMs: o.ackDelayMs ?? CHANNEL_DEFAULTS.ackDelayMs, ackEvery: o.ackEvery ?? CHANNEL_DEFAULTS.ackEvery,
      window: o.window ?? CHANNEL_DEFAULTS.window, maxUnacked: o.maxUnacked ?? CHANNEL_DEFAULTS.maxUnacked,
    };
  }

  // ---- sending ------------------------------------------------------------------------

  send(to: number, msg: DlmPeerMsg): void {
    if (this.stopped) return;
    try {
      validateDlmMessage(msg);
    } catch (e) {
      // The peer would refuse it: never send it (it would only be refused there).
      this.counts.refusedAtOrigin++;
      const reason = (e as Error).message;
      this.o.log?.error({ peer: to, kind: msg.t }, `lock message to node ${to} not sent: ${reason}`);
      this.o.refused?.(to, msg, reason);
      return;
    }
    this.counts.sent++;
    this.enqueue(to, msg);
  }

  private enqueue(to: number, msg: DlmPeerMsg): void {
    let s = this.outTo(to);
    if (s.next - s.base >= this.t.maxUnacked) {
      this.counts.overflowResets++;
      this.o.log?.error({ peer: to, unacked: s.next - s.base }, `node ${to} has not acknowledged ${s.next - s.base} lock messages; discarding them and starting a new stream`);
      this.discard(to);
      s = this.outTo(to);
    }
    if (s.base === s.next) s.lastProgress = this.o.clock.now(); // the clock starts with the first unacknowledged message
    s.queue.push(msg);
    s.next++;
    this.pump(to, s);
    this.arm(to, s);
  }

  /** The link to `peer` (re)connected: what it may have lost in flight goes again now. */
  linkUp(peer: number): void {
    const s = this.out.get(peer);
    if (s && s.base < s.next) this.goBack(peer, s);
    // Our acks may have been lost with the old connection, too.
    const r = this.in.get(peer);
    if (r) this.sendAck(peer, r, false);
  }

  /** The peer left the committed view: drop what is queued for it; the next message starts a new stream. */
  forget(peer: number): void { this.discard(peer); }

  stop(): void {
    this.stopped = true;
    for (const s of this.out.values()) this.o.clock.clearTimer(s.timer);
    for (const r of this.in.values()) this.o.clock.clearTimer(r.ackTimer);
  }

  /** Per peer: the stream we send on and the one we receive (for status output). */
  peerStatus(peer: number): { out?: { n: number; acked: number; next: number }; in?: { inc: number; n: number; expected: number } } {
    const s = this.out.get(peer), r = this.in.get(peer);
    return { out: s && { n: s.n, acked: s.base, next: s.next }, in: r && { inc: r.inc, n: r.n, expected: r.expected } };
  }

  private outTo(to: number): Out {
    let s = this.out.get(to);
    if (!s) {
      s = { n: this.nextStream++, base: 0, next: 0, sentUpTo: 0, queue: [], head: 0, rto: this.t.rtoMs, lastProgress: this.o.clock.now(), lastGoBack: -Infinity };
      this.out.set(to, s);
    }
    return s;
  }

  private discard(peer: number): void {
    const s = this.out.get(peer);
    if (!s) return;
    this.o.clock.clearTimer(s.timer);
    this.out.delete(peer);
  }

  /**
   * Puts messages on the wire from sentUpTo, up to `window` beyond the acknowledged point,
   * at most SLICE.transmit per call: the rest goes on the next turn (a go-back resends up to
   * a window of recovery batches, seconds of encoding in one turn otherwise). Order is kept:
   * whoever pumps next continues from sentUpTo.
   */
  private pump(to: number, s: Out): void {
    const limit = Math.min(s.next, s.base + this.t.window);
    let budget = SLICE.transmit;
    while (s.sentUpTo < limit) {
      if (budget-- === 0) {
        if (!s.pumpLater) {
          s.pumpLater = true;
          this.later('pump', to, () => { s.pumpLater = false; if (this.out.get(to) === s && !this.stopped) this.pump(to, s); }, 0);
        }
        return;
      }
      const seq = s.sentUpTo++;
      const msg = s.queue[s.head + seq - s.base]!;
      const frame: ChannelFrame = { type: 'dlm', inc: this.o.selfInc, n: s.n, seq, msg };
      const r = this.in.get(to);
      if (r?.owed) { frame.ack = { inc: r.inc, n: r.n, next: r.expected, rinc: this.o.selfInc, ...refusals(r) }; this.ackSent(r); }
      this.o.transmit(to, frame);
    }
  }

  private goBack(to: number, s: Out): void {
    this.counts.retransmitted += s.sentUpTo - s.base;
    s.sentUpTo = s.base;
    s.lastGoBack = s.lastProgress = this.o.clock.now();
    this.pump(to, s);
  }

  /**
   * Retransmission timer, while something is unacknowledged. One timer per stream, not
   * re-armed per message or ack: when it fires before rto has passed since the last
   * progress, it sleeps for the rest.
   */
  private arm(to: number, s: Out, delay = s.rto): void {
    if (s.timer || s.base >= s.next || this.stopped) return;
    s.timer = this.later('retransmit', to, () => {
      s.timer = undefined;
      if (this.out.get(to) !== s || s.base >= s.next || this.stopped) return;
      const left = s.lastProgress + s.rto - this.o.clock.now();
      if (left > 0) { this.arm(to, s, left); return; }
      this.o.log?.debug({ peer: to, unacked: s.next - s.base, rto: s.rto }, 'lock messages unacknowledged; sending them again');
      this.goBack(to, s);
      s.rto = Math.min(s.rto * 2, this.t.maxRtoMs);
      this.arm(to, s);
    }, delay);
  }

  private onAck(from: number, a: StreamAck, gap: boolean): void {
    const s = this.out.get(from);
    if (!s || a.inc !== this.o.selfInc || a.n !== s.n) return; // an ack of a stream we left
    if (a.next > s.next) {
      this.o.log?.warn({ peer: from, ack: a.next, sent: s.next }, `node ${from} acknowledged lock messages never sent; ignored`);
      return;
    }
    if (s.peerInc !== undefined && a.rinc !== s.peerInc) {
      // The receiver restarted and lost its place: start over on a new stream.
      this.counts.streamResets++;
      this.o.log?.info({ peer: from, ack: a.next, acked: s.base }, `node ${from} restarted; sending what it had not acknowledged on a new lock message stream`);
      const pending = s.queue.slice(s.head);
      this.discard(from);
      for (const m of pending) this.enqueue(from, m);
      return;
    }
    s.peerInc = a.rinc;
    if (a.next < s.base) return; // a late ack
    if (a.next > s.base) {
      const k = a.next - s.base;
      if (a.refused?.length) this.peerRefused(from, s, a.next, a.refused);
      s.head += k;
      s.base = a.next;
      if (s.sentUpTo < s.base) s.sentUpTo = s.base;
      if (s.head > 1024 && s.head * 2 > s.queue.length) { s.queue = s.queue.slice(s.head); s.head = 0; }
      s.rto = this.t.rtoMs;
      s.lastProgress = this.o.clock.now();
      this.pump(from, s);
      this.arm(from, s);
      return;
    }
    // No progress: a gap ack asks for a go-back (at most one per half timeout).
    if (gap && s.base < s.next && this.o.clock.now() - s.lastGoBack >= this.t.rtoMs / 2) this.goBack(from, s);
  }

  /** Messages [s.base, next) are acknowledged; those the peer names as refused fail. */
  private peerRefused(peer: number, s: Out, next: number, refused: Refusal[]): void {
    for (const x of refused) {
      if (x.seq < s.base || x.seq >= next) continue; // already handled, or not covered yet
      const msg = s.queue[s.head + x.seq - s.base]!;
      this.counts.refusedByPeer++;
      this.o.log?.error({ peer, seq: x.seq, kind: msg.t }, `node ${peer} refused lock message ${x.seq}: ${x.reason}`);
      this.o.refused?.(peer, msg, `node ${peer} refused it: ${x.reason}`);
    }
  }

  // ---- receiving ----------------------------------------------------------------------

  receive(from: number, f: ChannelFrame): void {
    if (this.stopped) return;
    if (f.type === 'dlmAck') { this.onAck(from, { inc: f.inc, n: f.n, next: f.next, rinc: f.rinc, refused: f.refused }, f.gap); return; }
    if (f.ack) this.onAck(from, f.ack, false);
    let r = this.in.get(from);
    if (!r || r.inc !== f.inc || r.n !== f.n) {
      const newer = !r || r.inc !== f.inc || f.n > r.n;
      if (!newer) return; // a late message of a stream the sender has left
      if (f.seq !== 0) {
        // We cannot join a stream in the middle: say where we are (0), so the sender
        // resends from the start, or starts a new stream if it cannot.
        this.counts.outOfOrder++;
        const now = this.o.clock.now();
        if (now - (this.lastJoinAck.get(from) ?? -Infinity) >= this.t.rtoMs / 2) {
          this.lastJoinAck.set(from, now);
          this.o.transmit(from, { type: 'dlmAck', inc: f.inc, n: f.n, next: 0, rinc: this.o.selfInc, gap: true });
          this.counts.acksSent++;
        }
        return;
      }
      if (r) this.o.clock.clearTimer(r.ackTimer);
      r = { inc: f.inc, n: f.n, expected: 0, unacked: 0, owed: false, lastGapAck: -Infinity, refused: [] };
      this.in.set(from, r);
    }
    // The sender sends at most `window` beyond what it saw acknowledged: refusals that far
    // behind this sequence are known to it.
    while (r.refused.length > 0 && r.refused[0]!.seq + this.t.window <= f.seq) r.refused.shift();
    if (f.seq === r.expected) {
      r.expected++;
      r.unacked++;
      if ('invalid' in f) {
        // Refuse this one message, not the link: its place in the stream is consumed, and
        // the sender learns from the ack (at once) that it was refused.
        this.counts.refusedFromPeer++;
        this.o.log?.warn({ peer: from, seq: f.seq }, `refused lock message ${f.seq} from node ${from}: ${f.invalid}`);
        r.refused.push({ seq: f.seq, reason: truncate(f.invalid, MAX_REFUSAL_REASON) });
        if (r.refused.length > MAX_REFUSALS) r.refused.shift();
        this.sendAck(from, r, false);
        return;
      }
      this.counts.delivered++;
      this.o.deliver(from, f.msg);
      if (r.unacked >= this.t.ackEvery) this.sendAck(from, r, false);
      else this.ackLater(from, r);
    } else if (f.seq < r.expected) {
      this.counts.duplicates++;
      this.ackLater(from, r);
    } else {
      this.counts.outOfOrder++;
      const now = this.o.clock.now();
      if (now - r.lastGapAck >= this.t.rtoMs / 2) { r.lastGapAck = now; this.sendAck(from, r, true); }
    }
  }

  private ackLater(from: number, r: In): void {
    r.owed = true;
    if (r.ackTimer || this.stopped) return;
    r.ackTimer = this.later('ack', from, () => {
      r.ackTimer = undefined;
      if (this.in.get(from) === r && r.owed && !this.stopped) this.sendAck(from, r, false);
    }, this.t.ackDelayMs);
  }

  private sendAck(from: number, r: In, gap: boolean): void {
    this.ackSent(r);
    this.counts.acksSent++;
    this.o.transmit(from, { type: 'dlmAck', inc: r.inc, n: r.n, next: r.expected, rinc: this.o.selfInc, gap, ...refusals(r) });
  }

  private later(what: ChannelTimer, peer: number, fire: () => void, ms: number): TimerHandle | undefined {
    const run = this.o.defer ? this.o.defer(what, peer, fire) : fire;
    if (what === 'pump') { setImmediate(run); return undefined; }
    return this.o.clock.setTimer(run, ms);
  }

  private ackSent(r: In): void {
    r.unacked = 0;
    r.owed = false;
  }
}

function refusals(r: In): { refused?: Refusal[] } {
  return r.refused.length > 0 ? { refused: r.refused } : {};
}

/** At most `max` bytes of UTF-8, cut at a character boundary. */
function truncate(s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s;
  let out = '';
  for (const ch of s) {
    if (Buffer.byteLength(out + ch) > max - 3) break;
    out += ch;
  }
  return out + '...';
}
