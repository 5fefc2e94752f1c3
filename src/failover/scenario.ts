/**
 * The scenario format: a scenario is a small TypeScript module in test/scenarios/ exporting
 * `scenario`, a plain object whose `steps` run in order. Steps are data (no callbacks), so a
 * scenario reads like the script of the failure it stages. See docs/failover-testing.md.
 */
import type { ModeName } from '../dlm/modes';
import type { AbuseKind } from './abuse';

/**
 * Which node a step acts on:
 *   3                     node 3
 *   'victim'              the node bound earlier by a step with `as: 'victim'`
 *   { holderOf: 'r0' }    the node of a client holding r0 in PW/EX right now (waits up to 10 s);
 *                         with grantedWithinMs: one granted at most that long ago
 *   { masterOf: 'r0' }    the master of r0 among the current members (rendezvous hash)
 *   { random: true }      a running node picked by the seeded PRNG (not: exclude these)
 */
export type NodeRef = number | string | { holderOf: string; grantedWithinMs?: number } | { masterOf: string } | { random: true; not?: NodeRef[] }
  /** Volumes: the node that has the volume's newest generation mounted (in the volume store), or the one held in its recovery step. */
  | { ownerOf: string } | { recoveringOf: string };

/** Conditions for `wait` and `assert`. */
export type Condition =
  /** Every running node is 'running' in one epoch whose members are exactly the running nodes. */
  | { formed: true }
  /** The cluster moved to an epoch newer than at the step's start (or than before the last fault) and a quorum runs in it. */
  | { recovered: true }
  /** Some running node reports 'recovering' (status is polled every 25 ms). */
  | { recoveryStarted: true }
  /** At least n held locks reported lost to their clients since the step started. */
  | { lost: number }
  /** At least n grants (over all clients) since the step started. */
  | { grants: number; resource?: string }
  /** A node reports this cluster state. */
  | { node: NodeRef; state: string }
  /** The volume's newest generation is mounted (not by these nodes; with generationAtLeast, that generation or a later one). */
  | { volumeMounted: string; not?: NodeRef[]; generationAtLeast?: number }
  /** A node's recovery of the volume is being held by the store (hold-recovery). */
  | { recoveryHeld: string };

export type Step =
  /** Start nodes (default: all) and wait until they form a cluster (unless wait: false). */
  | { do: 'start'; nodes?: NodeRef[]; wait?: boolean; withinMs?: number }
  /** Start workload clients, spread round-robin over the running nodes (or on `nodes`). */
  | { do: 'clients'; count: number; resources?: number; modes?: Partial<Record<ModeName, number>>; convertFraction?: number; holdMs?: [number, number]; thinkMs?: [number, number]; nodes?: NodeRef[] }
  | { do: 'stop-clients' }
  | { do: 'sleep'; ms: number }
  | { do: 'kill'; node: NodeRef; as?: string }
  | { do: 'restart'; node: NodeRef; wait?: boolean }
  /** SIGSTOP; with ms, SIGCONT after ms. */
  | { do: 'pause'; node: NodeRef; ms?: number; as?: string }
  | { do: 'resume'; node: NodeRef }
  /** Freeze the workload client holding `resource` in PW/EX between its validity check and its write, for ms. */
  | { do: 'gc-pause'; resource: string; ms: number }
  /** Cut the cluster into sides: every node drops all peer traffic to and from the other sides. */
  | { do: 'partition'; sides?: NodeRef[][]; isolate?: NodeRef; as?: string }
  | { do: 'heal' }
  | { do: 'drop'; fraction: number; nodes?: NodeRef[] }
  | { do: 'delay'; ms: number; nodes?: NodeRef[] }
  /** Cut the links between the nodes of each pair only (a non-transitive partition: both still reach the others). */
  | { do: 'cut'; pairs: NodeRef[][] }
  /** Close every peer link of these nodes once (they reconnect at once; in-flight messages are lost). */
  | { do: 'reset-links'; nodes?: NodeRef[] }
  /** Restart every node in turn (SIGTERM, or kill -9 with hard: true), waiting for the cluster to re-form after each. */
  | { do: 'rolling-restart'; hard?: boolean; gapMs?: number }
  /**
   * Abusive clients (src/failover/abuse.ts), one of each kind (default: all four), on the
   * nodes in turn, each in its own process, for durationMs (flood-inspect, bad-fields,
   * never-read; pipeline-disconnect sends `pipeline` lock requests once). The step ends when
   * they have all finished, then requires: no node lost quorum or changed epoch, no workload
   * client lost a lock, every abusive request got a clear answer (abuse.ts, `unclear`).
   */
  | { do: 'abuse'; kinds?: AbuseKind[]; nodes?: NodeRef[]; durationMs?: number; pipeline?: number }
  /** Random faults for durationMs, from the seeded PRNG; each fault is healed before the next. */
  | { do: 'nemesis'; durationMs: number; faults?: NemesisFault[]; gapMs?: [number, number] }
  /** Wait until the condition holds; the run stops with a violation if it does not within the bound. */
  | { do: 'wait'; until: Condition; withinMs?: number; withinLeases?: number }
  /** Like wait, but the run goes on after a failed assertion (recorded as a violation). */
  | { do: 'assert'; until: Condition; withinMs?: number; withinLeases?: number; text?: string }
  /**
   * A volume request on a node (mxfsctl mount/umount/standby). mount waits for ownership in the
   * background unless `await` is set; the outcome is recorded as a step marker.
   */
  | { do: 'volume'; op: 'mount' | 'umount' | 'standby'; node: NodeRef; volume: string; await?: boolean }
  /** The volume store holds every recover command of the volume (a node can be killed mid-recovery) / lets them go. */
  | { do: 'hold-recovery'; volume: string }
  | { do: 'release-recovery'; volume: string };

export type NemesisFault = 'kill' | 'pause' | 'partition' | 'cut' | 'drop' | 'delay' | 'reset-links' | 'gc-pause' | 'kill-master';

export interface Scenario {
  name: string;
  description: string;
  /** Default node count (the CLI's --nodes overrides it). */
  nodes: number;
  /** Lease timeout of the cluster, ms (short in CI: 1500–3000). */
  leaseMs: number;
  /** Independent single-node daemons instead of a cluster (harness self-tests only). */
  standalone?: boolean;
  /** Resource names are r0..r(n-1); default 3. */
  resources?: number;
  /**
   * Command-mode volumes on every node, backed by one VolumeStore (src/failover/volume-store.ts)
   * whose writers simulate each node's applications; the checker's volume rules judge them.
   */
  volumes?: Array<{ name: string; failover?: 'auto' | 'manual'; fenceBoundMs?: number }>;
  /**
   * Record every node's trace for the report (default true). Off where recording would
   * itself be the load (every actor message of 100 000 pipelined requests): mxfsd runs
   * untraced by default.
   */
  trace?: boolean;
  steps: Step[];
}

/**
 * How long an opening may take to get the workload going. Generous: it is a precondition, not
 * a check (a loaded 2-core machine took more than 5 s for 30 grants at a 1.5 s lease, and the
 * run failed before its fault); a wait ends as soon as its condition holds.
 */
const WARM_UP_MS = 60000;

/** The usual opening: start every node, start `clients` workload clients, wait for `grants` grants. */
export function warmUp(clients = 6, grants = 20): Step[] {
  return [{ do: 'start' }, { do: 'clients', count: clients }, { do: 'wait', until: { grants }, withinMs: WARM_UP_MS }];
}

/** The usual opening of a volume scenario: start, a workload, `owner` mounts `volume`, the others are standbys. */
export function volumeWarmUp(o: { owner: number; standbys: number[]; volume?: string; clients?: number }): Step[] {
  const volume = o.volume ?? 'data';
  return [
    { do: 'start' },
    { do: 'clients', count: o.clients ?? 3 },
    { do: 'volume', op: 'mount', node: o.owner, volume, await: true },
    ...o.standbys.map((n): Step => ({ do: 'volume', op: 'standby', node: n, volume, await: true })),
    { do: 'wait', until: { grants: 10 }, withinMs: WARM_UP_MS },
  ];
}

/** The bound of a wait/assert step, in ms. */
export function boundOf(s: { withinMs?: number; withinLeases?: number }, leaseMs: number, dflt: number): number {
  if (s.withinMs === undefined && s.withinLeases === undefined) return dflt;
  return (s.withinMs ?? 0) + (s.withinLeases ?? 0) * leaseMs;
}

export function describeStep(s: Step): string {
  const { do: what, ...rest } = s;
  const args = Object.entries(rest).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ');
  return args ? `${what} ${args}` : what;
}
