import { Scenario, warmUp } from '../../src/failover/scenario';

/**
 * Issue 15: no client can make a node lose its lease. While the usual checked workload runs,
 * four abusive clients, each in its own process: one floods `locks` requests (every one fans
 * out to every master), one pipelines 100 000 lock requests and disconnects (its node then
 * purges whatever it was granted), one sends oversized LVBs (to a local and a remote master)
 * and invalid fields, one never reads its replies. The abuse step then requires that no node
 * lost quorum or changed epoch, that no workload client lost a lock, and that every abusive
 * request got a clear answer; the checker sees the rest (no overlap, no leaked lock — the
 * purge must have reached every resource — and every workload request served in time).
 */
export const scenario: Scenario = {
  name: 'abuse',
  description: 'flood of inspection, 100 000 pipelined locks then disconnect, bad fields, a client that never reads — under the checked workload; no node may lose quorum, no bystander a lock',
  nodes: 3,
  leaseMs: 3000,
  // Untraced, as mxfsd runs by default: recording every message of the abuse is heavier than
  // the abuse (the trace file's writes alone stalled a main thread for seconds on 2 CPUs).
  trace: false,
  steps: [
    ...warmUp(6, 20),
    { do: 'abuse', durationMs: 15000, pipeline: 100000 },
    { do: 'wait', until: { grants: 20 }, withinMs: 20000 },
    { do: 'sleep', ms: 1000 },
  ],
};
