/**
 * History: the evidence of a failover run, one event per line (NDJSON).
 *
 * Every event has `t` (ms since the run started, monotonic) and a `type`. Lock operations
 * are recorded as invoke → ok | fail pairs sharing an `op` id (as in Jepsen/etcd robustness
 * histories); a held lock can also end with `lost`. The checker (checker.ts) reads nothing
 * else, so a history saved by one run can be re-checked later (`mxfs-failover check FILE`).
 */
import fs from 'node:fs';
import type { ModeName } from '../dlm/modes';

export type LockOpKind = 'lock' | 'convert' | 'unlock';

export type HistoryEvent =
  /** A client asks for something. `lock` is the client's handle id (stable across convert/unlock). */
  | { t: number; type: 'invoke'; op: number; kind: LockOpKind; client: string; node: number; resource: string; lock: number; mode?: ModeName }
  | { t: number; type: 'ok'; op: number; kind: LockOpKind; client: string; node: number; resource: string; lock: number; mode?: ModeName; token?: number }
  | { t: number; type: 'fail'; op: number; kind: LockOpKind; client: string; node: number; resource: string; lock: number; code: string; message?: string }
  /**
   * The client learned that a held lock is gone. `validUntil`: the moment its library's
   * keepalive bound ran out (last word from mxfsd + lostAfterMs), when that is earlier
   * than `t`: from then on `handle.valid` was already false.
   */
  | { t: number; type: 'lost'; client: string; node: number; resource: string; lock: number; reason: string; validUntil?: number }
  /** A client session ended (closed by the workload, or its connection died). Ends all its locks. */
  | { t: number; type: 'client-gone'; client: string; node: number; reason: string }
  | { t: number; type: 'client-up'; client: string; node: number }
  /** A write to the fenced store. */
  | { t: number; type: 'write'; client: string; node: number; resource: string; lock: number; token: number; accepted: boolean; highest: number; zombie?: boolean }
  /** A fault (or its end) applied by the nemesis. */
  | { t: number; type: 'fault'; action: string; nodes: number[]; detail?: unknown; ends?: boolean }
  /** What a node's status() said, recorded when it changes; recoveryMs = its stats.lastRecoveryMs then. */
  | { t: number; type: 'view'; node: number; state: string; epoch: number; members: number[]; recoveryMs?: number }
  /** An mxfsd process exited without being told to (a crash). */
  | { t: number; type: 'node-exit'; node: number; code: number | null; signal: string | null; stderr?: string }
  /**
   * An abusive client (src/failover/abuse.ts) started on a node, or (with `result`) finished:
   * what it sent and how mxfsd answered.
   */
  | { t: number; type: 'abuse'; kind: string; node: number; result?: { sent: number; ok: number; errors: Record<string, number>; examples: Record<string, string>; unanswered: number; cutOff?: string; unclear: string[] } }
  /** Free-form scenario step markers. */
  | { t: number; type: 'step'; text: string }
  /** Locks still present in the cluster when the workload had stopped (should be none). */
  | { t: number; type: 'final-locks'; node: number; locks: Array<{ resource: string; owner: string; mode: string | null }> }
  /** A scenario assertion (assert/wait step) that did not hold in time. */
  | { t: number; type: 'assert-failed'; text: string }
  /** Volumes (command mode over a VolumeStore): what the storage saw. */
  | { t: number; type: 'vmount'; volume: string; node: number; generation: number; accepted: boolean; floor: number; recovery?: { of: number; fromGeneration: number; ofGeneration: number } }
  | { t: number; type: 'vumount'; volume: string; node: number; generation: number }
  | { t: number; type: 'vrecover'; volume: string; node: number; generation: number; of: number; fromGeneration: number; ofGeneration: number; ok: boolean }
  | { t: number; type: 'vfence'; volume: string; node: number; generation: number; cause: string }
  | { t: number; type: 'vcheck'; volume: string; node: number; old: number; ok: boolean }
  | { t: number; type: 'vwrite'; volume: string; node: number; generation: number; accepted: boolean; floor: number }
  /** A node's process was killed (power loss for volumes: its applications die too) or paused. */
  | { t: number; type: 'node-down'; node: number; how: 'kill' | 'pause' | 'resume' | 'start' }
  /** First event of a run; `startedAt` (wall clock, ISO) lines the history up with the node logs. */
  | { t: number; type: 'meta'; scenario: string; seed: number; nodes: number; leaseMs: number; startedAt?: string };

export type EventOf<T extends HistoryEvent['type']> = Extract<HistoryEvent, { type: T }>;

type WithoutT<E> = E extends unknown ? Omit<E, 't'> : never;
export type NewEvent = WithoutT<HistoryEvent>;

/** Records events in memory (and optionally streams them to a file as they happen). */
export class History {
  readonly events: HistoryEvent[] = [];
  private readonly t0: number;
  private out?: number;
  private nextOp = 1;

  constructor(opts: { file?: string; now?: () => number } = {}) {
    this.now = opts.now ?? (() => performance.now());
    this.t0 = this.now();
    if (opts.file) this.out = fs.openSync(opts.file, 'w');
  }

  private readonly now: () => number;

  /** Milliseconds since the run started. */
  elapsed(): number { return Math.round((this.now() - this.t0) * 10) / 10; }

  opId(): number { return this.nextOp++; }

  add(e: NewEvent): HistoryEvent {
    const ev = { t: this.elapsed(), ...e } as HistoryEvent;
    this.events.push(ev);
    if (this.out !== undefined) fs.writeSync(this.out, JSON.stringify(ev) + '\n');
    return ev;
  }

  close(): void {
    if (this.out !== undefined) { fs.closeSync(this.out); this.out = undefined; }
  }
}

export function toNdjson(events: readonly HistoryEvent[]): string {
  return events.map((e) => JSON.stringify(e)).join('\n') + (events.length ? '\n' : '');
}

export function parseNdjson(text: string): HistoryEvent[] {
  const out: HistoryEvent[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (!line.trim()) continue;
    let e: unknown;
    try { e = JSON.parse(line); } catch { throw new Error(`history line ${i + 1}: not JSON`); }
    if (typeof e !== 'object' || e === null || typeof (e as any).t !== 'number' || typeof (e as any).type !== 'string') {
      throw new Error(`history line ${i + 1}: an event needs numeric 't' and string 'type'`);
    }
    out.push(e as HistoryEvent);
  }
  return out;
}

export function readHistory(file: string): HistoryEvent[] {
  return parseNdjson(fs.readFileSync(file, 'utf8'));
}
