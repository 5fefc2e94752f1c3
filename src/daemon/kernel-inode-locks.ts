/**
 * The kernel's cached inode locks of one volume on this node, for `mxfsctl locks --volume V`
 * (client request 'inodeLocks'; docs/kernel.md "Inode locks").
 *
 * Owns nothing: it pages through the module's lock cache with GLOCK_LIST_REQ (VOLUME, INODE =
 * from, LIMIT = GLOCK_PAGE), which answers one GLOCK_INFO per cached lock in inode number order, then
 * asks again from the last inode + 1 until a page comes back short. Every lock is counted (by
 * mode and state); the first `limit` are returned in full. The listing is a sequence of
 * snapshots, not one: a lock taken or given up while the pages are read may be missed or
 * counted in its new state, as with /proc files.
 */
import { Mode, modeName } from '../dlm/modes';
import {
  inodeResource, MxfsAttr, MxfsCmd, MxfsGlockState, MxfsGlockType,
} from '../ffi/mxfs-genl';
import type { MxfsAttrs, MxfsMessage } from '../ffi/netlink-msg';
export { INODE_LOCKS_MAX_LIMIT } from '../wire/client-protocol';

/** One cached inode lock, as the module reports it. */
export interface KernelInodeLock {
  /** The inode number (a decimal string above 2^53). */
  inode: number | string;
  /** The DLM resource in lockspace mxfs-inodes ("<volume>:<inode>"). */
  resource: string;
  type: 'file' | 'dir' | 'other';
  /** The cluster mode cached: NL (given up, still tracked), PR or EX. */
  mode: string;
  /** idle, or the request in flight: locking, converting, demoting. */
  state: 'idle' | 'locking' | 'converting' | 'demoting';
  /** Tasks of this node using / waiting for the lock. */
  holders: number;
  waiters: number;
  /** The mode a blocking callback asked this node to give the lock down to, if one is pending. */
  demote?: string;
  /** The module's lock id (its LOCK_REQ's REQ_ID), while a cluster lock is held. */
  lockId?: string;
  /** Acquisitions served by the cache / that had to wait. */
  hits: number;
  misses: number;
  /** The inode's data version this node knows (the LVB's). */
  dataVersion: string;
  /** The inode's pages in this node's page cache. */
  pages: number;
}

export interface KernelInodeLocksReport {
  node: number;
  volume: string;
  /** Every cached lock of the volume on this node. */
  total: number;
  byMode: Record<string, number>;
  byState: Record<string, number>;
  /** The first `limit` of them, in inode number order. */
  locks: KernelInodeLock[];
  /** How many were counted but not returned. */
  omitted: number;
}

export type KernelRequest = (cmd: MxfsCmd, attrs: MxfsAttrs) => Promise<MxfsMessage[]>;

/** Default number of locks returned in full (the rest are counted); at most INODE_LOCKS_MAX_LIMIT. */
export const INODE_LOCKS_DEFAULT_LIMIT = 1000;
/** At most this many are read (pages of 256); a bigger cache is reported as truncated. */
const SCAN_MAX = 4_000_000;

const STATE: Record<MxfsGlockState, KernelInodeLock['state']> = {
  [MxfsGlockState.IDLE]: 'idle',
  [MxfsGlockState.LOCKING]: 'locking',
  [MxfsGlockState.CONVERTING]: 'converting',
  [MxfsGlockState.DEMOTING]: 'demoting',
};
const TYPE: Record<MxfsGlockType, KernelInodeLock['type']> = {
  [MxfsGlockType.FILE]: 'file',
  [MxfsGlockType.DIR]: 'dir',
  [MxfsGlockType.OTHER]: 'other',
};

const big = (a: MxfsAttrs, k: MxfsAttr): bigint => BigInt(a[k] as bigint | number);
const small = (a: MxfsAttrs, k: MxfsAttr): number => Number(a[k] as bigint | number);
const jsonInt = (v: bigint): number | string => (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString(10));

/** One GLOCK_INFO (already validated against the ABI by the channel) as a KernelInodeLock. */
export function inodeLockOf(volume: string, m: MxfsMessage): KernelInodeLock {
  const a = m.attrs;
  const ino = big(a, MxfsAttr.INODE);
  const out: KernelInodeLock = {
    inode: jsonInt(ino),
    resource: inodeResource(volume, ino),
    type: TYPE[small(a, MxfsAttr.GLOCK_TYPE) as MxfsGlockType],
    mode: modeName(small(a, MxfsAttr.MODE) as Mode),
    state: STATE[small(a, MxfsAttr.GLOCK_STATE) as MxfsGlockState],
    holders: small(a, MxfsAttr.HOLDERS),
    waiters: small(a, MxfsAttr.WAITERS),
    hits: small(a, MxfsAttr.HITS),
    misses: small(a, MxfsAttr.MISSES),
    dataVersion: big(a, MxfsAttr.DATA_VERSION).toString(10),
    pages: small(a, MxfsAttr.PAGES),
  };
  if (a[MxfsAttr.DEMOTE_MODE] !== undefined) out.demote = modeName(small(a, MxfsAttr.DEMOTE_MODE) as Mode);
  if (a[MxfsAttr.LOCK_ID] !== undefined && big(a, MxfsAttr.LOCK_ID) !== 0n) out.lockId = big(a, MxfsAttr.LOCK_ID).toString(10);
  return out;
}

/**
 * Locks asked per GLOCK_LIST_REQ: 64 GLOCK_INFOs and the ack fit the daemon's request window at
 * the default net.core.rmem_max (92 answers; request-window.ts) whatever their size, where the
 * module's 256 would fit its receive buffer only because netlink trims each small reply.
 */
export const GLOCK_PAGE = 64;

export async function listKernelInodeLocks(request: KernelRequest, node: number, volume: string, limit = INODE_LOCKS_DEFAULT_LIMIT): Promise<KernelInodeLocksReport> {
  const report: KernelInodeLocksReport = { node, volume, total: 0, byMode: {}, byState: {}, locks: [], omitted: 0 };
  let from = 0n;
  for (;;) {
    const replies = await request(MxfsCmd.GLOCK_LIST_REQ, {
      [MxfsAttr.VOLUME]: volume, [MxfsAttr.INODE]: from, [MxfsAttr.LIMIT]: GLOCK_PAGE,
    });
    const page = replies.filter((m) => m.cmd === MxfsCmd.GLOCK_INFO && m.attrs[MxfsAttr.VOLUME] === volume);
    for (const m of page) {
      const l = inodeLockOf(volume, m);
      report.total++;
      report.byMode[l.mode] = (report.byMode[l.mode] ?? 0) + 1;
      report.byState[l.state] = (report.byState[l.state] ?? 0) + 1;
      if (report.locks.length < limit) report.locks.push(l);
      else report.omitted++;
    }
    if (page.length < GLOCK_PAGE || report.total >= SCAN_MAX) break;
    const last = big(page[page.length - 1]!.attrs, MxfsAttr.INODE);
    if (last === 0xffffffffffffffffn) break;
    from = last + 1n;
  }
  return report;
}
