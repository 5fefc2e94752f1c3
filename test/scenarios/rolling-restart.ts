/** Restart every node in turn (clean SIGTERM), under load, waiting for the cluster after each. */
import { Scenario, warmUp } from '../../src/failover/scenario';

export const scenario: Scenario = {
  name: 'rolling-restart',
  description: 'SIGTERM + restart each of three nodes in turn while clients lock',
  nodes: 3,
  leaseMs: 1500,
  steps: [
    ...warmUp(),
    { do: 'rolling-restart', gapMs: 300 },
    { do: 'assert', until: { grants: 20 }, withinLeases: 2, text: 'grants continue after the last restart' },
    { do: 'sleep', ms: 1000 },
  ],
};
