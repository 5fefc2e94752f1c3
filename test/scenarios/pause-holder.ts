/**
 * The "GC pause" of a whole node: SIGSTOP the node of an r0 holder for longer than its lease.
 * Its clients must declare their locks lost (keepalive bound) before the others are granted
 * r0, and the node must not let anything through when it wakes up fenced.
 */
import type { Scenario } from '../../src/failover/scenario';

export const scenario: Scenario = {
  name: 'pause-holder',
  description: 'SIGSTOP the node of an r0 holder for 2.5 leases, then SIGCONT',
  nodes: 3,
  leaseMs: 2000,
  steps: [
    { do: 'start' },
    // Holds longer than the client timeout (1200 ms), and a holder picked right after its
    // grant: it is still holding when its keepalive bound runs out, so it must see the loss.
    { do: 'clients', count: 4, resources: 1, modes: { EX: 3, PR: 1 }, holdMs: [1800, 2500] },
    { do: 'wait', until: { grants: 2 }, withinMs: 8000 },
    { do: 'pause', node: { holderOf: 'r0', grantedWithinMs: 200 }, as: 'victim' },
    { do: 'assert', until: { lost: 1 }, withinLeases: 1, text: 'the paused node\'s holder learns its lock is lost' },
    { do: 'assert', until: { recovered: true }, withinLeases: 4, withinMs: 2000, text: 'survivors recover without the paused node' },
    { do: 'sleep', ms: 1000 },
    { do: 'resume', node: 'victim' },
    { do: 'wait', until: { formed: true }, withinLeases: 6, withinMs: 4000 },
    { do: 'sleep', ms: 1500 },
  ],
};
