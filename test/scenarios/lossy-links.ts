/**
 * Three nodes under message loss and link resets that are too short to change the
 * membership: 20% of every node's outgoing peer messages are dropped and every link is
 * reset three times. Lock traffic lost this way is sent again (the DLM channel), so grants
 * go on during the faults, not only after them, and nothing is granted twice.
 */
import { Scenario, warmUp } from '../../src/failover/scenario';

export const scenario: Scenario = {
  name: 'lossy-links',
  description: '20% peer message loss plus link resets on every node; grants continue during the faults',
  nodes: 3,
  leaseMs: 1500,
  steps: [
    ...warmUp(),
    { do: 'drop', fraction: 0.2 },
    { do: 'reset-links' },
    { do: 'sleep', ms: 400 },
    { do: 'reset-links' },
    { do: 'sleep', ms: 400 },
    { do: 'reset-links' },
    { do: 'assert', until: { grants: 30 }, withinLeases: 4, text: 'grants continue while messages are lost' },
    { do: 'heal' },
    { do: 'assert', until: { grants: 20 }, withinLeases: 2, text: 'grants continue after healing' },
    { do: 'sleep', ms: 1000 },
  ],
};
