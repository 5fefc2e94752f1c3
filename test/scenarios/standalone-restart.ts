/**
 * One standalone node (no peers): kill -9 under load and restart. Exercises the harness end
 * to end (clients, lost locks, reconnects, the fenced store, final lock listing) without the
 * cluster layer.
 */
import { Scenario, warmUp } from '../../src/failover/scenario';

export const scenario: Scenario = {
  name: 'standalone-restart',
  description: 'a single standalone mxfsd killed with -9 under load, then restarted',
  nodes: 1,
  leaseMs: 1500,
  steps: [
    ...warmUp(4),
    { do: 'kill', node: 1, as: 'victim' },
    { do: 'sleep', ms: 500 },
    { do: 'restart', node: 'victim', wait: true },
    { do: 'assert', until: { grants: 20 }, withinLeases: 2, text: 'clients reconnect and lock again' },
    { do: 'gc-pause', resource: 'r0', ms: 2500 },
    { do: 'sleep', ms: 1000 },
  ],
};
