/**
 * The nemesis: the faults, applied to a ClusterUnderTest and recorded as `fault` events,
 * plus the randomized schedule (a seeded mix of them). Each fault here is one action; the
 * runner (runner.ts) decides when.
 */
import { rendezvousOwner } from '../cluster/rendezvous';
import { DEFAULT_LOCKSPACE } from '../dlm/types';
import type { ClusterUnderTest } from './cluster';
import type { History } from './history';
import type { Prng } from './prng';
import type { NemesisFault } from './scenario';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Nemesis {
  constructor(private readonly cluster: ClusterUnderTest, private readonly history: History) {}

  private record(action: string, nodes: number[], detail?: unknown, ends?: boolean): void {
    this.history.add({ type: 'fault', action, nodes, ...(detail !== undefined ? { detail } : {}), ...(ends ? { ends: true } : {}) });
  }

  async kill(id: number): Promise<void> {
    this.record('kill', [id]);
    await this.cluster.kill(id, 'SIGKILL');
  }

  async terminate(id: number): Promise<void> {
    this.record('terminate', [id]);
    await this.cluster.kill(id, 'SIGTERM');
  }

  async restart(id: number): Promise<void> {
    this.record('restart', [id], undefined, true);
    await this.cluster.start(id);
  }

  pause(id: number): void {
    this.record('pause', [id]);
    this.cluster.pause(id);
  }

  resume(id: number): void {
    this.record('resume', [id], undefined, true);
    this.cluster.resume(id);
  }

  /** Every node drops all peer traffic to and from nodes on other sides. */
  async partition(sides: number[][]): Promise<void> {
    this.record('partition', sides.flat(), { sides });
    await Promise.all(sides.flatMap((side) => {
      const others = sides.filter((s) => s !== side).flat();
      return side.filter((id) => this.cluster.run.get(id) === 'up').map((id) => this.cluster.fault(id, { action: 'partition', peers: others }));
    }));
  }

  /** Cut only the links between the nodes of each pair; every other link stays up. */
  async cut(pairs: Array<[number, number]>): Promise<void> {
    this.record('cut', [...new Set(pairs.flat())].sort((a, b) => a - b), { pairs });
    const blocked = new Map<number, number[]>();
    for (const [a, b] of pairs) {
      blocked.set(a, [...(blocked.get(a) ?? []), b]);
      blocked.set(b, [...(blocked.get(b) ?? []), a]);
    }
    await Promise.all([...blocked].filter(([id]) => this.cluster.run.get(id) === 'up')
      .map(([id, peers]) => this.cluster.fault(id, { action: 'partition', peers })));
  }

  async heal(): Promise<void> {
    const ids = this.cluster.upIds();
    this.record('heal', ids, undefined, true);
    await Promise.all(ids.map((id) => this.cluster.fault(id, { action: 'heal' })));
  }

  async drop(fraction: number, ids: number[]): Promise<void> {
    this.record('drop', ids, { fraction });
    await Promise.all(ids.map((id) => this.cluster.fault(id, { action: 'drop', fraction })));
  }

  async delay(ms: number, ids: number[]): Promise<void> {
    this.record('delay', ids, { ms });
    await Promise.all(ids.map((id) => this.cluster.fault(id, { action: 'delay', ms })));
  }

  /** Every peer link of these nodes is closed once and reconnects: what was in flight is lost. */
  async resetLinks(ids: number[]): Promise<void> {
    this.record('reset-links', ids);
    await Promise.all(ids.map((id) => this.cluster.fault(id, { action: 'reset' })));
  }

  masterOf(resource: string): number {
    return rendezvousOwner(DEFAULT_LOCKSPACE, resource, this.cluster.currentMembers());
  }
}

export interface RandomFaultHooks {
  /** A node holding some resource in PW/EX, if any. */
  holderNode(): number | undefined;
  /** Freeze a holder client for ms (GC pause); false when no client holds anything. */
  gcPause(ms: number): boolean;
  /** Wait until the cluster has re-formed with every running node, up to ms; false on timeout. */
  waitFormed(ms: number): Promise<boolean>;
  log(text: string): void;
}

/**
 * A randomized nemesis for durationMs: pick a fault, hold it, heal it, let the cluster
 * re-form, repeat. Never takes out more than a minority at once, so the cluster can always
 * recover. Reproducible from the PRNG's seed (the timing of the cluster is not).
 */
export async function randomNemesis(n: Nemesis, cluster: ClusterUnderTest, rng: Prng, hooks: RandomFaultHooks, opts: { durationMs: number; faults?: NemesisFault[]; gapMs?: [number, number] }): Promise<void> {
  const kinds: NemesisFault[] = opts.faults ?? ['kill', 'pause', 'partition', 'cut', 'drop', 'delay', 'reset-links', 'gc-pause', 'kill-master'];
  const lease = cluster.leaseMs;
  const end = Date.now() + opts.durationMs;
  const [glo, ghi] = opts.gapMs ?? [lease, 2 * lease];
  const minority = Math.max(1, Math.floor((cluster.ids.length - 1) / 2));
  while (Date.now() < end) {
    const kind = rng.pick(kinds);
    const up = cluster.upIds();
    const pickVictims = (k: number) => {
      const pool = [...up];
      const out: number[] = [];
      while (out.length < k && pool.length) out.push(pool.splice(rng.int(0, pool.length - 1), 1)[0]!);
      return out.sort((a, b) => a - b);
    };
    const holdMs = rng.int(Math.round(lease * 0.5), Math.round(lease * 2.5));
    hooks.log(`nemesis: ${kind} for ${holdMs} ms`);
    switch (kind) {
      case 'kill':
      case 'kill-master': {
        const victim = kind === 'kill-master' ? n.masterOf(`r${rng.int(0, 2)}`) : (hooks.holderNode() ?? pickVictims(1)[0]!);
        await n.kill(victim);
        await sleep(holdMs);
        await n.restart(victim);
        break;
      }
      case 'pause': {
        const [victim] = pickVictims(1);
        n.pause(victim!);
        await sleep(holdMs);
        n.resume(victim!);
        break;
      }
      case 'partition': {
        if (cluster.ids.length < 2) break;
        const cut = pickVictims(rng.int(1, minority));
        const rest = cluster.ids.filter((id) => !cut.includes(id));
        await n.partition([rest, cut]);
        await sleep(holdMs);
        await n.heal();
        break;
      }
      case 'cut': {
        if (up.length < 3) break;
        const [a, b] = pickVictims(2);
        await n.cut([[a!, b!]]);
        await sleep(holdMs + 3 * lease); // long enough for the higher id to yield and the view to change
        await n.heal();
        break;
      }
      case 'drop': {
        const frac = Math.round(rng.next() * 50) / 100;
        await n.drop(frac, pickVictims(rng.int(1, up.length)));
        await sleep(holdMs);
        await n.heal();
        break;
      }
      case 'delay': {
        const ms = rng.int(5, Math.round(lease / 4));
        await n.delay(ms, pickVictims(rng.int(1, up.length)));
        await sleep(holdMs);
        await n.heal();
        break;
      }
      case 'reset-links': {
        // A burst of resets while the cluster works: each one loses what was in flight.
        const victims = pickVictims(rng.int(1, up.length));
        const until = Date.now() + holdMs;
        while (Date.now() < until) {
          await n.resetLinks(victims);
          await sleep(rng.int(50, Math.round(lease / 3)));
        }
        break;
      }
      case 'gc-pause': {
        if (!hooks.gcPause(Math.round(lease * 1.5))) hooks.log('nemesis: no holder to pause');
        await sleep(Math.round(lease * 1.6));
        break;
      }
    }
    if (!(await hooks.waitFormed(lease * 8 + 5000))) { hooks.log('nemesis: cluster did not re-form; stopping the nemesis'); return; }
    await sleep(rng.int(glo, ghi));
  }
}
