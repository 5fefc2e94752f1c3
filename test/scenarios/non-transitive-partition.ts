/**
 * A non-transitive partition: the link between nodes 1 and 3 is cut, every other link stays
 * up, so each of them still has a majority with node 2. Without a rule, membership looks
 * healthy while lock traffic between 1 and 3 hangs. MXFS's rule: the higher id (3), which
 * cannot hear a lower one that others hear, yields: it goes silent and self-fences, [1,2]
 * commit a view without it and serve; when the cut heals, 3 rejoins.
 */
import { Scenario, warmUp } from '../../src/failover/scenario';

export const scenario: Scenario = {
  name: 'non-transitive-partition',
  description: 'cut only the 1-3 link: node 3 yields, [1,2] go on, 3 rejoins after healing',
  nodes: 3,
  leaseMs: 1500,
  steps: [
    ...warmUp(),
    { do: 'cut', pairs: [[1, 3]] },
    { do: 'assert', until: { node: 3, state: 'no-quorum' }, withinLeases: 3, text: 'node 3 yields and fences' },
    { do: 'assert', until: { recovered: true }, withinLeases: 5, text: '[1,2] commit a view without node 3' },
    { do: 'assert', until: { grants: 20 }, withinLeases: 2, text: 'grants continue on [1,2]' },
    { do: 'sleep', ms: 1500 },
    { do: 'heal' },
    { do: 'wait', until: { formed: true }, withinLeases: 6, withinMs: 4000 },
    { do: 'assert', until: { grants: 20 }, withinLeases: 2, text: 'grants continue after the rejoin' },
    { do: 'sleep', ms: 1000 },
  ],
};
