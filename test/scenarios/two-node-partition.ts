/** A two-node cluster split in two: only the tiebreaker side may go on granting. */
import { Scenario, warmUp } from '../../src/failover/scenario';

export const scenario: Scenario = {
  name: 'two-node-partition',
  description: 'partition {1}|{2} in a two-node cluster (tiebreaker = 1) for 3 leases, then heal',
  nodes: 2,
  leaseMs: 2000,
  steps: [
    ...warmUp(4),
    { do: 'partition', sides: [[1], [2]] },
    { do: 'assert', until: { recovered: true }, withinLeases: 4, withinMs: 2000, text: 'one side (the tiebreaker) runs' },
    { do: 'sleep', ms: 3000 },
    { do: 'heal' },
    { do: 'wait', until: { formed: true }, withinLeases: 6, withinMs: 4000 },
    { do: 'sleep', ms: 1500 },
  ],
};
