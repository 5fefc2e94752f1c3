/**
 * The volume rules of the failover checker (docs/volumes.md, "What is guaranteed"), over the
 * VolumeStore's events in a history. Pure, like checker.ts.
 *
 *   volume-owners        two nodes mounted one generation, or a mount tried a generation that
 *                        was not newer than every generation mounted before it;
 *   volume-stale-write   the store accepted a write carrying an older generation than the
 *                        newest mounted, or from a node that did not mount that generation;
 *   volume-unrecovered   an owner went away without unmounting (its generation unclean) and
 *                        the next mount was not a recovery covering that generation (and every
 *                        unclean generation of an unfinished recovery before it);
 *   volume-recovered-twice  a generation was recovered again after a recovery of it had
 *                        completed and that recoverer had unmounted cleanly;
 *   volume-early-takeover  a recovery mount took over from a node less than `minTakeoverMs`
 *                        after that node was killed or paused: sooner than its lease allows.
 */
import type { EventOf, HistoryEvent } from './history';

export interface VolumeViolation { kind: 'volume-owners' | 'volume-stale-write' | 'volume-unrecovered' | 'volume-recovered-twice' | 'volume-early-takeover'; t: number; text: string }

export interface VolumeSummary {
  volume: string;
  mounts: number;
  recoveries: number;
  acceptedWrites: number;
  refusedWrites: number;
  generations: number[];
}

export function checkVolumes(events: readonly HistoryEvent[], opts: { minTakeoverMs?: number } = {}): { violations: VolumeViolation[]; summary: VolumeSummary[] } {
  const violations: VolumeViolation[] = [];
  const byVolume = new Map<string, HistoryEvent[]>();
  for (const e of events) {
    if (e.type === 'vmount' || e.type === 'vumount' || e.type === 'vrecover' || e.type === 'vwrite' || e.type === 'vfence') {
      const l = byVolume.get(e.volume) ?? [];
      l.push(e);
      byVolume.set(e.volume, l);
    }
  }
  // Nodes going down: the tests' node-down events, and the nemesis' kill and pause faults.
  const downs: Array<{ t: number; node: number; how: string }> = [];
  for (const e of events) {
    if (e.type === 'node-down') downs.push({ t: e.t, node: e.node, how: e.how });
    else if (e.type === 'fault' && (e.action === 'kill' || e.action === 'pause') && !e.ends) for (const node of e.nodes) downs.push({ t: e.t, node, how: e.action });
  }
  const summary: VolumeSummary[] = [];

  for (const [volume, evs] of byVolume) {
    const mounts: Array<EventOf<'vmount'>> = [];
    const mounter = new Map<number, number>(); // generation -> node
    const clean = new Set<number>();            // generations unmounted by their owner
    const recovered = new Map<number, number>(); // generation -> a completed recovery's generation
    const finished = new Set<number>();         // recovery mounts whose recovery step completed
    let newest = 0;
    let accepted = 0;
    let refused = 0;
    let recoveries = 0;
    for (const e of evs) {
      switch (e.type) {
        case 'vmount': {
          const other = mounter.get(e.generation);
          if (other !== undefined && other !== e.node) {
            violations.push({ kind: 'volume-owners', t: e.t, text: `${volume}: node ${e.node} mounted generation ${e.generation}, already mounted by node ${other}` });
          }
          if (e.generation <= newest) {
            violations.push({ kind: 'volume-owners', t: e.t, text: `${volume}: node ${e.node} tried to mount generation ${e.generation}, not newer than generation ${newest}` });
          }
          if (!e.accepted) break;
          // The previous owner's generation: clean, or recovered by this mount.
          const prev = mounts[mounts.length - 1];
          if (prev && !clean.has(prev.generation)) {
            // An unfinished recovery leaves its own range to recover too.
            const prevRange = prev.recovery && !finished.has(prev.generation) ? prev.recovery.fromGeneration : prev.generation;
            const r = e.recovery;
            if (!r || r.fromGeneration > prevRange || r.ofGeneration < prev.generation) {
              violations.push({
                kind: 'volume-unrecovered', t: e.t,
                text: `${volume}: node ${prev.node}'s generation ${prev.generation} ended without an unmount, but node ${e.node}'s mount of generation ${e.generation} ${r ? `recovers only ${r.fromGeneration}..${r.ofGeneration}` : 'is not a recovery'} (must cover ${prevRange}..${prev.generation})`,
              });
            }
            if (r && r.of !== e.node && opts.minTakeoverMs !== undefined) {
              const down = [...downs].reverse().find((d) => d.node === r.of && d.t <= e.t && (d.how === 'kill' || d.how === 'pause'));
              if (down && e.t - down.t < opts.minTakeoverMs) {
                violations.push({ kind: 'volume-early-takeover', t: e.t, text: `${volume}: node ${e.node} took over from node ${r.of} ${Math.round(e.t - down.t)} ms after it went down (${down.how}); its lease allows no takeover before ${opts.minTakeoverMs} ms` });
              }
            }
          }
          if (e.recovery) {
            for (let g = e.recovery.fromGeneration; g <= e.recovery.ofGeneration; g++) {
              const by = recovered.get(g);
              if (by !== undefined && clean.has(by)) {
                violations.push({ kind: 'volume-recovered-twice', t: e.t, text: `${volume}: generation ${g} recovered again by node ${e.node} (generation ${e.generation}) after generation ${by} had recovered it and unmounted cleanly` });
              }
            }
          }
          mounts.push(e);
          mounter.set(e.generation, e.node);
          newest = e.generation;
          break;
        }
        case 'vumount':
          if (mounter.get(e.generation) === e.node) clean.add(e.generation);
          break;
        case 'vrecover':
          if (!e.ok) break;
          recoveries++;
          for (let g = e.fromGeneration; g <= e.ofGeneration; g++) if (!recovered.has(g) || clean.has(recovered.get(g)!)) recovered.set(g, e.generation);
          finished.add(e.generation);
          break;
        case 'vwrite':
          if (!e.accepted) { refused++; break; }
          accepted++;
          if (e.generation < newest) {
            violations.push({ kind: 'volume-stale-write', t: e.t, text: `${volume}: a write of generation ${e.generation} from node ${e.node} was accepted after generation ${newest} was mounted` });
          } else if (mounter.get(e.generation) !== e.node) {
            violations.push({ kind: 'volume-stale-write', t: e.t, text: `${volume}: a write of generation ${e.generation} from node ${e.node} was accepted, but that generation was mounted by node ${mounter.get(e.generation) ?? 'nobody'}` });
          }
          break;
        default:
          break;
      }
    }
    summary.push({ volume, mounts: mounts.length, recoveries, acceptedWrites: accepted, refusedWrites: refused, generations: mounts.map((m) => m.generation) });
  }
  return { violations, summary };
}
