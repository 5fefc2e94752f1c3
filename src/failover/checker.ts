/**
 * The history checker: reads a recorded history (history.ts) and reports every violation of
 * the lock manager's promises. Pure: no I/O, no clocks; the same history always gives the
 * same verdict.
 *
 * The model. Each lock handle goes through grant segments: a segment starts at the `ok` of a
 * lock or conversion and ends at the earliest of
 *   - the `invoke` of its unlock (the client stops using it before asking),
 *   - the `invoke` of a down-conversion (the master may grant others at once),
 *   - the `ok` of an up-conversion (a new segment in the new mode starts there),
 *   - `lost` (the client learned it) — or `validUntil`, when the client library's keepalive
 *     bound had already made `handle.valid` false before the notification arrived,
 *   - `client-gone` for its client.
 * These ends are conservative: a holder may use its lock until then, so any overlap found
 * is a real double grant from the holders' point of view.
 *
 * Rules (violation kinds):
 *   overlap           two segments on one resource with incompatible modes overlap in time;
 *   stale-write       the store accepted a write from a holder whose segment had ended;
 *   dead-node-write   the store accepted a write from a holder on a node that a quorate
 *                     member had declared dead after the grant;
 *   write-no-grant    the store accepted a write from a lock that was never granted;
 *   token-order       PW/EX grants of a resource, in grant order, do not carry strictly
 *                     increasing tokens;
 *   leaked            a grant never ended in the history, an unlock failed, or the cluster
 *                     still listed a lock after the workload stopped (`final-locks`);
 *   not-served        after the last fault, a request waited longer than the bound, or
 *                     timed out, or was refused with LOST once the bound had passed;
 *   assert            a scenario assertion did not hold in time;
 *   crash             an mxfsd process exited without being told to;
 *   volume-*          the volume rules (volume-checker.ts): one owner per generation, no
 *                     write of an older generation accepted, every owner that went away
 *                     recovered once, no takeover before the old owner's lease allows.
 */
import { compatible, Mode, MODE_NAMES, ModeName } from '../dlm/modes';
import type { EventOf, HistoryEvent } from './history';
import { checkVolumes, VolumeSummary, VolumeViolation } from './volume-checker';

export type ViolationKind = 'overlap' | 'stale-write' | 'dead-node-write' | 'write-no-grant' | 'token-order' | 'leaked' | 'not-served' | 'assert' | 'crash' | VolumeViolation['kind'];

export interface Violation {
  kind: ViolationKind;
  text: string;
  /** Time of the offending event (ms since the run started). */
  t: number;
}

export interface CheckOptions {
  /**
   * How long after the last fault every request must be served (ms). Derived by the runner
   * from the lease timeout; without it the not-served rule is skipped.
   */
  serveBoundMs?: number;
  /** Volumes: no recovery mount may take over from a killed or paused node sooner than this (ms). */
  minTakeoverMs?: number;
}

export interface Segment {
  client: string;
  node: number;
  lock: number;
  resource: string;
  mode: Mode;
  token: number;
  start: number;
  /** Undefined: never ended in the history. */
  end?: number;
  endedBy?: string;
}

export interface CheckResult {
  violations: Violation[];
  segments: Segment[];
  /** Writes the store rejected (stale tokens caught by fencing). */
  rejectedWrites: number;
  acceptedWrites: number;
  /** Per volume: mounts, recoveries, writes (volume-checker.ts). */
  volumes: VolumeSummary[];
  /** Times at which a quorate member first reported each node gone. */
  declaredDead: Map<number, number[]>;
  /** The last fault event (the start of the not-served window), if any. */
  lastFaultAt?: number;
}

const modeOf = (m: ModeName | undefined): Mode => {
  const i = MODE_NAMES.indexOf(m as ModeName);
  if (i < 0) throw new Error(`history: bad mode ${String(m)}`);
  return i as Mode;
};

const isWrite = (m: Mode) => m === Mode.PW || m === Mode.EX;

export function buildSegments(events: readonly HistoryEvent[]): { segments: Segment[]; unlockFailures: EventOf<'fail'>[] } {
  const segments: Segment[] = [];
  const open = new Map<string, Segment>(); // client/lock -> open segment
  const invokes = new Map<number, EventOf<'invoke'>>();
  const unlockFailures: EventOf<'fail'>[] = [];
  const key = (client: string, lock: number) => `${client}/${lock}`;
  const close = (s: Segment | undefined, t: number, by: string) => {
    if (!s || s.end !== undefined) return;
    s.end = Math.max(s.start, t);
    s.endedBy = by;
  };
  for (const e of events) {
    switch (e.type) {
      case 'invoke': {
        invokes.set(e.op, e);
        const s = open.get(key(e.client, e.lock));
        if (e.kind === 'unlock') { close(s, e.t, 'unlock'); open.delete(key(e.client, e.lock)); }
        else if (e.kind === 'convert' && s && e.mode !== undefined && modeOf(e.mode) < s.mode) close(s, e.t, 'down-convert');
        break;
      }
      case 'ok': {
        if (e.kind === 'unlock') break;
        const k = key(e.client, e.lock);
        const prev = open.get(k);
        if (prev) close(prev, e.t, 'convert');
        const s: Segment = { client: e.client, node: e.node, lock: e.lock, resource: e.resource, mode: modeOf(e.mode), token: e.token ?? -1, start: e.t };
        segments.push(s);
        open.set(k, s);
        break;
      }
      case 'fail': {
        if (e.kind === 'unlock' && !['LOST', 'NOTFOUND', 'SHUTDOWN'].includes(e.code)) unlockFailures.push(e);
        break;
      }
      case 'lost': {
        const k = key(e.client, e.lock);
        const end = e.validUntil !== undefined ? Math.min(e.t, e.validUntil) : e.t;
        close(open.get(k), end, 'lost');
        open.delete(k);
        break;
      }
      case 'client-gone': {
        for (const [k, s] of open) if (s.client === e.client) { close(s, e.t, 'client-gone'); open.delete(k); }
        break;
      }
      default: break;
    }
  }
  return { segments, unlockFailures };
}

/** When quorate members first reported each node out of the membership (a node may die several times). */
export function declaredDeadTimes(events: readonly HistoryEvent[]): Map<number, number[]> {
  const out = new Map<number, number[]>();
  const inView = new Map<number, boolean>(); // node -> currently counted as a member by the running side
  for (const e of events) {
    if (e.type !== 'view' || e.state !== 'running') continue;
    for (const m of e.members) inView.set(m, true);
    for (const [n, was] of inView) {
      if (was && !e.members.includes(n)) {
        inView.set(n, false);
        const l = out.get(n) ?? [];
        l.push(e.t);
        out.set(n, l);
      }
    }
  }
  return out;
}

export function check(events: readonly HistoryEvent[], opts: CheckOptions = {}): CheckResult {
  const violations: Violation[] = [];
  const { segments, unlockFailures } = buildSegments(events);
  const declaredDead = declaredDeadTimes(events);

  // overlap: per resource, a sweep over segments sorted by start.
  const byRes = new Map<string, Segment[]>();
  for (const s of segments) { const l = byRes.get(s.resource) ?? []; l.push(s); byRes.set(s.resource, l); }
  for (const [res, segs] of byRes) {
    const sorted = [...segs].sort((a, b) => a.start - b.start);
    let active: Segment[] = [];
    for (const s of sorted) {
      active = active.filter((a) => (a.end ?? Infinity) > s.start);
      for (const a of active) {
        if (a.client === s.client && a.lock === s.lock) continue;
        if (!compatible(a.mode, s.mode)) {
          violations.push({
            kind: 'overlap', t: s.start,
            text: `${res}: ${s.client} got ${MODE_NAMES[s.mode]} (token ${s.token}) at ${s.start} while ${a.client} held ${MODE_NAMES[a.mode]} (token ${a.token}) from ${a.start} to ${a.end ?? 'the end'}`,
          });
        }
      }
      active.push(s);
    }
    // token-order: PW/EX grants in grant order carry strictly increasing tokens.
    let prev: Segment | undefined;
    for (const s of sorted) {
      if (!isWrite(s.mode)) continue;
      if (prev && !(s.token > prev.token)) {
        violations.push({ kind: 'token-order', t: s.start, text: `${res}: ${MODE_NAMES[s.mode]} grant to ${s.client} at ${s.start} has token ${s.token}, not above ${prev.token} (${prev.client} at ${prev.start})` });
      }
      prev = s;
    }
  }

  // writes
  let rejectedWrites = 0, acceptedWrites = 0;
  const segsOf = new Map<string, Segment[]>();
  for (const s of segments) { const k = `${s.client}/${s.lock}`; const l = segsOf.get(k) ?? []; l.push(s); segsOf.set(k, l); }
  for (const e of events) {
    if (e.type !== 'write') continue;
    if (!e.accepted) { rejectedWrites++; continue; }
    acceptedWrites++;
    const mine = (segsOf.get(`${e.client}/${e.lock}`) ?? []).filter((s) => s.start <= e.t && s.token === e.token);
    const seg = mine[mine.length - 1];
    if (!seg) { violations.push({ kind: 'write-no-grant', t: e.t, text: `${e.resource}: accepted write by ${e.client} (lock ${e.lock}, token ${e.token}) at ${e.t} without a grant carrying that token` }); continue; }
    if (seg.end !== undefined && seg.end < e.t) {
      violations.push({ kind: 'stale-write', t: e.t, text: `${e.resource}: accepted write by ${e.client} with token ${e.token} at ${e.t}, after its lock ended (${seg.endedBy} at ${seg.end})` });
      continue;
    }
    const dead = (declaredDead.get(seg.node) ?? []).find((d) => d > seg.start && d <= e.t);
    if (dead !== undefined) {
      violations.push({ kind: 'dead-node-write', t: e.t, text: `${e.resource}: accepted write by ${e.client} (node ${seg.node}) with token ${e.token} at ${e.t}, after node ${seg.node} was declared dead at ${dead}` });
    }
  }

  // leaks
  for (const s of segments) {
    if (s.end === undefined) violations.push({ kind: 'leaked', t: s.start, text: `${s.resource}: ${MODE_NAMES[s.mode]} grant to ${s.client} (lock ${s.lock}) at ${s.start} never ended (no unlock, lost or client-gone)` });
  }
  for (const f of unlockFailures) violations.push({ kind: 'leaked', t: f.t, text: `${f.resource}: unlock by ${f.client} (lock ${f.lock}) failed: ${f.code} ${f.message ?? ''}`.trim() });
  for (const e of events) {
    if (e.type !== 'final-locks') continue;
    for (const l of e.locks) violations.push({ kind: 'leaked', t: e.t, text: `${l.resource}: node ${e.node} still lists a ${l.mode ?? 'pending'} lock of ${l.owner} after the workload stopped` });
  }

  // assertions and crashes
  for (const e of events) {
    if (e.type === 'assert-failed') violations.push({ kind: 'assert', t: e.t, text: e.text });
    if (e.type === 'node-exit') violations.push({ kind: 'crash', t: e.t, text: `mxfsd on node ${e.node} exited on its own (code ${e.code}, signal ${e.signal})${e.stderr ? `: ${e.stderr}` : ''}` });
  }

  // not-served: requests after the last fault must end within the bound.
  const faults = events.filter((e): e is EventOf<'fault'> => e.type === 'fault');
  const lastFaultAt = faults.length ? faults[faults.length - 1]!.t : undefined;
  if (opts.serveBoundMs !== undefined) {
    const bound = opts.serveBoundMs;
    const from = lastFaultAt ?? 0;
    const endT = events.length ? events[events.length - 1]!.t : 0;
    const result = new Map<number, EventOf<'ok'> | EventOf<'fail'>>();
    const gone = new Map<string, number[]>();
    for (const e of events) {
      if (e.type === 'ok' || e.type === 'fail') result.set(e.op, e);
      if (e.type === 'client-gone') { const l = gone.get(e.client) ?? []; l.push(e.t); gone.set(e.client, l); }
    }
    for (const e of events) {
      if (e.type !== 'invoke' || e.kind === 'unlock') continue;
      const r = result.get(e.op);
      if (r && r.t < from) continue;
      const start = Math.max(e.t, from);
      const due = start + bound;
      const what = `${e.kind} ${e.mode ?? ''} on ${e.resource} by ${e.client} (invoked at ${e.t})`;
      if (r?.type === 'ok') {
        if (r.t > due) violations.push({ kind: 'not-served', t: r.t, text: `${what} granted only at ${r.t}, bound ${bound} ms after ${start}` });
        continue;
      }
      if (r?.type === 'fail') {
        if (r.code === 'TIMEOUT' && r.t > from) violations.push({ kind: 'not-served', t: r.t, text: `${what} timed out at ${r.t} after the last fault (${from})` });
        else if (r.code === 'LOST' && r.t > due) violations.push({ kind: 'not-served', t: r.t, text: `${what} refused with LOST at ${r.t}, beyond the bound (${due})` });
        else if (r.t > due && !['NOTQUEUED', 'DEADLOCK', 'CANCELLED', 'SHUTDOWN', 'LOST'].includes(r.code)) violations.push({ kind: 'not-served', t: r.t, text: `${what} failed ${r.code} at ${r.t}` });
        continue;
      }
      // No answer at all: a violation only if the request was still waiting past the bound
      // (its client did not go away before the bound ran out).
      const goneAt = (gone.get(e.client) ?? []).find((g) => g >= e.t) ?? endT;
      if (goneAt > due) violations.push({ kind: 'not-served', t: due, text: `${what} still waiting at ${due} (bound ${bound} ms after ${start})` });
    }
  }

  violations.sort((a, b) => a.t - b.t);
  const vol = checkVolumes(events, { ...(opts.minTakeoverMs !== undefined ? { minTakeoverMs: opts.minTakeoverMs } : {}) });
  violations.push(...vol.violations);
  return { violations, segments, rejectedWrites, acceptedWrites, declaredDead, lastFaultAt, volumes: vol.summary };
}
