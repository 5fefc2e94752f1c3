/**
 * The lock API every MXFS client sees, over the Unix socket (MxfsClient.connect) or
 * in-process (Daemon.connectLocal: the kernel bridge, tests); both are MxfsClient
 * (src/client/client.ts) on another ClientTransport. One interface so users do not care which.
 */
import type { EventEmitter } from 'node:events';
import type { Mode } from '../dlm/modes';
import type { Grant } from '../dlm/types';

export interface LockOptions {
  /** Namespace of the resource name; 'default' if not given. */
  lockspace?: string;
  /** Try-lock: fail at once with NOTQUEUED instead of waiting. */
  noqueue?: boolean;
  /** Give up waiting after this many ms (TIMEOUT), counted from the request, across cluster recoveries. */
  timeoutMs?: number;
  /** Aborting cancels the pending request (CANCELLED). */
  signal?: AbortSignal;
}

export interface ConvertOptions {
  noqueue?: boolean;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Write this LVB back: only from PW or EX (held in a lower mode, the call fails INVALID, unsent). */
  lvb?: Buffer;
}

export interface UnlockOptions {
  /** Write this LVB back: only from PW or EX (held in a lower mode, the call fails INVALID, unsent). */
  lvb?: Buffer;
}

/**
 * A granted lock. Events:
 *  - 'bast' (mode: Mode): a waiter wants `mode`, which this lock blocks; release or down-convert.
 *  - 'lost' (reason: string): the lock is no longer held; stop using what it protects at once.
 * Either that came while nobody listened is given to a listener added later (next tick):
 * a BAST of the current grant to the first 'bast' listeners, a loss to every 'lost' listener.
 */
export interface LockHandle extends EventEmitter {
  readonly lockspace: string;
  readonly resource: string;
  /** The current grant (mode, fencing token, LVB). Updated by convert(). */
  readonly grant: Grant;
  /** True once the lock has been lost or released. */
  readonly released: boolean;
  /** True while the lock is held and the daemon has been heard from within the keepalive
   *  bound; checked at the moment of the call, so a paused process learns at once. */
  readonly valid: boolean;
  convert(mode: Mode, opts?: ConvertOptions): Promise<Grant>;
  /** One at a time: a second unlock() (or a convert()) while one waits for its reply fails BUSY. */
  unlock(opts?: UnlockOptions): Promise<void>;
}

/** Events: 'lost' (reason: string) when every lock of the client is lost at once. */
export interface LockClient extends EventEmitter {
  lock(resource: string, mode: Mode, opts?: LockOptions): Promise<LockHandle>;
  close(): Promise<void>;
}
