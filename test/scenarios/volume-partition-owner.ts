/** The owner is cut off from both other nodes: it loses quorum and fences; the majority's standby takes over. */
import { Scenario, volumeWarmUp } from '../../src/failover/scenario';

export const scenario: Scenario = {
  name: 'volume-partition-owner',
  description: 'the owner is isolated from the majority: it self-fences its volume, a standby on the majority side recovers it; heal, the old owner rejoins as a standby',
  nodes: 3,
  leaseMs: 2000,
  volumes: [{ name: 'data', fenceBoundMs: 500 }],
  steps: [
    ...volumeWarmUp({ owner: 3, standbys: [1, 2] }),
    { do: 'partition', isolate: 3, as: 'cut' },
    { do: 'assert', until: { volumeMounted: 'data', not: ['cut'], generationAtLeast: 2 }, withinLeases: 4, withinMs: 3000, text: 'the majority side recovers the volume' },
    { do: 'heal' },
    { do: 'wait', until: { formed: true }, withinLeases: 6, withinMs: 4000 },
    { do: 'volume', op: 'standby', node: 'cut', volume: 'data', await: true },
    { do: 'sleep', ms: 1500 },
  ],
};
