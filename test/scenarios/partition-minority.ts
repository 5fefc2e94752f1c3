/** Partition {holder's node} | {the rest}: the minority self-fences, the majority goes on; then heal. */
import { Scenario, warmUp } from '../../src/failover/scenario';

export const scenario: Scenario = {
  name: 'partition-minority',
  description: 'isolate the node of an r0 holder from the other two for 3 leases, then heal',
  nodes: 3,
  leaseMs: 2000,
  steps: [
    ...warmUp(),
    { do: 'partition', isolate: { holderOf: 'r0' }, as: 'minority' },
    { do: 'assert', until: { recovered: true }, withinLeases: 4, withinMs: 2000, text: 'the majority recovers' },
    { do: 'assert', until: { node: 'minority', state: 'no-quorum' }, withinLeases: 3, text: 'the minority knows it has no quorum' },
    { do: 'sleep', ms: 2000 },
    { do: 'heal' },
    { do: 'wait', until: { formed: true }, withinLeases: 6, withinMs: 4000 },
    { do: 'sleep', ms: 1500 },
  ],
};
