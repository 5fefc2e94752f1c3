/**
 * Trace filters (mxfsctl trace --resource --lockspace --actor --type --since; --node picks
 * which nodes are asked): what they match, and their validation when they arrive from a
 * client or a peer.
 */
import { checkName, ProtocolError } from '../wire/client-protocol';
import { MAX_LOCKSPACE_NAME, MAX_RESOURCE_NAME } from '../dlm/types';
import type { TraceEvent } from './event';

export interface TraceFilter {
  /** The event's resource (or volume) is exactly this. */
  resource?: string;
  lockspace?: string;
  /** Sender or receiver path contains this (e.g. "session/4", "resource/default/r1", "peer-link"). */
  actor?: string;
  /** The message type or its inner type equals this, or starts with it followed by '.' or '/'. */
  type?: string;
  /** Wall clock ms: only events at or after. */
  since?: number;
  /** Only events of this trace id. */
  trace?: number;
}

function typeMatches(want: string, t: string | undefined): boolean {
  if (t === undefined) return false;
  if (t === want) return true;
  if (!t.startsWith(want)) return false;
  const c = t.charAt(want.length);
  return c === '.' || c === '/';
}

export function matches(e: TraceEvent, f: TraceFilter): boolean {
  if (f.resource !== undefined && e.res !== f.resource) return false;
  if (f.lockspace !== undefined && e.ls !== f.lockspace) return false;
  if (f.since !== undefined && e.wall < f.since) return false;
  if (f.trace !== undefined && e.trace !== f.trace) return false;
  if (f.actor !== undefined && !e.from.includes(f.actor) && !e.to.includes(f.actor)) return false;
  if (f.type !== undefined && !typeMatches(f.type, e.type) && !typeMatches(f.type, e.sub) && `${e.type}/${e.sub}` !== f.type) return false;
  return true;
}

type Obj = Record<string, unknown>;

/** Checks a filter from the wire; throws ProtocolError naming the bad field. */
export function validateTraceFilter(x: unknown): TraceFilter {
  if (x === undefined) return {};
  if (typeof x !== 'object' || x === null || Array.isArray(x) || x instanceof Uint8Array) throw new ProtocolError(`field 'filter' must be a map`);
  const o = x as Obj;
  const f: TraceFilter = {};
  const text = (k: 'actor' | 'type', max: number) => {
    const v = o[k];
    if (v === undefined) return;
    if (typeof v !== 'string' || v.length === 0 || v.length > max) throw new ProtocolError(`field 'filter.${k}' must be a string of 1..${max} characters`);
    f[k] = v;
  };
  const uint = (k: 'since' | 'trace') => {
    const v = o[k];
    if (v === undefined) return;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > Number.MAX_SAFE_INTEGER) throw new ProtocolError(`field 'filter.${k}' must be an unsigned integer`);
    f[k] = v;
  };
  if (o.resource !== undefined) f.resource = checkName(o.resource, 'filter.resource', MAX_RESOURCE_NAME);
  if (o.lockspace !== undefined) f.lockspace = checkName(o.lockspace, 'filter.lockspace', MAX_LOCKSPACE_NAME);
  text('actor', 128);
  text('type', 64);
  uint('since');
  uint('trace');
  return f;
}
