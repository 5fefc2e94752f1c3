/**
 * Messages between the lock-engine actors, defined once for senders and receivers.
 *
 *   ClientSession --LockspaceMsg(route)--> Lockspace --ResourceMsg--> LockResource
 *   LockResource --LockEvent--> the owner's notify ref (a ClientSession, a kernel bridge...)
 *   LockResource --LockspaceMsg(idle/crashed)--> Lockspace
 */
import type { Ref } from './actor';
import type { Mode } from '../dlm/modes';
import type { Grant, LockErrorCode } from '../dlm/types';
import type { OwnerId, ResourceView } from '../dlm/resource';

export type LockOp = 'request' | 'convert' | 'unlock' | 'cancel';

/** What a lock's owner is told about it. */
export type LockEvent =
  | { type: 'lock.granted'; lockId: string; conversion: boolean; grant: Grant }
  | { type: 'lock.failed'; lockId: string; conversion: boolean; code: LockErrorCode }
  | { type: 'lock.queued'; lockId: string; conversion: boolean }
  | { type: 'lock.bast'; lockId: string; mode: Mode }
  | { type: 'lock.released'; lockId: string }
  /** An operation was refused before it changed anything (bad handle, bad LVB...). */
  | { type: 'lock.opError'; lockId: string; op: LockOp; code: LockErrorCode; message: string }
  /** The lock is gone without the owner asking (resource failed, quorum lost...). */
  | { type: 'lock.lost'; lockId: string; reason: string };

export type ResourceMsg =
  | { type: 'request'; lockId: string; owner: OwnerId; mode: Mode; noqueue: boolean; timeoutMs?: number; notify: Ref<LockEvent> }
  | { type: 'convert'; lockId: string; mode: Mode; noqueue: boolean; timeoutMs?: number; lvb?: Buffer }
  | { type: 'unlock'; lockId: string; lvb?: Buffer }
  | { type: 'cancel'; lockId: string }
  | { type: 'purge'; owner: OwnerId }
  | { type: 'timeout'; lockId: string }
  | { type: 'inspect'; replyTo: Ref<ResourceInspection> }
  /** The resource's own timer: look at the lease again and handle what was parked (lock-resource.ts). */
  | { type: 'unpark' }
  /** Test-only fault injection: makes the handler throw (accepted only when enabled). */
  | { type: 'fault' };

/** A resource rebuilt from its holders' records (cluster recovery). */
export interface AdoptedResource {
  records: Array<{ lockId: string; owner: OwnerId; grMode: Mode; token: number; notify: Ref<LockEvent> }>;
  tokenFloor: number;
  lvb?: { data: Buffer; valid: boolean };
}

export type LockspaceMsg =
  | { type: 'route'; resource: string; msg: ResourceMsg }
  | { type: 'adopt'; resource: string; adopt: AdoptedResource }
  | { type: 'idle'; resource: string; processed: number; tokenCounter: number }
  | { type: 'crashed'; resource: string; tokenCounter: number }
  | { type: 'sweep' }
  /**
   * Inspection: up to `limit` resources (default all; in the lockspace's order, which is
   * creation order) or just `resource`, and how many there are in all. With `busyOnly`,
   * resources known to be idle (nothing held or waiting, see eviction) are left out, and
   * counted in `idle`.
   */
  | { type: 'list'; replyTo: Ref<ResourceList>; resource?: string; limit?: number; busyOnly?: boolean };

export interface ResourceList { entries: Array<{ name: string; ref: Ref<ResourceMsg> }>; total: number; idle: number }

/** Counters shared by the lock engine's actors (single-threaded: plain increments). */
export interface LockStats {
  resources: number;
  locks: number;
  grants: number;
  basts: number;
  evictions: number;
  /** Lock operations (request, convert, unlock, cancel, purge) the resources processed: activity, for the idle collection (reclaim.ts). */
  ops: number;
  resourceCrashes: number;
  /** Grants of a conversion (also counted in grants). */
  conversions: number;
  /** Requests and conversions that had to queue. */
  waits: number;
  /** Refused at once (NOQUEUE), failed as deadlocks, timed out waiting. */
  denials: number;
  deadlocks: number;
  timeouts: number;
  /** Locks waiting or converting right now on the resources this node masters. */
  queued: number;
  /** How long a queued request or conversion waited for its grant (metrics; absent: not measured). */
  observeWait?: (ms: number, conversion: boolean) => void;
}

export function newLockStats(): LockStats {
  return { resources: 0, locks: 0, grants: 0, basts: 0, evictions: 0, ops: 0, resourceCrashes: 0, conversions: 0, waits: 0, denials: 0, deadlocks: 0, timeouts: 0, queued: 0 };
}

/** What `inspect` answers: the queues, plus when each lock got where it is and its last BAST. */
export interface ResourceInspection extends ResourceView {
  /** By lock id: ms since the lock was granted (granted) or queued (waiting, converting). */
  sinceMs: Record<string, number>;
  /** By lock id of a holder: the last blocking callback sent since its grant, and how long ago. */
  basts: Record<string, { mode: Mode; agoMs: number }>;
  /** Set when the resource was rebuilt from its holders' records (cluster recovery). */
  rebuilt?: { agoMs: number; records: number; tokenFloor: number };
}
