/**
 * The `mxfs` package's main entry: the client library an application uses to take locks
 * from its node's mxfsd (over the Unix socket), with the lock modes, errors and limits.
 *
 *   import { MxfsClient, Mode, LockError } from 'mxfs';
 *
 * `mxfs/cluster` (src/local-cluster/local-cluster.ts) runs a local cluster of mxfsd
 * processes, for testing an application against real daemons.
 */
export { MxfsClient } from './client/client';
export type { ClientOptions } from './client/client';
export type { LockClient, LockHandle, LockOptions, ConvertOptions, UnlockOptions } from './client/api';
export { Mode, MODE_NAMES, compatible, modeName, parseMode } from './dlm/modes';
export type { ModeName } from './dlm/modes';
export { LockError, LOCK_ERROR_CODES, DEFAULT_LOCKSPACE, MAX_LOCKSPACE_NAME, MAX_RESOURCE_NAME } from './dlm/types';
export type { Grant, LockErrorCode } from './dlm/types';
export { VERSION } from './version';
