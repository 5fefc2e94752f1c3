/**
 * Volume messages between nodes (inside the DLM peer message {t: 'vol'}, so they travel the
 * same exactly-once, in-order channel and epoch checks as lock traffic), validated on receipt.
 *
 *   get / record        read a node's durable copy of a volume record (majority read)
 *   put / stored        store a record if newer, durably, then acknowledge (majority write)
 *   status / statusReply  a node's Volume actors' views (mxfsctl volumes; the fence proof asks
 *                         a live old owner whether it has stopped)
 */
import { RecordError, validateRecord, VolumeRecord } from './record';
import { STATE_TABLE, VolumeState } from './volume-core';

/** What a node says about one of its volumes (a trimmed VolumeView plus its durable record). */
export interface VolumeNodeStatus {
  volume: string;
  node: number;
  state: VolumeState;
  sinceMs: number;
  step: string | null;
  holding: boolean;
  reason: string | null;
  /** Fenced and the fence completed (writes known stopped). */
  fenceDone: boolean;
  fenceOk: boolean;
  blocked: { reason: string; sinceMs: number; retries: number } | null;
  /** This node's durable copy of the record. */
  record: VolumeRecord | null;
  driver: 'kernel' | 'command';
  fenceBoundMs: number;
}

export type VolPeerMsg =
  | { type: 'get'; id: number; volume: string }
  | { type: 'record'; id: number; volume: string; record: VolumeRecord | null }
  | { type: 'put'; id: number; record: VolumeRecord }
  | { type: 'stored'; id: number; volume: string; generation: number; version: number }
  | { type: 'status'; id: number; volume: string | null }
  | { type: 'statusReply'; id: number; volumes: VolumeNodeStatus[] };

export class VolMessageError extends Error {}

type Obj = Record<string, unknown>;
function fail(what: string): never { throw new VolMessageError(what); }
function obj(x: unknown, what: string): Obj {
  if (typeof x !== 'object' || x === null || Array.isArray(x) || Buffer.isBuffer(x)) fail(`${what} is not a map`);
  return x as Obj;
}
function uint(o: Obj, k: string, max = Number.MAX_SAFE_INTEGER): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) fail(`field '${k}' must be an integer 0..${max}`);
  return v;
}
function name(o: Obj, k: string): string {
  const v = o[k];
  if (typeof v !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(v)) fail(`field '${k}' must be a volume name`);
  return v;
}
function str(o: Obj, k: string, max = 1024): string | null {
  const v = o[k];
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string') fail(`field '${k}' must be a string`);
  return v.slice(0, max);
}
function bool(o: Obj, k: string): boolean {
  if (typeof o[k] !== 'boolean') fail(`field '${k}' must be a boolean`);
  return o[k] as boolean;
}
function record(x: unknown): VolumeRecord {
  try { return validateRecord(x); } catch (e) { if (e instanceof RecordError) fail(e.message); throw e; }
}

function nodeStatus(x: unknown): VolumeNodeStatus {
  const o = obj(x, 'volume status');
  if (!(typeof o.state === 'string' && o.state in STATE_TABLE)) fail(`field 'state' must be a volume state`);
  let blocked: VolumeNodeStatus['blocked'] = null;
  if (o.blocked !== null && o.blocked !== undefined) {
    const b = obj(o.blocked, 'blocked');
    blocked = { reason: str(b, 'reason') ?? '', sinceMs: uint(b, 'sinceMs'), retries: uint(b, 'retries') };
  }
  if (o.driver !== 'kernel' && o.driver !== 'command') fail(`field 'driver' must be kernel or command`);
  return {
    volume: name(o, 'volume'), node: uint(o, 'node', 1023), state: o.state as VolumeState, sinceMs: uint(o, 'sinceMs'),
    step: str(o, 'step', 32), holding: bool(o, 'holding'), reason: str(o, 'reason'), fenceDone: bool(o, 'fenceDone'), fenceOk: bool(o, 'fenceOk'),
    blocked, record: o.record === null || o.record === undefined ? null : record(o.record), driver: o.driver, fenceBoundMs: uint(o, 'fenceBoundMs', 2 ** 32 - 1),
  };
}

export const MAX_STATUS_VOLUMES = 256;

export function validateVolMessage(x: unknown): VolPeerMsg {
  const o = obj(x, 'volume message');
  const id = uint(o, 'id', 2 ** 32 - 1);
  switch (o.type) {
    case 'get': return { type: 'get', id, volume: name(o, 'volume') };
    case 'record': return { type: 'record', id, volume: name(o, 'volume'), record: o.record === null || o.record === undefined ? null : record(o.record) };
    case 'put': return { type: 'put', id, record: record(o.record) };
    case 'stored': return { type: 'stored', id, volume: name(o, 'volume'), generation: uint(o, 'generation'), version: uint(o, 'version') };
    case 'status': return { type: 'status', id, volume: o.volume === null || o.volume === undefined ? null : name(o, 'volume') };
    case 'statusReply': {
      if (!Array.isArray(o.volumes) || o.volumes.length > MAX_STATUS_VOLUMES) fail(`field 'volumes' must be a list of at most ${MAX_STATUS_VOLUMES}`);
      return { type: 'statusReply', id, volumes: (o.volumes as unknown[]).map(nodeStatus) };
    }
    default: return fail(`unknown volume message type`);
  }
}
