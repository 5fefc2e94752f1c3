/**
 * Which key fields of a message the trace records, as data: EXTRACT maps a message `type` to
 * the function that reads its wrapped parts (a routed ResourceMsg, a client request, a peer
 * frame, a kernel message); every other message gets the plain fields it carries, by name,
 * through GENERIC. ORIGIN names the sender of messages sent from outside any actor (a socket,
 * a timer, the network, the kernel).
 *
 * Extractors read untrusted-looking shapes defensively: a message of another actor kind may
 * share a type name (both the kernel bridge and the lock engine have a 'bast').
 */
import { MxfsAttr, MxfsCmd } from '../ffi/mxfs-genl';
import type { TraceFields } from './event';
import { RECOVERY_MSG_TYPES } from '../daemon/recovery';
import { deadlineText } from '../cluster/lease';

type Any = Record<string, any>;
type Extractor = (m: Any, f: TraceFields) => void;

const isStr = (v: unknown): v is string => typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number';
const idText = (v: unknown): string | undefined => (isStr(v) ? v : isNum(v) || typeof v === 'bigint' ? String(v) : undefined);

/** Plain fields, by the name messages give them: [message field, trace field]. */
const GENERIC: ReadonlyArray<readonly [string, keyof TraceFields]> = [
  ['lockId', 'lock'], ['owner', 'lock'], ['lockspace', 'ls'], ['resource', 'res'], ['mode', 'mode'],
  ['epoch', 'epoch'], ['peer', 'peer'], ['code', 'info'], ['reason', 'info'], ['volume', 'res'],
];

function generic(m: Any, f: TraceFields): void {
  for (const [from, to] of GENERIC) {
    const v = m[from];
    if (v === undefined || (f as Any)[to] !== undefined) continue;
    if (to === 'mode' || to === 'epoch' || to === 'peer') { if (isNum(v)) (f as Any)[to] = v; }
    else if (to === 'info') { if (isStr(v)) f.info = v.length > 120 ? v.slice(0, 117) + '...' : v; }
    else { const t = idText(v); if (t !== undefined) (f as Any)[to] = t; }
  }
}

/**
 * The lock engine's own messages (ResourceMsg, LockEvent), read without the generic scan:
 * they are most of the traffic.
 */
function lockMsg(x: Any, f: TraceFields): void {
  const id = x.lockId ?? x.owner;
  if (isStr(id)) f.lock = id;
  if (isNum(x.mode)) f.mode = x.mode;
  const g = x.grant;
  if (g !== undefined && isNum(g.token)) { f.token = g.token; if (isNum(g.mode)) f.mode = g.mode; }
  if (isStr(x.code)) f.info = x.code;
}

/** A lock-engine message inside a wrapper (route, peer op, ev). */
function inner(m: unknown, f: TraceFields): void {
  if (typeof m !== 'object' || m === null) return;
  const x = m as Any;
  if (isStr(x.type)) f.sub = x.type;
  lockMsg(x, f);
}

/** The kernel module's messages (src/ffi/mxfs-genl.ts). */
function kernel(msg: unknown, f: TraceFields): void {
  if (typeof msg !== 'object' || msg === null) return;
  const k = msg as { cmd?: number; attrs?: Record<number, unknown> };
  f.sub = MxfsCmd[k.cmd ?? 0] ?? String(k.cmd);
  kernelAttrFields(k.attrs ?? {}, f);
}

/** The key attributes of a message to or from the kernel module. */
export function kernelAttrFields(a: Record<number, unknown>, f: TraceFields): void {
  const req = idText(a[MxfsAttr.REQ_ID]);
  if (req !== undefined) f.req = req;
  if (isStr(a[MxfsAttr.LOCKSPACE])) f.ls = a[MxfsAttr.LOCKSPACE] as string;
  if (isStr(a[MxfsAttr.RESOURCE])) f.res = a[MxfsAttr.RESOURCE] as string;
  if (isStr(a[MxfsAttr.VOLUME])) f.res = a[MxfsAttr.VOLUME] as string;
  if (isNum(a[MxfsAttr.MODE])) f.mode = a[MxfsAttr.MODE] as number;
  const tok = a[MxfsAttr.TOKEN];
  if (isNum(tok) || typeof tok === 'bigint') f.token = Number(tok);
}

/** `dlm.T` for a lock message's type T, made once per type (not a new string per frame). */
const DLM_SUB = new Map<string, string>();
function dlmSub(t: string): string {
  let s = DLM_SUB.get(t);
  if (s === undefined) { s = `dlm.${t}`; if (DLM_SUB.size < 256) DLM_SUB.set(t, s); }
  return s;
}

/** A peer-link body: its type, and for lock traffic the lock message inside. */
export function peerBodyFields(body: unknown, f: TraceFields): void {
  if (typeof body !== 'object' || body === null) return;
  const b = body as Any;
  if (b.type === 'dlm' && b.msg && isStr(b.msg.t)) {
    f.sub = dlmSub(b.msg.t);
    dlmFields(b.msg, f);
    // An `ev` names its resource only in its stamp (docs/tracing.md, "Causality").
    const tr = b.msg.tr; // [id, lc, res?, ls?] (TraceStamp)
    if (Array.isArray(tr) && f.res === undefined && isStr(tr[2])) { f.res = tr[2]; if (isStr(tr[3])) f.ls ??= tr[3]; }
  } else if (isStr(b.type)) f.sub = b.type;
}

/** A DlmPeerMsg (src/cluster/dlm-messages.ts). */
export function dlmFields(msg: Any, f: TraceFields): void {
  if (isNum(msg.epoch)) f.epoch = msg.epoch;
  if (isStr(msg.lockspace)) f.ls = msg.lockspace;
  if (isStr(msg.resource)) f.res = msg.resource;
  if (msg.op) inner(msg.op, f);
  else if (msg.ev) inner(msg.ev, f);
}

const EXTRACT: Readonly<Record<string, Extractor>> = {
  // Lockspace: a ResourceMsg routed to one of its resources; its idle resources.
  route: (m, f) => { inner(m.msg, f); if (isStr(m.resource)) f.res = m.resource; },
  idle: (m, f) => { if (isStr(m.resource)) f.res = m.resource; },
  // LockResource: ResourceMsg; sessions and remote owners: LockEvent.
  ...Object.fromEntries(['request', 'convert', 'unlock', 'cancel', 'purge', 'timeout', 'lock.granted', 'lock.failed', 'lock.queued',
    'lock.bast', 'lock.released', 'lock.opError', 'lock.lost'].map((t) => [t, lockMsg])),
  tick: () => {},
  // ClientSession: a validated request from its client.
  client: (m, f) => {
    const r = m.req as Any | undefined;
    if (!r) return;
    f.sub = r.type;
    // As numbers: the ring formats them when the event is read (no string per request).
    if (isNum(r.id)) f.req = r.id;
    if (isNum(r.lockId)) f.lock = r.lockId;
    if (isStr(r.lockspace)) f.ls = r.lockspace;
    if (isStr(r.resource)) f.res = r.resource;
    if (isNum(r.mode)) f.mode = r.mode;
  },
  // PeerLink: a body to send; Membership: a message from a peer.
  send: (m, f) => { peerBodyFields(m.body, f); if (isNum(m.epoch)) f.epoch = m.epoch; },
  peerMessage: (m, f) => {
    if (isNum(m.from)) f.peer = m.from;
    peerBodyFields(m.msg?.body, f);
    if (isNum(m.msg?.hdr?.epoch)) f.epoch = m.msg.hdr.epoch;
  },
  // Kernel bridge: a message from the module.
  kernel: (m, f) => kernel(m.msg, f),
  // DlmChannelActor: the first lock message or frame of a batch; a timer's kind.
  'dlm.send': (m, f) => {
    const x = m.items?.[0]?.[1];
    if (isNum(m.peer)) f.peer = m.peer;
    if (x && isStr(x.t)) { f.sub = dlmSub(x.t); dlmFields(x, f); }
  },
  'dlm.receive': (m, f) => { if (isNum(m.peer)) f.peer = m.peer; peerBodyFields(m.items?.[0]?.[1], f); },
  'dlm.timer': (m, f) => { if (isNum(m.peer)) f.peer = m.peer; if (isStr(m.what)) f.info = m.what; },
  // Lease actors (src/cluster/lease.ts): the peer, the epoch, the incarnation and expiry in info.
  'lease.renewed': (m, f) => { leasePeer(m, f); f.info = `inc ${incText(m.inc)}, expires ${deadlineText(m.expires)}`; },
  'lease.acked': (m, f) => {
    leasePeer(m, f);
    f.info = m.member ? `inc ${incText(m.inc)}, vouches until ${deadlineText(m.until)}` : `inc ${incText(m.inc)}, no longer counts this node`;
  },
  'lease.expire': (m, f) => { leasePeer(m, f); f.info = `expires ${deadlineText(m.expires)}`; },
  leaseExpired: (m, f) => { leasePeer(m, f); f.info = `expired ${deadlineText(m.expires)}`; },
  'lease.deadline': (m, f) => { if (isNum(m.epoch)) f.epoch = m.epoch; f.info = `self-fence at ${deadlineText(m.until)}`; },
  'lease.lapse': (m, f) => { f.info = `self-fence deadline ${deadlineText(m.until)} passed`; },
  // Recovery: a phase transition, its epoch and summary (members, counts, what superseded it).
  ...Object.fromEntries(RECOVERY_MSG_TYPES.map((t) => [t, (m: Any, f: TraceFields) => {
    if (isNum(m.epoch)) f.epoch = m.epoch;
    if (isStr(m.note)) f.info = m.note;
  }])),
};

/** EXTRACT as a Map: looked up once per recorded message (a keyed read of the ~50-key object cost more). */
const EXTRACTORS: ReadonlyMap<string, Extractor> = new Map(Object.entries(EXTRACT));

function leasePeer(m: Any, f: TraceFields): void {
  if (isNum(m.peer)) f.peer = m.peer;
  if (isNum(m.epoch)) f.epoch = m.epoch;
}
const incText = (v: unknown): string => (isNum(v) ? v.toString(16) : '?');

/** `node/N` and `peer-link/N`, made once per node number (not a new string per frame kept alive in the ring). */
const NODE_PATHS: string[] = [];
const LINK_PATHS: string[] = [];
export const nodePath = (n: number): string => NODE_PATHS[n] ?? (n >= 0 && n < 4096 ? (NODE_PATHS[n] = `node/${n}`) : `node/${n}`);
export const peerLinkPath = (n: number): string => LINK_PATHS[n] ?? (n >= 0 && n < 4096 ? (LINK_PATHS[n] = `peer-link/${n}`) : `peer-link/${n}`);

/** Sender of a message sent from outside any actor, by its type. */
export const ORIGIN: Readonly<Record<string, string>> = {
  client: 'client', disconnected: 'client', hb: 'client',
  tick: 'timer', timeout: 'timer', sweep: 'timer', retry: 'timer', idleCheck: 'timer', evaluate: 'timer', 'health-check': 'timer',
  data: 'net', drain: 'net', closed: 'net', adopt: 'net', dialFailed: 'net', peerMessage: 'net', linkUp: 'net', linkDown: 'net',
  kernel: 'kernel', 'family-gone': 'kernel', 'channel-error': 'kernel',
  'recovery.collect': 'view', 'recovery.abandon': 'view', 'lease.expire': 'timer', 'lease.lapse': 'timer',
};

/**
 * The trace's own traffic (trace requests, peer trace queries) is left out, so reading the
 * trace does not fill it.
 */
export const isSelfTraffic = (sub: string): boolean => sub === 'trace' || sub === 'dlm.traceQuery' || sub === 'dlm.traceReply';

/** Read-only inspection messages (mxfsctl locks/why ask for them): left out of `why` and of diagrams. */
export const INSPECTION_TYPES: ReadonlySet<string> = new Set(['inspect', 'inspectReply', 'list', 'status', 'view', 'lease.status']);

/**
 * Whether an event is inspection: an inspection message itself, or a wrapper carrying one —
 * the DlmChannel's `dlm.send`/`dlm.receive` of an `inspect` (sub `dlm.inspect`), a client's
 * `status` request (sub `status`). `why` asks the other nodes with `inspect`: without the
 * wrappers its own asks filled the recent traffic it shows.
 */
export function isInspection(type: string, sub: string | undefined): boolean {
  if (INSPECTION_TYPES.has(type)) return true;
  if (sub === undefined) return false;
  return INSPECTION_TYPES.has(sub.startsWith('dlm.') ? sub.slice(4) : sub);
}

/** The key fields of an actor message, into `f` (emptied first). */
export function extractFields(msg: Any, f: TraceFields): TraceFields {
  f.sub = f.ls = f.res = f.lock = f.req = f.info = undefined;
  f.mode = f.token = f.epoch = f.peer = undefined;
  const x = EXTRACTORS.get(msg.type as string);
  if (x) x(msg, f);
  else generic(msg, f);
  return f;
}
