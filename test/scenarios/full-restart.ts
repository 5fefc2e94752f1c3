/**
 * Every node killed at once and restarted (a power loss of the whole cluster). Fencing
 * tokens handed out after the restart must still be above every token handed out before
 * it, or storage fenced by tokens would refuse every new holder (token-order violations,
 * and the store rejects their writes).
 */
import { Scenario, warmUp } from '../../src/failover/scenario';

export const scenario: Scenario = {
  name: 'full-restart',
  description: 'kill -9 all three nodes at once under load, restart them all',
  nodes: 3,
  leaseMs: 1500,
  steps: [
    ...warmUp(6, 30),
    { do: 'kill', node: 1 },
    { do: 'kill', node: 2 },
    { do: 'kill', node: 3 },
    { do: 'sleep', ms: 500 },
    { do: 'restart', node: 1 },
    { do: 'restart', node: 2 },
    { do: 'restart', node: 3 },
    { do: 'wait', until: { formed: true }, withinLeases: 6, withinMs: 4000 },
    { do: 'assert', until: { grants: 20 }, withinLeases: 2, text: 'grants resume after the restart' },
    { do: 'sleep', ms: 1000 },
  ],
};
