/**
 * Five nodes: kill an r0 holder; while the survivors run the lock recovery for it, kill a
 * second node. The recovery in flight must neither wait for the second node forever nor
 * complete with it as a member: the survivors must end in a view without both, and serve.
 *
 * On loopback a lock recovery takes a few ms, too short to hit by polling status, so every
 * node delays its outgoing peer messages by 250 ms first (leases included; the lease of
 * 2000 ms leaves room for that): the recovery records and barriers then take at least that
 * long, and the second kill lands while a node reports 'recovering'.
 */
import { Scenario, warmUp } from '../../src/failover/scenario';

export const scenario: Scenario = {
  name: 'kill-during-recovery',
  description: 'kill -9 an r0 holder, then a second node while the survivors are recovering from the first',
  nodes: 5,
  leaseMs: 2000,
  steps: [
    ...warmUp(10, 30),
    { do: 'delay', ms: 250 },
    { do: 'sleep', ms: 500 },
    { do: 'kill', node: { holderOf: 'r0' }, as: 'first' },
    { do: 'wait', until: { recoveryStarted: true }, withinLeases: 4 },
    { do: 'kill', node: { random: true, not: ['first'] }, as: 'second' },
    { do: 'heal' },
    { do: 'assert', until: { recovered: true }, withinLeases: 4, withinMs: 2000, text: 'the survivors recover without both nodes' },
    { do: 'assert', until: { grants: 10 }, withinLeases: 2, text: 'grants resume' },
    { do: 'restart', node: 'first' },
    { do: 'restart', node: 'second' },
    { do: 'wait', until: { formed: true }, withinLeases: 6, withinMs: 4000 },
    { do: 'sleep', ms: 1500 },
  ],
};
