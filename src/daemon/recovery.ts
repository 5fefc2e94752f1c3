/**
 * Recovery: the lock side of a cluster recovery as named phases, one actor per router.
 *
 * Owns: the phase machine (`RecoveryPhases`, pure: which phase this node's recovery is in, for
 * which epoch and run, and which transitions are legal). Takes: one message per transition
 * (`RecoveryMsg`), each naming its epoch, so the trace records every phase change of every
 * recovery with its view (docs/tracing.md). Sends: nothing itself; for an accepted transition
 * it calls the router's step for the phase (`LockRouter.onPhase`), which does the work a slice
 * per turn and sends the next transition when it is done. The first phase is the exception:
 * the router asks the sessions for their records in the view's own turn (as it always did),
 * and `recovery.collect` records that it did.
 *
 * Phases of the recovery of epoch E on this node:
 *   collecting  the sessions hand over their records (a run: quorum regained in the same
 *               epoch starts a new run from here)
 *   sending     the records go to their masters in batches, then `recDone` to every member
 *   waiting     this node's part is done; waiting for `recDone` from every other member
 *   rebuilding  every record is in: the resources this node masters are rebuilt
 *   replaying   granting resumed; the operations held meanwhile are replayed in order
 *   done        the held operations are replayed (or held on: quorum lost meanwhile)
 *   abandoned   a newer view took over between two slices
 *
 * Safety does not rest on this actor: the router decides synchronously (a newer view resets
 * the lock table and drops the old recovery's state at once; every slice loop checks that its
 * recovery is still the current one). A transition the machine does not allow — a late
 * message of an abandoned recovery or of a superseded run — is ignored and counted.
 */
import type { ActorSystem, Ref } from '../actors/actor';

export type RecoveryPhase = 'idle' | 'collecting' | 'sending' | 'waiting' | 'rebuilding' | 'replaying' | 'done' | 'abandoned';

/** One message per transition; `note` is a short summary the trace records (members, counts). */
export type RecoveryMsg =
  | { type: 'recovery.collect'; epoch: number; run: number; note: string }
  | { type: 'recovery.send'; epoch: number; run: number; note: string }
  | { type: 'recovery.wait'; epoch: number; run: number; note: string }
  | { type: 'recovery.rebuild'; epoch: number; note: string }
  | { type: 'recovery.replay'; epoch: number; note: string }
  | { type: 'recovery.done'; epoch: number; note: string }
  | { type: 'recovery.abandon'; epoch: number; note: string };

export const RECOVERY_MSG_TYPES: readonly RecoveryMsg['type'][] = [
  'recovery.collect', 'recovery.send', 'recovery.wait', 'recovery.rebuild', 'recovery.replay', 'recovery.done', 'recovery.abandon',
];

const PHASE_OF: Readonly<Record<RecoveryMsg['type'], RecoveryPhase>> = {
  'recovery.collect': 'collecting', 'recovery.send': 'sending', 'recovery.wait': 'waiting',
  'recovery.rebuild': 'rebuilding', 'recovery.replay': 'replaying', 'recovery.done': 'done', 'recovery.abandon': 'abandoned',
};

/**
 * Legal transitions within one epoch (a `collect` of a newer epoch starts from anything).
 * `collecting` again from the first three: a new run after quorum came back in the same epoch.
 */
const NEXT: Readonly<Record<RecoveryPhase, readonly RecoveryPhase[]>> = {
  idle: [],
  collecting: ['sending', 'collecting', 'abandoned'],
  sending: ['waiting', 'collecting', 'abandoned'],
  waiting: ['rebuilding', 'collecting', 'abandoned'],
  rebuilding: ['replaying', 'abandoned'],
  replaying: ['done', 'abandoned'],
  done: [],
  abandoned: [],
};

/** The pure phase machine: where this node's recovery is, and whether a transition is legal. */
export class RecoveryPhases {
  phase: RecoveryPhase = 'idle';
  epoch = 0;
  run = 0;
  since = 0;
  /** Transitions refused (late messages of an abandoned recovery or a superseded run). */
  ignored = 0;
  /** Completed and abandoned recoveries, for status. */
  completed = 0;
  abandoned = 0;

  /** Applies m if legal; returns whether it was. */
  apply(m: RecoveryMsg, now: number): boolean {
    const to = PHASE_OF[m.type];
    const newer = m.epoch > this.epoch && m.type === 'recovery.collect';
    const legal = newer || (m.epoch === this.epoch && NEXT[this.phase].includes(to) && this.runMatches(m));
    if (!legal) { this.ignored++; return false; }
    if (to === 'done') this.completed++;
    if (to === 'abandoned') this.abandoned++;
    this.phase = to;
    this.epoch = m.epoch;
    if ('run' in m) this.run = m.run;
    this.since = now;
    return true;
  }

  /** A send/wait must belong to the current run; a collect must start a later one. */
  private runMatches(m: RecoveryMsg): boolean {
    if (m.type === 'recovery.collect') return m.run > this.run;
    if (m.type === 'recovery.send' || m.type === 'recovery.wait') return m.run === this.run;
    return true;
  }

  /** Still running (neither finished nor abandoned nor never started). */
  get open(): boolean { return this.phase !== 'idle' && this.phase !== 'done' && this.phase !== 'abandoned'; }
}

/**
 * Spawns the Recovery actor over `phases` (shared with the router, which reads the phase
 * synchronously for status). `step` runs the accepted transition's work.
 */
export function spawnRecovery(sys: ActorSystem, phases: RecoveryPhases, now: () => number, step: (m: RecoveryMsg) => void): Ref<RecoveryMsg> {
  return sys.spawn<RecoveryPhases, RecoveryMsg>(undefined, 'recovery', {
    init: () => phases,
    handle: (s, m) => {
      if (s.apply(m, now())) step(m);
      return s;
    },
    // The phases live on (the router reads them); a step that threw is logged by the layer.
    onCrash: () => 'resume',
    leaf: true,
  });
}
