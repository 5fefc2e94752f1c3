/**
 * mxfs-failover — scripted failover tests against a loopback cluster.
 *
 *   mxfs-failover run SCENARIO… [--seed S] [--seeds K] [--nodes N] [--report DIR] [--duration MS] [--quiet]
 *       plays each scenario (a name from test/scenarios/, 'all' for every fixed one, or the
 *       path of a compiled scenario module), checks the recorded history and prints a
 *       verdict with figures. --seeds K runs each scenario K times with seeds S, S+1, …
 *       --duration overrides the length of nemesis steps (soak runs).
 *   mxfs-failover check HISTORY.ndjson [--lease-ms MS]
 *       re-checks a saved history.
 *   mxfs-failover list
 *
 * Exit codes: 0 no violation in any run, 1 a violation or a run that could not complete,
 * 2 usage.
 */
import fs from 'node:fs';
import path from 'node:path';
import { check } from '../failover/checker';
import { readHistory } from '../failover/history';
import { randomSeed } from '../failover/prng';
import { figures, summaryText } from '../failover/report';
import { runScenario, serveBound } from '../failover/runner';
import type { Scenario } from '../failover/scenario';
import { die, endOnClosedOutput, parse, UsageError } from './usage';

const USAGE = `usage: mxfs-failover run SCENARIO... [--seed S] [--seeds K] [--nodes N] [--report DIR] [--duration MS] [--quiet]
       mxfs-failover check HISTORY.ndjson [--lease-ms MS]
       mxfs-failover list
`;

const SCENARIO_DIR = path.join(__dirname, '..', '..', 'test', 'scenarios');

function usage(msg: string): never { die('mxfs-failover', msg, USAGE); }

interface Catalog { SCENARIOS: Scenario[]; CI_FIXED: string[] }

function catalog(): Catalog {
  const f = path.join(SCENARIO_DIR, 'index.js');
  if (!fs.existsSync(f)) { process.stderr.write(`mxfs-failover: no scenario catalog at ${f} (build with 'npx tsc -p .')\n`); process.exit(1); }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(f) as Catalog;
}

function loadScenarios(names: string[]): Scenario[] {
  const out: Scenario[] = [];
  for (const name of names) {
    if (name === 'all') { const c = catalog(); out.push(...c.SCENARIOS.filter((s) => c.CI_FIXED.includes(s.name))); continue; }
    if (name.endsWith('.js') || name.includes('/')) {
      const f = path.resolve(name);
      if (!fs.existsSync(f)) usage(`no scenario module ${f}`);
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const m = require(f) as { scenario?: Scenario };
      if (!m.scenario) usage(`${f} does not export 'scenario'`);
      out.push(m.scenario);
      continue;
    }
    const s = catalog().SCENARIOS.find((x) => x.name === name);
    if (!s) usage(`unknown scenario '${name}' (mxfs-failover list)`);
    out.push(s);
  }
  return out;
}

function withDuration(s: Scenario, ms: number | undefined): Scenario {
  if (ms === undefined) return s;
  return { ...s, steps: s.steps.map((st) => (st.do === 'nemesis' ? { ...st, durationMs: ms } : st)) };
}

async function main(): Promise<number> {
  endOnClosedOutput();
  let a;
  try {
    a = parse(process.argv.slice(2), {
      seed: { type: 'string' }, seeds: { type: 'string' }, nodes: { type: 'string' }, report: { type: 'string' },
      duration: { type: 'string' }, 'lease-ms': { type: 'string' }, quiet: { type: 'boolean', short: 'q' }, help: { type: 'boolean', short: 'h' },
    });
  } catch (e) {
    if (e instanceof UsageError) usage(e.message);
    throw e;
  }
  const v = a.values;
  if (v.help) { process.stdout.write(USAGE); return 0; }
  const [cmd, ...rest] = a.positionals;
  const int = (name: string, s: string | undefined, min: number, max: number): number | undefined => {
    if (s === undefined) return undefined;
    if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max) usage(`--${name} wants an integer ${min}..${max}, got '${s}'`);
    return Number(s);
  };
  switch (cmd) {
    case 'list': {
      for (const s of catalog().SCENARIOS) process.stdout.write(`${s.name.padEnd(22)} ${s.nodes} nodes, lease ${s.leaseMs} ms: ${s.description}\n`);
      return 0;
    }
    case 'check': {
      if (rest.length !== 1) usage('check wants one history file');
      let events;
      try {
        events = readHistory(rest[0]!);
      } catch (e) {
        // One line, no stack: the file is missing, unreadable or not a history.
        process.stderr.write(`mxfs-failover: cannot check ${rest[0]}: ${(e as Error).message}\n`);
        return 1;
      }
      if (!events.length) {
        // An empty file (a run that never started, a truncated copy) is no evidence: not a PASS.
        process.stderr.write(`mxfs-failover: cannot check ${rest[0]}: no events in it\n`);
        return 1;
      }
      const meta = events.find((e) => e.type === 'meta');
      const leaseMs = int('lease-ms', v['lease-ms'], 100, 600000) ?? (meta?.type === 'meta' ? meta.leaseMs : undefined);
      const result = check(events, leaseMs !== undefined ? { serveBoundMs: serveBound(leaseMs) } : {});
      const f = figures(events, result, {
        scenario: meta?.type === 'meta' ? meta.scenario : path.basename(rest[0]!), seed: meta?.type === 'meta' ? meta.seed : 0,
        nodes: meta?.type === 'meta' ? meta.nodes : 0, leaseMs: leaseMs ?? 0,
      });
      process.stdout.write(summaryText(f, result, 1000));
      return result.violations.length ? 1 : 0;
    }
    case 'run': {
      if (!rest.length) usage('run wants at least one scenario (mxfs-failover list)');
      const scenarios = loadScenarios(rest);
      const seed0 = int('seed', v.seed, 0, 0x7fffffff) ?? randomSeed();
      const seeds = int('seeds', v.seeds, 1, 100000) ?? 1;
      const nodes = int('nodes', v.nodes, 1, 9);
      const duration = int('duration', v.duration, 1000, 86400000);
      const log = v.quiet ? undefined : (line: string) => process.stderr.write(line + '\n');
      let bad = 0, runs = 0;
      const lines: string[] = [];
      for (const sc of scenarios) {
        for (let k = 0; k < seeds; k++) {
          const seed = seed0 + k;
          const multi = scenarios.length > 1 || seeds > 1;
          const reportDir = v.report ? (multi ? path.join(v.report, `${sc.name}-seed${seed}`) : v.report) : undefined;
          process.stdout.write(`== ${sc.name} seed ${seed} (repeat with: mxfs-failover run ${sc.name} --seed ${seed}${nodes ? ` --nodes ${nodes}` : ''})\n`);
          const r = await runScenario(withDuration(sc, duration), { seed, nodes, reportDir, log });
          process.stdout.write(r.summary);
          runs++;
          const ok = r.figures.violations === 0 && !r.aborted;
          if (!ok) bad++;
          lines.push(`${ok ? 'PASS' : 'FAIL'} ${sc.name} seed ${seed}: ${r.figures.operations} ops, ${r.figures.grants} grants, ${r.figures.rejectedStaleWrites} stale writes rejected, ${r.figures.violations} violations${r.figures.maxRecoveryMs !== undefined ? `, max recovery ${r.figures.maxRecoveryMs} ms` : ''}${r.aborted ? ' (aborted)' : ''}`);
        }
      }
      if (runs > 1) process.stdout.write(`== ${runs - bad}/${runs} runs passed\n${lines.join('\n')}\n`);
      return bad ? 1 : 0;
    }
    default: usage(cmd ? `unknown command '${cmd}'` : 'missing command (run, check or list)');
  }
}

/** The CLI entry (bin/mxfs-failover); importing this module runs nothing. */
export function run(): void {
  main().then((code) => process.exit(code), (e) => { process.stderr.write(`mxfs-failover: ${(e as Error).stack ?? e}\n`); process.exit(1); });
}

if (require.main === module) run();
