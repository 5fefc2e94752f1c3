/**
 * Mutation check: how sharp are the whole-cluster simulation and the failover checker?
 * For each safety check that src/util/mutation.ts can switch off (MXFS_MUTATION), run the
 * simulation (test/support/sim-cluster.ts) seed after seed with the check off, in a fresh
 * process per seed (the flag is read when the process starts), and report after how many
 * seeds a violation was found. The baseline (nothing switched off) must find none. The table
 * goes into docs/failover-testing.md. Not part of npm test: it takes minutes.
 *
 *   npm run mutation-check                       every mutation, up to 10 seeds each
 *   npm run mutation-check -- --seeds 20 --only older-epoch-drop,quorum-check
 *   npm run mutation-check -- --failover random  the failover scenario instead of the simulation
 *                                                (real mxfsd processes inherit MXFS_MUTATION)
 *   npm run mutation-check -- --sim '{"faultCount":12}'   another simulation profile (tuning)
 *
 * A mutation that no run can reach (UNREACHABLE) is checked by its unit test instead.
 *
 * Exit status: 0 when every mutation was caught and the baseline found nothing, 1 otherwise.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { MUTATIONS, MutationName } from '../src/util/mutation';

/** The simulation's fault schedule for the check (see docs/failover-testing.md, "Mutation check"). */
import { runSeed, SimOptions } from '../test/support/sim-cluster';
import { findScenario } from '../test/scenarios/index';
import { runScenario } from '../src/failover/runner';

export const SHARP: SimOptions = { faults: ["isolate", "stall", "crash", "crash-all", "cut"], faultCount: 10, faultLeases: [2, 3], quietLeases: 2, workersPerNode: 4, resources: 2 };

/**
 * Mutations that correct membership cannot reach in any run (docs/failover-testing.md): the
 * check guards against a bug elsewhere. Each is checked by the unit test that injects what
 * it guards against (mocha --grep, with the mutation on: the test must fail).
 */
const UNREACHABLE: Partial<Record<MutationName, { file: string; grep: string; why: string }>> = {
  'non-member-drop': {
    file: 'dist/test/cluster-locks-inproc.test.js', grep: 'a message from a node outside the view is rejected',
    why: 'every node of an epoch has the same member set, so no non-member stamps the current epoch',
  },
};

/** Runs the unit test of an unreachable mutation with it switched on: true if the test fails (caught). */
function unitTestFails(m: MutationName, t: { file: string; grep: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const mocha = require.resolve('mocha/bin/mocha.js');
    const p = spawn(process.execPath, [mocha, '--no-config', '--exit', '--grep', t.grep, t.file], { env: { ...process.env, MXFS_MUTATION: m }, stdio: 'ignore', cwd: `${__dirname}/../..` });
    p.on('exit', (code) => resolve(code !== 0));
  });
}

interface SeedResult { seed: number; violations: string[]; error?: string; grants: number; ms: number }

async function child(seed: number, failover?: string, sim: SimOptions = SHARP): Promise<void> {
  const t0 = performance.now();
  let out: SeedResult;
  try {
    if (failover) {
      const sc = findScenario(failover);
      if (!sc) throw new Error(`no scenario ${failover}`);
      const r = await runScenario(sc, { seed });
      out = { seed, violations: r.result.violations.map((v) => `[${v.kind}] ${v.text}`), grants: r.figures.grants, ms: 0, ...(r.aborted ? { error: r.aborted } : {}) };
    } else {
      const c = await runSeed(seed, sim);
      out = { seed, violations: c.violations, grants: c.grants, ms: 0 };
    }
  } catch (e) {
    out = { seed, violations: [], error: (e as Error).message, grants: 0, ms: 0 };
  }
  out.ms = Math.round(performance.now() - t0);
  process.stdout.write(`RESULT ${JSON.stringify(out)}\n`);
  process.exit(0);
}

function runChild(seed: number, mutation: string | undefined, failover?: string, sim?: string): Promise<SeedResult> {
  return new Promise((resolve, reject) => {
    const args = [__filename, '--child', '--seed', String(seed), ...(failover ? ['--failover', failover] : []), ...(sim ? ['--sim', sim] : [])];
    const env = { ...process.env };
    if (mutation) env.MXFS_MUTATION = mutation; else delete env.MXFS_MUTATION;
    const p = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    p.stdout.on('data', (d) => { text += d; });
    p.on('exit', (code) => {
      const line = text.split('\n').find((l) => l.startsWith('RESULT '));
      if (!line) { reject(new Error(`seed ${seed} (${mutation ?? 'baseline'}): no result (exit ${code})`)); return; }
      resolve(JSON.parse(line.slice(7)) as SeedResult);
    });
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    child: { type: 'boolean' }, seed: { type: 'string' }, seeds: { type: 'string', default: '10' },
    only: { type: 'string' }, failover: { type: 'string' }, 'no-baseline': { type: 'boolean' }, first: { type: 'string', default: '1' },
    sim: { type: 'string' },
  } });
  if (values.child) return child(Number(values.seed), values.failover, values.sim ? JSON.parse(values.sim) as SimOptions : SHARP);
  const n = Number(values.seeds);
  const first = Number(values.first);
  const names = (values.only ? values.only.split(',') : Object.keys(MUTATIONS)) as MutationName[];
  for (const m of names) if (!(m in MUTATIONS)) throw new Error(`unknown mutation ${m}`);
  const how = values.failover ? `failover scenario '${values.failover}'` : 'simulation';
  console.log(`# mutation check, ${how}, up to ${n} seeds from ${first}  ${new Date().toISOString()}  ${os.cpus().length}x ${os.cpus()[0]?.model}  load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log('| safety check switched off | caught at seed | seeds run | what was reported |');
  console.log('|---|---|---|---|');
  let ok = true;
  const rows: Array<[string | undefined, string]> = [...names.map((m): [string, string] => [m, MUTATIONS[m]]), ...(values['no-baseline'] ? [] : [[undefined, 'none (baseline)'] as [undefined, string]])];
  for (const [m, what] of rows) {
    const unit = m ? UNREACHABLE[m as MutationName] : undefined;
    if (m && unit) {
      const fails = await unitTestFails(m as MutationName, unit);
      process.stderr.write(`  ${m}: unit test '${unit.grep}' ${fails ? 'fails (caught)' : 'passes (NOT caught)'}\n`);
      console.log(`| \`${m}\`: ${what} | unreachable (${unit.why}); the unit test "${unit.grep}" ${fails ? 'fails with it' : 'does NOT fail with it'} | - | - |`);
      if (!fails) ok = false;
      continue;
    }
    let caught: SeedResult | undefined;
    let ran = 0;
    for (let seed = first; seed < first + n && !caught; seed++) {
      const r = await runChild(seed, m, values.failover, values.sim);
      ran++;
      process.stderr.write(`  ${m ?? 'baseline'} seed ${seed}: ${r.violations.length} violations${r.error ? `, error: ${r.error.slice(0, 120)}` : ''} (${r.grants} grants, ${r.ms} ms)\n`);
      if (r.violations.length > 0 || r.error) caught = r;
    }
    const report = caught ? (caught.violations[0] ?? `error: ${caught.error}`).replace(/\|/g, '/').slice(0, 160) : '-';
    console.log(`| ${m ? `\`${m}\`: ${what}` : what} | ${caught ? caught.seed - first + 1 : 'not caught'} | ${ran} | ${report} |`);
    if (m ? !caught : !!caught) ok = false;
  }
  process.exit(ok ? 0 : 1);
}

main().catch((e) => { console.error(e); process.exit(2); });
