/**
 * One standalone node (no peers): a client holding r0 is frozen between its validity check
 * and its write for longer than the client timeout. mxfsd cuts it off and grants r0 to the
 * next waiter; the zombie write must be rejected by the fenced store. Exercises the harness
 * end to end without the cluster layer.
 */
import type { Scenario } from '../../src/failover/scenario';

export const scenario: Scenario = {
  name: 'standalone-gc-pause',
  description: 'a single mxfsd; freeze an r0 holder between check and write past the client timeout',
  nodes: 1,
  leaseMs: 1500,
  resources: 2,
  steps: [
    { do: 'start' },
    { do: 'clients', count: 4, modes: { EX: 3, PR: 1 } },
    { do: 'wait', until: { grants: 20 }, withinMs: 5000 },
    { do: 'gc-pause', resource: 'r0', ms: 2500 },
    { do: 'assert', until: { grants: 20 }, withinLeases: 2, text: 'the others keep locking' },
    { do: 'sleep', ms: 500 },
  ],
};
