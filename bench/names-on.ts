/** Names for the 3-node benchmarks (bench/remote-pair.ts, bench/trace-alloc.ts) that one node masters. */
import { rendezvousOwner } from '../src/cluster/rendezvous';

/** The members of the benchmarks' clusters. */
export const MEMBERS = [1, 2, 3];

/** `count` names mastered by `master` (rendezvous hash over MEMBERS), a fresh family per figure. */
export function namesOn(master: number, family: string, count: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    const n = `${family}.${i}`;
    if (rendezvousOwner('default', n, MEMBERS) === master) out.push(n);
  }
  return out;
}
