/**
 * VolumeDriver: how a Volume actor acts on the machine — the one seam between the cluster's
 * decisions (who owns a volume, when a dead owner is provably fenced) and what makes them
 * true on this host. Two implementations:
 *
 *  - kernel  (src/volumes/kernel-driver.ts): the mxfs module claims the shared disk, exposes a
 *            gated block device /dev/mxfs/<volume>, keeps a kernel lease renewed by the daemon,
 *            and fences (EIO on new writes, drain, XFS shutdown) on its own when the lease
 *            ends, the daemon says so, or the daemon dies;
 *  - command (src/volumes/command-driver.ts): configured commands (mount_cmd, umount_cmd,
 *            recover_cmd, fence_cmd, fence_check_cmd) for hosts without the module, and tests.
 *
 * Rules every driver keeps:
 *  - Methods are called by the node's Volume actors only, one call at a time per volume.
 *  - A failure throws VolumeError with a `code` and a one-line message (XFS's or the
 *    command's own words included), never a stack trace for the operator.
 *  - fence() never throws: it does what it can and reports how it went.
 *  - All times are on the daemon's injected Clock (monotonic ms), except `at` fields, which
 *    are wall-clock ms for display.
 */

export interface VolumeSpec {
  name: string;
  /** The shared disk, same device on every node. */
  device: string;
  mountpoint?: string;
  /** Extra mount options (comma separated), e.g. "noatime". */
  mountOptions?: string;
}

/** What the actor tells the driver about the ownership it acts for. */
export interface OwnershipContext {
  volume: VolumeSpec;
  /** This node's id. */
  node: number;
  /** Ownership generation (+1 per ownership change, never reused). */
  generation: number;
  /** Fencing token of this node's EX grant on the volume's resource. */
  token: number;
  /**
   * Set when this mount takes over from a dead owner: the mount replays its log. `of` owned
   * `generation`; fromGeneration..generation are the unclean generations this recovery covers
   * (more than one when a recovering node died too).
   */
  recovery?: { of: number; generation: number; fromGeneration: number };
}

export type VolumeErrorCode =
  | 'DEVICE_MISSING'      // the configured device does not exist on this node
  | 'MOUNTPOINT_MISSING'  // the mountpoint does not exist
  | 'MOUNT_FAILED'        // mount(8) or mount_cmd failed; message has the reason
  | 'UMOUNT_FAILED'       // still busy, or umount_cmd failed
  | 'RECOVER_FAILED'      // recover_cmd failed
  | 'FENCE_UNCONFIRMED'   // fence_check_cmd could not confirm the old owner is fenced
  | 'NO_MODULE'           // kernel driver without the mxfs module attached
  | 'DRIVER';             // anything else the driver could not do

export class VolumeError extends Error {
  /**
   * inDoubt: the call's outcome is unknown (a command past its timeout, or killed by a
   * signal): an umount that may or may not have unmounted.
   */
  constructor(readonly code: VolumeErrorCode, message: string, readonly inDoubt = false) {
    super(message);
    this.name = 'VolumeError';
  }
}

export interface FenceReport {
  /** True when this node's writes to the volume are known to have stopped. */
  fenced: boolean;
  cause: string;
  /** How long the fence took (new writes refused → in-flight drained), ms. */
  durationMs: number;
  detail?: string;
}

/** What the driver sees of one volume on this node right now. */
export interface DriverVolumeStatus {
  /** closed: not usable here; open: this node may write; fenced: writes refused until cleared. */
  gate: 'closed' | 'open' | 'fenced' | 'unknown';
  mounted: boolean;
  /** Kernel only: last fences with cause and duration, the kernel lease's state, remaining
   *  time and age (since the last renewal; null: never renewed), the module's fence bound. */
  fences?: Array<{ cause: string; at: number; durationMs: number; drained: boolean }>;
  leaseState?: string;
  leaseRemainingMs?: number | null;
  leaseAgeMs?: number | null;
  fenceBoundMs?: number;
  detail?: string;
}

export type DriverEvent =
  /** The volume was unmounted (or its device last closed) without the daemon asking. */
  | { type: 'released'; volume: string }
  /** The driver (kernel) fenced on its own: lease expiry, daemon loss. */
  | { type: 'fenced'; volume: string; report: FenceReport }
  /** Kernel gate-wait mode: a process wants to open the volume for writing (mount it here). */
  | { type: 'mount-wanted'; volume: string; reply(err?: VolumeError): void };

export interface VolumeDriver {
  readonly kind: 'kernel' | 'command';
  /**
   * Upper bound, in ms of this node's clock, between the end of this node's lease (the kernel
   * lease deadline, or quorum loss) and the moment its last write to the volume has landed or
   * failed. Kernel: read from the module (timer slack + drain bound). Command: fence_bound_ms.
   * Recorded in the volume record, so a node taking over waits for the old owner's bound.
   */
  fenceBoundMs(): number;
  /** At start: claim / check the device. Throws DEVICE_MISSING, NO_MODULE... */
  attach(v: VolumeSpec): Promise<void>;
  /**
   * Open the gate for this ownership and mount (XFS replays its log if the owner died). A
   * failure means nothing is mounted, except UMOUNT_FAILED: the mount's outcome is unknown and
   * could not be undone, so the actor keeps the volume (blocked) as possibly mounted.
   */
  mount(ctx: OwnershipContext): Promise<void>;
  /** After a recovery mount (command: recover_cmd). */
  afterRecovery(ctx: OwnershipContext): Promise<void>;
  /** Unmount and close the gate. */
  umount(ctx: OwnershipContext): Promise<void>;
  /** Stop this node's writes to the volume now. Never throws. */
  fence(volume: string, cause: string): Promise<FenceReport>;
  /** After a fence, once the operator or a rejoin clears it: unmount what is left, reset. */
  clearFence(volume: string): Promise<void>;
  /**
   * Positive proof, where the driver has a way to get it (fence_check_cmd), that `node` can no
   * longer write the volume. Resolves when confirmed; throws FENCE_UNCONFIRMED otherwise.
   * Drivers without such a check resolve at once (the time-based rule is the proof).
   */
  confirmFenced(volume: VolumeSpec, node: number, generation: number): Promise<void>;
  /**
   * Node-wide lease for every volume this node owns: writes are allowed until `deadline`
   * (Clock ms); null means the lease is lost now. Called whenever the cluster lease moves.
   * Kernel: LEASE_RENEW / LEASE_LOST to the module; command: nothing (fence() does the work).
   */
  setLease(deadline: number | null, reason?: string): void;
  status(volume: string): Promise<DriverVolumeStatus>;
  onEvent(handler: (ev: DriverEvent) => void): void;
  close(): Promise<void>;
}
