/**
 * PeerLink actor: one per configured peer. Owns the single connection to that peer, its
 * sequence counters, the bounded send queue and the reconnect backoff.
 *
 * One connection per pair: the node with the LOWER id dials, the higher one only accepts
 * (its PeerTransport refuses a dial from a higher id with 'not-dialer'). So two nodes can
 * never race two connections; a newly authenticated inbound connection from the lower-id
 * peer means that peer considers the old one dead, and it replaces the old one.
 *
 * Takes: 'start', 'send' (a PeerBody; optional replyTo gets a SendResult), 'sendMany' (bulk
 * lock traffic, coalesced by the transport), 'adopt' (an
 * authenticated session, from our dial or from the transport's acceptor), 'dialFailed',
 * 'data'/'drain'/'closed' (connection events), 'retry' (backoff timer), 'drop', 'status',
 * 'stop'.
 * Sends: frames to the peer; validated messages to opts.onMessage; 'up'/'down'/
 * 'backpressure' LinkEvents to opts.onLinkEvent.
 *
 * Every frame after the handshake (in both directions, the final 'bye' included) is the
 * msgpack message followed by a 16-byte MAC under the session key of its direction over its
 * sequence number and those bytes (auth.ts, frameMac); a received frame's MAC is checked, in
 * constant time, against the next expected sequence number before anything is decoded,
 * including frames the handshake buffered before this actor took the connection.
 *
 * Any bad input on an established link (a wrong or missing frame MAC, undecodable, truncated
 * or oversized frame, invalid message, wrong sender/target, a sequence number other than the
 * next one, a handshake message) drops the link with a logged reason; the daemon and the
 * other links carry on. Not a lock message that fails its own validation inside a sound 'dlm'
 * envelope: that one is delivered marked invalid, for the DlmChannel to refuse alone.
 * Delivery promise: in order, at most once, while a link is up. 'down' ends a session; what
 * was queued is discarded; the layers above re-synchronise on 'up' (leases, epochs).
 *
 * Two paths skip the mailbox, because a mailbox message waits one event-loop turn and a busy
 * link's mailbox holds bulk lock traffic: the connection's events (data, drain, close) are
 * handled in the connection's own callback, and lease/membership messages are written at
 * once (PeerLinkHandle.sendNow). Both run on the actor's state between its turns (one thread:
 * never inside one); bulk traffic keeps coming through the mailbox in 'sendMany' batches,
 * except on a link that carries nothing else (bulkAtOnce: a lock link), where a batch is
 * written at once while no 'sendMany' waits in the mailbox and the connection takes writes.
 */
import type { ActorDef, ActorSystem, Ref } from '../actors/actor';
import type { FrameTracer } from '../trace/recorder';
import type { TraceStamp } from '../trace/event';
import type { Clock, TimerHandle } from '../util/clock';
import { decodePayload, encodedSize, encodeFrameWithTrailer, FrameDecoder, FrameError } from '../wire/frame';
import { FRAME_MAC_BYTES, frameMac, openFrame, SessionKeys } from './auth';
import { EstablishedSession, HandshakeError, HandshakeOptions, runInitiator } from './handshake';

/** Handshake failures that mean the two nodes' configurations disagree (logged as warnings). */
const CONFIG_REFUSALS: ReadonlySet<RefuseCode> = new Set<RefuseCode>(['version', 'cluster', 'unknown-node', 'address', 'target', 'auth', 'settings', 'duplicate']);
import type { Connection, Network } from './network';
import type { ClusterPeerOptions } from './options';
import {
  HANDSHAKE_TYPES, isBulkTraffic, peekPeerType, PeerBody, PeerHeader, PeerMessage, RefuseCode, toWire, validatePeerMessage,
} from './peer-protocol';
import { probe } from '../util/probe';

export type SendResult = 'sent' | 'queued' | 'down' | 'overflow' | 'too-large';

export type LinkEvent =
  | { type: 'up'; peer: number; role: 'initiator' | 'responder'; connId: number; handshakeMs: number }
  | { type: 'down'; peer: number; reason: string }
  | { type: 'backpressure'; peer: number; queuedBytes: number; queuedMessages: number };

export interface PeerLinkStatus {
  peer: number;
  phase: LinkPhase;
  connId?: number;
  sent: number;
  received: number;
  linkDrops: number;
  lastDownReason?: string;
  queuedBytes: number;
  queuedMessages: number;
  dialAttempt: number;
}

export type LinkPhase = 'idle' | 'connecting' | 'backoff' | 'waiting' | 'up' | 'stopped';

export type PeerLinkMsg =
  | { type: 'start' }
  /** epoch: stamped on the frame; defaults to the committed epoch when the link writes it. */
  | { type: 'send'; body: PeerBody; epoch?: number; replyTo?: Ref<SendResult> }
  /** Bulk traffic (lock messages), many at once: one mailbox entry, so a renewal queued behind it waits one turn, not one per message. */
  | { type: 'sendMany'; items: Array<{ body: PeerBody; epoch: number }> }
  | { type: 'adopt'; session: EstablishedSession; dialGen?: number }
  | { type: 'dialFailed'; dialGen: number; reason: string; code?: RefuseCode }
  | { type: 'data'; connId: number; chunk: Buffer }
  | { type: 'drain'; connId: number }
  | { type: 'closed'; connId: number; reason: string }
  | { type: 'retry'; dialGen: number }
  | { type: 'idleCheck'; connId: number }
  | { type: 'drop'; reason: string }
  | { type: 'status'; replyTo: Ref<PeerLinkStatus> }
  | { type: 'stop'; reason: string };

export interface BackoffOptions { initialMs: number; maxMs: number }

export interface PeerLinkOptions {
  selfId: number;
  peer: ClusterPeerOptions;
  /** Resolved address to dial (the transport resolves host names once). */
  dialAddress: string;
  network: Network;
  clock: Clock;
  /** Uniform [0,1): the backoff jitter (inject a seeded one for simulation). */
  random: () => number;
  handshake: Omit<HandshakeOptions, 'log'>;
  backoff: BackoffOptions;
  connectTimeoutMs: number;
  maxQueueBytes: number;
  maxQueueMessages: number;
  /**
   * Drop an established link on which nothing arrived for this long (a half-open connection:
   * the peer rebooted while cut off, so its reset never came). Leases make traffic flow every
   * renew interval, so the lease timeout is a good value. Undefined: no check.
   */
  idleTimeoutMs?: number;
  /**
   * A link that carries bulk lock traffic only (a lock link, direct-link.ts: no lease or
   * membership message to keep ahead of it): a received bulk frame is decoded in the read
   * callback while none waits (at most DECODE_SLICE_BYTES per read), and a turn's bulk is
   * written by the transport's flush (PeerLinkHandle.sendMany) while the mailbox holds no
   * 'sendMany', each without a turn of the event loop in between.
   */
  bulkAtOnce?: boolean;
  /** The epoch stamped on every outgoing frame (the committed membership epoch). */
  epoch(): number;
  onMessage(peer: number, msg: PeerMessage): void;
  onLinkEvent(ev: LinkEvent): void;
}

interface Session {
  conn: Connection;
  decoder: FrameDecoder;
  keys: SessionKeys;
  sendSeq: number;
  recvSeq: number;
  upSince: number;
  lastRecv: number;
  idleTimer?: TimerHandle;
  blocked: boolean;
  /** Messages waiting for the connection to drain, not yet sealed: urgent ones first (see writeFrame). */
  queue: Pending[];
  /** How many entries at the head of the queue are urgent. */
  urgent: number;
  queuedBytes: number;
  /** Bulk frames received, MAC checked, waiting to be decoded a slice per turn (see deliver). */
  inBulk: Array<{ bytes: Buffer; seq: number }>;
  inBulkHead: number;
  decoding: boolean;
  /** Bulk bytes decoded in the current read callback (bulkAtOnce). */
  readBulkBytes: number;
}

/** Bulk bytes decoded per turn and link at most (see deliver). */
const DECODE_SLICE_BYTES = 256 * 1024;

interface State {
  phase: LinkPhase;
  session?: Session;
  dialGen: number;
  attempt: number;
  retryTimer?: TimerHandle;
  sent: number;
  received: number;
  linkDrops: number;
  lastDownReason?: string;
}

/** A message waiting in a link's send queue; sealed (sequence number, MAC) only when written. */
interface Pending { body: PeerBody; epoch: number; bytes: number }

/** Bytes of a frame beyond its body's encoding: length, header fields, MAC (an upper bound). */
const FRAME_OVERHEAD = 96;

/** Capped exponential backoff with jitter: uniform in [d/2, d), d = min(max, initial * 2^attempt). */
export function backoffDelay(b: BackoffOptions, attempt: number, random: () => number): number {
  const d = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(attempt, 30));
  return d / 2 + random() * (d / 2);
}

export function isDialer(selfId: number, peerId: number): boolean { return selfId < peerId; }

/** A spawned PeerLink: its actor, and the direct path for lease and membership messages. */
export interface PeerLinkHandle {
  ref: Ref<PeerLinkMsg>;
  /** Write a message now, ahead of queued bulk traffic ('down' if the link is not up). */
  sendNow(body: PeerBody, epoch: number): SendResult;
  /** Bulk messages, in order: a 'sendMany' to the mailbox, or written at once (bulkAtOnce, see there). */
  sendMany(items: Array<{ body: PeerBody; epoch: number }>): void;
}

/** The paths that skip the mailbox (see the header), filled in by peerLinkDef. */
interface DirectPaths {
  sendNow?: (body: PeerBody, epoch: number) => SendResult;
  /** Writes the items at once and returns true, or false: they go through the mailbox. */
  sendManyNow?: (items: Array<{ body: PeerBody; epoch: number }>) => boolean;
  /** 'sendMany' messages in the mailbox, not handled yet (nothing may overtake them). */
  queuedMany: number;
}

export function peerLinkDef(o: PeerLinkOptions, direct?: DirectPaths): ActorDef<State, PeerLinkMsg> {
  const peer = o.peer.id;
  const dialer = isDialer(o.selfId, peer);
  /** The actor's state and context, for the paths that skip the mailbox (see the header). */
  let live: { s: State; self: Ref<PeerLinkMsg>; sys: ActorSystem; log: import('bunyan') } | undefined;
  /** Where frames in and out are recorded, if the node traces (ActorSystem.frames). */
  let tracer: FrameTracer | undefined;

  const dial = (s: State, self: Ref<PeerLinkMsg>, sys: ActorSystem, log: import('bunyan')) => {
    const gen = ++s.dialGen;
    s.phase = 'connecting';
    o.network.connect(o.dialAddress, o.peer.port, o.connectTimeoutMs)
      .then((conn) => runInitiator(conn, { ...o.handshake, peerId: peer, log }))
      .then(
        (session) => sys.send(self, { type: 'adopt', session, dialGen: gen }),
        (e: Error) => sys.send(self, { type: 'dialFailed', dialGen: gen, reason: e.message, code: e instanceof HandshakeError ? e.code : undefined }),
      );
  };

  const scheduleRetry = (s: State, self: Ref<PeerLinkMsg>, sys: ActorSystem) => {
    if (!dialer || s.phase === 'stopped') { if (s.phase !== 'stopped') s.phase = 'waiting'; return; }
    const ms = backoffDelay(o.backoff, s.attempt++, o.random);
    s.phase = 'backoff';
    const gen = s.dialGen;
    o.clock.clearTimer(s.retryTimer);
    s.retryTimer = o.clock.setTimer(() => sys.send(self, { type: 'retry', dialGen: gen }), ms);
  };

  const down = (s: State, reason: string, self: Ref<PeerLinkMsg>, sys: ActorSystem) => {
    const ss = s.session;
    if (!ss) return;
    s.session = undefined;
    o.clock.clearTimer(ss.idleTimer);
    s.lastDownReason = reason;
    s.linkDrops++;
    // A link that stayed up for a while earns a fresh backoff; a flapping one keeps backing off.
    if (o.clock.now() - ss.upSince >= o.backoff.maxMs) s.attempt = 0;
    ss.conn.destroy();
    o.onLinkEvent({ type: 'down', peer, reason });
    scheduleRetry(s, self, sys);
  };

  /**
   * Write the frames of the queue while the connection takes them. They are sealed here, in
   * the order written, so an urgent message queued late can still go before bulk ones.
   */
  const drainQueue = (s: State, ss: Session, log: import('bunyan')) => {
    while (ss.queue.length > 0 && !ss.blocked) {
      const p = ss.queue.shift()!;
      if (ss.urgent > 0) ss.urgent--;
      ss.queuedBytes -= p.bytes;
      let frame: Buffer;
      try { frame = seal(ss, p.body, p.epoch, tracer?.frameOut(peer, p.body, p.epoch)); } catch (e) {
        log.error({ peer, msgType: p.body.type }, `peer message '${p.body.type}' not sent to node ${peer}: ${(e as Error).message}`);
        continue;
      }
      ss.sendSeq++;
      s.sent++;
      if (!ss.conn.write(frame)) ss.blocked = true;
    }
  };

  /**
   * The frame at sequence ss.sendSeq (the caller advances it once the frame is written):
   * message, then its MAC. tr: the stamp of its frame-out event, when the node traces (the
   * event is recorded just before, so the frame can carry it).
   */
  const seal = (ss: Session, body: PeerBody, epoch: number, tr: TraceStamp | undefined): Buffer => {
    const hdr: PeerHeader = { from: o.selfId, to: peer, epoch, seq: ss.sendSeq };
    return encodeFrameWithTrailer(toWire(tr ? { hdr, body, tr } : { hdr, body }), o.handshake.maxFrameBytes, FRAME_MAC_BYTES, (bytes) => frameMac(ss.keys.send, hdr.seq, bytes));
  };

  const receive = (s: State, ss: Session, chunk: Buffer): string | undefined => {
    ss.readBulkBytes = 0;
    let frames: Buffer[];
    try {
      frames = ss.decoder.pushRaw(chunk);
    } catch (e) {
      return (e as Error).message;
    }
    for (const frame of frames) {
      const why = deliver(s, ss, frame);
      if (why) return why;
    }
    return undefined;
  };

  /**
   * One frame payload: MAC first (for the sequence number we expect next, so a frame out of
   * order fails here), then decode and check. Lease and membership messages are decoded and
   * handed on at once; bulk lock traffic (its type read from the frame's first bytes) waits,
   * MAC-checked, to be decoded DECODE_SLICE_BYTES per turn: a renewal read behind two
   * megabytes of recovery records is not handled after all of them.
   */
  const deliver = (s: State, ss: Session, frame: Buffer): string | undefined => {
    const bytes = openFrame(ss.keys.recv, ss.recvSeq, frame);
    if (!bytes) {
      return frame.length <= FRAME_MAC_BYTES
        ? `frame MAC mismatch: a frame of ${frame.length} bytes cannot carry its ${FRAME_MAC_BYTES}-byte MAC (sequence ${ss.recvSeq})`
        : `frame MAC mismatch at sequence ${ss.recvSeq}: forged, altered, replayed or reflected frame`;
    }
    const type = peekPeerType(bytes);
    if (type !== undefined && isBulkTraffic(type)) {
      if (o.bulkAtOnce && !ss.decoding && ss.readBulkBytes < DECODE_SLICE_BYTES) {
        ss.readBulkBytes += bytes.length;
        const why = decodeOne(s, ss, bytes, ss.recvSeq);
        if (!why) ss.recvSeq++;
        return why;
      }
      ss.inBulk.push({ bytes, seq: ss.recvSeq++ });
      if (!ss.decoding) { ss.decoding = true; setImmediate(() => decodeBulk(ss)); }
      return undefined;
    }
    const why = decodeOne(s, ss, bytes, ss.recvSeq);
    if (!why) ss.recvSeq++;
    return why;
  };

  /** Decode, check and hand on one MAC-checked payload that was the expected sequence `seq`. */
  const decodeOne = (s: State, ss: Session, bytes: Buffer, seq: number): string | undefined => {
    let msg: PeerMessage;
    try {
      msg = validatePeerMessage(decodePayload(bytes));
    } catch (e) {
      return e instanceof FrameError ? e.message : `invalid message: ${(e as Error).message}`;
    }
    const h = msg.hdr;
    if (h.from !== peer || h.to !== o.selfId) return `message '${msg.body.type}' claims ${h.from}->${h.to} on the link ${peer}->${o.selfId}`;
    if (h.seq !== seq) {
      return h.seq < seq
        ? `duplicate or replayed sequence ${h.seq} (expected ${seq})`
        : `sequence gap: got ${h.seq}, expected ${seq}`;
    }
    if (HANDSHAKE_TYPES.has(msg.body.type)) return `handshake message '${msg.body.type}' on an established link`;
    if (msg.body.type === 'refuse' || msg.body.type === 'bye') return `peer closed the link: ${msg.body.type === 'refuse' ? msg.body.code + ': ' : ''}${msg.body.reason}`;
    s.received++;
    if (!tracer) { o.onMessage(peer, msg); return undefined; }
    // What the delivery does synchronously joins the frame's trace (a lock message's stamp).
    const saved = tracer.frameIn(peer, msg.body, h.epoch, msg.tr);
    try { o.onMessage(peer, msg); } finally { tracer.restore(saved); }
    return undefined;
  };

  /**
   * Write one message now, or queue it while the connection is blocked; drops the link if
   * the queue is over its bound. In the queue, lease and membership messages go ahead of the
   * lock engine's bulk traffic (isBulkTraffic): only what the kernel already holds is ahead
   * of a renewal.
   */
  const sendOne = (s: State, body: PeerBody, epoch: number | undefined, self: Ref<PeerLinkMsg>, sys: ActorSystem, log: import('bunyan')): SendResult => {
    const ss = s.session;
    if (!ss) return 'down';
    const e = epoch ?? o.epoch();
    if (!ss.blocked && ss.queue.length === 0) {
      let frame: Buffer;
      try { frame = seal(ss, body, e, tracer?.frameOut(peer, body, e)); } catch (err) {
        // A bug in the sender (messages are bounded by construction): never silent.
        log.error({ peer, msgType: body.type }, `peer message '${body.type}' not sent to node ${peer}: ${(err as Error).message}`);
        return 'too-large';
      }
      ss.sendSeq++;
      s.sent++;
      if (!ss.conn.write(frame)) ss.blocked = true;
      return 'sent';
    }
    const bytes = encodedSize(body) + FRAME_OVERHEAD;
    if (ss.queue.length + 1 > o.maxQueueMessages || ss.queuedBytes + bytes > o.maxQueueBytes) {
      // The peer does not read fast enough: drop the link instead of growing memory.
      o.onLinkEvent({ type: 'backpressure', peer, queuedBytes: ss.queuedBytes, queuedMessages: ss.queue.length });
      const full = `send queue full (${ss.queue.length} messages, ${ss.queuedBytes} bytes): peer not reading`;
      log.warn({ peer }, `dropping link to node ${peer}: ${full}`);
      down(s, full, self, sys);
      return 'overflow';
    }
    const p: Pending = { body, epoch: e, bytes };
    if (isBulkTraffic(body.type)) ss.queue.push(p);
    else ss.queue.splice(ss.urgent++, 0, p);
    ss.queuedBytes += bytes;
    return 'queued';
  };

  /** Decode the bulk frames waiting on session ss, a slice per turn, in order. */
  const decodeBulk = (ss: Session) => {
    const l = live;
    probe('w.dec');
    if (!l || l.s.session !== ss) return; // the session went down: what waited is gone with it
    let bytes = 0;
    while (ss.inBulkHead < ss.inBulk.length && bytes < DECODE_SLICE_BYTES) {
      const f = ss.inBulk[ss.inBulkHead]!;
      ss.inBulk[ss.inBulkHead++] = undefined as never;
      bytes += f.bytes.length;
      const why = decodeOne(l.s, ss, f.bytes, f.seq);
      if (why) {
        l.log.warn({ peer, connId: ss.conn.id }, `dropping link to node ${peer}: ${why}`);
        down(l.s, why, l.self, l.sys);
        return;
      }
    }
    if (ss.inBulkHead < ss.inBulk.length) { setImmediate(() => decodeBulk(ss)); return; }
    ss.inBulk = [];
    ss.inBulkHead = 0;
    ss.decoding = false;
  };

  /** Bulk messages sealed and written as one buffer (one system call); the connection takes writes (not blocked, nothing queued). */
  const writeMany = (s: State, ss: Session, items: Array<{ body: PeerBody; epoch: number }>, log: import('bunyan')) => {
    const frames: Buffer[] = [];
    for (const it of items) {
      try { frames.push(seal(ss, it.body, it.epoch, tracer?.frameOut(peer, it.body, it.epoch))); } catch (e) {
        log.error({ peer, msgType: it.body.type }, `peer message '${it.body.type}' not sent to node ${peer}: ${(e as Error).message}`);
        continue;
      }
      ss.sendSeq++;
    }
    s.sent += frames.length;
    probe('w.tw');
    if (frames.length > 0 && !ss.conn.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames))) ss.blocked = true;
  };

  const onData = (connId: number, chunk: Buffer) => {
    probe('w.tr');
    const l = live;
    const ss = l?.s.session;
    if (!l || !ss || ss.conn.id !== connId) return;
    ss.lastRecv = o.clock.now();
    const why = receive(l.s, ss, chunk);
    if (why) {
      l.log.warn({ peer, connId }, `dropping link to node ${peer}: ${why}`);
      down(l.s, why, l.self, l.sys);
    }
  };

  const onDrain = (connId: number) => {
    const l = live;
    const ss = l?.s.session;
    if (!l || !ss || ss.conn.id !== connId) return;
    ss.blocked = false;
    drainQueue(l.s, ss, l.log);
  };

  const onClosed = (connId: number, reason: string) => {
    const l = live;
    const ss = l?.s.session;
    if (!l || !ss || ss.conn.id !== connId) return;
    const partial = ss.decoder.pending;
    const why = partial > 0 ? `${reason} (truncated frame: ${partial} bytes of an incomplete frame)` : reason;
    if (partial > 0) l.log.warn({ peer, connId }, `link to node ${peer} closed: ${why}`);
    else l.log.info({ peer, connId }, `link to node ${peer} closed: ${why}`);
    down(l.s, why, l.self, l.sys);
  };

  if (direct) direct.sendNow = (body, epoch) => (live ? sendOne(live.s, body, epoch, live.self, live.sys, live.log) : 'down');
  if (direct && o.bulkAtOnce) {
    direct.sendManyNow = (items) => {
      const ss = live?.s.session;
      if (!live || !ss || direct.queuedMany > 0 || ss.blocked || ss.queue.length > 0) return false;
      probe('w.sendMany');
      tracer = live.sys.frames;
      writeMany(live.s, ss, items, live.log);
      return true;
    };
  }

  return {
    init: (ctx) => {
      const s: State = { phase: 'idle', dialGen: 0, attempt: 0, sent: 0, received: 0, linkDrops: 0 };
      live = { s, self: ctx.self, sys: ctx.system, log: ctx.log };
      tracer = ctx.system.frames;
      return s;
    },

    handle(s, msg, ctx) {
      const sys = ctx.system;
      tracer = sys.frames;
      switch (msg.type) {
        case 'start':
          if (s.phase !== 'idle') return s;
          if (dialer) dial(s, ctx.self, sys, ctx.log);
          else s.phase = 'waiting';
          return s;

        case 'retry':
          if (s.phase !== 'backoff' || msg.dialGen !== s.dialGen) return s;
          dial(s, ctx.self, sys, ctx.log);
          return s;

        case 'dialFailed':
          if (msg.dialGen !== s.dialGen || s.phase !== 'connecting') return s;
          // A configuration difference (key, cluster name, version, ids, addresses, settings) does
          // not heal by retrying: a warning, as on the accepting side; a busy or dead peer: info.
          ctx.log[msg.code !== undefined && CONFIG_REFUSALS.has(msg.code) ? 'warn' : 'info']({ peer, attempt: s.attempt, code: msg.code }, `connecting to node ${peer} failed: ${msg.reason}`);
          s.lastDownReason = msg.reason;
          scheduleRetry(s, ctx.self, sys);
          return s;

        case 'adopt': {
          const ses = msg.session;
          if (s.phase === 'stopped' || (msg.dialGen !== undefined && msg.dialGen !== s.dialGen)) {
            ses.conn.destroy();
            return s;
          }
          if (s.session) down(s, `superseded by a new connection (${ses.role})`, ctx.self, sys);
          o.clock.clearTimer(s.retryTimer);
          const ss: Session = {
            conn: ses.conn, decoder: ses.decoder, keys: ses.keys, sendSeq: ses.sendSeq, recvSeq: ses.recvSeq,
            upSince: o.clock.now(), lastRecv: o.clock.now(), blocked: false, queue: [], urgent: 0, queuedBytes: 0,
            inBulk: [], inBulkHead: 0, decoding: false, readBulkBytes: 0,
          };
          s.session = ss;
          s.phase = 'up';
          const id = ses.conn.id;
          ctx.log.info({ peer, role: ses.role, connId: id, handshakeMs: Math.round(ses.elapsedMs) }, `link to node ${peer} up`);
          o.onLinkEvent({ type: 'up', peer, role: ses.role, connId: id, handshakeMs: Math.round(ses.elapsedMs) });
          // Frames the handshake buffered after its last message: raw, so their MACs are checked too.
          for (const frame of ses.pending) {
            const why = deliver(s, ss, frame);
            if (why) { ctx.log.warn({ peer, connId: id }, `dropping link to node ${peer}: ${why}`); down(s, why, ctx.self, sys); return s; }
          }
          for (const chunk of ses.stash.splice(0)) {
            const why = receive(s, ss, chunk);
            if (why) { ctx.log.warn({ peer, connId: id }, `dropping link to node ${peer}: ${why}`); down(s, why, ctx.self, sys); return s; }
          }
          const self = ctx.self;
          if (o.idleTimeoutMs !== undefined) ss.idleTimer = o.clock.setTimer(() => sys.send(self, { type: 'idleCheck', connId: id }), o.idleTimeoutMs);
          ses.conn.onData((chunk) => onData(id, chunk));
          ses.conn.onDrain(() => onDrain(id));
          ses.conn.onClose((reason) => onClosed(id, reason));
          return s;
        }

        case 'idleCheck': {
          const ss = s.session;
          if (!ss || ss.conn.id !== msg.connId || o.idleTimeoutMs === undefined) return s;
          const quiet = o.clock.now() - ss.lastRecv;
          if (quiet >= o.idleTimeoutMs) {
            const why = `nothing received for ${Math.round(quiet)} ms (half-open connection?)`;
            ctx.log.warn({ peer, connId: msg.connId }, `dropping link to node ${peer}: ${why}`);
            down(s, why, ctx.self, sys);
          } else {
            const self = ctx.self;
            ss.idleTimer = o.clock.setTimer(() => sys.send(self, { type: 'idleCheck', connId: msg.connId }), o.idleTimeoutMs - quiet);
          }
          return s;
        }

        case 'data': onData(msg.connId, msg.chunk); return s;
        case 'drain': onDrain(msg.connId); return s;
        case 'closed': onClosed(msg.connId, msg.reason); return s;

        case 'sendMany': {
          if (direct) direct.queuedMany--;
          probe('w.sendMany');
          const ss = s.session;
          if (!ss) return s;
          if (ss.blocked || ss.queue.length > 0) {
            for (const it of msg.items) if (sendOne(s, it.body, it.epoch, ctx.self, sys, ctx.log) === 'overflow') break;
            return s;
          }
          writeMany(s, ss, msg.items, ctx.log);
          return s;
        }

        case 'send': {
          const result = sendOne(s, msg.body, msg.epoch, ctx.self, sys, ctx.log);
          if (msg.replyTo) sys.reply(msg.replyTo, result);
          return s;
        }

        case 'drop':
          if (s.session) {
            ctx.log.warn({ peer }, `dropping link to node ${peer}: ${msg.reason}`);
            down(s, msg.reason, ctx.self, sys);
          }
          return s;

        case 'status':
          sys.reply(msg.replyTo, {
            peer, phase: s.phase, connId: s.session?.conn.id, sent: s.sent, received: s.received,
            linkDrops: s.linkDrops, lastDownReason: s.lastDownReason,
            queuedBytes: s.session?.queuedBytes ?? 0, queuedMessages: s.session?.queue.length ?? 0, dialAttempt: s.attempt,
          });
          return s;

        case 'stop': {
          o.clock.clearTimer(s.retryTimer);
          const ss = s.session;
          s.phase = 'stopped';
          if (ss) o.clock.clearTimer(ss.idleTimer);
          s.dialGen++;
          if (ss) {
            s.session = undefined;
            try {
              ss.conn.write(seal(ss, { type: 'bye', reason: msg.reason }, o.epoch(), undefined));
              ss.sendSeq++;
            } catch { /* closing anyway */ }
            ss.conn.close();
            o.onLinkEvent({ type: 'down', peer, reason: `stopped: ${msg.reason}` });
          }
          return s;
        }
      }
    },

    // A bug in a handler must not lose the connection state: keep it and carry on.
    onCrash: () => 'resume',
  };
}

export function spawnPeerLink(system: ActorSystem, parent: Ref<any> | undefined, o: PeerLinkOptions): PeerLinkHandle {
  const direct: DirectPaths = { queuedMany: 0 };
  const ref = system.spawn(parent, 'peer-link', peerLinkDef(o, direct), { peer: o.peer.id });
  return {
    ref,
    sendNow: (body, epoch) => direct.sendNow!(body, epoch),
    sendMany: (items) => {
      if (direct.sendManyNow?.(items)) return;
      direct.queuedMany++;
      system.send(ref, { type: 'sendMany', items });
    },
  };
}
