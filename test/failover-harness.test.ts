/**
 * The failover harness end to end against real mxfsd processes that need no cluster layer:
 * a GC-paused client's zombie write is rejected and the run passes; three uncoordinated
 * standalone daemons serving the same resources are caught double-granting; the CLI's exit
 * codes follow the verdict.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { runScenario } from '../src/failover/runner';
import type { Scenario } from '../src/failover/scenario';
import { scenario as standaloneGcPause } from './scenarios/standalone-gc-pause';
import { ROOT, run, tmpDir } from './support/daemon-proc';

const CLI = path.join(ROOT, 'bin', 'mxfs-failover');

describe('failover harness (standalone daemons)', function () {
  this.timeout(120000);
  const dirs: string[] = [];
  after(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

  it('a GC-paused holder writes on waking; the fenced store rejects it; no violation', async () => {
    const dir = tmpDir('mxfs-fo-'); dirs.push(dir);
    const r = await runScenario(standaloneGcPause, { seed: 11, reportDir: dir });
    expect(r.aborted, r.summary).to.equal(undefined);
    expect(r.result.violations, r.summary).to.deep.equal([]);
    expect(r.figures.zombieWrites).to.equal(1);
    expect(r.figures.rejectedStaleWrites).to.be.greaterThanOrEqual(1);
    expect(r.figures.grants).to.be.greaterThan(20);
    for (const f of ['history.ndjson', 'report.json', 'summary.txt', 'node1/mxfsd.log']) expect(fs.existsSync(path.join(dir, f)), f).to.equal(true);
    expect(fs.existsSync(path.join(dir, 'trace')), 'a passing run has no trace attached').to.equal(false);
    const zombie = fs.readFileSync(path.join(dir, 'history.ndjson'), 'utf8').split('\n').filter((l) => l.includes('"zombie":true'));
    expect(zombie).to.have.length(1);
    expect(JSON.parse(zombie[0]!).accepted).to.equal(false);
  });

  it('catches double grants by three uncoordinated daemons (real evidence for the checker)', async () => {
    const dir = tmpDir('mxfs-fo-'); dirs.push(dir);
    const sc: Scenario = {
      name: 'uncoordinated', description: 'three standalone daemons, one resource', nodes: 3, leaseMs: 1500, standalone: true, resources: 1,
      steps: [{ do: 'start' }, { do: 'clients', count: 6, modes: { EX: 1 } }, { do: 'wait', until: { grants: 60 }, withinMs: 10000 }],
    };
    const r = await runScenario(sc, { seed: 5, reportDir: dir });
    expect(r.aborted, r.summary).to.equal(undefined);
    const kinds = new Set(r.result.violations.map((v) => v.kind));
    expect([...kinds], r.summary).to.include('overlap');
    expect([...kinds]).to.include('token-order');
    // The failed run's report carries the merged trace of its nodes.
    expect(r.summary).to.match(/trace: \d+ events from 3 nodes merged/);
    const merged = fs.readFileSync(path.join(dir, 'trace', 'merged.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(new Set(merged.map((e: any) => e.node))).to.deep.equal(new Set([1, 2, 3]));
    expect(merged.filter((e: any) => e.type === 'lock.granted').length).to.be.greaterThan(10);
    const perfetto = JSON.parse(fs.readFileSync(path.join(dir, 'trace', 'perfetto.json'), 'utf8'));
    expect(perfetto.traceEvents.filter((e: any) => e.name === 'process_name')).to.have.length(3);
    expect(fs.readFileSync(path.join(dir, 'trace', 'timeline.html'), 'utf8')).to.match(/^<!doctype html>/);
    // The CLI re-checks the saved history to the same verdict, exit 1.
    const c = await run(process.execPath, [CLI, 'check', path.join(dir, 'history.ndjson')], { timeoutMs: 30000 });
    expect(c.code, c.stderr).to.equal(1);
    expect(c.stdout).to.match(/^FAIL/);
    expect(c.stdout).to.match(/\[overlap\]/);
  });

  it('mxfs-failover check: a missing, non-JSON or empty history is one line on stderr and exit 1, never a stack or a PASS', async () => {
    const dir = tmpDir('mxfs-fo-'); dirs.push(dir);
    fs.writeFileSync(path.join(dir, 'garbage.ndjson'), 'garbage\n');
    fs.writeFileSync(path.join(dir, 'empty.ndjson'), '');
    const cases: Array<[string, RegExp]> = [
      ['missing.ndjson', /ENOENT/], ['garbage.ndjson', /history line 1: not JSON/], ['empty.ndjson', /no events in it/],
    ];
    for (const [f, why] of cases) {
      const c = await run(process.execPath, [CLI, 'check', path.join(dir, f)], { timeoutMs: 30000 });
      expect(c.code, f).to.equal(1);
      expect(c.stdout, f).to.equal('');
      expect(c.stderr.trim().split('\n'), f).to.have.length(1);
      expect(c.stderr, f).to.match(new RegExp(`^mxfs-failover: cannot check .*${f.replace('.', '\\.')}: `));
      expect(c.stderr, f).to.match(why);
    }
  });

  it('mxfs-failover run exits 0 on a passing scenario and prints the seed to repeat it', async () => {
    const dir = tmpDir('mxfs-fo-'); dirs.push(dir);
    const c = await run(process.execPath, [CLI, 'run', 'standalone-gc-pause', '--seed', '4', '--report', dir, '--quiet'], { timeoutMs: 60000 });
    expect(c.code, c.stdout + c.stderr).to.equal(0);
    expect(c.stdout).to.match(/mxfs-failover run standalone-gc-pause --seed 4/);
    expect(c.stdout).to.match(/PASS {2}standalone-gc-pause/);
    const u = await run(process.execPath, [CLI, 'run', 'no-such-scenario'], { timeoutMs: 30000 });
    expect(u.code).to.equal(2);
  });
});
