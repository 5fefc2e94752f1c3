/** The owner's mxfsd is stopped past its lease while its applications keep writing. */
import { Scenario, volumeWarmUp } from '../../src/failover/scenario';

export const scenario: Scenario = {
  name: 'volume-pause-owner',
  description: "SIGSTOP of the owner's mxfsd for 3 leases: a standby takes over; the old owner's late writes are refused by generation; resumed, it fences itself and rejoins",
  nodes: 3,
  leaseMs: 2000,
  volumes: [{ name: 'data' }],
  steps: [
    ...volumeWarmUp({ owner: 2, standbys: [1, 3] }),
    { do: 'pause', node: 2, as: 'victim' },
    { do: 'assert', until: { volumeMounted: 'data', not: ['victim'], generationAtLeast: 2 }, withinLeases: 4, withinMs: 3000, text: 'a standby takes over from the stopped owner' },
    { do: 'resume', node: 'victim' },
    { do: 'wait', until: { formed: true }, withinLeases: 6, withinMs: 4000 },
    { do: 'sleep', ms: 1500 },
  ],
};
