/**
 * ClusterLayer: the cluster layer (peer links, leases, quorum, epochs) as the lock engine's
 * cluster port (src/daemon/cluster-port.ts) uses it. Two implementations:
 *
 *   ClusterNode    (cluster-node.ts)    in the caller's thread: tests and the whole-cluster
 *                                       simulation, where everything runs under one
 *                                       ManualClock;
 *   ClusterWorker  (cluster-worker.ts)  in a worker thread with its own event loop and actor
 *                                       system: mxfsd. Lease renewals and quorum decisions
 *                                       never wait behind lock traffic or lock-engine work.
 *
 * Events arrive through the callbacks in ClusterLayerEvents, in the order the layer produced
 * them (a view before the lock messages of its epoch that followed it).
 */
import type { ChannelFrame } from './dlm-channel';
import type { MembershipEvent, MembershipSnapshot, RenewalReport } from './membership';
import type { LeaseStatus } from './lease';
import type { LinkEvent, PeerLinkStatus } from './peer-link';
import type { PeerBody, PeerMessage } from './peer-protocol';
import type { LoopSnapshot } from '../util/loop-monitor';

export interface ClusterLayerEvents {
  onEvent?(ev: MembershipEvent): void;
  onLinkEvent?(ev: LinkEvent): void;
  /** Epoch-checked messages for the lock engine (everything 'bound' except ping). */
  onBoundMessage?(from: number, msg: PeerMessage): void;
  /** Messages refused for their epoch (or other membership rules), with the reason. */
  onRejected?(from: number, msg: PeerMessage, reason: string): void;
  /** Lock-engine frames for the DlmChannel (rule 'receiver'). */
  onDlmFrame?(from: number, frame: ChannelFrame): void;
  /**
   * Every renewal round sent, and every acknowledgement that moved the quorum deadline (the
   * systemd watchdog's feed, src/daemon/service.ts). With ClusterWorker these come through
   * the lock engine's thread, so a listener there also proves that thread runs.
   */
  onRenewal?(r: RenewalReport): void;
  /** A lease renewal arrived from peer `from`. */
  onPeerRenewal?(from: number): void;
  /**
   * The quorum deadline changed (layer clock ms; -Infinity: lost; Infinity: quorum alone):
   * each renewal that moves it, and each loss. ClusterWorker publishes it in shared memory
   * from here; the lock engine reads it through canGrant()/quorumUntil().
   */
  onLease?(until: number): void;
}

/** Faults injected on this node's peer traffic (MXFS_FAULT_INJECTION only). */
export interface PeerFaults {
  blocked: Set<number>; drop: number; delayMs: number;
  /** Muted as the watchdog mutes a node (MembershipCore.mute: no renewals, no answers, no quorum); the peer links stay up. */
  mute?: boolean;
}

/** Where the cluster layer runs, and how the lock engine's thread is watched (ClusterWorker only). */
export interface ThreadStatus {
  isolation: 'worker';
  /** What carries the lock traffic between the threads (thread-pipe.ts): a Unix socket pair, or the worker's message port where there is none. */
  pipe: 'socket pair' | 'message port';
  /**
   * The worker mutes itself when the main thread has not answered for this long, not counting
   * time it waited for a CPU (up to STARVED_SILENCE_FACTOR times this in all).
   */
  stallBoundMs: number;
  /** Age of the main thread's last heartbeat now, and the largest seen in the last minute. */
  mainBeatAgeMs: number;
  mainBeatAgeMaxMs: number | null;
  muted: boolean;
  mutes: number;
  /** Silences over the bound that were not muted: the main thread was waiting for a CPU. */
  starvedSilences: number;
  /** The worker's own event loop. */
  workerLoop: LoopSnapshot;
}

export type ClusterLayerStatus = MembershipSnapshot & { links: PeerLinkStatus[]; thread?: ThreadStatus; leases?: LeaseStatus };

export interface ClusterLayer {
  /** This daemon run's incarnation (names the DlmChannel's streams). */
  readonly incarnation: number;
  start(): Promise<void>;
  stop(reason?: string): Promise<void>;
  /** Sends body to a peer, stamped with `epoch` (default: the committed epoch when it is sent). */
  send(to: number, body: PeerBody, epoch?: number): void;
  /** The check to make right before every grant: the quorum deadline against the clock, now. */
  canGrant(): boolean;
  /** Local clock ms until which this node may grant as a quorum member (-Infinity: not now). */
  quorumUntil(): number;
  status(timeoutMs?: number): Promise<ClusterLayerStatus>;
  dropLink(peer: number, reason: string): void;
  setFaults(f: PeerFaults): void;
}
