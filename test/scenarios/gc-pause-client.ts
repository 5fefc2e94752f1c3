/**
 * The Kleppmann case: a client holding r0 in PW/EX freezes between its validity check and
 * its write (a GC pause) for longer than the lease, then writes with its old token. The
 * daemon must have cut it off and granted r0 to others; the fenced store must reject the
 * zombie write (it carries a token lower than the newer holder's).
 */
import type { Scenario } from '../../src/failover/scenario';

export const scenario: Scenario = {
  name: 'gc-pause-client',
  description: 'freeze an r0 holder between check and write for 2 leases; its write must be rejected',
  nodes: 3,
  leaseMs: 2000,
  resources: 1,
  steps: [
    { do: 'start' },
    { do: 'clients', count: 4, modes: { EX: 1 } },
    { do: 'wait', until: { grants: 10 }, withinMs: 5000 },
    { do: 'gc-pause', resource: 'r0', ms: 4000 },
    { do: 'assert', until: { grants: 5 }, withinLeases: 2, text: 'others keep getting r0' },
    { do: 'sleep', ms: 1000 },
  ],
};
