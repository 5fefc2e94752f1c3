/**
 * The local client protocol: what travels on mxfsd's Unix socket, inside length-prefixed
 * msgpackr frames (src/wire/frame.ts). docs/daemon.md documents it for other languages.
 *
 * Client -> daemon: ClientRequest (each but 'hb' carries a request id the reply echoes;
 * 'hb' carries a sequence number the daemon's 'hb' echoes as `ack`).
 * Daemon -> client: DaemonMessage (replies, and asynchronous bast/lost/hb events).
 * validateClientRequest / validateDaemonMessage check every field of untrusted input and
 * throw ProtocolError naming the first thing that is wrong.
 */
import { isMode, Mode } from '../dlm/modes';
import { LOCK_ERROR_CODES, LockErrorCode, MAX_LOCKSPACE_NAME, MAX_RESOURCE_NAME } from '../dlm/types';
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
  | { action: 'reset' };

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

export function checkName(v: unknown, k: string, maxBytes: number): string {
  if (typeof v !== 'string' || v.length === 0) fail(`field '${k}' must be a non-empty string`);
  const n = Buffer.byteLength(v, 'utf8');
  if (n > maxBytes) fail(`field '${k}' is ${n} bytes; the limit is ${maxBytes}`);
  if (v.includes('\0')) fail(`field '${k}' contains a NUL byte`);
  return v;
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

export function validateClientRequest(x: unknown): ClientRequest {
  const o = obj(x, 'request');
  const type = o.type;
  if (type === 'hb') return { type, seq: uint(o, 'seq') };
  const id = uint(o, 'id', 2 ** 32 - 1);
  switch (type) {
    case 'hello': {
      const client = typeof o.client === 'string' ? o.client.slice(0, 128) : fail(`field 'client' must be a string`);
      return { type, id, version: uint(o, 'version', 65535), client, pid: optUint(o, 'pid', 2 ** 32 - 1) };
    }
    case 'lock':
      return {
        type, id, lockId: uint(o, 'lockId'),
        lockspace: checkName(o.lockspace, 'lockspace', MAX_LOCKSPACE_NAME),
        resource: checkName(o.resource, 'resource', MAX_RESOURCE_NAME),
        mode: mode(o), noqueue: optBool(o, 'noqueue'), timeoutMs: optUint(o, 'timeoutMs', MAX_TIMEOUT_MS),
      };
    case 'convert':
      return {
        type, id, lockId: uint(o, 'lockId'), mode: mode(o), noqueue: optBool(o, 'noqueue'),
        timeoutMs: optUint(o, 'timeoutMs', MAX_TIMEOUT_MS), lvb: optBuf(o, 'lvb'),
      };
    case 'unlock': return { type, id, lockId: uint(o, 'lockId'), lvb: optBuf(o, 'lvb') };
    case 'cancel': return { type, id, lockId: uint(o, 'lockId') };
    case 'status': return { type, id };
    case 'locks':
      return {
        type, id,
        lockspace: o.lockspace === undefined ? undefined : checkName(o.lockspace, 'lockspace', MAX_LOCKSPACE_NAME),
        resource: o.resource === undefined ? undefined : checkName(o.resource, 'resource', MAX_RESOURCE_NAME),
      };
    case 'volume': {
      const op = o.op;
      if (typeof op !== 'string' || !(VOLUME_REQUEST_OPS as readonly string[]).includes(op)) fail(`field 'op' must be one of ${VOLUME_REQUEST_OPS.join(', ')}`);
      const volume = o.volume === undefined ? undefined : checkVolumeName(o.volume);
      if (volume === undefined && op !== 'status') fail(`field 'volume' is required for ${op}`);
      return { type, id, op: op as VolumeRequestOp, volume, wait: optBool(o, 'wait'), timeoutMs: optUint(o, 'timeoutMs', MAX_TIMEOUT_MS) };
    }
    case 'trace': return traceRequest(o, id);
    case 'fault': return { type, id, spec: faultSpec(o.spec) };
    default:
      return fail(`unknown request type ${JSON.stringify(typeof type === 'string' ? type.slice(0, 32) : type)}`);
  }
}

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
    case 'partition': {
      const p = o.peers;
      if (!Array.isArray(p) || p.length > 1023 || !p.every((n) => Number.isInteger(n) && n >= 1 && n <= 1023)) fail(`field 'spec.peers' must be a list of node ids`);
      return { action: 'partition', peers: p as number[] };
    }
    case 'heal': return { action: 'heal' };
    case 'drop': {
      const f = o.fraction;
      if (typeof f !== 'number' || !(f >= 0 && f <= 1)) fail(`field 'spec.fraction' must be a number 0..1`);
      return { action: 'drop', fraction: f as number };
    }
    case 'delay': return { action: 'delay', ms: uint(o, 'ms', 60000) };
    case 'reset': return { action: 'reset' };
    default: return fail(`field 'spec.action' must be partition, heal, drop, delay or reset`);
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
