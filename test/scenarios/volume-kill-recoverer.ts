/** The owner dies; the standby that recovers it dies in its recovery step; the last standby redoes and completes it. */
import { Scenario, volumeWarmUp } from '../../src/failover/scenario';

export const scenario: Scenario = {
  name: 'volume-kill-recoverer',
  description: 'owner killed, then the recovering standby killed mid-recovery (its recover step held); the first owner restarts so a majority exists; the last standby recovers both generations once',
  nodes: 3,
  leaseMs: 2000,
  volumes: [{ name: 'data' }],
  steps: [
    ...volumeWarmUp({ owner: 1, standbys: [2, 3] }),
    { do: 'hold-recovery', volume: 'data' },
    { do: 'kill', node: { ownerOf: 'data' }, as: 'first' },
    { do: 'wait', until: { recoveryHeld: 'data' }, withinLeases: 4, withinMs: 3000 },
    { do: 'kill', node: { recoveringOf: 'data' }, as: 'second' },
    { do: 'restart', node: 'first' },
    { do: 'release-recovery', volume: 'data' },
    { do: 'assert', until: { volumeMounted: 'data', not: ['first', 'second'], generationAtLeast: 3 }, withinLeases: 6, withinMs: 5000, text: 'the last standby recovers the volume' },
    { do: 'restart', node: 'second', wait: true },
    { do: 'sleep', ms: 1000 },
  ],
};
