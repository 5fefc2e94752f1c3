/**
 * The plain option objects the cluster layer takes (the daemon fills them from the parsed
 * config; tests build them by hand), and the timing rules derived from them.
 *
 * Owns no messages. The shapes mirror src/config/config.ts (node, cluster, peers, timing) so
 * the daemon can pass those sections through unchanged.
 */
import type { ClusterSettings } from './peer-protocol';

export const DEFAULT_PEER_PORT = 7600;

/** lockPort: the port of the lock engine's own peer link (direct-link.ts); absent: lock traffic goes through the cluster worker only. */
export interface ClusterNodeOptions { id: number; name: string; address: string; port: number; lockPort?: number }
export interface ClusterPeerOptions { id: number; name: string; address: string; port: number; lockPort?: number }
export interface ClusterIdentityOptions {
  name: string;
  /** File holding the shared secret (see loadClusterKey). Ignored when `key` is given. */
  keyFile?: string;
  /** The secret itself (tests, or a daemon that already loaded keyFile). */
  key?: Buffer;
  tiebreaker?: number;
}
export interface ClusterTimingOptions {
  leaseTimeoutMs: number;
  renewIntervalMs: number;
  /** Lock links' idle check (see lockLinkTimes); undefined: derived from renewIntervalMs. */
  lockLinkPingMs?: number;
  lockLinkDeadMs?: number;
}

export interface ClusterOptions {
  node: ClusterNodeOptions;
  cluster: ClusterIdentityOptions;
  peers: ClusterPeerOptions[];
  timing: ClusterTimingOptions;
  /** [locking] lvb_size, which every node must share (checked in the handshake); absent: not checked. */
  lvbSize?: number;
}

export const DEFAULT_TIMING: ClusterTimingOptions = { leaseTimeoutMs: 10000, renewIntervalMs: 2000 };

/**
 * The lease margins (docs/cluster-protocol.md, "Why the margins are safe").
 * A node self-fences when it has no fresh majority for (lease - fenceMargin) of its own
 * clock; a peer declares it dead only after (lease + deadMargin) of the peer's clock.
 * Safety needs fenceMargin + deadMargin > 2 * lease * maxDrift (+ scheduling slack); with
 * margins of lease/10 each, that holds for clock-rate differences up to 10%.
 */
export interface LeaseTimes {
  leaseMs: number;
  renewMs: number;
  fenceMarginMs: number;
  deadMarginMs: number;
  /** Own clock: no fresh majority for this long => quorum lost (self-fence). */
  fenceAfterMs: number;
  /** Peer's clock: nothing heard from a node for this long => it is dead. */
  deadAfterMs: number;
}

export function leaseTimes(t: ClusterTimingOptions): LeaseTimes {
  if (!(t.renewIntervalMs > 0 && t.leaseTimeoutMs > 2 * t.renewIntervalMs)) {
    throw new Error(`leaseTimeoutMs (${t.leaseTimeoutMs}) must be more than twice renewIntervalMs (${t.renewIntervalMs})`);
  }
  const m = Math.max(100, Math.floor(t.leaseTimeoutMs / 10));
  // The fence deadline must still leave at least one renewal round to refresh it.
  const fenceMarginMs = Math.min(m, t.leaseTimeoutMs - t.renewIntervalMs - 1);
  return {
    leaseMs: t.leaseTimeoutMs, renewMs: t.renewIntervalMs, fenceMarginMs, deadMarginMs: m,
    fenceAfterMs: t.leaseTimeoutMs - fenceMarginMs, deadAfterMs: t.leaseTimeoutMs + m,
  };
}

/**
 * The idle check of a lock link (direct-link.ts): when lock frames went out on it and nothing
 * came back for `pingAfterMs`, it sends a ping; when nothing comes back within `deadAfterMs`
 * of that ping (or of the ping that opens a new session) the link is dropped and lock frames
 * go the worker's way. Defaults: half a renew interval and one renew interval (1 s and 2 s
 * with the default timing), so a silent link costs at most a few channel timeouts, far less
 * than a lease.
 */
export function lockLinkTimes(t: ClusterTimingOptions): { pingAfterMs: number; deadAfterMs: number } {
  return {
    pingAfterMs: t.lockLinkPingMs ?? Math.max(10, Math.floor(t.renewIntervalMs / 2)),
    deadAfterMs: t.lockLinkDeadMs ?? Math.max(10, t.renewIntervalMs),
  };
}

export function allNodeIds(o: ClusterOptions): number[] {
  return [o.node.id, ...o.peers.map((p) => p.id)].sort((a, b) => a - b);
}

/** What this node tells its peers in the handshake, for them to compare (peer-protocol.ts, ClusterSettings). */
export function clusterSettings(o: ClusterOptions): ClusterSettings {
  return { nodes: allNodeIds(o), leaseMs: o.timing.leaseTimeoutMs, renewMs: o.timing.renewIntervalMs, tiebreaker: o.cluster.tiebreaker ?? 0, lvbSize: o.lvbSize ?? 0 };
}

/**
 * The first setting in which `theirs` (node `peer`'s) differs from `mine`, as one sentence
 * naming the configuration key and both values (short enough for a refusal's reason, 200
 * bytes); undefined if they agree (an lvbSize of 0 is unknown, and agrees with anything). Why
 * each must agree: peer-protocol.ts, ClusterSettings.
 */
export function settingsMismatch(mine: ClusterSettings, theirs: ClusterSettings, self: number, peer: number): string | undefined {
  const diff = (key: string, a: string | number, b: string | number) =>
    `cluster settings differ: node ${peer} has ${key} = ${b}, node ${self} has ${a}; every node needs the same`;
  const list = (l: number[]) => `[${l.join(',')}]`;
  const tb = (t: number) => (t === 0 ? 'none' : t);
  if (list(mine.nodes) !== list(theirs.nodes)) return diff('node ids ([node] id + [peer] ids)', list(mine.nodes), list(theirs.nodes));
  if (mine.leaseMs !== theirs.leaseMs) return diff('[timing] lease_timeout_ms', mine.leaseMs, theirs.leaseMs);
  if (mine.renewMs !== theirs.renewMs) return diff('[timing] renew_interval_ms', mine.renewMs, theirs.renewMs);
  if (mine.tiebreaker !== theirs.tiebreaker) return diff('[cluster] tiebreaker', tb(mine.tiebreaker), tb(theirs.tiebreaker));
  if (mine.lvbSize !== 0 && theirs.lvbSize !== 0 && mine.lvbSize !== theirs.lvbSize) return diff('[locking] lvb_size', mine.lvbSize, theirs.lvbSize);
  return undefined;
}
