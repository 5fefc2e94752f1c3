/** kill -9 the node of a client holding r0 in PW/EX; the survivors recover and serve every waiter. */
import { Scenario, warmUp } from '../../src/failover/scenario';

export const scenario: Scenario = {
  name: 'kill-holder',
  description: 'kill -9 a node whose client holds r0 in PW/EX, under load; restart it later',
  nodes: 3,
  leaseMs: 2000,
  steps: [
    ...warmUp(),
    { do: 'kill', node: { holderOf: 'r0' }, as: 'victim' },
    { do: 'assert', until: { recovered: true }, withinLeases: 4, withinMs: 2000, text: 'survivors recover' },
    { do: 'assert', until: { grants: 10 }, withinLeases: 2, text: 'grants resume after recovery' },
    { do: 'sleep', ms: 1000 },
    { do: 'restart', node: 'victim' },
    { do: 'wait', until: { formed: true }, withinLeases: 6, withinMs: 4000 },
    { do: 'sleep', ms: 1500 },
  ],
};
