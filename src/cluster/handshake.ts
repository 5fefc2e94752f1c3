/**
 * The authentication handshake that opens every peer connection (docs/cluster-protocol.md,
 * "Handshake"). Nothing but these four messages is accepted before it completes.
 *
 *   initiator (dials)                       responder (accepts)
 *   hello {cluster, nonceI}        seq 0 ->
 *                                  <- seq 0  challenge {nonceR, proofR}   (or refuse)
 *   auth {proofI}                  seq 1 ->                             (or refuse 'auth')
 *                                  <- seq 1  welcome                      (or refuse 'auth')
 *
 * The responder checks, in order: protocol version, target id == its own id, sender id is a
 * configured peer, the connection comes from that peer's configured address, the cluster
 * name, that this peer is the one allowed to dial (see peer-link.ts), then the proof. Any
 * failure: a `refuse {code, reason}` is sent (only 'auth' for a bad proof: nothing more to
 * tell an unauthenticated party), the reason is logged, the connection is closed. Once the key
 * is proven both sides compare the cluster settings the other sent (in 'auth' and 'welcome':
 * node ids, lease, renew interval, tiebreaker, lvb_size) with their own and refuse
 * ('settings') on the first difference, naming it.
 *
 * Takes: frames on a Connection. Sends: hello/challenge/auth/welcome/refuse.
 * Produces an EstablishedSession handed to the PeerLink actor: the connection, its
 * per-direction session keys (auth.ts, sessionKeys) and whatever arrived after the
 * handshake's last message, kept as raw frame payloads (never decoded here) because every
 * frame after the handshake carries a MAC the PeerLink checks before decoding it.
 */
import type Logger from 'bunyan';
import type { Clock } from '../util/clock';
import { decodePayload, FrameDecoder, FrameError } from '../wire/frame';
import { computeProof, makeNonce, ProofInput, SessionKeys, sessionKeys, verifyProof } from './auth';
import type { Connection } from './network';
import { settingsMismatch } from './options';
import {
  ClusterSettings, encodePeerMessage, PeerBody, PeerMessage, PeerProtocolError, RefuseCode, validatePeerMessage,
} from './peer-protocol';

/** The most an unauthenticated peer may have buffered at once during the handshake. */
export const MAX_PREAUTH_BYTES = 16 * 1024;

export interface HandshakeOptions {
  selfId: number;
  cluster: string;
  key: Buffer;
  clock: Clock;
  timeoutMs: number;
  maxFrameBytes: number;
  log: Logger;
  /** What every node must share (options.ts, clusterSettings): sent and compared; absent: neither. */
  settings?: ClusterSettings;
  /** This run's incarnation, sent in 'auth' (dialer). */
  incarnation?: number;
}

export interface ResponderOptions extends HandshakeOptions {
  /** The configured address of a peer id, undefined if the id is not a configured peer. */
  peerAddress(id: number): string | undefined;
  /** Whether this peer may dial us (the dialing rule); returns a reason when not. */
  mayDial(id: number): string | undefined;
  /**
   * Whether a proven dialer claiming node `id` as incarnation `inc` is another run than the
   * one this node is connected to and hears: returns the reason when it is (refused 'duplicate').
   */
  duplicate?(id: number, inc: number): string | undefined;
}

/** An authenticated connection, ready for the PeerLink that owns this peer. */
export interface EstablishedSession {
  conn: Connection;
  peerId: number;
  role: 'initiator' | 'responder';
  /** Framing state (a partial frame may be buffered); read with pushRaw from here on. */
  decoder: FrameDecoder;
  /** MAC keys of this connection: send for our frames, recv for the peer's. */
  keys: SessionKeys;
  /** Next sequence number to send / expect. */
  sendSeq: number;
  recvSeq: number;
  /** Whole frame payloads (msgpack + MAC, unchecked) that followed the handshake's last message, in order. */
  pending: Buffer[];
  /** Raw chunks that arrived after completion, before the owner took the connection. */
  stash: Buffer[];
  /** Handshake duration in clock ms. */
  elapsedMs: number;
}

export class HandshakeError extends Error {
  /** remote: the other side refused us (code is theirs); otherwise we refused them. */
  constructor(readonly code: RefuseCode, message: string, readonly remote = false) {
    super(message);
    this.name = 'HandshakeError';
  }
}

/**
 * Reads validated frames from a connection during the handshake, one at a time. Frames are
 * split as they arrive but decoded only when read, so those after the last handshake message
 * stay raw for the PeerLink to authenticate.
 */
class HandshakeChannel {
  private decoder: FrameDecoder;
  private queue: Buffer[] = [];
  private waiter?: { resolve: (m: PeerMessage) => void; reject: (e: Error) => void };
  private failure?: Error;
  private done = false;
  /** The peer proved the key (initiator, after the challenge): the pre-authentication cap is over. */
  private trusted = false;
  sendSeq = 0;
  recvSeq = 0;
  readonly stash: Buffer[] = [];
  private timer;
  private readonly started: number;

  constructor(readonly conn: Connection, private readonly o: HandshakeOptions, private peerId: number | undefined) {
    this.decoder = new FrameDecoder(o.maxFrameBytes);
    this.started = o.clock.now();
    conn.onData((chunk) => this.onChunk(chunk));
    conn.onClose((reason) => this.fail(new HandshakeError('protocol', `connection closed during the handshake (${reason})`)));
    this.timer = o.clock.setTimer(() => {
      this.refuse('timeout', `handshake not completed within ${o.timeoutMs} ms`);
      this.fail(new HandshakeError('timeout', `handshake not completed within ${o.timeoutMs} ms`));
    }, o.timeoutMs);
  }

  setPeer(id: number): void { this.peerId = id; }

  /**
   * The peer proved the key. The responder may then send its welcome and, at once, the frames
   * its PeerLink had waiting, in the same chunk: those are no longer held to the
   * pre-authentication cap (their MACs are still checked by the PeerLink).
   */
  peerProved(): void { this.trusted = true; }

  private onChunk(chunk: Buffer): void {
    if (this.done) { this.stash.push(chunk); return; }
    // Handshake messages are a few hundred bytes: cap what an unauthenticated party can make us buffer.
    if (!this.trusted && this.decoder.pending + chunk.length > MAX_PREAUTH_BYTES) {
      const m = `more than ${MAX_PREAUTH_BYTES} bytes sent before authentication`;
      this.refuse('protocol', m);
      this.fail(new HandshakeError('protocol', m));
      return;
    }
    try {
      for (const f of this.decoder.pushRaw(chunk)) this.queue.push(f);
    } catch (e) {
      this.refuse('protocol', (e as Error).message);
      this.fail(new HandshakeError('protocol', `bad frame during the handshake: ${(e as Error).message}`));
      return;
    }
    this.pump();
  }

  private pump(): void {
    if (!this.waiter || this.queue.length === 0) return;
    const frame = this.queue.shift()!;
    const w = this.waiter;
    this.waiter = undefined;
    let msg: PeerMessage;
    try {
      msg = validatePeerMessage(decodePayload(frame));
    } catch (e) {
      if (e instanceof FrameError) {
        this.refuse('protocol', e.message);
        w.reject(new HandshakeError('protocol', `bad frame during the handshake: ${e.message}`));
        return;
      }
      const pe = e as PeerProtocolError;
      const code: RefuseCode = pe.code === 'version' ? 'version' : 'protocol';
      this.refuse(code, pe.message);
      w.reject(new HandshakeError(code, pe.message));
      return;
    }
    if (msg.hdr.seq !== this.recvSeq) {
      const m = `sequence ${msg.hdr.seq} where ${this.recvSeq} was expected`;
      this.refuse('protocol', m);
      w.reject(new HandshakeError('protocol', m));
      return;
    }
    this.recvSeq++;
    w.resolve(msg);
  }

  /** The next message; messages that arrived before a close are still read first. */
  next(): Promise<PeerMessage> {
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      if (this.queue.length > 0) this.pump();
      else if (this.failure) { this.waiter = undefined; reject(this.failure); }
    });
  }

  send(body: PeerBody, to: number): void {
    const msg: PeerMessage = { hdr: { from: this.o.selfId, to, epoch: 0, seq: this.sendSeq++ }, body };
    this.conn.write(encodePeerMessage(msg, this.o.maxFrameBytes));
  }

  /** Tell the other side why (best effort), then close. */
  refuse(code: RefuseCode, reason: string): void {
    if (this.conn.closed) return;
    try { this.send({ type: 'refuse', code, reason: reason.slice(0, 200) }, this.peerId ?? 1); } catch { /* closing anyway */ }
    this.conn.close();
  }

  fail(e: Error): void {
    if (this.done) return;
    this.failure ??= e;
    this.finish();
    if (!this.conn.closed) this.conn.destroy(); // after refuse(): let the refusal flush
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(e);
  }

  private finish(): void {
    this.done = true;
    this.o.clock.clearTimer(this.timer);
  }

  established(peerId: number, role: 'initiator' | 'responder', p: ProofInput): EstablishedSession {
    this.finish();
    const s: EstablishedSession = {
      conn: this.conn, peerId, role, decoder: this.decoder, keys: sessionKeys(this.o.key, p, role),
      sendSeq: this.sendSeq, recvSeq: this.recvSeq,
      pending: this.queue.splice(0), stash: this.stash, elapsedMs: this.o.clock.now() - this.started,
    };
    return s;
  }
}

function refusedBy(msg: PeerMessage, expected: string): HandshakeError {
  if (msg.body.type === 'refuse') return new HandshakeError(msg.body.code, `refused by node ${msg.hdr.from}: ${msg.body.code}: ${msg.body.reason}`, true);
  return new HandshakeError('protocol', `expected '${expected}', got '${msg.body.type}'`);
}

/** How the settings `theirs` (sent by `peer`, if it sent any) differ from ours, or undefined. */
function mismatch(o: HandshakeOptions, theirs: ClusterSettings | undefined, peer: number): string | undefined {
  return o.settings && theirs ? settingsMismatch(o.settings, theirs, o.selfId, peer) : undefined;
}

/** Dial side: prove the key to `peerId` and check its proof. */
export async function runInitiator(conn: Connection, o: HandshakeOptions & { peerId: number }): Promise<EstablishedSession> {
  const ch = new HandshakeChannel(conn, o, o.peerId);
  try {
    const nonceI = makeNonce();
    ch.send({ type: 'hello', cluster: o.cluster, nonce: nonceI }, o.peerId);
    const m1 = await ch.next();
    if (m1.body.type !== 'challenge') throw refusedBy(m1, 'challenge');
    if (m1.hdr.from !== o.peerId || m1.hdr.to !== o.selfId) {
      const why = `the node at this address answered as node ${m1.hdr.from} (to ${m1.hdr.to}); expected node ${o.peerId}`;
      ch.refuse('target', why);
      throw new HandshakeError('target', why);
    }
    const p: ProofInput = { cluster: o.cluster, initiatorNonce: nonceI, responderNonce: m1.body.nonce, initiatorId: o.selfId, responderId: o.peerId };
    if (!verifyProof(o.key, p, 'responder', m1.body.proof)) {
      ch.refuse('auth', 'authentication failed');
      throw new HandshakeError('auth', `node ${o.peerId} failed to prove the cluster key (wrong key or cluster name)`);
    }
    ch.peerProved();
    ch.send({ type: 'auth', proof: computeProof(o.key, p, 'initiator'), ...(o.settings ? { settings: o.settings } : {}), ...(o.incarnation ? { inc: o.incarnation } : {}) }, o.peerId);
    const m2 = await ch.next();
    if (m2.body.type !== 'welcome') throw refusedBy(m2, 'welcome');
    const differs = mismatch(o, m2.body.settings, o.peerId);
    if (differs) {
      ch.refuse('settings', differs);
      throw new HandshakeError('settings', differs);
    }
    return ch.established(o.peerId, 'initiator', p);
  } catch (e) {
    ch.fail(e as Error);
    throw e;
  }
}

/** Accept side: identify the dialer, check everything, verify its proof. */
export async function runResponder(conn: Connection, o: ResponderOptions): Promise<EstablishedSession> {
  const ch = new HandshakeChannel(conn, o, undefined);
  const refuse = (code: RefuseCode, why: string, tell = why): never => {
    ch.refuse(code, tell);
    throw new HandshakeError(code, why);
  };
  try {
    const m1 = await ch.next();
    ch.setPeer(m1.hdr.from);
    if (m1.body.type !== 'hello') refuse('protocol', `expected 'hello', got '${m1.body.type}'`);
    const hello = m1.body as Extract<PeerBody, { type: 'hello' }>;
    const from = m1.hdr.from;
    if (m1.hdr.to !== o.selfId) refuse('target', `hello addressed to node ${m1.hdr.to}, but this is node ${o.selfId}`);
    const addr = o.peerAddress(from);
    if (addr === undefined || from === o.selfId) refuse('unknown-node', `node id ${from} is not a configured peer`);
    if (addr !== conn.remoteAddress) refuse('address', `node ${from} connected from ${conn.remoteAddress}, but its configured address is ${addr}`);
    if (hello.cluster !== o.cluster) refuse('cluster', `node ${from} belongs to cluster '${hello.cluster}', this is cluster '${o.cluster}'`);
    const dialWhy = o.mayDial(from);
    if (dialWhy) refuse('not-dialer', dialWhy);
    const nonceR = makeNonce();
    const p: ProofInput = { cluster: o.cluster, initiatorNonce: hello.nonce, responderNonce: nonceR, initiatorId: from, responderId: o.selfId };
    ch.send({ type: 'challenge', nonce: nonceR, proof: computeProof(o.key, p, 'responder') }, from);
    const m2 = await ch.next();
    if (m2.body.type !== 'auth') throw refusedBy(m2, 'auth');
    if (m2.hdr.from !== from || m2.hdr.to !== o.selfId) refuse('protocol', `'auth' header names ${m2.hdr.from}->${m2.hdr.to}, expected ${from}->${o.selfId}`);
    if (!verifyProof(o.key, p, 'initiator', m2.body.proof)) refuse('auth', `node ${from} failed to prove the cluster key (wrong key)`, 'authentication failed');
    const differs = mismatch(o, m2.body.settings, from);
    if (differs) refuse('settings', differs);
    const twin = m2.body.inc !== undefined ? o.duplicate?.(from, m2.body.inc) : undefined;
    if (twin) refuse('duplicate', twin);
    ch.send({ type: 'welcome', ...(o.settings ? { settings: o.settings } : {}) }, from);
    return ch.established(from, 'responder', p);
  } catch (e) {
    ch.fail(e as Error);
    throw e;
  }
}

export { FrameError };
