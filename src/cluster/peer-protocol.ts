/**
 * The peer (node-to-node) wire format. docs/cluster-protocol.md documents it.
 *
 * Owns: the one discriminated union of every peer message (PeerBody), the versioned header
 * every frame carries, and validatePeerMessage, which checks all of it on receipt and throws
 * PeerProtocolError naming the first thing that is wrong. Frames travel inside the
 * length-prefixed msgpackr framing of src/wire/frame.ts.
 *
 * On the wire one frame is a msgpack map:
 *   { magic: 'MXFS', ver: 1, type, from, to, epoch, seq, body: { ...fields of that type } }
 * In memory a message is `{ hdr: { from, to, epoch, seq }, body: { type, ...fields } }`.
 *
 * Room for the lock engine: add its messages to PeerBody + BODY_VALIDATORS + EPOCH_RULE
 * (the names in RESERVED_PEER_TYPES are kept for them; until they are defined, receiving one
 * is a protocol error that names it as reserved).
 */
import { encodeFrame } from '../wire/frame';
import { validateDlmMessage } from './dlm-messages';
import { ChannelFrame, MAX_REFUSAL_REASON, MAX_REFUSALS, Refusal, StreamAck } from './dlm-channel';
import { ProtocolError } from '../wire/client-protocol';
import { validateTraceStamp, type TraceStamp } from '../trace/event';

export const PEER_MAGIC = 'MXFS';
export const PEER_PROTOCOL_VERSION = 1;
export const MAX_NODE_ID = 1023;
export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;
export const MAX_CLUSTER_NAME = 64;
export const MAX_REASON = 256;
/** Incarnations are random 32-bit values, never 0, picked at every daemon start. */
export const MAX_INCARNATION = 0xffffffff;
/** Default cap on one peer frame's msgpack payload. */
export const DEFAULT_MAX_PEER_FRAME = 1 << 20;

export interface PeerHeader {
  /** Sender node id (1..1023). */
  from: number;
  /** Target node id (1..1023). */
  to: number;
  /** The sender's committed membership epoch (0 = none yet). */
  epoch: number;
  /** Per-connection, per-direction counter; the first frame on a connection is 0. */
  seq: number;
}

export type RefuseCode = 'version' | 'cluster' | 'unknown-node' | 'address' | 'target' | 'auth' | 'not-dialer' | 'protocol' | 'timeout' | 'shutdown' | 'settings' | 'duplicate';
export const REFUSE_CODES: readonly RefuseCode[] = ['version', 'cluster', 'unknown-node', 'address', 'target', 'auth', 'not-dialer', 'protocol', 'timeout', 'shutdown', 'settings', 'duplicate'];

/**
 * The configuration every node of a cluster must share, exchanged in the handshake once the
 * key is proven ('auth', 'welcome'): nodes (every node id: [node] id and the [peer] ids),
 * leaseMs/renewMs ([timing] lease_timeout_ms, renew_interval_ms), tiebreaker ([cluster]
 * tiebreaker, 0 = none), lvbSize ([locking] lvb_size, 0 = not known to the sender). A node
 * whose lease differs fences on its own lease while the others judge it dead on theirs; other
 * node lists or tiebreakers make quorums that need not overlap; so a difference refuses the
 * connection ('settings'). Optional on the wire: a peer that does not send it is not checked.
 */
export interface ClusterSettings { nodes: number[]; leaseMs: number; renewMs: number; tiebreaker: number; lvbSize: number }

export type PeerBody =
  // --- authentication handshake (docs: "Handshake") ---
  | { type: 'hello'; cluster: string; nonce: Buffer }
  | { type: 'challenge'; nonce: Buffer; proof: Buffer }
  /** inc: the dialer's incarnation (optional), so that a second process claiming a live node's id is refused ('duplicate'). */
  | { type: 'auth'; proof: Buffer; settings?: ClusterSettings; inc?: number }
  | { type: 'welcome'; settings?: ClusterSettings }
  | { type: 'refuse'; code: RefuseCode; reason: string }
  | { type: 'bye'; reason: string }
  // --- leases (liveness) ---
  /**
   * sentAt: the sender's monotonic clock when sending, echoed in the ack; inc: the sender's
   * incarnation; pending: the epoch of a proposal it accepted that is not committed yet (0: none).
   */
  /**
   * hears: the nodes the sender heard within 1.5 renew intervals (not itself): how a node
   * learns that a peer it cannot hear is alive for others (a non-transitive partition).
   */
  | { type: 'renew'; sentAt: number; inc: number; pending: number; hears?: number[] }
  /** member: the acker's current view (committed + any accepted proposal) includes the renewer's incarnation. */
  | { type: 'renewAck'; sentAt: number; member: boolean; inc: number }
  // --- membership / epoch agreement (members ascending; incs[i] is members[i]'s incarnation) ---
  | { type: 'propose'; epoch: number; members: number[]; incs: number[] }
  | { type: 'accept'; epoch: number }
  | { type: 'reject'; epoch: number; reason: string; live: number[]; committedEpoch: number }
  | { type: 'commit'; epoch: number; members: number[]; incs: number[] }
  // --- diagnostics, epoch-bound (the template the lock messages will follow) ---
  | { type: 'ping'; token: number }
  | { type: 'pong'; token: number }
  // --- the lock engine (src/cluster/dlm-messages.ts; its epoch is checked by the receiver),
  //     carried reliably by src/cluster/dlm-channel.ts: 'dlm' is one message of the sender's
  //     stream (inc, n) with its sequence and, optionally, an ack of the reverse stream;
  //     'dlmAck' is a standalone ack ---
  | ChannelFrame;

export type PeerMessageType = PeerBody['type'];
export type PeerBodyOf<T extends PeerMessageType> = Extract<PeerBody, { type: T }>;
/**
 * tr: when the sender traces, the stamp of the frame's frame-out event (trace id, Lamport
 * clock: docs/tracing.md), so the receiver's events join its trace and follow it in a merged
 * timeline; optional, and ignored by a node that does not trace.
 */
export interface PeerMessage<B extends PeerBody = PeerBody> { hdr: PeerHeader; body: B; tr?: TraceStamp }

/**
 * How a receiver treats a message's header epoch:
 * - 'none': handshake; the epoch is not looked at.
 * - 'liveness': leases; accepted whatever the epoch (a restarted or lagging node must be able
 *   to show it is alive), but a newer epoch tells the receiver its view is behind.
 * - 'membership': carries its own epoch in the body; checked by the agreement rules.
 * - 'bound': only valid in the epoch it was sent in: rejected unless hdr.epoch equals the
 *   receiver's committed epoch (ClusterNode checks it before delivery).
 * - 'receiver': delivered whatever the epoch; the receiving layer checks it itself (the lock
 *   router must hold a newer epoch's recovery records until it commits that epoch).
 */
export type EpochRule = 'none' | 'liveness' | 'membership' | 'bound' | 'receiver';

export const EPOCH_RULE: Readonly<Record<PeerMessageType, EpochRule>> = {
  hello: 'none', challenge: 'none', auth: 'none', welcome: 'none', refuse: 'none', bye: 'none',
  renew: 'liveness', renewAck: 'liveness',
  propose: 'membership', accept: 'membership', reject: 'membership', commit: 'membership',
  ping: 'bound', pong: 'bound',
  // The lock engine holds messages of a newer epoch until it commits that epoch (a peer
  // that committed first sends its recovery records early) and drops older ones itself.
  dlm: 'receiver', dlmAck: 'receiver',
};

export const HANDSHAKE_TYPES: ReadonlySet<PeerMessageType> = new Set(['hello', 'challenge', 'auth', 'welcome']);

/**
 * The `type` of a peer message from the first bytes of its msgpack encoding, without decoding
 * the rest: the map as toWire() writes it (magic, ver, type first), in the encodings msgpack
 * uses for short strings and small integers. Undefined when the bytes look otherwise (the
 * caller then decodes the whole message).
 */
export function peekPeerType(b: Buffer): PeerMessageType | undefined {
  let i = 0;
  const h = b[i++];
  if (h === undefined) return undefined;
  if (h >= 0x80 && h <= 0x8f) { /* fixmap */ } else if (h === 0xde) i += 2; else if (h === 0xdf) i += 4; else return undefined;
  const str = (): string | undefined => {
    const t = b[i++];
    let n: number;
    if (t === undefined) return undefined;
    if (t >= 0xa0 && t <= 0xbf) n = t - 0xa0;
    else if (t === 0xd9 && i < b.length) n = b[i++]!;
    else return undefined;
    if (i + n > b.length) return undefined;
    const s = b.toString('latin1', i, i + n);
    i += n;
    return s;
  };
  const skipSmall = (): boolean => { // a string or a small integer
    const t = b[i];
    if (t === undefined) return false;
    if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) { i++; return true; }
    if (t === 0xcc) { i += 2; return true; }
    if (t === 0xcd) { i += 3; return true; }
    return str() !== undefined;
  };
  for (let k = 0; k < 3; k++) {
    const key = str();
    if (key === undefined) return undefined;
    if (key === 'type') {
      const v = str();
      return v !== undefined && Object.prototype.hasOwnProperty.call(EPOCH_RULE, v) ? v as PeerMessageType : undefined;
    }
    if (!skipSmall()) return undefined;
  }
  return undefined;
}

/**
 * Bulk traffic: the lock engine's messages (rule 'receiver', and 'bound' ones but ping/pong).
 * Everything else — leases, membership, diagnostics — goes first on a link (transport.ts,
 * peer-link.ts): a renewal must never wait behind megabytes of lock messages.
 */
export function isBulkTraffic(type: PeerMessageType): boolean {
  const rule = EPOCH_RULE[type];
  return rule === 'receiver' || (rule === 'bound' && type !== 'ping' && type !== 'pong');
}

/** Names kept for the lock engine's messages (protocol version 1 does not define them yet). */
export const RESERVED_PEER_TYPES: readonly string[] = [
  'lockRequest', 'lockConvert', 'lockUnlock', 'lockCancel', 'lockGrant', 'lockFail', 'lockBast',
  'lookup', 'lookupReply', 'recoverStop', 'recoverLocks', 'recoverDone', 'recoverResume',
];

export class PeerProtocolError extends Error {
  /** 'version' when only the protocol version is wrong (so the handshake can say so). */
  constructor(message: string, readonly code: 'version' | 'protocol' = 'protocol') {
    super(message);
    this.name = 'PeerProtocolError';
  }
}

type Obj = Record<string, unknown>;

function fail(what: string): never { throw new PeerProtocolError(what); }

function obj(x: unknown, what: string): Obj {
  if (typeof x !== 'object' || x === null || Array.isArray(x) || x instanceof Uint8Array) fail(`${what} is not a map`);
  return x as Obj;
}

/**
 * The highest membership epoch: a cluster's fencing tokens are epoch * 2^32 + count
 * (lock-router.ts, EPOCH_TOKEN_SHIFT) and must stay exact JavaScript integers (< 2^53), so
 * an epoch above this would make tokens that can repeat or go backwards. No node proposes,
 * accepts or stores one, and a peer frame carrying one is invalid.
 */
export const MAX_EPOCH = 2 ** 21 - 1;

function uint(o: Obj, k: string, where: string, max = Number.MAX_SAFE_INTEGER): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) fail(`${where}: field '${k}' must be an integer 0..${max}, got ${show(v)}`);
  return v;
}

function nodeId(o: Obj, k: string, where: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_NODE_ID) fail(`${where}: field '${k}' must be a node id 1..${MAX_NODE_ID}, got ${show(v)}`);
  return v;
}

function time(o: Obj, k: string, where: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(`${where}: field '${k}' must be a finite number >= 0, got ${show(v)}`);
  return v;
}

function str(o: Obj, k: string, where: string, maxBytes: number, nonEmpty = true): string {
  const v = o[k];
  if (typeof v !== 'string' || (nonEmpty && v.length === 0)) fail(`${where}: field '${k}' must be a${nonEmpty ? ' non-empty' : ''} string`);
  const n = Buffer.byteLength(v, 'utf8');
  if (n > maxBytes) fail(`${where}: field '${k}' is ${n} bytes; the limit is ${maxBytes}`);
  return v;
}

function bin(o: Obj, k: string, where: string, len: number): Buffer {
  const v = o[k];
  if (!(v instanceof Uint8Array)) fail(`${where}: field '${k}' must be binary`);
  if (v.byteLength !== len) fail(`${where}: field '${k}' must be ${len} bytes, got ${v.byteLength}`);
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function bool(o: Obj, k: string, where: string): boolean {
  if (typeof o[k] !== 'boolean') fail(`${where}: field '${k}' must be a boolean`);
  return o[k] as boolean;
}

/** A member list: node ids, strictly ascending (so equal sets have equal encodings). */
function members(o: Obj, k: string, where: string): number[] {
  const v = o[k];
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_NODE_ID) fail(`${where}: field '${k}' must be a non-empty list of node ids`);
  let prev = 0;
  for (const id of v) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > MAX_NODE_ID) fail(`${where}: field '${k}' holds ${show(id)}, not a node id`);
    if (id <= prev) fail(`${where}: field '${k}' must be strictly ascending`);
    prev = id;
  }
  return v as number[];
}

/** A list of node ids, strictly ascending, possibly empty. */
function nodeList(o: Obj, k: string, where: string): number[] {
  const v = o[k];
  if (Array.isArray(v) && v.length === 0) return [];
  return members(o, k, where);
}

function incs(o: Obj, k: string, where: string, count: number): number[] {
  const v = o[k];
  if (!Array.isArray(v) || v.length !== count) fail(`${where}: field '${k}' must be a list of ${count} incarnations (one per member)`);
  for (const x of v) if (typeof x !== 'number' || !Number.isInteger(x) || x < 1 || x > MAX_INCARNATION) fail(`${where}: field '${k}' holds ${show(x)}, not an incarnation 1..${MAX_INCARNATION}`);
  return v as number[];
}

function inc(o: Obj, k: string, where: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_INCARNATION) fail(`${where}: field '${k}' must be an incarnation 1..${MAX_INCARNATION}, got ${show(v)}`);
  return v;
}

function optSettings(b: Obj, w: string): { settings?: ClusterSettings } {
  if (b.settings === undefined) return {};
  const s = obj(b.settings, `${w} field 'settings'`);
  const x = `${w} settings`;
  return {
    settings: {
      nodes: members(s, 'nodes', x), leaseMs: uint(s, 'leaseMs', x, 2 ** 31), renewMs: uint(s, 'renewMs', x, 2 ** 31),
      tiebreaker: uint(s, 'tiebreaker', x, MAX_NODE_ID), lvbSize: uint(s, 'lvbSize', x, 2 ** 31),
    },
  };
}

function streamAck(o: Obj, where: string): StreamAck {
  return { inc: inc(o, 'inc', where), n: uint(o, 'n', where), next: uint(o, 'next', where), rinc: inc(o, 'rinc', where), ...refusedList(o, where) };
}

/** The optional list of refused sequence numbers in an ack (src/cluster/dlm-channel.ts, "Refusals"). */
function refusedList(o: Obj, where: string): { refused?: Refusal[] } {
  const v = o.refused;
  if (v === undefined) return {};
  if (!Array.isArray(v) || v.length > MAX_REFUSALS) fail(`${where}: field 'refused' must be a list of at most ${MAX_REFUSALS} refusals`);
  // A little room over MAX_REFUSAL_REASON: the sender cuts at a character boundary and adds '...'.
  return { refused: v.map((x) => { const r = obj(x, `${where} refusal`); return { seq: uint(r, 'seq', where), reason: str(r, 'reason', where, MAX_REFUSAL_REASON + 8, false) }; }) };
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 32 ? v.slice(0, 32) + '...' : v);
  if (v instanceof Uint8Array) return `<${v.byteLength} bytes>`;
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'a map' : String(v);
}

const BODY_VALIDATORS: { [T in PeerMessageType]: (b: Obj, w: string) => PeerBodyOf<T> } = {
  hello: (b, w) => ({ type: 'hello', cluster: str(b, 'cluster', w, MAX_CLUSTER_NAME), nonce: bin(b, 'nonce', w, NONCE_BYTES) }),
  challenge: (b, w) => ({ type: 'challenge', nonce: bin(b, 'nonce', w, NONCE_BYTES), proof: bin(b, 'proof', w, PROOF_BYTES) }),
  auth: (b, w) => ({ type: 'auth', proof: bin(b, 'proof', w, PROOF_BYTES), ...optSettings(b, w), ...(b.inc === undefined ? {} : { inc: inc(b, 'inc', w) }) }),
  welcome: (b, w) => ({ type: 'welcome', ...optSettings(b, w) }),
  refuse: (b, w) => {
    const code = b.code;
    if (typeof code !== 'string' || !(REFUSE_CODES as readonly string[]).includes(code)) fail(`${w}: field 'code' must be one of ${REFUSE_CODES.join(', ')}`);
    return { type: 'refuse', code: code as RefuseCode, reason: str(b, 'reason', w, MAX_REASON, false) };
  },
  bye: (b, w) => ({ type: 'bye', reason: str(b, 'reason', w, MAX_REASON, false) }),
  renew: (b, w) => ({
    type: 'renew', sentAt: time(b, 'sentAt', w), inc: inc(b, 'inc', w), pending: uint(b, 'pending', w, MAX_EPOCH),
    ...(b.hears === undefined ? {} : { hears: nodeList(b, 'hears', w) }),
  }),
  renewAck: (b, w) => ({ type: 'renewAck', sentAt: time(b, 'sentAt', w), member: bool(b, 'member', w), inc: inc(b, 'inc', w) }),
  propose: (b, w) => {
    const m = members(b, 'members', w);
    return { type: 'propose', epoch: uint(b, 'epoch', w, MAX_EPOCH), members: m, incs: incs(b, 'incs', w, m.length) };
  },
  accept: (b, w) => ({ type: 'accept', epoch: uint(b, 'epoch', w, MAX_EPOCH) }),
  reject: (b, w) => ({
    type: 'reject', epoch: uint(b, 'epoch', w, MAX_EPOCH), reason: str(b, 'reason', w, MAX_REASON, false),
    live: members(b, 'live', w), committedEpoch: uint(b, 'committedEpoch', w, MAX_EPOCH),
  }),
  commit: (b, w) => {
    const m = members(b, 'members', w);
    return { type: 'commit', epoch: uint(b, 'epoch', w, MAX_EPOCH), members: m, incs: incs(b, 'incs', w, m.length) };
  },
  ping: (b, w) => ({ type: 'ping', token: uint(b, 'token', w) }),
  pong: (b, w) => ({ type: 'pong', token: uint(b, 'token', w) }),
  dlm: (b, w) => {
    const head = { inc: inc(b, 'inc', w), n: uint(b, 'n', w), seq: uint(b, 'seq', w) };
    const ack = b.ack === undefined ? {} : { ack: streamAck(obj(b.ack, `${w} field 'ack'`), `${w} ack`) };
    try {
      return { type: 'dlm', ...head, ...ack, msg: validateDlmMessage(b.msg) };
    } catch (e) {
      // A bad lock message is refused alone (the DlmChannel consumes its sequence number and
      // tells the sender); only a bad envelope above is fatal to the link.
      if (e instanceof ProtocolError) return { type: 'dlm', ...head, ...ack, invalid: e.message };
      throw e;
    }
  },
  dlmAck: (b, w) => ({ type: 'dlmAck', ...streamAck(b, w), gap: bool(b, 'gap', w) }),
};

const MAX_SEQ = Number.MAX_SAFE_INTEGER;

/**
 * Checks an untrusted decoded frame and returns the typed message. Throws PeerProtocolError
 * (code 'version' if the magic is right but the version is not ours) naming what was wrong.
 */
export function validatePeerMessage(x: unknown): PeerMessage {
  const o = obj(x, 'peer frame');
  if (o.magic !== PEER_MAGIC) fail(`bad magic ${show(o.magic)}: not an MXFS peer frame`);
  if (o.ver !== PEER_PROTOCOL_VERSION) {
    throw new PeerProtocolError(`unsupported protocol version ${show(o.ver)}; this node speaks version ${PEER_PROTOCOL_VERSION}`, 'version');
  }
  const type = o.type;
  if (typeof type !== 'string') fail(`field 'type' must be a string, got ${show(type)}`);
  if (!Object.prototype.hasOwnProperty.call(BODY_VALIDATORS, type)) {
    if (RESERVED_PEER_TYPES.includes(type)) fail(`message type '${type}' is reserved but not defined in protocol version ${PEER_PROTOCOL_VERSION}`);
    fail(`unknown message type ${show(type)}`);
  }
  const where = `'${type}'`;
  const hdr: PeerHeader = {
    from: nodeId(o, 'from', where), to: nodeId(o, 'to', where),
    epoch: uint(o, 'epoch', where, MAX_EPOCH), seq: uint(o, 'seq', where, MAX_SEQ),
  };
  const body = BODY_VALIDATORS[type as PeerMessageType](obj(o.body ?? fail(`${where}: missing body`), `${where} body`), where);
  return o.tr === undefined ? { hdr, body } : { hdr, body, tr: validateTraceStamp(o.tr) };
}

/** Builds the wire object of a message (the inverse of validatePeerMessage). */
export function toWire(msg: PeerMessage): Record<string, unknown> {
  const { type, ...fields } = msg.body;
  const w: Record<string, unknown> = { magic: PEER_MAGIC, ver: PEER_PROTOCOL_VERSION, type, ...msg.hdr, body: fields };
  if (msg.tr) w.tr = msg.tr;
  return w;
}

export function encodePeerMessage(msg: PeerMessage, maxBytes = DEFAULT_MAX_PEER_FRAME): Buffer {
  return encodeFrame(toWire(msg), maxBytes);
}

/** Ascending, de-duplicated copy of a member list (the canonical form on the wire). */
export function canonicalMembers(ids: Iterable<number>): number[] {
  return [...new Set(ids)].sort((a, b) => a - b);
}
