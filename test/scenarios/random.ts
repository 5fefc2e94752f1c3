/** The randomized nemesis: a seeded mix of kills, pauses, partitions, message loss and delay, GC pauses. */
import { Scenario, warmUp } from '../../src/failover/scenario';

export const scenario: Scenario = {
  name: 'random',
  description: 'random faults for 20 s (reproducible by --seed), each healed before the next',
  nodes: 3,
  leaseMs: 1500,
  steps: [
    ...warmUp(),
    { do: 'nemesis', durationMs: 20000 },
    { do: 'wait', until: { formed: true }, withinLeases: 6, withinMs: 4000 },
    { do: 'assert', until: { grants: 20 }, withinLeases: 3, text: 'grants continue after the nemesis' },
    { do: 'sleep', ms: 1000 },
  ],
};
