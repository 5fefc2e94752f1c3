/** Types shared by the lock engine, its actors, the client protocol and the clients. */
import type { Mode } from './modes';

/** How a lock request or conversion can end other than by a grant. */
export type LockErrorCode =
  | 'NOTQUEUED'   // NOQUEUE request that could not be granted at once
  | 'CANCELLED'   // withdrawn by CANCEL (or by unlock of a still-pending lock)
  | 'TIMEOUT'     // its wait timeout expired
  | 'DEADLOCK'    // conversion deadlock: this conversion was chosen to fail (EDEADLK)
  | 'INVALID'     // bad arguments (mode, name length, unknown handle...)
  | 'NOTFOUND'    // no such lock
  | 'BUSY'        // operation not allowed in the lock's current state
  | 'LOST'        // the lock was taken away (daemon lost quorum, resource failed, ...)
  | 'SHUTDOWN';   // the daemon is shutting down

export const LOCK_ERROR_CODES: readonly LockErrorCode[] = [
  'NOTQUEUED', 'CANCELLED', 'TIMEOUT', 'DEADLOCK', 'INVALID', 'NOTFOUND', 'BUSY', 'LOST', 'SHUTDOWN',
];

export class LockError extends Error {
  constructor(readonly code: LockErrorCode, message?: string) {
    super(message ?? code);
    this.name = 'LockError';
  }
}

/** What a holder receives with every grant. */
export interface Grant {
  mode: Mode;
  /** Fencing token: per-resource counter, strictly increasing with each PW/EX grant. */
  token: number;
  /** Copy of the lock value block (size from config). */
  lvb: Buffer;
  /** False when the LVB cannot be trusted: never written, or its last PW/EX holder went
   *  away without writing it back (died, disconnected, lock purged). */
  lvbValid: boolean;
}

export const MAX_RESOURCE_NAME = 64;
export const MAX_LOCKSPACE_NAME = 64;
export const DEFAULT_LOCKSPACE = 'default';
