/** Five nodes, two die at once (one of them an r0 holder): the three survivors still have quorum. */
import { Scenario, warmUp } from '../../src/failover/scenario';

export const scenario: Scenario = {
  name: 'double-failure',
  description: 'kill -9 two of five nodes at once, under load; restart both',
  nodes: 5,
  leaseMs: 2000,
  steps: [
    ...warmUp(10, 30),
    { do: 'kill', node: { holderOf: 'r0' }, as: 'first' },
    { do: 'kill', node: { random: true, not: ['first'] }, as: 'second' },
    { do: 'assert', until: { recovered: true }, withinLeases: 4, withinMs: 2000, text: 'three survivors recover' },
    { do: 'assert', until: { grants: 10 }, withinLeases: 2, text: 'grants resume' },
    { do: 'restart', node: 'first' },
    { do: 'restart', node: 'second' },
    { do: 'wait', until: { formed: true }, withinLeases: 6, withinMs: 4000 },
    { do: 'sleep', ms: 1500 },
  ],
};
