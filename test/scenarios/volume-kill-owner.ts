/** kill -9 (power loss) of a volume's owner under load: one standby takes over and recovers it once. */
import { Scenario, volumeWarmUp } from '../../src/failover/scenario';

export const scenario: Scenario = {
  name: 'volume-kill-owner',
  description: 'power loss of the node that owns a volume; one standby recovers it (generation +1), the lock workload goes on; the owner comes back as a standby',
  nodes: 3,
  leaseMs: 2000,
  volumes: [{ name: 'data' }],
  steps: [
    ...volumeWarmUp({ owner: 1, standbys: [2, 3], clients: 4 }),
    { do: 'kill', node: { ownerOf: 'data' }, as: 'victim' },
    { do: 'assert', until: { volumeMounted: 'data', not: ['victim'], generationAtLeast: 2 }, withinLeases: 4, withinMs: 3000, text: 'a standby recovers the volume' },
    { do: 'assert', until: { grants: 10 }, withinLeases: 2, text: 'grants go on' },
    { do: 'restart', node: 'victim', wait: true },
    { do: 'volume', op: 'standby', node: 'victim', volume: 'data', await: true },
    { do: 'sleep', ms: 1000 },
  ],
};
