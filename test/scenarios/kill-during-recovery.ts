/**
 * Five nodes: kill an r0 holder, then kill a second node 0.75 lease later, while the
 * survivors are still handling the first failure (its lease has not run out yet, so the
 * view change and lock recovery for it are ahead). Whatever view change or recovery is in
 * flight when the second node dies must not wait for it forever, nor complete with it as
 * a member: the survivors must end in a view without both, and serve again.
 *
 * Why not "kill while status says 'recovering'": on loopback the lock recovery takes a few
 * ms, too short to hit by polling. Stretching it with {do: 'delay'} is the way once mxfsd
 * applies delay/drop to outgoing peer traffic (today only partition is applied).
 */
import type { Scenario } from '../../src/failover/scenario';

export const scenario: Scenario = {
  name: 'kill-during-recovery',
  description: 'kill -9 an r0 holder, then a second node while the first failure is being handled',
  nodes: 5,
  leaseMs: 2000,
  steps: [
    { do: 'start' },
    { do: 'clients', count: 10 },
    { do: 'wait', until: { grants: 30 }, withinMs: 5000 },
    { do: 'kill', node: { holderOf: 'r0' }, as: 'first' },
    { do: 'sleep', ms: 1500 },
    { do: 'kill', node: { random: true, not: ['first'] }, as: 'second' },
    { do: 'assert', until: { recovered: true }, withinLeases: 4, withinMs: 2000, text: 'the survivors recover without both nodes' },
    { do: 'assert', until: { grants: 10 }, withinLeases: 2, text: 'grants resume' },
    { do: 'restart', node: 'first' },
    { do: 'restart', node: 'second' },
    { do: 'wait', until: { formed: true }, withinLeases: 6, withinMs: 4000 },
    { do: 'sleep', ms: 1500 },
  ],
};
