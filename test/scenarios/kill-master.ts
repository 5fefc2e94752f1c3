/** kill -9 the master of r0 (which may hold no lock itself): its resources are rebuilt elsewhere. */
import { Scenario, warmUp } from '../../src/failover/scenario';

export const scenario: Scenario = {
  name: 'kill-master',
  description: 'kill -9 the node mastering r0 while clients on the other nodes use it',
  nodes: 3,
  leaseMs: 2000,
  steps: [
    ...warmUp(),
    { do: 'kill', node: { masterOf: 'r0' }, as: 'victim' },
    { do: 'assert', until: { recovered: true }, withinLeases: 4, withinMs: 2000, text: 'survivors recover' },
    { do: 'assert', until: { grants: 5, resource: 'r0' }, withinLeases: 2, text: 'r0 is granted again under a new master' },
    { do: 'restart', node: 'victim' },
    { do: 'wait', until: { formed: true }, withinLeases: 6, withinMs: 4000 },
    { do: 'sleep', ms: 1500 },
  ],
};
