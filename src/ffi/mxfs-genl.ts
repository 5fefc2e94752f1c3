/**
 * The MXFS generic netlink ABI, daemon side: a mirror of kernel/mxfs_netlink.h (the source
 * of truth). test/kernel-abi.test.ts parses that header and fails when anything here
 * disagrees with it: names, numbers, per-command attribute sets, attribute types.
 * Append, never renumber; see docs/kernel.md for what each command means.
 */
import { Mode } from '../dlm/modes';
import type { LockErrorCode } from '../dlm/types';

export const MXFS_GENL_NAME = 'mxfs';
export const MXFS_GENL_VERSION = 1;
export const MXFS_GENL_MCGRP_EVENTS = 'events';
export const MXFS_PROTO_VERSION = 4;
export const MXFS_NAME_MAX = 64;
export const MXFS_LVB_MAX = 32;
/** Longest volume name the kernel registers: its disk is "mxfs!<name>" in DISK_NAME_LEN (32). */
export const MXFS_VOLUME_DEV_NAME_MAX = 26;

/** Inode locks: the lockspace of every inode's cluster lock, and its resource name,
 *  "<volume>:<inode number in decimal>" (MXFS_INODE_RESOURCE_FMT in the header). */
export const MXFS_INODE_LOCKSPACE = 'mxfs-inodes';
export const MXFS_INODE_RESOURCE_FMT = '%s:%llu';
export const MXFS_INODE_LVB_MAGIC = 0x5346584d;
export const MXFS_INODE_LVB_LAYOUT = 1;
export const MXFS_INODE_LVB_LEN = 24;
export const MXFS_GLOCK_LIST_MAX = 256;

/** The resource of inode `ino` of `volume` (what the module asks for). */
export function inodeResource(volume: string, ino: bigint | number): string {
  return `${volume}:${BigInt(ino).toString(10)}`;
}

/** The inverse of inodeResource, or undefined for another name. */
export function parseInodeResource(resource: string): { volume: string; ino: bigint } | undefined {
  const m = /^(.+):(\d{1,20})$/.exec(resource);
  if (!m) return undefined;
  const ino = BigInt(m[2]!);
  return ino <= 0xffffffffffffffffn ? { volume: m[1]!, ino } : undefined;
}

/** An inode lock's value block as the module writes it (header comment of mxfs_netlink.h). */
export interface InodeLvb { dataVersion: bigint; size: bigint }
export function decodeInodeLvb(lvb: Buffer): InodeLvb | undefined {
  if (lvb.length < MXFS_INODE_LVB_LEN || lvb.readUInt32LE(0) !== MXFS_INODE_LVB_MAGIC || lvb.readUInt32LE(4) !== MXFS_INODE_LVB_LAYOUT) return undefined;
  return { dataVersion: lvb.readBigUInt64LE(8), size: lvb.readBigUInt64LE(16) };
}

export enum MxfsCmd {
  UNSPEC = 0,
  LOCK_REQ = 1,
  LOCK_GRANT = 2,
  LOCK_DENY = 3,
  LOCK_RELEASE = 4,
  BAST = 5,
  CACHE_INVAL = 6,
  NODE_STATUS = 7,
  VOLUME_MOUNT = 8,
  VOLUME_UNMOUNT = 9,
  STATUS_REQ = 10,
  STATUS_RESP = 11,
  RECOVERY_START = 12,
  RECOVERY_DONE = 13,
  DAEMON_READY = 14,
  LOCK_LOST = 15,
  EVENT = 16,
  VOLUME_REPLY = 17,
  LOCK_CANCEL = 18,
  VOLUME_REGISTER = 19,
  VOLUME_UNREGISTER = 20,
  VOLUME_GATE = 21,
  VOLUME_FENCE = 22,
  VOLUME_CLEAR = 23,
  LEASE_RENEW = 24,
  LEASE_LOST = 25,
  VOLUME_STATUS_REQ = 26,
  LEASE_INFO = 27,
  VOLUME_INFO = 28,
  FENCE_INFO = 29,
  VOLUME_EVENT = 30,
  LOCK_CONVERT = 31,
  GLOCK_LIST_REQ = 32,
  GLOCK_INFO = 33,
}
export const MXFS_CMD_MAX = 33;

export enum MxfsAttr {
  UNSPEC = 0,
  PAD = 1,
  REQ_ID = 2,
  LOCK_ID = 3,
  LOCKSPACE = 4,
  RESOURCE = 5,
  MODE = 6,
  FLAGS = 7,
  STATUS = 8,
  TOKEN = 9,
  LVB = 10,
  LVB_VALID = 11,
  NODE_ID = 12,
  NODE_STATE = 13,
  VOLUME = 14,
  INODE = 15,
  PROTO_VERSION = 16,
  TIMEOUT_MS = 17,
  EVENT = 18,
  DAEMON_PORTID = 19,
  STAT_PENDING = 20,
  STAT_HELD = 21,
  STAT_REQUESTS = 22,
  STAT_GRANTS = 23,
  STAT_DENIES = 24,
  STAT_TIMEOUTS = 25,
  STAT_DAEMON_LOSSES = 26,
  STAT_REJECTED = 27,
  DEV = 28,
  GENERATION = 29,
  DEADLINE_NS = 30,
  GATE = 31,
  FENCE_CAUSE = 32,
  REASON = 33,
  OPENERS = 34,
  WRITERS = 35,
  INFLIGHT = 36,
  INFLIGHT_WRITES = 37,
  REFUSED = 38,
  LEASE_STATE = 39,
  LEASE_REMAINING_MS = 40,
  LEASE_AGE_MS = 41,
  FENCE_BOUND_MS = 42,
  FENCE_TIME_MS = 43,
  FENCE_DURATION_US = 44,
  FENCE_DRAINED = 45,
  FENCE_SHUTDOWN = 46,
  FENCE_INFLIGHT = 47,
  VOLUME_EVENT = 48,
  FENCES = 49,
  LIMIT = 50,
  GLOCK_STATE = 51,
  HOLDERS = 52,
  WAITERS = 53,
  DEMOTE_MODE = 54,
  HITS = 55,
  MISSES = 56,
  DATA_VERSION = 57,
  GLOCK_TYPE = 58,
  PAGES = 59,
}
export const MXFS_ATTR_MAX = 59;

/** MXFS_ATTR_FLAGS bits (MXFS_LKF_*). */
export const MXFS_LKF = { NOQUEUE: 0x1, ALL: 0x1 } as const;

export enum MxfsNodeState { UNKNOWN = 0, UP = 1, DOWN = 2, FENCED = 3 }
export const MXFS_NODE_STATE_MAX = 3;

export enum MxfsEvent { NONE = 0, DAEMON_ATTACHED = 1, DAEMON_DETACHED = 2, REQUEST_TIMEOUT = 3, LOCK_LOST = 4 }
export const MXFS_EVENT_MAX = 4;

/** MXFS_ATTR_GATE: what a volume's stacked device lets through. */
export enum MxfsGate { CLOSED = 0, OPEN = 1, FENCING = 2, FENCED = 3 }
export const MXFS_GATE_MAX = 3;

/** MXFS_ATTR_FENCE_CAUSE */
export enum MxfsFenceCause { NONE = 0, LEASE_EXPIRED = 1, LEASE_LOST = 2, DAEMON_LOST = 3, EXPLICIT = 4 }
export const MXFS_FENCE_MAX = 4;

/** MXFS_ATTR_LEASE_STATE */
export enum MxfsLeaseState { NONE = 0, VALID = 1, EXPIRED = 2, LOST = 3 }
export const MXFS_LEASE_MAX = 3;

/** MXFS_ATTR_FENCE_SHUTDOWN: what a fence did to the filesystem on the stacked device. */
export enum MxfsShutdown { NO_FS = 0, DONE = 1, UNAVAILABLE = 2, NOT_XFS = 3 }
export const MXFS_SHUTDOWN_MAX = 3;

/** MXFS_ATTR_VOLUME_EVENT */
export enum MxfsVolumeEvent { NONE = 0, RELEASED = 1, FENCED = 2 }
export const MXFS_VOLEV_MAX = 2;

/** MXFS_ATTR_GLOCK_STATE: what a cached inode lock is doing. */
export enum MxfsGlockState { IDLE = 0, LOCKING = 1, CONVERTING = 2, DEMOTING = 3 }
export const MXFS_GLOCK_MAX = 3;

/** MXFS_ATTR_GLOCK_TYPE: the per-type operations of an inode lock. */
export enum MxfsGlockType { FILE = 0, DIR = 1, OTHER = 2 }
export const MXFS_GLT_MAX = 2;

/** How an attribute's payload is laid out and bounded (mirrors the module's nla_policy). */
export type AttrKind =
  | { kind: 'u8'; max?: number }
  | { kind: 'u32'; mask?: number }
  | { kind: 'u64' }
  | { kind: 's32'; min: number; max: number }
  | { kind: 'string'; maxLen: number }   // NUL-terminated, maxLen bytes without the NUL
  | { kind: 'binary'; maxLen?: number };

export const ATTR_POLICY: Readonly<Record<Exclude<MxfsAttr, MxfsAttr.UNSPEC>, AttrKind>> = {
  [MxfsAttr.PAD]: { kind: 'binary' },
  [MxfsAttr.REQ_ID]: { kind: 'u64' },
  [MxfsAttr.LOCK_ID]: { kind: 'u64' },
  [MxfsAttr.LOCKSPACE]: { kind: 'string', maxLen: MXFS_NAME_MAX },
  [MxfsAttr.RESOURCE]: { kind: 'string', maxLen: MXFS_NAME_MAX },
  [MxfsAttr.MODE]: { kind: 'u8', max: Mode.EX },
  [MxfsAttr.FLAGS]: { kind: 'u32', mask: MXFS_LKF.ALL },
  [MxfsAttr.STATUS]: { kind: 's32', min: -4095, max: 0 },
  [MxfsAttr.TOKEN]: { kind: 'u64' },
  [MxfsAttr.LVB]: { kind: 'binary', maxLen: MXFS_LVB_MAX },
  [MxfsAttr.LVB_VALID]: { kind: 'u8', max: 1 },
  [MxfsAttr.NODE_ID]: { kind: 'u32' },
  [MxfsAttr.NODE_STATE]: { kind: 'u8', max: MXFS_NODE_STATE_MAX },
  [MxfsAttr.VOLUME]: { kind: 'string', maxLen: MXFS_NAME_MAX },
  [MxfsAttr.INODE]: { kind: 'u64' },
  [MxfsAttr.PROTO_VERSION]: { kind: 'u32' },
  [MxfsAttr.TIMEOUT_MS]: { kind: 'u32' },
  [MxfsAttr.EVENT]: { kind: 'u8', max: MXFS_EVENT_MAX },
  [MxfsAttr.DAEMON_PORTID]: { kind: 'u32' },
  [MxfsAttr.STAT_PENDING]: { kind: 'u32' },
  [MxfsAttr.STAT_HELD]: { kind: 'u32' },
  [MxfsAttr.STAT_REQUESTS]: { kind: 'u64' },
  [MxfsAttr.STAT_GRANTS]: { kind: 'u64' },
  [MxfsAttr.STAT_DENIES]: { kind: 'u64' },
  [MxfsAttr.STAT_TIMEOUTS]: { kind: 'u64' },
  [MxfsAttr.STAT_DAEMON_LOSSES]: { kind: 'u64' },
  [MxfsAttr.STAT_REJECTED]: { kind: 'u64' },
  [MxfsAttr.DEV]: { kind: 'u32' },
  [MxfsAttr.GENERATION]: { kind: 'u64' },
  [MxfsAttr.DEADLINE_NS]: { kind: 'u64' },
  [MxfsAttr.GATE]: { kind: 'u8', max: MXFS_GATE_MAX },
  [MxfsAttr.FENCE_CAUSE]: { kind: 'u8', max: MXFS_FENCE_MAX },
  [MxfsAttr.REASON]: { kind: 'string', maxLen: MXFS_NAME_MAX },
  [MxfsAttr.OPENERS]: { kind: 'u32' },
  [MxfsAttr.WRITERS]: { kind: 'u32' },
  [MxfsAttr.INFLIGHT]: { kind: 'u32' },
  [MxfsAttr.INFLIGHT_WRITES]: { kind: 'u32' },
  [MxfsAttr.REFUSED]: { kind: 'u64' },
  [MxfsAttr.LEASE_STATE]: { kind: 'u8', max: MXFS_LEASE_MAX },
  [MxfsAttr.LEASE_REMAINING_MS]: { kind: 'u32' },
  [MxfsAttr.LEASE_AGE_MS]: { kind: 'u32' },
  [MxfsAttr.FENCE_BOUND_MS]: { kind: 'u32' },
  [MxfsAttr.FENCE_TIME_MS]: { kind: 'u64' },
  [MxfsAttr.FENCE_DURATION_US]: { kind: 'u32' },
  [MxfsAttr.FENCE_DRAINED]: { kind: 'u8', max: 1 },
  [MxfsAttr.FENCE_SHUTDOWN]: { kind: 'u8', max: MXFS_SHUTDOWN_MAX },
  [MxfsAttr.FENCE_INFLIGHT]: { kind: 'u32' },
  [MxfsAttr.VOLUME_EVENT]: { kind: 'u8', max: MXFS_VOLEV_MAX },
  [MxfsAttr.FENCES]: { kind: 'u32' },
  [MxfsAttr.LIMIT]: { kind: 'u32' },
  [MxfsAttr.GLOCK_STATE]: { kind: 'u8', max: MXFS_GLOCK_MAX },
  [MxfsAttr.HOLDERS]: { kind: 'u32' },
  [MxfsAttr.WAITERS]: { kind: 'u32' },
  [MxfsAttr.DEMOTE_MODE]: { kind: 'u8', max: Mode.EX },
  [MxfsAttr.HITS]: { kind: 'u64' },
  [MxfsAttr.MISSES]: { kind: 'u64' },
  [MxfsAttr.DATA_VERSION]: { kind: 'u64' },
  [MxfsAttr.GLOCK_TYPE]: { kind: 'u8', max: MXFS_GLT_MAX },
  [MxfsAttr.PAGES]: { kind: 'u64' },
};

export type Direction = 'to-kernel' | 'to-daemon' | 'multicast';

export interface CmdSchema {
  dir: Direction;
  required: readonly MxfsAttr[];
  /** Attributes allowed besides the required ones. */
  optional: readonly MxfsAttr[];
}

const A = MxfsAttr;
/** Per-command attribute sets (MXFS_CMD_<X>_REQUIRED / _ALLOWED in the header). */
export const CMD_SCHEMA: Readonly<Record<Exclude<MxfsCmd, MxfsCmd.UNSPEC>, CmdSchema>> = {
  [MxfsCmd.LOCK_REQ]: { dir: 'to-daemon', required: [A.REQ_ID, A.LOCKSPACE, A.RESOURCE, A.MODE], optional: [A.FLAGS, A.TIMEOUT_MS, A.PAD] },
  [MxfsCmd.LOCK_GRANT]: { dir: 'to-kernel', required: [A.REQ_ID, A.MODE, A.TOKEN], optional: [A.LVB, A.LVB_VALID, A.PAD] },
  [MxfsCmd.LOCK_DENY]: { dir: 'to-kernel', required: [A.REQ_ID, A.STATUS], optional: [A.PAD] },
  [MxfsCmd.LOCK_RELEASE]: { dir: 'to-daemon', required: [A.LOCK_ID, A.LOCKSPACE, A.RESOURCE], optional: [A.LVB, A.PAD] },
  [MxfsCmd.BAST]: { dir: 'to-kernel', required: [A.LOCK_ID, A.MODE], optional: [A.PAD] },
  [MxfsCmd.CACHE_INVAL]: { dir: 'to-kernel', required: [A.VOLUME, A.INODE], optional: [A.PAD] },
  [MxfsCmd.NODE_STATUS]: { dir: 'to-kernel', required: [A.NODE_ID, A.NODE_STATE], optional: [] },
  [MxfsCmd.VOLUME_MOUNT]: { dir: 'to-daemon', required: [A.REQ_ID, A.VOLUME], optional: [A.TIMEOUT_MS, A.PAD] },
  [MxfsCmd.VOLUME_UNMOUNT]: { dir: 'to-daemon', required: [A.REQ_ID, A.VOLUME], optional: [A.TIMEOUT_MS, A.PAD] },
  [MxfsCmd.STATUS_REQ]: { dir: 'to-kernel', required: [], optional: [] },
  [MxfsCmd.STATUS_RESP]: {
    dir: 'to-daemon',
    required: [A.DAEMON_PORTID, A.STAT_PENDING, A.STAT_HELD, A.STAT_REQUESTS, A.STAT_GRANTS, A.STAT_DENIES,
      A.STAT_TIMEOUTS, A.STAT_DAEMON_LOSSES, A.STAT_REJECTED],
    optional: [A.NODE_ID, A.PAD],
  },
  [MxfsCmd.RECOVERY_START]: { dir: 'to-kernel', required: [A.VOLUME, A.NODE_ID], optional: [] },
  [MxfsCmd.RECOVERY_DONE]: { dir: 'to-kernel', required: [A.VOLUME, A.NODE_ID], optional: [A.STATUS] },
  [MxfsCmd.DAEMON_READY]: { dir: 'to-kernel', required: [A.NODE_ID, A.PROTO_VERSION], optional: [A.DAEMON_PORTID] },
  [MxfsCmd.LOCK_LOST]: { dir: 'to-kernel', required: [A.LOCK_ID, A.STATUS], optional: [A.PAD] },
  [MxfsCmd.EVENT]: { dir: 'multicast', required: [A.EVENT], optional: [A.NODE_ID, A.DAEMON_PORTID, A.LOCK_ID, A.STATUS, A.PAD] },
  [MxfsCmd.VOLUME_REPLY]: { dir: 'to-kernel', required: [A.REQ_ID, A.STATUS], optional: [A.PAD] },
  [MxfsCmd.LOCK_CANCEL]: { dir: 'to-daemon', required: [A.REQ_ID], optional: [A.PAD] },
  [MxfsCmd.VOLUME_REGISTER]: { dir: 'to-kernel', required: [A.VOLUME, A.DEV], optional: [] },
  [MxfsCmd.VOLUME_UNREGISTER]: { dir: 'to-kernel', required: [A.VOLUME], optional: [] },
  [MxfsCmd.VOLUME_GATE]: { dir: 'to-kernel', required: [A.VOLUME, A.GATE], optional: [A.GENERATION, A.PAD] },
  [MxfsCmd.VOLUME_FENCE]: { dir: 'to-kernel', required: [A.VOLUME], optional: [A.REASON] },
  [MxfsCmd.VOLUME_CLEAR]: { dir: 'to-kernel', required: [A.VOLUME], optional: [] },
  [MxfsCmd.LEASE_RENEW]: { dir: 'to-kernel', required: [A.DEADLINE_NS], optional: [A.PAD] },
  [MxfsCmd.LEASE_LOST]: { dir: 'to-kernel', required: [], optional: [A.REASON] },
  [MxfsCmd.VOLUME_STATUS_REQ]: { dir: 'to-kernel', required: [], optional: [A.VOLUME] },
  [MxfsCmd.LEASE_INFO]: {
    dir: 'to-daemon', required: [A.LEASE_STATE, A.FENCE_BOUND_MS],
    optional: [A.LEASE_REMAINING_MS, A.LEASE_AGE_MS, A.DEADLINE_NS, A.PAD],
  },
  [MxfsCmd.VOLUME_INFO]: {
    dir: 'to-daemon',
    required: [A.VOLUME, A.DEV, A.GATE, A.GENERATION, A.OPENERS, A.WRITERS, A.INFLIGHT, A.INFLIGHT_WRITES, A.REFUSED, A.FENCES],
    optional: [A.PAD],
  },
  [MxfsCmd.FENCE_INFO]: {
    dir: 'to-daemon',
    required: [A.VOLUME, A.FENCE_CAUSE, A.GENERATION, A.FENCE_TIME_MS, A.FENCE_DURATION_US, A.FENCE_DRAINED,
      A.FENCE_SHUTDOWN, A.FENCE_INFLIGHT],
    optional: [A.PAD],
  },
  [MxfsCmd.VOLUME_EVENT]: {
    dir: 'to-daemon', required: [A.VOLUME, A.VOLUME_EVENT, A.GENERATION],
    optional: [A.FENCE_CAUSE, A.FENCE_TIME_MS, A.FENCE_DURATION_US, A.FENCE_DRAINED, A.FENCE_SHUTDOWN, A.FENCE_INFLIGHT, A.PAD],
  },
  [MxfsCmd.LOCK_CONVERT]: { dir: 'to-daemon', required: [A.REQ_ID, A.LOCK_ID, A.MODE], optional: [A.FLAGS, A.TIMEOUT_MS, A.LVB, A.PAD] },
  [MxfsCmd.GLOCK_LIST_REQ]: { dir: 'to-kernel', required: [], optional: [A.VOLUME, A.INODE, A.LIMIT, A.PAD] },
  [MxfsCmd.GLOCK_INFO]: {
    dir: 'to-daemon',
    required: [A.VOLUME, A.INODE, A.MODE, A.GLOCK_STATE, A.GLOCK_TYPE, A.HOLDERS, A.WAITERS, A.HITS, A.MISSES, A.DATA_VERSION, A.PAGES],
    optional: [A.LOCK_ID, A.DEMOTE_MODE, A.PAD],
  },
};

/** Linux errno values the bridge and the module exchange (x86_64/generic numbering). */
export const Errno = {
  EPERM: 1, ENOENT: 2, EINTR: 4, EIO: 5, ENXIO: 6, EAGAIN: 11, ENOMEM: 12, EBUSY: 16, EEXIST: 17,
  ENODEV: 19, EINVAL: 22, EDEADLK: 35, ENOLCK: 37, EPROTONOSUPPORT: 93, EOPNOTSUPP: 95,
  ESHUTDOWN: 108, ENOTCONN: 107, ETIMEDOUT: 110, ESTALE: 116, ECANCELED: 125,
} as const;

/** How a DLM failure is told to the kernel: LOCK_DENY's STATUS is minus one of these. */
export const LOCK_ERROR_ERRNO: Readonly<Record<LockErrorCode, number>> = {
  NOTQUEUED: Errno.EAGAIN,
  CANCELLED: Errno.ECANCELED,
  TIMEOUT: Errno.ETIMEDOUT,
  DEADLOCK: Errno.EDEADLK,
  INVALID: Errno.EINVAL,
  NOTFOUND: Errno.ENOENT,
  BUSY: Errno.EBUSY,
  LOST: Errno.ENOLCK,
  SHUTDOWN: Errno.ESHUTDOWN,
};
