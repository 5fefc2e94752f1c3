/**
 * The lock manager's node-to-node messages (carried by the peer links; validated here on
 * receipt like every other untrusted input).
 *
 *   op       owner node -> master   a lock operation for a resource the receiver masters
 *   ev       master -> owner node   a LockEvent for one of the owner node's locks
 *   rec      every member -> master recovery: the sender's own records of its locks on
 *                                  resources the receiver masters in the new epoch
 *   recDone  every member -> all    recovery: the sender has sent all its records
 *   inspect / inspectReply            `mxfsctl locks` cluster-wide: a master's view of its
 *                                     resources (read-only, answered in any epoch)
 *   vol      any -> any            volume records and status (src/volumes/messages.ts)
 *   traceQuery / traceReply           `mxfsctl trace collect`: a page of the receiver's trace
 *                                     ring after a cursor (read-only, answered in any epoch)
 *
 * Any message may carry `tr`, the trace stamp of its sending (trace id, Lamport clock; for an
 * `ev`, the resource), set only by a node that traces (docs/tracing.md). It is optional and
 * validated; a receiver that does not trace ignores it.
 *
 * Every message carries the sender's epoch; docs/dlm-protocol.md ("Cluster") says what a
 * receiver does with an older or newer one.
 */
import { isMode, Mode } from '../dlm/modes';
import { LOCK_ERROR_CODES, LockErrorCode, MAX_LOCKSPACE_NAME, MAX_RESOURCE_NAME } from '../dlm/types';
import type { LockEvent, LockOp } from '../actors/messages';
import { checkName, ProtocolError } from '../wire/client-protocol';
import { validateVolMessage, VolMessageError, VolPeerMsg } from '../volumes/messages';
import { TraceEvent, TraceStamp, validateTraceEvent, validateTraceStamp } from '../trace/event';
import { TraceFilter, validateTraceFilter } from '../trace/filter';

export type WireOp =
  | { type: 'request'; lockId: string; owner: string; mode: Mode; noqueue: boolean; timeoutMs?: number }
  | { type: 'convert'; lockId: string; mode: Mode; noqueue: boolean; timeoutMs?: number; lvb?: Buffer }
  | { type: 'unlock'; lockId: string; lvb?: Buffer }
  | { type: 'cancel'; lockId: string }
  | { type: 'purge'; owner: string };

/** A lock as its owner node records it: what a new master rebuilds from. */
export interface LockRecord {
  lockspace: string;
  resource: string;
  lockId: string;
  owner: string;
  /** Granted mode, or null for a request not granted yet. */
  grMode: Mode | null;
  token: number;
  /** Pending request or conversion, re-issued after the rebuild. */
  rqMode: Mode | null;
  noqueue: boolean;
  timeoutMs?: number;
  /** The LVB the holder received with its grant (used only from PR/CW/PW/EX holders not converting down to NL/CR). */
  lvb?: Buffer;
  lvbValid: boolean;
  /** The LVB a pending conversion asked to write (written when the conversion is re-issued). */
  rqLvb?: Buffer;
  /**
   * How long the pending request or conversion had waited when its session collected it (ms,
   * its node's clock; a duration, so comparable across nodes): the new master re-queues the
   * longest waiting first, keeping the old queues' FIFO order.
   */
  waitedMs?: number;
}

/** A page of a node's trace ring (the answer to a traceQuery). */
export interface WireTracePage { events: TraceEvent[]; cursor: number; more: boolean; missed: number; enabled: boolean }

export type DlmPeerMsg = DlmPeerBody & { tr?: TraceStamp };

export type DlmPeerBody =
  | { t: 'op'; epoch: number; lockspace: string; resource: string; op: WireOp }
  | { t: 'ev'; epoch: number; ev: LockEvent }
  | { t: 'rec'; epoch: number; records: LockRecord[] }
  | { t: 'recDone'; epoch: number }
  | { t: 'inspect'; epoch: number; id: number; lockspace?: string; resource?: string }
  /** omitted: resources left out so the reply fits in one peer frame (MAX_DLM_LIST_BYTES). */
  | { t: 'inspectReply'; epoch: number; id: number; resources: unknown[]; omitted?: number }
  | { t: 'vol'; epoch: number; m: VolPeerMsg }
  /** after: the cursor (last seq already read); maxBytes: room for the reply's events. */
  | { t: 'traceQuery'; epoch: number; id: number; after: number; filter: TraceFilter; maxBytes: number }
  | { t: 'traceReply'; epoch: number; id: number; page: WireTracePage };

/** Most events one traceReply may carry. */
export const MAX_TRACE_EVENTS = 20000;

/**
 * Bound for the two lock messages that carry lists (recovery records go in batches of
 * REC_BATCH, sized for the largest possible record; inspection replies are cut to fit):
 * well below the 1 MiB peer frame cap. A peer message that does not fit would be refused by
 * the link (logged as an error), and the DlmChannel, which delivers in order, would keep
 * retrying it and hold up everything behind it: so every sender keeps to this bound.
 */
export const MAX_DLM_LIST_BYTES = 512 * 1024;

type Obj = Record<string, unknown>;
const fail = (w: string): never => { throw new ProtocolError(`dlm message: ${w}`); };
const obj = (x: unknown, w: string): Obj => (typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof Uint8Array) ? x as Obj : fail(`${w} is not a map`));
const uint = (o: Obj, k: string): number => {
  const v = o[k];
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER ? v : fail(`field '${k}' must be an unsigned integer`);
};
const optUint = (o: Obj, k: string) => (o[k] === undefined ? undefined : uint(o, k));
const bool = (o: Obj, k: string): boolean => (typeof o[k] === 'boolean' ? o[k] as boolean : fail(`field '${k}' must be a boolean`));
const mode = (o: Obj, k: string): Mode => (isMode(o[k]) ? o[k] as Mode : fail(`field '${k}' must be a lock mode 0..5`));
const optMode = (o: Obj, k: string): Mode | null => (o[k] === null || o[k] === undefined ? null : mode(o, k));
const lockId = (o: Obj, k = 'lockId'): string => {
  const v = o[k];
  return typeof v === 'string' && /^\d{1,4}:\d{1,15}\/\d{1,16}$/.test(v) ? v : fail(`field '${k}' must be a lock id node:session/n`);
};
const owner = (o: Obj): string => {
  const v = o.owner;
  return typeof v === 'string' && /^\d{1,4}:\d{1,15}$/.test(v) ? v : fail(`field 'owner' must be node:session`);
};
const optBuf = (o: Obj, k: string, max = 1024): Buffer | undefined => {
  const v = o[k];
  if (v === undefined) return undefined;
  if (!(v instanceof Uint8Array) || v.byteLength > max) fail(`field '${k}' must be binary of at most ${max} bytes`);
  return Buffer.from(v as Uint8Array);
};
const wrap = <T>(f: () => T): T => {
  try { return f(); } catch (e) { if (e instanceof ProtocolError && !e.message.startsWith('dlm message')) fail(e.message); throw e; }
};

function wireOp(x: unknown): WireOp {
  const o = obj(x, 'op');
  switch (o.type) {
    case 'request': return { type: 'request', lockId: lockId(o), owner: owner(o), mode: mode(o, 'mode'), noqueue: bool(o, 'noqueue'), timeoutMs: optUint(o, 'timeoutMs') };
    case 'convert': return { type: 'convert', lockId: lockId(o), mode: mode(o, 'mode'), noqueue: bool(o, 'noqueue'), timeoutMs: optUint(o, 'timeoutMs'), lvb: optBuf(o, 'lvb') };
    case 'unlock': return { type: 'unlock', lockId: lockId(o), lvb: optBuf(o, 'lvb') };
    case 'cancel': return { type: 'cancel', lockId: lockId(o) };
    case 'purge': return { type: 'purge', owner: owner(o) };
    default: return fail(`unknown op type`);
  }
}

const OPS: readonly LockOp[] = ['request', 'convert', 'unlock', 'cancel'];

function lockEvent(x: unknown): LockEvent {
  const o = obj(x, 'ev');
  const id = lockId(o);
  switch (o.type) {
    case 'lock.granted': {
      const g = obj(o.grant, 'grant');
      const lvb = optBuf(g, 'lvb') ?? fail(`grant lvb missing`);
      return { type: 'lock.granted', lockId: id, conversion: bool(o, 'conversion'), grant: { mode: mode(g, 'mode'), token: uint(g, 'token'), lvb, lvbValid: bool(g, 'lvbValid') } };
    }
    case 'lock.failed': {
      const code = o.code;
      if (typeof code !== 'string' || !(LOCK_ERROR_CODES as readonly string[]).includes(code)) fail('bad error code');
      return { type: 'lock.failed', lockId: id, conversion: bool(o, 'conversion'), code: code as LockErrorCode };
    }
    case 'lock.queued': return { type: 'lock.queued', lockId: id, conversion: bool(o, 'conversion') };
    case 'lock.bast': return { type: 'lock.bast', lockId: id, mode: mode(o, 'mode') };
    case 'lock.released': return { type: 'lock.released', lockId: id };
    case 'lock.opError': {
      const code = o.code, op = o.op;
      if (typeof code !== 'string' || !(LOCK_ERROR_CODES as readonly string[]).includes(code)) fail('bad error code');
      if (typeof op !== 'string' || !(OPS as readonly string[]).includes(op)) fail('bad op');
      return { type: 'lock.opError', lockId: id, op: op as LockOp, code: code as LockErrorCode, message: typeof o.message === 'string' ? o.message.slice(0, 512) : String(code) };
    }
    case 'lock.lost': return { type: 'lock.lost', lockId: id, reason: typeof o.reason === 'string' ? o.reason.slice(0, 512) : 'lost' };
    default: return fail('unknown event type');
  }
}

function record(x: unknown): LockRecord {
  const o = obj(x, 'record');
  return {
    lockspace: checkName(o.lockspace, 'lockspace', MAX_LOCKSPACE_NAME),
    resource: checkName(o.resource, 'resource', MAX_RESOURCE_NAME),
    lockId: lockId(o), owner: owner(o), grMode: optMode(o, 'grMode'), token: uint(o, 'token'),
    rqMode: optMode(o, 'rqMode'), noqueue: bool(o, 'noqueue'), timeoutMs: optUint(o, 'timeoutMs'),
    lvb: optBuf(o, 'lvb'), lvbValid: bool(o, 'lvbValid'), rqLvb: optBuf(o, 'rqLvb'), waitedMs: optUint(o, 'waitedMs'),
  };
}

export function validateDlmMessage(x: unknown): DlmPeerMsg {
  return wrap(() => {
    const o = obj(x, 'message');
    const m: DlmPeerMsg = dlmBody(o);
    if (o.tr !== undefined) m.tr = validateTraceStamp(o.tr);
    return m;
  });
}

function tracePage(x: unknown): WireTracePage {
  const p = obj(x, 'page');
  if (!Array.isArray(p.events) || p.events.length > MAX_TRACE_EVENTS) fail(`field 'page.events' must be a list of at most ${MAX_TRACE_EVENTS} events`);
  return { events: (p.events as unknown[]).map(validateTraceEvent), cursor: uint(p, 'cursor'), more: bool(p, 'more'), missed: uint(p, 'missed'), enabled: bool(p, 'enabled') };
}

function dlmBody(o: Obj): DlmPeerBody {
  const epoch = uint(o, 'epoch');
  switch (o.t) {
    case 'op':
      return { t: 'op', epoch, lockspace: checkName(o.lockspace, 'lockspace', MAX_LOCKSPACE_NAME), resource: checkName(o.resource, 'resource', MAX_RESOURCE_NAME), op: wireOp(o.op) };
    case 'ev': return { t: 'ev', epoch, ev: lockEvent(o.ev) };
    case 'rec': {
      if (!Array.isArray(o.records) || o.records.length > 100000) fail(`field 'records' must be a list`);
      return { t: 'rec', epoch, records: (o.records as unknown[]).map(record) };
    }
    case 'recDone': return { t: 'recDone', epoch };
    case 'inspect':
      return {
        t: 'inspect', epoch, id: uint(o, 'id'),
        lockspace: o.lockspace === undefined ? undefined : checkName(o.lockspace, 'lockspace', MAX_LOCKSPACE_NAME),
        resource: o.resource === undefined ? undefined : checkName(o.resource, 'resource', MAX_RESOURCE_NAME),
      };
    case 'inspectReply': {
      if (!Array.isArray(o.resources)) fail(`field 'resources' must be a list`);
      return { t: 'inspectReply', epoch, id: uint(o, 'id'), resources: o.resources as unknown[], ...(o.omitted === undefined ? {} : { omitted: uint(o, 'omitted') }) };
    }
    case 'vol':
      try {
        return { t: 'vol', epoch, m: validateVolMessage(o.m) };
      } catch (e) {
        if (e instanceof VolMessageError) fail(`vol: ${e.message}`);
        throw e;
      }
    case 'traceQuery':
      return { t: 'traceQuery', epoch, id: uint(o, 'id'), after: uint(o, 'after'), filter: validateTraceFilter(o.filter), maxBytes: uint(o, 'maxBytes') };
    case 'traceReply':
      return { t: 'traceReply', epoch, id: uint(o, 'id'), page: tracePage(o.page) };
    default: return fail(`unknown message kind`);
  }
}

/** Node id of a lock id "node:session/n" or owner "node:session". */
export function nodeOf(id: string): number { return Number(id.slice(0, id.indexOf(':'))); }
export function sessionOf(id: string): number {
  const c = id.indexOf(':');
  const s = id.indexOf('/', c);
  return Number(id.slice(c + 1, s < 0 ? undefined : s));
}
