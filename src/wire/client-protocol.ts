/**
 * The local client protocol: what travels on mxfsd's Unix socket, inside length-prefixed
 * msgpackr frames (src/wire/frame.ts). docs/daemon.md documents it for other languages.
 *
 * Client -> daemon: ClientRequest (each but 'hb' carries a request id the reply echoes;
 * 'hb' carries a sequence number the daemon's 'hb' echoes as `ack`).
 * Daemon -> client: DaemonMessage (replies, and asynchronous bast/lost/hb events).
 *
 * validateClientRequest checks every field of untrusted input in two layers: the envelope
 * (a map with a string `type` and, but for 'hb', a request id) — wrong there, there is nobody
 * to answer, so it throws ProtocolError and the daemon cuts the connection; and the fields —
 * wrong there, it throws RequestError carrying the request id, and the daemon answers that
 * one request INVALID and keeps the connection (and the client's other locks).
 * validateDaemonMessage checks what the daemon says as carefully.
 */
import { isMode, Mode } from '../dlm/modes';
import { LOCK_ERROR_CODES, LockErrorCode, MAX_LOCKSPACE_NAME, MAX_RESOURCE_NAME } from '../dlm/types';
import { INVALID_KEY } from './utf8-fields';
import { VOLUME_REPLY_CODES, VolumeReplyCode } from '../volumes/volume-core';
import { TraceFilter, validateTraceFilter } from '../trace/filter';

export const CLIENT_PROTOCOL_VERSION = 1;

export type ClientRequest =
  | { type: 'hello'; id: number; version: number; client: string; pid?: number }
  | { type: 'lock'; id: number; lockId: number; lockspace: string; resource: string; mode: Mode; noqueue?: boolean; timeoutMs?: number }
  | { type: 'convert'; id: number; lockId: number; mode: Mode; noqueue?: boolean; timeoutMs?: number; lvb?: Buffer }
  | { type: 'unlock'; id: number; lockId: number; lvb?: Buffer }
  | { type: 'cancel'; id: number; lockId: number }
  | { type: 'status'; id: number }
  | { type: 'locks'; id: number; lockspace?: string; resource?: string }
  /** The kernel's cached inode locks of a volume on this node (docs/kernel.md "Inode locks"). */
  | { type: 'inodeLocks'; id: number; volume: string; limit?: number }
  /** Volumes: become the owner and mount, unmount and give back, queue as a standby, or report. */
  | { type: 'volume'; id: number; op: VolumeRequestOp; volume?: string; wait?: boolean; timeoutMs?: number }
  /**
   * The trace (docs/tracing.md): status; dump (this node's ring) or collect (every member's,
   * through the peers), one page per node after each node's cursor; why (a resource's holders,
   * waiters, BASTs, master, epoch, recovery, recent traffic).
   */
  | { type: 'trace'; id: number; op: TraceRequestOp; filter?: TraceFilter; cursors?: Record<string, number>; nodes?: number[]; lockspace?: string; resource?: string }
  /** Test-only: inject faults into this node's peer traffic (mxfsd needs MXFS_FAULT_INJECTION=1). */
  | { type: 'fault'; id: number; spec: FaultSpec }
  | { type: 'hb'; seq: number };

export const TRACE_REQUEST_OPS = ['status', 'dump', 'collect', 'why'] as const;
export type TraceRequestOp = (typeof TRACE_REQUEST_OPS)[number];

/** 'inodeLocks': at most this many locks are returned in full (the rest are counted). */
export const INODE_LOCKS_MAX_LIMIT = 10000;

export const VOLUME_REQUEST_OPS = ['mount', 'umount', 'standby', 'status'] as const;
export type VolumeRequestOp = (typeof VOLUME_REQUEST_OPS)[number];

/** Every error code a reply may carry. */
export type ReplyCode = LockErrorCode | VolumeReplyCode | 'PROTOCOL';

export type FaultSpec =
  | { action: 'partition'; peers: number[] }
  | { action: 'heal' }
  | { action: 'drop'; fraction: number }
  | { action: 'delay'; ms: number }
  /** Close every peer link once (they reconnect at once): what was in flight is lost. */
  | { action: 'reset' }
  /**
   * The lock links (docs/cluster-protocol.md §4a) to `peers` lose every frame both ways and
   * stay open, as behind a firewall that drops lock_port traffic; the worker's links are not
   * touched. 'heal' ends it.
   */
  | { action: 'blackhole'; peers: number[] }
  /**
   * Mute the node as the watchdog does when the lock engine's thread stops answering (no
   * renewals, no answers, no quorum; the links stay up) until 'heal'.
   */
  | { action: 'mute' }
  /**
   * Keep the lock engine's thread busy for `ms` of its own CPU time (a wedged engine; the
   * reply comes after it): what the cluster worker's watchdog must mute the node for.
   */
  | { action: 'stall'; ms: number };

export interface WireGrant { mode: Mode; token: number; lvb: Buffer; lvbValid: boolean }

export interface HelloData {
  node: number; nodeName: string; version: number; session: number;
  keepaliveMs: number; lostAfterMs: number; lvbSize: number; maxFrameBytes: number;
}

export type DaemonMessage =
  | { type: 'reply'; id: number; ok: true; grant?: WireGrant; data?: unknown }
  | { type: 'reply'; id: number; ok: false; code: ReplyCode; message: string }
  | { type: 'bast'; lockId: number; mode: Mode }
  | { type: 'lost'; lockId?: number; reason: string }
  /** Answer to the client's heartbeat `seq`. */
  | { type: 'hb'; ack: number };

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** One request with a usable id and type but a bad field: answer it INVALID, keep the connection. */
export class RequestError extends ProtocolError {
  constructor(readonly id: number, readonly reqType: string, message: string) {
    super(message);
    this.name = 'RequestError';
  }
}

type Obj = Record<string, unknown>;

function fail(what: string): never { throw new ProtocolError(what); }

function obj(x: unknown, what: string): Obj {
  if (typeof x !== 'object' || x === null || Array.isArray(x) || Buffer.isBuffer(x)) fail(`${what} is not a map`);
  return x as Obj;
}

function uint(o: Obj, k: string, max = Number.MAX_SAFE_INTEGER): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) fail(`field '${k}' must be an integer 0..${max}`);
  return v;
}

function optUint(o: Obj, k: string, max?: number): number | undefined {
  return o[k] === undefined ? undefined : uint(o, k, max);
}

function optBool(o: Obj, k: string): boolean | undefined {
  const v = o[k];
  if (v !== undefined && typeof v !== 'boolean') fail(`field '${k}' must be a boolean`);
  return v as boolean | undefined;
}

/** A lone surrogate: a JavaScript string that has no UTF-8 form (msgpackr would send U+FFFD). */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * A lockspace or resource name: UTF-8 text of 1..maxBytes bytes without NUL. Invalid UTF-8
 * on the wire is caught before decoding (utf8-fields.ts); a lone surrogate here (an
 * in-process caller) is refused too, since it has no UTF-8 form of its own.
 */
export function checkName(v: unknown, k: string, maxBytes: number): string {
  const why = nameProblem(v, maxBytes);
  if (why) fail(`field '${k}' ${why}`);
  return v as string;
}

/** What is wrong with a name, or undefined (shared with the client library's own checks). */
export function nameProblem(v: unknown, maxBytes: number): string | undefined {
  if (typeof v !== 'string' || v.length === 0) return 'must be a non-empty string';
  const n = Buffer.byteLength(v, 'utf8');
  if (n > maxBytes) return `is ${n} bytes; the limit is ${maxBytes}`;
  if (v.includes('\0')) return 'contains a NUL byte';
  if (LONE_SURROGATE.test(v)) return 'is not valid Unicode (a lone surrogate has no UTF-8 form)';
  return undefined;
}

/** A hello's client name longer than this many characters (code points) is cut to it. */
export const MAX_CLIENT_NAME = 128;

/** Control characters (C0, DEL, C1): they would reach logs and mxfsctl's terminal as they are. */
const CONTROL_CHAR = /\p{Cc}/u;

/**
 * What is wrong with a hello's client name, or undefined (shared with the client library). It
 * shows in `mxfsctl locks`, the logs and the trace: it must be non-empty printable text.
 * Refused rather than cleaned up, so that the name a client gives is the name shown.
 */
export function clientNameProblem(v: unknown): string | undefined {
  if (typeof v !== 'string' || v.length === 0) return 'must be a non-empty string (the client name)';
  if (CONTROL_CHAR.test(v)) return 'contains a control character (NUL, newline, escape...)';
  if (LONE_SURROGATE.test(v)) return 'is not valid Unicode (a lone surrogate has no UTF-8 form)';
  return undefined;
}

/** Volume names as the config allows them. */
export function checkVolumeName(v: unknown): string {
  if (typeof v !== 'string' || !/^[A-Za-z0-9_.-]{1,32}$/.test(v)) fail(`field 'volume' must be a volume name (1..32 characters from A-Z a-z 0-9 _ . -)`);
  return v;
}

function mode(o: Obj): Mode {
  if (!isMode(o.mode)) fail(`field 'mode' must be a lock mode 0..5 (NL CR CW PR PW EX)`);
  return o.mode;
}

function optBuf(o: Obj, k: string): Buffer | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (!(v instanceof Uint8Array)) fail(`field '${k}' must be binary`);
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Every request type, with its field validator (the envelope — type, id — is checked before). */
const REQUEST_FIELDS: { [T in Exclude<ClientRequest['type'], 'hb'>]: (o: Obj, id: number) => Extract<ClientRequest, { type: T }> } = {
  hello: (o, id) => {
    const why = clientNameProblem(o.client);
    if (why) fail(`field 'client' ${why}`);
    const name = o.client as string;
    // Cut by code points, so a pair is never split into a lone surrogate.
    const client = name.length > MAX_CLIENT_NAME ? Array.from(name).slice(0, MAX_CLIENT_NAME).join('') : name;
    return { type: 'hello', id, version: uint(o, 'version', 65535), client, pid: optUint(o, 'pid', 2 ** 32 - 1) };
  },
  lock: (o, id) => ({
    type: 'lock', id, lockId: uint(o, 'lockId'),
    lockspace: checkName(o.lockspace, 'lockspace', MAX_LOCKSPACE_NAME),
    resource: checkName(o.resource, 'resource', MAX_RESOURCE_NAME),
    mode: mode(o), noqueue: optBool(o, 'noqueue'), timeoutMs: optUint(o, 'timeoutMs', MAX_TIMEOUT_MS),
  }),
  convert: (o, id) => ({
    type: 'convert', id, lockId: uint(o, 'lockId'), mode: mode(o), noqueue: optBool(o, 'noqueue'),
    timeoutMs: optUint(o, 'timeoutMs', MAX_TIMEOUT_MS), lvb: optBuf(o, 'lvb'),
  }),
  unlock: (o, id) => ({ type: 'unlock', id, lockId: uint(o, 'lockId'), lvb: optBuf(o, 'lvb') }),
  cancel: (o, id) => ({ type: 'cancel', id, lockId: uint(o, 'lockId') }),
  status: (_o, id) => ({ type: 'status', id }),
  locks: (o, id) => ({
    type: 'locks', id,
    lockspace: o.lockspace === undefined ? undefined : checkName(o.lockspace, 'lockspace', MAX_LOCKSPACE_NAME),
    resource: o.resource === undefined ? undefined : checkName(o.resource, 'resource', MAX_RESOURCE_NAME),
  }),
  inodeLocks: (o, id) => ({
    type: 'inodeLocks', id, volume: checkVolumeName(o.volume), limit: optUint(o, 'limit', INODE_LOCKS_MAX_LIMIT),
  }),
  volume: (o, id) => {
    const op = o.op;
    if (typeof op !== 'string' || !(VOLUME_REQUEST_OPS as readonly string[]).includes(op)) fail(`field 'op' must be one of ${VOLUME_REQUEST_OPS.join(', ')}`);
    const volume = o.volume === undefined ? undefined : checkVolumeName(o.volume);
    if (volume === undefined && op !== 'status') fail(`field 'volume' is required for ${op}`);
    return { type: 'volume', id, op: op as VolumeRequestOp, volume, wait: optBool(o, 'wait'), timeoutMs: optUint(o, 'timeoutMs', MAX_TIMEOUT_MS) };
  },
  trace: (o, id) => traceRequest(o, id) as Extract<ClientRequest, { type: 'trace' }>,
  fault: (o, id) => ({ type: 'fault', id, spec: faultSpec(o.spec) }),
};

/**
 * Checks one decoded request. `badUtf8`: the top-level fields whose strings were not valid
 * UTF-8 on the wire (src/wire/utf8-fields.ts); they are refused rather than read as U+FFFD.
 * Throws ProtocolError when the envelope is unusable (cut the connection), RequestError when
 * a field is wrong (answer INVALID).
 */
export function validateClientRequest(x: unknown, badUtf8: ReadonlySet<string> = NO_FIELDS): ClientRequest {
  const o = obj(x, 'request');
  const type = o.type;
  if (typeof type !== 'string' || badUtf8.has('type')) fail(`field 'type' must be a request type (a string)`);
  if (type === 'hb') return { type, seq: uint(o, 'seq') };
  const id = uint(o, 'id', 2 ** 32 - 1);
  try {
    for (const k of badUtf8) fail(k === INVALID_KEY ? 'a field name is not valid UTF-8' : `field '${k}' is not valid UTF-8`);
    if (!Object.prototype.hasOwnProperty.call(REQUEST_FIELDS, type)) fail(`unknown request type ${JSON.stringify(type.slice(0, 32))}`);
    return REQUEST_FIELDS[type as keyof typeof REQUEST_FIELDS](o, id);
  } catch (e) {
    if (e instanceof ProtocolError && !(e instanceof RequestError)) throw new RequestError(id, type.slice(0, 32), e.message);
    throw e;
  }
}

const NO_FIELDS: ReadonlySet<string> = new Set();

function traceRequest(o: Obj, id: number): ClientRequest {
  const op = o.op;
  if (typeof op !== 'string' || !(TRACE_REQUEST_OPS as readonly string[]).includes(op)) fail(`field 'op' must be one of ${TRACE_REQUEST_OPS.join(', ')}`);
  const req: Extract<ClientRequest, { type: 'trace' }> = { type: 'trace', id, op: op as TraceRequestOp, filter: validateTraceFilter(o.filter) };
  if (o.cursors !== undefined) {
    const c = obj(o.cursors, `field 'cursors'`);
    const keys = Object.keys(c);
    if (keys.length > 1023) fail(`field 'cursors' has more than 1023 nodes`);
    req.cursors = {};
    for (const k of keys) {
      if (!/^\d{1,4}$/.test(k) || Number(k) < 1 || Number(k) > 1023) fail(`field 'cursors' must be keyed by node ids`);
      req.cursors[k] = uint(c, k);
    }
  }
  if (o.nodes !== undefined) {
    const n = o.nodes;
    if (!Array.isArray(n) || n.length === 0 || n.length > 1023 || !n.every((x) => Number.isInteger(x) && x >= 1 && x <= 1023)) fail(`field 'nodes' must be a non-empty list of node ids`);
    req.nodes = [...new Set(n as number[])];
  }
  if (o.lockspace !== undefined) req.lockspace = checkName(o.lockspace, 'lockspace', MAX_LOCKSPACE_NAME);
  if (o.resource !== undefined) req.resource = checkName(o.resource, 'resource', MAX_RESOURCE_NAME);
  if (op === 'why' && req.resource === undefined) fail(`field 'resource' is required for why`);
  return req;
}

function faultSpec(x: unknown): FaultSpec {
  const o = obj(x, `field 'spec'`);
  switch (o.action) {
    case 'partition':
    case 'blackhole': {
      const p = o.peers;
      if (!Array.isArray(p) || p.length > 1023 || !p.every((n) => Number.isInteger(n) && n >= 1 && n <= 1023)) fail(`field 'spec.peers' must be a list of node ids`);
      return { action: o.action, peers: p as number[] };
    }
    case 'mute': return { action: 'mute' };
    case 'heal': return { action: 'heal' };
    case 'drop': {
      const f = o.fraction;
      if (typeof f !== 'number' || !(f >= 0 && f <= 1)) fail(`field 'spec.fraction' must be a number 0..1`);
      return { action: 'drop', fraction: f as number };
    }
    case 'delay': return { action: 'delay', ms: uint(o, 'ms', 60000) };
    case 'reset': return { action: 'reset' };
    case 'stall': return { action: 'stall', ms: uint(o, 'ms', 60000) };
    default: return fail(`field 'spec.action' must be partition, heal, drop, delay, reset, stall, blackhole or mute`);
  }
}

const CODES = new Set<string>([...LOCK_ERROR_CODES, ...VOLUME_REPLY_CODES, 'PROTOCOL']);

function grant(x: unknown): WireGrant {
  const g = obj(x, 'grant');
  if (!isMode(g.mode)) fail('grant mode invalid');
  const lvb = optBuf(g, 'lvb') ?? fail('grant lvb missing');
  if (typeof g.lvbValid !== 'boolean') fail('grant lvbValid must be a boolean');
  return { mode: g.mode, token: uint(g, 'token'), lvb, lvbValid: g.lvbValid };
}

/** The client library checks what the daemon says as carefully as the daemon checks clients. */
export function validateDaemonMessage(x: unknown): DaemonMessage {
  const o = obj(x, 'message');
  switch (o.type) {
    case 'hb': return { type: 'hb', ack: uint(o, 'ack') };
    case 'bast': return { type: 'bast', lockId: uint(o, 'lockId'), mode: mode(o) };
    case 'lost': {
      if (typeof o.reason !== 'string') fail(`field 'reason' must be a string`);
      return { type: 'lost', lockId: optUint(o, 'lockId'), reason: o.reason };
    }
    case 'reply': {
      const id = uint(o, 'id', 2 ** 32 - 1);
      if (o.ok === true) return { type: 'reply', id, ok: true, grant: o.grant === undefined ? undefined : grant(o.grant), data: o.data };
      if (o.ok === false) {
        if (typeof o.code !== 'string' || !CODES.has(o.code)) fail(`unknown error code`);
        return { type: 'reply', id, ok: false, code: o.code as ReplyCode, message: typeof o.message === 'string' ? o.message : o.code };
      }
      return fail(`field 'ok' must be a boolean`);
    }
    default:
      return fail(`unknown message type`);
  }
}
