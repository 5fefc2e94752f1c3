/**
 * Report: the figures of a run, computed from its history and the checker's result, and
 * the files of the report directory (history.ndjson, report.json, summary.txt).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { CheckResult } from './checker';
import { EventOf, HistoryEvent, toNdjson } from './history';

export interface FaultRecovery {
  t: number;
  action: string;
  nodes: number[];
  /** ms from the fault to the first moment a quorum ran in a newer epoch (undefined: not observed). */
  recoveryMs?: number;
  /** ms from that moment to the next grant. */
  firstGrantMs?: number;
  /** The lock recovery itself (mxfsd's stats.lastRecoveryMs), longest over the nodes of that epoch. */
  lockRecoveryMs?: number;
}

export interface Figures {
  scenario: string;
  seed: number;
  nodes: number;
  leaseMs: number;
  durationMs: number;
  operations: number;
  grants: number;
  failedOps: Record<string, number>;
  lostLocks: number;
  acceptedWrites: number;
  rejectedStaleWrites: number;
  zombieWrites: number;
  violations: number;
  violationsByKind: Record<string, number>;
  faults: FaultRecovery[];
  maxRecoveryMs?: number;
}

/** Quorum for n configured nodes (a 2-node cluster runs on a tiebreaker, so 1 suffices). */
export function quorumOf(n: number): number { return n === 2 ? 1 : Math.floor(n / 2) + 1; }

const GROUP_MS = 100;

/**
 * For each fault: the first time after it (and before the next fault) at which at least a quorum of nodes reported
 * 'running' in one epoch newer than every epoch seen before the fault. Faults that need no
 * membership change (a short pause, a delay) have none: "not observed" is not an error.
 */
export function recoveries(events: readonly HistoryEvent[], nodes: number): FaultRecovery[] {
  const out: FaultRecovery[] = [];
  const q = quorumOf(nodes);
  const faults = events.filter((e): e is EventOf<'fault'> => e.type === 'fault' && !e.action.startsWith('gc-'));
  for (const [i, f] of faults.entries()) {
    // Attribute to this fault only what happens before the next fault (faults applied
    // together, within GROUP_MS, share one window: e.g. a double kill).
    const next = faults.slice(i + 1).find((g) => g.t > f.t + GROUP_MS);
    const until = next ? next.t : Infinity;
    let before = 0;
    const latest = new Map<number, { state: string; epoch: number }>();
    let recoveredAt: number | undefined;
    for (const e of events) {
      if (e.type !== 'view') continue;
      if (e.t <= f.t) { before = Math.max(before, e.epoch); latest.set(e.node, e); continue; }
      if (e.t >= until) break;
      latest.set(e.node, e);
      const counts = new Map<number, number>();
      for (const s of latest.values()) if (s.state === 'running' && s.epoch > before) counts.set(s.epoch, (counts.get(s.epoch) ?? 0) + 1);
      if ([...counts.values()].some((c) => c >= q)) { recoveredAt = e.t; break; }
    }
    const rec: FaultRecovery = { t: f.t, action: f.action, nodes: f.nodes };
    if (recoveredAt !== undefined) {
      rec.recoveryMs = Math.round(recoveredAt - f.t);
      const epoch = Math.max(...[...latest.values()].filter((s) => s.state === 'running' && s.epoch > before).map((s) => s.epoch));
      const lr = events.filter((e): e is EventOf<'view'> => e.type === 'view' && e.epoch === epoch && e.recoveryMs !== undefined).map((e) => e.recoveryMs!);
      if (lr.length) rec.lockRecoveryMs = Math.max(...lr);
      const g = events.find((e) => e.type === 'ok' && e.kind !== 'unlock' && e.t >= recoveredAt!);
      if (g) rec.firstGrantMs = Math.round(g.t - recoveredAt);
    }
    out.push(rec);
  }
  return out;
}

export function figures(events: readonly HistoryEvent[], result: CheckResult, meta: { scenario: string; seed: number; nodes: number; leaseMs: number }): Figures {
  const failedOps: Record<string, number> = {};
  let operations = 0, grants = 0, lost = 0, zombie = 0;
  for (const e of events) {
    if (e.type === 'invoke') operations++;
    if (e.type === 'ok' && e.kind !== 'unlock') grants++;
    if (e.type === 'fail') failedOps[e.code] = (failedOps[e.code] ?? 0) + 1;
    if (e.type === 'lost') lost++;
    if (e.type === 'write' && e.zombie) zombie++;
  }
  const byKind: Record<string, number> = {};
  for (const v of result.violations) byKind[v.kind] = (byKind[v.kind] ?? 0) + 1;
  const faults = recoveries(events, meta.nodes);
  const rec = faults.map((f) => f.recoveryMs).filter((x): x is number => x !== undefined);
  return {
    ...meta,
    durationMs: Math.round(events.length ? events[events.length - 1]!.t : 0),
    operations, grants, failedOps, lostLocks: lost,
    acceptedWrites: result.acceptedWrites, rejectedStaleWrites: result.rejectedWrites, zombieWrites: zombie,
    violations: result.violations.length, violationsByKind: byKind,
    faults, ...(rec.length ? { maxRecoveryMs: Math.max(...rec) } : {}),
  };
}

export function summaryText(f: Figures, result: CheckResult, maxViolations = 20, aborted?: string): string {
  const lines: string[] = [];
  const verdict = f.violations === 0 && !aborted ? 'PASS' : 'FAIL';
  lines.push(`${verdict}  ${f.scenario}  seed ${f.seed}  nodes ${f.nodes}  lease ${f.leaseMs} ms  ran ${(f.durationMs / 1000).toFixed(1)} s`);
  lines.push(`  operations ${f.operations}  grants ${f.grants}  lost locks ${f.lostLocks}  writes accepted ${f.acceptedWrites}  stale writes rejected ${f.rejectedStaleWrites}  zombie writes ${f.zombieWrites}`);
  const fails = Object.entries(f.failedOps).map(([k, v]) => `${k} ${v}`).join(', ');
  if (fails) lines.push(`  failed operations: ${fails}`);
  for (const x of f.faults) {
    const rec = x.recoveryMs === undefined ? 'no new epoch observed before the next fault'
      : `recovered in ${x.recoveryMs} ms${x.lockRecoveryMs !== undefined ? ` (lock recovery ${x.lockRecoveryMs} ms)` : ''}${x.firstGrantMs === undefined ? ', no grant after' : `, first grant ${x.firstGrantMs} ms later`}`;
    lines.push(`  fault at ${(x.t / 1000).toFixed(2)} s: ${x.action} ${x.nodes.join(',')}: ${rec}`);
  }
  lines.push(`  violations: ${f.violations}${f.violations ? ' (' + Object.entries(f.violationsByKind).map(([k, v]) => `${k} ${v}`).join(', ') + ')' : ''}`);
  for (const v of result.violations.slice(0, maxViolations)) lines.push(`    [${v.kind}] t=${v.t}: ${v.text}`);
  if (result.violations.length > maxViolations) lines.push(`    … ${result.violations.length - maxViolations} more in report.json`);
  if (aborted) lines.push(`  aborted: ${aborted}`);
  return lines.join('\n') + '\n';
}

export function writeReport(dir: string, events: readonly HistoryEvent[], f: Figures, result: CheckResult, aborted?: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'history.ndjson'), toNdjson(events));
  fs.writeFileSync(path.join(dir, 'report.json'), JSON.stringify({ figures: f, violations: result.violations, ...(aborted ? { aborted } : {}) }, null, 2) + '\n');
  fs.writeFileSync(path.join(dir, 'summary.txt'), summaryText(f, result, 1000, aborted));
}
