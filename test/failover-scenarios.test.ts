/**
 * The shipped failover scenarios against a real loopback cluster (mxfsd processes with
 * MXFS_FAULT_INJECTION=1): every fixed scenario with a fixed seed, then the randomized
 * nemesis over a bounded batch of seeds. A failure message carries the summary and the
 * report directory (history, node logs) to investigate, and the command to repeat it.
 *
 *   MXFS_FAILOVER_SEEDS=K   random seeds to run (default 3)
 *   MXFS_FAILOVER_SEED=S    first random seed (default 1000)
 *   MXFS_FAILOVER_ONLY=a,b  run only these scenarios
 */
import { expect } from 'chai';
import fs from 'node:fs';
import { runScenario } from '../src/failover/runner';
import { CI_FIXED, findScenario } from './scenarios/index';

const only = process.env.MXFS_FAILOVER_ONLY?.split(',').filter(Boolean);
const seeds = Number(process.env.MXFS_FAILOVER_SEEDS ?? 3);
const seed0 = Number(process.env.MXFS_FAILOVER_SEED ?? 1000);
const want = (name: string) => !only || only.includes(name);

describe('failover scenarios (real cluster)', function () {
  this.timeout(300000); // the abuse scenario pipelines 100 000 requests: about a minute, more on a loaded machine

  for (const name of CI_FIXED.filter(want)) {
    it(name, async () => {
      const r = await runScenario(findScenario(name)!, { seed: 1, log: process.env.MXFS_FAILOVER_VERBOSE ? (l) => process.stderr.write(l + '\n') : undefined });
      const why = `\n${r.summary}repeat: node bin/mxfs-failover run ${name} --seed 1\n`;
      expect(r.aborted, why).to.equal(undefined);
      expect(r.result.violations.map((v) => `[${v.kind}] ${v.text}`), why).to.deep.equal([]);
      expect(r.figures.grants, why).to.be.greaterThan(0);
      fs.rmSync(r.reportDir, { recursive: true, force: true }); // kept only when the run failed
    });
  }

  if (want('random')) {
    for (let k = 0; k < seeds; k++) {
      const seed = seed0 + k;
      it(`random nemesis, seed ${seed}`, async () => {
        const r = await runScenario(findScenario('random')!, { seed });
        const why = `\n${r.summary}repeat: node bin/mxfs-failover run random --seed ${seed}\n`;
        expect(r.aborted, why).to.equal(undefined);
        expect(r.result.violations.map((v) => `[${v.kind}] ${v.text}`), why).to.deep.equal([]);
        fs.rmSync(r.reportDir, { recursive: true, force: true });
      });
    }
  }
});
